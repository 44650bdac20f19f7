"""The ASGI adapter, driven directly on one event loop (plain asyncio, no plugin)."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest

import apps
from nanoprof import _core
from nanoprof.asgi import ASGIMiddleware
from nanoprof.middleware import PerformanceMiddleware
from support import (
    DASHBOARD,
    DASHBOARD_ROUTES,
    assert_no_profile_headers,
    assert_own_queries,
    assert_profile_headers,
    profile_param,
    route_row,
)


class Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.messages: list[dict[str, Any]] = []


async def call(
    app: Callable[..., Awaitable[None]],
    path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    raw_headers: list[Any] | None = None,
) -> Response:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "headers": raw_headers if raw_headers is not None else [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ],
    }
    response = Response()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        response.messages.append(message)
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = {k.decode().title(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            response.body += message.get("body", b"")

    await app(scope, receive, send)
    return response


def run(app: Any, path: str, query: str = "", headers: dict[str, str] | None = None,
        raw_headers: list[Any] | None = None) -> Response:
    return asyncio.run(call(app, path, query, headers, raw_headers))


def test_headers_are_added_at_response_start() -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options())
    assert isinstance(app, ASGIMiddleware)
    response = run(app, "/mine/2")
    assert response.status == 200
    assert_profile_headers(response.headers, queries=2)
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["sql"] == [apps.sql_of(2, 0), apps.sql_of(2, 1)]


def test_streamed_response_is_measured_to_its_last_message() -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options())
    response = run(app, "/stream")
    assert response.body == b"x" * apps.STREAM_CHUNKS
    profile = _core.get_store().get_recent(1)[0]
    assert profile.path == "/stream"
    assert profile.sql_count == apps.STREAM_CHUNKS  # recorded after the response started
    assert profile.total_ns >= apps.STREAM_CHUNKS * apps.STREAM_PAUSE_S * 1e9


def test_production_summarises_parameters_only_where_someone_reads_them() -> None:
    """Production mode builds a query's parameter summary for the requests whose profile is
    kept for reading (the 1 in sample_every, ?profile=), and for slow and failed queries of
    any request; development mode for every query."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        _core.record_sql("SELECT * FROM t WHERE id = %s", 1_000, (7,))
        _core.record_sql("SELECT * FROM t WHERE id = %s", 300_000_000, (8,))  # slow
        status = 500 if scope["path"] == "/fail" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def params_of_last() -> list[str | None]:
        return [q.params for q in _core.get_store().get_recent(1)[0].sql_queries]

    # sample_every this large: no ordinary request is picked for the store in this test.
    app = PerformanceMiddleware(inner, **apps.options(production=True), sample_every=10**9,
                                slow_query_threshold_ms=100)
    assert run(app, "/fail").status == 500  # kept for its status, not picked beforehand
    assert params_of_last() == [None, "id=8"]
    run(app, "/ok", query="profile=1", headers={"X-Profile-Token": apps.TOKEN})
    assert params_of_last() == ["id=7", "id=8"]
    dev = PerformanceMiddleware(inner, **apps.options(), slow_query_threshold_ms=100)
    run(dev, "/fail")
    assert params_of_last() == ["id=7", "id=8"]


def test_duplicates_follow_the_parameter_values_with_or_without_summaries() -> None:
    # An exact duplicate is the same text with the same values.  Production mode leaves the
    # summaries out of a request it did not pick, and redaction makes different secrets read
    # alike: neither may turn queries with different values into duplicates.
    sql = "SELECT * FROM users WHERE key = %s"
    calls = [
        (1,), (2,), (3,), (1,),      # one duplicate
        [4, "a"], [4, "a"],          # a list, hashed item by item: one
        {"k": 5}, {"k": 6}, {"k": 5},  # a mapping: one
        ([1, 2],), ([1, 2],),        # a value with no hash: never called a duplicate
        ("ann@example.com",), ("bob@example.com",),  # redacted alike, still different
    ]

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for params in calls:
            _core.record_sql(sql, 1_000, params)
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def last() -> dict[str, Any]:
        return json.loads(_core.get_store().get_recent(1)[0].to_json())

    prod = PerformanceMiddleware(inner, **apps.options(production=True), sample_every=10**9)
    run(prod, "/dup")
    profile = last()
    assert all(q.get("params") is None for q in profile["queries"])  # left out
    assert profile["duplicate_count"] == 3
    dev = PerformanceMiddleware(inner, **apps.options())
    run(dev, "/dup")
    profile = last()
    assert profile["queries"][-1]["params"] == profile["queries"][-2]["params"]  # redacted
    assert profile["duplicate_count"] == 3


