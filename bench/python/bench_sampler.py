"""bench/python/bench_sampler.py: what sampling a request's call stacks costs (issue 16).

A template-heavy Jinja2 view (layout inheritance, a macro per row, filters, loops over 150
rows) is served as requests (start_profile .. end_profile) in three modes, interleaved
request by request in one run (the order rotating), so that a change of the machine's load
falls on every mode alike:

  base       profiled, not sampled;
  nanoprof   sampled every 1 ms by nanoprof's C sampler (sample_current(1));
  pure       sampled every 1 ms by a pure-Python sampling profiler: a thread calling
             sys._current_frames() and walking f_back into a dict of stacks, with the same
             switch interval nanoprof sets (so it too gets the GIL when it asks).

Then the per-request cost of the feature on requests that are NOT sampled, beside the cost
of @profile_handler itself: the same decorated handler timed before the sampler's thread
exists and while it exists (idle), interleaved.  Prints medians, jitter and same-run ratios.

    python bench/python/bench_sampler.py [--rounds 7] [--requests 60] [--renders 4]
                                         [--calls 100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

import jinja2

import nanoprof
from nanoprof import _core

TEMPLATES = {
    "layout.html": """<!doctype html><html><head><title>{% block title %}{% endblock %}</title>
</head><body><nav>{% for link in nav %}<a href="{{ link.url }}">{{ link.name|title }}</a>
{% endfor %}</nav><main>{% block main %}{% endblock %}</main>
<footer>{{ footer|e }}</footer></body></html>""",
    "macros.html": """{% macro row(item, loop) -%}
