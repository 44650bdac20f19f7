/*
 * nanoprof/profile.h: RequestProfile, the record of one request.
 *
 * A profile holds the request's method, path, route, request id and status; its total time
 * and the time of its three phases (middleware, routing, handler; each exclusive of the
 * phases nested inside it); its SQL queries (text, duration, parameter summary) with their
 * total; and a tree of named spans for flame graphs.
 *
 * Life of a profile:
 *     nprof_request_begin()  -> phases, spans, queries -> nprof_request_end(status)
 *     -> render (header, JSON, collapsed stacks) -> nprof_request_submit() or _discard().
 * Submitting hands the profile to the runtime's store; after submit or discard the handle
 * must not be used.
 *
 * Two ways to reach a profile, both first-class:
 *   - explicit handles: pass the nprof_profile * to every call (event loops, where many
 *     requests share one thread);
 *   - the thread's current profile: nprof_current_set() after begin, nprof_current() in code
 *     that cannot be handed the pointer (database hooks, thread-per-request servers).  It
 *     never yields a request that has ended (see "The thread's current profile" below).
 *
 * Every call that takes a profile accepts NULL and then returns NPROF_ENOPROFILE and does
 * nothing, so code can pass nprof_current() without checking whether profiling is on.
 *
 * Thread safety: a profile is owned by one thread at a time; calls on one profile must not
 * run concurrently (hand it over with your own synchronisation, as an event loop does).
 * Profiles in a store (read through a snapshot) are immutable and may be read by any thread.
 *
 * Bounds: every string is copied with its length (NUL bytes and invalid UTF-8 are data, never
 * terminators); SQL and parameter texts are cut at the configured maxima; queries beyond
 * max_queries and spans beyond max_spans (or beyond max_profile_bytes) are counted and timed
 * but not kept.  A profile never holds more than about max_profile_bytes.
 */
#ifndef NANOPROF_PROFILE_H
#define NANOPROF_PROFILE_H

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One request's profile, opaque.  Begun by nprof_request_begin(), owned by the caller until
 * nprof_request_submit() or nprof_request_discard(); see "Life of a profile" above. */
typedef struct nprof_profile nprof_profile;

/* The phases of the reference model.  Phase times are exclusive: while routing runs inside
 * middleware, the middleware clock is paused. */
enum nprof_phase {
    NPROF_PHASE_MIDDLEWARE = 0,
    NPROF_PHASE_ROUTING = 1,
    NPROF_PHASE_HANDLER = 2,
    NPROF_PHASE_COUNT = 3
};

/*
 * Starts a request.  `method` and `path` are copied (up to 16 and max_sql_bytes bytes).
 * `start_ticks` is the nprof_ticks() value at which the request started, or 0 for now (a
 * server that read the clock when the request arrived passes that value).
 * Errors: NPROF_EINVAL (`rt` or `out` NULL), NPROF_ENOPROFILE (profiling disabled: *out is
 * NULL and nothing else happened), NPROF_ENOMEM.
 */
NPROF_API int nprof_request_begin(nprof_runtime *rt, const char *method, size_t method_len,
                                  const char *path, size_t path_len, uint64_t start_ticks,
                                  nprof_profile **out);

/* Sets the request id (copied, at most 64 bytes, bytes outside printable ASCII become '_').
 * Without it, a 16-hex-digit id unique within the runtime is generated at begin.
 * Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`id` NULL with a non-zero length). */
NPROF_API int nprof_profile_set_request_id(nprof_profile *p, const char *id, size_t len);

/* Sets the route template ("/users/{id}"), copied; aggregation groups requests by it.
 * Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`route` NULL with a non-zero length),
 * NPROF_ELIMIT (no room left under max_profile_bytes: the route stays unset). */
NPROF_API int nprof_profile_set_route(nprof_profile *p, const char *route, size_t len);

