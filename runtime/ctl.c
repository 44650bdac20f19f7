/*
 * runtime/ctl.c: introspection by dotted name (nprof_ctl_get / nprof_ctl_foreach).  One
 * table of names and getters serves the dashboard, the bindings and the exporters; the
 * "opt.*" names come from the option table in config.c.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "profile.h"
#include "text.h"

static void set_uint(nprof_ctl_value *v, uint64_t u)
{
    memset(v, 0, sizeof *v);
    v->type = NPROF_CTL_UINT;
    v->u = u;
}

static void set_double(nprof_ctl_value *v, double d)
{
    memset(v, 0, sizeof *v);
    v->type = NPROF_CTL_DOUBLE;
    v->d = d;
}

static void set_string(nprof_ctl_value *v, const char *s)
{
    memset(v, 0, sizeof *v);
    v->type = NPROF_CTL_STRING;
    v->s = s;
}

/* Returns 0 when the value exists for this runtime, NPROF_ENOENT when it does not apply. */
typedef int (*getter)(nprof_runtime *rt, nprof_ctl_value *v);

#define GETTER(fn, body)                                          \
    static int fn(nprof_runtime *rt, nprof_ctl_value *v)          \
    {                                                             \
        (void)rt;                                                 \
        body;                                                     \
        return NPROF_OK;                                          \
    }

static nprof_clock_info clock_info(void)
{
    nprof_clock_info ci;
    nprof_clock_get_info(&ci);
    return ci;
}

GETTER(get_version, set_string(v, NPROF_VERSION_STRING))
GETTER(get_clock_source, set_string(v, clock_info().source_name))
GETTER(get_clock_reason, set_string(v, clock_info().reason))
GETTER(get_clock_frequency, set_uint(v, clock_info().frequency_hz))
GETTER(get_clock_error, set_double(v, clock_info().calibration_error_ppm))
GETTER(get_clock_read_cost, set_double(v, clock_info().read_cost_ns))
GETTER(get_clock_resolution, set_double(v, clock_info().resolution_ns))
GETTER(get_requests, set_uint(v, nprof__counter_sum(&rt->requests)))
GETTER(get_requests_submitted, set_uint(v, nprof__counter_sum(&rt->requests_submitted)))
GETTER(get_queries, set_uint(v, nprof__counter_sum(&rt->queries)))
GETTER(get_queries_dropped, set_uint(v, nprof__counter_sum(&rt->queries_dropped)))
GETTER(get_spans_dropped, set_uint(v, nprof__counter_sum(&rt->spans_dropped)))
GETTER(get_store_capacity, set_uint(v, nprof_store_capacity(rt->store)))
GETTER(get_store_size, set_uint(v, nprof_store_size(rt->store)))
GETTER(get_store_pushed, set_uint(v, nprof__store_pushed(rt->store)))
GETTER(get_memory_bytes, set_uint(v, nprof__counter_sum(&rt->alloc.bytes)))
GETTER(get_memory_peak, set_uint(v, atomic_load(&rt->alloc.peak_bytes)))
GETTER(get_memory_blocks, set_uint(v, nprof__counter_sum(&rt->alloc.blocks)))
GETTER(get_memory_allocations, set_uint(v, nprof__counter_sum(&rt->alloc.allocations)))
/* The SQL layer's shape cache is held by the runtime: profile.h says why. */
static nprof__memo_stats shape_stats(nprof_runtime *rt)
{
    nprof__memo_stats st;
    nprof__memo_get_stats(rt->shapes, &st);
    return st;
}
GETTER(get_shapes_slots, set_uint(v, shape_stats(rt).slots))
GETTER(get_shapes_used, set_uint(v, shape_stats(rt).used))
GETTER(get_shapes_stored, set_uint(v, shape_stats(rt).puts))
GETTER(get_shapes_misses, set_uint(v, shape_stats(rt).misses))
GETTER(get_memory_allocator, set_string(v, nprof__alloc_name(&rt->alloc)))
GETTER(get_memory_reason, set_string(v, rt->alloc.reason))

