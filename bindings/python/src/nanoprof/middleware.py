"""PerformanceMiddleware: the reference document's middleware, for any WSGI or ASGI app.

All the work (timing, ?profile= and the token, headers, aggregation per route, sampling
into the store, the dashboard) is done by the C core, `_core.Middleware`; this class only
configures it and picks the adapter that speaks the application's protocol:

    app = PerformanceMiddleware(app)                  # WSGI or ASGI, chosen from `app`
    starlette_app.add_middleware(PerformanceMiddleware, dashboard_path="/perf")
    PerformanceMiddleware(flask_app)                  # mounted on flask_app.wsgi_app

    perf = PerformanceMiddleware(max_history=500)     # one core shared by several apps
    wsgi_app, asgi_app = perf.wsgi(wsgi_app), perf.asgi(asgi_app)

For Django, put `nanoprof.django.PerformanceMiddleware` first in settings.MIDDLEWARE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import _adapter, _core
from .slowlog import SlowQueryLog, core_log_of

if TYPE_CHECKING:
    from .asgi import ASGIMiddleware
    from .wsgi import WSGIMiddleware

__all__ = ["PerformanceMiddleware"]

_Self = TypeVar("_Self", bound="PerformanceMiddleware")


class PerformanceMiddleware:
    """Profiles every request of `app` (see the module's docstring).

    Runtime options (they make a new default runtime through `_core.configure()`, so
    `get_store()` follows the latest middleware): slow_query_threshold_ms,
    n_plus_one_threshold, max_history, enabled, production, stack_sample_every (sample the
    Python call stacks of one request in N, as ?profile=flame does; 0 off) and
    stack_sample_interval_ms (these three: None keeps what NANOPROF_CONF or the last
    configure() said).  The others configure the C middleware: dashboard_path
    (None turns the dashboard off), token (for production mode), sample_every,
    slow_request_ms, headers ("auto", "always", "on_request"), route_rules,
    default_route_rules, budgets, max_routes, max_n_plus_one, refresh_seconds,
    dashboard_items, slow_log (a SlowQueryLog: each request's queries over
    slow_query_threshold_ms go into its table, except those a QueryTimer with the log
    already sent).
    """

    # Slots, so that the C call of an ASGIMiddleware (ext/asgi.c) reads `app` and `_mw` at
    # their offsets on every request instead of looking them up through the class; the
    # instance keeps a __dict__ for anything else set on it.
    __slots__ = ("app", "_mw", "__dict__", "__weakref__")
    app: Any
    _mw: _core.Middleware

    def __new__(cls, app: Any = None, *args: Any, **options: Any) -> Any:
        # Given an application, PerformanceMiddleware(...) builds the adapter for its
        # protocol.  The adapter subclasses this class, so Python then runs __init__ on it
        # with the same arguments.
        if app is None or cls is not PerformanceMiddleware:
            return super().__new__(cls)
        if _adapter.is_asgi(app):
            from .asgi import ASGIMiddleware as adapter
        else:
            from .wsgi import WSGIMiddleware as adapter  # type: ignore[assignment]
        return super().__new__(adapter)

    def __init__(
        self,
        app: Any = None,
        *,
        slow_query_threshold_ms: float = 100.0,
        n_plus_one_threshold: int = 5,
        max_history: int = 1000,
        dashboard_path: str | None = "/debug/performance",
        enabled: bool = True,
        production: bool | None = None,
        token: str | None = None,
        sample_every: int = 0,
        slow_request_ms: float = 500.0,
        headers: str = "auto",
        route_rules: Sequence[tuple[str, str]] = (),
        default_route_rules: bool = True,
        budgets: Mapping[str, int | tuple[int, float]] | None = None,
        max_routes: int = 500,
        max_n_plus_one: int = 256,
        refresh_seconds: int = 5,
        dashboard_items: int = 50,
        slow_log: SlowQueryLog | None = None,
        stack_sample_every: int | None = None,
        stack_sample_interval_ms: float | None = None,
    ) -> None:
        if app is not None and not callable(app):
            raise TypeError(
                f"PerformanceMiddleware(app): app must be a WSGI or ASGI application (a callable), "
                f"got {type(app).__name__}; pass the application object itself"
            )
        # The arguments themselves, split by the one table of which option goes where.
        given = dict(locals())
        core = {name: given[name] for name in _adapter.MIDDLEWARE_OPTIONS}
        runtime = {name: given[name] for name in _adapter.RUNTIME_OPTIONS}
        for name in ("production", "stack_sample_every", "stack_sample_interval_ms"):
            if runtime[name] is None:  # keep what NANOPROF_CONF or the last configure() said
                del runtime[name]
        if budgets is None:
            del core["budgets"]
        core["slow_log"] = core_log_of(slow_log)
        # Types and ranges are checked in C (TypeError, ConfigError naming the option).
        _core.configure(**runtime)
        self._mw = _core.Middleware(**core)
        self.app = None
        if app is not None:
            self._mount(app)

    def _mount(self, app: Any) -> None:
        """Adapters take `app` here; the bare core has no protocol to serve it with."""
        raise TypeError(
            "PerformanceMiddleware(app): this class has no adapter for app; "
            "use PerformanceMiddleware(app) or .wsgi(app) / .asgi(app)"
        )

    @classmethod
    def _sharing(cls: type[_Self], core: PerformanceMiddleware, app: Any) -> _Self:
        """An adapter of class `cls` over `core`'s C middleware (no new runtime)."""
        if not callable(app):
            raise TypeError(
                f"{cls.__name__}: app must be a callable application, got {type(app).__name__}"
            )
        adapter = object.__new__(cls)
        adapter._mw = core._mw
        adapter.app = None
        adapter._mount(app)
        return adapter

    def wsgi(self, app: Any) -> WSGIMiddleware:
        """`app` (a WSGI application, or a Flask app) profiled by this middleware's core."""
        from .wsgi import WSGIMiddleware

        return WSGIMiddleware._sharing(self, app)

    def asgi(self, app: Any) -> ASGIMiddleware:
        """`app` (an ASGI 3 application) profiled by this middleware's core."""
        from .asgi import ASGIMiddleware

        return ASGIMiddleware._sharing(self, app)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} dashboard_path={self._mw.dashboard_path!r} app={self.app!r}>"
        )
