"""The persistent slow-query log: the reference's ``SlowQueryLog(db, threshold_ms=100)``.

Slow queries go into a PostgreSQL table (UNLOGGED by default, ``nanoprof_slow_queries``)
written by a background thread of the C core over its own libpq connection, in COPY
batches; the request path only copies the entry into a bounded queue and never waits, and
a database that is down loses nothing that fits in the queue.  Parameters are redacted on the
way in, the SQL text on the writer.  Hand the log to ``QueryTimer(db, slow_log=log)`` (every
hooked query over ``threshold_ms``, in a request or not) or to
``PerformanceMiddleware(app, slow_log=log)`` (the slow queries of each profiled request).

``ensure_table()`` waits until the table exists: call it at start-up, plainly from sync code,
with ``await`` from async code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from typing import Any

from . import _core

__all__ = ["SlowQueryLog", "conninfo_of"]


def _django_conninfo(conn: Any) -> str:
    s = conn.settings_dict
    if "postgresql" not in s.get("ENGINE", ""):
        raise TypeError(
            f"SlowQueryLog needs a PostgreSQL database; Django alias {conn.alias!r} uses "
            f"{s.get('ENGINE')!r}: pass a PostgreSQL connection string instead"
        )
    parts = {
        "dbname": s.get("NAME"),
        "user": s.get("USER"),
        "password": s.get("PASSWORD"),
        "host": s.get("HOST"),
        "port": s.get("PORT"),
    }
    words = []
    for key, value in parts.items():
        if value not in (None, ""):
            text = str(value).replace("\\", "\\\\").replace("'", "\\'")
            words.append(f"{key}='{text}'")
    return " ".join(words)


def conninfo_of(db: Any) -> str:
    """A libpq connection string for `db`: a DSN or URI string, a Django connection (or
    ``django.db.connections``' default), a SQLAlchemy Engine, AsyncEngine or URL, or a
    psycopg (3) connection.  TypeError naming what to pass for anything else."""
    if isinstance(db, str):
        return db
    module = type(db).__module__ or ""
    if module.startswith("django.db"):
        if hasattr(db, "settings_dict"):
            return _django_conninfo(db)
        if hasattr(db, "__getitem__"):  # django.db.connections
            return _django_conninfo(db["default"])
    if module.startswith("sqlalchemy"):
        url = getattr(db, "url", db)  # Engine, AsyncEngine, or a URL itself
        if hasattr(url, "render_as_string") and hasattr(url, "set"):
            if not url.get_backend_name().startswith("postgresql"):
                raise TypeError(
                    f"SlowQueryLog needs a PostgreSQL database, this engine uses "
                    f"{url.get_backend_name()!r}: pass a PostgreSQL connection string instead"
                )
            # libpq takes postgresql://, without SQLAlchemy's "+driver".
            return url.set(drivername="postgresql").render_as_string(hide_password=False)
    if module.startswith("psycopg") and hasattr(db, "pgconn"):
        if db.closed:
            raise ValueError("SlowQueryLog(db): the psycopg connection is closed")
        # info.dsn hides the password; the libpq options do not.
        options = db.pgconn.info
        words = []
        for opt in options:
            if opt.val is None or opt.keyword in (b"replication",):
                continue
            val = opt.val.decode().replace("\\", "\\\\").replace("'", "\\'")
            words.append(f"{opt.keyword.decode()}='{val}'")
        return " ".join(words)
    raise TypeError(
        f"SlowQueryLog(db_or_dsn): cannot get a connection string from {type(db).__name__}; "
        "pass a libpq connection string or URI (e.g. 'postgresql://user@host/db'), a Django "
        "connection, a SQLAlchemy engine or a psycopg connection"
    )


class SlowQueryLog:
    """Slow queries kept in a PostgreSQL table (see the module's docstring).

    ``threshold_ms``: the default threshold of the ``QueryTimer`` given this log.  The other
    options are the C log's: ``table`` (``[schema.]name``), ``queue_slots``, ``logged``
    (a LOGGED table instead of UNLOGGED), ``normalized_only`` (store the shape, never the
    literals; None follows production mode), ``redact`` and ``redact_rules`` (PCRE2 patterns
    added to the default rules), ``explain`` (EXPLAIN slow SELECTs into ``plan``),
    ``retention_s`` and ``max_rows``.
    """

    threshold_ms: float
    conninfo: str

    def __init__(
        self,
        db_or_dsn: Any,
        threshold_ms: float = 100.0,
        *,
        table: str | None = None,
        queue_slots: int | None = None,
        logged: bool = False,
        normalized_only: bool | None = None,
        redact: bool = True,
        redact_rules: Sequence[str] = (),
        explain: bool = False,
        retention_s: int | None = None,
        max_rows: int | None = None,
    ) -> None:
        if isinstance(threshold_ms, bool) or not isinstance(threshold_ms, (int, float)):
            raise TypeError(f"threshold_ms must be a number, not {type(threshold_ms).__name__}")
        if not 0 <= threshold_ms <= 1e9:
            raise ValueError(f"threshold_ms must be between 0 and 1e9, got {threshold_ms!r}")
        self.threshold_ms = float(threshold_ms)
        self.conninfo = conninfo_of(db_or_dsn)
        self._log = _core.SlowLog(
            self.conninfo,
            table=table,
            queue_slots=queue_slots,
            logged=logged,
            normalized_only=normalized_only,
            redact=redact,
            redact_rules=tuple(redact_rules),
            explain=explain,
            retention_s=retention_s,
            max_rows=max_rows,
        )

    def ensure_table(self, timeout_s: float = 10.0) -> Awaitable[None] | None:
        """Waits until the writer is connected and the table exists (it creates it).  From
        sync code it blocks and returns None; called inside a running event loop it returns
        an awaitable that waits in a worker thread, so ``await log.ensure_table()`` never
        blocks the loop.  Raises nanoprof.Error with the server's message on timeout."""
        timeout_ms = max(0, int(timeout_s * 1000))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._log.wait_ready(timeout_ms)
            return None
        return loop.run_in_executor(None, self._log.wait_ready, timeout_ms)

    def enqueue(self, sql: str, duration_ms: float, params: Any = None, **fields: Any) -> bool:
        """Logs one query by hand (method, route, request_id, callsite, fingerprint may be
        given); False when the queue was full and the entry was dropped (and counted)."""
        if params is not None and not isinstance(params, str):
            params = repr(params)
        return self._log.enqueue(sql, duration_ms, params, **fields)

    def recent(self, n: int = 50) -> list[dict[str, Any]]:
        """The `n` latest rows of the table (every process writing into it), newest first."""
        return json.loads(self._log.read_recent(n))

    def slowest(self, n: int = 50, since_s: int = 0) -> list[dict[str, Any]]:
        """The `n` slowest rows, of the last `since_s` seconds when given."""
        return json.loads(self._log.read_slowest(n, since_s))

    def by_fingerprint(self, n: int = 50, since_s: int = 0) -> list[dict[str, Any]]:
        """Per query shape: count, total, mean, p95 and max milliseconds, last seen."""
        return json.loads(self._log.read_by_fingerprint(n, since_s))

    def stats(self) -> dict[str, Any]:
        """The writer's counters: enqueued, dropped, written, unwritten, connected, ..."""
        return self._log.stats()

    @property
    def closed(self) -> bool:
        return self._log.closed

    def close(self, timeout_s: float = 5.0) -> bool:
        """Writes what is queued (waiting at most `timeout_s`) and closes; True when nothing
        was left unwritten.  StateError while a middleware still uses the log."""
        return self._log.close(max(0, int(timeout_s * 1000)))

    def __enter__(self) -> SlowQueryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SlowQueryLog {state} threshold_ms={self.threshold_ms}>"


def core_log_of(slow_log: object) -> Any:
    """The C log behind `slow_log` (None for None), for the middleware's and QueryTimer's
    `slow_log=` argument; TypeError naming what it got otherwise."""
    if slow_log is None:
        return None
    if not isinstance(slow_log, SlowQueryLog):
        raise TypeError(
            f"slow_log must be a nanoprof.SlowQueryLog or None, not {type(slow_log).__name__}"
        )
    return slow_log._log
