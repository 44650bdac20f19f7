/*
 * tests/test_slowlog_view.c: the slow-query table's companion view <table>_hex against a real
 * PostgreSQL (a throwaway cluster from tests/pg_cluster.sh through tests/pg_test.h; skipped
 * with exit code 77 where no server is installed).  The table keeps a fingerprint as a signed
 * bigint; the view must show the 16 hex digits the rest of nanoprof prints, also for the
 * fingerprints that are negative as a bigint and those with a leading zero digit.
 */
#include <time.h>

#include "nprof_test.h"
#include "test.h"
#include "pg_test.h"

#include "nanoprof/nanoprof.h"

#define PROG "test_slowlog_view"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the log has written `n` rows (10 s at most); the rows written. */
static uint64_t wait_written(nprof_slowlog *log, uint64_t n)
{
    nprof_slowlog_stats s;
    for (int i = 0; i < 1000; i++) {
        nprof_slowlog_get_stats(log, &s);
        if (s.written >= n)
            break;
        sleep_ms(10);
    }
    return s.written;
}

/* A query text "SELECT v FROM t<i> WHERE k = 1" whose fingerprint has its top bit set
 * (want_negative) or its top four bits clear (a leading '0' hex digit). */
static int find_query(int want_negative, char *sql, size_t cap)
{
    for (int i = 0; i < 100000; i++) {
        snprintf(sql, cap, "SELECT v FROM t%d WHERE k = 1", i);
        uint64_t fp = nprof_sql_fingerprint(sql, strlen(sql));
        if (want_negative ? fp >> 63 : fp >> 60 == 0)
            return 1;
    }
    return 0;
}

/* The value of the first "fingerprint":"..." after `from` in `json`, into hex[17]. */
static int json_fingerprint(const char *json, const char *from, char hex[17])
{
    const char *at = strstr(json, from);
    at = at ? strstr(at, "\"fingerprint\":\"") : NULL;
    if (!at)
        return 0;
    memcpy(hex, at + 15, 16);
    hex[16] = '\0';
    return 1;
}

