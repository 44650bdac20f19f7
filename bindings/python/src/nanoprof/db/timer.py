"""QueryTimer: what an application installs to have its database queries recorded.

It owns one `_core.QueryRecorder` (the slow-query log and threshold) and the hooks of the
libraries it was asked to time; `install()` puts them in, `uninstall()` takes every one
out again.  Which hook a target gets is decided by the library it comes from (the root
module of its class), so the dispatch never imports a driver the application does not use.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

from .. import _core
from ..slowlog import core_log_of
from ._base import Live, Undo, undo_all

if TYPE_CHECKING:
    from ..slowlog import SlowQueryLog

# Library name -> (hook module, pip requirement).  Order matters for QueryTimer(): the
# ORM-level hooks come first (they record; the driver hooks under them then do not).
_KINDS: dict[str, tuple[str, str]] = {
    "django": ("_django", "django"),
    "sqlalchemy": ("_sqlalchemy", "sqlalchemy"),
    "psycopg": ("_psycopg", "psycopg"),
    "psycopg2": ("_psycopg2", "psycopg2"),
    "asyncpg": ("_asyncpg", "asyncpg"),
    "sqlite3": ("_sqlite3", "(sqlite3 is part of Python; this Python was built without it)"),
}
SUPPORTED = tuple(_KINDS)


def _hook_module(kind: str) -> Any:
    return importlib.import_module(f"{__package__}.{_KINDS[kind][0]}")


def _kind_of(db: object) -> str | None:
    """The supported library `db` belongs to, from its module (or its class's, along the
    MRO so that an application's subclass of a driver class counts), or None."""
    if isinstance(db, types.ModuleType):
        names = [db.__name__]
    else:
        cls = db if isinstance(db, type) else type(db)
        names = [c.__module__ for c in cls.__mro__]
    for name in names:
        root = (name or "").partition(".")[0]
        if root in _KINDS:
            return root
    return None


def _require(kind: str) -> None:
    """Imports the library, or raises ImportError saying what to install."""
    try:
        importlib.import_module(kind)
    except ImportError as exc:
        pip = _KINDS[kind][1]
        hint = pip if pip.startswith("(") else f"pip install {pip}"
        raise ImportError(f"QueryTimer({kind!r}): {kind} is not installed: {hint}") from exc


def _available() -> list[str]:
    """What QueryTimer() hooks: every supported library that imports (Django only with its
    settings configured, since its connections cannot exist before)."""
    found = []
    for kind in _KINDS:
        try:
            importlib.import_module(kind)
        except ImportError:
            continue
        if kind == "django":
            from django.conf import settings

            if not settings.configured:
                continue
        found.append(kind)
    return found


class QueryTimer:
    """Records the queries of a database library into the current request's profile, the
    slow-query log and the query observer (budgets)::

        timer = QueryTimer(db, slow_log=slow_log, threshold_ms=100)
        timer.install()
        ...
        timer.uninstall()

        with QueryTimer(engine):          # install() ... uninstall()
            ...

    `db` says what to time:

    - None: every supported library that is installed, module-wide (Django's connections
      only when its settings are configured);
    - a library by name: "django", "sqlalchemy", "psycopg", "psycopg2", "asyncpg",
      "sqlite3", or the module itself (ImportError saying what to pip install when it is
      missing);
    - Django: django.db.connections (every alias), django.db.connection (its alias) or
      one connection object (connections["alias"]);
    - SQLAlchemy: an Engine, an AsyncEngine, or the Engine class (every engine);
    - psycopg: a Connection or AsyncConnection; psycopg2: a connection;
    - asyncpg: a Connection or a Pool.

    `slow_log` (a nanoprof.SlowQueryLog) receives the queries that take at least
    `threshold_ms` (default: the log's own threshold).

    When an ORM hook (Django, SQLAlchemy) records a query, the driver hook underneath does
    not record it again.  A batch (executemany) is one query with the number of parameter
    sets as its rows.  A query that raises is recorded with its error, and the exception
    reaches the application unchanged; results are never touched.
    """

    def __init__(
        self, db: object = None, *, slow_log: SlowQueryLog | None = None,
        threshold_ms: float | None = None,
    ) -> None:
        log = core_log_of(slow_log)
        self._targets = self._resolve(db)
        if threshold_ms is None and slow_log is not None:
            threshold_ms = slow_log.threshold_ms
        self.db = db
        self.recorder = _core.QueryRecorder(log, threshold_ms)
        self._undos: list[Undo] = []
        self._installed = False

    @staticmethod
    def _resolve(db: object) -> list[tuple[str, object]]:
        """(library, target) pairs; target None means the whole library."""
        if db is None:
            return [(kind, None) for kind in _available()]
        if isinstance(db, str):
            if db not in _KINDS:
                raise ValueError(
                    f"QueryTimer({db!r}): unknown library; the names are: "
                    f"{', '.join(map(repr, _KINDS))}"
                )
            _require(db)
            return [(db, None)]
        kind = _kind_of(db)
        if kind is None:
            raise TypeError(
                f"QueryTimer(db): cannot time a {type(db).__module__}.{type(db).__qualname__}; "
                f"db must be None, a library name ({', '.join(_KINDS)}), one of those modules, "
                f"a Django connection or django.db.connections, a SQLAlchemy Engine or "
                f"AsyncEngine, a psycopg/psycopg2/asyncpg connection or an asyncpg Pool"
            )
        if isinstance(db, types.ModuleType) and db.__name__ == kind:
            return [(kind, None)]
        return [(kind, db)]

    @property
    def installed(self) -> bool:
        return self._installed

    def install(self) -> QueryTimer:
        """Puts the hooks in (once: a second call does nothing) and returns the timer."""
        if self._installed:
            return self
        undos: list[Undo] = []
        live = Live(self.recorder)
        try:
            for kind, target in self._targets:
                undos.append(_hook_module(kind).install(target, live))
        except BaseException:
            live.off()
            undo_all(undos)
            raise
        self._live = live
        self._undos = undos
        self._installed = True
        return self

    def uninstall(self) -> None:
        """Takes every hook out, restoring what was there before install."""
        if not self._installed:
            return
        self._installed = False
        self._live.off()
        undo_all(self._undos)

    def __enter__(self) -> QueryTimer:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        kinds = ", ".join(kind if t is None else f"{kind}:{type(t).__name__}"
                          for kind, t in self._targets)
        state = "installed" if self._installed else "not installed"
        return f"<QueryTimer [{kinds}] {state}>"

