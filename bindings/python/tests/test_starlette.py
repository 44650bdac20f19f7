"""Starlette and FastAPI through their test client: add_middleware, phases, route
templates, streaming, exceptions, websocket and lifespan passthrough."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

import apps
from nanoprof import _core
from support import (
    DASHBOARD,
    DASHBOARD_ROUTES,
    assert_own_queries,
    assert_phases,
    assert_profile_headers,
    profile_param,
    route_row,
)


@pytest.fixture(params=["starlette", "fastapi"])
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(framework: str, **opts: Any) -> Any:
    return (apps.make_starlette if framework == "starlette" else apps.make_fastapi)(**opts)


USER_ROUTE = {"starlette": "/users/{user_id:int}", "fastapi": "/users/{user_id}"}


def test_headers_phases_and_route_template(framework: str) -> None:
    with TestClient(make(framework)) as client:  # `with` runs the lifespan through us
        response = client.get("/users/7")
        assert response.status_code == 200 and response.json()["id"] == 7
        assert_profile_headers(response.headers, queries=1)
        profile = client.get("/users/8", params={"profile": "json"}).json()
        assert profile["route"] == USER_ROUTE[framework]
        assert_phases(profile, "middleware", "routing", "handler")
        assert [q["sql"] for q in profile["queries"]] == [apps.sql_of(8, 0)]
        row = route_row(client.get(DASHBOARD + "/json").content, "GET", USER_ROUTE[framework])
        assert row["count"] == 2


def test_exception_propagates_and_counts_as_500(framework: str) -> None:
    app = make(framework)
    with TestClient(app) as client, pytest.raises(KeyError, match="boom"):
        client.get("/boom")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
        route = route_row(client.get(DASHBOARD + "/json").content, "GET", "/boom")
        assert route["status"] == {"5xx": 2}


def test_interleaved_requests_see_only_their_own_queries(framework: str) -> None:
    import asyncio

    import httpx

    app = make(framework)

    async def many() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(
                *(client.get(f"/mine/{n}", params=profile_param(n)) for n in range(1, 101))
            )

    for n, response in enumerate(asyncio.run(many()), start=1):
        assert_own_queries(n, response.json())


def test_starlette_sync_endpoint_records_into_its_request() -> None:
    with TestClient(apps.make_starlette()) as client:
        response = client.get("/sync/3")
        assert response.json()["sql"] == [apps.sql_of(3, 0)]
        assert response.headers["X-Query-Count"] == "1"


def test_mounted_route_template_includes_the_mount_path() -> None:
    with TestClient(apps.make_starlette()) as client:
        assert client.get("/api/items/abc").status_code == 200
        assert (
            route_row(client.get(DASHBOARD + "/json").content, "GET", "/api/items/{item_id}")[
                "count"
            ]
            == 1
        )


def test_streaming_response_is_measured_to_the_end() -> None:
    with TestClient(apps.make_starlette()) as client:
        response = client.get("/stream")
        assert response.text == "x" * apps.STREAM_CHUNKS
        profile = client.get("/stream", params={"profile": "json"}).json()
        assert profile["sql_count"] == apps.STREAM_CHUNKS
        assert profile["total_ns"] >= apps.STREAM_CHUNKS * apps.STREAM_PAUSE_S * 1e9
        assert profile["handler_ns"] >= apps.STREAM_CHUNKS * apps.STREAM_PAUSE_S * 1e9


def test_websocket_passes_through() -> None:
    with TestClient(apps.make_starlette()) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_text() == "hi"


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes_with_and_without_token(framework: str, route: str) -> None:
    with TestClient(make(framework)) as client:
        assert client.get(DASHBOARD + route).status_code == 200
    with TestClient(make(framework, production=True)) as client:
        assert client.get(DASHBOARD + route).status_code == 403
        assert (
            client.get(DASHBOARD + route, headers={"X-Profile-Token": apps.TOKEN}).status_code
            == 200
        )


def test_hooks_do_nothing_outside_a_profiled_request() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(json.dumps(_core.get_current_profile() is None))

    apps.make_starlette()  # installs the hooks
    bare = Starlette(routes=[Route("/", hello)])  # no middleware on this one
    with TestClient(bare) as client:
        response = client.get("/")
        assert response.text == "true" and "X-Profile" not in response.headers
