#!/usr/bin/env python3
"""bench/normalize_regex.py: the Python anchor of bench_normalize.

A SQL normalizer of the kind people write in Python: a handful of precompiled regular
expressions applied with re.sub, one after the other -- comments removed, string literals
and numbers replaced by ?, IN lists of placeholders collapsed to IN (?), runs of whitespace
collapsed to one space, and the keywords of a small list upper-cased.  (It has the usual
flaws of the approach: a keyword inside a quoted identifier is upper-cased too, and a string
containing "--" or "/*" confuses it; it is here for its cost, not its accuracy.)

Usage: normalize_regex.py CORPUS PASSES [--print]
    CORPUS  a file of queries, each followed by one NUL byte (bench_normalize writes it
            from bench/normalize_corpus.h, the one copy of the corpus)
    PASSES  how many times to normalize the whole corpus in the timed loop
    --print print each query's normalized text (for a look at the output) instead of timing

Prints one line: "<ns per query> ns/query (<queries> queries x <passes> passes, <ns> ns)".
The time is the timed loop only (time.perf_counter_ns around it), after one untimed pass:
interpreter start-up, imports and reading the file are not in it.
"""
import re
import sys
import time

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LINE_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w\"$.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.I)
_ARRAY_LIST = re.compile(r"\bARRAY\s*\[\s*\?(?:\s*,\s*\?)*\s*\]", re.I)
_WHITESPACE = re.compile(r"\s+")
_KEYWORDS = re.compile(
    r"\b(select|from|where|and|or|not|in|is|null|as|on|join|inner|left|right|outer|cross"
    r"|insert|into|values|update|set|delete|returning|order|group|by|having|limit|offset"
    r"|distinct|asc|desc|like|ilike|between|case|when|then|else|end|exists|any|array"
    r"|for|union|all|conflict|do|nothing|true|false|count|sum|coalesce|lower|interval)\b",
    re.I,
)


def _upper(match):
    return match.group(0).upper()


def normalize(sql):
    sql = _BLOCK_COMMENT.sub(" ", sql)
    sql = _LINE_COMMENT.sub(" ", sql)
    sql = _STRING.sub("?", sql)
    sql = _NUMBER.sub("?", sql)
    sql = _IN_LIST.sub("IN (?)", sql)
    sql = _ARRAY_LIST.sub("ARRAY[?]", sql)
    sql = _WHITESPACE.sub(" ", sql)
    sql = _KEYWORDS.sub(_upper, sql)
    return sql.strip()


def read_corpus(path):
    with open(path, "rb") as f:
        data = f.read()
    # Each query ends with a NUL; the text is UTF-8 (undecodable bytes kept as surrogates).
    return [q.decode("utf-8", "surrogateescape") for q in data.split(b"\0")[:-1]]


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: normalize_regex.py CORPUS PASSES [--print]\n")
        return 2
    queries = read_corpus(argv[1])
    passes = max(1, int(argv[2]))
    if not queries:
        sys.stderr.write("normalize_regex.py: empty corpus\n")
        return 1
    if "--print" in argv[3:]:
        for q in queries:
            print(normalize(q))
        return 0
    for q in queries:  # one untimed pass
        normalize(q)
    sink = 0
    t0 = time.perf_counter_ns()
    for _ in range(passes):
        for q in queries:
            sink += len(normalize(q))
    t1 = time.perf_counter_ns()
    n = passes * len(queries)
    print("%.3f ns/query (%d queries x %d passes, %d ns, sink %d)"
          % ((t1 - t0) / n, len(queries), passes, t1 - t0, sink))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
