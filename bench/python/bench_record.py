"""bench/python/bench_record.py: what recording one SQL query costs, from Python, inside a
running request.

Every call records a different 200-byte query (the literal changes) with its two
parameters (an int and a str), into a request begun with start_profile() and ended with
end_profile() every --batch queries, so the profile never fills (max_queries is 500).  The
strings and parameter tuples are built before the clock starts.  Variants, alternating
inside each round, each timed over the same queries in the same batches:

  loop      the bare loop over the queries inside the same requests (the anchor)
  record    nanoprof.record_sql(sql, duration_ns, params)
  recorder  _core.QueryRecorder().start() / .finish(start, sql, params): the path the
            database hooks take (their clock read and call site included)
  pure      a pure-Python record (regex normalization, blake2b fingerprint, per-shape count,
            parameter summary, append to the request's list) under a pure-Python request
            (pure_python.PyProfile in a context variable)

Per variant: ns per query of the record loop alone, net of the bare loop of the same round,
and ns per request of begin + end.  Then a flatness check (record_sql's cost per query at
10, 100 and 400 queries per request), what ending a request costs (end_profile(), which
returns the profile and so copies it out of C, against ProfileStore.push_current()), and
callgrind's instructions per call (two runs of a child at different counts: start-up
cancels out; the child ends its requests with push_current, so the copy is not counted).

    python bench/python/bench_record.py [--rounds 7] [--calls 200000 | --seconds S]
                                        [--batch 100] [--no-params] [--no-callgrind]

Nothing here talks to a database, so no PostgreSQL is started.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dbbench  # noqa: E402
import nanoprof  # noqa: E402
import pure_python  # noqa: E402
from nanoprof import _core  # noqa: E402

VARIANTS = ("loop", "record", "recorder", "pure")
N_STRINGS = 8192  # distinct queries, cycled; no cache of nanoprof's is keyed on the full text
DURATION_NS = 1234
PARAMS = [True]  # pass each query's parameters (--no-params: None)
Batch = list[tuple[str, "tuple[int, str] | None"]]  # one request's (sql, params)


def queries(n: int = N_STRINGS) -> list[str]:
    """n distinct 200-byte queries of one shape: only the literal changes."""
    head = ("SELECT o.id, o.status, o.total_cts, o.created_at, c.email FROM orders o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.customer_id = ")
    tail = " AND o.status = 'shipped' ORDER BY o.created_at DESC LIMIT 9"
    out = [f"{head}{10000 + i * 7919 % 90000}{tail}" for i in range(n)]
    assert all(len(q) == 200 for q in out) and len(set(out)) == n
    return out


# ---- the pure-Python record (the anchor) ------------------------------------------------------

# Literals out: quoted strings and numbers become '?', as the C normalizer does.
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


class PyProfile(pure_python.PyProfile):
    __slots__ = ("shapes",)

    def __init__(self, method: str, path: str) -> None:
        super().__init__(method, path)
        self.shapes: dict[str, int] = {}


_py_store: collections.deque[PyProfile] = collections.deque(maxlen=1000)
_py_current = pure_python._current


def py_record_sql(sql: str, duration_ns: int, params: object = None) -> bool:
    p = _py_current.get()
    if p is None:
        return False
    normalized = _LITERAL.sub("?", sql)
    fingerprint = hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()
    summary = None
    if params is not None:  # "$1=42, $2='shipped'", cut as the C side cuts it
        summary = ", ".join(f"${i}={v!r}" for i, v in enumerate(params, 1))
        if len(summary) > 512:
            summary = summary[:509] + "..."
    p.sql_queries.append(  # type: ignore[arg-type]
        (sql, duration_ns, summary, normalized, fingerprint))
    p.sql_total_ns += duration_ns
    p.shapes[fingerprint] = p.shapes.get(fingerprint, 0) + 1
    return True


# How the timed loops end a request: end_profile() (the reference API's pair; it returns the
# profile, so it is frozen, a copy) or, in the callgrind child, a ProfileStore's
# push_current() (no copy, as a middleware's end), so that the instructions counted per query
# are the record's and not the copy's.
END: list = [_core.end_profile]


# ---- the timed loops -----------------------------------------------------------------------------
# One function per variant, so that no variant pays an indirection the others do not.  Each
# returns (ns inside the record loops, ns of everything: the requests' begin and end too).


# Each variant has its own loop, written out: one loop calling a per-query function would add
# that call to every figure it measures.
def run_loop(batches: list[Batch]) -> tuple[int, int]:
    clock = time.perf_counter_ns
    start, end = _core.start_profile, END[0]
    inner = 0
    t0 = clock()
    for batch in batches:
        start("GET", "/bench")
        t = clock()
        for sql, params in batch:
            pass
        inner += clock() - t
        end(200)
    return inner, clock() - t0


def run_record(batches: list[Batch]) -> tuple[int, int]:
    clock = time.perf_counter_ns
    start, end, record = _core.start_profile, END[0], nanoprof.record_sql
    d = DURATION_NS
    inner = 0
    t0 = clock()
    for batch in batches:
        start("GET", "/bench")
        t = clock()
        for sql, params in batch:
            record(sql, d, params)
        inner += clock() - t
        end(200)
    return inner, clock() - t0


def run_recorder(batches: list[Batch]) -> tuple[int, int]:
    clock = time.perf_counter_ns
    start, end = _core.start_profile, END[0]
    rec = _core.QueryRecorder()
    begin, finish = rec.start, rec.finish
    inner = 0
    t0 = clock()
    for batch in batches:
        start("GET", "/bench")
        t = clock()
        for sql, params in batch:
            s = begin()
            finish(s, sql, params)
        inner += clock() - t
        end(200)
    return inner, clock() - t0


def run_pure(batches: list[Batch]) -> tuple[int, int]:
    clock = time.perf_counter_ns
    record, current, store, profile = py_record_sql, _py_current, _py_store, PyProfile
    d = DURATION_NS
    inner = 0
    t0 = clock()
    for batch in batches:
        p = profile("GET", "/bench")
        token = current.set(p)
        t = clock()
        for sql, params in batch:
            record(sql, d, params)
        inner += clock() - t
        p.total_ns = clock() - p.start_ns
        current.reset(token)
        store.append(p)
    return inner, clock() - t0


RUN = {"loop": run_loop, "record": run_record, "recorder": run_recorder, "pure": run_pure}


def end_cost(sqls: list[str], sizes: tuple[int, ...],
             reps: int = 200) -> dict[int, tuple[float, float]]:
    """ns to end a request of n recorded queries: end_profile(), which returns the profile
    (so it is frozen: copied out of C), and ProfileStore.push_current(), which only stores
    it, as a middleware's end does."""
    store = _core.ProfileStore(1000)
    out = {}
    for n in sizes:
        ends = []
        for how in (0, 1):
            total = 0
            for _ in range(reps):
                _core.start_profile("GET", "/bench")
                for sql in sqls[:n]:
                    nanoprof.record_sql(sql, DURATION_NS)
                t = time.perf_counter_ns()
                if how == 0:
                    _core.end_profile(200)
                else:
                    store.push_current()
                total += time.perf_counter_ns() - t
            ends.append(total / reps)
        out[n] = (ends[0], ends[1])
    return out


