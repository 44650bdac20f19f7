"""asyncpg: the module-wide hook patches the query methods of `asyncpg.Connection`
(execute, executemany, fetch, fetchrow, fetchval, fetchmany) and of `PreparedStatement`.
Pools hand out proxies that call the connection's class methods, so pool queries are timed
too.  One connection is hooked by moving it to a timed subclass (its class has __slots__,
so per-instance attributes are impossible); a Pool by doing so for the connections it
holds and making the class it connects with a timed one.

Why not `Connection.add_query_logger`: asyncpg calls the loggers later, from the event loop
(`loop.call_soon`), outside the task that ran the query, so the stack no longer shows the
application code that issued it, and the call site would be lost.  Recording here happens
in the task, right after the await.
"""

from __future__ import annotations

from typing import Any

from ._base import (
    ClassCache,
    Live,
    Undo,
    active,
    async_execute,
    async_executemany,
    guarded,
    patch,
    sql_text,
    unrecorded,
)

# Methods taking (query, *args): one statement, its parameters as a tuple.
_SINGLE = ("execute", "fetch", "fetchrow", "fetchval")
# Methods taking (query, args): a batch of parameter sets.
_MANY = ("executemany", "fetchmany")


def _module() -> Any:
    import asyncpg
    import asyncpg.pool
    import asyncpg.prepared_stmt

    return asyncpg


def _prepared(func: Any, recorder: Live) -> Any:
    """PreparedStatement.fetch(*args) and the like: func(self, *args) timed, the statement's
    own text as the query's (Python: the text comes from the statement, not an argument)."""
    set_, reset = active.set, active.reset

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if guarded() or not (t := recorder.start_async()):
            return await func(self, *args, **kwargs)
        token = set_(True)
        try:
            result = await func(self, *args, **kwargs)
        except BaseException as exc:
            recorder.finish_async(t, _text(self), args or None, 0, exc)
            raise
        finally:
            reset(token)
        recorder.finish_async(t, _text(self), args or None)
        return result

    return call


def _text(statement: Any) -> str | bytes:
    try:
        return statement.get_query()  # type: ignore[no-any-return]
    except Exception:
        return "<PreparedStatement>"


def _prepared_many(func: Any, recorder: Live) -> Any:
    """PreparedStatement.executemany(args) / fetchmany(args): the batch's text is the
    statement's, so the generic wrapper gets it through a small adapter."""
    timed = async_executemany(lambda stmt, _query, *a, **k: func(stmt, *a, **k), recorder, "args")

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await timed(self, _text(self), *args, **kwargs)

    return call


def _unrecorded(func: Any) -> Any:
    """Connection.reset(), which a Pool runs when a connection is released (RESET ALL,
    UNLISTEN *, ...): the pool's housekeeping, not a query of the application's, so the
    query methods it calls see a query already being timed and record nothing."""
    return unrecorded(func, asynchronous=True)


def _connection_methods(recorder: Live) -> dict[str, Any]:
    # (query, *args): the C wrapper takes every argument after the query as the parameters.
    wraps: dict[str, Any] = {name: (lambda f: async_execute(f, recorder, "*")) for name in _SINGLE}
    for name in _MANY:
        wraps[name] = lambda f: async_executemany(f, recorder, "args")
    wraps["reset"] = _unrecorded
    return wraps


def install(target: Any, recorder: Live) -> Undo:
    asyncpg = _module()
    Connection = asyncpg.connection.Connection
    if target is None or target is asyncpg:
        prepared = {name: (lambda f: _prepared(f, recorder)) for name in _SINGLE
                    if name != "execute"}
        for name in _MANY:
            prepared[name] = lambda f: _prepared_many(f, recorder)
        undos = [
            patch(Connection, _connection_methods(recorder)),
            patch(asyncpg.prepared_stmt.PreparedStatement, prepared),
        ]

        def undo() -> None:
            for u in reversed(undos):
                u()

        return undo

    def make(base: type) -> type:
        wraps = _connection_methods(recorder)
        body: dict[str, Any] = {name: wrap(getattr(base, name)) for name, wrap in wraps.items()}
        # No new slots: an instance can only move to a class of the same layout.
        body.update(__slots__=(), __module__=__name__)
        return type(f"Timed{base.__name__}", (base,), body)

    classes = ClassCache(make)
    if isinstance(target, asyncpg.pool.PoolConnectionProxy):
        target = target._con  # the proxy forwards to this connection
    if isinstance(target, asyncpg.Pool):
        return _install_pool(target, classes)
    if type(target) is not Connection and not issubclass(type(target), Connection):
        raise TypeError(
            f"QueryTimer: asyncpg can be timed as the module (asyncpg), a Connection or a "
            f"Pool, got {type(target).__name__}"
        )
    return _move(target, classes)


def _move(conn: Any, classes: ClassCache) -> Undo:
    before = type(conn)
    conn.__class__ = classes(before)

    def undo() -> None:
        if classes.is_timed(type(conn)):
            conn.__class__ = before

    return undo


def _install_pool(pool: Any, classes: ClassCache) -> Undo:
    # Private attributes of asyncpg.Pool (checked on 0.29-0.32): the class new connections
    # are made of, and the holders of the connections it has.
    before = pool._connection_class
    pool._connection_class = classes(before)
    undos = [_move(h._con, classes) for h in pool._holders if h._con is not None]

    def undo() -> None:
        pool._connection_class = before
        for u in reversed(undos):
            u()
        # Connections the pool opened since install are of the timed class too.
        for h in pool._holders:
            if h._con is not None and classes.is_timed(type(h._con)):
                h._con.__class__ = before

    return undo
