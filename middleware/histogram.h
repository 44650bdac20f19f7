/*
 * middleware/histogram.h: a log-linear latency histogram with at most 0.8 % relative error,
 * for the per-route percentiles of the dashboard.
 *
 * Values below 64 ns have a bucket each; above, every power of two is cut into 64 buckets of
 * equal width, so a bucket is at most 1/64 of its lower bound wide and its midpoint is within
 * 1/128 (0.78 %) of any value in it.  The whole uint64_t range takes 59 groups of 64 buckets;
 * a group's counters are allocated on its first value, so a route whose latencies span three
 * octaves holds three groups (1.5 KiB), not all 59.
 *
 * Two forms: the shared one (nprof__hist) is written by request threads with relaxed atomic
 * adds and read at any time without stopping them; the flat one (nprof__hist_flat) is the
 * reader's scratch, where shards are merged and percentiles taken.
 */
#ifndef NPROF_MIDDLEWARE_HISTOGRAM_H
#define NPROF_MIDDLEWARE_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/alloc.h"

#define NPROF__HIST_SUB_BITS 6
#define NPROF__HIST_SUB (1u << NPROF__HIST_SUB_BITS) /* buckets per group */
#define NPROF__HIST_GROUPS 59                        /* group 0: 0..63; g: [2^(g+5), 2^(g+6)) */
/* The error bound as the exports quote it: 1/128 (0.78 %) for NPROF__HIST_SUB_BITS 6, rounded
 * up to a figure a reader keeps in mind.  Change it with NPROF__HIST_SUB_BITS. */
#define NPROF__HIST_ERROR_TEXT "within 1%"

typedef struct nprof__hist {
    _Atomic(_Atomic uint64_t *) group[NPROF__HIST_GROUPS];
} nprof__hist;

typedef struct nprof__hist_flat {
    uint64_t used;  /* bit g: group g holds counts */
    uint64_t count; /* values in all */
    uint64_t max;   /* largest value (exact), 0 when unknown */
    uint64_t bucket[NPROF__HIST_GROUPS][NPROF__HIST_SUB];
} nprof__hist_flat;

/* The group and bucket of `v`. */
static inline void nprof__hist_index(uint64_t v, unsigned *group, unsigned *sub)
{
    if (v < NPROF__HIST_SUB) {
        *group = 0;
        *sub = (unsigned)v;
        return;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    *group = msb - (NPROF__HIST_SUB_BITS - 1);
    *sub = (unsigned)(v >> (msb - NPROF__HIST_SUB_BITS)) & (NPROF__HIST_SUB - 1);
}

/* Counts `v` once.  Allocates the value's group from `a` on first use; returns NPROF_ENOMEM
 * (the value is not counted) when that fails.  Safe from any number of threads. */
int nprof__hist_add(nprof__hist *h, nprof__alloc *a, uint64_t v);

/* Frees the groups (no writer may be running). */
void nprof__hist_free(nprof__hist *h, nprof__alloc *a);

/* Empties `f` (only the groups it used). */
void nprof__hist_flat_clear(nprof__hist_flat *f);

/* Adds the shared histogram's counts to `f`; may run while writers add. */
void nprof__hist_flat_merge(nprof__hist_flat *f, const nprof__hist *h);

/* Counts `v` in a flat histogram (single-threaded use). */
void nprof__hist_flat_add(nprof__hist_flat *f, uint64_t v);

/* The value at quantile `q` (0..1, nearest rank): the midpoint of the bucket holding it, no
 * larger than f->max when that is known.  0 for an empty histogram. */
uint64_t nprof__hist_flat_quantile(const nprof__hist_flat *f, double q);

/* The lower bound and width of bucket (group, sub). */
uint64_t nprof__hist_bucket_low(unsigned group, unsigned sub);
uint64_t nprof__hist_bucket_width(unsigned group);

/* Values counted in `f` that are <= `bound` (buckets whose upper end is <= bound + 1 count
 * in full, the bucket holding `bound` in proportion), for Prometheus `le` buckets. */
uint64_t nprof__hist_flat_count_le(const nprof__hist_flat *f, uint64_t bound);

/*
 * The coarse scale of the charts: 4 buckets per power of two from 1024 ns to 2^40 ns
 * (~18 min), bucket 0 below 1024 ns and the last from 2^40 ns up; 122 buckets, each at most
 * a quarter of its lower bound wide.  Every fine bucket from 1024 ns up lies inside one coarse
 * bucket (64 fine ones per octave, 4 coarse), so folding a flat histogram into it is exact.
 * The dashboard's per-route latency distribution and the per-second p95 of the timeline
 * (aggregate.c) use it.
 */
#define NPROF__HIST_COARSE_LOW_BITS 10  /* first octave: [2^10, 2^11) ns */
#define NPROF__HIST_COARSE_HIGH_BITS 40 /* values from 2^40 ns go into the last bucket */
#define NPROF__HIST_COARSE_SUB_BITS 2   /* 4 buckets per octave */
#define NPROF__HIST_COARSE                                                                     \
    (((NPROF__HIST_COARSE_HIGH_BITS - NPROF__HIST_COARSE_LOW_BITS) << NPROF__HIST_COARSE_SUB_BITS) + 2)

/* The coarse bucket of `v` ns. */
static inline unsigned nprof__hist_coarse_index(uint64_t v)
{
    if (v < (1ull << NPROF__HIST_COARSE_LOW_BITS))
        return 0;
    if (v >= (1ull << NPROF__HIST_COARSE_HIGH_BITS))
        return NPROF__HIST_COARSE - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (msb - NPROF__HIST_COARSE_SUB_BITS)) &
                   ((1u << NPROF__HIST_COARSE_SUB_BITS) - 1);
    return 1 + ((msb - NPROF__HIST_COARSE_LOW_BITS) << NPROF__HIST_COARSE_SUB_BITS) + sub;
}

/* The lower bound of coarse bucket `i`, in ns (0 for bucket 0). */
uint64_t nprof__hist_coarse_low(unsigned i);

/* Adds the counts of `f` into `coarse` (NPROF__HIST_COARSE counters). */
void nprof__hist_flat_coarse(const nprof__hist_flat *f, uint64_t *coarse);

/* The value at quantile `q` (nearest rank) of `count` values in `coarse`: the middle of the
 * bucket holding it (the lower bound of the last one), 0 when `count` is 0. */
uint64_t nprof__hist_coarse_quantile(const uint64_t *coarse, uint64_t count, double q);

#endif /* NPROF_MIDDLEWARE_HISTOGRAM_H */
