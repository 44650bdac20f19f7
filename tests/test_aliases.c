/*
 * tests/test_aliases.c: the names renamed by the naming convention (include/nanoprof/common.h,
 * "Names") still compile for one release and are the new functions.
 *
 * Each deprecated name is a macro, a typedef or a static inline function in the block
 * "deprecated aliases, removed in 0.3" of its header.  Here every one of them is used as a
 * program written for 0.1 used it: with its old signature (checked at compile time with
 * _Generic), and called where a call shows that it reaches the new function.  The library
 * itself is built with NPROF_NO_DEPRECATED, so its own code cannot use an old name.
 */
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"

#ifdef NPROF_NO_DEPRECATED
#error "this test checks the deprecated aliases: build it without NPROF_NO_DEPRECATED"
#endif

/* `name` has exactly the function type `type` (the old declaration's). */
#define HAS_TYPE(name, type) _Generic(&(name), type: 1, default: 0)

/* The 0.1 signatures, unchanged by the renames that kept their arguments. */
_Static_assert(HAS_TYPE(nprof_middleware_create,
                        int (*)(nprof_runtime *, const nprof_mw_options *, nprof_middleware **)),
               "nprof_middleware_create");
_Static_assert(HAS_TYPE(nprof_middleware_destroy, void (*)(nprof_middleware *)),
               "nprof_middleware_destroy");
_Static_assert(HAS_TYPE(nprof_middleware_runtime, nprof_runtime *(*)(const nprof_middleware *)),
               "nprof_middleware_runtime");
_Static_assert(HAS_TYPE(nprof_mw_route_stats_get,
                        int (*)(nprof_middleware *, const char *, size_t, const char *, size_t,
                                nprof_mw_route_stats *)),
               "nprof_mw_route_stats_get");
_Static_assert(HAS_TYPE(nprof_mw_phase, int (*)(nprof_mw_state *, int)), "nprof_mw_phase");
_Static_assert(HAS_TYPE(nprof_mw_response_headers,
                        int (*)(nprof_mw_state *, int, nprof_mw_headers *)),
               "nprof_mw_response_headers");
_Static_assert(HAS_TYPE(nprof_mw_route_template,
                        int (*)(nprof_middleware *, const char *, size_t, char *, size_t)),
               "nprof_mw_route_template");
_Static_assert(HAS_TYPE(nprof_format_duration, int (*)(uint64_t, char *, size_t)),
               "nprof_format_duration");
_Static_assert(HAS_TYPE(nprof_profile_json, int (*)(const nprof_profile *, nprof_buf *)),
               "nprof_profile_json");
_Static_assert(HAS_TYPE(nprof_profile_collapsed, int (*)(const nprof_profile *, nprof_buf *)),
               "nprof_profile_collapsed");
_Static_assert(HAS_TYPE(nprof_profile_header,
                        int (*)(const nprof_profile *, char *, size_t, size_t *)),
               "nprof_profile_header");
_Static_assert(HAS_TYPE(nprof_profile_pattern,
                        int (*)(const nprof_profile *, size_t, nprof_pattern_info *)),
               "nprof_profile_pattern");
_Static_assert(HAS_TYPE(nprof_profile_query,
                        int (*)(const nprof_profile *, size_t, nprof_query_info *)),
               "nprof_profile_query");
_Static_assert(HAS_TYPE(nprof_profile_span,
                        int (*)(const nprof_profile *, size_t, nprof_span_info *)),
               "nprof_profile_span");
_Static_assert(HAS_TYPE(nprof_config_option, int (*)(size_t, nprof_option_info *)),
               "nprof_config_option");
_Static_assert(HAS_TYPE(nprof_store_flame_graph, int (*)(nprof_store *, nprof_buf *)),
               "nprof_store_flame_graph");
_Static_assert(HAS_TYPE(nprof_store_slowest, int (*)(nprof_store *, size_t, nprof_snapshot **)),
               "nprof_store_slowest");
_Static_assert(HAS_TYPE(nprof_querystats_json,
                        int (*)(const nprof_querystats *, size_t, nprof_buf *)),
               "nprof_querystats_json");