def make_batches(sqls: list[str], calls: int, batch: int) -> list[Batch]:
    """calls // batch requests of `batch` (sql, params) pairs; params (the query's customer
    id and status, as a driver would pass them) unless PARAMS[0] is False."""
    out, i = [], 0
    for _ in range(calls // batch):
        chunk = []
        for k in range(batch):
            n = (i + k) % len(sqls)
            chunk.append((sqls[n], (10000 + n, "shipped") if PARAMS[0] else None))
        out.append(chunk)
        i += batch
    return out


def check(variants: tuple[str, ...]) -> None:
    """Each variant records what it should (a benchmark of a no-op would be worthless)."""
    sqls = queries(4)
    for v in variants:
        if v == "loop":
            continue
        if v == "pure":
            run_pure(make_batches(sqls, 4, 4))
            p = _py_store[-1]
            assert len(p.sql_queries) == 4 and len(p.shapes) == 1, v
            continue
        _core.start_profile("GET", "/check")
        if v == "record":
            for s in sqls:
                assert nanoprof.record_sql(s, DURATION_NS) is True
        else:
            rec = _core.QueryRecorder()
            for s in sqls:
                rec.finish(rec.start(), s)
        p = _core.end_profile(200)
        assert p is not None and p.sql_count == 4, (v, p and p.sql_count)
        assert len({q.fingerprint for q in p.sql_queries}) == 1, v


# ---- callgrind child -----------------------------------------------------------------------------


def child(variant: str, n: int, batch: int) -> None:
    """Runs `n` calls of `variant` (in batches) and exits: what callgrind counts."""
    store = _core.ProfileStore(10)  # full after 10 requests: both counts in the steady state
    END[0] = lambda status: store.push_current()
    batches = make_batches(queries(), n, batch)
    RUN[variant](batches)


def instructions(variant: str, batch: int, n1: int, n2: int) -> float:
    def run(n: int) -> int:
        return dbbench.callgrind_instructions(
            [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(n),
             "--batch", str(batch), *(["--no-params"] if not PARAMS[0] else [])],
            env=dbbench.env_with())

    return dbbench.per_iteration(run, n1, n2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200_000, help="queries per variant per round")
    ap.add_argument("--seconds", type=float, default=None,
                    help="instead of --calls: about this many seconds per variant per round")
    ap.add_argument("--batch", type=int, default=100, help="queries per request")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--no-params", action="store_true",
                    help="record without parameters (default: two per query, an int and a str)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    PARAMS[0] = not args.no_params
    if args.batch > 400:
        raise SystemExit("--batch: at most 400 (max_queries is 500; the profile must not fill)")
    nanoprof.configure(max_history=1000, max_queries=500)
    if args.child:
        child(args.child[0], int(args.child[1]), args.batch)
        return

    variants = tuple(v for v in args.variants.split(",") if v)
    unknown = set(variants) - set(VARIANTS)
    if unknown or "loop" not in variants:
        raise SystemExit(f"--variants: from {', '.join(VARIANTS)}, with loop (the anchor)")
    missing = dbbench.hooks_missing() if "recorder" in variants else None
    failed: dict[str, str] = {}
    if missing and not hasattr(_core, "QueryRecorder"):
        failed["recorder"] = missing
        variants = tuple(v for v in variants if v != "recorder")
    check(variants)

    sqls = queries()
    if args.seconds:  # calibrate --calls on the most expensive variant
        probe = make_batches(sqls, 20 * args.batch, args.batch)
        slowest = max(RUN[v](probe)[1] for v in variants) / (20 * args.batch)
        args.calls = max(args.batch, int(args.seconds * 1e9 / slowest))
    calls = args.calls - args.calls % args.batch
    batches = make_batches(sqls, calls, args.batch)
    for v in variants:  # warm-up
        RUN[v](batches[: max(1, len(batches) // 10)])

    inner: dict[str, list[float]] = {v: [] for v in variants}   # ns per query, record loop
    net: dict[str, list[float]] = {v: [] for v in variants}     # minus the bare loop, same round
    req: dict[str, list[float]] = {v: [] for v in variants}     # ns per request, begin + end
    vs_pure: list[float] = []
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else tuple(reversed(variants))
        this = {v: RUN[v](batches) for v in order}
        n_req = len(batches)
        for v in variants:
            i_ns, total = this[v]
            inner[v].append(i_ns / calls)
            net[v].append((i_ns - this["loop"][0]) / calls)
            req[v].append((total - i_ns) / n_req)
        if "record" in variants and "pure" in variants:
            vs_pure.append(net["record"][-1] / net["pure"][-1])
        print(f"round {r + 1}: " + ", ".join(f"{v} {net[v][-1]:.0f}" for v in variants
                                              if v != "loop") + " ns/query net", flush=True)

    print(f"\n{calls} queries of 200 bytes per variant per round, {args.batch} per request, "
          f"{args.rounds} rounds; {dbbench.machine_line()}")
    print(f"{'variant':10} {'ns/query':>10} {'jitter':>7} {'net of loop':>12} {'jitter':>7} "
          f"{'begin+end ns/req':>17}")
    for v in variants:
        print(f"{v:10} {dbbench.med(inner[v]):10.1f} {dbbench.jitter(inner[v]):6.1f}% "
              f"{dbbench.med(net[v]) if v != 'loop' else 0:12.1f} "
              f"{dbbench.jitter(net[v]) if v != 'loop' else 0:6.1f}% {dbbench.med(req[v]):17.0f}")
    for v, why in failed.items():
        print(f"{v:10} not run: {why}")

    # Flatness: the cost per query must not grow with the queries already in the profile.
    flat = {}
    for b in (10, 100, 400):
        bb = make_batches(sqls, max(b, calls // 4 // b * b), b)
        runs = []
        for _ in range(3):
            rec_i, _t = run_record(bb)
            loop_i, _t = run_loop(bb)
            runs.append((rec_i - loop_i) / (len(bb) * b))
        flat[b] = dbbench.med(runs)
    print("record_sql net ns/query by queries per request: "
          + ", ".join(f"{b}: {flat[b]:.0f}" for b in flat))
    print("ending a request of N recorded queries, ns: "
          + "; ".join(f"N={n}: end_profile() {e:.0f}, ProfileStore.push_current() {p:.0f}"
                      for n, (e, p) in end_cost(sqls, (0, args.batch)).items()))

    ins: dict[str, float] = {}
    if not args.no_callgrind:
        for v in variants:
            ins[v] = instructions(v, args.batch, 2000, 12000)
        base = ins["loop"]
        print("callgrind, instructions per query (net of the bare loop; requests ended by "
              "push_current, not end_profile): "
              + ", ".join(f"{v} {ins[v] - base:.0f}" for v in variants if v != "loop")
              + f"; the loop itself {base:.0f} (with begin+end per {args.batch})")

    summary = (f"\nrecord_sql: {dbbench.med(net['record']):.0f} ns per query net of the loop "
               f"(median of {args.rounds}, jitter {dbbench.jitter(net['record']):.1f}%; target "
               f"<= 600 ns: {'met' if dbbench.med(net['record']) <= 600 else 'NOT met'})")
    if "recorder" in variants:
        summary += (f"; QueryRecorder start/finish {dbbench.med(net['recorder']):.0f} ns "
                    f"(jitter {dbbench.jitter(net['recorder']):.1f}%)")
    if vs_pure:
        summary += (f"; pure Python {dbbench.med(net['pure']):.0f} ns (jitter "
                    f"{dbbench.jitter(net['pure']):.1f}%), record_sql/pure same round "
                    f"{dbbench.ratio_text(vs_pure)}")
    if ins:
        summary += f"; instructions per record_sql {ins['record'] - ins['loop']:.0f}"
        if "recorder" in ins:
            summary += f", per start/finish {ins['recorder'] - ins['loop']:.0f}"
        if "pure" in ins:
            summary += f", pure {ins['pure'] - ins['loop']:.0f}"
    print(summary)
    if failed:
        print("FAILED variants: " + "; ".join(f"{v}: {w}" for v, w in failed.items()))
        raise SystemExit(2)


if __name__ == "__main__":
    main()
