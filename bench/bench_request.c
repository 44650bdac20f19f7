/*
 * bench/bench_request.c: what profiling costs a request.
 *
 * One runtime from nprof_config_init() defaults (the allocator is "auto": a jemalloc arena
 * when jemalloc can be loaded, else libc), plus a second one switched off with
 * nprof_runtime_set_enabled(rt, 0).  Four figures, each the median of N runs, each compared
 * with an anchor measured in the same runs:
 *
 *   (a) span pair: nprof_span_begin_static() + nprof_span_end() nested in the handler phase
 *       of a request.  Measured as the difference between a request carrying SPANS pairs
 *       and the same request without them (the ANCHOR), divided by SPANS, so everything a
 *       span costs is counted (including closing it at nprof_request_end) and nothing else.
 *       For scale, the same request with SPANS x 2 bare rdtsc instead of the spans gives
 *       the floor of a span (it must read the clock twice), in the same runs.
 *       Target: <= 20 ns per pair.
 *   (b) whole request without SQL: nprof_request_begin, middleware / routing / handler
 *       phases (routing and handler nested in middleware, as in the reference model),
 *       nprof_request_end, nprof_request_submit into the runtime's store, around a
 *       simulated handler that copies the request path.  ANCHOR: the plain handler without
 *       the profiler (the same loop, the same copy).  Overhead = profiled - plain.
 *       Target: overhead <= 250 ns per request.
 *   (c) the same with 10 queries recorded by nprof_query_record(), each a 200-byte SQL text
 *       (no parameters) that the simulated handler also copies into a send buffer, as a
 *       driver would.  ANCHOR: the plain handler doing the same copies.
 *       Target: overhead <= 1 us per request.
 *   (d) the disabled path: nprof_request_begin() on the switched-off runtime.  ANCHOR: an
 *       out-of-line call of the same signature that loads a flag and returns (the floor of
 *       any "is profiling on?" API call).  Also shown: a whole request's calls on the
 *       disabled runtime (begin, then the phase calls, end and submit on the NULL profile).
 *       Target: a few ns (<= 5 ns) per nprof_request_begin.
 *
 * Usage: bench_request [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count;
 *        NPROF_BENCH_ONLY=a,b,c,d picks figures, e.g. for callgrind)
 */
#include "bench.h"
#include "nanoprof/nanoprof.h"

#define SPANS 12            /* span pairs per request in (a): with the handler phase's own
                               span, 13 of the profile's 16 inline span slots */
#define QUERIES 10
#define SQL_LEN 200
#define REQ_OPS 2000000u    /* requests per measurement, (a) (b) */
#define SQL_OPS 1000000u    /* requests per measurement, (c) */
#define OFF_OPS 50000000u   /* calls per measurement, (d) */

static const char METHOD[] = "GET";
static const char PATH[] = "/api/v1/books/42/reviews";

typedef struct req_ctx {
    nprof_runtime *rt;
    char sql[QUERIES][SQL_LEN];
    char route_buf[64];     /* where the simulated router copies the path */
    char send_buf[SQL_LEN]; /* where the simulated driver copies each query */
    uint64_t clock_acc;
} req_ctx;

/* The bare counter instruction (rdtsc on x86-64), as in bench_clock. */
static inline uint64_t raw_counter(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    return nprof_ticks();
#endif
}

/* ---- the simulated handler: identical with and without the profiler ------------------- */

static inline void route(req_ctx *c)
{
    memcpy(c->route_buf, PATH, sizeof PATH - 1);
    bench_escape(c->route_buf);
}

static inline void send_query(req_ctx *c, int i)
{
    memcpy(c->send_buf, c->sql[i], SQL_LEN);
    bench_escape(c->send_buf);
}

/* ---- one request, plain or profiled ----------------------------------------------------- */

static inline void plain_request(req_ctx *c, int queries)
{
    route(c);
    for (int i = 0; i < queries; i++)
        send_query(c, i);
}

