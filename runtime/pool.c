/*
 * runtime/pool.c: reuse of profiles, keeping each profile's memory on the core that builds it.
 *
 * The store's ring mixes the threads' profiles, so the thread that evicts a profile is often
 * not the one that built it.  Reusing it on the evicting thread pulled its cache lines across
 * cores on every request: measured, two threads pushing into one store reached only 1.41x to
 * 1.55x the throughput of one, against 2.0x for two separate stores.  So a profile goes back
 * to the pool shard of the thread that built it (its owner shard, which the store keeps in
 * the low bits of its slots, so the evicting thread never reads the profile):
 *   - evicted by its own shard: straight into the shard's `ready` list;
 *   - evicted elsewhere: into the evicting shard's outbox for the owner, a one-line batch
 *     of NPROF__HANDBACK profiles that is pushed onto the owner's inbox when full;
 *   - evicted elsewhere by a shard that is running out (fewer than NPROF__POOL_ADOPT
 *     ready): adopted by it, as threads never push at quite the same rate.
 * The owner unpacks its inbox when `ready` runs dry.  One cache line crosses cores per batch
 * instead of a dozen per request.  In a steady stream a shard's `ready` stays short, so most
 * of the other shards' profiles end up adopted after all; what keeps that cheap is that
 * nothing reads an adopted profile until it is handed out, and the one handed out next has
 * its first lines prefetched (measured, two threads on one store: 1.49-1.54x one thread
 * before the prefetch, 1.59-1.64x after, 2.0x with a store each).
 *
 * A shard's lists are guarded by its `busy` flag, taken with one test-and-set: threads of
 * one shard (thread index modulo NPROF__SHARDS) rarely collide, and one that finds the flag
 * taken never waits: it allocates, or frees, instead.  Nothing here blocks.
 */
#include <stddef.h>
#include <string.h>

#include "profile.h"

static uint32_t my_shard_index(void)
{
    return nprof__thread_index() % NPROF__SHARDS;
}

static int try_lock(nprof__pool_shard *sh)
{
    return !atomic_flag_test_and_set_explicit(&sh->busy, memory_order_acquire);
}

static void unlock(nprof__pool_shard *sh)
{
    atomic_flag_clear_explicit(&sh->busy, memory_order_release);
}

/* Keeps an empty batch node for this shard's next outbox, or frees it when enough are kept:
 * a shard that only sends (a thread that evicts but never builds) would otherwise make its
 * receivers hoard nodes.  Caller holds `busy`. */
static void keep_spare(nprof_runtime *rt, nprof__pool_shard *sh, nprof__batch *b)
{
    if (sh->spare_count >= NPROF__POOL_SPARE) {
        nprof__free_cacheline(&rt->alloc, b, sizeof *b);
        return;
    }
    b->next = sh->spare;
    sh->spare = b;
    sh->spare_count++;
}

/* Moves one batch of the inbox into `ready`; profiles that do not fit are freed, so that a
 * shard never holds more than NPROF__POOL_READY idle profiles.  Caller holds `busy`. */
static int unpack_inbox(nprof_runtime *rt, nprof__pool_shard *sh)
{
    if (!sh->pending) {
        if (!atomic_load_explicit(&sh->inbox, memory_order_relaxed))
            return 0;
        sh->pending = atomic_exchange_explicit(&sh->inbox, NULL, memory_order_acquire);
    }
    nprof__batch *b = sh->pending;
    if (!b)
        return 0;
    sh->pending = b->next;
    atomic_fetch_sub_explicit(&sh->inbox_batches, 1, memory_order_relaxed);
    for (int i = 0; i < NPROF__HANDBACK; i++) {
        if (sh->ready_count < NPROF__POOL_READY)
            sh->ready[sh->ready_count++] = b->items[i];
        else
            nprof__profile_free(b->items[i]);
    }
    keep_spare(rt, sh, b);
    return 1;
}

/* Asks for the cache lines a request writes first in the profile this shard hands out
 * next: it was often built, or last reset, on another core, and the lines arrive while the
 * current request runs instead of when the next one begins. */
static void prefetch_profile(const nprof_profile *p)
{
    const char *b = (const char *)p;
    for (size_t at = 0; at < offsetof(nprof_profile, phase_stack); at += NPROF__CACHELINE)
        __builtin_prefetch(b + at, 1, 3);
    __builtin_prefetch(&p->phase_stack[0], 1, 3);
    __builtin_prefetch(&p->spans_inline[0], 1, 3);
    __builtin_prefetch(&p->text_inline[0], 1, 3);
}

