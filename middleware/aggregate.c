/*
 * middleware/aggregate.c: what the dashboard shows about all requests, gathered without a
 * lock shared between threads.
 *
 * Rows (METHOD + route template) live in an open-addressing table whose slots are set once
 * by compare-and-swap and never change again, so a lookup is a hash and a few loads.  Each
 * row's counts are split by thread shard (nprof__thread_index() % NPROF__SHARDS, the shards
 * the runtime's counters use): a request adds to its own shard's cache lines with relaxed
 * atomic adds, and a reader sums the shards.  N+1 shapes are kept the same way, by
 * fingerprint.  Totals are the runtime's sharded counters.  The timeline (requests and p95
 * per second over the last two minutes) is a ring of slots per shard, reused as time moves
 * on: the first request of a new second in a slot empties it (see timeline_slot).  Nothing
 * here blocks a request.
 */
#include <stdlib.h>
#include <string.h>
/* Inlined: a route's hash is taken on every request, and for ~20 bytes the call through the
 * shared library's PLT costs as much as the hash. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

static nprof__route *route_new(nprof_mw *mw, uint64_t hash, const char *method,
                               size_t method_len, const char *route, size_t route_len)
{
    size_t bytes = sizeof(nprof__route) + method_len + route_len + 1;
    nprof__route *r = nprof__alloc_zeroed(mw->alloc, bytes);
    if (!r)
        return NULL;
    r->hash = hash;
    r->bytes = bytes;
    r->method_len = (uint32_t)method_len;
    r->route_len = (uint32_t)route_len;
    memcpy(r->text, method, method_len);
    memcpy(r->text + method_len, route, route_len);
    /* The budget: one for METHOD + route, else one for the route, else "*". */
    const nprof__budget *best = NULL;
    int best_rank = 0;
    for (size_t i = 0; i < mw->budget_count; i++) {
        const nprof__budget *b = &mw->budgets[i];
        int rank = 0;
        if (b->route_len == method_len + 1 + route_len && !memcmp(b->route, method, method_len) &&
            b->route[method_len] == ' ' && !memcmp(b->route + method_len + 1, route, route_len))
            rank = 3;
        else if (b->route_len == route_len && !memcmp(b->route, route, route_len))
            rank = 2;
        else if (b->route_len == 1 && b->route[0] == '*')
            rank = 1;
        if (rank > best_rank) {
            best = b;
            best_rank = rank;
        }
    }
    if (best) {
        r->budget_queries = best->max_queries;
        r->budget_sql_ns = best->max_sql_ns;
    }
    return r;
}

static void route_free(nprof_mw *mw, nprof__route *r)
{
    if (!r)
        return;
    for (int s = 0; s < NPROF__SHARDS; s++) {
        nprof__route_shard *sh = atomic_load_explicit(&r->shard[s], memory_order_relaxed);
        if (sh) {
            nprof__hist_free(&sh->hist, mw->alloc);
            nprof__free_cacheline(mw->alloc, sh, sizeof *sh);
        }
    }
    nprof__free_bytes(mw->alloc, r, r->bytes);
}

/* The totals under the runtime's introspection names "stats.mw.<field>": one list gives the
 * names and where each value is in nprof_mw_totals, so the struct and the names cannot drift. */
#define MW_TOTALS(X)                                                                         \
    X(requests) X(queries) X(sql_ns) X(slow_queries) X(n_plus_one_patterns)                   \
    X(n_plus_one_requests) X(over_budget) X(errors) X(kept) X(routes)
#define MW_NAME(field) #field,
#define MW_OFFSET(field) offsetof(nprof_mw_totals, field),
static const char *const totals_names[] = {MW_TOTALS(MW_NAME)};
static const size_t totals_offsets[] = {MW_TOTALS(MW_OFFSET)};
#define TOTALS_COUNT (sizeof totals_names / sizeof totals_names[0])

static void read_totals(void *user, nprof_ctl_value *values)
{
    nprof_mw_totals t;
    nprof_mw_get_totals(user, &t);
    uint64_t v[TOTALS_COUNT];
    for (size_t i = 0; i < TOTALS_COUNT; i++)
        v[i] = *(const uint64_t *)((const char *)&t + totals_offsets[i]);
    nprof__ctl_uints(values, v, TOTALS_COUNT);
}

