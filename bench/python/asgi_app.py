"""The app bench_asgi.py loads under uvicorn: a Starlette endpoint returning a small JSON
document, bare or under a profiler chosen by NANOPROF_BENCH_VARIANT (bare, nanoprof, pure)."""

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


def _app():
    app = Starlette(routes=[Route("/items/{id:int}", item)])
    variant = os.environ.get("NANOPROF_BENCH_VARIANT", "bare")
    if variant == "nanoprof":
        import nanoprof

        return nanoprof.PerformanceMiddleware(app)
    if variant == "pure":
        import pure_python

        return pure_python.PurePythonMiddleware(app)
    if variant != "bare":
        raise SystemExit(f"NANOPROF_BENCH_VARIANT={variant!r}: use bare, nanoprof or pure")
    return app


app = _app()
