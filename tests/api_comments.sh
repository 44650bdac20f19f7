#!/bin/sh
# tests/api_comments.sh: every declaration of the public API has its comment.
#
# The headers in include/nanoprof/ are the API's documentation (README.md, Conventions), so a
# function, inline function, type, enum or macro that a user can name must say what it does.
# This script reads each public header and fails, naming file, line and declaration, when
#   - a function (NPROF_API or static inline), a typedef or an enum at the top level of the
#     header does not have a comment ending on the line immediately above it;
#   - a macro (#define NPROF_... or nprof_...) has neither a comment on its own line nor one
#     ending immediately above the run of preprocessor lines (#define, #if, #elif, #else,
#     #endif, continuation lines) it belongs to, so that a documented group of #defines
#     (the version numbers, the deprecated aliases) needs one comment.
# Internal names (nprof__*, NPROF__*) and the include guards are not API and are skipped.
# ctest and zig build test run it.
#
# Usage: tests/api_comments.sh [SOURCE_DIR]   (by default the folder above this script)
set -eu

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

status=0
checked=0
for header in include/nanoprof/*.h; do
    out=$(awk -v file="$header" '
        function ends_comment(s) { return s ~ /\*\/[ \t]*$/ || s ~ /^[ \t]*\/\// }
        {
            line = $0
            is_pp = (line ~ /^[ \t]*#/) || prev_cont
            if (is_pp && !prev_pp)          # first line of a preprocessor run
                run_doc = ends_comment(prev)
            kind = ""
            if (line ~ /^NPROF_API[ \t]/ || line ~ /^static inline[ \t]/) kind = "function"
            else if (line ~ /^typedef[ \t]/) kind = "type"
            else if (line ~ /^enum[ \t]+nprof_/) kind = "enum"
            else if (line ~ /^#[ \t]*define[ \t]+(NPROF_|nprof_)/) kind = "macro"
            name = ""
            if (kind == "macro") { name = line; sub(/^#[ \t]*define[ \t]+/, "", name); sub(/[^A-Za-z0-9_].*$/, "", name) }
            else if (kind == "type" && match(line, /\(\*[A-Za-z0-9_]+\)/)) name = substr(line, RSTART + 2, RLENGTH - 3)
            else if (kind != "") {
                name = line
                if (kind == "function") sub(/\(.*$/, "", name); else sub(/[;{].*$/, "", name)
                sub(/[ \t]+$/, "", name); sub(/^.*[ \t*]/, "", name)
            }
            if (kind != "" && name !~ /^(nprof__|NPROF__)/) {
                documented = (kind == "macro") ? (line ~ /\/\*/ || run_doc) : ends_comment(prev)
                if (!documented) {
                    printf "%s:%d: %s %s has no comment immediately above it\n", file, NR, kind, name
                    bad++
                }
                n++
            }
            prev_pp = is_pp
            prev_cont = is_pp && line ~ /\\$/
            prev = line
        }
        END { printf "#checked %d\n", n; exit bad > 0 }' "$header") && rc=0 || rc=$?
    checked=$((checked + $(printf '%s\n' "$out" | sed -n 's/^#checked //p')))
    printf '%s\n' "$out" | grep -v '^#checked' >&2 || true
    [ "$rc" -eq 0 ] || status=1
done

if [ "$status" -ne 0 ]; then
    echo "api_comments: public declarations above have no comment (see README.md, Conventions)" >&2
    exit 1
fi
echo "api_comments: $checked public declarations, each with its comment"
