#!/bin/sh
# tests/layering.sh: the layers' rule, checked on every #include of the library's sources.
#
# nanoprof is built in layers, runtime/ <- sqlhooks/ <- middleware/ <- users (bindings/, the
# tools/ program, the preload/ shim), and each uses only the layers below it.  This script
# resolves each #include of each .c/.h/.cpp file in those folders and in include/nanoprof/,
# the way the builds do (the including file's folder, then include/, then the root), and fails
# naming the file, the include and the rule it breaks.  Every edge is checked, public headers
# included, so no chain of includes can reach upward either.  ctest and zig build test run it.
#
# Usage: tests/layering.sh [SOURCE_DIR]   (by default the folder above this script)
set -eu

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# The layer of each public header.  A new header in include/nanoprof/ must be added here: the
# check fails until it is.  "users" is the umbrella header, which includes every layer's API
# and so is for programs outside the library only.
public_layer() {
    case $1 in
    common.h | clock.h | config.h | runtime.h | profile.h | store.h) echo runtime ;;
    sql.h | redact.h | querystats.h | slowlog.h | pq.h) echo sqlhooks ;;
    middleware.h) echo middleware ;;
    nanoprof.h) echo users ;;
    *) echo none ;;
    esac
}

# The layer of a file of the tree, or "none" for files this check does not cover (tests/,
# bench/, examples/ may include anything).
layer_of() {
    case $1 in
    runtime/*) echo runtime ;;
    sqlhooks/*) echo sqlhooks ;;
    middleware/*) echo middleware ;;
    tools/* | preload/* | bindings/*) echo users ;;
    include/nanoprof/*) public_layer "${1#include/nanoprof/}" ;;
    *) echo none ;;
    esac
}

rank() {
    case $1 in
    runtime) echo 1 ;; sqlhooks) echo 2 ;; middleware) echo 3 ;; users) echo 4 ;;
    esac
}

# Where an #include of `name` in `file` lands, relative to the root; empty when not in the tree.
resolve() {
    if [ "$3" = 1 ]; then set -- "$(dirname "$1")/$2" "include/$2" "$2"; else set -- "include/$2" "$2"; fi
    for candidate in "$@"; do
        if [ -f "$candidate" ]; then
            realpath --relative-to=. "$candidate"
            return
        fi
    done
}

failures=0
fail() {
    echo "layering: $*" >&2
    failures=$((failures + 1))
}

files=$(find runtime sqlhooks middleware include/nanoprof tools preload bindings \
    -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) 2>/dev/null | sort)
checked=0
for file in $files; do
    from=$(layer_of "$file")
    if [ "$from" = none ]; then
        fail "$file: a public header with no layer: give it one in public_layer() in tests/layering.sh"
        continue
    fi
    checked=$((checked + 1))
    # "line:quote name" for each #include line.
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$file" |
        sed 's/^\([0-9]*\):[^<"]*\([<"]\)\([^>"]*\)[>"].*/\1 \2 \3/' >"${TMPDIR:-/tmp}/layering.$$" || true
    while read -r line quote name; do
        quoted=0 inc="<$name>"
        [ "$quote" = '"' ] && quoted=1 inc="\"$name\""
        target=$(resolve "$file" "$name" "$quoted")
        if [ -z "$target" ]; then
            # <...> that is not ours is a system header; the library's "..." must be found in
            # the tree (outside it, a binding may include a header its build generates).
            [ "$quoted" = 1 ] && [ "$from" != users ] && fail "$file:$line: #include $inc is not found in the tree" \
                "(rule: the library's quoted includes name its own files)"
            continue
        fi
        to=$(layer_of "$target")
        case $file:$target in
        include/nanoprof/*:include/nanoprof/*) ;;
        include/nanoprof/*:*)
            fail "$file:$line: #include $inc is $target, not a public header" \
                "(rule: a public header includes only public headers, it is installed alone)"
            continue ;;
        esac
        # Outside the library: the public API, and the files of its own folder (bindings/...).
        if [ "$from" = users ] && [ "${target#include/nanoprof/}" = "$target" ] &&
            [ "${target%%/*}" != "${file%%/*}" ]; then
            fail "$file:$line: #include $inc is $target, a private file" \
                "(rule: ${file%%/*}/ is outside the library and uses only the public API in include/nanoprof/)"
            continue
        fi
        [ "$to" = none ] && {
            fail "$file:$line: #include $inc is $target, outside the library's layers" \
                "(rule: the library includes only its own layers' headers)"
            continue
        }
        if [ "$(rank "$to")" -gt "$(rank "$from")" ]; then
            fail "$file:$line: #include $inc is $target, of the $to layer above" \
                "(rule: the $from layer uses only itself and the layers below it:" \
                "runtime <- sqlhooks <- middleware <- users)"
        fi
    done <"${TMPDIR:-/tmp}/layering.$$"
done
rm -f "${TMPDIR:-/tmp}/layering.$$"

if [ "$failures" -gt 0 ]; then
    echo "layering: $failures include(s) break the layers' rule (see README.md, Architecture)" >&2
    exit 1
fi
echo "layering: $checked files, every #include within its layer or below"
