"""QueryTimer over the standard library's sqlite3, on a temporary database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbcheck import assert_no_secrets, assert_site, collect, line, ours, profiled
from nanoprof.db import QueryTimer
from pg import CARD, EMAIL, PASSWORD, TOKEN


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    timer = QueryTimer("sqlite3").install()
    conn = sqlite3.connect(tmp_path / "test.db")
    conn.execute("CREATE TABLE nprof_user (id INTEGER PRIMARY KEY, name TEXT, email TEXT,"
                 " password TEXT, token TEXT, card TEXT)")
    conn.executemany("INSERT INTO nprof_user (name) VALUES (?)", [(f"user{i}",) for i in range(5)])
    conn.commit()
    yield conn
    conn.close()
    timer.uninstall()


def test_queries_executemany_and_errors_are_recorded_with_results_untouched(
    db: sqlite3.Connection,
) -> None:
    with profiled() as box:
        rows = db.execute("SELECT name FROM nprof_user WHERE id = ?", (2,)).fetchall()
        cur = db.cursor()
        cur.executemany("INSERT INTO nprof_user (name) VALUES (?)",
                        (("a",), ("b",), ("c",)))  # an iterator-like tuple of sets
        assert cur.rowcount == 3
        cur.executemany("INSERT INTO nprof_user (name) VALUES (:name)",
                        iter([{"name": "d"}, {"name": "e"}]))  # an iterator: not eaten
        assert cur.rowcount == 2
        with pytest.raises(sqlite3.OperationalError, match="no such table") as raised:
            db.execute("SELECT * FROM nprof_missing")
        db.executescript("UPDATE nprof_user SET name = name WHERE id = 1;")
    assert rows == [("user1",)]
    assert raised.value.__traceback__ is not None
    queries = ours(box.dict)
    assert [q["sql"] for q in queries] == [
        "SELECT name FROM nprof_user WHERE id = ?",
        "INSERT INTO nprof_user (name) VALUES (?)",
        "INSERT INTO nprof_user (name) VALUES (:name)",
        "SELECT * FROM nprof_missing",
        "UPDATE nprof_user SET name = name WHERE id = 1;",
    ]
    assert box.dict["sql_count"] == 5
    assert db.execute("SELECT count(*) FROM nprof_user").fetchone() == (10,)


def test_batches_and_errors_reach_the_observer(db: sqlite3.Connection) -> None:
    with collect() as seen:
        db.executemany("INSERT INTO nprof_user (name) VALUES (?)", [("x",), ("y",)])
        with pytest.raises(sqlite3.OperationalError) as raised:
            db.execute("SELECT nope FROM nprof_user")
    batch, failed = seen.queries
    assert batch.rows == 2 and batch.error is None
    assert failed.rows == 0
    assert failed.error is not None and "OperationalError" in failed.error
    assert "no such column" in str(raised.value)


def test_parameters_are_redacted(db: sqlite3.Connection) -> None:
    with profiled() as box:
        db.execute("SELECT id FROM nprof_user WHERE password = :password AND token = :token",
                   {"password": PASSWORD, "token": TOKEN})
        db.execute("SELECT id FROM nprof_user WHERE email = ? AND card = ?", (EMAIL, CARD))
    assert len(ours(box.dict)) == 2
    assert_no_secrets(box.json)


def test_call_site_is_the_application_line(db: sqlite3.Connection) -> None:
    with collect() as seen:
        db.execute("SELECT 1 FROM nprof_user")  # line: sqlite-select
    assert_site(seen.queries[0].callsite, __file__, line("sqlite-select"))


def test_non_ascii_sql_is_recorded_as_text(db: sqlite3.Connection) -> None:
    with collect() as seen:
        db.execute("SELECT 'é' FROM nprof_user LIMIT 1")
    assert seen.queries[0].sql == "SELECT 'é' FROM nprof_user LIMIT 1"


def test_a_connection_made_before_install_is_refused_with_what_to_do(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "early.db")
    try:
        with pytest.raises(TypeError, match=r"before calling sqlite3\.connect"):
            QueryTimer(conn).install()
    finally:
        conn.close()


def test_uninstall_restores_connect_and_connections_keep_working(tmp_path: Path) -> None:
    original = sqlite3.connect
    timer = QueryTimer(sqlite3)
    assert timer.install() is timer and timer.install() is timer  # idempotent
    assert sqlite3.connect is not original
    conn = sqlite3.connect(tmp_path / "t.db")
    timer.uninstall()
    timer.uninstall()
    assert sqlite3.connect is original
    # A connection made while installed keeps working, and records no more.
    with collect() as seen:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    assert seen.queries == []
    conn.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    assert type(conn) is sqlite3.Connection
    conn.close()
    with timer:  # installs again after an uninstall
        conn = sqlite3.connect(tmp_path / "t.db")
        with collect() as seen:
            conn.execute("SELECT 1")
        conn.close()
    assert [e.sql for e in seen.queries] == ["SELECT 1"]
    assert sqlite3.connect is original


def test_a_closed_connection_raises_its_own_error_recorded(db: sqlite3.Connection,
                                                           tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "closed.db")
    cur = conn.cursor()
    conn.close()
    with collect() as seen, pytest.raises(sqlite3.ProgrammingError, match="closed") as raised:
        cur.execute("SELECT 1")
    assert type(raised.value) is sqlite3.ProgrammingError
    assert [q.error is not None for q in seen.queries] == [True]


def load_users(db: sqlite3.Connection) -> list[str]:
    return [db.execute("SELECT name FROM nprof_user WHERE id = ?", (i,)).fetchone()[0]
            for i in range(1, 6)]


def test_a_sampled_request_shows_each_query_under_the_frame_that_ran_it(
    db: sqlite3.Connection,
) -> None:
    """Issue 16: with call stacks sampled, the hook adds each query to the tree at the stack
    that issued it, one node per shape with its executions counted."""
    from nanoprof import _core

    _core.start_profile(method="GET", path="/users")
    _core.sample_current(1)
    try:
        assert load_users(db) == [f"user{i}" for i in range(5)]
        samples = _core.get_current_profile().samples
    finally:
        _core.end_profile()
    sql = [s for s in samples["stacks"] if s["sql"]]
    assert len(sql) == 1, samples
    (node,) = sql
    assert node["count"] == 5
    assert node["frames"][-1] == "SQL SELECT name FROM nprof_user WHERE id = ?"
    assert node["frames"][-2].startswith("<listcomp>") or "load_users" in node["frames"][-2]
    assert any(f.startswith("load_users ") for f in node["frames"])
