/*
 * middleware/dashboard.c: what a dashboard request gets: the JSON document (the reference
 * keys plus routes, slowest requests, memory and clock), the Prometheus text exposition,
 * the HTML page made from the embedded templates, and nprof_mw_handle(), which routes a
 * request below dashboard_path to one of them (or to the exports in export.c) with the
 * security headers.  Everything here runs on the dashboard's own request, reading the
 * aggregates and a snapshot of the store while requests keep flowing.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "internal.h"
#include "nanoprof/clock.h"
#include "nanoprof/store.h"
#include "runtime/jsonw.h"

/* Names of the status classes, by index of nprof_mw_route_stats.status ([0] other, [1] 1xx
 * ... [5] 5xx): the JSON keys and the Prometheus `code` label alike. */
#define STATUS_CLASSES 6
static const char *const status_class_names[STATUS_CLASSES] = {"other", "1xx", "2xx",
                                                               "3xx",   "4xx", "5xx"};

/* Rows of the lists that show whole requests or database rows (slowest requests, the
 * cluster's fingerprints), at most: each row is wide, so the page's tables stop there, and
 * the cluster's costs a query over every process's rows. */
#define WIDE_LIST_MAX 20

/* Content-Security-Policy of everything but the page and the SVG: nothing may load, nothing
 * may frame it (text and JSON need no more). */
#define CSP_NONE "default-src 'none'; frame-ancestors 'none'"
/* An SVG flame graph: its zoom script by nonce (%s), its inline style. */
#define CSP_SVG_FORMAT                                                                       \
    "default-src 'none'; script-src 'nonce-%s'; style-src 'unsafe-inline'; "                 \
    "frame-ancestors 'none'"
/* The page: its own script and style by nonce (both %s), the JSON and exports it fetches from
 * itself, no forms, no base, no framing. */
#define CSP_PAGE_FORMAT                                                                      \
    "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; "                      \
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "              \
    "frame-ancestors 'none'"

static size_t wide_list_rows(const nprof_mw *mw)
{
    return mw->dashboard_items < WIDE_LIST_MAX ? mw->dashboard_items : WIDE_LIST_MAX;
}

/* ---- gathering the rows ---------------------------------------------------------------- */

typedef struct row {
    nprof_mw_route_stats s;
    const nprof__route *r;
    size_t hist_at;             /* its latency distribution: rows.hist[hist_at, + hist_len), */
    uint32_t hist_first, hist_len; /* coarse buckets hist_first on (histogram.h) */
} row;

typedef struct rows {
    row *items;
    size_t count, cap;
    uint64_t *hist;             /* the rows' coarse histograms, from first to last non-zero */
    size_t hist_len, hist_cap;
    nprof__hist_flat *scratch;
    /* called for each counted row while its merged histogram is in scratch (Prometheus) */
    int (*each)(void *user, size_t index, const row *rw, const nprof__hist_flat *h);
    void *user;
} rows;

/* Keeps the coarse latency distribution of the row whose merged histogram is in scratch. */
static int keep_coarse(rows *rs, row *rw)
{
    uint64_t coarse[NPROF__HIST_COARSE] = {0};
    nprof__hist_flat_coarse(rs->scratch, coarse);
    unsigned first = 0, end = NPROF__HIST_COARSE;
    while (first < end && !coarse[first])
        first++;
    while (end > first && !coarse[end - 1])
        end--;
    if (rs->hist_len + (end - first) > rs->hist_cap) {
        size_t cap = rs->hist_cap ? rs->hist_cap * 2 : 1024;
        while (cap < rs->hist_len + (end - first))
            cap *= 2;
        uint64_t *h = realloc(rs->hist, cap * sizeof *h);
        if (!h)
            return NPROF_ENOMEM;
        rs->hist = h;
        rs->hist_cap = cap;
    }
    /* A row can have a count and no latency: read between a request's two adds (its status
     * is counted first), or after its histogram could not grow (out of memory).  Nothing
     * to keep then, and rs->hist may still be NULL. */
    if (end > first)
        memcpy(rs->hist + rs->hist_len, coarse + first, (end - first) * sizeof *coarse);
    rw->hist_at = rs->hist_len;
    rw->hist_first = first;
    rw->hist_len = end - first;
    rs->hist_len += end - first;
    return NPROF_OK;
}

static int collect_row(void *user, const nprof__route *r)
{
    rows *rs = user;
    if (rs->count == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        row *items = realloc(rs->items, cap * sizeof *items);
        if (!items)
            return NPROF_ENOMEM;
        rs->items = items;
        rs->cap = cap;
    }
    row *rw = &rs->items[rs->count];
    nprof__mw_route_merge(r, rs->scratch, &rw->s);
    rw->r = r;
    if (!rw->s.count)
        return NPROF_OK; /* made, and not yet counted by its first request */
    int rc = keep_coarse(rs, rw);
    if (rc)
        return rc;
    if (rs->each) {
        rc = rs->each(rs->user, rs->count, rw, rs->scratch);
        if (rc)
            return rc;
    }
    rs->count++;
    return NPROF_OK;
}

static int by_count_desc(const void *a, const void *b)
{
    const nprof_mw_route_stats *x = &((const row *)a)->s, *y = &((const row *)b)->s;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    size_t n = x->route_len < y->route_len ? x->route_len : y->route_len;
    int c = memcmp(x->route, y->route, n);
    return c ? c : (x->route_len > y->route_len) - (x->route_len < y->route_len);
}

static void rows_free(rows *rs)
{
    free(rs->items);
    free(rs->hist);
    free(rs->scratch);
}

