/*
 * runtime/thread_mem.h: memory a thread keeps for itself (a buffer, a table, PCRE2 match
 * data) and that must be released when the thread exits: the one pthread key per kind,
 * made once, that runs the release.  The thread finds its memory through its own
 * _Thread_local pointer (faster than pthread_getspecific); the key is only for the exit.
 */
#ifndef NPROF_RUNTIME_THREAD_MEM_H
#define NPROF_RUNTIME_THREAD_MEM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct nprof__thread_mem {
    void (*release)(void *);
    _Atomic int state; /* 0: no key yet, 1: key made, -1: the key could not be made */
    pthread_key_t key;
} nprof__thread_mem;

#define NPROF__THREAD_MEM_INIT(release_fn) {.release = (release_fn), .state = 0}

/* Has `data` (this thread's memory of kind `m`, or NULL for none) released at the thread's
 * exit, replacing what was registered before.  0, or -1 when no key could be made: the
 * caller then frees its memory itself rather than keep what nothing would release. */
int nprof__thread_mem_keep(nprof__thread_mem *m, void *data);

/* `bytes` of zeroed memory, kept as this thread's memory of kind `m` (to be stored in the
 * caller's _Thread_local pointer), or NULL when there is no memory or no key. */
void *nprof__thread_mem_calloc(nprof__thread_mem *m, size_t bytes);

#endif /* NPROF_RUNTIME_THREAD_MEM_H */
