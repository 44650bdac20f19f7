/*
 * bench/bench_middleware.c: what the middleware core costs.
 *
 * One runtime from nprof_config_init() defaults, one middleware from nprof_mw_options_init()
 * defaults (development mode: every response gets its headers; every request is kept).
 * Two figures, each the median of N runs with its jitter and same-run ratios:
 *
 *   (a) per-request aggregation and header rendering.  Cases in the same runs:
 *         ANCHOR  the plain handler without the profiler (copies the request path, as a
 *                 router would, and writes a response line);
 *         runtime request: the same handler profiled with the runtime alone (begin, phases
 *                 middleware / routing / handler, end, submit), as bench_request (b);
 *         middleware request: the same through nprof_mw_request_begin, phase marks and
 *                 nprof_mw_request_end filling X-Profile, Server-Timing, X-Query-Count and
 *                 X-Slow-Queries, with the route template given by the framework (one of 50);
 *         middleware request, templated: the same without a framework route, so the PCRE2
 *                 rules make the template from the path ("/api/v1/books/42/reviews").
 *       What the middleware adds (aggregation + headers) = middleware - runtime request.
 *       Target: <= 300 ns.
 *   (b) the JSON dashboard with 1,000 stored profiles and 200 routes (nprof_mw_render_json
 *       into a reused buffer).  ANCHOR: a snapshot of the same store taken and released,
 *       the floor of any reader.  Target: <= 2 ms.
 *
 * Usage: bench_middleware [scale]   (NPROF_BENCH_SCALE, NPROF_BENCH_RUNS, NPROF_BENCH_ONLY=a,b)
 */
#include "bench.h"
#include "nanoprof/nanoprof.h"

#define REQ_OPS 2000000u
#define DASH_OPS 3000u      /* renders per measurement: about 1 s */
#define SNAP_OPS 50000u     /* snapshots per measurement (the anchor): about 1 s */
#define ROUTES 50

static const char METHOD[] = "GET";
static const char PATH[] = "/api/v1/books/42/reviews";

typedef struct ctx {
    nprof_runtime *rt;
    nprof_mw *mw;
    char route_buf[64];
    char response[64];
    char routes[ROUTES][48];
    size_t route_len[ROUTES];
    unsigned next;
    nprof_buf out;
} ctx;

static inline void handler(ctx *c)
{
    memcpy(c->route_buf, PATH, sizeof PATH - 1);
    bench_escape(c->route_buf);
    memcpy(c->response, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", 50);
    bench_escape(c->response);
}

static inline int runtime_request(ctx *c)
{
    nprof_profile *p;
    int rc = nprof_request_begin(c->rt, METHOD, 3, PATH, sizeof PATH - 1, 0, &p);
    if (rc)
        return rc;
    nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE);
    nprof_phase_begin(p, NPROF_PHASE_ROUTING);
    nprof_phase_end(p, NPROF_PHASE_ROUTING);
    nprof_phase_begin(p, NPROF_PHASE_HANDLER);
    handler(c);
    nprof_phase_end(p, NPROF_PHASE_HANDLER);
    nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE);
    nprof_request_end(p, 200);
    return nprof_request_submit(p);
}

static inline int mw_request(ctx *c, int with_route)
{
    unsigned k = c->next++ % ROUTES;
    nprof_mw_request r = {.method = METHOD, .method_len = 3, .path = PATH,
                          .path_len = sizeof PATH - 1, .query = NULL, .query_len = 0,
                          .route = with_route ? c->routes[k] : NULL,
                          .route_len = with_route ? c->route_len[k] : 0, .header = NULL,
                          .user = NULL, .start_ticks = 0};
    nprof_mw_state st;
    int rc = nprof_mw_request_begin(c->mw, &r, &st);
    if (rc)
        return rc;
    nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING);
    nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
    handler(c);
    nprof_mw_headers hs;
    rc = nprof_mw_request_end(&st, 200, &hs, NULL, NULL);
    bench_escape(&hs);
    return rc + (int)hs.count;
}

