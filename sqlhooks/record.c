/*
 * sqlhooks/record.c: recording a query with its shape.  The database hooks (the libpq shim,
 * the Python bindings' cursor hooks, a host's own calls) all end here: normalize the kept part
 * of the query into a buffer the thread owns, take the fingerprint (from that buffer when the
 * whole query fit, else with a second streaming pass over all of it), apply the ignore rules,
 * and hand the query to the runtime, which counts it under its shape.
 */
#include <pthread.h>
#include <stdlib.h>
#include <xxhash.h>

#include "nanoprof/sql.h"
#include "runtime/profile.h"

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
    size_t kept = q->sql_len < p->rt->cfg.max_sql_bytes ? q->sql_len : p->rt->cfg.max_sql_bytes;
    size_t cap = NPROF_SQL_NORMALIZED_MAX(kept);
    char *buf = thread_buffer(cap);
    size_t n = 0;
    if (buf && nprof_sql_normalize(q->sql, kept, NPROF_SQL_QMARK, buf, cap, &n) == NPROF_OK) {
        if (!shaped.normalized) {
            shaped.normalized = buf;
            shaped.normalized_len = n;
        }
        if (nprof__rule_match(&p->rt->sql_ignore, buf, n))
            shaped.flags |= NPROF_QUERY_UNCOUNTED;
    }
    if (!shaped.fingerprint) {
        if (buf && kept == q->sql_len && shaped.normalized == buf) {
            /* The whole query was normalized: its fingerprint is the hash of that text. */
            uint64_t h = XXH3_64bits(buf, n);
            shaped.fingerprint = h ? h : 1;
        } else {
            shaped.fingerprint = nprof_sql_fingerprint(q->sql, q->sql_len);
        }
    }
    return nprof_query_record(p, &shaped);
}
