/*
 * bench/bench_slowlog.c: what the slow-query log costs a request, and how fast its writer
 * gets rows into PostgreSQL.
 *
 * Group "enqueue" (ns per call, no database involved): nprof_slowlog_enqueue() of a typical
 * slow query without parameters, and with a parameter summary (redacted on the way in), the
 * redaction alone, against a plain memcpy of the same SQL text as the anchor.  The log's writer
 * is pointed at a server that does not exist, so it never drains the queue; the benchmark
 * empties the queue itself between timed chunks, as the writer would (through the internal
 * header), so every timed call takes the accept path, never the full-queue path.
 *
 * Group "write" (rows per second into a real PostgreSQL the benchmark starts itself, with
 * fsync and synchronous_commit on, as production servers run): a bare loop that formats rows
 * and sends them with COPY over one connection in batches of 2000 (anchor), the log's writer
 * into its UNLOGGED table and into a LOGGED table (synchronous_commit = off on its session),
 * both with their three indexes, fed as fast as its queue takes entries; and one autocommit
 * INSERT per row into a LOGGED table, as naive slow-query logs write.  Every table is
 * truncated before each run.  The server runs with fsync on, 256 MB of shared buffers, no
 * autovacuum and checkpoints far apart.  The harness's "other processes" warning counts the
 * server's own backend in this group: it is part of what is measured.
 *
 * Usage: bench_slowlog [scale]; NPROF_TEST_PG=<conninfo> uses that server instead of a new
 * one; NPROF_BENCH_ONLY=enqueue|write picks a group.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"
#include "runtime/text.h"
#include "sqlhooks/slowlog.h"
#include "pg_test.h"

#define SQL_TEXT                                                                              \
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "     \
    "WHERE o.created_at > '2024-01-01' AND c.country = 'NL' ORDER BY o.total DESC LIMIT 50"
#define PARAMS_TEXT "customer_id=4711 country=NL since=2024-01-01 page=3 email=a.b@example.com"

/* ---- enqueue ------------------------------------------------------------------------------- */

static nprof_slowlog *idle_log; /* its writer never connects */
static char sink_buf[512];

/* Empties the queue as the writer would, without writing anything. */
static void drain(nprof_slowlog *log)
{
    for (;;) {
        nprof__slot *s = nprof__slowlog_slot(log, log->dequeue_pos);
        if (atomic_load_explicit(&s->seq, memory_order_acquire) != log->dequeue_pos + 1)
            break;
        atomic_store_explicit(&s->seq, log->dequeue_pos + log->mask + 1, memory_order_release);
        log->dequeue_pos++;
    }
}

static double run_enqueue(const nprof_slowlog_entry *e, uint64_t ops)
{
    uint64_t chunk = (idle_log->mask + 1) / 2, done = 0, ns = 0;
    while (done < ops) {
        uint64_t n = ops - done < chunk ? ops - done : chunk;
        uint64_t t0 = bench_now_ns();
        for (uint64_t i = 0; i < n; i++)
            if (nprof_slowlog_enqueue(idle_log, e) != NPROF_OK)
                abort(); /* never: the queue was emptied before the chunk */
        ns += bench_now_ns() - t0;
        drain(idle_log);
        done += n;
    }
    return (double)ns / (double)ops;
}

static const nprof_slowlog_entry plain_entry = {
    .sql = SQL_TEXT, .sql_len = sizeof SQL_TEXT - 1, .duration_ms = 250.5,
    .method = "GET", .method_len = 3, .route = "/orders/{id}", .route_len = 12,
    .request_id = "4f2a9c01d3e4b5a6", .request_id_len = 16,
};

static double case_memcpy(void *ctx, uint64_t ops)
{
    (void)ctx;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        memcpy(sink_buf, SQL_TEXT, sizeof SQL_TEXT - 1);
        bench_escape(sink_buf);
    }
    return (double)(bench_now_ns() - t0) / (double)ops;
}

static double case_enqueue(void *ctx, uint64_t ops)
{
    (void)ctx;
    return run_enqueue(&plain_entry, ops);
}

