/*
 * runtime/alloc.h: the runtime's one allocator layer.  Every byte the runtime holds comes
 * from here, so it can be served by a dedicated jemalloc arena (never mixing with the host's
 * heap) and reported exactly, whichever allocator serves it.
 */
#ifndef NPROF_RUNTIME_ALLOC_H
#define NPROF_RUNTIME_ALLOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "counter.h"

/* jemalloc's non-standard API, resolved at run time (see alloc.c). */
struct nprof__jemalloc_api {
    void *(*mallocx)(size_t, int);
    void (*sdallocx)(void *, size_t, int);
    size_t (*nallocx)(size_t, int);
    int (*mallctl)(const char *, void *, size_t *, void *, size_t);
};

typedef struct nprof__alloc {
    struct nprof__jemalloc_api je;
    int use_jemalloc;
    unsigned arena;          /* jemalloc arena index */
    int mallocx_flags;       /* MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE */
    const char *reason;      /* why this allocator, static or in reason_buf */
    char reason_buf[256];
    nprof__counter bytes;    /* usable bytes of live blocks */
    nprof__counter blocks;   /* live blocks */
    nprof__counter allocations; /* blocks ever allocated: what the pools did not serve */
    _Atomic uint64_t peak_bytes;
} nprof__alloc;

/* Chooses and sets up the allocator for `mode` (enum nprof_allocator_mode).
 * Errors: NPROF_EUNSUPPORTED when jemalloc is demanded and not available. */
int nprof__alloc_init(nprof__alloc *a, int mode);

/* Releases the arena.  Every block must have been freed. */
void nprof__alloc_fini(nprof__alloc *a);

/* `size` bytes, or NULL.  Never returns memory from the host's heap when on jemalloc. */
void *nprof__alloc_bytes(nprof__alloc *a, size_t size);
void *nprof__alloc_zeroed(nprof__alloc *a, size_t size);

/* `size` bytes aligned to a cache line and zeroed, for objects whose fields must not share
 * one; freed with nprof__free_cacheline(). */
void *nprof__alloc_cacheline(nprof__alloc *a, size_t size);
/* The same with its contents undefined, for a struct whose maker writes every field it reads
 * before reading it (a profile: most of its 7 KB are inline arrays valid only up to their
 * counts, and zeroing them all cost every new profile about 110 cache lines). */
void *nprof__alloc_cacheline_unzeroed(nprof__alloc *a, size_t size);
void nprof__free_cacheline(nprof__alloc *a, void *p, size_t size);

/* Frees a block of nprof__alloc_bytes() or nprof__alloc_zeroed() of that `size`.  Accepts NULL. */
void nprof__free_bytes(nprof__alloc *a, void *p, size_t size);

/* Resident bytes of the arena (jemalloc only; 0 otherwise). */
uint64_t nprof__alloc_arena_resident(nprof__alloc *a);

const char *nprof__alloc_name(const nprof__alloc *a);

#endif /* NPROF_RUNTIME_ALLOC_H */