_Static_assert(HAS_TYPE(nprof_pq_json, int (*)(nprof_buf *)), "nprof_pq_json");
_Static_assert(HAS_TYPE(nprof_pq_thread_exclude, int (*)(int)), "nprof_pq_thread_exclude");
_Static_assert(HAS_TYPE(nprof_redact,
                        int (*)(const nprof_redactor *, const char *, size_t, char *, size_t,
                                size_t *, int *)),
               "nprof_redact");
_Static_assert(HAS_TYPE(nprof_redact_options_init, void (*)(nprof_redact_options *)),
               "nprof_redact_options_init");
_Static_assert(HAS_TYPE(nprof_slowlog_stats_get,
                        int (*)(nprof_slowlog *, nprof_slowlog_stats *)),
               "nprof_slowlog_stats_get");
_Static_assert(HAS_TYPE(nprof_slowlog_recent, int (*)(nprof_slowlog *, uint32_t, nprof_buf *)),
               "nprof_slowlog_recent");
_Static_assert(HAS_TYPE(nprof_slowlog_slowest,
                        int (*)(nprof_slowlog *, uint32_t, uint32_t, nprof_buf *)),
               "nprof_slowlog_slowest");
_Static_assert(HAS_TYPE(nprof_slowlog_by_fingerprint,
                        int (*)(nprof_slowlog *, uint32_t, uint32_t, nprof_buf *)),
               "nprof_slowlog_by_fingerprint");

/* The renamed types are the new ones. */
_Static_assert(_Generic((nprof_middleware *)0, nprof_mw *: 1, default: 0), "nprof_middleware");
_Static_assert(_Generic((nprof_redact_options *)0, nprof_redactor_options *: 1, default: 0),
               "nprof_redact_options");

/* A macro alias is the new function itself: its address is the new function's. */
TEST(old_function_names_are_the_new_functions)
{
    ASSERT_TRUE(nprof_middleware_create == nprof_mw_create);
    ASSERT_TRUE(nprof_middleware_destroy == nprof_mw_destroy);
    ASSERT_TRUE(nprof_middleware_runtime == nprof_mw_runtime);
    ASSERT_TRUE(nprof_mw_route_stats_get == nprof_mw_get_route_stats);
    ASSERT_TRUE(nprof_mw_phase == nprof_mw_mark_phase);
    ASSERT_TRUE(nprof_mw_response_headers == nprof_mw_get_response_headers);
    ASSERT_TRUE(nprof_profile_json == nprof_profile_render_json);
    ASSERT_TRUE(nprof_profile_collapsed == nprof_profile_render_collapsed);
    ASSERT_TRUE(nprof_profile_header == nprof_profile_render_header);
    ASSERT_TRUE(nprof_profile_pattern == nprof_profile_get_pattern);
    ASSERT_TRUE(nprof_profile_query == nprof_profile_get_query);
    ASSERT_TRUE(nprof_profile_span == nprof_profile_get_span);
    ASSERT_TRUE(nprof_config_option == nprof_config_get_option);
    ASSERT_TRUE(nprof_store_flame_graph == nprof_store_render_collapsed);
    ASSERT_TRUE(nprof_store_slowest == nprof_store_snapshot_slowest);
    ASSERT_TRUE(nprof_querystats_json == nprof_querystats_render_json);
    ASSERT_TRUE(nprof_pq_json == nprof_pq_render_json);
    ASSERT_TRUE(nprof_pq_thread_exclude == nprof_pq_exclude_thread);
    ASSERT_TRUE(nprof_redact == nprof_redactor_apply);
    ASSERT_TRUE(nprof_redact_options_init == nprof_redactor_options_init);
    ASSERT_TRUE(nprof_slowlog_stats_get == nprof_slowlog_get_stats);
    ASSERT_TRUE(nprof_slowlog_recent == nprof_slowlog_read_recent);
    ASSERT_TRUE(nprof_slowlog_slowest == nprof_slowlog_read_slowest);
    ASSERT_TRUE(nprof_slowlog_by_fingerprint == nprof_slowlog_read_by_fingerprint);
}

