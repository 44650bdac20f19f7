/*
 * tests/test_patterns.c: per-request counting of query shapes: N+1 patterns, exact
 * duplicates told apart from similar queries, slow queries, and the bounds that keep a
 * request with many shapes or 100,000 queries cheap.  Fingerprints are given directly here;
 * the SQL layer's own fingerprints are tested with the normalizer.
 */
#include <string.h>

#include "json_check.h"
#include "nprof_test.h"
#include "runtime/patterns.h"
#include "test.h"

/* Records `sql` with `params` under shape `fp`, taking `ms` milliseconds. */
static int record(nprof_profile *p, uint64_t fp, const char *sql, const char *params, double ms)
{
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .params = params,
                     .params_len = params ? strlen(params) : 0, .fingerprint = fp,
                     .duration_ns = (uint64_t)(ms * 1e6)};
    return nprof_query_record(p, &q);
}

static int find_pattern(const nprof_profile *p, uint64_t fp, nprof_pattern_info *out)
{
    for (size_t i = 0; nprof_profile_get_pattern(p, i, out) == NPROF_OK; i++)
        if (out->fingerprint == fp)
            return 1;
    return 0;
}

/* The exact repeats counted under shape `fp`; UINT64_MAX when there is no such shape. */
static uint64_t repeats_of(const nprof_profile *p, uint64_t fp)
{
    nprof_pattern_info pi;
    return find_pattern(p, fp, &pi) ? pi.exact_repeats : UINT64_MAX;
}

TEST(a_shape_repeated_to_the_threshold_is_an_n_plus_one_pattern)
{
    nprof_runtime *rt = make_runtime("n_plus_one_threshold=5");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/articles", 9, 0, &p));
    record(p, 0xA, "SELECT * FROM articles", NULL, 1);
    char sql[64];
    for (int id = 1; id <= 5; id++) {
        snprintf(sql, sizeof sql, "SELECT * FROM authors WHERE id = %d", id);
        record(p, 0xB, sql, NULL, 0.5);
    }
    for (int id = 1; id <= 4; id++) {
        snprintf(sql, sizeof sql, "SELECT * FROM tags WHERE id = %d", id);
        record(p, 0xC, sql, NULL, 0.1);
    }
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.pattern_count, 3);
    ASSERT_EQ_U64(info.n_plus_one_count, 1); /* 4 tags is under the threshold */
    nprof_pattern_info pi;
    ASSERT_TRUE(find_pattern(p, 0xB, &pi));
    ASSERT_EQ_INT(pi.n_plus_one, 1);
    ASSERT_EQ_U64(pi.count, 5);
    ASSERT_EQ_U64(pi.exact_repeats, 0); /* similar, not duplicates: the ids differ */
    ASSERT_EQ_U64(pi.total_ns, 2500000);
    ASSERT_EQ_U64(pi.max_ns, 500000);
    ASSERT_MEM_STR(pi.example, pi.example_len, "SELECT * FROM authors WHERE id = 1");
    ASSERT_TRUE(find_pattern(p, 0xC, &pi));
    ASSERT_EQ_INT(pi.n_plus_one, 0);
    ASSERT_EQ_INT(nprof_profile_get_pattern(p, 3, &pi), NPROF_ENOENT);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(exact_duplicates_are_told_apart_from_similar_queries)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    record(p, 0x1, "SELECT * FROM users WHERE id = $1", "(7)", 1);
    record(p, 0x1, "SELECT * FROM users WHERE id = $1", "(7)", 1); /* the same: a duplicate */
    record(p, 0x1, "SELECT * FROM users WHERE id = $1", "(8)", 1); /* other parameters: similar */
    record(p, 0x1, "SELECT * FROM users WHERE id = $1", "(7)", 1); /* a duplicate again */
    record(p, 0x2, "SELECT 1", NULL, 1);
    record(p, 0x2, "SELECT 1", NULL, 1);                            /* a duplicate */
    record(p, 0x3, "SELECT 1", NULL, 1); /* same text, another shape: not a duplicate of it */
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.exact_repeats, 3);
    nprof_pattern_info pi;
    ASSERT_TRUE(find_pattern(p, 0x1, &pi));
    ASSERT_EQ_U64(pi.count, 4);
    ASSERT_EQ_U64(pi.exact_repeats, 2);
    ASSERT_TRUE(find_pattern(p, 0x3, &pi));
    ASSERT_EQ_U64(pi.exact_repeats, 0);
    nprof_buf js = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &js));
    size_t where;
    ASSERT_TRUE(json_check(js.data, js.len, &where));
    ASSERT_TRUE(strstr(js.data, "\"duplicate_count\":3") != NULL);
    ASSERT_TRUE(strstr(js.data, "\"duplicates\":[{\"fingerprint\":\"0000000000000001\"") != NULL);
    ASSERT_TRUE(strstr(js.data, "\"n_plus_one\":[]") != NULL);
    nprof_buf_free(&js);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* Records `sql` under shape `fp` with the parameters' identity `params_hash` and, when
 * given, a summary. */
