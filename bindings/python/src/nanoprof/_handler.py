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


def profile_handler(func: F) -> F:
    """Profiles ``func`` (a view, an endpoint, any function).

    Errors raised by the handler end the profile (status 500) and propagate unchanged.
    """
    if not callable(func):
        raise TypeError(f"@profile_handler takes a function, not {type(func).__name__}")
    if inspect.iscoroutinefunction(func):
        return _wrap_async(func)  # type: ignore[return-value]
    wrapper = _core.profile_handler_sync(func)
    functools.update_wrapper(wrapper, func)
    return wrapper  # type: ignore[no-any-return]


def _wrap_async(func: Callable[..., Any]) -> Callable[..., Any]:
    qualname = getattr(func, "__qualname__", repr(func))
    enter = _core.handler_enter
    leave = _core.handler_exit

    @functools.wraps(func)
    async def profiled(*args: Any, **kwargs: Any) -> Any:
        token = enter(args, qualname)
        try:
            result = await func(*args, **kwargs)
        except BaseException:
            leave(token, None, True)
            raise
        return leave(token, result, False)

    return profiled