static double case_enqueue_params(void *ctx, uint64_t ops)
{
    (void)ctx;
    nprof_slowlog_entry e = plain_entry;
    e.params = PARAMS_TEXT;
    e.params_len = sizeof PARAMS_TEXT - 1;
    return run_enqueue(&e, ops);
}

static double case_redact(void *ctx, uint64_t ops)
{
    nprof_redactor *r = ctx;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        size_t n;
        nprof_redactor_apply(r, PARAMS_TEXT, sizeof PARAMS_TEXT - 1, sink_buf, sizeof sink_buf, &n, NULL);
        bench_escape(sink_buf);
    }
    return (double)(bench_now_ns() - t0) / (double)ops;
}

static void group_enqueue(void)
{
    nprof_slowlog_options o;
    nprof_slowlog_options_init(&o);
    o.reconnect_min_ms = o.reconnect_max_ms = 600000; /* one failed attempt, then asleep */
    if (nprof_slowlog_open(&idle_log, "host=/nonexistent/nprof-bench port=1 dbname=x connect_timeout=1", &o)) {
        fprintf(stderr, "open: %s\n", nprof_last_error_detail());
        exit(1);
    }
    nprof_redactor *r = NULL;
    nprof_redactor_create(NULL, &r);
    bench_case cases[] = {
        {.name = "memcpy of the SQL text", .fn = case_memcpy, .ops = bench_ops(5000000)},
        {.name = "enqueue (no params)", .fn = case_enqueue, .ops = bench_ops(5000000)},
        {.name = "enqueue + redacted params", .fn = case_enqueue_params, .ops = bench_ops(2000000)},
        {.name = "redaction of the params alone", .fn = case_redact, .ctx = r, .ops = bench_ops(2000000)},
    };
    bench_group_run("enqueue on the request path (one thread)", "ns/op", "%.1f", cases, 4);
    bench_target(cases[1].value.median <= 100, "enqueue cost <= 100 ns", "median %.1f ns, jitter %.1f%%",
                 cases[1].value.median, cases[1].value.jitter);
    printf("\n");
    nprof_redactor_destroy(r);
    nprof_slowlog_close(idle_log, 0);
}

/* ---- write throughput ---------------------------------------------------------------------- */

static PGconn *admin;

static void must(PGconn *c, const char *sql)
{
    if (!pg_exec(c, sql))
        exit(1);
}

typedef struct writer_case {
    nprof_slowlog *log;
    const char *table;
} writer_case;

static double case_writer(void *ctx, uint64_t rows)
{
    writer_case *w = ctx;
    char sql[128];
    snprintf(sql, sizeof sql, "TRUNCATE %s", w->table);
    must(admin, sql);
    nprof_slowlog_stats st;
    nprof_slowlog_get_stats(w->log, &st);
    uint64_t target = st.written + rows;
    char text[sizeof SQL_TEXT + 32];
    nprof_slowlog_entry e = plain_entry;
    e.sql = text;
    e.params = PARAMS_TEXT;
    e.params_len = sizeof PARAMS_TEXT - 1;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < rows; i++) {
        e.sql_len = (size_t)snprintf(text, sizeof text, "%s OFFSET %llu", SQL_TEXT, (unsigned long long)i);
        while (nprof_slowlog_enqueue(w->log, &e) == NPROF_EFULL) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL); /* the writer is behind: let it have the core */
        }
    }
    do {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        nprof_slowlog_get_stats(w->log, &st);
    } while (st.written < target);
    return (double)rows / ((double)(bench_now_ns() - t0) / 1e9);
}

/* A bare COPY loop: rows with the writer's columns and values (the same shape, hence one
 * fingerprint and one normalized text, and the current time) formatted with snprintf and sent
 * in batches of 2000 over one connection; no escaping, normalizing or redaction. */
