"""The app bench_asgi_db.py loads under uvicorn: Starlette with two endpoints that each run
five queries, bare or under nanoprof, chosen by NANOPROF_BENCH_VARIANT:

  /db   five `SELECT ... WHERE id = $1` by primary key on a real PostgreSQL, through an
        asyncpg pool (one connection acquired per request, the queries in sequence)
  /rec  the same five `fetchrow` calls on a connection that does no I/O: an
        asyncpg.Connection subclass whose `_execute` returns a fixed row at once.  The
        asyncpg methods themselves (fetchrow, ...) are asyncpg's, so nanoprof's asyncpg hook
        (which patches them on asyncpg.Connection) runs exactly as it does on /db; only the
        network round trip is gone, which makes the recording cost visible.

Variants:
  bare            no nanoprof at all
  bare-again      the same app again, in its own process: the control, whose difference
                  from bare is the measurement's own noise in that run
  noop-mw         the app under a pure-Python ASGI middleware that only awaits the app: the
                  floor of any middleware written in Python (one more coroutine per request)
  spin-mw         noop-mw that first burns NANOPROF_BENCH_SPIN_US (10) microseconds of CPU:
                  a cost of known size, to see what a server-side cost turns into here
  floor           the least an in-process profiler with this API can do, in C (floor.c): a
                  middleware that times the request, makes it current in a ContextVar and
                  sees the status through a wrapper of `send`, and a wrapper of asyncpg's
                  query methods that times each query into the current request; none of
                  nanoprof, and nothing recorded worth reading: the cost of the mechanism
  floor-mw        the floor's middleware alone, without its query wrappers: the mechanism's
                  share a middleware needs, to set beside mw-prod
  floor-core      the floor feeding nanoprof's C core (floor.c built with FLOOR_CORE): each
                  request begun and ended in an nprof_mw in production mode, each query's
                  text, timing and parameter identity recorded into its profile
                  (normalization, fingerprint, N+1 and duplicate counting, aggregation, the
                  store); no call sites, phases or sampling: the least nanoprof's figures
                  can cost through this mechanism
  floor-core-mw   floor-core's middleware alone, without its query wrappers: the C core's
                  request begin and end on the floor's mechanism, to set beside floor-mw and
                  mw-prod
  floor-core-hooks
                  floor-core with nanoprof's Starlette phase hooks installed (the C callables
                  that replace Router.__call__ and Route.handle, as PerformanceMiddleware
                  installs them): they find no nanoprof request and only pass the call on,
                  so this is what intercepting the routing and handler phases costs before
                  anything is recorded
  mw-prod         PerformanceMiddleware in production mode (headers only on ?profile=1 with
                  the token), no database hooks: what the middleware alone costs
  nanoprof-prod   the same plus nanoprof.db.QueryTimer("asyncpg") installed module-wide
                  (production-like: bench_asgi.py's nanoprof-prod options with the reference's
                  production thresholds, 200 ms and 10; a SlowQueryLog with a 200 ms
                  threshold when NANOPROF_BENCH_SLOWLOG gives a conninfo)
  nanoprof-dev    development mode (four headers on every response) plus the hooks

NANOPROF_BENCH_PG: the libpq conninfo of the database (host is the socket directory); the
pool is opened by the app's lifespan, so in-process runs without one can still call /rec.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

VARIANTS = ("bare", "bare-again", "noop-mw", "spin-mw", "floor", "floor-mw", "floor-core",
            "floor-core-mw", "floor-core-hooks", "mw-prod",
            "nanoprof-prod",
            "nanoprof-dev")
FLOOR_METHODS = ("execute", "fetch", "fetchrow", "fetchval")
SQL = "SELECT id, name, price FROM bench_items WHERE id = $1"
N_ITEMS = 1000
QUERIES_PER_REQUEST = 5

_pool: asyncpg.Pool | None = None
_next = 0


class NoIOConnection(asyncpg.Connection):
    """An asyncpg connection with no server: `_execute`, where every query method of
    asyncpg.Connection ends up, answers one fixed row at once.  Made with __new__ (no
    protocol, no socket); only the query methods may be called on it."""

    __slots__ = ()
    ROW = (1, "widget", 12.5)

    def _check_open(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False

    def __del__(self) -> None:
        pass

    async def _execute(self, query: Any, args: Any, limit: int, timeout: Any, *,
                       return_status: bool = False, ignore_custom_codec: bool = False,
                       record_class: Any = None) -> Any:
        rows = [self.ROW]
        return (rows, b"SELECT 1", False) if return_status else rows


_noio = NoIOConnection.__new__(NoIOConnection)


def _ids() -> list[int]:
    global _next
    first = _next
    _next = (_next + QUERIES_PER_REQUEST) % N_ITEMS
    return [first + k + 1 for k in range(QUERIES_PER_REQUEST)]


async def db(request: Request) -> JSONResponse:
    assert _pool is not None, "no pool: NANOPROF_BENCH_PG was not set"
    out = []
    async with _pool.acquire() as con:
        for i in _ids():
            row = await con.fetchrow(SQL, i)
            out.append({"id": row[0], "name": row[1], "price": float(row[2])})
    return JSONResponse(out)


# NANOPROF_BENCH_REC_LITERAL=1: /rec sends its ids as literals in the text, with no
# parameters, to separate what recording the parameters costs (an experiment, not a variant).
_REC_LITERAL = os.environ.get("NANOPROF_BENCH_REC_LITERAL") == "1"
_LITERAL_SQL = [SQL.replace("$1", str(i)) for i in range(1, N_ITEMS + 1)]


# Set by bench_asgi_db.py's in-process runs: called between /rec's queries, it stands for
# the driver's and the event loop's code that runs there under a server.
between_queries: Any = None


async def rec(request: Request) -> JSONResponse:
    out = []
    con = _noio
    for i in _ids():
        if between_queries is not None:
            between_queries()
        if _REC_LITERAL:
            row = await con.fetchrow(_LITERAL_SQL[i - 1])
        else:
            row = await con.fetchrow(SQL, i)
        out.append({"id": row[0], "name": row[1], "price": float(row[2])})
    return JSONResponse(out)


def _pg_kwargs(conninfo: str) -> dict[str, Any]:
    kv = dict(part.split("=", 1) for part in conninfo.split())
    return {"host": kv["host"], "port": int(kv.get("port", 5432)), "user": kv.get("user"),
            "database": kv.get("dbname")}


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    global _pool
    conninfo = os.environ.get("NANOPROF_BENCH_PG")
    if conninfo:
        size = int(os.environ.get("NANOPROF_BENCH_POOL", "8"))
        _pool = await asyncpg.create_pool(**_pg_kwargs(conninfo), min_size=size, max_size=size)
    try:
        yield
    finally:
        if _pool is not None:
            await _pool.close()


def install_hooks() -> Any:
    """nanoprof.db.QueryTimer, module-wide on asyncpg, production-like options; a clear
    SystemExit when the hooks are not there."""
    try:
        from nanoprof.db import QueryTimer
    except ImportError as e:
        raise SystemExit(f"variant needs nanoprof.db.QueryTimer, which does not import: {e}")
    slow_log = None
    slow_conninfo = os.environ.get("NANOPROF_BENCH_SLOWLOG")
    if slow_conninfo:
        import nanoprof

        slow_log = nanoprof.SlowQueryLog(slow_conninfo, threshold_ms=200)
        slow_log.ensure_table()  # no loop runs yet: this waits here, at start-up
    timer = QueryTimer("asyncpg", slow_log=slow_log)
    timer.install()
    return timer


class NoopMiddleware:
    """An ASGI middleware that does nothing but await the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class SpinMiddleware:
    """An ASGI middleware that burns `spin_us` microseconds of CPU in Python per request and
    then awaits the app: a cost of known size, to see how a server-side cost of that size
    turns into fewer requests per second on this machine."""

    def __init__(self, app: Any, spin_us: int) -> None:
        self.app = app
        self.spin_ns = spin_us * 1000

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        clock = time.perf_counter_ns
        end = clock() + self.spin_ns
        while clock() < end:
            pass
        await self.app(scope, receive, send)