/* Whether the parameter summaries of this request's queries are kept (on at begin).  A
 * middleware in production mode turns them off for the requests it does not expect anyone
 * to read (see nprof_mw_request_begin): building and redacting a summary is about a third of
 * what recording a query costs, and most requests' profiles are counted and let go.  With
 * them off, a query still keeps its summary when it is slow or failed.  NULL: no-op. */
NPROF_API void nprof_profile_set_param_summaries(nprof_profile *p, int on);

/* Whether a query of `p` that took `duration_ns` (and failed or not) keeps its parameter
 * summary: a hook asks before it builds one.  1 for NULL `p` (nothing to go by). */
NPROF_API int nprof_profile_wants_params(const nprof_profile *p, uint64_t duration_ns,
                                         int failed);

/* The same answer as a duration: a query that did not fail keeps its parameter summary when
 * it took at least this many ns (0: every query keeps it, also for NULL `p`; with summaries
 * off, 1 ns above the slow-query threshold).  It changes only with
 * nprof_profile_set_param_summaries(), which a middleware calls when the request begins, so
 * a hook that records many queries of one request can read it once, after the begin, and
 * compare each duration with it instead of reading the profile at every query. */
NPROF_API uint64_t nprof_profile_params_from_ns(const nprof_profile *p);

/*
 * Ends the request: fixes the total, closes phases and spans still open (they are marked
 * unclosed) and records the HTTP status.  From here on the profile is no thread's current
 * profile (nprof_current() returns NULL wherever it was set), so database hooks can no
 * longer record into it; its handle stays valid for reading and rendering until submit or
 * discard.  Errors: NPROF_ESTATE if already ended.
 */
NPROF_API int nprof_request_end(nprof_profile *p, int status);

/*
 * Hands an ended profile to the runtime's store (a request not yet ended is ended with status
 * 0 first).  The handle is invalid afterwards, whatever the result.  The profile is no
 * thread's current profile any more (see nprof_request_end()).
 */
NPROF_API int nprof_request_submit(nprof_profile *p);

/* Releases a profile without storing it.  Accepts NULL.  The handle is invalid afterwards,
 * and the profile is no thread's current profile any more, ended or not. */
NPROF_API void nprof_request_discard(nprof_profile *p);

/*
 * The thread's current profile.
 *
 * Each thread has one slot holding a profile together with the generation of the request
 * that was live in it when it was set.  A profile's generation changes when a request begins
 * in it and when that request ends (nprof_request_end(), or submit or discard of a request
 * not ended), so the slot can tell whether the request it was set for is still running:
 *   - nprof_current() returns the profile only while that request is live.  Once it ended,
 *     on this thread or on another, nprof_current() returns NULL and empties the slot, even
 *     when the profile has been reused for another request since (profiles are recycled) or
 *     freed.  Requests begun and ended in any order on one thread therefore never receive
 *     each other's queries, and a database hook never records into an ended request.
 *   - An end on another thread is seen by this thread once the end happens-before its call,
 *     through the lock, queue or join that hands a profile between threads anyway.
 *   - Calling nprof_current() is memory-safe whenever the slot's request has ended, also
 *     after its store or runtime was destroyed: generations are kept in memory nanoprof
 *     never gives back (64 bytes for each profile alive at once, reused).  A request still
 *     live when its runtime is destroyed is a misuse (runtime.h): nprof_runtime_destroy()
 *     empties the calling thread's slot if it holds one, other threads' slots would return
 *     a profile whose runtime is gone.
 *
 * The pointer alone cannot carry that check: a profile pointer kept by the caller may by now
 * hold another request, perhaps another thread's.  To put a previous current profile back
 * later, keep it with nprof_current_save() and give it back with nprof_current_restore(),
 * not with nprof_current_set(old_pointer).
 *
 * Thread safety: each call reads and writes only the calling thread's slot.  Cost of
 * nprof_current(): a thread-local load, a relaxed atomic load and a compare.
 */

