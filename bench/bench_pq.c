/*
 * bench/bench_pq.c: what instrumenting a libpq query costs.
 *
 * 1. Against a throwaway PostgreSQL over its Unix socket (tests/pg_test.h), in the
 *    same run: PQexec (the anchor) and nprof_pq_exec, the wrapper the shim forwards to, called
 *    alternately query by query (the order flipping every query), each call timed on its
 *    own, so that drift in the server or the machine hits both alike.  Reported per run: the
 *    mean plain and instrumented round trips, the difference of those means, the median of
 *    the differences within a pair (the added cost: a round trip that another process delayed
 *    moves a mean by microseconds, a median not) and that as a share of the round trip.
 *    Three queries: a 200-byte ORM query on empty tables, the same with a new literal every
 *    pair (as psycopg2 sends them: the fingerprint is computed again, not found in the
 *    per-thread cache), and SELECT 1.  No current profile: the per-shape table only, as under the shim
 *    in a process without a request; case 2 shows what a profile adds.
 * 2. The recording alone, no server: nprof_pq_begin/nprof_pq_end around nothing, with a
 *    result made by PQmakeEmptyPGresult, against nprof_sql_record of the same queries into a
 *    profile (the anchor, bench_record's figure): without a profile for the same text every
 *    time (what parameterized queries send: the fingerprint comes from the per-thread cache)
 *    and for a new literal every time (what psycopg2 sends: normalized again), and with a
 *    current profile (normalized once for both).
 *
 * Targets (issue 5): added cost <= 1 us for a 200-byte query, and < 3 % of a SELECT 1 round
 * trip.
 *
 * bench_pq_preload (NPROF_PQ_PRELOAD) is the same program on libnanoprof.so, run under
 * LD_PRELOAD=libnanoprof_pq.so (found beside the program or in ../lib; it runs itself again
 * with it preloaded): case 1 then compares plain PQexec calls, the thread excluded (through
 * the shim, which forwards them unrecorded), with PQexec calls the shim records.  Under the
 * shim the fingerprint is taken once the query is sent, while the server works
 * (nprof_pq_overlap()).
 *
 * Usage: bench_pq [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count)
 */
#include <libgen.h>
#include <limits.h>
#include <string.h>

#include <libpq-fe.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"
#include "nanoprof/pq.h"
#include "pg_test.h"

#define PAIRS_PER_RUN 12000u
#define RECORD_OPS 2000000u

static const char *const query_200 =
    "SELECT \"orders\".\"id\", \"orders\".\"total\", \"orders\".\"status\" FROM \"orders\" "
    "INNER JOIN \"users\" ON (\"orders\".\"user_id\" = \"users\".\"id\") WHERE "
    "(\"users\".\"email\" = 'user07@x.io' AND \"orders\".\"status\" IN (1, 2)) LIMIT 21";

#define VARIANTS 4096 /* texts differing in one literal: more than the fingerprint cache holds */
static char variants[VARIANTS][224];
static size_t variant_len[VARIANTS];

static void make_variants(void)
{
    const char *at = strstr(query_200, "user07");
    for (int v = 0; v < VARIANTS; v++) {
        int k = snprintf(variants[v], sizeof variants[v], "%.*suser%04d%s", (int)(at - query_200),
                         query_200, v, at + 6);
        variant_len[v] = (size_t)k;
    }
}

static double pair_diff[1u << 20];

#ifdef NPROF_PQ_PRELOAD
/* Through the shim, unrecorded: the thread is excluded. */
static PGresult *plain_exec(PGconn *c, const char *sql)
{
    int prev = nprof_pq_exclude_thread(1);
    PGresult *r = PQexec(c, sql);
    nprof_pq_exclude_thread(prev);
    return r;
}
#define instrumented_exec PQexec
#define PROG "bench_pq_preload"
#else
#define plain_exec PQexec
#define instrumented_exec nprof_pq_exec
#define PROG "bench_pq"
#endif

/* One run of interleaved pairs: mean ns per plain and per instrumented query, and the median
 * of the differences within a pair (robust to the round trips that another process delayed,
 * which move a mean by microseconds). */