floor_module: Any = None  # the floor variant's module, whose stats() the bench checks
floor_timed: tuple[str, ...] = ()  # the asyncpg.Connection methods it wraps


def _app() -> Any:
    app = Starlette(routes=[Route("/db", db), Route("/rec", rec)], lifespan=lifespan)
    variant = os.environ.get("NANOPROF_BENCH_VARIANT", "bare")
    if variant not in VARIANTS:
        raise SystemExit(f"NANOPROF_BENCH_VARIANT={variant!r}: use {', '.join(VARIANTS)}")
    if variant in ("bare", "bare-again"):
        return app
    if variant == "noop-mw":
        return NoopMiddleware(app)
    if variant == "spin-mw":
        return SpinMiddleware(app, int(os.environ.get("NANOPROF_BENCH_SPIN_US", "10")))
    if variant in ("floor", "floor-mw", "floor-core", "floor-core-mw", "floor-core-hooks"):
        import floor

        global floor_module, floor_timed
        floor_module = mod = floor.load(core=variant.startswith("floor-core"))
        # floor-core leaves out `execute`, which asyncpg's Pool.release() runs the
        # connection's reset query through: nanoprof's hooks do not record that query
        # (it is the pool's, not the app's), so floor-core records the same five
        core_timed = tuple(m for m in FLOOR_METHODS if m != "execute")
        floor_timed = {"floor": FLOOR_METHODS, "floor-mw": (), "floor-core-mw": (),
                       "floor-core": core_timed, "floor-core-hooks": core_timed}[variant]
        for name in floor_timed:
            setattr(asyncpg.Connection, name, mod.Timed(getattr(asyncpg.Connection, name)))
        if variant == "floor-core-hooks":
            from nanoprof.integrations import starlette as phase_hooks

            phase_hooks.install()
        return mod.Middleware(app)
    import nanoprof

    if variant.startswith("nanoprof"):
        install_hooks()
    if variant == "nanoprof-dev":
        return nanoprof.PerformanceMiddleware(app, production=False)
    # bench_asgi.py's nanoprof-prod, plus the reference's production thresholds
    return nanoprof.PerformanceMiddleware(app, production=True, token="bench-token",
                                          slow_query_threshold_ms=200, n_plus_one_threshold=10)


app = _app()
