/*
 * runtime/samples.h: a profile's sampled call stacks (profile.h of the API,
 * nprof_profile_add_sample()): distinct frames and distinct stacks, each kept once, in the
 * profile's arena.  Stored by samples.c, rendered by samples_render.c.
 */
#ifndef NPROF_RUNTIME_SAMPLES_H
#define NPROF_RUNTIME_SAMPLES_H

#include <stdint.h>

#include "nanoprof/common.h"

/* Distinct frames and stacks a profile keeps at most; later ones count as dropped. */
#define NPROF__SAMPLE_FRAMES_MAX 65536
#define NPROF__SAMPLE_STACKS_MAX 65536
/* Bytes of a frame's name and library kept: labels, not documents.  A query's text (the
 * innermost frame of an NPROF_SAMPLE_SQL stack) is kept up to max_sql_bytes instead. */
#define NPROF__FRAME_NAME_MAX 1024
#define NPROF__FRAME_LIB_MAX 128

/* One distinct (name, library) pair, its bytes as the sampler gave them. */
typedef struct nprof__sframe {
    uint64_t hash;
    const char *name;
    const char *lib;   /* NULL: application code */
    uint32_t name_len, lib_len;
} nprof__sframe;

/* One distinct stack: frame numbers outermost first, with the samples merged into it. */
typedef struct nprof__sstack {
    uint64_t hash;
    uint64_t ns;       /* summed weight */
    uint64_t count;    /* samples merged (executions, for a query's stack) */
    const uint32_t *frames;
    uint32_t depth;
    uint32_t flags;    /* NPROF_SAMPLE_SQL */
} nprof__sstack;

/* A profile's samples.  All zero in a fresh or reset profile (it lies in the part of the
 * profile that reuse zeroes), and every pointer is into the profile's arena, so reuse frees
 * it all with the arena: nothing carries over to the next request. */
typedef struct nprof__samples {
    nprof__sframe *frames;
    nprof__sstack *stacks;
    uint32_t *frame_index, *stack_index; /* open addressing: number + 1, 0 = empty */
    uint32_t frame_count, frame_cap, frame_index_cap;
    uint32_t stack_count, stack_cap, stack_index_cap;
    uint64_t samples, sampled_ns; /* every accepted sample, kept or dropped */
    uint64_t dropped, dropped_ns; /* not kept: limits (the "[dropped]" stack) */
} nprof__samples;

struct nprof__jw;
struct nprof_profile;
struct nprof_store;

/* samples_render.c: nprof_profile_render_samples() and nprof_store_render_samples(), an SVG's
 * zoom script carrying `nonce` (NULL: none), for the dashboard, which names the nonce in the
 * page's Content-Security-Policy. */
int nprof__profile_render_samples(const struct nprof_profile *p, int format, unsigned flags,
                                  const char *nonce, nprof_buf *out);
int nprof__store_render_samples(struct nprof_store *s, const char *route, size_t route_len,
                                int format, unsigned flags, const char *nonce, nprof_buf *out);

/* samples_render.c: the profile's "samples" member of its JSON (render.c), when it has any
 * sample: counts, then each distinct stack's frames and libraries as the sampler gave them. */
void nprof__samples_json(struct nprof__jw *j, const struct nprof_profile *p);

#endif /* NPROF_RUNTIME_SAMPLES_H */
