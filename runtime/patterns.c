/*
 * runtime/patterns.c: per-request counting of query shapes.
 *
 * Every query recorded with a fingerprint (the SQL layer computes it from the normalized
 * text) is counted under that shape: how often, how long in total and at most, how many were
 * slow, and how many repeated an earlier query's exact text and parameters.  From these the
 * profile reads its three lists: N+1 patterns (a shape at least n_plus_one_threshold times),
 * exact duplicates (a query that could simply have been reused) and slow queries.  Users fix
 * a duplicate by caching and an N+1 by joining, so the two are counted apart.
 *
 * Both tables are open-addressing hash tables, inline in the profile for small requests and
 * in the profile's arena beyond, so a request with 100,000 queries costs O(1) per query and
 * stays inside max_profile_bytes.  Shapes past NPROF__MAX_PATTERNS (or the budget) are
 * counted in patterns_dropped.
 */
#include <string.h>
/* Inlined, as in middleware/aggregate.c and the shape cache: hashed on every query. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "memo.h"
#include "profile.h"

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Rebuilds the fingerprint index for `cap` slots (a power of two). */
static int grow_index(nprof_profile *p, uint32_t cap)
{
    uint32_t *index = cap <= 2 * NPROF__INLINE_PATTERNS ? p->index_inline
                                                        : nprof__profile_arena(p, cap * sizeof *index);
    if (!index)
        return -1;
    memset(index, 0, cap * sizeof *index);
    for (uint32_t i = 0; i < p->pattern_count; i++) {
        uint32_t j = (uint32_t)mix(p->patterns[i].fingerprint) & (cap - 1);
        while (index[j])
            j = (j + 1) & (cap - 1);
        index[j] = i + 1;
    }
    p->pattern_index = index;
    p->index_cap = cap;
    return 0;
}

static nprof__pattern *find_or_add(nprof_profile *p, uint64_t fingerprint)
{
    /* An N+1 loop counts one shape query after query: the last one found is checked first. */
    if (p->last_pattern && p->patterns[p->last_pattern - 1].fingerprint == fingerprint)
        return &p->patterns[p->last_pattern - 1];
    if (!p->index_cap && grow_index(p, 2 * NPROF__INLINE_PATTERNS))
        return NULL;
    uint32_t mask = p->index_cap - 1;
    for (uint32_t j = (uint32_t)mix(fingerprint) & mask;; j = (j + 1) & mask) {
        uint32_t slot = p->pattern_index[j];
        if (!slot)
            break;
        if (p->patterns[slot - 1].fingerprint == fingerprint)
            return &p->patterns[slot - 1];
    }
    if (p->pattern_count >= NPROF__MAX_PATTERNS)
        return NULL;
    if (p->pattern_count == p->pattern_cap) {
        nprof__pattern *bigger = nprof__profile_arena(p, 2 * p->pattern_cap * sizeof *bigger);
        if (!bigger)
            return NULL;
        memcpy(bigger, p->patterns, p->pattern_count * sizeof *bigger);
        p->patterns = bigger;
        p->pattern_cap *= 2;
    }
    /* Keep the index at most half full. */
    if (2 * (p->pattern_count + 1) > p->index_cap && grow_index(p, p->index_cap * 2))
        return NULL;
    nprof__pattern *pat = &p->patterns[p->pattern_count++];
    memset(pat, 0, sizeof *pat);
    pat->fingerprint = fingerprint;
    pat->first_query = -1;
    mask = p->index_cap - 1;
    uint32_t j = (uint32_t)mix(fingerprint) & mask;
    while (p->pattern_index[j])
        j = (j + 1) & mask;
    p->pattern_index[j] = p->pattern_count;
    return pat;
}

/* Whether text+parameters hash `h` was seen before in this request; remembers it if not.
 * When the set cannot grow any more, new texts are no longer remembered (repeats of them go
 * uncounted), which only ever under-reports duplicates. */
static int seen_before(nprof_profile *p, uint64_t h)
{
    uint32_t mask = p->exact_cap - 1;
    uint32_t j = (uint32_t)mix(h) & mask;
    for (; p->exact[j]; j = (j + 1) & mask)
        if (p->exact[j] == h)
            return 1;
    if (2 * (p->exact_used + 1) > p->exact_cap) {
        uint32_t cap = p->exact_cap * 2;
        uint64_t *bigger = cap <= 65536 ? nprof__profile_arena(p, cap * sizeof *bigger) : NULL;
        if (!bigger)
            return 0;
        memset(bigger, 0, cap * sizeof *bigger);
        for (uint32_t i = 0; i < p->exact_cap; i++) {
            if (!p->exact[i])
                continue;
            uint32_t k = (uint32_t)mix(p->exact[i]) & (cap - 1);
            while (bigger[k])
                k = (k + 1) & (cap - 1);
            bigger[k] = p->exact[i];
        }
        p->exact = bigger;
        p->exact_cap = cap;
        mask = cap - 1;
        for (j = (uint32_t)mix(h) & mask; p->exact[j]; j = (j + 1) & mask) {
        }
    }
    p->exact[j] = h;
    p->exact_used++;
    return 0;
}

NPROF__HOT_PATH
int32_t nprof__patterns_count(nprof_profile *p, const nprof_query *q, int32_t kept,
                              uint64_t text_hash)
{
    uint64_t slow_ns = p->rt->slow_query_ns;
    int slow = q->duration_ns > slow_ns;
    p->slow_count += slow;
    if (!q->fingerprint || (q->flags & NPROF_QUERY_UNCOUNTED))
        return -1;
    /* Same text and same parameters: the fingerprint keeps shapes apart, the hashes the
     * literals and the parameter summary.  The text's hash is keyed as the SQL layer's shape
     * cache keys its own, so that a text it hashed already is not hashed again and one
     * recorded another way hashes the same. */
    if (!text_hash)
        text_hash = XXH3_64bits_withSeed(q->sql, q->sql_len,
                                         p->rt->shapes ? nprof__memo_seed(p->rt->shapes) : 0);
    uint64_t h = mix(text_hash ^ q->fingerprint);
    /* The values' own identity when the hook gave one; else the summary, which stands for
     * them only when it is there and whole.  Seed 0 gives XXH3_64bits()'s value; the seeded
     * function for both hashes keeps one copy of the hash's code on this path, not two. */
    if (q->params_hash)
        h ^= mix(q->params_hash);
    else if (q->params)
        h ^= mix(XXH3_64bits_withSeed(q->params, q->params_len, 0) + 1);
    if (!h)
        h = 1;
    nprof__pattern *pat = find_or_add(p, q->fingerprint);
    if (!pat) {
        p->patterns_dropped++;
        return -1;
    }
    p->last_pattern = (uint32_t)(pat - p->patterns) + 1;
    int repeat = seen_before(p, h);
    pat->count++;
    pat->exact_repeats += repeat;
    p->exact_repeats += repeat;
    pat->slow_count += slow;
    pat->total_ns += q->duration_ns;
    if (q->duration_ns > pat->max_ns)
        pat->max_ns = q->duration_ns;
    if (pat->first_query < 0 && kept >= 0)
        pat->first_query = kept;
    return pat->count == 1 ? (int32_t)(pat - p->patterns) : -1;
}
