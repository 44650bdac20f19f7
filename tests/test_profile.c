/*
 * tests/test_profile.c: RequestProfile on the request path: lifecycle, exclusive phase
 * timing, span trees, query recording and its bounds, the thread's current profile, explicit
 * handles interleaved on one thread, and what bad arguments get.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"

static nprof_query sql_query(const char *sql, uint64_t duration_ns)
{
    nprof_query q;
    memset(&q, 0, sizeof q);
    q.sql = sql;
    q.sql_len = strlen(sql);
    q.duration_ns = duration_ns;
    return q;
}

TEST(a_request_records_method_path_status_and_total)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt);
    nprof_profile *p;
    uint64_t before = nprof_now_ns();
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/api/users", 10, 0, &p));
    test_spin_ns(300000);
    ASSERT_OK(nprof_request_end(p, 200));
    uint64_t after = nprof_now_ns();
    ASSERT_EQ_INT(nprof_request_end(p, 200), NPROF_ESTATE);
    nprof_profile_info info;
    ASSERT_OK(nprof_profile_get_info(p, &info));
    ASSERT_MEM_STR(info.method, info.method_len, "GET");
    ASSERT_MEM_STR(info.path, info.path_len, "/api/users");
    ASSERT_EQ_INT(info.status, 200);
    ASSERT_EQ_INT(info.ended, 1);
    /* At least the spin; at most what the clock saw around the request, however long a busy
     * machine kept this thread waiting. */
    ASSERT_U64_OP(info.total_ns, >=, 300000);
    ASSERT_U64_OP(info.total_ns, <=, after - before);
    ASSERT_U64_OP(info.start_ns, >=, before - 1000);
    ASSERT_EQ_U64(info.request_id_len, 16);
    ASSERT_EQ_U64(info.route_len, 0);
    ASSERT_OK(nprof_request_submit(p));
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(rt, "stats.requests", &v));
    ASSERT_EQ_U64(v.u, 1);
    ASSERT_OK(nprof_ctl_get(rt, "stats.requests_submitted", &v));
    ASSERT_EQ_U64(v.u, 1);
    nprof_runtime_destroy(rt);
}

