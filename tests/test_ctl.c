/*
 * tests/test_ctl.c: the upper layers' figures under the one introspection namespace: every
 * stats.mw.*, stats.querystats.*, stats.slowlog.* and stats.pq.* name equals the layer's own
 * stats struct, names come and go with their layer, a walk's order does not depend on who
 * registered first, and reads stay safe while layers come and go on other threads (TSan).
 */
#include <stdatomic.h>

#include "nprof_test.h"
#include "runtime/profile.h"
#include "test.h"

#include "nanoprof/middleware.h"
#include "nanoprof/pq.h"

static nprof_mw_request get_of(const char *path)
{
    return (nprof_mw_request){.method = "GET", .method_len = 3, .path = path,
                              .path_len = strlen(path)};
}

/* Requests on three routes, some with queries, some answered 500. */
static void traffic(nprof_mw *mw, int n)
{
    static const char *paths[] = {"/users/1", "/articles", "/orders/7"};
    for (int i = 0; i < n; i++) {
        nprof_mw_request r = get_of(paths[i % 3]);
        nprof_mw_state st;
        if (nprof_mw_request_begin(mw, &r, &st))
            continue;
        for (int q = 0; q < i % 4; q++) {
            nprof_query qq = {.sql = "SELECT 1", .sql_len = 8,
                              .duration_ns = i % 5 ? 1000 : 200000000};
            nprof_sql_record(st.profile, &qq);
        }
        nprof_mw_headers hs;
        nprof_mw_request_end(&st, i % 7 == 6 ? 500 : 200, &hs, NULL, NULL);
    }
}

TEST(every_mw_name_equals_its_field_of_the_totals)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    traffic(mw, 40);
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.requests, 40);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.requests"), t.requests);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.queries"), t.queries);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.sql_ns"), t.sql_ns);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.slow_queries"), t.slow_queries);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.n_plus_one_patterns"), t.n_plus_one_patterns);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.n_plus_one_requests"), t.n_plus_one_requests);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.over_budget"), t.over_budget);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.errors"), t.errors);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.kept"), t.kept);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.routes"), t.routes);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(mw_names_go_with_their_middleware)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_ctl_value v;
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.mw.requests", &v), NPROF_ENOENT);
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    ASSERT_OK(nprof_ctl_get(rt, "stats.mw.requests", &v));
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.mw.no_such_name", &v), NPROF_ENOENT);
    nprof_mw_destroy(mw);
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.mw.requests", &v), NPROF_ENOENT);
    nprof_runtime_destroy(rt);
}

/* Two middlewares on one runtime: the names show the older; the dashboard of each shows its
 * own totals; the newer's names show once the older is gone. */
TEST(two_middlewares_the_older_is_named_and_each_dashboard_is_its_own)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *a = NULL, *b = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &a));
    ASSERT_OK(nprof_mw_create(rt, NULL, &b));
    traffic(a, 3);
    traffic(b, 5);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.requests"), 3);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_mw_render_json(b, &out));
    ASSERT_TRUE(strstr(out.data, "\"total_requests\":5,") != NULL);
    out.len = 0;
    ASSERT_OK(nprof_mw_render_prometheus(b, &out));
    ASSERT_TRUE(strstr(out.data, "\nnanoprof_requests_total 5\n") != NULL);
    nprof_buf_free(&out);
    nprof_mw_destroy(a);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.mw.requests"), 5);
    nprof_mw_destroy(b);
    nprof_runtime_destroy(rt);
}

TEST(querystats_names_equal_size_capacity_and_dropped)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_querystats *qs = NULL;
    ASSERT_OK(nprof_querystats_create(rt, 16, &qs));
    for (uint64_t fp = 1; fp <= 40; fp++) /* more shapes than the table holds */
        nprof_querystats_add(qs, fp, "SELECT 1", 8, 1000 * fp, 1, 0);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.querystats.size"), nprof_querystats_size(qs));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.querystats.capacity"), nprof_querystats_capacity(qs));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.querystats.dropped"), nprof_querystats_dropped(qs));
    ASSERT_TRUE(nprof_querystats_size(qs) > 0);
    nprof_querystats_destroy(qs);
    nprof_ctl_value v;
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.querystats.size", &v), NPROF_ENOENT);
    nprof_runtime_destroy(rt);
}

