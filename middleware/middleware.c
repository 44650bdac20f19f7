/*
 * middleware/middleware.c: the request lifecycle behind every framework adapter: options,
 * ?profile= and the token, phase marks, route templates, budgets, the response headers,
 * sampling into the store.  Everything on the request path writes into the request's own
 * profile, the caller's header set and the thread's shard of the aggregates; nothing takes a
 * lock or allocates beyond the runtime's allocator.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "runtime/text.h"

/* Segments that are ids: numbers, UUIDs, hex runs of 16 digits or more. */
static const char DEFAULT_ROUTE_RULE[] =
    "(?<=/)(?:[0-9]+|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
    "[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16,})(?=/|$)";

void nprof_mw_options_init(nprof_mw_options *o)
{
    if (!o)
        return;
    *o = (nprof_mw_options){
        .dashboard_path = "/debug/performance",
        .token = NULL,
        .sample_every = 0,
        .slow_request_ms = 500.0,
        .headers = NPROF_MW_HEADERS_AUTO,
        .set_current = 1,
        .default_route_rules = 1,
        .route_rules = NULL,
        .route_rule_count = 0,
        .budgets = NULL,
        .budget_count = 0,
        .max_routes = 500,
        .max_n_plus_one = 256,
        .refresh_seconds = 5,
        .dashboard_items = 50,
        .slowlog = NULL,
        .cluster_since_s = 3600,
    };
}

static char *copy_cstr(nprof__alloc *a, const char *s, size_t *len_out)
{
    size_t len = strlen(s);
    char *c = nprof__alloc_bytes(a, len + 1);
    if (c) {
        memcpy(c, s, len + 1);
        *len_out = len;
    }
    return c;
}

void nprof_mw_destroy(nprof_mw *mw)
{
    if (!mw)
        return;
    nprof__alloc *a = mw->alloc;
    nprof__mw_aggregate_free(mw);
    for (size_t i = 0; i < mw->rule_count; i++) {
        nprof__rule_free(&mw->rules[i]);
        if (mw->replacements && mw->replacements[i])
            nprof__free_bytes(a, mw->replacements[i], strlen(mw->replacements[i]) + 1);
    }
    nprof__free_bytes(a, mw->rules, mw->rule_count * sizeof *mw->rules);
    nprof__free_bytes(a, mw->replacements, mw->rule_count * sizeof *mw->replacements);
    for (size_t i = 0; i < mw->budget_count; i++)
        nprof__free_bytes(a, mw->budgets[i].route, mw->budgets[i].route_len + 1);
    nprof__free_bytes(a, mw->budgets, mw->budget_count * sizeof *mw->budgets);
    nprof__free_cacheline(a, mw, sizeof *mw);
}

