/*
 * tests/test_slowlog.c: the slow-query log against a real PostgreSQL that the test starts
 * itself (tests/pg_cluster.sh; exit 77, skipped, where no server is installed).
 *
 *   - 8 threads x 10,000 entries arrive exactly once and byte-exact: quotes, backslashes,
 *     tabs, newlines, CR, "\." lines, multibyte UTF-8; invalid UTF-8 and NUL bytes become
 *     U+FFFD instead of failing the batch;
 *   - the server is stopped mid-stream and started again: the producer never blocks (its
 *     thread makes no voluntary context switch while enqueuing; every call's latency is
 *     printed), the writer reconnects, every accepted entry arrives, and the drop counter
 *     equals the calls that were refused;
 *   - nothing is asserted about how soon the writer acts: tests wait for what they need (rows
 *     written, an error seen) until it happens, with a hang guard of minutes;
 *   - two processes create the table at the same moment;
 *   - malicious SQL text is stored as data; secrets never reach the table; normalized-only
 *     mode; EXPLAIN plans; retention; the read calls; enqueueing a finished profile; closing
 *     while the database is unreachable.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"
#include "pg_test.h"

static PGconn *db;

static nprof_slowlog_options options(const char *table)
{
    nprof_slowlog_options o;
    nprof_slowlog_options_init(&o);
    snprintf(o.table, sizeof o.table, "%s", table);
    o.flush_interval_ms = 5;
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    return o;
}

static long long count_rows(const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return pg_scalar(db, sql);
}

static nprof_slowlog_entry entry(const char *sql, double ms)
{
    return (nprof_slowlog_entry){.sql = sql, .sql_len = strlen(sql), .duration_ms = ms};
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * Waiting for the writer: a condition on the log's stats, polled every 10 ms.  Each wait ends
 * as soon as its condition holds; the limit is a hang guard only, far beyond what a loaded
 * machine or a sanitizer needs, so that no test depends on how soon the writer got a core.
 */
#define WAIT_LIMIT_NS 120000000000ull

typedef int (*stats_cond)(const nprof_slowlog_stats *st, const void *arg);

/* The log's stats once cond(stats, arg) holds, or at the hang guard. */
static nprof_slowlog_stats wait_for(nprof_slowlog *log, stats_cond cond, const void *arg)
{
    nprof_slowlog_stats st;
    uint64_t t0 = test_monotonic_ns();
    while (nprof_slowlog_get_stats(log, &st) == NPROF_OK && !cond(&st, arg) &&
           test_monotonic_ns() - t0 < WAIT_LIMIT_NS)
        sleep_ms(10);
    return st;
}

struct progress {
    uint64_t written, deleted;
    int or_error;
};

static int progressed(const nprof_slowlog_stats *st, const void *arg)
{
    const struct progress *want = arg;
    return (st->written >= want->written && st->deleted >= want->deleted) ||
           (want->or_error && st->last_error[0]);
}

/* The log's stats once `written` rows are written and `deleted` deleted (or, with
 * `or_error`, an error was seen). */
static nprof_slowlog_stats wait_stats(nprof_slowlog *log, uint64_t written, uint64_t deleted, int or_error)
{
    struct progress want = {written, deleted, or_error};
    return wait_for(log, progressed, &want);
}

/* ---- exactly once, byte-exact ------------------------------------------------------------ */

#define THREADS 8
#define PER_THREAD 10000

static nprof_slowlog *shared_log;
static _Atomic uint64_t refusals;

/* The SQL and parameters of entry (t, i) as sent, and as the table must hold them. */
static size_t make_sql(int t, int i, char *out, size_t cap, int expected)
{
    return (size_t)snprintf(out, cap,
                            "SELECT 'it''s' AS \"q\", E'back\\\\slash' /* t=%d i=%d */ -- tab\there\n"
                            "\\.\nnext line\r\n\\N é日本🙂 %s end",
                            t, i, expected ? "\xEF\xBF\xBD\xEF\xBF\xBD" : "\xff\xfe");
}