static int record_hashed(nprof_profile *p, uint64_t fp, const char *sql, const char *params,
                         uint64_t params_hash)
{
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .params = params,
                     .params_len = params ? strlen(params) : 0, .fingerprint = fp,
                     .duration_ns = 1000, .params_hash = params_hash};
    return nprof_query_record(p, &q);
}

TEST(the_values_identity_decides_duplicates_with_or_without_a_summary)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    /* No summary (production mode leaves it out): the values' identity tells them apart. */
    nprof_profile_set_param_summaries(p, 0);
    const char *sql = "SELECT * FROM users WHERE id = $1";
    record_hashed(p, 0x1, sql, NULL, 101);
    record_hashed(p, 0x1, sql, NULL, 102); /* another id: similar, not a duplicate */
    record_hashed(p, 0x1, sql, NULL, 103);
    record_hashed(p, 0x1, sql, NULL, 101); /* the first id again: a duplicate */
    /* Summaries that read the same (redacted, or cut) over different values. */
    record_hashed(p, 0x2, "SELECT * FROM users WHERE email = $1", "$1='[REDACTED]'", 201);
    record_hashed(p, 0x2, "SELECT * FROM users WHERE email = $1", "$1='[REDACTED]'", 202);
    /* The identity given once with the summary and once without still matches. */
    record_hashed(p, 0x3, "SELECT 1", "$1='9'", 301);
    record_hashed(p, 0x3, "SELECT 1", NULL, 301);
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_EQ_U64(repeats_of(p, 0x1), 1);
    ASSERT_EQ_U64(repeats_of(p, 0x2), 0);
    ASSERT_EQ_U64(repeats_of(p, 0x3), 1);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.sql_count, 8);
    ASSERT_EQ_U64(info.exact_repeats, 2);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(interleaved_shapes_are_each_counted_under_their_own)
{
    nprof_runtime *rt = make_runtime("n_plus_one_threshold=3");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    for (int i = 0; i < 3; i++) {
        record(p, 0xA, "SELECT a", NULL, 1);
        if (i < 2)
            record(p, 0xB, "SELECT b", NULL, 2);
    }
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_pattern_info pi;
    ASSERT_TRUE(find_pattern(p, 0xA, &pi));
    ASSERT_EQ_U64(pi.count, 3);
    ASSERT_EQ_U64(pi.total_ns, 3000000);
    ASSERT_EQ_INT(pi.n_plus_one, 1);
    ASSERT_TRUE(find_pattern(p, 0xB, &pi));
    ASSERT_EQ_U64(pi.count, 2);
    ASSERT_EQ_U64(pi.total_ns, 4000000);
    ASSERT_EQ_INT(pi.n_plus_one, 0);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(queries_over_the_threshold_are_slow_and_listed)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=50");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    record(p, 0x1, "SELECT fast", NULL, 49.9);
    record(p, 0x2, "SELECT slow", NULL, 50.1);
    record(p, 0x2, "SELECT slower", NULL, 200);
    record(p, 0, "SELECT without a shape", NULL, 300);
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.slow_count, 3);
    ASSERT_EQ_U64(info.pattern_count, 2); /* no fingerprint, no shape */
    nprof_query_info qi;
    nprof_profile_get_query(p, 0, &qi);
    ASSERT_EQ_INT(qi.slow, 0);
    nprof_profile_get_query(p, 1, &qi);
    ASSERT_EQ_INT(qi.slow, 1);
    nprof_pattern_info pi;
    ASSERT_TRUE(find_pattern(p, 0x2, &pi));
    ASSERT_EQ_U64(pi.slow_count, 2);
    nprof_buf js = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &js));
    ASSERT_TRUE(strstr(js.data, "\"slow_queries\":[1,2,3]") != NULL);
    ASSERT_TRUE(strstr(js.data, "\"slow_query_count\":3") != NULL);
    nprof_buf_free(&js);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_hundred_thousand_queries_of_one_shape_are_counted_exactly)
{
    nprof_runtime *rt = make_runtime("max_queries=100");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    char sql[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM t WHERE id = %d", i % 1000);
        record(p, 0x77, sql, NULL, 0.001);
    }
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_pattern_info pi;
    ASSERT_TRUE(find_pattern(p, 0x77, &pi));
    ASSERT_EQ_U64(pi.count, 100000);
    ASSERT_EQ_U64(pi.exact_repeats, 99000); /* 1000 distinct ids, each seen 100 times */
    ASSERT_EQ_INT(pi.n_plus_one, 1);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_U64_OP(info.memory_bytes, <=, 1u << 20);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(many_shapes_stay_within_the_budget_and_the_excess_is_counted)
{
    nprof_runtime *rt = make_runtime("max_profile_bytes=65536");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    for (uint64_t i = 1; i <= 20000; i++)
        record(p, i * 0x9E3779B97F4A7C15ull, "SELECT x", NULL, 0.001);
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_U64_OP(info.memory_bytes, <=, 65536);
    ASSERT_U64_OP(info.pattern_count, <=, NPROF__MAX_PATTERNS);
    ASSERT_EQ_U64(info.pattern_count + info.patterns_dropped, 20000);
    ASSERT_U64_OP(info.pattern_count, >=, 16);
    /* Every counted shape is still found by its fingerprint. */
    for (size_t i = 0; i < info.pattern_count; i++) {
        nprof_pattern_info pi, again;
        ASSERT_OK(nprof_profile_get_pattern(p, i, &pi));
        ASSERT_TRUE(find_pattern(p, pi.fingerprint, &again));
        ASSERT_EQ_U64(again.count, 1);
    }
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_reused_profile_starts_with_no_shapes)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    for (uint64_t i = 1; i <= 40; i++)
        record(p, i, "SELECT 1", NULL, 0.001);
    record(p, 5, "SELECT 1", NULL, 0.001);
    nprof_request_discard(p);
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    record(p, 5, "SELECT 1", NULL, 0.001);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.pattern_count, 1);
    ASSERT_EQ_U64(info.exact_repeats, 0);
    nprof_pattern_info pi;
    ASSERT_TRUE(find_pattern(p, 5, &pi));
    ASSERT_EQ_U64(pi.count, 1);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(a_shape_repeated_to_the_threshold_is_an_n_plus_one_pattern);
    RUN(exact_duplicates_are_told_apart_from_similar_queries);
    RUN(the_values_identity_decides_duplicates_with_or_without_a_summary);
    RUN(interleaved_shapes_are_each_counted_under_their_own);
    RUN(queries_over_the_threshold_are_slow_and_listed);
    RUN(a_hundred_thousand_queries_of_one_shape_are_counted_exactly);
    RUN(many_shapes_stay_within_the_budget_and_the_excess_is_counted);
    RUN(a_reused_profile_starts_with_no_shapes);
    return TEST_SUMMARY();
}
