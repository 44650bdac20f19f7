/*
 * nanoprof/middleware.h: the request lifecycle of a web framework, written once in C, so
 * that every adapter (a Python ASGI or Django middleware, a C HTTP server, Zig) is a thin
 * layer over it: the reference document's PerformanceMiddleware.
 *
 * One middleware object is created over a runtime.  Per request, an adapter calls
 *
 *     nprof_mw_handle()          is this a dashboard request?  If so, send what it returns
 *                                and stop here (dashboard requests are not profiled).
 *     nprof_mw_request_begin()   method, path, query string, route if known, header lookup
 *     nprof_mw_mark_phase()      marks: middleware -> routing -> handler (optional)
 *     nprof_mw_set_route()       when the router found the route template (optional)
 *     nprof_mw_get_response_headers()  status -> the headers, when they must go out
 *                                before the body is done (streamed responses; optional)
 *     nprof_mw_request_end()     status -> the headers to add (and, for ?profile=json, the
 *                                body to send instead of the handler's)
 *
 * Between begin and end, the request's profile is st->profile (explicit-handle style, for
 * event loops) and, unless opts.set_current is 0, also the thread's nprof_current() (for
 * database hooks and thread-per-request servers); nprof_sql_record() and every call of
 * profile.h work on it.
 *
 * The thread's current profile (opts.set_current) follows these rules, whatever order
 * requests begin and end in on a thread (an event loop running several at once):
 *   - begin makes the new request current and saves the one current before it, with the
 *     generation of its request (nprof_current_save());
 *   - end puts the saved one back only if this request is still the thread's current: ending
 *     A while B, begun after it, is current leaves B current;
 *   - a saved request that has ended meanwhile comes back as none, never as its profile
 *     (which may hold another request by then): nprof_current() returns NULL;
 *   - from the moment a request ends (nprof_request_end(), which nprof_mw_request_end()
 *     calls) it is no thread's current, so database hooks cannot record into it.
 * So with requests interleaved on one thread, nprof_current() is a request still running
 * or NULL, never one that has ended; after out-of-order ends it may be NULL while older
 * requests still run.  An event loop that resumes several requests in turn should set the
 * one it resumes (nprof_current_set(st->profile)) or pass st->profile explicitly.
 *
 * What end does: every request is measured and aggregated (per METHOD + route template, see
 * NPROF_MW_OTHER_METHOD: count, status classes, latency percentiles from a log-linear
 * histogram, queries, SQL time; and totals, N+1 patterns), with no lock shared between
 * threads on the way; 1 in opts.sample_every requests is kept in full in the runtime's store,
 * and every slow, failed (5xx), N+1, over-budget or explicitly profiled request too.
 *
 * Options shared with the runtime (enabled, production, max_history,
 * slow_query_threshold_ms, n_plus_one_threshold) are read from the runtime's configuration
 * (nprof_runtime_config(), NANOPROF_CONF); the rest are in nprof_mw_options.
 *
 * Development and production (opt.production of the runtime):
 *   - development: headers on every profiled response; ?profile=1, ?profile=json and
 *     ?profile=flame are honoured; the dashboard is served without a token;
 *   - production: headers only on requests that ask with ?profile=1 (or json, or flame) and
 *     carry the token; the dashboard needs the token too, and is off when no token is
 *     configured.
 * ?profile=flame gets the headers of ?profile=1, plus X-Profile-Flame (the dashboard path of
 * its flame graph, "<dashboard_path>/requests/<request_id>/flame.svg"), and sets
 * st->sample_stacks: the adapter's
 * sampler records the request's call stacks (nprof_profile_add_sample()), and the request is
 * kept in the store, where the dashboard serves its flame graph.  Besides those, one request
 * in opt.stack_sample_every (counted across threads; 0: none) gets st->sample_stacks too.
 * The token travels in the X-Profile-Token header or the profile_token query parameter and
 * is compared in constant time.  A wrong or missing token makes ?profile= be ignored (the
 * request is served normally) and a dashboard request answer 403.
 *
 * Thread safety: every function may be called from any thread at once, except
 * nprof_mw_destroy().  An nprof_mw_state belongs to one request; its calls must
 * not run concurrently (hand it over with your own synchronisation, as an event loop does).
 */
#ifndef NANOPROF_MIDDLEWARE_H
#define NANOPROF_MIDDLEWARE_H

