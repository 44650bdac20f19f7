"""QueryTimer over the PostgreSQL drivers against a real server: psycopg2, psycopg 3 (sync
and async) and asyncpg.  Each driver runs the same scenario (a select, an executemany, a
query with secrets in its parameters, a failing query) under a profile; the tests check
what was recorded, what the application got back, and where the queries came from."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import pg
from dbcheck import assert_application, assert_no_secrets, assert_site, line
from dbcheck import collect, ours, profiled
from nanoprof import _core
from nanoprof.db import QueryTimer
from pg import CARD, EMAIL, PASSWORD, TOKEN


@dataclass
class Outcome:
    name: str
    count: int
    prepared: Any = None
    error: BaseException | None = None
    error_site: Any = None  # the test's frame is in the error's traceback
    extra: dict[str, Any] = field(default_factory=dict)


# ---- the scenario, once per driver --------------------------------------------------------


class Driver:
    """One driver's scenario against `cluster`: `module` is the driver QueryTimer hooks,
    `prefix` starts the names of its `# line:` markers, `expected` lists the texts of its
    queries in order."""

    module: str
    prefix: str
    expected: list[str]

    def __init__(self, cluster: pg.Cluster) -> None:
        self.cluster = cluster

    def scenario(self) -> Outcome:
        raise NotImplementedError

    def closed(self) -> BaseException:
        """The driver's error for a query on a closed connection."""
        raise NotImplementedError


def query_on_closed_connection(conn: Any, error: type[BaseException]) -> BaseException:
    """Closes `conn` (a DB-API connection), then runs a query on a cursor made before:
    returns the `error` it raises."""
    cur = conn.cursor()
    conn.close()
    try:
        cur.execute("SELECT 1 FROM nprof_user")
    except error as exc:
        return exc
    raise AssertionError("no error")


class Psycopg2(Driver):
    module = "psycopg2"
    prefix = "psycopg2"
    expected = [
        "SELECT name FROM nprof_user WHERE id = %s",
        "CREATE TEMP TABLE nprof_tmp (v int)",
        "INSERT INTO nprof_tmp (v) VALUES (%s)",
        "SELECT count(*) FROM nprof_tmp",
        "SELECT id FROM nprof_user WHERE password = %(password)s AND token = %(token)s",
        "SELECT id FROM nprof_user WHERE email = %s AND card = %s",
        "SELECT * FROM nprof_missing",
    ]

    def scenario(self) -> Outcome:
        import psycopg2

        conn = psycopg2.connect(self.cluster.conninfo)
        try:
            cur = conn.cursor()
            cur.execute("SELECT name FROM nprof_user WHERE id = %s", (2,))  # line: psycopg2-select
            name = cur.fetchone()[0]
            cur.execute("CREATE TEMP TABLE nprof_tmp (v int)")
            cur.executemany("INSERT INTO nprof_tmp (v) VALUES (%s)", ((v,) for v in (1, 2, 3)))  # line: psycopg2-many
            cur.execute("SELECT count(*) FROM nprof_tmp")
            count = cur.fetchone()[0]
            cur.execute("SELECT id FROM nprof_user WHERE password = %(password)s AND token = %(token)s",
                        {"password": PASSWORD, "token": TOKEN})
            cur.execute("SELECT id FROM nprof_user WHERE email = %s AND card = %s", (EMAIL, CARD))
            try:
                cur.execute("SELECT * FROM nprof_missing")  # line: psycopg2-fail
            except psycopg2.errors.UndefinedTable as exc:
                return Outcome(name, count, error=exc)
            raise AssertionError("no error")
        finally:
            conn.close()

    def closed(self) -> BaseException:
        import psycopg2

        return query_on_closed_connection(psycopg2.connect(self.cluster.conninfo),
                                          psycopg2.InterfaceError)


class Psycopg(Driver):
    module = "psycopg"
    prefix = "psycopg"
    expected = Psycopg2.expected

    def scenario(self) -> Outcome:
        import psycopg

        with psycopg.connect(self.cluster.conninfo) as conn:
            cur = conn.cursor()
            cur.execute("SELECT name FROM nprof_user WHERE id = %s", (2,))  # line: psycopg-select
            name = cur.fetchone()[0]
            conn.execute("CREATE TEMP TABLE nprof_tmp (v int)")
            cur.executemany("INSERT INTO nprof_tmp (v) VALUES (%s)", ((v,) for v in (1, 2, 3)))  # line: psycopg-many
            count = conn.execute("SELECT count(*) FROM nprof_tmp").fetchone()[0]
            cur.execute("SELECT id FROM nprof_user WHERE password = %(password)s AND token = %(token)s",
                        {"password": PASSWORD, "token": TOKEN})
            cur.execute("SELECT id FROM nprof_user WHERE email = %s AND card = %s", (EMAIL, CARD))
            try:
                cur.execute("SELECT * FROM nprof_missing")  # line: psycopg-fail
            except psycopg.errors.UndefinedTable as exc:
                conn.rollback()
                return Outcome(name, count, error=exc)
            raise AssertionError("no error")

    def closed(self) -> BaseException:
        import psycopg

        return query_on_closed_connection(psycopg.connect(self.cluster.conninfo),
                                          psycopg.OperationalError)