TEST(a_server_supplied_start_counts_from_when_the_request_arrived)
{
    nprof_runtime *rt = make_runtime(NULL);
    uint64_t arrived = nprof_ticks();
    test_spin_ns(2000000);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, arrived, &p));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_U64_OP(info.total_ns, >=, 2000000);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(phases_are_timed_exclusively_of_the_phases_inside_them)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "POST", 4, "/x", 2, 0, &p));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE));
    test_spin_ns(1000000);
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_ROUTING)); /* nested: middleware pauses */
    test_spin_ns(500000);
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_ROUTING));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    test_spin_ns(3000000);
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_HANDLER));
    test_spin_ns(1000000);
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE));
    ASSERT_OK(nprof_phase_add_ns(p, NPROF_PHASE_ROUTING, 45));
    ASSERT_OK(nprof_request_end(p, 201));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    /* Lower bounds from the spins; no upper bounds from the clock, which a busy machine can
     * stretch: exclusivity is checked against the spans instead. */
    ASSERT_U64_OP(info.middleware_ns, >=, 2000000);
    ASSERT_U64_OP(info.routing_ns, >=, 500045);
    ASSERT_U64_OP(info.handler_ns, >=, 3000000);
    ASSERT_U64_OP(info.middleware_ns + info.routing_ns + info.handler_ns, <=, info.total_ns + 45);
    /* The phases are spans too: routing and handler sit inside middleware. */
    ASSERT_EQ_U64(info.span_count, 3);
    nprof_span_info s0, s1, s2;
    ASSERT_OK(nprof_profile_get_span(p, 0, &s0));
    ASSERT_OK(nprof_profile_get_span(p, 1, &s1));
    ASSERT_OK(nprof_profile_get_span(p, 2, &s2));
    ASSERT_MEM_STR(s0.name, s0.name_len, "middleware");
    ASSERT_EQ_INT(s0.parent, NPROF_SPAN_ROOT);
    ASSERT_EQ_INT(s0.phase, NPROF_PHASE_MIDDLEWARE);
    ASSERT_MEM_STR(s1.name, s1.name_len, "routing");
    ASSERT_EQ_INT(s1.parent, 0);
    ASSERT_MEM_STR(s2.name, s2.name_len, "handler");
    ASSERT_EQ_INT(s2.parent, 0);
    ASSERT_U64_OP(s0.duration_ns, >=, 5500000);
    /* Middleware's own time is its span minus the phases inside it (to rounding). */
    uint64_t inner = s1.duration_ns + s2.duration_ns;
    ASSERT_U64_OP(info.middleware_ns + inner, <=, s0.duration_ns + 10);
    ASSERT_U64_OP(info.middleware_ns + inner + 10, >=, s0.duration_ns);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(phase_calls_out_of_order_get_clear_codes)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_EQ_INT(nprof_phase_end(p, NPROF_PHASE_HANDLER), NPROF_ESTATE);
    ASSERT_EQ_INT(nprof_phase_begin(p, 7), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_phase_begin(p, -1), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_phase_add_ns(p, 3, 1), NPROF_EINVAL);
    /* Ending an outer phase closes the ones opened inside it. */
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE));
    ASSERT_EQ_INT(nprof_phase_end(p, NPROF_PHASE_HANDLER), NPROF_ESTATE);
    /* A phase left open is closed by the end of the request and marked. */
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    ASSERT_OK(nprof_request_end(p, 500));
    nprof_span_info s;
    ASSERT_OK(nprof_profile_get_span(p, 2, &s));
    ASSERT_EQ_INT(s.unclosed, 1);
    ASSERT_EQ_INT(nprof_phase_begin(p, NPROF_PHASE_HANDLER), NPROF_ESTATE);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(spans_nest_under_the_current_span_and_end_like_brackets)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    int render = nprof_span_begin_static(p, "render", 6);
    ASSERT_INT_OP(render, >=, 0);
    char transient[] = "template:users.html";
    int tpl = nprof_span_begin(p, transient, strlen(transient));
    memset(transient, 'X', strlen(transient)); /* copied names survive the caller's buffer */
    ASSERT_OK(nprof_query_record(p, &(nprof_query){.sql = "SELECT 1", .sql_len = 8, .duration_ns = 10}));
    ASSERT_OK(nprof_span_end(p, tpl));
    ASSERT_EQ_INT(nprof_span_end(p, tpl), NPROF_ESTATE);
    ASSERT_OK(nprof_span_end(p, render));
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_HANDLER));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_span_info s;
    ASSERT_OK(nprof_profile_get_span(p, (size_t)render, &s));
    ASSERT_MEM_STR(s.name, s.name_len, "render");
    ASSERT_EQ_INT(s.parent, 0);
    ASSERT_EQ_INT(s.phase, -1);
    ASSERT_OK(nprof_profile_get_span(p, (size_t)tpl, &s));
    ASSERT_MEM_STR(s.name, s.name_len, "template:users.html");
    ASSERT_EQ_INT(s.parent, render);
    ASSERT_EQ_INT(s.unclosed, 0);
    nprof_query_info q;
    ASSERT_OK(nprof_profile_get_query(p, 0, &q));
    ASSERT_EQ_INT(q.span, tpl);
    ASSERT_EQ_INT(nprof_profile_get_span(p, 99, &s), NPROF_ENOENT);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(ending_a_span_closes_the_spans_left_open_inside_it)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    int outer = nprof_span_begin_static(p, "outer", 5);
    int inner = nprof_span_begin_static(p, "inner", 5);
    ASSERT_OK(nprof_span_end(p, outer));
    int after = nprof_span_begin_static(p, "after", 5);
    nprof_span_info s;
    nprof_profile_get_span(p, (size_t)inner, &s);
    ASSERT_EQ_INT(s.unclosed, 1);
    nprof_profile_get_span(p, (size_t)after, &s);
    ASSERT_EQ_INT(s.parent, NPROF_SPAN_ROOT);
    ASSERT_EQ_INT(nprof_span_end(p, 42), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_span_end(p, NPROF_ELIMIT), NPROF_ELIMIT); /* a failed begin passes through */
    ASSERT_EQ_INT(nprof_span_end(p, 0 /* phase spans would refuse; this is "outer" */), NPROF_ESTATE);
    ASSERT_EQ_INT(nprof_span_begin_ex(p, 77, "x", 1, 0), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_span_begin_ex(p, -3, "x", 1, 0), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_span_begin_ex(p, outer, "x", 1, 0), NPROF_EINVAL); /* closed parent */
    ASSERT_EQ_INT(nprof_span_begin(p, NULL, 4), NPROF_EINVAL);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(explicit_parents_let_interleaved_tasks_keep_their_own_subtrees)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    int a = nprof_span_begin_ex(p, 0, "task-a", 6, NPROF_SPAN_STATIC_NAME);
    int b = nprof_span_begin_ex(p, 0, "task-b", 6, NPROF_SPAN_STATIC_NAME);
    int a1 = nprof_span_begin_ex(p, a, "a-step", 6, 0);
    ASSERT_OK(nprof_span_end(p, a)); /* ends before b: order of tasks is free */
    int b1 = nprof_span_begin_ex(p, b, "b-step", 6, 0);
    ASSERT_OK(nprof_span_end(p, b1));
    ASSERT_OK(nprof_span_end(p, b));
    /* The current span was never moved: a tracked span still nests under the handler. */
    int c = nprof_span_begin_static(p, "sync", 4);
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_span_info s;
    nprof_profile_get_span(p, (size_t)a1, &s);
    ASSERT_EQ_INT(s.parent, a);
    ASSERT_EQ_INT(s.unclosed, 1); /* a1 was never ended */
    nprof_profile_get_span(p, (size_t)b1, &s);
    ASSERT_EQ_INT(s.parent, b);
    nprof_profile_get_span(p, (size_t)c, &s);
    ASSERT_EQ_INT(s.parent, 0);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(spans_past_max_spans_are_counted_and_their_children_attach_to_the_parent)
{
    nprof_runtime *rt = make_runtime("max_spans=40");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    int ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = nprof_span_begin_static(p, "deep", 4);
    ASSERT_INT_OP(ids[39], >=, 0);
    ASSERT_EQ_INT(ids[40], NPROF_ELIMIT);
    for (int i = 99; i >= 0; i--)
        nprof_span_end(p, ids[i]);
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.span_count, 40);
    ASSERT_EQ_U64(info.spans_dropped, 60);
    nprof_span_info s;
    nprof_profile_get_span(p, 39, &s);
    ASSERT_EQ_INT(s.unclosed, 0);
    nprof_request_discard(p);
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(rt, "stats.spans_dropped", &v));
    ASSERT_EQ_U64(v.u, 60);
    nprof_runtime_destroy(rt);
}

