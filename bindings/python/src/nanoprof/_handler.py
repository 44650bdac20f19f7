"""``@profile_handler``: profiles one handler, sync or async.

A sync handler is wrapped by a C callable (no Python frame of ours per call); an async one by
the smallest coroutine that can await it, calling into C before and after.  Alone, a call is
profiled as a request of its own and X-Profile is attached to its response; under the
middleware, it only marks the handler phase of the middleware's request.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from . import _core

F = TypeVar("F", bound=Callable[..., Any])


def profile_handler(
    func: F | None = None, *, sample: bool = False, interval_ms: float | None = None
) -> Any:
    """Profiles ``func`` (a view, an endpoint, any function).

    Errors raised by the handler end the profile (status 500) and propagate unchanged.
    ``@profile_handler(sample=True)`` also samples the call's Python stacks every
    ``interval_ms`` (default: the ``stack_sample_interval_ms`` option) into its profile.
    """
    if func is None:
        return functools.partial(profile_handler, sample=sample, interval_ms=interval_ms)
    if not callable(func):
        raise TypeError(f"@profile_handler takes a function, not {type(func).__name__}")
    if inspect.iscoroutinefunction(func):
        return _wrap_async(func, sample, interval_ms)
    inner = _sampling(func, interval_ms) if sample else func
    wrapper = _core.profile_handler_sync(inner)
    functools.update_wrapper(wrapper, func)
    return wrapper


def _sampling(func: Callable[..., Any], interval_ms: float | None) -> Callable[..., Any]:
    """``func`` sampled: the request the C wrapper began is current when this runs, and its
    end stops the sampling.  This frame is nanoprof's, so no sample shows it."""
    start = _core.sample_current

    def sampled(*args: Any, **kwargs: Any) -> Any:
        start(interval_ms)
        return func(*args, **kwargs)

    return sampled


def _wrap_async(
    func: Callable[..., Any], sample: bool = False, interval_ms: float | None = None
) -> Callable[..., Any]:
    qualname = getattr(func, "__qualname__", repr(func))
    enter = _core.handler_enter
    leave = _core.handler_exit
    start = _core.sample_current

    @functools.wraps(func)
    async def profiled(*args: Any, **kwargs: Any) -> Any:
        token = enter(args, qualname)
        if sample:
            start(interval_ms)
        try:
            result = await func(*args, **kwargs)
        except BaseException:
            leave(token, None, True)
            raise
        return leave(token, result, False)

    return profiled