static size_t make_params(int t, int i, char *out, size_t cap, int expected)
{
    int n = snprintf(out, cap, "a=\"x\ty\" b='\\N' %d/%d ", t, i);
    const char *nul = expected ? "\xEF\xBF\xBD" : "\0";
    size_t k = expected ? 3 : 1;
    memcpy(out + n, nul, k);
    memcpy(out + n + k, "\xc3(", 2); /* a truncated 2-byte sequence */
    if (expected) {
        memcpy(out + n + k, "\xEF\xBF\xBD(", 4);
        return (size_t)n + k + 4;
    }
    return (size_t)n + k + 2;
}

static void *producer(void *arg)
{
    int t = (int)(intptr_t)arg;
    char sql[256], params[128], rid[32];
    for (int i = 0; i < PER_THREAD; i++) {
        nprof_slowlog_entry e = {
            .sql = sql,
            .sql_len = make_sql(t, i, sql, sizeof sql, 0),
            .params = params,
            .params_len = make_params(t, i, params, sizeof params, 0),
            .duration_ms = 100 + i % 1000,
            .method = "GET",
            .method_len = 3,
            .route = "/r/{id}",
            .route_len = 7,
            .request_id = rid,
            .request_id_len = (size_t)snprintf(rid, sizeof rid, "%d-%d", t, i),
        };
        int rc;
        while ((rc = nprof_slowlog_enqueue(shared_log, &e)) == NPROF_EFULL) {
            atomic_fetch_add(&refusals, 1);
            sched_yield(); /* the test wants every row; a request would drop it */
        }
        if (rc != NPROF_OK) {
            fprintf(stderr, "enqueue: %s\n", nprof_errname(rc));
            return (void *)1;
        }
    }
    return NULL;
}

TEST(eight_threads_every_row_exactly_once_byte_exact)
{
    nprof_slowlog_options o = options("exact");
    o.redact = 0; /* the text is compared byte for byte */
    o.retention_s = 0;
    o.max_rows = 0;
    ASSERT_OK(nprof_slowlog_open(&shared_log, pg_conninfo, &o));
    pthread_t th[THREADS];
    uint64_t t0 = test_monotonic_ns();
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, producer, (void *)(intptr_t)t);
    int failed = 0;
    for (int t = 0; t < THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        failed |= r != NULL;
    }
    ASSERT_EQ_INT(failed, 0);
    nprof_slowlog_stats st;
    ASSERT_OK(nprof_slowlog_get_stats(shared_log, &st));
    ASSERT_OK(nprof_slowlog_close(shared_log, 60000));
    printf("  80000 rows in %.2f s; %" PRIu64 " enqueue calls refused for a full queue and retried\n",
           (double)(test_monotonic_ns() - t0) / 1e9, st.dropped);
    ASSERT_EQ_U64(st.enqueued, THREADS * PER_THREAD);
    ASSERT_EQ_U64(st.dropped, atomic_load(&refusals));

    PGresult *r = PQexec(db, "SELECT request_id, sql_text, params_summary, method, route FROM exact");
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    int rows = PQntuples(r);
    static unsigned char seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof seen);
    int dup = 0, bad = 0;
    for (int k = 0; k < rows; k++) {
        int t = -1, i = -1;
        if (sscanf(PQgetvalue(r, k, 0), "%d-%d", &t, &i) != 2 || t < 0 || t >= THREADS || i < 0 ||
            i >= PER_THREAD) {
            bad++;
            continue;
        }
        dup += seen[t][i]++ > 0;
        char want[256];
        size_t n = make_sql(t, i, want, sizeof want, 1);
        if ((size_t)PQgetlength(r, k, 1) != n || memcmp(PQgetvalue(r, k, 1), want, n) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "sql_text differs:\n  want %.*s\n  got  %s\n", (int)n, want, PQgetvalue(r, k, 1));
        }
        n = make_params(t, i, want, sizeof want, 1);
        if ((size_t)PQgetlength(r, k, 2) != n || memcmp(PQgetvalue(r, k, 2), want, n) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "params differ:\n  want %.*s\n  got  %s\n", (int)n, want, PQgetvalue(r, k, 2));
        }
        if (strcmp(PQgetvalue(r, k, 3), "GET") || strcmp(PQgetvalue(r, k, 4), "/r/{id}"))
            bad++;
    }
    PQclear(r);
    ASSERT_EQ_INT(rows, THREADS * PER_THREAD);
    ASSERT_EQ_INT(dup, 0);
    ASSERT_EQ_INT(bad, 0);
}

