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
} nprof__stack_entry;

/* A map from stack to summed nanoseconds.  Scratch memory of a rendering call: malloc. */
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

/* Appends "stack ns\n" lines, sorted by stack, skipping zero times. */
int nprof__stacks_emit(const nprof__stacks *st, nprof_buf *out);

#endif /* NPROF_RUNTIME_COLLAPSED_H */
