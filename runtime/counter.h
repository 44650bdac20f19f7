/*
 * runtime/counter.h: per-thread slots and sharded counters, for statistics that many threads
 * bump on the request path.
 *
 * A plain atomic counter shared by all threads costs a cache-line transfer per increment
 * once two cores use it.  A sharded counter gives each thread (by its small thread index) a
 * cache line of its own; reading sums the shards, which is rare (introspection).
 */
#ifndef NPROF_RUNTIME_COUNTER_H
#define NPROF_RUNTIME_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

#define NPROF__CACHELINE 64
#define NPROF__SHARDS 16

/* A small per-thread number, assigned on first use (1, 2, 3, ...).  Never 0. */
extern _Thread_local uint32_t nprof__thread_index_value;
uint32_t nprof__thread_index_assign(void);

static inline uint32_t nprof__thread_index(void)
{
    uint32_t i = nprof__thread_index_value;
    return __builtin_expect(i != 0, 1) ? i : nprof__thread_index_assign();
}

typedef struct nprof__shard {
    _Alignas(NPROF__CACHELINE) _Atomic uint64_t value;
} nprof__shard;

typedef struct nprof__counter {
    nprof__shard shard[NPROF__SHARDS];
} nprof__counter;

static inline void nprof__counter_add(nprof__counter *c, uint64_t delta)
{
    atomic_fetch_add_explicit(&c->shard[nprof__thread_index() % NPROF__SHARDS].value, delta,
                              memory_order_relaxed);
}

/* Subtracting is adding the two's complement; the sum of all shards stays exact. */
static inline void nprof__counter_sub(nprof__counter *c, uint64_t delta)
{
    nprof__counter_add(c, (uint64_t)0 - delta);
}

static inline uint64_t nprof__counter_sum(const nprof__counter *c)
{
    uint64_t sum = 0;
    for (int i = 0; i < NPROF__SHARDS; i++)
        sum += atomic_load_explicit(&c->shard[i].value, memory_order_relaxed);
    return sum;
}

#endif /* NPROF_RUNTIME_COUNTER_H */
