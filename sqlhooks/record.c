/*
 * sqlhooks/record.c: recording a query with its shape.  The database hooks (the libpq shim,
 * the Python bindings' cursor hooks, a host's own calls) all end here: shape the kept part of
 * the query into a buffer the thread owns (through the runtime's shape cache), take the
 * fingerprint (of that text when the whole query was kept, else with a streaming pass over
 * all of it), apply the ignore rule, and hand the query to the runtime, which counts it
 * under its shape.
 */
#include <pthread.h>
#include <stdlib.h>

#include "nanoprof/sql.h"
#include "runtime/profile.h"
#include "shape_cache.h"

/* The thread's normalization buffer: grown to the largest query it has seen (bounded by
 * opt.max_sql_bytes), freed when the thread exits. */
static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
    char *data;
    size_t cap;
} scratch;

static void free_buffer(void *data)
{
    free(data);
}

static void make_key(void)
{
    pthread_key_create(&buffer_key, free_buffer);
}

static char *thread_buffer(size_t need)
{
    if (scratch.cap >= need)
        return scratch.data;
    pthread_once(&buffer_once, make_key);
    char *data = realloc(scratch.data, need);
    if (!data)
        return NULL;
    scratch.data = data;
    scratch.cap = need;
    pthread_setspecific(buffer_key, data);
    return data;
}

int nprof_sql_record(nprof_profile *p, const nprof_query *q)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!q || (!q->sql && q->sql_len))
        return NPROF_EINVAL;
    if (q->fingerprint && q->normalized)
        return nprof_query_record(p, q); /* the caller gave the shape already */
    nprof_query shaped = *q;
    size_t cap = NPROF_SQL_NORMALIZED_MAX(nprof__sql_kept(p->rt, q->sql_len));
    char *buf = thread_buffer(cap);
    if (buf)
        nprof__sql_shape_query(p->rt, &shaped, buf, cap);
    if (!shaped.fingerprint)
        shaped.fingerprint = nprof_sql_fingerprint(q->sql, q->sql_len);
    return nprof_query_record(p, &shaped);
}
