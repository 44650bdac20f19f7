/*
 * nanoprof/pq.h: libpq queries timed, shaped and counted.
 *
 * Two ways in, one recording:
 *   - without code changes: LD_PRELOAD=libnanoprof_pq.so interposes libpq's query entry
 *     points (PQexec, PQexecParams, PQprepare, PQexecPrepared, PQsendQuery,
 *     PQsendQueryParams, PQsendPrepare, PQsendQueryPrepared, PQgetResult, PQpipelineSync,
 *     PQfinish, PQreset, PQresetStart) and forwards each to the functions below;
 *   - for hosts that link nanoprof: the nprof_pq_* wrappers, which take and return exactly
 *     what the libpq function of the same name does, or nprof_pq_begin()/nprof_pq_end()
 *     around the host's own libpq calls.
 *
 * Every query is recorded once (libpq calls its own exported functions internally, PQexec
 * through PQsendQuery and PQgetResult: a per-thread guard makes only the outermost call
 * record) into
 *   - the calling thread's current profile (nprof_current()), when there is one, with its
 *     text, duration, a short parameter summary ($1='42', $2=NULL, $3=<binary 16 bytes>,
 *     values cut at 64 bytes, the whole at opt.max_params_bytes), shape and fingerprint;
 *   - the process-wide per-shape table (nprof_pq_querystats()), always;
 *   - the slow-query log (nanoprof/slowlog.h), when the query took longer than
 *     opt.slow_query_threshold_ms and a log is set: the layer opens one itself when
 *     NANOPROF_CONF has slowlog_conninfo (and closes it, flushed, at exit), or the host hands
 *     its own to nprof_pq_set_slowlog().  libnanoprof's own libpq calls (the log's writer and
 *     readers) are never recorded under the shim.
 * Parameter summaries go through the default redaction rules (nanoprof/redact.h) before a
 * profile keeps them; the slow-query log redacts its copy itself.
 * Asynchronous queries are timed from the send to the NULL that ends their results; in
 * pipeline mode each statement is timed from the later of its send and the end of the
 * previous statement's results, so a pipeline's statements add up to its wall time.
 * PQprepare and PQsendPrepare are not queries of their own: the statement's text is
 * remembered per connection by name, so that executing it records that text, and
 * forgotten by PQfinish and PQreset.  SQL-level statements share those names, as in
 * PostgreSQL: PREPARE name [(types)] AS ... is remembered, EXECUTE name(args) is recorded as
 * the prepared statement's text with "(args)" as its parameter summary, DEALLOCATE [ALL]
 * forgets.
 *
 * The runtime: the first recorded query creates one from NANOPROF_CONF (once, thread-safe),
 * unless the host handed its own to nprof_pq_init() before.  A malformed NANOPROF_CONF
 * leaves libpq working and unrecorded, with one line on stderr.
 *
 * Nothing here ever changes what libpq returns: a failure of the recording (out of memory,
 * a full table, a NULL connection, a broken one) is swallowed and counted
 * (nprof_pq_stats.failures, .dropped_*).
 *
 * Bounds: at most NPROF_PQ_MAX_CONNS connections with asynchronous queries or prepared
 * statements are tracked at once, NPROF_PQ_MAX_PENDING queries in flight per connection
 * and NPROF_PQ_MAX_STATEMENTS prepared statements per connection; beyond, queries are still
 * executed and counted as dropped.  Only the first NPROF_PQ_FINGERPRINT_MAX bytes of a
 * query feed its fingerprint, so a 100 MB query costs no more than a 1 MiB one.
 *
 * Thread safety: all calls are thread-safe; a PGconn must not be used by two threads at
 * once (libpq's own rule), and the per-connection state relies on it.
 */
#ifndef NANOPROF_PQ_H
#define NANOPROF_PQ_H

#include "common.h"
#include "querystats.h"
#include "runtime.h"
#include "slowlog.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libpq's own types, declared as libpq-fe.h declares them (PGconn, PGresult), so that this
 * header needs no libpq include; Oid is unsigned int there too. */
struct pg_conn;
struct pg_result;

/* The bounds described above ("Bounds"): connections tracked, queries in flight per
 * connection, prepared statements per connection, bytes of a query that feed its fingerprint. */
#define NPROF_PQ_MAX_CONNS 1024
#define NPROF_PQ_MAX_PENDING 64
#define NPROF_PQ_MAX_STATEMENTS 256
#define NPROF_PQ_FINGERPRINT_MAX ((size_t)1 << 20)

/*
 * Makes the libpq layer record with `rt` (its configuration, its allocator) instead of a
 * runtime of its own; call before the first query.  `rt` must outlive the layer: call
 * nprof_pq_shutdown() before destroying it.  Errors: NPROF_EINVAL (`rt` NULL), NPROF_ESTATE
 * (the layer already has a runtime), NPROF_ENOMEM.
 */
