/*
 * runtime/samples.c: keeping a request's sampled call stacks, for nprof_profile_add_sample().
 *
 * A sampler adds one stack per timer tick (and the SQL layer's adapters one per query), so
 * the same stacks come again and again: each distinct frame (name and library) is copied
 * once, each distinct stack is kept once as an array of frame numbers, and a sample that
 * repeats a stack only adds to its time and count.  Both tables are open-addressing hash
 * tables in the profile's arena, so they count against max_profile_bytes and go away with
 * the arena when the profile is reused.  A sample that cannot be kept (the budget, or the
 * table limits) still counts: its time goes to the "[dropped]" stack of the renderers.
 *
 * Runs in the sampler's call (on the request's thread or with the request handed over): no
 * lock, no allocation beyond the profile's own.
 */
#include <string.h>
#include <xxhash.h>

#include "profile.h"

static const char truncated_frame[] = "[truncated]";

/* Records `number` (0-based) under hash `h` in an index of `cap` slots. */
static void index_put(uint32_t *index, uint32_t cap, uint64_t h, uint32_t number)
{
    uint32_t j = (uint32_t)h & (cap - 1);
    while (index[j])
        j = (j + 1) & (cap - 1);
    index[j] = number + 1;
}

/*
 * Makes room for entry number `count` of an array of `stride`-byte entries (whose first
 * member is their hash) and keeps its index at most half full: each doubles into the arena
 * when full (the old copy stays there until reuse, as patterns.c's tables do).
 * NPROF_ELIMIT at `limit` entries or past the budget.
 */
static int make_room(nprof_profile *p, void **entries, uint32_t *cap, size_t stride,
                     uint32_t count, uint32_t **index, uint32_t *index_cap, uint32_t limit)
{
    if (count >= limit)
        return NPROF_ELIMIT;
    if (count == *cap) {
        uint32_t new_cap = *cap ? *cap * 2 : 16;
        void *bigger = nprof__profile_arena(p, (size_t)new_cap * stride);
        if (!bigger)
            return NPROF_ELIMIT;
        if (count)
            memcpy(bigger, *entries, (size_t)count * stride);
        *entries = bigger;
        *cap = new_cap;
    }
    if (2 * (count + 1) > *index_cap) {
        uint32_t new_cap = *index_cap ? *index_cap * 2 : 32;
        uint32_t *fresh = nprof__profile_arena(p, (size_t)new_cap * sizeof *fresh);
        if (!fresh)
            return NPROF_ELIMIT;
        memset(fresh, 0, (size_t)new_cap * sizeof *fresh);
        for (uint32_t i = 0; i < count; i++) {
            uint64_t h;
            memcpy(&h, (const char *)*entries + (size_t)i * stride, sizeof h);
            index_put(fresh, new_cap, h, i);
        }
        *index = fresh;
        *index_cap = new_cap;
    }
    return NPROF_OK;
}

static int same_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && (!a_len || !memcmp(a, b, a_len));
}

/* The number of the frame (name, lib), added if new (its bytes copied, at most `max` of the
 * name), or -1 when it cannot be kept.  `lib` NULL or empty: application code. */
static int64_t intern_frame(nprof_profile *p, const char *name, size_t len, const char *lib,
                            size_t lib_len, size_t max)
{
    nprof__samples *s = &p->samples;
    len = len < max ? len : max;
    lib_len = lib_len < NPROF__FRAME_LIB_MAX ? lib_len : NPROF__FRAME_LIB_MAX;
    if (!lib_len)
        lib = NULL;
    uint64_t h = XXH3_64bits_withSeed(name, len, lib ? XXH3_64bits(lib, lib_len) | 1 : 0);
    for (uint32_t mask = s->frame_index_cap - 1, j = (uint32_t)h & mask;
         s->frame_index_cap && s->frame_index[j]; j = (j + 1) & mask) {
        const nprof__sframe *f = &s->frames[s->frame_index[j] - 1];
        if (f->hash == h && same_bytes(f->name, f->name_len, name, len) && !f->lib == !lib &&
            same_bytes(f->lib, f->lib_len, lib, lib_len))
            return s->frame_index[j] - 1;
    }
    if (make_room(p, (void **)&s->frames, &s->frame_cap, sizeof *s->frames, s->frame_count,
                  &s->frame_index, &s->frame_index_cap, NPROF__SAMPLE_FRAMES_MAX))
        return -1;
    nprof__sframe f = {.hash = h, .name = name, .name_len = (uint32_t)len, .lib = NULL};
    if (name != truncated_frame) /* our one frame is static; the sampler's are copied */
        f.name = nprof__profile_copy_text(p, name, len, len, &f.name_len);
    if (f.name && lib)
        f.lib = nprof__profile_copy_text(p, lib, lib_len, lib_len, &f.lib_len);
    if (!f.name || (lib && !f.lib))
        return -1;
    s->frames[s->frame_count] = f;
    index_put(s->frame_index, s->frame_index_cap, h, s->frame_count);
    return s->frame_count++;
}