def test_exception_propagates_unchanged_and_counts_as_500() -> None:
    raised = KeyError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise raised

    middleware = PerformanceMiddleware(app, **apps.options())
    with pytest.raises(KeyError) as caught:
        run(middleware, "/boom")
    assert caught.value is raised
    assert route_row(middleware._mw.render("json"), "GET", "/boom")["status"] == {"5xx": 1}


def test_profile_json_replaces_the_response() -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options())
    response = run(app, "/mine/3", query="profile=json")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.body)
    profile = json.loads(response.body)
    assert profile["path"] == "/mine/3"
    assert [q["sql"] for q in profile["queries"]] == [apps.sql_of(3, k) for k in range(3)]
    assert [m["type"] for m in response.messages] == ["http.response.start", "http.response.body"]


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes(route: str) -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options())
    run(app, "/mine/1")
    response = run(app, DASHBOARD + route)
    assert response.status == 200 and response.body
    if route == "/json":
        assert route_row(response.body, "GET", "/mine/{id}")["count"] == 1


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes_need_the_token_in_production(route: str) -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options(production=True))
    assert run(app, DASHBOARD + route).status == 403
    assert run(app, DASHBOARD + route, headers={"X-Profile-Token": apps.TOKEN}).status == 200
    assert run(app, DASHBOARD + route, query=f"profile_token={apps.TOKEN}").status == 200


def test_production_headers_only_on_request_with_token() -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options(production=True))
    assert_no_profile_headers(run(app, "/mine/1").headers)
    assert_no_profile_headers(run(app, "/mine/1", query="profile=1").headers)
    response = run(app, "/mine/1", query="profile=1", headers={"X-Profile-Token": apps.TOKEN})
    assert_profile_headers(response.headers, queries=1)


@pytest.mark.parametrize(
    ("pairs", "found"),
    [
        ([(b"host", b"a"), (b"X-Profile-Token", apps.TOKEN.encode())], True),  # any case
        ([[b"x-profile-token", apps.TOKEN.encode()]], True),  # a list for a pair
        ([("x-profile-token", apps.TOKEN)], True),  # str, not bytes
        ([(b"x-profile-tokem", apps.TOKEN.encode())], False),  # the same length, another name
        ([(b"x-profile-token", b"wrong")], False),
        ([(b"x-profile-token",), (b"x-profile-token", b"a", b"b")], False),  # not pairs
    ],
)
def test_production_finds_the_token_header_in_each_form_of_pair(pairs: list[Any],
                                                                  found: bool) -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options(production=True))
    response = run(app, "/mine/1", query="profile=1", raw_headers=pairs)
    assert response.status == 200
    if found:
        assert_profile_headers(response.headers, queries=1)
    else:
        assert_no_profile_headers(response.headers)


def test_a_response_start_with_nothing_to_add_is_sent_as_the_app_made_it() -> None:
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": 204, "headers": [(b"x-a", b"1")]}
        sent.append(start)
        await send(start)
        await send({"type": "http.response.body", "body": b""})

    app = PerformanceMiddleware(inner, **apps.options(production=True))
    response = run(app, "/quiet")
    assert response.messages[0] is sent[0]  # the same object: no copy, nothing added
    assert response.messages[0]["headers"] == [(b"x-a", b"1")]
    with_headers = run(app, "/quiet", query="profile=1", headers={"X-Profile-Token": apps.TOKEN})
    assert with_headers.messages[0] is not sent[-1]  # ours are added to a copy
    assert sent[-1]["headers"] == [(b"x-a", b"1")]  # the app's message is left as it was
    assert_profile_headers(with_headers.headers, queries=0)


