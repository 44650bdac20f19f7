"""bench/python/native.py: where a server's CPU time goes natively, per shared object and per
function, from `perf record` (a cpu-clock sample every 1/HZ s of the process's CPU time)
while wrk drives it: bench_asgi_db.py --native.

Callgrind counts instructions and simulates caches; it prices a line fetched from L2 at
14 cycles.  On this kind of VM a line that other requests pushed out costs much more: one
function that read two cold fields (nprof_profile_wants_params, two loads) took 0.5 us of
a /db request natively, 79 % of its samples on one load.  The samples are the measure of
that cost, statistical (a few hundred samples a function a run: compare medians of several
rounds, not one), and disturbed a little by the sampling itself.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import dbbench

# Samples per second of CPU time: 5 kHz adds a few percent to a request; 20 kHz with call
# stacks slowed the server by a quarter.
HZ = 5000

Profile = dict[tuple[str, str], float]  # (shared object, function) -> us per request


def need_perf() -> None:
    """Exits with what to do when perf cannot sample a process here."""
    if not shutil.which("perf"):
        raise SystemExit("--native needs perf (Debian: apt-get install -y linux-perf)")
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o",
                            str(Path(d) / "probe.data"), "true"],
                           capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("--native: perf cannot sample here (as root, or lower "
                         f"/proc/sys/kernel/perf_event_paranoid): {r.stderr.strip()[-300:]}")


def sample(pid: int, port: int, path: str, seconds: float, connections: int, out: Path,
           cpu: str | None = "1") -> int:
    """Samples process `pid` while wrk drives `path` for `seconds`; returns the requests
    served (wrk's count), whose samples are in `out`."""
    rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(HZ), "-p",
                            str(pid), "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        requests = dbbench.wrk_counted(port, path, seconds, connections, cpu)[3]
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(60)
    # perf ends by raising the SIGINT it caught, once its data is written
    if rec.returncode not in (0, -signal.SIGINT) or not out.exists():
        raise SystemExit(f"perf record on pid {pid} failed (exit {rec.returncode})")
    return requests


def per_request(data: Path, requests: int) -> Profile:
    """The samples of `data` as microseconds of CPU per request, per function."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "-g", "none",
                          "--sort", "dso,sym", "-q", "--stdio", "-n"],
                         capture_output=True, text=True, check=True).stdout
    got: Profile = collections.defaultdict(float)
    for line in out.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[.\]\s+(.*?)\s*$", line)
        if m:
            got[m.group(2), m.group(3)] += int(m.group(1)) / HZ / requests * 1e6
    return dict(got)


def short(dso: str) -> str:
    """libpython3.11.so.1.0, _core, floor_core: the name without the ABI tag and hash."""
    return re.sub(r"(-[0-9a-f]{12})?\.cpython-.*$", "", dso)


def by_object(p: Profile) -> dict[str, float]:
    """us per request per shared object (short names)."""
    out: dict[str, float] = collections.defaultdict(float)
    for (dso, _), us in p.items():
        out[short(dso)] += us
    return dict(out)


def _row(values: Sequence[float]) -> str:
    return f"{dbbench.med(values):8.2f} {dbbench.spread(values):5.2f}"


def print_native(rounds: dict[str, list[Profile]], top: int) -> None:
    """Per variant (in the order of `rounds`): CPU per request in all and per shared object;
    then each variant against the one before it, round by round (the same minutes of the
    machine), for the `top` functions whose median difference is largest."""
    variants = list(rounds)
    n = len(rounds[variants[0]])
    print(f"\nperf cpu-clock at {HZ} Hz, {n} rounds, fresh servers each round; us of server "
          "CPU per request: median, and spread (max - min over the rounds)")
    objs = {v: [by_object(p) for p in rounds[v]] for v in variants}
    # the largest first, in whichever variant it is largest (a floor's own module too)
    objects = sorted({o for ps in objs.values() for p in ps for o in p},
                     key=lambda o: -max(dbbench.med([p.get(o, 0.0) for p in objs[v]])
                                        for v in variants))
    print(f"{'':34}" + "".join(f"{v[:14]:>14}      " for v in variants))
    print(f"{'all':34}" + "".join(_row([sum(p.values()) for p in rounds[v]]) + "      "
                                  for v in variants))
    for obj in objects[:12]:
        print(f"{obj[:34]:34}" + "".join(_row([p.get(obj, 0.0) for p in objs[v]]) + "      "
                                         for v in variants))
    for base, v in zip(variants, variants[1:]):
        pairs = list(zip(rounds[base], rounds[v]))
        total = [sum(b.values()) - sum(a.values()) for a, b in pairs]
        print(f"\n{v} against {base}, per request, round by round: {dbbench.med(total):+.2f} us "
              f"(spread {dbbench.spread(total):.2f}); the {top} functions that differ most "
              "(median difference, spread, then each side's median):")
        keys = {k for a, b in pairs for k in (*a, *b)}
        diffs = {k: [b.get(k, 0.0) - a.get(k, 0.0) for a, b in pairs] for k in keys}
        for k in sorted(keys, key=lambda k: -abs(dbbench.med(diffs[k])))[:top]:
            print(f"  {dbbench.med(diffs[k]):+7.2f} {dbbench.spread(diffs[k]):5.2f}   "
                  f"{dbbench.med([a.get(k, 0.0) for a, _ in pairs]):6.2f} -> "
                  f"{dbbench.med([b.get(k, 0.0) for _, b in pairs]):6.2f}   "
                  f"{k[1][:56]} ({short(k[0])[:24]})")
