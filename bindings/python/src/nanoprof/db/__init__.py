"""Database hooks: `QueryTimer` times the queries of Django, SQLAlchemy, psycopg, psycopg2,
asyncpg and sqlite3 into the running request's profile (with the call site of each shape's
first query), a slow-query log, and query budgets::

    from nanoprof.db import QueryTimer

    timer = QueryTimer(engine, slow_log=slow_log, threshold_ms=100).install()

One module per library (`_django`, `_sqlalchemy`, ...), each a thin adapter over the C
`QueryRecorder`; `_base` holds what they share.
"""

from __future__ import annotations

from .timer import SUPPORTED, QueryTimer

__all__ = ["SUPPORTED", "QueryTimer"]
