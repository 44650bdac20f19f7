/*
 * tests/fuzz_normalize.c: libFuzzer target for the SQL normalizer.  For any bytes, in both
 * styles: the text fits in NPROF_SQL_NORMALIZED_MAX(size) bytes, holds no NUL or newline,
 * normalizes to itself, and its fingerprint equals the original's and the XXH3 of the QMARK
 * text.  And for the shape cache: when the text's literal key is trusted (a variant of it has
 * its shape), queries of that key with other literals have that shape too.  And for
 * nprof_sql_param_columns(): spans inside the text, in order, the same whatever the room.  Any
 * violation aborts, so the fuzzer reports it with the input.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. tests/fuzz_normalize.c \
 *         sqlhooks/normalize.c sqlhooks/param_columns.c runtime/text.c runtime/error.c \
 *         -lxxhash -o fuzz_normalize
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "literal_variants.h"
#include "nanoprof/sql.h"

static void fail(const char *what, const uint8_t *data, size_t size, const char *a, size_t al,
                 const char *b, size_t bl)
{
    fprintf(stderr, "fuzz_normalize: %s\ninput (%zu bytes): %.*s\nfirst:  %.*s\nsecond: %.*s\n",
            what, size, (int)size, (const char *)data, (int)al, a, (int)bl, b);
    abort();
}

/* The shape cache's promise (sqlhooks/shape_cache.c), for this input. */
static void check_literal_key(const uint8_t *data, size_t size, const char *shape, size_t n)
{
    const char *sql = (const char *)data;
    size_t kn, vn, on, kn2, sn;
    char *key = malloc(size + 1), *key2 = malloc(8 * size + 64), *other = malloc(8 * size + 64);
    size_t cap = NPROF_SQL_NORMALIZED_MAX(8 * size + 64);
    char *got = malloc(cap);
    if (!key || !key2 || !other || !got)
        abort();
    if (nprof__sql_literal_text(sql, size, 0, key, size + 1, &kn) &&
        nprof__sql_literal_text(sql, size, 1, other, 8 * size + 64, &vn) &&
        nprof_sql_normalize(other, vn, NPROF_SQL_QMARK, got, cap, &sn) == 0 && sn == n &&
        memcmp(got, shape, n) == 0) {
        uint64_t seed = XXH3_64bits(data, size);
        for (int round = 0; round < 4; round++) {
            on = lv_fill(key, kn, seed + (uint64_t)round, other, 8 * size + 64);
            if (!on || !nprof__sql_literal_text(other, on, 0, key2, 8 * size + 64, &kn2) ||
                kn2 != kn || memcmp(key, key2, kn) != 0)
                continue;
            if (nprof_sql_normalize(other, on, NPROF_SQL_QMARK, got, cap, &sn) != 0 || sn != n ||
                memcmp(got, shape, n) != 0)
                fail("a query of a trusted literal key has another shape", data, size, shape, n,
                     other, on);
        }
    }
    free(key);
    free(key2);
    free(other);
    free(got);
}

/* nprof_sql_param_columns(): every span inside the text, the values in increasing order and
 * apart from their columns, and the count the same with room for all or for few. */
static void check_param_columns(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    size_t n = 0, few = 0;
    nprof_sql_param_column small[2];
    int rc = nprof_sql_param_columns(sql, size, small, 2, &few);
    if (rc != (few > 2 ? NPROF_ERANGE : NPROF_OK))
        fail("param_columns: result and count disagree", data, size, "", 0, "", 0);
    nprof_sql_param_column *items = malloc((few ? few : 1) * sizeof *items);
    if (!items)
        abort();
    if (nprof_sql_param_columns(sql, size, items, few, &n) != NPROF_OK || n != few)
        fail("param_columns: another count with room for all", data, size, "", 0, "", 0);
    for (size_t i = 0; i < n; i++) {
        const nprof_sql_param_column *c = &items[i];
        if (c->param_length == 0 || c->param_offset + c->param_length > size ||
            c->offset + c->length > size ||
            (i && c->param_offset < items[i - 1].param_offset + items[i - 1].param_length) ||
            (c->length && c->offset < c->param_offset + c->param_length &&
             c->param_offset < c->offset + c->length) ||
            (i < 2 && memcmp(c, &small[i], sizeof *c) != 0))
            fail("param_columns: a bad span", data, size, sql + c->param_offset,
                 c->param_offset + c->param_length > size ? 0 : c->param_length, "", 0);
    }
    free(items);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_param_columns(data, size);
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
            check_literal_key(data, size, once, n1);
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
