"""bench/python/bench_django_n1.py: what nanoprof costs a Django view with an N+1 query
loop, next to django-debug-toolbar, under gunicorn.

Starts its own PostgreSQL (tests/pg_cluster.sh, pinned to CPU 1) with 20 authors and 200
articles, then one gunicorn process per variant of django_n1_app.py (sync worker, one
worker, pinned to CPU 0; Django on psycopg 3, persistent connections), with wrk pinned to
CPU 1.  The view runs 21 queries (20 articles, then `article.author.name` for each) and
returns an HTML page.  Variants, alternating in order round by round:

  bare        no profiler, DEBUG=False
  mw          nanoprof.django.PerformanceMiddleware alone (production-like), DEBUG=False
  nanoprof    the middleware plus nanoprof.db.QueryTimer("django"), DEBUG=False
  bare-debug  no profiler, DEBUG=True
  toolbar     django-debug-toolbar, default configuration, DEBUG=True (it needs it)

bare, mw and nanoprof share DEBUG=False, so nanoprof's ratio is like for like; the toolbar
is shown against both bare (what switching it on costs a production-like setup) and
bare-debug (its own cost at the same DEBUG).  gunicorn's sync worker closes the
connection after each response, so wrk reconnects every request (the same for all).

    python bench/python/bench_django_n1.py [--rounds 7] [--seconds 5] [--connections 8]
                                           [--variants bare,mw,nanoprof,bare-debug,toolbar]
                                           [--callgrind bare,mw,nanoprof]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dbbench  # noqa: E402

ALL_VARIANTS = ("bare", "mw", "nanoprof", "bare-debug", "toolbar")
HOOKED = {"nanoprof"}
PATH = "/articles/"
TARGET = 0.97  # nanoprof keeps at least this share of bare's requests/s


def seed(conninfo: str) -> None:
    import psycopg

    schema = [
        "CREATE TABLE bench_author (id serial PRIMARY KEY, name varchar(100) NOT NULL)",
        "CREATE TABLE bench_article (id serial PRIMARY KEY, title varchar(200) NOT NULL, "
        "author_id integer NOT NULL REFERENCES bench_author (id))",
        "CREATE INDEX ON bench_article (author_id)",
    ]
    with psycopg.connect(conninfo, autocommit=True) as con:
        for stmt in schema:
            con.execute(stmt)
        with con.cursor() as cur:
            cur.executemany("INSERT INTO bench_author (name) VALUES (%s)",
                            [(f"Author {i}",) for i in range(1, 21)])
            cur.executemany("INSERT INTO bench_article (title, author_id) VALUES (%s, %s)",
                            [(f"Article {i}", (i - 1) % 20 + 1) for i in range(1, 201)])
        con.execute("VACUUM ANALYZE")


def start(variant: str, port: int, conninfo: str) -> object:
    env = dbbench.env_with(NANOPROF_BENCH_VARIANT=variant, NANOPROF_BENCH_PG=conninfo)
    cmd = dbbench.pinned([sys.executable, "-m", "gunicorn", "--workers", "1",
                          "--worker-class", "sync", "--bind", f"127.0.0.1:{port}",
                          "--chdir", str(dbbench.HERE), "--log-level", "warning",
                          "--backlog", "256", "django_n1_app:application"], "0")
    return dbbench.start_server(variant, cmd, env, port, PATH)


def check(variant: str, port: int) -> None:
    """The page lists 20 articles; nanoprof records the 21 queries (and flags the N+1), the
    middleware alone records none, the toolbar is in the page."""
    status, headers, body = dbbench.fetch(port, f"{PATH}?profile=1&profile_token=bench-token")
    text = body.decode()
    n = text.count(" by Author ")
    if status != 200 or n != 20 or "</body>" not in text:
        raise SystemExit(f"{variant}: status {status}, {n} articles")
    count = headers.get("x-query-count")
    want = {"nanoprof": "21", "mw": "0"}.get(variant)
    if count != want:
        raise SystemExit(f"{variant}: X-Query-Count {count!r}, expected {want!r} ({headers})")
    if variant == "toolbar" and "djDebug" not in text:
        raise SystemExit("toolbar: django-debug-toolbar is not in the page (DEBUG, "
                         "INTERNAL_IPS, or its middleware?)")
    if variant in ("bare", "bare-debug", "mw") and "djDebug" in text:
        raise SystemExit(f"{variant}: the toolbar is in the page")
    if variant == "nanoprof":
        print(f"nanoprof: {count} queries recorded per request; X-Profile: "
              f"{headers.get('x-profile')}", file=sys.stderr)


# ---- in-process instruction counts (callgrind) -------------------------------------------------


def child(variant: str, n: int) -> None:
    """n requests to the view through Django's WSGI handler, in-process (no server): what
    callgrind counts.  The database is the parent's (NANOPROF_BENCH_PG)."""
    os.environ["NANOPROF_BENCH_VARIANT"] = variant
    import django_n1_app

    app = django_n1_app.application
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": PATH, "QUERY_STRING": "",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "wsgi.version": (1, 0),
               "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
               "wsgi.multiprocess": False, "wsgi.run_once": False}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        assert status.startswith("200"), status

    for _ in range(n):
        body = app({**environ, "wsgi.input": io.BytesIO(b"")}, start_response)
        for _chunk in body:
            pass
        body.close()


