"""Headless Chromium driven over the DevTools protocol, from the standard library only: the
browser runs with --remote-debugging-pipe, reading commands from its fd 3 and writing
answers and events to its fd 4, each message JSON ended by a NUL byte.

Used by test_e2e_dashboard.py (and by its screenshot mode) to load the dashboard, let its
scripts run, read the DOM, collect console errors and dialogs, and take a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium and one page in it.  Events are kept in `events`; the page's
    console errors, uncaught exceptions and dialogs can be read from there."""

    def __init__(self, executable: str, width: int = 1400, height: int = 1000) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="nprof-chromium-")
        self._stderr = tempfile.TemporaryFile()
        argv = [
            executable,
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            f"--window-size={width},{height}",
        ]
        if os.geteuid() == 0:
            argv.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        argv.append("about:blank")
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def pipes_as_3_and_4() -> None:  # in the child, before exec
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        # Not the sanitizer runtimes the sanitized test run preloads into Python and its
        # children: they are for our library, not for the browser.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        self._proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            preexec_fn=pipes_as_3_and_4,
            pass_fds=(3, 4),
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        try:
            target = self.call("Target.createTarget", url="about:blank", session=False)
            attached = self.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True, session=False
            )
            self.session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def log(self) -> str:
        """What the browser printed (for failure messages)."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def _read(self, timeout_s: float) -> dict[str, Any] | None:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._res_r], [], [], timeout_s)
            if not ready:
                return None
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe:\n{self.log()}")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]

    def call(
        self, method: str, timeout_s: float = 15.0, session: bool = True, **params: Any
    ) -> Any:
        """Sends one command (to the page's session unless `session` is False) and returns
        its result; events that arrive meanwhile go into `events`."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            reply = self._read(max(left, 0)) if left > 0 else None
            if reply is None:
                raise TimeoutError(f"{method}: no answer in {timeout_s} s:\n{self.log()}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._event(reply)

    def _event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event["method"] == "Page.javascriptDialogOpening":
            # Noted (the test fails on it), then dismissed so that the page goes on.
            self._next_id += 1
            os.write(
                self._cmd_w,
                json.dumps(
                    {
                        "id": self._next_id,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False},
                        "sessionId": self.session,
                    }
                ).encode()
                + b"\0",
            )

    def pump(self, seconds: float) -> None:
        """Collects events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            event = self._read(left)
            if event is not None and "method" in event:
                self._event(event)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable), awaited
        when it is a promise."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str, timeout_s: float = 15.0) -> None:
        before = len(self.events)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        while not any(e["method"] == "Page.loadEventFired" for e in self.events[before:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: not loaded in {timeout_s} s")
            self.pump(0.05)

    def wait_for(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout_s} s: {expression}")
            self.pump(0.05)

    def console_errors(self) -> list[str]:
        """Console errors and warnings-as-errors: console.error/assert calls, uncaught
        exceptions, and the browser's own error entries (a Content-Security-Policy
        refusal, a failed load)."""
        errors = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = p["args"]
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in args))
            elif e["method"] == "Runtime.exceptionThrown":
                errors.append(json.dumps(p.get("exceptionDetails"))[:500])
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
        return errors

    def dialogs(self) -> list[str]:
        return [
            e["params"].get("message", "")
            for e in self.events
            if e["method"] == "Page.javascriptDialogOpening"
        ]

    def screenshot(self, path: Path, width: int = 1400, max_height: int = 6000) -> Path:
        """A PNG of the whole page (up to `max_height` CSS pixels) at `path`."""
        metrics = self.call("Page.getLayoutMetrics")
        height = min(int(metrics["cssContentSize"]["height"]) + 1, max_height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = self.call(
            "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                try:
                    self.call("Browser.close", timeout_s=5.0, session=False)
                except Exception:
                    pass
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5)
        finally:
            for fd in (self._cmd_w, self._res_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._stderr.close()
            self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