/* ---- the server goes away mid-stream ----------------------------------------------------- */

#if defined(__SANITIZE_THREAD__)
#define NPROF_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NPROF_TEST_UNDER_TSAN 1
#endif
#endif
#ifndef NPROF_TEST_UNDER_TSAN
#define NPROF_TEST_UNDER_TSAN 0
#endif

#define PAUSE_GAP_NS 50000 /* one entry every 50 us: 20,000 a second */

/* The producer runs until `stop`; the test reads `full` and `calls` while it runs. */
static struct {
    nprof_slowlog *log;
    uint64_t ok, max_ns, over_10us;
    _Atomic uint64_t full, calls;
    long voluntary_switches;
    _Atomic int stop;
} pause_run;

static void *paced_producer(void *arg)
{
    (void)arg;
    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    char sql[128];
    uint64_t next = test_monotonic_ns();
    for (uint64_t i = 0; !atomic_load_explicit(&pause_run.stop, memory_order_relaxed); i++) {
        while (test_monotonic_ns() < next) {
        } /* spin: sleeping would be a context switch of our own */
        next += PAUSE_GAP_NS;
        int n = snprintf(sql, sizeof sql, "SELECT %" PRIu64 " FROM pause_probe", i);
        nprof_slowlog_entry e = {.sql = sql, .sql_len = (size_t)n, .duration_ms = 150};
        uint64_t t0 = test_monotonic_ns();
        int rc = nprof_slowlog_enqueue(pause_run.log, &e);
        uint64_t dt = test_monotonic_ns() - t0;
        pause_run.max_ns = dt > pause_run.max_ns ? dt : pause_run.max_ns;
        pause_run.over_10us += dt > 10000;
        if (rc == NPROF_OK)
            pause_run.ok++;
        else if (rc == NPROF_EFULL)
            atomic_fetch_add_explicit(&pause_run.full, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&pause_run.calls, 1, memory_order_relaxed);
    }
    getrusage(RUSAGE_THREAD, &after);
    pause_run.voluntary_switches = after.ru_nvcsw - before.ru_nvcsw;
    return NULL;
}

static int writing(const nprof_slowlog_stats *st, const void *arg)
{
    (void)arg;
    return st->written > 0;
}

/* The writer has seen the server go, and the producer has met a full queue. */
static int outage_felt(const nprof_slowlog_stats *st, const void *arg)
{
    (void)arg;
    return st->last_error[0] && atomic_load(&pause_run.full) > 0;
}

/* The writer is back and has written rows since the outage (more than *arg). */
static int recovered(const nprof_slowlog_stats *st, const void *arg)
{
    return st->reconnects >= 1 && st->written > *(const uint64_t *)arg;
}