def instructions(variant: str, conninfo: str, n1: int, n2: int) -> float:
    def run(n: int) -> int:
        return dbbench.callgrind_instructions(
            [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(n)],
            env=dbbench.env_with(NANOPROF_BENCH_PG=conninfo))

    return dbbench.per_iteration(run, n1, n2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--variants", default=",".join(ALL_VARIANTS))
    ap.add_argument("--callgrind", default="",
                    help="also count instructions per request in-process for these variants "
                         "(comma-separated, e.g. bare,mw,nanoprof; slow: about a minute each)")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    dbbench.need_wrk()
    variants, failed = dbbench.choose_variants(args.variants, ALL_VARIANTS, HOOKED)

    res: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    ratios = {v: [] for v in variants if v != "bare"}
    debug_ratio: list[float] = []  # toolbar / bare-debug
    with dbbench.pg_cluster("1") as conninfo:
        seed(conninfo)
        ports = {v: dbbench.free_port() for v in variants}
        procs = []
        try:
            for v in variants:
                procs.append(start(v, ports[v], conninfo))
                check(v, ports[v])
            for v in variants:  # warm-up
                dbbench.wrk(ports[v], PATH, 2, args.connections, "1")
            for r in range(args.rounds):
                order = variants if r % 2 == 0 else tuple(reversed(variants))
                this = {v: dbbench.wrk(ports[v], PATH, args.seconds, args.connections, "1")
                        for v in order}
                for v in variants:
                    res[v].append(this[v])
                for v in ratios:
                    ratios[v].append(this[v][0] / this["bare"][0])
                if "toolbar" in this and "bare-debug" in this:
                    debug_ratio.append(this["toolbar"][0] / this["bare-debug"][0])
                print(f"round {r + 1}: " + ", ".join(f"{v} {this[v][0]:.0f}" for v in variants)
                      + " req/s", flush=True)
        finally:
            dbbench.stop_servers(procs)  # type: ignore[arg-type]
        ins = {v: instructions(v, conninfo, 5, 25)
               for v in args.callgrind.split(",") if v and v not in failed}

    print(f"\n{args.rounds} rounds of {args.seconds} s per variant, GET {PATH} (21 queries), "
          f"wrk -c{args.connections}; {dbbench.machine_line()}")
    print(f"{'variant':11} {'DEBUG':>5} {'req/s (median)':>15} {'jitter':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'vs bare, same round':>24}")
    for v in variants:
        rps = [x[0] for x in res[v]]
        line = (f"{v:11} {str(v in ('bare-debug', 'toolbar')):>5} {dbbench.med(rps):15.0f} "
                f"{dbbench.jitter(rps):6.1f}% {dbbench.med([x[1] for x in res[v]]):7.2f} "
                f"{dbbench.med([x[2] for x in res[v]]):7.2f}")
        if v in ratios:
            line += f"   {dbbench.ratio_text(ratios[v]):>21}"
        print(line)
    if debug_ratio:
        print(f"toolbar vs bare-debug (both DEBUG=True), same round: "
              f"{dbbench.ratio_text(debug_ratio)}")
    if ins:
        base = ins.get("bare")
        print("callgrind, instructions per request in-process (Django's WSGI handler, no "
              "server): " + ", ".join(
                  f"{v} {x:.0f}" + (f" ({100 * (x / base - 1):+.1f}% vs bare)"
                                    if base and v != "bare" else "") for v, x in ins.items()))
    for v, why in failed.items():
        print(f"{v}: not run: {why}")

    parts = []
    for v in ("nanoprof", "mw", "toolbar"):
        if v in ratios:
            keep = dbbench.med(ratios[v])
            verdict = (f" (target >= {TARGET:.0%}: {'met' if keep >= TARGET else 'NOT met'})"
                       if v == "nanoprof" else "")
            parts.append(f"{v} {keep:.1%} of bare{verdict}")
    if debug_ratio:
        parts.append(f"toolbar {dbbench.med(debug_ratio):.1%} of bare-debug")
    print(f"\nrequests/s kept (medians of {args.rounds} same-round ratios): " + "; ".join(parts))
    if failed:
        print("FAILED variants: " + "; ".join(f"{v}: {w}" for v, w in failed.items()))
        raise SystemExit(2)


if __name__ == "__main__":
    main()
