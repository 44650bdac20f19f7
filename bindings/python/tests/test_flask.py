"""Flask through its test client: mounting on the app object, phases, the url_rule as the
route template, streaming with stream_with_context, exceptions."""

from __future__ import annotations

from typing import Any

import pytest

import apps
from nanoprof.wsgi import WSGIMiddleware
from support import DASHBOARD, DASHBOARD_ROUTES, assert_phases, assert_profile_headers, route_row


@pytest.fixture()
def app() -> Any:
    return apps.make_flask()


def get(client: Any, url: str, **kwargs: Any) -> Any:
    """A GET whose response is closed at once, as a server closes it: werkzeug's client
    leaves an unbuffered body open, and the request only ends at close()."""
    return client.get(url, buffered=True, **kwargs)


def test_mounted_on_wsgi_app(app: Any) -> None:
    assert isinstance(app.wsgi_app, WSGIMiddleware)
    response = get(app.test_client(), "/users/3")
    assert response.status_code == 200 and response.json == {"id": 3}
    assert_profile_headers(response.headers, queries=1)


def test_phases_and_route_template(app: Any) -> None:
    client = app.test_client()
    profile = get(client, "/users/4?profile=json").json
    assert profile["route"] == "/users/<int:user_id>"
    assert_phases(profile, "middleware", "routing", "handler")
    get(client, "/users/5")
    assert (
        route_row(get(client, DASHBOARD + "/json").data, "GET", "/users/<int:user_id>")["count"]
        == 2
    )


def test_streamed_response_is_measured_to_the_end(app: Any) -> None:
    client = app.test_client()
    response = get(client, "/stream")
    assert response.data == b"x" * apps.STREAM_CHUNKS
    profile = get(client, "/stream?profile=json").json
    assert profile["sql_count"] == apps.STREAM_CHUNKS
    assert profile["total_ns"] >= apps.STREAM_CHUNKS * apps.STREAM_PAUSE_S * 1e9


def test_exception_propagates_and_counts_as_500(app: Any) -> None:
    client = app.test_client()
    with pytest.raises(KeyError, match="boom"):
        get(client, "/boom")
    assert route_row(get(client, DASHBOARD + "/json").data, "GET", "/boom")["status"] == {"5xx": 1}


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes_with_and_without_token(route: str) -> None:
    assert get(apps.make_flask().test_client(), DASHBOARD + route).status_code == 200
    client = apps.make_flask(production=True).test_client()
    assert get(client, DASHBOARD + route).status_code == 403
    assert (
        get(client, DASHBOARD + route, headers={"X-Profile-Token": apps.TOKEN}).status_code == 200
    )