static void run_pairs(PGconn *c, const char *sql0, uint64_t pairs, double *plain_ns,
                      double *instr_ns, double *diff_ns)
{
    uint64_t plain = 0, instr = 0;
    if (pairs > sizeof pair_diff / sizeof pair_diff[0])
        pairs = sizeof pair_diff / sizeof pair_diff[0];
    for (uint64_t i = 0; i < pairs; i++) {
        const char *sql = sql0 ? sql0 : variants[i % VARIANTS]; /* NULL: a new literal each pair */
        uint64_t dt[2];
        for (int k = 0; k < 2; k++) {
            int instrumented = (int)((i + (uint64_t)k) & 1);
            uint64_t t0 = bench_now_ns();
            PGresult *r = instrumented ? instrumented_exec(c, sql) : plain_exec(c, sql);
            dt[instrumented] = bench_now_ns() - t0;
            PQclear(r);
        }
        plain += dt[0];
        instr += dt[1];
        pair_diff[i] = (double)dt[1] - (double)dt[0];
    }
    qsort(pair_diff, pairs, sizeof pair_diff[0], bench_cmp_double);
    *plain_ns = (double)plain / (double)pairs;
    *instr_ns = (double)instr / (double)pairs;
    *diff_ns = pairs % 2 ? pair_diff[pairs / 2] : (pair_diff[pairs / 2 - 1] + pair_diff[pairs / 2]) / 2;
}

typedef struct pair_result {
    bench_series plain, instr, mean_added, added, share;
} pair_result;

static void measure_pairs(PGconn *c, const char *title, const char *sql, pair_result *out)
{
    printf("== %s ==\n", title);
    uint64_t pairs = bench_ops(PAIRS_PER_RUN);
    double p, q, d;
    run_pairs(c, sql, pairs / 10 + 100, &p, &q, &d); /* warm-up: plans cached, shapes known */
    memset(out, 0, sizeof *out);
    for (int r = 0; r < bench_runs; r++) {
        run_pairs(c, sql, pairs, &p, &q, &d);
        out->plain.v[out->plain.n++] = p;
        out->instr.v[out->instr.n++] = q;
        out->mean_added.v[out->mean_added.n++] = q - p;
        out->added.v[out->added.n++] = d;
        out->share.v[out->share.n++] = d / p * 100.0;
    }
    bench_series_print("plain (anchor)", "ns/query", "%.0f", &out->plain);
    bench_series_print("instrumented", "ns/query", "%.0f", &out->instr);
    bench_series_print("difference of the means", "ns/query", "%.0f", &out->mean_added);
    bench_series_print("added (median pair difference)", "ns/query", "%.0f", &out->added);
    bench_series_print("added / mean round trip", "%", "%.2f", &out->share);
    printf("  (%llu interleaved pairs per run; an added cost is a small difference of two round\n"
           "   trips, so its jitter is relative to a small number: see the recording alone)\n\n",
           (unsigned long long)pairs);
}

/* ---- the recording alone -------------------------------------------------------------------- */


typedef struct record_ctx {
    nprof_runtime *rt;
    PGresult *res;
    int mode;             /* 0: nprof_sql_record (anchor), 1: pq end without profile, 2: with */
    char (*variants)[224]; /* NULL: the same text every time; else a new literal every query */
    size_t *variant_len;
} record_ctx;

#define PER_REQUEST 50

static double run_record(void *vctx, uint64_t ops)
{
    record_ctx *c = vctx;
    static int fake_conn; /* a key for the connection table: never dereferenced */
    size_t len = strlen(query_200);
    nprof_profile *p = NULL;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        if (c->mode != 1 && i % PER_REQUEST == 0) {
            nprof_current_set(NULL);
            nprof_request_discard(p);
            nprof_request_begin(c->rt, "GET", 3, "/api/orders", 11, 0, &p);
            nprof_current_set(p);
        }
        const char *sql = query_200;
        size_t n = len;
        if (c->variants) {
            sql = c->variants[i % VARIANTS];
            n = c->variant_len[i % VARIANTS];
        }
        if (c->mode == 0) {
            nprof_query q = {.sql = sql, .sql_len = n, .duration_ns = 1000};
            bench_sink += (uint64_t)nprof_sql_record(p, &q);
        } else {
            nprof_pq_call call;
            nprof_pq_begin(&call);
            nprof_pq_end(&call, (PGconn *)(void *)&fake_conn, sql, n, 0, NULL, NULL, NULL, c->res);
        }
    }
    nprof_current_set(NULL);
    nprof_request_discard(p);
    return (double)(bench_now_ns() - t0) / (double)ops;
}

