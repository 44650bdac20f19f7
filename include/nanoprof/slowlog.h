/*
 * nanoprof/slowlog.h: the persistent slow-query log, a PostgreSQL table (the reference's
 * SlowQueryLog) written without ever slowing a request.
 *
 * A log has its own libpq connection and one background writer thread.  The request path
 * (nprof_slowlog_enqueue) only copies the entry into a bounded lock-free queue of slots
 * allocated when the log is opened: no lock, no system call, no allocation.  When the queue
 * is full the entry is dropped and counted, never waited for.  The writer drains the queue in
 * batches with COPY ... FROM STDIN, one transaction per batch; when the database is down it
 * reconnects with exponential backoff and writes the batch it holds once it is back, exactly
 * once.  Many processes on many hosts may write into one table; the read calls aggregate
 * across all of them.
 *
 * The table (default name nanoprof_slow_queries; created if missing, safely from several
 * processes at once, serialized by an advisory lock):
 *     id             bigserial primary key
 *     sql_text       text              the query (or its normalized text, see normalized_only),
 *                                      redacted, cut at max_sql_bytes
 *     duration_ms    double precision
 *     params_summary text              redacted on the request path, cut at max_params_bytes
 *     timestamp      timestamptz       when the query ended
 *     fingerprint    bigint            nprof_sql_fingerprint() as a signed 64-bit value (hex
 *                                      in the view <table>_hex below)
 *     normalized_sql text
 *     method, route, request_id text   from the request, when known
 *     host text, pid integer           the writing process
 *     truncated      boolean           sql_text or params_summary was cut
 *     plan           text              EXPLAIN (FORMAT JSON) of a slow SELECT (option explain),
 *                                      redacted; text, not jsonb, so that a user's redaction
 *                                      rule can never make a batch fail
 *     batch_id       bigint            the writer batch that wrote the row (exactly-once retry)
 *     callsite       text              the application code that issued the query
 *                                      (nprof_slowlog_entry.callsite), NULL when unknown; a table
 *                                      made by an earlier version gets the column when a writer
 *                                      connects (ALTER TABLE ... ADD COLUMN IF NOT EXISTS, under
 *                                      the same advisory lock, only when it is missing)
 * with indexes on timestamp DESC, duration_ms DESC and (fingerprint, timestamp DESC).
 *
 * Beside it, in the same schema, the writer makes the view <table>_hex (the table's name cut
 * at 40 bytes, as the index names are: nanoprof_slow_queries_hex by default): the same
 * columns (callsite last), with fingerprint as text: the 16 lowercase hex digits that the profile's JSON, the
 * dashboard, the read calls below and nanoprof-sql print.  The conversion, both ways, in SQL:
 *     lpad(to_hex(fingerprint), 16, '0')                 bigint -> hex; to_hex() prints the
 *                                                        64 bits unsigned, so a negative
 *                                                        bigint gives 16 digits
 *     ('x' || '9a018bbb5165656a')::bit(64)::bigint       hex -> bigint, to search the table
 *                                                        by its fingerprint index
 * The view is (re)made with CREATE OR REPLACE VIEW each time the writer connects, under the
 * table's advisory lock; when it cannot be made (a role without the privilege, another
 * object of that name) the writer says so in last_error and writes the rows all the same.
 * Drop the table with DROP TABLE ... CASCADE, which drops the view too.
 *
 * The table is UNLOGGED by default: writes skip the WAL, and PostgreSQL empties the table
 * after a crash (not after a clean restart).  Option `logged` keeps it LOGGED; the writer's
 * session then runs with synchronous_commit = off (see README.md for the measured
 * difference).
 *
 * Bytes: every byte a query can hold is stored as data: COPY's text format escapes
 * backslash, tab, newline and carriage return; NUL bytes and invalid UTF-8 become U+FFFD.
 *
 * Thread safety: enqueue calls may come from any number of threads at once.  The read calls
 * and nprof_slowlog_get_stats() may be called from any thread (the reads share one connection,
 * taken under a mutex).  nprof_slowlog_close() must not race with any other call on the log.
 * After fork() the child has the log's memory but not its writer thread or connections:
 * a child that wants a slow-query log opens its own, and leaves the inherited one alone
 * (neither enqueue into it nor close it).
 */
