"""A throwaway Prometheus server (Debian's `prometheus`) for the end-to-end tests: its own
configuration, its storage in a temporary folder and a free port on 127.0.0.1, so that it
neither needs nor meets a system Prometheus service.  Queried through the HTTP API with the
standard library only.

Skips where the binary is missing, except in CI (CI=true), where that is a failure:
scripts/setup.sh installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import free_port, stop

# What the sanitized test run preloads into everything it starts; a Go binary has no use
# for it (and the ASan runtime has no business in it).
_NOT_INHERITED = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")


@dataclass(frozen=True)
class Prometheus:
    url: str  # http://127.0.0.1:<port>
    log: Path  # the server's output, for failure messages

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of `promql` now: [{"metric": {...}, "value": [ts, "v"]}]."""
        qs = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        assert doc["data"]["resultType"] == "vector", doc
        return list(doc["data"]["result"])

    def by_instance(self, promql: str) -> dict[str, float]:
        """The value of each series of `promql`, keyed by its `instance` label."""
        return {r["metric"]["instance"]: float(r["value"][1]) for r in self.query(promql)}

    def scalar(self, promql: str) -> float:
        """The value of `promql`, which must give exactly one series."""
        result = self.query(promql)
        assert len(result) == 1, (promql, result)
        return float(result[0]["value"][1])

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error (for messages)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as r:
            return list(json.load(r)["data"]["activeTargets"])


def binary() -> str:
    """The prometheus binary; skips the test where it is missing, outside CI only."""
    found = shutil.which("prometheus")
    if found:
        return found
    message = "no prometheus binary (apt-get install prometheus; scripts/setup.sh does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def prometheus(
    targets: Sequence[str],
    metrics_path: str,
    params: Mapping[str, str],
    interval_s: int = 1,
    timeout_s: float = 60.0,
) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` ("host:port") at `metrics_path` with the query
    parameters `params`, every `interval_s`; stopped and its folder removed on exit."""
    exe = binary()
    folder = Path(tempfile.mkdtemp(prefix="nprof-prom-"))
    config = {
        "global": {"scrape_interval": f"{interval_s}s", "scrape_timeout": f"{interval_s}s"},
        "scrape_configs": [
            {
                "job_name": "nanoprof",
                "metrics_path": metrics_path,
                "params": {k: [v] for k, v in params.items()},
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    # JSON is YAML: no YAML library needed.
    (folder / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    argv = [
        exe,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    server = Prometheus(f"http://127.0.0.1:{port}", folder / "prometheus.log")
    try:
        with server.log.open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_ready(proc, server, timeout_s)
            yield server
        finally:
            stop(proc, timeout_s=15)  # it flushes its storage head first
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[bytes], server: Prometheus, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited with {proc.returncode}:\n{server.log.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"prometheus not ready after {timeout_s} s:\n{server.log.read_text(errors='replace')}"
    )
