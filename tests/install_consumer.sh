#!/usr/bin/env bash
# tests/install_consumer.sh: nanoprof as an outsider uses it.
#
#   install_consumer.sh <cmake-binary> <build-dir> <source-dir>
#
# Installs the build into a temporary prefix, then builds and runs a small consumer program:
#   - with pkg-config (shared library, and the static archive with --static),
#   - with a CMake project that does find_package(nanoprof) and links nanoprof::shared and
#     nanoprof::static.
# Each consumer profiles one request and prints its X-Profile header, which must start with
# "total=".  The C example of README.md is built and run the same way, with pkg-config.  Prints "N passed, N failed" last; exits non-zero on any failure.
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 <cmake-binary> <build-dir> <source-dir>" >&2
    exit 2
fi
CMAKE=$1
BUILD=$(cd "$2" && pwd)
SOURCE=$(cd "$3" && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nanoprof-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix

passed=0
failed=0

# The build's compiler and sanitizers: an instrumented library needs an instrumented consumer.
cache_value() {
    sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt" | head -n 1
}
CC_BIN=$(cache_value CMAKE_C_COMPILER)
CC_BIN=${CC_BIN:-cc}
SANITIZE=$(cache_value NPROF_SANITIZE)
SAN_FLAGS=""
if [ -n "$SANITIZE" ]; then
    SAN_FLAGS="-fsanitize=$SANITIZE -fno-omit-frame-pointer"
fi
GENERATOR=()
if command -v ninja >/dev/null 2>&1; then
    GENERATOR=(-G Ninja)
fi

# Runs one check (a function) in a subshell with errexit in force, its output in a log.
check() {
    local name=$1
    shift
    local log="$TMP/$name.log"
    "$@" >"$log" 2>&1 &
    if wait $!; then
        passed=$((passed + 1))
        echo "ok   $name"
        grep '^X-Profile: ' "$log" | sed 's/^/     /' || true
    else
        failed=$((failed + 1))
        echo "FAIL $name" >&2
        sed 's/^/     | /' "$log" >&2
    fi
}

summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# ---- the consumer program ---------------------------------------------------------------
mkdir -p "$TMP/consumer"
cat >"$TMP/consumer/consumer.c" <<'EOF'
#include <stdio.h>
#include <string.h>

#include <nanoprof/nanoprof.h>

int main(void)
{
    if (nprof_version_number() != NPROF_VERSION_NUMBER) {
        fprintf(stderr, "library %s, headers %s\n", nprof_version_string(), NPROF_VERSION_STRING);
        return 1;
    }
    nprof_runtime *rt = NULL;
    int rc = nprof_runtime_create(NULL, &rt);
    if (rc) {
        fprintf(stderr, "nprof_runtime_create: %s: %s\n", nprof_errname(rc), nprof_last_error_detail());
        return 1;
    }
    nprof_profile *p = NULL;
    if (nprof_request_begin(rt, "GET", 3, "/consumer", 9, 0, &p) != NPROF_OK)
        return 1;
    nprof_phase_begin(p, NPROF_PHASE_HANDLER);
    nprof_query q = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 2500};
    nprof_query_record(p, &q);
    uint64_t start = nprof_now_ns();
    while (nprof_elapsed_ns(start) < 10000) {
    }
    nprof_phase_end(p, NPROF_PHASE_HANDLER);
    nprof_request_end(p, 200);
    char header[NPROF_HEADER_MAX];
    if (nprof_profile_render_header(p, header, sizeof header, NULL) != NPROF_OK)
        return 1;
    printf("X-Profile: %s\n", header);
    int ok = strncmp(header, "total=", 6) == 0 && strstr(header, "(1q)") != NULL;
    nprof_request_submit(p);
    nprof_runtime_destroy(rt);
    return ok ? 0 : 1;
}
EOF

# The consumer's output must be one X-Profile header starting with total=.
expect_header() {
    local out
    out=$("$@")
    echo "$out"
    case "$out" in
    "X-Profile: total="*) ;;
    *) echo "unexpected output from $*" >&2; return 1 ;;
    esac
}

# 1 when the ELF file $1 has a NEEDED entry matching $2.
needs() {
    readelf -d "$1" | grep '(NEEDED)' | grep -q "$2"
}