/* The calling thread's current profile, or NULL (none set, or its request has ended). */
NPROF_API nprof_profile *nprof_current(void);

/* Makes `p` the calling thread's current profile, for the request live in it now; NULL, or
 * a profile whose request has ended, leaves the thread without one.  Returns the previous
 * current profile as nprof_current() would have (to look at, not to set back later: see
 * nprof_current_save()). */
NPROF_API nprof_profile *nprof_current_set(nprof_profile *p);

/* The calling thread's current profile as saved by nprof_current_save(): a value to copy and
 * keep anywhere.  Its fields are private.  All zero means "no current profile". */
typedef struct nprof_current_saved {
    nprof_profile *profile_;
    void *cell_;
    uint64_t generation_;
} nprof_current_saved;

/* Saves the calling thread's current profile with the generation of its request (all zero
 * when there is none).  Never fails. */
NPROF_API nprof_current_saved nprof_current_save(void);

/* Makes a saved current profile the calling thread's current again.  If its request has
 * ended since (its profile may even hold another request now), the thread is left without
 * a current profile.  Any thread may restore a value saved on another. */
NPROF_API void nprof_current_restore(nprof_current_saved saved);

/* Phases.  begin/end must pair up like brackets; ending a phase that is not the innermost open
 * one closes the phases opened inside it too.  Opens `phase` (enum nprof_phase), pausing the
 * clock of the phase open around it.  Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (bad
 * phase), NPROF_ESTATE (the request has ended). */
NPROF_API int nprof_phase_begin(nprof_profile *p, int phase);

/* Closes `phase` and any phase opened inside it, and restarts the clock of the phase around
 * it.  Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (bad phase), NPROF_ESTATE (the phase
 * is not open, or the request has ended). */
NPROF_API int nprof_phase_end(nprof_profile *p, int phase);

/* Adds time measured by the caller to a phase (no span is created).  Errors:
 * NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (bad phase), NPROF_ESTATE (the request ended). */
NPROF_API int nprof_phase_add_ns(nprof_profile *p, int phase, uint64_t ns);

/* Span parents for nprof_span_begin_ex(). */
#define NPROF_SPAN_ROOT (-1)    /* directly under the request */
#define NPROF_SPAN_CURRENT (-2) /* under the innermost open span of this profile */

/* Flags for nprof_span_begin_ex(). */
#define NPROF_SPAN_STATIC_NAME 1u /* `name` outlives the runtime: kept by pointer, not copied */

/*
 * Opens a span and returns its id (>= 0: an int result that is not only a code), or a
 * negative code: NPROF_ENOPROFILE (`p` NULL), NPROF_ELIMIT when max_spans or
 * max_profile_bytes is reached (the span is counted as dropped; its children attach to its
 * parent), NPROF_ESTATE after the request ended, NPROF_EINVAL for a bad parent.
 *
 * With NPROF_SPAN_CURRENT the new span becomes the innermost open span; with an explicit
 * parent (async code where sibling tasks interleave) it does not change which span is
 * innermost, so concurrent tasks of one request can each keep their own subtree.
 */
NPROF_API int nprof_span_begin_ex(nprof_profile *p, int parent, const char *name,
                                  size_t name_len, unsigned flags);

/* nprof_span_begin_ex(p, NPROF_SPAN_CURRENT, name, len, 0): the name is copied.  Returns the
 * span id (>= 0) or a negative code, as nprof_span_begin_ex(). */
NPROF_API int nprof_span_begin(nprof_profile *p, const char *name, size_t name_len);

/* nprof_span_begin_ex(p, NPROF_SPAN_CURRENT, name, len, NPROF_SPAN_STATIC_NAME): `name` is
 * borrowed and must outlive the runtime.  Returns the span id (>= 0) or a negative code. */
NPROF_API int nprof_span_begin_static(nprof_profile *p, const char *name, size_t name_len);

