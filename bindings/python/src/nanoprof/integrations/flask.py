"""Flask phase hooks: routing is RequestContext.match_request (the URL map's match), the
handler is Flask.dispatch_request (the view), and the route template is the matched
rule's text (request.url_rule.rule, "/users/<int:id>").  before/after_request functions
and the conversion of the view's result into a response count as middleware."""

from __future__ import annotations

from typing import Any

from .. import _core
from . import _patch


def _rule(args: tuple[Any, ...]) -> str | None:
    import flask

    rule = flask.request.url_rule
    return None if rule is None else rule.rule


def install() -> None:
    """Patches Flask once (later calls do nothing)."""
    from flask import Flask
    from flask.ctx import RequestContext

    _patch(RequestContext, "match_request", _core.PHASE_ROUTING)
    _patch(Flask, "dispatch_request", _core.PHASE_HANDLER, _rule)
