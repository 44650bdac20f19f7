/*
 * tests/test_pq.c: every libpq entry point nanoprof instruments, against a throwaway
 * PostgreSQL (tests/pg_test.h), each query recorded once with the right text,
 * duration bounds and fingerprint, into the current profile and the per-shape table.
 *
 * Built twice (sources.txt):
 *   - test_pq: linked with the static library, calling the explicit wrappers
 *     (nprof_pq_exec, ...) and the begin/end calls; this one also runs under ASan and TSan;
 *   - test_pq_preload (NPROF_PQ_PRELOAD): linked with libnanoprof.so, calling plain libpq
 *     (PQexec, ...) and run under LD_PRELOAD=libnanoprof_pq.so, whose path it gets as argv[1]
 *     (it runs itself again with LD_PRELOAD set).  It also checks that `psql -c` prints the
 *     same with and without the shim, and that Debian's python3-psycopg2 under the shim
 *     fills the per-shape table (NANOPROF_PQ_DUMP) with no change to the Python code.
 *     Sanitizer builds skip it (exit 77): their runtime must come first in LD_PRELOAD.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "nanoprof/nanoprof.h"
#include "nanoprof/pq.h"
#include "test.h"
#include "pg_test.h"

#ifdef NPROF_PQ_PRELOAD
#define X_exec PQexec
#define X_exec_params PQexecParams
#define X_prepare PQprepare
#define X_exec_prepared PQexecPrepared
#define X_send_query PQsendQuery
#define X_send_query_params PQsendQueryParams
#define X_send_prepare PQsendPrepare
#define X_send_query_prepared PQsendQueryPrepared
#define X_get_result PQgetResult
#define X_pipeline_sync PQpipelineSync
#define X_finish PQfinish
#define X_reset PQreset
#define PROG "test_pq_preload"
#else
#define X_exec nprof_pq_exec
#define X_exec_params nprof_pq_exec_params
#define X_prepare nprof_pq_prepare
#define X_exec_prepared nprof_pq_exec_prepared
#define X_send_query nprof_pq_send_query
#define X_send_query_params nprof_pq_send_query_params
#define X_send_prepare nprof_pq_send_prepare
#define X_send_query_prepared nprof_pq_send_query_prepared
#define X_get_result nprof_pq_get_result
#define X_pipeline_sync nprof_pq_pipeline_sync
#define X_finish nprof_pq_finish
#define X_reset nprof_pq_reset
#define PROG "test_pq"
#endif

/* ---- helpers ------------------------------------------------------------------------------ */

static nprof_profile *begin_request(void)
{
    nprof_profile *p = NULL;
    nprof_runtime *rt = nprof_pq_runtime();
    if (!rt || nprof_request_begin(rt, "GET", 3, "/pq", 3, 0, &p) != NPROF_OK)
        return NULL;
    nprof_current_set(p);
    return p;
}

static void end_request(nprof_profile *p)
{
    nprof_current_set(NULL);
    nprof_request_discard(p);
}

static size_t query_count(const nprof_profile *p)
{
    nprof_profile_info info;
    return nprof_profile_get_info(p, &info) == NPROF_OK ? (size_t)info.sql_count : 0;
}

static nprof_query_info query_at(const nprof_profile *p, size_t i)
{
    nprof_query_info q;
    memset(&q, 0, sizeof q);
    nprof_profile_get_query(p, i, &q);
    return q;
}

static uint64_t calls_of(const char *sql)
{
    nprof_querystats_entry e;
    return nprof_querystats_find(nprof_pq_querystats(), nprof_sql_fingerprint(sql, strlen(sql)),
                                 &e) == NPROF_OK ? e.calls : 0;
}

static int status_of(PGresult *r)
{
    int st = r ? (int)PQresultStatus(r) : -1;
    PQclear(r);
    return st;
}

/* Reads results until the NULL that ends them; returns the last status (-1 none). */
static int drain(PGconn *c)
{
    int last = -1;
    PGresult *r;
    while ((r = X_get_result(c)) != NULL)
        last = status_of(r);
    return last;
}

/* ---- synchronous calls ------------------------------------------------------------------ */

TEST(exec_records_once_with_text_duration_and_fingerprint)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    const char *sql = "SELECT pg_sleep(0.02), 'sync exec' AS t";
    uint64_t before = calls_of(sql);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    uint64_t t0 = test_monotonic_ns();
    PGresult *r = X_exec(c, sql);
    uint64_t wall = test_monotonic_ns() - t0;
    ASSERT_EQ_INT(status_of(r), PGRES_TUPLES_OK);
    ASSERT_EQ_U64(query_count(p), 1);
    nprof_query_info q = query_at(p, 0);
    ASSERT_MEM_STR(q.sql, q.sql_len, sql);
    ASSERT_EQ_U64(q.fingerprint, nprof_sql_fingerprint(sql, strlen(sql)));
    ASSERT_U64_OP(q.duration_ns, >=, 20000000u);
    ASSERT_U64_OP(q.duration_ns, <=, wall);
    ASSERT_EQ_U64(calls_of(sql), before + 1);
    end_request(p);
    X_finish(c);
}

