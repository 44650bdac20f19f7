"""sqlite3 (the standard library's): its Connection and Cursor are C types whose methods
cannot be patched and whose instances cannot change class, so only connections made
through `sqlite3.connect` after install are timed: the wrapper passes a `factory=` that is
a timed subclass of the factory asked for (default `sqlite3.Connection`).  Its cursors time
execute, executemany and executescript; its own execute* shortcuts go through them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ._base import Live, ClassCache, Undo, patch, sync_execute, sync_executemany

# sqlite3.connect(database, timeout, detect_types, isolation_level, check_same_thread,
# factory, ...): where `factory` sits when given by position.
_FACTORY_POS = 5


def install(target: Any, recorder: Live) -> Undo:
    def make_cursor(base: type) -> type:
        return type(f"Timed{base.__name__}", (base,), {
            "__module__": __name__,
            "execute": sync_execute(base.execute, recorder, "parameters"),  # type: ignore[attr-defined]
            "executemany": sync_executemany(base.executemany, recorder, "seq_of_parameters"),  # type: ignore[attr-defined]
            "executescript": sync_execute(base.executescript, recorder, ""),  # type: ignore[attr-defined]
        })

    cursors = ClassCache(make_cursor)

    def make_connection(base: type) -> type:
        def cursor(self: Any, factory: Any = sqlite3.Cursor) -> Any:
            if isinstance(factory, type) and issubclass(factory, sqlite3.Cursor):
                factory = cursors(factory)
            return base.cursor(self, factory)  # type: ignore[attr-defined]

        # The C shortcuts make their cursor without calling cursor(): route them through it.
        def execute(self: Any, *args: Any) -> Any:
            return self.cursor().execute(*args)

        def executemany(self: Any, *args: Any) -> Any:
            return self.cursor().executemany(*args)

        def executescript(self: Any, *args: Any) -> Any:
            return self.cursor().executescript(*args)

        return type(f"Timed{base.__name__}", (base,), {
            "__module__": __name__, "cursor": cursor, "execute": execute,
            "executemany": executemany, "executescript": executescript,
        })

    connections = ClassCache(make_connection)

    if target is not None and target is not sqlite3:
        if isinstance(target, sqlite3.Connection):
            raise TypeError(
                "QueryTimer: a sqlite3.Connection made before install cannot be timed (its "
                "class is a C type that cannot be patched); install QueryTimer('sqlite3') "
                "(or QueryTimer()) before calling sqlite3.connect()"
            )
        raise TypeError(
            f"QueryTimer: sqlite3 can be timed as the module (sqlite3), got "
            f"{type(target).__name__}"
        )

    def wrap_connect(connect: Any) -> Any:
        def timed_connect(*args: Any, **kwargs: Any) -> Any:
            if len(args) > _FACTORY_POS:
                args = (*args[:_FACTORY_POS], _timed(args[_FACTORY_POS]), *args[_FACTORY_POS + 1:])
            else:
                kwargs["factory"] = _timed(kwargs.get("factory", sqlite3.Connection))
            return connect(*args, **kwargs)

        return timed_connect

    def _timed(factory: Any) -> Any:
        if isinstance(factory, type) and issubclass(factory, sqlite3.Connection):
            return connections(factory)
        return factory

    return patch(sqlite3, {"connect": wrap_connect})  # type: ignore[arg-type]