#define LOOP(fn_name, body)                                    \
    static double fn_name(void *vc, uint64_t ops)              \
    {                                                          \
        ctx *c = vc;                                           \
        uint64_t acc = 0;                                      \
        uint64_t t0 = bench_now_ns();                          \
        for (uint64_t n = 0; n < ops; n++) {                   \
            body;                                              \
        }                                                      \
        uint64_t t1 = bench_now_ns();                          \
        bench_sink = acc;                                      \
        return (double)(t1 - t0) / (double)ops;                \
    }

LOOP(run_plain, (handler(c), acc += (uint8_t)c->route_buf[1]))
LOOP(run_runtime, acc += (uint64_t)runtime_request(c))
LOOP(run_mw, acc += (uint64_t)mw_request(c, 1))
LOOP(run_mw_templated, acc += (uint64_t)mw_request(c, 0))

/* (b): ns per render, reported in us by the caller's unit. */
static double run_snapshot(void *vc, uint64_t ops)
{
    ctx *c = vc;
    uint64_t t0 = bench_now_ns();
    for (uint64_t n = 0; n < ops; n++) {
        nprof_snapshot *s;
        if (nprof_store_snapshot(nprof_runtime_store(c->rt), &s) == NPROF_OK) {
            bench_sink += nprof_snapshot_count(s);
            nprof_snapshot_release(s);
        }
    }
    return (double)(bench_now_ns() - t0) / (double)ops / 1000.0;
}

static double run_json(void *vc, uint64_t ops)
{
    ctx *c = vc;
    uint64_t t0 = bench_now_ns();
    for (uint64_t n = 0; n < ops; n++) {
        c->out.len = 0;
        nprof_mw_render_json(c->mw, &c->out);
        bench_sink += c->out.len;
    }
    return (double)(bench_now_ns() - t0) / (double)ops / 1000.0;
}

static bench_series difference(const bench_case *a, const bench_case *b)
{
    bench_series s = {.n = a->value.n};
    for (int r = 0; r < s.n; r++)
        s.v[r] = b->value.v[r] - a->value.v[r];
    return s;
}

static int make(ctx *c, uint32_t history)
{
    nprof_config cfg;
    nprof_config_init(&cfg);
    cfg.max_history = history;
    if (nprof_runtime_create(&cfg, &c->rt) != NPROF_OK ||
        nprof_mw_create(c->rt, NULL, &c->mw) != NPROF_OK) {
        fprintf(stderr, "create: %s\n", nprof_last_error_detail());
        return 0;
    }
    for (int i = 0; i < ROUTES; i++)
        c->route_len[i] = (size_t)snprintf(c->routes[i], sizeof c->routes[i],
                                           "/api/v1/resource%d/{id}/reviews", i);
    return 1;
}

static void figure_request(void)
{
    ctx c = {0};
    if (!make(&c, 1000))
        exit(1);
    uint64_t ops = bench_ops(REQ_OPS);
    bench_case cases[] = {
        {.name = "plain handler", .fn = run_plain, .ctx = &c, .ops = ops},
        {.name = "runtime request (no middleware)", .fn = run_runtime, .ctx = &c, .ops = ops},
        {.name = "middleware request, framework route", .fn = run_mw, .ctx = &c, .ops = ops},
        {.name = "middleware request, PCRE2 template", .fn = run_mw_templated, .ctx = &c,
         .ops = ops},
    };
    printf("(a) %llu requests per measurement\n", (unsigned long long)ops);
    bench_group_run("(a) one request: plain, runtime only, through the middleware", "ns/request",
                    "%.1f", cases, 4);
    bench_series added = difference(&cases[1], &cases[2]);
    bench_series_print("=> aggregation + headers (middleware - runtime)", "ns/request", "%.1f",
                       &added);
    bench_series templ = difference(&cases[2], &cases[3]);
    bench_series_print("=> PCRE2 route template (templated - framework route)", "ns/request",
                       "%.1f", &templ);
    bench_series whole = difference(&cases[0], &cases[2]);
    bench_series_print("=> whole middleware overhead (middleware - plain)", "ns/request",
                       "%.1f", &whole);
    bench_target(added.median <= 300, "(a) per-request aggregation + header rendering <= 300 ns",
                 "%.1f ns; whole request %.1f ns vs plain %.1f ns (%.2fx)", added.median,
                 cases[2].value.median, cases[0].value.median, cases[2].ratio.median);
    nprof_mw_request r = {.method = METHOD, .method_len = 3, .path = PATH,
                          .path_len = sizeof PATH - 1, .query = NULL, .query_len = 0,
                          .route = NULL, .route_len = 0, .header = NULL, .user = NULL,
                          .start_ticks = 0};
    nprof_mw_state st;
    nprof_mw_headers hs;
    if (nprof_mw_request_begin(c.mw, &r, &st) == NPROF_OK &&
        nprof_mw_request_end(&st, 200, &hs, NULL, NULL) == NPROF_OK)
        for (size_t i = 0; i < hs.count; i++)
            printf("    %s: %s\n", hs.items[i].name, hs.items[i].value);
    printf("\n");
    nprof_mw_destroy(c.mw);
    nprof_runtime_destroy(c.rt);
}

