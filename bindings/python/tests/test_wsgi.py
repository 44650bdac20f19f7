"""The WSGI adapter, driven the way a server drives it (start_response, iterate, close)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

import apps
from nanoprof import _core
from nanoprof.middleware import PerformanceMiddleware
from nanoprof.wsgi import WSGIMiddleware
from support import (
    DASHBOARD,
    DASHBOARD_ROUTES,
    assert_no_profile_headers,
    assert_profile_headers,
    route_row,
)


class Served:
    """What a server saw: status, headers, body, and the exc_info start_response got."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}
        self.exc_info: Any = None
        self.body = b""


def serve(
    app: Callable[..., Iterable[bytes]],
    path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> Served:
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    served = Served()

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        served.status, served.exc_info = status, exc_info
        served.headers = {k.lower(): v for k, v in response_headers}
        return lambda data: None

    result = app(environ, start_response)
    try:
        served.body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return served


def test_headers_are_added_and_well_formed() -> None:
    app = PerformanceMiddleware(apps.wsgi_app, **apps.options())
    assert isinstance(app, WSGIMiddleware)
    served = serve(app, "/mine/3")
    assert served.status == "200 OK"
    assert_profile_headers({k.title(): v for k, v in served.headers.items()}, queries=3)
    assert served.headers["content-type"] == "application/json"  # the app's own stay
    assert json.loads(served.body)["n"] == 3


def test_streamed_body_is_measured_and_close_forwarded() -> None:
    bodies: list[apps.RecordingIterable] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        body = apps.RecordingIterable([b"a", b"b", b"c"], sql_per_chunk=2)
        bodies.append(body)
        return body

    middleware = PerformanceMiddleware(app, **apps.options())
    served = serve(middleware, "/stream")
    assert served.body == b"abc"
    assert bodies[0].closed == 1
    # The queries made while the body was sent belong to the request: it ended at close().
    profile = _core.get_store().get_recent(1)[0]
    assert profile.path == "/stream"
    assert profile.sql_count == 6
    assert profile.total_ns >= 3 * apps.STREAM_PAUSE_S * 1e9
    assert profile.status == 200


def test_close_is_forwarded_when_iteration_fails() -> None:
    bodies: list[apps.RecordingIterable] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        bodies.append(apps.RecordingIterable([b"a", b"b", b"c"], fail_at=1))
        return bodies[-1]

    middleware = PerformanceMiddleware(app, **apps.options())
    with pytest.raises(RuntimeError, match="body failed"):
        serve(middleware, "/fails")
    assert bodies[0].closed == 1
    row = route_row(middleware._mw.render("json"), "GET", "/fails")
    assert row["status"].get("5xx") == 1, row


def test_close_is_forwarded_when_the_body_is_never_iterated() -> None:
    body = apps.RecordingIterable([b"a"])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("204 No Content", [])
        return body

    middleware = PerformanceMiddleware(app, **apps.options())
    environ: dict[str, Any] = {"PATH_INFO": "/x", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    result = middleware(environ, lambda *a: None)
    result.close()  # type: ignore[attr-defined]
    assert body.closed == 1
    assert _core.get_current_profile() is None  # the request ended


def test_exception_from_the_app_propagates_unchanged_and_counts_as_500() -> None:
    raised = KeyError("boom")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise raised

    middleware = PerformanceMiddleware(app, **apps.options())
    with pytest.raises(KeyError) as caught:
        serve(middleware, "/boom")
    assert caught.value is raised
    assert route_row(middleware._mw.render("json"), "GET", "/boom")["status"] == {"5xx": 1}
    assert _core.get_current_profile() is None


def test_exc_info_is_passed_through() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            raise ValueError("late")
        except ValueError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error page"]

    served = serve(PerformanceMiddleware(app, **apps.options()), "/x")
    assert served.exc_info is not None and isinstance(served.exc_info[1], ValueError)
    assert served.status.startswith("500")
    assert "x-profile" in served.headers


def test_profile_json_replaces_the_body() -> None:
    body = apps.RecordingIterable([b"not", b"this"])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _core.record_sql("SELECT 1", 1500)
        start_response("201 Created", [("Content-Type", "text/plain")])
        return body

    served = serve(PerformanceMiddleware(app, **apps.options()), "/things", query="profile=json")
    assert served.status == "201 Created"
    assert served.headers["content-type"] == "application/json"
    assert int(served.headers["content-length"]) == len(served.body)
    profile = json.loads(served.body)
    assert (profile["method"], profile["path"], profile["status"]) == ("GET", "/things", 201)
    assert [q["sql"] for q in profile["queries"]] == ["SELECT 1"]
    assert body.closed == 1


def test_profile_json_exception_propagates() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        serve(PerformanceMiddleware(app, **apps.options()), "/boom", query="profile=json")


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes_in_development(route: str) -> None:
    app = PerformanceMiddleware(apps.wsgi_app, **apps.options())
    serve(app, "/mine/2")
    served = serve(app, DASHBOARD + route)
    assert served.status == "200 OK", (route, served.status)
    assert served.body
    if route == "/json":
        assert route_row(served.body, "GET", "/mine/{id}")["count"] == 1


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes_need_the_token_in_production(route: str) -> None:
    app = PerformanceMiddleware(apps.wsgi_app, **apps.options(production=True))
    assert serve(app, DASHBOARD + route).status.startswith("403")
    assert serve(app, DASHBOARD + route, headers={"X-Profile-Token": "wrong"}).status.startswith(
        "403"
    )
    assert serve(app, DASHBOARD + route, headers={"X-Profile-Token": apps.TOKEN}).status == "200 OK"
    assert serve(app, DASHBOARD + route, query=f"profile_token={apps.TOKEN}").status == "200 OK"


def test_production_headers_only_on_request_with_token() -> None:
    app = PerformanceMiddleware(apps.wsgi_app, **apps.options(production=True))
    assert_no_profile_headers(serve(app, "/mine/1").headers)
    assert_no_profile_headers(serve(app, "/mine/1", query="profile=1").headers)
    served = serve(app, "/mine/1", query="profile=1", headers={"X-Profile-Token": apps.TOKEN})
    assert_profile_headers({k.title(): v for k, v in served.headers.items()}, queries=1)
    # ?profile=json without the token is ignored: the app's own body comes back.
    assert json.loads(serve(app, "/mine/1", query="profile=json").body)["n"] == 1


@pytest.mark.parametrize(("change", "reason"), [
    ({"QUERY_STRING": 5}, "QUERY_STRING must be str or bytes, not int"),
    ({"REQUEST_METHOD": None}, "REQUEST_METHOD must be str or bytes, not NoneType"),
])
def test_an_environ_it_cannot_read_is_served_by_the_app_unprofiled(change: dict[str, Any],
                                                                    reason: str) -> None:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ)
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        return [b"served"]

    middleware = PerformanceMiddleware(app, **apps.options())
    environ: dict[str, Any] = {"PATH_INFO": "/unreadable", "QUERY_STRING": "",
                               "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    environ.update(change)
    statuses: list[str] = []
    with pytest.warns(RuntimeWarning, match="served a request unprofiled") as warned:
        body = middleware(environ, lambda status, headers, exc=None: statuses.append(status))
    assert reason in str(warned[0].message) and "WSGI environ" in str(warned[0].message)
    assert seen == [environ] and statuses == ["202 Accepted"] and list(body) == [b"served"]
    assert middleware._mw.totals()["requests"] == 0


@pytest.mark.parametrize(("status", "headers"), [
    ("200 OK", None), ("OK", []), (200, []), ("", []),
])
def test_a_start_response_pep_3333_does_not_allow_goes_to_the_server_as_it_came(
        status: Any, headers: Any) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"x"]

    middleware = PerformanceMiddleware(app, **apps.options())  # development: headers added
    environ: dict[str, Any] = {"PATH_INFO": "/odd", "QUERY_STRING": "", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    got: list[tuple[Any, Any]] = []
    body = middleware(environ, lambda s, h, exc=None: got.append((s, h)))
    assert b"".join(body) == b"x"
    body.close()  # type: ignore[attr-defined]
    assert len(got) == 1 and got[0][0] is status and got[0][1] is headers
    assert _core.get_store().get_recent(1)[0].status == 500  # a response the server refuses


def test_profile_json_with_a_status_pep_3333_does_not_allow_sends_what_the_app_said() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("OK", [("Content-Type", "text/plain")])
        return [b"the app's"]

    served = serve(PerformanceMiddleware(app, **apps.options()), "/odd", query="profile=json")
    assert served.status == "OK" and served.body == b"the app's"
    assert served.headers == {"content-type": "text/plain"}
    assert _core.get_store().get_recent(1)[0].status == 500


def test_disabled_passes_requests_through() -> None:
    app = PerformanceMiddleware(apps.wsgi_app, **apps.options(enabled=False))
    served = serve(app, "/mine/1")
    assert served.status == "200 OK"
    assert_no_profile_headers(served.headers)


def test_one_core_serves_several_apps() -> None:
    perf = PerformanceMiddleware(**apps.options())
    first, second = perf.wsgi(apps.wsgi_app), perf.wsgi(apps.wsgi_app)
    serve(first, "/mine/1")
    serve(second, "/mine/2")
    assert route_row(perf._mw.render("json"), "GET", "/mine/{id}")["count"] == 2
