"""``Profiler``: named spans and flame graphs, inside a request or on their own.

Inside a request, ``trace(name)`` is a span of the request's profile.  Outside one, the
outermost ``trace`` is a profile of its own (method ``TRACE``, path ``name``) kept in the
profiler's own store, so that ``dump_flamegraph()`` shows what this profiler traced.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from . import _core

F = TypeVar("F", bound=Callable[..., Any])

_FORMATS = {".svg": "svg", ".json": "trace", ".txt": "collapsed", ".folded": "collapsed",
            ".collapsed": "collapsed"}


class _Trace:
    """One ``with profiler.trace(name):`` block, also usable as a decorator."""

    __slots__ = ("_profiler", "_name", "_span", "_own")

    def __init__(self, profiler: Profiler, name: str) -> None:
        self._profiler = profiler
        self._name = name
        self._span = -1
        self._own = False

    def __enter__(self) -> _Trace:
        if _core.get_current_profile() is None:
            self._own = _core.start_profile(method="TRACE", path=self._name) is not None
        else:
            self._span = _core.span_begin(self._name)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own:
            self._own = False
            self._profiler.store.push_current()
        else:
            _core.span_end(self._span)
            self._span = -1

    def __call__(self, func: F) -> F:
        profiler, name = self._profiler, self._name
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def traced_async(*args: Any, **kwargs: Any) -> Any:
                with profiler.trace(name):
                    return await func(*args, **kwargs)

            return traced_async  # type: ignore[return-value]

        @functools.wraps(func)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with profiler.trace(name):
                return func(*args, **kwargs)

        return traced  # type: ignore[return-value]


class Profiler:
    """Spans for code of your choosing, and flame graphs of them."""

    def __init__(self, capacity: int = 1000) -> None:
        self.store: _core.ProfileStore = _core.ProfileStore(capacity)

    def trace(self, name: str) -> _Trace:
        """A span named ``name``: ``with profiler.trace("render"): ...`` or as a decorator."""
        if not isinstance(name, str):
            raise TypeError(f"trace() takes a str name, not {type(name).__name__}")
        return _Trace(self, name)

    def dump_flamegraph(self, path: str | os.PathLike[str]) -> Path:
        """Writes what this profiler traced (or, if nothing, the stored requests) to ``path``.

        The suffix chooses the format: ``.svg`` a flame graph, ``.json`` Chrome's trace format
        (Perfetto, chrome://tracing), ``.txt``/``.folded``/``.collapsed`` collapsed stacks.
        """
        store = self.store if len(self.store) else _core.get_store()
        return _dump(store, path)


def _dump(store: _core.ProfileStore, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    kind = _FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(
            f"dump_flamegraph({str(path)!r}): the suffix must be one of {', '.join(_FORMATS)}"
        )
    target.write_text(store.render(kind), encoding="utf-8")
    return target


def dump_flamegraph(path: str | os.PathLike[str]) -> Path:
    """Writes the stored requests' flame graph (format by suffix, as Profiler's) to ``path``."""
    return _dump(_core.get_store(), path)
