"""100 concurrent requests on one event loop, each running its own queries through an
ASGI app with the middleware, over asyncpg and psycopg's async connections: every profile
holds exactly its own request's queries (the recording happens in the task that awaited
the query, and the request is a context variable of that task)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import pg
from apps import options
from dbcheck import assert_site, line, ours
from nanoprof import _core
from nanoprof.db import QueryTimer
from nanoprof.middleware import PerformanceMiddleware

REQUESTS = 100
POOL = 8  # connections: the test cluster allows 20


def sql_of(n: int, k: int, mark: str) -> str:
    return f"SELECT {n}::int * 1000 + {k}::int AS v /* {mark} */ FROM nprof_user LIMIT 1"


def queries_of(n: int) -> int:
    return n % 4 + 1


def make_app(run: Callable[[str], Awaitable[Any]], mark: str) -> Any:
    async def handler(request: Request) -> JSONResponse:
        n = int(request.path_params["n"])
        values = []
        for k in range(queries_of(n)):
            values.append(await run(sql_of(n, k, mark)))
            await asyncio.sleep(0)  # let the other requests' tasks run in between
        return JSONResponse({"values": values})

    app = Starlette(routes=[Route("/q/{n:int}", handler)])
    return PerformanceMiddleware(app, **options())


async def hammer(app: Any) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *(client.get(f"/q/{n}", params={"profile": "json"}) for n in range(REQUESTS)))
    assert all(r.status_code == 200 for r in responses)
    return [json.loads(r.content) for r in responses]


def check(profiles: list[dict[str, Any]], mark: str) -> None:
    for n, profile in enumerate(profiles):
        got = [q["sql"] for q in ours(profile)]
        assert got == [sql_of(n, k, mark) for k in range(queries_of(n))], (n, got)


def test_asyncpg_pool(pg_cluster: pg.Cluster) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def go() -> list[dict[str, Any]]:
        pool = await asyncpg.create_pool(host=pg_cluster.host, port=pg_cluster.port,
                                         user="postgres", database="postgres",
                                         min_size=POOL, max_size=POOL)
        try:
            return await hammer(make_app(pool.fetchval, "asyncpg"))
        finally:
            await pool.close()

    with QueryTimer("asyncpg"):
        check(asyncio.run(go()), "asyncpg")


# One request's texts, each run twice in a row, then one more: six shapes, eleven queries.
HELD_TEXTS = 6


def held_sequence(n: int) -> list[str]:
    texts = [f"SELECT {n}::int AS held_{k} FROM nprof_user LIMIT 1" for k in range(HELD_TEXTS)]
    return [t for t in texts[:-1] for _ in range(2)] + texts[-1:]


def test_asyncpg_pool_queries_held_in_production(pg_cluster: pg.Cluster) -> None:
    # Production mode holds a request's plain queries and records them together (at the
    # next read of the profile, phase or span change, or its end: ext/record.c), each new
    # text's call site taken when it ran.  With every request's tasks interleaved, each
    # stored profile must still hold exactly its own request's queries, in the order they
    # ran, and each shape's first query the line that ran it.  A 500 keeps every profile.
    asyncpg = pytest.importorskip("asyncpg")

    async def go() -> None:
        pool = await asyncpg.create_pool(host=pg_cluster.host, port=pg_cluster.port,
                                         user="postgres", database="postgres",
                                         min_size=POOL, max_size=POOL)

        async def handler(request: Request) -> JSONResponse:
            n = int(request.path_params["n"])
            for sql in held_sequence(n):
                await pool.fetchval(sql)  # line: held-query
                await asyncio.sleep(0)
            return JSONResponse({}, status_code=500)

        # A slow query is recorded at once, with its parameters: with a hundred tasks on one
        # loop (under a sanitizer, on a busy machine) a query can wait 100 ms to be resumed,
        # so the threshold is out of reach here.
        app = PerformanceMiddleware(Starlette(routes=[Route("/q/{n:int}", handler)]),
                                    **options(production=True), sample_every=10**9,
                                    slow_query_threshold_ms=600_000)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                responses = await asyncio.gather(*(client.get(f"/q/{n}") for n in range(REQUESTS)))
            assert all(r.status_code == 500 for r in responses)
        finally:
            await pool.close()

    _core.get_store().clear()
    held = _core.hook_stats()["held"]
    with QueryTimer("asyncpg"):
        asyncio.run(go())
    # Per request: the first four texts with their repeats (eight, as many as a request
    # holds), then the fifth is recorded at once with the eight, its repeat held; the sixth
    # text is recorded at once: the request took the four call sites it takes for held
    # queries.  Nine of eleven held.
    assert _core.hook_stats()["held"] - held == 9 * REQUESTS
    profiles = [json.loads(p.to_json()) for p in _core.get_store().get_recent(REQUESTS)]
    assert sorted(int(p["path"].rsplit("/", 1)[1]) for p in profiles) == list(range(REQUESTS))
    for profile in profiles:
        n = int(profile["path"].rsplit("/", 1)[1])
        queries = ours(profile)
        assert [q["sql"] for q in queries] == held_sequence(n)
        starts = [q["start_offset_ns"] for q in queries]
        assert starts == sorted(starts)
        for k, q in enumerate(queries):
            if k % 2 == 0:  # each shape's first query
                assert_site(q.get("callsite"), __file__, line("held-query"))
            else:
                assert q.get("callsite") is None


def test_psycopg_async_connections(pg_cluster: pg.Cluster) -> None:
    psycopg = pytest.importorskip("psycopg")

    async def go() -> list[dict[str, Any]]:
        idle: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(POOL):
            idle.put_nowait(await psycopg.AsyncConnection.connect(pg_cluster.conninfo,
                                                                   autocommit=True))

        async def run(sql: str) -> Any:
            conn = await idle.get()
            try:
                return (await (await conn.execute(sql)).fetchone())[0]
            finally:
                idle.put_nowait(conn)

        try:
            return await hammer(make_app(run, "psycopg"))
        finally:
            while not idle.empty():
                await idle.get_nowait().close()

    with QueryTimer("psycopg"):
        check(asyncio.run(go()), "psycopg")


def test_a_failing_query_names_its_line_across_the_middlewares_awaitable(
        pg_cluster: pg.Cluster) -> None:
    # asyncio hands a driver's error to the task with throw(), which CPython runs without the
    # frame awaiting the query on the stack; its call site is found down the task's chain of
    # awaits, which here passes through the middleware's own awaitable (ASGICall, C).
    asyncpg = pytest.importorskip("asyncpg")

    async def go() -> None:
        pool = await asyncpg.create_pool(host=pg_cluster.host, port=pg_cluster.port,
                                         user="postgres", database="postgres",
                                         min_size=1, max_size=1)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            async with pool.acquire() as con:
                try:
                    await con.fetchval("SELECT * FROM nprof_missing")  # line: asgi-fail
                except asyncpg.exceptions.UndefinedTableError:
                    pass
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"failed"})

        # Production mode: nothing of nanoprof's runs as a coroutine between the awaitable
        # and the app (a 500 keeps the profile in the store).
        mw = PerformanceMiddleware(app, **options(production=True))
        try:
            transport = httpx.ASGITransport(app=mw)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/fail")).status_code == 500
        finally:
            await pool.close()

    _core.get_store().clear()
    with QueryTimer("asyncpg"):
        asyncio.run(go())
    profile = json.loads(_core.get_store().get_recent(1)[0].to_json())
    failed = [q for q in profile["queries"] if q.get("error")]
    assert [q["sql"] for q in failed] == ["SELECT * FROM nprof_missing"]
    assert_site(failed[0].get("callsite"), __file__, line("asgi-fail"))