#ifndef NANOPROF_SLOWLOG_H
#define NANOPROF_SLOWLOG_H

#include "common.h"
#include "config.h"
#include "profile.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A slow-query log, opaque: opened by nprof_slowlog_open(), closed by nprof_slowlog_close(). */
typedef struct nprof_slowlog nprof_slowlog;

#define NPROF_SLOWLOG_TABLE_MAX 64 /* bytes of a table name, NUL included */
#define NPROF_SLOWLOG_MAX_USER_RULES 8 /* entries of nprof_slowlog_options.redact_rules */

/* How to open a log: fill with nprof_slowlog_options_init() (or _from_config()), then change
 * fields; nprof_slowlog_open() copies what it needs.  Defaults in parentheses. */
typedef struct nprof_slowlog_options {
    nprof_runtime *runtime;      /* optional: memory comes from its allocator, and
                                    normalized_only follows its production mode; the log must
                                    be closed before the runtime is destroyed (NULL) */
    char table[NPROF_SLOWLOG_TABLE_MAX]; /* table name, [A-Za-z0-9_], optionally
                                    "schema.table" (nanoprof_slow_queries) */
    uint32_t queue_slots;        /* entries the queue holds; rounded up to a power of two
                                    (4096) */
    uint32_t max_sql_bytes;      /* bytes of SQL text kept per entry (2048) */
    uint32_t max_params_bytes;   /* bytes of parameter summary kept per entry (512) */
    uint32_t batch_rows;         /* most rows per COPY (2000) */
    uint32_t flush_interval_ms;  /* how long the writer sleeps when the queue is empty (20) */
    int logged;                  /* LOGGED table with synchronous_commit=off instead of
                                    UNLOGGED (0) */
    int normalized_only;         /* store the normalized text as sql_text, never the raw
                                    literals: 1 yes, 0 no, -1 follow the runtime's production
                                    mode (-1; without a runtime: 0) */
    int redact;                  /* redact params on enqueue and sql_text on the writer (1) */
    const char *redact_rules[NPROF_SLOWLOG_MAX_USER_RULES]; /* extra PCRE2 rules (NULL) */
    int explain;                 /* EXPLAIN (FORMAT JSON) slow SELECTs into `plan` (0); not
                                    with normalized_only (a plan shows the literals), nor for
                                    texts cut at max_sql_bytes or holding $n parameters */
    uint32_t explain_interval_ms;/* at most one plan per fingerprint per interval (60000) */
    uint32_t explain_timeout_ms; /* statement_timeout of the EXPLAIN (200) */
    uint32_t retention_s;        /* delete rows older than this; 0 keeps them (604800: 7 days) */
    uint64_t max_rows;           /* delete the oldest rows beyond this count; 0: no bound
                                    (1000000) */
    uint32_t retention_interval_ms; /* how often the writer checks retention (10000) */
    uint32_t retention_batch;    /* rows per DELETE, so no lock is held for long (1000) */
    uint32_t reconnect_min_ms;   /* first retry after a failure (50) ... */
    uint32_t reconnect_max_ms;   /* ... doubling up to this (5000) */
} nprof_slowlog_options;

/* Fills `opts` with the defaults given above.  Accepts NULL.  Never fails. */
NPROF_API void nprof_slowlog_options_init(nprof_slowlog_options *opts);

/* Fills `opts` from a configuration's slowlog_* options, on top of the defaults: the table,
 * queue size, logged, explain, retention, max rows, one redaction rule (borrowed from `cfg`,
 * which must live until nprof_slowlog_open() returns), max_sql_bytes (at most 2048) and
 * max_params_bytes; slowlog_normalized_only=auto follows cfg->production.  Accepts NULL for
 * either (then does what it can: nothing, or the defaults).  Never fails. */
NPROF_API void nprof_slowlog_options_from_config(nprof_slowlog_options *opts,
                                                 const nprof_config *cfg);

/*
 * Opens a log writing through `conninfo` (a libpq connection string or URI; NULL or "":
 * the runtime's opt.slowlog_conninfo).  Allocates the queue, compiles the redaction rules and
 * starts the writer thread, which connects and creates the table in the background: open
 * does not wait for the database, so an application starts while its database is down.
 * Errors: NPROF_EINVAL (`out` NULL, no conninfo, a bad table name or option), NPROF_EPARSE
 * (a redaction rule does not compile), NPROF_ENOMEM, NPROF_EIO (the thread could not start).
 */
