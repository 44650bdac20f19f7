/*
 * sqlhooks/record.c: recording a query with its shape.  The database hooks (the libpq shim,
 * the Python bindings' cursor hooks, a host's own calls) all end here: shape the kept part of
 * the query into a buffer the thread owns (through the runtime's shape cache), take the
 * fingerprint (of that text when the whole query was kept, else with a streaming pass over
 * all of it), apply the ignore rule, and hand the query to the runtime, which counts it
 * under its shape.
 */
#include <stdlib.h>

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

int nprof_sql_record(nprof_profile *p, const nprof_query *q)
{
    return nprof__sql_record_hashed(p, q, 0);
}

int nprof__sql_record_hashed(nprof_profile *p, const nprof_query *q, uint64_t text_hash)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!q || (!q->sql && q->sql_len))
        return NPROF_EINVAL;
    if (q->fingerprint && q->normalized) /* the caller gave the shape already */
        return nprof__query_record_hashed(p, q, text_hash);
    nprof_query shaped = *q;
    size_t cap = NPROF_SQL_NORMALIZED_MAX(nprof__sql_kept(p->rt, q->sql_len));
    char *buf = thread_buffer(cap);
    if (buf)
        nprof__sql_shape_query(p->rt, &shaped, buf, cap, &text_hash);
    if (!shaped.fingerprint)
        shaped.fingerprint = nprof_sql_fingerprint(q->sql, q->sql_len);
    return nprof__query_record_hashed(p, &shaped, text_hash);
}
