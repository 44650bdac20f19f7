"""The demo, start to end: a throwaway PostgreSQL (or NANOPROF_DSN), the schema seeded, the
blog API of app.py under uvicorn on 127.0.0.1 with nanoprof mounted, traffic, and what
nanoprof saw, printed.  Everything it started is stopped at the end, on Ctrl-C and on errors.

    python examples/demo/demo.py            # scripts/demo.sh runs this in the project's venv
    python examples/demo/demo.py --serve    # then keep the app up for a browser, until Ctrl-C

NANOPROF_DSN (a libpq connection string or URI): use that database instead of starting one.
The demo then drops and re-creates the schema `nanoprof_demo` there and writes slow queries
into `nanoprof_slow_queries`; nothing else is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PG_CLUSTER = ROOT / "tests" / "pg_cluster.sh"
sys.path.insert(0, str(HERE))

import seed  # noqa: E402
import traffic  # noqa: E402

# ---- the processes ---------------------------------------------------------------------------


@contextmanager
def database() -> Iterator[str]:
    """NANOPROF_DSN, or a throwaway PostgreSQL server (tests/pg_cluster.sh: a Unix socket in a
    temporary directory, no TCP) deleted again when the block ends."""
    dsn = os.environ.get("NANOPROF_DSN")
    if dsn:
        yield dsn
        return
    directory = tempfile.mkdtemp(prefix="nanoprof-demo-pg.")
    os.rmdir(directory)  # pg_cluster.sh creates it itself, and refuses one it did not create
    try:
        r = subprocess.run(["sh", str(PG_CLUSTER), "start", directory], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise SystemExit(f"PostgreSQL did not start (tests/pg_cluster.sh, exit "
                             f"{r.returncode}):\n{r.stderr}")
        yield r.stdout.strip()
    finally:
        subprocess.run(["sh", str(PG_CLUSTER), "stop", directory], capture_output=True)


def free_port(preferred: int = 8000) -> int:
    """`preferred` when nothing listens there, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            # As uvicorn does: connections of an earlier run in TIME_WAIT do not count.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise SystemExit("no free TCP port on 127.0.0.1")


