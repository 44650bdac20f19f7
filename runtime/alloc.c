/*
 * runtime/alloc.c: a dedicated jemalloc arena when jemalloc can be had, else the C library's
 * malloc, behind one interface with the same byte accounting.
 *
 * Why libnanoprof.so does not link jemalloc: jemalloc keeps about 2.6 KB of initial-exec TLS,
 * more than glibc reserves for libraries loaded later, so a library with a DT_NEEDED on
 * libjemalloc.so.2 (or with libjemalloc_pic.a inside) fails to dlopen() -- which is how Python
 * loads extensions -- with "cannot allocate memory in static TLS block".  So we look for
 * jemalloc at run time instead: already in the process (the host linked it or LD_PRELOADed
 * it), then loadable with dlopen(); and otherwise fall back to malloc, saying why.
 *
 * What the runtime keeps (profiles, stores, snapshots) comes from here.  Renderers' output
 * buffers and their scratch space belong to the caller and are freed by the caller or before
 * the call returns, so they come from malloc (see runtime/text.c).
 *
 * The arena is used with MALLOCX_TCACHE_NONE: thread caches are shared between arenas, and a
 * block cached from our arena could otherwise be handed to the host (and the reverse).  The
 * runtime keeps hot objects in its own pools, so the cache is not missed on the request path.
 */
#include "alloc.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/config.h"
#include "text.h"

/* jemalloc's non-standard API, resolved at run time.  The flag encodings below are part of
 * jemalloc's stable ABI (jemalloc/jemalloc.h, since 4.0). */
#define JE_MALLOCX_ZERO 0x40
#define JE_MALLOCX_LG_ALIGN(la) ((int)(la))
#define CACHELINE_LG 6
#define JE_MALLOCX_TCACHE_NONE (1 << 8)
#define JE_MALLOCX_ARENA(a) ((int)(((unsigned)(a) + 1) << 20))


static int resolve_jemalloc(void *handle, struct nprof__jemalloc_api *api)
{
    api->mallocx = (void *(*)(size_t, int))dlsym(handle, "mallocx");
    api->sdallocx = (void (*)(void *, size_t, int))dlsym(handle, "sdallocx");
    api->nallocx = (size_t (*)(size_t, int))dlsym(handle, "nallocx");
    api->mallctl = (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(handle, "mallctl");
    return api->mallocx && api->sdallocx && api->nallocx && api->mallctl;
}

/* Finds jemalloc: in the process already, or by dlopen().  Fills `why` on failure and
 * *how with how it was found on success. */
static int find_jemalloc(struct nprof__jemalloc_api *api, char *why, size_t why_len, const char **how)
{
    *how = "jemalloc is in the process";
    if (resolve_jemalloc(RTLD_DEFAULT, api))
        return 1;
    *how = "libjemalloc.so.2 was already loaded locally";
    void *h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h) {
        *how = "loaded libjemalloc.so.2 with dlopen";
        h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    }
    if (!h) {
        const char *err = dlerror();
        snprintf(why, why_len,
                 "jemalloc is not in the process and dlopen(libjemalloc.so.2) failed: %s "
                 "(link or LD_PRELOAD jemalloc into the host to use it)",
                 err ? err : "unknown error");
        return 0;
    }
    if (!resolve_jemalloc(h, api)) {
        snprintf(why, why_len, "libjemalloc.so.2 lacks mallocx/sdallocx/nallocx/mallctl");
        return 0;
    }
    /* The handle stays open: the arena lives as long as the process may use it. */
    return 1;
}

int nprof__alloc_init(nprof__alloc *a, int mode)
{
    memset(a, 0, sizeof *a);
    if (mode == NPROF_ALLOCATOR_LIBC) {
        a->reason = "allocator=libc was configured";
        return NPROF_OK;
    }
    struct nprof__jemalloc_api api;
    const char *how;
    if (!find_jemalloc(&api, a->reason_buf, sizeof a->reason_buf, &how)) {
        if (mode == NPROF_ALLOCATOR_JEMALLOC)
            return nprof__fail(NPROF_EUNSUPPORTED, "allocator=jemalloc: %s", a->reason_buf);
        a->reason = a->reason_buf;
        return NPROF_OK;
    }
    unsigned arena;
    size_t sz = sizeof arena;
    if (api.mallctl("arenas.create", &arena, &sz, NULL, 0) != 0) {
        snprintf(a->reason_buf, sizeof a->reason_buf, "jemalloc refused arenas.create");
        if (mode == NPROF_ALLOCATOR_JEMALLOC)
            return nprof__fail(NPROF_EUNSUPPORTED, "allocator=jemalloc: %s", a->reason_buf);
        a->reason = a->reason_buf;
        return NPROF_OK;
    }
    a->je = api;
    a->use_jemalloc = 1;
    a->arena = arena;
    a->mallocx_flags = JE_MALLOCX_ARENA(arena) | JE_MALLOCX_TCACHE_NONE;
    snprintf(a->reason_buf, sizeof a->reason_buf, "dedicated jemalloc arena %u (%s)", arena, how);
    a->reason = a->reason_buf;
    return NPROF_OK;
}

