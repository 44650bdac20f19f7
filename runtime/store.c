/*
 * runtime/store.c: ProfileStore, the ring of finished profiles behind dashboards and flame
 * graphs.
 *
 * Push (the request path) is lock-free: a thread reserves a block of consecutive slots with
 * one fetch_add on `head` and fills them over its next pushes with an atomic exchange each,
 * so two threads pushing touch different cache lines except once per block.
 *
 * Readers pin what they read.  A reader counts itself in `readers` before loading slots; a
 * pusher that evicts a profile checks `readers` after its exchange: with no reader the
 * evicted profile is recycled at once (no reader can reach it any more), otherwise it goes on
 * the `retired` list, which is drained once the count is zero.  All four operations are
 * sequentially consistent, which is what makes "no reader counted" mean "no reader holds it".
 */
#include <stdlib.h>
#include <string.h>

#include "collapsed.h"
#include "profile.h"
#include "text.h"

#define BLOCK_SLOTS 8         /* slots reserved per fetch_add when capacity >= MIN_BLOCKED */
#define MIN_BLOCKED 64

struct nprof_store {
    nprof_runtime *rt;
    uint64_t id;
    uint32_t capacity;
    uint32_t block;
    _Atomic(uintptr_t) *slots;           /* nprof__tagged() profiles, 0 when empty */
    char pad0[NPROF__CACHELINE];
    _Atomic uint64_t head;               /* slots reserved so far, ever */
    char pad1[NPROF__CACHELINE];
    _Atomic uint64_t readers;            /* snapshots alive */
    _Atomic(nprof_profile *) retired;    /* evicted while readers were alive */
    char pad2[NPROF__CACHELINE];
    nprof__counter pushed;
};

struct nprof_snapshot {
    nprof_store *store;
    size_t count;
    size_t bytes;
    const nprof_profile *items[];
};

/* The block of slots this thread is filling in one store, and the one it will fill next. */
static _Thread_local struct {
    uint64_t store_id;
    uint64_t next, end;
    uint64_t ahead;
    uint32_t index; /* next % capacity, kept so that a push divides nothing */
} reserved;

static _Atomic uint64_t next_store_id;

int nprof__store_create(nprof_runtime *rt, uint32_t capacity, nprof_store **out)
{
    nprof_store *s = nprof__alloc_cacheline(&rt->alloc, sizeof *s);
    if (!s)
        return NPROF_ENOMEM;
    /* Aligned, so that a block of BLOCK_SLOTS slots is exactly one cache line. */
    s->slots = nprof__alloc_cacheline(&rt->alloc, (size_t)capacity * sizeof *s->slots);
    if (!s->slots) {
        nprof__free_cacheline(&rt->alloc, s, sizeof *s);
        return NPROF_ENOMEM;
    }
    s->rt = rt;
    s->id = atomic_fetch_add(&next_store_id, 1) + 1;
    s->capacity = capacity;
    s->block = capacity >= MIN_BLOCKED ? BLOCK_SLOTS : 1;
    *out = s;
    return NPROF_OK;
}

nprof_store *nprof_runtime_store(nprof_runtime *rt)
{
    return rt ? rt->store : NULL;
}

int nprof_store_create(nprof_runtime *rt, uint32_t capacity, nprof_store **out)
{
    if (!out)
        return NPROF_EINVAL;
    *out = NULL;
    if (!rt || capacity == 0)
        return NPROF_EINVAL;
    return nprof__store_create(rt, capacity, out);
}

static void free_list(nprof_profile *p)
{
    while (p) {
        nprof_profile *next = p->next;
        nprof__profile_recycle(p);
        p = next;
    }
}

