/*
 * runtime/memo.h: a bounded table that remembers values by a 128-bit key, shared by all
 * threads of a runtime, for results that are costly to compute and the same every time
 * (the SQL layer keeps query shapes in it).  Lookups take no lock and never wait; a writer
 * that finds its slot busy skips the write.  Values longer than the slot are not kept.
 */
#ifndef NPROF_RUNTIME_MEMO_H
#define NPROF_RUNTIME_MEMO_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "counter.h"

/* Bytes of value a slot holds. */
#define NPROF__MEMO_VALUE_MAX 992

typedef struct nprof__memo nprof__memo;

/* A table of `slots` slots (rounded up to even: two ways per set) from `a`, 1 KB each;
 * `seed` is for callers to key their hashes with (nprof__memo_seed).  Errors: NPROF_ENOMEM. */
int nprof__memo_create(nprof__alloc *a, uint32_t slots, uint64_t seed, nprof__memo **out);
void nprof__memo_destroy(nprof__alloc *a, nprof__memo *m);

/* The seed callers key their hashes with: random per runtime, so that nobody outside the
 * process can make two keys collide on purpose. */
uint64_t nprof__memo_seed(const nprof__memo *m);

/* Copies the value of `key` into `out` and returns its length, or returns -1 when the table
 * holds no value for it (or one longer than `cap`). */
long nprof__memo_get(nprof__memo *m, const uint64_t key[2], void *out, size_t cap);

/* Remembers `len` bytes as the value of `key`; values over NPROF__MEMO_VALUE_MAX bytes are
 * not kept.  Returns 1 when written. */
int nprof__memo_put(nprof__memo *m, const uint64_t key[2], const void *value, size_t len);

/* Counters: values written, lookups that found nothing, slots in use. */
typedef struct nprof__memo_stats {
    uint64_t slots, used, puts, misses;
} nprof__memo_stats;
void nprof__memo_get_stats(nprof__memo *m, nprof__memo_stats *st);

#endif /* NPROF_RUNTIME_MEMO_H */