static inline int profiled_request(req_ctx *c, int queries, int spans, int clock_pairs)
{
    nprof_profile *p;
    int rc = nprof_request_begin(c->rt, METHOD, sizeof METHOD - 1, PATH, sizeof PATH - 1, 0, &p);
    if (rc != NPROF_OK)
        return rc;
    nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE);
    nprof_phase_begin(p, NPROF_PHASE_ROUTING);
    route(c);
    nprof_phase_end(p, NPROF_PHASE_ROUTING);
    nprof_phase_begin(p, NPROF_PHASE_HANDLER);
    for (int i = 0; i < spans; i++) {
        int id = nprof_span_begin_static(p, "render", 6);
        nprof_span_end(p, id);
    }
    for (int i = 0; i < clock_pairs; i++) /* the floor of a span: its two clock reads */
        c->clock_acc += raw_counter() ^ raw_counter();
    for (int i = 0; i < queries; i++) {
        send_query(c, i);
        nprof_query q = {.sql = c->sql[i], .sql_len = SQL_LEN, .duration_ns = 150000};
        nprof_query_record(p, &q);
    }
    nprof_phase_end(p, NPROF_PHASE_HANDLER);
    nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE);
    nprof_request_end(p, 200);
    return nprof_request_submit(p);
}

/* ---- the measured loops: each returns ns per operation --------------------------------- */

#define REQUEST_LOOP(fn_name, body)                                 \
    static double fn_name(void *ctx, uint64_t ops)                  \
    {                                                               \
        req_ctx *c = ctx;                                           \
        uint64_t acc = 0;                                           \
        uint64_t t0 = bench_now_ns();                               \
        for (uint64_t n = 0; n < ops; n++) {                        \
            body;                                                   \
        }                                                           \
        uint64_t t1 = bench_now_ns();                               \
        bench_sink = acc;                                           \
        return (double)(t1 - t0) / (double)ops;                     \
    }

REQUEST_LOOP(run_request_no_spans, acc += (uint64_t)profiled_request(c, 0, 0, 0))
REQUEST_LOOP(run_request_spans, acc += (uint64_t)profiled_request(c, 0, SPANS, 0))
REQUEST_LOOP(run_request_clock_pairs, acc += (uint64_t)profiled_request(c, 0, 0, SPANS))
REQUEST_LOOP(run_plain, (plain_request(c, 0), acc += (uint8_t)c->route_buf[1]))
REQUEST_LOOP(run_profiled, acc += (uint64_t)profiled_request(c, 0, 0, 0))
REQUEST_LOOP(run_plain_sql, (plain_request(c, QUERIES), acc += (uint8_t)c->send_buf[7]))
REQUEST_LOOP(run_profiled_sql, acc += (uint64_t)profiled_request(c, QUERIES, 0, 0))

/* (d): the anchor is an out-of-line stand-in for nprof_request_begin, called through a
 * volatile pointer so the compiler can neither inline nor specialise it. */
static struct {
    int enabled;
} standin_rt;

static int standin_begin(nprof_runtime *rt, const char *method, size_t method_len,
                         const char *path, size_t path_len, uint64_t start_ticks,
                         nprof_profile **out)
{
    (void)rt, (void)method, (void)method_len, (void)path, (void)path_len, (void)start_ticks;
    if (!__atomic_load_n(&standin_rt.enabled, __ATOMIC_RELAXED)) {
        *out = NULL;
        return NPROF_ENOPROFILE;
    }
    return NPROF_OK;
}

static int (*volatile standin_ptr)(nprof_runtime *, const char *, size_t, const char *, size_t,
                                   uint64_t, nprof_profile **) = standin_begin;

REQUEST_LOOP(run_standin, {
    nprof_profile *p;
    acc += (uint64_t)standin_ptr(c->rt, METHOD, 3, PATH, sizeof PATH - 1, 0, &p);
})
REQUEST_LOOP(run_disabled_begin, {
    nprof_profile *p;
    acc += (uint64_t)nprof_request_begin(c->rt, METHOD, 3, PATH, sizeof PATH - 1, 0, &p);
})
REQUEST_LOOP(run_disabled_request, acc += (uint64_t)profiled_request(c, 0, 0, 0))

/* ---- reporting helpers ------------------------------------------------------------------ */

/* Per run: (subject - anchor) / divisor. */
static bench_series difference(const bench_case *anchor, const bench_case *subject, double divisor)
{
    bench_series s = {.n = anchor->value.n};
    for (int r = 0; r < s.n; r++)
        s.v[r] = (subject->value.v[r] - anchor->value.v[r]) / divisor;
    return s;
}

static uint64_t ctl_uint(nprof_runtime *rt, const char *name)
{
    nprof_ctl_value v;
    return nprof_ctl_get(rt, name, &v) == NPROF_OK ? v.u : (uint64_t)-1;
}

static const char *ctl_string(nprof_runtime *rt, const char *name)
{
    nprof_ctl_value v;
    return nprof_ctl_get(rt, name, &v) == NPROF_OK && v.s ? v.s : "?";
}