NPROF_API int nprof_pq_init(nprof_runtime *rt);

/* The layer's runtime, created from NANOPROF_CONF on first use (or the one given to
 * nprof_pq_init()); NULL when that failed.  Owned by the layer; thread-safe. */
NPROF_API nprof_runtime *nprof_pq_runtime(void);

/*
 * Sends slow queries to `log` from now on (NULL: to none).  A log the layer opened from
 * NANOPROF_CONF is closed at shutdown or exit (a query on another thread may still be
 * enqueueing into it).  `log` must stay open until no query can be using it: after it was
 * replaced and the queries then in flight have ended, or after nprof_pq_shutdown().
 * A host that also enqueues whole profiles (nprof_slowlog_enqueue_profile) into the same log
 * gets a query of a request twice: give the layer the log, or the profiles, not both.
 * Errors: NPROF_ESTATE (no runtime).
 */
NPROF_API int nprof_pq_set_slowlog(nprof_slowlog *log);

/* The process-wide per-shape table the layer records into (created with the runtime), or
 * NULL without a runtime.  Owned by the layer: valid until nprof_pq_shutdown(). */
NPROF_API nprof_querystats *nprof_pq_querystats(void);

/*
 * Forgets every connection and statement, destroys the table and, if the layer created it,
 * the runtime.  No thread may be using libpq through the layer meanwhile.  A later query
 * starts again from scratch.
 */
NPROF_API void nprof_pq_shutdown(void);

/*
 * Exclusions, for a connection whose queries must not be recorded (the slow-query log's
 * writer, a monitoring connection).  nprof_pq_exclude_thread(1) stops recording on the
 * calling thread until nprof_pq_exclude_thread(0).  Returns the previous setting (0 or 1: a
 * value, never an error code).  Costs nothing on the query path.
 */
NPROF_API int nprof_pq_exclude_thread(int excluded);

/* Stops recording the queries of `conn` until it is finished or reset.  Each excluded
 * connection adds a lock to every query's path.  Errors: NPROF_EINVAL (`conn` NULL),
 * NPROF_ELIMIT (NPROF_PQ_MAX_CONNS connections are tracked already). */
NPROF_API int nprof_pq_exclude_conn(struct pg_conn *conn);

/* Non-zero while the calling thread is inside a recorded call (the shim forwards then); a
 * value, never an error code. */
NPROF_API int nprof_pq_busy(void);

/*
 * Called by the shim when libpq, inside a recorded PQexec or PQexecParams, has sent the
 * query (its inner PQsendQuery or PQsendQueryParams returned): takes the query's fingerprint
 * then, while the server runs the query, instead of after the result came back.  Does
 * nothing elsewhere.
 */
NPROF_API void nprof_pq_overlap(void);

/* ---- wrappers: the libpq call of the same name, recorded -------------------------------- */
/* Each takes libpq's arguments and returns exactly what libpq returns (a PGresult the caller
 * clears with PQclear(), or libpq's int), whatever happens to the recording. */

/* libpq's PQexec(), recorded. */
NPROF_API struct pg_result *nprof_pq_exec(struct pg_conn *conn, const char *query);

/* libpq's PQexecParams(), recorded, with a parameter summary of paramValues. */
NPROF_API struct pg_result *nprof_pq_exec_params(struct pg_conn *conn, const char *command,
                                                 int nParams, const unsigned int *paramTypes,
                                                 const char *const *paramValues,
                                                 const int *paramLengths, const int *paramFormats,
                                                 int resultFormat);

/* libpq's PQprepare(): not a query of its own; the statement's text is remembered. */
NPROF_API struct pg_result *nprof_pq_prepare(struct pg_conn *conn, const char *stmtName,
                                             const char *query, int nParams,
                                             const unsigned int *paramTypes);

/* libpq's PQexecPrepared(), recorded as the prepared statement's text. */
NPROF_API struct pg_result *nprof_pq_exec_prepared(struct pg_conn *conn, const char *stmtName,
                                                   int nParams, const char *const *paramValues,
                                                   const int *paramLengths,
                                                   const int *paramFormats, int resultFormat);

/* libpq's PQsendQuery(), recorded; timed until nprof_pq_get_result() returns NULL. */
NPROF_API int nprof_pq_send_query(struct pg_conn *conn, const char *query);

/* libpq's PQsendQueryParams(), recorded and timed as nprof_pq_send_query(). */
NPROF_API int nprof_pq_send_query_params(struct pg_conn *conn, const char *command, int nParams,
                                         const unsigned int *paramTypes,
                                         const char *const *paramValues, const int *paramLengths,
                                         const int *paramFormats, int resultFormat);

