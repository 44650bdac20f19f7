/*
 * tests/test_middleware_pq.c: the dashboard's cluster view against a real PostgreSQL (a
 * throwaway cluster from tests/pg_cluster.sh through tests/pg_test.h; skipped with
 * exit code 77 where no server is installed).  Two middleware objects, standing for two processes, write slow queries into
 * one slow-query log table; each one's dashboard shows the fingerprints of both.
 */
#include <time.h>

#include "json_check.h"
#include "nprof_test.h"
#include "test.h"
#include "pg_test.h"

#include "nanoprof/middleware.h"

#define PROG "test_middleware_pq"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void slow_request(nprof_mw *mw, const char *path, const char *sql)
{
    nprof_mw_request r = {.method = "GET", .method_len = 3, .path = path,
                          .path_len = strlen(path), .query = NULL, .query_len = 0, .route = NULL,
                          .route_len = 0, .header = NULL, .user = NULL, .start_ticks = 0};
    nprof_mw_state st;
    if (nprof_mw_request_begin(mw, &r, &st))
        return;
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .duration_ns = 250000000};
    nprof_sql_record(st.profile, &q);
    nprof_mw_request_end(&st, 200, NULL, NULL, NULL);
}

TEST(cluster_view_shows_fingerprints_of_every_writer)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=100");
    ASSERT_TRUE(rt);
    nprof_slowlog_options lo;
    nprof_slowlog_options_init(&lo);
    lo.runtime = rt;
    snprintf(lo.table, sizeof lo.table, "mw_cluster_view");
    nprof_slowlog *a = NULL, *b = NULL;
    ASSERT_OK(nprof_slowlog_open(&a, pg_conninfo, &lo));
    ASSERT_OK(nprof_slowlog_open(&b, pg_conninfo, &lo));
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.slowlog = a;
    nprof_mw *mwa = NULL, *mwb = NULL;
    ASSERT_OK(nprof_mw_create(rt, &o, &mwa));
    o.slowlog = b;
    ASSERT_OK(nprof_mw_create(rt, &o, &mwb));
    for (int i = 0; i < 3; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT * FROM reports WHERE account_id = %d", 100 + i);
        slow_request(mwa, "/reports/1", sql);
        slow_request(mwb, "/reports/2", sql);
    }
    slow_request(mwb, "/export", "SELECT * FROM big_export WHERE day = '2026-11-22'");
    /* wait until both writers have written their rows */
    nprof_slowlog_stats sa, sb;
    for (int i = 0; i < 1000; i++) {
        nprof_slowlog_get_stats(a, &sa);
        nprof_slowlog_get_stats(b, &sb);
        if (sa.written >= 3 && sb.written >= 4)
            break;
        sleep_ms(10);
    }
    ASSERT_EQ_U64(sa.written, 3);
    ASSERT_EQ_U64(sb.written, 4);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_mw_render_json(mwa, &out));
    size_t where;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    const char *cluster = strstr(out.data, "\"cluster\":{");
    ASSERT_TRUE(cluster != NULL);
    if (strstr(cluster, "\"error\""))
        fprintf(stderr, "%.400s\n", cluster);
    ASSERT_TRUE(strstr(cluster, "\"error\"") == NULL);
    /* six of one shape from both writers, one of the other written by b alone */
    ASSERT_TRUE(strstr(cluster, "SELECT * FROM reports WHERE account_id = ?") != NULL);
    ASSERT_TRUE(strstr(cluster, "\"count\":6") != NULL);
    ASSERT_TRUE(strstr(cluster, "big_export") != NULL);
    nprof_buf_free(&out);
    nprof_mw_destroy(mwa);
    nprof_mw_destroy(mwb);
    ASSERT_OK(nprof_slowlog_close(a, 2000));
    ASSERT_OK(nprof_slowlog_close(b, 2000));
    nprof_runtime_destroy(rt);
}

int main(void)
{
    int rc = pg_start(PROG);
    if (rc)
        return rc;
    RUN(cluster_view_shows_fingerprints_of_every_writer);
    return TEST_SUMMARY();
}
