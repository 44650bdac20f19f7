/*
 * nanoprof/runtime.h: the one runtime handle, and introspection.
 *
 * A process normally has one runtime.  It owns the configuration, the allocator (a dedicated
 * jemalloc arena when jemalloc is in the process, else the C library's malloc, with the same
 * byte accounting either way), the store of finished profiles and the counters.  Everything
 * else hangs off it; there is no other global state but the clock's calibration.
 *
 * Introspection is one entry point with dotted names, read alike by the dashboard, the
 * bindings and the exporters:
 *   version                      library version string
 *   opt.<option>                 every configuration option (see nprof_config_get_option())
 *   clock.source, clock.reason, clock.frequency_hz, clock.error_ppm, clock.read_cost_ns,
 *   clock.resolution_ns
 *   stats.requests               requests begun
 *   stats.requests_submitted     requests pushed into the runtime's store
 *   stats.queries                queries of ended requests (kept or only counted)
 *   stats.queries_dropped        of those, counted but not kept (max_queries, max_profile_bytes)
 *   stats.spans_dropped          spans of ended requests not kept (max_spans, max_profile_bytes)
 *   stats.store.capacity, stats.store.size, stats.store.pushed
 *   stats.memory.bytes           bytes the runtime holds now (usable size of live blocks)
 *   stats.memory.peak_bytes      the most it has held at once
 *   stats.memory.blocks          live allocations
 *   stats.memory.allocations     allocations ever made (in steady state the pools serve
 *                                requests, so this stops growing)
 *   stats.memory.allocator       "jemalloc" or "libc"
 *   stats.memory.allocator_reason  why that allocator serves the runtime
 *   stats.memory.arena           jemalloc arena index (jemalloc only)
 *   stats.memory.arena_resident_bytes  resident bytes of that arena (jemalloc only)
 *   stats.sql.shape_cache.slots  query shapes the shape cache can hold (opt.sql_shape_cache)
 *   stats.sql.shape_cache.used   slots filled
 *   stats.sql.shape_cache.stored shapes (or "normalize every time" marks) written
 *   stats.sql.shape_cache.misses lookups that found nothing (the query was then normalized)
 * The layers above the runtime add their own names while they exist (a middleware from
 * nprof_mw_create() to its destroy, a slow-query log opened with a runtime until it is
 * closed, a per-shape table until it is destroyed, the libpq layer from its first query to
 * nprof_pq_shutdown()).  When two of a kind share a runtime, the names show the older one.
 *   stats.mw.requests, .queries, .sql_ns, .slow_queries, .n_plus_one_patterns,
 *   .n_plus_one_requests, .over_budget, .errors, .kept, .routes
 *                                the middleware's totals (nprof_mw_totals, same meanings)
 *   stats.pq.recorded, .in_profile, .failures, .aborted, .dropped_conns, .dropped_pending,
 *   .dropped_statements, .unknown_statements, .conns
 *                                the libpq layer's counters (nprof_pq_stats)
 *   stats.slowlog.enqueued, .dropped, .written, .unwritten, .truncated, .redactions,
 *   .batches, .batch_retries, .reconnects, .plans, .deleted, .queue_slots, .queue_depth,
 *   .connected                   the slow-query log's counters (nprof_slowlog_stats, but for
 *                                last_error)
 *   stats.querystats.size, .capacity, .dropped
 *                                the per-shape table's shapes held, room and shapes refused
 *                                (nprof_querystats_size/_capacity/_dropped)
 * nprof_ctl_foreach() visits the runtime's own names, then these by prefix, then opt.*.
 */
#ifndef NANOPROF_RUNTIME_H
#define NANOPROF_RUNTIME_H

#include "common.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The runtime handle, opaque: made by nprof_runtime_create(), freed by
 * nprof_runtime_destroy().  Its calls are thread-safe unless documented otherwise. */
typedef struct nprof_runtime nprof_runtime;

/*
 * Creates a runtime from `cfg` (NULL: the defaults) with NANOPROF_CONF applied on top.
 * Also calibrates the clock if that has not happened yet.
 * Errors: NPROF_EINVAL (`out` NULL, or a field of `cfg` out of its range: see
 * nprof_config_validate()), NPROF_EPARSE (malformed NANOPROF_CONF; nothing is
 * created and nprof_last_error_detail() names the item), NPROF_EUNSUPPORTED (allocator
 * "jemalloc" demanded but not available), NPROF_ENOMEM.
 */
NPROF_API int nprof_runtime_create(const nprof_config *cfg, nprof_runtime **out);

/*
 * Destroys the runtime, its store and every profile it holds.  Accepts NULL.  No other
 * thread may be using the runtime or any of its profiles.
 */
NPROF_API void nprof_runtime_destroy(nprof_runtime *rt);

/* The configuration in force (after NANOPROF_CONF), read-only, or NULL when `rt` is NULL.
 * Valid as long as the runtime; thread-safe. */
NPROF_API const nprof_config *nprof_runtime_config(const nprof_runtime *rt);

/*
 * Turns profiling on or off at run time (thread-safe).  When off, nprof_request_begin()
 * returns NPROF_ENOPROFILE at the cost of one load and one branch.  Accepts NULL.
 */
NPROF_API void nprof_runtime_set_enabled(nprof_runtime *rt, int enabled);

/* 1 while profiling is on, 0 when it is off or `rt` is NULL: a value, never an error code.
 * Thread-safe. */
NPROF_API int nprof_runtime_enabled(const nprof_runtime *rt);

/* Types of introspection values (nprof_ctl_value.type). */
enum nprof_ctl_type { NPROF_CTL_UINT = 1, NPROF_CTL_DOUBLE = 2, NPROF_CTL_STRING = 3 };

/* One introspection value, filled by nprof_ctl_get() and passed to nprof_ctl_foreach()'s
 * visitor: the member that `type` names holds it. */
typedef struct nprof_ctl_value {
    int type;        /* enum nprof_ctl_type */
    uint64_t u;      /* NPROF_CTL_UINT (booleans are 0/1) */
    double d;        /* NPROF_CTL_DOUBLE */
    const char *s;   /* NPROF_CTL_STRING; valid as long as the runtime */
} nprof_ctl_value;

/*
 * Reads one value by its dotted name.  Thread-safe, also against a layer registering or
 * removing its names meanwhile; counters are read without stopping writers, so two values
 * read one after the other may be a few events apart.
 * Errors: NPROF_EINVAL (NULL argument), NPROF_ENOENT (no such name).
 */
NPROF_API int nprof_ctl_get(nprof_runtime *rt, const char *name, nprof_ctl_value *out);

/* Called once per name by nprof_ctl_foreach() with the name (NUL-terminated) and its value,
 * both valid during the call only; a non-zero return stops the walk. */
typedef int (*nprof_ctl_visit_fn)(void *user, const char *name, const nprof_ctl_value *value);

/*
 * Visits every name that starts with `prefix` ("" or NULL: all), in a stable order (see the
 * list above), on the calling thread.  The visitor is called with no lock held, so it may
 * call nprof_ctl_get() or destroy a middleware; names of a layer that comes or goes during
 * the walk may be missed.  Returns NPROF_OK, NPROF_EINVAL (`rt` or `fn` NULL), or the
 * visitor's non-zero return value, whatever its sign, if it stopped the walk.
 */
NPROF_API int nprof_ctl_foreach(nprof_runtime *rt, const char *prefix, nprof_ctl_visit_fn fn,
                                void *user);

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_RUNTIME_H */
