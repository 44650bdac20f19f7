"""SlowQueryLog from Python over the C slow-query log, against a throwaway PostgreSQL of its
own (the tests stop and restart the server, so they cannot share one).

What a user relies on: ensure_table() from sync and async code, slow queries of a real app
request reaching the table with their route, request id, fingerprint and call site, the
parameters redacted, nothing written twice when both a QueryTimer and the middleware hold
the log, and a server that goes away mid-load blocking no request and losing nothing that
fits in the queue."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg import Cluster
from pg import start as pg_start

import nanoprof
from nanoprof import _core

psycopg2 = pytest.importorskip("psycopg2")

@pytest.fixture(scope="module")
def pg() -> Iterator[Cluster]:
    """A server of this module's own: these tests stop and restart it."""
    cluster = pg_start()
    try:
        yield cluster
    finally:
        cluster.stop()


_tables = iter(range(1_000_000))


@pytest.fixture
def table() -> str:
    """A table of its own per test, so that counts never mix."""
    return f"slow_t{next(_tables)}_{os.getpid()}"


def wait_written(log: nanoprof.SlowQueryLog, n: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while log.stats()["written"] < n:
        assert time.monotonic() < deadline, log.stats()
        time.sleep(0.02)


def test_ensure_table_from_sync_code_creates_the_unlogged_table(pg: Cluster, table: str) -> None:
    with nanoprof.SlowQueryLog(pg.conninfo, threshold_ms=100, table=table) as log:
        assert log.ensure_table() is None
        rows = pg.query("SELECT relpersistence FROM pg_class WHERE relname = %s", table)
        assert rows == [("u",)]
        columns = {c for (c,) in pg.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", table)}
        assert {"sql_text", "duration_ms", "params_summary", "timestamp", "fingerprint",
                "route", "request_id"} <= columns


def test_ensure_table_is_awaitable_from_async_code(pg: Cluster, table: str) -> None:
    async def main() -> None:
        log = nanoprof.SlowQueryLog(pg.conninfo, table=table)
        waiter = log.ensure_table()
        assert waiter is not None
        await waiter
        log.close()

    asyncio.run(main())
    assert pg.query("SELECT count(*) FROM pg_class WHERE relname = %s", table) == [(1,)]


def test_a_dsn_that_cannot_connect_fails_ensure_table_with_the_servers_message(
    tmp_path: Path,
) -> None:
    log = nanoprof.SlowQueryLog(f"host={tmp_path} port=1 dbname=nothing connect_timeout=1")
    with pytest.raises(nanoprof.Error, match="not ready"):
        log.ensure_table(timeout_s=0.3)
    # The application is not blocked by it: enqueueing still returns at once.
    assert log.enqueue("SELECT 1", 500.0) is True
    assert log.close(timeout_s=0.2) is False  # the entry could not be written


def test_bad_arguments_get_clear_errors(pg: Cluster) -> None:
    with pytest.raises(TypeError, match="connection string"):
        nanoprof.SlowQueryLog(12345)  # type: ignore[arg-type]
    with pytest.raises(nanoprof.ConfigError, match="empty"):
        nanoprof.SlowQueryLog("")
    with pytest.raises(nanoprof.ConfigError):
        nanoprof.SlowQueryLog(pg.conninfo, table="bad name; drop table x")
    with pytest.raises(TypeError, match="threshold_ms"):
        nanoprof.SlowQueryLog(pg.conninfo, threshold_ms="100")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        nanoprof.SlowQueryLog(pg.conninfo + "\0")
    with pytest.raises(TypeError, match="SlowQueryLog"):
        nanoprof.PerformanceMiddleware(slow_log="postgresql://x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SlowQueryLog"):
        _core.QueryRecorder(slow_log=object())  # type: ignore[arg-type]


def test_a_closed_log_refuses_reads_and_a_used_one_refuses_to_close(pg: Cluster, table: str) -> None:
    log = nanoprof.SlowQueryLog(pg.conninfo, table=table)
    mw = nanoprof.PerformanceMiddleware(slow_log=log)
    with pytest.raises(nanoprof.StateError, match="still used"):
        log.close()
    del mw
    assert log.close() is True
    assert log.closed
    with pytest.raises(nanoprof.StateError, match="closed"):
        log.recent()
    with pytest.raises(nanoprof.StateError, match="closed"):
        nanoprof.PerformanceMiddleware(slow_log=log)
    # A recorder holding a closed log records into profiles and skips the log.
    rec = _core.QueryRecorder(log._log, threshold_ms=0)
    nanoprof.start_profile("GET", "/after-close")
    rec.finish(rec.start(), "SELECT 1")
    assert nanoprof.end_profile().sql_count == 1


def _app(conn: Any) -> Any:
    """A Starlette app whose handler runs a slow and a fast query on a hooked connection."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def report(request: Any) -> JSONResponse:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(%s), %s AS email", (0.06, "alice@example.com"))  # SLOW
            cur.fetchall()
            cur.execute("SELECT 1")  # fast: the profile has it, the table does not
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/reports/{id:int}", report)])


def _line_of(marker: str) -> int:
    for i, line in enumerate(Path(__file__).read_text().splitlines(), 1):
        if marker in line and "_line_of" not in line:
            return i
    raise AssertionError(marker)


def test_slow_queries_of_a_real_request_reach_the_table_once_with_their_context(
    pg: Cluster, table: str
) -> None:
    from starlette.testclient import TestClient

    log = nanoprof.SlowQueryLog(pg.conninfo, threshold_ms=50, table=table)
    log.ensure_table()
    conn = psycopg2.connect(pg.conninfo)
    conn.autocommit = True
    timer = nanoprof.QueryTimer(conn, slow_log=log).install()  # the log's 50 ms
    # The middleware holds the same log: the query the hook sent must not come twice.
    app = nanoprof.PerformanceMiddleware(_app(conn), slow_log=log, slow_query_threshold_ms=50)
    with TestClient(app) as client:
        r = client.get("/reports/7", params={"profile": "json"})
    assert r.status_code == 200
    profile = r.json()
    wait_written(log, 1)
    time.sleep(0.2)  # a second, duplicate row would have been written by now
    rows = log.recent(10)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["route"] == profile["route"] == "/reports/{id:int}"
    assert row["method"] == "GET"
    assert row["request_id"] == profile["request_id"]
    assert row["duration_ms"] >= 50
    assert row["sql_text"].startswith("SELECT pg_sleep")
    slow = [q for q in profile["queries"] if q["sql"].startswith("SELECT pg_sleep")][0]
    assert row["fingerprint"] == slow["fingerprint"]
    # The parameters, redacted before they were queued.
    assert "alice@example.com" not in json.dumps(rows)
    assert "alice@example.com" not in json.dumps(profile)
    assert row["params_summary"].startswith("$1=0.06")
    timer.uninstall()
    conn.close()
    line = _line_of("# SLOW")
    assert row["callsite"].endswith(f"test_slowlog.py:{line} in _app.<locals>.report")
    assert slow["callsite"] == row["callsite"]
    assert pg.query(f"SELECT count(*) FROM {table}") == [(1,)]


def test_the_middleware_alone_logs_each_requests_slow_queries(pg: Cluster, table: str) -> None:
    from starlette.testclient import TestClient

    log = nanoprof.SlowQueryLog(pg.conninfo, table=table)
    log.ensure_table()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nanoprof.record_sql("SELECT * FROM big WHERE token = 'abc'", 80_000_000)
        nanoprof.record_sql("SELECT 1", 1_000)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = nanoprof.PerformanceMiddleware(app, slow_log=log, slow_query_threshold_ms=50)
    client = TestClient(mw)  # no lifespan: the bare app serves HTTP only
    for _ in range(3):
        assert client.get("/big").status_code == 200
    wait_written(log, 3)
    rows = log.recent(10)
    assert [r["route"] for r in rows] == ["/big"] * 3
    assert len({r["request_id"] for r in rows}) == 3
    assert all(r["duration_ms"] == pytest.approx(80.0) for r in rows)


def test_a_server_stopped_mid_load_blocks_no_request_and_loses_nothing(
    pg: Cluster, table: str
) -> None:
    log = nanoprof.SlowQueryLog(pg.conninfo, table=table, queue_slots=4096)
    log.ensure_table()
    recorder = _core.QueryRecorder(log._log, threshold_ms=0)  # every query is "slow"
    sent = 0
    pg.pause()
    try:
        # 300 requests, each with two slow queries, while the database is gone: every one
        # of them completes (the recording only copies into the queue).
        for i in range(300):
            nanoprof.start_profile("GET", f"/load/{i}")
            for k in range(2):
                recorder.finish(recorder.start(), f"SELECT {i}, {k}")
                sent += 1
            nanoprof.end_profile()
        stats = log.stats()
        assert stats["enqueued"] == sent
        assert stats["dropped"] == 0
        assert stats["written"] < sent  # the server is down
    finally:
        pg.resume()
    wait_written(log, sent, timeout_s=60)
    assert pg.query(f"SELECT count(*) FROM {table}") == [(sent,)]
    assert log.close() is True