/* libpq's PQsendPrepare(): not a query of its own; the statement's text is remembered. */
NPROF_API int nprof_pq_send_prepare(struct pg_conn *conn, const char *stmtName, const char *query,
                                    int nParams, const unsigned int *paramTypes);

/* libpq's PQsendQueryPrepared(), recorded and timed as nprof_pq_send_query(). */
NPROF_API int nprof_pq_send_query_prepared(struct pg_conn *conn, const char *stmtName,
                                           int nParams, const char *const *paramValues,
                                           const int *paramLengths, const int *paramFormats,
                                           int resultFormat);

/* libpq's PQgetResult(); the NULL after a query's last result ends its timing. */
NPROF_API struct pg_result *nprof_pq_get_result(struct pg_conn *conn);

/* libpq's PQpipelineSync(). */
NPROF_API int nprof_pq_pipeline_sync(struct pg_conn *conn);

/* libpq's PQfinish(): forgets the connection's statements and pending queries, then closes
 * it. */
NPROF_API void nprof_pq_finish(struct pg_conn *conn);

/* libpq's PQreset(): forgets the connection's statements and pending queries, then resets
 * it. */
NPROF_API void nprof_pq_reset(struct pg_conn *conn);

/* libpq's PQresetStart(), forgetting as nprof_pq_reset() does; returns what libpq returns. */
NPROF_API int nprof_pq_reset_start(struct pg_conn *conn);

/* ---- begin/end around the host's own libpq calls ---------------------------------------- */

/* One recorded call in progress: filled by nprof_pq_begin(), read by nprof_pq_end(). */
typedef struct nprof_pq_call {
    uint64_t start_ticks;
    nprof_runtime *rt; /* NULL: this call is not recorded (nested, excluded or disabled) */
} nprof_pq_call;

/*
 * nprof_pq_begin() starts the clock and takes the per-thread guard (libpq calls made until
 * nprof_pq_end(), through the shim or the wrappers, are not recorded again);
 * nprof_pq_end() records `query` (`query_len` bytes; parameters as libpq takes them, may be
 * 0/NULL) with the result `res` (NULL: failed) on `conn`, and releases the guard.  Every
 * begin must be ended, on the same thread.
 */
NPROF_API void nprof_pq_begin(nprof_pq_call *call);

/* Ends the call `call` begun by nprof_pq_begin() on this thread: records `query` with its
 * parameters and result `res` on `conn` (all only read during the call) and releases the
 * guard.  Failures of the recording are counted, never reported. */
NPROF_API void nprof_pq_end(nprof_pq_call *call, struct pg_conn *conn, const char *query,
                            size_t query_len, int nParams, const char *const *paramValues,
                            const int *paramLengths, const int *paramFormats,
                            const struct pg_result *res);

/* ---- what the layer did ------------------------------------------------------------------- */

/* What the layer did since it started, copied out by nprof_pq_get_stats(). */
typedef struct nprof_pq_stats {
    uint64_t recorded;           /* queries recorded */
    uint64_t in_profile;         /* of those, recorded into a current profile too */
    uint64_t failures;           /* recordings that failed inside the layer (out of memory...) */
    uint64_t aborted;            /* pipelined statements not run after an earlier error */
    uint64_t dropped_conns;      /* connections not tracked: NPROF_PQ_MAX_CONNS reached */
    uint64_t dropped_pending;    /* queries in flight not tracked: NPROF_PQ_MAX_PENDING */
    uint64_t dropped_statements; /* prepared statements not remembered */
    uint64_t unknown_statements; /* executions of statements never seen prepared */
    uint64_t conns;              /* connections tracked now */
} nprof_pq_stats;

/* Copies the layer's counters into `out`.  Thread-safe.  Errors: NPROF_EINVAL (`out` NULL).
 * The same counters are the introspection names stats.pq.<field> of the layer's runtime. */
NPROF_API int nprof_pq_get_stats(nprof_pq_stats *out);

/*
 * Appends {"pq":{<stats>},"querystats":<nprof_querystats_render_json()>} to `out`
 * (caller-owned).  When the
 * environment variable NANOPROF_PQ_DUMP names a file, the layer writes this document there
 * when the process exits (or the library is unloaded), for tools around unmodified
 * programs.  Errors: NPROF_EINVAL, NPROF_ENOMEM, NPROF_ESTATE (no runtime).
 */
NPROF_API int nprof_pq_render_json(nprof_buf *out);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: renderers are nprof_<object>_render_<format>; exclusions nprof_pq_exclude_<what>. */
#define nprof_pq_json nprof_pq_render_json
#define nprof_pq_thread_exclude nprof_pq_exclude_thread
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_PQ_H */
