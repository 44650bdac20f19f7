/*
 * tests/test_sql_record.c: recording queries with their shape (nprof_sql_record): the
 * normalized text and fingerprint it fills in, N+1 detection across literals, the PCRE2
 * ignore rules (opt.sql_ignore), long queries, and bad input.
 */
#include <stdlib.h>
#include <string.h>

#include "nprof_test.h"
#include "test.h"

static int record_sql(nprof_profile *p, const char *sql)
{
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .duration_ns = 1000};
    return nprof_sql_record(p, &q);
}

TEST(queries_that_differ_in_literals_form_one_n_plus_one_pattern)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/articles", 9, 0, &p));
    ASSERT_OK(record_sql(p, "SELECT * FROM articles"));
    char sql[96];
    for (int id = 1; id <= 5; id++) {
        snprintf(sql, sizeof sql, "SELECT * FROM authors WHERE id = %d", id);
        ASSERT_OK(record_sql(p, sql));
    }
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.pattern_count, 2);
    ASSERT_EQ_U64(info.n_plus_one_count, 1);
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_get_pattern(p, 1, &pi));
    ASSERT_EQ_U64(pi.count, 5);
    ASSERT_EQ_U64(pi.fingerprint, nprof_sql_fingerprint("SELECT * FROM authors WHERE id = 42", 35));
    ASSERT_TRUE(pi.normalized != NULL);
    char norm[128];
    size_t n;
    ASSERT_OK(nprof_sql_normalize("SELECT * FROM authors WHERE id = 1", 34, NPROF_SQL_QMARK, norm, sizeof norm, &n));
    ASSERT_MEM_STR(pi.normalized, pi.normalized_len, norm);
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 3, &qi));
    ASSERT_EQ_U64(qi.fingerprint, pi.fingerprint);
    ASSERT_MEM_STR(qi.sql, qi.sql_len, "SELECT * FROM authors WHERE id = 3");
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(transaction_control_is_recorded_but_not_counted_as_a_pattern)
{
    nprof_runtime *rt = make_runtime("n_plus_one_threshold=2");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "POST", 4, "/", 1, 0, &p));
    const char *ignored[] = {"SAVEPOINT \"s1_x1\"", "RELEASE SAVEPOINT \"s1_x1\"", "savepoint s2",
                             "SET search_path TO public", "BEGIN", "COMMIT", "ROLLBACK",
                             "SHOW TIME ZONE"};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        ASSERT_OK(record_sql(p, ignored[i]));
        ASSERT_OK(record_sql(p, ignored[i]));
    }
    ASSERT_OK(record_sql(p, "UPDATE t SET a = 1"));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.sql_count, 17);
    ASSERT_EQ_U64(info.pattern_count, 1); /* only the UPDATE */
    ASSERT_EQ_U64(info.n_plus_one_count, 0);
    ASSERT_EQ_U64(info.exact_repeats, 0);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(the_ignore_rule_is_configurable_and_can_be_empty)
{
    nprof_runtime *rt = make_runtime("sql_ignore=^SELECT \\?$,n_plus_one_threshold=2");
    ASSERT_TRUE(rt);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    record_sql(p, "select 1");
    record_sql(p, "SELECT 1");
    record_sql(p, "SAVEPOINT a");
    record_sql(p, "SAVEPOINT b");
    nprof_request_end(p, 200);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.pattern_count, 1); /* SAVEPOINT ? counted, SELECT 1 ignored */
    ASSERT_EQ_U64(info.n_plus_one_count, 1);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);

    rt = make_runtime("sql_ignore=");
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    record_sql(p, "BEGIN");
    nprof_request_end(p, 200);
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.pattern_count, 1);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);

    /* A comma inside the pattern is written \, in NANOPROF_CONF style text. */
    rt = make_runtime("sql_ignore=^SELECT a\\, b FROM t$");
    ASSERT_TRUE(rt);
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(rt, "opt.sql_ignore", &v));
    ASSERT_STR(v.s, "^SELECT a, b FROM t$");
    nprof_runtime_destroy(rt);
}

