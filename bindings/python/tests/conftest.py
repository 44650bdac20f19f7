"""Test set-up: Django configured from django_app.SETTINGS, and each test starting from a
development-mode runtime (configure() keeps earlier options otherwise).

The database tests get a throwaway PostgreSQL from the session fixture `pg` (started on
first use only, skipped without the server binaries).  Django's "default" database points
at it: the dict below is completed with the socket directory when `pg` starts, and no
connection is made before (the tests that do not use a database never open one).  The
models of those tests live in the app `nprof_dbapp`, whose URLs include django_app's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings

import django_app
import pg
from nanoprof import _core

# Filled in by the `pg` fixture; until then Django never connects (nothing asks it to).
DJANGO_DATABASE: dict[str, Any] = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "postgres",
    "USER": "postgres",
    "HOST": "",
    "PORT": "",
}

if not settings.configured:
    settings.configure(
        **{
            **django_app.SETTINGS,
            "DATABASES": {"default": DJANGO_DATABASE},
            "INSTALLED_APPS": ["nprof_dbapp"],
            "ROOT_URLCONF": "nprof_dbapp.urls",
        }
    )
    django.setup()


def pytest_configure(config: pytest.Config) -> None:
    # Starlette 1.x asks for httpx2 in its TestClient; httpx is what the venv pins.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")
    # Django warns when a streaming body of one kind is consumed by a server of the other
    # kind: the ?profile=json tests do exactly that on purpose.
    config.addinivalue_line("filterwarnings", "ignore:StreamingHttpResponse must consume")


@pytest.fixture(autouse=True)
def _development_runtime() -> Iterator[None]:
    _core.configure(production=False, enabled=True)
    yield


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """The session's PostgreSQL (schema loaded: pg.SCHEMA); Django's default database."""
    cluster = pg.start()
    DJANGO_DATABASE.update(HOST=cluster.host, PORT=str(cluster.port))
    try:
        yield cluster
    finally:
        from django.db import connections

        connections.close_all()
        cluster.stop()
