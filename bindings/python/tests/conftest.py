"""Test set-up: Django configured from django_app.SETTINGS (no database), and each test
starting from a development-mode runtime (configure() keeps earlier options otherwise)."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
from django.conf import settings

import django_app
from nanoprof import _core

if not settings.configured:
    settings.configure(**django_app.SETTINGS)
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
