"""PerformanceMiddleware's construction: the adapter it picks, and what a bad option says."""

from __future__ import annotations

from typing import Any

import pytest

import apps
from nanoprof import _core
from nanoprof.asgi import ASGIMiddleware
from nanoprof.middleware import PerformanceMiddleware
from nanoprof.wsgi import WSGIMiddleware


class AsyncCallable:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


def test_the_adapter_follows_the_application() -> None:
    assert type(PerformanceMiddleware(apps.wsgi_app)) is WSGIMiddleware
    assert type(PerformanceMiddleware(apps.asgi_app)) is ASGIMiddleware
    assert type(PerformanceMiddleware(AsyncCallable())) is ASGIMiddleware
    core = PerformanceMiddleware()
    assert type(core) is PerformanceMiddleware and core.app is None
    wsgi, asgi = core.wsgi(apps.wsgi_app), core.asgi(apps.asgi_app)
    assert wsgi._mw is core._mw and asgi._mw is core._mw
    assert isinstance(wsgi, PerformanceMiddleware) and isinstance(asgi, PerformanceMiddleware)


def test_flask_app_object_is_mounted_on_wsgi_app() -> None:
    import flask

    app = flask.Flask("mount")
    original = app.wsgi_app
    middleware = PerformanceMiddleware(app)
    assert app.wsgi_app is middleware and middleware.app == original
    again = PerformanceMiddleware(app)  # replaces the first one rather than nesting
    assert app.wsgi_app is again and again.app == original


def test_runtime_options_reach_the_runtime() -> None:
    PerformanceMiddleware(
        apps.wsgi_app, slow_query_threshold_ms=42.5, n_plus_one_threshold=7, max_history=64
    )
    config = _core.config()
    assert (
        config["slow_query_threshold_ms"],
        config["n_plus_one_threshold"],
        config["max_history"],
    ) == (42.5, 7, 64)
    assert _core.get_store().capacity >= 64


def test_not_an_application() -> None:
    with pytest.raises(TypeError, match="app must be a WSGI or ASGI application"):
        PerformanceMiddleware("not an app")


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("headers", "sometimes", ValueError),
        ("dashboard_path", "no-slash", ValueError),
        ("n_plus_one_threshold", "five", TypeError),
        ("slow_query_threshold_ms", -1.0, ValueError),
        ("route_rules", [("(unclosed", "{id}")], ValueError),
    ],
)
def test_a_bad_option_names_itself(option: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        PerformanceMiddleware(apps.wsgi_app, **{option: value})
    assert option in str(caught.value) or option.replace("_", " ") in str(caught.value), str(
        caught.value
    )


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError, match="slow_query_treshold_ms"):
        PerformanceMiddleware(apps.wsgi_app, slow_query_treshold_ms=5)  # type: ignore[call-arg]