static double case_bare_copy(void *ctx, uint64_t rows)
{
    PGconn *c = ctx;
    must(admin, "TRUNCATE bare_copy");
    static char norm[512];
    static long long fp;
    if (!norm[0]) {
        const char *q = SQL_TEXT " OFFSET 1";
        size_t n = 0;
        uint64_t f = 0;
        nprof_sql_shape(q, strlen(q), NPROF_SQL_QMARK, norm, sizeof norm, &n, &f);
        fp = (long long)f;
    }
    nprof_buf b = NPROF_BUF_INIT;
    uint64_t t0 = bench_now_ns();
    for (uint64_t done = 0; done < rows;) {
        uint64_t n = rows - done < 2000 ? rows - done : 2000;
        b.len = 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        for (uint64_t i = 0; i < n; i++) {
            char row[1024];
            int len = snprintf(row, sizeof row,
                               "%s OFFSET %llu\t250.5\t%s\t%04d-%02d-%02d %02d:%02d:%02d.%06llu+00\t%lld\t%s\tGET\t"
                               "/orders/{id}\thost\t1\t4f2a9c01d3e4b5a6\tf\t\\N\t1\n",
                               SQL_TEXT, (unsigned long long)(done + i), PARAMS_TEXT, tm.tm_year + 1900,
                               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                               (unsigned long long)(now.tv_nsec / 1000 + i) % 1000000, fp, norm);
            if (nprof__buf_append(&b, row, (size_t)len))
                exit(1);
        }
        PGresult *r = PQexec(c, "COPY bare_copy (sql_text, duration_ms, params_summary, \"timestamp\", "
                                "fingerprint, normalized_sql, method, route, host, pid, request_id, "
                                "truncated, plan, batch_id) FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN || PQputCopyData(c, b.data, (int)b.len) != 1 ||
            PQputCopyEnd(c, NULL) != 1) {
            fprintf(stderr, "bare COPY: %s", PQerrorMessage(c));
            exit(1);
        }
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "bare COPY: %s", PQerrorMessage(c));
                exit(1);
            }
            PQclear(r);
        }
        done += n;
    }
    nprof_buf_free(&b);
    return (double)rows / ((double)(bench_now_ns() - t0) / 1e9);
}

/* One autocommit INSERT per row into a LOGGED table: each row is a transaction of its own. */
#define NAIVE_MAX_ROWS 2000u
static double case_naive_insert(void *ctx, uint64_t rows)
{
    PGconn *c = ctx;
    must(admin, "TRUNCATE naive_insert");
    rows = rows < NAIVE_MAX_ROWS ? rows : NAIVE_MAX_ROWS; /* a few thousand rows/s: keep it short */
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < rows; i++) {
        char text[sizeof SQL_TEXT + 32];
        snprintf(text, sizeof text, "%s OFFSET %llu", SQL_TEXT, (unsigned long long)i);
        const char *p[3] = {text, "250.5", PARAMS_TEXT};
        PGresult *r = PQexecParams(c, "INSERT INTO naive_insert (sql_text, duration_ms, params_summary) "
                                      "VALUES ($1, $2, $3)", 3, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "INSERT: %s", PQerrorMessage(c));
            exit(1);
        }
        PQclear(r);
    }
    return (double)rows / ((double)(bench_now_ns() - t0) / 1e9);
}

/* Median of the per-run ratios a/b of two cases measured in the same runs. */
static void print_pair_ratio(const char *what, const bench_case *a, const bench_case *b)
{
    bench_series r = {.n = a->value.n};
    for (int i = 0; i < r.n; i++)
        r.v[i] = b->value.v[i] ? a->value.v[i] / b->value.v[i] : 0;
    bench_series_finish(&r);
    printf("  %-34s %.3fx  (ratio jitter %.2f%%)\n", what, r.median, r.jitter);
}