# ---- install ----------------------------------------------------------------------------
if ! "$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1; then
    echo "FAIL install" >&2
    sed 's/^/     | /' "$TMP/install.log" >&2
    failed=$((failed + 1))
    summary
    exit 1
fi
PC_FILE=$(find "$PREFIX" -name nanoprof.pc -print -quit)
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libnanoprof.so' -print -quit)")
CMAKE_CONFIG=$(find "$PREFIX" -name nanoprofConfig.cmake -print -quit)
echo "     installed into $PREFIX (libdir ${LIBDIR#"$PREFIX"/})"

check_installed_files() {
    test -n "$PC_FILE" && test -n "$CMAKE_CONFIG" && test -d "$LIBDIR"
    echo "pkg-config file: ${PC_FILE#"$PREFIX"/}; CMake package: ${CMAKE_CONFIG#"$PREFIX"/}"
    # Every public header, identical to the source tree's.
    diff -r "$SOURCE/include/nanoprof" "$PREFIX/include/nanoprof"
    # The shared library with its SONAME link, and the archive.
    test -f "$LIBDIR/libnanoprof.a"
    test -L "$LIBDIR/libnanoprof.so"
    local soname
    soname=$(readelf -d "$LIBDIR/libnanoprof.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    echo "SONAME: $soname"
    test -n "$soname" && test -e "$LIBDIR/$soname"
    # Loadable anywhere: no jemalloc dependency in the installed library either.
    if needs "$LIBDIR/libnanoprof.so" jemalloc; then
        echo "the installed libnanoprof.so has a NEEDED entry for jemalloc" >&2
        return 1
    fi
}
check installed_files check_installed_files

# ---- pkg-config ---------------------------------------------------------------------------
PKG_CONFIG_PATH=$(dirname "${PC_FILE:-$PREFIX/lib/pkgconfig/nanoprof.pc}")
export PKG_CONFIG_PATH
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

# MAJOR.MINOR.PATCH from a common.h's NPROF_VERSION_* lines.
header_version() {
    local part version=
    for part in MAJOR MINOR PATCH; do
        version=$version${version:+.}$(sed -n "s/^#define NPROF_VERSION_$part \([0-9]*\)\$/\1/p" "$1")
    done
    echo "$version"
}

check_pkg_config_points_into_prefix() {
    local version includedir libdir
    version=$(pkg-config --modversion nanoprof)
    includedir=$(pkg-config --variable=includedir nanoprof)
    libdir=$(pkg-config --variable=libdir nanoprof)
    echo "version=$version includedir=$includedir libdir=$libdir"
    # The version's one home is common.h: the installed one must carry it, and the .pc agree.
    test "$version" = "$(header_version "$PREFIX/include/nanoprof/common.h")"
    # An install relocated with --prefix must describe where it is, not the configured prefix.
    if [ "$(realpath -m "$includedir")" != "$(realpath -m "$PREFIX/include")" ] ||
        [ "$(realpath -m "$libdir")" != "$(realpath -m "$LIBDIR")" ]; then
        echo "nanoprof.pc describes $includedir and $libdir, not the install prefix $PREFIX" >&2
        return 1
    fi
}
check pkg_config_points_into_prefix check_pkg_config_points_into_prefix

check_pkg_config_shared() {
    local cflags libs
    cflags=$(pkg-config --cflags nanoprof)
    libs=$(pkg-config --libs nanoprof)
    echo "cflags: $cflags"
    echo "libs: $libs"
    # shellcheck disable=SC2086 # word splitting of the flags is intended
    "$CC_BIN" $SAN_FLAGS -std=c11 -Wall -Wextra -Werror $cflags "$TMP/consumer/consumer.c" \
        -o "$TMP/consumer/pc_shared" $libs
    needs "$TMP/consumer/pc_shared" libnanoprof.so
    LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        expect_header "$TMP/consumer/pc_shared"
}
check pkg_config_shared check_pkg_config_shared

check_pkg_config_static() {
    local cflags libs
    cflags=$(pkg-config --cflags nanoprof)
    # The archive by name, and what Libs.private / Requires.private say it needs.
    libs=$(pkg-config --static --libs nanoprof | sed 's/-lnanoprof\b/-l:libnanoprof.a/')
    echo "libs: $libs"
    # shellcheck disable=SC2086
    "$CC_BIN" $SAN_FLAGS -std=c11 -Wall -Wextra -Werror $cflags "$TMP/consumer/consumer.c" \
        -o "$TMP/consumer/pc_static" $libs
    if needs "$TMP/consumer/pc_static" libnanoprof; then
        echo "linked against the shared library, not the archive" >&2
        return 1
    fi
    expect_header "$TMP/consumer/pc_static"
}
check pkg_config_static check_pkg_config_static

# ---- the README's C example ----------------------------------------------------------------
# The block under "## In ten lines of C", as it stands in README.md, built the way its first
# line says.  Its X-Profile must count the query and show it inside the request: sql <= total.

# A duration as the header prints it ("45ns", "12.5us", "0.2ms", "1.50s") in ns.
duration_ns() {
    awk -v d="$1" 'BEGIN {
        v = d + 0; u = d; sub(/^[0-9.]+/, "", u)
        printf "%.0f\n", v * (u == "ns" ? 1 : u == "us" ? 1e3 : u == "ms" ? 1e6 : 1e9) }'
}

