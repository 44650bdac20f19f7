"""libnanoprof_pq.so preloaded together with the psycopg2 and psycopg hooks: each query is
recorded once, by the hook (which has the call site and the parameters), and the shim
underneath stays quiet for it (QueryRecorder.start keeps it off on that thread until
finish).  Run in a subprocess, since LD_PRELOAD acts at process start."""

from __future__ import annotations

import pytest

import pg
from preloaded import run_app

APP = r'''
from nanoprof.db import QueryTimer

driver, conninfo = sys.argv[1], sys.argv[2]
QueryTimer(driver).install()
if driver == "psycopg2":
    import psycopg2 as dbapi
else:
    import psycopg as dbapi
conn = dbapi.connect(conninfo)

def app(environ, start_response):
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_class")
    for i in range(6):
        cur.execute("SELECT relname FROM pg_class WHERE oid = %s", (i,))
        cur.fetchall()
    cur.executemany("SELECT %s::int", [(1,), (2,), (3,)])
    conn.commit()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

_, body = profiled_request(app)
print(json.dumps(json.loads(body)))
'''


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_preloaded_shim_and_hook_record_each_query_once(pg_cluster: pg.Cluster,
                                                         driver: str) -> None:
    pytest.importorskip(driver)
    profile = run_app(APP, driver, pg_cluster.conninfo)
    texts = [q["sql"] for q in profile["queries"]]
    # 1 count + 6 lookups + 1 executemany (one query of 3 rows); COMMIT is the driver's
    # own call outside any execute, which the shim records.
    expected = (["SELECT count(*) FROM pg_class"]
                + ["SELECT relname FROM pg_class WHERE oid = %s"] * 6 + ["SELECT %s::int"])
    assert [t for t in texts if t != "COMMIT"] == expected, texts
    assert profile["sql_count"] == len(texts)
