/*
 * sqlhooks/shape_cache.h: query shapes by literal key (sqlhooks/shape_cache.c), for the
 * recording paths of this layer (record.c, pq.c).
 */
#ifndef NPROF_SQLHOOKS_SHAPE_CACHE_H
#define NPROF_SQLHOOKS_SHAPE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nanoprof/runtime.h"

/*
 * The NPROF_SQL_QMARK shape of the `len` bytes at `sql`, as nprof_sql_shape() gives it:
 * the normalized text in `out` (`cap` bytes, NUL-terminated), its length in *out_len, its
 * fingerprint in *fingerprint; and in *ignored whether the runtime's sql_ignore rule matches
 * it.  Served by rt's shape cache when a query with the same literal key was shaped before.
 * Returns NPROF_OK or nprof_sql_normalize()'s error (NPROF_ERANGE: `cap` too small).
 * The cache serves only a `cap` with room for the text and 16 bytes more, which
 * NPROF_SQL_NORMALIZED_MAX(len) always has.
 */
int nprof__sql_shape_of(nprof_runtime *rt, const char *sql, size_t len, char *out, size_t cap,
                        size_t *out_len, uint64_t *fingerprint, int *ignored);

#endif /* NPROF_SQLHOOKS_SHAPE_CACHE_H */
