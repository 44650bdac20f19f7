"""QueryTimer over Django's ORM on PostgreSQL, through real requests (django.test.Client
and nanoprof's Django middleware) and directly."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.utils import ProgrammingError
from django.test import Client

import pg
from dbcheck import assert_application, assert_no_secrets, assert_site, line
from dbcheck import collect, ours, profiled
from nanoprof.db import QueryTimer

VIEWS = str(Path(__file__).with_name("nprof_dbapp") / "views.py")
AUTHOR_QUERY = re.compile(r'FROM "nprof_author" WHERE "nprof_author"\."id" = ')


@pytest.fixture
def django_db(pg_cluster: pg.Cluster) -> Iterator[None]:
    with QueryTimer("django"):
        yield
    connection.close()


def get_json(path: str) -> dict[str, Any]:
    response = Client().get(path, {"profile": "json"})
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)  # type: ignore[no-any-return]


def test_an_n_plus_one_loop_is_reported_with_its_line(django_db: None) -> None:
    profile = get_json("/db/articles/")
    queries = ours(profile)
    assert len(queries) == 1 + pg.AUTHORS
    assert sum(bool(AUTHOR_QUERY.search(q["sql"])) for q in queries) == pg.AUTHORS
    patterns = [p for p in profile["n_plus_one"] if "nprof_author" in p["normalized"]]
    assert [p["count"] for p in patterns] == [pg.AUTHORS]
    header = Client().get("/db/articles/").headers.get("X-N-Plus-One")
    assert header is not None and "nprof_author" in header and f";count={pg.AUTHORS}" in header
    # The call site of the repeated query is the loop's line in the view.
    with collect() as seen:
        Client().get("/db/articles/")
    authors = [e for e in seen.queries if AUTHOR_QUERY.search(e.sql)]
    assert len(authors) == pg.AUTHORS
    assert_site(authors[0].callsite, VIEWS, line("django-n-plus-one", VIEWS))
    for e in seen.queries:
        assert_application(e.callsite)


def test_the_n_plus_one_call_site_is_in_the_json_and_the_header(django_db: None) -> None:
    profile = get_json("/db/articles/")
    pattern = next(p for p in profile["n_plus_one"] if "nprof_author" in p["normalized"])
    assert_site(pattern.get("callsite"), VIEWS, line("django-n-plus-one", VIEWS))
    header = Client().get("/db/articles/").headers["X-N-Plus-One"]
    assert f'views.py:{line("django-n-plus-one", VIEWS)}' in header and ';site="' in header


def test_select_related_has_no_n_plus_one(django_db: None) -> None:
    profile = get_json("/db/articles-fixed/")
    assert len(ours(profile)) == 1
    assert profile["n_plus_one"] == []
    assert Client().get("/db/articles-fixed/").headers.get("X-N-Plus-One") is None


@pytest.mark.parametrize(("path", "queries"), [
    pytest.param("/db/secrets/", 2, id="recognised-in-orm-and-raw-parameters"),
    # The ORM's filter(password=...): positional parameters, known by their column only.
    pytest.param("/db/secrets-by-column/", 1, id="compared-with-sensitive-columns"),
])
def test_secrets_never_reach_the_profile(django_db: None, path: str, queries: int) -> None:
    response = Client().get(path, {"profile": "json"})
    assert response.status_code == 200
    body = response.content.decode()
    assert len(ours(json.loads(body))) == queries
    assert_no_secrets(body)


def test_every_hook_at_once_records_each_query_once(pg_cluster: pg.Cluster) -> None:
    # Django runs on psycopg here: its module-wide hook is under Django's.
    with QueryTimer():
        profile = get_json("/db/articles-fixed/")
    connection.close()
    assert len(ours(profile)) == 1


def test_a_failing_query_propagates_and_is_recorded(django_db: None) -> None:
    with profiled() as box, collect() as seen:
        with pytest.raises(ProgrammingError, match="nprof_missing") as raised:
            with connection.cursor() as cur:
                cur.execute("SELECT * FROM nprof_missing")  # line: django-fail
        with connection.cursor() as cur:
            cur.executemany("SELECT %s::int FROM nprof_user LIMIT 0", [(1,), (2,)])
    connection.close()
    assert raised.value.__cause__ is not None  # Django's wrapping of the driver's error
    assert [q["sql"] for q in ours(box.dict)][0] == "SELECT * FROM nprof_missing"
    failed, many = [e for e in seen.queries if "nprof_" in e.sql]
    assert failed.error is not None and "nprof_missing" in failed.error
    assert many.rows == 2 and many.error is None
    assert_site(failed.callsite, __file__, line("django-fail"))


def test_uninstall_removes_the_wrapper_from_connections(pg_cluster: pg.Cluster) -> None:
    timer = QueryTimer("django").install()
    with connection.cursor() as cur:  # connects: the signal adds the wrapper
        cur.execute("SELECT 1")
    assert len(connection.execute_wrappers) == 1
    timer.uninstall()
    assert connection.execute_wrappers == []
    connection.close()


def test_one_connection_or_every_alias(pg_cluster: pg.Cluster) -> None:
    from django.db import connections

    for target in (connection, connections, connections["default"]):
        with QueryTimer(target), collect() as seen:
            with connection.cursor() as cur:
                cur.execute("SELECT 1 FROM nprof_user LIMIT 1")
        connection.close()
        assert [e.sql for e in seen.queries] == ["SELECT 1 FROM nprof_user LIMIT 1"], target
    assert connection.execute_wrappers == []
