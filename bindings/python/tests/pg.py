"""A throwaway PostgreSQL server for the database tests (tests/pg_cluster.sh at the repo
root), started once per session by conftest's `pg` fixture, and the schema they share.

The tests skip (not fail) where the PostgreSQL server binaries are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PG_CLUSTER = REPO / "tests" / "pg_cluster.sh"

# Values the redaction tests look for in profiles: none may ever appear in profile JSON.
PASSWORD = "hunter2-s3cret-pw"
TOKEN = "tok-9f8e7d6c5b4a3928"
CARD = "4111111111111111"
EMAIL = "alice.secret@example.com"
SECRETS = (PASSWORD, TOKEN, CARD, EMAIL)

AUTHORS = 8  # one article per author: the N+1 loop runs AUTHORS author queries

SCHEMA = f"""
DROP TABLE IF EXISTS nprof_article, nprof_author, nprof_user;
CREATE TABLE nprof_user (id serial PRIMARY KEY, name text NOT NULL, email text,
                         password text, token text, card text);
CREATE TABLE nprof_author (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE nprof_article (id serial PRIMARY KEY, title text NOT NULL,
                            author_id integer NOT NULL REFERENCES nprof_author(id));
INSERT INTO nprof_user (name) SELECT 'user' || i FROM generate_series(1, 20) i;
INSERT INTO nprof_author (name) SELECT 'author' || i FROM generate_series(1, {AUTHORS}) i;
INSERT INTO nprof_article (title, author_id) SELECT 'article' || i, i FROM generate_series(1, {AUTHORS}) i;
"""


def cluster_command(command: str, directory: str) -> subprocess.CompletedProcess[str]:
    """tests/pg_cluster.sh `command` `directory`.  The server must not inherit what the test
    process runs under: in the sanitized run that is LD_PRELOAD=libasan, under which
    PostgreSQL's binaries hang at start-up."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")}
    return subprocess.run(["sh", str(PG_CLUSTER), command, directory], capture_output=True,
                          text=True, env=env)


@dataclass(frozen=True)
class Cluster:
    dir: str
    conninfo: str  # libpq: "host=<dir>/sock port=5432 dbname=postgres user=postgres"
    host: str      # the socket directory
    port: int

    def url(self, driver: str) -> str:
        """A SQLAlchemy URL: driver "psycopg", "psycopg2" or "asyncpg"."""
        return f"postgresql+{driver}://postgres@/postgres?host={self.host}&port={self.port}"

    def stop(self) -> None:
        cluster_command("stop", self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def pause(self) -> None:
        """Stops the server but keeps its data, to see the database go away mid-load."""
        self._run("pause")

    def resume(self) -> None:
        self._run("resume")

    def _run(self, command: str) -> None:
        r = cluster_command(command, self.dir)
        assert r.returncode == 0, r.stderr

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        import psycopg2

        conn = psycopg2.connect(self.conninfo)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


def start() -> Cluster:
    """Starts a cluster and loads SCHEMA, or skips the calling test."""
    if not PG_CLUSTER.exists():
        pytest.skip("tests/pg_cluster.sh not found (run from the repository)")
    d = tempfile.mkdtemp(prefix="nprof-db-")
    os.rmdir(d)  # pg_cluster.sh creates it
    r = cluster_command("start", d)
    if r.returncode == 77:
        pytest.skip("no PostgreSQL server binaries installed (apt-get install postgresql)")
    assert r.returncode == 0, r.stderr
    conninfo = r.stdout.strip()
    fields = dict(kv.split("=", 1) for kv in conninfo.split())
    cluster = Cluster(d, conninfo, fields["host"], int(fields["port"]))
    try:
        load_schema(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def load_schema(cluster: Cluster) -> None:
    import psycopg2

    conn = psycopg2.connect(cluster.conninfo)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SCHEMA)
    finally:
        conn.close()
