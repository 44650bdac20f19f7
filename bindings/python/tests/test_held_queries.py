"""Queries a request holds back: a plain query (not slow, not failed, its parameters not
kept, no budget watching, its text a str or bytes) is written down in the request, with
the call site of a text new to the request, and recorded when its profile is next read or
its spans change.  Nobody may be able to tell: order, spans, counts, duplicates, slow queries and
budgets come out as if every query had been recorded when it ended."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import apps
import nanoprof
from dbcheck import assert_site, line
from nanoprof import PerformanceMiddleware, _core
from nanoprof.db import QueryTimer
from nanoprof.db._base import Live
from nanoprof.wsgi import WSGIMiddleware
from test_asgi import call, run
from test_timed import STAR_CALLS, _timed_async, star_sql
from test_wsgi import serve

SQL = "SELECT * FROM nprof_item WHERE id = %s"
OTHER = "SELECT * FROM nprof_user WHERE id = %s"


def held() -> int:
    return _core.hook_stats()["held"]


def query(rec: Any, sql: str, params: Any, pause_s: float = 0.0) -> None:
    t = rec.start()
    if pause_s:
        time.sleep(pause_s)
    rec.finish(t, sql, params)


def production(inner: Any, **extra: Any) -> Any:
    # sample_every this large: no request is picked for reading, so none keeps parameters.
    return PerformanceMiddleware(inner, **apps.options(production=True), sample_every=10**9,
                                 **extra)


def stored() -> dict[str, Any]:
    return json.loads(_core.get_store().get_recent(1)[0].to_json())


async def fail(send: Any) -> None:
    # A 500 is kept in the store for reading, decided at the end: what was held is in it.
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_repeats_held_back_come_out_in_order_under_their_spans() -> None:
    rec = _core.QueryRecorder()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in (1, 2, 3):
            query(rec, SQL, (i,))
        span = _core.span_begin("inner")
        query(rec, SQL, (4,))
        query(rec, SQL, (4,))  # an exact duplicate
        query(rec, SQL, (5,), pause_s=0.003)  # slow: recorded at once, with its parameters
        query(rec, SQL, (6,))
        _core.span_end(span)
        query(rec, OTHER, (7,))
        query(rec, OTHER, (8,))
        await fail(send)

    before = held()
    run(production(inner, slow_query_threshold_ms=1, n_plus_one_threshold=5), "/held")
    assert held() - before == 8  # all but the slow one: the path under test ran
    profile = stored()
    queries = profile["queries"]
    assert [q["sql"] for q in queries] == [SQL] * 7 + [OTHER] * 2
    offsets = [q["start_offset_ns"] for q in queries]
    assert offsets == sorted(offsets)
    inner_id = next(s["id"] for s in profile["spans"] if s["name"] == "inner")
    outside = queries[0]["span"]
    assert outside != inner_id
    assert [q["span"] for q in queries] == [outside] * 3 + [inner_id] * 4 + [outside] * 2
    assert [q.get("params") for q in queries] == [None] * 5 + ["id=5"] + [None] * 3
    assert profile["sql_count"] == 9
    assert profile["duplicate_count"] == 1
    (pattern,) = profile["n_plus_one"]  # the threshold is 5: OTHER's two are not one
    assert (pattern["count"], pattern["exact_repeats"]) == (7, 1)
    assert "test_held_queries.py" in pattern["callsite"]  # taken when its first was held


def test_parameters_after_the_query_held_one_by_one_tell_duplicates_apart() -> None:
    # A (query, *args) driver method in a production request: its queries are held, their
    # values' identity taken from the arguments themselves (no tuple is made of them), and
    # the duplicates come out as they do for a tuple of the same values.  Eight queries of
    # three texts: as many as a request holds before it records them.
    live = Live(_core.QueryRecorder())
    cur = _timed_async(live)()
    calls = [a for a in STAR_CALLS if len(a) in (1, 3, 4)]
    assert len(calls) == 8
    texts = {n: star_sql(n) for n in (1, 3, 4)}  # one object each, as a literal in a loop is
    got: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for args in calls:
            got.append(await cur.fetch(texts[len(args)], *args))
        await fail(send)

    before = held()
    run(production(inner), "/held-star")
    assert got == calls
    assert held() - before == len(calls)
    profile = stored()
    assert [q["sql"] for q in profile["queries"]] == [star_sql(len(a)) for a in calls]
    assert all("params" not in q for q in profile["queries"])  # held: none were kept
    assert {d["example"]: d["exact_repeats"] for d in profile["duplicates"]} == {
        star_sql(1): 1, star_sql(3): 1, star_sql(4): 1}
    assert profile["duplicate_count"] == 3


def test_a_profile_read_during_the_request_sees_the_held_queries() -> None:
    rec = _core.QueryRecorder()
    seen: list[int] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in range(4):
            query(rec, SQL, (i,))
        view = _core.get_current_profile()
        seen.append(view.sql_count)
        seen.append(len(view.sql_queries))
        query(rec, SQL, (9,))
        seen.append(json.loads(view.to_json())["sql_count"])
        await fail(send)

    before = held()
    run(production(inner), "/read")
    assert held() - before == 5
    assert seen == [4, 4, 5]
    assert stored()["sql_count"] == 5


def test_held_queries_stay_with_the_request_that_ran_them() -> None:
    rec = _core.QueryRecorder()
    texts = {f"/r{i}": f"SELECT * FROM nprof_item_{i} WHERE id = %s" for i in range(8)}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in range(5):
            query(rec, texts[scope["path"]], (i,))
            await asyncio.sleep(0)  # the other requests run their queries in between
        await fail(send)

    app = production(inner)

    async def all_of_them() -> None:
        await asyncio.gather(*(call(app, path) for path in texts))

    before = held()
    asyncio.run(all_of_them())
    assert held() - before == 5 * len(texts)
    for p in _core.get_store().get_recent(len(texts)):
        data = json.loads(p.to_json())
        assert [q["sql"] for q in data["queries"]] == [texts[data["path"]]] * 5


def test_a_budget_sees_every_query_and_the_profile_keeps_those_before_it() -> None:
    rec = _core.QueryRecorder()
    raised: list[nanoprof.QueryBudgetExceeded] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in range(3):
            query(rec, SQL, (i,))  # held: no budget watches them
        try:
            with nanoprof.query_budget(max_queries=2):
                for i in range(3):
                    query(rec, SQL, (10 + i,))
        except nanoprof.QueryBudgetExceeded as exc:
            raised.append(exc)
        await fail(send)

    before = held()
    run(production(inner), "/budget")
    assert held() - before == 3
    assert len(raised) == 1
    assert [q.sql for q in raised[0].queries] == [SQL] * 3
    assert stored()["sql_count"] == 6


def test_development_mode_and_failed_queries_are_never_held() -> None:
    rec = _core.QueryRecorder()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in range(3):
            query(rec, SQL, (i,))
        t = rec.start()
        rec.finish(t, SQL, (3,), 0, RuntimeError("gone"))
        await fail(send)

    before = held()
    run(PerformanceMiddleware(inner, **apps.options()), "/dev")
    assert held() == before  # development keeps every query's parameters
    queries = stored()["queries"]
    assert [q.get("params") for q in queries] == ["id=0", "id=1", "id=2", "id=3"]
    run(production(inner), "/prod")
    assert held() - before == 3
    queries = stored()["queries"]
    assert queries[-1]["error"] == "RuntimeError: gone"
    assert len(queries) == 4


def test_a_sync_drivers_n_plus_one_loop_is_held_and_named_by_its_line(tmp_path: Path) -> None:
    # The real sync path: sqlite3's hooked execute in a production WSGI request.
    timer = QueryTimer("sqlite3").install()
    try:
        conn = sqlite3.connect(tmp_path / "held.db")
        conn.execute("CREATE TABLE nprof_item (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO nprof_item (name) VALUES (?)", [("a",), ("b",), ("c",)])
        names: list[str] = []

        def app(environ: Any, start_response: Any) -> list[bytes]:
            for i in (1, 2, 3, 1, 2, 3):
                names.append(conn.execute("SELECT name FROM nprof_item WHERE id = ?",  # line: loop
                                          (i,)).fetchone()[0])
            start_response("500 Internal Server Error", [])
            return [b""]

        before = held()
        mw = PerformanceMiddleware(app, **apps.options(production=True), sample_every=10**9,
                                   n_plus_one_threshold=5)
        assert isinstance(mw, WSGIMiddleware)
        assert serve(mw, "/sync").status.startswith("500")
        conn.close()
    finally:
        timer.uninstall()
    assert names == ["a", "b", "c", "a", "b", "c"]  # what the application got, untouched
    assert held() - before == 6
    profile = stored()
    assert [q["sql"] for q in profile["queries"]] == [
        "SELECT name FROM nprof_item WHERE id = ?"] * 6
    assert profile["duplicate_count"] == 3
    (pattern,) = profile["n_plus_one"]
    assert pattern["count"] == 6
    assert f"test_held_queries.py:{line('loop')} in " in pattern["callsite"]
    assert pattern["callsite"].endswith(".app")


def test_each_new_texts_call_site_is_taken_when_it_is_held() -> None:
    rec = _core.QueryRecorder()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in range(2):
            t = rec.start()
            rec.finish(t, SQL, (i,))  # line: held-item
            t = rec.start()
            rec.finish(t, OTHER, (i,))  # line: held-user
        # Literals written into the text: a new text every time, all of one shape.  The
        # request takes a call site for a few of them, then records the rest at once.
        for i in range(6):
            t = rec.start()
            rec.finish(t, f"SELECT * FROM nprof_order WHERE id = {i}", None)  # line: literal
        await fail(send)

    before = held()
    run(production(inner, n_plus_one_threshold=5), "/sites")
    assert held() - before == 4 + 2  # the first two texts and their repeats, two literals
    profile = stored()
    sites = [q.get("callsite") for q in profile["queries"]]
    assert_site(sites[0], __file__, line("held-item"))
    assert_site(sites[1], __file__, line("held-user"))
    assert_site(sites[4], __file__, line("literal"))
    assert sites[2:4] + sites[5:] == [None] * 7
    (pattern,) = profile["n_plus_one"]
    assert pattern["count"] == 6
    assert_site(pattern["callsite"], __file__, line("literal"))


def test_bytes_texts_are_held_and_other_text_types_recorded_at_once() -> None:
    rec = _core.QueryRecorder()

    class Text(str):
        pass

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for i in range(2):
            query(rec, SQL.encode(), (i,))
        # Only exact str and bytes are held: a bytearray could change before it is read,
        # and a subclass goes the way it always went.
        query(rec, Text(OTHER), (7,))
        query(rec, bytearray(OTHER.encode()), (8,))
        await fail(send)

    before = held()
    run(production(inner), "/types")
    assert held() - before == 2
    assert [q["sql"] for q in stored()["queries"]] == [SQL, SQL, OTHER, OTHER]
