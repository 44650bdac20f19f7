"""What the three database benchmarks share (bench_record.py, bench_asgi_db.py,
bench_django_n1.py): a throwaway PostgreSQL cluster, servers pinned with taskset, wrk, the
median/jitter arithmetic, callgrind's instruction counts and lines of code run, and the one
place that imports the database hooks (nanoprof.db.QueryTimer), so that a missing hook fails
the same clear way in all three.  Not a benchmark itself.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PG_CLUSTER = ROOT / "tests" / "pg_cluster.sh"


# ---- statistics ------------------------------------------------------------------------------


def jitter(xs: Sequence[float]) -> float:
    """(max - min) / median, in percent."""
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m * 100 if m else 0.0


def spread(xs: Sequence[float]) -> float:
    """max - min, in the values' own unit: the jitter of values near 0 (differences)."""
    return max(xs) - min(xs)


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def ratio_text(rs: Sequence[float]) -> str:
    return f"{med(rs):.3f} ({min(rs):.3f}-{max(rs):.3f})"


def wrk_medians(runs: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """Of wrk runs given as (req/s, p50 ms, p99 ms, ...): the median requests/s, its jitter
    in percent, and the median p50 and p99."""
    rps = [x[0] for x in runs]
    return med(rps), jitter(rps), med([x[1] for x in runs]), med([x[2] for x in runs])


# ---- the hooks under test ----------------------------------------------------------------------


def hooks_missing() -> str | None:
    """None when nanoprof.db.QueryTimer and _core.QueryRecorder import, else why not (one
    line, naming what is missing): the hook variants need both."""
    try:
        from nanoprof import _core
    except ImportError as e:  # pragma: no cover - the package itself is broken
        return f"nanoprof._core does not import: {e}"
    if not hasattr(_core, "QueryRecorder"):
        return ("nanoprof._core has no QueryRecorder (the database hooks' extension API has "
                "not landed, or the editable install was not rebuilt: pip install "
                "--no-build-isolation -e bindings/python)")
    try:
        from nanoprof.db import QueryTimer  # noqa: F401
    except ImportError as e:
        return f"cannot import nanoprof.db.QueryTimer: {e}"
    return None


def choose_variants(arg: str, known: Sequence[str],
                    hooked: set[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The variants named in `arg` (comma-separated, bare among them), without those that
    need the database hooks when these are missing: (variants, {left out: why})."""
    variants = tuple(v for v in arg.split(",") if v)
    if set(variants) - set(known) or "bare" not in variants:
        raise SystemExit(f"--variants: from {', '.join(known)}, with bare (the anchor)")
    failed: dict[str, str] = {}
    missing = hooks_missing()
    if missing:
        failed = {v: missing for v in variants if v in hooked}
        variants = tuple(v for v in variants if v not in hooked)
        print(f"hook variants not run: {missing}", file=sys.stderr)
    return variants, failed


# ---- PostgreSQL ------------------------------------------------------------------------------


@contextmanager
def pg_cluster(cpu: str | None = "1") -> Iterator[str]:
    """A throwaway PostgreSQL (tests/pg_cluster.sh) for the duration of the block; yields its
    libpq conninfo.  With `cpu`, the postmaster and so every backend are pinned to that CPU
    (taskset's affinity is inherited): the server under test keeps CPU 0 to itself."""
    d = tempfile.mkdtemp(prefix="nprof-bench-pg.")
    os.rmdir(d)  # pg_cluster.sh wants to create it (or find it empty)
    cmd = ["sh", str(PG_CLUSTER), "start", d]
    # one pool per server variant, plus the seeding and the slow-query logs
    env = dict(os.environ, NPROF_PG_CONF="max_connections = 100")
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"PostgreSQL did not start (pg_cluster.sh exit {r.returncode}):\n"
                         f"{r.stderr}")
    try:
        yield r.stdout.strip()
    finally:
        subprocess.run(["sh", str(PG_CLUSTER), "stop", d], capture_output=True)


def conninfo_parts(conninfo: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in conninfo.split())


# ---- servers and wrk -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: str | None) -> list[str]:
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", cpu, *cmd]
    return cmd


def start_server(name: str, cmd: list[str], env: dict[str, str], port: int, probe: str,
                 cwd: Path = HERE, timeout: float = 60) -> subprocess.Popen[bytes]:
    """Starts `cmd` and waits until GET `probe` answers 200 on `port`."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as r:
                r.read()
            return proc
        except OSError as e:
            last = e
            if proc.poll() is not None:
                raise SystemExit(f"server {name!r} exited with {proc.returncode}")
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server {name!r} did not answer {probe} within {timeout:.0f} s ({last})")


def stop_servers(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def fetch(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and all its descendants so far: a
    gunicorn master's workers included."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        p = pending.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # a process that ended meanwhile
    return total


def serve(port: int, path: str, seconds: float, connections: int, cpu: str | None,
          server_pid: int) -> tuple[float, float, float, float]:
    """wrk() plus the server's CPU microseconds per request over the run.  Under load the
    server's CPU per request is what a middleware adds to; on a 2-core machine where wrk
    and PostgreSQL share the other core it is much steadier than requests per second,
    which also move with whatever else that core runs."""
    before = process_cpu_s(server_pid)
    rps, p50, p99, n = wrk_counted(port, path, seconds, connections, cpu)
    used = process_cpu_s(server_pid) - before
    return rps, p50, p99, used * 1e6 / max(n, 1)


def combine_slices(runs: Sequence[tuple[float, float, float, float]]
                   ) -> tuple[float, float, float, float]:
    """serve() results of equally long runs as one: the mean requests/s, the median p50 and
    p99, and the server's CPU per request over all of their requests."""
    total = sum(r[0] for r in runs)
    return (total / len(runs), med([r[1] for r in runs]), med([r[2] for r in runs]),
            sum(r[0] * r[3] for r in runs) / total if total else 0.0)


def wrk(port: int, path: str, seconds: float, connections: int,
        cpu: str | None) -> tuple[float, float, float]:
    """requests/s, p50 and p99 latency in ms; any non-2xx answer or socket error stops the run
    (a benchmark of error pages would be worthless)."""
    return wrk_counted(port, path, seconds, connections, cpu)[:3]


def wrk_counted(port: int, path: str, seconds: float, connections: int,
                cpu: str | None) -> tuple[float, float, float, int]:
    """wrk() and the number of requests it made."""
    cmd = pinned(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                  f"http://127.0.0.1:{port}{path}"], cpu)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk on :{port}{path} saw errors:\n{out}")

    def pct(p: str) -> float:
        mm = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not mm:
            return float("nan")
        v, unit = float(mm.group(1)), mm.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    total = re.search(r"(\d+) requests in", out)
    return float(m.group(1)), pct("50"), pct("99"), int(total.group(1)) if total else 0


def need_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")


def machine_line() -> str:
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = ["?"] * 3
    return f"load average {' '.join(load)} on {os.cpu_count()} CPUs"


# ---- callgrind -------------------------------------------------------------------------------


def fixed_hashes(env: dict[str, str] | None) -> dict[str, str]:
    """`env` (or this process's) with Python's string hashes fixed (PYTHONHASHSEED=0 unless
    set): with a random seed each process's dict and type-cache collisions differ, which
    moved a /db request by 2,000-3,000 instructions from one process to the next, more than
    most changes measured here.  A fixed seed makes two builds comparable; another seed
    (PYTHONHASHSEED=n python bench/...) shows how much one seed's layout weighs."""
    out = dict(os.environ if env is None else env)
    out.setdefault("PYTHONHASHSEED", "0")
    return out


def _callgrind(options: list[str], argv: list[str], env: dict[str, str] | None,
               ok: Callable[[subprocess.CompletedProcess[str]], bool]
               ) -> subprocess.CompletedProcess[str]:
    """valgrind --tool=callgrind `options` `argv`, with the hash seed fixed; a SystemExit
    with the run's output when it failed or `ok` says it gave nothing to read."""
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    cmd = ["valgrind", "--tool=callgrind", *options, *argv]
    r = subprocess.run(cmd, capture_output=True, text=True, env=fixed_hashes(env), cwd=HERE)
    if r.returncode != 0 or not ok(r):
        raise SystemExit(f"callgrind run failed ({' '.join(argv)}):\n{r.stdout[-2000:]}\n"
                         f"{r.stderr[-3000:]}")
    return r


def callgrind_instructions(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Instructions (Ir) callgrind counts for the whole process `argv`."""
    collected = re.compile(r"Collected\s*:\s*(\d+)")
    r = _callgrind(["--callgrind-out-file=/dev/null"], argv, env,
                   lambda r: collected.search(r.stderr) is not None)
    return int(collected.search(r.stderr).group(1))  # type: ignore[union-attr]


# The caches callgrind simulates: this machine's (AMD EPYC, per core: 32 KiB 8-way L1
# instruction and data caches, 1 MiB 16-way L2 as the last level it models).
CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64"]


def callgrind_code(argv: list[str], env: dict[str, str] | None = None) -> Dump:
    """Runs the whole process `argv` under callgrind with its cache simulation and returns
    what it counted, per executed instruction and in total (Dump).  Two of these, for n1
    and n2 iterations, give the code an iteration runs (code_lines), its misses (cycles)
    and the functions they fall in (function_costs)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        _callgrind(["--dump-instr=yes", "--cache-sim=yes", *CACHES,
                    f"--callgrind-out-file={out}"], argv, env, lambda r: out.exists())
        return _parse_dump(out.read_text())


def _totals(dump: str) -> dict[str, int]:
    """The `events:` names and the `summary:` (or `totals:`) line of a callgrind dump."""
    events = re.search(r"^events:\s*(.+)$", dump, re.M)
    total = re.search(r"^(?:summary|totals):\s*(.+)$", dump, re.M)
    if not events or not total:
        raise SystemExit("callgrind dump without events or totals")
    return dict(zip(events.group(1).split(), map(int, total.group(1).split())))


# What a miss costs on this kind of core, in cycles: an L1 miss served by L2 (~14), an L2
# miss served by L3 (~50); instructions otherwise retire about two per cycle.  Checked
# against the server's CPU time per request (bench_asgi_db.py prints both).
L1_MISS_CYCLES, LL_MISS_CYCLES, INSTRUCTIONS_PER_CYCLE = 14, 50, 2.0


def cycles(events: dict[str, float]) -> float:
    """Estimated cycles of `events` (per-iteration differences of Dump.totals)."""
    l1 = events.get("I1mr", 0) + events.get("D1mr", 0) + events.get("D1mw", 0)
    ll = events.get("ILmr", 0) + events.get("DLmr", 0) + events.get("DLmw", 0)
    return events.get("Ir", 0) / INSTRUCTIONS_PER_CYCLE + L1_MISS_CYCLES * l1 + LL_MISS_CYCLES * ll


@dataclass
class Dump:
    """One callgrind run: `instructions` {(object file name, address): times run},
    `functions` {(object, function): its own events (Ir, I1mr, D1mr, ...), summed},
    `owner` {(object, address): the function the instruction is in}, and `totals`, the
    whole run's events."""

    instructions: dict[tuple[str, int], int]
    functions: dict[tuple[str, str], dict[str, int]]
    owner: dict[tuple[str, int], str]
    totals: dict[str, int]


def _parse_dump(dump: str) -> Dump:
    """Parses callgrind's output with `positions: instr line` (--dump-instr=yes): a cost line
    is "address line events...", the address absolute (0x...) or relative to the previous
    (+n, -n, *); the cost line after `calls=` is the call's inclusive cost, not this
    instruction's.  Object and function names are compressed: "(n) name" the first time,
    "(n)" after."""
    events = _totals(dump)
    names_ev = list(events)
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    out = Dump({}, {}, {}, events)
    obj, fn, addr, after_call = "?", "?", 0, False
    spec = re.compile(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$")
    for line in dump.splitlines():
        if line.startswith(("ob=", "cob=", "fn=", "cfn=")):
            m = spec.match(line)
            if m:
                table = names[m.group(2)]
                if m.group(4):
                    table[m.group(3)] = (Path(m.group(4)).name if m.group(2) == "ob"
                                         else m.group(4))
                if not m.group(1):  # ob= / fn=: what the next cost lines belong to
                    if m.group(2) == "ob":
                        obj = table.get(m.group(3), "?")
                    else:
                        fn = table.get(m.group(3), "?")
        elif line.startswith("calls="):
            after_call = True
        elif line[:1] in ("+", "-", "*") or line[:1].isdigit():
            fields = line.split()
            a = fields[0]
            if a.startswith("0x"):
                addr = int(a, 16)
            elif a[0] in "+-":
                addr += int(a)
            if after_call:
                after_call = False
                continue
            if len(fields) > 2:
                key = (obj, addr)
                out.instructions[key] = out.instructions.get(key, 0) + int(fields[2])
                out.owner[key] = fn
                own = out.functions.setdefault((obj, fn), {})
                for name, value in zip(names_ev, fields[2:]):
                    own[name] = own.get(name, 0) + int(value)
    return out


def code_lines(a: dict[tuple[str, int], int], b: dict[tuple[str, int], int],
               iterations: int, visits: float = 1.0) -> dict[str, float]:
    """The 64-byte lines of code one iteration runs, per object file, from run `a` and a run
    `b` longer by `iterations`: the instruction-cache footprint of an iteration.  A line
    counts once however often it runs in an iteration, and in proportion when it runs in
    only some of them (a line run once in ten requests counts 0.1).  Code that runs on every
    request is fetched again whenever the rest of the request has pushed it out of the
    32 KiB L1 cache, so lines, not instructions, are what added code costs when it runs cold
    (as under a real server, with the event loop and HTTP parsing in between).

    With `visits` above 1, a line counts up to that many times an iteration: the line visits
    of code that runs once per query, with the driver's I/O between queries pushing it out
    again before the next (visits=5 for five queries a request)."""
    return {obj: n for (obj, _), n in _lines(a, b, iterations, visits, None).items()}


def _lines(a: dict[tuple[str, int], int], b: dict[tuple[str, int], int], iterations: int,
           visits: float, owner: dict[tuple[str, int], str] | None
           ) -> dict[tuple[str, str], float]:
    """code_lines() per object and, with `owner`, per function too (else "")."""
    runs: dict[tuple[str, str, int], int] = {}  # the most any of a line's instructions ran
    for (obj, addr), n in b.items():
        extra = n - a.get((obj, addr), 0)
        if extra > 0:
            key = (obj, owner.get((obj, addr), "?") if owner else "", addr >> 6)
            runs[key] = max(runs.get(key, 0), extra)
    lines: dict[tuple[str, str], float] = {}
    for (obj, fn, _), n in runs.items():
        lines[obj, fn] = lines.get((obj, fn), 0.0) + min(visits, n / iterations)
    return lines


@dataclass
class FunctionCost:
    """What one function adds per iteration: its own events and the lines of code it runs
    (code_lines' measure, per function)."""

    events: dict[str, float]
    lines: float


def function_costs(a: Dump, b: Dump, iterations: int) -> dict[tuple[str, str], FunctionCost]:
    """Per (object, function), what run `b`, longer than `a` by `iterations`, adds per
    iteration: the functions' share of cycles() and of the lines of code, to find where an
    added cost lies (bench_asgi_db.py --functions)."""
    lines = _lines(a.instructions, b.instructions, iterations, 1.0, b.owner)
    out: dict[tuple[str, str], FunctionCost] = {}
    for key, own in b.functions.items():
        before = a.functions.get(key, {})
        events = {k: (v - before.get(k, 0)) / iterations for k, v in own.items()}
        if any(events.values()) or lines.get(key):
            out[key] = FunctionCost(events, lines.get(key, 0.0))
    return out


def own_object(obj: str) -> bool:
    """Is `obj` (an object file's name in a callgrind dump) one of nanoprof's own (_core and
    libnanoprof)?"""
    return obj.startswith("_core.") or obj == "libnanoprof.so.0"


# An HTTP GET's ASGI scope for the benches' in-process requests (path and query added).
ASGI_SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
              "method": "GET", "scheme": "http", "query_string": b"", "root_path": "",
              "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*")],
              "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}


def function_changes(base: tuple[Dump, Dump], variant: tuple[Dump, Dump], iterations: int
                     ) -> list[tuple[float, float, float, float, tuple[str, str]]]:
    """What a variant changes against a base run, per (object, function) and iteration, the
    largest change in estimated cycles first: (cycles, L1i misses, instructions, lines of
    code, key).  Each of `base` and `variant` is its runs of n1 and n1 + `iterations`."""
    b, v = (function_costs(a, z, iterations) for a, z in (base, variant))
    none = FunctionCost({}, 0.0)
    rows = []
    for key in set(b) | set(v):
        x, m = b.get(key, none), v.get(key, none)
        d = {k: m.events.get(k, 0) - x.events.get(k, 0) for k in set(x.events) | set(m.events)}
        rows.append((cycles(d), d.get("I1mr", 0), d.get("Ir", 0), m.lines - x.lines, key))
    rows.sort(key=lambda r: -abs(r[0]))
    return rows


def print_function_changes(rows: Sequence[tuple[float, float, float, float, tuple[str, str]]],
                           top: int, marked: Callable[[str], bool]) -> None:
    """The first `top` of function_changes(), a line each; `marked` objects get a star."""
    for cyc, i1, ir, lines, (obj, fn) in rows[:top]:
        mark = "*" if marked(obj) else " "
        print(f"  {cyc:+8.0f} {i1:+7.1f} {ir:+8.0f} {lines:+6.1f} {mark} {fn[:60]} "
              f"({obj.split('.')[0]})")


def per_iteration(run: Callable[[int], int], n1: int, n2: int) -> float:
    """(count at n2 - count at n1) / (n2 - n1): start-up and imports cancel out."""
    return (run(n2) - run(n1)) / (n2 - n1)


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env