/* One request of each shape, kept out of the store, to show what the benchmark records. */
static void show_sample(req_ctx *c, int queries, int spans)
{
    nprof_profile *p;
    if (nprof_request_begin(c->rt, METHOD, 3, PATH, sizeof PATH - 1, 0, &p) != NPROF_OK)
        return;
    nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE);
    nprof_phase_begin(p, NPROF_PHASE_ROUTING);
    nprof_phase_end(p, NPROF_PHASE_ROUTING);
    nprof_phase_begin(p, NPROF_PHASE_HANDLER);
    for (int i = 0; i < spans; i++)
        nprof_span_end(p, nprof_span_begin_static(p, "render", 6));
    for (int i = 0; i < queries; i++) {
        nprof_query q = {.sql = c->sql[i], .sql_len = SQL_LEN, .duration_ns = 150000};
        nprof_query_record(p, &q);
    }
    nprof_phase_end(p, NPROF_PHASE_HANDLER);
    nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE);
    nprof_request_end(p, 200);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    char header[NPROF_HEADER_MAX];
    nprof_profile_render_header(p, header, sizeof header, NULL);
    printf("  sample (%d queries, %d spans): spans=%zu queries_kept=%zu sql_count=%llu "
           "memory=%zu B\n    X-Profile: %s\n",
           queries, spans, info.span_count, info.queries_kept,
           (unsigned long long)info.sql_count, info.memory_bytes, header);
    nprof_request_discard(p);
}

/* ---- the four figures -------------------------------------------------------------------- */

static void figure_span(req_ctx *on)
{
    uint64_t ops = bench_ops(REQ_OPS);
    bench_case cases[] = {
        {.name = "request, no spans", .fn = run_request_no_spans, .ctx = on, .ops = ops},
        {.name = "request + 12 span pairs", .fn = run_request_spans, .ctx = on, .ops = ops},
        {.name = "request + 12 x 2 raw rdtsc", .fn = run_request_clock_pairs, .ctx = on,
         .ops = ops},
    };
    printf("(a) %llu requests per measurement\n", (unsigned long long)ops);
    bench_group_run("(a) nested span begin_static + end, per pair", "ns/request", "%.1f",
                    cases, 3);
    bench_series pair = difference(&cases[0], &cases[1], SPANS);
    bench_series_print("=> per span pair", "ns/pair", "%.2f", &pair);
    bench_series floor = difference(&cases[0], &cases[2], SPANS);
    bench_series_print("=> per 2 raw rdtsc (a span's floor)", "ns/pair", "%.2f", &floor);
    bench_series vs_floor = {.n = pair.n};
    for (int r = 0; r < pair.n; r++)
        vs_floor.v[r] = pair.v[r] / floor.v[r];
    bench_series_print("=> span pair / 2 raw rdtsc", "x", "%.3f", &vs_floor);
    bench_target(pair.median <= 20, "(a) span begin+end pair <= 20 ns",
                 "%.2f ns/pair; two raw rdtsc alone: %.2f ns", pair.median, floor.median);
    printf("\n");
}

static void figure_request(req_ctx *on)
{
    uint64_t ops = bench_ops(REQ_OPS);
    bench_case cases[] = {
        {.name = "plain handler", .fn = run_plain, .ctx = on, .ops = ops},
        {.name = "profiled request", .fn = run_profiled, .ctx = on, .ops = ops},
    };
    printf("(b) %llu requests per measurement\n", (unsigned long long)ops);
    bench_group_run("(b) whole request, 3 phases, submit, no SQL", "ns/request", "%.1f", cases, 2);
    bench_series overhead = difference(&cases[0], &cases[1], 1);
    bench_series_print("=> profiler overhead", "ns/request", "%.1f", &overhead);
    bench_target(overhead.median <= 250, "(b) request without SQL <= 250 ns",
                 "overhead %.1f ns; profiled %.1f vs plain %.1f ns, %.2fx", overhead.median,
                 cases[1].value.median, cases[0].value.median, cases[1].ratio.median);
    printf("\n");
}

static void figure_sql(req_ctx *on)
{
    uint64_t ops = bench_ops(SQL_OPS);
    bench_case cases[] = {
        {.name = "plain handler, 10 SQL copies", .fn = run_plain_sql, .ctx = on, .ops = ops},
        {.name = "profiled request, 10 queries", .fn = run_profiled_sql, .ctx = on, .ops = ops},
    };
    printf("(c) %llu requests per measurement\n", (unsigned long long)ops);
    bench_group_run("(c) whole request with 10 x 200-byte queries", "ns/request", "%.1f",
                    cases, 2);
    bench_series overhead = difference(&cases[0], &cases[1], 1);
    bench_series_print("=> profiler overhead", "ns/request", "%.1f", &overhead);
    bench_target(overhead.median <= 1000, "(c) request with 10 queries <= 1 us",
                 "overhead %.1f ns; profiled %.1f vs plain %.1f ns, %.2fx", overhead.median,
                 cases[1].value.median, cases[0].value.median, cases[1].ratio.median);
    printf("\n");
}