void nprof__alloc_fini(nprof__alloc *a)
{
    if (!a->use_jemalloc)
        return;
    char name[64];
    snprintf(name, sizeof name, "arena.%u.destroy", a->arena);
    a->je.mallctl(name, NULL, NULL, NULL, 0);
    a->use_jemalloc = 0;
}

static void account(nprof__alloc *a, size_t usable)
{
    nprof__counter_add(&a->bytes, usable);
    nprof__counter_add(&a->blocks, 1);
    nprof__counter_add(&a->allocations, 1);
    /* Allocation is off the hot path (pools serve it), so an exact peak is affordable. */
    uint64_t now = nprof__counter_sum(&a->bytes);
    uint64_t peak = atomic_load_explicit(&a->peak_bytes, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&a->peak_bytes, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* The variants of one allocation; a block is freed with the kind it was allocated with. */
enum { PLAIN = 0, ZEROED = 1, CACHELINE = 2, UNZEROED = 4 };

static size_t block_size(size_t size, int kind)
{
    if (size == 0)
        size = 1;
    return kind & CACHELINE ? (size + 63) / 64 * 64 : size;
}

static int jemalloc_flags(const nprof__alloc *a, int kind)
{
    return a->mallocx_flags | (kind & CACHELINE ? JE_MALLOCX_LG_ALIGN(CACHELINE_LG) : 0);
}

static void *allocate(nprof__alloc *a, size_t size, int kind)
{
    size = block_size(size, kind);
    /* Aligned objects are structs: they start zeroed, unless their maker writes every field
     * it reads (UNZEROED). */
    int zero = (kind & ZEROED) || ((kind & CACHELINE) && !(kind & UNZEROED));
    void *p;
    size_t usable;
    if (a->use_jemalloc) {
        int flags = jemalloc_flags(a, kind);
        p = a->je.mallocx(size, zero ? flags | JE_MALLOCX_ZERO : flags);
        usable = p ? a->je.nallocx(size, flags) : 0;
    } else {
        p = kind & CACHELINE ? aligned_alloc(64, size) : zero ? calloc(1, size) : malloc(size);
        if (p && zero && (kind & CACHELINE))
            memset(p, 0, size);
        usable = p ? malloc_usable_size(p) : 0;
    }
    if (p)
        account(a, usable);
    return p;
}

static void release(nprof__alloc *a, void *p, size_t size, int kind)
{
    if (!p)
        return;
    size = block_size(size, kind);
    size_t usable;
    if (a->use_jemalloc) {
        int flags = jemalloc_flags(a, kind);
        usable = a->je.nallocx(size, flags);
        a->je.sdallocx(p, size, flags);
    } else {
        usable = malloc_usable_size(p);
        free(p);
    }
    nprof__counter_sub(&a->bytes, usable);
    nprof__counter_sub(&a->blocks, 1);
}

void *nprof__alloc_bytes(nprof__alloc *a, size_t size)
{
    return allocate(a, size, PLAIN);
}

void *nprof__alloc_zeroed(nprof__alloc *a, size_t size)
{
    return allocate(a, size, ZEROED);
}

void *nprof__alloc_cacheline(nprof__alloc *a, size_t size)
{
    return allocate(a, size, CACHELINE);
}

void *nprof__alloc_cacheline_unzeroed(nprof__alloc *a, size_t size)
{
    return allocate(a, size, CACHELINE | UNZEROED);
}

void nprof__free_bytes(nprof__alloc *a, void *p, size_t size)
{
    release(a, p, size, PLAIN);
}

void nprof__free_cacheline(nprof__alloc *a, void *p, size_t size)
{
    release(a, p, size, CACHELINE);
}

uint64_t nprof__alloc_arena_resident(nprof__alloc *a)
{
    if (!a->use_jemalloc)
        return 0;
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    a->je.mallctl("epoch", &epoch, &sz, &epoch, sz); /* refresh jemalloc's cached statistics */
    char name[64];
    size_t resident = 0;
    sz = sizeof resident;
    snprintf(name, sizeof name, "stats.arenas.%u.resident", a->arena);
    if (a->je.mallctl(name, &resident, &sz, NULL, 0) != 0)
        return 0;
    return resident;
}

const char *nprof__alloc_name(const nprof__alloc *a)
{
    return a->use_jemalloc ? "jemalloc" : "libc";
}