int nprof_mw_create(nprof_runtime *rt, const nprof_mw_options *opts,
                    nprof_mw **out)
{
    if (out)
        *out = NULL;
    if (!rt || !out)
        return nprof__fail(NPROF_EINVAL, "nprof_mw_create: NULL runtime or output");
    nprof_mw_options defaults;
    nprof_mw_options_init(&defaults);
    const nprof_mw_options *o = opts ? opts : &defaults;
    const char *dp = o->dashboard_path ? o->dashboard_path : "";
    size_t dp_len = strlen(dp);
    while (dp_len > 1 && dp[dp_len - 1] == '/') /* "/debug/" serves as "/debug" */
        dp_len--;
    if (dp_len && (dp[0] != '/' || dp_len > NPROF__MW_PATH_MAX))
        return nprof__fail(NPROF_EINVAL, "dashboard_path must start with '/' and have at most %d bytes",
                           NPROF__MW_PATH_MAX);
    size_t tok_len = o->token ? strlen(o->token) : 0;
    if (tok_len > NPROF__MW_TOKEN_MAX)
        return nprof__fail(NPROF_EINVAL, "token longer than %d bytes", NPROF__MW_TOKEN_MAX);
    if ((o->route_rule_count && !o->route_rules) || (o->budget_count && !o->budgets))
        return nprof__fail(NPROF_EINVAL, "route_rules or budgets NULL with a non-zero count");
    for (size_t i = 0; i < o->route_rule_count; i++)
        if (!o->route_rules[i].pattern || !o->route_rules[i].replacement)
            return nprof__fail(NPROF_EINVAL, "route rule %zu: NULL pattern or replacement", i);
    for (size_t i = 0; i < o->budget_count; i++)
        if (!o->budgets[i].route || !(o->budgets[i].max_sql_ms >= 0))
            return nprof__fail(NPROF_EINVAL, "budget %zu: NULL route or bad max_sql_ms", i);

    nprof__alloc *a = &rt->alloc;
    nprof_mw *mw = nprof__alloc_cacheline(a, sizeof *mw);
    if (!mw)
        return NPROF_ENOMEM;
    mw->rt = rt;
    mw->alloc = a;
    memcpy(mw->dashboard_path, dp, dp_len);
    mw->dashboard_path_len = dp_len;
    if (tok_len)
        memcpy(mw->token, o->token, tok_len);
    mw->token_len = tok_len;
    mw->production = nprof_runtime_config(rt)->production;
    /* 0: production's stricter default keeps 1 in 10 ordinary requests, development all */
    mw->sample_every = o->sample_every ? o->sample_every : mw->production ? 10 : 1;
    mw->slow_request_ns = o->slow_request_ms > 0 ? (uint64_t)(o->slow_request_ms * 1e6) : 0;
    mw->headers_mode = o->headers;
    mw->set_current = o->set_current;
    mw->max_routes = o->max_routes ? o->max_routes : 1;
    mw->max_np = o->max_n_plus_one ? o->max_n_plus_one : 1;
    mw->refresh_seconds = o->refresh_seconds;
    mw->dashboard_items = o->dashboard_items ? o->dashboard_items : 1;
    mw->created_ns = nprof_now_ns();
    mw->slowlog = o->slowlog;
    mw->cluster_since_s = o->cluster_since_s;
    mw->stack_sample_every = nprof_runtime_config(rt)->stack_sample_every;

    int rc = NPROF_ENOMEM;
    size_t nrules = (o->default_route_rules ? 1 : 0) + o->route_rule_count;
    if (nrules) {
        mw->rules = nprof__alloc_zeroed(a, nrules * sizeof *mw->rules);
        mw->replacements = nprof__alloc_zeroed(a, nrules * sizeof *mw->replacements);
        if (!mw->rules || !mw->replacements) {
            /* rule_count stays 0: destroy frees the two arrays by their size below */
            nprof__free_bytes(a, mw->rules, nrules * sizeof *mw->rules);
            nprof__free_bytes(a, mw->replacements, nrules * sizeof *mw->replacements);
            mw->rules = NULL;
            mw->replacements = NULL;
            goto fail;
        }
        mw->rule_count = nrules;
        for (size_t i = 0; i < nrules; i++) {
            int dflt = o->default_route_rules && i == 0;
            const nprof_mw_route_rule *ur = dflt ? NULL : &o->route_rules[i - (o->default_route_rules ? 1 : 0)];
            size_t len;
            mw->replacements[i] = copy_cstr(a, dflt ? "{id}" : ur->replacement, &len);
            if (!mw->replacements[i])
                goto fail;
            rc = nprof__rule_compile(&mw->rules[i], dflt ? DEFAULT_ROUTE_RULE : ur->pattern,
                                     "route_rules");
            if (rc)
                goto fail;
        }
    }
    if (o->budget_count) {
        mw->budgets = nprof__alloc_zeroed(a, o->budget_count * sizeof *mw->budgets);
        if (!mw->budgets) {
            rc = NPROF_ENOMEM;
            goto fail;
        }
        mw->budget_count = o->budget_count;
        for (size_t i = 0; i < o->budget_count; i++) {
            nprof__budget *b = &mw->budgets[i];
            b->route = copy_cstr(a, o->budgets[i].route, &b->route_len);
            if (!b->route) {
                rc = NPROF_ENOMEM;
                goto fail;
            }
            b->max_queries = o->budgets[i].max_queries;
            b->max_sql_ns = (uint64_t)(o->budgets[i].max_sql_ms * 1e6);
        }
    }
    rc = nprof__mw_aggregate_init(mw);
    if (rc)
        goto fail;
    *out = mw;
    return NPROF_OK;
fail:
    nprof_mw_destroy(mw);
    return rc;
}