class _Str(str):
    pass


@pytest.mark.parametrize("spell", [lambda t: "".join(t.partition("response")), _Str],
                         ids=["built", "subclass"])
def test_message_types_are_read_by_their_text(spell: Callable[[str], str]) -> None:
    # A framework spells the message types as literals of its own (dotted, so not interned)
    # or builds them: the adapter compares their text, not the objects.
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": spell("http.response.start"), "status": 201, "headers": []})
        await send({"type": spell("http.response.body"), "body": b"ok"})

    response = run(PerformanceMiddleware(inner, **apps.options()), "/spelled")
    assert (response.status, response.body) == (201, b"ok")
    assert_profile_headers(response.headers, queries=0)


def test_a_message_type_that_is_not_a_str_goes_to_the_server_as_it_came() -> None:
    message = {"type": b"http.response.start", "status": 200, "headers": []}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send(message)

    response = run(PerformanceMiddleware(inner, **apps.options()), "/bytes-type")
    assert response.messages == [message] and response.messages[0] is message
    assert _core.get_store().get_recent(1)[0].status == 500  # no response start was seen


def test_a_response_start_whose_headers_are_no_iterable_goes_to_the_server_as_it_came() -> None:
    message = {"type": "http.response.start", "status": 200, "headers": None}
    sent: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send(message)

    async def server_send(m: Any) -> None:
        sent.append(m)

    middleware = PerformanceMiddleware(inner, **apps.options())  # development: headers added
    asyncio.run(middleware(http_scope("/none-headers"), no_receive, server_send))
    assert sent == [message] and sent[0] is message  # for the server to refuse, not us
    assert _core.get_store().get_recent(1)[0].status == 200


def test_what_iterating_the_apps_headers_raises_reaches_the_app() -> None:
    def headers() -> Any:
        yield (b"x-app", b"1")
        raise TypeError("the app's own")

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers()})

    with pytest.raises(TypeError, match="the app's own"):
        run(PerformanceMiddleware(inner, **apps.options()), "/raising-headers")


def test_response_headers_given_as_any_iterable_keep_theirs_first() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        pairs = iter([(b"x-app", b"1")])
        await send({"type": "http.response.start", "status": 200, "headers": pairs})
        await send({"type": "http.response.body", "body": b""})

    response = run(PerformanceMiddleware(inner, **apps.options()), "/iter-headers")
    start = response.messages[0]
    assert start["headers"][0] == (b"x-app", b"1")
    assert_profile_headers(response.headers, queries=0)


def test_interleaved_requests_on_one_loop_see_only_their_own_queries() -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options())

    async def many() -> list[Response]:
        return await asyncio.gather(
            *(call(app, f"/mine/{n}", urlencode(profile_param(n))) for n in range(1, 101))
        )

    for n, response in enumerate(asyncio.run(many()), start=1):
        assert_own_queries(n, json.loads(response.body))
    assert route_row(app._mw.render("json"), "GET", "/mine/{id}")["count"] == 100


def test_lifespan_and_websocket_are_passed_through_untouched() -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    middleware = PerformanceMiddleware(app, **apps.options())

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        pass

    for kind in ("lifespan", "websocket"):
        scope = {
            "type": kind,
            "path": DASHBOARD + "/json",
            "headers": [],
            "query_string": b"profile=json",
        }
        asyncio.run(middleware(scope, receive, send))
        assert seen[-1][0] is scope and seen[-1][1] is receive and seen[-1][2] is send
    assert len(seen) == 2


# A server's scope the middleware cannot read: the app serves the request unprofiled, and a
# RuntimeWarning says why.
UNREADABLE_SCOPES = [
    pytest.param({"method": None}, "method must be str or bytes, not NoneType", id="method"),
    pytest.param({"path": 7}, "path must be str or bytes, not int", id="path"),
    pytest.param({"query_string": ["profile=1"]}, "query_string must be str or bytes, not list",
                 id="query_string"),
    pytest.param({"path": None, "method": None}, "method must be str or bytes", id="both"),
]