TEST(server_stopped_mid_stream_nothing_blocks_and_the_writer_recovers)
{
    if (!pg_running) {
        printf("  (skipped: the server was given by NPROF_TEST_PG, so it cannot be paused)\n");
        return;
    }
    nprof_slowlog_options o = options("paused");
    o.queue_slots = 1024;
    o.batch_rows = 500;
    ASSERT_OK(nprof_slowlog_open(&pause_run.log, pg_conninfo, &o));
    pthread_t th;
    pthread_create(&th, NULL, paced_producer, NULL);
    /* Each step waits for what it needs, not for a time: rows flowing, then the outage felt
     * on both sides (the queue outlasted), then rows flowing again. */
    wait_for(pause_run.log, writing, NULL);
    int paused = pg_pause();
    nprof_slowlog_stats mid = wait_for(pause_run.log, outage_felt, NULL);
    int resumed = pg_resume();
    wait_for(pause_run.log, recovered, &mid.written);
    atomic_store(&pause_run.stop, 1);
    pthread_join(th, NULL);
    ASSERT_EQ_INT(paused, 0);
    ASSERT_EQ_INT(resumed, 0);
    nprof_slowlog_stats st;
    ASSERT_OK(nprof_slowlog_get_stats(pause_run.log, &st));
    int rc = nprof_slowlog_close(pause_run.log, 30000);
    db = pg_connect(); /* the harness's own connection did not survive the restart */
    ASSERT_TRUE(db != NULL);
    uint64_t full = atomic_load(&pause_run.full), calls = atomic_load(&pause_run.calls);
    printf("  %" PRIu64 " accepted, %" PRIu64 " dropped (queue full while the server was down), "
           "reconnects %" PRIu64 ", batch retries %" PRIu64 "\n"
           "  enqueue latency: max %.2f us, %" PRIu64 " of %" PRIu64 " calls over 10 us; producer "
           "thread's voluntary context switches: %ld\n  error seen while down: %s\n",
           pause_run.ok, full, st.reconnects, st.batch_retries, pause_run.max_ns / 1e3,
           pause_run.over_10us, calls, pause_run.voluntary_switches, mid.last_error);
    ASSERT_OK(rc);
    ASSERT_EQ_U64(pause_run.ok + full, calls);
    ASSERT_TRUE(full > 0); /* the outage outlasted the queue */
    ASSERT_EQ_U64(st.dropped, full);
    ASSERT_TRUE(st.reconnects >= 1);
    ASSERT_TRUE(mid.last_error[0] != 0);
#if NPROF_TEST_UNDER_TSAN
    /* ThreadSanitizer's runtime takes locks of its own around every atomic and may block on
     * them: the count says nothing about the enqueue path there, which the other builds
     * check. */
    (void)pause_run.voluntary_switches;
#else
    ASSERT_EQ_INT(pause_run.voluntary_switches, 0); /* never waited for anything */
#endif
    ASSERT_EQ_INT(count_rows("paused"), (long long)pause_run.ok);
    ASSERT_EQ_INT(pg_scalar(db, "SELECT count(DISTINCT sql_text) FROM paused"), (long long)pause_run.ok);
}

/* ---- the writer's backend killed at random moments -------------------------------------- */

static _Atomic int killer_stop;
static _Atomic int kills;

static void *killer(void *arg)
{
    (void)arg;
    PGconn *c = pg_connect();
    while (c && !atomic_load(&killer_stop)) {
        /* Whatever the writer is doing: formatting, streaming, committing, reading the result. */
        long long n = pg_scalar(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE application_name = 'nanoprof-slowlog'");
        if (n > 0)
            atomic_fetch_add(&kills, (int)n);
        sleep_ms(7 + (unsigned)(test_monotonic_ns() / 1000 % 23));
    }
    PQfinish(c);
    return NULL;
}

TEST(writer_backend_killed_at_random_moments_rows_arrive_exactly_once)
{
    enum { ROWS = 30000 };
    nprof_slowlog_options o = options("killed");
    o.batch_rows = 500;
    o.reconnect_min_ms = 1;
    o.reconnect_max_ms = 20;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    atomic_store(&killer_stop, 0);
    pthread_t th;
    pthread_create(&th, NULL, killer, NULL);
    char sql[64];
    for (int i = 0; i < ROWS; i++) {
        nprof_slowlog_entry e = entry(sql, 120);
        e.sql_len = (size_t)snprintf(sql, sizeof sql, "SELECT %d FROM killed_probe", i);
        while (nprof_slowlog_enqueue(log, &e) == NPROF_EFULL)
            sleep_ms(1);
        if (i % 1000 == 0)
            sleep_ms(5); /* spread the rows over many batches and many kills */
    }
    wait_stats(log, ROWS, 0, 0);
    atomic_store(&killer_stop, 1);
    pthread_join(th, NULL);
    nprof_slowlog_stats st;
    nprof_slowlog_get_stats(log, &st);
    ASSERT_OK(nprof_slowlog_close(log, 20000));
    printf("  %d backends killed, %" PRIu64 " reconnects, %" PRIu64 " batches resent\n",
           atomic_load(&kills), st.reconnects, st.batch_retries);
    ASSERT_TRUE(atomic_load(&kills) > 0);
    ASSERT_EQ_INT(count_rows("killed"), ROWS);
    ASSERT_EQ_INT(pg_scalar(db, "SELECT count(DISTINCT sql_text) FROM killed"), ROWS);
}

/* ---- two processes create the table at once ---------------------------------------------- */

TEST(two_processes_create_the_table_at_the_same_time)
{
    for (int round = 0; round < 3; round++) {
        char table[32];
        snprintf(table, sizeof table, "race_%d", round);
        int gate[2];
        ASSERT_EQ_INT(pipe(gate), 0);
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(gate[1]);
                char c;
                (void)!read(gate[0], &c, 1); /* both start when the parent closes the pipe */
                nprof_slowlog_options o = options(table);
                nprof_slowlog *log = NULL;
                if (nprof_slowlog_open(&log, pg_conninfo, &o) != NPROF_OK)
                    _exit(2);
                nprof_slowlog_entry e = entry("SELECT pg_sleep(1)", 1000);
                nprof_slowlog_enqueue(log, &e);
                nprof_slowlog_stats st = wait_stats(log, 1, 0, 1);
                if (st.last_error[0])
                    fprintf(stderr, "child: %s\n", st.last_error);
                _exit(nprof_slowlog_close(log, 10000) == NPROF_OK && !st.last_error[0] ? 0 : 1);
            }
        }
        close(gate[0]);
        close(gate[1]);
        for (int k = 0; k < 2; k++) {
            int status = 0;
            waitpid(kids[k], &status, 0);
            ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        ASSERT_EQ_INT(count_rows(table), 2);
    }
}

