"""bench/python/bench_asgi.py: what PerformanceMiddleware costs an ASGI app under load.

One uvicorn process per variant of asgi_app.py, each pinned to CPU 0 with wrk pinned to
CPU 1, all on 127.0.0.1: the bare Starlette app; nanoprof's PerformanceMiddleware in
production mode (headers only on ?profile=1 with the token) and in development mode
(X-Profile, Server-Timing, X-Query-Count and X-Slow-Queries on every response); the
pure-Python middleware of pure_python.py; and "headers", no profiler but the same four
headers as fixed strings, which shows what the server itself spends on them.  Rounds alternate the variants;
each round's requests/s of a profiled variant is divided by the bare app's of the same round.
Prints the median of the rounds with the jitter, and the same-run ratios.

    python bench/python/bench_asgi.py [--rounds 7] [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("bare", "nanoprof-prod", "nanoprof", "pure", "headers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(variant: str, port: int, cpu: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NANOPROF_BENCH_VARIANT=variant, PYTHONPATH=str(HERE))
    cmd = [sys.executable, "-m", "uvicorn", "asgi_app:app", "--host", "127.0.0.1", "--port",
           str(port), "--log-level", "warning", "--no-access-log"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    proc = subprocess.Popen(cmd, env=env, cwd=HERE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/items/1", timeout=1) as r:
                r.read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"uvicorn ({variant}) exited with {proc.returncode}")
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"uvicorn ({variant}) did not answer within 30 s")


def wrk(port: int, seconds: int, connections: int, cpu: str) -> tuple[float, float, float]:
    """requests/s, p50 and p99 latency in ms."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
           f"http://127.0.0.1:{port}/items/7"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return rps, pct("50"), pct("99")


def jitter(xs: list[float]) -> float:
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m * 100 if m else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    ports = {v: free_port() for v in VARIANTS}
    procs = {v: start(v, ports[v], "0") for v in VARIANTS}
    res: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS if v != "bare"}
    try:
        for v in VARIANTS:  # warm-up
            wrk(ports[v], 2, args.connections, "1")
        for r in range(args.rounds):
            order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
            this = {v: wrk(ports[v], args.seconds, args.connections, "1") for v in order}
            for v in VARIANTS:
                res[v].append(this[v])
            for v in ratios:
                ratios[v].append(this[v][0] / this["bare"][0])
            print(f"round {r + 1}: " + ", ".join(f"{v} {this[v][0]:.0f}/s" for v in VARIANTS),
                  flush=True)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(10)
    print(f"\n{'variant':14} {'req/s (median)':>15} {'jitter':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'vs bare, same round':>22}")
    for v in VARIANTS:
        rps = [x[0] for x in res[v]]
        line = (f"{v:14} {statistics.median(rps):15.0f} {jitter(rps):7.1f}% "
                f"{statistics.median(x[1] for x in res[v]):8.2f} "
                f"{statistics.median(x[2] for x in res[v]):8.2f}")
        if v in ratios:
            rs = ratios[v]
            line += f"   {statistics.median(rs):.3f} ({min(rs):.3f}-{max(rs):.3f})"
        print(line)
    cost = {v: 100 * (1 - statistics.median(r)) for v, r in ratios.items()}
    print(f"\nfewer requests/s than the bare app (medians of {args.rounds} same-round ratios): "
          f"nanoprof in production {cost['nanoprof-prod']:.1f}%, in development "
          f"{cost['nanoprof']:.1f}%, of which the four headers alone {cost['headers']:.1f}%; "
          f"pure Python {cost['pure']:.1f}%")


if __name__ == "__main__":
    main()
