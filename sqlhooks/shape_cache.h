/*
 * sqlhooks/shape_cache.h: query shapes by literal key (sqlhooks/shape_cache.c), for the
 * recording paths of this layer (record.c, pq.c).
 */
#ifndef NPROF_SQLHOOKS_SHAPE_CACHE_H
#define NPROF_SQLHOOKS_SHAPE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nanoprof/profile.h"
#include "nanoprof/runtime.h"

/*
 * The NPROF_SQL_QMARK shape of the `len` bytes at `sql`, as nprof_sql_shape() gives it:
 * the normalized text in `out` (`cap` bytes, NUL-terminated), its length in *out_len, its
 * fingerprint in *fingerprint; and in *ignored whether the runtime's sql_ignore rule matches
 * it.  Served by rt's shape cache when a query with the same literal key was shaped before.
 * Returns NPROF_OK or nprof_sql_normalize()'s error (NPROF_ERANGE: `cap` too small).
 * The cache serves only a `cap` with room for the text and 16 bytes more, which
 * NPROF_SQL_NORMALIZED_MAX(len) always has.  *text_hash (when not NULL) receives the
 * seeded hash of the text that the lookup computed, or 0 (a long text, no cache): what
 * the profile's exact-repeat count would otherwise hash again (nprof__query_record_hashed).
 */
int nprof__sql_shape_of(nprof_runtime *rt, const char *sql, size_t len, char *out, size_t cap,
                        size_t *out_len, uint64_t *fingerprint, int *ignored,
                        uint64_t *text_hash);

/* The bytes of a `len`-byte query that rt's profiles keep (opt.max_sql_bytes). */
size_t nprof__sql_kept(const nprof_runtime *rt, size_t len);

/*
 * What nprof_sql_record() adds to a query before the profile records it: the shape of its
 * kept part into `buf` (`cap` bytes; NPROF_SQL_NORMALIZED_MAX(kept) is always enough) as
 * q->normalized unless the caller set one, NPROF_QUERY_UNCOUNTED when the sql_ignore rule
 * matches, and q->fingerprint when it was 0 and the whole query was kept.  Returns 0 (and
 * changes nothing) when the shape did not fit.  *text_hash (when not NULL): the text's
 * hash when the whole query was hashed, else 0 (see nprof__sql_shape_of).
 */
int nprof__sql_shape_query(nprof_runtime *rt, nprof_query *q, char *buf, size_t cap,
                           uint64_t *text_hash);

/* nprof_sql_record() with the text hash nprof__sql_shape_query() gave a caller that shaped
 * the query itself (0: none), passed on to the profile (nprof__query_record_hashed). */
int nprof__sql_record_hashed(nprof_profile *p, const nprof_query *q, uint64_t text_hash);

#endif /* NPROF_SQLHOOKS_SHAPE_CACHE_H */