TEST(an_exact_repeat_counts_alike_through_the_shim_and_the_sql_layer)
{
    /* The shim hands the profile the text hash its shaping computed; a hook recording the
     * same text through nprof_sql_record() must land on the same key. */
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    const char *sql = "SELECT 1 AS repeated, 'twice' AS t";
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    ASSERT_EQ_INT(status_of(X_exec(c, sql)), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(status_of(X_exec(c, sql)), PGRES_TUPLES_OK);
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .duration_ns = 1};
    ASSERT_OK(nprof_sql_record(p, &q));
    nprof_profile_info info;
    ASSERT_OK(nprof_profile_get_info(p, &info));
    ASSERT_EQ_U64(info.sql_count, 3);
    ASSERT_EQ_U64(info.exact_repeats, 2);
    end_request(p);
    X_finish(c);
}

TEST(exec_params_records_a_parameter_summary)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    const char *sql = "SELECT $1::int + 1 AS n, $2::text IS NULL AS isnull, $3::bytea AS b";
    const char *values[3] = {"41", NULL, "\x01\x02\x03"};
    int lengths[3] = {0, 0, 3};
    int formats[3] = {0, 0, 1};
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    PGresult *r = X_exec_params(c, sql, 3, NULL, values, lengths, formats, 0);
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    ASSERT_STR(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    ASSERT_EQ_U64(query_count(p), 1);
    nprof_query_info q = query_at(p, 0);
    ASSERT_MEM_STR(q.sql, q.sql_len, sql);
    ASSERT_MEM_STR(q.params, q.params_len, "$1='41', $2=NULL, $3=<binary 3 bytes>");
    /* A long value is cut, and said to be. */
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *v2[1] = {big};
    ASSERT_EQ_INT(status_of(X_exec_params(c, "SELECT length($1)", 1, NULL, v2, NULL, NULL, 0)),
                  PGRES_TUPLES_OK);
    q = query_at(p, 1);
    ASSERT_TRUE(q.params_len < 100 && memcmp(q.params + q.params_len - 4, "'...", 4) == 0);
    end_request(p);
    X_finish(c);
}

TEST(duplicates_follow_the_values_also_without_a_summary)
{
    /* Production mode leaves summaries out, and a summary cuts long values: the shim tells
     * duplicates by the values themselves, sync and sent alike. */
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    nprof_profile_set_param_summaries(p, 0);
    const char *sql = "SELECT $1::int AS duplicate_check";
    const char *ids[4] = {"1", "2", "3", "1"}; /* the last is a duplicate of the first */
    for (int i = 0; i < 4; i++)
        ASSERT_EQ_INT(status_of(X_exec_params(c, sql, 1, NULL, &ids[i], NULL, NULL, 0)),
                      PGRES_TUPLES_OK);
    /* Two long values that differ past where a summary cuts them. */
    char a[300], b[300];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = 0;
    memcpy(b, a, sizeof b);
    b[sizeof b - 2] = 'y';
    const char *longs[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(X_send_query_params(c, "SELECT length($1) AS long_check", 1, NULL,
                                          &longs[i], NULL, NULL, 0),
                      1);
        PGresult *r;
        while ((r = X_get_result(c)))
            PQclear(r);
    }
    nprof_profile_info info;
    ASSERT_OK(nprof_profile_get_info(p, &info));
    ASSERT_EQ_U64(info.sql_count, 6);
    ASSERT_EQ_U64(info.exact_repeats, 1);
    /* The summaries were left out; a slow query keeps its own, and on a loaded machine even
     * these can pass the threshold (15 ms), so only the others are held to it. */
    int checked = 0;
    for (size_t i = 0; i < info.queries_kept; i++) {
        nprof_query_info q = query_at(p, i);
        if (q.slow)
            continue;
        checked++;
        if (q.params != NULL)
            fprintf(stderr, "query %zu kept its summary: %.*s\n", i, (int)q.params_len,
                    q.params);
        ASSERT_TRUE(q.params == NULL);
    }
    if (!checked)
        printf("     not checked: every query was slow on this machine just now\n");
    end_request(p);
    X_finish(c);
}

