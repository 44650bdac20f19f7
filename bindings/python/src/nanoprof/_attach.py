"""The two hooks the C handler decorator (@profile_handler) calls for framework objects it
does not know: `attach_header` puts the X-Profile header on a handler's result, and
`request_info` finds the (method, path) of the request a handler was called with.

A framework is only looked at when its module is already in sys.modules: an application
that never imported Django pays nothing for Django here, and nothing is imported on its
behalf.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["attach_header", "request_info"]

_HEADER = "X-Profile"
_modules = sys.modules


def attach_header(result: object, header: str) -> object:
    """`result` with an X-Profile header: werkzeug/Flask, Django and Starlette responses get
    it set; inside a Flask request a plain view result (str, bytes, dict, list, tuple) is
    made a Response first and that is returned.  Anything else comes back untouched."""
    werkzeug = _modules.get("werkzeug.wrappers.response")
    if werkzeug is not None and isinstance(result, werkzeug.Response):
        result.headers[_HEADER] = header
        return result
    django = _modules.get("django.http.response")
    if django is not None and isinstance(result, django.HttpResponseBase):
        result[_HEADER] = header
        return result
    starlette = _modules.get("starlette.responses")
    if starlette is not None and isinstance(result, starlette.Response):
        # Starlette's MutableHeaders writes through to the response's raw_headers.
        result.headers[_HEADER] = header
        return result
    flask = _modules.get("flask")
    if (
        flask is not None
        and isinstance(result, (str, bytes, dict, list, tuple))
        and flask.has_request_context()
    ):
        response = flask.make_response(result)
        response.headers[_HEADER] = header
        return response
    return result


def request_info(args: Sequence[object]) -> tuple[str, str] | None:
    """(method, path) of the request among a handler's arguments: a Django HttpRequest or
    a Starlette Request first, else Flask's current request (Flask views take none).
    None when there is no request to be found."""
    if args:
        first = args[0]
        django = _modules.get("django.http.request")
        if django is not None and isinstance(first, django.HttpRequest):
            return first.method or "", first.path
        starlette = _modules.get("starlette.requests")
        if starlette is not None and isinstance(first, starlette.Request):
            return first.method, first.url.path
    flask = _modules.get("flask")
    if flask is not None and flask.has_request_context():
        return flask.request.method, flask.request.path
    return None
