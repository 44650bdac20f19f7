"""Query budgets: Django's assertNumQueries for any framework and driver, sync and async::

    with nanoprof.query_budget(max_queries=3, max_sql_ms=50):
        client.get("/articles/")

    async with nanoprof.query_budget(max_queries=1):
        await fetch_user(42)

    @nanoprof.query_budget(max_queries=2)
    def test_listing(): ...

On leaving the block, more queries than `max_queries` or more SQL time than `max_sql_ms`
raises QueryBudgetExceeded (an AssertionError, so test runners report it as a failure)
listing the queries by shape: how many, their total time, where the first was issued, and
an example.  An exception already leaving the block is never replaced by it.

What counts: every query recorded while the block runs, by a QueryTimer hook or
record_sql(), in any thread and any task, in a request or not: the observer behind a budget
(`_core.set_query_observer`) is process-wide.  Budgets nest: each counts what ran during
its own block.  Queries of a driver nothing hooks are not seen (install a QueryTimer).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from . import _core

__all__ = ["QueryBudget", "QueryBudgetExceeded", "query_budget"]

_F = TypeVar("_F", bound=Callable[..., Any])

# Longest example SQL a report shows, in characters.
_EXAMPLE_CHARS = 200


class QueryBudgetExceeded(AssertionError):
    """A query_budget block ran more queries, or spent more time in SQL, than allowed.
    `queries` holds every query the block saw (`_core.QueryEvent`s, in order)."""

    def __init__(self, message: str, queries: list[_core.QueryEvent], max_queries: int | None,
                 max_sql_ms: float | None) -> None:
        super().__init__(message)
        self.queries = queries
        self.max_queries = max_queries
        self.max_sql_ms = max_sql_ms


# ---- the one observer ------------------------------------------------------------------------
# The extension has a single observer slot, so budgets share one dispatching observer and
# a list of the open budgets: budgets of concurrent tasks may close in any order, which a
# chain of observers saved and restored per block could not survive.  Whatever observer
# was set before the first budget opened is called too, and put back when the last closes.

_lock = threading.Lock()
_open: list[QueryBudget] = []
_foreign: Callable[[_core.QueryEvent], None] | None = None


def _dispatch(event: _core.QueryEvent) -> None:
    for budget in _open:  # appends are atomic under the GIL; _open is replaced, not mutated
        budget.queries.append(event)
    if _foreign is not None:
        _foreign(event)


def _open_budget(budget: QueryBudget) -> None:
    global _open, _foreign
    with _lock:
        if not _open:
            previous = _core.set_query_observer(_dispatch)
            _foreign = previous if previous is not _dispatch else None
        _open = [*_open, budget]


def _close_budget(budget: QueryBudget) -> None:
    global _open, _foreign
    with _lock:
        _open = [b for b in _open if b is not budget]
        if not _open:
            _core.set_query_observer(_foreign)
            _foreign = None


class QueryBudget:
    """The context manager (sync and async) and decorator query_budget() returns.  After
    the block, `queries` holds what it saw, `count` and `sql_ms` their totals."""

    def __init__(self, max_queries: int | None = None, max_sql_ms: float | None = None) -> None:
        if max_queries is not None and (
            isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 0
        ):
            raise ValueError(
                f"query_budget(max_queries=...): a whole number >= 0 or None, got {max_queries!r}"
            )
        if max_sql_ms is not None and (
            isinstance(max_sql_ms, bool) or not isinstance(max_sql_ms, (int, float))
            or not max_sql_ms >= 0
        ):
            raise ValueError(
                f"query_budget(max_sql_ms=...): milliseconds >= 0 or None, got {max_sql_ms!r}"
            )
        self.max_queries = max_queries
        self.max_sql_ms = max_sql_ms
        self.queries: list[_core.QueryEvent] = []
        self._entered = False

    @property
    def count(self) -> int:
        return len(self.queries)

    @property
    def sql_ms(self) -> float:
        return sum(q.duration_ns for q in self.queries) / 1e6

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> QueryBudget:
        if self._entered:
            raise RuntimeError(
                "query_budget: this budget is already open; make a new one per block "
                "(as a decorator it makes one per call)"
            )
        self._entered = True
        self.queries = []
        _open_budget(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _close_budget(self)
        self._entered = False
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> QueryBudget:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator -----------------------------------------------------------------------------

    def __call__(self, func: _F) -> _F:
        limits = (self.max_queries, self.max_sql_ms)
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with QueryBudget(*limits):
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with QueryBudget(*limits):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]

    # -- the verdict ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raises QueryBudgetExceeded when what the block ran is over a limit."""
        queries = list(self.queries)
        count = len(queries)
        sql_ms = sum(q.duration_ns for q in queries) / 1e6
        over = []
        if self.max_queries is not None and count > self.max_queries:
            over.append(f"{count} queries (max {self.max_queries})")
        if self.max_sql_ms is not None and sql_ms > self.max_sql_ms:
            over.append(f"{sql_ms:.3f} ms of SQL (max {self.max_sql_ms:g} ms)")
        if over:
            raise QueryBudgetExceeded(
                _report(over, queries), queries, self.max_queries, self.max_sql_ms)

    def __repr__(self) -> str:
        return (f"<QueryBudget max_queries={self.max_queries} max_sql_ms={self.max_sql_ms} "
                f"seen={len(self.queries)}>")


def query_budget(max_queries: int | None = None, max_sql_ms: float | None = None) -> QueryBudget:
    """A block (``with``/``async with``) or function (decorator) allowed at most
    `max_queries` queries and `max_sql_ms` milliseconds of SQL (None: no limit); see the
    module's docstring for what counts."""
    return QueryBudget(max_queries, max_sql_ms)


def _report(over: list[str], queries: list[_core.QueryEvent]) -> str:
    """The failure message: what was over, then one line per query shape, the most
    frequent first (the N+1 loop is what one wants to see)."""
    shapes: dict[str, list[_core.QueryEvent]] = {}
    for q in queries:
        shapes.setdefault(q.fingerprint, []).append(q)
    lines = [f"query budget exceeded: {', '.join(over)}", "queries by shape:"]
    ordered = sorted(shapes.values(), key=lambda qs: (-len(qs), -sum(q.duration_ns for q in qs)))
    for qs in ordered:
        first = qs[0]
        total_ms = sum(q.duration_ns for q in qs) / 1e6
        site = next((q.callsite for q in qs if q.callsite), None) or "call site unknown"
        example = " ".join(first.sql.split())
        if len(example) > _EXAMPLE_CHARS:
            example = example[: _EXAMPLE_CHARS - 3] + "..."
        errors = sum(1 for q in qs if q.error)
        failed = f", {errors} failed" if errors else ""
        lines.append(f"  {len(qs)} x, {total_ms:.3f} ms{failed}  at {site}")
        lines.append(f"      {example}")
        if first.rows:
            lines.append(f"      (a batch of {first.rows} rows)")
    return "\n".join(lines)