/* ---- hostile text ------------------------------------------------------------------------ */

TEST(malicious_sql_text_is_stored_as_data)
{
    static const char *const texts[] = {
        "'); DROP TABLE hostile; --",
        "x');\nDROP TABLE hostile;\n\\.\nINSERT INTO hostile VALUES ('y",
        "\\.",
        "a\\.\nb\\.",
        "\\N",
        "\\\\N\\t\\n",
        "tab\tnew\nline\rcr",
        "COPY hostile FROM PROGRAM 'id'",
        "E'\\x00' $$ $tag$ ; ; ;",
    };
    size_t n = sizeof texts / sizeof texts[0];
    nprof_slowlog_options o = options("hostile");
    o.redact = 0;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    for (size_t i = 0; i < n; i++) {
        nprof_slowlog_entry e = entry(texts[i], (double)i);
        e.params = texts[i];
        e.params_len = strlen(texts[i]);
        ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    }
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    PGresult *r = PQexec(db, "SELECT sql_text, params_summary FROM hostile ORDER BY duration_ms");
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(PQntuples(r), (int)n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STR(PQgetvalue(r, (int)i, 0), texts[i]);
        ASSERT_STR(PQgetvalue(r, (int)i, 1), texts[i]);
    }
    PQclear(r);
}

TEST(secrets_never_reach_the_table)
{
    static const char *const secrets[] = {
        "Hunter2Secret!", "bob.secret@example.org", "alice@example.com", "Tr0ub4dor-3",
        "4111 1111 1111 1111", "sk_live_ABCDEF123", "eyJhbGciOiJIUzI1NiJ9", "AKIAZZZ999",
        "s3ss10n", "987654321",
    };
    nprof_slowlog_options o = options("redacted");
    o.redact_rules[0] = "(?i)ssn=(\\d+)"; /* a user rule */
    o.explain = 1;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    nprof_slowlog_entry e = entry(
        "UPDATE users SET password = 'Hunter2Secret!' WHERE email = 'bob.secret@example.org'", 300);
    const char *params = "email=alice@example.com password=Tr0ub4dor-3 card=4111 1111 1111 1111 "
                         "auth=Bearer sk_live_ABCDEF123 "
                         "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl "
                         "{\"api_key\": \"AKIAZZZ999\", \"session\": \"s3ss10n\"} ssn=987654321";
    e.params = params;
    e.params_len = strlen(params);
    ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    /* A slow SELECT whose plan shows the literal: the plan is redacted too. */
    nprof_slowlog_entry s = entry("SELECT * FROM pg_authid WHERE rolpassword = 'Hunter2Secret!'", 200);
    ASSERT_OK(nprof_slowlog_enqueue(log, &s));
    nprof_slowlog_stats st = wait_stats(log, 2, 0, 0);
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    printf("  %" PRIu64 " replacements\n", st.redactions);
    ASSERT_TRUE(st.redactions >= 12);
    ASSERT_EQ_INT(count_rows("redacted"), 2);
    ASSERT_EQ_INT(pg_scalar(db, "SELECT count(*) FROM redacted WHERE plan LIKE '%rolpassword%[redacted]%'"), 1);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        const char *p[1] = {secrets[i]};
        PGresult *r = PQexecParams(db,
                                   "SELECT count(*) FROM redacted WHERE strpos(concat(sql_text, "
                                   "params_summary, normalized_sql, plan, method, route), $1) > 0",
                                   1, NULL, p, NULL, NULL, 0);
        ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
        if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
            fprintf(stderr, "secret \"%s\" reached the table\n", secrets[i]);
        ASSERT_STR(PQgetvalue(r, 0, 0), "0");
        PQclear(r);
    }
    /* What is left stays readable. */
    ASSERT_EQ_INT(pg_scalar(db, "SELECT count(*) FROM redacted WHERE params_summary LIKE "
                                "'email=[redacted] password=[redacted] %'"),
                  1);
}