NPROF_API int nprof_slowlog_open(nprof_slowlog **out, const char *conninfo,
                                 const nprof_slowlog_options *opts);

/*
 * Stops the writer after it has written what was queued, waiting at most `timeout_ms` (the
 * writer gets the time to flush, then its statement is cancelled), and frees the log.
 * Returns NPROF_OK when everything queued was written, NPROF_EIO when some was left
 * unwritten (nprof_last_error_detail() says how many).  Accepts NULL.
 */
NPROF_API int nprof_slowlog_close(nprof_slowlog *log, uint32_t timeout_ms);

/* One slow query to log, given to nprof_slowlog_enqueue().  Every string is copied with its
 * length (NUL bytes are data) during the call. */
typedef struct nprof_slowlog_entry {
    const char *sql;
    size_t sql_len;
    const char *params;          /* parameter summary or NULL; redacted on the way in */
    size_t params_len;
    double duration_ms;
    uint64_t timestamp_us;       /* microseconds since the Unix epoch; 0: now */
    uint64_t fingerprint;        /* 0: computed by the writer from the kept text */
    const char *method;          /* may be NULL; cut at 16 bytes */
    size_t method_len;
    const char *route;           /* route template, or the path; may be NULL; cut at 256 */
    size_t route_len;
    const char *request_id;      /* may be NULL; cut at 64 bytes */
    size_t request_id_len;
    const char *callsite;        /* the application code that issued the query ("file.py:42
                                    in view"), may be NULL; cut at NPROF_CALLSITE_MAX */
    size_t callsite_len;
} nprof_slowlog_entry;

/*
 * Fills the request fields of `e` (method, route template or else the path, request id)
 * from profile `p`, for a database hook that logs one query of a running request; with `p`
 * NULL (no request) it leaves them as they are.  The strings point into `p`: enqueue before
 * the profile ends.  Never fails.
 */
NPROF_API void nprof_slowlog_entry_set_request(nprof_slowlog_entry *e, const nprof_profile *p);

/*
 * Copies `e` into the queue.  Never blocks, never allocates, makes no system call (the time
 * is read from the vDSO clock); the one exception is a thread's first call with parameters
 * while redaction is on, which creates that thread's PCRE2 match data (a few hundred bytes,
 * kept until the thread exits).  Errors: NPROF_EINVAL (NULL `log` or `e`, a NULL string with
 * a non-zero length), NPROF_EFULL (the queue is full: the entry was dropped and counted),
 * NPROF_ESTATE (the log is closing).
 */
NPROF_API int nprof_slowlog_enqueue(nprof_slowlog *log, const nprof_slowlog_entry *e);

/*
 * Enqueues the slow queries of a finished profile (those over opt.slow_query_threshold_ms, with
 * their text, parameters, fingerprint, call site (nprof_query_info.callsite), method, route (or
 * path) and request id), so the middleware and the database hooks call one function.  Queries
 * whose flags have NPROF_QUERY_LOGGED are left out: the database hook that recorded them has
 * sent them to a slow-query log already (the libpq layer does so when it has a log), and
 * enqueueing them again would store each twice.  Returns how many were queued (>= 0: a
 * count, not only a code), or NPROF_EINVAL (`log` NULL) / NPROF_ENOPROFILE (NULL
 * profile).  Entries dropped for a full queue are counted in the stats, not reported here.
 */
NPROF_API int nprof_slowlog_enqueue_profile(nprof_slowlog *log, const nprof_profile *p);

/*
 * Waits until the writer is connected and the table (and its view) exist, at most
 * `timeout_ms`: what an application calls at start-up to know that its log works (the
 * reference's ensure_table()).  Blocks: call it off the request path.  Returns NPROF_OK, or
 * NPROF_EIO when the time ran out (nprof_last_error_detail() has the writer's last error,
 * e.g. the server's message or "connecting"), NPROF_EINVAL (`log` NULL), NPROF_ESTATE (the log
 * is closing).
 */
NPROF_API int nprof_slowlog_wait_ready(nprof_slowlog *log, uint32_t timeout_ms);

