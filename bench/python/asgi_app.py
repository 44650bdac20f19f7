"""The app bench_asgi.py loads under uvicorn: a Starlette endpoint returning a small JSON
document, bare or under a profiler chosen by NANOPROF_BENCH_VARIANT: bare, nanoprof
(development mode: headers on every response), nanoprof-prod (production mode: headers only
on ?profile=1 with the token), pure (a pure-Python middleware), headers (no profiler, only
nanoprof's four response headers as fixed strings)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": int(request.path_params["id"]), "name": "widget",
                         "tags": ["a", "b", "c"], "price": 12.5})


# What nanoprof adds to a response of this app in development mode, as fixed strings: the
# "headers" variant adds them without profiling anything, to show what the server itself
# spends on four more response headers.
_HEADERS = [
    (b"x-profile", b"total=52.3us handler=31.0us sql=0ns(0q) middleware=21.2us routing=2.1us"),
    (b"server-timing", b"total;dur=0.052314, handler;dur=0.031002, sql;dur=0;desc=\"0 queries\", "
                       b"middleware;dur=0.021211, routing;dur=0.002101"),
    (b"x-query-count", b"0"),
    (b"x-slow-queries", b"0"),
]


class _SameHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def add(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self.app(scope, receive, add)


def _app():
    app = Starlette(routes=[Route("/items/{id:int}", item)])
    variant = os.environ.get("NANOPROF_BENCH_VARIANT", "bare")
    if variant in ("nanoprof", "nanoprof-prod"):
        import nanoprof

        if variant == "nanoprof-prod":
            return nanoprof.PerformanceMiddleware(app, production=True, token="bench-token")
        return nanoprof.PerformanceMiddleware(app, production=False)
    if variant == "headers":
        return _SameHeaders(app)
    if variant == "pure":
        import pure_python

        return pure_python.PurePythonMiddleware(app)
    if variant != "bare":
        raise SystemExit(f"NANOPROF_BENCH_VARIANT={variant!r}: use bare, nanoprof, "
                         "nanoprof-prod, pure or headers")
    return app


app = _app()