TEST(normalized_only_stores_no_literals)
{
    nprof_slowlog_options o = options("normalized");
    o.normalized_only = 1;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    const char *sql = "select * from t where name = 'Alice' and id in (1, 2, 3)";
    nprof_slowlog_entry e = entry(sql, 120);
    ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    char want[256];
    size_t n = 0;
    ASSERT_OK(nprof_sql_normalize(sql, strlen(sql), NPROF_SQL_QMARK, want, sizeof want, &n));
    PGresult *r = PQexec(db, "SELECT sql_text, normalized_sql, fingerprint FROM normalized");
    ASSERT_EQ_INT(PQntuples(r), 1);
    ASSERT_STR(PQgetvalue(r, 0, 0), want);
    ASSERT_STR(PQgetvalue(r, 0, 1), want);
    char fp[32];
    snprintf(fp, sizeof fp, "%" PRId64, (int64_t)nprof_sql_fingerprint(sql, strlen(sql)));
    ASSERT_STR(PQgetvalue(r, 0, 2), fp);
    PQclear(r);
}

TEST(plans_of_slow_selects_once_per_shape_never_running_the_text)
{
    ASSERT_TRUE(pg_exec(db, "CREATE TABLE victim (x int); INSERT INTO victim VALUES (1)"));
    nprof_slowlog_options o = options("planned");
    o.explain = 1;
    o.normalized_only = 0;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    static const char *const texts[] = {
        "SELECT relname FROM pg_class WHERE relname = 'pg_type'", /* plan */
        "SELECT relname FROM pg_class WHERE relname = 'pg_proc'", /* same shape: none */
        "SELECT * FROM pg_class WHERE oid = $1",                  /* parameters: none */
        "SELECT 1; DROP TABLE victim",                            /* two statements: refused */
        "UPDATE victim SET x = 2",                                /* not a SELECT: none */
    };
    for (int i = 0; i < 5; i++) {
        nprof_slowlog_entry e = entry(texts[i], i + 1);
        ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    }
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    PGresult *r = PQexec(db, "SELECT plan IS NOT NULL, coalesce(plan::jsonb -> 0 -> 'Plan' ->> "
                             "'Node Type', '') FROM planned ORDER BY duration_ms");
    ASSERT_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    ASSERT_EQ_INT(PQntuples(r), 5);
    ASSERT_STR(PQgetvalue(r, 0, 0), "t");
    ASSERT_TRUE(PQgetvalue(r, 0, 1)[0] != 0);
    for (int i = 1; i < 5; i++)
        ASSERT_STR(PQgetvalue(r, i, 0), "f");
    PQclear(r);
    ASSERT_EQ_INT(pg_scalar(db, "SELECT x FROM victim"), 1);
}

TEST(retention_deletes_old_rows_and_rows_beyond_the_bound)
{
    nprof_slowlog_options o = options("retained");
    o.retention_s = 3600;
    o.max_rows = 50;
    o.retention_interval_ms = 20;
    o.retention_batch = 7; /* several small DELETEs */
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (int i = 0; i < 140; i++) {
        nprof_slowlog_entry e = entry("SELECT 1", i);
        if (i < 20)
            e.timestamp_us = ((uint64_t)now.tv_sec - 7200) * 1000000u; /* two hours ago */
        ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    }
    nprof_slowlog_stats st = wait_stats(log, 140, 90, 0);
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    ASSERT_EQ_U64(st.deleted, 90);
    ASSERT_EQ_INT(count_rows("retained"), 50);
    ASSERT_EQ_INT(pg_scalar(db, "SELECT min(duration_ms) FROM retained"), 90);
}

