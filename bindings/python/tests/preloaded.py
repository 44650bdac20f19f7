"""What the LD_PRELOAD tests (test_preload.py, test_db_preload.py) share: running a small
WSGI app in a new interpreter, since LD_PRELOAD acts only at process start, and sending it
one request for its JSON profile through nanoprof's middleware."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import nanoprof

# Python source run before a test's app code in the subprocess.  `profiled_request(app)`
# sends GET /report?profile=json through PerformanceMiddleware and returns the status lines
# given to start_response and the body, closed after it was read, as a WSGI server does.
REQUEST = r'''
import json, sys, wsgiref.util
import nanoprof

def profiled_request(app):
    wrapped = nanoprof.PerformanceMiddleware(app, n_plus_one_threshold=5)
    environ = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/report"
    environ["QUERY_STRING"] = "profile=json"
    status = []
    body = wrapped(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        return status, b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
'''


def run_app(app_code: str, *args: str, preload: bool = True) -> Any:
    """Runs REQUEST then `app_code` in a new interpreter, `args` being its sys.argv[1:], with
    libnanoprof_pq.so preloaded (or not), and returns the JSON of its last output line."""
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = nanoprof.pq_preload_path()
    r = subprocess.run([sys.executable, "-c", REQUEST + app_code, *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])
