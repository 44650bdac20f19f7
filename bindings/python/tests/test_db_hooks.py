"""QueryTimer's edges: what it accepts and refuses, per-connection hooks, query objects
that are not str, stacked timers, and uninstall putting back exactly what was there."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from typing import Any

import pytest

import pg
from dbcheck import collect
from nanoprof.db import QueryTimer
from nanoprof.db._base import sql_text

# ---- what QueryTimer accepts ---------------------------------------------------------------


def test_an_unsupported_object_is_a_type_error_naming_what_is_supported() -> None:
    with pytest.raises(TypeError, match=r"SQLAlchemy Engine.*asyncpg Pool"):
        QueryTimer(object())
    with pytest.raises(ValueError, match=r"'sqlalchemy', 'psycopg', 'psycopg2'"):
        QueryTimer("mysql")


@pytest.mark.parametrize("wrong", [5, "host=/tmp dbname=app", object()])
def test_a_slow_log_that_is_not_a_slow_query_log_is_a_type_error_naming_it(wrong: Any) -> None:
    from nanoprof.middleware import PerformanceMiddleware

    name = type(wrong).__name__
    with pytest.raises(TypeError, match=f"slow_log must be a nanoprof.SlowQueryLog or None, not {name}"):
        QueryTimer("sqlite3", slow_log=wrong)
    with pytest.raises(TypeError, match=f"slow_log must be a nanoprof.SlowQueryLog or None, not {name}"):
        PerformanceMiddleware(None, slow_log=wrong)


def test_a_missing_driver_is_skipped_by_default_and_an_import_error_when_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # `import asyncpg` now fails
    with pytest.raises(ImportError, match="pip install asyncpg"):
        QueryTimer("asyncpg")
    everything = QueryTimer()
    assert "asyncpg" not in repr(everything) and "sqlite3" in repr(everything)
    everything.install().uninstall()


def _snapshot() -> dict[str, Any]:
    """The attributes the module-wide hooks replace, as the classes hold them."""
    import asyncpg
    import psycopg
    import psycopg2
    from django.db import connection
    from django.db.backends.signals import connection_created
    import sqlalchemy

    engine = sqlalchemy.create_engine("sqlite://")  # sees the Engine class's listeners
    snap: dict[str, Any] = {
        "sqlite3.connect": sqlite3.connect,
        "psycopg2.connect": psycopg2.connect,
        "receivers": len(connection_created.receivers),
        "sqlalchemy": {name: len(getattr(engine.dialect.dispatch, name))
                       for name in ("do_execute", "do_executemany", "do_execute_no_params")},
        "django.execute_wrappers": list(connection.execute_wrappers),
    }
    classes = [psycopg.Cursor, psycopg.AsyncCursor, psycopg.ServerCursor,
               psycopg.AsyncServerCursor, psycopg.ClientCursor, asyncpg.connection.Connection,
               asyncpg.prepared_stmt.PreparedStatement]
    for cls in classes:
        for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchmany",
                     "reset"):
            snap[f"{cls.__qualname__}.{name}"] = cls.__dict__.get(name, "<inherited>")
    return snap


def test_uninstall_puts_back_exactly_what_install_replaced() -> None:
    before = _snapshot()
    timer = QueryTimer()
    assert timer.install() is timer
    during = _snapshot()
    assert during["sqlite3.connect"] is not before["sqlite3.connect"]
    assert during["Cursor.execute"] is not before["Cursor.execute"]
    assert during["sqlalchemy"] == {k: n + 1 for k, n in before["sqlalchemy"].items()}
    timer.uninstall()
    assert _snapshot() == before
    with QueryTimer():  # and again, as a context manager
        pass
    assert _snapshot() == before


def test_sql_text_never_raises() -> None:
    class Broken:
        def as_string(self, context: Any) -> str:
            raise RuntimeError("cannot render")

    class Odd:
        def __str__(self) -> str:
            raise ValueError("no text")

    assert sql_text("SELECT 1") == "SELECT 1"
    assert sql_text(b"SELECT 1") == b"SELECT 1"
    assert sql_text(Broken()) == "<Broken>"
    assert sql_text(Odd()) == "<Odd>"


# ---- per connection, query objects -----------------------------------------------------------


def test_psycopg2_connection_bytes_and_composed(pg_cluster: pg.Cluster) -> None:
    import psycopg2
    from psycopg2 import sql

    timed, other = psycopg2.connect(pg_cluster.conninfo), psycopg2.connect(pg_cluster.conninfo)
    try:
        with QueryTimer(timed), collect() as seen:
            with timed.cursor() as cur:
                cur.execute(b"SELECT 1 FROM nprof_user LIMIT 1")
                cur.execute(sql.SQL("SELECT {} FROM nprof_user WHERE id = %s")
                            .format(sql.Identifier("name")), (1,))
                assert cur.fetchone() == ("user1",)
            with other.cursor() as cur:
                cur.execute("SELECT 2 FROM nprof_user LIMIT 1")
        assert timed.cursor_factory is None
        assert [e.sql for e in seen.queries] == [
            "SELECT 1 FROM nprof_user LIMIT 1",
            'SELECT "name" FROM nprof_user WHERE id = %s',
        ]
    finally:
        timed.close()
        other.close()


def test_psycopg2_keeps_an_explicit_cursor_factory(pg_cluster: pg.Cluster) -> None:
    import psycopg2
    import psycopg2.extras

    with QueryTimer("psycopg2"), collect() as seen:
        conn = psycopg2.connect(pg_cluster.conninfo, cursor_factory=psycopg2.extras.RealDictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT name FROM nprof_user WHERE id = 1")
                assert cur.fetchone() == {"name": "user1"}
            with conn.cursor(cursor_factory=psycopg2.extras.NamedTupleCursor) as cur:
                cur.execute("SELECT name FROM nprof_user WHERE id = 2")
                assert cur.fetchone().name == "user2"
        finally:
            conn.close()
    assert [e.sql for e in seen.queries] == ["SELECT name FROM nprof_user WHERE id = 1",
                                             "SELECT name FROM nprof_user WHERE id = 2"]


def test_psycopg_connection_sync_and_async_with_composed(pg_cluster: pg.Cluster) -> None:
    import psycopg
    from psycopg import sql

    query = sql.SQL("SELECT {} FROM nprof_user WHERE id = %s").format(sql.Identifier("name"))
    with psycopg.connect(pg_cluster.conninfo) as conn:
        factory = conn.cursor_factory
        with QueryTimer(conn), collect() as seen:
            assert conn.execute(query, (1,)).fetchone() == ("user1",)
            conn.execute(b"SELECT 1 FROM nprof_user LIMIT 1")
        assert conn.cursor_factory is factory
        conn.execute("SELECT 'after uninstall' FROM nprof_user LIMIT 1")
    assert [e.sql for e in seen.queries] == ['SELECT "name" FROM nprof_user WHERE id = %s',
                                             "SELECT 1 FROM nprof_user LIMIT 1"]

    async def go() -> list[str]:
        async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo) as aconn:
            with QueryTimer(aconn), collect() as seen:
                cur = await aconn.execute(query, (2,))
                assert await cur.fetchone() == ("user2",)
        return [e.sql for e in seen.queries]

    assert asyncio.run(go()) == ['SELECT "name" FROM nprof_user WHERE id = %s']


def test_asyncpg_connection_and_pool(pg_cluster: pg.Cluster) -> None:
    import asyncpg

    kw = dict(host=pg_cluster.host, port=pg_cluster.port, user="postgres", database="postgres")

    async def go() -> tuple[list[str], list[str]]:
        conn = await asyncpg.connect(**kw)
        cls = type(conn)
        with QueryTimer(conn), collect() as seen:
            assert await conn.fetchval("SELECT name FROM nprof_user WHERE id = $1", 1) == "user1"
            assert await conn.execute("SELECT $1::int", 5) == "SELECT 1"  # execute with args
        assert type(conn) is cls
        await conn.close()
        pool = await asyncpg.create_pool(min_size=2, max_size=2, **kw)
        try:
            with QueryTimer(pool), collect() as pooled:
                assert await pool.fetchval("SELECT $1::int + 1", 41) == 42
                async with pool.acquire() as c:
                    await c.execute("SELECT 1")
        finally:
            await pool.close()
        return [e.sql for e in seen.queries], [e.sql for e in pooled.queries]

    one, pooled = asyncio.run(go())
    assert one == ["SELECT name FROM nprof_user WHERE id = $1", "SELECT $1::int"]
    # The pool's own reset on release (RESET ALL ...) is its housekeeping: not recorded.
    assert pooled == ["SELECT $1::int + 1", "SELECT 1"]


def test_stacked_timers_record_each_query_once(pg_cluster: pg.Cluster) -> None:
    import psycopg

    with QueryTimer("psycopg"), psycopg.connect(pg_cluster.conninfo) as conn:
        with QueryTimer(conn), QueryTimer(psycopg), collect() as seen:
            conn.execute("SELECT 1 FROM nprof_user LIMIT 1")
    assert [e.sql for e in seen.queries] == ["SELECT 1 FROM nprof_user LIMIT 1"]


def test_psycopg_server_cursors_are_timed(pg_cluster: pg.Cluster) -> None:
    import psycopg

    with QueryTimer("psycopg"), psycopg.connect(pg_cluster.conninfo) as conn, collect() as seen:
        with conn.cursor(name="nprof_named") as cur:
            cur.execute("SELECT id FROM nprof_user ORDER BY id")
            assert cur.fetchmany(2) == [(1,), (2,)]
    assert "SELECT id FROM nprof_user ORDER BY id" in [e.sql for e in seen.queries]


def test_slow_queries_go_to_the_timers_slow_log(pg_cluster: pg.Cluster) -> None:
    import time

    import psycopg2

    from nanoprof.slowlog import SlowQueryLog

    with SlowQueryLog(pg_cluster.conninfo, threshold_ms=30, table="nprof_db_slow") as log:
        log.ensure_table()
        timer = QueryTimer("psycopg2", slow_log=log)
        assert timer.recorder.threshold_ms == 30 and timer.recorder.slow_log is log._log
        with timer:
            conn = psycopg2.connect(pg_cluster.conninfo)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(0.05), %(email)s", {"email": pg.EMAIL})
                    cur.execute("SELECT 1")  # fast: not logged
            finally:
                conn.close()
        deadline = time.monotonic() + 20
        while log.stats()["written"] < 1:
            assert time.monotonic() < deadline, log.stats()
            time.sleep(0.02)
        rows = log.recent(10)
    assert [r["sql_text"] for r in rows] == ["SELECT pg_sleep(0.05), %(email)s"]
    assert pg.EMAIL not in repr(rows)


def test_an_awaited_slow_query_reaches_the_slow_log_it_began_with(pg_cluster: pg.Cluster) -> None:
    """An awaited query keeps its recorder's slow log from its start to its end (the end
    reads no recorder object): the slow one is logged and the fast one is not, each lets go
    of the log when it ends, and a cancelled one over the threshold is logged too."""
    import time

    import asyncpg

    from nanoprof.slowlog import SlowQueryLog

    kw = dict(host=pg_cluster.host, port=pg_cluster.port, user="postgres", database="postgres")
    slow = "SELECT pg_sleep(0.05)::text || $1"

    async def go(log: SlowQueryLog) -> None:
        conn = await asyncpg.connect(**kw)
        try:
            with QueryTimer(conn, slow_log=log):
                refs = sys.getrefcount(log._log)  # the timer's recorder holds it meanwhile
                await conn.fetchval(slow, "x")
                await conn.fetchval("SELECT 1")  # fast: not logged
                # Counted outside `assert`: pytest's rewriting holds its operands meanwhile.
                after = sys.getrefcount(log._log)
                assert after == refs
                cancelled = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(5)"))
                await asyncio.sleep(0.2)
                cancelled.cancel()
                try:
                    await cancelled
                except asyncio.CancelledError:
                    pass
                else:
                    raise AssertionError("the cancelled query returned")
                after = sys.getrefcount(log._log)
                assert after == refs
        finally:
            await conn.close(timeout=5)

    with SlowQueryLog(pg_cluster.conninfo, threshold_ms=30, table="nprof_db_slow_async") as log:
        log.ensure_table()
        asyncio.run(go(log))
        deadline = time.monotonic() + 20
        while log.stats()["written"] < 2:
            assert time.monotonic() < deadline, log.stats()
            time.sleep(0.02)
        time.sleep(0.2)  # a third row would have been written by now
        rows = log.recent(10)
    assert sorted(r["sql_text"] for r in rows) == sorted([slow, "SELECT pg_sleep(5)"])


def test_psycopg2_keeps_a_connection_factorys_own_cursor_class(pg_cluster: pg.Cluster) -> None:
    import io

    import psycopg2
    import psycopg2.extras

    log = io.StringIO()
    with QueryTimer("psycopg2"), collect() as seen:
        conn = psycopg2.connect(pg_cluster.conninfo,
                                connection_factory=psycopg2.extras.LoggingConnection)
        try:
            conn.initialize(log)
            with conn.cursor() as cur:
                assert isinstance(cur, psycopg2.extras.LoggingCursor)
                cur.execute("SELECT 1 FROM nprof_user LIMIT 1")
        finally:
            conn.close()
    assert isinstance(conn, psycopg2.extras.LoggingConnection)
    assert "SELECT 1 FROM nprof_user LIMIT 1" in log.getvalue()  # its logging still works
    assert [e.sql for e in seen.queries] == ["SELECT 1 FROM nprof_user LIMIT 1"]