static int rows_collect(nprof_mw *mw, rows *rs)
{
    rs->items = NULL;
    rs->count = rs->cap = 0;
    rs->hist = NULL;
    rs->hist_len = rs->hist_cap = 0;
    rs->scratch = malloc(sizeof *rs->scratch);
    if (!rs->scratch)
        return NPROF_ENOMEM;
    rs->scratch->used = 0;
    int rc = nprof__mw_routes_foreach(mw, collect_row, rs);
    if (rc) {
        rows_free(rs);
        return rc;
    }
    return NPROF_OK;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void route_json(nprof__jw *j, const rows *rs, const row *rw)
{
    const nprof_mw_route_stats *s = &rw->s;
    const nprof__route *r = rw->r;
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "method", s->method, s->method_len);
    nprof__jw_kstr(j, "route", s->route, s->route_len);
    nprof__jw_ku64(j, "count", s->count);
    nprof__jw_key(j, "status");
    nprof__jw_obj(j);
    for (int c = 0; c < STATUS_CLASSES; c++)
        if (s->status[c])
            nprof__jw_ku64(j, status_class_names[c], s->status[c]);
    nprof__jw_obj_end(j);
    nprof__jw_kms(j, "p50_ms", s->p50_ns);
    nprof__jw_kms(j, "p95_ms", s->p95_ns);
    nprof__jw_kms(j, "p99_ms", s->p99_ns);
    nprof__jw_kms(j, "max_ms", s->max_ns);
    nprof__jw_kms(j, "mean_ms", s->count ? s->total_ns / s->count : 0);
    nprof__jw_key(j, "mean_queries");
    nprof__jw_fixed(j, s->count ? (s->queries * 100 + s->count / 2) / s->count : 0, 2);
    nprof__jw_kms(j, "mean_sql_ms", s->count ? s->sql_ns / s->count : 0);
    nprof__jw_ku64(j, "queries", s->queries);
    nprof__jw_ku64(j, "slow_queries", s->slow_queries);
    nprof__jw_ku64(j, "n_plus_one", s->n_plus_one);
    nprof__jw_ku64(j, "over_budget", s->over_budget);
    nprof__jw_key(j, "budget");
    if (r->budget_queries || r->budget_sql_ns) {
        nprof__jw_obj(j);
        nprof__jw_ku64(j, "max_queries", r->budget_queries);
        nprof__jw_kms(j, "max_sql_ms", r->budget_sql_ns);
        nprof__jw_obj_end(j);
    } else {
        nprof__jw_null(j);
    }
    /* The latency distribution: counts of the coarse buckets `first` on (their bounds are
     * the document's "latency_buckets_ns"), up to the last that counted a request. */
    nprof__jw_key(j, "histogram");
    nprof__jw_obj(j);
    nprof__jw_ku64(j, "first", rw->hist_first);
    nprof__jw_key(j, "counts");
    nprof__jw_arr(j);
    for (size_t i = 0; i < rw->hist_len; i++)
        nprof__jw_u64(j, rs->hist[rw->hist_at + i]);
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
    nprof__jw_obj_end(j);
}

static void recent_slow_json(nprof__jw *j, const nprof_snapshot *snap, size_t max)
{
    size_t n = 0;
    for (size_t i = nprof_snapshot_count(snap); i-- > 0 && n < max;) {
        const nprof_profile *p = nprof_snapshot_get(snap, i);
        nprof_profile_info in;
        if (nprof_profile_get_info(p, &in) || !in.slow_count)
            continue;
        for (size_t q = 0; q < in.queries_kept && n < max; q++) {
            nprof_query_info qi;
            if (nprof_profile_get_query(p, q, &qi) || !qi.slow)
                continue;
            nprof__jw_obj(j);
            nprof__jw_kstr(j, "sql", qi.sql, qi.sql_len);
            nprof__jw_kms(j, "duration_ms", qi.duration_ns);
            nprof__jw_ku64(j, "duration_ns", qi.duration_ns);
            if (qi.normalized)
                nprof__jw_kstr(j, "normalized", qi.normalized, qi.normalized_len);
            nprof__jw_kstr(j, "method", in.method, in.method_len);
            nprof__jw_kstr(j, "path", in.path, in.path_len);
            nprof__jw_kstr(j, "route", in.route, in.route_len);
            nprof__jw_kstr(j, "request_id", in.request_id, in.request_id_len);
            if (qi.callsite)
                nprof__jw_kstr(j, "callsite", qi.callsite, qi.callsite_len);
            nprof__jw_obj_end(j);
            n++;
        }
    }
}

typedef struct np_list {
    const nprof__np **items;
    size_t count, cap;
} np_list;

static int collect_np(void *user, const nprof__np *np)
{
    np_list *l = user;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        const nprof__np **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return NPROF_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = np;
    return NPROF_OK;
}

/* Most recent first. */
static int np_recent_first(const void *a, const void *b)
{
    const nprof__np *x = *(const nprof__np *const *)a, *y = *(const nprof__np *const *)b;
    uint64_t lx = atomic_load_explicit(&((nprof__np *)x)->last_ns, memory_order_relaxed);
    uint64_t ly = atomic_load_explicit(&((nprof__np *)y)->last_ns, memory_order_relaxed);
    return lx < ly ? 1 : lx > ly ? -1 : 0;
}

static void np_json(nprof__jw *j, const nprof__np *np)
{
    nprof__np *m = (nprof__np *)np;
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "sql", np->text, np->text_len);
    nprof__jw_key(j, "fingerprint");
    nprof__jw_hex(j, np->fingerprint);
    nprof__jw_ku64(j, "repeats", atomic_load_explicit(&m->repeats, memory_order_relaxed));
    nprof__jw_ku64(j, "requests", atomic_load_explicit(&m->requests, memory_order_relaxed));
    nprof__jw_ku64(j, "max_in_request",
                   atomic_load_explicit(&m->max_in_request, memory_order_relaxed));
    nprof__jw_key(j, "callsite");
    if (np->callsite_len)
        nprof__jw_str(j, nprof__np_callsite(np), np->callsite_len);
    else
        nprof__jw_null(j);
    nprof__jw_key(j, "routes");
    nprof__jw_arr(j);
    for (int i = 0; i < NPROF__NP_ROUTES; i++) {
        nprof__route *r = atomic_load_explicit(&m->routes[i], memory_order_acquire);
        if (!r)
            break;
        char key[NPROF__METHOD_MAX + 1 + NPROF__ROUTE_MAX];
        memcpy(key, r->text, r->method_len);
        key[r->method_len] = ' ';
        memcpy(key + r->method_len + 1, r->text + r->method_len, r->route_len);
        nprof__jw_str(j, key, r->method_len + 1 + r->route_len);
    }
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
}

