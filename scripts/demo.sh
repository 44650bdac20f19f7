#!/usr/bin/env bash
# scripts/demo.sh: the main job, from a fresh clone on Debian 12 (as root): builds nanoprof
# and runs the example that profiles simulated requests, printing their X-Profile headers,
# the JSON of the slowest one, the flame graph and the runtime's introspection.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$NPROF_ROOT"
nprof_cmake_build build/demo -DCMAKE_BUILD_TYPE=Release -DNPROF_BUILD_TESTS=OFF -DNPROF_BUILD_BENCH=OFF >/dev/null
exec build/demo/simulated_requests