/* A 0.1 program, unchanged: a middleware request, its profile and the store by old names. */
TEST(a_program_written_with_the_old_names_still_runs)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.sample_every = 1;
    nprof_middleware *mw = NULL;
    ASSERT_OK(nprof_middleware_create(rt, &o, &mw));
    ASSERT_TRUE(nprof_middleware_runtime(mw) == rt);

    nprof_mw_request req = {.method = "GET", .method_len = 3, .path = "/users/7", .path_len = 8};
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &req, &st));
    ASSERT_OK(nprof_mw_phase(&st, NPROF_PHASE_HANDLER));
    nprof_query q = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000};
    ASSERT_OK(nprof_sql_record(st.profile, &q));
    char h[NPROF_HEADER_MAX];
    size_t hlen = 0;
    ASSERT_OK(nprof_profile_header(st.profile, h, sizeof h, &hlen));
    ASSERT_TRUE(hlen > 0 && strncmp(h, "total=", 6) == 0);
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_query(st.profile, 0, &qi));
    ASSERT_MEM_STR(qi.sql, qi.sql_len, "SELECT 1");
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_pattern(st.profile, 0, &pi));
    ASSERT_EQ_U64(pi.count, 1);
    nprof_span_info si;
    ASSERT_OK(nprof_profile_span(st.profile, 0, &si));
    nprof_buf json = NPROF_BUF_INIT, stacks = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_json(st.profile, &json));
    ASSERT_TRUE(strstr(json.data, "\"SELECT 1\"") != NULL);
    ASSERT_OK(nprof_profile_collapsed(st.profile, &stacks));
    ASSERT_TRUE(stacks.len > 0);
    nprof_mw_headers early;
    ASSERT_OK(nprof_mw_response_headers(&st, 200, &early));
    ASSERT_OK(nprof_mw_request_end(&st, 200, NULL, NULL, NULL));

    nprof_mw_route_stats rs;
    ASSERT_OK(nprof_mw_route_stats_get(mw, "GET", 3, "/users/{id}", 11, &rs));
    ASSERT_EQ_U64(rs.count, 1);
    /* The old call returned the template's length, and still does. */
    char tmpl[64];
    ASSERT_EQ_INT(nprof_mw_route_template(mw, "/users/7", 8, tmpl, sizeof tmpl), 11);
    ASSERT_STR(tmpl, "/users/{id}");
    ASSERT_EQ_INT(nprof_mw_route_template(mw, "/users/7", 8, tmpl, 4), NPROF_ERANGE);

    nprof_store *store = nprof_runtime_store(rt);
    nprof_snapshot *snap = NULL;
    ASSERT_OK(nprof_store_slowest(store, 5, &snap));
    ASSERT_EQ_U64(nprof_snapshot_count(snap), 1);
    nprof_snapshot_release(snap);
    nprof_buf flame = NPROF_BUF_INIT;
    ASSERT_OK(nprof_store_flame_graph(store, &flame));
    ASSERT_TRUE(flame.len > 0);

    nprof_buf_free(&json);
    nprof_buf_free(&stacks);
    nprof_buf_free(&flame);
    nprof_middleware_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* The old calls whose result was a length keep that result, through their inline wrappers. */
TEST(old_length_returning_calls_keep_their_results)
{
    char buf[32];
    ASSERT_EQ_INT(nprof_format_duration(1200000, buf, sizeof buf), 5);
    ASSERT_STR(buf, "1.2ms");
    ASSERT_EQ_INT(nprof_format_duration(1200000, buf, 3), NPROF_ERANGE);

    nprof_option_info oi;
    ASSERT_OK(nprof_config_option(0, &oi));
    ASSERT_TRUE(oi.name != NULL);

    nprof_redact_options ro;
    nprof_redact_options_init(&ro);
    nprof_redactor *r = NULL;
    ASSERT_OK(nprof_redactor_create(&ro, &r));
    static const char in[] = "password=hunter2";
    size_t n = 0;
    ASSERT_EQ_INT(nprof_redact(r, in, sizeof in - 1, buf, sizeof buf, &n, NULL), 1);
    ASSERT_MEM_STR(buf, n, "password=[redacted]");
    nprof_redactor_destroy(r);

    int was = nprof_pq_thread_exclude(1);
    ASSERT_EQ_INT(nprof_pq_thread_exclude(was), 1);
}

int main(void)
{
    RUN(old_function_names_are_the_new_functions);
    RUN(a_program_written_with_the_old_names_still_runs);
    RUN(old_length_returning_calls_keep_their_results);
    return TEST_SUMMARY();
}
