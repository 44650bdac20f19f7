"""SQLAlchemy 2.x: the engine events around each DBAPI cursor call.

`before_cursor_execute` starts the clock and marks the query as being timed (so the
driver's own hook underneath records nothing), `after_cursor_execute` and `handle_error`
finish it.  The statement is the SQL the driver gets (TextClause and ORM statements are
already compiled to text there); an executemany is one query with rows = parameter sets.
The start travels on the execution context, under an attribute of this install only, so
two hooks on one engine (the Engine class and the engine itself) never share it.

Async engines (AsyncEngine, or an Engine whose dialect is async): SQLAlchemy runs the
events in a greenlet whose stack holds only SQLAlchemy's frames, the application's await
being in the task's greenlet.  The call site is read from the recording stack, so the
query is finished from the task, by awaiting a trivial coroutine through SQLAlchemy's own
`await_` (one greenlet switch per query).
"""

from __future__ import annotations

from typing import Any

from ._base import Live, Undo, active


def _module() -> Any:
    import sqlalchemy
    import sqlalchemy.event

    return sqlalchemy


def _await() -> tuple[Any, Any]:
    """SQLAlchemy's (await_, in_greenlet): await_only and a greenlet check before 2.1."""
    from sqlalchemy.util import concurrency

    await_ = getattr(concurrency, "await_", None) or getattr(concurrency, "await_only")
    in_greenlet = getattr(concurrency, "in_greenlet", None) or (lambda: True)
    return await_, in_greenlet


async def _finish_in_task(finish: Any, t: int, sql: Any, params: Any, rows: int,
                          error: Any) -> None:
    finish(t, sql, params, rows, error)


class _Hook:
    """The three listeners of one install, closing over one recorder."""

    def __init__(self, recorder: Live) -> None:
        self.recorder = recorder
        self.key = f"_nanoprof_query_{id(self):x}"
        self.await_, self.in_greenlet = _await()

    def before(self, conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any,
               executemany: bool) -> None:
        if context is None or active.get():
            return
        is_async = conn.dialect.is_async
        t = self.recorder.start_async() if is_async else self.recorder.start()
        if t:
            setattr(context, self.key, (t, active.set(True), is_async))

    def after(self, conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any,
              executemany: bool) -> None:
        self._finish(context, statement, parameters, executemany, None)

    def error(self, exception_context: Any) -> None:
        # Returns None: the exception SQLAlchemy raises stays the one it chose.
        self._finish(exception_context.execution_context, exception_context.statement,
                     exception_context.parameters, False, exception_context.original_exception)

    def _finish(self, context: Any, statement: Any, parameters: Any, executemany: bool,
                error: Any) -> None:
        pending = getattr(context, self.key, None) if context is not None else None
        if pending is None:
            return
        setattr(context, self.key, None)  # a context runs several batches (insertmanyvalues)
        t, token, is_async = pending
        try:
            active.reset(token)
        except ValueError:  # set in another context (should not happen): clear it here
            active.set(False)
        rows = 0
        if executemany or (error is not None and getattr(context, "executemany", False)):
            rows = len(parameters) if isinstance(parameters, (list, tuple)) else 0
            parameters = parameters[0] if rows else None
        sql = statement if type(statement) is str else _text(statement)
        if not is_async:
            self.recorder.finish(t, sql, parameters, rows, error)
            return
        if not self.in_greenlet():  # an async driver used without greenlet_spawn
            self.recorder.finish_async(t, sql, parameters, rows, error)
            return
        finishing = _finish_in_task(self.recorder.finish_async, t, sql, parameters, rows, error)
        try:
            self.await_(finishing)
        except Exception:
            # A listener must never raise into the query (in handle_error it would replace
            # the application's exception): record from here, without the call site.
            finishing.close()
            self.recorder.finish_async(t, sql, parameters, rows, error)


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
    listeners = (
        ("before_cursor_execute", hook.before),
        ("after_cursor_execute", hook.after),
        ("handle_error", hook.error),
    )
    for name, fn in listeners:
        event.listen(target, name, fn)

    def undo() -> None:
        for name, fn in listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    return undo
