/*
 * sqlhooks/slowlog_writer.c: the slow-query log's writer thread, the only code that talks to
 * PostgreSQL on behalf of the request path.
 *
 * Its loop: connect (with exponential backoff while the server is down; the connection's
 * session runs with synchronous_commit = off, UTF8, and without NOTICEs on stderr), make sure the table and its indexes
 * exist, and its companion view with hex fingerprints (under an advisory transaction lock,
 * so two processes starting at once do not race on CREATE TABLE IF NOT EXISTS, which can
 * fail with a unique violation on pg_type), then
 * drain the queue: up to batch_rows entries are taken off the queue and formatted as COPY
 * text rows into one buffer, which is sent with COPY ... FROM STDIN as one transaction.
 *
 * Exactly once: a batch is kept until its COPY is known to have committed.  A COPY that
 * fails before its end was sent, or that the server rejected on a live connection, committed
 * nothing and is sent again.  Only when the connection breaks after the end of the data was
 * sent can the commit have happened unseen; every row carries its batch's id (unique to this
 * log), so after reconnecting the writer asks whether that batch is in the table before
 * sending it again.
 *
 * Off the request path it also normalizes and fingerprints the text, redacts the SQL, takes
 * EXPLAIN plans of slow SELECTs (option explain) and deletes old rows in small batches
 * (retention).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nanoprof/pq.h"
#include "nanoprof/sql.h"
#include "runtime/jsonw.h"
#include "runtime/text.h"
#include "slowlog.h"

#define EXPLAIN_CACHE 1024 /* fingerprints remembered for the explain interval */
#define BATCH_ATTEMPTS 3   /* a batch the server rejects this often (on a live connection) is
                              dropped: its data, not the connection, is at fault */
#define RETENTION_ROUNDS 20 /* DELETE batches per retention check, so draining resumes */

typedef struct writer {
    nprof_slowlog *log;
    PGconn *conn;
    nprof_buf copy;        /* COPY text of the batch in hand */
    uint32_t rows;         /* rows in it */
    uint64_t batch_id;
    uint32_t batch_seq;
    int ambiguous;         /* the last attempt may have committed unseen */
    int attempts;          /* rejections of this batch on live connections */
    uint32_t backoff_ms;
    int connected_once;
    uint64_t next_retention_ms;
    char *norm;            /* normalized text, NPROF_SQL_NORMALIZED_MAX(max_sql) bytes */
    size_t norm_cap;
    char *red;             /* redacted SQL, max_sql bytes */
    nprof_buf plan;
    nprof_buf stmt;
    struct {
        uint64_t fingerprint, at_ms;
    } explained[EXPLAIN_CACHE];
} writer;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int stopping(nprof_slowlog *log)
{
    pthread_mutex_lock(&log->mu);
    int s = log->stop;
    pthread_mutex_unlock(&log->mu);
    return s;
}

/* Sleeps `ms`, or until close wakes the writer (close broadcasts when it asks for the final
 * flush and again when time is up). */
static void nap(nprof_slowlog *log, uint32_t ms)
{
    struct timespec deadline = nprof__slowlog_deadline(ms);
    pthread_mutex_lock(&log->mu);
    if (!atomic_load(&log->aborting))
        pthread_cond_timedwait(&log->cv, &log->mu, &deadline);
    pthread_mutex_unlock(&log->mu);
}

static int queue_ready(const nprof_slowlog *log)
{
    nprof__slot *s = nprof__slowlog_slot(log, log->dequeue_pos);
    return atomic_load_explicit(&s->seq, memory_order_acquire) == log->dequeue_pos + 1;
}