#include "common.h"
#include "profile.h"
#include "runtime.h"
#include "slowlog.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The middleware, opaque: made by nprof_mw_create() over a runtime, freed by
 * nprof_mw_destroy().  (Its old name nprof_middleware is a deprecated alias.) */
typedef struct nprof_mw nprof_mw;

/* A route rule: every match of `pattern` (PCRE2, over the path) is replaced by
 * `replacement` (literal text).  Both NUL-terminated, copied at create. */
typedef struct nprof_mw_route_rule {
    const char *pattern;
    const char *replacement;
} nprof_mw_route_rule;

/* A per-route query budget.  `route` is a route template ("/users/{id}"), a method and a
 * template ("GET /users/{id}"), or "*" for every route without a budget of its own.
 * A request over either limit is flagged (X-Query-Budget header, dashboard). */
typedef struct nprof_mw_budget {
    const char *route;   /* NUL-terminated, copied at create */
    uint32_t max_queries; /* 0: no limit on the count */
    double max_sql_ms;    /* 0: no limit on SQL time */
} nprof_mw_budget;

/* When the per-request headers are produced. */
enum nprof_mw_headers_mode {
    NPROF_MW_HEADERS_AUTO = 0,    /* development: always; production: on ?profile= with token */
    NPROF_MW_HEADERS_ALWAYS = 1,  /* on every profiled response */
    NPROF_MW_HEADERS_ON_REQUEST = 2 /* only on ?profile= requests that are allowed */
};

/* How to build a middleware: fill with nprof_mw_options_init(), then change fields;
 * nprof_mw_create() copies what it keeps.  Defaults in parentheses. */
typedef struct nprof_mw_options {
    const char *dashboard_path; /* "/debug/performance"; NULL or "" turns the dashboard off.
                                   Copied at create; at most 200 bytes, starting with '/' */
    const char *token;          /* access token for the dashboard and ?profile= in production
                                   (NULL: none); copied, at most 256 bytes */
    uint32_t sample_every;      /* keep 1 in N ordinary requests in the store; 1 keeps all;
                                   0 (the default): 1 in development, 10 in production */
    double slow_request_ms;     /* a request slower than this is always kept (500.0) */
    int headers;                /* enum nprof_mw_headers_mode (AUTO) */
    int set_current;            /* begin makes the profile the thread's current one (1) */
    int default_route_rules;    /* numeric ids, UUIDs and hex runs of 16+ digits in a path
                                   segment become {id} (1) */
    const nprof_mw_route_rule *route_rules; /* applied after the default rule, in order */
    size_t route_rule_count;
    const nprof_mw_budget *budgets; /* copied at create */
    size_t budget_count;
    uint32_t max_routes;        /* distinct METHOD + route rows; later ones are counted under
                                   "{other}" (500) */
    uint32_t max_n_plus_one;    /* distinct N+1 patterns tracked (256) */
    uint32_t refresh_seconds;   /* dashboard auto-refresh period, 0: none (5) */
    uint32_t dashboard_items;   /* rows in each recent list of the dashboard (50) */
    nprof_slowlog *slowlog;     /* a slow-query log (slowlog.h) or NULL.  Borrowed: it must
                                   outlive the middleware.  When set, the slow queries of every
                                   request go into it (never blocking: see
                                   nprof_slowlog_enqueue_profile), and the dashboard shows the
                                   cluster view: the top fingerprints of every process writing
                                   into its table (NULL) */
    uint32_t cluster_since_s;   /* the cluster view covers this many seconds, 0: all rows
                                   (3600) */
} nprof_mw_options;

/* Fills `opts` with the documented defaults above.  Accepts NULL.  Never fails. */
NPROF_API void nprof_mw_options_init(nprof_mw_options *opts);

/*
 * Creates a middleware over `rt` (which must outlive it) with `opts` (NULL: the defaults),
 * into *out (the caller's: destroy it).
 * Errors: NPROF_EINVAL (NULL `rt`/`out`, a dashboard path not starting with '/' or too long,
 * a token too long, a rule or budget with NULL strings), NPROF_EPARSE (a route rule that is
 * not a valid PCRE2 pattern; nprof_last_error_detail() says where), NPROF_ENOMEM.
 */
NPROF_API int nprof_mw_create(nprof_runtime *rt, const nprof_mw_options *opts, nprof_mw **out);

/* Frees the middleware and its aggregates.  Accepts NULL.  No request may be in flight. */
NPROF_API void nprof_mw_destroy(nprof_mw *mw);