check_readme_example() {
    awk '/^## In ten lines of C/ { f = 1; next } f && /^```c/ { g = 1; next } g && /^```/ { exit } g' \
        "$SOURCE/README.md" >"$TMP/consumer/app.c"
    grep -q 'int main' "$TMP/consumer/app.c"
    # shellcheck disable=SC2046 # word splitting of the flags is intended
    "$CC_BIN" $SAN_FLAGS -std=c11 -Wall -Wextra -Werror "$TMP/consumer/app.c" -o "$TMP/consumer/app" \
        $(pkg-config --cflags --libs nanoprof)
    local out total sql
    out=$(LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$TMP/consumer/app")
    echo "X-Profile: $out"
    total=$(duration_ns "$(echo "$out" | sed -n 's/.*total=\([0-9.]*[a-z]*\).*/\1/p')")
    sql=$(echo "$out" | sed -n 's/.*sql=\([0-9.]*[a-z]*\)(1q).*/\1/p')
    test -n "$sql"
    sql=$(duration_ns "$sql")
    echo "total ${total} ns, sql ${sql} ns"
    # at least the 150 us the example waits, less what showing one decimal of ms may take off
    test "$sql" -ge 100000 && test "$sql" -le "$total"
}
check readme_example check_readme_example

# ---- CMake find_package ------------------------------------------------------------------
cat >"$TMP/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(nanoprof_consumer LANGUAGES C)
find_package(nanoprof 0.1 REQUIRED)
message(STATUS "found nanoprof ${nanoprof_VERSION} in ${nanoprof_DIR}")
foreach(target IN ITEMS nanoprof::shared nanoprof::static)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "find_package(nanoprof) did not define ${target}")
  endif()
endforeach()
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared PRIVATE nanoprof::shared)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE nanoprof::static)
EOF

check_cmake_build() {
    env -u PKG_CONFIG_PATH "$CMAKE" -S "$TMP/consumer" -B "$TMP/consumer/build" "${GENERATOR[@]}" \
        -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_COMPILER="$CC_BIN" \
        -DCMAKE_C_FLAGS="$SAN_FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$SAN_FLAGS" \
        -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
    # Found in the temporary prefix, not somewhere else on the system.
    grep -q "^nanoprof_DIR:PATH=$PREFIX/" "$TMP/consumer/build/CMakeCache.txt"
    "$CMAKE" --build "$TMP/consumer/build"
}
check cmake_find_package_builds check_cmake_build

check_cmake_shared() {
    local exe="$TMP/consumer/build/consumer_shared"
    test -x "$exe"
    needs "$exe" libnanoprof.so
    # CMake's build RPATH finds the installed library; no LD_LIBRARY_PATH needed.
    env -u LD_LIBRARY_PATH bash -c "$(declare -f expect_header); expect_header '$exe'"
}
check cmake_nanoprof_shared_runs check_cmake_shared

check_cmake_static() {
    local exe="$TMP/consumer/build/consumer_static"
    test -x "$exe"
    if needs "$exe" libnanoprof; then
        echo "nanoprof::static linked the shared library" >&2
        return 1
    fi
    env -u LD_LIBRARY_PATH bash -c "$(declare -f expect_header); expect_header '$exe'"
}
check cmake_nanoprof_static_runs check_cmake_static

summary