<tr class="{{ loop.cycle('odd', 'even') }}"><td>{{ item.id }}</td>
<td>{{ item.name|upper }}</td><td>{{ "%.2f"|format(item.price) }}</td>
<td>{{ item.tags|join(", ") }}</td><td>{% if item.stock > 10 %}in stock{% elif item.stock
%}low{% else %}out{% endif %}</td></tr>
{%- endmacro %}""",
    "page.html": """{% extends "layout.html" %}{% from "macros.html" import row %}
{% block title %}{{ title }} ({{ items|length }}){% endblock %}
{% block main %}<h1>{{ title }}</h1><table>{% for item in items %}{{ row(item, loop) }}
{% endfor %}</table><ul>{% for group, members in items|groupby("category") %}
<li>{{ group }}: {{ members|map(attribute="name")|join(" / ")|truncate(80) }}</li>
{% endfor %}</ul><p>{{ items|sum(attribute="price")|round(2) }}</p>{% endblock %}""",
}

ENV = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True)
PAGE = ENV.get_template("page.html")
CONTEXT = {
    "title": "Catalogue",
    "footer": "<c> nanoprof",
    "nav": [{"url": f"/s/{i}", "name": f"section {i}"} for i in range(12)],
    "items": [
        {"id": i, "name": f"item {i}", "price": i * 1.37, "tags": ["a", "b", str(i % 7)],
         "stock": i % 23, "category": f"c{i % 9}"}
        for i in range(150)
    ],
}


def view() -> str:
    return PAGE.render(**CONTEXT)


RENDERS = 4  # pages per request: ~10 ms, so both samplers reach their rate within one


def request(sample: bool) -> None:
    _core.start_profile(method="GET", path="/catalogue")
    if sample:
        _core.sample_current(1)
    for _ in range(RENDERS):
        view()
    _core.end_profile()


class PurePythonSampler(threading.Thread):
    """The same job in Python: while `on` is set, every interval, the target thread's stack
    into a dict of stacks weighted by wall time."""

    def __init__(self, target: int, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.interval_s = interval_s
        self.stacks: dict[tuple[tuple[str, str, int], ...], int] = {}
        self.ticks = 0
        self.on = threading.Event()
        self.done = False

    def run(self) -> None:
        last = time.perf_counter_ns()
        while not self.done:
            if not self.on.is_set():
                self.on.wait()
                last = time.perf_counter_ns()
            time.sleep(self.interval_s)
            if not self.on.is_set():
                continue
            frame = sys._current_frames().get(self.target)
            now = time.perf_counter_ns()
            weight, last = now - last, now
            stack = []
            while frame is not None:
                code = frame.f_code
                stack.append((code.co_filename, code.co_qualname, code.co_firstlineno))
                frame = frame.f_back
            key = tuple(reversed(stack))
            self.stacks[key] = self.stacks.get(key, 0) + weight
            self.ticks += 1


def one(mode: str, pure: PurePythonSampler) -> int:
    """Nanoseconds of one request in `mode`."""
    if mode == "pure":
        saved = sys.getswitchinterval()
        sys.setswitchinterval(0.00025)  # what nanoprof sets while it samples at 1 ms
        pure.on.set()
    t0 = time.perf_counter_ns()
    request(mode == "nanoprof")
    took = time.perf_counter_ns() - t0
    if mode == "pure":
        pure.on.clear()
        sys.setswitchinterval(saved)
    return took


def jitter(xs: list[float]) -> float:
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m * 100 if m else 0.0


def per_call_ns(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - t0) / calls


def handler() -> tuple[str, int, dict[str, str]]:
    return ("ok", 200, {})


def unsampled_cost(rounds: int, calls: int) -> None:
    """@profile_handler's cost, and the feature's on unsampled requests: the decorated call
    before the sampler's thread exists against the same while it exists, idle."""
    decorated = nanoprof.profile_handler(handler)
    for fn in (handler, decorated):
        per_call_ns(fn, calls // 10)

    def rounds_of() -> tuple[list[float], list[float]]:
        bare, deco = [], []
        for _ in range(rounds):
            b = per_call_ns(handler, calls)
            bare.append(b)
            deco.append(per_call_ns(decorated, calls) - b)
        return bare, deco

    bare, before = rounds_of()
    request(True)  # starts the sampler's thread; it then waits, idle
    assert _core.sampler_stats()["thread_running"] and _core.sampler_stats()["active"] == 0
    _, after = rounds_of()
    deco = statistics.median(before)
    feature = statistics.median(after) - deco
    print()
    print("unsampled requests (ns per call, median of "
          f"{rounds} rounds of {calls} calls):")
    print(f"  bare handler                       {statistics.median(bare):8.1f}  "
          f"(jitter {jitter(bare):.1f}%)")
    print(f"  @profile_handler adds, no sampler  {deco:8.1f}  (jitter {jitter(before):.1f}%)")
    print(f"  @profile_handler adds, sampler idle{statistics.median(after):8.1f}  "
          f"(jitter {jitter(after):.1f}%)")
    print(f"  the feature's cost when not sampled: {feature:+.1f} ns "
          f"= {feature / deco * 100:+.2f}% of the decorator's (noise: two flag checks)")


def main() -> None:
    global RENDERS
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--renders", type=int, default=RENDERS, help="pages per request")
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    if args.rounds < 5:
        ap.error("--rounds: at least 5, the medians need them")
    RENDERS = args.renders
    nanoprof.configure(max_history=1000)
    modes = ["base", "nanoprof", "pure"]
    pure = PurePythonSampler(threading.get_ident(), 0.001)
    pure.start()
    for _ in range(max(3, args.requests // 5)):  # warm-up: templates, caches, the thread
        for mode in modes:
            one(mode, pure)
    times: dict[str, list[float]] = {m: [] for m in modes}
    ratio: dict[str, list[float]] = {"nanoprof": [], "pure": []}
    stats0, pure0 = _core.sampler_stats(), pure.ticks
    for _ in range(args.rounds):
        got = dict.fromkeys(modes, 0)
        for i in range(args.requests):
            for k in range(3):
                mode = modes[(i + k) % 3]
                got[mode] += one(mode, pure)
        for mode in modes:
            times[mode].append(got[mode] / 1e9)
        for mode in ratio:
            ratio[mode].append(got[mode] / got["base"] - 1)
    stats1 = _core.sampler_stats()
    pure.done = True
    pure.on.set()
    pure.join()
    ticks = stats1["ticks"] - stats0["ticks"]
    rate = {"base": 0.0, "nanoprof": ticks / sum(times["nanoprof"]),
            "pure": (pure.ticks - pure0) / sum(times["pure"])}
    print(f"Jinja2 template view ({RENDERS} pages a request), {args.requests} requests per "
          f"mode per round, {args.rounds} rounds, interleaved request by request:")
    print(f"  {'mode':<10}{'ms/request':>12}{'jitter':>9}{'samples/s':>11}{'overhead':>10}"
          f"{'rounds':>18}{'us/sample':>11}")
    base_req = statistics.median(times["base"]) / args.requests
    for m in modes:
        per_req = statistics.median(times[m]) / args.requests
        over = "" if m == "base" else f"{statistics.median(ratio[m]) * 100:+.1f}%"
        span = "" if m == "base" else f"{min(ratio[m]) * 100:+.1f}..{max(ratio[m]) * 100:+.1f}%"
        # what one sample costs the request, all told (GIL hand-offs included)
        each = "" if m == "base" else f"{(per_req - base_req) / (rate[m] * per_req) * 1e6:.0f}"
        print(f"  {m:<10}{per_req * 1e3:>12.3f}{jitter(times[m]):>8.1f}%{rate[m]:>11.0f}"
              f"{over:>10}{span:>18}{each:>11}")
    n_over, p_over = statistics.median(ratio["nanoprof"]), statistics.median(ratio["pure"])
    if p_over > 0:
        print(f"  nanoprof's overhead / the pure-Python sampler's, same run: {n_over / p_over:.2f}")
    if ticks:
        mean_us = (stats1["tick_ns_total"] - stats0["tick_ns_total"]) / ticks / 1e3
        print(f"  one nanoprof tick (GIL held: stacks read and merged): {mean_us:.1f} us mean, "
              f"{stats1['tick_ns_max'] / 1e3:.1f} us max")
    unsampled_cost(args.rounds, args.calls)


if __name__ == "__main__":
    main()