static int get_memory_arena(nprof_runtime *rt, nprof_ctl_value *v)
{
    if (!rt->alloc.use_jemalloc)
        return NPROF_ENOENT;
    set_uint(v, rt->alloc.arena);
    return NPROF_OK;
}

static int get_memory_resident(nprof_runtime *rt, nprof_ctl_value *v)
{
    if (!rt->alloc.use_jemalloc)
        return NPROF_ENOENT;
    set_uint(v, nprof__alloc_arena_resident(&rt->alloc));
    return NPROF_OK;
}

static const struct {
    const char *name;
    getter get;
} entries[] = {
    {"version", get_version},
    {"clock.source", get_clock_source},
    {"clock.reason", get_clock_reason},
    {"clock.frequency_hz", get_clock_frequency},
    {"clock.error_ppm", get_clock_error},
    {"clock.read_cost_ns", get_clock_read_cost},
    {"clock.resolution_ns", get_clock_resolution},
    {"stats.requests", get_requests},
    {"stats.requests_submitted", get_requests_submitted},
    {"stats.queries", get_queries},
    {"stats.queries_dropped", get_queries_dropped},
    {"stats.spans_dropped", get_spans_dropped},
    {"stats.store.capacity", get_store_capacity},
    {"stats.store.size", get_store_size},
    {"stats.store.pushed", get_store_pushed},
    {"stats.memory.bytes", get_memory_bytes},
    {"stats.memory.peak_bytes", get_memory_peak},
    {"stats.memory.blocks", get_memory_blocks},
    {"stats.memory.allocations", get_memory_allocations},
    {"stats.memory.allocator", get_memory_allocator},
    {"stats.memory.allocator_reason", get_memory_reason},
    {"stats.memory.arena", get_memory_arena},
    {"stats.memory.arena_resident_bytes", get_memory_resident},
    {"stats.sql.shape_cache.slots", get_shapes_slots},
    {"stats.sql.shape_cache.used", get_shapes_used},
    {"stats.sql.shape_cache.stored", get_shapes_stored},
    {"stats.sql.shape_cache.misses", get_shapes_misses},
};
#define ENTRY_COUNT (sizeof entries / sizeof entries[0])

int nprof_ctl_get(nprof_runtime *rt, const char *name, nprof_ctl_value *out)
{
    if (!rt || !name || !out)
        return NPROF_EINVAL;
    if (strncmp(name, "opt.", 4) == 0) {
        for (size_t i = 0; nprof__config_option_name(i); i++)
            if (strcmp(name + 4, nprof__config_option_name(i)) == 0)
                return nprof__config_value(&rt->cfg, i, out);
        return nprof__fail(NPROF_ENOENT, "no introspection name \"%.64s\"", name);
    }
    for (size_t i = 0; i < ENTRY_COUNT; i++)
        if (strcmp(name, entries[i].name) == 0)
            return entries[i].get(rt, out) == NPROF_OK
                       ? NPROF_OK
                       : nprof__fail(NPROF_ENOENT, "\"%s\" does not apply to this runtime", name);
    return nprof__fail(NPROF_ENOENT, "no introspection name \"%.64s\"", name);
}

int nprof_ctl_foreach(nprof_runtime *rt, const char *prefix, nprof_ctl_visit_fn fn, void *user)
{
    if (!rt || !fn)
        return NPROF_EINVAL;
    size_t plen = prefix ? strlen(prefix) : 0;
    nprof_ctl_value v;
    for (size_t i = 0; i < ENTRY_COUNT; i++) {
        if (strncmp(entries[i].name, prefix ? prefix : "", plen) != 0)
            continue;
        if (entries[i].get(rt, &v) != NPROF_OK)
            continue;
        int stop = fn(user, entries[i].name, &v);
        if (stop)
            return stop;
    }
    char name[96];
    for (size_t i = 0; nprof__config_option_name(i); i++) {
        snprintf(name, sizeof name, "opt.%s", nprof__config_option_name(i));
        if (strncmp(name, prefix ? prefix : "", plen) != 0)
            continue;
        nprof__config_value(&rt->cfg, i, &v);
        int stop = fn(user, name, &v);
        if (stop)
            return stop;
    }
    return NPROF_OK;
}
