/*
 * runtime/patterns.h: per-request counting of query shapes (by fingerprint) and of exact
 * repeats (same text and parameters), from which N+1 patterns, duplicates and slow queries
 * are read.  Part of a RequestProfile; see patterns.c.
 */
#ifndef NPROF_RUNTIME_PATTERNS_H
#define NPROF_RUNTIME_PATTERNS_H

#include <stdint.h>

#define NPROF__INLINE_PATTERNS 16
#define NPROF__INLINE_EXACT 64 /* slots of the exact-repeat set (power of two) */
#define NPROF__MAX_PATTERNS 4096

typedef struct nprof__pattern {
    uint64_t fingerprint;
    uint64_t count;         /* queries of this shape */
    uint64_t exact_repeats; /* of which repeated an earlier query's text and parameters */
    uint64_t slow_count;
    uint64_t total_ns, max_ns;
    int32_t first_query;    /* first kept query of this shape, or -1 */
    uint32_t callsite_len;
    const char *callsite;   /* where the shape's first query was issued (profile's text), or
                               NULL: asked of that query alone, so it costs once per shape */
} nprof__pattern;

struct nprof_profile;
struct nprof_query;

/* Counts one query (kept as query number `kept`, or -1 when only counted).  Returns the
 * number of its shape when it is the first query of that shape (a new pattern), else -1 (no
 * fingerprint, uncounted, a shape seen before, or one that could not be counted): the
 * recorder asks for a call site only then.  `text_hash`: a seeded 64-bit hash of the whole
 * text that the SQL layer computed already, or 0 (the text is hashed here). */
int32_t nprof__patterns_count(struct nprof_profile *p, const struct nprof_query *q, int32_t kept,
                              uint64_t text_hash);

#endif /* NPROF_RUNTIME_PATTERNS_H */
