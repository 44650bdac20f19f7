"""The demo's traffic driver: sends app.py requests the way a person and a load would, and
collects what nanoprof says about them, from the places a user would look: the response
headers, `?profile=json`, the slow-query table in PostgreSQL, the dashboard's JSON and a
`?profile=flame` request's flame graph.  demo.py prints the result; the test
(bindings/python/tests/test_demo.py) asserts on it.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg import sql

DASHBOARD = "/debug/performance"
# The headers nanoprof adds, in the order they are shown.
PROFILE_HEADERS = ("x-profile", "server-timing", "x-query-count", "x-slow-queries",
                   "x-n-plus-one")


@dataclass
class Response:
    path: str
    status: int
    headers: dict[str, str]  # the nanoprof headers it carried, lower-case names


@dataclass
class Pattern:
    """One N+1 pattern of a request's profile (its `n_plus_one` list)."""

    normalized: str
    count: int
    total: str
    callsite: str  # "examples/demo/app.py:84 in list_articles"


@dataclass
class Findings:
    base_url: str
    samples: list[Response] = field(default_factory=list)
    n_plus_one: list[Pattern] = field(default_factory=list)  # on /articles
    n_plus_one_header: str = ""
    fixed: Response | None = None  # /articles/fixed
    fixed_n_plus_one: list[Pattern] = field(default_factory=list)
    load_requests: int = 0
    load_seconds: float = 0.0
    slow_query_sql: str = ""  # what the demo ran against the table, to show it
    slow_rows: list[dict[str, Any]] = field(default_factory=list)
    slow_table_unlogged: bool = False
    routes: list[dict[str, Any]] = field(default_factory=list)
    flame_url: str = ""
    flame_bytes: int = 0
    flame_top: list[tuple[str, int]] = field(default_factory=list)  # (stack, ns), heaviest first

    @property
    def dashboard_url(self) -> str:
        return self.base_url + DASHBOARD


def _nanoprof_headers(r: httpx.Response) -> dict[str, str]:
    return {k: r.headers[k] for k in PROFILE_HEADERS if k in r.headers}


def _patterns(profile: dict[str, Any]) -> list[Pattern]:
    return [Pattern(p["normalized"], p["count"], p["total"], p.get("callsite", ""))
            for p in profile["n_plus_one"]]


def _heaviest(collapsed: str, n: int) -> list[tuple[str, int]]:
    """The `n` stacks of a collapsed-stacks text ("a;b;c 1234" per line, nanoseconds) with the
    most time."""
    stacks = []
    for line in collapsed.splitlines():
        stack, _, ns = line.rpartition(" ")
        if stack and ns.isdigit():
            stacks.append((stack, int(ns)))
    return sorted(stacks, key=lambda s: -s[1])[:n]


async def _load(client: httpx.AsyncClient, requests: int, concurrency: int) -> None:
    """`requests` requests over the endpoints, in a mix a blog might see (mostly pages of
    one article or author, some lists, now and then the slow report), `concurrency` at a
    time.  A fixed seed: the same traffic on every run."""
    rng = random.Random(15)
    mix = (["/articles/fixed"] * 30 + ["/articles"] * 6 + ["/articles/{a}"] * 40
           + ["/authors/{u}"] * 23 + ["/reports/mentions"])
    paths = [rng.choice(mix).format(a=rng.randint(1, 1000), u=rng.randint(1, 50))
             for _ in range(requests)]
    # The slow report twice whatever the draw: the slow-query log needs visitors.
    paths[0] = paths[requests // 2] = "/reports/mentions"
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)

    async def worker() -> None:
        while not queue.empty():
            r = await client.get(queue.get_nowait())
            r.raise_for_status()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _slow_rows(dsn: str, table: str, timeout_s: float) -> tuple[str, list[dict[str, Any]], bool]:
    """The newest rows of the slow-query table, waiting up to `timeout_s` for the log's
    writer (a background thread that sends rows in batches) to have written some."""
    query = sql.SQL(
        "SELECT round(duration_ms::numeric, 1) AS ms, method, route, callsite, normalized_sql "
        "FROM {} ORDER BY timestamp DESC LIMIT 5").format(sql.Identifier(*table.split(".")))
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        shown = query.as_string(conn)
        while True:
            cur = conn.execute(query)
            names = [d.name for d in cur.description or ()]
            rows = [dict(zip(names, row)) for row in cur.fetchall()]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # relpersistence 'u': UNLOGGED, what SlowQueryLog makes unless told logged=True.
        kind = conn.execute("SELECT relpersistence FROM pg_class WHERE oid = to_regclass(%s)",
                            (table,)).fetchone()
    return shown, rows, bool(kind and kind[0] == "u")


async def explore(base_url: str, dsn: str, slow_table: str = "nanoprof_slow_queries",
                  requests: int = 400, concurrency: int = 8) -> Findings:
    """Everything the demo shows, in the order it shows it."""
    found = Findings(base_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        # FastAPI inspects an endpoint on its first call (tens of milliseconds): one call
        # each first, so the figures shown are those of a running app.
        for path in ("/articles/fixed", "/articles/1", "/authors/1"):
            (await client.get(path)).raise_for_status()
        # A few requests one at a time, as a person with curl would see them.
        for path in ("/articles/fixed", "/articles/42", "/authors/7", "/reports/mentions"):
            r = await client.get(path)
            r.raise_for_status()
            found.samples.append(Response(path, r.status_code, _nanoprof_headers(r)))

        # The N+1 on the list, from the header and from the profile's JSON (?profile=json
        # answers with the profile instead of the page).
        r = await client.get("/articles")
        found.n_plus_one_header = r.headers.get("x-n-plus-one", "")
        found.n_plus_one = _patterns((await client.get("/articles?profile=json")).json())
        r = await client.get("/articles/fixed")
        found.fixed = Response("/articles/fixed", r.status_code, _nanoprof_headers(r))
        found.fixed_n_plus_one = _patterns(
            (await client.get("/articles/fixed?profile=json")).json())

        t0 = time.monotonic()
        await _load(client, requests, concurrency)
        found.load_requests, found.load_seconds = requests, time.monotonic() - t0

        # One request with its call stacks sampled: the response names its flame graph.
        r = await client.get("/articles?profile=flame")
        flame = r.headers.get("x-profile-flame", "")
        if flame:
            found.flame_url = base_url + flame
            # The request is stored when the app returns, just after the client has the
            # response: until then its flame graph answers 404.
            for _ in range(50):
                svg = await client.get(flame)
                if svg.status_code == 200:
                    found.flame_bytes = len(svg.content)
                    break
                await asyncio.sleep(0.05)
            # The same stacks as text, each library's frames folded into one ([sqlalchemy]).
            txt = await client.get(flame.removesuffix(".svg") + ".txt",
                                   params={"collapse": "libs"})
            if txt.status_code == 200:
                found.flame_top = _heaviest(txt.text, 3)

        dash = (await client.get(f"{DASHBOARD}/json")).json()
        found.routes = sorted(dash["routes"], key=lambda row: row["route"])

    found.slow_query_sql, found.slow_rows, found.slow_table_unlogged = await asyncio.to_thread(
        _slow_rows, dsn, slow_table, 10.0)
    return found