class AsyncPsycopg(Driver):
    module = "psycopg"
    prefix = "apsycopg"
    expected = Psycopg.expected

    def scenario(self) -> Outcome:
        return asyncio.run(self._scenario())

    async def _scenario(self) -> Outcome:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.cluster.conninfo) as conn:
            cur = conn.cursor()
            await cur.execute("SELECT name FROM nprof_user WHERE id = %s", (2,))  # line: apsycopg-select
            name = (await cur.fetchone())[0]
            await conn.execute("CREATE TEMP TABLE nprof_tmp (v int)")
            await cur.executemany("INSERT INTO nprof_tmp (v) VALUES (%s)", ((v,) for v in (1, 2, 3)))  # line: apsycopg-many
            count = (await (await conn.execute("SELECT count(*) FROM nprof_tmp")).fetchone())[0]
            await cur.execute("SELECT id FROM nprof_user WHERE password = %(password)s AND token = %(token)s",
                              {"password": PASSWORD, "token": TOKEN})
            await cur.execute("SELECT id FROM nprof_user WHERE email = %s AND card = %s", (EMAIL, CARD))
            try:
                await cur.execute("SELECT * FROM nprof_missing")  # line: apsycopg-fail
            except psycopg.errors.UndefinedTable as exc:
                await conn.rollback()
                return Outcome(name, count, error=exc)
            raise AssertionError("no error")

    def closed(self) -> BaseException:
        async def go() -> BaseException:
            import psycopg

            conn = await psycopg.AsyncConnection.connect(self.cluster.conninfo)
            cur = conn.cursor()
            await conn.close()
            try:
                await cur.execute("SELECT 1 FROM nprof_user")
            except psycopg.OperationalError as exc:
                return exc
            raise AssertionError("no error")

        return asyncio.run(go())


class Asyncpg(Driver):
    module = "asyncpg"
    prefix = "asyncpg"
    expected = [
        "SELECT name FROM nprof_user WHERE id = $1",
        "CREATE TEMP TABLE nprof_tmp (v int)",
        "INSERT INTO nprof_tmp (v) VALUES ($1)",
        "SELECT count(*) FROM nprof_tmp",
        "SELECT id FROM nprof_user WHERE email = $1 AND card = $2",
        "SELECT name FROM nprof_user WHERE id = $1 + 0",
        "SELECT * FROM nprof_missing",
    ]

    async def connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(host=self.cluster.host, port=self.cluster.port,
                                     user="postgres", database="postgres")

    def scenario(self) -> Outcome:
        return asyncio.run(self._scenario())

    async def _scenario(self) -> Outcome:
        import asyncpg

        conn = await self.connect()
        try:
            name = await conn.fetchval("SELECT name FROM nprof_user WHERE id = $1", 2)  # line: asyncpg-select
            await conn.execute("CREATE TEMP TABLE nprof_tmp (v int)")
            await conn.executemany("INSERT INTO nprof_tmp (v) VALUES ($1)", ((v,) for v in (1, 2, 3)))  # line: asyncpg-many
            count = (await conn.fetchrow("SELECT count(*) FROM nprof_tmp"))[0]
            await conn.fetch("SELECT id FROM nprof_user WHERE email = $1 AND card = $2", EMAIL, CARD)
            stmt = await conn.prepare("SELECT name FROM nprof_user WHERE id = $1 + 0")
            prepared = await stmt.fetchval(3)  # line: asyncpg-prepared
            try:
                await conn.execute("SELECT * FROM nprof_missing")  # line: asyncpg-fail
            except asyncpg.exceptions.UndefinedTableError as exc:
                return Outcome(name, count, prepared=prepared, error=exc)
            raise AssertionError("no error")
        finally:
            await conn.close()

    def closed(self) -> BaseException:
        async def go() -> BaseException:
            import asyncpg

            conn = await self.connect()
            await conn.close()
            try:
                await conn.fetch("SELECT 1 FROM nprof_user")
            except asyncpg.InterfaceError as exc:
                return exc
            raise AssertionError("no error")

        return asyncio.run(go())