nprof_runtime *nprof_mw_runtime(const nprof_mw *mw)
{
    return mw ? mw->rt : NULL;
}

/* ---- route templates ------------------------------------------------------------------ */

/* Applies the rules to `path` into `out` (cap >= 1); returns the length.  A rule whose
 * result does not fit is skipped. */
static size_t apply_rules(nprof_mw *mw, const char *path, size_t len, char *out,
                          size_t cap)
{
    char tmp[NPROF__ROUTE_MAX + 1];
    if (len > NPROF__ROUTE_MAX)
        len = NPROF__ROUTE_MAX;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, path, len);
    out[len] = '\0';
    for (size_t i = 0; i < mw->rule_count; i++) {
        long n = nprof__rule_replace(&mw->rules[i], out, len, mw->replacements[i], tmp,
                                     sizeof tmp < cap ? sizeof tmp : cap);
        if (n >= 0) {
            memcpy(out, tmp, (size_t)n + 1);
            len = (size_t)n;
        }
    }
    return len;
}

int nprof_mw_get_route_template(nprof_mw *mw, const char *path, size_t path_len, char *out,
                                size_t cap, size_t *out_len)
{
    if (out_len)
        *out_len = 0;
    if (!mw || (!path && path_len) || (!out && cap))
        return NPROF_EINVAL;
    /* The whole template first, so that a short `cap` learns the size it needs. */
    char full[NPROF__ROUTE_MAX + 1];
    size_t len = apply_rules(mw, path ? path : "", path_len, full, sizeof full);
    if (out_len)
        *out_len = len;
    if (cap <= len)
        return NPROF_ERANGE;
    memcpy(out, full, len + 1);
    return NPROF_OK;
}

/* ---- ?profile= and the token ------------------------------------------------------------ */

/* Constant time in the length of the secret `want`: every byte is compared whatever the
 * first difference, and a length mismatch is folded into the same accumulator. */
static int token_equal(const char *got, size_t got_len, const char *want, size_t want_len)
{
    if (!want_len || !got_len)
        return 0;
    unsigned diff = got_len != want_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned)(unsigned char)want[i] ^
                (unsigned)(unsigned char)got[i < got_len ? i : 0];
    return diff == 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes (and '+' to ' ') into `out` of `cap` bytes; returns the length, or
 * cap + 1 when it does not fit. */
size_t nprof__mw_url_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n >= cap)
            return cap + 1;
        out[n++] = c;
    }
    return n;
}

/* The value of query parameter `name` (raw, not decoded), or NULL. */
NPROF__HOT_PATH
static const char *query_param(const char *q, size_t len, const char *name, size_t *value_len)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&' && q[end] != ';')
            end++;
        if (end - i >= nlen && !memcmp(q + i, name, nlen) &&
            (end - i == nlen || q[i + nlen] == '=')) {
            size_t v = i + nlen + (end - i > nlen);
            *value_len = end - v;
            return q + v;
        }
        i = end + 1;
    }
    return NULL;
}

const char *nprof__mw_query_param(const nprof_mw_request *req, const char *name,
                                  size_t *value_len)
{
    return req->query ? query_param(req->query, req->query_len, name, value_len) : NULL;
}

