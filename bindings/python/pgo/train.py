"""bindings/python/pgo/train.py: the workload that profile-guided optimization trains on.

With NPROF_PGO=ON (the wheel's build, pyproject.toml), CMake first builds libnanoprof and
the extension instrumented (-fprofile-generate), in a build of its own, then runs this
script on that build, then compiles the real ones with the counts it left (-fprofile-use).
The compiler then lays out what runs on every request as one straight run of hot code and
moves the rest (errors, first-time setup, what only a kept profile does) out of its way.
Under a server that code runs cold, fetched again line by line at every request, so fewer
lines is what makes it cheaper (bindings/python/CMakeLists.txt has the figures).

So the workload is what runs per request in an application, and nothing else: ASGI and
WSGI requests through PerformanceMiddleware in production mode (and some in development
mode, and some with ?profile=1), the Starlette phase hooks, queries through the C wrappers
of the database hooks (an asyncpg-like driver and a DB-API cursor, both answering at
once), repeated queries, a query with new literals each time, an N+1 loop, a
failing query.  The dashboard, the exports and the slow-query log are left out on purpose:
what the training never runs the compiler optimizes as usual (-fprofile-partial-training),
where code run a few times among thousands of requests would be optimized for size.

It uses the standard library only, as the build may have nothing else.  Run by CMake as
`python -I -S train.py <build dir> <package sources>`: isolated from site-packages, where an
installed or editable nanoprof could be imported instead of the instrumented build.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import sys
from typing import Any

# ASGI requests (and a third as many WSGI ones): past the 10,000 after which production mode
# has filled the store (1 kept in 10) and recycles profiles, as a server does for good.
REQUESTS = 15000


def assemble(build: str, sources: str) -> str:
    """The package as it is installed, in <build>/pgo-package: the Python sources beside the
    instrumented extension and library (whose rpath, $ORIGIN, finds the library there)."""
    root = os.path.join(build, "pgo-package")
    shutil.rmtree(root, ignore_errors=True)
    package = os.path.join(root, "nanoprof")
    shutil.copytree(sources, package, ignore=shutil.ignore_patterns("__pycache__"))
    built = glob.glob(os.path.join(build, "bindings", "python", "_core*.so"))
    library = os.path.join(build, "libnanoprof.so.0")
    if len(built) != 1 or not os.path.exists(library):
        raise SystemExit(f"pgo/train.py: no instrumented _core and libnanoprof.so.0 in {build}")
    for path in (built[0], library):
        shutil.copy2(path, package)
    return root


# ---- an ASGI application shaped like Starlette's (router, route, handler) ----------------

SQL = "SELECT id, name, price FROM items WHERE id = $1"
OTHER = "SELECT count(*) FROM orders WHERE item_id = $1 AND state = $2"


class Connection:
    """A driver connection whose query methods answer at once; its methods get the same C
    wrappers as asyncpg.Connection's (nanoprof/db/_asyncpg.py)."""

    async def fetchrow(self, query: str, *args: Any) -> tuple[int, str, float]:
        if "no_such_table" in query:
            raise LookupError('relation "no_such_table" does not exist')
        return (1, "widget", 12.5)

    async def execute(self, query: str, *args: Any) -> str:
        return "UPDATE 1"


class Route:
    path = "/items/{item_id}"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.n = 0

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.n += 1
        for k in range(5):  # the same text five times: the repeat path
            await self.conn.fetchrow(SQL, self.n + k)
        await self.conn.fetchrow(OTHER, self.n, "open")
        if self.n % 4 == 0:  # new literals each time: the shape of a text not seen before
            await self.conn.fetchrow(f"SELECT * FROM items WHERE id = {self.n} AND name = 'x{self.n}'")
        if self.n % 10 == 0:  # an N+1 loop
            for k in range(8):
                await self.conn.fetchrow("SELECT name FROM authors WHERE id = $1", k)
        if self.n % 50 == 0:
            try:
                await self.conn.fetchrow("SELECT * FROM no_such_table")
            except LookupError:
                pass
        await self.conn.execute("UPDATE items SET seen = seen + 1 WHERE id = $1", self.n)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"id": 1, "name": "widget"}'})


