"""The app the browser checks load the dashboard of (test_e2e_dashboard.py, and
dashboard_screenshot.py for the README's picture): a plain ASGI app under uvicorn with
nanoprof's middleware, whose handlers record queries with _core.record_sql.  Being plain
ASGI (no router), its route templates come from the paths, so a hostile path is a hostile
route name too.

Every request's queries quote its own path in a literal, and its span is named after it,
so the hostile paths reach the SQL and the flame graph's frames as well.  /slow/... records a query over the slow-query threshold; /list/... repeats one
query shape (an N+1); /fail/... answers 500.  The latency follows the path's hash, so the
routes get distributions of their own.

The paths of a small blog (/articles, /articles/<id>, /authors/<id>, /search, /checkout)
behave like one instead, with spans around views, ORM calls and templates, and pauses as
long as the queries they record: the traffic dashboard_screenshot.py sends.
"""

from __future__ import annotations

import asyncio
import os
import random
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from apps import lifespan
from nanoprof import _core
from nanoprof.middleware import PerformanceMiddleware

SLOW_NS = 150_000_000  # over the default slow_query_threshold_ms of 100


def _quote(text: str) -> str:
    return text.replace("'", "''")


async def app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[..., Any]
) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path: str = scope["path"]
    blog = BLOG.get(path.rstrip("0123456789"))
    status = await (blog(path) if blog else hostile(path, scope.get("query_string", b"")))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok\n"})


async def hostile(path: str, query: bytes) -> int:
    sid = _core.span_begin(f"view {path}")  # a frame of the flame graph named by the path
    try:
        return await hostile_view(path, query)
    finally:
        _core.span_end(sid)


async def hostile_view(path: str, query: bytes) -> int:
    seed = zlib.crc32(path.encode()) % 7
    # a few ms, more on some routes: distributions that differ
    await asyncio.sleep(0.001 * (1 + seed) * (1 + zlib.crc32(query) % 3))
    literal = _quote(path)
    sql = f"SELECT id, title FROM articles WHERE path = '{literal}'"
    _core.record_sql(sql, 400_000 + seed * 90_000)
    if path.startswith("/list"):
        for k in range(8):
            sql = f"SELECT * FROM comments WHERE article_id = {k} AND note = '{literal}'"
            _core.record_sql(sql, 120_000)
    if path.startswith("/slow"):
        _core.record_sql(f"SELECT count(*) FROM events WHERE body LIKE '%{literal}%'", SLOW_NS)
    return 500 if path.startswith("/fail") else 200


# ---- the blog -----------------------------------------------------------------------------


async def query(sql: str, ms: float) -> None:
    """A query that takes about `ms` (lognormal around it), recorded as it ran."""
    took = ms * random.lognormvariate(0, 0.35)
    await asyncio.sleep(took / 1000)
    _core.record_sql(sql, int(took * 1e6))


async def span(name: str, ms: float) -> None:
    sid = _core.span_begin(name)
    await asyncio.sleep(ms * random.lognormvariate(0, 0.3) / 1000)
    _core.span_end(sid)


async def article_list(path: str) -> int:
    sid = _core.span_begin("views.article_list")
    orm = _core.span_begin("orm.Article.objects.all")
    await query("SELECT id, title, author_id FROM articles ORDER BY published DESC LIMIT 10", 1.5)
    _core.span_end(orm)
    for k in range(10):  # the N+1: one query per article
        await query(f"SELECT * FROM comments WHERE article_id = {100 + k}", 0.35)
    await span("templates/article_list.html", 2.5)
    _core.span_end(sid)
    return 200


async def view(name: str, queries: list[tuple[str, float]], template: str, ms: float) -> int:
    """A view: its queries (SQL, about how many ms) in turn, then its template."""
    sid = _core.span_begin(name)
    for sql, q_ms in queries:
        await query(sql, q_ms)
    await span(template, ms)
    _core.span_end(sid)
    return 200


async def article(path: str) -> int:
    n = int(path.rsplit("/", 1)[1])
    queries = [
        (f"SELECT * FROM articles WHERE id = {n}", 0.8),
        (f"SELECT name, bio FROM authors WHERE id = {n % 17}", 0.5),
        (f"SELECT * FROM comments WHERE article_id = {n} ORDER BY created", 1.2),
    ]
    return await view("views.article_detail", queries, "templates/article.html", 1.5)


async def author(path: str) -> int:
    n = int(path.rsplit("/", 1)[1])
    queries = [
        (f"SELECT * FROM authors WHERE id = {n}", 0.6),
        (f"SELECT id, title FROM articles WHERE author_id = {n} LIMIT 20", 2.0),
    ]
    return await view("views.author_detail", queries, "templates/author.html", 1.0)


async def search(path: str) -> int:
    if random.random() < 0.15:  # no index on body: now and then a slow scan
        sql = ("SELECT id, title FROM articles WHERE body ILIKE '%postgres tuning%'", 140.0)
    else:
        sql = ("SELECT id, title FROM articles WHERE tsv @@ plainto_tsquery('tuning')", 6.0)
    return await view("views.search", [sql], "templates/search.html", 1.2)


async def checkout(path: str) -> int:
    sid = _core.span_begin("views.checkout")
    await query("BEGIN", 0.1)
    await query("UPDATE stock SET count = count - 1 WHERE sku = 'A-1042'", 3)
    await span("payments.charge", 12)
    failed = random.random() < 0.06
    await query("ROLLBACK" if failed else "COMMIT", 0.4)
    _core.span_end(sid)
    return 502 if failed else 200


BLOG: dict[str, Callable[[str], Awaitable[int]]] = {
    "/articles": article_list,
    "/articles/": article,
    "/authors/": author,
    "/search": search,
    "/checkout": checkout,
}


served = PerformanceMiddleware(
    app,
    production=False,
    sample_every=1,
    refresh_seconds=int(os.environ.get("NANOPROF_E2E_REFRESH", "1")),
    max_routes=int(os.environ.get("NANOPROF_E2E_MAX_ROUTES", "500")),
)