TEST(queries_are_copied_with_their_length_and_bytes_intact)
{
    nprof_runtime *rt = make_runtime("max_sql_bytes=64,max_params_bytes=8");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    char sql[] = "SELECT '\0x' FROM t WHERE name = 'caf\xC3\xA9' AND x = '\xFF'";
    size_t sql_len = sizeof sql - 1;
    nprof_query q = {.sql = sql, .sql_len = sql_len, .params = "('a\0b', 42, 'long tail')",
                     .params_len = 24, .duration_ns = 1500, .fingerprint = 0xfeedull,
                     .normalized = "SELECT ? FROM t", .normalized_len = 15};
    ASSERT_OK(nprof_query_record(p, &q));
    memset(sql, 'Z', sql_len); /* the profile kept its own copy */
    char long_sql[200];
    memset(long_sql, 'a', sizeof long_sql);
    ASSERT_OK(nprof_query_record(p, &(nprof_query){.sql = long_sql, .sql_len = sizeof long_sql, .duration_ns = 5}));
    ASSERT_OK(nprof_query_record(p, &(nprof_query){.sql = NULL, .sql_len = 0, .duration_ns = 1}));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 0, &qi));
    ASSERT_EQ_U64(qi.sql_len, sql_len);
    ASSERT_TRUE(memcmp(qi.sql, "SELECT '\0x' FROM t WHERE name = 'caf\xC3\xA9' AND x = '\xFF'", sql_len) == 0);
    ASSERT_EQ_U64(qi.params_len, 8);
    ASSERT_TRUE(memcmp(qi.params, "('a\0b', ", 8) == 0);
    ASSERT_MEM_STR(qi.normalized, qi.normalized_len, "SELECT ? FROM t");
    ASSERT_EQ_U64(qi.fingerprint, 0xfeed);
    ASSERT_EQ_U64(qi.duration_ns, 1500);
    ASSERT_OK(nprof_profile_get_query(p, 1, &qi));
    ASSERT_EQ_U64(qi.sql_len, 64);
    ASSERT_EQ_U64(qi.sql_full_len, 200);
    ASSERT_TRUE(qi.params == NULL && qi.normalized == NULL);
    ASSERT_OK(nprof_profile_get_query(p, 2, &qi));
    ASSERT_EQ_U64(qi.sql_len, 0);
    ASSERT_EQ_INT(nprof_profile_get_query(p, 3, &qi), NPROF_ENOENT);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.sql_count, 3);
    ASSERT_EQ_U64(info.sql_total_ns, 1506);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_hundred_thousand_queries_keep_the_first_n_and_count_all)
{
    nprof_runtime *rt = make_runtime("max_queries=1000");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/n-plus-one", 11, 0, &p));
    char sql[200];
    memset(sql, 'q', sizeof sql);
    int limited = 0;
    for (int i = 0; i < 100000; i++) {
        int rc = nprof_query_record(p, &(nprof_query){.sql = sql, .sql_len = sizeof sql, .duration_ns = 10});
        limited += rc == NPROF_ELIMIT;
        ASSERT_TRUE(rc == NPROF_OK || rc == NPROF_ELIMIT);
    }
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.sql_count, 100000);
    ASSERT_EQ_U64(info.sql_total_ns, 1000000);
    ASSERT_EQ_U64(info.queries_kept, 1000);
    ASSERT_EQ_U64(info.queries_dropped, 99000);
    ASSERT_EQ_INT(limited, 99000);
    ASSERT_U64_OP(info.memory_bytes, <=, 1u << 20);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(max_profile_bytes_bounds_a_profile_whatever_else_is_configured)
{
    nprof_runtime *rt = make_runtime("max_queries=1000000,max_profile_bytes=65536,max_sql_bytes=100000");
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    static char big[10000];
    memset(big, 'b', sizeof big);
    for (int i = 0; i < 1000; i++)
        nprof_query_record(p, &(nprof_query){.sql = big, .sql_len = sizeof big, .duration_ns = 1});
    for (int i = 0; i < 1000; i++)
        nprof_span_begin(p, big, 1000);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_U64_OP(info.memory_bytes, <=, 65536);
    ASSERT_EQ_U64(info.sql_count, 1000);
    ASSERT_U64_OP(info.queries_kept, <, 10);
    ASSERT_U64_OP(info.queries_dropped, >, 990);
    ASSERT_U64_OP(info.spans_dropped, >, 0);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(bad_query_arguments_get_einval_and_record_nothing)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_EQ_INT(nprof_query_record(p, NULL), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_query_record(p, &(nprof_query){.sql = NULL, .sql_len = 5}), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_query_record(p, &(nprof_query){.sql = "x", .sql_len = 1, .params_len = 3}), NPROF_EINVAL);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_EQ_U64(info.sql_count, 0);
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_EQ_INT(nprof_query_record(p, &(nprof_query){.sql = "x", .sql_len = 1}), NPROF_ESTATE);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(every_call_accepts_a_null_profile_and_does_nothing)
{
    nprof_query q = sql_query("SELECT 1", 5);
    ASSERT_EQ_INT(nprof_phase_begin(NULL, 0), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_phase_end(NULL, 0), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_phase_add_ns(NULL, 0, 1), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_span_begin(NULL, "x", 1), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_span_end(NULL, 0), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_query_record(NULL, &q), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_request_end(NULL, 200), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_request_submit(NULL), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_profile_set_route(NULL, "/", 1), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_profile_set_request_id(NULL, "x", 1), NPROF_ENOPROFILE);
    nprof_profile_info info;
    ASSERT_EQ_INT(nprof_profile_get_info(NULL, &info), NPROF_ENOPROFILE);
    char buf[NPROF_HEADER_MAX];
    ASSERT_EQ_INT(nprof_profile_render_header(NULL, buf, sizeof buf, NULL), NPROF_ENOPROFILE);
    nprof_request_discard(NULL);
    ASSERT_EQ_INT(nprof_query_record(nprof_current(), &q), NPROF_ENOPROFILE);
}

TEST(a_disabled_runtime_gives_no_profile)
{
    nprof_runtime *rt = make_runtime("enabled=0");
    nprof_profile *p = (nprof_profile *)1;
    ASSERT_EQ_INT(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p), NPROF_ENOPROFILE);
    ASSERT_TRUE(p == NULL);
    nprof_runtime_set_enabled(rt, 1);
    ASSERT_EQ_INT(nprof_runtime_enabled(rt), 1);
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    nprof_request_discard(p);
    ASSERT_EQ_INT(nprof_request_begin(NULL, "GET", 3, "/", 1, 0, &p), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_request_begin(rt, NULL, 3, "/", 1, 0, &p), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_request_begin(rt, "GET", 3, "/", 1, 0, NULL), NPROF_EINVAL);
    nprof_runtime_destroy(rt);
}

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

