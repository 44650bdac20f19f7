/*
 * tests/test_shape_cache.c: the runtime's shape cache (sqlhooks/shape_cache.c) and the
 * literal keys it is built on (nprof__sql_literal_text): what a key keeps and leaves out,
 * that every query of a trusted key has the shape the key was checked with (the corpus of
 * tests/sql/pgss_corpus.sql and variants of it with awkward literals), that recording through
 * the cache gives exactly what normalizing gives, ORDER BY ordinals, four
 * threads sharing the cache, and the cache switched off.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "literal_variants.h"
#include "nprof_test.h"
#include "test.h"

/* ---- literal keys ----------------------------------------------------------------------- */

static int key_of(const char *sql, size_t len, char *out, size_t cap, size_t *n)
{
    return nprof__sql_literal_text(sql, len, 0, out, cap, n);
}

TEST(keys_replace_each_literal_by_its_class_and_keep_the_rest)
{
    static const struct {
        const char *in, *key; /* key NULL: the text has none */
    } cases[] = {
        {"SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = \2"},
        {"SELECT * FROM t WHERE x = 4.5 AND y = 1e3 AND z = 0x1F", "SELECT * FROM t WHERE x = \3 AND y = \3 AND z = \3"},
        {"UPDATE t SET a = 'it''s', b = -7", "UPDATE t SET a = \1, b = -\2"},
        {"SELECT \"t1\".\"c2\" FROM \"t1\" WHERE \"it's\" = '1'", "SELECT \"t1\".\"c2\" FROM \"t1\" WHERE \"it's\" = \1"},
        {"SELECT \"a\"\"b\" FROM t WHERE x IN (1, 2, 3)", "SELECT \"a\"\"b\" FROM t WHERE x IN (\2, \2, \2)"},
        {"SELECT a1, b$2 FROM t WHERE c = $1 AND d = ?2 AND e = ?", "SELECT a1, b$2 FROM t WHERE c = $1 AND d = ?2 AND e = ?"},
        {"SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = :p1", "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = :p1"},
        {"SELECT `x-1` FROM t WHERE y = DATE '2024-01-01'", "SELECT `x-1` FROM t WHERE y = DATE \1"},
        {"SELECT '1'::int, x::varchar(20)", "SELECT \1::int, x::varchar(\2)"},
        {"SELECT a - 1, b / 2", "SELECT a - \2, b / \2"},
        {"", ""},
        {"SELECT 1 -- a comment", NULL},
        {"/* c */ SELECT 1", NULL},
        {"SELECT $$1$$", NULL},
        {"SELECT $tag$x$tag$", NULL},
        {"SELECT E'a\\'b'", NULL},
        {"SELECT N'a', B'1', X'ff'", NULL},
        {"SELECT 'unterminated", NULL},
        {"SELECT \"unterminated", NULL},
        {"SELECT 'ends in a doubled quote''", NULL},
        {"SELECT 1abc", NULL},
        {"SELECT x.5", NULL},
        {"SELECT 1..2", NULL},
        {"SELECT \001 1", NULL},
        {"SELECT $2$$x$$", NULL},       /* a dollar quote right after a placeholder */
        {"SELECT ?1$$x$$", NULL},
        {"SELECT a$b$$ FROM t WHERE c = 1", "SELECT a$b$$ FROM t WHERE c = \2"},
    };
    char key[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        int ok = key_of(cases[i].in, strlen(cases[i].in), key, sizeof key, &n);
        if (!cases[i].key) {
            if (ok)
                fprintf(stderr, "  %s: unexpected key\n", cases[i].in);
            ASSERT_TRUE(!ok);
            continue;
        }
        if (!ok)
            fprintf(stderr, "  %s: no key\n", cases[i].in);
        ASSERT_TRUE(ok);
        ASSERT_MEM_STR(key, n, cases[i].key);
    }
    /* Strings are counted: a NUL inside a string literal is content, outside it is no key. */
    static const char nul_in_string[] = "SELECT 'a\0b'";
    size_t n;
    ASSERT_TRUE(key_of(nul_in_string, sizeof nul_in_string - 1, key, sizeof key, &n));
    ASSERT_MEM_STR(key, n, "SELECT \1");
    static const char nul_outside[] = "SELECT 1\0";
    ASSERT_TRUE(!key_of(nul_outside, sizeof nul_outside - 1, key, sizeof key, &n));
    /* No room is no key, never a cut one. */
    ASSERT_TRUE(!key_of("SELECT 1", 8, key, 7, &n));
}

