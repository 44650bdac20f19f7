/*
 * runtime/ctl.h: how the layers above the runtime put their statistics under the one
 * introspection namespace (nprof_ctl_get / nprof_ctl_foreach) without the runtime calling up
 * into them.  A layer registers a provider: a table of names and one function that reads
 * them all, with its own pointer.  The runtime only ever calls that function.
 */
#ifndef NPROF_RUNTIME_CTL_H
#define NPROF_RUNTIME_CTL_H

#include <pthread.h>
#include <stddef.h>

#include "nanoprof/runtime.h"

#define NPROF__CTL_PREFIX_MAX 32   /* bytes of a provider's prefix, NUL included */
#define NPROF__CTL_NAMES_MAX 32    /* names one provider may have */
#define NPROF__CTL_NAME_MAX 96     /* bytes of a whole dotted name, NUL included */

/*
 * A provider: `count` names (the part after "<prefix>."), and `read`, which fills
 * values[0..count) from `user` in one go, so the values of one provider agree with each
 * other.  A value left with type 0 does not apply now and is not shown.  Values are numbers
 * (NPROF_CTL_UINT or NPROF_CTL_DOUBLE): a string would not outlive the read.  `read` may run
 * on any thread, on several at once, under the registry's read lock: it must not register or
 * unregister.  The table itself must outlive the registration (a static const, in practice).
 */
typedef struct nprof__ctl_provider {
    const char *const *names;
    size_t count;
    void (*read)(void *user, nprof_ctl_value *values);
} nprof__ctl_provider;

typedef struct nprof__ctl_entry {
    char prefix[NPROF__CTL_PREFIX_MAX];
    const nprof__ctl_provider *provider;
    void *user;
    uint64_t seq; /* registration order, for providers that share a prefix */
} nprof__ctl_entry;

/*
 * The runtime's registry.  Entries are sorted by prefix, then by registration order, so a
 * walk's order does not depend on which layer came up first.  When several providers share a
 * prefix (two middlewares on one runtime), the names show the oldest; the others are reached
 * only by their own user pointer (nprof__ctl_snapshot_take).
 * Locking: `lock` is a read-write lock.  nprof_ctl_get and the snapshot hold it for reading
 * while they call a provider's read; nprof_ctl_foreach holds it for reading one provider at a
 * time, and calls the visitor with no lock held.  Registering and unregistering hold it for
 * writing, so once nprof__ctl_unregister returns, no read of that provider is running or will
 * start: its owner may free what `user` points at.
 */
typedef struct nprof__ctl_registry {
    pthread_rwlock_t lock;
    nprof__ctl_entry *items;
    size_t count, cap;
    uint64_t next_seq;
    int ready; /* `lock` was initialized */
} nprof__ctl_registry;

int nprof__ctl_registry_init(nprof__ctl_registry *reg);
void nprof__ctl_registry_fini(nprof__ctl_registry *reg);

/* Fills values[0..n) with the unsigned numbers v[0..n): what most providers' read does. */
static inline void nprof__ctl_uints(nprof_ctl_value *values, const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        values[i].type = NPROF_CTL_UINT;
        values[i].u = v[i];
    }
}

/* Adds `provider` with `user` under `prefix` ("stats.mw").  Errors: NPROF_EINVAL (NULL
 * argument, a prefix too long, too many names), NPROF_ENOMEM. */
int nprof__ctl_register(nprof_runtime *rt, const char *prefix, const nprof__ctl_provider *provider,
                        void *user);
/* Removes the provider `user` registered under `prefix`; nothing when there is none, or
 * when `rt` is NULL. */
void nprof__ctl_unregister(nprof_runtime *rt, const char *prefix, void *user);

/* One provider's values, read once: what a renderer of that layer's own figures holds. */
typedef struct nprof__ctl_snapshot {
    char prefix[NPROF__CTL_PREFIX_MAX];
    const nprof__ctl_provider *provider; /* NULL: `user` has no provider under that prefix */
    nprof_ctl_value values[NPROF__CTL_NAMES_MAX];
} nprof__ctl_snapshot;

/* Reads the provider that `user` registered under `prefix` (whether or not its names are the
 * ones nprof_ctl_get shows).  Errors: NPROF_ENOENT (no such registration). */
int nprof__ctl_snapshot_take(nprof_runtime *rt, const char *prefix, const void *user,
                             nprof__ctl_snapshot *out);
/* The value of whole dotted name `name` in `snap`; NULL when it has none. */
const nprof_ctl_value *nprof__ctl_snapshot_value(const nprof__ctl_snapshot *snap, const char *name);
/* The same as an unsigned number (0 when absent). */
uint64_t nprof__ctl_snapshot_u64(const nprof__ctl_snapshot *snap, const char *name);

#endif /* NPROF_RUNTIME_CTL_H */
