"""The tests' Django project in one module: settings, URLs and views (no database).

conftest.py configures Django from SETTINGS; a server process imports `wsgi_application`
or `asgi_application`, which configure it the same way (NANOPROF_TEST_PRODUCTION=1 turns
production mode on, with apps.TOKEN).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from apps import STREAM_CHUNKS, STREAM_PAUSE_S, options, own_queries, record_own, sql_of
from nanoprof import _core

SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "nanoprof-tests",
    "ALLOWED_HOSTS": ["*"],
    "ROOT_URLCONF": "django_app",
    "INSTALLED_APPS": [],
    "DATABASES": {},
    "MIDDLEWARE": [
        "nanoprof.django.PerformanceMiddleware",
        "django.middleware.common.CommonMiddleware",
    ],
    "NANOPROF": options(),
    "USE_TZ": True,
}


def user(request: HttpRequest, user_id: int) -> JsonResponse:
    _core.record_sql(sql_of(user_id, 0), 2000)
    time.sleep(0.001)
    return JsonResponse({"id": user_id})


async def async_user(request: HttpRequest, user_id: int) -> JsonResponse:
    _core.record_sql(sql_of(user_id, 0), 2000)
    await asyncio.sleep(0.001)
    return JsonResponse({"id": user_id, "sql": own_queries()})


def mine(request: HttpRequest, n: int) -> JsonResponse:
    for _ in record_own(n):
        time.sleep(0.001)
    return JsonResponse({"n": n, "sql": own_queries()})


async def async_mine(request: HttpRequest, n: int) -> JsonResponse:
    for _ in record_own(n):
        await asyncio.sleep(0.001)
    return JsonResponse({"n": n, "sql": own_queries()})


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for i in range(STREAM_CHUNKS):
            _core.record_sql(sql_of(i, 0), 1000)
            time.sleep(STREAM_PAUSE_S)
            yield b"x"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(STREAM_CHUNKS):
            _core.record_sql(sql_of(i, 0), 1000)
            await asyncio.sleep(STREAM_PAUSE_S)
            yield b"x"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise KeyError("boom")


urlpatterns = [
    path("users/<int:user_id>/", user),
    path("async/<int:user_id>/", async_user),
    path("mine/<int:n>/", mine),
    path("amine/<int:n>/", async_mine),
    path("stream/", stream),
    path("astream/", async_stream),
    path("boom/", boom),
]


def _configure() -> None:
    from django.conf import settings

    if not settings.configured:
        production = os.environ.get("NANOPROF_TEST_PRODUCTION") == "1"
        settings.configure(**{**SETTINGS, "NANOPROF": options(production)})
        import django

        django.setup()


def __getattr__(name: str) -> Any:
    # What the servers load: "django_app:wsgi_application" / "django_app:asgi_application".
    if name == "wsgi_application":
        _configure()
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    if name == "asgi_application":
        _configure()
        from django.core.asgi import get_asgi_application

        return get_asgi_application()
    raise AttributeError(name)