TEST(a_variant_swaps_every_literal_for_a_different_one_of_its_class)
{
    char out[256];
    size_t n;
    const char *sql = "SELECT a FROM t WHERE b = 'x' AND c = 1 AND d = 2.5 AND e = 'z' AND f = 7";
    ASSERT_TRUE(nprof__sql_literal_text(sql, strlen(sql), 1, out, sizeof out, &n));
    ASSERT_MEM_STR(out, n, "SELECT a FROM t WHERE b = 'y' AND c = 2 AND d = 1.5 AND e = 'x' AND f = 1");
}

/* ---- the corpus ------------------------------------------------------------------------- */

#define MAX_STATEMENTS 600

static char *corpus_text;
static const char *statements[MAX_STATEMENTS];
static size_t statement_len[MAX_STATEMENTS];
static size_t statement_count;

/* Reads tests/sql/pgss_corpus.sql: blocks ended by a ";;" line, "--#" and "--@" lines dropped. */
static int load_corpus(void)
{
    if (statement_count)
        return 1;
    FILE *f = fopen(NPROF_SOURCE_DIR "/tests/sql/pgss_corpus.sql", "rb");
    if (!f)
        return 0;
    corpus_text = calloc(1, 1 << 20);
    char *w = corpus_text, line[8192];
    const char *start = w;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "--#", 3) || !strncmp(line, "--@", 3))
            continue;
        if (!strcmp(line, ";;\n") || !strcmp(line, ";;")) {
            size_t len = (size_t)(w - start);
            while (len && start[len - 1] == '\n')
                len--;
            if (len && statement_count < MAX_STATEMENTS) {
                statements[statement_count] = start;
                statement_len[statement_count++] = len;
            }
            *w++ = '\0';
            start = w;
            continue;
        }
        size_t n = strlen(line);
        memcpy(w, line, n);
        w += n;
    }
    fclose(f);
    return statement_count > 0;
}

static size_t shape(const char *sql, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    if (nprof_sql_normalize(sql, len, NPROF_SQL_QMARK, out, cap, &n) != NPROF_OK)
        return (size_t)-1;
    return n;
}

/* The check the cache makes before it trusts a key: a variant has the same shape. */
static int trusted(const char *sql, size_t len)
{
    char variant[8192], a[20000], b[20000];
    size_t vn;
    if (!nprof__sql_literal_text(sql, len, 1, variant, sizeof variant, &vn))
        return 0;
    size_t na = shape(sql, len, a, sizeof a), nb = shape(variant, vn, b, sizeof b);
    return na == nb && memcmp(a, b, na) == 0;
}

TEST(every_query_of_a_trusted_key_has_the_shape_it_was_checked_with)
{
    ASSERT_TRUE(load_corpus());
    ASSERT_INT_OP(statement_count, >=, 300);
    static char key[8192], key2[8192], other[16384], a[40000], b[40000];
    size_t with_key = 0, with_trust = 0, checked = 0, untrusted_ordinals = 0;
    for (size_t s = 0; s < statement_count; s++) {
        const char *sql = statements[s];
        size_t len = statement_len[s], kn;
        if (!nprof__sql_literal_text(sql, len, 0, key, sizeof key, &kn))
            continue;
        with_key++;
        if (!trusted(sql, len)) {
            untrusted_ordinals += strstr(sql, "ORDER BY") != NULL;
            continue;
        }
        with_trust++;
        size_t na = shape(sql, len, a, sizeof a);
        for (uint64_t seed = 1; seed <= 24; seed++) {
            size_t on = lv_fill(key, kn, seed * 7919 + s, other, sizeof other), kn2;
            if (!on || !nprof__sql_literal_text(other, on, 0, key2, sizeof key2, &kn2) ||
                kn2 != kn || memcmp(key, key2, kn) != 0)
                continue; /* another key (1. then a dot...): the cache would not confuse them */
            checked++;
            size_t nb = shape(other, on, b, sizeof b);
            if (na != nb || memcmp(a, b, na) != 0) {
                fprintf(stderr, "  original: %.*s\n  variant:  %.*s\n  shapes:   %.*s\n"
                        "            %.*s\n", (int)len, sql, (int)on, other, (int)na, a,
                        (int)nb, b);
                ASSERT_TRUE(!"a query of a trusted key has another shape");
            }
        }
    }
    fprintf(stderr, "  %zu statements: %zu with a key, %zu trusted, %zu variants checked, "
            "%zu ORDER BY ones not trusted\n", statement_count, with_key, with_trust, checked,
            untrusted_ordinals);
    /* The cache must serve most of what applications send, and refuse the ordinals. */
    ASSERT_INT_OP(with_trust * 10, >=, statement_count * 7);
    ASSERT_INT_OP(checked, >=, with_trust * 16);
    ASSERT_INT_OP(untrusted_ordinals, >=, 5);
}