/* The runtime the middleware was created over; NULL when `mw` is NULL.  Thread-safe. */
NPROF_API nprof_runtime *nprof_mw_runtime(const nprof_mw *mw);

/*
 * Looks up a request header by name (ASCII case-insensitive), for the token.  Returns the
 * value (not necessarily NUL-terminated) and its length in *value_len, or NULL when absent.
 */
typedef const char *(*nprof_mw_header_fn)(void *user, const char *name, size_t name_len,
                                          size_t *value_len);

/* A request as the adapter sees it.  Strings are given with their lengths and only read
 * during the call they are passed to. */
typedef struct nprof_mw_request {
    const char *method;
    size_t method_len;
    const char *path;         /* without the query string */
    size_t path_len;
    const char *query;        /* the raw query string without '?', or NULL */
    size_t query_len;
    const char *route;        /* the framework's route template, or NULL (then rules apply) */
    size_t route_len;
    nprof_mw_header_fn header; /* may be NULL */
    void *user;
    uint64_t start_ticks;     /* nprof_ticks() when the request arrived, 0: now */
} nprof_mw_request;

/* What a request asked for with ?profile= and was allowed. */
enum nprof_mw_profile_mode {
    NPROF_MW_PROFILE_NONE = 0,
    NPROF_MW_PROFILE_HEADER = 1, /* ?profile=1: headers on this response */
    NPROF_MW_PROFILE_JSON = 2,   /* ?profile=json: the profile is the response body */
    NPROF_MW_PROFILE_FLAME = 3   /* ?profile=flame: headers, and the request's call stacks are
                                    sampled (st->sample_stacks) */
};

/* The state of one request, owned by the adapter (on its stack or in its request object). */
typedef struct nprof_mw_state {
    nprof_profile *profile; /* NULL when profiling is off */
    int profile_mode;       /* enum nprof_mw_profile_mode */
    int authorized;         /* development mode, or a request that asks with ?profile=
                               and gives the right token (production looks for the token
                               only then) */
    int sample_stacks;      /* sample this request's call stacks: ?profile=flame, or picked
                               by opt.stack_sample_every; the adapter's sampler adds them
                               with nprof_profile_add_sample() (every opt.
                               stack_sample_interval_ms) before nprof_mw_request_end() */
    int wants_headers;      /* this response gets nanoprof's headers (development mode with
                               opts.headers "auto", "always", or a ?profile= that was
                               allowed): nprof_mw_get_response_headers() and end fill them
                               only then, so an adapter may skip asking when it is 0 */
    /* private */
    nprof_mw *mw_;
    nprof_current_saved prev_current_; /* the thread's current before begin */
    int mark_phase_;        /* phase opened by nprof_mw_mark_phase(), or -1 */
    int route_set_;
    int sampled_;           /* one of the 1 in sample_every ordinary requests kept */
} nprof_mw_state;

/* One header.  `name` is static; `value` points into the owning header set; both are
 * NUL-terminated as well as counted. */
typedef struct nprof_mw_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} nprof_mw_header;

/* The room of an nprof_mw_headers: headers it holds, and bytes of their values. */
#define NPROF_MW_MAX_HEADERS 8
#define NPROF_MW_HEADER_BYTES 3072

/* A set of headers in memory the caller owns.  Values hold only bytes 0x20-0x7E (never CR,
 * LF or other control or non-ASCII bytes), whatever the SQL or the paths contained. */
typedef struct nprof_mw_headers {
    size_t count;
    nprof_mw_header items[NPROF_MW_MAX_HEADERS];
    size_t used_;
    char bytes_[NPROF_MW_HEADER_BYTES];
} nprof_mw_headers;

/*
 * Starts a request: parses ?profile= and the token, begins the profile, opens the
 * middleware phase mark and (opts.set_current) makes the profile the thread's current one.
 * `st` is always initialised, so end can be called whatever happened.
 * Returns NPROF_OK, NPROF_ENOPROFILE (profiling disabled: st->profile is NULL, end does
 * nothing), NPROF_EINVAL (NULL argument), NPROF_ENOMEM.
 */
NPROF_API int nprof_mw_request_begin(nprof_mw *mw, const nprof_mw_request *req,
                                     nprof_mw_state *st);

/* Phase mark: closes the phase opened by the previous mark and opens `phase`
 * (enum nprof_phase); -1 just closes.  Sequential, for adapters that see the request move
 * from middleware to routing to handler.  Nested phases: use nprof_phase_begin/end on
 * st->profile instead.  Errors: NPROF_ENOPROFILE (no profile), NPROF_EINVAL (bad phase),
 * and those of nprof_phase_begin(). */