static const nprof__ctl_provider totals_provider = {totals_names, TOTALS_COUNT, read_totals};

int nprof__mw_aggregate_init(nprof_mw *mw)
{
    uint32_t cap = pow2_at_least(mw->max_routes * 2 + 16);
    mw->route_slots = nprof__alloc_zeroed(mw->alloc, cap * sizeof *mw->route_slots);
    uint32_t npcap = pow2_at_least(mw->max_np * 2 + 16);
    mw->np_slots = nprof__alloc_zeroed(mw->alloc, npcap * sizeof *mw->np_slots);
    mw->other = route_new(mw, 0, "*", 1, "{other}", 7);
    if (!mw->route_slots || !mw->np_slots || !mw->other)
        return NPROF_ENOMEM;
    mw->route_mask = cap - 1;
    mw->np_mask = npcap - 1;
    return nprof__ctl_register(mw->rt, NPROF__MW_CTL_PREFIX, &totals_provider, mw);
}

void nprof__mw_aggregate_free(nprof_mw *mw)
{
    /* First: once this returns no introspection read can reach the rows freed below. */
    nprof__ctl_unregister(mw->rt, NPROF__MW_CTL_PREFIX, mw);
    if (mw->route_slots) {
        for (uint32_t i = 0; i <= mw->route_mask; i++)
            route_free(mw, atomic_load_explicit(&mw->route_slots[i], memory_order_relaxed));
        nprof__free_bytes(mw->alloc, (void *)mw->route_slots,
                          (mw->route_mask + 1) * sizeof *mw->route_slots);
    }
    if (mw->np_slots) {
        for (uint32_t i = 0; i <= mw->np_mask; i++) {
            nprof__np *np = atomic_load_explicit(&mw->np_slots[i], memory_order_relaxed);
            if (np)
                nprof__free_bytes(mw->alloc, np, np->bytes);
        }
        nprof__free_bytes(mw->alloc, (void *)mw->np_slots,
                          (mw->np_mask + 1) * sizeof *mw->np_slots);
    }
    route_free(mw, mw->other);
    for (int s = 0; s < NPROF__SHARDS; s++) {
        nprof__tl_slot *tl = atomic_load_explicit(&mw->timeline[s], memory_order_relaxed);
        if (tl)
            nprof__free_bytes(mw->alloc, tl, NPROF__TL_SLOTS * sizeof *tl);
    }
}

NPROF__HOT_PATH
static int route_is(const nprof__route *r, uint64_t hash, const char *method, size_t method_len,
                    const char *route, size_t route_len)
{
    return r->hash == hash && r->method_len == method_len && r->route_len == route_len &&
           !memcmp(r->text, method, method_len) && !memcmp(r->text + method_len, route, route_len);
}

/* The method a row is counted under: one HTTP itself defines (RFC 9110's eight and PATCH,
 * RFC 5789), compared case-sensitively as RFC 9110 section 9.1 says, or NPROF_MW_OTHER_METHOD
 * for anything else: extension methods, "get", bytes that are no token at all.  The client
 * chooses its method, so a method of its own must not open a row of its own: a stream of
 * made-up methods would otherwise fill max_routes and push real routes into "{other}". */
static const char *row_method(const char *method, size_t len, size_t *row_len)
{
    static const struct {
        const char *name;
        size_t len;
    } standard[] = {{"GET", 3},     {"POST", 4},    {"PUT", 3},   {"DELETE", 6}, {"PATCH", 5},
                    {"HEAD", 4},    {"OPTIONS", 7}, {"TRACE", 5}, {"CONNECT", 7}};
    for (size_t i = 0; i < sizeof standard / sizeof standard[0]; i++)
        if (standard[i].len == len && !memcmp(standard[i].name, method, len)) {
            *row_len = len;
            return standard[i].name;
        }
    *row_len = sizeof NPROF_MW_OTHER_METHOD - 1;
    return NPROF_MW_OTHER_METHOD;
}

