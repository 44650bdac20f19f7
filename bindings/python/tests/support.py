"""Helpers the tests share: checks of the profile headers and of the dashboard, and a
real server process on 127.0.0.1 (bounded waits, always terminated)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
DASHBOARD = "/debug/performance"
DASHBOARD_ROUTES = ("", "/json", "/metrics", "/flamegraph.txt", "/flamegraph.svg", "/trace.json")

_DURATION = r"[0-9]+(?:\.[0-9]+)?(?:ns|us|ms|s)"
X_PROFILE = re.compile(rf"^total={_DURATION}(?: [a-z]+={_DURATION}(?:\([0-9]+q\))?)*$")
SERVER_TIMING = re.compile(r"^total;dur=[0-9.]+(?:, [a-z]+;dur=[0-9.]+(?:;desc=\"[^\"]*\")?)*$")


def header(headers: Mapping[str, str] | Any, name: str) -> str | None:
    """A header by name, whatever the client's header type."""
    value = headers.get(name)
    return None if value is None else str(value)


def assert_profile_headers(headers: Mapping[str, str] | Any, queries: int | None = None) -> None:
    """X-Profile, Server-Timing, X-Query-Count and X-Slow-Queries present and well-formed."""
    x_profile = header(headers, "X-Profile")
    assert x_profile is not None, f"no X-Profile in {dict(headers)}"
    assert X_PROFILE.match(x_profile), x_profile
    timing = header(headers, "Server-Timing")
    assert timing is not None and SERVER_TIMING.match(timing), timing
    count = header(headers, "X-Query-Count")
    assert count is not None and count.isdigit(), count
    if queries is not None:
        assert int(count) == queries, (count, queries)
    slow = header(headers, "X-Slow-Queries")
    assert slow is not None and slow.isdigit(), slow


def assert_no_profile_headers(headers: Mapping[str, str] | Any) -> None:
    for name in ("X-Profile", "Server-Timing", "X-Query-Count"):
        assert header(headers, name) is None, (name, dict(headers))


def assert_phases(profile: Mapping[str, Any], *phases: str) -> None:
    """Each of `phases` ("middleware", "routing", "handler") took some time."""
    for phase in phases:
        assert profile[f"{phase}_ns"] > 0, (phase, profile)
    assert profile["total_ns"] >= sum(
        profile[f"{p}_ns"] for p in ("middleware", "routing", "handler")
    )


def route_row(dashboard_json: bytes | str, method: str, route: str) -> dict[str, Any]:
    """The dashboard's row of METHOD + route template (fails listing the rows there are)."""
    rows = json.loads(dashboard_json)["routes"]
    for row in rows:
        if row["method"] == method and row["route"] == route:
            return row  # type: ignore[no-any-return]
    raise AssertionError(f"no row {method} {route} in {[(r['method'], r['route']) for r in rows]}")


def profile_param(n: int) -> dict[str, str]:
    """The query parameters of request n in the concurrency tests: even requests ask for
    ?profile=json, odd ones get the handler's own report of its profile."""
    return {"profile": "json"} if n % 2 == 0 else {}


def assert_own_queries(n: int, body: Mapping[str, Any]) -> None:
    """Request n saw exactly its own queries, in order: in the ?profile=json body, or in
    what the handler read from get_current_profile()."""
    from apps import sql_of

    got = [q["sql"] for q in body["queries"]] if n % 2 == 0 else body["sql"]
    assert got == [sql_of(n, k) for k in range(n)], (n, got)


def eventually(check: Callable[[], T], timeout_s: float = 10.0, pause_s: float = 0.05) -> T:
    """check()'s value once it stops failing (AssertionError), or its last failure after
    `timeout_s`: a server ends a request after the client has its response (WSGI at
    close()), and a slow-query log or a Prometheus gets there later still."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(pause_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    kind: str,
    target: str,
    *,
    production: bool = False,
    threads: int = 8,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """`target` ("module:attr", from this folder) served by uvicorn (kind "asgi") or by
    gunicorn with `threads` threads (kind "wsgi"), with `env` added to the environment;
    yields the base URL."""
    port = free_port()
    if kind == "asgi":
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "auto",
            target,
        ]
    else:
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(HERE),
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--timeout",
            "30",
            target,
        ]
    environ = {**os.environ, **(env or {})}
    environ["NANOPROF_TEST_PRODUCTION"] = "1" if production else "0"
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), environ.get("PYTHONPATH", "")) if p
    )
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=environ, cwd=HERE)
        try:
            _wait_listening(proc, port, log, timeout_s=30.0)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Terminates `proc`, and kills it if it has not exited after `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(
                f"server exited with {proc.returncode}:\n{log.read().decode(errors='replace')}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    log.seek(0)
    raise AssertionError(
        f"server not listening after {timeout_s} s:\n{log.read().decode(errors='replace')}"
    )