TEST(request_ids_are_unique_and_caller_ids_are_sanitized)
{
    nprof_runtime *rt = make_runtime(NULL);
    enum { N = 20000 };
    static char ids[N][16];
    for (int i = 0; i < N; i++) {
        nprof_profile *p;
        ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
        nprof_profile_info info;
        nprof_profile_get_info(p, &info);
        ASSERT_EQ_U64(info.request_id_len, 16);
        memcpy(ids[i], info.request_id, 16);
        nprof_request_discard(p);
    }
    qsort(ids, N, 16, compare_ids);
    for (int i = 1; i < N; i++)
        ASSERT_TRUE(memcmp(ids[i - 1], ids[i], 16) != 0);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_OK(nprof_profile_set_request_id(p, "abc\r\nX-Evil: 1", 14));
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    ASSERT_MEM_STR(info.request_id, info.request_id_len, "abc__X-Evil:_1");
    ASSERT_OK(nprof_profile_set_route(p, "/users/{id}", 11));
    nprof_profile_get_info(p, &info);
    ASSERT_MEM_STR(info.route, info.route_len, "/users/{id}");
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

static nprof_runtime *shared_rt;

static void *thread_with_its_own_current_profile(void *arg)
{
    intptr_t n = (intptr_t)arg;
    char path[32];
    int len = snprintf(path, sizeof path, "/thread/%d", (int)n);
    for (int r = 0; r < 2000; r++) {
        nprof_profile *p;
        if (nprof_request_begin(shared_rt, "GET", 3, path, (size_t)len, 0, &p) != NPROF_OK)
            return (void *)1;
        nprof_current_set(p);
        for (intptr_t i = 0; i <= n; i++) {
            nprof_query q = sql_query(path, 1);
            nprof_query_record(nprof_current(), &q); /* a hook that only knows the thread */
        }
        nprof_profile_info info;
        nprof_profile_get_info(nprof_current(), &info);
        if (info.sql_count != (uint64_t)n + 1 || info.path_len != (size_t)len ||
            memcmp(info.path, path, (size_t)len) != 0)
            return (void *)2;
        for (size_t i = 0; i < info.queries_kept; i++) {
            nprof_query_info qi;
            nprof_profile_get_query(p, i, &qi);
            if (qi.sql_len != (size_t)len || memcmp(qi.sql, path, (size_t)len) != 0)
                return (void *)3;
        }
        nprof_request_submit(p);
        if (nprof_current() != NULL) /* submit forgets the current profile */
            return (void *)4;
    }
    return NULL;
}

TEST(each_thread_has_its_own_current_profile)
{
    shared_rt = make_runtime(NULL);
    ASSERT_TRUE(run_threads(4, thread_with_its_own_current_profile));
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(shared_rt, "stats.requests_submitted", &v));
    ASSERT_EQ_U64(v.u, 8000);
    nprof_runtime_destroy(shared_rt);
}

