"""The demo app (examples/demo/app.py) without nanoprof, with listeners that do nothing on
the SQLAlchemy engine events around the cursor call (before_cursor_execute,
after_cursor_execute, handle_error): bench_demo.py's `events` variant.

Once an engine has a listener of those, SQLAlchemy sends every statement through its
engine-level event dispatch (the connection joins the engine's listeners, the events'
collections are iterated), whatever the listeners do.  nanoprof's SQLAlchemy hook listened
there until this variant showed what that costs by itself; it now listens to the dialect's
execution events (nanoprof/db/_sqlalchemy.py), and this variant stays as the same-run
measure of why: the floor of any profiler built on engine events.  Served as
`demo_events:app` with examples/demo on the path; NANOPROF_DEMO_MODE must be "off"
(bench_demo.py sets it).
"""

from __future__ import annotations

from typing import Any

import app as demo  # examples/demo/app.py
from sqlalchemy import event

# The engine events nanoprof's SQLAlchemy hook listened to before it moved to the
# dialect's (nanoprof/db/_sqlalchemy.py).
ENGINE_EVENTS = ("before_cursor_execute", "after_cursor_execute", "handle_error")

if demo.MODE != "off":
    raise SystemExit("demo_events: NANOPROF_DEMO_MODE must be off (no nanoprof underneath)")


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


for _name in ENGINE_EVENTS:
    event.listen(demo.engine.sync_engine, _name, _nothing)

app = demo.app
engine = demo.engine