#ifdef NPROF_PQ_PRELOAD
/* Runs the program again with the shim preloaded, unless it already is. */
static void preload_self(char **argv)
{
    if (getenv("NPROF_PQ_BENCH_PRELOADED")) {
        unsetenv("LD_PRELOAD"); /* the cluster's processes run without it */
        return;
    }
    char exe[PATH_MAX], shim[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = 0;
    const char *dir = dirname(exe);
    snprintf(shim, sizeof shim, "%s/libnanoprof_pq.so", dir);
    if (access(shim, R_OK) != 0)
        snprintf(shim, sizeof shim, "%s/../lib/libnanoprof_pq.so", dir);
    if (access(shim, R_OK) != 0) {
        fprintf(stderr, PROG ": libnanoprof_pq.so not found beside the program or in ../lib\n");
        exit(1);
    }
    setenv("NPROF_PQ_BENCH_PRELOADED", "1", 1);
    setenv("LD_PRELOAD", shim, 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    exit(1);
}
#endif

int main(int argc, char **argv)
{
#ifdef NPROF_PQ_PRELOAD
    preload_self(argv);
#endif
    bench_init(argc, argv, PROG, "the cost of recording a libpq query");
    printf("query (%zu bytes): %s\n\n", strlen(query_200), query_200);
    make_variants();
    nprof_runtime *rt = nprof_pq_runtime();
    if (!rt) {
        fprintf(stderr, "bench_pq: no runtime: %s\n", nprof_last_error_detail());
        return 1;
    }

    bench_series added200 = {.n = 0}, share1 = {.n = 0};
    double added200_med = 0, share1_med = 0;
    int rc = bench_selected("server") ? pg_start(PROG) : PG_SKIP_EXIT;
    if (rc == 0) {
        PGconn *c = pg_connect();
        if (!c)
            return 1;
        PQclear(PQexec(c, "CREATE TABLE users (id int PRIMARY KEY, email text);"
                          "CREATE TABLE orders (id int PRIMARY KEY, user_id int, total numeric, "
                          "status int)"));
        pair_result q200, q200new, q1;
        measure_pairs(c, "200-byte query against the server (no current profile)", query_200, &q200);
        measure_pairs(c, "200-byte query, a new literal every pair (fingerprint not cached)", NULL,
                      &q200new);
        measure_pairs(c, "SELECT 1 against the server (no current profile)", "SELECT 1", &q1);
        added200 = q200new.added; /* the worse of the two */
        share1 = q1.share;
        added200_med = q200new.added.median;
        share1_med = q1.share.median;
        PQfinish(c);
    } else if (rc) {
        printf("(no PostgreSQL server: the server figures are skipped)\n\n");
    }

    if (bench_selected("record")) {
        PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        record_ctx anchor = {.rt = rt, .res = res, .mode = 0, .variants = variants, .variant_len = variant_len},
                   same = {.rt = rt, .res = res, .mode = 1},
                   bare = {.rt = rt, .res = res, .mode = 1, .variants = variants, .variant_len = variant_len},
                   prof = {.rt = rt, .res = res, .mode = 2, .variants = variants, .variant_len = variant_len};
        uint64_t ops = bench_ops(RECORD_OPS);
        bench_case cases[] = {
            {.name = "nprof_sql_record (profile only)", .fn = run_record, .ctx = &anchor, .ops = ops},
            {.name = "pq end, no profile, same text", .fn = run_record, .ctx = &same, .ops = ops},
            {.name = "pq end, no profile, new literal", .fn = run_record, .ctx = &bare, .ops = ops},
            {.name = "pq end, profile, new literal", .fn = run_record, .ctx = &prof, .ops = ops},
        };
        bench_group_run("the recording alone, 200-byte query, no server", "ns/query", "%.1f",
                        cases, 4);
        printf("\n");
        bench_target(cases[3].value.median <= 1000.0,
                     "recording a 200-byte query (with profile) <= 1 us", "%.1f ns/query",
                     cases[3].value.median);
        PQclear(res);
    }
    if (added200.n) {
        bench_target(added200_med <= 1000.0, "added per 200-byte query <= 1 us (server)",
                     "median %.0f ns, jitter %.1f%%", added200_med, added200.jitter);
        bench_target(share1_med < 3.0, "added < 3% of a SELECT 1 round trip",
                     "median %.2f%% of the round trip, jitter %.1f%%", share1_med, share1.jitter);
    }
    nprof_pq_shutdown();
    return bench_finish();
}
