/*
 * runtime/runtime.c: creating and destroying the runtime, reading NANOPROF_CONF, and the
 * small per-thread index that sharded counters and pools use.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "profile.h"
#include "text.h"

static _Atomic uint32_t next_thread_index;
_Thread_local uint32_t nprof__thread_index_value;

uint32_t nprof__thread_index_assign(void)
{
    nprof__thread_index_value = atomic_fetch_add_explicit(&next_thread_index, 1, memory_order_relaxed) + 1;
    return nprof__thread_index_value;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^
               ((uint64_t)getpid() << 32);
    }
    return seed;
}

int nprof_runtime_create(const nprof_config *cfg, nprof_runtime **out)
{
    if (!out)
        return nprof__fail(NPROF_EINVAL, "nprof_runtime_create: out is NULL");
    *out = NULL;
    nprof_config conf;
    if (cfg)
        conf = *cfg;
    else
        nprof_config_init(&conf);
    const char *env = getenv("NANOPROF_CONF");
    if (env) {
        int rc = nprof_config_parse(&conf, env, strlen(env));
        if (rc) {
            char detail[256];
            strncpy(detail, nprof_last_error_detail(), sizeof detail - 1);
            detail[sizeof detail - 1] = '\0';
            return nprof__fail(rc, "NANOPROF_CONF: %s", detail);
        }
    }
    int invalid = nprof_config_validate(&conf);
    if (invalid)
        return invalid;
    nprof_clock_init();

    /* The runtime holds 64-byte aligned counters, so it comes from aligned_alloc. */
    size_t size = (sizeof(nprof_runtime) + NPROF__CACHELINE - 1) / NPROF__CACHELINE * NPROF__CACHELINE;
    nprof_runtime *rt = aligned_alloc(NPROF__CACHELINE, size);
    if (!rt)
        return nprof__fail(NPROF_ENOMEM, "nprof_runtime_create: out of memory");
    memset(rt, 0, sizeof *rt);
    for (int s = 0; s < NPROF__SHARDS; s++)
        atomic_flag_clear(&rt->pool[s].busy);
    rt->cfg = conf;
    rt->slow_query_ns = (uint64_t)(conf.slow_query_threshold_ms * 1e6);
    rt->request_id_seed = random_seed();
    atomic_store(&rt->enabled, conf.enabled ? 1 : 0);
    /* The SQL layer's ignore rule and shape cache are made here, not in sqlhooks/: see the
     * comment over struct nprof_runtime in profile.h. */
    int rc = nprof__rule_compile(&rt->sql_ignore, conf.sql_ignore, "sql_ignore");
    if (rc) {
        free(rt);
        return rc;
    }
    rc = nprof__alloc_init(&rt->alloc, conf.allocator);
    if (rc) {
        nprof__rule_free(&rt->sql_ignore);
        free(rt);
        return rc;
    }
    rc = nprof__ctl_registry_init(&rt->ctl);
    if (rc == NPROF_OK)
        rc = nprof__store_create(rt, conf.max_history, &rt->store);
    else
        rt->store = NULL;
    if (rc == NPROF_OK && conf.sql_shape_cache)
        rc = nprof__memo_create(&rt->alloc, conf.sql_shape_cache, random_seed(), &rt->shapes);
    if (rc) {
        nprof_store_destroy(rt->store);
        nprof__ctl_registry_fini(&rt->ctl);
        nprof__rule_free(&rt->sql_ignore);
        nprof__alloc_fini(&rt->alloc);
        free(rt);
        return nprof__fail(rc, "nprof_runtime_create: cannot create the store or the shape cache");
    }
    *out = rt;
    return NPROF_OK;
}

void nprof_runtime_destroy(nprof_runtime *rt)
{
    if (!rt)
        return;
    nprof__current_forget_runtime(rt);
    nprof_store_destroy(rt->store);
    nprof__memo_destroy(&rt->alloc, rt->shapes);
    nprof__pool_destroy(rt);
    nprof__alloc_fini(&rt->alloc);
    nprof__rule_free(&rt->sql_ignore);
    nprof__ctl_registry_fini(&rt->ctl);
    free(rt);
}

const nprof_config *nprof_runtime_config(const nprof_runtime *rt)
{
    return rt ? &rt->cfg : NULL;
}

void nprof_runtime_set_enabled(nprof_runtime *rt, int enabled)
{
    if (rt)
        atomic_store_explicit(&rt->enabled, enabled ? 1 : 0, memory_order_relaxed);
}

int nprof_runtime_enabled(const nprof_runtime *rt)
{
    return rt ? atomic_load_explicit(&((nprof_runtime *)rt)->enabled, memory_order_relaxed) : 0;
}