TEST(explicit_handles_interleaved_on_one_thread_do_not_mix)
{
    nprof_runtime *rt = make_runtime(NULL);
    enum { N = 50 };
    nprof_profile *p[N];
    char paths[N][16];
    for (int i = 0; i < N; i++) {
        int len = snprintf(paths[i], sizeof paths[i], "/task/%d", i);
        ASSERT_OK(nprof_request_begin(rt, "GET", 3, paths[i], (size_t)len, 0, &p[i]));
    }
    /* An event loop: each step advances a different request. */
    for (int step = 0; step < 20; step++) {
        for (int i = step % 3; i < N; i += 3) {
            nprof_query q = sql_query(paths[i], (uint64_t)i);
            ASSERT_OK(nprof_query_record(p[i], &q));
        }
    }
    for (int i = 0; i < N; i++) {
        ASSERT_OK(nprof_request_end(p[i], 200 + i));
        nprof_profile_info info;
        nprof_profile_get_info(p[i], &info);
        ASSERT_EQ_INT(info.status, 200 + i);
        for (size_t k = 0; k < info.queries_kept; k++) {
            nprof_query_info qi;
            nprof_profile_get_query(p[i], k, &qi);
            ASSERT_MEM_STR(qi.sql, qi.sql_len, paths[i]);
            ASSERT_EQ_U64(qi.duration_ns, (uint64_t)i);
        }
        ASSERT_TRUE(nprof_current() == NULL); /* explicit handles never touch it */
        ASSERT_OK(nprof_request_submit(p[i]));
    }
    nprof_runtime_destroy(rt);
}

