/*
 * bench/bench_pq.c: what instrumenting a libpq query costs.
 *
 * 1. Against a throwaway PostgreSQL over its Unix socket (tests/test_slowlog_pg.h), in the
 *    same run: PQexec (the anchor) and nprof_pq_exec, the wrapper the shim forwards to, called
 *    alternately query by query (the order flipping every query), each call timed on its
 *    own, so that drift in the server or the machine hits both alike.  Reported per run: the
 *    plain round trip, the instrumented one, their difference (the added cost) and the
 *    difference as a share of the round trip.  Two queries: a 200-byte ORM query on empty
 *    tables, and SELECT 1.  No current profile: the per-shape table only, as under the shim
 *    in a process without a request; case 2 shows what a profile adds.
 * 2. The recording alone, no server: nprof_pq_begin/nprof_pq_end around nothing, with a
 *    result made by PQmakeEmptyPGresult, without and with a current profile, against
 *    nprof_sql_record of the same query into a profile (the anchor, bench_record's figure).
 *
 * Targets (issue 5): added cost <= 1 us for a 200-byte query, and < 3 % of a SELECT 1 round
 * trip.  The shim adds to case 1 one indirect call and one thread-local read per libpq call.
 *
 * Usage: bench_pq [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count)
 */
#include <string.h>

#include <libpq-fe.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"
#include "nanoprof/pq.h"
#include "test_slowlog_pg.h"

#define PAIRS_PER_RUN 12000u
#define RECORD_OPS 2000000u

static const char *const query_200 =
    "SELECT \"orders\".\"id\", \"orders\".\"total\", \"orders\".\"status\" FROM \"orders\" "
    "INNER JOIN \"users\" ON (\"orders\".\"user_id\" = \"users\".\"id\") WHERE "
    "(\"users\".\"email\" = 'user07@x.io' AND \"orders\".\"status\" IN (1, 2)) LIMIT 21";

/* One run of interleaved pairs: mean ns per plain and per instrumented query. */
static void run_pairs(PGconn *c, const char *sql, uint64_t pairs, double *plain_ns,
                      double *instr_ns)
{
    uint64_t plain = 0, instr = 0;
    for (uint64_t i = 0; i < pairs; i++) {
        for (int k = 0; k < 2; k++) {
            int instrumented = (int)((i + (uint64_t)k) & 1);
            uint64_t t0 = bench_now_ns();
            PGresult *r = instrumented ? nprof_pq_exec(c, sql) : PQexec(c, sql);
            uint64_t dt = bench_now_ns() - t0;
            PQclear(r);
            *(instrumented ? &instr : &plain) += dt;
        }
    }
    *plain_ns = (double)plain / (double)pairs;
    *instr_ns = (double)instr / (double)pairs;
}

typedef struct pair_result {
    bench_series plain, instr, added, share;
} pair_result;

static void measure_pairs(PGconn *c, const char *title, const char *sql, pair_result *out)
{
    printf("== %s ==\n", title);
    uint64_t pairs = bench_ops(PAIRS_PER_RUN);
    double p, q;
    run_pairs(c, sql, pairs / 10 + 100, &p, &q); /* warm-up: plans cached, shapes known */
    memset(out, 0, sizeof *out);
    for (int r = 0; r < bench_runs; r++) {
        run_pairs(c, sql, pairs, &p, &q);
        out->plain.v[out->plain.n++] = p;
        out->instr.v[out->instr.n++] = q;
        out->added.v[out->added.n++] = q - p;
        out->share.v[out->share.n++] = (q - p) / p * 100.0;
    }
    bench_series_print("PQexec (anchor)", "ns/query", "%.0f", &out->plain);
    bench_series_print("nprof_pq_exec", "ns/query", "%.0f", &out->instr);
    bench_series_print("added by the instrumentation", "ns/query", "%.0f", &out->added);
    bench_series_print("added / round trip (same run)", "%", "%.2f", &out->share);
    printf("  (%llu interleaved pairs per run; the added cost is a difference of two round\n"
           "   trips, so its jitter is relative to a small number: see the recording alone)\n\n",
           (unsigned long long)pairs);
}

/* ---- the recording alone -------------------------------------------------------------------- */

typedef struct record_ctx {
    nprof_runtime *rt;
    PGresult *res;
    int mode; /* 0: nprof_sql_record (anchor), 1: pq end without profile, 2: with profile */
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
        if (c->mode == 0) {
            nprof_query q = {.sql = query_200, .sql_len = len, .duration_ns = 1000};
            bench_sink += (uint64_t)nprof_sql_record(p, &q);
        } else {
            nprof_pq_call call;
            nprof_pq_begin(&call);
            nprof_pq_end(&call, (PGconn *)(void *)&fake_conn, query_200, len, 0, NULL, NULL, NULL,
                         c->res);
        }
    }
    nprof_current_set(NULL);
    nprof_request_discard(p);
    return (double)(bench_now_ns() - t0) / (double)ops;
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_pq", "the cost of recording a libpq query");
    printf("query (%zu bytes): %s\n\n", strlen(query_200), query_200);
    nprof_runtime *rt = nprof_pq_runtime();
    if (!rt) {
        fprintf(stderr, "bench_pq: no runtime: %s\n", nprof_last_error_detail());
        return 1;
    }

    bench_series added200 = {.n = 0}, share1 = {.n = 0};
    double added200_med = 0, share1_med = 0;
    int rc = bench_selected("server") ? pg_start("bench_pq") : PG_SKIP_EXIT;
    if (rc == 0) {
        PGconn *c = pg_connect();
        if (!c)
            return 1;
        PQclear(PQexec(c, "CREATE TABLE users (id int PRIMARY KEY, email text);"
                          "CREATE TABLE orders (id int PRIMARY KEY, user_id int, total numeric, "
                          "status int)"));
        pair_result q200, q1;
        measure_pairs(c, "200-byte query against the server (no current profile)", query_200, &q200);
        measure_pairs(c, "SELECT 1 against the server (no current profile)", "SELECT 1", &q1);
        added200 = q200.added;
        share1 = q1.share;
        added200_med = q200.added.median;
        share1_med = q1.share.median;
        PQfinish(c);
    } else if (rc) {
        printf("(no PostgreSQL server: the server figures are skipped)\n\n");
    }

    if (bench_selected("record")) {
        PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        record_ctx anchor = {.rt = rt, .res = res, .mode = 0},
                   bare = {.rt = rt, .res = res, .mode = 1},
                   prof = {.rt = rt, .res = res, .mode = 2};
        uint64_t ops = bench_ops(RECORD_OPS);
        bench_case cases[] = {
            {.name = "nprof_sql_record (profile only)", .fn = run_record, .ctx = &anchor, .ops = ops},
            {.name = "pq begin/end, no profile", .fn = run_record, .ctx = &bare, .ops = ops},
            {.name = "pq begin/end, current profile", .fn = run_record, .ctx = &prof, .ops = ops},
        };
        bench_group_run("the recording alone, 200-byte query, no server", "ns/query", "%.1f",
                        cases, 3);
        printf("\n");
        bench_target(cases[2].value.median <= 1000.0,
                     "recording a 200-byte query (with profile) <= 1 us", "%.1f ns/query",
                     cases[2].value.median);
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
