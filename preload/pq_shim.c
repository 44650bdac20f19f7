/*
 * preload/pq_shim.c: libnanoprof_pq.so, the preloadable libpq shim.
 *
 *     LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnanoprof_pq.so python3 app.py
 *
 * It defines libpq's query entry points under their own names, so that with LD_PRELOAD the
 * dynamic linker binds every caller of libpq (the program, and extensions it dlopen()s
 * later, such as psycopg2's _psycopg.so) to these first.  Each forwards to the recording
 * wrapper of nanoprof/pq.h in libnanoprof.so, which calls libpq through the PLT again: that
 * call lands here a second time, with the per-thread guard held, and goes straight to the
 * real function.
 *
 * The real functions are looked up in libpq itself, through dlopen("libpq.so.5",
 * RTLD_NOLOAD) and dlsym on that handle, not with dlsym(RTLD_NEXT): when libpq is only
 * loaded later by a dlopen()ed extension, RTLD_NEXT from a preloaded object finds nothing
 * and the call would jump to address 0.  The shim depends on libpq (linked with
 * --no-as-needed), so libpq is loaded before it and the lookup always succeeds; if a linker
 * dropped that dependency anyway, the shim loads libpq itself.
 *
 * libnanoprof's own libpq calls (the slow-query log's writer and readers) reach the shim too,
 * since libnanoprof.so calls libpq through its PLT: they are recognised by their return
 * address, inside libnanoprof.so, and forwarded with the calling thread excluded, so that
 * the log never records (and never logs) its own queries.
 *
 * Only the names below are exported (a version script in both builds), so the shim never
 * interposes anything else.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "nanoprof/pq.h"

/* X(name, return type, parameters, arguments, value returned when libpq is missing) */
#define PQ_SHIM_FUNCTIONS(X)                                                                    \
    X(PQexec, PGresult *, (PGconn * c, const char *q), (c, q), NULL)                            \
    X(PQexecParams, PGresult *,                                                                 \
      (PGconn * c, const char *q, int n, const Oid *t, const char *const *v, const int *l,     \
       const int *f, int rf),                                                                   \
      (c, q, n, t, v, l, f, rf), NULL)                                                          \
    X(PQprepare, PGresult *, (PGconn * c, const char *s, const char *q, int n, const Oid *t),  \
      (c, s, q, n, t), NULL)                                                                    \
    X(PQexecPrepared, PGresult *,                                                               \
      (PGconn * c, const char *s, int n, const char *const *v, const int *l, const int *f,     \
       int rf),                                                                                 \
      (c, s, n, v, l, f, rf), NULL)                                                             \
    X(PQsendQuery, int, (PGconn * c, const char *q), (c, q), 0)                                 \
    X(PQsendQueryParams, int,                                                                   \
      (PGconn * c, const char *q, int n, const Oid *t, const char *const *v, const int *l,     \
       const int *f, int rf),                                                                   \
      (c, q, n, t, v, l, f, rf), 0)                                                             \
    X(PQsendPrepare, int, (PGconn * c, const char *s, const char *q, int n, const Oid *t),     \
      (c, s, q, n, t), 0)                                                                       \
    X(PQsendQueryPrepared, int,                                                                 \
      (PGconn * c, const char *s, int n, const char *const *v, const int *l, const int *f,     \
       int rf),                                                                                 \
      (c, s, n, v, l, f, rf), 0)                                                                \
    X(PQgetResult, PGresult *, (PGconn * c), (c), NULL)                                         \
    X(PQpipelineSync, int, (PGconn * c), (c), 0)                                                \
    X(PQresetStart, int, (PGconn * c), (c), 0)

/* The two that return nothing. */
#define PQ_SHIM_VOID_FUNCTIONS(X) \
    X(PQfinish, (PGconn * c), (c)) \
    X(PQreset, (PGconn * c), (c))

/* The recording wrapper each name forwards to. */
#define WRAP_PQexec nprof_pq_exec
#define WRAP_PQexecParams nprof_pq_exec_params
#define WRAP_PQprepare nprof_pq_prepare
#define WRAP_PQexecPrepared nprof_pq_exec_prepared
#define WRAP_PQsendQuery nprof_pq_send_query
#define WRAP_PQsendQueryParams nprof_pq_send_query_params
#define WRAP_PQsendPrepare nprof_pq_send_prepare
#define WRAP_PQsendQueryPrepared nprof_pq_send_query_prepared
#define WRAP_PQgetResult nprof_pq_get_result
#define WRAP_PQpipelineSync nprof_pq_pipeline_sync
#define WRAP_PQresetStart nprof_pq_reset_start
#define WRAP_PQfinish nprof_pq_finish
#define WRAP_PQreset nprof_pq_reset