/* ---- through the runtime ---------------------------------------------------------------- */

/* Records `sql` into a fresh profile of rt and returns its normalized text and fingerprint. */
static int record_one(nprof_runtime *rt, const char *sql, size_t len, char *norm, size_t cap,
                      size_t *norm_len, uint64_t *fp)
{
    nprof_profile *p;
    int rc = nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p);
    if (rc)
        return rc;
    nprof_query q = {.sql = sql, .sql_len = len, .duration_ns = 1000};
    rc = nprof_sql_record(p, &q);
    nprof_query_info qi;
    if (!rc)
        rc = nprof_profile_get_query(p, 0, &qi);
    if (!rc) {
        *norm_len = qi.normalized_len < cap ? qi.normalized_len : cap;
        if (qi.normalized)
            memcpy(norm, qi.normalized, *norm_len);
        *fp = qi.fingerprint;
    }
    nprof_request_discard(p);
    return rc;
}

TEST(recording_through_the_cache_gives_what_normalizing_gives)
{
    ASSERT_TRUE(load_corpus());
    nprof_runtime *cached = make_runtime(NULL), *plain = make_runtime("sql_shape_cache=0");
    ASSERT_TRUE(cached && plain);
    ASSERT_EQ_U64(ctl_u64(cached, "stats.sql.shape_cache.slots"), 512);
    ASSERT_EQ_U64(ctl_u64(plain, "stats.sql.shape_cache.slots"), 0);
    static char key[8192], other[16384], a[40000], b[40000];
    size_t records = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t s = 0; s < statement_count; s++) {
            const char *sql = statements[s];
            size_t len = statement_len[s], kn, na, nb;
            uint64_t fa, fb;
            ASSERT_OK(record_one(cached, sql, len, a, sizeof a, &na, &fa));
            ASSERT_OK(record_one(plain, sql, len, b, sizeof b, &nb, &fb));
            ASSERT_EQ_U64(fa, fb);
            ASSERT_EQ_U64(fa, nprof_sql_fingerprint(sql, len));
            ASSERT_TRUE(na == nb && memcmp(a, b, na) == 0);
            records++;
            if (!nprof__sql_literal_text(sql, len, 0, key, sizeof key, &kn))
                continue;
            size_t on = lv_fill(key, kn, (uint64_t)pass * 1000003 + s, other, sizeof other);
            if (!on)
                continue;
            ASSERT_OK(record_one(cached, other, on, a, sizeof a, &na, &fa));
            ASSERT_OK(record_one(plain, other, on, b, sizeof b, &nb, &fb));
            ASSERT_EQ_U64(fa, fb);
            ASSERT_TRUE(na == nb && memcmp(a, b, na) == 0);
            records++;
        }
    }
    /* The second pass found the shapes of the first: misses stay near one per key. */
    uint64_t stored = ctl_u64(cached, "stats.sql.shape_cache.stored");
    uint64_t misses = ctl_u64(cached, "stats.sql.shape_cache.misses");
    fprintf(stderr, "  %zu records, %llu shapes stored, %llu misses, %llu slots used\n",
            records, (unsigned long long)stored, (unsigned long long)misses,
            (unsigned long long)ctl_u64(cached, "stats.sql.shape_cache.used"));
    ASSERT_U64_OP(stored, >=, 100);
    ASSERT_U64_OP(misses * 3, <=, records);
    nprof_runtime_destroy(cached);
    nprof_runtime_destroy(plain);
}

TEST(ordinals_keep_their_numbers_and_the_rest_matches_the_normalizer)
{
    nprof_runtime *rt = make_runtime(NULL);
    static const char *const pairs[][3] = {
        {"SELECT a, b FROM t ORDER BY 1", "SELECT a, b FROM t ORDER BY 2",
         "SELECT a, b FROM t ORDER BY 2"},
        {"SELECT x::varchar(10) FROM t", "SELECT x::varchar(20) FROM t",
         "SELECT x::varchar(?) FROM t"},
        {"SELECT CAST(x AS numeric(10, 2)) FROM t", "SELECT CAST(x AS numeric(12, 4)) FROM t",
         "SELECT CAST(x AS numeric(?, ?)) FROM t"},
        {"SELECT a FROM t GROUP BY 1 LIMIT 5", "SELECT a FROM t GROUP BY 2 LIMIT 7",
         "SELECT a FROM t GROUP BY 2 LIMIT ?"},
    };
    char norm[256];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        for (int round = 0; round < 3; round++) { /* the first takes the shape, then the cache */
            for (int j = 0; j < 2; j++) {
                size_t n;
                uint64_t fp;
                ASSERT_OK(record_one(rt, pairs[i][j], strlen(pairs[i][j]), norm, sizeof norm,
                                     &n, &fp));
                ASSERT_EQ_U64(fp, nprof_sql_fingerprint(pairs[i][j], strlen(pairs[i][j])));
                if (j == 1)
                    ASSERT_MEM_STR(norm, n, pairs[i][2]);
            }
        }
    }
    nprof_runtime_destroy(rt);
}

