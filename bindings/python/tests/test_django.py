"""Django through its test clients, sync (Client) and async (AsyncClient): settings
options, phases from the BaseHandler hooks, the URL pattern as the route template,
streaming, exceptions, the dashboard."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings

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


def test_headers_phases_and_route_template() -> None:
    client = Client()
    response = client.get("/users/3/")
    assert response.status_code == 200 and response.json() == {"id": 3}
    assert_profile_headers(response.headers, queries=1)
    profile = client.get("/users/4/", {"profile": "json"}).json()
    assert profile["route"] == "/users/<int:user_id>/"
    assert_phases(profile, "middleware", "routing", "handler")
    assert (
        route_row(client.get(DASHBOARD + "/json").content, "GET", "/users/<int:user_id>/")["count"]
        == 2
    )


def test_async_stack_phases_and_own_queries() -> None:
    async def go() -> tuple[Any, Any, Any]:
        client = AsyncClient()
        plain = await client.get("/async/5/")
        profile = await client.get("/async/6/", {"profile": "json"})
        dashboard = await client.get(DASHBOARD + "/json")
        return plain, profile, dashboard

    plain, profile, dashboard = asyncio.run(go())
    assert plain.json()["sql"] == [apps.sql_of(5, 0)]
    assert_profile_headers(plain.headers, queries=1)
    assert_phases(profile.json(), "middleware", "routing", "handler")
    assert profile.json()["route"] == "/async/<int:user_id>/"
    assert route_row(dashboard.content, "GET", "/async/<int:user_id>/")["count"] == 2


def test_async_stack_with_a_sync_view() -> None:
    async def go() -> Any:
        return await AsyncClient().get("/users/9/", {"profile": "json"})

    profile = asyncio.run(go()).json()
    assert profile["route"] == "/users/<int:user_id>/"
    assert_phases(profile, "middleware", "routing", "handler")
    assert [q["sql"] for q in profile["queries"]] == [apps.sql_of(9, 0)]


def test_interleaved_async_requests_see_only_their_own_queries() -> None:
    async def many() -> list[Any]:
        client = AsyncClient()
        return await asyncio.gather(
            *(client.get(f"/amine/{n}/", profile_param(n)) for n in range(1, 101))
        )

    for n, response in enumerate(asyncio.run(many()), start=1):
        assert_own_queries(n, response.json())


def test_streaming_response_is_measured_to_the_end() -> None:
    response = Client().get("/stream/")
    assert b"".join(response.streaming_content) == b"x" * apps.STREAM_CHUNKS
    response.close()
    assert_profile_headers(response.headers)
    assert_streamed_profile("/stream/")


def test_async_streaming_response_is_measured_to_the_end() -> None:
    async def go() -> tuple[Any, bytes]:
        response = await AsyncClient().get("/astream/")
        return response, b"".join([chunk async for chunk in response.streaming_content])

    response, body = asyncio.run(go())
    assert body == b"x" * apps.STREAM_CHUNKS
    assert_profile_headers(response.headers)
    assert_streamed_profile("/astream/")


def assert_streamed_profile(path: str) -> None:
    profile = _core.get_store().get_recent(1)[0]
    assert profile.path == path
    assert profile.sql_count == apps.STREAM_CHUNKS
    assert profile.total_ns >= apps.STREAM_CHUNKS * apps.STREAM_PAUSE_S * 1e9


@pytest.mark.parametrize("path", ["/stream/", "/astream/"])
def test_streaming_response_under_profile_json(path: str) -> None:
    async def go() -> Any:
        return await AsyncClient().get(path, {"profile": "json"})

    for response in (Client().get(path, {"profile": "json"}), asyncio.run(go())):
        assert response["Content-Type"] == "application/json"
        assert response.json()["sql_count"] == apps.STREAM_CHUNKS


def test_exception_propagates_and_counts_as_500() -> None:
    client = Client()
    with pytest.raises(KeyError, match="boom"):
        client.get("/boom/")
    assert route_row(client.get(DASHBOARD + "/json").content, "GET", "/boom/")["status"] == {
        "5xx": 1
    }


@pytest.mark.parametrize("route", DASHBOARD_ROUTES)
def test_dashboard_routes_with_and_without_token(route: str) -> None:
    assert Client().get(DASHBOARD + route).status_code == 200
    with override_settings(NANOPROF=apps.options(production=True)):
        client = Client()
        assert client.get(DASHBOARD + route).status_code == 403
        assert (
            client.get(DASHBOARD + route, headers={"X-Profile-Token": apps.TOKEN}).status_code
            == 200
        )
        assert client.get(DASHBOARD + route, {"profile_token": apps.TOKEN}).status_code == 200


def test_production_headers_only_on_request_with_token() -> None:
    with override_settings(NANOPROF=apps.options(production=True)):
        client = Client()
        assert "X-Profile" not in client.get("/users/1/").headers
        response = client.get(
            "/users/1/", {"profile": "1"}, headers={"X-Profile-Token": apps.TOKEN}
        )
        assert_profile_headers(response.headers, queries=1)


def test_settings_with_an_unknown_key_say_which() -> None:
    with (
        override_settings(NANOPROF={"slow_query_treshold_ms": 5}),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        Client().get("/users/1/")
    assert "slow_query_treshold_ms" in str(caught.value) and "slow_query_threshold_ms" in str(
        caught.value
    )


def test_hooks_are_installed_once_and_idle_outside_requests() -> None:
    from django.core.handlers.base import BaseHandler

    Client().get("/users/1/")
    Client().get("/users/1/")
    resolve = BaseHandler.resolve_request
    assert getattr(resolve, "__nanoprof_hook__", False)
    assert not getattr(resolve.__wrapped__, "__nanoprof_hook__", False)  # not stacked
    with override_settings(NANOPROF=apps.options(enabled=False)):
        response = Client().get("/users/2/")
        assert response.status_code == 200 and "X-Profile" not in response.headers
    assert json.loads(Client().get("/users/3/").content) == {"id": 3}
