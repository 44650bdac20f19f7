/*
 * sqlhooks/querystats.c: the per-shape statistics table (nanoprof/querystats.h), what the
 * libpq layer keeps for the whole process, like pg_stat_statements keeps for a server.
 *
 * Writers never lock: a shape's slot is found by linear probing from its fingerprint, a new
 * shape claims an empty slot with one compare-and-swap of the fingerprint, and counters are
 * relaxed atomic adds (the minimum and maximum are compare-and-swap loops that almost always
 * stop at the first load).  The claiming thread writes the normalized text afterwards and
 * publishes it by storing its length with release order, so readers see either no text or
 * all of it.  Slots are never freed, which is what keeps lookups lock-free; the table is
 * sized once and counts what does not fit.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/querystats.h"
#include "nanoprof/sql.h"
#include "runtime/jsonw.h"
#include "runtime/profile.h"

/* Bytes of a new shape's query that are normalized for its display text: enough for
 * NPROF_QUERYSTATS_TEXT_MAX bytes of output in any realistic query, bounded for a huge one. */
#define QS_NORMALIZE_INPUT_MAX 2048

typedef struct qs_slot {
    _Atomic uint64_t fingerprint; /* 0: empty */
    _Atomic uint32_t text_len;    /* 0: no text yet; else length + 1 (release-published) */
    _Atomic uint64_t calls, errors, rows, total_ns;
    _Atomic uint64_t min_inv_ns;  /* ~min: 0 means "no call yet", so max-updates serve both */
    _Atomic uint64_t max_ns;
    _Atomic uint64_t histogram[NPROF_QUERYSTATS_BUCKETS];
    char text[NPROF_QUERYSTATS_TEXT_MAX];
} qs_slot;

struct nprof_querystats {
    nprof_runtime *rt;
    size_t capacity; /* a power of two */
    size_t bytes;    /* of `slots` */
    _Atomic uint64_t size, dropped;
    qs_slot *slots;
};

/* The table's own figures under the runtime's introspection names "stats.querystats.*". */
#define QS_CTL_PREFIX "stats.querystats"
static const char *const ctl_names[] = {"size", "capacity", "dropped"};

static void read_ctl(void *user, nprof_ctl_value *values)
{
    const nprof_querystats *qs = user;
    uint64_t v[] = {nprof_querystats_size(qs), nprof_querystats_capacity(qs),
                    nprof_querystats_dropped(qs)};
    nprof__ctl_uints(values, v, sizeof v / sizeof v[0]);
}

static const nprof__ctl_provider ctl_provider = {ctl_names, sizeof ctl_names / sizeof ctl_names[0],
                                                 read_ctl};

int nprof_querystats_create(nprof_runtime *rt, uint32_t capacity, nprof_querystats **out)
{
    if (out)
        *out = NULL;
    if (!rt || !out || capacity > (1u << 20))
        return NPROF_EINVAL;
    size_t cap = 16;
    while (cap < (capacity ? capacity : NPROF_QUERYSTATS_DEFAULT_CAPACITY))
        cap *= 2;
    nprof_querystats *qs = nprof__alloc_zeroed(&rt->alloc, sizeof *qs);
    if (!qs)
        return NPROF_ENOMEM;
    qs->rt = rt;
    qs->capacity = cap;
    qs->bytes = cap * sizeof(qs_slot);
    qs->slots = nprof__alloc_zeroed(&rt->alloc, qs->bytes);
    if (!qs->slots) {
        nprof__free_bytes(&rt->alloc, qs, sizeof *qs);
        return NPROF_ENOMEM;
    }
    int rc = nprof__ctl_register(rt, QS_CTL_PREFIX, &ctl_provider, qs);
    if (rc) {
        nprof__free_bytes(&rt->alloc, qs->slots, qs->bytes);
        nprof__free_bytes(&rt->alloc, qs, sizeof *qs);
        return rc;
    }
    *out = qs;
    return NPROF_OK;
}