TEST(prepared_statements_record_their_text_and_are_forgotten_on_reset)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    const char *sql = "SELECT $1::int * 2 AS doubled /* prepared sync */";
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    ASSERT_EQ_INT(status_of(X_prepare(c, "dbl", sql, 1, NULL)), PGRES_COMMAND_OK);
    ASSERT_EQ_U64(query_count(p), 0); /* preparing is not executing */
    const char *v[1] = {"21"};
    PGresult *r = X_exec_prepared(c, "dbl", 1, v, NULL, NULL, 0);
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    ASSERT_STR(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    ASSERT_EQ_U64(query_count(p), 1);
    nprof_query_info q = query_at(p, 0);
    ASSERT_MEM_STR(q.sql, q.sql_len, sql);
    ASSERT_MEM_STR(q.params, q.params_len, "$1='21'");
    ASSERT_EQ_U64(q.fingerprint, nprof_sql_fingerprint(sql, strlen(sql)));

    /* After a reset the server forgot the statement, and so did we. */
    nprof_pq_stats s0, s1;
    nprof_pq_get_stats(&s0);
    X_reset(c);
    ASSERT_EQ_INT(PQstatus(c), CONNECTION_OK);
    ASSERT_EQ_INT(status_of(X_exec_prepared(c, "dbl", 1, v, NULL, NULL, 0)), PGRES_FATAL_ERROR);
    nprof_pq_get_stats(&s1);
    ASSERT_EQ_U64(s1.unknown_statements, s0.unknown_statements + 1);
    ASSERT_EQ_U64(query_count(p), 2);
    q = query_at(p, 1);
    ASSERT_MEM_STR(q.sql, q.sql_len, "EXECUTE dbl");
    end_request(p);
    X_finish(c);
}

TEST(sql_level_prepare_execute_and_deallocate)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    const char *body = "SELECT $1 + 1 AS sql_level_prepared";
    ASSERT_EQ_INT(status_of(X_exec(c, "PREPARE SqlP (int) AS SELECT $1 + 1 AS sql_level_prepared")),
                  PGRES_COMMAND_OK);
    PGresult *r = X_exec(c, "EXECUTE sqlp(41)");
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    ASSERT_STR(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    nprof_query_info q = query_at(p, 1);
    ASSERT_MEM_STR(q.sql, q.sql_len, body);
    ASSERT_MEM_STR(q.params, q.params_len, "(41)");
    ASSERT_EQ_U64(q.fingerprint, nprof_sql_fingerprint(body, strlen(body)));
    ASSERT_EQ_INT(X_send_query(c, "  execute SQLP (7);"), 1);
    ASSERT_EQ_INT(drain(c), PGRES_TUPLES_OK);
    q = query_at(p, 2);
    ASSERT_MEM_STR(q.sql, q.sql_len, body);
    ASSERT_MEM_STR(q.params, q.params_len, "(7)");
    ASSERT_EQ_INT(status_of(X_exec(c, "DEALLOCATE sqlp")), PGRES_COMMAND_OK);
    ASSERT_EQ_INT(status_of(X_exec(c, "EXECUTE sqlp(1)")), PGRES_FATAL_ERROR);
    ASSERT_EQ_U64(query_count(p), 5);
    q = query_at(p, 4);
    ASSERT_MEM_STR(q.sql, q.sql_len, "EXECUTE sqlp(1)");
    /* PREPARE TRANSACTION names no statement: recorded as it is. */
    PQclear(X_exec(c, "PREPARE TRANSACTION 'x'"));
    q = query_at(p, 5);
    ASSERT_MEM_STR(q.sql, q.sql_len, "PREPARE TRANSACTION 'x'");
    end_request(p);
    X_finish(c);
}

/* ---- asynchronous calls ---------------------------------------------------------------- */