static void group_write(void)
{
    /* Production-like durability (the throwaway cluster turns fsync off by default), and room
     * enough that no checkpoint, buffer eviction or autovacuum lands inside some runs and not
     * others: those are what made the figures jitter by 20-30 %. */
    setenv("NPROF_PG_CONF",
           "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\nshared_buffers = 256MB\n"
           "max_wal_size = 4GB\ncheckpoint_timeout = 30min\nautovacuum = off",
           1);
    int rc = pg_start("bench_slowlog");
    if (rc == PG_SKIP_EXIT) {
        printf("no PostgreSQL server installed: write group skipped\n");
        return;
    }
    if (rc || !(admin = pg_connect()))
        exit(1);
    PGresult *fs = PQexec(admin, "SELECT current_setting('fsync'), current_setting('synchronous_commit'), version()");
    printf("server: %s\n  fsync=%s synchronous_commit=%s  %.40s\n", pg_conninfo, PQgetvalue(fs, 0, 0),
           PQgetvalue(fs, 0, 1), PQgetvalue(fs, 0, 2));
    PQclear(fs);
    nprof_slowlog_options o;
    nprof_slowlog_options_init(&o);
    o.retention_s = 0;
    o.max_rows = 0;
    o.queue_slots = 8192;
    writer_case unlogged = {.table = "slow_unlogged"}, logged = {.table = "slow_logged"};
    snprintf(o.table, sizeof o.table, "%s", unlogged.table);
    if (nprof_slowlog_open(&unlogged.log, pg_conninfo, &o))
        exit(1);
    o.logged = 1;
    snprintf(o.table, sizeof o.table, "%s", logged.table);
    if (nprof_slowlog_open(&logged.log, pg_conninfo, &o))
        exit(1);
    /* Wait for both tables, then give the baselines the same shape. */
    for (int i = 0; i < 1000 && pg_scalar(admin, "SELECT count(*) FROM pg_class WHERE relname IN "
                                                 "('slow_unlogged', 'slow_logged')") != 2; i++)
        usleep(10000);
    must(admin, "CREATE UNLOGGED TABLE bare_copy (LIKE slow_unlogged INCLUDING ALL);"
                "CREATE TABLE naive_insert (LIKE slow_logged INCLUDING ALL)");
    PGconn *copy_conn = pg_connect(), *insert_conn = pg_connect();
    if (!copy_conn || !insert_conn)
        exit(1);
    printf("  persistence: slow_unlogged=%s slow_logged=%s bare_copy=%s naive_insert=%s\n\n",
           pg_scalar(admin, "SELECT (relpersistence = 'u')::int FROM pg_class WHERE relname = 'slow_unlogged'") == 1 ? "unlogged" : "LOGGED",
           pg_scalar(admin, "SELECT (relpersistence = 'u')::int FROM pg_class WHERE relname = 'slow_logged'") == 1 ? "unlogged" : "LOGGED",
           pg_scalar(admin, "SELECT (relpersistence = 'u')::int FROM pg_class WHERE relname = 'bare_copy'") == 1 ? "unlogged" : "LOGGED",
           pg_scalar(admin, "SELECT (relpersistence = 'u')::int FROM pg_class WHERE relname = 'naive_insert'") == 1 ? "unlogged" : "LOGGED");
    bench_case cases[] = {
        {.name = "bare COPY loop, unlogged", .fn = case_bare_copy, .ctx = copy_conn, .ops = bench_ops(300000)},
        {.name = "slowlog writer, UNLOGGED", .fn = case_writer, .ctx = &unlogged, .ops = bench_ops(300000)},
        {.name = "slowlog writer, LOGGED+sc=off", .fn = case_writer, .ctx = &logged, .ops = bench_ops(300000)},
        {.name = "autocommit INSERT/row, LOGGED", .fn = case_naive_insert, .ctx = insert_conn, .ops = bench_ops(NAIVE_MAX_ROWS)},
    };
    bench_group_run("rows per second into PostgreSQL (3 indexes each)", "rows/s", "%.0f", cases, 4);
    print_pair_ratio("LOGGED+sc=off / UNLOGGED writer:", &cases[2], &cases[1]);
    print_pair_ratio("UNLOGGED writer / naive INSERT:", &cases[1], &cases[3]);
    bench_target(cases[1].ratio.median >= 0.5, "writer >= 0.5x bare COPY (UNLOGGED)",
                 "%.3fx, %.0f vs %.0f rows/s", cases[1].ratio.median, cases[1].value.median,
                 cases[0].value.median);
    nprof_slowlog_close(unlogged.log, 10000);
    nprof_slowlog_close(logged.log, 10000);
    PQfinish(copy_conn);
    PQfinish(insert_conn);
    PQfinish(admin);
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_slowlog", "the slow-query log: request-path cost and writer throughput");
    if (bench_selected("enqueue"))
        group_enqueue();
    if (bench_selected("write"))
        group_write();
    return bench_finish();
}