NPROF_API int nprof_mw_mark_phase(nprof_mw_state *st, int phase);

/* The route template, when the framework learns it after begin (copied).  Errors:
 * NPROF_ENOPROFILE (no profile), and those of nprof_profile_set_route(). */
NPROF_API int nprof_mw_set_route(nprof_mw_state *st, const char *route, size_t len);

/*
 * Ends the request with HTTP `status`: closes the profile, aggregates it, fills `headers`
 * (may be NULL; reset first) with X-Profile, Server-Timing, X-Query-Count, X-Slow-Queries,
 * X-N-Plus-One (when there are patterns: RFC 8941 strings `"<sql>";count=N`, followed by
 * `;site="<call site>"` when the shape's first query gave one, cut at 120 bytes with "...")
 * X-Query-Budget (when over budget) and X-Profile-Flame (?profile=flame) if the mode
 * asks for them, and keeps or recycles the profile.  For a ?profile=json request, the
 * profile is appended to `json_body` (may be NULL) as JSON and *json_replaces_body (may be
 * NULL) is set to 1: send it as application/json instead of the handler's body.
 * Puts back the thread's previous current profile if this request is still the current one
 * (see the rules at the top).  `st->profile` is NULL afterwards.
 * Returns NPROF_OK or NPROF_ENOPROFILE (nothing to end).
 */
NPROF_API int nprof_mw_request_end(nprof_mw_state *st, int status, nprof_mw_headers *headers,
                                   nprof_buf *json_body, int *json_replaces_body);

/*
 * Renders, into `headers` (reset first), the headers nprof_mw_request_end() would give for
 * `status`, as the request stands now: the total is the time so far and the phase open now
 * counts up to now (so X-Profile's total still covers the phases it shows).  The request is
 * not ended: a streamed body goes on, queries still count, and nprof_mw_request_end() later
 * aggregates the final figures and may be given NULL headers.  For adapters that must send
 * the headers when the response starts (ASGI http.response.start, WSGI start_response).
 * Same header-mode rules (development/production, ?profile=, token) as
 * nprof_mw_request_end(): when the mode gives no headers, `headers` is left empty.  A
 * ?profile=json request gets its headers here too, but its body (the profile as JSON) is
 * only known at end: an adapter that sees st->profile_mode == NPROF_MW_PROFILE_JSON holds
 * the response back until then.  `status` is what the response will carry (no header
 * depends on it today).  May be called more than once.
 * Errors: NPROF_ENOPROFILE when st has no profile (profiling off, or already ended),
 * NPROF_EINVAL for NULL arguments.
 */
NPROF_API int nprof_mw_get_response_headers(nprof_mw_state *st, int status,
                                            nprof_mw_headers *headers);

/* A dashboard response. */
typedef struct nprof_mw_response {
    int status;               /* 200, 403, 404 or 405 */
    const char *content_type; /* static */
    nprof_mw_headers headers; /* Content-Security-Policy, Cache-Control, ... */
    nprof_buf body;           /* release with nprof_mw_response_free() */
} nprof_mw_response;

/*
 * Serves the dashboard.  Returns 1 (an int result that is not only a code) when `req` is a
 * dashboard request (its path is
 * dashboard_path or one of the exports below it) and `out` holds the response to send;
 * 0 when it is not (send it to the application; `out` is empty); a negative code on error
 * (NPROF_EINVAL, NPROF_ENOMEM).  Paths under dashboard_path:
 *     ""                 the HTML dashboard (self-contained; CSP with a per-response nonce)
 *     /json              totals, routes (each with its latency histogram), a per-second
 *                        timeline, slow queries, N+1 patterns, slowest requests,
 *                        memory, clock, and with a slow-query log the cluster view
 *                        (one database round trip per render)
 *     /metrics           Prometheus text exposition format 0.0.4
 *     /flamegraph.txt    collapsed stacks of the stored requests
 *     /flamegraph.svg    the same as an SVG flame graph
 *     /trace.json        Chrome Trace Event format of the stored requests (Perfetto)
 *     /requests/<request_id>/flame.svg, flame.txt, speedscope.json, trace.json
 *                        a stored request's sampled call stacks
 *                        (nprof_profile_render_samples(): SVG, collapsed, speedscope, Chrome
 *                        trace); 404 when no stored request has that id, or it has no samples
 *     /routes/flame.svg, flame.txt, speedscope.json   ?route=<template>
 *                        the sampled stacks of a route's stored requests, summed
 *                        (nprof_store_render_samples(); every route without ?route=)
 * The sampled-stack exports take ?collapse=libs (NPROF_SAMPLES_COLLAPSE_LIBS).
 * Only GET and HEAD are served (405 otherwise).  In production the token is required
 * (403 without it), and without a configured token the dashboard is off (returns 0).
 */