void nprof_querystats_destroy(nprof_querystats *qs)
{
    if (!qs)
        return;
    nprof__ctl_unregister(qs->rt, QS_CTL_PREFIX, qs);
    nprof__alloc *a = &qs->rt->alloc;
    nprof__free_bytes(a, qs->slots, qs->bytes);
    nprof__free_bytes(a, qs, sizeof *qs);
}

uint64_t nprof_querystats_bucket_upper_ns(int b)
{
    if (b < 0)
        return 0;
    return b >= NPROF_QUERYSTATS_BUCKETS - 1 ? UINT64_MAX : (uint64_t)1 << (10 + b);
}

static inline int bucket_of(uint64_t ns)
{
    uint64_t k = ns >> 10;
    if (!k)
        return 0;
    int b = 64 - __builtin_clzll(k);
    return b < NPROF_QUERYSTATS_BUCKETS - 1 ? b : NPROF_QUERYSTATS_BUCKETS - 1;
}

static inline void atomic_max(_Atomic uint64_t *v, uint64_t x)
{
    uint64_t cur = atomic_load_explicit(v, memory_order_relaxed);
    while (cur < x && !atomic_compare_exchange_weak_explicit(v, &cur, x, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* The normalized text of a new shape, cut to the slot's size, published last. */
static void publish_text(qs_slot *s, const char *sql, size_t len)
{
    size_t n = 0;
    if (sql && len) {
        size_t in = len < QS_NORMALIZE_INPUT_MAX ? len : QS_NORMALIZE_INPUT_MAX;
        /* NPROF_ERANGE still fills the buffer with the text's first bytes: what we want. */
        nprof_sql_normalize(sql, in, NPROF_SQL_QMARK, s->text, sizeof s->text, &n);
        if (n >= sizeof s->text)
            n = sizeof s->text - 1;
    }
    s->text[n] = 0;
    atomic_store_explicit(&s->text_len, (uint32_t)n + 1, memory_order_release);
}

/* The slot of `fp`, claimed if `claim` and absent; NULL when absent (or the table is full). */
static qs_slot *slot_for(const nprof_querystats *qs, uint64_t fp, int claim, int *claimed)
{
    size_t mask = qs->capacity - 1;
    size_t i = (size_t)(fp ^ (fp >> 29)) & mask;
    for (size_t probes = 0; probes < qs->capacity; probes++, i = (i + 1) & mask) {
        qs_slot *s = &qs->slots[i];
        uint64_t cur = atomic_load_explicit(&s->fingerprint, memory_order_acquire);
        if (cur == fp)
            return s;
        if (cur != 0)
            continue;
        if (!claim)
            return NULL;
        uint64_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(&s->fingerprint, &expected, fp,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            *claimed = 1;
            return s;
        }
        if (expected == fp) /* another thread claimed it for the same shape */
            return s;
    }
    return NULL;
}

int nprof_querystats_add(nprof_querystats *qs, uint64_t fingerprint, const char *sql, size_t len,
                         uint64_t duration_ns, uint64_t rows, int error)
{
    if (!qs || !fingerprint)
        return NPROF_EINVAL;
    int claimed = 0;
    qs_slot *s = slot_for(qs, fingerprint, 1, &claimed);
    if (!s) {
        atomic_fetch_add_explicit(&((nprof_querystats *)qs)->dropped, 1, memory_order_relaxed);
        return NPROF_EFULL;
    }
    if (claimed) {
        atomic_fetch_add_explicit(&qs->size, 1, memory_order_relaxed);
        publish_text(s, sql, len);
    }
    atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    if (error)
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
    if (rows)
        atomic_fetch_add_explicit(&s->rows, rows, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total_ns, duration_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->histogram[bucket_of(duration_ns)], 1, memory_order_relaxed);
    atomic_max(&s->min_inv_ns, ~duration_ns);
    atomic_max(&s->max_ns, duration_ns);
    return NPROF_OK;
}

static void copy_out(const qs_slot *s, uint64_t fp, nprof_querystats_entry *out)
{
    qs_slot *m = (qs_slot *)s; /* atomics are read through non-const pointers */
    out->fingerprint = fp;
    uint32_t tl = atomic_load_explicit(&m->text_len, memory_order_acquire);
    out->normalized_len = tl ? tl - 1 : 0;
    memcpy(out->normalized, s->text, out->normalized_len);
    out->normalized[out->normalized_len] = 0;
    out->calls = atomic_load_explicit(&m->calls, memory_order_relaxed);
    out->errors = atomic_load_explicit(&m->errors, memory_order_relaxed);
    out->rows = atomic_load_explicit(&m->rows, memory_order_relaxed);
    out->total_ns = atomic_load_explicit(&m->total_ns, memory_order_relaxed);
    uint64_t inv = atomic_load_explicit(&m->min_inv_ns, memory_order_relaxed);
    out->min_ns = inv ? ~inv : 0;
    out->max_ns = atomic_load_explicit(&m->max_ns, memory_order_relaxed);
    for (int b = 0; b < NPROF_QUERYSTATS_BUCKETS; b++)
        out->histogram[b] = atomic_load_explicit(&m->histogram[b], memory_order_relaxed);
}

int nprof_querystats_find(const nprof_querystats *qs, uint64_t fingerprint,
                          nprof_querystats_entry *out)
{
    if (!qs || !out || !fingerprint)
        return NPROF_EINVAL;
    const qs_slot *s = slot_for(qs, fingerprint, 0, NULL);
    if (!s)
        return NPROF_ENOENT;
    copy_out(s, fingerprint, out);
    return NPROF_OK;
}

int nprof_querystats_foreach(const nprof_querystats *qs, nprof_querystats_visit_fn fn, void *user)
{
    if (!qs || !fn)
        return NPROF_EINVAL;
    nprof_querystats_entry e;
    for (size_t i = 0; i < qs->capacity; i++) {
        qs_slot *s = &qs->slots[i];
        uint64_t fp = atomic_load_explicit(&s->fingerprint, memory_order_acquire);
        if (!fp || !atomic_load_explicit(&s->calls, memory_order_relaxed))
            continue;
        copy_out(s, fp, &e);
        int rc = fn(user, &e);
        if (rc)
            return rc;
    }
    return NPROF_OK;
}

size_t nprof_querystats_size(const nprof_querystats *qs)
{
    return qs ? (size_t)atomic_load_explicit(&((nprof_querystats *)qs)->size, memory_order_relaxed) : 0;
}

size_t nprof_querystats_capacity(const nprof_querystats *qs)
{
    return qs ? qs->capacity : 0;
}

uint64_t nprof_querystats_dropped(const nprof_querystats *qs)
{
    return qs ? atomic_load_explicit(&((nprof_querystats *)qs)->dropped, memory_order_relaxed) : 0;
}

void nprof_querystats_reset(nprof_querystats *qs)
{
    if (!qs)
        return;
    for (size_t i = 0; i < qs->capacity; i++) {
        qs_slot *s = &qs->slots[i];
        atomic_store_explicit(&s->calls, 0, memory_order_relaxed);
        atomic_store_explicit(&s->errors, 0, memory_order_relaxed);
        atomic_store_explicit(&s->rows, 0, memory_order_relaxed);
        atomic_store_explicit(&s->total_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&s->min_inv_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&s->max_ns, 0, memory_order_relaxed);
        for (int b = 0; b < NPROF_QUERYSTATS_BUCKETS; b++)
            atomic_store_explicit(&s->histogram[b], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&qs->dropped, 0, memory_order_relaxed);
}

uint64_t nprof_querystats_quantile_ns(const nprof_querystats_entry *e, double q)
{
    if (!e || !e->calls)
        return 0;
    uint64_t total = 0;
    for (int b = 0; b < NPROF_QUERYSTATS_BUCKETS; b++)
        total += e->histogram[b];
    double want = q * (double)total;
    uint64_t seen = 0;
    for (int b = 0; b < NPROF_QUERYSTATS_BUCKETS; b++) {
        seen += e->histogram[b];
        if ((double)seen >= want && e->histogram[b]) {
            uint64_t up = nprof_querystats_bucket_upper_ns(b);
            return up > e->max_ns ? e->max_ns : up < e->min_ns ? e->min_ns : up;
        }
    }
    return e->max_ns;
}

/* ---- JSON --------------------------------------------------------------------------------- */

typedef struct qs_collect {
    nprof_querystats_entry *v;
    size_t n, cap;
} qs_collect;

static int collect(void *user, const nprof_querystats_entry *e)
{
    qs_collect *c = user;
    if (c->n == c->cap)
        return 1; /* shapes claimed since the count was taken: left for the next rendering */
    c->v[c->n++] = *e;
    return 0;
}

static int by_total_desc(const void *a, const void *b)
{
    const nprof_querystats_entry *x = a, *y = b;
    return x->total_ns < y->total_ns ? 1 : x->total_ns > y->total_ns ? -1 : 0;
}

static void json_entry(nprof__jw *j, const nprof_querystats_entry *e)
{
    nprof__jw_obj(j);
    nprof__jw_key(j, "fingerprint");
    nprof__jw_hex(j, e->fingerprint);
    nprof__jw_kstr(j, "query", e->normalized, e->normalized_len);
    nprof__jw_ku64(j, "calls", e->calls);
    nprof__jw_ku64(j, "errors", e->errors);
    nprof__jw_ku64(j, "rows", e->rows);
    nprof__jw_ku64(j, "total_ns", e->total_ns);
    nprof__jw_ku64(j, "mean_ns", e->calls ? e->total_ns / e->calls : 0);
    nprof__jw_ku64(j, "min_ns", e->min_ns);
    nprof__jw_ku64(j, "max_ns", e->max_ns);
    nprof__jw_ku64(j, "p50_ns", nprof_querystats_quantile_ns(e, 0.50));
    nprof__jw_ku64(j, "p95_ns", nprof_querystats_quantile_ns(e, 0.95));
    nprof__jw_ku64(j, "p99_ns", nprof_querystats_quantile_ns(e, 0.99));
    nprof__jw_key(j, "histogram");
    nprof__jw_arr(j);
    for (int b = 0; b < NPROF_QUERYSTATS_BUCKETS; b++)
        nprof__jw_u64(j, e->histogram[b]);
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
}

int nprof_querystats_render_json(const nprof_querystats *qs, size_t limit, nprof_buf *out)
{
    if (!qs || !out)
        return NPROF_EINVAL;
    /* Reader-side memory: the caller's thread renders for a dashboard, off the request path. */
    qs_collect c = {.cap = nprof_querystats_size(qs)};
    c.v = c.cap ? malloc(c.cap * sizeof *c.v) : NULL;
    if (c.cap && !c.v)
        return NPROF_ENOMEM;
    nprof_querystats_foreach(qs, collect, &c);
    qsort(c.v, c.n, sizeof *c.v, by_total_desc);
    size_t shown = limit && limit < c.n ? limit : c.n;

    nprof__jw jw, *j = &jw;
    nprof__jw_init(j, out);
    nprof__jw_obj(j);
    nprof__jw_ku64(j, "capacity", qs->capacity);
    nprof__jw_ku64(j, "size", nprof_querystats_size(qs));
    nprof__jw_ku64(j, "dropped", nprof_querystats_dropped(qs));
    nprof__jw_key(j, "bucket_upper_ns");
    nprof__jw_arr(j);
    for (int b = 0; b < NPROF_QUERYSTATS_BUCKETS - 1; b++)
        nprof__jw_u64(j, nprof_querystats_bucket_upper_ns(b));
    nprof__jw_null(j); /* the last bucket has no bound */
    nprof__jw_arr_end(j);
    nprof__jw_key(j, "queries");
    nprof__jw_arr(j);
    for (size_t i = 0; i < shown; i++)
        json_entry(j, &c.v[i]);
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
    free(c.v);
    return nprof__jw_finish(j);
}