TEST(read_calls_aggregate_across_writers_as_valid_json)
{
    nprof_slowlog *a = NULL, *b = NULL;
    nprof_slowlog_options o = options("dash");
    ASSERT_OK(nprof_slowlog_open(&a, pg_conninfo, &o));
    ASSERT_OK(nprof_slowlog_open(&b, pg_conninfo, &o));
    double ms[] = {100, 200, 300, 400, 500};
    for (int i = 0; i < 5; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, i < 3 ? "SELECT * FROM a WHERE x = %d" : "SELECT '<b>&' FROM b LIMIT %d", i);
        nprof_slowlog_entry e = entry(sql, ms[i]);
        ASSERT_OK(nprof_slowlog_enqueue(i % 2 ? a : b, &e));
    }
    ASSERT_OK(nprof_slowlog_close(a, 10000));
    wait_stats(b, 3, 0, 0);
    nprof_buf j = NPROF_BUF_INIT;
    size_t where = 0;
    ASSERT_OK(nprof_slowlog_read_recent(b, 3, &j));
    ASSERT_TRUE(json_check(j.data, j.len, &where));
    ASSERT_TRUE(strstr(j.data, "\"sql_text\":") && strstr(j.data, "\"timestamp\":\"20"));
    ASSERT_TRUE(strstr(j.data, "<b>") == NULL); /* escaped for HTML */
    j.len = 0;
    ASSERT_OK(nprof_slowlog_read_slowest(b, 1, 3600, &j));
    ASSERT_TRUE(json_check(j.data, j.len, &where));
    ASSERT_TRUE(strstr(j.data, "\"duration_ms\":500,") != NULL);
    j.len = 0;
    ASSERT_OK(nprof_slowlog_read_by_fingerprint(b, 10, 0, &j));
    ASSERT_TRUE(json_check(j.data, j.len, &where));
    printf("  by fingerprint: %s\n", j.data);
    ASSERT_TRUE(strstr(j.data, "\"count\":3,\"total_ms\":600,\"mean_ms\":200,") != NULL);
    ASSERT_TRUE(strstr(j.data, "\"count\":2,\"total_ms\":900,\"mean_ms\":450,") != NULL);
    ASSERT_TRUE(strstr(j.data, "\"max_ms\":500") != NULL);
    ASSERT_TRUE(strstr(j.data, "\"processes\":1,\"hosts\":1") != NULL); /* one process wrote */
    nprof_buf_free(&j);
    ASSERT_OK(nprof_slowlog_close(b, 10000));
}

TEST(a_finished_profile_enqueues_its_slow_queries_with_the_request)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    ASSERT_TRUE(rt != NULL);
    nprof_slowlog_options o = options("profiled");
    o.runtime = rt;
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, pg_conninfo, &o));
    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "POST", 4, "/users/7", 8, 0, &p));
    ASSERT_OK(nprof_profile_set_route(p, "/users/{id}", 11));
    nprof_query slow = {.sql = "SELECT * FROM users WHERE id = 7", .sql_len = 32,
                        .params = "id=7", .params_len = 4, .duration_ns = 5000000};
    nprof_query fast = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000};
    ASSERT_OK(nprof_sql_record(p, &slow));
    ASSERT_OK(nprof_sql_record(p, &fast));
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_EQ_INT(nprof_slowlog_enqueue_profile(log, p), 1);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    char rid[80];
    snprintf(rid, sizeof rid, "%.*s", (int)info.request_id_len, info.request_id);
    nprof_request_discard(p);
    ASSERT_OK(nprof_slowlog_close(log, 10000));
    nprof_runtime_destroy(rt);
    PGresult *r = PQexec(db, "SELECT method, route, request_id, duration_ms, params_summary, "
                             "abs(extract(epoch FROM now() - \"timestamp\")) < 60 FROM profiled");
    ASSERT_EQ_INT(PQntuples(r), 1);
    ASSERT_STR(PQgetvalue(r, 0, 0), "POST");
    ASSERT_STR(PQgetvalue(r, 0, 1), "/users/{id}");
    ASSERT_STR(PQgetvalue(r, 0, 2), rid);
    ASSERT_STR(PQgetvalue(r, 0, 3), "5");
    ASSERT_STR(PQgetvalue(r, 0, 4), "id=7");
    ASSERT_STR(PQgetvalue(r, 0, 5), "t");
    PQclear(r);
}