/*
 * Closes span `id` (and any span opened inside it under NPROF_SPAN_CURRENT that is still
 * open).  A negative `id` (a failed begin) is returned unchanged and nothing happens, so
 * begin/end pairs need no error handling.  Errors: NPROF_EINVAL (unknown id), NPROF_ESTATE
 * (already closed).
 */
NPROF_API int nprof_span_end(nprof_profile *p, int id);

/*
 * Where a query came from, asked for only when the profile keeps it (see nprof_query.callsite):
 * writes at most `cap` bytes (cap is NPROF_CALLSITE_MAX; no NUL needed) naming the application
 * code that issued the query, as "path/to/file.py:42 in function", and returns how many it
 * wrote (0: none known).  Called on the recording thread, during nprof_query_record(), at most
 * once per query; it must not record into the same profile.
 */
typedef size_t (*nprof_callsite_fn)(void *user, char *buf, size_t cap);

/* Bytes of a call site a profile or a slow-query log keeps. */
#define NPROF_CALLSITE_MAX 256
/* Bytes of a query's error text a profile keeps. */
#define NPROF_QUERY_ERROR_MAX 256

/* One SQL query to record.  Zero what you do not set: `{.sql = s, .sql_len = n, ...}`. */
typedef struct nprof_query {
    const char *sql;         /* the query text as sent; copied, cut at max_sql_bytes */
    size_t sql_len;
    const char *params;      /* a short parameter summary or NULL; copied, cut */
    size_t params_len;
    uint64_t duration_ns;    /* how long it took */
    uint64_t start_ticks;    /* nprof_ticks() when it was sent; 0: it ended just now */
    uint64_t fingerprint;    /* shape fingerprint from the SQL layer, 0 if none */
    const char *normalized;  /* normalized text from the SQL layer, or NULL; copied */
    size_t normalized_len;
    unsigned flags;          /* NPROF_QUERY_* */
    uint32_t batch_rows;     /* an executemany or other batched statement: the parameter sets
                                (rows) it ran, recorded as one query; 0: a single statement */
    const char *error;       /* what the query raised or returned as its error, or NULL (it
                                succeeded); copied, cut at NPROF_QUERY_ERROR_MAX bytes */
    size_t error_len;
    nprof_callsite_fn callsite; /* NULL, or asked for the query's call site when it is the
                                first query of its fingerprint in the profile or a slow one
                                (over opt.slow_query_threshold_ms): only those keep one, so
                                the cost of finding it is paid only on them */
    void *callsite_user;     /* passed to `callsite` */
    uint64_t params_hash;    /* the parameter values' identity, for counting exact duplicates
                                (same text, same values): a hash the hook takes of the values
                                themselves, never 0.  0: not given, and the summary `params`
                                is hashed instead; give it whenever the hook has the values,
                                since a summary is left out (production mode), cut and
                                redacted, and would make different values look the same */
} nprof_query;

/* nprof_query.flags: recorded and timed, but not counted under its shape (no N+1 pattern,
 * no duplicate): what the SQL layer's ignore rules (opt.sql_ignore) mark. */
#define NPROF_QUERY_UNCOUNTED 1u
/* nprof_query.flags: the hook that recorded it has already sent it to a slow-query log, so
 * nprof_slowlog_enqueue_profile() (and a middleware's log) leaves it out. */
#define NPROF_QUERY_LOGGED 2u