/* Adds `ns` to the stack of frame numbers `ids` (a new one is copied), or NPROF_ELIMIT. */
static int merge_stack(nprof_profile *p, const uint32_t *ids, uint32_t depth, unsigned flags,
                       uint64_t ns)
{
    nprof__samples *s = &p->samples;
    uint64_t h = XXH3_64bits_withSeed(ids, depth * sizeof *ids, flags);
    for (uint32_t mask = s->stack_index_cap - 1, j = (uint32_t)h & mask;
         s->stack_index_cap && s->stack_index[j]; j = (j + 1) & mask) {
        nprof__sstack *st = &s->stacks[s->stack_index[j] - 1];
        if (st->hash == h && st->depth == depth && st->flags == flags &&
            (!depth || !memcmp(st->frames, ids, depth * sizeof *ids))) {
            st->ns += ns;
            st->count++;
            return NPROF_OK;
        }
    }
    if (make_room(p, (void **)&s->stacks, &s->stack_cap, sizeof *s->stacks, s->stack_count,
                  &s->stack_index, &s->stack_index_cap, NPROF__SAMPLE_STACKS_MAX))
        return NPROF_ELIMIT;
    uint32_t *copy = depth ? nprof__profile_arena(p, depth * sizeof *ids) : NULL;
    if (depth && !copy)
        return NPROF_ELIMIT;
    if (depth)
        memcpy(copy, ids, depth * sizeof *ids);
    s->stacks[s->stack_count] = (nprof__sstack){
        .hash = h, .ns = ns, .count = 1, .frames = copy, .depth = depth, .flags = flags};
    index_put(s->stack_index, s->stack_index_cap, h, s->stack_count++);
    return NPROF_OK;
}

int nprof_profile_add_sample(nprof_profile *p, const nprof_frame *frames, size_t n,
                             uint64_t weight_ns, unsigned flags)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if ((!frames && n) || (flags & ~NPROF_SAMPLE_SQL))
        return NPROF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((!frames[i].name && frames[i].name_len) || (!frames[i].lib && frames[i].lib_len))
            return NPROF_EINVAL;
    if (p->ended)
        return NPROF_ESTATE;
    nprof__samples *s = &p->samples;
    s->samples++;
    s->sampled_ns += weight_ns;
    if (!n)
        flags = 0; /* no frame to be the query's */
    int sql = (flags & NPROF_SAMPLE_SQL) != 0;
    /* Too deep: the outermost frames, "[truncated]", and a query's frame, which is the point
     * of its stack, stays innermost. */
    size_t outer = n <= NPROF_SAMPLE_MAX_DEPTH ? n - (size_t)sql
                                               : NPROF_SAMPLE_MAX_DEPTH - 1 - (size_t)sql;
    uint32_t ids[NPROF_SAMPLE_MAX_DEPTH];
    uint32_t depth = 0;
    int64_t id = 0;
    for (size_t i = 0; i < outer && id >= 0; i++) {
        id = intern_frame(p, frames[i].name ? frames[i].name : "", frames[i].name_len,
                          frames[i].lib, frames[i].lib_len, NPROF__FRAME_NAME_MAX);
        ids[depth++] = (uint32_t)id;
    }
    if (id >= 0 && n > NPROF_SAMPLE_MAX_DEPTH) {
        id = intern_frame(p, truncated_frame, sizeof truncated_frame - 1, NULL, 0,
                          NPROF__FRAME_NAME_MAX);
        ids[depth++] = (uint32_t)id;
    }
    if (id >= 0 && sql) {
        const nprof_frame *q = &frames[n - 1];
        id = intern_frame(p, q->name ? q->name : "", q->name_len, q->lib, q->lib_len,
                          p->rt->cfg.max_sql_bytes);
        ids[depth++] = (uint32_t)id;
    }
    if (id >= 0 && merge_stack(p, ids, depth, flags, weight_ns) == NPROF_OK)
        return NPROF_OK;
    s->dropped++;
    s->dropped_ns += weight_ns;
    return NPROF_ELIMIT;
}

int nprof_profile_get_samples_info(const nprof_profile *p, nprof_samples_info *out)
{
    if (!p || !out)
        return p ? NPROF_EINVAL : NPROF_ENOPROFILE;
    const nprof__samples *s = &p->samples;
    *out = (nprof_samples_info){.stacks = s->stack_count, .samples = s->samples,
                                .sampled_ns = s->sampled_ns, .dropped = s->dropped,
                                .dropped_ns = s->dropped_ns};
    return NPROF_OK;
}
