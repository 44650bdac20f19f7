/*
 * runtime/ctl.c: introspection by dotted name (nprof_ctl_get / nprof_ctl_foreach).  One
 * table of names and getters serves the dashboard, the bindings and the exporters; the
 * "opt.*" names come from the option table in config.c, and the upper layers' "stats.mw.*",
 * "stats.pq.*", "stats.slowlog.*" and "stats.querystats.*" from the providers they register
 * (ctl.h says how, and how that is locked).  Walk order: the runtime's own names, then the
 * providers' by prefix, then the options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
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

/* ---- the providers of the layers above ----------------------------------------------------- */

int nprof__ctl_registry_init(nprof__ctl_registry *reg)
{
    memset(reg, 0, sizeof *reg);
    if (pthread_rwlock_init(&reg->lock, NULL))
        return NPROF_ENOMEM;
    reg->ready = 1;
    return NPROF_OK;
}

void nprof__ctl_registry_fini(nprof__ctl_registry *reg)
{
    if (reg->ready)
        pthread_rwlock_destroy(&reg->lock);
    reg->ready = 0;
    free(reg->items);
    reg->items = NULL;
    reg->count = reg->cap = 0;
}

/* Whether `name` is "<prefix>.<suffix>"; then *suffix points at the suffix. */
static int under_prefix(const char *name, const char *prefix, const char **suffix)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || name[plen] != '.')
        return 0;
    *suffix = name + plen + 1;
    return 1;
}

static size_t name_index(const nprof__ctl_provider *p, const char *suffix)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->names[i], suffix) == 0)
            return i;
    return p->count;
}

/* Whether entry i is hidden by an older provider of the same prefix (they sort together). */
static int shadowed(const nprof__ctl_registry *reg, size_t i)
{
    return i > 0 && strcmp(reg->items[i - 1].prefix, reg->items[i].prefix) == 0;
}

int nprof__ctl_register(nprof_runtime *rt, const char *prefix, const nprof__ctl_provider *provider,
                        void *user)
{
    if (!rt || !prefix || !provider || !provider->read ||
        strlen(prefix) >= NPROF__CTL_PREFIX_MAX || provider->count > NPROF__CTL_NAMES_MAX)
        return nprof__fail(NPROF_EINVAL, "nprof__ctl_register: bad provider for \"%.40s\"",
                           prefix ? prefix : "(null)");
    nprof__ctl_registry *reg = &rt->ctl;
    pthread_rwlock_wrlock(&reg->lock);
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        nprof__ctl_entry *items = realloc(reg->items, cap * sizeof *items);
        if (!items) {
            pthread_rwlock_unlock(&reg->lock);
            return nprof__fail(NPROF_ENOMEM, "nprof__ctl_register: out of memory");
        }
        reg->items = items;
        reg->cap = cap;
    }
    /* After every entry of a smaller or equal prefix: sorted, oldest first within a prefix. */
    size_t at = 0;
    while (at < reg->count && strcmp(reg->items[at].prefix, prefix) <= 0)
        at++;
    memmove(&reg->items[at + 1], &reg->items[at], (reg->count - at) * sizeof *reg->items);
    nprof__ctl_entry *e = &reg->items[at];
    memset(e, 0, sizeof *e);
    strcpy(e->prefix, prefix);
    e->provider = provider;
    e->user = user;
    e->seq = reg->next_seq++;
    reg->count++;
    pthread_rwlock_unlock(&reg->lock);
    return NPROF_OK;
}

