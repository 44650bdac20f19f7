"""SQLAlchemy 2.x: the dialect's execution events, each running the DBAPI cursor call itself.

SQLAlchemy hands every statement to its dialect through `do_execute`, `do_executemany` and
`do_execute_no_params`, and lets a listener of the event of the same name run the cursor call
instead (a listener that returns True has done it).  The hook's listeners run it through the
dialect's own method, timed: the statement is the SQL the driver gets (TextClause and ORM
statements are compiled to text by then), an executemany is one query with rows = parameter
sets, an insertmanyvalues batch one query each, and a failed call is recorded with the
DBAPI's exception, which then goes on to SQLAlchemy unchanged.  While it runs, the guard
(`active`) keeps the driver's own hook underneath from recording it again.

Why not the engine events (`before_cursor_execute` / `after_cursor_execute` /
`handle_error`), as before: an engine with any listener of those makes SQLAlchemy send
every statement through its engine-level event dispatch, at a cost of its own about as large
as the profiler's: with listeners that do nothing, a page of the demo app (two queries) ran
151,000 more instructions, 2.4 % (bench/python/bench_demo.py --estimate, variant `events`).
Dialect events are looked up only where the cursor call is made.

Async engines (AsyncEngine, or an Engine whose dialect is async): SQLAlchemy runs the cursor
call in a greenlet whose stack holds only SQLAlchemy's frames, the application's await
being in the parent greenlet, the task's, suspended where it switched to this one.  The
query is finished here with that greenlet's frame as where its call site is looked for
first (`caller=`); before, it was finished from the task, by awaiting a coroutine through
SQLAlchemy's `await_`, at the cost of two greenlet switches per query.

A listener registered before nanoprof's that runs the cursor call itself (returns True)
keeps nanoprof's from running: such queries are not recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Live, Undo, active

# The dialect events the hook listens to.
EVENTS = ("do_execute", "do_executemany", "do_execute_no_params")


def _module() -> Any:
    import sqlalchemy
    import sqlalchemy.event

    return sqlalchemy


def _parent_frame() -> Callable[[], Any]:
    """What gives the frame the task's greenlet switched to this one from, or None (not in a
    greenlet, no parent, or greenlet not importable: then the call site is looked for on the
    running stack only)."""
    try:
        from greenlet import getcurrent
    except ImportError:
        return lambda: None

    def parent_frame() -> Any:
        parent = getcurrent().parent
        return parent.gr_frame if parent is not None else None

    return parent_frame


class _Hook:
    """The three listeners of one install, closing over one recorder."""

    def __init__(self, recorder: Live) -> None:
        self.recorder = recorder
        self.parent_frame = _parent_frame()

    def execute(self, cursor: Any, statement: Any, parameters: Any, context: Any) -> Any:
        return self._run(context, "do_execute", (cursor, statement, parameters, context),
                         statement, parameters, 0)

    def executemany(self, cursor: Any, statement: Any, parameters: Any, context: Any) -> Any:
        rows = len(parameters) if isinstance(parameters, (list, tuple)) else 0
        return self._run(context, "do_executemany", (cursor, statement, parameters, context),
                         statement, parameters[0] if rows else None, rows)

    def execute_no_params(self, cursor: Any, statement: Any, context: Any) -> Any:
        return self._run(context, "do_execute_no_params", (cursor, statement, context),
                         statement, None, 0)

    def _run(self, context: Any, method: str, args: tuple[Any, ...], statement: Any,
             parameters: Any, rows: int) -> Any:
        """The dialect's `method`(*args), timed: True (done), or None to let SQLAlchemy run it
        (no execution context to find the dialect by, or a query already being timed)."""
        if context is None or active.get():
            return None
        dialect = context.dialect
        is_async = dialect.is_async
        t = self.recorder.start_async() if is_async else self.recorder.start()
        if not t:
            return None
        token = active.set(True)
        try:
            getattr(dialect, method)(*args)
        except BaseException as exc:
            _reset(token)
            self._finish(t, is_async, statement, parameters, rows, exc)
            raise
        _reset(token)
        self._finish(t, is_async, statement, parameters, rows, None)
        return True

    def _finish(self, t: int, is_async: bool, statement: Any, parameters: Any, rows: int,
                error: Any) -> None:
        sql = statement if type(statement) is str else _text(statement)
        if not is_async:
            self.recorder.finish(t, sql, parameters, rows, error)
            return
        self.recorder.finish_async(t, sql, parameters, rows, error, caller=self.parent_frame())


def _reset(token: Any) -> None:
    """The guard back as it was; never raises into the query (a token of another context,
    which should not happen, leaves the guard down)."""
    try:
        active.reset(token)
    except ValueError:
        active.set(False)


def _text(statement: Any) -> str:
    try:
        return str(statement)
    except Exception:
        return f"<{type(statement).__name__}>"


def install(target: Any, recorder: Live) -> Undo:
    sqlalchemy = _module()
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if target is None or target is sqlalchemy:
        target = Engine
    sync_engine = getattr(target, "sync_engine", None)  # AsyncEngine
    if isinstance(sync_engine, Engine):
        target = sync_engine
    if not (target is Engine or isinstance(target, Engine)):
        raise TypeError(
            f"QueryTimer: SQLAlchemy can be timed as an Engine, an AsyncEngine or the Engine "
            f"class (every engine), got {type(target).__name__}"
        )
    hook = _Hook(recorder)
    listeners = tuple(zip(EVENTS, (hook.execute, hook.executemany, hook.execute_no_params)))
    for name, fn in listeners:
        event.listen(target, name, fn)

    def undo() -> None:
        for name, fn in listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    return undo
