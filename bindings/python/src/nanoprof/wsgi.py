"""The WSGI adapter of PerformanceMiddleware (PEP 3333).

Per request: one call into C (`Middleware.wsgi_begin`) says whether this is a dashboard
request (answered at once), an unprofiled one (handed to the app untouched) or a profiled
one (a `Request`).  The profile's headers are appended when the app calls start_response,
and the request ends when the server closes the response iterable, so a streamed body is
measured to its last chunk.  The app's close() is always forwarded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from . import _adapter, _core
from .middleware import PerformanceMiddleware

__all__ = ["WSGIMiddleware"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_StartResponse = Callable[..., Callable[[bytes], object]]
_PROFILE_JSON = _core.PROFILE_JSON


class WSGIMiddleware(PerformanceMiddleware):
    """PerformanceMiddleware over a WSGI application (built by PerformanceMiddleware(app))."""

    def _mount(self, app: Any) -> None:
        if "flask" in _adapter.frameworks_of(app):
            from .integrations import flask as flask_hooks

            flask_hooks.install()
            if hasattr(app, "wsgi_app") and not hasattr(app, "__self__"):
                # A Flask object: wrap its wsgi_app so that the object itself (what the
                # user serves) is profiled, as Flask's documentation does with middleware.
                # Mounting again replaces the earlier middleware instead of nesting it.
                inner = app.wsgi_app
                self.app = inner.app if isinstance(inner, WSGIMiddleware) else inner
                app.wsgi_app = self
                return
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        req = self._mw.wsgi_begin(environ)
        if req is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if type(req) is tuple:
            status, headers, body = req
            start_response(_adapter.status_line(status), _adapter.str_headers(headers))
            return [body]
        if req.profile_mode == _PROFILE_JSON:
            return _profile_json(self.app, req, environ, start_response)
        response = _Response(req, start_response)
        try:
            response.iterable = self.app(environ, response.start_response)
        except BaseException:
            req.end(500)
            raise
        return response


def _status_code(status: object) -> int | None:
    """The code of a WSGI status line ("200 OK"), or None for what is not one."""
    try:
        return int(status[:3])  # type: ignore[index]
    except (TypeError, ValueError):
        return None


class _Response:
    """The response iterable handed to the server: it passes the app's chunks through,
    notes a failure while iterating, and ends the request in close().  (A body made with
    wsgi.file_wrapper is then sent chunk by chunk: the server no longer sees the wrapper it
    could have used sendfile for.)"""

    __slots__ = ("_req", "_start_response", "_status", "iterable", "_it")

    def __init__(self, req: _core.Request, start_response: _StartResponse) -> None:
        self._req = req
        self._start_response = start_response
        self._status = 0
        self.iterable: Iterable[bytes] = ()
        self._it: Iterator[bytes] | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        code = _status_code(status)
        if code is None or not isinstance(headers, Iterable):
            # A status or headers PEP 3333 does not allow ("OK", 200, None): they go as
            # they came, for the server to refuse as it would without the profiler.
            self._status = 500
            return self._start_response(status, headers, exc_info)
        self._status = code
        # A new list: the app may keep and reuse its own.
        extra = self._req.response_headers_str(code)
        return self._start_response(status, [*headers, *extra], exc_info)

    def __iter__(self) -> _Response:
        self._it = iter(self.iterable)
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._it)  # type: ignore[arg-type]
        except StopIteration:
            raise
        except BaseException:
            self._status = 500
            raise

    def close(self) -> None:
        status = self._status
        try:
            close = getattr(self.iterable, "close", None)
            if close is not None:
                close()
        except BaseException:
            status = 500
            raise
        finally:
            self._req.end(status)


class _Captured:
    """start_response for ?profile=json: keeps the app's status, headers and written
    bytes; nothing reaches the server until the profile is ready."""

    __slots__ = ("status", "headers", "chunks")

    def __init__(self) -> None:
        self.status = "500 Internal Server Error"
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        self.status, self.headers = status, headers
        return self.chunks.append


def _profile_json(
    app: Callable[..., Iterable[bytes]],
    req: _core.Request,
    environ: dict[str, Any],
    start_response: _StartResponse,
) -> Iterable[bytes]:
    """?profile=json: run the app to the end of its body, then send the profile instead."""
    captured = _Captured()
    try:
        iterable = app(environ, captured.start_response)
        try:
            captured.chunks.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
    except BaseException:
        req.end(500)
        raise
    code = _status_code(captured.status)
    body = req.end(500 if code is None else code)
    if body is None or code is None:
        # The core declined after all, or the app's status is none the server will take:
        # send what the app said.
        start_response(captured.status, captured.headers)
        return captured.chunks
    start_response(captured.status, _adapter.str_headers(_adapter.json_headers(body)))
    return [body]
