/*
 * runtime/profile.h: the layout of a RequestProfile and of the runtime, shared by the files
 * that build, render and store profiles.  Nothing outside runtime/ sees these structs.
 */
#ifndef NPROF_RUNTIME_PROFILE_H
#define NPROF_RUNTIME_PROFILE_H

#include <stdatomic.h>
#include <stdint.h>

#include "alloc.h"
#include "counter.h"
#include "ctl.h"
#include "memo.h"
#include "patterns.h"
#include "rules.h"
#include "samples.h"
#include "nanoprof/clock.h"
#include "nanoprof/config.h"
#include "nanoprof/profile.h"
#include "nanoprof/runtime.h"
#include "nanoprof/store.h"

#define NPROF__INLINE_SPANS 16
#define NPROF__INLINE_QUERIES 16
#define NPROF__INLINE_TEXT 2048
#define NPROF__PHASE_DEPTH 16
#define NPROF__METHOD_MAX 16
#define NPROF__REQUEST_ID_MAX 64
#define NPROF__POOL_READY 16 /* profiles a shard keeps ready for reuse */
#define NPROF__POOL_ADOPT 4  /* below this many ready, a shard keeps others' profiles */
#define NPROF__HANDBACK 7    /* profiles per hand-back batch: a batch is one cache line */
#define NPROF__POOL_SPARE 8  /* empty batch nodes a shard keeps */
#define NPROF__INBOX_BATCHES 2 /* batches waiting for a shard, at most */
/* The most blocks one shard's pool holds idle: ready profiles, waiting batches with their
 * profiles, spare nodes, and outboxes (one per other shard) not yet full. */
#define NPROF__POOL_IDLE_BLOCKS                                                       \
    (NPROF__POOL_READY + NPROF__INBOX_BATCHES * (NPROF__HANDBACK + 1) + NPROF__POOL_SPARE + \
     NPROF__SHARDS * NPROF__HANDBACK)

typedef struct nprof__span {
    const char *name;
    uint32_t name_len;
    int32_t parent;       /* NPROF_SPAN_ROOT or an earlier span's id */
    uint64_t start_ticks;
    uint64_t end_ticks;   /* valid when !open */
    int8_t phase;         /* enum nprof_phase, or -1 */
    uint8_t tracked;      /* begun under NPROF_SPAN_CURRENT: part of the current chain */
    uint8_t open;
    uint8_t unclosed;     /* closed by its parent or by the end of the request */
} nprof__span;

typedef struct nprof__query {
    const char *sql;
    const char *params;
    const char *normalized;
    const char *error;    /* NULL: it succeeded */
    const char *callsite; /* NULL unless first of its shape or slow, and the recorder gave one */
    uint32_t sql_len, sql_full_len, params_len, normalized_len, error_len, callsite_len;
    uint32_t batch_rows;  /* nprof_query.batch_rows */
    uint32_t flags;       /* NPROF_QUERY_* */
    int32_t span;
    uint64_t start_offset_ns; /* from the start of the request */
    uint64_t duration_ns;
    uint64_t fingerprint;
} nprof__query;

/* Overflow text, past the profile's inline text area. */
typedef struct nprof__chunk {
    struct nprof__chunk *next;
    size_t size; /* bytes allocated for this chunk, header included */
} nprof__chunk;

/* Where a profile's generation lives (profile.c): one cache line per profile, taken from
 * slabs that are never unmapped, so that a thread's current-profile slot can check a
 * profile it points at even after that profile went back to the allocator, to a store that
 * was destroyed, or to a runtime that is gone.  The generation is odd while a request is
 * live in the profile and even otherwise; it only grows, so a (profile, generation) pair
 * taken while a request was live never matches again once that request ended. */
typedef struct nprof__gen_cell {
    _Alignas(NPROF__CACHELINE) _Atomic uint64_t gen; /* written by the profile's owner */
    struct nprof__gen_cell *next_free;               /* free list, under its lock */
} nprof__gen_cell;

typedef struct nprof__phase_entry {
    int32_t phase;
    int32_t span;          /* the phase's span, or -1 when it could not be kept */
    uint64_t resume_ticks; /* when this phase last started running */
} nprof__phase_entry;

