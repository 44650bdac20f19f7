"""SQLAlchemy models over pg.SCHEMA's tables, for the SQLAlchemy and N+1 tests."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "nprof_author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Article(Base):
    __tablename__ = "nprof_article"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("nprof_author.id"))
    author: Mapped[Author] = relationship(lazy="select")
