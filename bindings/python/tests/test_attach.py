"""The hooks @profile_handler calls for framework objects: attach_header and request_info."""

from __future__ import annotations

import flask
import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse

from nanoprof._attach import attach_header, request_info

HEADER = "total=1.0ms handler=0.5ms"


def test_django_response_gets_the_header() -> None:
    response = HttpResponse("x")
    assert attach_header(response, HEADER) is response
    assert response["X-Profile"] == HEADER


def test_starlette_response_gets_the_header_in_its_raw_headers() -> None:
    response = PlainTextResponse("x")
    assert attach_header(response, HEADER) is response
    assert (b"x-profile", HEADER.encode()) in response.raw_headers


def test_flask_response_and_plain_results_in_a_request_context() -> None:
    app = flask.Flask("attach")
    response = flask.Response("x")
    assert attach_header(response, HEADER) is response
    assert response.headers["X-Profile"] == HEADER
    with app.test_request_context("/users/1", method="POST"):
        for result in ("text", {"a": 1}, ("text", 201)):
            made = attach_header(result, HEADER)
            assert isinstance(made, flask.Response) and made.headers["X-Profile"] == HEADER
        made = attach_header(("text", 201), HEADER)
        assert made.status_code == 201  # type: ignore[attr-defined]


@pytest.mark.parametrize("result", ["text", {"a": 1}, 42, None, object()])
def test_unknown_results_outside_a_framework_are_untouched(result: object) -> None:
    assert attach_header(result, HEADER) is result


def test_request_info_of_each_framework() -> None:
    django_request = RequestFactory().get("/users/3/")
    assert request_info((django_request,)) == ("GET", "/users/3/")
    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/items/9",
        "query_string": b"",
        "headers": [],
        "scheme": "http",
        "server": ("h", 80),
        "root_path": "",
    }
    assert request_info((StarletteRequest(scope),)) == ("PUT", "/items/9")
    with flask.Flask("info").test_request_context("/flask/1", method="DELETE"):
        assert request_info(()) == ("DELETE", "/flask/1")
        assert request_info((1, 2)) == ("DELETE", "/flask/1")
    assert request_info(()) is None
    assert request_info(("not a request",)) is None


def test_profile_handler_on_framework_views_attaches_through_the_hooks() -> None:
    """@profile_handler without the middleware: each framework's result gets X-Profile, and
    the profile is named after the framework's request (request_info)."""
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    import nanoprof

    app = flask.Flask("decorated")

    @app.route("/flask/<int:n>")
    @nanoprof.profile_handler
    def flask_view(n: int) -> dict[str, int]:
        return {"n": n}

    response = app.test_client().get("/flask/4")
    assert response.json == {"n": 4} and response.headers["X-Profile"].startswith("total=")
    assert nanoprof.get_store().get_recent(1)[0].path == "/flask/4"

    @nanoprof.profile_handler
    async def starlette_view(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("ok")

    with TestClient(Starlette(routes=[Route("/star", starlette_view)])) as client:
        assert client.get("/star").headers["X-Profile"].startswith("total=")
    assert nanoprof.get_store().get_recent(1)[0].method == "GET"
    assert nanoprof.get_store().get_recent(1)[0].path == "/star"

    @nanoprof.profile_handler
    def django_view(request: object) -> HttpResponse:
        return HttpResponse("ok")

    response = django_view(RequestFactory().post("/dj/1/"))
    assert response["X-Profile"].startswith("total=")
    assert nanoprof.get_store().get_recent(1)[0].path == "/dj/1/"
    assert nanoprof.get_store().get_recent(1)[0].method == "POST"