/* The members that name a stored request in the page's lists of requests. */
static void request_members(nprof__jw *j, const nprof_profile_info *in)
{
    nprof__jw_kstr(j, "request_id", in->request_id, in->request_id_len);
    nprof__jw_kstr(j, "method", in->method, in->method_len);
    nprof__jw_kstr(j, "path", in->path, in->path_len);
    nprof__jw_kstr(j, "route", in->route, in->route_len);
    nprof__jw_ku64(j, "status", in->status > 0 ? (uint64_t)in->status : 0);
    nprof__jw_kms(j, "total_ms", in->total_ns);
}

static void slowest_json(nprof__jw *j, nprof_store *store, size_t max)
{
    nprof_snapshot *snap = NULL;
    if (nprof_store_snapshot_slowest(store, max, &snap) != NPROF_OK)
        return;
    for (size_t i = 0; i < nprof_snapshot_count(snap); i++) {
        nprof_profile_info in;
        if (nprof_profile_get_info(nprof_snapshot_get(snap, i), &in))
            continue;
        nprof__jw_obj(j);
        request_members(j, &in);
        nprof__jw_kms(j, "middleware_ms", in.middleware_ns);
        nprof__jw_kms(j, "routing_ms", in.routing_ns);
        nprof__jw_kms(j, "handler_ms", in.handler_ns);
        nprof__jw_kms(j, "sql_ms", in.sql_total_ns);
        nprof__jw_ku64(j, "sql_count", in.sql_count);
        nprof__jw_ku64(j, "n_plus_one", in.n_plus_one_count);
        nprof__jw_obj_end(j);
    }
    nprof_snapshot_release(snap);
}

static void ctl_json(nprof__jw *j, nprof_runtime *rt, const char *key, const char *name)
{
    nprof_ctl_value v;
    if (nprof_ctl_get(rt, name, &v) != NPROF_OK)
        return;
    nprof__jw_key(j, key);
    if (v.type == NPROF_CTL_UINT)
        nprof__jw_u64(j, v.u);
    else if (v.type == NPROF_CTL_STRING)
        nprof__jw_str(j, v.s, strlen(v.s));
    else
        nprof__jw_double(j, v.d, 3);
}

/* The cluster view: the slow-query log's top fingerprints over every process writing into
 * its table, or null without a log.  One round trip to the database (off the request path:
 * this is a dashboard request); a failure shows as {"error": ...} instead of failing the page. */
static void cluster_json(nprof__jw *j, nprof_mw *mw)
{
    if (!mw->slowlog) {
        nprof__jw_null(j);
        return;
    }
    nprof__jw_obj(j);
    nprof__jw_ku64(j, "since_s", mw->cluster_since_s);
    nprof_slowlog_stats ls;
    if (nprof_slowlog_get_stats(mw->slowlog, &ls) == NPROF_OK) {
        nprof__jw_ku64(j, "enqueued", ls.enqueued);
        nprof__jw_ku64(j, "written", ls.written);
        nprof__jw_ku64(j, "dropped", ls.dropped);
        nprof__jw_ku64(j, "connected", ls.connected != 0);
    }
    nprof_buf rows = NPROF_BUF_INIT;
    int rc = nprof_slowlog_read_by_fingerprint(mw->slowlog, wide_list_rows(mw), mw->cluster_since_s,
                                               &rows);
    nprof__jw_key(j, "by_fingerprint");
    if (rc == NPROF_OK) {
        nprof__jw_raw(j, rows.data, rows.len);
    } else {
        nprof__jw_arr(j);
        nprof__jw_arr_end(j);
        const char *why = nprof_last_error_detail();
        if (!why[0])
            why = nprof_strerror(rc);
        nprof__jw_kstr(j, "error", why, strlen(why));
    }
    nprof_buf_free(&rows);
    nprof__jw_obj_end(j);
}

/* What the JSON document is made from, gathered before any of it is written. */
typedef struct json_view {
    nprof_mw *mw;
    nprof__ctl_snapshot totals; /* "stats.mw.*" of this middleware (aggregate.c) */
    rows rs;                    /* by count, most first */
    np_list nl;                 /* most recent first */
    nprof_snapshot *snap;       /* the store now */
} json_view;

static void json_view_free(json_view *v)
{
    nprof_snapshot_release(v->snap);
    rows_free(&v->rs);
    free(v->nl.items);
}

static int json_view_gather(nprof_mw *mw, json_view *v)
{
    memset(v, 0, sizeof *v);
    v->mw = mw;
    nprof__ctl_snapshot_take(mw->rt, NPROF__MW_CTL_PREFIX, mw, &v->totals);
    int rc = rows_collect(mw, &v->rs);
    if (rc)
        return rc;
    if (v->rs.count > 1)
        qsort(v->rs.items, v->rs.count, sizeof *v->rs.items, by_count_desc);
    rc = nprof__mw_np_foreach(mw, collect_np, &v->nl);
    if (rc == NPROF_OK && v->nl.count > 1)
        qsort(v->nl.items, v->nl.count, sizeof *v->nl.items, np_recent_first);
    if (rc == NPROF_OK)
        rc = nprof_store_snapshot(nprof_runtime_store(mw->rt), &v->snap);
    if (rc)
        json_view_free(v);
    return rc;
}

static uint64_t total(const json_view *v, const char *name)
{
    return nprof__ctl_snapshot_u64(&v->totals, name);
}

/* A mean of `part` per `whole` with two decimals, as the reference document writes it. */
static void mean_json(nprof__jw *j, uint64_t part, uint64_t whole)
{
    nprof__jw_fixed(j, whole ? (part * 100 + whole / 2) / whole : 0, 2);
}

/* The reference document's keys, first and in its order. */
static void reference_json(nprof__jw *j, const json_view *v)
{
    uint64_t requests = total(v, "stats.mw.requests"), queries = total(v, "stats.mw.queries");
    nprof__jw_ku64(j, "total_requests", requests);
    nprof__jw_ku64(j, "total_queries", queries);
    nprof__jw_key(j, "avg_queries_per_request");
    mean_json(j, queries, requests);
    nprof__jw_ku64(j, "slow_query_count", total(v, "stats.mw.slow_queries"));
    nprof__jw_ku64(j, "n_plus_one_count", total(v, "stats.mw.n_plus_one_patterns"));
    nprof__jw_key(j, "recent_slow_queries");
    nprof__jw_arr(j);
    recent_slow_json(j, v->snap, v->mw->dashboard_items);
    nprof__jw_arr_end(j);
    nprof__jw_key(j, "recent_n_plus_one");
    nprof__jw_arr(j);
    for (size_t i = 0; i < v->nl.count && i < v->mw->dashboard_items; i++)
        nprof__jw_str(j, v->nl.items[i]->text, v->nl.items[i]->text_len);
    nprof__jw_arr_end(j);
}

