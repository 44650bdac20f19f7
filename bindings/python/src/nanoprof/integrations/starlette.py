"""Starlette and FastAPI phase hooks.  Routing is Router.__call__, which matches the routes
in order (not Router.app: each router binds that method when it is made, before any
middleware is mounted).  The handler is Route.handle, and FastAPI's APIRoute.handle, which
overrides it.  The route template is the route's path, prefixed by the path of the Mounts
it sits under ("/api" + "/users/{id}").  Middleware (Starlette's and the app's own) counts
as middleware; a streamed response is sent inside handle, so it counts as handler."""

from __future__ import annotations

import sys
from typing import Any

from .. import _core
from . import _patch


def _path(args: tuple[Any, ...]) -> str | None:
    route, scope = args[0], args[1]
    path: str | None = getattr(route, "path", None)
    if path is None:
        return None
    # A Mount moves what it matched into root_path; app_root_path is where the app itself
    # was mounted by the server, which is not part of the template.
    root = scope.get("root_path", "")
    base = scope.get("app_root_path", root)
    return root[len(base) :] + path if root.startswith(base) else path


def install() -> None:
    """Patches Starlette's router once, and FastAPI's APIRoute when FastAPI is loaded."""
    from starlette import routing

    _patch(routing.Router, "__call__", _core.PHASE_ROUTING)
    _patch(routing.Route, "handle", _core.PHASE_HANDLER, _path)
    fastapi_routing = sys.modules.get("fastapi.routing")
    if fastapi_routing is not None:
        _patch(fastapi_routing.APIRoute, "handle", _core.PHASE_HANDLER, _path)
