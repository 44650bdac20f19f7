"""The demo's schema as SQLAlchemy 2 models: authors write articles, readers comment on them.

The tables live in their own PostgreSQL schema (`nanoprof_demo`, put first on the search
path by app.py's engine), so the demo can drop and re-create them on a database it did not
create (NANOPROF_DSN) without touching anything else there, while the SQL the profiler
shows still reads `FROM authors`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import URL, DateTime, ForeignKey, String, Text, func
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA = "nanoprof_demo"


class Base(AsyncAttrs, DeclarativeBase):
    """AsyncAttrs gives every model `awaitable_attrs`, the async spelling of a lazy load."""


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    bio: Mapped[str] = mapped_column(Text)
    articles: Mapped[list[Article]] = relationship(back_populates="author")


class Article(Base):
    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Indexed, as a foreign key should be: the author page's query uses it.
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)
    # lazy="select" is SQLAlchemy's default, spelled out: touching `article.author` of an
    # article loaded without it issues one SELECT for that author.
    author: Mapped[Author] = relationship(back_populates="articles", lazy="select")
    comments: Mapped[list[Comment]] = relationship(back_populates="article")


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    reader: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    article: Mapped[Article] = relationship(back_populates="comments")


def database_url(dsn: str, driver: str) -> URL:
    """A SQLAlchemy URL for `driver` ("asyncpg", "psycopg") from a libpq connection string
    or URI, the two forms NANOPROF_DSN and the slow-query log take."""
    from psycopg.conninfo import conninfo_to_dict

    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    host = parts.pop("host", None)
    query = {}
    if host and host.startswith("/"):  # a Unix socket directory goes in the query string
        query["host"] = host
        host = None
    return URL.create(
        f"postgresql+{driver}",
        username=parts.pop("user", None),
        password=parts.pop("password", None),
        host=host,
        port=int(parts.pop("port")) if "port" in parts else None,
        database=parts.pop("dbname", None),
        query=query,
    )