PGconn *nprof__slowlog_connect(nprof_slowlog *log, uint32_t timeout_ms, char *err, size_t err_len)
{
    /* The caller's conninfo comes last and is expanded, so its settings win over ours.  TCP
     * keepalives let a writer on a dead network path notice it in seconds, not hours (they
     * are ignored on Unix sockets). */
    const char *const keys[] = {"application_name", "connect_timeout", "keepalives",
                                "keepalives_idle", "keepalives_interval", "keepalives_count",
                                "dbname", NULL};
    const char *const values[] = {"nanoprof-slowlog", "10", "1", "10", "5", "3", log->conninfo, NULL};
    PGconn *c = PQconnectStartParams(keys, values, 1);
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    uint64_t deadline = mono_ms() + timeout_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (atomic_load(&log->aborting) || mono_ms() >= deadline) {
            snprintf(err, err_len, "connection attempt timed out or cancelled");
            PQfinish(c);
            return NULL;
        }
        struct pollfd p = {.fd = PQsocket(c), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        if (p.fd < 0)
            break;
        int n = poll(&p, 1, 100); /* short slices: an abort is noticed quickly */
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            st = PQconnectPoll(c);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, err_len, "%s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_encoding = 'UTF8'; SET synchronous_commit = off;"
                             " SET client_min_messages = warning");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        snprintf(err, err_len, "session settings: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs `sql` (one or more statements without parameters); 0 or the error recorded. */
static int exec(writer *w, const char *sql)
{
    PGresult *r = PQexec(w->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    nprof__slowlog_set_error(w->log, "%s", PQerrorMessage(w->conn));
    return -1;
}

/*
 * The table's companion view <table>_hex (the name cut like the index names): every column,
 * with fingerprint as the 16 hex digits that the profile's JSON, the headers, the dashboard
 * and nanoprof-sql print, so that a fingerprint seen anywhere can be looked up as it is.
 * Made in the table's transaction, under its advisory lock (two sessions replacing one view
 * at once collide on pg_type like CREATE TABLE), but behind a savepoint: a view that cannot
 * be made (a role without the right, an older view whose columns differ, a reader holding it
 * past lock_timeout) is reported as the last error and never keeps rows from being written.
 */
static int ensure_view(writer *w)
{
    nprof_slowlog *log = w->log;
    const char *t = log->qtable;
    /* qtable is "name" or "schema"."name": the view goes into the table's schema */
    const char *dot = strstr(t, "\".\"");
    int schema_len = dot ? (int)(dot - t) + 2 : 0;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SAVEPOINT nprof_view;"
             "SET LOCAL lock_timeout = '2s';"
             "CREATE OR REPLACE VIEW %.*s\"%s_hex\" AS SELECT id, sql_text, duration_ms,"
             " params_summary, \"timestamp\","
             " " NPROF__SLOWLOG_FP_HEX("fingerprint") " AS fingerprint, normalized_sql, method, route, host, pid, request_id, truncated, plan, batch_id,"
             " callsite" /* last: CREATE OR REPLACE VIEW may add columns only at the end */
             " FROM %s",
             schema_len, t, log->index_prefix, t);
    if (exec(w, sql) == 0)
        return 0;
    exec(w, "ROLLBACK TO SAVEPOINT nprof_view");
    return -1;
}

/*
 * Makes the table, its indexes and its view if missing, and adds the columns that later
 * versions brought (callsite) to a table an earlier version made, all under the advisory lock
 * that serializes the processes sharing the table.  The ADD COLUMN runs only when the column
 * is missing: even with IF NOT EXISTS it would take the table's ACCESS EXCLUSIVE lock, waiting
 * for (and then blocking) every other writer and reader each time a writer connects.  Returns
 * 0 when the table is there, 1 when it is there but its view could not be made, -1 otherwise.
 */
static int ensure_table(writer *w)
{
    nprof_slowlog *log = w->log;
    const char *t = log->qtable, *p = log->index_prefix;
    char sql[3072];
    /* hashtext() of the table's name: processes creating the same table take the same lock. */
    snprintf(sql, sizeof sql,
             "BEGIN;"
             "SELECT pg_advisory_xact_lock(1852862566, hashtext('%s'));"
             "CREATE %sTABLE IF NOT EXISTS %s ("
             " id bigserial PRIMARY KEY,"
             " sql_text text NOT NULL,"
             " duration_ms double precision NOT NULL,"
             " params_summary text,"
             " \"timestamp\" timestamptz NOT NULL DEFAULT now(),"
             " fingerprint bigint,"
             " normalized_sql text,"
             " method text, route text, host text, pid integer, request_id text,"
             " truncated boolean NOT NULL DEFAULT false,"
             " plan text,"
             " batch_id bigint,"
             " callsite text);"
             "DO $nprof$ BEGIN"
             " IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '%s'::regclass"
             " AND attname = 'callsite' AND NOT attisdropped) THEN"
             " ALTER TABLE %s ADD COLUMN IF NOT EXISTS callsite text;"
             " END IF; END $nprof$;"
             "CREATE INDEX IF NOT EXISTS \"%s_timestamp_idx\" ON %s (\"timestamp\" DESC);"
             "CREATE INDEX IF NOT EXISTS \"%s_duration_idx\" ON %s (duration_ms DESC);"
             "CREATE INDEX IF NOT EXISTS \"%s_fingerprint_idx\" ON %s (fingerprint, \"timestamp\" DESC)",
             t, log->opts.logged ? "" : "UNLOGGED ", t, t, t, p, t, p, t, p, t);
    if (exec(w, sql) == 0) {
        int view = ensure_view(w);
        if (exec(w, "COMMIT") == 0)
            return view ? 1 : 0;
    }
    exec(w, "ROLLBACK");
    return -1;
}

static void disconnect(writer *w)
{
    if (!w->conn)
        return;
    pthread_mutex_lock(&w->log->mu);
    PQfreeCancel(w->log->cancel);
    w->log->cancel = NULL;
    pthread_mutex_unlock(&w->log->mu);
    PQfinish(w->conn);
    w->conn = NULL;
    atomic_store(&w->log->connected, 0);
    nprof__slowlog_set_ready(w->log, 0);
}

static int connect_writer(writer *w)
{
    char err[512];
    w->conn = nprof__slowlog_connect(w->log, 10000, err, sizeof err);
    if (!w->conn) {
        nprof__slowlog_set_error(w->log, "connect: %s", err);
        return -1;
    }
    pthread_mutex_lock(&w->log->mu);
    w->log->cancel = PQgetCancel(w->conn);
    pthread_mutex_unlock(&w->log->mu);
    int table = ensure_table(w);
    if (table < 0) {
        disconnect(w);
        return -1;
    }
    if (w->connected_once)
        atomic_fetch_add(&w->log->reconnects, 1);
    w->connected_once = 1;
    atomic_store(&w->log->connected, 1);
    /* Without its view the log writes rows all the same, but is not what
     * nprof_slowlog_wait_ready() promises: that waits on (and reports) the view's error. */
    nprof__slowlog_set_ready(w->log, table == 0);
    w->backoff_ms = w->log->opts.reconnect_min_ms;
    return 0;
}

/* A COPY text field: backslash, tab, newline and carriage return escaped; NUL bytes (and, in
 * the runtime's escaping, invalid UTF-8) become U+FFFD, which the server (UTF8) would
 * otherwise refuse, failing the whole batch.  Other control characters are data in COPY's
 * text format. */
static const nprof__escapes copy_escapes = {
    .widest = 3,
    .ascii = {[0] = {"\xEF\xBF\xBD", 3}, ['\\'] = {"\\\\", 2}, ['\t'] = {"\\t", 2},
              ['\n'] = {"\\n", 2}, ['\r'] = {"\\r", 2}},
};

static void copy_field(nprof__tw *t, const char *s, size_t len)
{
    nprof__tw_escaped(t, s, len, &copy_escapes, 0);
}

/* A field that may be NULL (\N in COPY's text format). */
static void copy_opt(nprof__tw *t, int present, const char *s, size_t len)
{
    if (present)
        copy_field(t, s, len);
    else
        nprof__tw_raw(t, "\\N", 2);
}

/* Whether this entry gets a plan now: a slow SELECT whose shape was not explained within the
 * interval, with its whole raw text, no NUL byte and no $n parameter (EXPLAIN of a text with
 * parameters fails without their types). */
static int want_plan(writer *w, const nprof__slot *s, uint64_t fp, const char *norm, size_t norm_len)
{
    nprof_slowlog *log = w->log;
    if (!log->opts.explain || log->normalized_only || (s->flags & NPROF__SLOT_SQL_CUT))
        return 0;
    if (norm_len < 7 || memcmp(norm, "SELECT ", 7) != 0 || memchr(s->text, 0, s->sql_len))
        return 0;
    for (size_t i = 0; i + 1 < s->sql_len; i++)
        if (s->text[i] == '$' && s->text[i + 1] >= '0' && s->text[i + 1] <= '9')
            return 0;
    uint64_t now = mono_ms();
    size_t k = (size_t)(fp % EXPLAIN_CACHE);
    if (w->explained[k].fingerprint == fp && now - w->explained[k].at_ms < log->opts.explain_interval_ms)
        return 0;
    w->explained[k].fingerprint = fp;
    w->explained[k].at_ms = now;
    return 1;
}

/* EXPLAIN (FORMAT JSON), never ANALYZE, in a read-only transaction with a short
 * statement_timeout.  Sent with PQexecParams: the extended protocol takes exactly one
 * statement, so a query text with a second statement in it fails instead of running it.
 * Returns 1 with the plan in w->plan, else 0. */
static int take_plan(writer *w, const nprof__slot *s)
{
    char set[96];
    snprintf(set, sizeof set, "BEGIN READ ONLY; SET LOCAL statement_timeout = %u",
             w->log->opts.explain_timeout_ms);
    PGresult *r = PQexec(w->conn, set);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return 0;
    w->stmt.len = 0;
    if (nprof__buf_append_cstr(&w->stmt, "EXPLAIN (FORMAT JSON) ") ||
        nprof__buf_append(&w->stmt, s->text, s->sql_len)) {
        PQclear(PQexec(w->conn, "ROLLBACK"));
        return 0;
    }
    r = PQexecParams(w->conn, w->stmt.data, 0, NULL, NULL, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1;
    w->plan.len = 0;
    if (ok)
        ok = nprof__buf_append(&w->plan, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0)) == 0;
    PQclear(r);
    PQclear(PQexec(w->conn, "ROLLBACK"));
    return ok;
}

/* Redacts the plan in w->plan (its filters show the query's literals), into w->stmt and back.
 * The output may grow (a marker can be longer than what it hides): the buffer grows until
 * nothing is cut, so the JSON stays whole.  1 on success. */
static int redact_plan(writer *w)
{
    nprof_slowlog *log = w->log;
    if (!log->redactor)
        return 1;
    for (size_t cap = 2 * w->plan.len + 256;; cap *= 4) {
        w->stmt.len = 0;
        if (nprof__buf_reserve(&w->stmt, cap))
            return 0;
        size_t n = 0;
        int cut = 0;
        int r = nprof_redactor_apply(log->redactor, w->plan.data, w->plan.len, w->stmt.data, cap, &n, &cut);
        if (!cut) {
            if (r > 0)
                nprof__counter_add(&log->redactions, (uint64_t)r);
            w->plan.len = 0;
            return nprof__buf_append(&w->plan, w->stmt.data, n) == 0;
        }
    }
}

/*
 * The columns of a row, in the order each row gives them: the one list from which both the
 * COPY statement's column list (copy_begin) and each row's fields (put_field, whose switch
 * names every column, so that -Wswitch catches one left out) are made.
 */
#define COPY_COLUMNS(X)                                                                           \
    X(SQL_TEXT, "sql_text") X(DURATION_MS, "duration_ms") X(PARAMS_SUMMARY, "params_summary")    \
    X(TIMESTAMP, "\"timestamp\"") X(FINGERPRINT, "fingerprint")                                   \
    X(NORMALIZED_SQL, "normalized_sql") X(METHOD, "method") X(ROUTE, "route") X(HOST, "host")    \
    X(PID, "pid") X(REQUEST_ID, "request_id") X(TRUNCATED, "truncated") X(PLAN, "plan")          \
    X(BATCH_ID, "batch_id") X(CALLSITE, "callsite")

typedef enum copy_column {
#define AS_ENUM(id, name) COL_##id,
    COPY_COLUMNS(AS_ENUM)
#undef AS_ENUM
    COL_COUNT
} copy_column;

static const char *const COPY_COLUMN_NAME[COL_COUNT] = {
#define AS_NAME(id, name) [COL_##id] = name,
    COPY_COLUMNS(AS_NAME)
#undef AS_NAME
};

/* What one slot's row holds beyond the slot itself, worked out before it is written. */
typedef struct row {
    const nprof__slot *s;
    const char *text; /* sql_text: raw, redacted or normalized */
    size_t text_len, norm_len;
    uint64_t fp;
    int truncated, have_plan;
} row;

static void put_field(writer *w, const row *r, copy_column c, nprof__tw *t)
{
    nprof_slowlog *log = w->log;
    const nprof__slot *s = r->s;
    switch (c) {
    case COL_SQL_TEXT:
        copy_field(t, r->text, r->text_len);
        break;
    case COL_DURATION_MS: {
        double d = s->duration_ms;
        if (isnan(d))
            nprof__tw_cstr(t, "NaN");
        else if (isinf(d))
            nprof__tw_cstr(t, d < 0 ? "-Infinity" : "Infinity");
        else
            nprof__tw_printf(t, "%.17g", d); /* enough digits to give the same double back */
        break;
    }
    case COL_PARAMS_SUMMARY:
        copy_opt(t, s->flags & NPROF__SLOT_HAS_PARAMS, s->text + log->max_sql, s->params_len);
        break;
    case COL_TIMESTAMP: {
        time_t secs = (time_t)(s->timestamp_us / 1000000u);
        struct tm tm;
        gmtime_r(&secs, &tm);
        nprof__tw_printf(t, "%04d-%02d-%02d %02d:%02d:%02d.%06u+00", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (unsigned)(s->timestamp_us % 1000000u));
        break;
    }
    case COL_FINGERPRINT:
        nprof__tw_i64(t, (int64_t)r->fp); /* bigint: the same 64 bits, signed */
        break;
    case COL_NORMALIZED_SQL:
        copy_field(t, w->norm, r->norm_len);
        break;
    case COL_METHOD:
        copy_opt(t, s->flags & NPROF__SLOT_HAS_METHOD, s->method, s->method_len);
        break;
    case COL_ROUTE:
        copy_opt(t, s->flags & NPROF__SLOT_HAS_ROUTE, s->route, s->route_len);
        break;
    case COL_HOST:
        copy_field(t, log->host, strlen(log->host));
        break;
    case COL_PID:
        nprof__tw_i64(t, log->pid);
        break;
    case COL_REQUEST_ID:
        copy_opt(t, s->flags & NPROF__SLOT_HAS_REQUEST_ID, s->request_id, s->request_id_len);
        break;
    case COL_TRUNCATED:
        nprof__tw_raw(t, r->truncated ? "t" : "f", 1);
        break;
    case COL_PLAN:
        copy_opt(t, r->have_plan, w->plan.data, w->plan.len);
        break;
    case COL_BATCH_ID:
        nprof__tw_i64(t, (int64_t)w->batch_id);
        break;
    case COL_CALLSITE:
        copy_opt(t, s->flags & NPROF__SLOT_HAS_CALLSITE, s->callsite, s->callsite_len);
        break;
    case COL_COUNT:
        break;
    }
}

/* Appends one slot as a COPY row to the batch; on failure the batch is as it was. */
static int format_row(writer *w, const nprof__slot *s)
{
    nprof_slowlog *log = w->log;
    row r = {.s = s, .text = s->text, .text_len = s->sql_len};
    if (nprof_sql_shape(s->text, s->sql_len, NPROF_SQL_QMARK, w->norm, w->norm_cap, &r.norm_len,
                        &r.fp) != NPROF_OK)
        r.norm_len = 0;
    if (s->fingerprint)
        r.fp = s->fingerprint; /* the caller's, of the whole query even when the text was cut */
    r.truncated = (s->flags & NPROF__SLOT_TRUNCATED) != 0;
    r.have_plan = want_plan(w, s, r.fp, w->norm, r.norm_len) && take_plan(w, s) && redact_plan(w);
    if (r.have_plan)
        atomic_fetch_add(&log->plans, 1);
    if (log->normalized_only) {
        r.text = w->norm;
        r.text_len = r.norm_len;
    } else if (log->redactor) {
        int cut = 0;
        int n = nprof_redactor_apply(log->redactor, s->text, s->sql_len, w->red, log->max_sql, &r.text_len, &cut);
        if (n > 0)
            nprof__counter_add(&log->redactions, (uint64_t)n);
        r.truncated |= cut;
        r.text = w->red;
    }
    nprof__tw t;
    nprof__tw_init(&t, &w->copy);
    for (int c = 0; c < COL_COUNT; c++) {
        if (c)
            nprof__tw_raw(&t, "\t", 1);
        put_field(w, &r, (copy_column)c, &t);
    }
    nprof__tw_raw(&t, "\n", 1);
    return nprof__tw_finish(&t);
}

#define STREAM_CHUNK (64 * 1024) /* bytes of COPY data handed to libpq at a time */

/* Takes up to batch_rows entries off the queue into a new batch.  With `stream` (a COPY is in
 * progress), every STREAM_CHUNK bytes are sent as soon as they are formatted, so the server
 * inserts the first rows while the writer formats the next.  Returns 0 when sending failed
 * (the rows taken stay in the batch, to be sent again), else 1. */
static int fill_batch(writer *w, int stream)
{
    nprof_slowlog *log = w->log;
    w->copy.len = 0;
    w->batch_id = (log->writer_token << 32) | ++w->batch_seq;
    w->ambiguous = 0;
    w->attempts = 0;
    size_t sent = 0;
    while (w->rows < log->opts.batch_rows && queue_ready(log)) {
        nprof__slot *s = nprof__slowlog_slot(log, log->dequeue_pos);
        if (format_row(w, s) == NPROF_OK)
            w->rows++;
        /* else out of memory: this entry is lost (counted as unwritten) */
        atomic_store_explicit(&s->seq, log->dequeue_pos + log->mask + 1, memory_order_release);
        log->dequeue_pos++;
        atomic_fetch_add(&log->consumed, 1);
        if (stream && w->copy.len - sent >= STREAM_CHUNK) {
            if (PQputCopyData(w->conn, w->copy.data + sent, (int)(w->copy.len - sent)) != 1)
                return 0;
            sent = w->copy.len;
        }
    }
    if (stream && w->copy.len > sent)
        return PQputCopyData(w->conn, w->copy.data + sent, (int)(w->copy.len - sent)) == 1;
    return 1;
}

/* Whether rows of the batch in hand are already in the table (after an unseen commit).
 * 1 yes, 0 no, -1 could not tell. */
static int batch_arrived(writer *w)
{
    char sql[256], id[24];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE batch_id = $1 LIMIT 1", w->log->qtable);
    snprintf(id, sizeof id, "%" PRId64, (int64_t)w->batch_id);
    const char *params[1] = {id};
    PGresult *r = PQexecParams(w->conn, sql, 1, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
    PQclear(r);
    return rc;
}

static void batch_done(writer *w)
{
    atomic_fetch_add(&w->log->written, w->rows);
    atomic_fetch_add(&w->log->batches, 1);
    w->rows = 0;
    w->copy.len = 0;
}

/* Starts a COPY into the table; 1 when the server is ready for the data. */
static int copy_begin(writer *w)
{
    char sql[512];
    int n = snprintf(sql, sizeof sql, "COPY %s (", w->log->qtable);
    for (int c = 0; c < COL_COUNT; c++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "%s%s", c ? ", " : "", COPY_COLUMN_NAME[c]);
    snprintf(sql + n, sizeof sql - (size_t)n, ") FROM STDIN");
    PGresult *r = PQexec(w->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    if (!ok)
        nprof__slowlog_set_error(w->log, "COPY: %s", PQerrorMessage(w->conn));
    return ok;
}

/* Ends the COPY of the batch in hand, whose data was all sent when `ok`.  0: committed;
 * -1: connection lost (batch kept); -2: rejected by the server on a live connection (batch
 * kept, or dropped after BATCH_ATTEMPTS). */
static int copy_end(writer *w, int ok)
{
    nprof_slowlog *log = w->log;
    int end_sent = 0;
    if (ok)
        end_sent = ok = PQputCopyEnd(w->conn, NULL) == 1;
    else if (PQstatus(w->conn) == CONNECTION_OK)
        PQputCopyEnd(w->conn, "nanoprof: sending failed");
    int committed = 0;
    PGresult *r;
    while ((r = PQgetResult(w->conn)) != NULL) {
        if (PQresultStatus(r) == PGRES_COMMAND_OK && end_sent)
            committed = 1;
        else if (PQresultStatus(r) == PGRES_COPY_IN)
            PQputCopyEnd(w->conn, "nanoprof: unexpected state");
        PQclear(r);
        if (PQstatus(w->conn) == CONNECTION_BAD)
            break;
    }
    if (committed) {
        batch_done(w);
        return 0;
    }
    nprof__slowlog_set_error(log, "COPY: %s", PQerrorMessage(w->conn));
    atomic_fetch_add(&log->batch_retries, 1);
    if (PQstatus(w->conn) == CONNECTION_BAD) {
        w->ambiguous = end_sent; /* the commit may have happened before the connection broke */
        return -1;
    }
    if (++w->attempts >= BATCH_ATTEMPTS) {
        w->rows = 0; /* the data is refused: give the batch up (counted as unwritten) */
        w->copy.len = 0;
    } else {
        ensure_table(w); /* the usual cause: the table was dropped under us */
    }
    return -2;
}

/* Sends the batch in hand (again), in one COPY; results as copy_end(). */
static int send_batch(writer *w)
{
    if (w->ambiguous) {
        int arrived = batch_arrived(w);
        if (arrived < 0)
            return PQstatus(w->conn) == CONNECTION_BAD ? -1 : -2;
        w->ambiguous = 0;
        if (arrived) {
            batch_done(w);
            return 0;
        }
    }
    int ok = copy_begin(w) && PQputCopyData(w->conn, w->copy.data, (int)w->copy.len) == 1;
    return copy_end(w, ok);
}

/* A new batch: formatted and sent at once (streamed) when no plans are wanted, else formatted
 * first (EXPLAIN needs the connection) and then sent.  Results as copy_end(); 1 when the queue
 * was empty. */
static int new_batch(writer *w)
{
    if (!queue_ready(w->log))
        return 1;
    if (w->log->opts.explain) {
        fill_batch(w, 0);
        return w->rows ? send_batch(w) : 1;
    }
    if (!copy_begin(w)) {
        if (PQstatus(w->conn) == CONNECTION_BAD)
            return -1;
        ensure_table(w); /* the usual cause: the table was dropped under us */
        return -2;
    }
    int ok = fill_batch(w, 1);
    return copy_end(w, ok);
}

/* Runs the DELETE `sql` ($1 = `arg`, $2 = the batch size) until it deletes less than a
 * batch, at most RETENTION_ROUNDS times, counting what it deleted. */
static void delete_rounds(writer *w, const char *sql, const char *arg, uint32_t batch)
{
    char b[16];
    snprintf(b, sizeof b, "%u", batch);
    const char *params[2] = {arg, b};
    for (int i = 0; i < RETENTION_ROUNDS; i++) {
        PGresult *r = PQexecParams(w->conn, sql, 2, NULL, params, NULL, NULL, 0);
        long long n = -1;
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            n = atoll(PQcmdTuples(r));
        else
            nprof__slowlog_set_error(w->log, "retention: %s", PQerrorMessage(w->conn));
        PQclear(r);
        if (n > 0)
            atomic_fetch_add(&w->log->deleted, (uint64_t)n);
        if (n < (long long)batch)
            break;
    }
}

/* Deletes rows past the retention age, then past max_rows, in batches of retention_batch. */
static void retention(writer *w)
{
    nprof_slowlog *log = w->log;
    uint64_t now = mono_ms();
    if (now < w->next_retention_ms || (!log->opts.retention_s && !log->opts.max_rows))
        return;
    w->next_retention_ms = now + log->opts.retention_interval_ms;
    uint32_t batch = log->opts.retention_batch ? log->opts.retention_batch : 1000;
    char sql[512], a[24];
    if (log->opts.retention_s) {
        snprintf(a, sizeof a, "%u", log->opts.retention_s);
        snprintf(sql, sizeof sql,
                 "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE \"timestamp\" < "
                 "now() - $1::bigint * interval '1 second' LIMIT $2::int)",
                 log->qtable, log->qtable);
        delete_rounds(w, sql, a, batch);
    }
    if (log->opts.max_rows) {
        snprintf(a, sizeof a, "%" PRIu64, log->opts.max_rows - 1);
        snprintf(sql, sizeof sql, "SELECT id FROM %s ORDER BY id DESC OFFSET $1::bigint LIMIT 1",
                 log->qtable);
        const char *p1[1] = {a};
        PGresult *r = PQexecParams(w->conn, sql, 1, NULL, p1, NULL, NULL, 0);
        char cutoff[24] = "";
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            snprintf(cutoff, sizeof cutoff, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (cutoff[0]) {
            /* The cutoff row is the max_rows-th newest; everything older goes. */
            snprintf(sql, sizeof sql,
                     "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE id < $1::bigint "
                     "ORDER BY id LIMIT $2::int)",
                     log->qtable, log->qtable);
            delete_rounds(w, sql, cutoff, batch);
        }
    }
}

static void backoff(writer *w)
{
    nprof_slowlog *log = w->log;
    /* Jitter of up to a quarter, so many app processes do not reconnect in step. */
    uint32_t ms = w->backoff_ms + (uint32_t)(mono_ms() % (w->backoff_ms / 4 + 1));
    nap(log, ms);
    w->backoff_ms = w->backoff_ms * 2 > log->opts.reconnect_max_ms ? log->opts.reconnect_max_ms
                                                                   : w->backoff_ms * 2;
}

void *nprof__slowlog_writer(void *arg)
{
    nprof_slowlog *log = arg;
    /* The libpq layer (and its LD_PRELOAD shim) must not record the writer's own queries:
     * a slow COPY would be logged as a slow query, and so on. */
    nprof_pq_exclude_thread(1);
    writer *w = calloc(1, sizeof *w);
    if (w) {
        w->log = log;
        w->backoff_ms = log->opts.reconnect_min_ms;
        w->norm_cap = NPROF_SQL_NORMALIZED_MAX(log->max_sql);
        w->norm = malloc(w->norm_cap);
        w->red = malloc(log->max_sql);
    }
    if (!w || !w->norm || !w->red) {
        nprof__slowlog_set_error(log, "writer: out of memory");
    } else {
        for (;;) {
            if (atomic_load(&log->aborting))
                break;
            int stop = stopping(log);
            if (!w->conn) {
                if (stop && w->rows == 0 && !queue_ready(log))
                    break;
                if (connect_writer(w) != 0) {
                    backoff(w);
                    continue;
                }
            }
            /* A batch that failed is sent again as it was, never grown: rows added after an
             * unseen commit would be dropped with it. */
            {
                int rc = w->rows ? send_batch(w) : new_batch(w);
                if (rc == -1) {
                    disconnect(w);
                    backoff(w);
                    continue;
                }
                if (rc == -2) {
                    nap(log, w->backoff_ms);
                    continue;
                }
            }
            if (!stop)
                retention(w);
            if (PQstatus(w->conn) == CONNECTION_BAD) {
                disconnect(w);
                continue;
            }
            if (!queue_ready(log)) {
                if (stop)
                    break;
                nap(log, log->opts.flush_interval_ms);
            }
        }
    }
    if (w) {
        disconnect(w);
        nprof_buf_free(&w->copy);
        nprof_buf_free(&w->plan);
        nprof_buf_free(&w->stmt);
        free(w->norm);
        free(w->red);
        free(w);
    }
    pthread_mutex_lock(&log->mu);
    log->done = 1;
    log->ready = 0;
    pthread_cond_broadcast(&log->cv);
    pthread_cond_broadcast(&log->ready_cv);
    pthread_mutex_unlock(&log->mu);
    return NULL;
}
