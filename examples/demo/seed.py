"""Creates the demo's schema (models.py) and fills it: 50 authors, 1,000 articles, 5,000
comments, the same rows on every run (a fixed random seed), in about a second.

    python examples/demo/seed.py "host=/tmp/pg/sock dbname=postgres user=postgres"

Drops and re-creates only the schema `nanoprof_demo`: safe on a database that holds other
things.  Rows go in with COPY, one statement per table.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone

import psycopg
from sqlalchemy import create_engine, text

from models import SCHEMA, Base, database_url

AUTHORS = 50
ARTICLES = 1000
COMMENTS_PER_ARTICLE = 5

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret",
         "Dennis")
LAST = ("Hopper", "Turing", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie",
        "Lamport", "Wirth")
TOPICS = ("caching", "indexes", "query plans", "connection pools", "latency", "N+1 queries",
          "profilers", "flame graphs", "replication", "vacuum")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
WORDS = ("fast", "slow", "clear", "surprising", "useful", "measured", "careful", "honest")


def author_name(i: int) -> str:
    # 100 distinct combinations for 50 authors: every name is unique.
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST) + i) % len(LAST)]}"


def seed(dsn: str) -> dict[str, int]:
    """(Re)creates the schema and its rows; returns the row count of each table."""
    engine = create_engine(database_url(dsn, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        conn.execute(text(f"SET LOCAL search_path TO {SCHEMA}"))
        Base.metadata.create_all(conn)
    engine.dispose()

    rng = random.Random(15)
    names = [author_name(i) for i in range(AUTHORS)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        with conn.cursor() as cur:
            with cur.copy("COPY authors (id, name, bio) FROM STDIN") as copy:
                for i, name in enumerate(names, 1):
                    copy.write_row((i, name, f"{name} writes about {rng.choice(TOPICS)}."))
            # Consecutive articles have different authors, so a page of the latest 20 shows
            # 20 authors (and the lazy loop on /articles runs 20 author queries).
            with cur.copy("COPY articles (id, title, body, published_at, author_id) "
                          "FROM STDIN") as copy:
                for i in range(1, ARTICLES + 1):
                    topic = rng.choice(TOPICS)
                    body = " ".join(rng.choice(WORDS) for _ in range(60))
                    copy.write_row((i, f"Notes on {topic}, part {i}", body,
                                    START + timedelta(hours=i),
                                    (i - 1) % AUTHORS + 1))
            with cur.copy("COPY comments (article_id, reader, body) FROM STDIN") as copy:
                for article in range(1, ARTICLES + 1):
                    for _ in range(COMMENTS_PER_ARTICLE):
                        # Readers name authors in passing: what the mentions report counts.
                        copy.write_row((article, f"reader{rng.randrange(300)}",
                                        f"As {rng.choice(names)} said, this is "
                                        f"{rng.choice(WORDS)}: " + " ".join(
                                            rng.choice(WORDS) for _ in range(20))))
        conn.execute("ANALYZE")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("authors", "articles", "comments")}
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} DSN (a libpq connection string or URI)")
    print(seed(sys.argv[1]))
