#!/usr/bin/env bash
# scripts/demo.sh: the main job, from a fresh clone on Debian 12 (as root).  Installs what it
# needs (scripts/setup.sh: Debian packages, PostgreSQL among them; scripts/python.sh: the
# project's venv), builds the Python package into that venv when its sources changed, then
# runs examples/demo/demo.py: a throwaway PostgreSQL (or NANOPROF_DSN), a seeded blog schema,
# a FastAPI + SQLAlchemy app under uvicorn on 127.0.0.1 with nanoprof mounted, traffic, and
# what nanoprof saw: headers, the N+1 and its line, the slow-query table, per-route
# percentiles, a flame graph and the dashboard's URL.  Stops everything it started.
#
#   bash scripts/demo.sh           # the report, then exit (about 10 s after the first install)
#   bash scripts/demo.sh --serve   # the report, then keep the app up for a browser (Ctrl-C)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
source "$NPROF_ROOT/scripts/python.sh"
cd "$NPROF_ROOT"

py=$(nprof_venv)

# The package is rebuilt only when a file it is built from changed since the last install
# into this venv: the build itself is incremental (build/python/), but pip's round trip is
# not free, and the demo should start at once on the second run.
want=$(find runtime sqlhooks middleware include preload dashboards cmake \
    bindings/python/ext bindings/python/src CMakeLists.txt sources.txt \
    bindings/python/CMakeLists.txt bindings/python/pyproject.toml \
    -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
# The stamp also names the installed extension and its time: a wheel installed since by
# something else (scripts/test.sh of another checkout sharing the venv) does not match.
installed() {
    "$py" -c 'import os, nanoprof._core as c; print(c.__file__, os.stat(c.__file__).st_mtime_ns)' \
        2>/dev/null || true
}
stamp="$("$py" -c 'import sys; print(sys.prefix)')/.nanoprof-src"
if [[ $(cat "$stamp" 2>/dev/null) != "$want $(installed)" ]]; then
    echo "demo: building nanoprof into $(dirname "$(dirname "$py")")" >&2
    nprof_python_wheel "$py" >/dev/null
    echo "$want $(installed)" >"$stamp"
fi

exec "$py" examples/demo/demo.py "$@"
