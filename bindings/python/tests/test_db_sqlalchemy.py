"""QueryTimer over SQLAlchemy 2.x engines, sync (psycopg, psycopg2) and async (asyncpg,
psycopg), with the drivers' own hooks installed underneath: every query once, with its
call site in the application (in async mode too, where SQLAlchemy's events run in a
greenlet that does not show the application's frames)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pg
from dbcheck import assert_application, assert_no_secrets, assert_site, line
from dbcheck import collect, ours, profiled
from nanoprof.db import QueryTimer
from nanoprof.db._base import sql_text
from pg import CARD, EMAIL, PASSWORD, TOKEN

sa = pytest.importorskip("sqlalchemy")
from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import ProgrammingError  # noqa: E402

SELECT = "SELECT name FROM nprof_user WHERE id = :id"
UPDATE = "UPDATE nprof_user SET name = name WHERE id = :id"


def run_sync(engine: Any) -> tuple[Any, BaseException]:
    with engine.connect() as conn:
        name = conn.execute(text(SELECT), {"id": 2}).scalar_one()  # line: sa-select
        conn.execute(text(UPDATE), [{"id": 1}, {"id": 2}, {"id": 3}])  # line: sa-many
        conn.execute(text("SELECT id FROM nprof_user WHERE password = :password AND token = :token"),
                     {"password": PASSWORD, "token": TOKEN})
        conn.execute(text("SELECT id FROM nprof_user WHERE email = :email AND card = :card"),
                     {"email": EMAIL, "card": CARD})
        try:
            conn.execute(text("SELECT * FROM nprof_missing"))  # line: sa-fail
        except ProgrammingError as exc:
            return name, exc
    raise AssertionError("no error")


async def run_async(engine: Any) -> tuple[Any, BaseException]:
    async with engine.connect() as conn:
        name = (await conn.execute(text(SELECT), {"id": 2})).scalar_one()  # line: sa-async-select
        await conn.execute(text(UPDATE), [{"id": 1}, {"id": 2}, {"id": 3}])  # line: sa-async-many
        await conn.execute(text("SELECT id FROM nprof_user WHERE email = :email AND card = :card"),
                           {"email": EMAIL, "card": CARD})
        try:
            await conn.execute(text("SELECT * FROM nprof_missing"))  # line: sa-async-fail
        except ProgrammingError as exc:
            return name, exc
    raise AssertionError("no error")


@pytest.fixture(params=["psycopg", "psycopg2"])
def engine(request: pytest.FixtureRequest, pg_cluster: pg.Cluster) -> Any:
    # Every hook at once: the Engine class and the drivers' module-wide hooks under it.
    with QueryTimer():
        engine = sa.create_engine(pg_cluster.url(request.param), poolclass=sa.pool.NullPool)
        yield engine
        engine.dispose()


@pytest.fixture(params=["asyncpg", "psycopg"])
def async_url(request: pytest.FixtureRequest, pg_cluster: pg.Cluster) -> str:
    pytest.importorskip(request.param)
    return pg_cluster.url(request.param)


def test_sync_engine_records_each_query_once_with_rows_and_errors(engine: Any) -> None:
    with profiled() as box, collect() as seen:
        name, exc = run_sync(engine)
    assert name == "user2"
    assert isinstance(exc.orig, Exception) and "nprof_missing" in str(exc)
    got = [q["sql"] for q in ours(box.dict)]
    assert len(got) == 5, got
    assert got[0].startswith("SELECT name FROM nprof_user WHERE id = ")
    events = [e for e in seen.queries if "nprof_" in e.sql]
    assert [e.rows for e in events] == [0, 3, 0, 0, 0]
    assert [e.error is not None for e in events] == [False, False, False, False, True]
    assert_no_secrets(box.json)


def test_sync_call_sites_are_the_application_lines(engine: Any) -> None:
    with collect() as seen:
        run_sync(engine)
    events = [e for e in seen.queries if "nprof_" in e.sql]
    assert_site(events[0].callsite, __file__, line("sa-select"))
    assert_site(events[1].callsite, __file__, line("sa-many"))
    assert_site(events[-1].callsite, __file__, line("sa-fail"))
    for e in seen.queries:
        assert_application(e.callsite)


def test_async_engine_records_each_query_once_with_call_sites(async_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go() -> tuple[Any, BaseException]:
        engine = create_async_engine(async_url, poolclass=sa.pool.NullPool)
        try:
            with QueryTimer(engine):
                return await run_async(engine)
        finally:
            await engine.dispose()

    # The drivers' module-wide hooks are on too: the guard keeps them from recording again.
    with QueryTimer("asyncpg"), QueryTimer("psycopg"), profiled() as box, collect() as seen:
        name, exc = asyncio.run(go())
    assert name == "user2" and "nprof_missing" in str(exc)
    events = [e for e in seen.queries if "nprof_" in e.sql]
    assert [e.rows for e in events] == [0, 3, 0, 0]
    assert [e.error is not None for e in events] == [False, False, False, True]
    assert len(ours(box.dict)) == 4
    assert_no_secrets(box.json)
    assert_site(events[0].callsite, __file__, line("sa-async-select"))
    assert_site(events[1].callsite, __file__, line("sa-async-many"))
    assert_site(events[-1].callsite, __file__, line("sa-async-fail"))


def test_call_sites_in_the_profile_json(engine: Any) -> None:
    with profiled() as box:
        run_sync(engine)
    first = ours(box.dict)[0]
    assert_site(first.get("callsite"), __file__, line("sa-select"))


def test_text_clause_and_uninstall(pg_cluster: pg.Cluster) -> None:
    assert sql_text(text("SELECT 1")) == "SELECT 1"
    engine = sa.create_engine(pg_cluster.url("psycopg"), poolclass=sa.pool.NullPool)
    timer = QueryTimer(engine).install()
    with collect() as seen, engine.connect() as conn:
        conn.execute(text("SELECT 1 FROM nprof_user LIMIT 1"))
        timer.uninstall()
        conn.execute(text("SELECT 2 FROM nprof_user LIMIT 1"))
    engine.dispose()
    # (SQLAlchemy's own first-connect queries, select pg_catalog.version() and the like, are
    # recorded too, as the drivers' hooks record them.)
    assert [e.sql for e in seen.queries if "nprof_" in e.sql] == [
        "SELECT 1 FROM nprof_user LIMIT 1"]


def test_an_engine_class_hook_and_an_engine_hook_record_once(pg_cluster: pg.Cluster) -> None:
    from sqlalchemy.engine import Engine

    engine = sa.create_engine(pg_cluster.url("psycopg"), poolclass=sa.pool.NullPool)
    with QueryTimer(Engine), QueryTimer(engine), collect() as seen, engine.connect() as conn:
        conn.execute(text("SELECT 1 FROM nprof_user LIMIT 1"))
    engine.dispose()
    assert [e.sql for e in seen.queries if "nprof_" in e.sql] == [
        "SELECT 1 FROM nprof_user LIMIT 1"]


def test_the_hook_keeps_sqlalchemys_engine_level_event_dispatch_off(pg_cluster: pg.Cluster) -> None:
    # An engine with listeners of its own events sends every statement through SQLAlchemy's
    # engine-level dispatch, at a cost as large as the profiler's (nanoprof/db/_sqlalchemy.py):
    # the hook listens to the dialect's events, and the engine stays without listeners.
    engine = sa.create_engine(pg_cluster.url("psycopg"), poolclass=sa.pool.NullPool)
    with QueryTimer(engine), collect() as seen, engine.connect() as conn:
        assert not engine._has_events
        conn.execute(text("SELECT 1 FROM nprof_user LIMIT 1"))
        conn.execute(text(UPDATE), [{"id": 1}, {"id": 2}])
        conn.exec_driver_sql("SELECT 2 FROM nprof_user LIMIT 1")
    engine.dispose()
    ours_ = [(e.sql, e.rows) for e in seen.queries if "nprof_" in e.sql]
    assert ours_ == [("SELECT 1 FROM nprof_user LIMIT 1", 0),
                     ("UPDATE nprof_user SET name = name WHERE id = %(id)s", 2),
                     ("SELECT 2 FROM nprof_user LIMIT 1", 0)]


def test_async_queries_sit_under_the_application_in_sampled_stacks(async_url: str) -> None:
    # The cursor call runs in SQLAlchemy's greenlet, whose frames are all SQLAlchemy's: the
    # query goes under the frame the task's greenlet switched from, as its call site does.
    import nanoprof
    from nanoprof import _core
    from sqlalchemy.ext.asyncio import create_async_engine

    async def application_code(engine: Any) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM nprof_user LIMIT 1"))

    async def go() -> str:
        engine = create_async_engine(async_url, poolclass=sa.pool.NullPool)
        try:
            with QueryTimer(engine):
                _core.start_profile(method="GET", path="/flame")
                _core.sample_current(1)
                await application_code(engine)
                flame = nanoprof.get_current_profile().flame()
                _core.end_profile()
                return flame
        finally:
            await engine.dispose()

    flame = asyncio.run(go())
    sql = [s for s in flame.splitlines() if ";SQL " in s and "nprof_user" in s]
    assert sql and all(".application_code (" in s for s in sql), flame
