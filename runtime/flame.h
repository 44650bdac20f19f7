/*
 * runtime/flame.h: collapsed stacks ("a;b;c ns" lines) as a tree of frames, and that tree
 * drawn as a self-contained SVG flame graph.  One drawer for every flame graph nanoprof
 * draws: the store's span stacks (middleware/export.c) and sampled call stacks
 * (samples_render.c).
 */
#ifndef NPROF_RUNTIME_FLAME_H
#define NPROF_RUNTIME_FLAME_H

#include <stddef.h>
#include <stdint.h>

#include "nanoprof/common.h"

/* One frame of the tree: its name is text[name, name + name_len) of the collapsed text. */
typedef struct nprof__fnode {
    size_t name, name_len;
    uint32_t first_child, next_sibling, depth; /* children in first-seen order */
    uint64_t total;                            /* ns of this frame and everything above it */
} nprof__fnode;

/* The tree: node 0 is the root ("all"), which totals every line.  Scratch memory: malloc. */
typedef struct nprof__ftree {
    nprof__fnode *n;
    size_t count, cap;
    uint32_t max_depth;
} nprof__ftree;

/* Reads the collapsed line at text[pos]: its frames are text[pos, pos + *frames_len) (0 for a
 * line without them), its time *ns.  Returns where the next line starts. */
size_t nprof__collapsed_line(const char *text, size_t len, size_t pos, size_t *frames_len,
                             uint64_t *ns);

/* Builds the tree of `len` bytes of collapsed text into `t` (zeroed by the caller), which
 * points into the text afterwards.  Errors: NPROF_ENOMEM (free `t` all the same). */
int nprof__ftree_build(nprof__ftree *t, const char *text, size_t len);
void nprof__ftree_free(nprof__ftree *t);

/* Appends the flame graph of `len` bytes of collapsed text, headed `title` (any bytes:
 * escaped), as one SVG document whose zoom script carries `nonce` (letters and digits, for
 * the Content-Security-Policy it is served under; NULL: none).  Errors: NPROF_ENOMEM. */
int nprof__flame_svg(nprof_buf *out, const char *text, size_t len, const char *title,
                     size_t title_len, const char *nonce);

#endif /* NPROF_RUNTIME_FLAME_H */
