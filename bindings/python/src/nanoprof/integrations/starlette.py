"""Starlette and FastAPI phase hooks.  Routing is Router.__call__, which matches the routes
in order (not Router.app: each router binds that method when it is made, before any
middleware is mounted).  The handler is Route.handle, and FastAPI's APIRoute.handle, which
overrides it.  The route template is the route's path, prefixed by the path of the Mounts
it sits under ("/api" + "/users/{id}").  Middleware (Starlette's and the app's own) counts
as middleware; a streamed response is sent inside handle, so it counts as handler.  The
hooks are C callables (_core.PhaseHook, run on every request) that return Starlette's own
coroutines: the handler phase ends with the last body message, which the ASGI adapter's
send marks."""

from __future__ import annotations

import sys

from .. import _core
from . import _replace


def install() -> None:
    """Patches Starlette's router once, and FastAPI's APIRoute when FastAPI is loaded."""
    from starlette import routing

    _replace(routing.Router, "__call__", lambda f: _core.PhaseHook(f, _core.PHASE_ROUTING))
    handler = lambda f: _core.PhaseHook(f, _core.PHASE_HANDLER, route=True)  # noqa: E731
    _replace(routing.Route, "handle", handler)
    fastapi_routing = sys.modules.get("fastapi.routing")
    if fastapi_routing is not None:
        _replace(fastapi_routing.APIRoute, "handle", handler)
