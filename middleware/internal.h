/*
 * middleware/internal.h: the layout of a middleware object, shared by the files of
 * middleware/ (lifecycle, aggregation, dashboards, exports).  Nothing outside middleware/
 * sees it.
 */
#ifndef NPROF_MIDDLEWARE_INTERNAL_H
#define NPROF_MIDDLEWARE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "histogram.h"
#include "nanoprof/middleware.h"
#include "runtime/counter.h"
#include "runtime/profile.h"
#include "runtime/rules.h"

#define NPROF__MW_PATH_MAX 200      /* bytes of dashboard_path */
#define NPROF__MW_TOKEN_MAX 256     /* bytes of the token */
#define NPROF__ROUTE_MAX 512        /* bytes of a route template kept and hashed */
#define NPROF__NP_TEXT_MAX 1024     /* bytes of an N+1 pattern's normalized text kept */
#define NPROF__NP_ROUTES 4          /* routes listed per N+1 pattern */
#define NPROF__MW_CTL_PREFIX "stats.mw" /* where the totals are in the introspection names */

/* One thread shard's counts for one route.  Written with relaxed atomic adds by the threads
 * of that shard (usually one), read by dashboards at any time. */
typedef struct nprof__route_shard {
    _Atomic uint64_t status[6]; /* requests by class: [0] other, [1] 1xx ... [5] 5xx */
    _Atomic uint64_t total_ns, max_ns, queries, sql_ns, slow_queries, n_plus_one, over_budget;
    nprof__hist hist;           /* total_ns of each request */
} nprof__route_shard;

/* One row: METHOD + route template.  Immutable once published in the table, except for the
 * shard pointers (set once each, by compare-and-swap). */
typedef struct nprof__route {
    uint64_t hash;
    uint32_t method_len, route_len;
    uint32_t budget_queries;      /* 0: none */
    uint64_t budget_sql_ns;       /* 0: none */
    size_t bytes;                 /* allocation size */
    _Atomic(nprof__route_shard *) shard[NPROF__SHARDS];
    char text[];                  /* method bytes, then route bytes */
} nprof__route;

/* One N+1 shape across requests, by fingerprint. */
typedef struct nprof__np {
    uint64_t fingerprint;
    size_t bytes;
    _Atomic uint64_t repeats;        /* queries of this shape in requests where it was N+1 */
    _Atomic uint64_t requests;       /* requests where it was N+1 */
    _Atomic uint64_t max_in_request; /* most repeats in one request */
    _Atomic uint64_t last_ns;        /* nprof_now_ns() of the last such request */
    _Atomic(nprof__route *) routes[NPROF__NP_ROUTES];
    uint32_t text_len;
    uint32_t callsite_len;           /* 0: no call site known when the shape was first seen */
    char text[];                     /* normalized SQL (or the example when none was kept),
                                        then the call site of the first profile's first query
                                        of the shape (nprof_pattern_info.callsite) */
} nprof__np;

/* The call site kept after an N+1 record's text. */
static inline const char *nprof__np_callsite(const nprof__np *np)
{
    return np->text + np->text_len;
}

/* The timeline: the last NPROF__TL_SLOTS intervals of NPROF__TL_INTERVAL_NS each (two
 * minutes by the second), per thread shard as the rows are (aggregate.c).  A slot is the
 * interval number % NPROF__TL_SLOTS; `interval` says which interval it holds now. */
#define NPROF__TL_SLOTS 120
#define NPROF__TL_INTERVAL_NS 1000000000ull
#define NPROF__TL_BUSY (1ull << 63) /* in `interval` while a thread empties the slot */
typedef struct nprof__tl_slot {
    _Atomic uint64_t interval;       /* interval number + 1 (0: never used), | NPROF__TL_BUSY */
    _Atomic uint64_t count, errors, total_ns;
    _Atomic uint32_t bucket[NPROF__HIST_COARSE]; /* total_ns on the coarse scale */
} nprof__tl_slot;

/* One interval of the timeline, merged over every shard. */
typedef struct nprof__tl_point {
    uint64_t count, errors, total_ns;
    uint64_t p95_ns; /* from the coarse histogram: within a quarter of the true value */
} nprof__tl_point;

typedef struct nprof__budget {
    char *route;
    size_t route_len;
    uint32_t max_queries;
    uint64_t max_sql_ns;
} nprof__budget;