NPROF_API int nprof_mw_handle(nprof_mw *mw, const nprof_mw_request *req,
                              nprof_mw_response *out);

/* Frees the response's body.  Accepts NULL. */
NPROF_API void nprof_mw_response_free(nprof_mw_response *resp);

/* The renderers behind nprof_mw_handle(), for adapters that route by themselves.  Each
 * appends to `out` (caller-owned, see nprof_buf) and returns NPROF_OK, NPROF_EINVAL (NULL
 * argument) or NPROF_ENOMEM; each may run on any thread, concurrently with requests.
 * nprof_mw_render_json(): the /json document (totals, routes, slow queries, N+1 patterns,
 * slowest requests, memory, clock, and with a slow-query log the cluster view, one database
 * round trip).  Each N+1 pattern has "callsite": where the first query of its shape was
 * issued in the first request that counted it (nprof_pattern_info.callsite), or null.
 * Each route has "histogram": {"first": i, "counts": [...]}, its requests' latencies counted
 * in buckets i, i + 1, ... of the document's "latency_buckets_ns" (the buckets' lower bounds
 * in ns: 4 per power of two from 1024 ns, the first from 0, the last open-ended), up to the
 * last bucket that counted one.  "timeline" holds the last 120 seconds, oldest first:
 * {"interval_ms", "elapsed_ms" (of the second under way), "points": [{"t_s" (-119 .. 0, 0
 * being the second under way), "requests", "errors" (5xx), "mean_ms", "p95_ms" (within a
 * quarter of the true value)}]}, every second listed, zeros when idle. */
NPROF_API int nprof_mw_render_json(nprof_mw *mw, nprof_buf *out);

/* The HTML dashboard page, whose inline script and style carry `nonce` (NUL-terminated).  An
 * adapter sending it also sends the headers nprof_mw_handle() would, at least
 *     Content-Security-Policy: default-src 'none'; script-src 'nonce-<nonce>';
 *         style-src 'nonce-<nonce>'; connect-src 'self'
 * with a fresh random `nonce` (letters and digits only) per response. */
NPROF_API int nprof_mw_render_html(nprof_mw *mw, const char *nonce, nprof_buf *out);

/* The /metrics document: Prometheus text exposition format 0.0.4. */
NPROF_API int nprof_mw_render_prometheus(nprof_mw *mw, nprof_buf *out);

/* The /flamegraph.svg document: nprof_store_render_flamegraph_svg() of the runtime's store. */
NPROF_API int nprof_mw_render_flamegraph_svg(nprof_mw *mw, nprof_buf *out);

/* The /trace.json document: nprof_store_render_trace() of the runtime's store. */
NPROF_API int nprof_mw_render_trace(nprof_mw *mw, nprof_buf *out);

/* The flame graph SVG of any store (a profiler's own, made with nprof_store_create()), as
 * nprof_mw_render_flamegraph_svg() draws it for the runtime's store, appended to `out`.  A
 * click on a frame zooms, by an inline script: nprof_mw_handle() serves it with a nonce its
 * Content-Security-Policy names; this one has none (a file runs it; a strict policy blocks
 * it, and the graph is still whole).
 * Errors: NPROF_EINVAL (NULL argument), NPROF_ENOMEM. */
NPROF_API int nprof_store_render_flamegraph_svg(nprof_store *store, nprof_buf *out);

/* The Chrome Trace Event document (Perfetto) of any store's profiles, as
 * nprof_mw_render_trace() renders it for the runtime's store, appended to `out`.
 * Errors: NPROF_EINVAL (NULL argument), NPROF_ENOMEM. */
NPROF_API int nprof_store_render_trace(nprof_store *store, nprof_buf *out);

