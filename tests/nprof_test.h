/*
 * tests/nprof_test.h: helpers the nanoprof test programs share on top of test.h: a runtime
 * on the C library's allocator with a few options, typed introspection reads, and threads
 * run to completion.
 */
#ifndef NPROF_NPROF_TEST_H
#define NPROF_NPROF_TEST_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nanoprof/nanoprof.h"

/* A runtime on malloc, with "key=value,..." options applied over the defaults; NULL (and a
 * message) when the options or the creation fail. */
static inline nprof_runtime *make_runtime(const char *conf)
{
    nprof_config c;
    nprof_config_init(&c);
    c.allocator = NPROF_ALLOCATOR_LIBC;
    nprof_runtime *rt = NULL;
    int rc = conf ? nprof_config_parse(&c, conf, strlen(conf)) : NPROF_OK;
    if (rc == NPROF_OK)
        rc = nprof_runtime_create(&c, &rt);
    if (rc != NPROF_OK)
        fprintf(stderr, "make_runtime(%s): %s: %s\n", conf ? conf : "", nprof_errname(rc),
                nprof_last_error_detail());
    return rt;
}

/* An unsigned introspection value, or UINT64_MAX (and a message) when missing or not UINT. */
static inline uint64_t ctl_u64(nprof_runtime *rt, const char *name)
{
    nprof_ctl_value v;
    int rc = nprof_ctl_get(rt, name, &v);
    if (rc != NPROF_OK || v.type != NPROF_CTL_UINT) {
        fprintf(stderr, "ctl %s: rc=%s type=%d\n", name, nprof_errname(rc), rc ? 0 : v.type);
        return UINT64_MAX;
    }
    return v.u;
}

/* A string introspection value, or NULL (and a message) when missing or not STRING. */
static inline const char *ctl_str(nprof_runtime *rt, const char *name)
{
    nprof_ctl_value v;
    int rc = nprof_ctl_get(rt, name, &v);
    if (rc != NPROF_OK || v.type != NPROF_CTL_STRING || !v.s) {
        fprintf(stderr, "ctl %s: rc=%s\n", name, nprof_errname(rc));
        return NULL;
    }
    return v.s;
}

/* Runs fn((void *)i) on n threads (i = 0..n-1, n <= 16) and waits for all of them: 1 when
 * every one started and returned NULL, 0 otherwise. */
static inline int run_threads(int n, void *(*fn)(void *))
{
    pthread_t t[16];
    int started = 0, ok = n >= 0 && n <= 16;
    for (; ok && started < n; started++)
        if (pthread_create(&t[started], NULL, fn, (void *)(intptr_t)started) != 0)
            ok = 0;
    for (int i = 0; i < started; i++) {
        void *result;
        pthread_join(t[i], &result);
        ok &= result == NULL;
    }
    return ok;
}

#endif /* NPROF_NPROF_TEST_H */