struct nprof_mw {
    nprof_runtime *rt;
    nprof__alloc *alloc;
    /* options, fixed at create */
    char dashboard_path[NPROF__MW_PATH_MAX + 1];
    size_t dashboard_path_len;
    char token[NPROF__MW_TOKEN_MAX + 1];
    size_t token_len;
    uint32_t sample_every;
    uint64_t slow_request_ns;
    int headers_mode;
    int set_current;
    int production;
    uint32_t max_routes, max_np, refresh_seconds, dashboard_items;
    uint64_t created_ns;
    nprof_slowlog *slowlog;        /* borrowed, or NULL */
    uint32_t cluster_since_s;
    /* route templating: the default rule, then the user's */
    size_t rule_count;
    nprof__rule *rules;
    char **replacements;
    size_t budget_count;
    nprof__budget *budgets;
    /* the route table: open addressing over hash, slots set once by compare-and-swap */
    _Atomic(nprof__route *) *route_slots;
    uint32_t route_mask;
    char pad0[NPROF__CACHELINE];
    _Atomic uint32_t route_count;
    char pad1[NPROF__CACHELINE];
    nprof__route *other;            /* where rows beyond max_routes are counted */
    _Atomic(nprof__np *) *np_slots; /* N+1 shapes by fingerprint, same scheme */
    uint32_t np_mask;
    _Atomic uint32_t np_count;
    char pad2[NPROF__CACHELINE];
    nprof__counter kept; /* requests pushed into the store; the other totals are sums of rows */
    uint32_t stack_sample_every;      /* the runtime's opt.stack_sample_every, 0: off */
    char pad3[NPROF__CACHELINE];
    _Atomic uint64_t stack_requests;  /* requests counted for stack sampling: one in
                                         stack_sample_every of all threads' is picked */
    char pad4[NPROF__CACHELINE];
    /* the timeline's slots of each thread shard, allocated by its first request */
    _Atomic(nprof__tl_slot *) timeline[NPROF__SHARDS];
};

/* aggregate.c: the tables, and the totals registered as "stats.mw.*" (runtime/ctl.h) */
int nprof__mw_aggregate_init(nprof_mw *mw);
void nprof__mw_aggregate_free(nprof_mw *mw);
/* The row of METHOD + route (created on first use), or mw->other, or NULL without memory.
 * A method other than the nine standard ones is counted as NPROF_MW_OTHER_METHOD. */
nprof__route *nprof__mw_route(nprof_mw *mw, const char *method, size_t method_len,
                              const char *route, size_t route_len);
/* Counts an ended request under `r`. */
void nprof__mw_count(nprof_mw *mw, nprof__route *r, const nprof_profile *p,
                     const nprof_profile_info *info, int over_budget);
/* Merges row `r` over every shard into `out` (percentiles from `scratch`; with scratch NULL,
 * only the counts). */
void nprof__mw_route_merge(const nprof__route *r, nprof__hist_flat *scratch,
                           nprof_mw_route_stats *out);
/* The timeline: out[k] is interval number `last` - (n - 1) + k, for k < n <= NPROF__TL_SLOTS
 * (intervals older than the ring, or with no request, are zeros).  Runs beside requests. */
void nprof__mw_timeline(nprof_mw *mw, uint64_t last, nprof__tl_point *out, size_t n);
/* Calls fn for every row (table order), and for mw->other when it counted anything. */
typedef int (*nprof__route_visit)(void *user, const nprof__route *r);
int nprof__mw_routes_foreach(nprof_mw *mw, nprof__route_visit fn, void *user);
typedef int (*nprof__np_visit)(void *user, const nprof__np *np);
int nprof__mw_np_foreach(nprof_mw *mw, nprof__np_visit fn, void *user);

/* middleware.c: whether the request carries the configured token (X-Profile-Token header
 * or profile_token query parameter), compared in constant time. */
int nprof__mw_has_token(const nprof_mw *mw, const nprof_mw_request *req);
/* middleware.c: the value of query parameter `name` in the request's query string, raw (not
 * decoded), or NULL. */
const char *nprof__mw_query_param(const nprof_mw_request *req, const char *name,
                                  size_t *value_len);
/* middleware.c: percent-decodes (and '+' as space) `len` bytes into `out` (`cap` bytes);
 * returns the decoded length, more than `cap` when it did not fit. */
size_t nprof__mw_url_decode(const char *s, size_t len, char *out, size_t cap);

/* export.c: the sampled call stacks below dashboard_path (nprof_mw_handle()): the format
 * (enum nprof_samples_format) of the export `sub` names, or -1 when it names none. */
int nprof__mw_samples_format(const char *sub, size_t sub_len);
/* export.c: renders that export into `out` (an SVG's zoom script carrying `nonce`).
 * NPROF_ENOENT: no stored request of that id, or one without samples (the dashboard answers
 * 404). */
int nprof__mw_render_samples(nprof_mw *mw, const nprof_mw_request *req, const char *sub,
                             size_t sub_len, const char *nonce, nprof_buf *out);
/* export.c: nprof_store_render_flamegraph_svg(), its zoom script carrying `nonce`. */
int nprof__mw_render_flamegraph_svg(nprof_store *store, const char *nonce, nprof_buf *out);

/* assets.c: the embedded templates (NUL-terminated). */
typedef struct nprof__asset {
    const char *data;
    size_t len;
} nprof__asset;
nprof__asset nprof__asset_html(void);
nprof__asset nprof__asset_css(void);
nprof__asset nprof__asset_js(void);

#endif /* NPROF_MIDDLEWARE_INTERNAL_H */
