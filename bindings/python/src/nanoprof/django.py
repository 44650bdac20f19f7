"""Django middleware: put `"nanoprof.django.PerformanceMiddleware"` first in
settings.MIDDLEWARE, and optionally set settings.NANOPROF to a dict of
PerformanceMiddleware's options ({"slow_query_threshold_ms": 50, "token": "..."}).

It is sync and async capable: Django gives it the kind of get_response the stack has, and
it serves requests of that kind without a thread hop.  It serves the dashboard routes,
?profile=1 and ?profile=json, and adds the headers.  Phases are the honest ones:
middleware is Django's own middleware stack (from this middleware to the view and back),
routing is BaseHandler.resolve_request (the URL resolver), handler is the view, and the
route template is the URL pattern that matched (request.resolver_match.route, with a
leading '/').  The two BaseHandler patches are installed once and do nothing outside a
profiled request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from . import _adapter, _core
from . import middleware as _middleware
from .integrations import _around, _around_async, _patch, _replace

__all__ = ["PerformanceMiddleware"]

_PROFILE_JSON = _core.PROFILE_JSON
_current_request = _core.current_request


class PerformanceMiddleware(_middleware.PerformanceMiddleware):
    """nanoprof's PerformanceMiddleware as a Django middleware (options: settings.NANOPROF)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(None, **_settings_options())
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        _install()

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        # Django's META holds what WSGI's environ does (ASGIRequest builds the same keys),
        # so the core reads method, path, query and token in one call.
        req = self._mw.wsgi_begin(request.META)
        if req is None:
            return self.get_response(request)
        if type(req) is tuple:
            return _dashboard(req)
        try:
            response = self.get_response(request)
        except BaseException:
            req.end(500)
            raise
        if req.profile_mode == _PROFILE_JSON:
            if response.streaming:  # the profile must cover the body: produce it now
                for _chunk in response:
                    pass
            return _profile_json(req, response)
        return _finish(req, response)

    async def _acall(self, request: HttpRequest) -> Any:
        req = self._mw.wsgi_begin(request.META)
        if req is None:
            return await self.get_response(request)
        if type(req) is tuple:
            return _dashboard(req)
        try:
            response = await self.get_response(request)
        except BaseException:
            req.end(500)
            raise
        if req.profile_mode == _PROFILE_JSON:
            if response.streaming:
                async for _chunk in response:
                    pass
            return _profile_json(req, response)
        return _finish(req, response)


def _settings_options() -> dict[str, Any]:
    """settings.NANOPROF, checked here because a misspelt key would otherwise surface as
    a TypeError about __init__ with no word of settings."""
    from django.conf import settings

    options = getattr(settings, "NANOPROF", None) or {}
    if not isinstance(options, dict):
        raise ImproperlyConfigured(
            "settings.NANOPROF must be a dict of PerformanceMiddleware options, "
            f"got {type(options).__name__}"
        )
    known = _adapter.RUNTIME_OPTIONS + _adapter.MIDDLEWARE_OPTIONS
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ImproperlyConfigured(
            f"settings.NANOPROF has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"the keys are: {', '.join(known)}"
        )
    return options


def _dashboard(answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> HttpResponse:
    status, headers, body = answer
    response = HttpResponse(body, status=status)
    for name, value in _adapter.str_headers(headers):
        response[name] = value
    return response


def _finish(req: _core.Request, response: HttpResponseBase) -> HttpResponseBase:
    status = response.status_code
    for name, value in req.response_headers_str(status):
        response[name] = value
    if response.streaming:
        # The body is produced after this middleware returns: end the request when the
        # server has taken the last chunk (or closed the response early).
        content = response.streaming_content  # type: ignore[attr-defined]
        ending = _aend_after if response.is_async else _end_after  # type: ignore[attr-defined]
        response.streaming_content = ending(content, req, status)  # type: ignore[attr-defined]
    else:
        req.end(status)
    return response


def _end_after(content: Iterable[bytes], req: _core.Request, status: int) -> Iterator[bytes]:
    try:
        yield from content
    except BaseException:
        status = 500
        raise
    finally:
        req.end(status)


async def _aend_after(
    content: AsyncIterator[bytes], req: _core.Request, status: int
) -> AsyncIterator[bytes]:
    try:
        async for chunk in content:
            yield chunk
    except BaseException:
        status = 500
        raise
    finally:
        req.end(status)


def _profile_json(req: _core.Request, response: HttpResponseBase) -> HttpResponseBase:
    """?profile=json: the body was produced (streams consumed by the caller); the profile
    replaces it, with the application's status."""
    status = response.status_code
    response.close()
    body = req.end(status)
    if body is None:
        return response
    return HttpResponse(body, status=status, content_type="application/json")


# ---- phase hooks ---------------------------------------------------------------------------


def _route(args: tuple[Any, ...]) -> str | None:
    match = getattr(args[0], "resolver_match", None) if args else None
    route = getattr(match, "route", None)
    if not route:
        return None
    return route if route.startswith("/") else "/" + route


def _make_view_atomic(make_view_atomic: Callable[..., Any]) -> Callable[..., Any]:
    """BaseHandler.make_view_atomic hands each request's view to the handler: the view it
    returns is wrapped to mark the handler phase and the route (only in a profiled
    request; otherwise the view is returned as Django made it)."""

    def marked(self: BaseHandler, view: Callable[..., Any]) -> Callable[..., Any]:
        view = make_view_atomic(self, view)
        if _current_request.get(None) is None:
            return view
        # Django checks the result for a coroutine function to pick sync_to_async or not.
        marking = _around_async if iscoroutinefunction(view) else _around
        return marking(view, _core.PHASE_HANDLER, _route)

    return marked


def _install() -> None:
    _patch(BaseHandler, "resolve_request", _core.PHASE_ROUTING)
    _replace(BaseHandler, "make_view_atomic", _make_view_atomic)
