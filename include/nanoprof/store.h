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

typedef struct nprof_store nprof_store;
typedef struct nprof_snapshot nprof_snapshot;

/* The store every runtime has, of capacity opt.max_history; nprof_request_submit() fills it. */
NPROF_API nprof_store *nprof_runtime_store(nprof_runtime *rt);

/* A further store (for a separate history).  Errors: NPROF_EINVAL (capacity 0), NPROF_ENOMEM. */
NPROF_API int nprof_store_create(nprof_runtime *rt, uint32_t capacity, nprof_store **out);

/* Frees the store and the profiles it holds.  Accepts NULL.  Snapshots must be released.
 * Stores made with nprof_store_create() must be destroyed before their runtime. */
NPROF_API void nprof_store_destroy(nprof_store *s);

/*
 * Takes ownership of profile `p` (ended first if needed), possibly evicting the oldest.
 * The handle is invalid afterwards, whatever the result.  Errors: NPROF_EINVAL (NULL store or
 * a profile of another runtime; the profile is discarded).
 */
NPROF_API int nprof_store_push(nprof_store *s, nprof_profile *p);

/* Removes every profile.  Snapshots held keep theirs until released. */
NPROF_API void nprof_store_clear(nprof_store *s);

/* Capacity and the number of profiles held now. */
NPROF_API uint32_t nprof_store_capacity(const nprof_store *s);
NPROF_API size_t nprof_store_size(nprof_store *s);

/* All profiles held, oldest first (by end time).  Errors: NPROF_EINVAL, NPROF_ENOMEM. */
NPROF_API int nprof_store_snapshot(nprof_store *s, nprof_snapshot **out);

/* The `n` slowest profiles held (by total time), slowest first. */
NPROF_API int nprof_store_slowest(nprof_store *s, size_t n, nprof_snapshot **out);

NPROF_API size_t nprof_snapshot_count(const nprof_snapshot *snap);

/* Profile number `i` of the snapshot, or NULL past the end.  Read-only. */
NPROF_API const nprof_profile *nprof_snapshot_get(const nprof_snapshot *snap, size_t i);

/* Unpins the snapshot's profiles and frees it.  Accepts NULL. */
NPROF_API void nprof_snapshot_release(nprof_snapshot *snap);

/*
 * Appends the collapsed stacks of every profile held, summed per distinct stack, one line per
 * stack sorted by stack, to `out`: the store's flame graph.
 */
NPROF_API int nprof_store_flame_graph(nprof_store *s, nprof_buf *out);

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_STORE_H */
