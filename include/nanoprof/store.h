/*
 * nanoprof/store.h: ProfileStore, a ring buffer of finished profiles.
 *
 * Pushing never takes a lock: a thread reserves a few consecutive slots with one atomic add
 * and fills them over its next pushes, so threads rarely touch the same cache line.  The
 * price is that with several threads pushing, the ring keeps approximately (not exactly) the
 * last `capacity` profiles: a slot a thread reserved but has not filled yet still holds an
 * older profile.  With one pushing thread, or a capacity below 64, it is an exact ring.
 *
 * Readers work on snapshots: a snapshot pins the profiles it lists (the store does not free
 * or reuse them) until nprof_snapshot_release().  Release snapshots promptly: profiles
 * evicted while any snapshot is held wait for the last release before they are reused.
 *
 * Thread safety: push, snapshot, slowest, flame graph and clear may run concurrently from any
 * threads.  Destroy may not run concurrently with anything.
 */
#ifndef NANOPROF_STORE_H
#define NANOPROF_STORE_H

#include "common.h"
#include "profile.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A ring of finished profiles, opaque: the runtime's own (nprof_runtime_store()) or one made
 * by nprof_store_create(). */
typedef struct nprof_store nprof_store;

/* A pinned, read-only list of a store's profiles, opaque: made by nprof_store_snapshot() or
 * nprof_store_snapshot_slowest(), freed by nprof_snapshot_release(). */
typedef struct nprof_snapshot nprof_snapshot;

/* The store every runtime has, of capacity opt.max_history; nprof_request_submit() fills it.
 * Owned by the runtime (do not destroy it); NULL when `rt` is NULL. */
NPROF_API nprof_store *nprof_runtime_store(nprof_runtime *rt);

/* Creates a further store of `capacity` profiles (for a separate history), its memory from
 * `rt`'s allocator; *out belongs to the caller.  Errors: NPROF_EINVAL (`rt` or `out` NULL,
 * capacity 0), NPROF_ENOMEM. */
NPROF_API int nprof_store_create(nprof_runtime *rt, uint32_t capacity, nprof_store **out);

/* Frees the store and the profiles it holds.  Accepts NULL.  Snapshots must be released.
 * Stores made with nprof_store_create() must be destroyed before their runtime. */
NPROF_API void nprof_store_destroy(nprof_store *s);

/*
 * Takes ownership of profile `p` (ended first if needed), possibly evicting the oldest.
 * The handle is invalid afterwards, whatever the result.  Errors: NPROF_ENOPROFILE (`p` NULL),
 * NPROF_EINVAL (NULL store or a profile of another runtime; the profile is discarded).
 */
NPROF_API int nprof_store_push(nprof_store *s, nprof_profile *p);

/* Removes every profile.  Snapshots held keep theirs until released.  Accepts NULL. */
NPROF_API void nprof_store_clear(nprof_store *s);

/* The number of profiles the store holds at most; 0 when `s` is NULL. */
NPROF_API uint32_t nprof_store_capacity(const nprof_store *s);

/* The number of profiles held now (a moment's figure while others push); 0 when `s` is NULL. */
NPROF_API size_t nprof_store_size(nprof_store *s);

/* Takes a snapshot of all profiles held, oldest first (by end time), into *out (the
 * caller's; release it).  Errors: NPROF_EINVAL (NULL argument), NPROF_ENOMEM. */
NPROF_API int nprof_store_snapshot(nprof_store *s, nprof_snapshot **out);

/* Takes a snapshot of the `n` slowest profiles held (by total time), slowest first, into
 * *out (the caller's; release it).  Errors: NPROF_EINVAL (NULL argument), NPROF_ENOMEM. */
NPROF_API int nprof_store_snapshot_slowest(nprof_store *s, size_t n, nprof_snapshot **out);

/* The number of profiles in the snapshot; 0 when `snap` is NULL. */
NPROF_API size_t nprof_snapshot_count(const nprof_snapshot *snap);

/* Profile number `i` of the snapshot, or NULL past the end.  Read-only, valid until the
 * snapshot is released; any thread may read it. */
NPROF_API const nprof_profile *nprof_snapshot_get(const nprof_snapshot *snap, size_t i);

/* Unpins the snapshot's profiles and frees it.  Accepts NULL. */
NPROF_API void nprof_snapshot_release(nprof_snapshot *snap);

/*
 * Appends the collapsed stacks of every profile held, summed per distinct stack, one line per
 * stack sorted by stack, to `out` (caller-owned): the store's flame graph, in the format of
 * nprof_profile_render_collapsed().  Errors: NPROF_EINVAL (NULL argument), NPROF_ENOMEM.
 */
NPROF_API int nprof_store_render_collapsed(nprof_store *s, nprof_buf *out);

/*
 * Appends the sampled call stacks (profile.h, nprof_profile_add_sample()) of the profiles held
 * whose route is `route` (NULL: every profile), summed per distinct stack, in `format`
 * (enum nprof_samples_format) with `flags` (NPROF_SAMPLES_*): a route's aggregated flame graph
 * over its sampled requests.  Errors: NPROF_EINVAL (NULL store or out, bad format), NPROF_ENOMEM.
 */
NPROF_API int nprof_store_render_samples(nprof_store *s, const char *route, size_t route_len,
                                         int format, unsigned flags, nprof_buf *out);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: renderers are nprof_<object>_render_<format>, snapshots nprof_store_snapshot*. */
#define nprof_store_flame_graph nprof_store_render_collapsed
#define nprof_store_slowest nprof_store_snapshot_slowest
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_STORE_H */