void nprof__ctl_unregister(nprof_runtime *rt, const char *prefix, void *user)
{
    if (!rt || !prefix)
        return;
    nprof__ctl_registry *reg = &rt->ctl;
    pthread_rwlock_wrlock(&reg->lock);
    for (size_t i = 0; i < reg->count; i++) {
        if (reg->items[i].user == user && strcmp(reg->items[i].prefix, prefix) == 0) {
            memmove(&reg->items[i], &reg->items[i + 1], (reg->count - i - 1) * sizeof *reg->items);
            reg->count--;
            break;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
}

/* nprof_ctl_get's part: NPROF_OK, NPROF_EINVAL (the name exists and does not apply now) or
 * NPROF_ENOENT. */
static int provider_get(nprof__ctl_registry *reg, const char *name, nprof_ctl_value *out)
{
    int rc = NPROF_ENOENT;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->count; i++) {
        const nprof__ctl_entry *e = &reg->items[i];
        const char *suffix;
        if (shadowed(reg, i) || !under_prefix(name, e->prefix, &suffix))
            continue;
        size_t k = name_index(e->provider, suffix);
        if (k == e->provider->count)
            continue;
        nprof_ctl_value values[NPROF__CTL_NAMES_MAX] = {{0}};
        e->provider->read(e->user, values);
        rc = values[k].type ? NPROF_OK : NPROF_EINVAL;
        if (rc == NPROF_OK)
            *out = values[k];
        break;
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

/* nprof_ctl_foreach's part: one provider at a time is read under the lock; its names are
 * visited after the lock is let go, so a visitor may call anything.  A provider registered or
 * removed during the walk may be seen or missed. */
static int providers_foreach(nprof__ctl_registry *reg, const char *prefix, size_t plen,
                             nprof_ctl_visit_fn fn, void *user)
{
    for (size_t i = 0;; i++) {
        nprof__ctl_snapshot snap;
        pthread_rwlock_rdlock(&reg->lock);
        if (i >= reg->count) {
            pthread_rwlock_unlock(&reg->lock);
            return NPROF_OK;
        }
        int skip = shadowed(reg, i);
        if (!skip) {
            const nprof__ctl_entry *e = &reg->items[i];
            memcpy(snap.prefix, e->prefix, sizeof snap.prefix);
            snap.provider = e->provider;
            memset(snap.values, 0, sizeof snap.values);
            e->provider->read(e->user, snap.values);
        }
        pthread_rwlock_unlock(&reg->lock);
        if (skip)
            continue;
        char name[NPROF__CTL_NAME_MAX];
        for (size_t k = 0; k < snap.provider->count; k++) {
            snprintf(name, sizeof name, "%s.%s", snap.prefix, snap.provider->names[k]);
            if (!snap.values[k].type || strncmp(name, prefix, plen) != 0)
                continue;
            int stop = fn(user, name, &snap.values[k]);
            if (stop)
                return stop;
        }
    }
}

int nprof__ctl_snapshot_take(nprof_runtime *rt, const char *prefix, const void *user,
                             nprof__ctl_snapshot *out)
{
    memset(out, 0, sizeof *out);
    if (!rt || !prefix)
        return NPROF_EINVAL;
    nprof__ctl_registry *reg = &rt->ctl;
    int rc = NPROF_ENOENT;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->count; i++) {
        const nprof__ctl_entry *e = &reg->items[i];
        if (e->user != user || strcmp(e->prefix, prefix) != 0)
            continue;
        memcpy(out->prefix, e->prefix, sizeof out->prefix);
        out->provider = e->provider;
        e->provider->read(e->user, out->values);
        rc = NPROF_OK;
        break;
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

const nprof_ctl_value *nprof__ctl_snapshot_value(const nprof__ctl_snapshot *snap, const char *name)
{
    const char *suffix;
    if (!snap->provider || !under_prefix(name, snap->prefix, &suffix))
        return NULL;
    size_t k = name_index(snap->provider, suffix);
    return k < snap->provider->count && snap->values[k].type ? &snap->values[k] : NULL;
}

uint64_t nprof__ctl_snapshot_u64(const nprof__ctl_snapshot *snap, const char *name)
{
    const nprof_ctl_value *v = nprof__ctl_snapshot_value(snap, name);
    return v && v->type == NPROF_CTL_UINT ? v->u : 0;
}

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
    int rc = provider_get(&rt->ctl, name, out);
    if (rc == NPROF_EINVAL)
        return nprof__fail(NPROF_ENOENT, "\"%s\" does not apply to this runtime", name);
    if (rc == NPROF_OK)
        return NPROF_OK;
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
    int stop = providers_foreach(&rt->ctl, prefix ? prefix : "", plen, fn, user);
    if (stop)
        return stop;
    char name[NPROF__CTL_NAME_MAX];
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