/* A log whose database cannot be reached: the queue fills, nothing is written. */
TEST(slowlog_names_equal_its_stats)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_slowlog_options o;
    nprof_slowlog_options_init(&o);
    o.runtime = rt;
    o.queue_slots = 8;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, "host=/nonexistent-nanoprof port=1 connect_timeout=1", &o));
    for (int i = 0; i < 12; i++) {
        nprof_slowlog_entry e = {.sql = "SELECT 1", .sql_len = 8, .duration_ms = 500};
        nprof_slowlog_enqueue(log, &e);
    }
    nprof_slowlog_stats s;
    ASSERT_OK(nprof_slowlog_get_stats(log, &s));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.enqueued"), s.enqueued);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.dropped"), s.dropped);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.written"), s.written);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.truncated"), s.truncated);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.redactions"), s.redactions);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.batches"), s.batches);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.plans"), s.plans);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.deleted"), s.deleted);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.queue_slots"), s.queue_slots);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.slowlog.connected"), (uint64_t)s.connected);
    ASSERT_EQ_U64(s.enqueued + s.dropped, 12);
    /* the writer may be between a retry and the next: these agree with one read, not two */
    ASSERT_TRUE(ctl_u64(rt, "stats.slowlog.unwritten") != UINT64_MAX);
    ASSERT_TRUE(ctl_u64(rt, "stats.slowlog.queue_depth") <= s.queue_slots);
    ASSERT_TRUE(ctl_u64(rt, "stats.slowlog.reconnects") != UINT64_MAX);
    ASSERT_TRUE(ctl_u64(rt, "stats.slowlog.batch_retries") != UINT64_MAX);
    nprof_slowlog_close(log, 100);
    nprof_ctl_value v;
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.slowlog.enqueued", &v), NPROF_ENOENT);
    nprof_runtime_destroy(rt);
}

TEST(pq_names_equal_its_stats_while_the_layer_has_the_runtime)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_OK(nprof_pq_init(rt));
    nprof_pq_call call;
    nprof_pq_begin(&call);
    nprof_pq_end(&call, NULL, "SELECT 1", 8, 0, NULL, NULL, NULL, NULL); /* no conn: not kept */
    nprof_pq_stats s;
    ASSERT_OK(nprof_pq_get_stats(&s));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.recorded"), s.recorded);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.in_profile"), s.in_profile);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.failures"), s.failures);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.aborted"), s.aborted);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.dropped_conns"), s.dropped_conns);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.dropped_pending"), s.dropped_pending);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.dropped_statements"), s.dropped_statements);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.unknown_statements"), s.unknown_statements);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.pq.conns"), s.conns);
    /* the layer's table is named too */
    ASSERT_EQ_U64(ctl_u64(rt, "stats.querystats.capacity"),
                  nprof_querystats_capacity(nprof_pq_querystats()));
    nprof_pq_shutdown();
    nprof_ctl_value v;
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.pq.recorded", &v), NPROF_ENOENT);
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.querystats.size", &v), NPROF_ENOENT);
    nprof_runtime_destroy(rt);
}

/* ---- the registry itself ---- */

static const char *const two_names[] = {"first", "second"};

static void read_two(void *user, nprof_ctl_value *values)
{
    uint64_t base = (uint64_t)(uintptr_t)user;
    values[0] = (nprof_ctl_value){.type = NPROF_CTL_UINT, .u = base + 1};
    values[1] = (nprof_ctl_value){.type = NPROF_CTL_UINT, .u = base + 2};
}

static const nprof__ctl_provider two = {two_names, 2, read_two};

typedef struct walk {
    char names[64][NPROF__CTL_NAME_MAX];
    size_t count;
} walk;

static int keep_name(void *user, const char *name, const nprof_ctl_value *v)
{
    (void)v;
    walk *w = user;
    if (w->count < 64)
        snprintf(w->names[w->count++], NPROF__CTL_NAME_MAX, "%s", name);
    return 0;
}

TEST(foreach_orders_providers_by_prefix_not_by_registration)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_OK(nprof__ctl_register(rt, "stats.zz", &two, (void *)(uintptr_t)100));
    ASSERT_OK(nprof__ctl_register(rt, "stats.aa", &two, (void *)(uintptr_t)200));
    walk w1 = {.count = 0}, w2 = {.count = 0};
    ASSERT_OK(nprof_ctl_foreach(rt, "stats.", keep_name, &w1));
    ASSERT_OK(nprof_ctl_foreach(rt, "stats.", keep_name, &w2));
    ASSERT_EQ_U64(w1.count, w2.count);
    for (size_t i = 0; i < w1.count; i++)
        ASSERT_STR(w1.names[i], w2.names[i]);
    size_t aa = w1.count, zz = w1.count;
    for (size_t i = 0; i < w1.count; i++) {
        if (!strcmp(w1.names[i], "stats.aa.first"))
            aa = i;
        if (!strcmp(w1.names[i], "stats.zz.first"))
            zz = i;
    }
    ASSERT_TRUE(aa < zz && zz < w1.count);
    ASSERT_STR(w1.names[aa + 1], "stats.aa.second");
    ASSERT_EQ_U64(ctl_u64(rt, "stats.aa.second"), 202);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.zz.first"), 101);
    nprof__ctl_unregister(rt, "stats.zz", (void *)(uintptr_t)100);
    nprof__ctl_unregister(rt, "stats.aa", (void *)(uintptr_t)200);
    walk w3 = {.count = 0};
    ASSERT_OK(nprof_ctl_foreach(rt, "stats.aa", keep_name, &w3));
    ASSERT_EQ_U64(w3.count, 0);
    nprof_runtime_destroy(rt);
}