NPROF__HOT_PATH
nprof__route *nprof__mw_route(nprof_mw *mw, const char *method, size_t method_len,
                              const char *route, size_t route_len)
{
    if (route_len > NPROF__ROUTE_MAX)
        route_len = NPROF__ROUTE_MAX;
    method = row_method(method, method_len, &method_len);
    /* One hash over both: the method seeds the route's hash. */
    uint64_t hash = XXH3_64bits_withSeed(route, route_len, XXH3_64bits(method, method_len)) | 1;
    nprof__route *mine = NULL;
    uint32_t i = (uint32_t)hash & mw->route_mask;
    for (uint32_t n = 0; n <= mw->route_mask; n++, i = (i + 1) & mw->route_mask) {
        nprof__route *r = atomic_load_explicit(&mw->route_slots[i], memory_order_acquire);
        if (r) {
            if (route_is(r, hash, method, method_len, route, route_len)) {
                route_free(mw, mine);
                return r;
            }
            continue;
        }
        /* An empty slot: the row is new. */
        if (!mine) {
            if (atomic_load_explicit(&mw->route_count, memory_order_relaxed) >= mw->max_routes)
                return mw->other;
            mine = route_new(mw, hash, method, method_len, route, route_len);
            if (!mine)
                return NULL;
        }
        nprof__route *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(&mw->route_slots[i], &expected, mine,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            atomic_fetch_add_explicit(&mw->route_count, 1, memory_order_relaxed);
            return mine;
        }
        /* Another thread filled this slot first; it may be this very row. */
        if (route_is(expected, hash, method, method_len, route, route_len)) {
            route_free(mw, mine);
            return expected;
        }
    }
    route_free(mw, mine);
    return mw->other;
}

static nprof__route_shard *route_shard(nprof_mw *mw, nprof__route *r)
{
    unsigned s = nprof__thread_index() % NPROF__SHARDS;
    nprof__route_shard *sh = atomic_load_explicit(&r->shard[s], memory_order_acquire);
    if (__builtin_expect(sh != NULL, 1))
        return sh;
    nprof__route_shard *fresh = nprof__alloc_cacheline(mw->alloc, sizeof *fresh);
    if (!fresh)
        return NULL;
    nprof__route_shard *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&r->shard[s], &expected, fresh,
                                                memory_order_acq_rel, memory_order_acquire))
        return fresh;
    nprof__free_cacheline(mw->alloc, fresh, sizeof *fresh);
    return expected;
}

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

static void np_add_route(nprof__np *np, nprof__route *r)
{
    for (int i = 0; i < NPROF__NP_ROUTES; i++) {
        nprof__route *cur = atomic_load_explicit(&np->routes[i], memory_order_acquire);
        if (cur == r)
            return;
        if (!cur) {
            nprof__route *expected = NULL;
            if (atomic_compare_exchange_strong_explicit(&np->routes[i], &expected, r,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire) ||
                expected == r)
                return;
        }
    }
}

static nprof__np *np_get(nprof_mw *mw, const nprof_pattern_info *pi)
{
    uint64_t fp = pi->fingerprint ? pi->fingerprint : 1;
    nprof__np *mine = NULL;
    uint32_t i = (uint32_t)fp & mw->np_mask;
    for (uint32_t n = 0; n <= mw->np_mask; n++, i = (i + 1) & mw->np_mask) {
        nprof__np *np = atomic_load_explicit(&mw->np_slots[i], memory_order_acquire);
        if (np) {
            if (np->fingerprint == fp)
                goto found;
            continue;
        }
        if (!mine) {
            if (atomic_load_explicit(&mw->np_count, memory_order_relaxed) >= mw->max_np)
                return NULL;
            const char *text = pi->normalized ? pi->normalized : pi->example;
            size_t len = pi->normalized ? pi->normalized_len : pi->example_len;
            if (!text)
                len = 0;
            if (len > NPROF__NP_TEXT_MAX)
                len = NPROF__NP_TEXT_MAX;
            /* The first call site seen stays: the record is immutable once published. */
            size_t site_len = pi->callsite ? pi->callsite_len : 0;
            if (site_len > NPROF_CALLSITE_MAX)
                site_len = NPROF_CALLSITE_MAX;
            size_t bytes = sizeof(nprof__np) + len + site_len + 1;
            mine = nprof__alloc_zeroed(mw->alloc, bytes);
            if (!mine)
                return NULL;
            mine->fingerprint = fp;
            mine->bytes = bytes;
            mine->text_len = (uint32_t)len;
            mine->callsite_len = (uint32_t)site_len;
            if (len)
                memcpy(mine->text, text, len);
            if (site_len)
                memcpy(mine->text + len, pi->callsite, site_len);
        }
        nprof__np *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(&mw->np_slots[i], &expected, mine,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            atomic_fetch_add_explicit(&mw->np_count, 1, memory_order_relaxed);
            return mine;
        }
        if (expected->fingerprint == fp) {
            np = expected;
        found:
            if (mine)
                nprof__free_bytes(mw->alloc, mine, mine->bytes);
            return np;
        }
    }
    if (mine)
        nprof__free_bytes(mw->alloc, mine, mine->bytes);
    return NULL;
}