/* Patterns of one request: how many, and how many are N+1 (threshold 2). */
static void counts_of(nprof_runtime *rt, const char *sql, int times, uint64_t *patterns,
                      uint64_t *np)
{
    nprof_profile *p;
    *patterns = *np = UINT64_MAX;
    if (nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p))
        return;
    for (int i = 0; i < times; i++)
        record_sql(p, sql);
    nprof_request_end(p, 200);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    *patterns = info.pattern_count;
    *np = info.n_plus_one_count;
    nprof_request_discard(p);
}

/* A text without literals (a parameterized query) is shaped from the thread's exact-text
 * table after its first time: the same shape and fingerprint every time, and never another
 * runtime's (two runtimes alive on one thread, one ignoring the text, the other not). */
TEST(a_repeated_parameterized_text_keeps_its_shape_per_runtime)
{
    const char *sql = "SELECT id, name FROM items WHERE id = $1 AND owner = %s";
    nprof_runtime *counting = make_runtime("n_plus_one_threshold=2");
    nprof_runtime *ignoring = make_runtime("sql_ignore=^SELECT id\\, name FROM items,"
                                           "n_plus_one_threshold=2");
    ASSERT_TRUE(counting && ignoring);
    for (int round = 0; round < 3; round++) {
        uint64_t patterns, np;
        counts_of(counting, sql, 4, &patterns, &np);
        ASSERT_EQ_U64(patterns, 1);
        ASSERT_EQ_U64(np, 1);
        counts_of(ignoring, sql, 4, &patterns, &np);
        ASSERT_EQ_U64(patterns, 0);
        ASSERT_EQ_U64(np, 0);
    }
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(counting, "GET", 3, "/", 1, 0, &p));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(record_sql(p, sql));
    /* A text that differs from it in one byte is its own. */
    ASSERT_OK(record_sql(p, "SELECT id, name FROM items WHERE id = $1 AND ownxr = %s"));
    nprof_request_end(p, 200);
    nprof_query_info a, b, c;
    ASSERT_OK(nprof_profile_get_query(p, 0, &a));
    ASSERT_OK(nprof_profile_get_query(p, 2, &b));
    ASSERT_OK(nprof_profile_get_query(p, 3, &c));
    ASSERT_EQ_U64(a.fingerprint, nprof_sql_fingerprint(sql, strlen(sql)));
    ASSERT_EQ_U64(b.fingerprint, a.fingerprint);
    ASSERT_MEM_STR(b.normalized, b.normalized_len, "SELECT id, name FROM items WHERE id = ? AND owner = ?");
    ASSERT_TRUE(c.fingerprint != a.fingerprint);
    nprof_request_discard(p);
    nprof_runtime_destroy(ignoring);
    nprof_runtime_destroy(counting);
}

