"""nanoprof: a nanosecond request profiler with SQL instrumentation, over a C core.

The names follow the profiling chapter users know (``@profile_handler``, ``RequestProfile``,
``ProfileStore``, ``PerformanceMiddleware``, ``record_sql``, ``Profiler``)::

    from nanoprof import profile_handler, PerformanceMiddleware, get_store

Everything per request happens in the C extension ``nanoprof._core``; this package is the
readable layer around it and the framework adapters (``nanoprof.wsgi``, ``nanoprof.asgi``,
``nanoprof.django``).
"""

from __future__ import annotations

from . import _attach, _core
from ._core import (
    ConfigError,
    Error,
    ProfileStore,
    RequestProfile,
    SQLQuery,
    StateError,
    clock_info,
    config,
    configure,
    ctl,
    elapsed_nanos,
    end_profile,
    get_current_profile,
    get_store,
    nanos,
    options,
    record_sql,
    start_profile,
    stats,
)
from ._handler import profile_handler
from .budget import QueryBudgetExceeded, query_budget
from .db import QueryTimer
from ._callsite import exclude_callsite_paths
from .middleware import PerformanceMiddleware
from .profiler import Profiler, dump_flamegraph
from .slowlog import SlowQueryLog

__version__: str = _core.__version__

_core.set_attach_hook(_attach.attach_header)
_core.set_request_info_hook(_attach.request_info)


def pq_preload_path() -> str:
    """The path of ``libnanoprof_pq.so`` shipped with this package, for ``LD_PRELOAD``.

    Preloaded, it times every query a libpq-based driver (psycopg2 built against the system
    libpq, psycopg's C implementation) sends, into the profile the middleware opened.
    """
    return _core.pq_preload_path()


__all__ = [
    "ConfigError",
    "Error",
    "PerformanceMiddleware",
    "ProfileStore",
    "QueryBudgetExceeded",
    "QueryTimer",
    "Profiler",
    "RequestProfile",
    "SQLQuery",
    "SlowQueryLog",
    "StateError",
    "clock_info",
    "config",
    "configure",
    "ctl",
    "dump_flamegraph",
    "elapsed_nanos",
    "end_profile",
    "exclude_callsite_paths",
    "get_current_profile",
    "get_store",
    "nanos",
    "options",
    "pq_preload_path",
    "profile_handler",
    "query_budget",
    "record_sql",
    "start_profile",
    "stats",
]