TEST(close_gives_up_on_time_when_the_database_is_unreachable)
{
    nprof_slowlog_options o = options("nowhere");
    nprof_slowlog *log = NULL;
    ASSERT_OK(nprof_slowlog_open(&log, "host=/nonexistent/nprof port=1 dbname=x", &o));
    nprof_slowlog_entry e = entry("SELECT 1", 1);
    for (int i = 0; i < 10; i++)
        ASSERT_OK(nprof_slowlog_enqueue(log, &e));
    nprof_slowlog_stats st = wait_stats(log, UINT64_MAX, 0, 1); /* until the first failure */
    ASSERT_TRUE(strstr(st.last_error, "connect") != NULL);
    ASSERT_EQ_INT(st.connected, 0);
    uint64_t t0 = test_monotonic_ns();
    ASSERT_EQ_INT(nprof_slowlog_close(log, 200), NPROF_EIO);
    ASSERT_TRUE(test_monotonic_ns() - t0 < WAIT_LIMIT_NS); /* a hang guard, not a timing */
    ASSERT_EQ_INT(nprof_slowlog_enqueue(NULL, &e), NPROF_EINVAL);
}

TEST(bad_options_are_refused)
{
    nprof_slowlog *log = NULL;
    nprof_slowlog_options o = options("bad name; DROP");
    ASSERT_EQ_INT(nprof_slowlog_open(&log, pg_conninfo, &o), NPROF_EINVAL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "table name") != NULL);
    o = options("ok");
    o.redact_rules[0] = "(";
    ASSERT_EQ_INT(nprof_slowlog_open(&log, pg_conninfo, &o), NPROF_EPARSE);
    o = options("ok");
    ASSERT_EQ_INT(nprof_slowlog_open(&log, NULL, &o), NPROF_EINVAL);
    ASSERT_TRUE(log == NULL);
    nprof_config c;
    nprof_config_init(&c);
    ASSERT_OK(nprof_config_set(&c, "slowlog_normalized_only", "on"));
    ASSERT_OK(nprof_config_set(&c, "slowlog_table", "app.slow"));
    nprof_slowlog_options_from_config(&o, &c);
    ASSERT_EQ_INT(o.normalized_only, 1);
    ASSERT_STR(o.table, "app.slow");
    /* auto follows production mode */
    ASSERT_OK(nprof_config_set(&c, "slowlog_normalized_only", "auto"));
    nprof_slowlog_options_from_config(&o, &c);
    ASSERT_EQ_INT(o.normalized_only, 0);
    ASSERT_OK(nprof_config_set(&c, "production", "1"));
    nprof_slowlog_options_from_config(&o, &c);
    ASSERT_EQ_INT(o.normalized_only, 1);
}

int main(void)
{
    int rc = pg_start("test_slowlog");
    if (rc == PG_SKIP_EXIT) {
        printf("test_slowlog: no PostgreSQL server installed; skipped\n");
        return PG_SKIP_EXIT;
    }
    if (rc)
        return 1;
    db = pg_connect();
    if (!db)
        return 1;
    RUN(bad_options_are_refused);
    RUN(malicious_sql_text_is_stored_as_data);
    RUN(secrets_never_reach_the_table);
    RUN(normalized_only_stores_no_literals);
    RUN(plans_of_slow_selects_once_per_shape_never_running_the_text);
    RUN(retention_deletes_old_rows_and_rows_beyond_the_bound);
    RUN(read_calls_aggregate_across_writers_as_valid_json);
    RUN(a_finished_profile_enqueues_its_slow_queries_with_the_request);
    RUN(two_processes_create_the_table_at_the_same_time);
    RUN(close_gives_up_on_time_when_the_database_is_unreachable);
    RUN(eight_threads_every_row_exactly_once_byte_exact);
    RUN(writer_backend_killed_at_random_moments_rows_arrive_exactly_once);
    PQfinish(db);
    db = NULL;
    RUN(server_stopped_mid_stream_nothing_blocks_and_the_writer_recovers);
    PQfinish(db);
    return TEST_SUMMARY();
}
