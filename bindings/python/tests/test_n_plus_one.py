"""N+1 detection on real ORM code served by a real app: a FastAPI endpoint that walks
SQLAlchemy's lazy `article.author` (one query per article) is reported with the loop's
line; the same endpoint with selectinload is not.  (Django's view: test_db_django.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import pg
from apps import options
from dbcheck import assert_site, collect, line, ours
from nanoprof import get_store
from nanoprof.db import QueryTimer
from nanoprof.middleware import PerformanceMiddleware

sa = pytest.importorskip("sqlalchemy")
from fastapi import FastAPI  # noqa: E402
from sqlalchemy.orm import Session, selectinload  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from sa_models import Article  # noqa: E402


def make_app(engine: Any) -> Any:
    app = FastAPI()

    @app.get("/articles")
    def articles() -> dict[str, Any]:
        with Session(engine) as session:
            names = []
            for article in session.scalars(sa.select(Article).order_by(Article.id)):
                names.append(article.author.name)  # line: sa-n-plus-one
            return {"authors": names}

    @app.get("/articles-fixed")
    def articles_fixed() -> dict[str, Any]:
        with Session(engine) as session:
            query = sa.select(Article).options(selectinload(Article.author)).order_by(Article.id)
            return {"authors": [a.author.name for a in session.scalars(query)]}

    app.add_middleware(PerformanceMiddleware, **options())
    return app


@pytest.fixture
def client(pg_cluster: pg.Cluster) -> Iterator[TestClient]:
    engine = sa.create_engine(pg_cluster.url("psycopg"))
    with QueryTimer(engine), TestClient(make_app(engine)) as client:
        yield client
    engine.dispose()


def author_queries(profile: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in ours(profile) if "FROM nprof_author" in q["sql"]]


def test_lazy_loading_in_a_loop_is_an_n_plus_one(client: TestClient) -> None:
    response = client.get("/articles", params={"profile": "json"})
    profile = json.loads(response.content)
    assert len(author_queries(profile)) == pg.AUTHORS
    patterns = [p for p in profile["n_plus_one"] if "nprof_author" in p["normalized"]]
    assert [p["count"] for p in patterns] == [pg.AUTHORS]
    plain = client.get("/articles")
    assert plain.json()["authors"] == [f"author{i}" for i in range(1, pg.AUTHORS + 1)]
    assert f";count={pg.AUTHORS}" in plain.headers["X-N-Plus-One"]
    with collect() as seen:
        client.get("/articles")
    first = next(e for e in seen.queries if "FROM nprof_author" in e.sql)
    assert_site(first.callsite, __file__, line("sa-n-plus-one"))


def test_the_loop_line_is_the_patterns_call_site(client: TestClient) -> None:
    profile = client.get("/articles", params={"profile": "json"}).json()
    pattern = next(p for p in profile["n_plus_one"] if "nprof_author" in p["normalized"])
    assert_site(pattern.get("callsite"), __file__, line("sa-n-plus-one"))
    header = client.get("/articles").headers["X-N-Plus-One"]
    assert f'test_n_plus_one.py:{line("sa-n-plus-one")}' in header


def test_selectinload_fixes_it(client: TestClient) -> None:
    profile = client.get("/articles-fixed", params={"profile": "json"}).json()
    assert len(author_queries(profile)) == 1
    assert profile["n_plus_one"] == []
    assert client.get("/articles-fixed").headers.get("X-N-Plus-One") is None


def test_a_sampled_request_shows_the_n_plus_one_under_the_sync_endpoint(
    client: TestClient,
) -> None:
    """FastAPI runs a sync endpoint in a worker thread while the request's task awaits it;
    with ?profile=flame each lazy load's query appears under the endpoint's frame, in that
    thread, one node for the shape with its executions counted."""
    profile = client.get("/articles", params={"profile": "json"}).json()
    n = len(author_queries(profile))
    assert client.get("/articles", params={"profile": "flame"}).status_code == 200
    flamed = get_store().get_recent(1)[0]
    sql = [s for s in flamed.samples["stacks"]
           if s["sql"] and "FROM nprof_author" in s["frames"][-1]]
    assert len(sql) == 1, flamed.samples
    assert sql[0]["count"] == n
    frames = sql[0]["frames"]
    endpoint = next(i for i, f in enumerate(frames) if f.startswith("make_app.<locals>.articles "))
    # under the await that hands the endpoint to a thread, above the ORM's lazy load
    assert any(f.startswith("run_in_threadpool ") for f in frames[:endpoint]), frames
    assert any(f.startswith("_LazyLoader.") for f in frames[endpoint:]), frames