/* Whether the request carries the configured token (header or query parameter). */
NPROF__HOT_PATH
int nprof__mw_has_token(const nprof_mw *mw, const nprof_mw_request *req)
{
    if (!mw->token_len)
        return 0;
    if (req->header) {
        size_t vlen = 0;
        const char *v = req->header(req->user, "X-Profile-Token", 15, &vlen);
        if (v && token_equal(v, vlen, mw->token, mw->token_len))
            return 1;
    }
    size_t qlen = 0;
    const char *q = req->query ? query_param(req->query, req->query_len, "profile_token", &qlen) : NULL;
    if (q) {
        char dec[NPROF__MW_TOKEN_MAX + 1];
        size_t n = nprof__mw_url_decode(q, qlen, dec, sizeof dec);
        if (n <= sizeof dec && token_equal(dec, n, mw->token, mw->token_len))
            return 1;
    }
    return 0;
}

static int authorized(const nprof_mw *mw, const nprof_mw_request *req)
{
    return !mw->production || nprof__mw_has_token(mw, req);
}

static int profile_mode(const nprof_mw_request *req)
{
    size_t len = 0;
    const char *v = req->query ? query_param(req->query, req->query_len, "profile", &len) : NULL;
    if (!v)
        return NPROF_MW_PROFILE_NONE;
    if (len == 4 && !memcmp(v, "json", 4))
        return NPROF_MW_PROFILE_JSON;
    if (len == 5 && !memcmp(v, "flame", 5))
        return NPROF_MW_PROFILE_FLAME;
    if ((len == 1 && v[0] == '1') || (len == 4 && !memcmp(v, "true", 4)) ||
        (len == 6 && !memcmp(v, "header", 6)) || len == 0)
        return NPROF_MW_PROFILE_HEADER;
    return NPROF_MW_PROFILE_NONE;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static _Thread_local uint32_t sample_counter;

NPROF__HOT_PATH
int nprof_mw_request_begin(nprof_mw *mw, const nprof_mw_request *req, nprof_mw_state *st)
{
    if (!st)
        return NPROF_EINVAL;
    *st = (nprof_mw_state){.profile = NULL, .profile_mode = 0, .authorized = 0,
                           .sample_stacks = 0, .wants_headers = 0, .mw_ = mw, .prev_current_ = {0},
                           .mark_phase_ = -1, .route_set_ = 0, .sampled_ = 0};
    if (!mw || !req || (!req->method && req->method_len) || (!req->path && req->path_len))
        return NPROF_EINVAL;
    nprof_profile *p;
    int rc = nprof_request_begin(mw->rt, req->method, req->method_len, req->path, req->path_len,
                                 req->start_ticks, &p);
    if (rc != NPROF_OK)
        return rc;
    st->profile = p;
    /* The common case (no query string, development mode) costs two tests.  Production
     * looks for the token only on a request that asks for something (?profile=): on the
     * others it would walk the request's headers for nothing. */
    if (req->query_len || mw->production) {
        int mode = profile_mode(req);
        st->authorized = mode != NPROF_MW_PROFILE_NONE ? authorized(mw, req) : !mw->production;
        st->profile_mode = st->authorized ? mode : NPROF_MW_PROFILE_NONE;
    } else {
        st->authorized = 1;
    }
    st->wants_headers = st->profile_mode != NPROF_MW_PROFILE_NONE ||
                        mw->headers_mode == NPROF_MW_HEADERS_ALWAYS ||
                        (mw->headers_mode == NPROF_MW_HEADERS_AUTO && !mw->production);
    /* Asked for, or one request in stack_sample_every across threads (one atomic add, only
     * when on): the adapter's sampler reads the flag. */
    st->sample_stacks = st->profile_mode == NPROF_MW_PROFILE_FLAME ||
                        (mw->stack_sample_every &&
                         atomic_fetch_add_explicit(&mw->stack_requests, 1, memory_order_relaxed) %
                                 mw->stack_sample_every == 0);
    /* Which ordinary requests the store keeps (1 in sample_every) is decided now, so that
     * production mode can leave out what only a kept profile would show: the parameter
     * summaries, a third of a query's recording.  A request kept for what it turns out to be
     * (an N+1, an error, a slow query) keeps the summaries of its slow and failed queries. */
    st->sampled_ = mw->sample_every <= 1 || ++sample_counter % mw->sample_every == 0;
    if (mw->production && !st->sampled_ && st->profile_mode == NPROF_MW_PROFILE_NONE &&
        !st->sample_stacks)
        nprof_profile_set_param_summaries(p, 0);
    /* A route the profile could not keep (over max_profile_bytes) leaves it to the rules. */
    if (req->route && req->route_len &&
        nprof_profile_set_route(p, req->route, req->route_len) == NPROF_OK)
        st->route_set_ = 1;
    nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE);
    st->mark_phase_ = NPROF_PHASE_MIDDLEWARE;
    if (mw->set_current) {
        /* Saved with its generation, so that putting it back at end cannot revive a request
         * that ended meanwhile, nor one that another request's begin reused its profile for. */
        st->prev_current_ = nprof_current_save();
        nprof_current_set(p);
    }
    return NPROF_OK;
}