/*
 * Records a query into the profile, under the innermost open span.  Counts and times every
 * query; keeps the first max_queries in full.  A query with a fingerprint is also counted under
 * its shape (see nprof_profile_get_pattern(): N+1 patterns and exact duplicates); the SQL
 * layer's nprof_sql_record() fills the fingerprint and normalized text.  Returns NPROF_OK, or
 * NPROF_ELIMIT when the query was counted but not kept, NPROF_ESTATE after the request ended,
 * NPROF_EINVAL when `q` is NULL or `q->sql` (or params, normalized, error) is NULL with a
 * non-zero length.
 *
 * Call sites: `q->callsite`, when set, is called at most once, before this returns, and only
 * when the query is the first of its fingerprint in this profile (counted under its shape:
 * not with fingerprint 0 or NPROF_QUERY_UNCOUNTED; the call site is kept on the shape,
 * nprof_pattern_info.callsite, even when the query itself is not kept) or slow and kept (the
 * call site is kept on the query).  A kept first-of-shape query has it on both.  Any other
 * query never calls it.  It gets a zeroed buffer of NPROF_CALLSITE_MAX bytes; a return value
 * above that counts as NPROF_CALLSITE_MAX and 0 keeps none.  The bytes are copied into the
 * profile (any bytes: renderers escape them).
 */
NPROF_API int nprof_query_record(nprof_profile *p, const nprof_query *q);

/* A read-only view of a profile's scalar fields.  String pointers stay valid as long as the
 * profile does and are not NUL-terminated: use the lengths. */
typedef struct nprof_profile_info {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *route; /* "" when unset */
    size_t route_len;
    const char *request_id;
    size_t request_id_len;
    int status;
    int ended;
    uint64_t start_ns;      /* on the nprof_now_ns() time line */
    uint64_t total_ns;      /* 0 until ended */
    uint64_t middleware_ns;
    uint64_t routing_ns;
    uint64_t handler_ns;
    uint64_t sql_total_ns;  /* every query, kept or not */
    uint64_t sql_count;     /* every query, kept or not */
    size_t queries_kept;
    uint64_t queries_dropped;
    size_t span_count;
    uint64_t spans_dropped;
    size_t memory_bytes;    /* what the profile holds */
    uint64_t slow_count;        /* queries over opt.slow_query_threshold_ms */
    uint64_t exact_repeats;     /* queries that repeated an earlier one's text and parameters */
    size_t pattern_count;       /* distinct query shapes (fingerprints) */
    size_t n_plus_one_count;    /* shapes seen at least opt.n_plus_one_threshold times */
    uint64_t patterns_dropped;  /* queries whose shape could not be counted (too many shapes) */
} nprof_profile_info;

/* Fills `out` with the profile's scalar fields, as they stand now (while the request runs,
 * totals are the figures so far).  Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`out`
 * NULL). */
NPROF_API int nprof_profile_get_info(const nprof_profile *p, nprof_profile_info *out);

/* One kept query, filled by nprof_profile_get_query().  Strings point into the profile, stay
 * valid as long as it does and are not NUL-terminated: use the lengths. */
typedef struct nprof_query_info {
    const char *sql;
    size_t sql_len;         /* bytes kept */
    size_t sql_full_len;    /* bytes the query had; larger than sql_len when cut */
    const char *params;     /* NULL when none */
    size_t params_len;
    const char *normalized; /* NULL when none */
    size_t normalized_len;
    uint64_t fingerprint;
    uint64_t duration_ns;
    uint64_t start_offset_ns; /* from the start of the request */
    int span;               /* innermost open span when recorded, NPROF_SPAN_ROOT if none */
    int slow;               /* over opt.slow_query_threshold_ms */
    uint32_t batch_rows;    /* nprof_query.batch_rows */
    unsigned flags;         /* nprof_query.flags */
    const char *error;      /* NULL when it succeeded */
    size_t error_len;
    const char *callsite;   /* NULL unless it was the first of its shape or slow and the
                               recorder gave one (nprof_query.callsite) */
    size_t callsite_len;
} nprof_query_info;

/* One query shape of the request: every query recorded with the same fingerprint.  Filled
 * by nprof_profile_get_pattern(); strings point into the profile, not NUL-terminated. */
