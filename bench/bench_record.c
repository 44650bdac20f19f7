/*
 * bench/bench_record.c: what recording one SQL query into a profile costs.
 *
 * Measured per query, over a 200-byte ORM query whose literal changes every time (so the
 * per-request tables see a realistic mix of repeats and new texts):
 *   - nprof_query_record(): copy the text, count and time it, no shape    -- the ANCHOR
 *   - nprof_sql_record(): normalize, fingerprint, apply the ignore rule, count by shape
 * Each request records 50 queries (under max_queries, so every query is kept), then the
 * profile is discarded and a new one begun; begin/discard are amortized over the 50.
 *
 * Target (issue 3): recording one 200-byte query with its shape <= 300 ns.
 *
 * Usage: bench_record [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count)
 */
#include <string.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"

#define RECORD_OPS 2000000u
#define PER_REQUEST 50

typedef struct record_ctx {
    nprof_runtime *rt;
    char sql[16][224]; /* 16 variants of the query, 200 bytes each */
    size_t len;
    int shaped;        /* 1: nprof_sql_record, 0: nprof_query_record */
} record_ctx;

static double run_record(void *vctx, uint64_t ops)
{
    record_ctx *c = vctx;
    nprof_profile *p = NULL;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        if (i % PER_REQUEST == 0) {
            nprof_request_discard(p);
            nprof_request_begin(c->rt, "GET", 3, "/api/orders", 11, 0, &p);
        }
        nprof_query q = {.sql = c->sql[i & 15], .sql_len = c->len, .duration_ns = 1000};
        bench_sink += (uint64_t)(c->shaped ? nprof_sql_record(p, &q) : nprof_query_record(p, &q));
    }
    nprof_request_discard(p);
    return (double)(bench_now_ns() - t0) / (double)ops;
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_record", "recording one 200-byte query into a profile");
    nprof_config cfg;
    nprof_config_init(&cfg);
    nprof_runtime *rt;
    if (nprof_runtime_create(&cfg, &rt) != NPROF_OK) {
        fprintf(stderr, "bench_record: %s\n", nprof_last_error_detail());
        return 1;
    }
    record_ctx plain = {.rt = rt, .shaped = 0}, shaped = {.rt = rt, .shaped = 1};
    for (int v = 0; v < 16; v++) {
        int n = snprintf(plain.sql[v], sizeof plain.sql[v],
                         "SELECT \"orders\".\"id\", \"orders\".\"total\", \"orders\".\"status\" "
                         "FROM \"orders\" INNER JOIN \"users\" ON (\"orders\".\"user_id\" = "
                         "\"users\".\"id\") WHERE (\"users\".\"email\" = 'user%02d@x.io' AND "
                         "\"orders\".\"status\" IN (1, 2)) LIMIT 21",
                         v);
        plain.len = shaped.len = (size_t)n;
        memcpy(shaped.sql[v], plain.sql[v], sizeof plain.sql[v]);
    }
    printf("query (%zu bytes): %s\n\n", plain.len, plain.sql[0]);

    uint64_t ops = bench_ops(RECORD_OPS);
    bench_case cases[] = {
        {.name = "nprof_query_record (copy)", .fn = run_record, .ctx = &plain, .ops = ops},
        {.name = "nprof_sql_record (shape)", .fn = run_record, .ctx = &shaped, .ops = ops},
    };
    bench_group_run("record one query", "ns/query", "%.1f", cases, 2);
    printf("\n");
    bench_target(cases[1].value.median <= 300.0, "nprof_sql_record of a 200-byte query <= 300 ns",
                 "%.1f ns/query, %.2fx the copy-only record (%.1f ns)", cases[1].value.median,
                 cases[1].ratio.median, cases[0].value.median);
    nprof_runtime_destroy(rt);
    return bench_finish();
}
