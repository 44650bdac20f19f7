"""bench/python/instructions_asgi.py: one request through the bench's Starlette app, in-process
(no server, no socket), N times: run under callgrind at two N to get instructions per request,
which machine load does not change.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/python/instructions_asgi.py {bare|nanoprof|pure} N
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

os.environ["NANOPROF_BENCH_VARIANT"] = sys.argv[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asgi_app  # noqa: E402

SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/items/7", "raw_path": b"/items/7", "query_string": b"",
         "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*")],
         "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}


async def main(n: int) -> None:
    app = asgi_app.app

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    for _ in range(n):
        await app(dict(SCOPE), receive, send)


asyncio.run(main(int(sys.argv[2])))
