/*
 * tests/fuzz_middleware.c: libFuzzer target for the C middleware, everything of a request
 * that comes from outside: the method, the path, the query string (?profile=, the token,
 * anything else), the framework's route, the token header, the SQL, its parameters, its
 * error and the call site.  The input's first byte picks the mode (development or
 * production), whether the route comes from the framework, how often each query repeats
 * and whether the request is ended with a body; the rest is split at the second byte into
 * those fields.  Each input is one request, ended, and then served as a dashboard request
 * (which renders what all the requests so far left in the store and the aggregates).
 *
 * For any bytes: no crash and no sanitizer report; every header value holds only bytes
 * 0x20-0x7E and is as long as it says; every JSON the middleware gives (a ?profile=json
 * body, the dashboard's JSON documents) is valid JSON, and a HEAD request gets no body; no
 * text of a request reaches the HTML dashboard as markup (check_html); a dashboard response
 * has one of its documented statuses.  Any violation aborts, so the fuzzer reports it with the input.
 * Its dictionary (fuzz_middleware.dict) holds the words the middleware looks for.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"

#define TOKEN "s3cret-token"

static void fail(const char *what, const char *text, size_t len)
{
    fprintf(stderr, "fuzz_middleware: %s\noutput (%zu bytes): %.*s\n", what, len, (int)len,
            text);
    abort();
}

/* One middleware per mode, over a runtime of its own, kept for the whole run: the store
 * and the aggregates fill with what earlier inputs left, as a server's do. */
static nprof_mw *middleware(int production)
{
    static nprof_mw *mw[2];
    if (mw[production])
        return mw[production];
    nprof_config c;
    nprof_config_init(&c);
    c.allocator = NPROF_ALLOCATOR_LIBC;
    c.production = production;
    c.max_profile_bytes = 32768;   /* small: long inputs reach the cut and drop paths */
    c.slow_query_threshold_ms = 0.002; /* the larger durations below are slow */
    c.n_plus_one_threshold = 3;
    nprof_runtime *rt;
    if (nprof_runtime_create(&c, &rt) != NPROF_OK)
        abort();
    static const nprof_mw_route_rule rules[] = {{"/v[0-9]+/", "/{version}/"}};
    static const nprof_mw_budget budgets[] = {{"*", 4, 0.5}, {"GET /items/{id}", 1, 0}};
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.token = TOKEN;
    o.route_rules = rules;
    o.route_rule_count = 1;
    o.budgets = budgets;
    o.budget_count = 2;
    o.max_routes = 16;    /* small: hostile paths reach the "{other}" row */
    o.max_n_plus_one = 8;
    o.dashboard_items = 5;
    if (nprof_mw_create(rt, &o, &mw[production]) != NPROF_OK)
        abort();
    return mw[production];
}

typedef struct {
    const char *p;
    size_t n;
} field;

enum { F_METHOD, F_PATH, F_QUERY, F_ROUTE, F_TOKEN, F_SITE, F_ERROR, F_PARAMS, F_SQL, F_COUNT };
#define MAX_SQL 4

/* The request's X-Profile-Token header: the token field, when the flags give one. */
static const char *header_of(void *user, const char *name, size_t name_len, size_t *value_len)
{
    const field *token = user;
    if (!token->p || name_len != strlen("x-profile-token") ||
        strncasecmp(name, "x-profile-token", name_len) != 0)
        return NULL;
    *value_len = token->n;
    return token->p;
}

/* The call site the hook would give: the site field, cut to the room offered. */
static size_t site_of(void *user, char *buf, size_t cap)
{
    const field *site = user;
    size_t n = site->n < cap ? site->n : cap;
    memcpy(buf, site->p, n);
    return n;
}

static void check_headers(const nprof_mw_headers *hs)
{
    if (hs->count > NPROF_MW_MAX_HEADERS)
        fail("too many headers", "", 0);
    for (size_t i = 0; i < hs->count; i++) {
        const nprof_mw_header *h = &hs->items[i];
        if (!h->name || strlen(h->name) != h->name_len || strlen(h->value) != h->value_len)
            fail("a header's length is not its text's", h->value, h->value_len);
        for (size_t k = 0; k < h->value_len; k++)
            if ((unsigned char)h->value[k] < 0x20 || (unsigned char)h->value[k] > 0x7e)
                fail("a header value holds a byte outside 0x20-0x7E", h->value, h->value_len);
    }
}

/* The HTML dashboard: no text of a request reaches it as markup.  The dictionary spells
 * "<fz" and "\"fz", which the page's own markup never holds: raw in the page, the first
 * would open an element (in the inline JSON too, where "</script" would end the script),
 * the second would close an attribute; escaped, they read "&lt;fz", "\u003cfz", "&quot;fz",
 * or in the inline JSON a backslash before the quote. */
static void check_html(const char *s, size_t len)
{
    for (size_t i = 0; i + 3 <= len; i++) {
        if ((s[i + 1] | 0x20) != 'f' || (s[i + 2] | 0x20) != 'z')
            continue;
        size_t from = i > 60 ? i - 60 : 0;
        if (s[i] == '<' || (s[i] == '"' && (i == 0 || s[i - 1] != '\\')))
            fail("request text reached the HTML dashboard as markup", s + from,
                 len - from < 120 ? len - from : 120);
    }
}

