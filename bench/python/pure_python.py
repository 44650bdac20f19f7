"""A straightforward pure-Python implementation of what nanoprof's Python layer does per
request: the anchor the benchmarks compare against in the same run.

It is what one would write without a C core: a profile object, a context variable, two clock
reads, the X-Profile header string; and an ASGI middleware that wraps `send` to add the headers.
It is not used by the package.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

_current: contextvars.ContextVar[PyProfile | None] = contextvars.ContextVar("py_profile", default=None)


def _fmt(ns: int) -> str:
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 100_000:
        return f"{ns / 1_000:.1f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f}ms"
    return f"{ns / 1_000_000_000:.2f}s"


class PyProfile:
    __slots__ = ("method", "path", "start_ns", "total_ns", "middleware_ns", "routing_ns",
                 "handler_ns", "sql_total_ns", "sql_queries")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.start_ns = time.perf_counter_ns()
        self.total_ns = self.middleware_ns = self.routing_ns = self.handler_ns = 0
        self.sql_total_ns = 0
        self.sql_queries: list[tuple[str, int]] = []

    def to_header(self) -> str:
        return (f"total={_fmt(self.total_ns)} handler={_fmt(self.handler_ns)} "
                f"sql={_fmt(self.sql_total_ns)}({len(self.sql_queries)}q) "
                f"middleware={_fmt(self.middleware_ns)} routing={_fmt(self.routing_ns)}")


def profile_handler(func: Callable[..., Any]) -> Callable[..., Any]:
    qualname = func.__qualname__

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        p = PyProfile("CALL", qualname)
        token = _current.set(p)
        try:
            result = func(*args, **kwargs)
        finally:
            end = time.perf_counter_ns()
            p.handler_ns = p.total_ns = end - p.start_ns
            _current.reset(token)
        header = p.to_header()
        if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], dict):
            result = (result[0], result[1], {**result[2], "X-Profile": header})
        return result

    return wrapper


Scope = MutableMapping[str, Any]


class PurePythonMiddleware:
    """ASGI middleware: profile per request, X-Profile/Server-Timing/X-Query-Count headers."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        p = PyProfile(scope["method"], scope["path"])
        token = _current.set(p)

        async def send_wrapper(message: Scope) -> None:
            if message["type"] == "http.response.start":
                now = time.perf_counter_ns()
                p.total_ns = p.handler_ns = now - p.start_ns
                headers = list(message.get("headers", []))
                headers.append((b"x-profile", p.to_header().encode()))
                headers.append((b"server-timing",
                                f"total;dur={p.total_ns / 1e6:.3f}".encode()))
                headers.append((b"x-query-count", str(len(p.sql_queries)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            p.total_ns = time.perf_counter_ns() - p.start_ns
            self.requests += 1
            _current.reset(token)
