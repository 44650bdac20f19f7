"""What every database hook shares: the rule that the outermost hook records, the
conversion of a query object to text, the wrappers around a driver's execute methods, and
the class patches that uninstall restores exactly.

A hook is a thin adapter over `_core.QueryRecorder`: `start()` before the query is sent,
`finish()` after it returned or raised.  Everything costly (redaction, fingerprints, call
sites, the slow log) happens in C inside `finish`, and `start` returns 0 when nothing would
be recorded, so outside a profiled request the wrappers cost a context-variable read and
one C call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .. import _core

Undo = Callable[[], None]

# True while a hook is timing a query in this context.  An ORM-level hook (Django,
# SQLAlchemy) sets it around the query, so the driver-level hook underneath (psycopg,
# asyncpg, ...) sees it and records nothing: one query, one record.  Driver hooks set it
# too, which keeps two stacked hooks (two timers, or a per-connection hook over a
# module-wide one) from recording a query twice.  A ContextVar, not a thread-local: in
# SQLAlchemy's asyncio mode greenlets and tasks interleave on one thread, and SQLAlchemy
# runs each greenlet in the context of the task that spawned it.
# The coroutine wrappers (ext/timed.c) keep the other half of the guard: a per-thread count
# of their steps running now, which covers the same code for far less than a ContextVar set
# and reset per query; guarded() asks both.  It is a QueryGuard (ext/guard.c): a
# ContextVar with ContextVar's get/set/reset that also counts the sets not reset yet, so
# that the C wrappers skip reading it while none is.
active = _core.QueryGuard("nanoprof_db_query_active")
_in_timed_step = _core.in_timed_step


def guarded() -> bool:
    """Is a hook timing a query here already (so that a hook underneath records nothing)?"""
    return active.get() or _in_timed_step()


def sql_text(query: object, context: object = None) -> str | bytes:
    """The text of `query` for the profile: str and bytes as they are (the extension
    decodes bytes), psycopg's `sql.Composed`/`sql.SQL` through `as_string(context)`,
    anything else (SQLAlchemy's TextClause, ...) through str().  Never raises: a query the
    application ran must not fail because its text could not be rendered."""
    kind = type(query)
    if kind is str or kind is bytes:
        return query  # type: ignore[return-value]
    try:
        as_string = getattr(query, "as_string", None)
        if as_string is not None:
            text = as_string(context)
        else:
            text = str(query)
        if isinstance(text, (str, bytes)):
            return text
    except Exception:
        pass
    return f"<{kind.__name__}>"


def batch(seq: Any) -> tuple[Any, Any, int]:
    """(the sequence to run, its first parameter set, its length) for an executemany.
    An iterator is consumed here, so it is turned into a list that the driver then gets:
    counting must not eat the application's rows."""
    if not isinstance(seq, (list, tuple)):
        seq = list(seq)
    return seq, (seq[0] if seq else None), len(seq)


# The recorder as the hooks of one install see it: `off()` (at uninstall) makes `start`
# return 0, so objects that keep a timed class after uninstall (a connection made while
# installed, with its timed cursors) stop recording instead of going on with the
# uninstalled timer's recorder.  A C type (ext/record.c), which the C wrappers call directly.
Live = _core.LiveRecorder


# ---- wrappers of a driver's methods -------------------------------------------------------
# The wrappers are C callables (_core.TimedMethod, ext/timed.c), since every query the
# application runs goes through one: a call that records nothing costs a ContextVar read,
# an attribute read and one C call (start() returns 0 outside a request, with no observer
# and no slow log), and one that records adds no Python frame to the recording.  They do
# what this Python did:
#
#     def execute(self, query, *args, **kwargs):
#         if active.get() or not (t := recorder.start()):
#             return func(self, query, *args, **kwargs)
#         params, rows = (args[0] if args else kwargs.get(pname)), 0   # many: batch()'s
#         token = active.set(True)
#         try:
#             result = func(self, query, *args, **kwargs)
#         except BaseException as exc:
#             recorder.finish(t, sql_text(query, self), params, rows, exc)
#             raise
#         finally:
#             active.reset(token)
#         recorder.finish(t, sql_text(query, self), params, rows)
#         return result
#
# The query's exception propagates as the driver raised it (the same object, its traceback
# without a frame of ours) and its result is returned untouched.  The coroutine form checks
# `active` and calls start_async() when called and then returns the driver's coroutine
# itself when nothing is to be recorded; otherwise an awaitable over it that sets `active`
# when first awaited (in the awaiting task's context), and resets it and records the query
# when the driver's coroutine returns or raises (CancelledError included).


def sync_execute(func: Callable[..., Any], recorder: Live, pname: str, many: bool = False) -> Any:
    """func(self, query, params=None, ...) timed; `pname` is the driver's keyword for params.
    With `many`, func(self, query, seq_of_params, ...) timed as one query of len(seq) rows
    (an iterator of parameter sets is consumed into a list, which the driver then gets: see
    batch())."""
    return _core.TimedMethod(func, recorder, guard=active, text=sql_text, pname=pname, many=many)


def sync_executemany(func: Callable[..., Any], recorder: Live, pname: str) -> Any:
    """func(self, query, seq_of_params, ...) timed as one query of len(seq) rows."""
    return sync_execute(func, recorder, pname, many=True)


def async_execute(func: Callable[..., Any], recorder: Live, pname: str, many: bool = False) -> Any:
    """The coroutine version of sync_execute (start_async: nothing thread-wide, since other
    tasks run on this thread while the query is awaited)."""
    return _core.TimedMethod(func, recorder, guard=active, text=sql_text, pname=pname, many=many,
                             asynchronous=True)


def async_executemany(func: Callable[..., Any], recorder: Live, pname: str) -> Any:
    """The coroutine version of sync_executemany."""
    return async_execute(func, recorder, pname, many=True)


def unrecorded(func: Callable[..., Any], asynchronous: bool = False) -> Any:
    """func(*args, **kwargs) run with the guard up, so that the queries it runs record
    nothing: housekeeping that is not the application's (a pool resetting a connection)."""
    return _core.TimedMethod(func, None, guard=active, text=sql_text, asynchronous=asynchronous)


# ---- class patches ----------------------------------------------------------------------------

_lock = threading.Lock()


def patch(owner: type, wraps: dict[str, Callable[[Any], Any]]) -> Undo:
    """Replaces each `owner.name` by `wrap(owner.name)` and returns the undo.  The undo puts
    back exactly what was there: the same object when `owner` defined it, nothing (the
    inherited method shows again) when it did not."""
    with _lock:
        done: list[tuple[str, bool, Any, Any]] = []
        for name, wrap in wraps.items():
            if not hasattr(owner, name):  # a method this version of the driver lacks
                continue
            own = name in owner.__dict__
            before = owner.__dict__.get(name)
            wrapper = wrap(getattr(owner, name))
            try:
                wrapper.__wrapped__ = getattr(owner, name)
                wrapper.__name__ = name
                wrapper.__qualname__ = f"{getattr(owner, '__qualname__', owner.__name__)}.{name}"
                wrapper.__nanoprof_hook__ = True
            except (AttributeError, TypeError):
                pass
            setattr(owner, name, wrapper)
            done.append((name, own, before, wrapper))

    def undo() -> None:
        with _lock:
            for name, own, before, wrapper in reversed(done):
                if owner.__dict__.get(name) is not wrapper:
                    # Someone patched over our wrapper since: putting the original back
                    # would drop their patch, so ours stays, passing every call through
                    # (QueryTimer.uninstall turns its Live off first).
                    continue
                if own:
                    setattr(owner, name, before)
                else:
                    delattr(owner, name)

    return undo


def undo_all(undos: list[Undo]) -> None:
    """Runs `undos` last first; all of them run even when one fails (the first error is
    raised after)."""
    error: BaseException | None = None
    while undos:
        try:
            undos.pop()()
        except Exception as exc:  # pragma: no cover - an undo failing is a bug to see
            error = error or exc
    if error is not None:
        raise error


class ClassCache:
    """Timed subclasses made once per (driver class): a cursor_factory or connection class
    given by the application is subclassed, not replaced, so its behaviour stays."""

    def __init__(self, make: Callable[[type], type]) -> None:
        self._make = make
        self._classes: dict[type, type] = {}
        self._timed: set[type] = set()

    def __call__(self, base: type) -> type:
        if base in self._timed:
            return base
        timed = self._classes.get(base)
        if timed is None:
            with _lock:
                timed = self._classes.get(base)
                if timed is None:
                    timed = self._make(base)
                    self._classes[base] = timed
                    self._timed.add(timed)
        return timed

    def is_timed(self, cls: type) -> bool:
        return cls in self._timed