@pytest.mark.parametrize(("change", "reason"), UNREADABLE_SCOPES)
def test_a_scope_it_cannot_read_is_served_by_the_app_unprofiled(change: dict[str, Any],
                                                                 reason: str) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"served"})

    middleware = PerformanceMiddleware(app, **apps.options())
    scope = {**http_scope("/unreadable"), **change}
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    with pytest.warns(RuntimeWarning, match="served a request unprofiled") as warned:
        asyncio.run(middleware(scope, no_receive, send))
    assert reason in str(warned[0].message) and "ASGI scope" in str(warned[0].message)
    assert seen == [scope]  # the app got the scope as the server made it
    assert messages[0] == {"type": "http.response.start", "status": 201, "headers": []}
    assert messages[1]["body"] == b"served"
    assert middleware._mw.totals()["requests"] == 0  # nothing was profiled


def test_a_scope_without_method_or_path_is_served_unprofiled() -> None:
    served: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        served.append(scope)

    middleware = PerformanceMiddleware(app, **apps.options())
    scope = {"type": "http", "query_string": b"profile=json", "headers": []}
    with pytest.warns(RuntimeWarning, match="has no method or path"):
        asyncio.run(middleware(scope, no_receive, drop))
    assert served == [scope]


def test_where_warnings_are_errors_an_unreadable_scope_raises_the_warning() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called: the warning is an error here")

    middleware = PerformanceMiddleware(app, **apps.options())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match="served a request unprofiled") as caught:
            asyncio.run(middleware({**http_scope("/x"), "path": 1}, no_receive, drop))
    assert isinstance(caught.value.__context__, TypeError)


def test_a_middleware_used_before_its_init_still_raises() -> None:
    core = _core.Middleware.__new__(_core.Middleware)
    with pytest.raises(_core.StateError, match="not initialised"):
        core.asgi_begin(http_scope("/x"))


def test_disabled_passes_requests_through() -> None:
    app = PerformanceMiddleware(apps.asgi_app, **apps.options(enabled=False))
    response = run(app, "/mine/1")
    assert response.status == 200
    assert_no_profile_headers(response.headers)


# ---- the call in C (ext/asgi.c) ------------------------------------------------------------


def http_scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}


async def no_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def drop(message: Any) -> None:
    pass


def test_servers_see_an_asgi3_coroutine_function() -> None:
    import inspect

    import uvicorn.config

    middleware = PerformanceMiddleware(apps.asgi_app, **apps.options())
    assert inspect.iscoroutinefunction(middleware.__call__)
    assert asyncio.iscoroutinefunction(middleware.__call__)
    config = uvicorn.config.Config(app=middleware, proxy_headers=False)
    config.load()
    assert config.interface == "asgi3"
    assert config.loaded_app is middleware


def test_a_profiled_call_is_the_c_awaitable_and_others_are_the_apps_own_coroutine() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = PerformanceMiddleware(app, **apps.options())
    profiled = middleware(http_scope("/c"), no_receive, drop)
    assert type(profiled) is _core.ASGICall
    asyncio.run(asyncio.wait_for(profiled, 5))
    lifespan = middleware({"type": "lifespan"}, no_receive, drop)
    assert asyncio.iscoroutine(lifespan) and lifespan.cr_code is app.__code__
    lifespan.close()
    assert route_row(middleware._mw.render("json"), "GET", "/c")["status"] == {"2xx": 1}


def test_the_apps_send_reaches_the_servers_after_the_end_and_lets_it_go_with_the_request(
) -> None:
    """The send a profiled app is given (the C call itself) takes one message, sends what
    comes after the request's end (a task the app left behind) as it came, and holds the
    server's send only as long as someone holds it: no cycle is left to the collector."""
    import gc
    import weakref

    kept: list[Any] = []
    received: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        kept.append(send)
        with pytest.raises(TypeError, match="one message"):
            await send()
        with pytest.raises(TypeError, match="one message"):
            await send({"type": "http.response.start"}, extra=1)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    class Server:
        async def __call__(self, message: Any) -> None:
            received.append(message)

    server = Server()
    gone = weakref.ref(server)
    middleware = PerformanceMiddleware(app, **apps.options())
    gc.disable()
    try:
        asyncio.run(middleware(http_scope("/later"), no_receive, server))
        late = {"type": "http.response.body", "body": b"late"}
        asyncio.run(kept[0](late))
        assert received[-1] is late  # after the end: as it came
        assert [m["type"] for m in received] == ["http.response.start", "http.response.body",
                                                 "http.response.body"]
        del server, kept[:]
        assert gone() is None  # freed by reference counts alone
    finally:
        gc.enable()
    assert route_row(middleware._mw.render("json"), "GET", "/later")["status"] == {"2xx": 1}


