"""libnanoprof_pq.so preloaded under a Python WSGI app using psycopg2: the queries the shim
times land in the profile the Python middleware opened, because the process has one
libnanoprof (the extension links the same shared library the shim does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import nanoprof

REPO = Path(__file__).resolve().parents[3]
PG_CLUSTER = REPO / "tests" / "pg_cluster.sh"

APP = r'''
import io, json, sys, wsgiref.util
import psycopg2
import nanoprof

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

wrapped = nanoprof.PerformanceMiddleware(app, n_plus_one_threshold=5)
environ = {}
wsgiref.util.setup_testing_defaults(environ)
environ["PATH_INFO"] = "/report"
environ["QUERY_STRING"] = "profile=json"
chunks = []
status = []
def start_response(s, h, exc_info=None):
    status.append(s)
body = wrapped(environ, start_response)
try:
    chunks.extend(body)
finally:
    close = getattr(body, "close", None)
    if close:
        close()
# Outside any request the shim still works and records into no profile.
with conn.cursor() as cur:
    cur.execute("SELECT 1")
maps = open("/proc/self/maps").read()
libs = sorted({line.split()[-1] for line in maps.splitlines() if "libnanoprof.so" in line})
print(json.dumps({"status": status, "body": b"".join(chunks).decode(), "libs": libs}))
'''


@pytest.fixture(scope="module")
def conninfo() -> Iterator[str]:
    pytest.importorskip("psycopg2")
    if not PG_CLUSTER.exists():
        pytest.skip("tests/pg_cluster.sh not found (run from the repository)")
    d = tempfile.mkdtemp(prefix="nprof-py-pg-")
    os.rmdir(d)
    r = subprocess.run(["sh", str(PG_CLUSTER), "start", d], capture_output=True, text=True)
    if r.returncode == 77:
        pytest.skip("no PostgreSQL server installed")
    assert r.returncode == 0, r.stderr
    try:
        yield r.stdout.strip()
    finally:
        subprocess.run(["sh", str(PG_CLUSTER), "stop", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def run_app(conninfo: str, preload: bool) -> dict:
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = nanoprof.pq_preload_path()
    r = subprocess.run([sys.executable, "-c", APP, conninfo], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_preloaded_shim_records_psycopg2_queries_into_the_middlewares_profile(conninfo: str) -> None:
    out = run_app(conninfo, preload=True)
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
    out = run_app(conninfo, preload=True)
    assert len(out["libs"]) == 1, out["libs"]
    assert Path(out["libs"][0]).parent == Path(nanoprof.pq_preload_path()).parent


def test_without_the_shim_psycopg2_queries_are_not_seen(conninfo: str) -> None:
    profile = json.loads(run_app(conninfo, preload=False)["body"])
    assert profile["sql_count"] == 0