static void count_n_plus_one(nprof_mw *mw, nprof__route *r, const nprof_profile *p,
                             const nprof_profile_info *info)
{
    uint64_t now = nprof_now_ns();
    for (size_t k = 0; k < info->pattern_count; k++) {
        nprof_pattern_info pi;
        if (nprof_profile_get_pattern(p, k, &pi) != NPROF_OK || !pi.n_plus_one)
            continue;
        nprof__np *np = np_get(mw, &pi);
        if (!np)
            continue;
        ADD(np->repeats, pi.count);
        ADD(np->requests, 1);
        uint64_t cur = atomic_load_explicit(&np->max_in_request, memory_order_relaxed);
        while (pi.count > cur &&
               !atomic_compare_exchange_weak_explicit(&np->max_in_request, &cur, pi.count,
                                                      memory_order_relaxed, memory_order_relaxed)) {
        }
        atomic_store_explicit(&np->last_ns, now, memory_order_relaxed);
        np_add_route(np, r);
    }
}

/* The slot of interval `iv` (+ 1) in this thread's shard's ring, emptied for it if it held an
 * older interval; NULL when there is no memory, when the request is older than what the
 * slot holds (it ended more than the ring ago), or when another thread of the shard is
 * emptying the slot right now (the request goes uncounted in the timeline, never blocked). */
static nprof__tl_slot *timeline_slot(nprof_mw *mw, uint64_t iv)
{
    unsigned s = nprof__thread_index() % NPROF__SHARDS;
    nprof__tl_slot *ring = atomic_load_explicit(&mw->timeline[s], memory_order_acquire);
    if (__builtin_expect(!ring, 0)) {
        nprof__tl_slot *fresh = nprof__alloc_zeroed(mw->alloc, NPROF__TL_SLOTS * sizeof *fresh);
        if (!fresh)
            return NULL;
        nprof__tl_slot *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(&mw->timeline[s], &expected, fresh,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            ring = fresh;
        } else {
            nprof__free_bytes(mw->alloc, fresh, NPROF__TL_SLOTS * sizeof *fresh);
            ring = expected;
        }
    }
    nprof__tl_slot *slot = &ring[(iv - 1) % NPROF__TL_SLOTS];
    uint64_t cur = atomic_load_explicit(&slot->interval, memory_order_acquire);
    if (__builtin_expect(cur == iv, 1))
        return slot;
    if ((cur & NPROF__TL_BUSY) || cur > iv)
        return NULL;
    /* Claim the slot, empty it, then publish the interval: a reader or writer that sees the
     * new interval (acquire) sees the zeros before it. */
    if (!atomic_compare_exchange_strong_explicit(&slot->interval, &cur, iv | NPROF__TL_BUSY,
                                                 memory_order_acquire, memory_order_acquire))
        return cur == iv ? slot : NULL;
    atomic_thread_fence(memory_order_release); /* BUSY before the zeros, for readers */
    atomic_store_explicit(&slot->count, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->errors, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->total_ns, 0, memory_order_relaxed);
    for (unsigned b = 0; b < NPROF__HIST_COARSE; b++)
        atomic_store_explicit(&slot->bucket[b], 0, memory_order_relaxed);
    atomic_store_explicit(&slot->interval, iv, memory_order_release);
    return slot;
}

