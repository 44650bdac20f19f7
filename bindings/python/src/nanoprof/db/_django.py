"""Django: a wrapper in `connection.execute_wrappers`, Django's own hook around every query
a connection runs (documented since Django 2.0: "Database instrumentation").

Django keeps one connection object per alias per thread (and per async context), made on
first use, so "every connection" means: the connection objects this thread already has,
and every one connected later, which the `connection_created` signal announces.
`django.db.connection` (a proxy) means the same for its alias only.  One connection
object (`connections["alias"]`) is hooked alone (it keeps the wrapper across reconnects).  Connection objects of other threads that connected before install are not
reachable from here: install at start-up, before serving.

Async views that use the ORM through sync_to_async run the query in a worker thread whose
stack does not show the view: such queries are recorded with no call site.
"""

from __future__ import annotations

import weakref
from typing import Any

from .. import _core
from ._base import Live, Undo, active, sql_text


def _module() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        raise RuntimeError(
            "QueryTimer('django'): Django's settings are not configured; call "
            "django.setup() (or set DJANGO_SETTINGS_MODULE) before installing the timer"
        )
    return django


def _wrapper(recorder: Live) -> Any:
    """The execute wrapper of one install: a C callable (_core.TimedMethod in its
    execute-wrapper form, ext/timed.c), since every query of the application goes through
    it.  It does what this Python did, without the frame and the guard's Python calls:

        def nanoprof_query_timer(execute, sql, params, many, context):
            if active.get() or not (t := recorder.start()):
                return execute(sql, params, many, context)
            if many:
                params, first, rows = batch(params) if params is not None else (None, None, 0)
            else:
                first, rows = params, 0
            token = active.set(True)
            try:
                result = execute(sql, params, many, context)
            except BaseException as exc:
                recorder.finish(t, sql_text(sql), first, rows, exc)
                raise
            finally:
                active.reset(token)
            recorder.finish(t, sql_text(sql), first, rows)
            return result
    """
    return _core.TimedMethod(None, recorder, guard=active, text=sql_text, execute_wrapper=True)


def install(target: Any, recorder: Live) -> Undo:
    django = _module()
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created
    from django.db.utils import ConnectionHandler
    from django.utils.connection import ConnectionProxy

    wrapper = _wrapper(recorder)
    hooked: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(conn: Any) -> None:
        wrappers = conn.execute_wrappers
        if wrapper not in wrappers:
            # First in the list is outermost.  Not appended: Django's execute_wrapper()
            # context manager pops the last entry when its block ends, and a connection
            # made inside such a block would otherwise lose the application's wrapper.
            wrappers.insert(0, wrapper)
        hooked.add(conn)

    alias = None
    if isinstance(target, ConnectionProxy):
        # django.db.connection: the alias it stands for, in every thread.
        alias = target.__dict__["_alias"]
    if isinstance(target, BaseDatabaseWrapper):
        add(target)
        uid = None
    elif (target is None or target is django or alias is not None
          or isinstance(target, ConnectionHandler)):
        handler = target if isinstance(target, ConnectionHandler) else connections
        for conn in handler.all(initialized_only=True):
            if alias is None or conn.alias == alias:
                add(conn)
        uid = f"nanoprof.db.QueryTimer.{id(wrapper):x}"

        def on_created(sender: Any, connection: Any, **kwargs: Any) -> None:
            if alias is None or connection.alias == alias:
                add(connection)

        connection_created.connect(on_created, weak=False, dispatch_uid=uid)
    else:
        raise TypeError(
            f"QueryTimer: Django can be timed as 'django', django.db.connections (every "
            f"alias), django.db.connection (its alias) or one connection object "
            f"(connections['alias']), got "
            f"{type(target).__name__}"
        )

    def undo() -> None:
        if uid is not None:
            connection_created.disconnect(dispatch_uid=uid)
        for conn in list(hooked):
            try:
                conn.execute_wrappers.remove(wrapper)
            except ValueError:
                pass
        hooked.clear()

    return undo
