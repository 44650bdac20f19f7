/*
 * runtime/memo.c: the memo table (memo.h).
 *
 * Each slot is a seqlock: a writer makes the sequence odd, writes, and makes it even again;
 * a reader copies the slot and keeps the copy only if the sequence was even and unchanged
 * across it.  Every field is an atomic read and written with relaxed order, the fences
 * giving the order (the C11 seqlock of Boehm, "Can seqlocks get along with programming
 * language memory models?", 2012), so a reader racing a writer sees a changed sequence, not
 * undefined behaviour.  Writers do not wait for each other: the one that finds a slot odd
 * leaves it.  Two ways per set, so that two hot keys that share a set can both stay.
 */
#include "memo.h"

#include <stdatomic.h>
#include <string.h>

#include "nanoprof/common.h"

#define WORDS (NPROF__MEMO_VALUE_MAX / 8)

typedef struct memo_slot {
    _Atomic uint64_t seq; /* 0: never written; odd: being written */
    _Atomic uint64_t key[2];
    _Atomic uint64_t len;
    _Atomic uint64_t words[WORDS];
} memo_slot;

_Static_assert(sizeof(memo_slot) == 1024, "a memo slot is 1 KB");

struct nprof__memo {
    uint64_t seed;
    uint32_t sets;
    memo_slot *slots;
    nprof__counter puts, misses;
};

int nprof__memo_create(nprof__alloc *a, uint32_t slots, uint64_t seed, nprof__memo **out)
{
    *out = NULL;
    nprof__memo *m = nprof__alloc_cacheline(a, sizeof *m);
    if (!m)
        return NPROF_ENOMEM;
    m->seed = seed;
    m->sets = slots / 2 + (slots & 1);
    if (!m->sets)
        m->sets = 1;
    m->slots = nprof__alloc_cacheline(a, (size_t)m->sets * 2 * sizeof(memo_slot));
    if (!m->slots) {
        nprof__free_cacheline(a, m, sizeof *m);
        return NPROF_ENOMEM;
    }
    *out = m;
    return NPROF_OK;
}

void nprof__memo_destroy(nprof__alloc *a, nprof__memo *m)
{
    if (!m)
        return;
    nprof__free_cacheline(a, m->slots, (size_t)m->sets * 2 * sizeof(memo_slot));
    nprof__free_cacheline(a, m, sizeof *m);
}

uint64_t nprof__memo_seed(const nprof__memo *m)
{
    return m->seed;
}

static memo_slot *set_of(nprof__memo *m, const uint64_t key[2])
{
    return &m->slots[(size_t)(key[0] % m->sets) * 2];
}

/* Copies `n` bytes of words into out (n <= WORDS * 8). */
static void copy_out(const memo_slot *e, unsigned char *out, size_t n)
{
    size_t w = 0;
    for (; (w + 1) * 8 <= n; w++) {
        uint64_t v = atomic_load_explicit(&e->words[w], memory_order_relaxed);
        memcpy(out + w * 8, &v, 8);
    }
    if (w * 8 < n) {
        uint64_t v = atomic_load_explicit(&e->words[w], memory_order_relaxed);
        memcpy(out + w * 8, &v, n - w * 8);
    }
}

static void copy_in(memo_slot *e, const unsigned char *in, size_t n)
{
    size_t w = 0;
    for (; (w + 1) * 8 <= n; w++) {
        uint64_t v;
        memcpy(&v, in + w * 8, 8);
        atomic_store_explicit(&e->words[w], v, memory_order_relaxed);
    }
    if (w * 8 < n) {
        uint64_t v = 0;
        memcpy(&v, in + w * 8, n - w * 8);
        atomic_store_explicit(&e->words[w], v, memory_order_relaxed);
    }
}

long nprof__memo_get(nprof__memo *m, const uint64_t key[2], void *out, size_t cap)
{
    memo_slot *set = set_of(m, key);
    for (int way = 0; way < 2; way++) {
        memo_slot *e = &set[way];
        uint64_t seq = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (!seq || (seq & 1) ||
            atomic_load_explicit(&e->key[0], memory_order_relaxed) != key[0] ||
            atomic_load_explicit(&e->key[1], memory_order_relaxed) != key[1])
            continue;
        uint64_t len = atomic_load_explicit(&e->len, memory_order_relaxed);
        if (len > cap || len > NPROF__MEMO_VALUE_MAX)
            continue;
        copy_out(e, out, (size_t)len);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) == seq)
            return (long)len;
    }
    nprof__counter_add(&m->misses, 1);
    return -1;
}

int nprof__memo_put(nprof__memo *m, const uint64_t key[2], const void *value, size_t len)
{
    if (len > NPROF__MEMO_VALUE_MAX)
        return 0;
    memo_slot *set = set_of(m, key);
    /* The way that holds this key already, else an empty one, else one chosen by the key. */
    memo_slot *e = NULL;
    for (int way = 0; way < 2 && !e; way++)
        if (atomic_load_explicit(&set[way].key[0], memory_order_relaxed) == key[0] &&
            atomic_load_explicit(&set[way].key[1], memory_order_relaxed) == key[1])
            e = &set[way];
    for (int way = 0; way < 2 && !e; way++)
        if (atomic_load_explicit(&set[way].seq, memory_order_relaxed) == 0)
            e = &set[way];
    if (!e)
        e = &set[key[1] & 1];
    uint64_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1,
                                                              memory_order_acquire,
                                                              memory_order_relaxed))
        return 0; /* another writer is here: never wait */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->key[0], key[0], memory_order_relaxed);
    atomic_store_explicit(&e->key[1], key[1], memory_order_relaxed);
    atomic_store_explicit(&e->len, len, memory_order_relaxed);
    copy_in(e, value, len);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
    nprof__counter_add(&m->puts, 1);
    return 1;
}

void nprof__memo_get_stats(nprof__memo *m, nprof__memo_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!m)
        return;
    st->slots = (uint64_t)m->sets * 2;
    for (uint64_t i = 0; i < st->slots; i++)
        st->used += atomic_load_explicit(&m->slots[i].seq, memory_order_relaxed) != 0;
    st->puts = nprof__counter_sum(&m->puts);
    st->misses = nprof__counter_sum(&m->misses);
}
