"""bench/python/bench_demo.py: what nanoprof costs the demo app (examples/demo/app.py: FastAPI,
SQLAlchemy 2 async over asyncpg, PostgreSQL) under load, for the README's table beside the
OpenTelemetry figures of the reference documents.

Starts its own PostgreSQL (tests/pg_cluster.sh, pinned to CPU 1), seeds the demo's schema
(examples/demo/seed.py) and runs wrk (pinned to CPU 1) against GET /articles/fixed (a page of
20 articles with their authors: two queries) of one uvicorn process per variant, pinned to
CPU 0, all on 127.0.0.1:

  off       the app without nanoprof (NANOPROF_DEMO_MODE=off): the anchor
  events    the same with listeners that do nothing on the SQLAlchemy engine events around
            the cursor call (demo_events.py): what SQLAlchemy's engine-level event dispatch
            costs by itself, which is why nanoprof's hook listens to the dialect's events
  on        nanoprof mounted as in production: PerformanceMiddleware(production=True) with a
            token, QueryTimer on the engine, a SlowQueryLog; every request profiled and
            aggregated, headers only for requests that ask with the token
  profile1  the same server, every request asking: ?profile=1&profile_token=... (the five
            headers on every response)
  dev       development mode (the demo's): headers on every response, dashboard open

Each round starts fresh servers, warms each up for 1 s, then runs wrk for --seconds on each
variant, the order reversed every other round.  Prints per variant the median requests/s with
its jitter, median p50 and p99 latency, the server's CPU time per request, and the medians of
the same-round ratios to `off` (machines here are shared: only ratios taken within one round
compare).

--estimate runs no server and no wrk: each variant's requests in process under callgrind
(requests 100 to 400 of one process, the string-hash seed fixed), printing the instructions
and estimated cycles (dbbench.cycles) each adds to an `off` request.  Deterministic where
requests per second are not, and about ten minutes.  --functions VARIANT breaks what VARIANT
adds down by function.

    python bench/python/bench_demo.py [--rounds 5] [--seconds 5] [--connections 16]
                                      [--variants off,events,on,profile1,dev] [--estimate]
                                      [--functions VARIANT [--top N]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parents[1] / "examples" / "demo"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(DEMO))

import dbbench  # noqa: E402
import demo  # noqa: E402
import seed  # noqa: E402

TOKEN = "bench-token"
PATH = "/articles/fixed"
ASKING = f"{PATH}?profile=1&profile_token={TOKEN}"
# variant -> (NANOPROF_DEMO_MODE, the path wrk requests)
VARIANTS = {"off": ("off", PATH), "events": ("off", PATH), "on": ("prod", PATH),
            "profile1": ("prod", ASKING), "dev": ("dev", PATH)}
LABELS = {
    "off": "off (the app without nanoprof)",
    "events": "off, no-op listeners on the engine events",
    "on": "on, production mode (headers only when asked)",
    "profile1": "on, every request with ?profile=1 (5 headers)",
    "dev": "on, development mode (5 headers on every response)",
}


def start(variant: str, port: int, conninfo: str) -> subprocess.Popen[bytes]:
    mode, _ = VARIANTS[variant]
    env = demo.app_env(conninfo, mode, NANOPROF_DEMO_TOKEN=TOKEN)
    cmd = demo.app_command(port)
    if variant == "events":  # demo_events:app, here, importing the demo's app.py
        at = cmd.index("app:app")
        cmd[at:at + 3] = ["demo_events:app", "--app-dir", str(HERE)]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DEMO), env.get("PYTHONPATH")]))
    return dbbench.start_server(variant, dbbench.pinned(cmd, "0"), env, port, PATH,
                                cwd=demo.ROOT)


def check(variant: str, port: int) -> None:
    """Each variant does what its name says (a benchmark of the wrong thing is worthless):
    `off` and `events` have no nanoprof, the others record both queries, and only
    `profile1` and `dev` send the headers on the requests wrk makes."""
    _, path = VARIANTS[variant]
    status, headers, _ = dbbench.fetch(port, path)
    shows = "x-profile" in headers
    if status != 200 or shows != (variant in ("profile1", "dev")):
        raise SystemExit(f"{variant}: status {status}, X-Profile {'sent' if shows else 'absent'}")
    status, headers, _ = dbbench.fetch(port, ASKING)
    count = headers.get("x-query-count")
    if count != (None if VARIANTS[variant][0] == "off" else "2"):
        raise SystemExit(f"{variant}: X-Query-Count {count!r} on {ASKING}")


# ---- in process, under callgrind (--estimate) ----------------------------------------------

def child(variant: str, n: int) -> None:
    """`n` requests of `variant` through the app in this process (what callgrind counts); the
    environment (the database, the mode) is the server's, from dumps()."""
    os.chdir(demo.ROOT)  # as the server runs: call sites relative to the repository
    module = __import__("demo_events" if variant == "events" else "app")
    path, _, query = VARIANTS[variant][1].partition("?")
    scope = dict(dbbench.ASGI_SCOPE, path=path, raw_path=path.encode(),
                 query_string=query.encode())
    statuses: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def main() -> None:
        for _ in range(n):
            await module.app(dict(scope), receive, send)
        await module.engine.dispose()

    asyncio.run(main())
    if statuses != [200] * n:
        raise SystemExit(f"{variant}: statuses {sorted(set(statuses))}, expected 200")


N1, N2 = 100, 400  # in-process requests: the counts of N2 less those of N1, per request


