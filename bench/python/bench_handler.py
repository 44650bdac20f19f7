"""bench/python/bench_handler.py: what @profile_handler adds to a call.

Three callables, each timed in the same run, interleaved round by round: the bare function,
nanoprof's @profile_handler (C wrapper, profile begin/end, context variable, header built and
attached), and the pure-Python implementation of the same decorator (pure_python.py).  Prints
the median of the rounds with their jitter and the same-run ratio.

    python bench/python/bench_handler.py [--rounds 9] [--calls 200000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nanoprof  # noqa: E402
import pure_python  # noqa: E402


def handler() -> tuple[str, int, dict[str, str]]:
    return ("ok", 200, {})


def per_call_ns(fn, calls: int) -> float:
    loop = range(calls)
    t0 = time.perf_counter_ns()
    for _ in loop:
        fn()
    return (time.perf_counter_ns() - t0) / calls


def jitter(xs: list[float]) -> float:
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m * 100 if m else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args()
    nanoprof.configure(max_history=1000)
    ours = nanoprof.profile_handler(handler)
    pure = pure_python.profile_handler(handler)
    assert "X-Profile" in ours()[2] and "X-Profile" in pure()[2]
    for fn in (handler, ours, pure):  # warm-up
        per_call_ns(fn, args.calls // 10)
    bare_r, ours_r, pure_r, added_r, ratio_r = [], [], [], [], []
    for _ in range(args.rounds):
        b = per_call_ns(handler, args.calls)
        o = per_call_ns(ours, args.calls)
        p = per_call_ns(pure, args.calls)
        bare_r.append(b)
        ours_r.append(o)
        pure_r.append(p)
        added_r.append(o - b)
        ratio_r.append((o - b) / (p - b))
    print(f"bare call:             {statistics.median(bare_r):8.1f} ns  (jitter {jitter(bare_r):.1f}%)")
    print(f"@profile_handler:      {statistics.median(ours_r):8.1f} ns  (jitter {jitter(ours_r):.1f}%)")
    print(f"pure-Python decorator: {statistics.median(pure_r):8.1f} ns  (jitter {jitter(pure_r):.1f}%)")
    print(f"added by nanoprof:     {statistics.median(added_r):8.1f} ns per call "
          f"(median of {args.rounds} rounds, jitter {jitter(added_r):.1f}%)")
    print(f"nanoprof's added cost / pure Python's, same run: {statistics.median(ratio_r):.3f} "
          f"(rounds {min(ratio_r):.3f}-{max(ratio_r):.3f})")


if __name__ == "__main__":
    main()