static void np_patterns_json(nprof__jw *j, const json_view *v)
{
    nprof__jw_key(j, "n_plus_one_patterns");
    nprof__jw_arr(j);
    for (size_t i = 0; i < v->nl.count && i < v->mw->dashboard_items; i++)
        np_json(j, v->nl.items[i]);
    nprof__jw_arr_end(j);
}

/* "totals": the middleware's introspection names, under their own names (sql_ns as ms). */
static void totals_json(nprof__jw *j, const json_view *v)
{
    static const char *const keys[][2] = {
        {"requests", "stats.mw.requests"},
        {"queries", "stats.mw.queries"},
        {"sql_ms", "stats.mw.sql_ns"},
        {"slow_queries", "stats.mw.slow_queries"},
        {"n_plus_one_patterns", "stats.mw.n_plus_one_patterns"},
        {"n_plus_one_requests", "stats.mw.n_plus_one_requests"},
        {"over_budget", "stats.mw.over_budget"},
        {"errors", "stats.mw.errors"},
        {"kept", "stats.mw.kept"},
        {"routes", "stats.mw.routes"},
    };
    nprof__jw_key(j, "totals");
    nprof__jw_obj(j);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!strcmp(keys[i][1], "stats.mw.sql_ns"))
            nprof__jw_kms(j, keys[i][0], total(v, keys[i][1]));
        else
            nprof__jw_ku64(j, keys[i][0], total(v, keys[i][1]));
    }
    nprof__jw_obj_end(j);
}

static void routes_json(nprof__jw *j, const json_view *v)
{
    nprof__jw_key(j, "routes");
    nprof__jw_arr(j);
    for (size_t i = 0; i < v->rs.count; i++)
        route_json(j, &v->rs, &v->rs.items[i]);
    nprof__jw_arr_end(j);
    /* The lower bounds of the coarse buckets the routes' "histogram"s count (the last one is
     * open-ended). */
    nprof__jw_key(j, "latency_buckets_ns");
    nprof__jw_arr(j);
    for (unsigned b = 0; b < NPROF__HIST_COARSE; b++)
        nprof__jw_u64(j, nprof__hist_coarse_low(b));
    nprof__jw_arr_end(j);
}

/* "timeline": requests, 5xx, mean and p95 per second over the last two minutes, oldest
 * first, every second of the window listed (zeros when idle), "t_s" seconds from now (0:
 * the second under way, which has run `elapsed_ms` so far). */
static void timeline_json(nprof__jw *j, const json_view *v)
{
    uint64_t now = nprof_now_ns();
    uint64_t last = now / NPROF__TL_INTERVAL_NS;
    nprof__tl_point pts[NPROF__TL_SLOTS];
    nprof__mw_timeline(v->mw, last, pts, NPROF__TL_SLOTS);
    nprof__jw_key(j, "timeline");
    nprof__jw_obj(j);
    nprof__jw_kms(j, "interval_ms", NPROF__TL_INTERVAL_NS);
    nprof__jw_kms(j, "elapsed_ms", now % NPROF__TL_INTERVAL_NS);
    nprof__jw_key(j, "points");
    nprof__jw_arr(j);
    for (size_t k = 0; k < NPROF__TL_SLOTS; k++) {
        const nprof__tl_point *p = &pts[k];
        nprof__jw_obj(j);
        nprof__jw_key(j, "t_s");
        nprof__jw_i64(j, -(int64_t)(NPROF__TL_SLOTS - 1 - k));
        nprof__jw_ku64(j, "requests", p->count);
        nprof__jw_ku64(j, "errors", p->errors);
        nprof__jw_kms(j, "mean_ms", p->count ? p->total_ns / p->count : 0);
        nprof__jw_kms(j, "p95_ms", p->p95_ns);
        nprof__jw_obj_end(j);
    }
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
}

static void slowest_section_json(nprof__jw *j, const json_view *v)
{
    nprof__jw_key(j, "slowest_requests");
    nprof__jw_arr(j);
    slowest_json(j, nprof_runtime_store(v->mw->rt), wide_list_rows(v->mw));
    nprof__jw_arr_end(j);
}

/* The stored requests whose call stacks were sampled, newest first: the page links each to
 * its flame graph (/requests/<request_id>/flame.svg) and its route's. */
static void sampled_section_json(nprof__jw *j, const json_view *v)
{
    nprof__jw_key(j, "sampled_requests");
    nprof__jw_arr(j);
    size_t n = 0, max = wide_list_rows(v->mw);
    for (size_t i = nprof_snapshot_count(v->snap); i-- > 0 && n < max;) {
        const nprof_profile *p = nprof_snapshot_get(v->snap, i);
        nprof_profile_info in;
        nprof_samples_info si;
        if (nprof_profile_get_info(p, &in) || nprof_profile_get_samples_info(p, &si) ||
            !si.samples)
            continue;
        nprof__jw_obj(j);
        request_members(j, &in);
        nprof__jw_ku64(j, "samples", si.samples);
        nprof__jw_kms(j, "sampled_ms", si.sampled_ns);
        nprof__jw_obj_end(j);
        n++;
    }
    nprof__jw_arr_end(j);
}

static void store_json(nprof__jw *j, const json_view *v)
{
    nprof__jw_key(j, "store");
    nprof__jw_obj(j);
    nprof__jw_ku64(j, "capacity", nprof_store_capacity(nprof_runtime_store(v->mw->rt)));
    nprof__jw_ku64(j, "size", nprof_snapshot_count(v->snap));
    nprof__jw_ku64(j, "sample_every", v->mw->sample_every);
    nprof__jw_ku64(j, "stack_sample_every", v->mw->stack_sample_every);
    nprof__jw_obj_end(j);
}