NPROF__HOT_PATH
nprof_profile *nprof__profile_obtain(nprof_runtime *rt)
{
    uint32_t me = my_shard_index();
    nprof__pool_shard *sh = &rt->pool[me];
    nprof_profile *p = NULL;
    if (try_lock(sh)) {
        if (sh->ready_count || unpack_inbox(rt, sh))
            p = sh->ready[--sh->ready_count];
        if (sh->ready_count)
            prefetch_profile(sh->ready[sh->ready_count - 1]);
        unlock(sh);
    }
    if (p) {
        p->owner_shard = me; /* an adopted profile changes owner here */
        nprof__profile_reset(p);
        return p;
    }
    p = nprof__alloc_cacheline_unzeroed(&rt->alloc, sizeof *p);
    if (p && nprof__profile_init(p, rt, me) != NPROF_OK) {
        nprof__free_cacheline(&rt->alloc, p, sizeof *p);
        p = NULL;
    }
    return p;
}

/* Pushes a full batch onto the owner's inbox (a Treiber stack; the owner takes it whole).
 * An owner that has more coming back than it reuses (its requests stopped, or a reader held
 * the store's evictions back and then let them all go) gets at most NPROF__INBOX_BATCHES;
 * beyond that the profiles are freed, so idle memory stays bounded. */
static void send_batch(nprof_runtime *rt, nprof__pool_shard *owner, nprof__batch *b)
{
    if (atomic_fetch_add_explicit(&owner->inbox_batches, 1, memory_order_relaxed) >=
        NPROF__INBOX_BATCHES) {
        atomic_fetch_sub_explicit(&owner->inbox_batches, 1, memory_order_relaxed);
        for (int i = 0; i < NPROF__HANDBACK; i++)
            nprof__profile_free(b->items[i]);
        nprof__free_cacheline(&rt->alloc, b, sizeof *b);
        return;
    }
    nprof__batch *head = atomic_load_explicit(&owner->inbox, memory_order_relaxed);
    do {
        b->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&owner->inbox, &head, b, memory_order_release,
                                                    memory_order_relaxed));
}

NPROF__HOT_PATH
void nprof__profile_recycle_owned(nprof_runtime *rt, nprof_profile *p, uint32_t owner)
{
    uint32_t me = my_shard_index();
    nprof__pool_shard *sh = &rt->pool[me];
    if (!try_lock(sh)) {
        nprof__profile_free(p); /* another thread of this shard is here: never wait */
        return;
    }
    if (owner == me || sh->ready_count < NPROF__POOL_ADOPT) {
        /* Its own profile; or another shard's, adopted because this shard is about to
         * allocate: threads never push at exactly the same rate, and shipping every profile
         * home had the faster thread allocate and the slower one free, forever (measured:
         * malloc and free across threads, two threads at 0.8x one).  An adopted profile is
         * not read here (its lines are on the other core): it becomes this shard's when it
         * is handed out (nprof__profile_obtain), and what a big request grew goes back then.
         * Our own goes back now. */
        if (owner == me)
            nprof__profile_trim(p);
        if (sh->ready_count < NPROF__POOL_READY) {
            sh->ready[sh->ready_count++] = p;
            p = NULL;
        }
    } else {
        nprof__batch *b = sh->outbox[owner];
        if (!b) {
            b = sh->spare;
            if (b) {
                sh->spare = b->next;
                sh->spare_count--;
            } else {
                b = nprof__alloc_cacheline(&rt->alloc, sizeof *b);
            }
            sh->outbox[owner] = b;
            sh->outbox_count[owner] = 0;
        }
        if (b) {
            b->items[sh->outbox_count[owner]++] = p;
            p = NULL;
            if (sh->outbox_count[owner] == NPROF__HANDBACK) {
                sh->outbox[owner] = NULL;
                send_batch(rt, &rt->pool[owner], b);
            }
        }
    }
    unlock(sh);
    if (p)
        nprof__profile_free(p); /* the pool is full (or out of memory for a batch) */
}

void nprof__profile_recycle(nprof_profile *p)
{
    nprof__profile_recycle_owned(p->rt, p, p->owner_shard);
}

static void free_batches(nprof_runtime *rt, nprof__batch *b, int with_items)
{
    while (b) {
        nprof__batch *next = b->next;
        for (int i = 0; with_items && i < NPROF__HANDBACK; i++)
            nprof__profile_free(b->items[i]);
        nprof__free_cacheline(&rt->alloc, b, sizeof *b);
        b = next;
    }
}

void nprof__pool_destroy(nprof_runtime *rt)
{
    for (int s = 0; s < NPROF__SHARDS; s++) {
        nprof__pool_shard *sh = &rt->pool[s];
        for (uint32_t i = 0; i < sh->ready_count; i++)
            nprof__profile_free(sh->ready[i]);
        sh->ready_count = 0;
        free_batches(rt, sh->pending, 1);
        free_batches(rt, atomic_exchange(&sh->inbox, NULL), 1);
        free_batches(rt, sh->spare, 0);
        sh->pending = sh->spare = NULL;
        sh->spare_count = 0;
        for (int o = 0; o < NPROF__SHARDS; o++) {
            nprof__batch *b = sh->outbox[o];
            if (!b)
                continue;
            for (int i = 0; i < sh->outbox_count[o]; i++)
                nprof__profile_free(b->items[i]);
            nprof__free_cacheline(&rt->alloc, b, sizeof *b);
            sh->outbox[o] = NULL;
        }
    }
}
