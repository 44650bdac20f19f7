"""psycopg 3: its cursors are Python classes, so the module-wide hook patches `execute` and
`executemany` of `Cursor`, `AsyncCursor`, `ServerCursor` and `AsyncServerCursor` (the other
cursor classes, ClientCursor and RawCursor, inherit them; `Connection.execute` goes
through a cursor).  One connection is hooked by giving it timed subclasses of its
`cursor_factory` and `server_cursor_factory`.

Not timed: `Cursor.stream()` and `copy()` (their time is spread over the iteration the
application drives) and queries queued in pipeline mode, whose execute returns before the
server answered (the time recorded is the queueing's).
"""

from __future__ import annotations

from typing import Any

from ._base import (
    Live,
    ClassCache,
    Undo,
    async_execute,
    async_executemany,
    patch,
    sync_execute,
    sync_executemany,
)


def _module() -> Any:
    import psycopg

    return psycopg


def _methods(recorder: Live, is_async: bool) -> dict[str, Any]:
    one, many = (async_execute, async_executemany) if is_async else (sync_execute, sync_executemany)
    return {
        "execute": lambda f: one(f, recorder, "params"),
        "executemany": lambda f: many(f, recorder, "params_seq"),
    }


def install(target: Any, recorder: Live) -> Undo:
    psycopg = _module()
    if target is None or target is psycopg:
        undos = [
            patch(cls, _methods(recorder, is_async))
            for cls, is_async in (
                (psycopg.Cursor, False),
                (psycopg.ServerCursor, False),
                (psycopg.AsyncCursor, True),
                (psycopg.AsyncServerCursor, True),
            )
        ]

        def undo() -> None:
            for u in reversed(undos):
                u()

        return undo
    if isinstance(target, (psycopg.Connection, psycopg.AsyncConnection)):
        return _install_connection(target, recorder)
    raise TypeError(
        f"QueryTimer: psycopg can be timed as the module (psycopg) or as a connection "
        f"(psycopg.Connection, psycopg.AsyncConnection), got {type(target).__name__}"
    )


def _install_connection(conn: Any, recorder: Live) -> Undo:
    psycopg = _module()
    is_async = isinstance(conn, psycopg.AsyncConnection)

    def make(base: type) -> type:
        wraps = _methods(recorder, is_async)
        body = {name: wrap(getattr(base, name)) for name, wrap in wraps.items()}
        body["__module__"] = __name__
        return type(f"Timed{base.__name__}", (base,), body)

    classes = ClassCache(make)
    before = conn.cursor_factory, conn.server_cursor_factory
    conn.cursor_factory = classes(before[0])
    conn.server_cursor_factory = classes(before[1])

    def undo() -> None:
        conn.cursor_factory, conn.server_cursor_factory = before

    return undo
