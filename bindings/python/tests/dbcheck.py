"""What the database tests share: profiling a block without a middleware, finding the
line a test expects as a call site (by a `# line: name` marker, never by number), and the
checks on call sites and on secrets."""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import pg
from nanoprof import _core

# Path parts of library code: a call site must never point into one of them.
LIBRARY_PARTS = ("site-packages", "/django/", "/sqlalchemy/", "/psycopg", "/asyncpg/",
                 "src/nanoprof/", "/lib/python3")


@contextmanager
def profiled(path: str = "/test") -> Iterator[SimpleNamespace]:
    """A profile around the block (start_profile/end_profile): after it, `.profile`, its
    `.dict` (to_dict()) and `.json` (to_json())."""
    box = SimpleNamespace(profile=None, dict=None, json=None)
    assert _core.start_profile("GET", path) is not None, "profiling is off"
    try:
        yield box
    finally:
        profile = _core.end_profile()
        assert profile is not None
        box.profile, box.dict, box.json = profile, profile.to_dict(), profile.to_json()


def ours(profile: dict[str, Any], table: str = "nprof_") -> list[dict[str, Any]]:
    """The queries of a profile dict that touch the tests' tables (drivers and ORMs run
    queries of their own when they connect: those are not what the tests count)."""
    return [q for q in profile["queries"] if table in q["sql"]]


@functools.cache
def _lines(path: str) -> list[str]:
    return Path(path).read_text().splitlines()


def line(marker: str, path: str | None = None) -> int:
    """The number of the line ending in `# line: <marker>` in `path` (default: the
    caller's file)."""
    if path is None:
        path = inspect.stack()[1].filename
    pattern = re.compile(rf"#\s*line:\s*{re.escape(marker)}\s*$")
    hits = [i for i, text in enumerate(_lines(path), 1) if pattern.search(text)]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times in {path}"
    return hits[0]


def assert_site(site: str | None, path: str, lineno: int) -> None:
    """`site` ("file.py:42 in function") names `path` at `lineno`."""
    assert site is not None, f"no call site; expected {Path(path).name}:{lineno}"
    assert re.search(rf"(^|/){re.escape(Path(path).name)}:{lineno}\b", site), (site, path, lineno)
    assert_application(site)


def assert_application(site: str | None) -> None:
    if site is None:
        return
    for part in LIBRARY_PARTS:
        assert part not in site, f"call site {site!r} is library code ({part})"


def assert_no_secrets(text: str) -> None:
    for secret in pg.SECRETS:
        assert secret not in text, f"{secret!r} leaked into {text[:2000]}"


def collect() -> Any:
    """A query_budget with no limits: after the block, `.queries` are the QueryEvents."""
    from nanoprof.budget import query_budget

    return query_budget()


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