def app_command(port: int, python: str = sys.executable) -> list[str]:
    """uvicorn serving app.py.  The working directory is the repository's root (app_process
    sets it), so call sites read `examples/demo/app.py:84`: nanoprof shows them relative to
    the directory the server started in."""
    return [python, "-m", "uvicorn", "app:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]


def app_env(dsn: str, mode: str = "dev", **extra: str) -> dict[str, str]:
    return {**os.environ, "NANOPROF_DEMO_DSN": dsn, "NANOPROF_DEMO_MODE": mode, **extra}


def wait_until_up(proc: subprocess.Popen[bytes], port: int, probe: str,
                  timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as r:
                r.read()
            return
        except OSError as e:
            if proc.poll() is not None:
                raise SystemExit(f"the app exited with status {proc.returncode}") from e
            if time.monotonic() > deadline:
                raise SystemExit(f"the app did not answer {probe} within {timeout_s:.0f} s: {e}")
            time.sleep(0.1)


@contextmanager
def app_process(dsn: str, port: int, mode: str = "dev", **extra: str) -> Iterator[str]:
    """app.py under uvicorn for the duration of the block; yields its base URL.  Ready once
    the dashboard answers (its requests are not profiled, so the wait adds no traffic)."""
    proc = subprocess.Popen(app_command(port), cwd=ROOT, env=app_env(dsn, mode, **extra))
    try:
        wait_until_up(proc, port, traffic.DASHBOARD + "/json")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---- what is printed ----------------------------------------------------------------------------


def heading(text: str) -> None:
    print(f"\n== {text}")


def source_line(callsite: str) -> str:
    """The text of the line a call site ("examples/demo/app.py:84 in list_articles") names."""
    where = callsite.split(" in ")[0]
    path, _, number = where.rpartition(":")
    try:
        return (ROOT / path).read_text().splitlines()[int(number) - 1].strip()
    except (OSError, ValueError, IndexError):
        return "?"


def report(found: traffic.Findings, counts: dict[str, int]) -> None:
    print(f"seeded schema {seed.SCHEMA}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))

    heading("1. Every response says where its time went (development mode: on every response)")
    for r in found.samples:
        print(f"GET {r.path}")
        for name, value in r.headers.items():
            print(f"  {name}: {value}")

    heading("2. The N+1 on GET /articles, and the line that causes it")
    print(f"  x-n-plus-one: {found.n_plus_one_header}")
    for p in found.n_plus_one:
        print(f"  {p.count} x {p.normalized}  ({p.total} in all)")
        print(f"  sent from {p.callsite}:")
        print(f"      {source_line(p.callsite)}")
    fixed = found.fixed
    if fixed is not None:
        verdict = ("no N+1" if not found.fixed_n_plus_one
                   else f"STILL {len(found.fixed_n_plus_one)} N+1 pattern(s)")
        print(f"  the fix, selectinload(Article.author), on GET /articles/fixed: "
              f"{fixed.headers.get('x-query-count', '?')} queries, {verdict}")
        print(f"  x-profile: {fixed.headers.get('x-profile', '')}")

    heading(f"3. Load: {found.load_requests} requests over every endpoint, 8 at a time: "
            f"{found.load_seconds:.1f} s, {found.load_requests / found.load_seconds:.0f} "
            "requests/s")

    kind = "UNLOGGED" if found.slow_table_unlogged else "LOGGED"
    heading(f"4. Slow queries (over 50 ms) in the {kind} table, from psql:")
    print(f"  {found.slow_query_sql};")
    for row in found.slow_rows:
        print(f"  {row['ms']:>7} ms  {row['method']} {row['route']}  at {row['callsite']}")
        print(f"             {row['normalized_sql'][:100]}...")
    if not found.slow_rows:
        print("  (none written yet)")

    heading(f"5. Per route, from {traffic.DASHBOARD}/json")
    print(f"  {'route':32} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'queries':>8} {'N+1':>5}")
    for row in found.routes:
        print(f"  {row['method'] + ' ' + row['route']:32} {row['count']:6} "
              f"{row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['p99_ms']:8.1f} "
              f"{row['mean_queries']:8.1f} {row['n_plus_one']:5}")

    heading("6. One request's sampled call stacks (GET /articles?profile=flame)")
    if found.flame_url:
        print(f"  {found.flame_url}  (SVG, {found.flame_bytes / 1024:.0f} KB)")
        print("  its heaviest stacks (.txt?collapse=libs), innermost frames:")
        for stack, ns in found.flame_top:
            frames = stack.split(";")
            tail = ";".join(frames[-3:])
            print(f"  {ns / 1e6:7.1f} ms  {'...;' if len(frames) > 3 else ''}{tail}")
    else:
        print("  (the response named no flame graph)")

    heading(f"Dashboard: {found.dashboard_url}")


# ---- main ----------------------------------------------------------------------------------------


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, through the `finally` blocks that stop the app and the
    # database.
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", action="store_true",
                    help="keep the app running after the report, until Ctrl-C")
    ap.add_argument("--port", type=int, default=8000,
                    help="port on 127.0.0.1 (another free one when it is taken)")
    ap.add_argument("--requests", type=int, default=400, help="requests of the load phase")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if not os.environ.get("NANOPROF_DSN") and not shutil.which("sh"):
        raise SystemExit("sh is needed to start PostgreSQL")
    started = time.monotonic()
    try:
        with database() as dsn:
            counts = seed.seed(dsn)
            port = free_port(args.port)
            with app_process(dsn, port) as base_url:
                print(f"nanoprof demo: FastAPI + SQLAlchemy (asyncpg) at {base_url}, "
                      f"PostgreSQL {'from NANOPROF_DSN' if 'NANOPROF_DSN' in os.environ else 'throwaway'}")
                found = asyncio.run(traffic.explore(base_url, dsn, requests=args.requests))
                report(found, counts)
                print(f"\n(demo ran in {time.monotonic() - started:.0f} s)")
                if args.serve:
                    print(f"serving {base_url} (dashboard: {found.dashboard_url}); "
                          "Ctrl-C stops the app and the database")
                    while True:
                        time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