TEST(a_recycled_profile_carries_nothing_from_its_last_request)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "DELETE", 6, "/secret", 7, 0, &p));
    ASSERT_OK(nprof_profile_set_route(p, "/secret/{id}", 12));
    for (int i = 0; i < 40; i++) {
        nprof_query q = sql_query("SELECT password FROM users", 1000);
        nprof_query_record(p, &q);
        nprof_span_begin_static(p, "s", 1);
    }
    nprof_phase_add_ns(p, NPROF_PHASE_HANDLER, 99);
    nprof_request_discard(p);
    nprof_profile *again;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/public", 7, 0, &again));
    ASSERT_TRUE(again == p); /* the pool gave the same memory back */
    nprof_profile_info info;
    nprof_profile_get_info(again, &info);
    ASSERT_EQ_U64(info.sql_count, 0);
    ASSERT_EQ_U64(info.span_count, 0);
    ASSERT_EQ_U64(info.queries_kept, 0);
    ASSERT_EQ_U64(info.handler_ns, 0);
    ASSERT_EQ_U64(info.route_len, 0);
    ASSERT_MEM_STR(info.method, info.method_len, "GET");
    ASSERT_MEM_STR(info.path, info.path_len, "/public");
    nprof_request_discard(again);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(a_request_records_method_path_status_and_total);
    RUN(a_server_supplied_start_counts_from_when_the_request_arrived);
    RUN(phases_are_timed_exclusively_of_the_phases_inside_them);
    RUN(phase_calls_out_of_order_get_clear_codes);
    RUN(spans_nest_under_the_current_span_and_end_like_brackets);
    RUN(ending_a_span_closes_the_spans_left_open_inside_it);
    RUN(explicit_parents_let_interleaved_tasks_keep_their_own_subtrees);
    RUN(spans_past_max_spans_are_counted_and_their_children_attach_to_the_parent);
    RUN(queries_are_copied_with_their_length_and_bytes_intact);
    RUN(a_hundred_thousand_queries_keep_the_first_n_and_count_all);
    RUN(max_profile_bytes_bounds_a_profile_whatever_else_is_configured);
    RUN(bad_query_arguments_get_einval_and_record_nothing);
    RUN(every_call_accepts_a_null_profile_and_does_nothing);
    RUN(a_disabled_runtime_gives_no_profile);
    RUN(request_ids_are_unique_and_caller_ids_are_sanitized);
    RUN(each_thread_has_its_own_current_profile);
    RUN(explicit_handles_interleaved_on_one_thread_do_not_mix);
    RUN(a_recycled_profile_carries_nothing_from_its_last_request);
    return TEST_SUMMARY();
}