/* What a log did, copied out by nprof_slowlog_get_stats(). */
typedef struct nprof_slowlog_stats {
    uint64_t enqueued;           /* entries accepted by the queue */
    uint64_t dropped;            /* entries refused because the queue was full */
    uint64_t written;            /* rows committed to the table */
    uint64_t unwritten;          /* accepted but not written (yet): still queued, in the
                                    writer's batch, or given up (refused three times) */
    uint64_t truncated;          /* entries whose sql or params were cut */
    uint64_t redactions;         /* replacements made by the redaction rules */
    uint64_t batches;            /* COPY transactions committed */
    uint64_t batch_retries;      /* batches sent again after a failure */
    uint64_t reconnects;         /* connections made after the first */
    uint64_t plans;              /* EXPLAINs stored */
    uint64_t deleted;            /* rows removed by retention */
    uint32_t queue_slots;        /* capacity */
    uint32_t queue_depth;        /* entries waiting now */
    int connected;               /* the writer holds a working connection */
    char last_error[256];        /* the writer's last database error, "" if none */
} nprof_slowlog_stats;

/* Copies the counters into `out`.  Thread-safe; never talks to the database.  Errors:
 * NPROF_EINVAL (`log` or `out` NULL).  A log opened with a runtime also shows them (but
 * last_error) as the introspection names stats.slowlog.<field>. */
NPROF_API int nprof_slowlog_get_stats(nprof_slowlog *log, nprof_slowlog_stats *out);

/*
 * Read side, for dashboards: nprof_slowlog_read_recent(), nprof_slowlog_read_slowest() and
 * nprof_slowlog_read_by_fingerprint().  Each appends a JSON array to `out` (caller-owned)
 * (valid JSON and UTF-8 whatever the table holds; '<', '>' and '&' escaped so it can sit inside
 * HTML) built from rows of the table, i.e. written by every process that shares it:
 *   recent:  the `n` latest rows (index on timestamp DESC);
 *   slowest: the `n` slowest rows, of the last `since_s` seconds when since_s > 0 (index on
 *            duration_ms DESC);
 *   by_fingerprint: one object per fingerprint of the last `since_s` seconds (0: all rows),
 *            the `n` with the largest total time: fingerprint (hex string), normalized_sql,
 *            count, total_ms, mean_ms, p95_ms, max_ms, last_seen, and processes and hosts
 *            (how many distinct writing processes, host and pid, and hosts logged it).
 * Row objects have the keys id, timestamp (ISO 8601), duration_ms, sql_text, normalized_sql,
 * params_summary, fingerprint (16 hex digits), method, route, request_id, host, pid, truncated,
 * plan (the plan's JSON text as a string, or null) and callsite (a string, or null).  These calls use a second connection of
 * the log's, opened on first use; they block for the round trip, so call them off the request
 * path.  Errors: NPROF_EINVAL, NPROF_EIO (nprof_last_error_detail() has the server's message),
 * NPROF_ENOMEM.  On error `out` is left as it was.
 */
NPROF_API int nprof_slowlog_read_recent(nprof_slowlog *log, uint32_t n, nprof_buf *out);

/* The `n` slowest rows (of the last `since_s` seconds when since_s > 0), as a JSON array of
 * row objects appended to `out`.  Blocks for a round trip; errors as above. */
NPROF_API int nprof_slowlog_read_slowest(nprof_slowlog *log, uint32_t n, uint32_t since_s,
                                         nprof_buf *out);
/* One object per fingerprint of the last `since_s` seconds (0: all rows), the `n` with the
 * largest total time, as a JSON array appended to `out`.  Blocks for a round trip; errors as
 * above. */
NPROF_API int nprof_slowlog_read_by_fingerprint(nprof_slowlog *log, uint32_t n, uint32_t since_s,
                                                nprof_buf *out);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: getters are nprof_<object>_get_<what>, database reads nprof_slowlog_read_<what>. */
#define nprof_slowlog_stats_get nprof_slowlog_get_stats
#define nprof_slowlog_recent nprof_slowlog_read_recent
#define nprof_slowlog_slowest nprof_slowlog_read_slowest
#define nprof_slowlog_by_fingerprint nprof_slowlog_read_by_fingerprint
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_SLOWLOG_H */
