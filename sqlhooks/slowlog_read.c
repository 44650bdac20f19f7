/*
 * sqlhooks/slowlog_read.c: the slow-query log's read side, for dashboards: the most recent
 * rows, the slowest rows and a per-fingerprint aggregate, read from the table (so across every
 * process that writes into it) and rendered as JSON through the runtime's writer (jsonw.h),
 * valid whatever bytes the table holds.
 *
 * The reads use a second connection, opened on first use and kept, shared by the callers
 * under a mutex; the writer's connection is never touched here, so a slow dashboard query
 * never holds up the writer.
 */
#include <stdio.h>
#include <string.h>

#include "nanoprof/pq.h"
#include "runtime/jsonw.h"
#include "runtime/text.h"
#include "slowlog.h"

/* Type OIDs whose text is already a JSON number or boolean (pg_type.h). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

/* Writes `r` as a JSON array of objects keyed by column name. */
static void result_json(const PGresult *r, nprof__jw *j)
{
    int rows = PQntuples(r), cols = PQnfields(r);
    nprof__jw_arr(j);
    for (int i = 0; i < rows; i++) {
        nprof__jw_obj(j);
        for (int c = 0; c < cols; c++) {
            nprof__jw_key(j, PQfname(r, c));
            const char *v = PQgetvalue(r, i, c);
            size_t len = (size_t)PQgetlength(r, i, c);
            Oid t = PQftype(r, c);
            if (PQgetisnull(r, i, c))
                nprof__jw_null(j);
            else if (t == OID_BOOL)
                nprof__jw_bool(j, v[0] == 't');
            else if ((t == OID_INT8 || t == OID_INT2 || t == OID_INT4 || t == OID_FLOAT4 ||
                      t == OID_FLOAT8 || t == OID_NUMERIC) &&
                     len && strspn(v, "0123456789+-.eE") == len)
                nprof__jw_raw(j, v, len);
            else /* text, and NaN or Infinity, which JSON has no number for */
                nprof__jw_str(j, v, len);
        }
        nprof__jw_obj_end(j);
    }
    nprof__jw_arr_end(j);
}

/* Runs `sql` with its text parameters on the read connection and appends the rows as JSON. */
static int read_json(nprof_slowlog *log, const char *sql, const char *const *params, int nparams,
                     nprof_buf *out)
{
    if (!log || !out)
        return NPROF_EINVAL;
    int was_excluded = nprof_pq_exclude_thread(1); /* not the host's queries: not recorded */
    pthread_mutex_lock(&log->read_mu);
    if (log->read_conn && PQstatus(log->read_conn) != CONNECTION_OK) {
        PQfinish(log->read_conn);
        log->read_conn = NULL;
    }
    char err[512];
    if (!log->read_conn)
        log->read_conn = nprof__slowlog_connect(log, 5000, err, sizeof err);
    if (!log->read_conn) {
        pthread_mutex_unlock(&log->read_mu);
        nprof_pq_exclude_thread(was_excluded);
        return nprof__fail(NPROF_EIO, "slowlog read: %s", err);
    }
    PGresult *r = PQexecParams(log->read_conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int rc;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = nprof__fail(NPROF_EIO, "slowlog read: %s", PQerrorMessage(log->read_conn));
    } else {
        nprof__jw j;
        nprof__jw_init(&j, out);
        result_json(r, &j);
        rc = nprof__jw_finish(&j);
    }
    PQclear(r);
    pthread_mutex_unlock(&log->read_mu);
    nprof_pq_exclude_thread(was_excluded);
    return rc;
}

/* read_json() with $1 = n and $2 = since_s. */
static int read_json_n_since(nprof_slowlog *log, const char *sql, uint32_t n, uint32_t since_s,
                             nprof_buf *out)
{
    char a[16], b[16];
    snprintf(a, sizeof a, "%u", n);
    snprintf(b, sizeof b, "%u", since_s);
    const char *params[2] = {a, b};
    return read_json(log, sql, params, 2, out);
}

/* The columns of a row object (see nanoprof/slowlog.h). */
#define ROW_COLUMNS                                                                              \
    "id, to_char(\"timestamp\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS "   \
    "\"timestamp\", duration_ms, sql_text, normalized_sql, params_summary, "                     \
    NPROF__SLOWLOG_FP_HEX("fingerprint") " AS fingerprint, method, route, request_id, host, "    \
    "pid, truncated, plan, callsite"

int nprof_slowlog_read_recent(nprof_slowlog *log, uint32_t n, nprof_buf *out)
{
    if (!log)
        return NPROF_EINVAL;
    char sql[768], a[16];
    snprintf(sql, sizeof sql, "SELECT " ROW_COLUMNS " FROM %s ORDER BY \"timestamp\" DESC LIMIT $1::int",
             log->qtable);
    snprintf(a, sizeof a, "%u", n);
    const char *params[1] = {a};
    return read_json(log, sql, params, 1, out);
}

int nprof_slowlog_read_slowest(nprof_slowlog *log, uint32_t n, uint32_t since_s, nprof_buf *out)
{
    if (!log)
        return NPROF_EINVAL;
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT " ROW_COLUMNS " FROM %s WHERE $2::bigint = 0 OR \"timestamp\" > now() - "
             "$2::bigint * interval '1 second' ORDER BY duration_ms DESC LIMIT $1::int",
             log->qtable);
    return read_json_n_since(log, sql, n, since_s, out);
}

int nprof_slowlog_read_by_fingerprint(nprof_slowlog *log, uint32_t n, uint32_t since_s, nprof_buf *out)
{
    if (!log)
        return NPROF_EINVAL;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " NPROF__SLOWLOG_FP_HEX("fingerprint") " AS fingerprint,"
             " (array_agg(normalized_sql ORDER BY \"timestamp\" DESC))[1] AS normalized_sql,"
             " count(*) AS count, sum(duration_ms) AS total_ms, avg(duration_ms) AS mean_ms,"
             " percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms,"
             " max(duration_ms) AS max_ms,"
             " to_char(max(\"timestamp\") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS last_seen,"
             /* Which processes saw the shape: the point of a view over every process. */
             " count(DISTINCT (host, pid)) AS processes, count(DISTINCT host) AS hosts"
             " FROM %s WHERE $2::bigint = 0 OR \"timestamp\" > now() - $2::bigint * interval '1 second'"
             " GROUP BY fingerprint ORDER BY total_ms DESC LIMIT $1::int",
             log->qtable);
    return read_json_n_since(log, sql, n, since_s, out);
}