TEST(long_shapes_and_hostile_bytes_are_shaped_every_time)
{
    nprof_runtime *rt = make_runtime(NULL);
    /* A shape over a slot's 976 bytes of text: normalized every time, and right. */
    static char sql[4096];
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT ");
    for (int c = 0; c < 120; c++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s\"column_%03d\"", c ? ", " : "", c);
    len += (size_t)snprintf(sql + len, sizeof sql - len, " FROM t WHERE id = 5");
    static char norm[8192], want[8192];
    for (int round = 0; round < 3; round++) {
        size_t n, wn;
        uint64_t fp;
        sql[len - 1] = (char)('1' + round);
        ASSERT_OK(record_one(rt, sql, len, norm, sizeof norm, &n, &fp));
        ASSERT_OK(nprof_sql_normalize(sql, len, NPROF_SQL_QMARK, want, sizeof want, &wn));
        ASSERT_TRUE(n == wn && memcmp(norm, want, n) == 0);
        ASSERT_INT_OP(n, >, 976);
    }
    static const char *const hostile[] = {
        "SELECT '\xff\xfe' FROM t WHERE a = 1", "SELECT \xc3 FROM t WHERE a = 'x'",
        "SELECT '\x01' WHERE b = 2", "SELECT 1 /* 'x */ WHERE c = '3'",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        for (int round = 0; round < 2; round++) {
            size_t n, wn;
            uint64_t fp;
            ASSERT_OK(record_one(rt, hostile[i], strlen(hostile[i]), norm, sizeof norm, &n, &fp));
            ASSERT_OK(nprof_sql_normalize(hostile[i], strlen(hostile[i]), NPROF_SQL_QMARK, want,
                                          sizeof want, &wn));
            ASSERT_TRUE(n == wn && memcmp(norm, want, n) == 0);
        }
    }
    nprof_runtime_destroy(rt);
}

/* ---- threads ---------------------------------------------------------------------------- */

static nprof_runtime *shared_rt;

static void *record_many(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg + 1;
    static const char *const templates[] = {
        "SELECT * FROM users WHERE id = %u",
        "SELECT \"orders\".\"id\" FROM \"orders\" WHERE \"orders\".\"user_id\" = %u LIMIT 21",
        "UPDATE items SET qty = %u, note = 'n%u' WHERE id = %u",
        "SELECT a FROM t WHERE b IN (%u, %u, %u)",
        "SELECT a FROM t ORDER BY %u",
        "INSERT INTO log (msg, at) VALUES ('m%u', %u.5)",
    };
    char sql[256], norm[512], want[512];
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *t = templates[(seed >> 16) % 6];
        unsigned v = (seed >> 8) % 5 + 1;
        int len = snprintf(sql, sizeof sql, t, v, v + 1, v + 2);
        size_t n, wn;
        uint64_t fp;
        if (record_one(shared_rt, sql, (size_t)len, norm, sizeof norm, &n, &fp) ||
            nprof_sql_normalize(sql, (size_t)len, NPROF_SQL_QMARK, want, sizeof want, &wn) ||
            n != wn || memcmp(norm, want, n) != 0 || fp != nprof_sql_fingerprint(sql, (size_t)len))
            return (void *)1;
    }
    return NULL;
}

TEST(four_threads_share_the_cache_and_each_gets_its_own_shape)
{
    shared_rt = make_runtime("sql_shape_cache=4"); /* few slots: writers meet readers */
    ASSERT_TRUE(run_threads(4, record_many));
    ASSERT_U64_OP(ctl_u64(shared_rt, "stats.sql.shape_cache.stored"), >=, 4);
    nprof_runtime_destroy(shared_rt);
}

int main(void)
{
    RUN(keys_replace_each_literal_by_its_class_and_keep_the_rest);
    RUN(a_variant_swaps_every_literal_for_a_different_one_of_its_class);
    RUN(every_query_of_a_trusted_key_has_the_shape_it_was_checked_with);
    RUN(recording_through_the_cache_gives_what_normalizing_gives);
    RUN(ordinals_keep_their_numbers_and_the_rest_matches_the_normalizer);
    RUN(long_shapes_and_hostile_bytes_are_shaped_every_time);
    RUN(four_threads_share_the_cache_and_each_gets_its_own_shape);
    free(corpus_text);
    return TEST_SUMMARY();
}