TEST(a_long_query_keeps_its_whole_fingerprint_and_a_cut_normalized_text)
{
    nprof_runtime *rt = make_runtime("max_sql_bytes=64");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    char sql[400];
    int len = snprintf(sql, sizeof sql, "SELECT a, b, c, d, e, f, g, h FROM wide WHERE x = 1 AND y = 'two' AND z IN (1, 2, 3) ORDER BY a");
    nprof_query q = {.sql = sql, .sql_len = (size_t)len, .duration_ns = 5};
    ASSERT_OK(nprof_sql_record(p, &q));
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 0, &qi));
    ASSERT_EQ_U64(qi.fingerprint, nprof_sql_fingerprint(sql, (size_t)len));
    ASSERT_EQ_U64(qi.sql_len, 64);
    ASSERT_TRUE(qi.normalized != NULL && qi.normalized_len <= 64);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(hostile_input_is_recorded_without_harm)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    const char nul[] = "SELECT '\0' FROM t WHERE a = 'unterminated";
    nprof_query q = {.sql = nul, .sql_len = sizeof nul - 1, .duration_ns = 1};
    ASSERT_OK(nprof_sql_record(p, &q));
    char *deep = malloc(200001);
    memset(deep, '(', 100000);
    memset(deep + 100000, ')', 100000);
    deep[200000] = '\0';
    q.sql = deep;
    q.sql_len = 200000;
    ASSERT_OK(nprof_sql_record(p, &q));
    free(deep);
    ASSERT_EQ_INT(nprof_sql_record(p, NULL), NPROF_EINVAL);
    q.sql = NULL;
    q.sql_len = 0; /* no text at all: an empty query, twice (the second from the tables) */
    ASSERT_OK(nprof_sql_record(p, &q));
    ASSERT_OK(nprof_sql_record(p, &q));
    q.sql_len = 3;
    ASSERT_EQ_INT(nprof_sql_record(p, &q), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_sql_record(NULL, &q), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_sql_record(nprof_current(), &q), NPROF_ENOPROFILE);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(an_exact_repeat_counts_the_same_whichever_way_its_text_is_recorded)
{
    /* The SQL layer hands the profile the text hash its shape cache computed; a query
     * recorded with its shape given (nprof_query_record) or one too long for that cache is
     * hashed by the profile itself.  A repeat must count the same on every path. */
    nprof_runtime *rt = make_runtime("max_sql_bytes=4096");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    const char *sql = "SELECT id FROM items WHERE id = $1";
    ASSERT_OK(record_sql(p, sql));
    ASSERT_OK(record_sql(p, sql)); /* a repeat through the shape cache */
    nprof_query_info first;
    ASSERT_OK(nprof_profile_get_query(p, 0, &first));
    nprof_query given = {.sql = sql, .sql_len = strlen(sql), .duration_ns = 1,
                         .fingerprint = first.fingerprint, .normalized = first.normalized,
                         .normalized_len = first.normalized_len};
    ASSERT_OK(nprof_query_record(p, &given)); /* the same text, shape given */
    ASSERT_OK(record_sql(p, "SELECT id FROM items WHERE id = $2")); /* same shape, new text */
    char long_sql[1200];
    size_t n = (size_t)snprintf(long_sql, sizeof long_sql, "SELECT id FROM items WHERE name = $1");
    while (n < 1000)
        n += (size_t)snprintf(long_sql + n, sizeof long_sql - n, " OR name = $1");
    ASSERT_OK(record_sql(p, long_sql));
    ASSERT_OK(record_sql(p, long_sql)); /* too long for the shape cache's hash */
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.sql_count, 6);
    ASSERT_EQ_U64(info.exact_repeats, 3);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* An N+1 loop sends one text again and again: a text equal to the last one recorded takes
 * its shape without the shape cache.  Only an equal whole
 * text does: not one of the same length, not one cut at max_sql_bytes that only starts the
 * same, not the last text of the profile's previous request. */
