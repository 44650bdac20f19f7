/*
 * middleware/histogram.c: the log-linear histogram behind per-route percentiles (see
 * histogram.h for the layout and the error bound).  Writers are request threads: one
 * relaxed atomic add per value, plus a compare-and-swap the first time a group is used.
 */
#include "histogram.h"

#include <string.h>

#include "nanoprof/common.h"

#define GROUP_BYTES (NPROF__HIST_SUB * sizeof(uint64_t))

int nprof__hist_add(nprof__hist *h, nprof__alloc *a, uint64_t v)
{
    unsigned g, s;
    nprof__hist_index(v, &g, &s);
    _Atomic uint64_t *grp = atomic_load_explicit(&h->group[g], memory_order_acquire);
    if (__builtin_expect(!grp, 0)) {
        _Atomic uint64_t *fresh = nprof__alloc_zeroed(a, GROUP_BYTES);
        if (!fresh)
            return NPROF_ENOMEM;
        _Atomic uint64_t *expected = NULL;
        /* Another thread of the same shard may have installed one first: use theirs. */
        if (atomic_compare_exchange_strong_explicit(&h->group[g], &expected, fresh,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            grp = fresh;
        } else {
            nprof__free_bytes(a, (void *)fresh, GROUP_BYTES);
            grp = expected;
        }
    }
    atomic_fetch_add_explicit(&grp[s], 1, memory_order_relaxed);
    return NPROF_OK;
}

void nprof__hist_free(nprof__hist *h, nprof__alloc *a)
{
    for (unsigned g = 0; g < NPROF__HIST_GROUPS; g++) {
        _Atomic uint64_t *grp = atomic_load_explicit(&h->group[g], memory_order_relaxed);
        if (grp)
            nprof__free_bytes(a, (void *)grp, GROUP_BYTES);
        atomic_store_explicit(&h->group[g], NULL, memory_order_relaxed);
    }
}

void nprof__hist_flat_clear(nprof__hist_flat *f)
{
    for (unsigned g = 0; g < NPROF__HIST_GROUPS; g++)
        if (f->used & (1ull << g))
            memset(f->bucket[g], 0, sizeof f->bucket[g]);
    f->used = 0;
    f->count = 0;
    f->max = 0;
}

void nprof__hist_flat_merge(nprof__hist_flat *f, const nprof__hist *h)
{
    for (unsigned g = 0; g < NPROF__HIST_GROUPS; g++) {
        _Atomic uint64_t *grp = atomic_load_explicit(
            &((nprof__hist *)h)->group[g], memory_order_acquire);
        if (!grp)
            continue;
        if (!(f->used & (1ull << g))) {
            memset(f->bucket[g], 0, sizeof f->bucket[g]);
            f->used |= 1ull << g;
        }
        for (unsigned s = 0; s < NPROF__HIST_SUB; s++) {
            uint64_t c = atomic_load_explicit(&grp[s], memory_order_relaxed);
            f->bucket[g][s] += c;
            f->count += c;
        }
    }
}

void nprof__hist_flat_add(nprof__hist_flat *f, uint64_t v)
{
    unsigned g, s;
    nprof__hist_index(v, &g, &s);
    if (!(f->used & (1ull << g))) {
        memset(f->bucket[g], 0, sizeof f->bucket[g]);
        f->used |= 1ull << g;
    }
    f->bucket[g][s]++;
    f->count++;
    if (v > f->max)
        f->max = v;
}

uint64_t nprof__hist_bucket_low(unsigned group, unsigned sub)
{
    if (group == 0)
        return sub;
    return (uint64_t)(NPROF__HIST_SUB + sub) << (group - 1);
}

uint64_t nprof__hist_bucket_width(unsigned group)
{
    return group == 0 ? 1 : (uint64_t)1 << (group - 1);
}

/* Nearest rank of quantile `q` (clamped to 0..1) among `count` values: the 1-based rank of
 * the smallest value with at least ceil(q * count) values at or below it. */
static uint64_t nearest_rank(uint64_t count, double q)
{
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    double r = q * (double)count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    return rank ? rank : 1;
}

uint64_t nprof__hist_flat_quantile(const nprof__hist_flat *f, double q)
{
    if (!f->count)
        return 0;
    uint64_t rank = nearest_rank(f->count, q), seen = 0;
    for (unsigned g = 0; g < NPROF__HIST_GROUPS; g++) {
        if (!(f->used & (1ull << g)))
            continue;
        for (unsigned s = 0; s < NPROF__HIST_SUB; s++) {
            seen += f->bucket[g][s];
            if (seen >= rank) {
                uint64_t w = nprof__hist_bucket_width(g);
                uint64_t v = nprof__hist_bucket_low(g, s) + w / 2;
                return f->max && v > f->max ? f->max : v;
            }
        }
    }
    return f->max;
}

uint64_t nprof__hist_flat_count_le(const nprof__hist_flat *f, uint64_t bound)
{
    uint64_t n = 0;
    for (unsigned g = 0; g < NPROF__HIST_GROUPS; g++) {
        if (!(f->used & (1ull << g)))
            continue;
        uint64_t w = nprof__hist_bucket_width(g);
        for (unsigned s = 0; s < NPROF__HIST_SUB; s++) {
            uint64_t c = f->bucket[g][s];
            if (!c)
                continue;
            uint64_t lo = nprof__hist_bucket_low(g, s);
            if (lo + w - 1 <= bound)
                n += c;
            else if (lo <= bound) /* the bucket holding the bound: its share below it */
                n += (uint64_t)((double)c * (double)(bound - lo + 1) / (double)w);
            else
                return n;
        }
    }
    return n;
}

uint64_t nprof__hist_coarse_low(unsigned i)
{
    if (i == 0)
        return 0;
    if (i >= NPROF__HIST_COARSE - 1)
        return 1ull << NPROF__HIST_COARSE_HIGH_BITS;
    unsigned octave = (i - 1) >> NPROF__HIST_COARSE_SUB_BITS;
    unsigned sub = (i - 1) & ((1u << NPROF__HIST_COARSE_SUB_BITS) - 1);
    unsigned msb = NPROF__HIST_COARSE_LOW_BITS + octave;
    return (uint64_t)((1u << NPROF__HIST_COARSE_SUB_BITS) + sub)
           << (msb - NPROF__HIST_COARSE_SUB_BITS);
}

void nprof__hist_flat_coarse(const nprof__hist_flat *f, uint64_t *coarse)
{
    for (unsigned g = 0; g < NPROF__HIST_GROUPS; g++) {
        if (!(f->used & (1ull << g)))
            continue;
        for (unsigned s = 0; s < NPROF__HIST_SUB; s++)
            if (f->bucket[g][s])
                coarse[nprof__hist_coarse_index(nprof__hist_bucket_low(g, s))] += f->bucket[g][s];
    }
}

uint64_t nprof__hist_coarse_quantile(const uint64_t *coarse, uint64_t count, double q)
{
    if (!count)
        return 0;
    uint64_t rank = nearest_rank(count, q), seen = 0;
    for (unsigned i = 0; i < NPROF__HIST_COARSE - 1; i++) {
        seen += coarse[i];
        if (seen >= rank)
            return (nprof__hist_coarse_low(i) + nprof__hist_coarse_low(i + 1)) / 2;
    }
    return nprof__hist_coarse_low(NPROF__HIST_COARSE - 1);
}