static void check_json(const char *what, const char *s, size_t len)
{
    size_t where = 0;
    if (!s || strlen(s) != len || !json_check(s, len, &where))
        fail(what, s ? s : "", s ? len : 0);
}

/* Splits data[2..] at `sep` into the fields, in order; missing ones are empty. */
static void split(const uint8_t *data, size_t size, uint8_t sep, field *f, size_t nf)
{
    const char *s = (const char *)data, *end = (const char *)data + size;
    for (size_t i = 0; i < nf; i++) {
        const char *e = s < end ? memchr(s, sep, (size_t)(end - s)) : NULL;
        if (!e)
            e = s < end ? end : s;
        f[i] = (field){s, (size_t)(e - s)};
        s = e < end ? e + 1 : end;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    int production = flags & 1, framework_route = flags & 2, with_token = flags & 4;
    int with_body = flags & 8;
    unsigned repeat = 1 + ((flags >> 4) & 7);
    field f[F_COUNT + MAX_SQL - 1];
    split(data + 2, size - 2, data[1], f, sizeof f / sizeof *f);
    nprof_mw *mw = middleware(production);
    field token = with_token ? f[F_TOKEN] : (field){NULL, 0};

    /* The path is a C string nowhere: NULs in it are data, as in the query string. */
    nprof_mw_request req = {
        .method = f[F_METHOD].p,
        .method_len = f[F_METHOD].n,
        .path = f[F_PATH].p,
        .path_len = f[F_PATH].n,
        .query = f[F_QUERY].n ? f[F_QUERY].p : NULL,
        .query_len = f[F_QUERY].n,
        .route = framework_route ? f[F_ROUTE].p : NULL,
        .route_len = framework_route ? f[F_ROUTE].n : 0,
        .header = header_of,
        .user = &token,
    };
    nprof_mw_state st;
    int rc = nprof_mw_request_begin(mw, &req, &st);
    if (rc != NPROF_OK && rc != NPROF_ENOPROFILE)
        fail("begin failed", nprof_strerror(rc), strlen(nprof_strerror(rc)));
    if (st.profile) {
        nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING);
        if (!framework_route && f[F_ROUTE].n)
            nprof_mw_set_route(&st, f[F_ROUTE].p, f[F_ROUTE].n);
        nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
        for (unsigned r = 0; r < repeat; r++) {
            for (size_t k = 0; k < MAX_SQL; k++) {
                const field *sql = &f[F_SQL + k];
                if (!sql->n)
                    continue;
                nprof_query q = {
                    .sql = sql->p,
                    .sql_len = sql->n,
                    .params = f[F_PARAMS].p,
                    .params_len = f[F_PARAMS].n,
                    .duration_ns = 1000 + 997 * (uint64_t)(r + k) * sql->n,
                    .error = k == 1 && f[F_ERROR].n ? f[F_ERROR].p : NULL,
                    .error_len = k == 1 ? f[F_ERROR].n : 0,
                    .callsite = site_of,
                    .callsite_user = &f[F_SITE],
                    .batch_rows = (uint32_t)(k == 2 ? sql->n : 0),
                };
                nprof_sql_record(st.profile, &q);
            }
        }
        nprof_mw_headers early;
        if (nprof_mw_get_response_headers(&st, 200, &early) == NPROF_OK)
            check_headers(&early);
    }
    nprof_mw_headers hs;
    nprof_buf body = NPROF_BUF_INIT;
    int replaces = 0;
    nprof_mw_request_end(&st, 200 + (int)(flags >> 7) * 300, &hs, with_body ? &body : NULL,
                         with_body ? &replaces : NULL);
    check_headers(&hs);
    if (replaces)
        check_json("a ?profile=json body is not JSON", body.data, body.len);
    nprof_buf_free(&body);

    /* The same request as a dashboard request: most are not, and get 0. */
    nprof_mw_response resp;
    rc = nprof_mw_handle(mw, &req, &resp);
    if (rc < 0 && rc != NPROF_ENOMEM)
        fail("handle failed", nprof_strerror(rc), strlen(nprof_strerror(rc)));
    if (rc == 1) {
        if (resp.status != 200 && resp.status != 403 && resp.status != 404 &&
            resp.status != 405)
            fail("a dashboard status outside 200, 403, 404, 405", resp.body.data,
                 resp.body.len);
        check_headers(&resp.headers);
        int head = f[F_METHOD].n == 4 && memcmp(f[F_METHOD].p, "HEAD", 4) == 0;
        if (head && resp.status == 200 && resp.body.len)
            fail("a HEAD request got a body", resp.body.data, resp.body.len);
        if (!head && resp.status == 200 && resp.content_type &&
            strncmp(resp.content_type, "application/json", 16) == 0)
            check_json("a dashboard JSON document is not JSON", resp.body.data, resp.body.len);
        if (resp.status == 200 && resp.content_type &&
            strncmp(resp.content_type, "text/html", 9) == 0)
            check_html(resp.body.data, resp.body.len);
    }
    nprof_mw_response_free(&resp);
    return 0;
}
