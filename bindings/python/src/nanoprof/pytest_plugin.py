"""The pytest plugin (registered as the `nanoprof` pytest11 entry point): a query budget
per test, over any driver a QueryTimer hooks.

    @pytest.mark.query_budget(max_queries=3, max_sql_ms=50)
    def test_listing(client): ...

    def test_detail(client, query_budget):
        with query_budget(max_queries=1):
            client.get("/articles/1/")

The marker wraps the test's call (not its fixtures' set-up); a test over budget fails with
QueryBudgetExceeded, whose message lists the queries by shape with their call sites.  The
budget counts every query recorded in the process while the test runs (see
nanoprof.budget).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from .budget import QueryBudget
from .budget import query_budget as _query_budget

_MARKER = "query_budget"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(max_queries=None, max_sql_ms=None): fail the test when its call runs more "
        "queries or more milliseconds of SQL than that (nanoprof)",
    )


@pytest.fixture
def query_budget() -> Callable[..., QueryBudget]:
    """nanoprof.query_budget: `with query_budget(max_queries=2): ...` inside the test."""
    return _query_budget


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    marker = item.get_closest_marker(_MARKER)
    if marker is None:
        return (yield)
    try:
        budget = _query_budget(*marker.args, **marker.kwargs)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.{_MARKER}{tuple(marker.args) or ''}"
            f"{marker.kwargs or ''}: {exc}; use max_queries=<int>, max_sql_ms=<float>"
        ) from exc
    with budget:
        return (yield)
