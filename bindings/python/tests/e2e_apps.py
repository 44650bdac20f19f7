"""The application the end-to-end tests (test_e2e_prometheus.py, test_e2e_cluster.py) run
as real server processes: the same handlers as plain ASGI (uvicorn) and plain WSGI
(gunicorn), always in production mode with TOKEN, as a deployment would run them.

    /slow      sleeps SLOW_S: a route whose latency histogram has a known floor
    /fast      answers at once
    /whoami    the process's pid and host, as the slow-query table records them
    /query     two queries made slow with pg_sleep: one whose shape every process shares,
               and one whose shape is this process's own (NANOPROF_E2E_TAG)

With NANOPROF_E2E_DSN set, the process writes its slow queries (over 1 ms) into the table
NANOPROF_E2E_TABLE through a SlowQueryLog, which the QueryTimer and the middleware share;
/query needs it.  The apps are built on first access of `served_asgi` / `served_wsgi` (what
the servers import), so importing this module builds nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import nanoprof
from nanoprof.middleware import PerformanceMiddleware

from apps import lifespan

TOKEN = "e2e-t0ken-5a7b"
SLOW_S = 0.02
QUERY_SLEEP_S = 0.005  # well over THRESHOLD_MS, however fast the machine
THRESHOLD_MS = 1.0
SHARED_ALIAS = "e2e_shared"


def own_alias(tag: str) -> str:
    """The column alias of a process's own query: a shape (fingerprint) of its own."""
    return f"e2e_own_{tag}"


def whoami() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


class _Database:
    """One psycopg2 connection per server thread (gunicorn runs handlers on several), all
    timed by one QueryTimer that sends their slow queries to the shared log."""

    def __init__(self, dsn: str, table: str) -> None:
        import psycopg2

        self._connect = lambda: psycopg2.connect(dsn)
        self.log = nanoprof.SlowQueryLog(dsn, threshold_ms=THRESHOLD_MS, table=table)
        # Both processes start at once: the writer's CREATE TABLE must not race (slowlog_writer.c).
        self.log.ensure_table(timeout_s=30)
        nanoprof.QueryTimer("psycopg2", slow_log=self.log).install()
        self._local = threading.local()

    def run_queries(self, tag: str) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            conn.autocommit = True
        with conn.cursor() as cur:
            for alias in (SHARED_ALIAS, own_alias(tag)):
                cur.execute(f"SELECT pg_sleep(%s) AS {alias}", (QUERY_SLEEP_S,))
                cur.fetchall()


_DB: _Database | None = None


def _database() -> _Database:
    if _DB is None:
        raise RuntimeError("/query needs NANOPROF_E2E_DSN and NANOPROF_E2E_TABLE")
    return _DB


def _handle(path: str) -> tuple[str, bytes]:
    """The status line and body of `path`, for both protocols (sleeping is the caller's)."""
    if path in ("/slow", "/fast"):
        return "200 OK", b"ok"
    if path == "/whoami":
        return "200 OK", json.dumps(whoami()).encode()
    if path == "/query":
        _database().run_queries(os.environ.get("NANOPROF_E2E_TAG", "x"))
        return "200 OK", b"ok"
    return "404 Not Found", b"not found"


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(SLOW_S)
    status, body = _handle(path)
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[..., Any]
) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(SLOW_S)
    # /query blocks the loop for a few ms: harmless here, the tests send one at a time.
    status, body = _handle(path)
    await send(
        {
            "type": "http.response.start",
            "status": int(status.split()[0]),
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _served(app: Any) -> Any:
    global _DB
    dsn, table = os.environ.get("NANOPROF_E2E_DSN"), os.environ.get("NANOPROF_E2E_TABLE")
    if dsn and table and _DB is None:
        _DB = _Database(dsn, table)
    return PerformanceMiddleware(
        app,
        production=True,
        token=TOKEN,
        slow_query_threshold_ms=THRESHOLD_MS,
        slow_log=_DB.log if _DB else None,
    )


def __getattr__(name: str) -> Any:
    # uvicorn/gunicorn import "e2e_apps:served_asgi" etc.: built in the server process
    # (gunicorn's worker, after the fork, so the log's writer thread lives there).
    if name in ("served_asgi", "served_wsgi"):
        app = _served(asgi_app if name == "served_asgi" else wsgi_app)
        globals()[name] = app
        return app
    raise AttributeError(name)