NPROF__HOT_PATH
void nprof__mw_count(nprof_mw *mw, nprof__route *r, const nprof_profile *p,
                     const nprof_profile_info *info, int over_budget)
{
    /* The totals are the sums of the rows (nprof_mw_get_totals), so a request costs only its
     * row's adds: three relaxed atomic adds on cache lines this thread's shard owns, plus
     * one per non-zero extra (queries, slow, N+1, budget). */
    nprof__route_shard *sh = r ? route_shard(mw, r) : NULL;
    if (!sh)
        return; /* out of memory: the request goes uncounted rather than fail */
    int cls = info->status >= 100 && info->status < 600 ? info->status / 100 : 0;
    ADD(sh->status[cls], 1);
    ADD(sh->total_ns, info->total_ns);
    uint64_t cur = atomic_load_explicit(&sh->max_ns, memory_order_relaxed);
    while (info->total_ns > cur &&
           !atomic_compare_exchange_weak_explicit(&sh->max_ns, &cur, info->total_ns,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    if (info->sql_count) {
        ADD(sh->queries, info->sql_count);
        ADD(sh->sql_ns, info->sql_total_ns);
    }
    if (info->slow_count)
        ADD(sh->slow_queries, info->slow_count);
    if (info->n_plus_one_count)
        ADD(sh->n_plus_one, 1);
    if (over_budget)
        ADD(sh->over_budget, 1);
    (void)nprof__hist_add(&sh->hist, mw->alloc, info->total_ns);
    /* The timeline counts the request in the second it ended (no clock read of its own). */
    nprof__tl_slot *tl = timeline_slot(mw, (info->start_ns + info->total_ns) / NPROF__TL_INTERVAL_NS + 1);
    if (tl) {
        ADD(tl->count, 1);
        ADD(tl->total_ns, info->total_ns);
        if (cls == 5)
            ADD(tl->errors, 1);
        ADD(tl->bucket[nprof__hist_coarse_index(info->total_ns)], 1);
    }
    if (info->n_plus_one_count)
        count_n_plus_one(mw, r, p, info);
}

#define LOAD(field) atomic_load_explicit(&(field), memory_order_relaxed)

void nprof__mw_route_merge(const nprof__route *r, nprof__hist_flat *scratch,
                           nprof_mw_route_stats *out)
{
    /* scratch NULL: the counts only, no percentiles (totals) */
    memset(out, 0, sizeof *out);
    out->method = r->text;
    out->method_len = r->method_len;
    out->route = r->text + r->method_len;
    out->route_len = r->route_len;
    if (scratch)
        nprof__hist_flat_clear(scratch);
    for (int s = 0; s < NPROF__SHARDS; s++) {
        nprof__route_shard *sh =
            atomic_load_explicit(&((nprof__route *)r)->shard[s], memory_order_acquire);
        if (!sh)
            continue;
        out->total_ns += LOAD(sh->total_ns);
        uint64_t m = LOAD(sh->max_ns);
        out->max_ns = m > out->max_ns ? m : out->max_ns;
        for (int c = 0; c < 6; c++) {
            uint64_t n = LOAD(sh->status[c]);
            out->status[c] += n;
            out->count += n;
        }
        out->queries += LOAD(sh->queries);
        out->sql_ns += LOAD(sh->sql_ns);
        out->slow_queries += LOAD(sh->slow_queries);
        out->n_plus_one += LOAD(sh->n_plus_one);
        out->over_budget += LOAD(sh->over_budget);
        if (scratch)
            nprof__hist_flat_merge(scratch, &sh->hist);
    }
    if (!scratch)
        return;
    scratch->max = out->max_ns;
    out->p50_ns = nprof__hist_flat_quantile(scratch, 0.50);
    out->p95_ns = nprof__hist_flat_quantile(scratch, 0.95);
    out->p99_ns = nprof__hist_flat_quantile(scratch, 0.99);
}

void nprof__mw_timeline(nprof_mw *mw, uint64_t last, nprof__tl_point *out, size_t n)
{
    if (n > NPROF__TL_SLOTS)
        n = NPROF__TL_SLOTS;
    memset(out, 0, n * sizeof *out);
    for (size_t k = 0; k < n; k++) {
        if (last + 1 < n - k)
            continue; /* before the clock's interval 0 */
        uint64_t iv = last - (n - 1 - k) + 1; /* as the slots hold it: number + 1 */
        uint64_t coarse[NPROF__HIST_COARSE] = {0};
        for (int s = 0; s < NPROF__SHARDS; s++) {
            nprof__tl_slot *ring = atomic_load_explicit(&mw->timeline[s], memory_order_acquire);
            if (!ring)
                continue;
            nprof__tl_slot *slot = &ring[(iv - 1) % NPROF__TL_SLOTS];
            if (atomic_load_explicit(&slot->interval, memory_order_acquire) != iv)
                continue;
            nprof__tl_point p = {.count = LOAD(slot->count), .errors = LOAD(slot->errors),
                                 .total_ns = LOAD(slot->total_ns)};
            uint64_t c[NPROF__HIST_COARSE];
            for (unsigned b = 0; b < NPROF__HIST_COARSE; b++)
                c[b] = LOAD(slot->bucket[b]);
            /* Emptied for a newer interval while being read: none of it is this one's. */
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&slot->interval, memory_order_acquire) != iv)
                continue;
            out[k].count += p.count;
            out[k].errors += p.errors;
            out[k].total_ns += p.total_ns;
            for (unsigned b = 0; b < NPROF__HIST_COARSE; b++)
                coarse[b] += c[b];
        }
        uint64_t in_hist = 0;
        for (unsigned b = 0; b < NPROF__HIST_COARSE; b++)
            in_hist += coarse[b];
        out[k].p95_ns = nprof__hist_coarse_quantile(coarse, in_hist, 0.95);
    }
}

