#!/usr/bin/env bash
# scripts/python.sh: the project's Python virtual environment.  Sourced after scripts/setup.sh.
#
# The venv is made from the machine's `python3` (pyenv's on these machines; never Debian's
# /usr/bin/python3, whose packages must not mix with ours) in $NPROF_DEPS/venv, and gets the
# libraries of bindings/python/requirements-dev.txt at the versions of the one constraints
# file, bindings/python/constraints.txt, from PyPI.  It is made again when either file changes.
set -euo pipefail

NPROF_PY_DIR="$NPROF_ROOT/bindings/python"
NPROF_VENV=${NPROF_VENV:-$NPROF_DEPS/venv}

nprof_venv() {
    local py stamp want
    py=$(command -v python3 || true)
    if [[ -z $py || $(readlink -f "$py") == /usr/bin/python3* ]]; then
        # pyenv's shims are on PATH on these machines; Debian's interpreter is not to be used.
        py=$(ls -d /root/.pyenv/versions/3.*/bin/python3 2>/dev/null | sort -V | tail -1 || true)
    fi
    if [[ -z $py ]] || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "python: a python3 of version 3.10 or newer is needed (pyenv's, not Debian's)" >&2
        return 1
    fi
    want=$(cat "$NPROF_PY_DIR/constraints.txt" "$NPROF_PY_DIR/requirements-dev.txt" | sha256sum | cut -c1-16)
    stamp="$NPROF_VENV/.nanoprof-deps"
    if [[ ! -x $NPROF_VENV/bin/python || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
        echo "python: making the venv $NPROF_VENV from $py" >&2
        rm -rf "$NPROF_VENV"
        "$py" -m venv "$NPROF_VENV"
        "$NPROF_VENV/bin/python" -m pip install -q --disable-pip-version-check \
            -r "$NPROF_PY_DIR/requirements-dev.txt" -c "$NPROF_PY_DIR/constraints.txt" >&2
        echo "$want" >"$stamp"
    fi
    echo "$NPROF_VENV/bin/python"
}

# Builds the wheel of bindings/python into build/wheel and installs it into the venv.
nprof_python_wheel() {
    local py=$1 wheel
    rm -rf "$NPROF_ROOT/build/wheel"
    "$py" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
        -w "$NPROF_ROOT/build/wheel" "$NPROF_PY_DIR" >&2
    wheel=$(ls "$NPROF_ROOT"/build/wheel/nanoprof-*.whl)
    "$py" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel" >&2
    echo "$wheel"
}

# The package's tests again with the extension and libnanoprof built under AddressSanitizer
# and UndefinedBehaviorSanitizer (build/py-asan): the package is assembled in
# build/py-asan/pkg and put first on PYTHONPATH; the sanitizer runtimes are preloaded into
# the interpreter, which does not link them itself, and PYTHONMALLOC=malloc lets ASan see
# the Python objects the extension allocates and frees.  The two preload tests are left out:
# their own LD_PRELOAD of the libpq shim cannot come after the sanitizers'.
nprof_python_sanitized_tests() {
    local py=$1 dir="$NPROF_ROOT/build/py-asan" pkg
    cmake -S "$NPROF_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNPROF_WERROR=ON \
        -DNPROF_PYTHON=ON -DNPROF_BUILD_TESTS=OFF -DNPROF_BUILD_BENCH=OFF \
        -DNPROF_SANITIZE=address,undefined -DPython_EXECUTABLE="$py" >/dev/null
    cmake --build "$dir" -j "$(nproc)" >/dev/null
    pkg="$dir/pkg"
    rm -rf "$pkg" && mkdir -p "$pkg"
    cp -r "$NPROF_PY_DIR/src/nanoprof" "$pkg/"
    cp "$dir"/bindings/python/_core*.so "$dir/libnanoprof.so.0" "$dir/libnanoprof_pq.so" "$pkg/nanoprof/"
    # An editable install's import hook comes before PYTHONPATH: the run would then test the
    # release module and say nothing of the sanitized one.
    (cd "$NPROF_PY_DIR" &&
        export PYTHONPATH="$pkg" PYTHONMALLOC=malloc \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
            ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 &&
        "$py" -c 'import sys, nanoprof._core as c
if not c.__file__.startswith(sys.argv[1]):
    sys.exit(f"the sanitized run would import {c.__file__}, not the build in {sys.argv[1]}: "
             "an editable install of nanoprof is in this venv (pip uninstall nanoprof)")' "$pkg/" &&
        "$py" -m pytest -q -p no:cacheprovider tests --deselect tests/test_preload.py \
            --deselect tests/test_db_preload.py)
}
