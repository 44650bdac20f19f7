"""Two app processes (plain ASGI under uvicorn, plain WSGI under gunicorn, production mode)
write their slow queries into one PostgreSQL table through their own SlowQueryLog, and the
dashboard's cluster view in each shows the slow queries of both.

Each process runs a query shape both share and one of its own, all slow by pg_sleep (over
the 1 ms threshold).  The cluster view groups by fingerprint, so "both processes" shows as:
the shared shape counted for both, and each process's own shape, in either process's view.
The table's pid column says which process wrote which row.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

import e2e_apps
from pg import Cluster
from support import DASHBOARD, eventually, server

pytest.importorskip("psycopg2")

WAIT_S = 60.0  # generous: two cores shared with other test runs
# kind -> (its tag: the alias of its own query shape, requests to /query): distinct counts,
# so a view that counted one process twice or missed one cannot match.
PROCESSES = {"asgi": ("a", 3), "wsgi": ("b", 5)}
AUTH = {"X-Profile-Token": e2e_apps.TOKEN}


@pytest.fixture(scope="module")
def table() -> str:
    return f"nprof_e2e_cluster_{os.getpid()}"


@pytest.fixture(scope="module")
def instances(pg_cluster: Cluster, table: str) -> Iterator[dict[str, str]]:
    """kind -> base URL of the two app processes, both logging into `table`."""
    with ExitStack() as stack:
        yield {
            kind: stack.enter_context(
                server(
                    kind,
                    f"e2e_apps:served_{kind}",
                    env={
                        "NANOPROF_E2E_DSN": pg_cluster.conninfo,
                        "NANOPROF_E2E_TABLE": table,
                        "NANOPROF_E2E_TAG": tag,
                    },
                )
            )
            for kind, (tag, _) in PROCESSES.items()
        }


def _expected_counts() -> dict[str, int]:
    """Rows per query shape (by its alias) that the traffic below leaves in the table."""
    counts = {e2e_apps.SHARED_ALIAS: sum(n for _, n in PROCESSES.values())}
    counts.update({e2e_apps.own_alias(tag): n for tag, n in PROCESSES.values()})
    return counts


def _counts_by_alias(cluster: dict[str, Any]) -> dict[str, int]:
    """The cluster view's count per query shape, keyed by the alias its SQL carries."""
    assert "error" not in cluster, cluster
    counts = {}
    for row in cluster["by_fingerprint"]:
        m = re.search(r"\bAS (e2e_\w+)", row["normalized_sql"])
        assert m, row
        counts[m.group(1)] = int(row["count"])
    return counts


def _cluster_of_json(url: str) -> dict[str, Any]:
    r = httpx.get(url + DASHBOARD + "/json", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return json.loads(r.text)["cluster"]  # type: ignore[no-any-return]


def _cluster_of_page(url: str) -> dict[str, Any]:
    """The cluster view in the HTML page: the JSON document it embeds for its script."""
    r = httpx.get(url + DASHBOARD, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    m = re.search(r'<script id="nprof-data" type="application/json">(.*?)</script>', r.text, re.S)
    assert m, r.text[:2000]
    return json.loads(m.group(1))["cluster"]  # type: ignore[no-any-return]


def _assert_view_shows(url: str, want: dict[str, int]) -> None:
    cluster = _cluster_of_json(url)
    assert _counts_by_alias(cluster) == want, cluster


def test_each_cluster_view_shows_the_slow_queries_of_both_processes(
    instances: dict[str, str], pg_cluster: Cluster, table: str
) -> None:
    pids = {}
    for kind, url in instances.items():
        with httpx.Client(base_url=url, timeout=30) as client:
            pids[kind] = client.get("/whoami").json()["pid"]
            for _ in range(PROCESSES[kind][1]):
                assert client.get("/query").status_code == 200
    assert len(set(pids.values())) == 2, pids
    want = _expected_counts()

    # The logs write in the background: wait for every row in each process's view.  Exact
    # counts: a query sent by both the QueryTimer and the middleware would show twice.
    for url in instances.values():
        eventually(lambda u=url: _assert_view_shows(u, want), WAIT_S, pause_s=0.2)

    # Who wrote what: each process its own shape and its share of the shared one.
    rows = pg_cluster.query(
        f"SELECT pid, count(*) FILTER (WHERE sql_text LIKE %s), count(*) FROM {table} "
        "GROUP BY pid",
        f"%{e2e_apps.SHARED_ALIAS}%",
    )
    assert {pid: (shared, n) for pid, shared, n in rows} == {
        pids[kind]: (n, 2 * n) for kind, (_, n) in PROCESSES.items()
    }

    for kind, url in instances.items():
        cluster = _cluster_of_json(url)
        # This process's own log wrote its own rows only; the view read everyone's.
        assert cluster["written"] == 2 * PROCESSES[kind][1], cluster
        assert cluster["dropped"] == 0, cluster
        assert _counts_by_alias(_cluster_of_page(url)) == want
        # ...and says how many processes logged each shape: both for the shared one.
        seen_by = {re.search(r"\bAS (e2e_\w+)", row["normalized_sql"]).group(1):  # type: ignore[union-attr]
                   (int(row["processes"]), int(row["hosts"])) for row in cluster["by_fingerprint"]}
        assert seen_by == {alias: ((2, 1) if alias == e2e_apps.SHARED_ALIAS else (1, 1))
                           for alias in want}, cluster