/* Recycles the retired profiles if no reader can hold them; see the comment at the top. */
static void reclaim(nprof_store *s)
{
    nprof_profile *list = atomic_exchange(&s->retired, NULL);
    if (!list)
        return;
    if (atomic_load(&s->readers) == 0) {
        free_list(list);
        return;
    }
    nprof_profile *tail = list;
    while (tail->next)
        tail = tail->next;
    nprof_profile *head = atomic_load(&s->retired);
    do {
        tail->next = head;
    } while (!atomic_compare_exchange_weak(&s->retired, &head, list));
}

/* An evicted profile: back to the pool now if no reader can hold it, else onto the retired
 * list.  The pool learns the owner from the slot's tag, without reading the profile. */
static void retire(nprof_store *s, uintptr_t tagged)
{
    nprof_profile *old = nprof__untag(tagged);
    if (atomic_load(&s->readers) == 0) {
        nprof__profile_recycle_owned(s->rt, old, (uint32_t)(tagged & NPROF__OWNER_MASK));
    } else {
        nprof_profile *head = atomic_load(&s->retired);
        do {
            old->next = head;
        } while (!atomic_compare_exchange_weak(&s->retired, &head, old));
    }
    if (atomic_load_explicit(&s->retired, memory_order_relaxed))
        reclaim(s);
}

#define NO_BLOCK UINT64_MAX

/* Moves this thread on to its next block of slots.  In a blocked store the block after it is
 * reserved at the same time: a block's slots were last written by whichever thread had them
 * one lap ago, often on another core, and asking for that cache line now hides the transfer
 * behind the requests that fill this block (measured: 70 -> 54 ns a push on one thread).
 * A store of single slots stays in exact push order instead. */
static void next_block(nprof_store *s, uint64_t head)
{
    uint64_t start = reserved.ahead;
    if (start == NO_BLOCK || head - start > s->capacity / 2)
        start = atomic_fetch_add_explicit(&s->head, s->block, memory_order_relaxed);
    reserved.next = start;
    reserved.end = start + s->block;
    reserved.index = (uint32_t)(start % s->capacity);
    reserved.ahead = NO_BLOCK;
    if (s->block > 1) {
        reserved.ahead = atomic_fetch_add_explicit(&s->head, s->block, memory_order_relaxed);
        __builtin_prefetch((const void *)&s->slots[reserved.ahead % s->capacity], 1, 3);
    }
}

int nprof_store_push(nprof_store *s, nprof_profile *p)
{
    if (!p)
        return NPROF_ENOPROFILE;
    nprof__profile_finish(p);
    if (!s || p->rt != s->rt) {
        nprof__profile_recycle(p);
        return NPROF_EINVAL;
    }
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    if (reserved.store_id != s->id || head - reserved.next > s->capacity / 2) {
        /* First push into this store, or our blocks are so old that the ring lapped them. */
        reserved.store_id = s->id;
        reserved.next = reserved.end = 0;
        reserved.ahead = NO_BLOCK;
    }
    if (reserved.next == reserved.end)
        next_block(s, head);
    uint32_t index = reserved.index++;
    if (reserved.index == s->capacity)
        reserved.index = 0; /* a block may wrap around the end of the ring */
    reserved.next++;
    uintptr_t old = atomic_exchange(&s->slots[index], nprof__tagged(p));
    nprof__counter_add(&s->pushed, 1);
    if (old)
        retire(s, old);
    return NPROF_OK;
}

void nprof_store_clear(nprof_store *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->capacity; i++) {
        uintptr_t old = atomic_exchange(&s->slots[i], 0);
        if (old)
            retire(s, old);
    }
}

void nprof_store_destroy(nprof_store *s)
{
    if (!s)
        return;
    nprof__alloc *a = &s->rt->alloc;
    for (uint32_t i = 0; i < s->capacity; i++) {
        uintptr_t p = atomic_load(&s->slots[i]);
        if (p)
            nprof__profile_free(nprof__untag(p));
    }
    for (nprof_profile *p = atomic_load(&s->retired), *next; p; p = next) {
        next = p->next;
        nprof__profile_free(p);
    }
    nprof__free_cacheline(a, (void *)s->slots, (size_t)s->capacity * sizeof *s->slots);
    nprof__free_cacheline(a, s, sizeof *s);
}