typedef struct nprof_pattern_info {
    uint64_t fingerprint;
    const char *normalized;   /* of the first kept query of this shape; NULL if none kept */
    size_t normalized_len;
    const char *example;      /* the first kept query's text; NULL if none kept */
    size_t example_len;
    uint64_t count;           /* queries of this shape */
    uint64_t exact_repeats;   /* of which repeated an earlier query's text and parameters:
                                 duplicates, as opposed to similar queries */
    uint64_t slow_count;
    uint64_t total_ns;
    uint64_t max_ns;
    int n_plus_one;           /* count >= opt.n_plus_one_threshold */
    const char *callsite;     /* where the shape's first query was issued, NULL if unknown */
    size_t callsite_len;
} nprof_pattern_info;

/* Fills `out` with shape number `index`, in the order the shapes were first seen.  Errors:
 * NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`out` NULL), NPROF_ENOENT past the end
 * (nprof_profile_info.pattern_count shapes). */
NPROF_API int nprof_profile_get_pattern(const nprof_profile *p, size_t index,
                                        nprof_pattern_info *out);

/* Fills `out` with query number `index` of the kept ones (nprof_profile_info.queries_kept).
 * Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`out` NULL), NPROF_ENOENT past the end. */
NPROF_API int nprof_profile_get_query(const nprof_profile *p, size_t index, nprof_query_info *out);

/* One span, filled by nprof_profile_get_span().  `name` points into the profile (or is the
 * static name given), not NUL-terminated. */
typedef struct nprof_span_info {
    const char *name;
    size_t name_len;
    int parent;               /* NPROF_SPAN_ROOT or a span id */
    int phase;                /* enum nprof_phase when the span is a phase, else -1 */
    int unclosed;             /* closed by the end of the request, not by span_end */
    uint64_t start_offset_ns; /* from the start of the request */
    uint64_t duration_ns;     /* 0 while open */
} nprof_span_info;

/* Fills `out` with span number `index` (== its id; nprof_profile_info.span_count spans).
 * Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`out` NULL), NPROF_ENOENT past the end. */
NPROF_API int nprof_profile_get_span(const nprof_profile *p, size_t index, nprof_span_info *out);

/* Bytes that always hold an X-Profile value with its NUL (nprof_profile_render_header()). */
#define NPROF_HEADER_MAX 256

/*
 * Renders the X-Profile header value:
 *     total=1.2ms handler=0.8ms sql=0.3ms(2q) middleware=0.1ms routing=45ns
 * Each value in its own unit (ns below 1 us, us with one decimal below 100 us, ms with one
 * decimal below 1 s, s with two decimals above).  Writes at most `cap` bytes including a NUL;
 * *out_len (may be NULL) receives the length without the NUL.  Errors: NPROF_ENOPROFILE (`p`
 * NULL), NPROF_ERANGE if `cap` is too small or `buf` NULL (`buf` is left as it was and
 * *out_len holds the length needed; NPROF_HEADER_MAX always suffices).  Never allocates.
 */
NPROF_API int nprof_profile_render_header(const nprof_profile *p, char *buf, size_t cap,
                                          size_t *out_len);

/*
 * Formats a duration of `ns` nanoseconds the way the header does ("45ns", "12.5us", "1.2ms",
 * "2.50s") into `buf` (at most `cap` bytes including the NUL).  *out_len (may be NULL)
 * receives the length without the NUL, also after NPROF_ERANGE.  Returns NPROF_OK, or
 * NPROF_ERANGE when `cap` is too small (`buf` is left as it was; 16 bytes always suffice;
 * `buf` NULL with `cap` 0 only measures), NPROF_EINVAL when `buf` is NULL and `cap` is not 0.
 * Thread-safe, never allocates.
 */
NPROF_API int nprof_duration_format(uint64_t ns, char *buf, size_t cap, size_t *out_len);