/* Totals of the reference document, as aggregated so far: filled by nprof_mw_get_totals(). */
typedef struct nprof_mw_totals {
    uint64_t requests;          /* measured by this middleware */
    uint64_t queries;
    uint64_t sql_ns;
    uint64_t slow_queries;      /* queries over slow_query_threshold_ms */
    uint64_t n_plus_one_patterns; /* distinct N+1 shapes seen */
    uint64_t n_plus_one_requests; /* requests with at least one */
    uint64_t over_budget;       /* requests over their route's budget */
    uint64_t errors;            /* status >= 500 */
    uint64_t kept;              /* pushed into the store */
    uint64_t routes;            /* distinct rows */
} nprof_mw_totals;

/* Copies the totals, merged over every thread, into `out`.  Thread-safe; concurrent requests
 * may be partly counted.  Errors: NPROF_EINVAL (`mw` or `out` NULL).  The same figures are
 * the introspection names stats.mw.<field> (nanoprof/runtime.h), which the dashboard's JSON
 * and /metrics read. */
NPROF_API int nprof_mw_get_totals(nprof_mw *mw, nprof_mw_totals *out);

/*
 * The method of the rows that count every request whose method is not one of the nine that
 * HTTP itself defines: GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE (RFC 9110) and PATCH
 * (RFC 5789).  Methods are case-sensitive (RFC 9110 section 9.1), so "get" is counted here,
 * as are WebDAV's and other extension methods and bytes that are not an HTTP token at all.
 * The client chooses its method; were each one a row, made-up methods would fill max_routes.
 * Only the row is shared: the request's own profile keeps the method it was given (its first
 * 16 bytes, escaped wherever they are printed).
 */
#define NPROF_MW_OTHER_METHOD "OTHER"

/* One route row, merged over every thread: filled by nprof_mw_get_route_stats(). */
typedef struct nprof_mw_route_stats {
    const char *method;     /* valid as long as the middleware; not NUL-terminated */
    size_t method_len;
    const char *route;
    size_t route_len;
    uint64_t count;
    uint64_t status[6];     /* [0] other (0 or >= 600), [1] 1xx ... [5] 5xx */
    uint64_t total_ns, max_ns, p50_ns, p95_ns, p99_ns;
    uint64_t queries, sql_ns, slow_queries, n_plus_one, over_budget;
} nprof_mw_route_stats;

/* Fills `out` with the row of METHOD + route template, as requests have been aggregated.
 * `method` is the row's: a standard method or NPROF_MW_OTHER_METHOD ("get" finds nothing).
 * Errors: NPROF_ENOENT (no such row), NPROF_EINVAL. */
NPROF_API int nprof_mw_get_route_stats(nprof_mw *mw, const char *method, size_t method_len,
                                       const char *route, size_t route_len,
                                       nprof_mw_route_stats *out);

/*
 * Applies the route template rules to `path` ("/users/17" -> "/users/{id}"; paths beyond 512
 * bytes are cut first) and writes the template to `out` (at most `cap` bytes with the NUL).
 * *out_len (may be NULL) receives its length without the NUL, also after NPROF_ERANGE.
 * Returns NPROF_OK, NPROF_ERANGE when `cap` is too small (`out` is left as it was; a buffer of
 * *out_len + 1 bytes suffices; `out` NULL with `cap` 0 only measures), or NPROF_EINVAL (`mw`
 * NULL, `path` NULL with a non-zero length, `out` NULL with a non-zero `cap`).  Thread-safe.
 */
NPROF_API int nprof_mw_get_route_template(nprof_mw *mw, const char *path, size_t path_len,
                                          char *out, size_t cap, size_t *out_len);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: the middleware's prefix is nprof_mw_ everywhere, getters are nprof_mw_get_<what>. */
#define nprof_middleware_create nprof_mw_create
#define nprof_middleware_destroy nprof_mw_destroy
#define nprof_middleware_runtime nprof_mw_runtime
#define nprof_mw_route_stats_get nprof_mw_get_route_stats
#define nprof_mw_phase nprof_mw_mark_phase
#define nprof_mw_response_headers nprof_mw_get_response_headers
/* The old name of nprof_mw. */
typedef nprof_mw nprof_middleware;

/* nprof_mw_route_template(mw, path, path_len, out, cap), renamed
 * nprof_mw_get_route_template(), which returns NPROF_OK and the length in *out_len: the old
 * call, returning the length or a negative code. */
static inline int nprof_mw_route_template(nprof_mw *mw, const char *path, size_t path_len,
                                          char *out, size_t cap)
{
    size_t len = 0;
    int rc = nprof_mw_get_route_template(mw, path, path_len, out, cap, &len);
    return rc < 0 ? rc : (int)len;
}
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_MIDDLEWARE_H */
