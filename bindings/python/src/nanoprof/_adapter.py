"""What the WSGI, ASGI and Django adapters share, so that each stays a thin layer over the
one C core (`_core.Middleware` and its `Request`): telling WSGI from ASGI applications, and
turning the core's byte headers and integer statuses into what each protocol wants.

Nothing here runs per request except the small conversions, which only run for dashboard
and ?profile=json responses (the ordinary path hands the core's headers through as bytes).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

Header = tuple[bytes, bytes]

# Option names of PerformanceMiddleware, in two groups: the first go to _core.configure()
# (they belong to the runtime: the store, the SQL thresholds), the rest to _core.Middleware.
# Django reads settings.NANOPROF against the union, to name a misspelt key.
RUNTIME_OPTIONS: tuple[str, ...] = (
    "slow_query_threshold_ms",
    "n_plus_one_threshold",
    "max_history",
    "enabled",
    "production",
    "stack_sample_every",
    "stack_sample_interval_ms",
)
MIDDLEWARE_OPTIONS: tuple[str, ...] = (
    "dashboard_path",
    "token",
    "sample_every",
    "slow_request_ms",
    "headers",
    "route_rules",
    "default_route_rules",
    "budgets",
    "max_routes",
    "max_n_plus_one",
    "refresh_seconds",
    "dashboard_items",
    "slow_log",
)


def is_asgi(app: object) -> bool:
    """True for an ASGI 3 application: a coroutine function, or an object whose __call__ is
    one (Starlette, FastAPI, Django's ASGIHandler).  asgiref's markcoroutinefunction()
    marks sync-looking callables as coroutine functions; its marker counts too."""
    call = (
        app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    )
    for candidate in (app, call):
        if candidate is not None and (
            inspect.iscoroutinefunction(candidate)
            or getattr(candidate, "_is_coroutine", None) is not None
        ):
            return True
    return False


def status_line(status: int) -> str:
    """'200 OK' for 200: WSGI wants the reason phrase too."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def str_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> list[tuple[str, str]]:
    """The core's headers as WSGI/Django want them.  Latin-1 maps every byte to one
    character, and the core only ever writes visible ASCII anyway.  Pairs that are str
    already (the dashboard's answer to wsgi_begin) pass as they are."""
    return [
        (
            name.decode("latin-1") if isinstance(name, bytes) else name,
            value.decode("latin-1") if isinstance(value, bytes) else value,
        )
        for name, value in headers
    ]


def json_headers(body: bytes) -> list[Header]:
    """Headers of a ?profile=json response: the profile replaces the application's body."""
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]


def frameworks_of(app: Any) -> set[str]:
    """The top-level packages an application object (or the bound method given as one)
    and its base classes come from: {'flask'} for a Flask app or a subclass of one,
    {'fastapi', 'starlette'} for FastAPI, {'starlette'} for the middleware Starlette hands
    to add_middleware, and so on."""
    owner = getattr(app, "__self__", app)
    return {(cls.__module__ or "").partition(".")[0] for cls in type(owner).__mro__}
