"""Reference counts and memory stay flat over 100,000 requests: every object the extension
makes per request is released, on every path (ended normally, raised, never current)."""

from __future__ import annotations

import asyncio
import gc
import sys

import nanoprof
from nanoprof import _core

N = 100_000


def _flat(before: int, after: int, slack: int = 200) -> bool:
    return after - before < slack


def test_middleware_decorator_and_record_sql_leave_refcounts_flat() -> None:
    mw = _core.Middleware(dashboard_path=None)
    header_set = ("X-Profile-Token", "t")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/items/1", "QUERY_STRING": ""}

    @nanoprof.profile_handler
    def handler(i: int) -> tuple[str, int, dict[str, str]]:
        nanoprof.record_sql("SELECT * FROM t WHERE id = %s", 1000, params=(i, "x", None))
        return ("ok", 200, {})

    def one(i: int) -> None:
        req = mw.wsgi_begin(environ)
        handler(i)
        view = nanoprof.get_current_profile()
        assert view is not None and view.sql_count == 1
        req.response_headers_str(200)
        req.end(200)
        handler(i)  # alone: a request of its own

    def boom() -> None:
        raise KeyError("x")

    failing = nanoprof.profile_handler(boom)
    for i in range(1000):  # warm-up: caches, pools, interned strings
        one(i)
    gc.collect()
    objects = len(gc.get_objects())
    refs = sys.getrefcount(environ), sys.getrefcount(mw), sys.getrefcount(header_set)
    blocks = _core.ctl("stats.memory.blocks")
    total = getattr(sys, "gettotalrefcount", lambda: 0)()
    for i in range(N):
        one(i)
        if i % 10 == 0:
            try:
                failing()
            except KeyError:
                pass
    gc.collect()
    assert _flat(objects, len(gc.get_objects()))
    assert (sys.getrefcount(environ), sys.getrefcount(mw), sys.getrefcount(header_set)) == refs
    assert _core.ctl("stats.memory.blocks") - blocks < 64
    assert _flat(total, getattr(sys, "gettotalrefcount", lambda: 0)(), 1000)


def test_kept_views_are_frozen_and_released() -> None:
    kept = []
    for _ in range(1000):
        p = nanoprof.start_profile(method="TASK", path="/job")
        nanoprof.record_sql("SELECT 1", 10)
        kept.append(nanoprof.end_profile())
    gc.collect()
    objects = len(gc.get_objects())
    for _ in range(N // 10):
        nanoprof.start_profile(method="TASK", path="/job")
        nanoprof.record_sql("SELECT 1", 10)
        done = nanoprof.end_profile()
        assert done is not None and done.sql_count == 1 and done.ended
    gc.collect()
    assert _flat(objects, len(gc.get_objects()))
    assert all(k.sql_count == 1 for k in kept)


def test_async_decorator_leaves_refcounts_flat() -> None:
    @nanoprof.profile_handler
    async def handler() -> tuple[str, int, list[tuple[str, str]]]:
        nanoprof.record_sql("SELECT 1", 10)
        return ("ok", 200, [])

    async def run(n: int) -> None:
        for _ in range(n):
            await handler()

    asyncio.run(run(1000))
    gc.collect()
    objects = len(gc.get_objects())
    asyncio.run(run(N // 5))
    gc.collect()
    assert _flat(objects, len(gc.get_objects()))