NPROF__HOT_PATH
int nprof_mw_mark_phase(nprof_mw_state *st, int phase)
{
    if (!st || !st->profile)
        return NPROF_ENOPROFILE;
    if (phase < -1 || phase >= NPROF_PHASE_COUNT)
        return NPROF_EINVAL;
    int from = st->mark_phase_;
    st->mark_phase_ = -1;
    if (phase < 0) {
        if (from >= 0)
            nprof_phase_end(st->profile, from);
        return NPROF_OK;
    }
    int rc = from >= 0 ? nprof__phase_switch(st->profile, from, phase)
                       : nprof_phase_begin(st->profile, phase);
    if (rc == NPROF_OK)
        st->mark_phase_ = phase;
    return rc;
}

NPROF__HOT_PATH
int nprof_mw_set_route(nprof_mw_state *st, const char *route, size_t len)
{
    if (!st || !st->profile)
        return NPROF_ENOPROFILE;
    int rc = nprof_profile_set_route(st->profile, route, len);
    if (rc == NPROF_OK)
        st->route_set_ = len > 0;
    return rc;
}

/* ---- headers ---------------------------------------------------------------------------------- */

/* Appends one header whose value we composed from numbers and fixed text (or sanitized
 * already, as the N+1 list is): copied as is. */
static void hs_add(nprof_mw_headers *h, const char *name, size_t name_len, const char *value,
                   size_t len)
{
    if (h->count >= NPROF_MW_MAX_HEADERS || h->used_ + len + 1 > NPROF_MW_HEADER_BYTES)
        return;
    char *dst = h->bytes_ + h->used_;
    memcpy(dst, value, len);
    dst[len] = '\0';
    h->items[h->count++] = (nprof_mw_header){.name = name, .name_len = name_len, .value = dst,
                                             .value_len = len};
    h->used_ += len + 1;
}

#define HS_ADD(h, lit, value, len) hs_add((h), lit, sizeof lit - 1, (value), (len))

/* A byte a header value may carry: visible ASCII and space.  Everything else (CR, LF, other
 * control bytes, DEL, non-ASCII) becomes '?', so no SQL can smuggle a line into a response. */
static inline char header_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x7f ? (char)c : '?';
}

