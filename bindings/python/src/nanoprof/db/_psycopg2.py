"""psycopg2: its cursor and connection are C types, so their methods cannot be patched.

Module-wide, `psycopg2.connect` is wrapped so that every connection it makes is of a timed
subclass of the connection class asked for (`connection_factory`, default
`psycopg2.extensions.connection`), whose `cursor()` hands out timed subclasses of whatever
cursor class is asked for (`cursor_factory=` of connect() or of cursor(), or the
connection's `cursor_factory`): DictCursor and friends keep working, timed.  Django and
SQLAlchemy call `psycopg2.connect` through the module, so their connections are covered;
code that did `from psycopg2 import connect` before install is not.

For one existing connection, its `cursor_factory` is set to a timed subclass (cursors made
with an explicit `cursor_factory=` argument are then not timed).
"""

from __future__ import annotations

from typing import Any

from ._base import Live, ClassCache, Undo, patch, sync_execute, sync_executemany


def _module() -> Any:
    import psycopg2
    import psycopg2.extensions

    return psycopg2


def _cursor_classes(recorder: Live) -> ClassCache:
    def make(base: type) -> type:
        return type(
            f"Timed{base.__name__}",
            (base,),
            {
                "__module__": __name__,
                "__doc__": f"{base.__qualname__} whose queries nanoprof times.",
                "execute": sync_execute(base.execute, recorder, "vars"),  # type: ignore[attr-defined]
                "executemany": sync_executemany(base.executemany, recorder, "vars_list"),  # type: ignore[attr-defined]
            },
        )

    return ClassCache(make)


def _timed_factory(cursors: ClassCache, factory: Any, default: type) -> Any:
    factory = factory or default
    # A factory that is a plain function cannot be subclassed: its cursors go untimed.
    if isinstance(factory, type) and issubclass(factory, default):
        return cursors(factory)
    return factory


def install(target: Any, recorder: Live) -> Undo:
    psycopg2 = _module()
    ext = psycopg2.extensions
    cursors = _cursor_classes(recorder)
    if target is None or target is psycopg2:
        return _install_module(psycopg2, cursors)
    if isinstance(target, ext.connection):
        before = target.cursor_factory
        target.cursor_factory = _timed_factory(cursors, before, ext.cursor)

        def undo() -> None:
            target.cursor_factory = before

        return undo
    raise TypeError(
        f"QueryTimer: psycopg2 can be timed as the module (psycopg2) or as a connection "
        f"(psycopg2.extensions.connection), got {type(target).__name__}"
    )


def _install_module(psycopg2: Any, cursors: ClassCache) -> Undo:
    ext = psycopg2.extensions

    def make_connection(base: type) -> type:
        own_cursor = base.cursor is not ext.connection.cursor  # type: ignore[attr-defined]

        def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
            # cursor(name=None, cursor_factory=None, scrollable=None, withhold=False)
            given = args[1] if len(args) > 1 else kwargs.get("cursor_factory")
            factory = given or self.cursor_factory
            if factory is None and own_cursor:
                # The connection class picks its own default (LoggingConnection gives a
                # LoggingCursor): let it, then move the cursor to the timed subclass of
                # that class, which has the same layout.
                cur = base.cursor(self, *args, **kwargs)  # type: ignore[attr-defined]
                timed = _timed_factory(cursors, type(cur), ext.cursor)
                if timed is not type(cur):
                    try:
                        cur.__class__ = timed
                    except TypeError:  # the C cursor type itself: cannot move; untimed
                        pass
                return cur
            timed = _timed_factory(cursors, factory, ext.cursor)
            if len(args) > 1:
                args = (args[0], timed, *args[2:])
            else:
                kwargs["cursor_factory"] = timed
            return base.cursor(self, *args, **kwargs)  # type: ignore[attr-defined]

        return type(f"Timed{base.__name__}", (base,), {"__module__": __name__, "cursor": cursor})

    connections = ClassCache(make_connection)

    def wrap_connect(connect: Any) -> Any:
        def timed_connect(dsn: Any = None, connection_factory: Any = None,
                          cursor_factory: Any = None, **kwargs: Any) -> Any:
            factory = connection_factory or ext.connection
            if isinstance(factory, type) and issubclass(factory, ext.connection):
                factory = connections(factory)
            conn = connect(dsn, connection_factory=factory, cursor_factory=cursor_factory,
                           **kwargs)
            if isinstance(conn, ext.connection) and not connections.is_timed(type(conn)):
                # A connection_factory that is a function: time its default cursors at least.
                conn.cursor_factory = _timed_factory(cursors, conn.cursor_factory, ext.cursor)
            return conn

        return timed_connect

    return patch(psycopg2, {"connect": wrap_connect})  # type: ignore[arg-type]