class Router:
    def __init__(self, route: Route) -> None:
        self.route = route

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.route.handle(scope, receive, send)


def asgi_scope(path: str, query: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"),
                        (b"accept", b"*/*"), (b"accept-encoding", b"gzip")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


async def asgi_requests(nanoprof: Any, live: Any) -> dict[str, Any]:
    from nanoprof import _core
    from nanoprof.db import _base

    # The hooks' own wrappers, as nanoprof/db/_asyncpg.py puts them on asyncpg.Connection.
    _base.patch(Connection, {name: (lambda f: _base.async_execute(f, live, "*"))
                             for name in ("fetchrow", "execute")})
    Router.__call__ = _core.PhaseHook(Router.__call__, _core.PHASE_ROUTING)  # type: ignore[method-assign]
    Route.handle = _core.PhaseHook(Route.handle, _core.PHASE_HANDLER, route=True)  # type: ignore[method-assign]
    router = Router(Route(Connection()))

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await router(scope, receive, send)  # as Starlette's app calls its router

    production = nanoprof.PerformanceMiddleware(application, production=True, token="train-token")
    development = nanoprof.PerformanceMiddleware(application, production=False)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for i in range(REQUESTS):
        app, query = production, b""
        if i % 10 == 3:
            app = development
        elif i % 100 == 7:
            query = b"profile=1&profile_token=train-token"
        await app(asgi_scope(f"/items/{i}", query), receive, send)
    return production._mw.totals()


# ---- a WSGI application over a DB-API cursor -----------------------------------------------

class Cursor:
    """A DB-API cursor (psycopg's, sqlite3's) whose execute answers at once; it gets the same
    C wrapper as the hooks put on psycopg's cursors."""

    def execute(self, query: str, params: Any = None) -> Cursor:
        return self

    def fetchone(self) -> tuple[str, float]:
        return ("widget", 12.5)


def wsgi_requests(nanoprof: Any, live: Any) -> dict[str, Any]:
    from nanoprof.db import _base

    _base.patch(Cursor, {"execute": lambda f: _base.sync_execute(f, live, "params")})
    cur = Cursor()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        n = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
        for k in range(3):
            cur.execute("SELECT name, price FROM items WHERE id = %s", (n + k,)).fetchone()
        cur.execute("SELECT count(*) FROM items WHERE price > %(p)s", {"p": n % 50}).fetchone()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = nanoprof.PerformanceMiddleware(app, production=True, token="train-token")
    for i in range(REQUESTS // 3):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/items/{i}", "QUERY_STRING": "",
                   "SERVER_NAME": "localhost", "SERVER_PORT": "8000", "wsgi.url_scheme": "http",
                   "HTTP_HOST": "localhost:8000", "HTTP_ACCEPT": "*/*"}
        body = wrapped(environ, lambda status, headers, exc_info=None: None)
        b"".join(body)
        close = getattr(body, "close", None)
        if close:
            close()
    return wrapped._mw.totals()


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -I -S train.py <instrumented build dir> <package sources>")
    sys.path.insert(0, assemble(sys.argv[1], sys.argv[2]))
    import nanoprof

    where = os.path.dirname(nanoprof._core.__file__)
    if not where.startswith(os.path.join(sys.argv[1], "pgo-package")):
        raise SystemExit(f"pgo/train.py: imported nanoprof from {where}, not the instrumented build")
    from nanoprof.db import _base

    live = _base.Live(nanoprof._core.QueryRecorder())  # what QueryTimer.install() hands its hooks
    done = [asyncio.run(asgi_requests(nanoprof, live)), wsgi_requests(nanoprof, live)]
    # A hook that stopped recording would train the compiler on the wrong path.
    if any(not t["requests"] or t["queries"] < 3 * t["requests"] for t in done):
        raise SystemExit(f"pgo/train.py: the requests did not record their queries: {done}")
    print("pgo/train.py: trained on " + ", ".join(
        f"{t['requests']} {kind} requests with {t['queries']} queries"
        for kind, t in zip(("ASGI", "WSGI"), done)))


if __name__ == "__main__":
    main()
