/*
 * tests/test_slowlog_callsite.c: the slow-query log's callsite column and
 * nprof_slowlog_wait_ready(), against a throwaway PostgreSQL (tests/pg_cluster.sh through
 * tests/pg_test.h; skipped with exit code 77 where no server is installed).
 *
 *   - a table made by an earlier version (no callsite column, a view without it) gets the
 *     column and the view is made again with it;
 *   - call sites are stored byte for byte as COPY allows (NUL and invalid UTF-8 become
 *     U+FFFD), cut at NPROF_CALLSITE_MAX, NULL when unknown, and the read calls show them;
 *   - a finished profile's slow queries carry their call sites, and the ones a database hook
 *     logged already (NPROF_QUERY_LOGGED) are left out;
 *   - wait_ready: bad arguments, an unreachable server (a timeout whose detail says why) and
 *     a server that comes back (paused, then resumed).
 * Nothing is asserted about how soon the writer acts: every wait has a hang guard of minutes.
 */
#include <string.h>
#include <time.h>

#include "json_check.h"
#include "nprof_test.h"
#include "test.h"
#include "pg_test.h"

#include "nanoprof/nanoprof.h"

#define HANG_GUARD_MS 120000u /* a guard against hanging, never a timing */

static PGconn *db;

static nprof_slowlog *open_log(const char *conninfo, const char *table, nprof_runtime *rt)
{
    nprof_slowlog_options o;
    nprof_slowlog_options_init(&o);
    snprintf(o.table, sizeof o.table, "%s", table);
    o.runtime = rt;
    o.flush_interval_ms = 5;
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    nprof_slowlog *log = NULL;
    int rc = nprof_slowlog_open(&log, conninfo, &o);
    if (rc)
        fprintf(stderr, "open: %s: %s\n", nprof_errname(rc), nprof_last_error_detail());
    return log;
}

/* Returns once `log` has written `n` rows, or at the hang guard. */
static void wait_written(nprof_slowlog *log, uint64_t n)
{
    nprof_slowlog_stats st;
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 10000000L};
    for (unsigned ms = 0; ms < HANG_GUARD_MS; ms += 10) {
        if (nprof_slowlog_get_stats(log, &st) != NPROF_OK || st.written >= n)
            return;
        nanosleep(&tick, NULL);
    }
}

/* Column `column` of the single row `sql` returns, into `out` (NUL-terminated, "<null>" for
 * NULL, "" when there is no single row). */
static const char *value_of(const char *sql, int column, char *out, size_t cap)
{
    PGresult *r = PQexec(db, sql);
    out[0] = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(out, cap, "%s", PQgetisnull(r, 0, column) ? "<null>" : PQgetvalue(r, 0, column));
    else
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    return out;
}

TEST(wait_ready_refuses_null_and_reports_an_unreachable_server)
{
    ASSERT_EQ_INT(nprof_slowlog_wait_ready(NULL, 10), NPROF_EINVAL);
    nprof_slowlog *log = open_log("host=/nonexistent/nprof port=1 dbname=x", "nowhere", NULL);
    ASSERT_TRUE(log != NULL);
    ASSERT_EQ_INT(nprof_slowlog_wait_ready(log, 300), NPROF_EIO);
    const char *why = nprof_last_error_detail();
    printf("  detail: %s\n", why);
    ASSERT_TRUE(strstr(why, "not ready after 300 ms") != NULL);
    ASSERT_TRUE(strstr(why, "connect") != NULL); /* the writer's error, or "connecting" */
    ASSERT_OK(nprof_slowlog_close(log, 200));
}

/* The table and view as version 0.1 made them: no callsite column. */
static const char OLD_SCHEMA[] =
    "CREATE UNLOGGED TABLE old_log (id bigserial PRIMARY KEY, sql_text text NOT NULL,"
    " duration_ms double precision NOT NULL, params_summary text,"
    " \"timestamp\" timestamptz NOT NULL DEFAULT now(), fingerprint bigint, normalized_sql text,"
    " method text, route text, host text, pid integer, request_id text,"
    " truncated boolean NOT NULL DEFAULT false, plan text, batch_id bigint);"
    "INSERT INTO old_log (sql_text, duration_ms) VALUES ('SELECT old', 1);"
    "CREATE VIEW old_log_hex AS SELECT id, sql_text, duration_ms, params_summary, \"timestamp\","
    " lpad(to_hex(fingerprint), 16, '0') AS fingerprint, normalized_sql, method, route, host,"
    " pid, request_id, truncated, plan, batch_id FROM old_log";

