/*
 * tests/test_middleware_threads.c: many threads finishing requests while another renders
 * every dashboard page, the way a server runs under load with someone watching.  Run under
 * TSan in the sanitizer build.  At the end nothing is lost: the totals and the route rows
 * account for every request, so does the per-second timeline, and one request in
 * stack_sample_every was picked for stack sampling across all threads.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "json_check.h"
#include "nprof_test.h"
#include "test.h"

#include "middleware/internal.h"
#include "nanoprof/middleware.h"

#define THREADS 6
#define REQUESTS 1500

static nprof_mw *mw;
static _Atomic int writers_done;
static _Atomic int stacks_sampled; /* requests the middleware picked for stack sampling */

static void *writer(void *arg)
{
    int t = (int)(intptr_t)arg;
    char path[64];
    for (int i = 0; i < REQUESTS; i++) {
        snprintf(path, sizeof path, "/items/%d/part%d", i, (i + t) % 7);
        nprof_mw_request r = {.method = "GET", .method_len = 3, .path = path,
                              .path_len = strlen(path), .query = NULL, .query_len = 0,
                              .route = NULL, .route_len = 0, .header = NULL, .user = NULL,
                              .start_ticks = 0};
        nprof_mw_state st;
        if (nprof_mw_request_begin(mw, &r, &st))
            continue;
        nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
        if (st.sample_stacks) {
            nprof_frame f[] = {{.name = "view", .name_len = 4}, {.name = path, .name_len = 6}};
            nprof_profile_add_sample(st.profile, f, 2, 1000000, 0);
            atomic_fetch_add(&stacks_sampled, 1);
        }
        int queries = i % 11 == 0 ? 6 : 1; /* some N+1 */
        for (int q = 0; q < queries; q++) {
            char sql[64];
            int n = snprintf(sql, sizeof sql, "SELECT * FROM t%d WHERE id = %d", i % 3, q);
            nprof_query qq = {.sql = sql, .sql_len = (size_t)n,
                              .duration_ns = i % 97 == 0 ? 5000000 : 1000};
            nprof_sql_record(nprof_current(), &qq);
        }
        nprof_mw_headers hs;
        nprof_mw_request_end(&st, i % 50 == 0 ? 500 : 200, &hs, NULL, NULL);
    }
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

static int render_failures, renders;

static void *reader(void *arg)
{
    (void)arg;
    static const char *pages[] = {"/debug/performance/json", "/debug/performance/metrics",
                                  "/debug/performance", "/debug/performance/flamegraph.svg",
                                  "/debug/performance/trace.json",
                                  "/debug/performance/routes/speedscope.json",
                                  "/debug/performance/requests/0123456789abcdef/trace.json"};
    enum { PAGES = sizeof pages / sizeof pages[0] };
    int k = 0;
    while (atomic_load(&writers_done) < THREADS || k < PAGES) {
        int unknown = k % PAGES == PAGES - 1; /* a request id no request has: 404 */
        const char *page = pages[k++ % PAGES];
        nprof_mw_request r = {.method = "GET", .method_len = 3, .path = page,
                              .path_len = strlen(page), .query = NULL, .query_len = 0,
                              .route = NULL, .route_len = 0, .header = NULL, .user = NULL,
                              .start_ticks = 0};
        nprof_mw_response resp;
        if (nprof_mw_handle(mw, &r, &resp) != 1 || resp.status != (unknown ? 404 : 200)) {
            render_failures++;
        } else if (strstr(page, "json") && !unknown) {
            size_t where;
            if (!json_check(resp.body.data, resp.body.len, &where))
                render_failures++;
        }
        renders++;
        nprof_mw_response_free(&resp);
    }
    return NULL;
}

TEST(requests_and_dashboards_at_once)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1,max_history=200,"
                                     "stack_sample_every=5");
    ASSERT_TRUE(rt);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.sample_every = 3;
    ASSERT_OK(nprof_mw_create(rt, &o, &mw));
    pthread_t w[THREADS], rd;
    pthread_create(&rd, NULL, reader, NULL);
    for (int t = 0; t < THREADS; t++)
        pthread_create(&w[t], NULL, writer, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(w[t], NULL);
    pthread_join(rd, NULL);
    ASSERT_EQ_INT(render_failures, 0);
    ASSERT_TRUE(renders >= 5);
    nprof_mw_totals tot;
    ASSERT_OK(nprof_mw_get_totals(mw, &tot));
    ASSERT_EQ_U64(tot.requests, THREADS * REQUESTS);
    ASSERT_EQ_U64(tot.errors, THREADS * (REQUESTS / 50));
    ASSERT_EQ_U64(tot.routes, 7); /* /items/{id}/partN */
    uint64_t sum = 0;
    for (int p = 0; p < 7; p++) {
        char route[32];
        int n = snprintf(route, sizeof route, "/items/{id}/part%d", p);
        nprof_mw_route_stats s;
        ASSERT_OK(nprof_mw_get_route_stats(mw, "GET", 3, route, (size_t)n, &s));
        sum += s.count;
        ASSERT_U64_OP(s.p50_ns, <=, s.p99_ns);
        ASSERT_U64_OP(s.p99_ns, <=, s.max_ns);
    }
    ASSERT_EQ_U64(sum, THREADS * REQUESTS);
    ASSERT_EQ_U64(tot.n_plus_one_patterns, 3);
    /* The timeline too, in the seconds they ended in (the run takes far less than its two
     * minutes; each thread has a shard of its own, so no slot was being emptied by another). */
    nprof__tl_point pts[NPROF__TL_SLOTS];
    nprof__mw_timeline(mw, nprof_now_ns() / NPROF__TL_INTERVAL_NS, pts, NPROF__TL_SLOTS);
    uint64_t in_timeline = 0, errors = 0;
    for (size_t k = 0; k < NPROF__TL_SLOTS; k++) {
        in_timeline += pts[k].count;
        errors += pts[k].errors;
    }
    ASSERT_EQ_U64(in_timeline, THREADS * REQUESTS);
    ASSERT_EQ_U64(errors, tot.errors);
    /* One request in five across every thread: the counter is shared, so exactly. */
    ASSERT_EQ_INT(atomic_load(&stacks_sampled), THREADS * REQUESTS / 5);
    printf("     %d renders while %d requests finished\n", renders, THREADS * REQUESTS);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(requests_and_dashboards_at_once);
    return TEST_SUMMARY();
}