/* The view's fingerprint of the row whose sql_text is `sql`, into hex[17]. */
static int view_fingerprint(PGconn *c, const char *view, const char *sql, char hex[17])
{
    char q[256];
    snprintf(q, sizeof q, "SELECT fingerprint FROM %s WHERE sql_text = $1", view);
    const char *params[1] = {sql};
    PGresult *r = PQexecParams(c, q, 1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        snprintf(hex, 17, "%s", PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "%s: %s (%d rows)\n", q, PQerrorMessage(c), PQntuples(r));
    PQclear(r);
    return ok;
}

/* A log into `table` over `rt`, storing the raw text (which identifies a row here); NULL,
 * with a message, on failure. */
static nprof_slowlog *open_log(nprof_runtime *rt, const char *table)
{
    nprof_slowlog_options lo;
    nprof_slowlog_options_init(&lo);
    lo.runtime = rt;
    lo.normalized_only = 0;
    snprintf(lo.table, sizeof lo.table, "%s", table);
    nprof_slowlog *log = NULL;
    int rc = nprof_slowlog_open(&log, pg_conninfo, &lo);
    if (rc)
        fprintf(stderr, "nprof_slowlog_open(%s): %s: %s\n", table, nprof_errname(rc),
                nprof_last_error_detail());
    return log;
}

TEST(view_shows_the_fingerprint_the_profile_json_shows)
{
    char neg[96], low[96];
    ASSERT_TRUE(find_query(1, neg, sizeof neg));
    ASSERT_TRUE(find_query(0, low, sizeof low));
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    /* In a schema of its own: the view goes beside the table, not into the search path. */
    ASSERT_TRUE(pg_exec(c, "CREATE SCHEMA IF NOT EXISTS viewtest"));
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    ASSERT_TRUE(rt);
    nprof_slowlog *log = open_log(rt, "viewtest.slow_fp");
    ASSERT_TRUE(log);

    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/fp", 3, 0, &p));
    nprof_query a = {.sql = neg, .sql_len = strlen(neg), .duration_ns = 5000000};
    nprof_query b = {.sql = low, .sql_len = strlen(low), .duration_ns = 5000000};
    ASSERT_OK(nprof_sql_record(p, &a));
    ASSERT_OK(nprof_sql_record(p, &b));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_buf json = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &json));
    ASSERT_EQ_INT(nprof_slowlog_enqueue_profile(log, p), 2);
    nprof_request_discard(p);
    ASSERT_EQ_U64(wait_written(log, 2), 2);

    /* The table holds one of them as a negative bigint; the view shows both as the JSON. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM viewtest.slow_fp WHERE fingerprint < 0");
    ASSERT_TRUE(pg_scalar(c, sql) == 1);
    char from_json[17], from_view[17];
    ASSERT_TRUE(json_fingerprint(json.data, neg, from_json));
    ASSERT_TRUE(view_fingerprint(c, "viewtest.slow_fp_hex", neg, from_view));
    ASSERT_STR(from_view, from_json);
    ASSERT_TRUE(json_fingerprint(json.data, low, from_json));
    ASSERT_TRUE(view_fingerprint(c, "viewtest.slow_fp_hex", low, from_view));
    ASSERT_STR(from_view, from_json);
    ASSERT_EQ_INT(from_view[0], '0');
    /* The other way, as slowlog.h documents it: hex text back to the table's bigint. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM viewtest.slow_fp"
             " WHERE fingerprint = ('x' || '%s')::bit(64)::bigint",
             from_json);
    ASSERT_TRUE(pg_scalar(c, sql) == 1);

    nprof_buf_free(&json);
    ASSERT_OK(nprof_slowlog_close(log, 2000));
    /* A second writer replaces the view in place (CREATE OR REPLACE) without an error. */
    log = open_log(rt, "viewtest.slow_fp");
    ASSERT_TRUE(log);
    nprof_slowlog_stats s = {.connected = 0};
    for (int i = 0; i < 500 && !s.connected; i++) {
        nprof_slowlog_get_stats(log, &s);
        sleep_ms(10);
    }
    ASSERT_EQ_INT(s.connected, 1);
    ASSERT_STR(s.last_error, "");
    ASSERT_OK(nprof_slowlog_close(log, 2000));
    nprof_runtime_destroy(rt);
    PQfinish(c);
}

TEST(a_view_that_cannot_be_made_never_stops_the_rows)
{
    PGconn *c = pg_connect();
    ASSERT_TRUE(c);
    /* A table already holds the view's name: CREATE OR REPLACE VIEW fails on it. */
    ASSERT_TRUE(pg_exec(c, "CREATE TABLE blocked_hex (x int)"));
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    ASSERT_TRUE(rt);
    nprof_slowlog *log = open_log(rt, "blocked");
    ASSERT_TRUE(log);
    nprof_slowlog_entry e = {.sql = "SELECT 1", .sql_len = 8, .duration_ms = 5};
    ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    ASSERT_EQ_U64(wait_written(log, 1), 1);
    nprof_slowlog_stats s;
    nprof_slowlog_get_stats(log, &s);
    ASSERT_TRUE(strstr(s.last_error, "blocked_hex") != NULL);
    ASSERT_TRUE(pg_scalar(c, "SELECT count(*) FROM blocked") == 1);
    ASSERT_OK(nprof_slowlog_close(log, 2000));
    nprof_runtime_destroy(rt);
    PQfinish(c);
}

int main(void)
{
    int rc = pg_start(PROG);
    if (rc)
        return rc;
    RUN(view_shows_the_fingerprint_the_profile_json_shows);
    RUN(a_view_that_cannot_be_made_never_stops_the_rows);
    return TEST_SUMMARY();
}