/* "memory" and "clock": introspection values under keys of their own. */
static void runtime_json(nprof__jw *j, nprof_runtime *rt)
{
    static const char *const ctl_keys[][2] = {
        {"memory", NULL},
        {"bytes", "stats.memory.bytes"},
        {"peak_bytes", "stats.memory.peak_bytes"},
        {"blocks", "stats.memory.blocks"},
        {"allocator", "stats.memory.allocator"},
        {"clock", NULL},
        {"source", "clock.source"},
        {"frequency_hz", "clock.frequency_hz"},
        {"error_ppm", "clock.error_ppm"},
        {"read_cost_ns", "clock.read_cost_ns"},
        {"resolution_ns", "clock.resolution_ns"},
    };
    for (size_t i = 0; i < sizeof ctl_keys / sizeof ctl_keys[0]; i++) {
        if (ctl_keys[i][1]) {
            ctl_json(j, rt, ctl_keys[i][0], ctl_keys[i][1]);
            continue;
        }
        if (i)
            nprof__jw_obj_end(j);
        nprof__jw_key(j, ctl_keys[i][0]);
        nprof__jw_obj(j);
    }
    nprof__jw_obj_end(j);
}

static void config_json(nprof__jw *j, const nprof_mw *mw)
{
    const nprof_config *cfg = nprof_runtime_config(mw->rt);
    nprof__jw_key(j, "config");
    nprof__jw_obj(j);
    nprof__jw_key(j, "slow_query_threshold_ms");
    nprof__jw_double(j, cfg->slow_query_threshold_ms, 3);
    nprof__jw_ku64(j, "n_plus_one_threshold", cfg->n_plus_one_threshold);
    nprof__jw_ku64(j, "max_history", cfg->max_history);
    nprof__jw_ku64(j, "production", cfg->production != 0);
    nprof__jw_ku64(j, "refresh_seconds", mw->refresh_seconds);
    nprof__jw_obj_end(j);
}

/* The document's own: version, when it was made, how long the middleware has run. */
static void meta_json(nprof__jw *j, const nprof_mw *mw)
{
    nprof__jw_kstr(j, "version", NPROF_VERSION_STRING, strlen(NPROF_VERSION_STRING));
    uint64_t now = nprof_now_ns();
    nprof__jw_ku64(j, "generated_at_ns", now);
    nprof__jw_ku64(j, "uptime_ns", now > mw->created_ns ? now - mw->created_ns : 0);
}

int nprof_mw_render_json(nprof_mw *mw, nprof_buf *out)
{
    if (!mw || !out)
        return NPROF_EINVAL;
    json_view v;
    int rc = json_view_gather(mw, &v);
    if (rc)
        return rc;
    nprof__jw jw, *j = &jw;
    nprof__jw_init(j, out);
    nprof__jw_obj(j);
    reference_json(j, &v);
    /* ---- beyond the reference document ---- */
    np_patterns_json(j, &v);
    totals_json(j, &v);
    routes_json(j, &v);
    timeline_json(j, &v);
    slowest_section_json(j, &v);
    sampled_section_json(j, &v);
    store_json(j, &v);
    runtime_json(j, mw->rt);
    config_json(j, mw);
    nprof__jw_key(j, "cluster");
    cluster_json(j, mw);
    meta_json(j, mw);
    nprof__jw_obj_end(j);
    json_view_free(&v);
    return nprof__jw_finish(j);
}

/* ---- Prometheus text exposition (format 0.0.4) ------------------------------------------ */

/* A label value: '\\', '"' and line feeds escaped as the format wants; other control bytes
 * become '?' (invalid UTF-8 becomes U+FFFD in the runtime's escaping), so the exposition stays
 * valid UTF-8. */
#define Q(c) [c] = {"?", 1}
static const nprof__escapes label_escapes = {
    .widest = 3,
    .ascii = {
        Q(0x00), Q(0x01), Q(0x02), Q(0x03), Q(0x04), Q(0x05), Q(0x06), Q(0x07), Q(0x08),
        Q(0x09), ['\n'] = {"\\n", 2}, Q(0x0b), Q(0x0c), Q(0x0d), Q(0x0e), Q(0x0f), Q(0x10),
        Q(0x11), Q(0x12), Q(0x13), Q(0x14), Q(0x15), Q(0x16), Q(0x17), Q(0x18), Q(0x19),
        Q(0x1a), Q(0x1b), Q(0x1c), Q(0x1d), Q(0x1e), Q(0x1f), Q(0x7f),
        ['"'] = {"\\\"", 2}, ['\\'] = {"\\\\", 2},
    },
};
#undef Q

static void pr_label(nprof__tw *p, const char *s, size_t len)
{
    nprof__tw_escaped(p, s, len, &label_escapes, '"');
}

static void pr_family(nprof__tw *p, const char *name, const char *type, const char *help)
{
    nprof__tw_cstr(p, "# HELP ");
    nprof__tw_cstr(p, name);
    nprof__tw_cstr(p, " ");
    nprof__tw_cstr(p, help);
    nprof__tw_cstr(p, "\n# TYPE ");
    nprof__tw_cstr(p, name);
    nprof__tw_cstr(p, " ");
    nprof__tw_cstr(p, type);
    nprof__tw_cstr(p, "\n");
}

/* One sample: `name`; with a route `s`, its method and route labels and `label`="`value`"
 * when `label` is not NULL (ours: written as is); then `v`, as seconds (exactly: nine
 * decimals of `v` nanoseconds) when `seconds`, else as a count. */
static void pr_sample(nprof__tw *p, const char *name, const nprof_mw_route_stats *s,
                      const char *label, const char *value, uint64_t v, int seconds)
{
    nprof__tw_cstr(p, name);
    if (s) {
        nprof__tw_cstr(p, "{method=");
        pr_label(p, s->method, s->method_len);
        nprof__tw_cstr(p, ",route=");
        pr_label(p, s->route, s->route_len);
        if (label) {
            nprof__tw_cstr(p, ",");
            nprof__tw_cstr(p, label);
            nprof__tw_cstr(p, "=\"");
            nprof__tw_cstr(p, value);
            nprof__tw_cstr(p, "\"");
        }
        nprof__tw_cstr(p, "}");
    }
    nprof__tw_cstr(p, " ");
    if (seconds)
        nprof__tw_fixed(p, v, 9);
    else
        nprof__tw_u64(p, v);
    nprof__tw_cstr(p, "\n");
}

