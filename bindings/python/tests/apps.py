"""Applications the tests profile, in-process and behind real servers: the same handlers
for plain WSGI, plain ASGI, Flask, Starlette and FastAPI (Django's are in django_urls.py).

Every handler that queries records its own queries with _core.record_sql, tagged with the
request's own number, so a test can tell whose queries a profile holds.  The module-level
app objects at the bottom are what uvicorn and gunicorn serve; each one is built with
explicit options (production included), because _core.configure() keeps the previous
call's options for those it is not given.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

from nanoprof import _core
from nanoprof.middleware import PerformanceMiddleware

TOKEN = "s3cret-token"
STREAM_CHUNKS = 4
STREAM_PAUSE_S = 0.01


def sql_of(n: int, k: int) -> str:
    """The k-th query of request number n."""
    return f"SELECT * FROM items WHERE owner = {n} AND k = {k}"


def record_own(n: int) -> Iterator[None]:
    """Records request n's queries one at a time; the caller pauses between them (sleeps in
    a thread, awaits on an event loop) so that concurrent requests interleave."""
    for k in range(n):
        _core.record_sql(sql_of(n, k), 1000 + k)
        yield


def own_queries() -> list[str]:
    """The SQL texts of the current request's profile, as the handler sees them."""
    profile = _core.get_current_profile()
    return [] if profile is None else [q.sql for q in profile.sql_queries]


def options(production: bool = False, **extra: Any) -> dict[str, Any]:
    return {"production": production, "token": TOKEN if production else None, **extra}


# ---- plain WSGI ----------------------------------------------------------------------------