def dumps(variant: str, conninfo: str) -> tuple[dbbench.Dump, dbbench.Dump]:
    """Callgrind's counts of N1 and of N2 requests of `variant`, in process."""
    # (The child puts this directory and the demo's on its own path, as this script does.)
    env = demo.app_env(conninfo, VARIANTS[variant][0], NANOPROF_DEMO_TOKEN=TOKEN)
    da, db = (dbbench.callgrind_code([sys.executable, str(Path(__file__).resolve()), "--child",
                                      variant, str(n)], env=env) for n in (N1, N2))
    return da, db


def estimate(variants: tuple[str, ...]) -> None:
    """Per request of each variant, in process: instructions and callgrind's estimated
    cycles, and what each adds to `off`'s."""
    per: dict[str, dict[str, float]] = {}
    with dbbench.pg_cluster("1") as conninfo:
        seed.seed(conninfo)
        for v in variants:
            da, db = dumps(v, conninfo)
            per[v] = {k: (db.totals[k] - da.totals[k]) / (N2 - N1) for k in da.totals}
    off = per["off"]
    print(f"GET {PATH} in process under callgrind, per request (requests {N1} to {N2}); "
          f"estimated cycles: instructions / {dbbench.INSTRUCTIONS_PER_CYCLE:g} + "
          f"{dbbench.L1_MISS_CYCLES} per L1 miss + {dbbench.LL_MISS_CYCLES} per L2 miss")
    for v in variants:
        ev, c = per[v], dbbench.cycles(per[v])
        line = f"{LABELS[v]:52} {ev['Ir'] / 1e6:6.2f}M instructions {c / 1e6:6.2f}M cycles"
        if v != "off":
            line += (f"   {ev['Ir'] - off['Ir']:+8.0f} ({100 * (ev['Ir'] / off['Ir'] - 1):+.1f}%), "
                     f"{c - dbbench.cycles(off):+8.0f} ({100 * (c / dbbench.cycles(off) - 1):+.1f}%)")
        print(line)


def functions(variant: str, top: int) -> None:
    """Where `variant`'s added cost lies against `off`, per function (dbbench's
    function_changes): nanoprof's own, the interpreter's and the libraries' it pushes out of
    the caches or calls."""
    with dbbench.pg_cluster("1") as conninfo:
        seed.seed(conninfo)
        base, mine = dumps("off", conninfo), dumps(variant, conninfo)
    print(f"GET {PATH}, {variant} against off, per request in process: the {top} functions "
          f"that change the estimated cycles most (cycles, L1i misses, instructions, lines "
          f"of code; * nanoprof's):")
    dbbench.print_function_changes(dbbench.function_changes(base, mine, N2 - N1), top,
                                   dbbench.own_object)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--estimate", action="store_true",
                    help="in process under callgrind instead of wrk under a server")
    ap.add_argument("--functions", metavar="VARIANT",
                    help="in process under callgrind: where VARIANT's cost lies, per function")
    ap.add_argument("--top", type=int, default=40, help="functions --functions lists")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    variants = tuple(v for v in args.variants.split(",") if v)
    if set(variants) - set(VARIANTS) or "off" not in variants:
        raise SystemExit(f"--variants: from {', '.join(VARIANTS)}, with off (the anchor)")
    if args.functions:
        if args.functions not in VARIANTS:
            raise SystemExit(f"--functions: one of {', '.join(VARIANTS)}")
        functions(args.functions, args.top)
        return
    if args.estimate:
        estimate(variants)
        return
    dbbench.need_wrk()

    # (req/s, p50 ms, p99 ms, server CPU us per request) per round
    res: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in variants}
    ratios: dict[str, list[float]] = {v: [] for v in variants if v != "off"}
    cpu_ratios: dict[str, list[float]] = {v: [] for v in ratios}
    with dbbench.pg_cluster("1") as conninfo:
        seed.seed(conninfo)
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else tuple(reversed(variants))
            ports = {v: dbbench.free_port() for v in variants}
            procs, this = [], {}
            try:
                for v in order:
                    procs.append(start(v, ports[v], conninfo))
                    if r == 0:
                        check(v, ports[v])
                    dbbench.wrk(ports[v], VARIANTS[v][1], 1, args.connections, "1")  # warm-up
                for v, proc in zip(order, procs):
                    this[v] = dbbench.serve(ports[v], VARIANTS[v][1], args.seconds,
                                            args.connections, "1", proc.pid)
            finally:
                dbbench.stop_servers(procs)
            for v in variants:
                res[v].append(this[v])
            for v in ratios:
                ratios[v].append(this[v][0] / this["off"][0])
                cpu_ratios[v].append(this[v][3] / this["off"][3])
            print(f"round {r + 1}: " + ", ".join(f"{v} {this[v][0]:.0f}" for v in variants)
                  + " req/s", flush=True)

    print(f"\nGET {PATH}: {args.rounds} rounds of {args.seconds} s per variant, wrk -t1 "
          f"-c{args.connections}; {dbbench.machine_line()}")
    print(f"{'variant':52} {'req/s':>7} {'jitter':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU us/req':>10} {'req/s vs off':>22} {'CPU/req vs off':>22}")
    for v in variants:
        rps, spread, p50, p99 = dbbench.wrk_medians(res[v])
        cpu = dbbench.med([x[3] for x in res[v]])
        line = f"{LABELS[v]:52} {rps:7.0f} {spread:6.1f}% {p50:7.2f} {p99:7.2f} {cpu:10.0f}"
        if v in ratios:
            line += (f" {dbbench.ratio_text(ratios[v]):>22}"
                     f" {dbbench.ratio_text(cpu_ratios[v]):>22}")
        print(line)
    print("\nfewer requests/s than off (medians of same-round ratios): " + "; ".join(
        f"{v} {100 * (1 - dbbench.med(ratios[v])):.1f}%" for v in ratios))


if __name__ == "__main__":
    main()
