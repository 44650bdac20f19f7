/*
 * runtime/collapsed.c: turning span trees into collapsed stacks and summing equal stacks,
 * for nprof_profile_render_collapsed() and the store's flame graph.  Off the request path.
 *
 * A line's number is self time: a span's duration minus its child spans and the queries run
 * directly inside it.  Frame names go through nprof__frame_name(), so no input can forge a
 * frame separator or a line break.
 */
#include "collapsed.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "profile.h"
#include "text.h"

#define SQL_FRAME_MAX 256
#define SPAN_FRAME_MAX 128

void nprof__stacks_init(nprof__stacks *st)
{
    memset(st, 0, sizeof *st);
}

void nprof__stacks_free(nprof__stacks *st)
{
    nprof_buf_free(&st->keys);
    free(st->table);
    memset(st, 0, sizeof *st);
}

static int grow_table(nprof__stacks *st)
{
    size_t cap = st->mask ? (st->mask + 1) * 2 : 64;
    nprof__stack_entry *t = calloc(cap, sizeof *t);
    if (!t)
        return NPROF_ENOMEM;
    for (size_t i = 0; st->table && i <= st->mask; i++) {
        if (!st->table[i].hash)
            continue;
        size_t j = st->table[i].hash & (cap - 1);
        while (t[j].hash)
            j = (j + 1) & (cap - 1);
        t[j] = st->table[i];
    }
    free(st->table);
    st->table = t;
    st->mask = cap - 1;
    return NPROF_OK;
}

nprof__stack_entry *nprof__stacks_take_key(nprof__stacks *st, size_t key_offset, unsigned flags)
{
    size_t len = st->keys.len - key_offset;
    const char *key = st->keys.data + key_offset;
    uint64_t h = XXH3_64bits_withSeed(key, len, flags) | 1; /* never 0, which marks empty slots */
    if ((st->size + 1) * 4 > (st->mask + 1) * 3 || !st->table) {
        if (grow_table(st))
            return NULL;
    }
    size_t j = h & st->mask;
    while (st->table[j].hash) {
        nprof__stack_entry *e = &st->table[j];
        if (e->hash == h && e->key_len == len && e->flags == flags &&
            !memcmp(st->keys.data + e->key_offset, key, len)) {
            st->keys.len = key_offset; /* known stack: drop the copy */
            st->keys.data[key_offset] = '\0';
            return e;
        }
        j = (j + 1) & st->mask;
    }
    st->table[j] = (nprof__stack_entry){.hash = h, .key_offset = key_offset, .key_len = len,
                                        .flags = flags};
    st->size++;
    return &st->table[j];
}

/* Adds `ns` to the span stack whose text was just appended to st->keys from `key_offset`. */
static int add_pending_key(nprof__stacks *st, size_t key_offset, uint64_t ns)
{
    nprof__stack_entry *e = nprof__stacks_take_key(st, key_offset, 0);
    if (!e)
        return NPROF_ENOMEM;
    e->ns += ns;
    return NPROF_OK;
}

