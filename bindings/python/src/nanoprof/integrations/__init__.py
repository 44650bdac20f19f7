"""Phase hooks for frameworks: the patches that tell the running request when routing and
the handler begin and end, and which route template matched.

Each framework module patches a few methods once (idempotently, the first time a
middleware is mounted on such an app), in the manner of sentry-python's integrations.  A
patched method marks its phase with `_core.mark_phase`, which reads the request's context
variable and returns False when no profiled request is current: outside one, that read is
the whole cost.  When the method returns, the request goes back to the middleware phase.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from .. import _core

_RouteOf = Callable[[tuple[Any, ...]], "str | None"]

_PHASE_MIDDLEWARE = _core.PHASE_MIDDLEWARE
_mark_phase = _core.mark_phase
_mark_route = _core.mark_route
_lock = threading.Lock()


def _around(
    func: Callable[..., Any], phase: int, route_of: _RouteOf | None = None
) -> Callable[..., Any]:
    """`func` marking `phase` (and the route template `route_of(args)`) while it runs."""

    def marked(*args: Any, **kwargs: Any) -> Any:
        if not _mark_phase(phase):
            return func(*args, **kwargs)
        if route_of is not None:
            _set_route(route_of, args)
        try:
            return func(*args, **kwargs)
        finally:
            _mark_phase(_PHASE_MIDDLEWARE)

    return marked


def _around_async(
    func: Callable[..., Any], phase: int, route_of: _RouteOf | None = None
) -> Callable[..., Any]:
    """The same for a coroutine function (the wrapper is one too, so frameworks that test
    for one still see it)."""

    async def marked(*args: Any, **kwargs: Any) -> Any:
        if not _mark_phase(phase):
            return await func(*args, **kwargs)
        if route_of is not None:
            _set_route(route_of, args)
        try:
            return await func(*args, **kwargs)
        finally:
            _mark_phase(_PHASE_MIDDLEWARE)

    return marked


def _set_route(route_of: _RouteOf, args: tuple[Any, ...]) -> None:
    # A template the framework cannot give leaves the core's own rules to find one; a hook
    # must never break the request it observes.
    try:
        route = route_of(args)
    except Exception:
        return
    if route:
        _mark_route(route)


def _patch(owner: type, name: str, phase: int, route_of: _RouteOf | None = None) -> None:
    """Replaces `owner.name` (defined on `owner` itself) by its marked version, once."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        marking = _around_async if inspect.iscoroutinefunction(func) else _around
        return marking(func, phase, route_of)

    _replace(owner, name, wrap)


def _replace(
    owner: type, name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    """Sets `owner.name` to `wrap(owner.name)` unless a previous call did: the wrapper
    carries a marker, so importing twice, mounting two middlewares or reloading a module
    of ours never stacks the hooks."""
    with _lock:
        func = owner.__dict__.get(name)
        if func is None or getattr(func, "__nanoprof_hook__", False):
            return
        wrapper = functools.wraps(func)(wrap(func))
        wrapper.__nanoprof_hook__ = True  # type: ignore[attr-defined]
        setattr(owner, name, wrapper)