/* Bucket bounds of the latency histogram, in ns, and as the `le` label writes them. */
static const uint64_t LE_NS[] = {100000,    250000,    500000,     1000000,    2500000,
                                 5000000,   10000000,  25000000,   50000000,   100000000,
                                 250000000, 500000000, 1000000000, 2500000000, 5000000000,
                                 10000000000u};
static const char *const LE_TEXT[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                      "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                      "1",      "2.5",     "5",      "10"};
#define LE_COUNT (sizeof LE_NS / sizeof LE_NS[0])

/* Per row, while its merged histogram is at hand: the cumulative bucket counts. */
typedef struct prom_rows {
    uint64_t (*le)[LE_COUNT];
    size_t cap;
} prom_rows;

static int keep_buckets(void *user, size_t index, const row *rw, const nprof__hist_flat *h)
{
    prom_rows *pr = user;
    if (index >= pr->cap) {
        size_t cap = pr->cap ? pr->cap * 2 : 64;
        uint64_t(*le)[LE_COUNT] = realloc(pr->le, cap * sizeof *le);
        if (!le)
            return NPROF_ENOMEM;
        pr->le = le;
        pr->cap = cap;
    }
    uint64_t total = 0;
    for (size_t b = 0; b < LE_COUNT; b++) {
        uint64_t c = nprof__hist_flat_count_le(h, LE_NS[b]);
        total = c > total ? c : total; /* cumulative: never decreasing */
        pr->le[index][b] = total > rw->s.count ? rw->s.count : total;
    }
    return NPROF_OK;
}

/* The middleware's totals: one family each, read through its introspection names. */
static void prom_totals(nprof__tw *p, const nprof__ctl_snapshot *totals)
{
    static const struct {
        const char *name, *type, *help, *ctl;
        int seconds; /* the value is ns, written as seconds */
    } families[] = {
        {"nanoprof_requests_total", "counter", "Requests measured by the middleware.",
         "stats.mw.requests", 0},
        {"nanoprof_queries_total", "counter", "SQL queries recorded.", "stats.mw.queries", 0},
        {"nanoprof_slow_queries_total", "counter",
         "SQL queries slower than slow_query_threshold_ms.", "stats.mw.slow_queries", 0},
        {"nanoprof_n_plus_one_requests_total", "counter",
         "Requests with at least one N+1 query pattern.", "stats.mw.n_plus_one_requests", 0},
        {"nanoprof_n_plus_one_patterns", "gauge", "Distinct N+1 query patterns seen.",
         "stats.mw.n_plus_one_patterns", 0},
        {"nanoprof_over_budget_requests_total", "counter",
         "Requests over their route's query budget.", "stats.mw.over_budget", 0},
        {"nanoprof_errors_total", "counter", "Requests answered with a 5xx status.",
         "stats.mw.errors", 0},
        {"nanoprof_kept_requests_total", "counter",
         "Requests kept in full in the store (sampling).", "stats.mw.kept", 0},
        {"nanoprof_sql_seconds_total", "counter", "Time spent in SQL queries.",
         "stats.mw.sql_ns", 1},
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        pr_family(p, families[i].name, families[i].type, families[i].help);
        pr_sample(p, families[i].name, NULL, NULL, NULL,
                  nprof__ctl_snapshot_u64(totals, families[i].ctl), families[i].seconds);
    }
}

static void prom_route_requests(nprof__tw *p, const rows *rs)
{
    pr_family(p, "nanoprof_route_requests_total", "counter",
              "Requests per route and status class.");
    for (size_t i = 0; i < rs->count; i++)
        for (int c = 0; c < STATUS_CLASSES; c++)
            if (rs->items[i].s.status[c])
                pr_sample(p, "nanoprof_route_requests_total", &rs->items[i].s, "code",
                          status_class_names[c], rs->items[i].s.status[c], 0);
}

static void prom_latency(nprof__tw *p, const rows *rs, const prom_rows *pr)
{
    pr_family(p, "nanoprof_request_duration_seconds", "histogram",
              "Request latency per route (from a log-linear histogram, " NPROF__HIST_ERROR_TEXT ").");
    for (size_t i = 0; i < rs->count; i++) {
        const nprof_mw_route_stats *s = &rs->items[i].s;
        for (size_t b = 0; b < LE_COUNT; b++)
            pr_sample(p, "nanoprof_request_duration_seconds_bucket", s, "le", LE_TEXT[b],
                      pr->le[i][b], 0);
        pr_sample(p, "nanoprof_request_duration_seconds_bucket", s, "le", "+Inf", s->count, 0);
        pr_sample(p, "nanoprof_request_duration_seconds_sum", s, NULL, NULL, s->total_ns, 1);
        pr_sample(p, "nanoprof_request_duration_seconds_count", s, NULL, NULL, s->count, 0);
    }
}

static void prom_route_sql(nprof__tw *p, const rows *rs)
{
    pr_family(p, "nanoprof_route_queries_total", "counter", "SQL queries per route.");
    for (size_t i = 0; i < rs->count; i++)
        pr_sample(p, "nanoprof_route_queries_total", &rs->items[i].s, NULL, NULL,
                  rs->items[i].s.queries, 0);
    pr_family(p, "nanoprof_route_sql_seconds_total", "counter", "SQL time per route.");
    for (size_t i = 0; i < rs->count; i++)
        pr_sample(p, "nanoprof_route_sql_seconds_total", &rs->items[i].s, NULL, NULL,
                  rs->items[i].s.sql_ns, 1);
}

/* The runtime's own figures: memory, the store, the build. */
static void prom_runtime(nprof__tw *p, nprof_runtime *rt)
{
    nprof_ctl_value v;
    if (nprof_ctl_get(rt, "stats.memory.bytes", &v) == NPROF_OK) {
        pr_family(p, "nanoprof_memory_bytes", "gauge", "Bytes the profiler's runtime holds.");
        pr_sample(p, "nanoprof_memory_bytes", NULL, NULL, NULL, v.u, 0);
    }
    pr_family(p, "nanoprof_store_profiles", "gauge", "Profiles held in the store.");
    pr_sample(p, "nanoprof_store_profiles", NULL, NULL, NULL,
              nprof_store_size(nprof_runtime_store(rt)), 0);
    pr_family(p, "nanoprof_build_info", "gauge", "Version and clock source of nanoprof.");
    nprof__tw_cstr(p, "nanoprof_build_info{version=\"" NPROF_VERSION_STRING "\",clock=");
    const char *src = nprof_ctl_get(rt, "clock.source", &v) == NPROF_OK ? v.s : "unknown";
    pr_label(p, src, strlen(src));
    nprof__tw_cstr(p, "} 1\n");
}

int nprof_mw_render_prometheus(nprof_mw *mw, nprof_buf *out)
{
    if (!mw || !out)
        return NPROF_EINVAL;
    nprof__ctl_snapshot totals;
    nprof__ctl_snapshot_take(mw->rt, NPROF__MW_CTL_PREFIX, mw, &totals);
    prom_rows pr = {.le = NULL, .cap = 0};
    rows rs = {.each = keep_buckets, .user = &pr};
    int rc = rows_collect(mw, &rs);
    if (rc) {
        free(pr.le);
        return rc;
    }
    nprof__tw tw, *p = &tw;
    nprof__tw_init(p, out);
    prom_totals(p, &totals);
    prom_route_requests(p, &rs);
    prom_latency(p, &rs, &pr);
    prom_route_sql(p, &rs);
    prom_runtime(p, mw->rt);
    free(pr.le);
    rows_free(&rs);
    return nprof__tw_finish(p);
}

/* ---- HTML ------------------------------------------------------------------------------- */

/* A nonce: 128 random bits as 32 hex digits (from getrandom; if the kernel has no entropy
 * to give without blocking, from the clock and a counter through XXH3, which is unique if
 * not secret, and a nonce only needs to be unguessable by a page that cannot read ours). */
static void make_nonce(char out[33])
{
    uint64_t r[2];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        static _Atomic uint64_t counter;
        uint64_t seed[2] = {nprof_now_ns(), atomic_fetch_add(&counter, 1)};
        r[0] = XXH3_64bits(seed, sizeof seed);
        r[1] = XXH3_64bits_withSeed(seed, sizeof seed, r[0]);
    }
    nprof__format_hex64(r[0], out);
    nprof__format_hex64(r[1], out + 16);
    out[32] = '\0';
}

