#!/usr/bin/env bash
# scripts/test.sh: the whole test suite, from a fresh clone on Debian 12 (as root).
#   1. the normal build with -Wall -Wextra -Werror, its tests through ctest
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build, its tests through ctest
#   3. a ThreadSanitizer build, its tests through ctest
#   4. the libFuzzer targets (clang, ASan+UBSan), each run for 60 s
#   5. zig build test: the same sources and tests built by build.zig
#   6. the Python package: its wheel built by scikit-build-core and installed into the
#      project's venv (scripts/python.sh), its tests through pytest; then the same tests with
#      the extension and libnanoprof built under ASan+UBSan
# Build directories go under build/ (git ignores it).  Exits non-zero on the first failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$NPROF_ROOT"

run_ctest() {
    local dir=$1
    echo "== ctest in $dir"
    (cd "$dir" && ctest --output-on-failure -j "$(nproc)" --timeout 600)
}

echo "== build: -Wall -Wextra -Werror"
nprof_cmake_build build/ci-werror -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNPROF_WERROR=ON
run_ctest build/ci-werror

echo "== build: AddressSanitizer + UndefinedBehaviorSanitizer"
nprof_cmake_build build/ci-asan -DCMAKE_BUILD_TYPE=Debug -DNPROF_WERROR=ON \
    -DNPROF_SANITIZE=address,undefined -DNPROF_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build/ci-asan

echo "== build: ThreadSanitizer"
nprof_cmake_build build/ci-tsan -DCMAKE_BUILD_TYPE=Debug -DNPROF_WERROR=ON \
    -DNPROF_SANITIZE=thread -DNPROF_BUILD_BENCH=OFF
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest build/ci-tsan

echo "== build: libFuzzer targets (clang) under ASan+UBSan, each run for a bounded time"
CC=clang CXX=clang++ nprof_cmake_build build/ci-fuzz -DCMAKE_BUILD_TYPE=Debug \
    -DNPROF_SANITIZE=address,undefined -DNPROF_FUZZ=ON -DNPROF_FUZZ_SECONDS=60 -DNPROF_BUILD_BENCH=OFF
(cd build/ci-fuzz && ctest --output-on-failure -R '^fuzz_')

echo "== zig build test"
zig=$(nprof_zig)
"$zig" build test --cache-dir build/zig-cache --global-cache-dir "$NPROF_DEPS/zig-global-cache" \
    -p build/zig-out --summary failures
echo "zig build test: all tests passed"

echo "== Python: the wheel of bindings/python into the venv, its tests through pytest"
source "$NPROF_ROOT/scripts/python.sh"
py=$(nprof_venv)
echo "built and installed $(nprof_python_wheel "$py")"
(cd "$NPROF_ROOT/bindings/python" && NANOPROF_EXPECT_PGO=1 "$py" -m pytest -q -p no:cacheprovider tests)

echo "== Python: the same tests with the extension and libnanoprof under ASan+UBSan"
nprof_python_sanitized_tests "$py"