struct nprof_profile {
    /* Links, heap pointers and the owner: set when the profile is made or grows, read when
     * it is freed or reused.  The store keeps the owner in its slots too, so a thread that
     * evicts the profile hands it back without reading it (pool.c). */
    nprof_runtime *rt;
    nprof_profile *next;   /* link in a store's list of retired profiles */
    nprof__gen_cell *cell; /* the profile's generation, for the threads' current slots */
    uint32_t owner_shard;  /* pool shard of the thread that built it (pool.c) */
    nprof__chunk *chunks;
    nprof__span *spans;    /* spans_inline or a heap array */
    nprof__query *queries; /* queries_inline or a heap array */
    uint32_t span_cap, query_cap;
    /* ---- everything from here to `reset_end` is zeroed when a profile is reused ---- */
    int ended;
    int status;
    uint64_t start_ticks, end_ticks;
    uint64_t start_ns, total_ns;
    uint64_t phase_ticks[NPROF_PHASE_COUNT]; /* exclusive time measured by begin/end */
    uint64_t phase_extra_ns[NPROF_PHASE_COUNT]; /* added by nprof_phase_add_ns */
    uint32_t phase_depth;
    int32_t current_span;
    uint64_t sql_total_ns, sql_count, queries_dropped, spans_dropped;
    uint32_t span_count, query_count;
    uint32_t pattern_count, exact_used;    /* patterns.c */
    uint32_t last_pattern;  /* patterns.c: the last query's pattern number + 1, 0: none */
    uint64_t slow_count, exact_repeats, patterns_dropped;
    const char *path, *route;
    uint32_t path_len, route_len, method_len, request_id_len;
    size_t heap_bytes;     /* bytes allocated beyond the struct itself */
    nprof__samples samples; /* sampled call stacks (samples.c), in the arena */
    int params_off;        /* nprof_profile_set_param_summaries(p, 0) */
    /* sqlhooks/record.c: the last query shaped with its whole text, which the next query's
     * text is compared with (an N+1 loop sends one text again and again): its number in
     * `queries` + 1 (0: none), and its text hash (the rest of its shape is in its slot). */
    uint32_t shape_memo;
    uint64_t shape_memo_text_hash;
    char reset_end[1];
    /* ---- not zeroed, written anew by every request ---- */
    char *text_cur;
    size_t text_left;
    char method[NPROF__METHOD_MAX];
    char request_id[NPROF__REQUEST_ID_MAX];
    /* ---- not zeroed: valid up to phase_depth / span_count / query_count ---- */
    nprof__phase_entry phase_stack[NPROF__PHASE_DEPTH];
    /* patterns.c: shapes in first-seen order, an index of them by fingerprint and the set of
     * exact-repeat hashes; inline first, then in the profile's arena (see nprof__profile_arena) */
    nprof__pattern *patterns;
    uint32_t *pattern_index;     /* open addressing: pattern number + 1, 0 = empty */
    uint64_t *exact;             /* open addressing: hash of text and parameters, 0 = empty */
    uint32_t pattern_cap, index_cap, exact_cap;
    nprof__pattern patterns_inline[NPROF__INLINE_PATTERNS];
    uint32_t index_inline[2 * NPROF__INLINE_PATTERNS];
    uint64_t exact_inline[NPROF__INLINE_EXACT];
    nprof__span spans_inline[NPROF__INLINE_SPANS];
    nprof__query queries_inline[NPROF__INLINE_QUERIES];
    char text_inline[NPROF__INLINE_TEXT];
};

/* A batch of profiles on its way back to the shard that built them (pool.c). */
typedef struct nprof__batch {
    struct nprof__batch *next;
    nprof_profile *items[NPROF__HANDBACK];
} nprof__batch;

/* One thread shard's share of the profile pool (pool.c). */
typedef struct nprof__pool_shard {
    /* Written by other shards: full batches of this shard's profiles. */
    _Alignas(NPROF__CACHELINE) _Atomic(nprof__batch *) inbox;
    _Atomic uint32_t inbox_batches; /* sent and not yet unpacked (inbox + pending) */
    /* The rest is touched only by this shard's threads, while they hold `busy`. */
    _Alignas(NPROF__CACHELINE) atomic_flag busy;
    uint32_t ready_count, spare_count;
    nprof__batch *pending;                  /* taken from the inbox, not yet unpacked */
    nprof__batch *spare;                    /* empty batch nodes */
    nprof_profile *ready[NPROF__POOL_READY]; /* built here, free to reuse */
    nprof__batch *outbox[NPROF__SHARDS];    /* filling, one per shard the profiles go back to */
    uint8_t outbox_count[NPROF__SHARDS];
} nprof__pool_shard;

/*
 * Three fields below are the SQL layer's (sqlhooks/) state, kept here on purpose, although
 * runtime/ knows nothing of SQL.  The layers run runtime <- sqlhooks: the runtime may not call
 * up into sqlhooks/ to create or free them, and nothing else is created and destroyed with
 * the runtime they belong to.  So nprof_runtime_create() builds them from the one
 * configuration, as generic pieces (a compiled rule, a memo), a bad pattern or a lack of
 * memory fails there instead of on some request's first query, and sqlhooks/ reads them
 * through this struct.  slow_query_ns is the runtime's own too: a profile counts slow queries.
 */
struct nprof_runtime {
    nprof_config cfg;
    uint64_t request_id_seed;
    uint64_t slow_query_ns;    /* cfg.slow_query_threshold_ms in ns */
    nprof__rule sql_ignore;    /* cfg.sql_ignore, compiled; matched by sqlhooks/shape_cache.c */
    nprof__memo *shapes;       /* the SQL layer's shape cache (cfg.sql_shape_cache), or NULL;
                                  used by sqlhooks/shape_cache.c, shown by ctl.c */
    nprof_store *store;
    char pad0[NPROF__CACHELINE];
    _Atomic int enabled;
    char pad1[NPROF__CACHELINE];
    nprof__pool_shard pool[NPROF__SHARDS]; /* recycled profiles, by thread shard (profile.c) */
    nprof__counter requests, requests_submitted, queries, queries_dropped, spans_dropped;
    nprof__alloc alloc;
    nprof__ctl_registry ctl;   /* the upper layers' introspection providers (ctl.h) */
};

