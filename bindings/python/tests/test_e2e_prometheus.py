"""A real Prometheus scrapes <dashboard_path>/metrics from two app processes (plain ASGI
under uvicorn, plain WSGI under gunicorn, both in production mode: Prometheus passes the
token as the profile_token parameter), and PromQL over both instances gives back the
requests they served, summed, and a p99 from the latency histogram.

What a user relies on: /metrics is valid exposition that Prometheus ingests; the counters are
exact (the scrapes themselves are never counted); the histogram's buckets are cumulative and
sum across instances, so histogram_quantile() over `sum by (le)` is meaningful.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

import e2e_apps
from prom import Prometheus, binary, prometheus
from support import DASHBOARD, eventually, server

WAIT_S = 60.0  # generous: two cores shared with other test runs
# Distinct counts per process, so a sum that took one twice or missed one cannot match.
TRAFFIC = {"asgi": {"/slow": 23, "/fast": 4}, "wsgi": {"/slow": 17, "/fast": 9}}
SLOW_ROUTE = '{route="/slow"}'


@pytest.fixture(scope="module")
def instances() -> Iterator[dict[str, str]]:
    """kind -> base URL of the two app processes (none started without prometheus)."""
    binary()
    with ExitStack() as stack:
        yield {
            kind: stack.enter_context(server(kind, f"e2e_apps:served_{kind}"))
            for kind in TRAFFIC
        }


def _instance(url: str) -> str:
    """The `instance` label Prometheus gives a target: its host:port."""
    return url.removeprefix("http://")


def _own_requests_total(url: str) -> float:
    """nanoprof_requests_total as the process itself exposes it now."""
    r = httpx.get(
        url + DASHBOARD + "/metrics", headers={"X-Profile-Token": e2e_apps.TOKEN}, timeout=30
    )
    assert r.status_code == 200, r.text
    m = re.search(r"^nanoprof_requests_total (\S+)$", r.text, re.M)
    assert m, r.text
    return float(m.group(1))


def _assert_all_up(prom: Prometheus, urls: list[str]) -> None:
    up = prom.by_instance('up{job="nanoprof"}')
    assert up == {_instance(u): 1.0 for u in urls}, (up, prom.targets())


def _assert_scraped_since(prom: Prometheus, urls: list[str], since: float) -> None:
    # timestamp() is the scrape's start; Prometheus may move it by a few ms to align
    # scrapes, hence the margin.
    stamps = prom.by_instance("timestamp(nanoprof_requests_total)")
    assert set(stamps) == {_instance(u) for u in urls}, stamps
    assert all(ts > since + 0.05 for ts in stamps.values()), (stamps, since)


def test_promql_sums_requests_of_two_processes_and_gives_a_p99(
    instances: dict[str, str],
) -> None:
    urls = list(instances.values())
    targets = [_instance(u) for u in urls]
    params = {"profile_token": e2e_apps.TOKEN}
    with prometheus(targets, DASHBOARD + "/metrics", params) as prom:
        # Scraped with the token before any traffic (a 403 would show as up == 0).
        eventually(lambda: _assert_all_up(prom, urls), WAIT_S, pause_s=0.2)

        for kind, url in instances.items():
            with httpx.Client(base_url=url, timeout=30) as client:
                for path, n in TRAFFIC[kind].items():
                    for _ in range(n):
                        assert client.get(path).status_code == 200
        # A process counts a request when it ends, which may be after the client has the
        # response (WSGI close()): wait until each has counted all of its own.
        for kind, url in instances.items():
            expected = sum(TRAFFIC[kind].values())
            eventually(lambda u=url, n=expected: _assert_equal(_own_requests_total(u), n), WAIT_S)
        counted_at = time.time()
        eventually(lambda: _assert_scraped_since(prom, urls, counted_at), WAIT_S, pause_s=0.2)

        per_instance = prom.by_instance("sum by (instance) (nanoprof_requests_total)")
        assert per_instance == {
            _instance(instances[kind]): float(sum(TRAFFIC[kind].values())) for kind in TRAFFIC
        }
        total = sum(sum(t.values()) for t in TRAFFIC.values())
        assert prom.scalar("sum(nanoprof_requests_total)") == total
        slow = sum(t["/slow"] for t in TRAFFIC.values())
        assert prom.scalar(f"sum(nanoprof_route_requests_total{SLOW_ROUTE})") == slow
        assert prom.scalar(f"sum(nanoprof_request_duration_seconds_count{SLOW_ROUTE})") == slow

        # Every /slow request slept SLOW_S (20 ms): none is in the buckets up to 10 ms, all
        # are in +Inf, so the p99 interpolated from the summed buckets is at least SLOW_S,
        # and finite: below the largest finite bound (10 s) unless 1% took longer.
        bucket = "sum(nanoprof_request_duration_seconds_bucket{{route=\"/slow\",le=\"{}\"}})"
        assert prom.scalar(bucket.format("0.01")) == 0
        assert prom.scalar(bucket.format("+Inf")) == slow
        p99 = prom.scalar(
            "histogram_quantile(0.99, sum by (le) "
            f"(nanoprof_request_duration_seconds_bucket{SLOW_ROUTE}))"
        )
        assert math.isfinite(p99) and e2e_apps.SLOW_S <= p99 <= 10.0, p99


def _assert_equal(got: float, want: float) -> None:
    assert got == want, (got, want)