TEST(a_shared_prefix_shows_the_older_until_it_unregisters)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_OK(nprof__ctl_register(rt, "stats.x", &two, (void *)(uintptr_t)10));
    ASSERT_OK(nprof__ctl_register(rt, "stats.x", &two, (void *)(uintptr_t)20));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.x.first"), 11);
    walk w = {.count = 0};
    ASSERT_OK(nprof_ctl_foreach(rt, "stats.x", keep_name, &w));
    ASSERT_EQ_U64(w.count, 2); /* once, not once per provider */
    nprof__ctl_snapshot snap;
    ASSERT_OK(nprof__ctl_snapshot_take(rt, "stats.x", (void *)(uintptr_t)20, &snap));
    ASSERT_EQ_U64(nprof__ctl_snapshot_u64(&snap, "stats.x.second"), 22);
    nprof__ctl_unregister(rt, "stats.x", (void *)(uintptr_t)10);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.x.first"), 21);
    nprof__ctl_unregister(rt, "stats.x", (void *)(uintptr_t)20);
    nprof_ctl_value v;
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.x.first", &v), NPROF_ENOENT);
    ASSERT_EQ_INT(nprof__ctl_snapshot_take(rt, "stats.x", (void *)(uintptr_t)20, &snap),
                  NPROF_ENOENT);
    nprof_runtime_destroy(rt);
}

TEST(register_refuses_a_bad_provider)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof__ctl_provider none = {two_names, 2, NULL};
    ASSERT_EQ_INT(nprof__ctl_register(rt, "stats.y", &none, NULL), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof__ctl_register(rt, NULL, &two, NULL), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof__ctl_register(rt, "stats.a_prefix_longer_than_the_room_it_has", &two, NULL),
                  NPROF_EINVAL);
    nprof_runtime_destroy(rt);
}

/* ---- reads while layers come and go (run under TSan) ---- */

static nprof_runtime *shared_rt;
static atomic_int stop_readers;

static int count_name(void *user, const char *name, const nprof_ctl_value *v)
{
    (void)name;
    (void)v;
    (*(size_t *)user)++;
    return 0;
}

static void *reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_readers)) {
        nprof_ctl_value v;
        nprof_ctl_get(shared_rt, "stats.mw.requests", &v); /* there or not: never a crash */
        nprof_ctl_get(shared_rt, "stats.querystats.size", &v);
        size_t n = 0;
        if (nprof_ctl_foreach(shared_rt, "stats.", count_name, &n) != NPROF_OK || n == 0)
            return (void *)1;
    }
    return NULL;
}

static void *churn(void *arg)
{
    if ((intptr_t)arg > 0)
        return reader(arg);
    for (int i = 0; i < 200; i++) {
        nprof_mw *mw = NULL;
        nprof_querystats *qs = NULL;
        if (nprof_mw_create(shared_rt, NULL, &mw) ||
            nprof_querystats_create(shared_rt, 16, &qs))
            return (void *)1;
        traffic(mw, 3);
        nprof_querystats_destroy(qs);
        nprof_mw_destroy(mw);
    }
    atomic_store(&stop_readers, 1);
    return NULL;
}

TEST(reads_are_safe_while_layers_come_and_go)
{
    shared_rt = make_runtime(NULL);
    atomic_store(&stop_readers, 0);
    ASSERT_TRUE(run_threads(4, churn));
    nprof_runtime_destroy(shared_rt);
}

int main(void)
{
    RUN(every_mw_name_equals_its_field_of_the_totals);
    RUN(mw_names_go_with_their_middleware);
    RUN(two_middlewares_the_older_is_named_and_each_dashboard_is_its_own);
    RUN(querystats_names_equal_size_capacity_and_dropped);
    RUN(slowlog_names_equal_its_stats);
    RUN(pq_names_equal_its_stats_while_the_layer_has_the_runtime);
    RUN(foreach_orders_providers_by_prefix_not_by_registration);
    RUN(a_shared_prefix_shows_the_older_until_it_unregisters);
    RUN(register_refuses_a_bad_provider);
    RUN(reads_are_safe_while_layers_come_and_go);
    return TEST_SUMMARY();
}