/*
 * The page: the HTML template with {{NONCE}}, {{CSS}}, {{JS}}, {{DATA}} and {{REFRESH}}
 * filled in.  {{DATA}} is the JSON document, which escapes '<', '>' and '&' inside strings,
 * so it cannot close the <script type="application/json"> element that holds it; the script
 * puts every string into the page with textContent, never as markup.
 */
int nprof_mw_render_html(nprof_mw *mw, const char *nonce, nprof_buf *out)
{
    if (!mw || !nonce || !out)
        return NPROF_EINVAL;
    for (const char *c = nonce; *c; c++) /* the nonce is written into attributes as is */
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
            return NPROF_EINVAL;
    nprof__asset html = nprof__asset_html(), css = nprof__asset_css(), js = nprof__asset_js();
    int rc = NPROF_OK;
    const char *s = html.data, *end = html.data + html.len;
    while (!rc && s < end) {
        const char *open = strstr(s, "{{");
        if (!open || open >= end) {
            rc = nprof__buf_append(out, s, (size_t)(end - s));
            break;
        }
        rc = nprof__buf_append(out, s, (size_t)(open - s));
        const char *close = strstr(open, "}}");
        if (rc || !close)
            break;
        size_t nlen = (size_t)(close - open - 2);
        const char *name = open + 2;
#define IS(lit) (nlen == sizeof lit - 1 && !memcmp(name, lit, nlen))
        if (IS("NONCE"))
            rc = nprof__buf_append_cstr(out, nonce);
        else if (IS("CSS"))
            rc = nprof__buf_append(out, css.data, css.len);
        else if (IS("JS"))
            rc = nprof__buf_append(out, js.data, js.len);
        else if (IS("DATA"))
            rc = nprof_mw_render_json(mw, out);
        else if (IS("REFRESH"))
            rc = nprof__buf_append_u64(out, mw->refresh_seconds);
        else /* not ours: leave it as it was */
            rc = nprof__buf_append(out, open, nlen + 4);
#undef IS
        s = close + 2;
    }
    return rc;
}

/* ---- nprof_mw_handle -------------------------------------------------------------------- */

static void response_header(nprof_mw_response *r, const char *name, const char *value)
{
    nprof_mw_headers *h = &r->headers;
    size_t len = strlen(value);
    if (h->count >= NPROF_MW_MAX_HEADERS || h->used_ + len + 1 > NPROF_MW_HEADER_BYTES)
        return;
    char *dst = h->bytes_ + h->used_;
    memcpy(dst, value, len + 1);
    h->items[h->count++] = (nprof_mw_header){.name = name, .name_len = strlen(name),
                                             .value = dst, .value_len = len};
    h->used_ += len + 1;
}

void nprof_mw_response_free(nprof_mw_response *resp)
{
    if (resp)
        nprof_buf_free(&resp->body);
}

static int equals(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && !memcmp(s, lit, len);
}

/* ---- the pages: one renderer each ---- */

static int serve_html(nprof_mw *mw, nprof_mw_response *out)
{
    char nonce[33], csp[256];
    make_nonce(nonce);
    snprintf(csp, sizeof csp, CSP_PAGE_FORMAT, nonce, nonce);
    response_header(out, "Content-Security-Policy", csp);
    out->content_type = "text/html; charset=utf-8";
    return nprof_mw_render_html(mw, nonce, &out->body);
}

static int serve_flame_txt(nprof_mw *mw, nprof_buf *out)
{
    return nprof_store_render_collapsed(nprof_runtime_store(mw->rt), out);
}

/* An SVG's headers: its policy lets the zoom script carrying `nonce` run. */
static void svg_headers(nprof_mw_response *out, const char *nonce)
{
    char csp[256];
    snprintf(csp, sizeof csp, CSP_SVG_FORMAT, nonce);
    response_header(out, "Content-Security-Policy", csp);
    out->content_type = "image/svg+xml";
}