async def outlast_a_timeout(run: Callable[[str], Awaitable[Any]]) -> None:
    """Runs a query that outlasts its timeout, from a coroutine that another one awaits: the
    timeout cancels the task mid-query, so the query ends through throw(), which CPython
    runs without this frame on the stack."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await run("SELECT pg_sleep(5)")  # line: cancelled


async def cancelled_asyncpg(driver: Asyncpg) -> None:
    conn = await driver.connect()
    try:
        await outlast_a_timeout(conn.fetchval)
        assert await conn.fetchval("SELECT 1") == 1  # the connection is still usable
    finally:
        await conn.close()


async def cancelled_psycopg(driver: AsyncPsycopg) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(driver.cluster.conninfo) as conn:
        cur = conn.cursor()
        await outlast_a_timeout(cur.execute)


DRIVERS: dict[str, type[Driver]] = {"psycopg2": Psycopg2, "psycopg": Psycopg,
                                    "psycopg-async": AsyncPsycopg, "asyncpg": Asyncpg}


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest, pg_cluster: pg.Cluster) -> Iterator[Driver]:
    d = DRIVERS[request.param](pg_cluster)
    pytest.importorskip(d.module)
    with QueryTimer(d.module):
        yield d


# ---- the tests --------------------------------------------------------------------------------


def test_every_query_is_recorded_once_and_results_are_untouched(driver: Driver) -> None:
    failures = _core.hook_stats()["failures"]
    with profiled() as box:
        out = driver.scenario()
    assert _core.hook_stats()["failures"] == failures  # finish() recorded every one
    assert out.name == "user2" and out.count == 3
    if isinstance(driver, Asyncpg):
        assert out.prepared == "user3"
    assert [q["sql"] for q in ours(box.dict)] == driver.expected
    assert all(q["duration_ns"] > 0 for q in ours(box.dict))


def test_executemany_is_one_query_with_its_rows_and_errors_are_recorded(driver: Driver) -> None:
    with collect() as seen:
        out = driver.scenario()
    events = [e for e in seen.queries if "nprof_" in e.sql]
    many = [e for e in events if e.sql.startswith("INSERT")]
    assert [e.rows for e in many] == [3]
    failed = [e for e in events if e.error is not None]
    assert [e.sql for e in failed] == ["SELECT * FROM nprof_missing"]
    # The driver's own exception reached the application, with its traceback.
    assert type(out.error).__name__ in failed[0].error
    assert out.error.__traceback__ is not None


def test_secrets_in_parameters_never_reach_the_profile(driver: Driver) -> None:
    with profiled() as box:
        driver.scenario()
    assert any(q.get("params") for q in ours(box.dict)), "no parameters recorded at all"
    assert_no_secrets(box.json)


def test_call_sites_are_the_scenario_lines(driver: Driver) -> None:
    with collect() as seen:
        driver.scenario()
    events = {e.sql: e for e in seen.queries}
    for e in seen.queries:
        assert_application(e.callsite)
    first, many, fail = driver.expected[0], driver.expected[2], driver.expected[-1]
    assert_site(events[first].callsite, __file__, line(f"{driver.prefix}-select"))
    assert_site(events[many].callsite, __file__, line(f"{driver.prefix}-many"))
    assert_site(events[fail].callsite, __file__, line(f"{driver.prefix}-fail"))
    if isinstance(driver, Asyncpg):
        assert_site(events[driver.expected[5]].callsite, __file__, line("asyncpg-prepared"))


def test_call_sites_in_the_profile_json(driver: Driver) -> None:
    with profiled() as box:
        driver.scenario()
    queries = {q["sql"]: q for q in ours(box.dict)}
    assert_site(queries[driver.expected[0]].get("callsite"), __file__,
                line(f"{driver.prefix}-select"))
    for q in box.dict["queries"]:
        assert_application(q.get("callsite"))


def test_a_closed_connection_raises_the_drivers_error_recorded_as_failed(driver: Driver) -> None:
    with collect() as seen:
        exc = driver.closed()
    assert exc.__traceback__ is not None
    failed = [e for e in seen.queries if e.error is not None]
    assert [e.sql for e in failed] == ["SELECT 1 FROM nprof_user"]
    assert type(exc).__name__ in failed[0].error


@pytest.mark.parametrize("name", ["psycopg-async", "asyncpg"])
def test_a_query_cancelled_by_a_timeout_is_recorded_with_its_call_site(
        name: str, pg_cluster: pg.Cluster) -> None:
    driver = DRIVERS[name](pg_cluster)
    pytest.importorskip(driver.module)
    with QueryTimer(driver.module), collect() as seen:
        if isinstance(driver, Asyncpg):
            asyncio.run(cancelled_asyncpg(driver))
        else:
            asyncio.run(cancelled_psycopg(driver))  # type: ignore[arg-type]
    sleep = [e for e in seen.queries if e.sql == "SELECT pg_sleep(5)"]
    assert len(sleep) == 1 and "CancelledError" in (sleep[0].error or "")
    assert 150e6 < sleep[0].duration_ns < 5e9  # ended by the timeout, not by the server
    assert_site(sleep[0].callsite, __file__, line("cancelled"))