class RecordingIterable:
    """A WSGI body that notes close() (and can fail half-way, or record queries while it is
    being sent)."""

    def __init__(self, chunks: Iterable[bytes], fail_at: int = -1, sql_per_chunk: int = 0) -> None:
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.sql_per_chunk = sql_per_chunk
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("body failed")
            for k in range(self.sql_per_chunk):
                _core.record_sql(sql_of(i, k), 1000)
            time.sleep(STREAM_PAUSE_S)
            yield chunk

    def close(self) -> None:
        self.closed += 1


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise KeyError("boom")
    if path.startswith("/mine/"):
        n = int(path.rsplit("/", 1)[1])
        for _ in record_own(n):
            time.sleep(0.001)
        body = json.dumps({"n": n, "sql": own_queries()}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return RecordingIterable([b"x"] * STREAM_CHUNKS, sql_per_chunk=1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


# ---- plain ASGI ----------------------------------------------------------------------------


async def lifespan(receive: Callable[[], Awaitable[Any]], send: Callable[..., Any]) -> None:
    """The ASGI lifespan protocol of an app with nothing to start or stop (uvicorn sends
    one)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi_app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[..., Any]
) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hi"})
        await send({"type": "websocket.close", "code": 1000})
        return
    path = scope["path"]
    if path == "/boom":
        raise KeyError("boom")
    if path.startswith("/mine/"):
        n = int(path.rsplit("/", 1)[1])
        for _ in record_own(n):
            await asyncio.sleep(0.001)  # let the other requests on the loop run
        body = json.dumps({"n": n, "sql": own_queries()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for i in range(STREAM_CHUNKS):
            _core.record_sql(sql_of(i, 0), 1000)
            await asyncio.sleep(STREAM_PAUSE_S)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


# ---- Flask ---------------------------------------------------------------------------------


def make_flask(**opts: Any) -> Any:
    import flask

    app = flask.Flask("nanoprof_tests")
    app.testing = True  # exceptions propagate out of wsgi_app

    @app.route("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        _core.record_sql(sql_of(user_id, 0), 2000)
        time.sleep(0.001)
        return {"id": user_id}

    @app.route("/mine/<int:n>")
    def mine(n: int) -> Any:
        for _ in record_own(n):
            time.sleep(0.001)
        return {"n": n, "sql": own_queries()}

    @app.route("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            for i in range(STREAM_CHUNKS):
                _core.record_sql(sql_of(i, 0), 1000)
                time.sleep(STREAM_PAUSE_S)
                yield "x"

        return flask.Response(flask.stream_with_context(chunks()), mimetype="text/plain")

    @app.route("/boom")
    def boom() -> Any:
        raise KeyError("boom")

    PerformanceMiddleware(app, **options(**opts))
    return app


# ---- Starlette and FastAPI -----------------------------------------------------------------


def make_starlette(**opts: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Mount, Route

    async def user(request: Request) -> JSONResponse:
        user_id = request.path_params["user_id"]
        _core.record_sql(sql_of(user_id, 0), 2000)
        await asyncio.sleep(0.001)
        return JSONResponse({"id": user_id})

    def sync_user(request: Request) -> JSONResponse:
        # Runs in Starlette's thread pool: the request must still be current there.
        _core.record_sql(sql_of(request.path_params["user_id"], 0), 2000)
        return JSONResponse({"id": request.path_params["user_id"], "sql": own_queries()})

    async def mine(request: Request) -> JSONResponse:
        n = request.path_params["n"]
        for _ in record_own(n):
            await asyncio.sleep(0.001)
        return JSONResponse({"n": n, "sql": own_queries()})

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(_chunks(), media_type="text/plain")

    async def boom(request: Request) -> PlainTextResponse:
        raise KeyError("boom")

    async def ws(websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    from starlette.routing import WebSocketRoute

    app = Starlette(
        routes=[
            Route("/users/{user_id:int}", user),
            Route("/sync/{user_id:int}", sync_user),
            Route("/mine/{n:int}", mine),
            Route("/stream", stream),
            Route("/boom", boom),
            Mount("/api", routes=[Route("/items/{item_id}", user_item)]),
            WebSocketRoute("/ws", ws),
        ]
    )
    app.add_middleware(PerformanceMiddleware, **options(**opts))
    return app


async def _chunks() -> AsyncIterator[bytes]:
    """A streamed body that records a query before each chunk."""
    for i in range(STREAM_CHUNKS):
        _core.record_sql(sql_of(i, 0), 1000)
        await asyncio.sleep(STREAM_PAUSE_S)
        yield b"x"


async def user_item(request: Any) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"item": request.path_params["item_id"]})


def make_fastapi(**opts: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, Any]:
        _core.record_sql(sql_of(user_id, 0), 2000)
        await asyncio.sleep(0.001)
        return {"id": user_id}

    @app.get("/mine/{n}")
    async def mine(n: int) -> dict[str, Any]:
        for _ in record_own(n):
            await asyncio.sleep(0.001)
        return {"n": n, "sql": own_queries()}

    @app.get("/stream")
    async def stream() -> Any:
        from fastapi.responses import StreamingResponse

        return StreamingResponse(_chunks(), media_type="text/plain")

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("boom")

    app.add_middleware(PerformanceMiddleware, **options(**opts))
    return app


# ---- what the servers load (python -m uvicorn apps:..., gunicorn apps:...) -----------------

_PRODUCTION = os.environ.get("NANOPROF_TEST_PRODUCTION") == "1"


def served(name: str) -> Any:
    """The app `name` as a server process builds it (production from the environment)."""
    if name == "wsgi":
        return PerformanceMiddleware(wsgi_app, **options(_PRODUCTION))
    if name == "asgi":
        return PerformanceMiddleware(asgi_app, **options(_PRODUCTION))
    return {"flask": make_flask, "starlette": make_starlette, "fastapi": make_fastapi}[name](
        production=_PRODUCTION
    )


def __getattr__(name: str) -> Any:
    # gunicorn/uvicorn import "apps:served_flask" etc.; built on first access only, so the
    # in-process tests that import this module build nothing they do not use.
    if name.startswith("served_"):
        app = served(name[len("served_") :])
        globals()[name] = app
        return app
    raise AttributeError(name)