def test_a_cancelled_request_ends_as_failed_and_the_cancellation_propagates() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.Event().wait()  # never set: the task is cancelled here

    middleware = PerformanceMiddleware(app, **apps.options())

    async def cancel_it() -> None:
        task = asyncio.ensure_future(middleware(http_scope("/slow"), no_receive, drop))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert route_row(middleware._mw.render("json"), "GET", "/slow")["status"] == {"5xx": 1}


def test_a_call_never_awaited_or_thrown_into_first_begins_nothing() -> None:
    """As with a coroutine: its body (here, beginning the request and calling the app) runs
    at the first step, so a call never awaited, or thrown into first, leaves no request and
    no app coroutine to warn that it was never awaited."""
    import gc
    import warnings

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    middleware = PerformanceMiddleware(app, **apps.options())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        never = middleware(http_scope("/never"), no_receive, drop)
        del never
        gc.collect()
        thrown = middleware(http_scope("/never"), no_receive, drop)
        with pytest.raises(ValueError, match="in first"):
            thrown.throw(ValueError("in first"))
        with pytest.raises(RuntimeError):
            thrown.send(None)  # ended: it refuses more steps
        closed = middleware(http_scope("/never"), no_receive, drop)
        closed.close()
        del thrown, closed
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert json.loads(middleware._mw.render("json"))["routes"] == []


def test_the_request_begins_in_the_task_that_awaits_the_call() -> None:
    """A call made in one task and awaited in another (ensure_future) begins its request in
    the awaiting task's context: the caller's context never has it as current."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(_core.current_request.get(None))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = PerformanceMiddleware(app, **apps.options())

    async def main() -> None:
        call = middleware(http_scope("/elsewhere"), no_receive, drop)
        assert _core.current_request.get(None) is None
        await asyncio.ensure_future(call)
        assert _core.current_request.get(None) is None

    asyncio.run(main())
    assert seen[0] is not None  # current inside the app's task
    assert route_row(middleware._mw.render("json"), "GET", "/elsewhere")["count"] == 1


def test_a_subclass_runs_the_python_call_with_the_same_result() -> None:
    class Mine(ASGIMiddleware):
        pass

    app = Mine(apps.asgi_app, **apps.options())
    call = app(http_scope("/mine/2"), no_receive, drop)
    assert asyncio.iscoroutine(call)  # the Python method's coroutine, not an ASGICall
    call.close()
    response = run(app, "/mine/2")
    assert response.status == 200
    assert_profile_headers(response.headers)
    assert route_row(app._mw.render("json"), "GET", "/mine/{id}")["count"] == 1


def test_the_c_call_reads_the_app_and_core_the_instance_has_now() -> None:
    # The C call reads `app` and `_mw` at their slots: what was set after construction is
    # what serves, and an unset one raises as a lookup would, without crashing.
    middleware = ASGIMiddleware(apps.asgi_app, **apps.options())
    seen: list[str] = []

    async def other(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await apps.asgi_app(scope, receive, send)

    middleware.app = other
    assert run(middleware, "/mine/3").status == 200
    assert seen == ["/mine/3"]
    second = ASGIMiddleware(apps.asgi_app, **apps.options())
    middleware._mw = second._mw
    run(middleware, "/mine/4")
    assert route_row(second._mw.render("json"), "GET", "/mine/{id}")["count"] == 1
    del middleware.app
    with pytest.raises(AttributeError, match="app"):
        run(middleware, "/mine/5")
    middleware.extra = "kept"  # the instance keeps a __dict__ for anything else
    assert middleware.extra == "kept"