/*
 * Appends the profile as one JSON object to `out` (caller-owned, see nprof_buf), with the
 * reference keys (method, path, total_ns, total, middleware_ns, routing_ns, handler_ns,
 * sql_total_ns, sql_count, queries [{sql, duration_ns, duration}]) and ours (route, request_id,
 * status, start_ns, queries_dropped, spans, ...).  A query object also has "callsite" (a
 * string) when it kept one, "rows" (nprof_query.batch_rows) when above 0 and "error" (a
 * string) when it failed; an entry of "n_plus_one" and "duplicates" has "callsite" when its
 * shape's first query gave one.  A profile with sampled stacks (nprof_profile_add_sample())
 * has "samples": {sampled_ns, samples, dropped, dropped_ns, stacks: [{frames: [names as
 * given, outermost first], libs (only when a frame has one: a library or null per frame),
 * ns, count, sql}]}, stacks in first-seen order.  The output is valid JSON and valid UTF-8
 * whatever bytes the strings held: control characters are escaped and invalid UTF-8 becomes
 * U+FFFD.  Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`out` NULL), NPROF_ENOMEM.
 */
NPROF_API int nprof_profile_render_json(const nprof_profile *p, nprof_buf *out);

/*
 * Appends the profile as collapsed stacks ("request;handler;sql;SELECT ... 150000\n"), one
 * line per distinct stack with its self time in ns, for speedscope and FlameGraph.  Frame
 * names never contain ';' or line breaks (they become ':' and ' ').
 * Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`out` NULL), NPROF_ENOMEM.
 */
NPROF_API int nprof_profile_render_collapsed(const nprof_profile *p, nprof_buf *out);

/* ---- sampled call stacks -------------------------------------------------------------------
 *
 * A sampling profiler (the Python extension's, or any other) adds the call stacks it saw
 * while the request ran, each weighted by the wall time it stands for; the profile merges
 * identical stacks (summing time and counting samples) and renders them with the request's
 * other outputs.  A query recorded with the stack that issued it is added the same way with
 * NPROF_SAMPLE_SQL, so one tree shows "view;serializer;ORM;SQL SELECT ... (12 x 3.1ms)".
 */

/* One frame of a sampled stack.  `name` reads like "article_list (blog/views.py:42)"; `lib`
 * names the library the frame belongs to ("django", "sqlalchemy"), NULL for application code,
 * so views can collapse a run of one library's frames into one.  Both are copied. */
typedef struct nprof_frame {
    const char *name;
    size_t name_len;
    const char *lib;
    size_t lib_len;
} nprof_frame;

/* nprof_profile_add_sample() flags: the innermost frame is a query's text, named as it should
 * read ("SQL SELECT ..."; views add " (count x mean)"), and the sample stands for one
 * execution of it (count is executions, not timer ticks), weighted by its duration. */
#define NPROF_SAMPLE_SQL 1u

/* The most frames a kept stack has (the "[truncated]" frame included). */
#define NPROF_SAMPLE_MAX_DEPTH 128

/*
 * Adds one sampled stack, `frames[0]` the outermost and `frames[n - 1]` the innermost, standing
 * for `weight_ns` of wall time.  Identical stacks (same frames, names and libraries, same
 * flags) are merged.  Frames are copied as given (any bytes: renderers escape them); names
 * are kept up to 1024 bytes, libraries up to 128, and a query's text (NPROF_SAMPLE_SQL) up to
 * max_sql_bytes.  Stacks deeper than NPROF_SAMPLE_MAX_DEPTH keep their outermost frames and
 * "[truncated]" (then the query's frame, for NPROF_SAMPLE_SQL); beyond max_profile_bytes the
 * sample is not kept but its time is (under "[dropped]").  n == 0 is a sample with no frames
 * ("[no frames]").  Add samples before the request ends (nprof_request_end(), which
 * nprof_mw_request_end() calls).  Not thread-safe: like every call on a profile (see the
 * top), the sampler must not run it concurrently with the request's own calls.
 * Errors: NPROF_ENOPROFILE (`p` NULL), NPROF_EINVAL (`frames` NULL with n > 0, a frame's name
 * or library NULL with a non-zero length, unknown flags), NPROF_ESTATE (the request has
 * ended), NPROF_ELIMIT (counted under "[dropped]", not kept).
 */