/* "00" to "99": two digits per table lookup instead of a division per digit. */
static const char DIGIT_PAIRS[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                     "31323334353637383940414243444546474849505152535455565758596061"
                                     "62636465666768697071727374757677787980818283848586878889909192"
                                     "93949596979899";

/* Milliseconds with up to six decimals, trailing zeros dropped: the `dur` of Server-Timing. */
static size_t format_ms(uint64_t ns, char *out)
{
    size_t n = nprof__format_u64(ns / 1000000, out);
    uint32_t frac = (uint32_t)(ns % 1000000);
    if (frac) {
        char *d = out + n + 1;
        out[n] = '.';
        memcpy(d, DIGIT_PAIRS + 2 * (frac / 10000), 2);
        memcpy(d + 2, DIGIT_PAIRS + 2 * (frac / 100 % 100), 2);
        memcpy(d + 4, DIGIT_PAIRS + 2 * (frac % 100), 2);
        int last = 5;
        while (d[last] == '0')
            last--;
        n += 1 + (size_t)last + 1;
    }
    out[n] = '\0';
    return n;
}

#define PUT(s) (memcpy(o, s, sizeof s - 1), o += sizeof s - 1)

static void server_timing(nprof_mw_headers *h, const nprof_profile_info *in, uint64_t mw_ns,
                          uint64_t routing_ns, uint64_t handler_ns)
{
    char buf[256], *o = buf;
    PUT("total;dur=");
    o += format_ms(in->total_ns, o);
    PUT(", handler;dur=");
    o += format_ms(handler_ns, o);
    PUT(", sql;dur=");
    o += format_ms(in->sql_total_ns, o);
    PUT(";desc=\"");
    o += nprof__format_u64(in->sql_count, o);
    PUT(" queries\", middleware;dur=");
    o += format_ms(mw_ns, o);
    PUT(", routing;dur=");
    o += format_ms(routing_ns, o);
    HS_ADD(h, "Server-Timing", buf, (size_t)(o - buf));
}

static void count_header(nprof_mw_headers *h, const char *name, size_t name_len, uint64_t v)
{
    char buf[24];
    hs_add(h, name, name_len, buf, nprof__format_u64(v, buf));
}

#define NP_HEADER_MAX 1024 /* bytes of X-N-Plus-One */
#define NP_SQL_MAX 240     /* bytes of one pattern's text in it */
#define NP_SITE_MAX 120    /* bytes of one pattern's call site in it */

/* Writes `len` bytes of `t` at `o` as an RFC 8941 string cut at `max` bytes ("..." marks a
 * cut): '"' and '\' escaped, bytes outside 0x20-0x7E as '?', so the header stays ASCII
 * whatever the text holds.  Returns the bytes written, at most 2 * max + 5. */
static size_t sf_string(char *o, const char *t, size_t len, size_t max)
{
    size_t m = 0, i = 0;
    o[m++] = '"';
    for (; i < len && i < max; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"' || c == '\\')
            o[m++] = '\\';
        o[m++] = header_byte(c);
    }
    if (i < len) {
        memcpy(o + m, "...", 3);
        m += 3;
    }
    o[m++] = '"';
    return m;
}

/* X-N-Plus-One: a list of quoted strings with a count each, and the call site of the
 * shape's first query when the recorder gave one, as RFC 8941 writes them:
 *     "SELECT * FROM authors WHERE id = ?";count=5;site="views.py:42 in list", "SELECT ...";count=12
 * Text past NP_SQL_MAX bytes and sites past NP_SITE_MAX are cut (marked "..."), patterns past
 * NP_HEADER_MAX bytes are left out (see sf_string for the escaping). */
static void n_plus_one_header(nprof_mw_headers *h, const nprof_profile *p,
                              const nprof_profile_info *in)
{
    char buf[NP_HEADER_MAX + 64];
    size_t n = 0;
    for (size_t k = 0; k < in->pattern_count; k++) {
        nprof_pattern_info pi;
        if (nprof_profile_get_pattern(p, k, &pi) != NPROF_OK || !pi.n_plus_one)
            continue;
        const char *t = pi.normalized ? pi.normalized : pi.example ? pi.example : "";
        size_t tl = pi.normalized ? pi.normalized_len : pi.example ? pi.example_len : 0;
        char item[2 * NP_SQL_MAX + 2 * NP_SITE_MAX + 64];
        size_t m = sf_string(item, t, tl, NP_SQL_MAX);
        memcpy(item + m, ";count=", 7);
        m += 7;
        m += nprof__format_u64(pi.count, item + m);
        if (pi.callsite && pi.callsite_len) {
            memcpy(item + m, ";site=", 6);
            m += 6;
            m += sf_string(item + m, pi.callsite, pi.callsite_len, NP_SITE_MAX);
        }
        if (n + (n ? 2 : 0) + m > NP_HEADER_MAX)
            break;
        if (n) {
            buf[n++] = ',';
            buf[n++] = ' ';
        }
        memcpy(buf + n, item, m);
        n += m;
    }
    if (n)
        HS_ADD(h, "X-N-Plus-One", buf, n);
}

static void budget_header(nprof_mw_headers *h, const nprof__route *r,
                          const nprof_profile_info *in)
{
    char buf[160], *o = buf;
    PUT("exceeded");
    if (r->budget_queries) {
        PUT("; queries=");
        o += nprof__format_u64(in->sql_count, o);
        *o++ = '/';
        o += nprof__format_u64(r->budget_queries, o);
    }
    if (r->budget_sql_ns) {
        PUT("; sql_ms=");
        o += format_ms(in->sql_total_ns, o);
        *o++ = '/';
        o += format_ms(r->budget_sql_ns, o);
    }
    HS_ADD(h, "X-Query-Budget", buf, (size_t)(o - buf));
}
#undef PUT


static void headers_reset(nprof_mw_headers *h)
{
    if (h) {
        h->count = 0;
        h->used_ = 0;
    }
}

/* The row the request is counted under: its route template, or its path through the rules.
 * With `keep`, a template made by the rules is also kept as the profile's route (for the
 * dashboards' lists of requests); the request's final row is only known at end. */
NPROF__HOT_PATH
static nprof__route *request_route(const nprof_mw_state *st, nprof_profile *p,
                                   const nprof_profile_info *in, int keep)
{
    nprof_mw *mw = st->mw_;
    if (st->route_set_)
        return nprof__mw_route(mw, in->method, in->method_len, in->route, in->route_len);
    char tmpl[NPROF__ROUTE_MAX + 1];
    size_t len = apply_rules(mw, in->path, in->path_len, tmpl, sizeof tmpl);
    if (keep)
        nprof_profile_set_route(p, tmpl, len);
    return nprof__mw_route(mw, in->method, in->method_len, tmpl, len);
}

static int over_budget(const nprof__route *r, const nprof_profile_info *in)
{
    return r && ((r->budget_queries && in->sql_count > r->budget_queries) ||
                 (r->budget_sql_ns && in->sql_total_ns > r->budget_sql_ns));
}

/* The per-request headers of `p`, whose figures are `in`, into `h` (reset): what end gives
 * for the final figures and nprof_mw_get_response_headers() for the figures so far. */
/* X-Profile-Flame: where the dashboard serves the flame graph of a ?profile=flame request,
 * "<dashboard_path>/requests/<request_id>/flame.svg", so the client can open it. */
static void flame_header(nprof_mw_headers *h, const nprof_mw *mw, const nprof_profile_info *in)
{
    if (!mw->dashboard_path_len)
        return;
    char buf[NPROF__MW_PATH_MAX + NPROF__REQUEST_ID_MAX + 32], *o = buf;
    size_t dl = mw->dashboard_path_len == 1 ? 0 : mw->dashboard_path_len; /* "/" */
    for (size_t i = 0; i < dl; i++)
        *o++ = header_byte((unsigned char)mw->dashboard_path[i]);
    memcpy(o, "/requests/", 10);
    o += 10;
    for (size_t i = 0; i < in->request_id_len; i++)
        *o++ = header_byte((unsigned char)in->request_id[i]);
    memcpy(o, "/flame.svg", 10);
    o += 10;
    HS_ADD(h, "X-Profile-Flame", buf, (size_t)(o - buf));
}

static void fill_headers(nprof_mw_headers *h, const nprof_mw_state *st, const nprof_profile *p,
                         const nprof_profile_info *in, const nprof__route *r, int over)
{
    /* X-Profile is rendered in place: the runtime's renderer bounds it to NPROF_HEADER_MAX */
    size_t xl = 0;
    char *dst = h->bytes_ + h->used_;
    if (NPROF_MW_HEADER_BYTES - h->used_ >= NPROF_HEADER_MAX &&
        nprof_profile_render_header(p, dst, NPROF_HEADER_MAX, &xl) == NPROF_OK) {
        h->items[h->count++] = (nprof_mw_header){
            .name = "X-Profile", .name_len = 9, .value = dst, .value_len = xl};
        h->used_ += xl + 1;
    }
    server_timing(h, in, in->middleware_ns, in->routing_ns, in->handler_ns);
    count_header(h, "X-Query-Count", 13, in->sql_count);
    count_header(h, "X-Slow-Queries", 14, in->slow_count);
    if (in->n_plus_one_count)
        n_plus_one_header(h, p, in);
    if (over)
        budget_header(h, r, in);
    if (st->profile_mode == NPROF_MW_PROFILE_FLAME)
        flame_header(h, st->mw_, in);
}

NPROF__HOT_PATH
int nprof_mw_get_response_headers(nprof_mw_state *st, int status, nprof_mw_headers *headers)
{
    (void)status; /* none of end's headers depends on it; taken so that one may */
    if (!st || !headers)
        return NPROF_EINVAL;
    headers_reset(headers);
    nprof_profile *p = st->profile;
    if (!p)
        return NPROF_ENOPROFILE;
    if (!st->wants_headers)
        return NPROF_OK;
    /* The figures as the request stands: the total and the open phase brought up to now for
     * as long as the headers take, so that X-Profile's total covers its phases. */
    nprof__interim undo;
    nprof__profile_interim_begin(p, nprof_ticks(), &undo);
    nprof_profile_info in;
    nprof_profile_get_info(p, &in);
    /* The row is looked up only for its budget: the route may still change before end. */
    const nprof__route *r = st->mw_->budget_count ? request_route(st, p, &in, 0) : NULL;
    fill_headers(headers, st, p, &in, r, over_budget(r, &in));
    nprof__profile_interim_end(p, &undo);
    return NPROF_OK;
}

NPROF__HOT_PATH
int nprof_mw_request_end(nprof_mw_state *st, int status, nprof_mw_headers *headers,
                         nprof_buf *json_body, int *json_replaces_body)
{
    headers_reset(headers);
    if (json_replaces_body)
        *json_replaces_body = 0;
    if (!st || !st->profile)
        return NPROF_ENOPROFILE;
    nprof_mw *mw = st->mw_;
    nprof_profile *p = st->profile;
    st->profile = NULL;
    st->mark_phase_ = -1;
    /* The previous current profile comes back only if this request is still the thread's
     * current: ending A while B (begun after it) is current leaves B current.  A previous
     * one that has ended meanwhile comes back as none (nprof_current_restore).  Asked
     * before the end, which makes the request no thread's current. */
    if (nprof_current() == p)
        nprof_current_restore(st->prev_current_);
    nprof_request_end(p, status);
    nprof_profile_info in;
    nprof_profile_get_info(p, &in);

    nprof__route *r = request_route(st, p, &in, 1);
    int over = over_budget(r, &in);
    nprof__mw_count(mw, r, p, &in, over);

    if (headers && st->wants_headers)
        fill_headers(headers, st, p, &in, r, over);
    if (st->profile_mode == NPROF_MW_PROFILE_JSON && json_body &&
        nprof_profile_render_json(p, json_body) == NPROF_OK && json_replaces_body)
        *json_replaces_body = 1;

    if (mw->slowlog && in.slow_count) /* copies into its queue: never blocks */
        nprof_slowlog_enqueue_profile(mw->slowlog, p);
    /* Sampling: ordinary requests 1 in sample_every; the interesting ones always, and those
     * whose call stacks were sampled (their flame graphs are read from the store). */
    int keep = st->profile_mode != NPROF_MW_PROFILE_NONE || st->sample_stacks || in.slow_count ||
               in.n_plus_one_count || over || status >= 500 || status <= 0 ||
               (mw->slow_request_ns && in.total_ns >= mw->slow_request_ns) ||
               st->sampled_;
    if (keep) {
        nprof__counter_add(&mw->kept, 1);
        nprof_request_submit(p);
    } else {
        nprof_request_discard(p);
    }
    return NPROF_OK;
}
