/*
 * runtime/collapsed.h: collapsed stacks ("request;handler;sql;SELECT ... 150000"), built per
 * profile and summed over many profiles into one flame graph.
 */
#ifndef NPROF_RUNTIME_COLLAPSED_H
#define NPROF_RUNTIME_COLLAPSED_H

#include <stddef.h>
#include <stdint.h>

#include "nanoprof/profile.h"

typedef struct nprof__stack_entry {
    uint64_t hash;
    size_t key_offset;
    size_t key_len;
    uint64_t ns;
    uint64_t count; /* samples merged into it (sampled stacks, samples_render.c), else 0 */
    unsigned flags; /* NPROF_SAMPLE_SQL: a query's sampled stack, told apart from a stack of
                       the same text that is not one */
} nprof__stack_entry;

/* A map from stack to summed nanoseconds (and samples).  Scratch memory of a rendering
 * call: malloc. */
typedef struct nprof__stacks {
    nprof_buf keys;
    nprof__stack_entry *table; /* open addressing; hash 0 marks an empty slot */
    size_t size, mask;
} nprof__stacks;

void nprof__stacks_init(nprof__stacks *st);
void nprof__stacks_free(nprof__stacks *st);

/* Adds every stack of an ended profile (self time of each span and of the request, time of
 * each kept query, and the time of queries not kept). */
int nprof__stacks_add_profile(nprof__stacks *st, const nprof_profile *p);

/* The entry of the stack (with `flags`) whose text was just appended to st->keys from
 * `key_offset` on: the known one (the copy is taken back off st->keys) or a new one with no
 * time yet.  Valid until the next addition; NULL without memory. */
nprof__stack_entry *nprof__stacks_take_key(nprof__stacks *st, size_t key_offset, unsigned flags);

/* The stacks with time, sorted by text (then flags): *out is malloc'ed (free it), NULL when
 * there are none.  Errors: NPROF_ENOMEM. */
typedef struct nprof__stack_line {
    const char *key;
    size_t len;
    const nprof__stack_entry *entry;
} nprof__stack_line;
int nprof__stacks_lines(const nprof__stacks *st, nprof__stack_line **out, size_t *n);

/* Appends "stack ns\n" lines, sorted by stack, skipping zero times. */
int nprof__stacks_emit(const nprof__stacks *st, nprof_buf *out);

#endif /* NPROF_RUNTIME_COLLAPSED_H */