static void figure_disabled(req_ctx *off)
{
    uint64_t ops = bench_ops(OFF_OPS);
    bench_case cases[] = {
        {.name = "out-of-line flag check", .fn = run_standin, .ctx = off, .ops = ops},
        {.name = "nprof_request_begin, disabled", .fn = run_disabled_begin, .ctx = off,
         .ops = ops},
        {.name = "whole request, disabled", .fn = run_disabled_request, .ctx = off, .ops = ops},
    };
    printf("(d) %llu calls per measurement\n", (unsigned long long)ops);
    bench_group_run("(d) disabled runtime", "ns/call", "%.2f", cases, 3);
    bench_target(cases[1].value.median <= 5, "(d) disabled nprof_request_begin <= 5 ns",
                 "%.2f ns, %.2fx an out-of-line flag check", cases[1].value.median,
                 cases[1].ratio.median);
    printf("\n");
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_request", "what profiling costs one request");

    nprof_config cfg;
    nprof_config_init(&cfg);
    req_ctx on = {0}, off = {0};
    if (nprof_runtime_create(&cfg, &on.rt) != NPROF_OK ||
        nprof_runtime_create(&cfg, &off.rt) != NPROF_OK) {
        fprintf(stderr, "nprof_runtime_create: %s\n", nprof_last_error_detail());
        return 1;
    }
    nprof_runtime_set_enabled(off.rt, 0);
    for (int i = 0; i < QUERIES; i++) {
        char text[SQL_LEN + 1];
        int n = snprintf(text, sizeof text,
                         "SELECT r.id, r.book_id, r.user_id, r.rating, r.body, r.created_at "
                         "FROM reviews r JOIN books b ON b.id = r.book_id WHERE b.id = %d "
                         "AND r.rating >= %d ORDER BY r.created_at DESC LIMIT 20",
                         42 + i, i % 5);
        if (n > SQL_LEN)
            n = SQL_LEN;
        memset(text + n, ' ', (size_t)(SQL_LEN - n)); /* pad to exactly SQL_LEN bytes */
        memcpy(on.sql[i], text, SQL_LEN);
        memcpy(off.sql[i], text, SQL_LEN);
    }
    printf("runtime: allocator %s (%s), store capacity %llu, max_spans %u\n",
           ctl_string(on.rt, "stats.memory.allocator"),
           ctl_string(on.rt, "stats.memory.allocator_reason"),
           (unsigned long long)ctl_uint(on.rt, "stats.store.capacity"), cfg.max_spans);
    show_sample(&on, 0, SPANS);
    show_sample(&on, QUERIES, 0);
    printf("\n");

    if (bench_selected("a"))
        figure_span(&on);
    if (bench_selected("b"))
        figure_request(&on);
    if (bench_selected("c"))
        figure_sql(&on);
    if (bench_selected("d"))
        figure_disabled(&off);

    /* Nothing the figures rely on was dropped, and every request was stored. */
    printf("runtime counters: requests %llu, submitted %llu, queries %llu, queries_dropped %llu, "
           "spans_dropped %llu, memory %llu B in %llu blocks (peak %llu B)\n",
           (unsigned long long)ctl_uint(on.rt, "stats.requests"),
           (unsigned long long)ctl_uint(on.rt, "stats.requests_submitted"),
           (unsigned long long)ctl_uint(on.rt, "stats.queries"),
           (unsigned long long)ctl_uint(on.rt, "stats.queries_dropped"),
           (unsigned long long)ctl_uint(on.rt, "stats.spans_dropped"),
           (unsigned long long)ctl_uint(on.rt, "stats.memory.bytes"),
           (unsigned long long)ctl_uint(on.rt, "stats.memory.blocks"),
           (unsigned long long)ctl_uint(on.rt, "stats.memory.peak_bytes"));
    printf("disabled runtime: requests %llu\n",
           (unsigned long long)ctl_uint(off.rt, "stats.requests"));

    nprof_runtime_destroy(on.rt);
    nprof_runtime_destroy(off.rt);
    return bench_finish();
}
