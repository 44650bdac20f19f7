"""Every adapter behind a real server process on 127.0.0.1: uvicorn for ASGI (plain ASGI,
Starlette, FastAPI, Django), gunicorn with 8 threads for WSGI (plain WSGI, Flask, Django).

Concurrency is the point here: 100 requests at once, interleaved on uvicorn's one event
loop or spread over gunicorn's 8 threads, each recording its own queries between pauses,
and each must see exactly its own (in the handler, and in ?profile=json).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

import apps
from support import (
    DASHBOARD,
    DASHBOARD_ROUTES,
    assert_own_queries,
    assert_phases,
    assert_profile_headers,
    eventually,
    profile_param,
    route_row,
    server,
)


@dataclass(frozen=True)
class Served:
    kind: str  # "asgi" (uvicorn) or "wsgi" (gunicorn)
    target: str
    user: str  # a path with one query, and its route template
    route: str
    mine: str  # "/mine/{n}" with the framework's slash rules
    stream: str
    boom: str
    # The phases the app has: a plain WSGI/ASGI callable has no router or view to hook.
    phases: tuple[str, ...] = ("middleware", "routing", "handler")


# fmt: off
SERVED = {
    "asgi": Served("asgi", "apps:served_asgi", "/mine/1", "/mine/{id}",
                   "/mine/{n}", "/stream", "/boom", ("middleware",)),
    "starlette": Served("asgi", "apps:served_starlette", "/users/7", "/users/{user_id:int}",
                        "/mine/{n}", "/stream", "/boom"),
    "fastapi": Served("asgi", "apps:served_fastapi", "/users/7", "/users/{user_id}",
                      "/mine/{n}", "/stream", "/boom"),
    "django-asgi": Served("asgi", "django_app:asgi_application", "/users/7/", "/users/<int:user_id>/",
                          "/amine/{n}/", "/astream/", "/boom/"),
    "wsgi": Served("wsgi", "apps:served_wsgi", "/mine/1", "/mine/{id}",
                   "/mine/{n}", "/stream", "/boom", ("middleware",)),
    "flask": Served("wsgi", "apps:served_flask", "/users/7", "/users/<int:user_id>",
                    "/mine/{n}", "/stream", "/boom"),
    "django-wsgi": Served("wsgi", "django_app:wsgi_application", "/users/7/", "/users/<int:user_id>/",
                          "/mine/{n}/", "/stream/", "/boom/"),
}
# fmt: on


@pytest.fixture(scope="module", params=sorted(SERVED))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Served, str]]:
    spec = SERVED[request.param]
    with server(spec.kind, spec.target) as url:
        yield spec, url


def test_headers_phases_and_route_template(served: tuple[Served, str]) -> None:
    spec, url = served
    with httpx.Client(base_url=url, timeout=10) as client:
        response = client.get(spec.user)
        assert response.status_code == 200
        assert_profile_headers(response.headers, queries=1)
        profile = client.get(spec.user, params={"profile": "json"}).json()
        assert_phases(profile, *spec.phases)
        assert profile["path"] == spec.user
        eventually(lambda: route_row(client.get(DASHBOARD + "/json").content, "GET", spec.route))


def test_concurrent_requests_see_only_their_own_queries(served: tuple[Served, str]) -> None:
    spec, url = served

    if spec.kind == "asgi":

        async def many() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
                return await asyncio.gather(
                    *(
                        client.get(spec.mine.format(n=n), params=profile_param(n))
                        for n in range(1, 101)
                    )
                )

        responses = asyncio.run(many())
    else:
        with (
            httpx.Client(
                base_url=url, timeout=30, limits=httpx.Limits(max_connections=32)
            ) as client,
            ThreadPoolExecutor(32) as pool,
        ):
            responses = list(
                pool.map(
                    lambda n: client.get(spec.mine.format(n=n), params=profile_param(n)),
                    range(1, 101),
                )
            )
    for n, response in enumerate(responses, start=1):
        assert response.status_code == 200, (n, response.text)
        assert_own_queries(n, response.json())
        if n % 2:
            assert response.headers["X-Query-Count"] == str(n)


def test_streamed_response_is_measured_to_the_end(served: tuple[Served, str]) -> None:
    spec, url = served
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get(spec.stream).content == b"x" * apps.STREAM_CHUNKS
        profile = client.get(spec.stream, params={"profile": "json"}).json()
        assert profile["sql_count"] == apps.STREAM_CHUNKS
        assert profile["total_ns"] >= apps.STREAM_CHUNKS * apps.STREAM_PAUSE_S * 1e9


def test_exception_is_a_500_and_counted(served: tuple[Served, str]) -> None:
    spec, url = served
    with httpx.Client(base_url=url, timeout=10) as client:
        # Servers drop the connection after an app's exception: not one to reuse.
        assert client.get(spec.boom, headers={"Connection": "close"}).status_code == 500

        def counted() -> None:
            row = route_row(client.get(DASHBOARD + "/json").content, "GET", spec.boom)
            assert row["status"].get("5xx", 0) >= 1, row

        eventually(counted)


@pytest.mark.parametrize("name", ["starlette", "flask", "django-wsgi"])
def test_dashboard_routes_need_the_token_in_production(name: str) -> None:
    spec = SERVED[name]
    with (
        server(spec.kind, spec.target, production=True) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        response = client.get(spec.user)
        assert response.status_code == 200 and "X-Profile" not in response.headers
        allowed = client.get(
            spec.user, params={"profile": "1"}, headers={"X-Profile-Token": apps.TOKEN}
        )
        assert_profile_headers(allowed.headers, queries=1)
        for route in DASHBOARD_ROUTES:
            assert client.get(DASHBOARD + route).status_code == 403, route
            assert (
                client.get(DASHBOARD + route, headers={"X-Profile-Token": apps.TOKEN}).status_code
                == 200
            ), route
            assert (
                client.get(DASHBOARD + route, params={"profile_token": apps.TOKEN}).status_code
                == 200
            ), route
