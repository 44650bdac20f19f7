"""The ASGI 3 adapter of PerformanceMiddleware (Starlette, FastAPI, any ASGI app).

`lifespan` and `websocket` scopes go to the app untouched.  For `http`, one call into C
(`Middleware.asgi_begin`) answers dashboard requests or begins a `Request`; the C call
object itself is the `send` the app is given, which adds the headers at
http.response.start and notes the status.  The request ends when the app's coroutine does,
so a streamed response is measured to its last body message.

The call itself is C (`_core.asgi_call`, ext/asgi.c): an ordinary request costs no Python
coroutine or frame of ours, only the C calls around the application's own coroutine, which
keeps the middleware within a few percent of a bare app.  `__call__` stays an `async def`,
since servers look for one to tell an ASGI 3 app; calling the instance goes straight to C.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from . import _adapter, _core
from .middleware import PerformanceMiddleware

__all__ = ["ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIMiddleware(PerformanceMiddleware):
    """PerformanceMiddleware over an ASGI 3 application (built by PerformanceMiddleware(app)
    or by Starlette's add_middleware(PerformanceMiddleware, ...))."""

    def _mount(self, app: Any) -> None:
        self.app = app
        if "starlette" in _adapter.frameworks_of(app):
            from .integrations import starlette as starlette_hooks

            starlette_hooks.install()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # What calling an ASGIMiddleware runs directly (install_asgi_call below); this
        # method is what servers inspect, and what subclasses and explicit calls run.
        return await _core.asgi_call(self, scope, receive, send)  # type: ignore[no-any-return]

    async def _respond(self, req: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """The requests the C call leaves to Python: a dashboard response (`req` is its
        (status, headers, body)) and ?profile=json (the profile is the response)."""
        if type(req) is tuple:
            status, headers, body = req
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return None
        return await _profile_json(self.app, req, scope, receive, send)


_core.install_asgi_call(ASGIMiddleware)


async def _profile_json(
    app: ASGIApp, req: _core.Request, scope: Scope, receive: Receive, send: Send
) -> None:
    """?profile=json: keep the app's messages, then send the profile as the response."""
    messages: list[Message] = []

    async def keep(message: Message) -> None:
        messages.append(message)

    try:
        await app(scope, receive, keep)
    except BaseException:
        req.end(500)
        raise
    status = next((m["status"] for m in messages if m["type"] == "http.response.start"), 500)
    body = req.end(status)
    if body is None:  # the core declined after all: send what the app said
        for message in messages:
            await send(message)
        return
    await send(
        {"type": "http.response.start", "status": status, "headers": _adapter.json_headers(body)}
    )
    await send({"type": "http.response.body", "body": body})
