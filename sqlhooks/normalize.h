/*
 * sqlhooks/normalize.h: private declarations of the SQL normalizer (sqlhooks/normalize.c).
 * The public entry points are in nanoprof/sql.h; this header holds the limits that shape
 * the output and the keyword table, which tests/test_normalize.c checks directly.
 */
#ifndef NPROF_SQLHOOKS_NORMALIZE_H
#define NPROF_SQLHOOKS_NORMALIZE_H

#include <stddef.h>

/*
 * Nesting depth up to which lists are tracked (and may collapse).  Deeper parentheses and
 * brackets are only counted, so 100,000 nested parentheses cost no memory.
 */
#define NPROF__SQL_DEPTH_MAX 64

/*
 * The highest $n written in NPROF_SQL_DOLLAR style.  PostgreSQL's protocol cannot bind more
 * parameters than this; later literals are written "?".  The cap is what keeps every output
 * within NPROF_SQL_NORMALIZED_MAX(len): a 1-byte literal becomes at most " $65535".
 */
#define NPROF__SQL_DOLLAR_MAX 65535u

/* Bytes of normalized text the fingerprint's streaming pass gathers before feeding XXH3. */
#define NPROF__SQL_STAGE 256

/* The keyword id of the `len` bytes at `word` (ASCII case-insensitive), or -1. */
int nprof__sql_keyword(const char *word, size_t len);

/* The number of keywords and the upper-case spelling of keyword `i` (for tests). */
size_t nprof__sql_keyword_count(void);
const char *nprof__sql_keyword_name(size_t i);

#endif /* NPROF_SQLHOOKS_NORMALIZE_H */
