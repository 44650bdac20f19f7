"""query_budget: counts and SQL time of a block, sync and async, nested, over threads;
the failure's report; and the pytest plugin (marker and fixture) run through pytester."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest

from dbcheck import line
from nanoprof import _core
from nanoprof.budget import QueryBudgetExceeded, query_budget
from nanoprof.db import QueryTimer

pytest_plugins = ["pytester"]


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    with QueryTimer("sqlite3"):
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.execute("CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO author (name) VALUES (?)", [("a",), ("b",), ("c",)])
        yield conn
        conn.close()


def lookup(db: sqlite3.Connection, n: int) -> None:
    for i in range(n):
        db.execute("SELECT name FROM author WHERE id = ?", (i,))  # line: budget-loop


def test_within_budget_passes_and_counts(db: sqlite3.Connection) -> None:
    with query_budget(max_queries=2) as budget:
        lookup(db, 2)
    assert budget.count == 2 and budget.sql_ms > 0


def test_over_budget_fails_with_queries_grouped_by_shape(db: sqlite3.Connection) -> None:
    with pytest.raises(QueryBudgetExceeded) as raised:
        with query_budget(max_queries=3):
            lookup(db, 4)
            db.execute("SELECT count(*) FROM author")
    message = str(raised.value)
    assert isinstance(raised.value, AssertionError)
    assert message.startswith("query budget exceeded: 5 queries (max 3)")
    lines = message.splitlines()
    # The most frequent shape first, with its call site and an example.
    assert lines[2].startswith("  4 x, ") and f"test_budget.py:{line('budget-loop')} in lookup" in lines[2]
    assert lines[3].strip() == "SELECT name FROM author WHERE id = ?"
    assert lines[4].startswith("  1 x, ") and "test_budget.py:" in lines[4]
    assert len(raised.value.queries) == 5 and raised.value.max_queries == 3


def test_sql_time_budget() -> None:
    with pytest.raises(QueryBudgetExceeded, match=r"50\.000 ms of SQL \(max 10 ms\)"):
        with query_budget(max_sql_ms=10):
            _core.record_sql("SELECT pg_sleep(0.05)", 50_000_000)
    with query_budget(max_sql_ms=60, max_queries=1):
        _core.record_sql("SELECT pg_sleep(0.05)", 50_000_000)


def test_failed_queries_and_batches_show_in_the_report(db: sqlite3.Connection) -> None:
    with pytest.raises(QueryBudgetExceeded) as raised, query_budget(max_queries=0):
        db.executemany("INSERT INTO author (name) VALUES (?)", [("d",), ("e",)])
        with pytest.raises(sqlite3.OperationalError):
            db.execute("SELECT nope FROM author")
    message = str(raised.value)
    assert "(a batch of 2 rows)" in message and "1 failed" in message


def test_an_exception_leaving_the_block_is_not_masked(db: sqlite3.Connection) -> None:
    with pytest.raises(KeyError, match="mine"):
        with query_budget(max_queries=0):
            lookup(db, 3)
            raise KeyError("mine")


def test_nested_budgets_each_count_their_own_block(db: sqlite3.Connection) -> None:
    with query_budget(max_queries=10) as outer:
        lookup(db, 1)
        with pytest.raises(QueryBudgetExceeded, match=r"2 queries \(max 1\)"):
            with query_budget(max_queries=1) as inner:
                lookup(db, 2)
        lookup(db, 1)
    assert (outer.count, inner.count) == (4, 2)


def test_async_with_and_concurrent_tasks(db: sqlite3.Connection) -> None:
    async def task(n: int) -> None:
        for _ in range(n):
            lookup(db, 1)
            await asyncio.sleep(0)

    async def go() -> int:
        async with query_budget(max_queries=6) as budget:
            await asyncio.gather(task(2), task(3))
        with pytest.raises(QueryBudgetExceeded):
            async with query_budget(max_queries=1):
                await asyncio.gather(task(1), task(1))
        return budget.count

    assert asyncio.run(go()) == 5


def test_queries_of_other_threads_count(db: sqlite3.Connection) -> None:
    with query_budget() as budget:
        worker = threading.Thread(target=lookup, args=(db, 3))
        worker.start()
        worker.join()
    assert budget.count == 3


def test_as_a_decorator_sync_and_async(db: sqlite3.Connection) -> None:
    @query_budget(max_queries=1)
    def view(n: int) -> str:
        lookup(db, n)
        return "ok"

    @query_budget(max_queries=1)
    async def aview(n: int) -> str:
        lookup(db, n)
        return "ok"

    assert view(1) == "ok" and view(1) == "ok"  # a fresh budget per call
    with pytest.raises(QueryBudgetExceeded):
        view(2)
    assert asyncio.run(aview(1)) == "ok"
    with pytest.raises(QueryBudgetExceeded):
        asyncio.run(aview(2))


def test_an_observer_set_before_is_chained_and_restored(db: sqlite3.Connection) -> None:
    seen: list[str] = []
    previous = _core.set_query_observer(lambda event: seen.append(event.sql))
    try:
        with query_budget() as budget:
            lookup(db, 1)
        lookup(db, 1)
        assert _core.set_query_observer(None) is not None
    finally:
        _core.set_query_observer(previous)
    assert budget.count == 1 and len(seen) == 2


def test_bad_limits_say_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"max_queries=\.\.\.\): a whole number >= 0"):
        query_budget(max_queries=-1)
    with pytest.raises(ValueError, match=r"max_sql_ms=\.\.\.\): milliseconds >= 0"):
        query_budget(max_sql_ms="10")  # type: ignore[arg-type]
    budget = query_budget()
    with budget, pytest.raises(RuntimeError, match="already open"):
        with budget:
            pass


# ---- the pytest plugin -----------------------------------------------------------------------

INNER = '''
import asyncio, sqlite3
import pytest
from nanoprof.db import QueryTimer

timer = QueryTimer("sqlite3").install()
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT)")

def load(n):
    for i in range(n):
        db.execute("SELECT name FROM author WHERE id = ?", (i,))  # line: inner-loop

@pytest.mark.query_budget(max_queries=2)
def test_over():
    load(3)

@pytest.mark.query_budget(max_queries=3)
def test_within():
    load(3)

@pytest.mark.query_budget(max_queries=1)
def test_async_over():
    async def go():
        load(2)
    asyncio.run(go())

def test_fixture(query_budget):
    with query_budget(max_queries=1):
        load(1)
    with pytest.raises(AssertionError, match="2 queries"):
        with query_budget(max_queries=1):
            load(2)

@pytest.mark.query_budget(max_queries=0)
def test_failure_is_not_masked():
    load(1)
    raise KeyError("own failure")

@pytest.mark.query_budget(max_queries="many")
def test_bad_marker():
    pass
'''


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Loaded by -p, whether or not the installed package's entry point is there already.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = pytester.makepyfile(test_inner=INNER)
    return path


def test_plugin_marker_and_fixture_report_call_sites(pytester: pytest.Pytester, inner: Any) -> None:
    result = pytester.runpytest_subprocess("-p", "nanoprof.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=4)
    out = result.stdout.str()
    loop_line = line("inner-loop", str(inner))
    result.stdout.fnmatch_lines([
        "*QueryBudgetExceeded: query budget exceeded: 3 queries (max 2)*",
        f"*3 x, * ms  at *test_inner.py:{loop_line} in load*",
        "*SELECT name FROM author WHERE id = ?*",
    ])
    assert "2 queries (max 1)" in out  # the async test
    assert "KeyError: 'own failure'" in out
    assert "max_queries=<int>" in out  # the bad marker says what to write
    assert "site-packages" not in "\n".join(
        l for l in out.splitlines() if " x, " in l)


def test_plugin_marker_is_registered(pytester: pytest.Pytester, inner: Any) -> None:
    result = pytester.runpytest_subprocess("-p", "nanoprof.pytest_plugin", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.query_budget(max_queries=None, max_sql_ms=None)*"])


def test_the_package_declares_the_pytest11_entry_point() -> None:
    names = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    if "nanoprof" not in names:
        pytest.skip("the installed nanoprof predates the entry point: pip install -e again")
    assert names["nanoprof"] == "nanoprof.pytest_plugin"