static struct {
#define SHIM_POINTER(name, ret, params, args, fail) ret(*name) params;
#define SHIM_VOID_POINTER(name, params, args) void(*name) params;
    PQ_SHIM_FUNCTIONS(SHIM_POINTER)
    PQ_SHIM_VOID_FUNCTIONS(SHIM_VOID_POINTER)
} real;

static void *lookup(void *libpq, const char *name)
{
    void *f = libpq ? dlsym(libpq, name) : NULL;
    return f ? f : dlsym(RTLD_NEXT, name);
}

/* The executable part of libnanoprof.so: calls from there are the library's own. */
static uintptr_t self_lo, self_hi;

static int find_self(struct dl_phdr_info *info, size_t size, void *base)
{
    (void)size;
    if ((void *)info->dlpi_addr != base)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!self_lo || lo < self_lo)
            self_lo = lo;
        if (hi > self_hi)
            self_hi = hi;
    }
    return 1;
}

static inline int from_nanoprof(const void *ret)
{
    return (uintptr_t)ret >= self_lo && (uintptr_t)ret < self_hi;
}

/* Runs when the shim is loaded, after libpq and libnanoprof (its dependencies). */
__attribute__((constructor)) static void resolve(void)
{
    Dl_info self;
    if (dladdr((void *)(uintptr_t)&nprof_pq_busy, &self) && self.dli_fbase)
        dl_iterate_phdr(find_self, self.dli_fbase);
    void *libpq = dlopen("libpq.so.5", RTLD_NOLOAD | RTLD_LAZY);
    if (!libpq)
        libpq = dlopen("libpq.so.5", RTLD_LAZY); /* the dependency was dropped: load it */
    if (!libpq)
        fprintf(stderr, "libnanoprof_pq: cannot load libpq.so.5: %s\n", dlerror());
#define SHIM_RESOLVE(name, ...) *(void **)&real.name = lookup(libpq, #name);
    PQ_SHIM_FUNCTIONS(SHIM_RESOLVE)
    PQ_SHIM_VOID_FUNCTIONS(SHIM_RESOLVE)
}

/* libpq's PQexec and PQexecParams send through these before they wait for the result. */
#define IS_SEND(name) \
    (__builtin_strcmp(name, "PQsendQuery") == 0 || __builtin_strcmp(name, "PQsendQueryParams") == 0)

/* Inside a recorded call (the guard is held): the real function; otherwise the wrapper,
 * with the thread excluded when libnanoprof itself is the caller. */
#define SHIM_DEFINE(name, ret, params, args, fail)                             \
    __attribute__((visibility("default"))) ret name params                     \
    {                                                                          \
        if (nprof_pq_busy()) {                                                 \
            if (!real.name)                                                    \
                return fail;                                                   \
            ret r_ = real.name args;                                           \
            if (IS_SEND(#name))                                                \
                nprof_pq_overlap(); /* the query is on the wire: work meanwhile */ \
            return r_;                                                         \
        }                                                                      \
        if (NPROF_UNLIKELY(from_nanoprof(__builtin_return_address(0)))) {      \
            int prev_ = nprof_pq_exclude_thread(1);                            \
            ret r_ = WRAP_##name args;                                         \
            nprof_pq_exclude_thread(prev_);                                    \
            return r_;                                                         \
        }                                                                      \
        return WRAP_##name args;                                               \
    }
#define SHIM_VOID_DEFINE(name, params, args)                                   \
    __attribute__((visibility("default"))) void name params                    \
    {                                                                          \
        if (nprof_pq_busy()) {                                                 \
            if (real.name)                                                     \
                real.name args;                                                \
            return;                                                            \
        }                                                                      \
        int self_ = from_nanoprof(__builtin_return_address(0));                \
        int prev_ = self_ ? nprof_pq_exclude_thread(1) : 0;                    \
        WRAP_##name args;                                                      \
        if (self_)                                                             \
            nprof_pq_exclude_thread(prev_);                                    \
    }
PQ_SHIM_FUNCTIONS(SHIM_DEFINE)
PQ_SHIM_VOID_FUNCTIONS(SHIM_VOID_DEFINE)
