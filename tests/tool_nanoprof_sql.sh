#!/bin/sh
# tests/tool_nanoprof_sql.sh: the nanoprof-sql command line, as a user runs it.
# ctest runs it as: tool_nanoprof_sql.sh <path of nanoprof-sql>
set -u
tool=$1
passed=0
failed=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        passed=$((passed + 1))
        echo "ok   $1"
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3" >&2
    fi
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nanoprof-sql.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One line per query: fingerprint, tab, normalized text; equal shapes share a fingerprint.
printf '%s\n' "SELECT * FROM users WHERE id = 7" "select *  from users where id=8 -- again" \
    "SELECT * FROM users WHERE name = 'x'" > "$tmp/in"
"$tool" "$tmp/in" > "$tmp/out"
check "exit status 0" 0 $?
check "one line per query" 3 "$(wc -l < "$tmp/out" | tr -d ' ')"
check "normalized text" "SELECT * FROM users WHERE id = ?" "$(sed -n 1p "$tmp/out" | cut -f2)"
check "same shape, same fingerprint" "$(sed -n 1p "$tmp/out" | cut -f1)" "$(sed -n 2p "$tmp/out" | cut -f1)"
check "other shape, other fingerprint" 2 "$(cut -f1 "$tmp/out" | sort -u | wc -l | tr -d ' ')"
check "16 hex digits" 1 "$(sed -n 1p "$tmp/out" | cut -f1 | grep -c '^[0-9a-f]\{16\}$')"

# Standard input and '-' read the same; --dollar changes the text, not the fingerprint.
check "stdin equals file" "$(cat "$tmp/out")" "$("$tool" < "$tmp/in")"
check "dash is stdin" "$(cat "$tmp/out")" "$("$tool" - < "$tmp/in")"
check "--dollar text" "SELECT * FROM users WHERE id = \$1" "$(sed -n 1p "$tmp/in" | "$tool" --dollar | cut -f2)"
check "--dollar keeps the fingerprint" "$(sed -n 1p "$tmp/out" | cut -f1)" \
    "$(sed -n 1p "$tmp/in" | "$tool" --dollar | cut -f1)"

# -0: NUL-separated queries may span lines; the output never does.
printf 'SELECT 1\nFROM t\0SELECT 2 FROM t' | "$tool" -0 > "$tmp/out0"
check "-0 records" 2 "$(wc -l < "$tmp/out0" | tr -d ' ')"
check "-0 multi-line query" "SELECT ? FROM t" "$(sed -n 1p "$tmp/out0" | cut -f2)"

# Bad input: a NUL inside a line, invalid UTF-8, an unterminated string all give one line.
printf "SELECT 'a\0b' FROM t\nSELECT '\377\n" | "$tool" > "$tmp/bad"
check "hostile lines give one line each" 2 "$(wc -l < "$tmp/bad" | tr -d ' ')"

# A column named like a keyword keeps its case where it is a name; the keyword stays a keyword.
check "keyword-named columns keep their case" "INSERT INTO logs (msg, at, level) VALUES (?, now(), ?)" \
    "$(echo "insert into logs (msg, at, level) values ('x', now(), 3)" | "$tool" | cut -f2)"
check "after a dot and next to an operator" "UPDATE logs SET level = ? WHERE logs.key = ?" \
    "$(echo "update logs set level = 4 where logs.key = 'k'" | "$tool" | cut -f2)"
check "a keyword where SQL uses it as one" "SELECT now() AT TIME ZONE ?" \
    "$(echo "select now() at time zone 'UTC'" | "$tool" | cut -f2)"

# Usage errors exit 2, unreadable files 1, and --help explains.
"$tool" --bogus > /dev/null 2>&1
check "unknown option exits 2" 2 $?
"$tool" "$tmp/does-not-exist" > /dev/null 2>&1
check "missing file exits 1" 1 $?
check "--help explains" 1 "$("$tool" --help | grep -c 'pt-fingerprint')"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
