"""libnanoprof_pq.so preloaded under a Python WSGI app using psycopg2: the queries the shim
times land in the profile the Python middleware opened, because the process has one
libnanoprof (the extension links the same shared library the shim does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pg
import pytest

import nanoprof
from preloaded import run_app

APP = r'''
import psycopg2

conninfo = sys.argv[1]
conn = psycopg2.connect(conninfo)

def app(environ, start_response):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class")
        for i in range(6):
            cur.execute("SELECT relname FROM pg_class WHERE oid = %s", (i,))
            cur.fetchall()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

status, body = profiled_request(app)
# Outside any request the shim still works and records into no profile.
with conn.cursor() as cur:
    cur.execute("SELECT 1")
maps = open("/proc/self/maps").read()
libs = sorted({line.split()[-1] for line in maps.splitlines() if "libnanoprof.so" in line})
print(json.dumps({"status": status, "body": body.decode(), "libs": libs}))
'''


@pytest.fixture(scope="module")
def conninfo() -> Iterator[str]:
    pytest.importorskip("psycopg2")
    cluster = pg.start()
    try:
        yield cluster.conninfo
    finally:
        cluster.stop()


def test_preloaded_shim_records_psycopg2_queries_into_the_middlewares_profile(conninfo: str) -> None:
    out = run_app(APP, conninfo)
    assert out["status"] == ["200 OK"]
    profile = json.loads(out["body"])
    # psycopg2 opens a transaction first: its BEGIN is recorded too (and kept out of the
    # N+1 counts by the sql_ignore rule).
    texts = [q["sql"] for q in profile["queries"]]
    assert texts[:2] == ["BEGIN", "SELECT count(*) FROM pg_class"]
    assert texts[2:] == [f"SELECT relname FROM pg_class WHERE oid = {i}" for i in range(6)]
    assert profile["sql_count"] == 8
    assert all(q["duration_ns"] > 0 for q in profile["queries"])
    assert profile["sql_total_ns"] >= sum(q["duration_ns"] for q in profile["queries"])
    assert profile["sql_total_ns"] <= profile["total_ns"]


def test_one_libnanoprof_is_loaded_when_the_shim_is_preloaded(conninfo: str) -> None:
    out = run_app(APP, conninfo)
    assert len(out["libs"]) == 1, out["libs"]
    assert Path(out["libs"][0]).parent == Path(nanoprof.pq_preload_path()).parent


def test_without_the_shim_psycopg2_queries_are_not_seen(conninfo: str) -> None:
    profile = json.loads(run_app(APP, conninfo, preload=False)["body"])
    assert profile["sql_count"] == 0
