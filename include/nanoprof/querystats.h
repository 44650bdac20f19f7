/*
 * nanoprof/querystats.h: statistics per query shape for a whole process, an in-process
 * pg_stat_statements.
 *
 * A table keyed by fingerprint (nprof_sql_fingerprint()) counts, for every query shape, the
 * calls, the errors, the rows, the total, minimum and maximum time, and a latency histogram.
 * The libpq layer (nanoprof/pq.h) feeds one such table for the whole process; hosts and
 * other hooks may keep their own.
 *
 * Cost and bounds: nprof_querystats_add() takes no lock and allocates nothing: it finds the
 * shape's slot in an open-addressing table with atomic loads and bumps its counters with
 * relaxed atomic adds.  The table never grows: it holds `capacity` shapes, and a query whose
 * shape finds no free slot is counted in `dropped` and nowhere else.  Each shape keeps the
 * first NPROF_QUERYSTATS_TEXT_MAX - 1 bytes of its normalized text.
 *
 * Readers (nprof_querystats_foreach(), _find(), _json()) run concurrently with writers and
 * read counters without stopping them: the values of one entry may be a few queries apart.
 *
 * Thread safety: every call is thread-safe except _destroy(), which no other thread may
 * race with.
 */
#ifndef NANOPROF_QUERYSTATS_H
#define NANOPROF_QUERYSTATS_H

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A per-shape statistics table, opaque: made by nprof_querystats_create(), freed by
 * nprof_querystats_destroy(); its other calls are thread-safe. */
typedef struct nprof_querystats nprof_querystats;

/* Histogram buckets: bucket 0 holds durations below 1024 ns, bucket b (1 <= b < 23) those in
 * [2^(9+b), 2^(10+b)) ns, and the last bucket everything from 2^32 ns (4.3 s) up. */
#define NPROF_QUERYSTATS_BUCKETS 24
/* Bytes of normalized text kept per shape, NUL included. */
#define NPROF_QUERYSTATS_TEXT_MAX 256
/* The default capacity (shapes) when 0 is passed to nprof_querystats_create(). */
#define NPROF_QUERYSTATS_DEFAULT_CAPACITY 2048

/* One shape's statistics, copied out of the table. */
typedef struct nprof_querystats_entry {
    uint64_t fingerprint;
    char normalized[NPROF_QUERYSTATS_TEXT_MAX]; /* NUL-terminated; "" until published */
    size_t normalized_len;
    uint64_t calls;
    uint64_t errors;   /* calls whose result was an error (counted in calls too) */
    uint64_t rows;     /* rows returned or affected */
    uint64_t total_ns;
    uint64_t min_ns;
    uint64_t max_ns;
    uint64_t histogram[NPROF_QUERYSTATS_BUCKETS];
} nprof_querystats_entry;

/*
 * Creates a table for `capacity` shapes (0: NPROF_QUERYSTATS_DEFAULT_CAPACITY; rounded up to
 * a power of two, at most 1 << 20), its memory from `rt`'s allocator: destroy the table
 * before the runtime.  Errors: NPROF_EINVAL (`rt` or `out` NULL, capacity too large),
 * NPROF_ENOMEM.
 */
NPROF_API int nprof_querystats_create(nprof_runtime *rt, uint32_t capacity,
                                      nprof_querystats **out);

/* Frees the table.  Accepts NULL. */
NPROF_API void nprof_querystats_destroy(nprof_querystats *qs);

/*
 * Counts one query of shape `fingerprint` (non-zero) that took `duration_ns` and returned or
 * affected `rows` rows; `error` non-zero when it failed.  `sql` (`len` bytes, may be NULL) is
 * only read when the shape is new: its normalized text is kept for display.
 * Errors: NPROF_EINVAL (`qs` NULL or fingerprint 0), NPROF_EFULL (no free slot: counted in
 * `dropped`).
 */
NPROF_API int nprof_querystats_add(nprof_querystats *qs, uint64_t fingerprint, const char *sql,
                                   size_t len, uint64_t duration_ns, uint64_t rows, int error);

/* Copies the statistics of shape `fingerprint` into `out`.  Errors: NPROF_EINVAL (`qs` or
 * `out` NULL), NPROF_ENOENT when the shape has none. */
NPROF_API int nprof_querystats_find(const nprof_querystats *qs, uint64_t fingerprint,
                                    nprof_querystats_entry *out);

/* Called once per shape by nprof_querystats_foreach(); a non-zero return stops the walk. */
typedef int (*nprof_querystats_visit_fn)(void *user, const nprof_querystats_entry *entry);

/* Visits every shape with at least one call, in table order, on the calling thread; `entry`
 * is a copy valid during the visit.  Returns NPROF_OK, NPROF_EINVAL (`qs` or `fn` NULL), or
 * the visitor's non-zero return value, whatever its sign, when it stopped the walk. */
NPROF_API int nprof_querystats_foreach(const nprof_querystats *qs, nprof_querystats_visit_fn fn,
                                       void *user);

/* The number of shapes held now; 0 when `qs` is NULL.  Also the introspection name
 * stats.querystats.size of the table's runtime (nanoprof/runtime.h). */
NPROF_API size_t nprof_querystats_size(const nprof_querystats *qs);

/* The number of shapes the table can hold; 0 when `qs` is NULL.  Also the introspection name
 * stats.querystats.capacity of the table's runtime. */
NPROF_API size_t nprof_querystats_capacity(const nprof_querystats *qs);

/* Queries not counted because the table was full; 0 when `qs` is NULL.  Also the
 * introspection name stats.querystats.dropped of the table's runtime. */
NPROF_API uint64_t nprof_querystats_dropped(const nprof_querystats *qs);

/* Zeroes every counter; the shapes and their texts stay (concurrent adds may survive).
 * Accepts NULL. */
NPROF_API void nprof_querystats_reset(nprof_querystats *qs);

/* The exclusive upper bound of histogram bucket `b` in ns; UINT64_MAX for the last one. */
NPROF_API uint64_t nprof_querystats_bucket_upper_ns(int b);

/* An estimate of the q-quantile (0 < q < 1) of an entry's durations from its histogram: the
 * upper bound of the bucket holding it, clamped to [min_ns, max_ns].  0 without calls. */
NPROF_API uint64_t nprof_querystats_quantile_ns(const nprof_querystats_entry *e, double q);

/*
 * Appends the table as one JSON object, shapes sorted by total time, most first:
 *   {"capacity":2048,"size":2,"dropped":0,"bucket_upper_ns":[1024,...,null],
 *    "queries":[{"fingerprint":"9a01...","query":"SELECT ...","calls":3,"errors":0,"rows":3,
 *      "total_ns":..,"mean_ns":..,"min_ns":..,"max_ns":..,"p50_ns":..,"p95_ns":..,
 *      "p99_ns":..,"histogram":[...]}, ...]}
 * to `out` (caller-owned).  `limit` caps the number of shapes listed (0: all).  Valid JSON
 * and UTF-8 for any text.
 * Errors: NPROF_EINVAL, NPROF_ENOMEM.
 */
NPROF_API int nprof_querystats_render_json(const nprof_querystats *qs, size_t limit,
                                           nprof_buf *out);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: renderers are nprof_<object>_render_<format>. */
#define nprof_querystats_json nprof_querystats_render_json
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_QUERYSTATS_H */