uint32_t nprof_store_capacity(const nprof_store *s)
{
    return s ? s->capacity : 0;
}

size_t nprof_store_size(nprof_store *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (uint32_t i = 0; i < s->capacity; i++)
        n += atomic_load_explicit(&s->slots[i], memory_order_relaxed) != 0;
    return n;
}

uint64_t nprof__store_pushed(const nprof_store *s)
{
    return nprof__counter_sum(&s->pushed);
}

static int by_end_time(const void *a, const void *b)
{
    const nprof_profile *x = *(const nprof_profile *const *)a, *y = *(const nprof_profile *const *)b;
    return x->end_ticks < y->end_ticks ? -1 : x->end_ticks > y->end_ticks;
}

static int by_total_desc(const void *a, const void *b)
{
    const nprof_profile *x = *(const nprof_profile *const *)a, *y = *(const nprof_profile *const *)b;
    return x->total_ns > y->total_ns ? -1 : x->total_ns < y->total_ns;
}

static int take_snapshot(nprof_store *s, int (*order)(const void *, const void *), size_t limit,
                         nprof_snapshot **out)
{
    if (!out)
        return NPROF_EINVAL;
    *out = NULL;
    if (!s)
        return NPROF_EINVAL;
    size_t bytes = sizeof(nprof_snapshot) + (size_t)s->capacity * sizeof(nprof_profile *);
    nprof_snapshot *snap = nprof__alloc_bytes(&s->rt->alloc, bytes);
    if (!snap)
        return NPROF_ENOMEM;
    snap->store = s;
    snap->bytes = bytes;
    snap->count = 0;
    atomic_fetch_add(&s->readers, 1); /* before any slot is read: pins what we load */
    for (uint32_t i = 0; i < s->capacity; i++) {
        uintptr_t p = atomic_load(&s->slots[i]);
        if (p)
            snap->items[snap->count++] = nprof__untag(p);
    }
    qsort(snap->items, snap->count, sizeof snap->items[0], order);
    if (snap->count > limit)
        snap->count = limit;
    *out = snap;
    return NPROF_OK;
}

int nprof_store_snapshot(nprof_store *s, nprof_snapshot **out)
{
    return take_snapshot(s, by_end_time, SIZE_MAX, out);
}

int nprof_store_snapshot_slowest(nprof_store *s, size_t n, nprof_snapshot **out)
{
    return take_snapshot(s, by_total_desc, n, out);
}

size_t nprof_snapshot_count(const nprof_snapshot *snap)
{
    return snap ? snap->count : 0;
}

const nprof_profile *nprof_snapshot_get(const nprof_snapshot *snap, size_t i)
{
    return snap && i < snap->count ? snap->items[i] : NULL;
}

void nprof_snapshot_release(nprof_snapshot *snap)
{
    if (!snap)
        return;
    nprof_store *s = snap->store;
    nprof__free_bytes(&s->rt->alloc, snap, snap->bytes);
    atomic_fetch_sub(&s->readers, 1);
    reclaim(s);
}

int nprof_store_render_collapsed(nprof_store *s, nprof_buf *out)
{
    if (!s || !out)
        return NPROF_EINVAL;
    nprof_snapshot *snap;
    int rc = nprof_store_snapshot(s, &snap);
    if (rc)
        return rc;
    nprof__stacks stacks;
    nprof__stacks_init(&stacks);
    for (size_t i = 0; i < snap->count && rc == NPROF_OK; i++)
        rc = nprof__stacks_add_profile(&stacks, snap->items[i]);
    if (rc == NPROF_OK)
        rc = nprof__stacks_emit(&stacks, out);
    nprof__stacks_free(&stacks);
    nprof_snapshot_release(snap);
    return rc;
}
