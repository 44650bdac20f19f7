"""bench/python/bench_asgi_db.py: what nanoprof (middleware + database hooks) costs an ASGI
app whose requests run SQL, under load.

Starts its own PostgreSQL (tests/pg_cluster.sh, pinned to CPU 1), seeds a 1,000-row table,
and runs one uvicorn process per variant of asgi_db_app.py pinned to CPU 0, with wrk pinned
to CPU 1, all on 127.0.0.1.  Two endpoints, five queries per request each:

  /db   five primary-key SELECTs through an asyncpg pool (real I/O)
  /rec  the same five asyncpg fetchrow calls on a connection that does no I/O, so that the
        hooks' recording is measured without a database round trip to hide it (see
        asgi_db_app.py for why this and not five record_sql calls: it is the path the
        hooks take on /db, minus the network)

Variants (asgi_db_app.py): bare; bare-again (the control); noop-mw (a pure-Python middleware
that only awaits the app: the floor of any Python middleware); spin-mw (the same, burning a
known 10 us of CPU per request first: what a cost of that size turns into); floor and
floor-mw (the least a profiler with this API can do, in C, with and without its query
wrappers: floor.c); floor-core (the floor feeding nanoprof's C core through its public
API: the least nanoprof's figures cost through that mechanism; no call sites, phases or
sampling; floor-core-mw, its middleware alone; floor-core-hooks, floor-core with nanoprof's
Starlette phase hooks passing every call on: what intercepting the phases costs); mw-prod
(PerformanceMiddleware in production mode, no hooks); nanoprof-prod (the same plus
nanoprof.db.QueryTimer on asyncpg); nanoprof-dev (development mode, headers on every
response, plus the hooks).  Each round runs every variant on /db and then on /rec, in
fresh server processes, the variants alternating in order round by round; the ratio of a
variant to the bare app is taken within the round, for requests per second and for the
server's CPU time per request (from /proc: steadier than requests per second when wrk and
PostgreSQL share the other core).  Prints the medians with their jitter and the same-run
ratios, then callgrind's instructions per request, the lines of code those requests run,
the line visits of nanoprof's code (a line once per query that runs it) and the misses of
callgrind's simulated caches with the cycles they come to (checked against the server's
CPU time per request at the end), in-process (no server: the app called directly, as
instructions_asgi.py does), and the time of an in-process /rec request back to back, with
other work between requests, and with other work between its queries: what the same code
costs hot in the caches, among other code, and with the per-query code pushed out of the
caches before every query (as the driver's I/O does on /db).

    python bench/python/bench_asgi_db.py [--rounds 7] [--seconds 5] [--slices 1]
                                         [--connections 16]
                                         [--variants bare,mw-prod,nanoprof-prod]
                                         [--slow-log] [--no-callgrind |
                                          --estimate [--cold] [--concurrency 1]]
    python bench/python/bench_asgi_db.py --functions nanoprof-prod [--top 30] [--cold]
                                         [--concurrency 1]
    python bench/python/bench_asgi_db.py --compare OTHER_VENV/bin/python [--rounds 11]
    python bench/python/bench_asgi_db.py --native /db --variants bare,floor-core,nanoprof-prod
                                         [--rounds 5] [--seconds 10] [--top 25]
                                         [--compare OTHER_VENV/bin/python]

--estimate runs only the callgrind part (about 6 minutes for four variants): instructions
and simulated misses are deterministic on /rec; on /db the data misses move by a few
hundred between runs with the event loop's timing, the instruction misses by a few dozen.
--slices N measures each variant in N wrk runs of --seconds per round, alternating between
the variants from run to run: `--seconds 1 --slices 5` gives each the same five seconds as
the default, spread over the round, so that a drift of the machine within the round (which
on a shared VM moved a single variant by several percent) falls on all of them alike.
--compare adds the variant `compare`: nanoprof-prod served by another interpreter (a second
venv with another build of nanoprof installed), in the same rounds as the rest.  Two builds
side by side this way are the measure of a change to the request path: a change of a few
thousand cycles is below what callgrind's estimate on /db resolves (the same build gives
estimates some 10k cycles apart from run to run), and below what two separate runs of wrk
can tell apart.  It runs in the wrk rounds only.
--concurrency C runs --estimate's and --functions' requests C at a time, as wrk's
connections do: on /db they interleave at each query's I/O, so that each pushes the others'
code and data out of the caches.  With 16 at once two runs put nanoprof-prod's estimate 17k
and 16k cycles a /db request above floor-core's; one at a time gave 6.6k and (a session
earlier) 14.6k; wrk puts them about 3 points (some 11 us, 29k cycles at 2.6 GHz) apart.
/db's estimates move by 5 to 10k from run to run either way, so compare builds over several
runs each, not one pair.
--functions breaks one variant's estimated cost down by function (its own, and the
interpreter's and driver's that its code pushes out of the caches), with the lines of code
each runs per request: the measure to find what a leaner path must drop.
--native samples each variant's server under wrk with perf (native.py) and prints its CPU
per request by shared object, and the functions in which each variant differs most from the
one listed before it, round by round.  Natively a cold line costs far more than callgrind's
price for it (nprof_profile_wants_params, two loads, took 0.5 us of a /db request), so this
ranks nanoprof's own functions as they cost under load.  A function's figure is steady
within a few tenths of a us over 5 rounds; the total per request moves by 30 to 50 us
between rounds, so it does not replace --compare's same-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import email.utils
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dbbench  # noqa: E402
import native  # noqa: E402

ALL_VARIANTS = ("bare", "bare-again", "noop-mw", "spin-mw", "floor", "floor-mw", "floor-core",
                "floor-core-mw", "floor-core-hooks", "mw-prod",
                "nanoprof-prod",
                "nanoprof-dev")
# --compare's variant: nanoprof-prod, served by the other interpreter.
COMPARE = "compare"
HOOKED = {"nanoprof-prod", "nanoprof-dev", COMPARE}
# Variants that give nanoprof's X-Query-Count (?profile=1 with the token) for their queries.
RECORDING = HOOKED | {"floor-core", "floor-core-hooks"}
FLOORS = ("floor", "floor-mw", "floor-core", "floor-core-mw", "floor-core-hooks")
# The queries each endpoint runs (asgi_db_app.QUERIES_PER_REQUEST, not imported here: the
# app module builds its app when imported).
QUERIES = 5
ENDPOINTS = ("/db", "/rec")
TARGET = {"/db": 3.0, "/rec": 10.0}  # at most this many % fewer requests/s than bare


def verdict(cost: float, target: float, control: float | None) -> str:
    """Whether `cost` (% fewer requests/s than bare) meets `target`, as far as the run can
    tell: when the control (the bare app again, `control` % off the bare app in the same
    rounds) is off by at least the distance to the target, the run cannot tell either way."""
    if control is not None and abs(cost - target) <= abs(control):
        return (f"target <= {target:.0f}%: within the run's noise, the bare app again "
                f"measured {control:.1f}%")
    return f"target <= {target:.0f}%: {'met' if cost <= target else 'NOT met'}"


def seed(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS bench_items")
        con.execute("CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, "
                    "price numeric(10, 2) NOT NULL)")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO bench_items VALUES (%s, %s, %s)",
                            [(i, f"item {i}", i % 97 + 0.5) for i in range(1, 1001)])
        con.execute("VACUUM ANALYZE bench_items")


def start(variant: str, port: int, conninfo: str, slow_log: bool,
          compare_with: str | None = None) -> subprocess.Popen[bytes]:
    python = sys.executable
    if variant == COMPARE:
        assert compare_with is not None
        python, variant = compare_with, "nanoprof-prod"
    env = dbbench.env_with(NANOPROF_BENCH_VARIANT=variant, NANOPROF_BENCH_PG=conninfo)
    if slow_log and variant in HOOKED:
        env["NANOPROF_BENCH_SLOWLOG"] = conninfo
    cmd = dbbench.pinned([python, "-m", "uvicorn", "asgi_db_app:app", "--host",
                          "127.0.0.1", "--port", str(port), "--log-level", "warning",
                          # floor's middleware is a C callable, which uvicorn's guess
                          # (`async def __call__`) would take for ASGI 2
                          "--interface", "asgi3", "--no-access-log"], "0")
    return dbbench.start_server(variant, cmd, env, port, "/rec")


def check(variant: str, port: int) -> None:
    """Both endpoints answer five rows; the hooked variants record the queries (a benchmark
    of hooks that record nothing would be worthless).  On /db they record six: asyncpg's
    Pool.release() runs the connection's reset query (pg_advisory_unlock_all, CLOSE ALL,
    UNLISTEN, RESET ALL) through Connection.execute, inside the request, and the hook times
    it like any other query."""
    for ep in ENDPOINTS:
        status, headers, body = dbbench.fetch(port, f"{ep}?profile=1&profile_token=bench-token")
        rows = json.loads(body)
        if status != 200 or len(rows) != QUERIES:
            raise SystemExit(f"{variant} {ep}: status {status}, {len(rows)} rows")
        count = headers.get("x-query-count")
        if variant in ("bare", "bare-again", "noop-mw", "spin-mw", "floor", "floor-mw"):
            want: tuple[str | None, ...] = (None,)
        elif variant not in RECORDING:
            want = ("0",)
        else:
            want = ("5", "6") if ep == "/db" else ("5",)
        if count not in want:
            raise SystemExit(f"{variant} {ep}: X-Query-Count {count!r}, expected {want} "
                             f"(headers: {headers})")
        if variant in RECORDING:
            print(f"{variant} {ep}: {count} queries recorded per request", file=sys.stderr)


# ---- in-process instruction counts (callgrind) -------------------------------------------------

_OTHER = {"a": [1, 2.5, "x" * 20, None, True], "b": [{"d": i, "e": str(i)} for i in range(20)]}
_PAIRS = re.compile(r"(\w+)=(\d+)")


def other_work() -> None:
    """Work of the kind a server does between two requests of one connection (a JSON codec,
    the regex engine, string formatting, decimals, dates, URL parsing), none of it nanoprof's
    or the app's: it takes the caches back from the request's code, as uvicorn's HTTP layer
    and event loop do under load."""
    json.loads(json.dumps(_OTHER))
    _PAIRS.sub(lambda m: m.group(1).upper(), "a=1 b=22 c=333 d=4444")
    "{:>10} {:08.3f} {!r}".format("x", 3.14159, (1, 2))
    decimal.Decimal("1.25") * decimal.Decimal("3.5")
    email.utils.formatdate(usegmt=True)
    urllib.parse.parse_qsl("a=1&b=2&c=%20x")
    sorted({i: str(i) for i in range(30)}.items(), key=lambda kv: kv[1])


def settle_malloc() -> None:
    """Puts glibc's malloc where a server's is after its first minutes.  asyncio reads a
    socket into a 256 KiB buffer (bytes, shrunk to what came), which glibc maps and unmaps
    for every read until the free of some larger mapped block raises its threshold for
    mapping.  A server gets there early and for good (strace: no mmap per request, in any
    variant), but a short run in process may not: in one, nanoprof-prod's /db paid six
    mmap and munmap pairs a request and the others none, a difference of the harness and
    not of the variants.  Freeing one 1 MiB block first raises the threshold for all."""
    block = bytes(1 << 20)
    del block


def child(variant: str, n: int, path: str = "/rec", timed: int = 0, between: int = 0,
          concurrency: int = 1) -> None:
    """n requests to `path` through the app, in-process: what callgrind counts.  /db needs
    NANOPROF_BENCH_PG in the environment (the pool is opened as the lifespan would).  With
    `timed`, that many more requests follow, and the time of each request's own call is
    printed, in nanoseconds per request; with `between` 1, other_work() and one turn of the
    event loop run between requests, outside the time taken (between the n requests
    themselves when none is timed: callgrind's --cold counts); with 2, other_work() runs
    before each of /rec's queries, inside the time taken (the same for every variant: the
    difference is what the variant's own code costs when it runs cold at every query).
    With `concurrency` C (not with `timed`), the n requests are made by C tasks at once, as
    wrk's C connections make them: on /db their steps then interleave at every query's
    I/O, and each request's code and data are pushed out of the caches by the others'."""
    os.environ["NANOPROF_BENCH_VARIANT"] = variant
    settle_malloc()
    if path == "/rec":
        os.environ.pop("NANOPROF_BENCH_PG", None)
    import asgi_db_app

    app = asgi_db_app.app
    scope = dict(dbbench.ASGI_SCOPE, path=path, raw_path=path.encode())
    if between == 2:
        asgi_db_app.between_queries = other_work

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    async def main() -> None:
        async def between_requests() -> None:
            other_work()
            await asyncio.sleep(0)

        left = n

        async def requests() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                if between == 1 and not timed:
                    await between_requests()
                await app(dict(scope), receive, send)

        async with asgi_db_app.lifespan(app):
            await asyncio.gather(*(requests() for _ in range(concurrency)))
            taken = 0
            for _ in range(timed):
                if between == 1:
                    await between_requests()
                t0 = time.perf_counter_ns()
                await app(dict(scope), receive, send)
                taken += time.perf_counter_ns() - t0
            if variant in FLOORS:  # a floor that timed nothing is worthless
                got = asgi_db_app.floor_module.stats()
                # on /db also the pool's reset query at release, when `execute` is wrapped
                timed_methods = asgi_db_app.floor_timed
                per = (QUERIES + (path == "/db" and "execute" in timed_methods)
                       if timed_methods else 0)
                want = {"requests": n + timed, "queries": per * (n + timed)}
                if {k: got[k] for k in want} != want:
                    raise SystemExit(f"floor timed {got}, expected {want}")
            if timed:
                print(taken / timed)

    asyncio.run(main())


def in_process(variants: Sequence[str], rounds: int, between: int) -> dict[str, list[float]]:
    """ns per /rec request with no server: the app called in a loop, each variant in a fresh
    process pinned to CPU 0, alternating round by round; back to back (between=0), the
    request's code stays hot in the caches; with other_work() between requests (1) it runs
    as under a server, among other code (see also the lines of code below); with it before
    every query (2), the per-query code also starts cold each time."""
    out: dict[str, list[float]] = {v: [] for v in variants}
    env = dbbench.env_with()
    env.pop("NANOPROF_BENCH_PG", None)
    for r in range(rounds):
        for v in variants if r % 2 == 0 else tuple(reversed(variants)):
            cmd = dbbench.pinned([sys.executable, str(Path(__file__).resolve()), "--child", v,
                                  "3000", "/rec", "6000", str(between)], "0")
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=dbbench.HERE)
            if done.returncode != 0:
                raise SystemExit(f"in-process run of {v} failed:\n{done.stderr[-2000:]}")
            out[v].append(float(done.stdout.split()[-1]))
    return out


def instructions(variant: str, path: str = "/rec", conninfo: str | None = None,
                 n1: int = 200, n2: int = 1200, cold: bool = False, concurrency: int = 1
                 ) -> tuple[float, dict[str, float], dict[str, float], dict[str, float]]:
    """Instructions per request of `variant` on `path`, in-process (the server's own work,
    without uvicorn's): deterministic where requests per second are not.  With them, the
    64-byte lines of code those requests run, per object file (dbbench.code_lines), their
    line visits, a line counted once per query that runs it (at most QUERIES), and the
    simulated caches' events per request (dbbench.cycles turns them into an estimate)."""
    da, db = dumps(variant, path, conninfo, n1, n2, cold, concurrency)
    a, b = da.instructions, db.instructions
    events = {k: (db.totals[k] - da.totals[k]) / (n2 - n1) for k in da.totals}
    return ((sum(b.values()) - sum(a.values())) / (n2 - n1), dbbench.code_lines(a, b, n2 - n1),
            dbbench.code_lines(a, b, n2 - n1, QUERIES), events)


def dumps(variant: str, path: str, conninfo: str | None, n1: int, n2: int, cold: bool = False,
          concurrency: int = 1) -> tuple[dbbench.Dump, dbbench.Dump]:
    """Callgrind's counts of `n1` and of `n2` requests of `variant` to `path`, in process;
    `cold`: with other_work() between requests, as under a server (the same work for every
    variant, so the differences to the bare app are the variant's, its misses included)."""
    env = dbbench.env_with(**({"NANOPROF_BENCH_PG": conninfo} if conninfo else {}))
    da, db = (dbbench.callgrind_code(
        [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(n), path,
         "0", "1" if cold else "0", str(concurrency)], env=env) for n in (n1, n2))
    return da, db


def print_functions(variant: str, conninfo: str, top: int, n1: int = 200, n2: int = 1200,
                    cold: bool = False, concurrency: int = 1) -> None:
    """Where `variant`'s added cost lies, per function: for each endpoint, the functions
    whose own events most change the estimated cycles against the bare app (nanoprof's,
    the interpreter's it pushes out of the caches, the driver's), with their added L1
    instruction misses, instructions and lines of code per request.  The headline is
    --estimate's (the runs' totals), so that the two agree."""
    n = n2 - n1
    for ep in ENDPOINTS:
        ci = conninfo if ep == "/db" else None
        (ba, bb), (ma, mb) = (dumps(v, ep, ci, n1, n2, cold, concurrency)
                              for v in ("bare", variant))
        rows = dbbench.function_changes((ba, bb), (ma, mb), n)
        added = {k: (mb.totals[k] - ma.totals[k] - bb.totals[k] + ba.totals[k]) / n
                 for k in ma.totals}
        ours = own_lines(dbbench.code_lines(ma.instructions, mb.instructions, n))
        print(f"{variant} on {ep}, per request against the bare app: "
              f"{dbbench.cycles(added) / 1000:+.1f}k estimated cycles, {ours:.0f} lines of "
              f"nanoprof's own code; the {top} functions that change it most (cycles, L1i "
              f"misses, instructions, lines of code; * nanoprof's):")
        dbbench.print_function_changes(rows, top, dbbench.own_object)


def misses_text(ev: dict[str, float], base: dict[str, float]) -> str:
    """"+1440 L1i, +761 L1d, +29 L2 misses, +64.7k cycles": what a variant adds to the bare
    app's simulated cache events per request."""
    def d(*keys: str) -> float:
        return sum(ev.get(k, 0) - base.get(k, 0) for k in keys)
    return (f"{d('I1mr'):+.0f} L1i, {d('D1mr', 'D1mw'):+.0f} L1d, "
            f"{d('ILmr', 'DLmr', 'DLmw'):+.0f} L2 misses, "
            f"{(dbbench.cycles(ev) - dbbench.cycles(base)) / 1000:+.1f}k cycles")


def print_callgrind(ins: dict[tuple[str, str], tuple[float, dict[str, float], dict[str, float],
                                                 dict[str, float]]],
                    variants: Sequence[str]) -> None:
    """What instructions() measured, per endpoint, against the bare app."""
    for ep in ENDPOINTS if ins else ():
        base = ins["bare", ep][0]
        print(f"callgrind, instructions per {ep} request in-process: "
              + ", ".join(f"{v} {ins[v, ep][0]:.0f}" + (f" (+{ins[v, ep][0] - base:.0f}, "
                                                         f"{100 * (ins[v, ep][0] / base - 1):+.1f}%)"
                                                         if v != "bare" else "")
                          for v in variants if (v, ep) in ins))
        print(f"callgrind, 64-byte lines of code a {ep} request runs: "
              + ", ".join(f"{v} {lines_text(ins[v, ep][1], ins['bare', ep][1])}"
                          for v in variants if (v, ep) in ins))
        print(f"callgrind's cache simulation, per {ep} request in-process, added to the bare "
              f"app's (cycles: instructions / {dbbench.INSTRUCTIONS_PER_CYCLE:g} + "
              f"{dbbench.L1_MISS_CYCLES} per L1 miss + {dbbench.LL_MISS_CYCLES} per L2 miss): "
              + ", ".join(f"{v} {misses_text(ins[v, ep][3], ins['bare', ep][3])}"
                          for v in variants if (v, ep) in ins and v != "bare"))
        print(f"callgrind, line visits of nanoprof's own code per {ep} request (a line once per "
              f"query that runs it, at most {QUERIES}; cold at each query when I/O runs between): "
              + ", ".join(f"{v} {own_lines(ins[v, ep][2]):.0f}"
                          for v in variants if (v, ep) in ins and (v in RECORDING or v == "mw-prod")))


def own_lines(lines: dict[str, float]) -> float:
    """The part of `lines` in nanoprof's own objects."""
    return sum(n for o, n in lines.items() if dbbench.own_object(o))


def lines_text(lines: dict[str, float], base: dict[str, float]) -> str:
    """"2140 (+624: _core 224, libnanoprof 271, ...)": the lines of code a variant's requests
    run, and what they add to the bare app's, nanoprof's own first."""
    total = sum(lines.values())
    if lines is base:
        return f"{total:.0f}"
    ours = {"_core": sum(n for o, n in lines.items() if o.startswith("_core.")),
            "libnanoprof": lines.get("libnanoprof.so.0", 0)}
    other = total - sum(base.values()) - sum(ours.values())
    return (f"{total:.0f} (+{total - sum(base.values()):.0f}: "
            + ", ".join(f"{k} {n:.0f}" for k, n in ours.items())
            + f", the interpreter and libraries {other:+.0f})")


def run_native(variants: Sequence[str], ep: str, rounds: int, seconds: int, connections: int,
               slow_log: bool, compare_with: str | None, top: int) -> None:
    """--native: perf's samples of each variant's server under wrk, rounds of fresh servers
    in alternating order, one variant at a time (the sampling is per process, the machine
    is not shared with another server meanwhile)."""
    dbbench.need_wrk()
    native.need_perf()
    profiles: dict[str, list[native.Profile]] = {v: [] for v in variants}
    rates: dict[str, list[float]] = {v: [] for v in variants}
    with dbbench.pg_cluster("1") as conninfo, tempfile.TemporaryDirectory() as tmp:
        seed(conninfo)
        for r in range(rounds):
            for v in variants if r % 2 == 0 else tuple(reversed(variants)):
                port = dbbench.free_port()
                proc = start(v, port, conninfo, slow_log, compare_with)
                try:
                    if r == 0:
                        check(v, port)
                    dbbench.wrk(port, ep, 2, connections, "1")  # warm-up
                    data = Path(tmp) / f"{v}-{r}.data"
                    n = native.sample(proc.pid, port, ep, seconds, connections, data)
                finally:
                    dbbench.stop_servers([proc])
                profiles[v].append(native.per_request(data, n))
                rates[v].append(n / seconds)
            print(f"round {r + 1}: " + ", ".join(f"{v} {rates[v][-1]:.0f}" for v in variants)
                  + f" req/s on {ep} (sampled)", flush=True)
    print(f"\n{ep}, wrk -c{connections}, {rounds} rounds of {seconds} s; "
          f"{dbbench.machine_line()}; requests/s while sampled (median, jitter): "
          + ", ".join(f"{v} {dbbench.med(rates[v]):.0f} ({dbbench.jitter(rates[v]):.1f}%)"
                      for v in variants))
    native.print_native(profiles, top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--slices", type=int, default=1,
                    help="measure each variant in this many wrk runs of --seconds per round, "
                         "the variants alternating between runs (ABC CBA ABC ...): a drift of "
                         "the machine within a round then falls on every variant alike")
    ap.add_argument("--variants", default=",".join(ALL_VARIANTS))
    ap.add_argument("--slow-log", action="store_true",
                    help="give the hooked variants a SlowLog (threshold 200 ms) on the same "
                         "PostgreSQL")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--estimate", action="store_true",
                    help="only callgrind's counts and the cycles its simulated caches come to "
                         "(no wrk, deterministic, a few minutes): for work between full runs")
    ap.add_argument("--functions", metavar="VARIANT", choices=ALL_VARIANTS,
                    help="only callgrind, per function: where VARIANT's added cost lies "
                         "against the bare app on each endpoint (about 3 minutes)")
    ap.add_argument("--top", type=int, default=30, help="functions --functions lists")
    ap.add_argument("--cold", action="store_true",
                    help="--estimate and --functions with other work between requests (a JSON "
                         "codec, regular expressions, formatting: other_work()), which takes the "
                         "caches back from the request's code as a server's own work does; "
                         "back to back, code that runs once a request stays warmer than it would")
    ap.add_argument("--concurrency", type=int, default=1, metavar="C",
                    help="--estimate and --functions with C requests at once (wrk's "
                         "-c16 is 16): on /db they interleave at every query's I/O, and each "
                         "pushes the others' code and data out of the caches, which one "
                         "request at a time never does; /rec has no I/O and runs them one "
                         "after another all the same")
    ap.add_argument("--compare", metavar="PYTHON",
                    help="also run nanoprof-prod served by PYTHON (another venv's interpreter, "
                         "with another build of nanoprof) as the variant `compare`, in the same "
                         "wrk rounds: two builds side by side")
    ap.add_argument("--native", metavar="ENDPOINT", choices=ENDPOINTS,
                    help="only perf: each of --variants under wrk on ENDPOINT, sampled "
                         "natively (perf record, cpu-clock), --rounds fresh servers of "
                         "--seconds each; prints server CPU per request by shared object, and "
                         "the --top functions in which each variant differs most from the one "
                         "listed before it: what callgrind misprices (--compare adds the "
                         "other build last)")
    ap.add_argument("--child", nargs="+",
                    metavar="VARIANT N [PATH [TIMED [BETWEEN [CONCURRENCY]]]]",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), *args.child[2:3], *map(int, args.child[3:6]))
        return
    if args.concurrency < 1 or (args.concurrency > 1 and not (args.estimate or args.functions)):
        raise SystemExit("--concurrency: a number of requests at once, 1 or more, with "
                         "--estimate or --functions (wrk's runs take it from --connections)")
    variants, failed = dbbench.choose_variants(args.variants, ALL_VARIANTS, HOOKED)
    if args.compare:
        probe = subprocess.run([args.compare, "-c", "import nanoprof.db, asyncpg, starlette, "
                                "uvicorn; print(nanoprof.__file__)"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            raise SystemExit(f"--compare {args.compare}: cannot serve the app: "
                             f"{probe.stderr.strip()[-500:]}")
        print(f"compare: nanoprof-prod served by {args.compare} ({probe.stdout.strip()})",
              file=sys.stderr)
        variants += (COMPARE,)
    if args.native:
        run_native(variants, args.native, args.rounds, args.seconds, args.connections,
                   args.slow_log, args.compare, args.top)
        return
    if args.functions:
        missing = dbbench.hooks_missing() if args.functions in HOOKED else None
        if missing:
            raise SystemExit(f"--functions {args.functions}: {missing}")
        with dbbench.pg_cluster("1") as conninfo:
            seed(conninfo)
            print_functions(args.functions, conninfo, args.top, cold=args.cold,
                            concurrency=args.concurrency)
        return
    if args.estimate:
        with dbbench.pg_cluster("1") as conninfo:
            seed(conninfo)
            print_callgrind({(v, ep): instructions(v, ep, conninfo if ep == "/db" else None,
                                                   cold=args.cold,
                                                   concurrency=args.concurrency)
                             for v in variants if v != "bare-again" for ep in ENDPOINTS},
                            variants)
        return
    dbbench.need_wrk()

    # (req/s, p50 ms, p99 ms, server CPU us per request) per round
    res = {(v, ep): [] for v in variants for ep in ENDPOINTS}
    ratios = {(v, ep): [] for v in variants if v != "bare" for ep in ENDPOINTS}
    cpu_ratios = {key: [] for key in ratios}  # server CPU per request, vs bare
    with dbbench.pg_cluster("1") as conninfo:
        seed(conninfo)
        # Fresh servers every round: a process's own luck (memory layout, which pool
        # connection lands where) moved one variant by 20-30% for a whole run when each ran
        # in one long-lived process, more than anything measured here.
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else tuple(reversed(variants))
            ports = {v: dbbench.free_port() for v in variants}
            procs, pids = [], {}
            this = {}
            try:
                for v in order:
                    procs.append(start(v, ports[v], conninfo, args.slow_log, args.compare))
                    pids[v] = procs[-1].pid
                    if r == 0:
                        check(v, ports[v])
                    for ep in ENDPOINTS:  # warm-up
                        dbbench.wrk(ports[v], ep, 1, args.connections, "1")
                for ep in ENDPOINTS:
                    slices: dict[str, list[tuple[float, float, float, float]]] = {
                        v: [] for v in variants}
                    for k in range(args.slices):
                        for v in order if k % 2 == 0 else tuple(reversed(order)):
                            slices[v].append(dbbench.serve(ports[v], ep, args.seconds,
                                                           args.connections, "1", pids[v]))
                    for v in variants:
                        this[v, ep] = dbbench.combine_slices(slices[v])
            finally:
                dbbench.stop_servers(procs)
            for key, x in this.items():
                res[key].append(x)
            for v, ep in ratios:
                ratios[v, ep].append(this[v, ep][0] / this["bare", ep][0])
                cpu_ratios[v, ep].append(this[v, ep][3] / this["bare", ep][3])
            print(f"round {r + 1}: " + "; ".join(
                f"{ep} " + ", ".join(f"{v} {this[v, ep][0]:.0f}" for v in variants)
                for ep in ENDPOINTS) + " req/s", flush=True)
        ins: dict[tuple[str, str],
                  tuple[float, dict[str, float], dict[str, float], dict[str, float]]] = {}
        if not args.no_callgrind:
            for v in variants:
                if v not in ("bare-again", COMPARE):
                    for ep in ENDPOINTS:
                        ins[v, ep] = instructions(v, ep, conninfo if ep == "/db" else None)
    inproc = {between: in_process([v for v in variants if v != COMPARE], 5, between)
              for between in (0, 1, 2)}

    print(f"\n{args.rounds} rounds of {args.slices} x {args.seconds} s per variant and "
          f"endpoint, wrk -c"
          f"{args.connections}; {dbbench.machine_line()}")
    print(f"{'endpoint':8} {'variant':16} {'req/s (median)':>15} {'jitter':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'CPU us/req':>10} {'jitter':>7} {'req/s vs bare, same round':>26} "
          f"{'CPU/req vs bare':>24}")
    for ep in ENDPOINTS:
        for v in variants:
            rps = [x[0] for x in res[v, ep]]
            line = (f"{ep:8} {v:16} {dbbench.med(rps):15.0f} {dbbench.jitter(rps):6.1f}% "
                    f"{dbbench.med([x[1] for x in res[v, ep]]):7.2f} "
                    f"{dbbench.med([x[2] for x in res[v, ep]]):7.2f}")
            cpu = [x[3] for x in res[v, ep]]
            line += f" {dbbench.med(cpu):10.1f} {dbbench.jitter(cpu):6.1f}%"
            if (v, ep) in ratios:
                line += (f"   {dbbench.ratio_text(ratios[v, ep]):>23}"
                         f"   {dbbench.ratio_text(cpu_ratios[v, ep]):>23}")
            print(line)
    print_callgrind(ins, variants)
    for between, label in ((0, "back to back"), (1, "with other work between requests"),
                           (2, "with other work before each query")):
        base_ns = inproc[between]["bare"]
        print(f"in-process /rec, no server, {label} (5 alternating rounds), ns per request: "
              + ", ".join(f"{v} {dbbench.med(ns):.0f}"
                          + (f" (+{dbbench.med(ns) - dbbench.med(base_ns):.0f}; same round "
                             f"{dbbench.ratio_text([a / b for a, b in zip(ns, base_ns)])})"
                             if v != "bare" else f" (jitter {dbbench.jitter(ns):.1f}%)")
                          for v, ns in inproc[between].items()))
    for v, why in failed.items():
        print(f"{v}: not run: {why}")

    parts = []
    for v in variants:
        if v == "bare":
            continue
        for ep in ENDPOINTS:
            cost = 100 * (1 - dbbench.med(ratios[v, ep]))
            cpu_cost = 100 * (dbbench.med(cpu_ratios[v, ep]) - 1)
            said = ""
            if v in ("nanoprof-prod", COMPARE):
                control = (100 * (1 - dbbench.med(ratios["bare-again", ep]))
                           if ("bare-again", ep) in ratios else None)
                said = f" ({verdict(cost, TARGET[ep], control)})"
            parts.append(f"{v} {ep} {cost:.1f}%{said}, server CPU per request "
                         f"{cpu_cost:+.1f}%")
    print(f"\nfewer requests/s than bare (medians of {args.rounds} same-round ratios): "
          + "; ".join(parts))
    def above(cheap: str, dear: str, ep: str) -> float:
        """`dear`'s cost above `cheap`'s in %, the median of the differences round by round,
        so that both costs come from the same minutes of the machine."""
        return 100 * dbbench.med([c - d for c, d in zip(ratios[cheap, ep], ratios[dear, ep])])

    if "floor" in variants and "nanoprof-prod" in variants:
        print("nanoprof-prod's cost above the floor's, same-round medians: " + "; ".join(
            f"{ep} {above('floor', 'nanoprof-prod', ep):.1f}% (the floor itself "
            f"{100 * (1 - dbbench.med(ratios['floor', ep])):.1f}%; the target allows "
            f"{TARGET[ep]:.0f}% in all)" for ep in ENDPOINTS))
    if COMPARE in variants and "nanoprof-prod" in variants:
        print(f"compare ({args.compare}) against nanoprof-prod, same-round medians: " + "; ".join(
            f"{ep} {above('nanoprof-prod', COMPARE, ep):+.1f}% fewer requests/s" for ep in ENDPOINTS))
    if "floor-core" in variants and "nanoprof-prod" in variants:
        print("nanoprof-prod's cost above floor-core's, same-round medians: " + "; ".join(
            f"{ep} {above('floor-core', 'nanoprof-prod', ep):.1f}% (floor-core itself "
            f"{100 * (1 - dbbench.med(ratios['floor-core', ep])):.1f}%, the floor "
            + (f"{100 * (1 - dbbench.med(ratios['floor', ep])):.1f}%" if "floor" in variants
               else "not run") + ")" for ep in ENDPOINTS))
    if "floor-core" in variants and "floor-core-hooks" in variants:
        print("floor-core-hooks' cost above floor-core's (the phase hooks alone), same-round "
              "medians: " + "; ".join(f"{ep} {above('floor-core', 'floor-core-hooks', ep):.1f}%"
                                      for ep in ENDPOINTS))
    if "floor-mw" in variants and "mw-prod" in variants:
        print("mw-prod's cost above the floor's middleware, same-round medians: " + "; ".join(
            f"{ep} {above('floor-mw', 'mw-prod', ep):.1f}% (the floor's middleware itself "
            f"{100 * (1 - dbbench.med(ratios['floor-mw', ep])):.1f}%)" for ep in ENDPOINTS))
    if ins:
        # The estimate from the simulated caches against what the server measured, variant by
        # variant: cycles per microsecond should come out alike (the core's clock) when the
        # estimate explains the measured cost, and it can then stand in for it in between runs.
        added = []
        for v in variants:
            if v in ("bare", "bare-again", "spin-mw") or (v, "/db") not in ins:
                continue
            model = dbbench.cycles(ins[v, "/db"][3]) - dbbench.cycles(ins["bare", "/db"][3])
            # the same-round ratio's median, in microseconds of the bare app's median
            server = (dbbench.med(cpu_ratios[v, "/db"]) - 1) * dbbench.med(
                [c[3] for c in res["bare", "/db"]])
            added.append(f"{v} {model / 1000:+.1f}k cycles vs server CPU {server:+.1f} us"
                         + (f" ({model / server:.0f} cycles per us)" if server > 0.5 else ""))
        print("/db, estimated vs measured cost per request: " + "; ".join(added))
    if failed:
        print("FAILED variants: " + "; ".join(f"{v}: {w}" for v, w in failed.items()))
        raise SystemExit(2)


if __name__ == "__main__":
    main()