NPROF_API int nprof_profile_add_sample(nprof_profile *p, const nprof_frame *frames, size_t n,
                                       uint64_t weight_ns, unsigned flags);

/* Samples a profile holds: the distinct stacks kept, the samples and time they stand for. */
typedef struct nprof_samples_info {
    size_t stacks;        /* distinct stacks kept */
    uint64_t samples;     /* every nprof_profile_add_sample() call that was accepted */
    uint64_t sampled_ns;  /* their summed weight, kept or dropped */
    uint64_t dropped;     /* samples not kept (limits) */
    uint64_t dropped_ns;  /* their summed weight, rendered as the "[dropped]" stack */
} nprof_samples_info;

/* Fills `out` with the profile's sample counts.  Errors: NPROF_ENOPROFILE (`p` NULL),
 * NPROF_EINVAL (`out` NULL). */
NPROF_API int nprof_profile_get_samples_info(const nprof_profile *p, nprof_samples_info *out);

/* Formats of a profile's sampled stacks (nprof_profile_render_samples()). */
enum nprof_samples_format {
    NPROF_SAMPLES_COLLAPSED = 0,  /* "frame;frame;frame ns" lines */
    NPROF_SAMPLES_SPEEDSCOPE = 1, /* speedscope's file format (a "sampled" profile) */
    NPROF_SAMPLES_CHROME = 2,     /* Chrome Trace Event format */
    NPROF_SAMPLES_SVG = 3         /* a flame graph drawn as a self-contained SVG; a click on
                                     a frame zooms (an inline script, which a page's
                                     Content-Security-Policy may block: the graph stays) */
};

/* Render options: NPROF_SAMPLES_COLLAPSE_LIBS merges each run of frames of one library into
 * a single "[lib]" frame. */
#define NPROF_SAMPLES_COLLAPSE_LIBS 1u

/*
 * Appends the profile's sampled stacks to `out` in `format` with `flags`
 * (NPROF_SAMPLES_*).  Every format shows the same frames: names cleaned as in
 * nprof_profile_render_collapsed() (';' becomes ':', control bytes spaces, at most 256
 * bytes), a query's stack ending in "<its frame> (<count> x <mean>)", and time that was not
 * kept under "[dropped]".  Collapsed lines are sorted by stack; the Chrome trace lays the
 * merged stacks out as a flame graph (nested complete events from 0, in microseconds), not
 * as a timeline.  A profile without samples renders an empty but valid document.  Output is
 * valid UTF-8 (and valid JSON/SVG for those formats) whatever bytes the frames held; the
 * raw frames are in nprof_profile_render_json()'s "samples".  Errors: NPROF_ENOPROFILE,
 * NPROF_EINVAL (bad format or flags, `out` NULL), NPROF_ENOMEM.
 */
NPROF_API int nprof_profile_render_samples(const nprof_profile *p, int format, unsigned flags,
                                           nprof_buf *out);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: the renderers are nprof_profile_render_<format>, getters nprof_profile_get_<what>. */
#define nprof_profile_json nprof_profile_render_json
#define nprof_profile_collapsed nprof_profile_render_collapsed
#define nprof_profile_header nprof_profile_render_header
#define nprof_profile_pattern nprof_profile_get_pattern
#define nprof_profile_query nprof_profile_get_query
#define nprof_profile_span nprof_profile_get_span

/* nprof_format_duration(ns, buf, cap), renamed nprof_duration_format(), which returns
 * NPROF_OK and the length in *out_len: the old call, returning the length or NPROF_ERANGE. */
static inline int nprof_format_duration(uint64_t ns, char *buf, size_t cap)
{
    size_t len = 0;
    int rc = nprof_duration_format(ns, buf, cap, &len);
    return rc < 0 ? rc : (int)len;
}
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_PROFILE_H */