TEST(an_older_table_gets_the_column_and_call_sites_are_stored_as_data)
{
    ASSERT_TRUE(pg_exec(db, OLD_SCHEMA));
    nprof_slowlog *log = open_log(pg_conninfo, "old_log", NULL);
    ASSERT_TRUE(log != NULL);
    ASSERT_OK(nprof_slowlog_wait_ready(log, HANG_GUARD_MS));
    ASSERT_EQ_INT(pg_scalar(db, "SELECT count(*) FROM information_schema.columns WHERE "
                                "table_name IN ('old_log', 'old_log_hex') AND column_name = 'callsite'"),
                  2);

    nprof_slowlog_entry e = {.sql = "SELECT 1", .sql_len = 8, .duration_ms = 150};
    e.callsite = "views.py:42 in \"list\"\t\\ \n";
    e.callsite_len = strlen(e.callsite);
    ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    e.sql = "SELECT 2";
    e.callsite = NULL;
    e.callsite_len = 0;
    ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    static char big[10240];
    memset(big, 'x', sizeof big);
    memcpy(big, "a\0b\xff", 4);
    e.sql = "SELECT 3";
    e.callsite = big;
    e.callsite_len = sizeof big;
    ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    e.callsite = NULL;
    e.callsite_len = 1;
    ASSERT_EQ_INT(nprof_slowlog_enqueue(log, &e), NPROF_EINVAL);

    /* The read calls show the column: a string, or null. */
    wait_written(log, 3);
    nprof_buf j = NPROF_BUF_INIT;
    ASSERT_OK(nprof_slowlog_read_recent(log, 10, &j));
    size_t where = 0;
    ASSERT_TRUE(json_check(j.data, j.len, &where));
    ASSERT_TRUE(strstr(j.data, "\"callsite\":\"views.py:42 in \\\"list\\\"\\t\\\\ \\n\"") != NULL);
    ASSERT_TRUE(strstr(j.data, "\"callsite\":null") != NULL);
    nprof_buf_free(&j);
    ASSERT_OK(nprof_slowlog_close(log, 10000));

    char v[1024];
    ASSERT_STR(value_of("SELECT callsite FROM old_log WHERE sql_text = 'SELECT 1'", 0, v, sizeof v),
               "views.py:42 in \"list\"\t\\ \n");
    ASSERT_STR(value_of("SELECT callsite FROM old_log_hex WHERE sql_text = 'SELECT 2'", 0, v, sizeof v),
               "<null>");
    ASSERT_STR(value_of("SELECT char_length(callsite) FROM old_log WHERE sql_text = 'SELECT 3'", 0,
                        v, sizeof v),
               "256");
    ASSERT_STR(value_of("SELECT left(callsite, 5) FROM old_log WHERE sql_text = 'SELECT 3'", 0, v,
                        sizeof v),
               "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "x");
    ASSERT_STR(value_of("SELECT callsite FROM old_log WHERE sql_text = 'SELECT old'", 0, v, sizeof v),
               "<null>"); /* the old rows stay, without one */
}

static size_t view_site(void *user, char *buf, size_t cap)
{
    (void)user;
    static const char site[] = "views.py:42 in show_user";
    memcpy(buf, site, sizeof site - 1 < cap ? sizeof site - 1 : cap);
    return sizeof site - 1;
}

TEST(a_profile_enqueues_call_sites_and_leaves_out_queries_logged_already)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    ASSERT_TRUE(rt != NULL);
    nprof_slowlog *log = open_log(pg_conninfo, "profiled_sites", rt);
    ASSERT_TRUE(log != NULL);
    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/users/7", 8, 0, &p));
    nprof_query slow = {.sql = "SELECT * FROM users WHERE id = 7", .sql_len = 32,
                        .duration_ns = 5000000, .callsite = view_site};
    nprof_query logged = {.sql = "SELECT * FROM orders", .sql_len = 20, .duration_ns = 5000000,
                          .flags = NPROF_QUERY_LOGGED};
    nprof_query fast = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000};
    ASSERT_OK(nprof_sql_record(p, &slow));
    ASSERT_OK(nprof_sql_record(p, &logged));
    ASSERT_OK(nprof_sql_record(p, &fast));
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_EQ_INT(nprof_slowlog_enqueue_profile(log, p), 1);
    nprof_request_discard(p);
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    nprof_runtime_destroy(rt);
    char v[256];
    ASSERT_STR(value_of("SELECT count(*), min(callsite) FROM profiled_sites", 0, v, sizeof v), "1");
    ASSERT_STR(value_of("SELECT sql_text, callsite FROM profiled_sites", 1, v, sizeof v),
               "views.py:42 in show_user");
}

TEST(wait_ready_returns_once_the_server_is_back)
{
    if (!pg_running) {
        printf("  (skipped: the server was given by NPROF_TEST_PG, so it cannot be paused)\n");
        return;
    }
    PQfinish(db);
    db = NULL;
    ASSERT_EQ_INT(pg_pause(), 0);
    nprof_slowlog *log = open_log(pg_conninfo, "comes_back", NULL);
    ASSERT_TRUE(log != NULL);
    int down = nprof_slowlog_wait_ready(log, 300);
    char why[512];
    snprintf(why, sizeof why, "%s", nprof_last_error_detail());
    int resumed = pg_resume();
    int up = nprof_slowlog_wait_ready(log, HANG_GUARD_MS);
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    printf("  while down: %s\n", why);
    ASSERT_EQ_INT(down, NPROF_EIO);
    ASSERT_TRUE(strstr(why, "connect") != NULL);
    ASSERT_EQ_INT(resumed, 0);
    ASSERT_OK(up);
    db = pg_connect();
    ASSERT_TRUE(db != NULL);
    ASSERT_EQ_INT(pg_scalar(db, "SELECT count(*) FROM information_schema.columns WHERE "
                                "table_name = 'comes_back_hex' AND column_name = 'callsite'"),
                  1);
}

int main(void)
{
    int rc = pg_start("test_slowlog_callsite");
    if (rc)
        return rc; /* PG_SKIP_EXIT where no server is installed: skipped */
    db = pg_connect();
    if (!db)
        return 1;
    RUN(wait_ready_refuses_null_and_reports_an_unreachable_server);
    RUN(an_older_table_gets_the_column_and_call_sites_are_stored_as_data);
    RUN(a_profile_enqueues_call_sites_and_leaves_out_queries_logged_already);
    RUN(wait_ready_returns_once_the_server_is_back);
    PQfinish(db);
    return TEST_SUMMARY();
}
