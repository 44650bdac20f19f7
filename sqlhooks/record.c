/*
 * sqlhooks/record.c: recording a query with its shape.  The database hooks (the libpq shim,
 * the Python bindings' cursor hooks, a host's own calls) all end here: shape the kept part of
 * the query into a buffer the thread owns (through the runtime's shape cache), take the
 * fingerprint (of that text when the whole query was kept, else with a streaming pass over
 * all of it), apply the ignore rule, and hand the query to the runtime, which counts it
 * under its shape.
 */
#include <stdlib.h>
#include <string.h>

#include "nanoprof/sql.h"
#include "runtime/profile.h"
#include "runtime/thread_mem.h"
#include "shape_cache.h"

/* The thread's normalization buffer: grown to the largest query it has seen (bounded by
 * opt.max_sql_bytes), freed when the thread exits (runtime/thread_mem.h). */
static _Thread_local struct {
    char *data;
    size_t cap;
} scratch;

static void free_buffer(void *data)
{
    free(data);
    scratch.data = NULL;
    scratch.cap = 0;
}

static nprof__thread_mem buffer_mem = NPROF__THREAD_MEM_INIT(free_buffer);

static char *thread_buffer(size_t need)
{
    if (scratch.cap >= need)
        return scratch.data;
    char *data = realloc(scratch.data, need);
    if (!data)
        return NULL;
    if (nprof__thread_mem_keep(&buffer_mem, data) < 0) {
        free_buffer(data); /* nothing would free it at the thread's exit */
        return NULL;
    }
    scratch.data = data;
    scratch.cap = need;
    return data;
}

NPROF__HOT_PATH
int nprof_sql_record(nprof_profile *p, const nprof_query *q)
{
    return nprof__sql_record_hashed(p, q, 0);
}

/* The shape of the profile's last whole-text query, given to `shaped` when `shaped` has the
 * same text: 1, or 0 when it does not (or there is none).  The previous query's text and
 * shape are in the profile already, so a repeat of it costs a comparison instead of the
 * shape cache's hash and lookup, code that would otherwise run at every query of an N+1
 * loop, each time after the driver's own code has pushed it out of the cache. */
static int shape_of_last(const nprof_profile *p, nprof_query *shaped, uint64_t *text_hash)
{
    if (!p->shape_memo)
        return 0;
    const nprof__query *last = &p->queries[p->shape_memo - 1];
    if (last->sql_len != shaped->sql_len || !shaped->sql_len ||
        memcmp(last->sql, shaped->sql, shaped->sql_len) != 0)
        return 0;
    shaped->sql = last->sql; /* the same bytes, the profile's own copy: not copied again */
    shaped->fingerprint = last->fingerprint;
    shaped->normalized = last->normalized;
    shaped->normalized_len = last->normalized_len;
    shaped->flags |= last->flags & NPROF_QUERY_UNCOUNTED;
    *text_hash = p->shape_memo_text_hash;
    return 1;
}

/* Remembers query number `kept` (its whole text kept, shaped here) for shape_of_last(). */
static void remember_shape(nprof_profile *p, const nprof_query *shaped, int32_t kept,
                           uint64_t text_hash)
{
    const nprof__query *r = &p->queries[kept];
    if (r->sql_len != shaped->sql_len || !r->normalized) {
        p->shape_memo = 0; /* cut, or kept without its shape: nothing to compare with */
        return;
    }
    p->shape_memo = (uint32_t)kept + 1;
    p->shape_memo_text_hash = text_hash;
}

NPROF__HOT_PATH
int nprof__sql_record_hashed(nprof_profile *p, const nprof_query *q, uint64_t text_hash)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!q || (!q->sql && q->sql_len))
        return NPROF_EINVAL;
    if (q->fingerprint && q->normalized) /* the caller gave the shape already */
        return nprof__query_record_hashed(p, q, text_hash);
    nprof_query shaped = *q;
    if (!q->fingerprint && !q->normalized && shape_of_last(p, &shaped, &text_hash))
        return nprof__query_record_hashed(p, &shaped, text_hash);
    size_t cap = NPROF_SQL_NORMALIZED_MAX(nprof__sql_kept(p->rt, q->sql_len));
    char *buf = thread_buffer(cap);
    if (buf)
        nprof__sql_shape_query(p->rt, &shaped, buf, cap, &text_hash);
    if (!shaped.fingerprint)
        shaped.fingerprint = nprof_sql_fingerprint(q->sql, q->sql_len);
    uint32_t before = p->query_count;
    int rc = nprof__query_record_hashed(p, &shaped, text_hash);
    if (!q->fingerprint && !q->normalized && p->query_count == before + 1)
        remember_shape(p, &shaped, (int32_t)before, text_hash);
    return rc;
}