static int serve_flame_svg(nprof_mw *mw, nprof_mw_response *out)
{
    char nonce[33];
    make_nonce(nonce);
    svg_headers(out, nonce);
    return nprof__mw_render_flamegraph_svg(nprof_runtime_store(mw->rt), nonce, &out->body);
}

/* The route table: a path below dashboard_path ("" is dashboard_path itself), its
 * Content-Security-Policy and content type, and its renderer; or, for the page, a server
 * that sets all three itself (its policy carries a fresh nonce). */
typedef struct page {
    const char *sub;
    const char *csp;
    const char *content_type;
    int (*render)(nprof_mw *mw, nprof_buf *out);
    int (*serve)(nprof_mw *mw, nprof_mw_response *out);
} page;

static const page pages[] = {
    {"", NULL, NULL, NULL, serve_html},
    {"/json", CSP_NONE, "application/json", nprof_mw_render_json, NULL},
    {"/metrics", CSP_NONE, "text/plain; version=0.0.4; charset=utf-8", nprof_mw_render_prometheus,
     NULL},
    {"/flamegraph.txt", CSP_NONE, "text/plain; charset=utf-8", serve_flame_txt, NULL},
    {"/flamegraph.svg", NULL, NULL, NULL, serve_flame_svg},
    {"/trace.json", CSP_NONE, "application/json", nprof_mw_render_trace, NULL},
};

static const page *find_page(const char *sub, size_t sub_len)
{
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (equals(sub, sub_len, pages[i].sub))
            return &pages[i];
    return NULL;
}

/* Whether `req` is for dashboard_path itself (with or without a trailing '/') or a page below
 * it; then *sub is the part below ("" for the page itself). */
static int dashboard_sub(const nprof_mw *mw, const nprof_mw_request *req,
                         const char **sub, size_t *sub_len)
{
    size_t dl = mw->dashboard_path_len;
    const char *path = req->path;
    size_t len = req->path_len;
    if (len < dl || memcmp(path, mw->dashboard_path, dl) != 0 ||
        (len > dl && path[dl] != '/' && dl > 1))
        return 0;
    *sub = path + dl;
    *sub_len = len - dl;
    if (dl == 1) { /* dashboard_path "/": everything is below it; keep the leading '/' */
        *sub = path;
        *sub_len = len == 1 ? 0 : len;
    }
    if (*sub_len == 1 && (*sub)[0] == '/')
        *sub_len = 0;
    return 1;
}

/* A refusal in plain text with the strictest policy; 1 (answered), or NPROF_ENOMEM. */
static int refuse(nprof_mw_response *out, int status, const char *body)
{
    out->status = status;
    response_header(out, "Content-Security-Policy", CSP_NONE);
    return nprof__buf_append_cstr(&out->body, body) ? NPROF_ENOMEM : 1;
}

/* The headers every answer below dashboard_path carries. */
static void security_headers(nprof_mw_response *out)
{
    response_header(out, "X-Content-Type-Options", "nosniff");
    response_header(out, "Cache-Control", "no-store");
    response_header(out, "Referrer-Policy", "no-referrer");
    response_header(out, "X-Frame-Options", "DENY");
}

static int serve_page(nprof_mw *mw, const page *pg, nprof_mw_response *out)
{
    out->status = 200;
    if (pg->serve)
        return pg->serve(mw, out);
    response_header(out, "Content-Security-Policy", pg->csp);
    out->content_type = pg->content_type;
    return pg->render(mw, &out->body);
}

/* A sampled-stack export (export.c) in `format`, with the policy and type of its format:
 * 0 served, 1 refused (404: no such request, or one without samples), or a negative code. */
static int serve_samples(nprof_mw *mw, const nprof_mw_request *req, const char *sub,
                         size_t sub_len, int format, nprof_mw_response *out)
{
    char nonce[33];
    int svg = format == NPROF_SAMPLES_SVG;
    if (svg)
        make_nonce(nonce);
    int rc = nprof__mw_render_samples(mw, req, sub, sub_len, svg ? nonce : NULL, &out->body);
    if (rc == NPROF_ENOENT)
        return refuse(out, 404, "not found\n");
    if (rc)
        return rc;
    out->status = 200;
    if (svg) {
        svg_headers(out, nonce);
        return NPROF_OK;
    }
    response_header(out, "Content-Security-Policy", CSP_NONE);
    out->content_type = format == NPROF_SAMPLES_COLLAPSED ? "text/plain; charset=utf-8"
                                                          : "application/json";
    return NPROF_OK;
}

int nprof_mw_handle(nprof_mw *mw, const nprof_mw_request *req, nprof_mw_response *out)
{
    if (!out)
        return NPROF_EINVAL;
    memset(out, 0, sizeof *out);
    if (!mw || !req || (!req->path && req->path_len) || (!req->method && req->method_len))
        return NPROF_EINVAL;
    const char *sub;
    size_t sub_len;
    if (!mw->dashboard_path_len || (mw->production && !mw->token_len) ||
        !dashboard_sub(mw, req, &sub, &sub_len))
        return 0;
    const page *pg = find_page(sub, sub_len);
    int samples = pg ? -1 : nprof__mw_samples_format(sub, sub_len); /* export.c */
    if (!pg && samples < 0 && mw->dashboard_path_len == 1)
        return 0; /* under "/", an unknown path is the application's */
    security_headers(out);
    out->content_type = "text/plain; charset=utf-8";
    int head = equals(req->method, req->method_len, "HEAD");
    if (!head && !equals(req->method, req->method_len, "GET")) {
        response_header(out, "Allow", "GET, HEAD");
        return refuse(out, 405, "method not allowed\n");
    }
    if (mw->production && !nprof__mw_has_token(mw, req))
        return refuse(out, 403, "forbidden\n");
    if (!pg && samples < 0)
        return refuse(out, 404, "not found\n");
    int rc = pg ? serve_page(mw, pg, out) : serve_samples(mw, req, sub, sub_len, samples, out);
    if (rc == 1)
        return 1; /* refused */
    if (rc) {
        nprof_mw_response_free(out);
        return rc;
    }
    if (head) { /* the headers of GET, no body */
        out->body.len = 0;
        if (out->body.data)
            out->body.data[0] = '\0';
    }
    return 1;
}
