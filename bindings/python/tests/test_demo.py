"""The README's main job keeps working: the demo's flow (examples/demo: seed, app.py under
uvicorn with nanoprof mounted, traffic.explore) against the session's PostgreSQL, with less
load than scripts/demo.sh sends.  It must find the N+1 of GET /articles at the line of the
lazy-load loop, none on GET /articles/fixed, and slow queries in the UNLOGGED table."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pg

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
sys.path.insert(0, str(DEMO))

import demo  # noqa: E402
import seed  # noqa: E402
import traffic  # noqa: E402

# Its own table: other tests count the rows of the default one.
SLOW_TABLE = "nanoprof_demo_slow_queries"


def loop_line() -> int:
    """The line of app.py that lazy-loads the author inside the loop."""
    lines = (DEMO / "app.py").read_text().splitlines()
    hits = [i for i, text in enumerate(lines, 1) if "await article.awaitable_attrs.author" in text]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.fixture(scope="module")
def findings(pg_cluster: pg.Cluster) -> Iterator[traffic.Findings]:
    pg_cluster.query(f"DROP TABLE IF EXISTS {SLOW_TABLE} CASCADE")
    counts = seed.seed(pg_cluster.conninfo)
    assert counts == {"authors": seed.AUTHORS, "articles": seed.ARTICLES,
                      "comments": seed.ARTICLES * seed.COMMENTS_PER_ARTICLE}
    with demo.app_process(pg_cluster.conninfo, demo.free_port(0),
                          NANOPROF_DEMO_SLOW_TABLE=SLOW_TABLE) as base_url:
        yield asyncio.run(traffic.explore(base_url, pg_cluster.conninfo, SLOW_TABLE,
                                          requests=40, concurrency=4))


def test_every_response_carries_its_profile(findings: traffic.Findings) -> None:
    for r in findings.samples:
        assert r.status == 200
        assert r.headers["x-profile"].startswith("total="), r
        assert "sql;dur=" in r.headers["server-timing"], r
    report = next(r for r in findings.samples if r.path == "/reports/mentions")
    assert report.headers["x-slow-queries"] == "1"


def test_the_list_endpoint_has_an_n_plus_one_at_the_loop(findings: traffic.Findings) -> None:
    site = f"examples/demo/app.py:{loop_line()} in list_articles"
    [pattern] = findings.n_plus_one
    assert pattern.normalized.startswith("SELECT authors.id"), pattern
    assert pattern.count == 20  # one author query per article of the page
    assert pattern.callsite == site
    assert f'site="{site}"' in findings.n_plus_one_header
    assert ";count=20;" in findings.n_plus_one_header


def test_the_fixed_endpoint_has_none(findings: traffic.Findings) -> None:
    assert findings.fixed_n_plus_one == []
    assert findings.fixed is not None
    assert findings.fixed.headers["x-query-count"] == "2"  # the page and its authors
    assert "x-n-plus-one" not in findings.fixed.headers


def test_slow_queries_reach_the_unlogged_table(findings: traffic.Findings) -> None:
    assert findings.slow_table_unlogged
    assert findings.slow_rows, "no slow query was written"
    # The report is slow by design; on a loaded machine another route's query may cross the
    # threshold too, so the report's rows are looked for among the newest ones.
    report = [row for row in findings.slow_rows if row["route"] == "/reports/mentions"]
    assert report, findings.slow_rows
    for row in report:
        assert "ILIKE" in row["normalized_sql"]
    for row in findings.slow_rows:
        assert row["callsite"].startswith("examples/demo/app.py:"), row
        assert float(row["ms"]) >= 50


def test_the_dashboard_has_percentiles_per_route_and_a_flame_graph(
        findings: traffic.Findings) -> None:
    routes = {row["route"]: row for row in findings.routes}
    assert {"/articles", "/articles/fixed", "/reports/mentions"} <= set(routes)
    for row in routes.values():
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
    assert routes["/articles"]["n_plus_one"] >= 1
    assert routes["/articles/fixed"]["n_plus_one"] == 0
    assert findings.flame_url.endswith("/flame.svg") and findings.flame_bytes > 0
    assert any("list_articles" in stack for stack, _ in findings.flame_top)