TEST(a_text_repeated_back_to_back_takes_the_last_shape)
{
    nprof_runtime *rt = make_runtime("max_sql_bytes=64");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    const char *authors = "SELECT * FROM authors WHERE id = $1";
    const char *editors = "SELECT * FROM editors WHERE id = $1"; /* same length */
    for (int i = 0; i < 3; i++)
        ASSERT_OK(record_sql(p, authors));
    ASSERT_OK(record_sql(p, editors));
    ASSERT_OK(record_sql(p, "SET search_path TO app"));
    ASSERT_OK(record_sql(p, "SET search_path TO app")); /* ignored, as the first was */
    char a[100], b[100]; /* cut at 64 bytes alike, different after */
    snprintf(a, sizeof a, "SELECT a, b, c, d, e, f, g, h FROM wide WHERE x = $1 AND y = $2 AND z = 1");
    snprintf(b, sizeof b, "SELECT a, b, c, d, e, f, g, h FROM wide WHERE x = $1 AND y = $2 AND w = 1");
    ASSERT_OK(record_sql(p, a));
    ASSERT_OK(record_sql(p, b));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_query_info q[8];
    for (size_t i = 0; i < 8; i++)
        ASSERT_OK(nprof_profile_get_query(p, i, &q[i]));
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_U64(q[i].fingerprint, nprof_sql_fingerprint(authors, strlen(authors)));
        ASSERT_MEM_STR(q[i].normalized, q[i].normalized_len, "SELECT * FROM authors WHERE id = ?");
    }
    ASSERT_EQ_U64(q[3].fingerprint, nprof_sql_fingerprint(editors, strlen(editors)));
    ASSERT_TRUE(q[3].fingerprint != q[0].fingerprint);
    ASSERT_MEM_STR(q[3].normalized, q[3].normalized_len, "SELECT * FROM editors WHERE id = ?");
    ASSERT_TRUE((q[4].flags & NPROF_QUERY_UNCOUNTED) && (q[5].flags & NPROF_QUERY_UNCOUNTED));
    ASSERT_EQ_U64(q[6].fingerprint, nprof_sql_fingerprint(a, strlen(a)));
    ASSERT_EQ_U64(q[7].fingerprint, nprof_sql_fingerprint(b, strlen(b)));
    ASSERT_TRUE(q[6].fingerprint != q[7].fingerprint);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.pattern_count, 4); /* authors, editors, the two wide ones */
    ASSERT_EQ_U64(info.exact_repeats, 2);
    nprof_request_discard(p);
    /* The next request (the profile comes back from the pool) starts with no last text. */
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_OK(record_sql(p, editors));
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_OK(nprof_profile_get_query(p, 0, &q[0]));
    ASSERT_EQ_U64(q[0].fingerprint, nprof_sql_fingerprint(editors, strlen(editors)));
    ASSERT_MEM_STR(q[0].normalized, q[0].normalized_len, "SELECT * FROM editors WHERE id = ?");
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* A repeat shares the profile's copies of the text and its shape: a loop of one text takes
 * no more of the profile's memory than its first query did, however long the text, and each
 * record still reads the text that was sent (the caller's buffer is reused in between). */
TEST(a_repeated_text_shares_the_profiles_copy)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    char text[256], want[256];
    snprintf(want, sizeof want, "SELECT id, title, body, author_id, created_at, updated_at, "
             "published, slug, summary, cover_image, word_count, reading_time, category_id "
             "FROM articles WHERE author_id = $1 AND published AND created_at > $2 "
             "ORDER BY created_at DESC LIMIT 20");
    size_t len = strlen(want);
    ASSERT_TRUE(len > 200);
    nprof_profile_info info;
    size_t first = 0;
    for (int i = 0; i < 16; i++) { /* the inline query slots: no growth of the array */
        memcpy(text, want, len + 1);
        nprof_query q = {.sql = text, .sql_len = len, .duration_ns = 1000};
        ASSERT_OK(nprof_sql_record(p, &q));
        memset(text, 'X', sizeof text);
        ASSERT_OK(nprof_profile_get_info(p, &info));
        if (i == 0)
            first = info.memory_bytes;
        ASSERT_EQ_U64(info.memory_bytes, first);
    }
    ASSERT_OK(record_sql(p, "SELECT 1")); /* another text: copied anew */
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_query_info q0, qi;
    ASSERT_OK(nprof_profile_get_query(p, 0, &q0));
    for (size_t i = 0; i < 16; i++) {
        ASSERT_OK(nprof_profile_get_query(p, i, &qi));
        ASSERT_MEM_STR(qi.sql, qi.sql_len, want);
        ASSERT_TRUE(qi.sql == q0.sql && qi.normalized == q0.normalized);
        ASSERT_EQ_U64(qi.fingerprint, q0.fingerprint);
    }
    ASSERT_OK(nprof_profile_get_query(p, 16, &qi));
    ASSERT_MEM_STR(qi.sql, qi.sql_len, "SELECT 1");
    ASSERT_MEM_STR(qi.normalized, qi.normalized_len, "SELECT ?");
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_get_pattern(p, 0, &pi));
    ASSERT_EQ_U64(pi.count, 16);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(queries_that_differ_in_literals_form_one_n_plus_one_pattern);
    RUN(transaction_control_is_recorded_but_not_counted_as_a_pattern);
    RUN(the_ignore_rule_is_configurable_and_can_be_empty);
    RUN(a_repeated_parameterized_text_keeps_its_shape_per_runtime);
    RUN(a_long_query_keeps_its_whole_fingerprint_and_a_cut_normalized_text);
    RUN(hostile_input_is_recorded_without_harm);
    RUN(an_exact_repeat_counts_the_same_whichever_way_its_text_is_recorded);
    RUN(a_text_repeated_back_to_back_takes_the_last_shape);
    RUN(a_repeated_text_shares_the_profiles_copy);
    return TEST_SUMMARY();
}