int nprof__mw_routes_foreach(nprof_mw *mw, nprof__route_visit fn, void *user)
{
    for (uint32_t i = 0; i <= mw->route_mask; i++) {
        nprof__route *r = atomic_load_explicit(&mw->route_slots[i], memory_order_acquire);
        if (r) {
            int rc = fn(user, r);
            if (rc)
                return rc;
        }
    }
    for (int s = 0; s < NPROF__SHARDS; s++)
        if (atomic_load_explicit(&mw->other->shard[s], memory_order_acquire))
            return fn(user, mw->other);
    return NPROF_OK;
}

int nprof__mw_np_foreach(nprof_mw *mw, nprof__np_visit fn, void *user)
{
    for (uint32_t i = 0; i <= mw->np_mask; i++) {
        nprof__np *np = atomic_load_explicit(&mw->np_slots[i], memory_order_acquire);
        if (np) {
            int rc = fn(user, np);
            if (rc)
                return rc;
        }
    }
    return NPROF_OK;
}

static int add_totals(void *user, const nprof__route *r)
{
    nprof_mw_totals *t = user;
    nprof_mw_route_stats s;
    nprof__mw_route_merge(r, NULL, &s);
    t->requests += s.count;
    t->queries += s.queries;
    t->sql_ns += s.sql_ns;
    t->slow_queries += s.slow_queries;
    t->n_plus_one_requests += s.n_plus_one;
    t->over_budget += s.over_budget;
    t->errors += s.status[5];
    return NPROF_OK;
}

int nprof_mw_get_totals(nprof_mw *mw, nprof_mw_totals *out)
{
    if (!mw || !out)
        return NPROF_EINVAL;
    memset(out, 0, sizeof *out);
    nprof__mw_routes_foreach(mw, add_totals, out);
    out->n_plus_one_patterns = atomic_load_explicit(&mw->np_count, memory_order_relaxed);
    out->kept = nprof__counter_sum(&mw->kept);
    out->routes = atomic_load_explicit(&mw->route_count, memory_order_relaxed);
    return NPROF_OK;
}

int nprof_mw_get_route_stats(nprof_mw *mw, const char *method, size_t method_len,
                             const char *route, size_t route_len, nprof_mw_route_stats *out)
{
    if (!mw || !out || (!method && method_len) || (!route && route_len))
        return NPROF_EINVAL;
    uint64_t hash = XXH3_64bits_withSeed(route, route_len, XXH3_64bits(method, method_len)) | 1;
    uint32_t i = (uint32_t)hash & mw->route_mask;
    for (uint32_t n = 0; n <= mw->route_mask; n++, i = (i + 1) & mw->route_mask) {
        nprof__route *r = atomic_load_explicit(&mw->route_slots[i], memory_order_acquire);
        if (!r)
            break;
        if (route_is(r, hash, method, method_len, route, route_len)) {
            nprof__hist_flat *scratch = malloc(sizeof *scratch);
            if (!scratch)
                return NPROF_ENOMEM;
            scratch->used = 0;
            nprof__mw_route_merge(r, scratch, out);
            free(scratch);
            return NPROF_OK;
        }
    }
    return NPROF_ENOENT;
}
