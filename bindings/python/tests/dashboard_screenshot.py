"""The README's picture of the dashboard (docs/dashboard.png): the blog of e2e_app.py under
uvicorn, a minute and a half of traffic at a rate that rises and falls (list pages with
their N+1, article and author pages, searches that are sometimes slow, checkouts that
sometimes fail), then the top of the dashboard in headless Chromium.

    $NPROF_DEPS/venv/bin/python bindings/python/tests/dashboard_screenshot.py docs/dashboard.png

Options: --seconds (of traffic, 90), --height (of the picture in CSS pixels, 1300).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import time
from pathlib import Path

import httpx

from browser import Browser, find_chromium
from support import DASHBOARD, server

MIX = [  # path maker, weight
    (lambda: "/articles", 25),
    (lambda: f"/articles/{random.randint(1, 400)}", 35),
    (lambda: f"/authors/{random.randint(1, 60)}", 15),
    (lambda: "/search", 15),
    (lambda: "/checkout", 10),
]


async def traffic(url: str, seconds: float) -> int:
    """Requests at 15 to 45 a second, a wave with a burst two thirds of the way."""
    paths, weights = zip(*MIX)
    sent = 0
    tasks: set[asyncio.Task[object]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        start = time.monotonic()
        while (t := time.monotonic() - start) < seconds:
            rate = 30 + 12 * math.sin(t / 9) + (25 if 0.62 < t / seconds < 0.7 else 0)
            for _ in range(max(1, round(rate / 10 * random.uniform(0.7, 1.3)))):
                make = random.choices(paths, weights)[0]
                task = asyncio.create_task(client.get(make()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks, return_exceptions=True)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--height", type=int, default=1300)
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("chromium is not installed (scripts/setup.sh installs it)")
    os.environ["NANOPROF_E2E_REFRESH"] = "0"
    with server("asgi", "e2e_app:served") as url:
        sent = asyncio.run(traffic(url, args.seconds))
        time.sleep(1.05 - time.time() % 1.0)  # the last second over
        with Browser(chromium, width=1400, height=args.height) as browser:
            browser.navigate(url + DASHBOARD)
            browser.wait_for("document.querySelectorAll('#flame svg g.f').length > 2")
            browser.pump(0.3)
            shot = browser.screenshot(args.out.resolve(), max_height=args.height)
            errors = browser.console_errors()
    print(f"{sent} requests; screenshot: {shot} ({shot.stat().st_size} bytes)")
    if errors:
        raise SystemExit(f"console errors: {errors}")


if __name__ == "__main__":
    main()
