/*
 * tests/fuzz_normalize.c: libFuzzer target for the SQL normalizer.  For any bytes, in both
 * styles: the text fits in NPROF_SQL_NORMALIZED_MAX(size) bytes, holds no NUL or newline,
 * normalizes to itself, and its fingerprint equals the original's and the XXH3 of the QMARK
 * text.  Any violation aborts, so the fuzzer reports it with the input.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. tests/fuzz_normalize.c \
 *         sqlhooks/normalize.c runtime/text.c runtime/error.c -lxxhash -o fuzz_normalize
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nanoprof/sql.h"

static void fail(const char *what, const uint8_t *data, size_t size, const char *a, size_t al,
                 const char *b, size_t bl)
{
    fprintf(stderr, "fuzz_normalize: %s\ninput (%zu bytes): %.*s\nfirst:  %.*s\nsecond: %.*s\n",
            what, size, (int)size, (const char *)data, (int)al, a, (int)bl, b);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    size_t cap = NPROF_SQL_NORMALIZED_MAX(size);
    char *once = malloc(cap), *twice = malloc(cap), *qmark = malloc(cap);
    if (!once || !twice || !qmark)
        abort();
    uint64_t fp = nprof_sql_fingerprint(sql, size);
    if (fp == 0)
        fail("fingerprint 0", data, size, "", 0, "", 0);
    for (int style = NPROF_SQL_QMARK; style <= NPROF_SQL_DOLLAR; style++) {
        size_t n1 = 0, n2 = 0, nq = 0;
        if (nprof_sql_normalize(sql, size, style, once, cap, &n1) != 0)
            fail("NPROF_SQL_NORMALIZED_MAX too small", data, size, once, strlen(once), "", 0);
        if (memchr(once, '\n', n1) || strlen(once) != n1)
            fail("newline or NUL in output", data, size, once, n1, "", 0);
        /* The output is shorter than the macro's bound for its own length, so `cap` fits. */
        if (nprof_sql_normalize(once, n1, style, twice, cap, &n2) != 0)
            fail("renormalizing failed", data, size, once, n1, "", 0);
        if (n1 != n2 || memcmp(once, twice, n1) != 0)
            fail("not idempotent", data, size, once, n1, twice, n2);
        if (nprof_sql_fingerprint(once, n1) != fp)
            fail("fingerprint of the normalized text differs", data, size, once, n1, "", 0);
        if (style == NPROF_SQL_QMARK) {
            uint64_t h = XXH3_64bits(once, n1);
            if ((h ? h : 1) != fp)
                fail("fingerprint is not XXH3 of the QMARK text", data, size, once, n1, "", 0);
        } else {
            /* DOLLAR text read back in QMARK style gives the QMARK text. */
            if (nprof_sql_normalize(once, n1, NPROF_SQL_QMARK, qmark, cap, &nq) != 0)
                fail("QMARK of DOLLAR failed", data, size, once, n1, "", 0);
            size_t nq0 = 0;
            nprof_sql_normalize(sql, size, NPROF_SQL_QMARK, twice, cap, &nq0);
            if (nq != nq0 || memcmp(qmark, twice, nq) != 0)
                fail("QMARK(DOLLAR(x)) != QMARK(x)", data, size, qmark, nq, twice, nq0);
        }
    }
    free(once);
    free(twice);
    free(qmark);
    return 0;
}
