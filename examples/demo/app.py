"""A small blog API, FastAPI + SQLAlchemy 2 (async, over asyncpg), with nanoprof mounted the
way an application would mount it.  scripts/demo.sh runs it under uvicorn:

    NANOPROF_DEMO_DSN="host=/tmp/pg/sock dbname=postgres user=postgres" \
        uvicorn app:app --app-dir examples/demo --host 127.0.0.1 --port 8000

Endpoints (the schema is models.py, seed.py fills it):

  GET /articles            the latest 20 articles with their authors' names, written the way
                           N+1 bugs get written: the author is lazy-loaded inside the loop
  GET /articles/fixed      the same page with selectinload: two queries whatever the page size
  GET /articles/{id}       one article, its author and its comments
  GET /authors/{id}        one author and their latest articles
  GET /reports/mentions    which authors readers name most in comments: a join on ILIKE that
                           no index can serve, the kind of report that ends up slow

nanoprof, in the last block of this file: `SlowQueryLog` (slow queries into a PostgreSQL
table), `QueryTimer` on the engine (every query the ORM sends, with the application line that
sent it) and `PerformanceMiddleware` (headers, N+1 detection, the dashboard at
/debug/performance).  NANOPROF_DEMO_MODE picks how: "dev" (the default: headers on every
response, dashboard open), "prod" (production mode: both only with NANOPROF_DEMO_TOKEN) or
"off" (no nanoprof at all: the baseline of bench/python/bench_demo.py).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import selectinload

from models import SCHEMA, Article, Author, Comment, database_url

DSN = os.environ.get("NANOPROF_DEMO_DSN", "dbname=postgres")
MODE = os.environ.get("NANOPROF_DEMO_MODE", "dev")
TOKEN = os.environ.get("NANOPROF_DEMO_TOKEN", "")
SLOW_TABLE = os.environ.get("NANOPROF_DEMO_SLOW_TABLE", "nanoprof_slow_queries")
PAGE = 20

engine = create_async_engine(
    database_url(DSN, "asyncpg"),
    pool_size=8,
    # The demo's tables live in their own schema (see models.py); the SQL still says
    # `FROM authors`, which is what a reader of the profile expects to see.
    connect_args={"server_settings": {"search_path": SCHEMA}},
)
sessions = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if slow_log is not None:
        # Waits (in a worker thread, not on the loop) until the log's writer has connected
        # and created its table, so the first slow query already has somewhere to go.
        await slow_log.ensure_table()
    yield
    await engine.dispose()


app = FastAPI(title="nanoprof demo blog", lifespan=lifespan)


@app.get("/articles")
async def list_articles(session: DbSession) -> list[dict[str, Any]]:
    articles = await session.scalars(select(Article).order_by(Article.id.desc()).limit(PAGE))
    page = []
    for article in articles:
        # The bug nanoprof reports: `author` was not loaded with the articles, so each
        # iteration sends its own SELECT for one author (the async spelling of touching a
        # lazy attribute).
        author = await article.awaitable_attrs.author
        page.append({"id": article.id, "title": article.title, "author": author.name})
    return page


@app.get("/articles/fixed")
async def list_articles_fixed(session: DbSession) -> list[dict[str, Any]]:
    # The fix: selectinload fetches every author of the page in one more query.
    query = (select(Article).options(selectinload(Article.author))
             .order_by(Article.id.desc()).limit(PAGE))
    return [{"id": a.id, "title": a.title, "author": a.author.name}
            for a in await session.scalars(query)]


@app.get("/articles/{article_id}")
async def show_article(article_id: int, session: DbSession) -> dict[str, Any]:
    query = (select(Article).where(Article.id == article_id)
             .options(selectinload(Article.author), selectinload(Article.comments)))
    article = await session.scalar(query)
    if article is None:
        raise HTTPException(404, f"no article {article_id}")
    return {"id": article.id, "title": article.title, "author": article.author.name,
            "published_at": article.published_at.isoformat(),
            "comments": [{"reader": c.reader, "body": c.body} for c in article.comments]}


@app.get("/authors/{author_id}")
async def show_author(author_id: int, session: DbSession) -> dict[str, Any]:
    author = await session.get(Author, author_id)
    if author is None:
        raise HTTPException(404, f"no author {author_id}")
    latest = await session.scalars(select(Article).where(Article.author_id == author_id)
                                   .order_by(Article.id.desc()).limit(10))
    return {"id": author.id, "name": author.name, "bio": author.bio,
            "articles": [{"id": a.id, "title": a.title} for a in latest]}


@app.get("/reports/mentions")
async def mentions_report(session: DbSession) -> list[dict[str, Any]]:
    # Every author against every comment with ILIKE: 50 x 5,000 pattern matches that no
    # index serves, a few hundred milliseconds.  The slow-query log keeps it.
    mentions = func.count(Comment.id).label("mentions")
    query = (select(Author.name, mentions)
             .outerjoin(Comment, Comment.body.ilike("%" + Author.name + "%"))
             .group_by(Author.id, Author.name).order_by(mentions.desc()).limit(10))
    return [{"author": name, "mentions": n} for name, n in await session.execute(query)]


# ---- nanoprof ---------------------------------------------------------------------------------

slow_log = None
if MODE != "off":
    import nanoprof

    production = MODE == "prod"
    # Slow queries outlive the process in an UNLOGGED table that every worker writes into.
    # The reference's development threshold is 50 ms; production would rather use 200.
    slow_log = nanoprof.SlowQueryLog(DSN, threshold_ms=50, table=SLOW_TABLE)
    # Every query the engine runs: timed, given its shape, and its call site when it is the
    # first of its shape in the request (so the N+1 report names the loop) or slow.
    nanoprof.QueryTimer(engine, slow_log=slow_log).install()
    app.add_middleware(
        nanoprof.PerformanceMiddleware,
        slow_query_threshold_ms=50,
        n_plus_one_threshold=5,
        slow_log=slow_log,
        production=production,
        # In production the headers, ?profile= and the dashboard need this token.
        token=TOKEN or None,
    )