TEST(async_queries_are_timed_from_send_to_the_last_result)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    const char *sql = "SELECT pg_sleep(0.02) /* async */";
    uint64_t t0 = test_monotonic_ns();
    ASSERT_EQ_INT(X_send_query(c, sql), 1);
    PGresult *r = X_get_result(c);
    ASSERT_EQ_INT(status_of(r), PGRES_TUPLES_OK);
    ASSERT_EQ_U64(query_count(p), 0); /* not over until the NULL */
    test_spin_ns(5000000);
    ASSERT_TRUE(X_get_result(c) == NULL);
    uint64_t wall = test_monotonic_ns() - t0;
    ASSERT_EQ_U64(query_count(p), 1);
    nprof_query_info q = query_at(p, 0);
    ASSERT_MEM_STR(q.sql, q.sql_len, sql);
    ASSERT_U64_OP(q.duration_ns, >=, 25000000u);
    ASSERT_U64_OP(q.duration_ns, <=, wall);

    /* With parameters, and a prepared statement sent asynchronously. */
    const char *v[1] = {"7"};
    ASSERT_EQ_INT(X_send_query_params(c, "SELECT $1::int AS async_params", 1, NULL, v, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(drain(c), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(X_send_prepare(c, "asp", "SELECT $1::int + 100 AS async_prepared", 1, NULL), 1);
    ASSERT_EQ_INT(drain(c), PGRES_COMMAND_OK);
    ASSERT_EQ_INT(X_send_query_prepared(c, "asp", 1, v, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(drain(c), PGRES_TUPLES_OK);
    ASSERT_EQ_U64(query_count(p), 3);
    q = query_at(p, 1);
    ASSERT_MEM_STR(q.sql, q.sql_len, "SELECT $1::int AS async_params");
    ASSERT_MEM_STR(q.params, q.params_len, "$1='7'");
    q = query_at(p, 2);
    ASSERT_MEM_STR(q.sql, q.sql_len, "SELECT $1::int + 100 AS async_prepared");
    /* A failing async query is recorded once, as an error in the table. */
    const char *bad = "SELECT * FROM no_such_table_async";
    ASSERT_EQ_INT(X_send_query(c, bad), 1);
    ASSERT_EQ_INT(drain(c), PGRES_FATAL_ERROR);
    ASSERT_EQ_U64(query_count(p), 4);
    nprof_querystats_entry e;
    ASSERT_OK(nprof_querystats_find(nprof_pq_querystats(), nprof_sql_fingerprint(bad, strlen(bad)), &e));
    ASSERT_EQ_U64(e.errors, e.calls);
    end_request(p);
    X_finish(c);
}

TEST(pipeline_results_per_statement_in_order)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    ASSERT_EQ_INT(status_of(X_prepare(c, "pip", "SELECT $1::int AS pipelined_prepared", 1, NULL)),
                  PGRES_COMMAND_OK);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    ASSERT_EQ_INT(PQenterPipelineMode(c), 1);
    const char *v[1] = {"5"};
    uint64_t t0 = test_monotonic_ns();
    ASSERT_EQ_INT(X_send_query_params(c, "SELECT pg_sleep(0.01), 'pipe one'", 0, NULL, NULL, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(X_send_query_prepared(c, "pip", 1, v, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(X_send_query_params(c, "SELECT 'pipe three'", 0, NULL, NULL, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(X_pipeline_sync(c), 1);
    /* A failing statement aborts the rest of its segment: recorded as an error, the rest not. */
    ASSERT_EQ_INT(X_send_query_params(c, "SELECT 1/0 AS pipe_fails", 0, NULL, NULL, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(X_send_query_params(c, "SELECT 'pipe aborted'", 0, NULL, NULL, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(X_pipeline_sync(c), 1);
    nprof_pq_stats s0, s1;
    nprof_pq_get_stats(&s0);
    int expect[] = {PGRES_TUPLES_OK, PGRES_TUPLES_OK, PGRES_TUPLES_OK, PGRES_PIPELINE_SYNC,
                    PGRES_FATAL_ERROR, PGRES_PIPELINE_ABORTED, PGRES_PIPELINE_SYNC};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        PGresult *r = X_get_result(c);
        ASSERT_EQ_INT(status_of(r), expect[i]);
        if (expect[i] != PGRES_PIPELINE_SYNC)
            ASSERT_TRUE(X_get_result(c) == NULL);
    }
    uint64_t wall = test_monotonic_ns() - t0;
    ASSERT_EQ_INT(PQexitPipelineMode(c), 1);
    nprof_pq_get_stats(&s1);
    ASSERT_EQ_U64(s1.aborted, s0.aborted + 1);
    ASSERT_EQ_U64(query_count(p), 4);
    const char *texts[] = {"SELECT pg_sleep(0.01), 'pipe one'", "SELECT $1::int AS pipelined_prepared",
                           "SELECT 'pipe three'", "SELECT 1/0 AS pipe_fails"};
    uint64_t sum = 0;
    for (size_t i = 0; i < 4; i++) {
        nprof_query_info q = query_at(p, i);
        ASSERT_MEM_STR(q.sql, q.sql_len, texts[i]);
        sum += q.duration_ns;
    }
    ASSERT_U64_OP(query_at(p, 0).duration_ns, >=, 10000000u);
    ASSERT_U64_OP(sum, <=, wall); /* statements are timed back to back, never overlapping */
    end_request(p);
    X_finish(c);
}

TEST(a_pipeline_longer_than_the_tracked_window_stays_in_step)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    ASSERT_EQ_INT(PQenterPipelineMode(c), 1);
    nprof_pq_stats s0, s1;
    nprof_pq_get_stats(&s0);
    enum { N = NPROF_PQ_MAX_PENDING + 6 };
    char sql[64];
    for (int i = 0; i < N; i++) {
        snprintf(sql, sizeof sql, "SELECT %d AS long_pipeline", i);
        ASSERT_EQ_INT(X_send_query_params(c, sql, 0, NULL, NULL, NULL, NULL, 0), 1);
    }
    ASSERT_EQ_INT(X_pipeline_sync(c), 1);
    for (int i = 0; i < N; i++) {
        PGresult *r = X_get_result(c);
        ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
        ASSERT_EQ_INT(atoi(PQgetvalue(r, 0, 0)), i); /* libpq's results, untouched */
        PQclear(r);
        ASSERT_TRUE(X_get_result(c) == NULL);
    }
    ASSERT_EQ_INT(status_of(X_get_result(c)), PGRES_PIPELINE_SYNC);
    nprof_pq_get_stats(&s1);
    ASSERT_EQ_U64(s1.dropped_pending - s0.dropped_pending, N - NPROF_PQ_MAX_PENDING + 1);
    ASSERT_EQ_U64(query_count(p), NPROF_PQ_MAX_PENDING);
    /* In step again: the next statement is recorded with its own text. */
    ASSERT_EQ_INT(X_send_query_params(c, "SELECT 'after the long pipeline'", 0, NULL, NULL, NULL, NULL, 0), 1);
    ASSERT_EQ_INT(X_pipeline_sync(c), 1);
    ASSERT_EQ_INT(status_of(X_get_result(c)), PGRES_TUPLES_OK);
    ASSERT_TRUE(X_get_result(c) == NULL);
    ASSERT_EQ_INT(status_of(X_get_result(c)), PGRES_PIPELINE_SYNC);
    ASSERT_EQ_U64(query_count(p), NPROF_PQ_MAX_PENDING + 1);
    nprof_query_info q = query_at(p, NPROF_PQ_MAX_PENDING);
    ASSERT_MEM_STR(q.sql, q.sql_len, "SELECT 'after the long pipeline'");
    ASSERT_EQ_INT(PQexitPipelineMode(c), 1);
    end_request(p);
    X_finish(c);
}

/* ---- what must not change -------------------------------------------------------------- */

TEST(failures_never_change_what_libpq_returns)
{
    nprof_pq_stats s0, s1;
    nprof_pq_get_stats(&s0);
    ASSERT_TRUE(X_exec(NULL, "SELECT 1") == NULL);
    ASSERT_EQ_INT(X_send_query(NULL, "SELECT 1"), 0);
    ASSERT_TRUE(X_get_result(NULL) == NULL);
    ASSERT_TRUE(X_exec_prepared(NULL, "x", 0, NULL, NULL, NULL, 0) == NULL);
    X_finish(NULL);
    /* A connection that failed: libpq's own error result comes back. */
    PGconn *bad = PQconnectdb("host=/nonexistent/nprof port=1 connect_timeout=1");
    ASSERT_EQ_INT(PQstatus(bad), CONNECTION_BAD);
    PGresult *r = X_exec(bad, "SELECT 1");
    ASSERT_TRUE(r == NULL || PQresultStatus(r) == PGRES_FATAL_ERROR);
    PQclear(r);
    ASSERT_EQ_INT(X_send_query(bad, "SELECT 1"), 0);
    X_finish(bad);
    nprof_pq_get_stats(&s1);
    ASSERT_EQ_U64(s1.recorded, s0.recorded + 1); /* only the failed PQexec, as an error */

    /* A 100 MB query: executed as sent, recorded cut at max_sql_bytes. */
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    size_t n = (size_t)100 << 20;
    char *huge = malloc(n + 1);
    ASSERT_TRUE(huge);
    const char *head = "SELECT 'huge' AS h -- ";
    memcpy(huge, head, strlen(head));
    memset(huge + strlen(head), 'z', n - strlen(head));
    huge[n] = 0;
    nprof_profile *p = begin_request();
    r = X_exec(c, huge);
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    ASSERT_STR(PQgetvalue(r, 0, 0), "huge");
    PQclear(r);
    ASSERT_EQ_U64(query_count(p), 1);
    nprof_query_info q = query_at(p, 0);
    ASSERT_U64_OP(q.sql_len, <=, nprof_runtime_config(nprof_pq_runtime())->max_sql_bytes);
    end_request(p);
    free(huge);
    X_finish(c);
}

TEST(excluded_threads_and_connections_are_not_recorded)
{
    PGconn *c = pg_connect();
    PGconn *d = pg_connect();
    ASSERT_TRUE(c && d);
    nprof_profile *p = begin_request();
    int prev = nprof_pq_exclude_thread(1);
    ASSERT_EQ_INT(status_of(X_exec(c, "SELECT 'excluded thread'")), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(X_send_query(c, "SELECT 'excluded thread async'"), 1);
    ASSERT_EQ_INT(drain(c), PGRES_TUPLES_OK);
    nprof_pq_exclude_thread(prev);
    ASSERT_EQ_U64(query_count(p), 0);
    ASSERT_OK(nprof_pq_exclude_conn(d));
    ASSERT_EQ_INT(status_of(X_exec(d, "SELECT 'excluded conn'")), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(X_send_query(d, "SELECT 'excluded conn async'"), 1);
    ASSERT_EQ_INT(drain(d), PGRES_TUPLES_OK);
    ASSERT_EQ_U64(query_count(p), 0);
    ASSERT_EQ_INT(status_of(X_exec(c, "SELECT 'not excluded'")), PGRES_TUPLES_OK);
    ASSERT_EQ_U64(query_count(p), 1);
    end_request(p);
    X_finish(c);
    X_finish(d);
    nprof_pq_stats s;
    nprof_pq_get_stats(&s);
    ASSERT_EQ_U64(s.conns, 0); /* finish forgot both */
}

#ifndef NPROF_PQ_PRELOAD
TEST(begin_end_around_the_hosts_own_calls)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    nprof_profile *p = begin_request();
    const char *sql = "SELECT 'begin end' AS be";
    nprof_pq_call call;
    nprof_pq_begin(&call);
    PGresult *r = nprof_pq_exec(c, sql); /* nested: recorded by the end below, not twice */
    nprof_pq_end(&call, c, sql, strlen(sql), 0, NULL, NULL, NULL, r);
    ASSERT_EQ_INT(status_of(r), PGRES_TUPLES_OK);
    ASSERT_EQ_U64(query_count(p), 1);
    ASSERT_MEM_STR(query_at(p, 0).sql, query_at(p, 0).sql_len, sql);
    end_request(p);
    nprof_pq_finish(c);
}
#endif

/* ---- the slow-query log ------------------------------------------------------------------------ */

TEST(slow_queries_go_to_the_log_the_host_set_and_the_log_is_never_recorded)
{
    nprof_slowlog_options o;
    nprof_slowlog_options_init(&o);
    snprintf(o.table, sizeof o.table, "pq_host_log");
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    ASSERT_OK(nprof_pq_set_slowlog(log));
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    nprof_profile *p = begin_request();
    ASSERT_TRUE(p);
    /* NANOPROF_CONF set slow_query_threshold_ms=15 (main) */
    ASSERT_EQ_INT(status_of(X_exec(c, "SELECT pg_sleep(0.03), 'host log slow'")), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(status_of(X_exec(c, "SELECT 'host log fast'")), PGRES_TUPLES_OK);
    const char *v[1] = {"bob@example.com"};
    ASSERT_EQ_INT(status_of(X_exec_params(c, "SELECT pg_sleep(0.03), $1::text AS host_log_param", 1,
                                          NULL, v, NULL, NULL, 0)),
                  PGRES_TUPLES_OK);
    nprof_query_info q = query_at(p, 2); /* the profile keeps the summary redacted too */
    ASSERT_MEM_STR(q.params, q.params_len, "$1='[redacted]'");
    /* Marked as logged, so that the middleware's log leaves them out; the fast one is not. */
    ASSERT_TRUE(q.flags & NPROF_QUERY_LOGGED);
    ASSERT_TRUE(query_at(p, 0).flags & NPROF_QUERY_LOGGED);
    ASSERT_EQ_U64(query_at(p, 1).flags & NPROF_QUERY_LOGGED, 0);
    end_request(p);
    ASSERT_OK(nprof_pq_set_slowlog(NULL));
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    /* The log's own statements (CREATE TABLE, COPY pq_host_log ...) were never recorded. */
    nprof_buf b = NPROF_BUF_INIT;
    ASSERT_OK(nprof_pq_render_json(&b));
    int own = strstr(b.data, "pq_host_log") != NULL;
    if (own)
        fprintf(stderr, "%s\n", b.data);
    nprof_buf_free(&b);
    ASSERT_TRUE(!own);
    ASSERT_EQ_INT(pg_scalar(c, "SELECT count(*) FROM pq_host_log WHERE sql_text LIKE '%host log slow%'"
                               " AND method = 'GET' AND route = '/pq'"), 1);
    ASSERT_EQ_INT(pg_scalar(c, "SELECT count(*) FROM pq_host_log WHERE sql_text LIKE '%host log fast%'"), 0);
    ASSERT_EQ_INT(pg_scalar(c, "SELECT count(*) FROM pq_host_log WHERE sql_text LIKE '%host_log_param%'"
                               " AND params_summary NOT LIKE '%bob@%'"), 1);
    X_finish(c);
}

/* ---- threads ------------------------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 40

typedef struct thread_arg {
    int id;
    int ok;
    char why[160];
} thread_arg;

static void *thread_main(void *v)
{
    thread_arg *a = v;
    PGconn *c = pg_connect();
    nprof_profile *p = begin_request();
    if (!c || !p) {
        snprintf(a->why, sizeof a->why, "no connection or profile");
        return NULL;
    }
    char sql[96], mine[32];
    snprintf(mine, sizeof mine, "thread_%d", a->id);
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(sql, sizeof sql, "SELECT %d AS %s", i, mine);
        if (i % 2) {
            PQclear(X_exec(c, sql));
        } else if (X_send_query(c, sql) == 1) {
            drain(c);
        }
    }
    size_t n = query_count(p);
    a->ok = n == PER_THREAD;
    if (!a->ok)
        snprintf(a->why, sizeof a->why, "%zu queries in the profile", n);
    for (size_t i = 0; a->ok && i < n; i++) {
        nprof_query_info q = query_at(p, i);
        if (!memmem(q.sql, q.sql_len, mine, strlen(mine))) {
            a->ok = 0;
            snprintf(a->why, sizeof a->why, "foreign query: %.*s", (int)q.sql_len, q.sql);
        }
    }
    end_request(p);
    X_finish(c);
    return NULL;
}

TEST(threads_see_only_their_own_queries)
{
    pthread_t t[THREADS];
    thread_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (thread_arg){.id = i};
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        if (!a[i].ok)
            fprintf(stderr, "thread %d: %s\n", i, a[i].why);
        ASSERT_TRUE(a[i].ok);
    }
    nprof_querystats_entry e;
    const char *shape = "SELECT 1 AS thread_0";
    ASSERT_OK(nprof_querystats_find(nprof_pq_querystats(), nprof_sql_fingerprint(shape, strlen(shape)), &e));
    ASSERT_EQ_U64(e.calls, PER_THREAD);
    ASSERT_STR(e.normalized, "SELECT ? AS thread_0");
}

/* ---- the table ------------------------------------------------------------------------------ */

TEST(the_table_renders_as_json)
{
    nprof_buf b = NPROF_BUF_INIT;
    ASSERT_OK(nprof_pq_render_json(&b));
    ASSERT_TRUE(strstr(b.data, "\"querystats\":{\"capacity\":"));
    ASSERT_TRUE(strstr(b.data, "\"query\":\"SELECT ? AS thread_1\",\"calls\":40,"));
    nprof_buf_free(&b);
}

/* ---- under the shim only: programs that know nothing of nanoprof ------------------------------ */
#ifdef NPROF_PQ_PRELOAD
static char shim_path[4096];

/* Runs `cmd` through sh and returns its stdout and stderr (malloc'd). */
static char *run_capture(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *out = malloc(cap);
    while (out && (got = fread(out + len, 1, cap - len - 1, f)) > 0)
        len += got;
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (out)
        out[len] = 0;
    return out;
}

TEST(shim_is_what_the_program_calls)
{
    Dl_info info;
    ASSERT_TRUE(dladdr((void *)(uintptr_t)&PQexec, &info) && info.dli_fname);
    ASSERT_TRUE(strstr(info.dli_fname, "libnanoprof_pq") != NULL);
}

TEST(psql_prints_the_same_under_the_shim)
{
    const char *args = "-X -v ON_ERROR_STOP=0 -c \"SELECT 1 AS a, 'x y' AS b\" "
                       "-c \"SELECT * FROM generate_series(1, 3)\" -c \"SELECT 1/0\" "
                       "-c \"\\\\echo done\"";
    char cmd[8192];
    int st_plain, st_shim;
    snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD psql %s '%s' 2>&1", args, pg_conninfo);
    char *plain = run_capture(cmd, &st_plain);
    snprintf(cmd, sizeof cmd,
             "env LD_PRELOAD='%s' NANOPROF_PQ_DUMP=/dev/null psql %s '%s' 2>&1", shim_path,
             args, pg_conninfo);
    char *shim = run_capture(cmd, &st_shim);
    ASSERT_TRUE(plain && shim);
    if (strcmp(plain, shim) != 0)
        fprintf(stderr, "without the shim:\n%s\nwith it:\n%s\n", plain, shim);
    ASSERT_STR(shim, plain);
    ASSERT_EQ_INT(st_shim, st_plain);
    ASSERT_TRUE(strstr(plain, "done") != NULL);
    free(plain);
    free(shim);
}

/* Runs three parameterized SELECTs through psycopg2 with the shim preloaded and `env` added;
 * returns 0 when Python succeeded, 77 when psycopg2 is missing, else 1. */
static int run_psycopg2(const char *env)
{
    int st;
    char *have = run_capture("env -u LD_PRELOAD /usr/bin/python3 -c 'import psycopg2' 2>&1", &st);
    free(have);
    if (st != 0) {
        printf("     (python3-psycopg2 not installed: apt-get install -y python3-psycopg2; part skipped)\n");
        return 77;
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "env LD_PRELOAD='%s' %s /usr/bin/python3 -c '\n"
             "import psycopg2\n"
             "conn = psycopg2.connect(\"%s\")\n"
             "cur = conn.cursor()\n"
             "for i in range(3):\n"
             "    cur.execute(\"SELECT %%s::int AS psycopg_marker\", (i,))\n"
             "    assert cur.fetchone()[0] == i\n"
             "conn.commit()\n"
             "conn.close()\n"
             "print(\"python done\")\n' 2>&1",
             shim_path, env, pg_conninfo);
    char *out = run_capture(cmd, &st);
    int ok = out && st == 0 && strstr(out, "python done");
    if (!ok)
        fprintf(stderr, "python (exit %d): %s\n", st, out ? out : "");
    free(out);
    return ok ? 0 : 1;
}

TEST(psycopg2_under_the_shim_fills_the_table)
{
    char dump[] = "/tmp/nprof-pq-dump-XXXXXX";
    int fd = mkstemp(dump);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    char env[256];
    snprintf(env, sizeof env, "NANOPROF_PQ_DUMP='%s'", dump);
    int rc = run_psycopg2(env);
    if (rc == 77) {
        unlink(dump);
        return;
    }
    ASSERT_EQ_INT(rc, 0);
    FILE *f = fopen(dump, "r");
    ASSERT_TRUE(f);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(dump);
    buf[n] = 0;
    const char *want = "\"query\":\"SELECT ? AS psycopg_marker\",\"calls\":3,";
    if (!strstr(buf, want))
        fprintf(stderr, "dump: %s\n", buf);
    ASSERT_TRUE(strstr(buf, want) != NULL);
}

/* Counts rows of the slow-query table matching `where`; -1 when the query fails. */
static long long slow_rows(PGconn *c, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM nanoprof_slow_queries WHERE %s", where);
    return pg_scalar(c, sql);
}

TEST(psycopg2_slow_queries_reach_the_slow_log_and_the_log_not_itself)
{
    /* Every query is slow (threshold 0); the shim opens the log from NANOPROF_CONF and
     * writes it out at exit. */
    char env[2048];
    snprintf(env, sizeof env, "NANOPROF_CONF='slow_query_threshold_ms=0,slowlog_conninfo=%s'",
             pg_conninfo);
    int rc = run_psycopg2(env);
    if (rc == 77)
        return;
    ASSERT_EQ_INT(rc, 0);
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    ASSERT_EQ_INT(slow_rows(c, "sql_text LIKE '%psycopg_marker%'"), 3);
    ASSERT_EQ_INT(slow_rows(c, "sql_text LIKE '%nanoprof_slow_queries%' OR sql_text LIKE 'COPY%'"), 0);
    PQfinish(c);
}
#endif

int main(int argc, char **argv)
{
#ifdef NPROF_PQ_PRELOAD
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    (void)argc;
    (void)argv;
    printf(PROG ": skipped in sanitizer builds (their runtime must be first in LD_PRELOAD); "
                "test_pq covers the same paths through the explicit wrappers\n");
    return 77;
#else
    if (argc < 2) {
        fprintf(stderr, "usage: " PROG " <path of libnanoprof_pq.so>\n");
        return 2;
    }
    snprintf(shim_path, sizeof shim_path, "%s", argv[1]);
    if (!getenv("NPROF_PQ_TEST_PRELOADED")) {
        /* Run again with the shim preloaded, as a user would start an unmodified program. */
        setenv("NPROF_PQ_TEST_PRELOADED", "1", 1);
        setenv("LD_PRELOAD", shim_path, 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }
    unsetenv("LD_PRELOAD"); /* children choose for themselves (the cluster runs without) */
#endif
#else
    (void)argc;
    (void)argv;
#endif
    setenv("NANOPROF_CONF", "slow_query_threshold_ms=15", 1); /* read when the layer starts */
    int rc = pg_start(PROG);
    if (rc == PG_SKIP_EXIT)
        printf(PROG ": no PostgreSQL server installed: skipped\n");
    if (rc)
        return rc;
#ifdef NPROF_PQ_PRELOAD
    RUN(shim_is_what_the_program_calls);
#endif
    RUN(exec_records_once_with_text_duration_and_fingerprint);
    RUN(an_exact_repeat_counts_alike_through_the_shim_and_the_sql_layer);
    RUN(exec_params_records_a_parameter_summary);
    RUN(duplicates_follow_the_values_also_without_a_summary);
    RUN(prepared_statements_record_their_text_and_are_forgotten_on_reset);
    RUN(sql_level_prepare_execute_and_deallocate);
    RUN(async_queries_are_timed_from_send_to_the_last_result);
    RUN(pipeline_results_per_statement_in_order);
    RUN(a_pipeline_longer_than_the_tracked_window_stays_in_step);
    RUN(failures_never_change_what_libpq_returns);
    RUN(excluded_threads_and_connections_are_not_recorded);
#ifndef NPROF_PQ_PRELOAD
    RUN(begin_end_around_the_hosts_own_calls);
#endif
    RUN(slow_queries_go_to_the_log_the_host_set_and_the_log_is_never_recorded);
    RUN(threads_see_only_their_own_queries);
    RUN(the_table_renders_as_json);
#ifdef NPROF_PQ_PRELOAD
    RUN(psql_prints_the_same_under_the_shim);
    RUN(psycopg2_under_the_shim_fills_the_table);
    RUN(psycopg2_slow_queries_reach_the_slow_log_and_the_log_not_itself);
#else
    nprof_pq_shutdown();
#endif
    return TEST_SUMMARY();
}