/* Duration of a closed span in ns (0 while open). */
static inline uint64_t nprof__span_ns(const nprof__span *s)
{
    return !s->open && s->end_ticks > s->start_ticks ? nprof_ticks_to_ns(s->end_ticks - s->start_ticks) : 0;
}

/* Pool (pool.c): a fresh or reused profile of `rt`, reset; NULL when out of memory. */
nprof_profile *nprof__profile_obtain(nprof_runtime *rt);

/* Pool: gives a profile back for reuse.  `owner_shard` is p->owner_shard, passed by callers
 * that know it without reading the profile (the store keeps it in its slots). */
void nprof__profile_recycle_owned(nprof_runtime *rt, nprof_profile *p, uint32_t owner_shard);
void nprof__profile_recycle(nprof_profile *p);

/* Pool: frees every profile and batch the pool holds (runtime destruction). */
void nprof__pool_destroy(nprof_runtime *rt);

/* Profile memory (profile.c): a new profile's fields (NPROF_ENOMEM when no generation
 * cell could be had: then free `p` with nprof__free_cacheline), making a used one new again
 * (run by the thread that reuses it), freeing one for good. */
int nprof__profile_init(nprof_profile *p, nprof_runtime *rt, uint32_t owner_shard);
void nprof__profile_reset(nprof_profile *p);
void nprof__profile_release_heap(nprof_profile *p);

/* Frees what the profile grew beyond its struct, if anything (rarely: a big request). */
static inline void nprof__profile_trim(nprof_profile *p)
{
    if (__builtin_expect(p->chunks || p->spans != p->spans_inline || p->queries != p->queries_inline, 0))
        nprof__profile_release_heap(p);
}
void nprof__profile_free(nprof_profile *p);

/* nprof_query_record() for the SQL layer, with the seeded hash of the whole query text it
 * computed already (0: none), so that the exact-repeat count does not hash it again. */
int nprof__query_record_hashed(nprof_profile *p, const nprof_query *q, uint64_t text_hash);

/* nprof_phase_end(p, from) then nprof_phase_begin(p, to), at one tick (one clock read):
 * what a middleware's phase marks do.  Returns begin's result. */
int nprof__phase_switch(nprof_profile *p, int from, int to);

/* Store slots hold a profile pointer with its owner shard in the low bits (profiles are
 * cache-line aligned), so evicting one tells where it goes back without touching it. */
#define NPROF__OWNER_MASK ((uintptr_t)(NPROF__SHARDS - 1))
static inline uintptr_t nprof__tagged(const nprof_profile *p)
{
    return (uintptr_t)p | p->owner_shard;
}
static inline nprof_profile *nprof__untag(uintptr_t v)
{
    return (nprof_profile *)(v & ~NPROF__OWNER_MASK);
}

/* Ends the request if needed; used by submit and push. */
void nprof__profile_finish(nprof_profile *p);

/* Empties the calling thread's current slot if it holds a live request of `rt` (runtime
 * destruction: the request's profile is about to outlive its runtime). */
void nprof__current_forget_runtime(const nprof_runtime *rt);

/* `bytes` of 8-byte aligned memory that lives as long as the request's data (the profile's
 * arena, within max_profile_bytes), or NULL past the budget. */
void *nprof__profile_arena(nprof_profile *p, size_t bytes);

/* Copies up to `max` bytes of `s` (`len` of them) into the profile's text; *kept receives
 * how many.  NULL past the budget. */
const char *nprof__profile_copy_text(nprof_profile *p, const char *s, size_t len, size_t max,
                                     uint32_t *kept);

/* A live request's figures brought up to `now` for reading them, and put back: the total
 * becomes the time so far and the innermost open phase counts up to `now`.  Nothing may
 * record into the profile in between.  Does nothing to a request that has ended. */
typedef struct nprof__interim {
    int active;
    int phase;           /* the phase whose ticks were brought up to now, or -1 */
    uint64_t phase_ticks; /* its ticks before */
} nprof__interim;
void nprof__profile_interim_begin(nprof_profile *p, uint64_t now, nprof__interim *undo);
void nprof__profile_interim_end(nprof_profile *p, const nprof__interim *undo);

/* Exclusive phase time in ns, measured plus added. */
uint64_t nprof__phase_ns(const nprof_profile *p, int phase);

/* Store internals used by the runtime. */
int nprof__store_create(nprof_runtime *rt, uint32_t capacity, nprof_store **out);
uint64_t nprof__store_pushed(const nprof_store *s);

#endif /* NPROF_RUNTIME_PROFILE_H */
