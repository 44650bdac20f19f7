"""``Profiler``: named spans and flame graphs, inside a request or on their own.

Inside a request, ``trace(name)`` is a span of the request's profile.  Outside one, the
outermost ``trace`` is a profile of its own (method ``TRACE``, path ``name``) kept in the
profiler's own store, so that ``dump_flamegraph()`` shows what this profiler traced.

``Profiler(sample=True)`` also samples the Python call stacks of every request its blocks
run in (its own, or the enclosing one for the block's duration), in C, every
``interval_ms`` of wall time; ``dump_flamegraph()`` then draws those stacks.
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
# The same suffixes for sampled stacks; "x.speedscope.json" is speedscope's file format.
_SAMPLE_FORMATS = {"svg": "svg", "trace": "chrome", "collapsed": "collapsed"}


class _Trace:
    """One ``with profiler.trace(name):`` block, also usable as a decorator."""

    __slots__ = ("_profiler", "_name", "_span", "_own", "_sampled")

    def __init__(self, profiler: Profiler, name: str) -> None:
        self._profiler = profiler
        self._name = name
        self._span = -1
        self._own = False
        self._sampled = False

    def __enter__(self) -> _Trace:
        if _core.get_current_profile() is None:
            self._own = _core.start_profile(method="TRACE", path=self._name) is not None
        else:
            self._span = _core.span_begin(self._name)
        if self._profiler.sample:
            # False when the request is sampled already (an outer block, ?profile=flame):
            # then that one stops it.
            self._sampled = _core.sample_current(self._profiler.interval_ms)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sampled:
            self._sampled = False
            _core.unsample_current()
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
    """Spans for code of your choosing, and flame graphs of them.

    ``sample=True`` samples the call stacks of the requests its blocks run in, every
    ``interval_ms`` (default: the ``stack_sample_interval_ms`` option, 1 ms).
    """

    def __init__(
        self, capacity: int = 1000, *, sample: bool = False, interval_ms: float | None = None
    ) -> None:
        if interval_ms is not None:
            if isinstance(interval_ms, bool) or not isinstance(interval_ms, (int, float)):
                raise TypeError(
                    f"Profiler(interval_ms=...) takes a number of milliseconds, "
                    f"not {type(interval_ms).__name__}"
                )
            if not interval_ms >= 0.1:
                raise _core.ConfigError(
                    f"Profiler(interval_ms={interval_ms!r}): use at least 0.1 ms"
                )
        self.store: _core.ProfileStore = _core.ProfileStore(capacity)
        self.sample = bool(sample)
        self.interval_ms = interval_ms

    def trace(self, name: str) -> _Trace:
        """A span named ``name``: ``with profiler.trace("render"): ...`` or as a decorator."""
        if not isinstance(name, str):
            raise TypeError(f"trace() takes a str name, not {type(name).__name__}")
        return _Trace(self, name)

    def dump_flamegraph(self, path: str | os.PathLike[str]) -> Path:
        """Writes what this profiler traced (or, if nothing, the stored requests) to ``path``.

        The suffix chooses the format: ``.svg`` a flame graph, ``.json`` Chrome's trace format
        (Perfetto, chrome://tracing), ``.txt``/``.folded``/``.collapsed`` collapsed stacks.
        A sampling profiler draws the sampled call stacks (``.speedscope.json``: speedscope's
        format); otherwise the spans.
        """
        store = self.store if len(self.store) else _core.get_store()
        return _dump(store, path, samples=self.sample)


def _dump(store: _core.ProfileStore, path: str | os.PathLike[str], samples: bool = False) -> Path:
    target = Path(path)
    kind = _FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(
            f"dump_flamegraph({str(path)!r}): the suffix must be one of {', '.join(_FORMATS)}"
        )
    if samples:
        fmt = _SAMPLE_FORMATS[kind]
        if target.name.lower().endswith(".speedscope.json"):
            fmt = "speedscope"
        text = store.render_samples(fmt)
    else:
        text = store.render(kind)
    target.write_text(text, encoding="utf-8")
    return target


def dump_flamegraph(path: str | os.PathLike[str]) -> Path:
    """Writes the stored requests' flame graph (format by suffix, as Profiler's) to ``path``."""
    return _dump(_core.get_store(), path)