static void figure_dashboard(void)
{
    ctx c = {0};
    if (!make(&c, 1000))
        exit(1);
    /* 200 routes, 5,000 requests: one in 10 with an N+1 pattern, one in 25 with a slow
     * query, a few 5xx; the store keeps the last 1,000. */
    char path[64], sql[96];
    for (int i = 0; i < 5000; i++) {
        int route = i % 200;
        snprintf(path, sizeof path, "/api/r%d/%d", route, i);
        int post = route % 5 == 0; /* a fifth of the routes are POST: still 200 rows */
        nprof_mw_request r = {.method = post ? "POST" : "GET", .method_len = post ? 4 : 3,
                              .path = path, .path_len = strlen(path), .query = NULL,
                              .query_len = 0, .route = NULL, .route_len = 0, .header = NULL,
                              .user = NULL, .start_ticks = 0};
        nprof_mw_state st;
        if (nprof_mw_request_begin(c.mw, &r, &st))
            continue;
        nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
        int queries = i % 10 == 0 ? 8 : 3;
        for (int q = 0; q < queries; q++) {
            int n = snprintf(sql, sizeof sql, "SELECT * FROM table%d WHERE id = %d", route % 40,
                             q);
            nprof_query qq = {.sql = sql, .sql_len = (size_t)n,
                              .duration_ns = (q == 0 && i % 25 == 0) ? 150000000u : 40000u};
            nprof_sql_record(st.profile, &qq);
        }
        nprof_mw_request_end(&st, i % 97 ? 200 : 503, NULL, NULL, NULL);
    }
    nprof_mw_totals t;
    nprof_mw_get_totals(c.mw, &t);
    c.out.len = 0;
    nprof_mw_render_json(c.mw, &c.out);
    printf("(b) store: %zu profiles, %llu routes, %llu N+1 patterns; JSON %zu bytes\n",
           nprof_store_size(nprof_runtime_store(c.rt)), (unsigned long long)t.routes,
           (unsigned long long)t.n_plus_one_patterns, c.out.len);
    uint64_t ops = bench_ops(DASH_OPS);
    bench_case cases[] = {
        {.name = "store snapshot + release", .fn = run_snapshot, .ctx = &c,
         .ops = bench_ops(SNAP_OPS)},
        {.name = "JSON dashboard", .fn = run_json, .ctx = &c, .ops = ops},
    };
    bench_group_run("(b) JSON dashboard, 1,000 stored profiles, 200 routes", "us/render",
                    "%.1f", cases, 2);
    bench_target(cases[1].value.median <= 2000, "(b) JSON dashboard <= 2 ms",
                 "%.1f us per render (%zu bytes)", cases[1].value.median, c.out.len);
    printf("\n");
    nprof_buf_free(&c.out);
    nprof_mw_destroy(c.mw);
    nprof_runtime_destroy(c.rt);
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_middleware", "what the middleware core costs");
    if (bench_selected("a"))
        figure_request();
    if (bench_selected("b"))
        figure_dashboard();
    return bench_finish();
}