static uint64_t minus(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

int nprof__stacks_add_profile(nprof__stacks *st, const nprof_profile *p)
{
    uint32_t n = p->span_count;
    /* Where each span's path starts in `paths`, its length, and its children's time. */
    size_t *offset = calloc((size_t)n + 1, sizeof *offset);
    size_t *length = calloc((size_t)n + 1, sizeof *length);
    uint64_t *inner = calloc((size_t)n + 1, sizeof *inner); /* index n: the request itself */
    nprof_buf paths = NPROF_BUF_INIT;
    int rc = offset && length && inner ? NPROF_OK : NPROF_ENOMEM;
    if (rc == NPROF_OK)
        rc = nprof__buf_append_cstr(&paths, "request");
    offset[n] = 0;
    length[n] = 7;
    /* A parent always has a smaller id than its children: one forward pass builds paths. */
    for (uint32_t i = 0; i < n && rc == NPROF_OK; i++) {
        const nprof__span *s = &p->spans[i];
        uint32_t parent = s->parent >= 0 ? (uint32_t)s->parent : n;
        size_t start = paths.len;
        rc = nprof__buf_append(&paths, paths.data + offset[parent], length[parent]);
        if (!rc)
            rc = nprof__buf_append_char(&paths, ';');
        if (!rc)
            rc = nprof__frame_name(&paths, s->name, s->name_len, SPAN_FRAME_MAX);
        offset[i] = start;
        length[i] = paths.len - start;
        inner[parent] += nprof__span_ns(s);
    }
    uint64_t kept_sql_ns = 0;
    for (uint32_t q = 0; q < p->query_count && rc == NPROF_OK; q++) {
        const nprof__query *r = &p->queries[q];
        uint32_t parent = r->span >= 0 ? (uint32_t)r->span : n;
        inner[parent] += r->duration_ns;
        kept_sql_ns += r->duration_ns;
        size_t key = st->keys.len;
        rc = nprof__buf_append(&st->keys, paths.data + offset[parent], length[parent]);
        if (!rc)
            rc = nprof__buf_append_cstr(&st->keys, ";sql;");
        if (!rc)
            rc = r->normalized ? nprof__frame_name(&st->keys, r->normalized, r->normalized_len, SQL_FRAME_MAX)
                               : nprof__frame_name(&st->keys, r->sql, r->sql_len, SQL_FRAME_MAX);
        if (!rc)
            rc = add_pending_key(st, key, r->duration_ns);
    }
    /* Queries counted but not kept: their time is known, their text and place are not. */
    uint64_t unkept_ns = minus(p->sql_total_ns, kept_sql_ns);
    if (rc == NPROF_OK && unkept_ns) {
        inner[n] += unkept_ns;
        size_t key = st->keys.len;
        rc = nprof__buf_append_cstr(&st->keys, "request;sql;[queries not kept]");
        if (!rc)
            rc = add_pending_key(st, key, unkept_ns);
    }
    for (uint32_t i = 0; i <= n && rc == NPROF_OK; i++) {
        uint64_t total = i < n ? nprof__span_ns(&p->spans[i]) : p->total_ns;
        size_t key = st->keys.len;
        rc = nprof__buf_append(&st->keys, paths.data + offset[i], length[i]);
        if (!rc)
            rc = add_pending_key(st, key, minus(total, inner[i]));
    }
    nprof_buf_free(&paths);
    free(offset);
    free(length);
    free(inner);
    return rc;
}

static int by_key(const void *a, const void *b)
{
    const nprof__stack_line *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->entry->flags < y->entry->flags ? -1 : x->entry->flags > y->entry->flags;
}

int nprof__stacks_lines(const nprof__stacks *st, nprof__stack_line **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (!st->size)
        return NPROF_OK;
    nprof__stack_line *lines = malloc(st->size * sizeof *lines);
    if (!lines)
        return NPROF_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i <= st->mask; i++) {
        const nprof__stack_entry *e = &st->table[i];
        if (e->hash && e->ns)
            lines[n++] = (nprof__stack_line){st->keys.data + e->key_offset, e->key_len, e};
    }
    qsort(lines, n, sizeof *lines, by_key);
    *out = lines;
    *count = n;
    return NPROF_OK;
}

int nprof__stacks_emit(const nprof__stacks *st, nprof_buf *out)
{
    nprof__stack_line *lines;
    size_t n;
    int rc = nprof__stacks_lines(st, &lines, &n);
    for (size_t i = 0; i < n && rc == NPROF_OK; i++) {
        rc = nprof__buf_append(out, lines[i].key, lines[i].len);
        if (!rc)
            rc = nprof__buf_append_char(out, ' ');
        if (!rc)
            rc = nprof__buf_append_u64(out, lines[i].entry->ns);
        if (!rc)
            rc = nprof__buf_append_char(out, '\n');
    }
    free(lines);
    return rc;
}
