/*
 * runtime/thread_mem.c: see thread_mem.h.  The key of each kind is made by the first thread
 * that keeps memory of it, under one lock taken only then.
 */
#include "thread_mem.h"

#include <stdlib.h>

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

int nprof__thread_mem_keep(nprof__thread_mem *m, void *data)
{
    int state = atomic_load_explicit(&m->state, memory_order_acquire);
    if (state == 0) {
        pthread_mutex_lock(&key_lock);
        state = atomic_load_explicit(&m->state, memory_order_relaxed);
        if (state == 0) {
            state = pthread_key_create(&m->key, m->release) == 0 ? 1 : -1;
            atomic_store_explicit(&m->state, state, memory_order_release);
        }
        pthread_mutex_unlock(&key_lock);
    }
    return state == 1 && pthread_setspecific(m->key, data) == 0 ? 0 : -1;
}

void *nprof__thread_mem_calloc(nprof__thread_mem *m, size_t bytes)
{
    void *data = calloc(1, bytes);
    if (data && nprof__thread_mem_keep(m, data) < 0) {
        free(data); /* nothing would free it at the thread's exit */
        data = NULL;
    }
    return data;
}
