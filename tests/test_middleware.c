/*
 * tests/test_middleware.c: the request lifecycle of the middleware: the headers and their
 * syntax, sanitization of hostile SQL, ?profile= and token gating, route templates,
 * budgets, sampling into the store, and both ways of reaching the profile.
 */
#include <math.h>

#include "nprof_test.h"
#include "test.h"

#include "nanoprof/middleware.h"

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct hdrs {
    const char *name[4], *value[4];
    int n;
} hdrs;

static const char *lookup(void *user, const char *name, size_t name_len, size_t *value_len)
{
    hdrs *h = user;
    for (int i = 0; h && i < h->n; i++)
        if (strlen(h->name[i]) == name_len && !strncasecmp(h->name[i], name, name_len)) {
            *value_len = strlen(h->value[i]);
            return h->value[i];
        }
    return NULL;
}

/* lookup(), counting the reads: which requests have their headers read at all. */
static int header_reads;
static const char *counting_lookup(void *user, const char *name, size_t name_len,
                                   size_t *value_len)
{
    header_reads++;
    return lookup(user, name, name_len, value_len);
}

static nprof_mw_request req_of(const char *method, const char *path, const char *query,
                               hdrs *h)
{
    return (nprof_mw_request){.method = method, .method_len = strlen(method), .path = path,
                              .path_len = strlen(path), .query = query,
                              .query_len = query ? strlen(query) : 0, .route = NULL,
                              .route_len = 0, .header = lookup, .user = h, .start_ticks = 0};
}

static const char *header(const nprof_mw_headers *hs, const char *name)
{
    for (size_t i = 0; i < hs->count; i++)
        if (!strcmp(hs->items[i].name, name))
            return hs->items[i].value;
    return NULL;
}

/* Every header value: only bytes 0x20-0x7E, length as counted, NUL-terminated. */
static int headers_clean(const nprof_mw_headers *hs)
{
    for (size_t i = 0; i < hs->count; i++) {
        const nprof_mw_header *h = &hs->items[i];
        if (strlen(h->value) != h->value_len || strlen(h->name) != h->name_len)
            return 0;
        for (size_t k = 0; k < h->value_len; k++)
            if ((unsigned char)h->value[k] < 0x20 || (unsigned char)h->value[k] > 0x7e)
                return 0;
    }
    return 1;
}

static nprof_mw *make_mw(nprof_runtime *rt, const nprof_mw_options *o)
{
    nprof_mw *mw = NULL;
    int rc = nprof_mw_create(rt, o, &mw);
    if (rc)
        fprintf(stderr, "nprof_mw_create: %s: %s\n", nprof_errname(rc),
                nprof_last_error_detail());
    return mw;
}

/* A middleware with the token "s3cret-token" (what production mode asks for). */
static nprof_mw *make_mw_with_token(nprof_runtime *rt)
{
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.token = "s3cret-token";
    return make_mw(rt, &o);
}

/* One request with `queries` copies of `sql` (each `ns` long) and status `status`. */
static int run_request(nprof_mw *mw, nprof_mw_request *r, const char *sql, int queries,
                       uint64_t ns, int status, nprof_mw_headers *hs, nprof_buf *body,
                       int *replaced)
{
    nprof_mw_state st;
    int rc = nprof_mw_request_begin(mw, r, &st);
    if (rc)
        return rc;
    nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING);
    nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
    for (int i = 0; i < queries; i++) {
        nprof_query q = {.sql = sql, .sql_len = strlen(sql), .duration_ns = ns};
        nprof_sql_record(nprof_current(), &q);
    }
    return nprof_mw_request_end(&st, status, hs, body, replaced);
}

/* A Server-Timing metric's dur (ms, exact to the ns), or -1 when absent. */
static double timing_ms(const nprof_mw_headers *hs, const char *metric)
{
    const char *st = header(hs, "Server-Timing");
    char key[32];
    snprintf(key, sizeof key, "%s;dur=", metric);
    const char *at = st ? strstr(st, key) : NULL;
    return at ? strtod(at + strlen(key), NULL) : -1;
}

/* An X-Profile value in ns ("total=1.2ms" -> 1.2e6) and half of its last shown digit in
 * *slack_ns (what rounding may have taken off or added), or -1 when absent. */
static double profile_ns(const nprof_mw_headers *hs, const char *name, double *slack_ns)
{
    const char *xp = header(hs, "X-Profile");
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *at = xp ? strstr(xp, key) : NULL;
    if (!at)
        return -1;
    char *unit;
    double v = strtod(at + strlen(key), &unit);
    double scale = !strncmp(unit, "ns", 2) ? 1 : !strncmp(unit, "us", 2) ? 1e3
                 : !strncmp(unit, "ms", 2) ? 1e6 : 1e9;
    *slack_ns = scale == 1 ? 0.5 : scale == 1e9 ? 5e6 : 0.05 * scale;
    return v * scale;
}

/* The headers add up: Server-Timing's total (exact) covers its phases, and X-Profile's total
 * covers the phases it shows, up to the rounding of each shown value. */
static int totals_cover_phases(const nprof_mw_headers *hs)
{
    double phases = timing_ms(hs, "handler") + timing_ms(hs, "middleware") + timing_ms(hs, "routing");
    if (!(timing_ms(hs, "total") + 1e-7 >= phases)) {
        fprintf(stderr, "Server-Timing: total %f ms < phases %f ms\n", timing_ms(hs, "total"), phases);
        return 0;
    }
    double s_total, s_h, s_m, s_r;
    double total = profile_ns(hs, "total", &s_total);
    double shown = profile_ns(hs, "handler", &s_h) + profile_ns(hs, "middleware", &s_m) +
                   profile_ns(hs, "routing", &s_r);
    if (!(total + s_total + s_h + s_m + s_r >= shown)) {
        fprintf(stderr, "X-Profile: total %.0f ns < phases %.0f ns: %s\n", total, shown,
                header(hs, "X-Profile"));
        return 0;
    }
    return 1;
}

/* ---- tests -------------------------------------------------------------------------------- */

TEST(options_have_the_documented_defaults)
{
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    ASSERT_STR(o.dashboard_path, "/debug/performance");
    ASSERT_EQ_INT(o.sample_every, 0); /* 1 in development, 10 in production */
    ASSERT_EQ_INT(o.set_current, 1);
    ASSERT_EQ_INT(o.default_route_rules, 1);
    ASSERT_EQ_INT(o.max_routes, 500);
    ASSERT_TRUE(o.token == NULL);
    nprof_mw_options_init(NULL);
}

TEST(create_refuses_bad_options)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt);
    nprof_mw *mw = NULL;
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.dashboard_path = "debug";
    ASSERT_EQ_INT(nprof_mw_create(rt, &o, &mw), NPROF_EINVAL);
    ASSERT_TRUE(mw == NULL);
    nprof_mw_options_init(&o);
    nprof_mw_route_rule bad = {.pattern = "(unclosed", .replacement = "x"};
    o.route_rules = &bad;
    o.route_rule_count = 1;
    ASSERT_EQ_INT(nprof_mw_create(rt, &o, &mw), NPROF_EPARSE);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "route_rules") != NULL);
    ASSERT_EQ_INT(nprof_mw_create(NULL, NULL, &mw), NPROF_EINVAL);
    nprof_mw_destroy(NULL);
    nprof_runtime_destroy(rt);
}

TEST(development_request_gets_every_header)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    ASSERT_TRUE(mw);
    nprof_mw_request r = req_of("GET", "/users/17", NULL, NULL);
    nprof_mw_headers hs;
    ASSERT_OK(run_request(mw, &r, "SELECT * FROM users WHERE id = 1", 2, 300000, 200, &hs, NULL,
                          NULL));
    ASSERT_TRUE(headers_clean(&hs));
    const char *xp = header(&hs, "X-Profile");
    ASSERT_TRUE(xp && !strncmp(xp, "total=", 6));
    ASSERT_TRUE(strstr(xp, "sql=0.6ms(2q)") != NULL);
    const char *st = header(&hs, "Server-Timing");
    ASSERT_TRUE(st != NULL);
    /* W3C: metric *( OWS ";" OWS param ), comma separated; dur in milliseconds */
    ASSERT_TRUE(!strncmp(st, "total;dur=", 10));
    ASSERT_TRUE(strstr(st, ", sql;dur=0.6;desc=\"2 queries\", ") != NULL);
    ASSERT_TRUE(strstr(st, ", handler;dur=") && strstr(st, ", middleware;dur=") &&
                strstr(st, ", routing;dur="));
    ASSERT_STR(header(&hs, "X-Query-Count"), "2");
    ASSERT_STR(header(&hs, "X-Slow-Queries"), "0");
    ASSERT_TRUE(header(&hs, "X-N-Plus-One") == NULL);
    ASSERT_TRUE(header(&hs, "X-Query-Budget") == NULL);
    ASSERT_TRUE(nprof_current() == NULL); /* restored */
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(server_timing_durations_are_milliseconds)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/", NULL, NULL);
    nprof_mw_headers hs;
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1234567, 200, &hs, NULL, NULL));
    ASSERT_TRUE(strstr(header(&hs, "Server-Timing"), "sql;dur=1.234567;") != NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 45, 200, &hs, NULL, NULL));
    ASSERT_TRUE(strstr(header(&hs, "Server-Timing"), "sql;dur=0.000045;") != NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 2000000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(strstr(header(&hs, "Server-Timing"), "sql;dur=2;") != NULL);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(n_plus_one_header_is_quoted_and_sanitized)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/articles", NULL, NULL);
    nprof_mw_headers hs;
    /* CR, LF, quotes, a backslash, <script>, a NUL-free control byte and invalid UTF-8 */
    const char *sql = "SELECT \"a\\b\", '<script>alert(1)</script>\r\nX-Evil: 1' FROM t\x01\xff "
                      "WHERE id = 5";
    ASSERT_OK(run_request(mw, &r, sql, 6, 1000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(headers_clean(&hs));
    const char *np = header(&hs, "X-N-Plus-One");
    ASSERT_TRUE(np != NULL);
    ASSERT_TRUE(np[0] == '"');
    ASSERT_TRUE(strstr(np, "\";count=6") != NULL);
    ASSERT_TRUE(strstr(np, "\r") == NULL && strstr(np, "\n") == NULL);
    /* sf-string: every '"' and '\' inside is escaped */
    const char *end = strstr(np, "\";count=");
    for (const char *c = np + 1; c < end; c++) {
        if (*c == '\\') {
            ASSERT_TRUE(c[1] == '"' || c[1] == '\\');
            c++;
        } else {
            ASSERT_TRUE(*c != '"');
        }
    }
    ASSERT_STR(header(&hs, "X-Query-Count"), "6");
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* A call site of `len` bytes (NUL bytes allowed), for nprof_query.callsite. */
typedef struct fixed_site {
    const char *s;
    size_t len;
} fixed_site;

static size_t write_site(void *user, char *buf, size_t cap)
{
    const fixed_site *f = user;
    memcpy(buf, f->s, f->len < cap ? f->len : cap);
    return f->len; /* may be more than cap: the profile keeps cap */
}

/* One request with `shapes` query shapes of `per_shape` queries each, all from `site`. */
static int run_sited_request(nprof_mw *mw, int shapes, int per_shape, const fixed_site *site,
                             nprof_mw_headers *hs)
{
    nprof_mw_request r = req_of("GET", "/books", NULL, NULL);
    nprof_mw_state st;
    int rc = nprof_mw_request_begin(mw, &r, &st);
    if (rc)
        return rc;
    for (int k = 0; k < shapes; k++) {
        for (int i = 0; i < per_shape; i++) {
            char sql[96];
            int n = snprintf(sql, sizeof sql, "SELECT * FROM table_%d WHERE id = %d", k, i);
            nprof_query q = {.sql = sql, .sql_len = (size_t)n, .duration_ns = 1000,
                             .callsite = write_site, .callsite_user = (void *)site};
            nprof_sql_record(nprof_current(), &q);
        }
    }
    return nprof_mw_request_end(&st, 200, hs, NULL, NULL);
}

TEST(n_plus_one_header_names_the_call_site_as_a_parameter)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_headers hs;
    fixed_site site = {"views.py:42 \"x\\\"\n\0\xff", 19};
    ASSERT_OK(run_sited_request(mw, 1, 6, &site, &hs));
    ASSERT_TRUE(headers_clean(&hs));
    ASSERT_STR(header(&hs, "X-N-Plus-One"),
               "\"SELECT * FROM table_0 WHERE id = ?\";count=6;site=\"views.py:42 \\\"x\\\\\\\"???\"");
    /* 10 KB sites on many shapes: each cut at 120 bytes and marked, the header bounded. */
    static char big[10240];
    memset(big, 's', sizeof big);
    fixed_site huge = {big, sizeof big};
    ASSERT_OK(run_sited_request(mw, 8, 5, &huge, &hs));
    ASSERT_TRUE(headers_clean(&hs));
    const char *np = header(&hs, "X-N-Plus-One");
    ASSERT_TRUE(np != NULL);
    ASSERT_TRUE(strlen(np) <= 1024);
    char cut[160];
    snprintf(cut, sizeof cut, ";count=5;site=\"%.120s...\"", big);
    ASSERT_TRUE(strstr(np, cut) == np + strlen("\"SELECT * FROM table_0 WHERE id = ?\""));
    /* A site the recorder does not know adds no parameter. */
    fixed_site none = {"", 0};
    ASSERT_OK(run_sited_request(mw, 1, 6, &none, &hs));
    ASSERT_STR(header(&hs, "X-N-Plus-One"), "\"SELECT * FROM table_0 WHERE id = ?\";count=6");
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(slow_queries_are_counted_in_their_header)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/slow", NULL, NULL);
    nprof_mw_headers hs;
    ASSERT_OK(run_request(mw, &r, "SELECT pg_sleep(1)", 3, 2000000, 200, &hs, NULL, NULL));
    ASSERT_STR(header(&hs, "X-Slow-Queries"), "3");
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.slow_queries, 3);
    ASSERT_EQ_U64(t.requests, 1);
    ASSERT_EQ_U64(t.queries, 3);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* `r` goes through unauthorized, in no ?profile= mode, with no headers added: 0, or -1. */
static int served_unauthorized(nprof_mw *mw, const nprof_mw_request *r)
{
    nprof_mw_state st;
    nprof_mw_headers hs;
    if (nprof_mw_request_begin(mw, r, &st) != NPROF_OK)
        return -1;
    int plain = st.authorized == 0 && st.profile_mode == NPROF_MW_PROFILE_NONE;
    if (nprof_mw_request_end(&st, 200, &hs, NULL, NULL) != NPROF_OK)
        return -1;
    return plain && hs.count == 0 ? 0 : -1;
}

TEST(production_sends_no_headers_without_token)
{
    nprof_runtime *rt = make_runtime("production=1");
    nprof_mw *mw = make_mw_with_token(rt);
    nprof_mw_headers hs;
    /* no ?profile: nothing */
    nprof_mw_request r = req_of("GET", "/a", NULL, NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_EQ_INT(hs.count, 0);
    /* ?profile=1 without the token: ignored, served normally */
    r = req_of("GET", "/a", "profile=1", NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_EQ_INT(hs.count, 0);
    /* a wrong token, a prefix of it, a longer one: ignored */
    const char *wrong[] = {"profile=1&profile_token=s3cret-tokeX", "profile=1&profile_token=s3cret",
                           "profile=1&profile_token=s3cret-token2", "profile=1&profile_token="};
    for (int i = 0; i < 4; i++) {
        r = req_of("GET", "/a", wrong[i], NULL);
        ASSERT_OK(served_unauthorized(mw, &r));
    }
    /* the token in the query (percent-encoded) */
    r = req_of("GET", "/a", "x=1&profile=1&profile_token=s3cret%2Dtoken", NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(header(&hs, "X-Profile") != NULL);
    /* the token in the X-Profile-Token header */
    hdrs h = {.name = {"x-profile-token"}, .value = {"s3cret-token"}, .n = 1};
    /* without ?profile=, it is not looked for: the request's headers are not read */
    r = req_of("GET", "/a", NULL, &h);
    r.header = counting_lookup;
    header_reads = 0;
    ASSERT_OK(served_unauthorized(mw, &r));
    ASSERT_EQ_INT(header_reads, 0);
    r = req_of("GET", "/a", "profile=1", &h);
    r.header = counting_lookup;
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(header_reads > 0);
    ASSERT_TRUE(header(&hs, "X-Profile") != NULL);
    r = req_of("GET", "/a", "profile=1", &h);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(header(&hs, "X-Profile") != NULL);
    ASSERT_TRUE(header(&hs, "Server-Timing") != NULL);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(production_without_token_never_honours_profile)
{
    nprof_runtime *rt = make_runtime("production=1");
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_headers hs;
    nprof_mw_request r = req_of("GET", "/a", "profile=1&profile_token=", NULL);
    nprof_buf body = NPROF_BUF_INIT;
    int replaced = 0;
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, &body, &replaced));
    ASSERT_EQ_INT(hs.count, 0);
    r = req_of("GET", "/a", "profile=json", NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, &body, &replaced));
    ASSERT_EQ_INT(replaced, 0);
    ASSERT_EQ_INT(body.len, 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(profile_json_replaces_the_body)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_headers hs;
    nprof_buf body = NPROF_BUF_INIT;
    int replaced = 0;
    nprof_mw_request r = req_of("GET", "/users/3", "a=b&profile=json", NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 2, 1000, 200, &hs, &body, &replaced));
    ASSERT_EQ_INT(replaced, 1);
    ASSERT_TRUE(body.data && body.data[0] == '{');
    ASSERT_TRUE(strstr(body.data, "\"path\":\"/users/3\"") != NULL);
    ASSERT_TRUE(strstr(body.data, "\"route\":\"/users/{id}\"") != NULL);
    ASSERT_TRUE(strstr(body.data, "\"sql_count\":2") != NULL);
    nprof_buf_free(&body);
    /* an unknown value is not a request for profiling */
    r = req_of("GET", "/users/3", "profile=yes-please", NULL);
    replaced = 0;
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 2, 1000, 200, &hs, &body, &replaced));
    ASSERT_EQ_INT(replaced, 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(headers_mode_on_request_needs_profile_parameter)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.headers = NPROF_MW_HEADERS_ON_REQUEST;
    nprof_mw *mw = make_mw(rt, &o);
    nprof_mw_headers hs;
    nprof_mw_request r = req_of("GET", "/a", NULL, NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_EQ_INT(hs.count, 0);
    r = req_of("GET", "/a", "profile=1", NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(header(&hs, "X-Profile") != NULL);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(route_templates_from_default_and_user_rules)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_route_rule rules[] = {{.pattern = "^/blog/[a-z0-9-]+$", .replacement = "/blog/{slug}"}};
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.route_rules = rules;
    o.route_rule_count = 1;
    nprof_mw *mw = make_mw(rt, &o);
    ASSERT_TRUE(mw);
    char out[256];
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/users/17", "/users/{id}"},
        {"/users/18/posts/9", "/users/{id}/posts/{id}"},
        {"/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/{id}"},
        {"/blobs/deadbeefcafebabe0123", "/blobs/{id}"},
        {"/v1/items", "/v1/items"},
        {"/abc123/x", "/abc123/x"},
        {"/blog/hello-world", "/blog/{slug}"},
        {"/", "/"},
        {"/12ab", "/12ab"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        ASSERT_OK(nprof_mw_get_route_template(mw, cases[i].path, strlen(cases[i].path), out,
                                              sizeof out, &n));
        ASSERT_MEM_STR(out, n, cases[i].want);
    }
    /* Too small a buffer: NPROF_ERANGE with the size the template needs (without the NUL),
     * which then suffices; a NULL buffer with cap 0 only measures. */
    size_t need = 0;
    ASSERT_EQ_INT(nprof_mw_get_route_template(mw, "/users/18/posts/9", 17, out, 5, &need),
                  NPROF_ERANGE);
    ASSERT_EQ_U64(need, strlen("/users/{id}/posts/{id}"));
    need = 0;
    ASSERT_EQ_INT(nprof_mw_get_route_template(mw, "/users/18/posts/9", 17, NULL, 0, &need),
                  NPROF_ERANGE);
    ASSERT_EQ_U64(need, strlen("/users/{id}/posts/{id}"));
    char exact[sizeof "/users/{id}/posts/{id}"];
    ASSERT_OK(nprof_mw_get_route_template(mw, "/users/18/posts/9", 17, exact, need + 1, &need));
    ASSERT_STR(exact, "/users/{id}/posts/{id}");
    ASSERT_EQ_INT(nprof_mw_get_route_template(mw, "/x", 2, NULL, 8, &need), NPROF_EINVAL);
    /* two ids are one row */
    nprof_mw_headers hs;
    nprof_mw_request r = req_of("GET", "/users/17", NULL, NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    r = req_of("GET", "/users/18", NULL, NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 404, &hs, NULL, NULL));
    nprof_mw_route_stats s;
    ASSERT_OK(nprof_mw_get_route_stats(mw, "GET", 3, "/users/{id}", 11, &s));
    ASSERT_EQ_U64(s.count, 2);
    ASSERT_EQ_U64(s.status[2], 1);
    ASSERT_EQ_U64(s.status[4], 1);
    ASSERT_EQ_U64(s.queries, 2);
    ASSERT_EQ_INT(nprof_mw_get_route_stats(mw, "POST", 4, "/users/{id}", 11, &s), NPROF_ENOENT);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(framework_route_wins_over_rules)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/users/17", NULL, NULL);
    r.route = "/users/<int:pk>";
    r.route_len = strlen(r.route);
    nprof_mw_headers hs;
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    /* and one learnt after begin */
    nprof_mw_request r2 = req_of("GET", "/users/18", NULL, NULL);
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r2, &st));
    ASSERT_OK(nprof_mw_set_route(&st, "/users/<int:pk>", 15));
    ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, NULL, NULL));
    nprof_mw_route_stats s;
    ASSERT_OK(nprof_mw_get_route_stats(mw, "GET", 3, "/users/<int:pk>", 15, &s));
    ASSERT_EQ_U64(s.count, 2);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(budgets_flag_requests_over_them)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_budget budgets[] = {{.route = "GET /list", .max_queries = 3, .max_sql_ms = 0},
                                 {.route = "*", .max_queries = 0, .max_sql_ms = 1.0}};
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.budgets = budgets;
    o.budget_count = 2;
    nprof_mw *mw = make_mw(rt, &o);
    nprof_mw_headers hs;
    nprof_mw_request r = req_of("GET", "/list", NULL, NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 3, 1000, 200, &hs, NULL, NULL));
    ASSERT_TRUE(header(&hs, "X-Query-Budget") == NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 4, 1000, 200, &hs, NULL, NULL));
    ASSERT_STR(header(&hs, "X-Query-Budget"), "exceeded; queries=4/3");
    /* the "*" budget: SQL time */
    r = req_of("GET", "/other", NULL, NULL);
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 2, 600000, 200, &hs, NULL, NULL));
    ASSERT_STR(header(&hs, "X-Query-Budget"), "exceeded; sql_ms=1.2/1");
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.over_budget, 2);
    nprof_mw_route_stats s;
    ASSERT_OK(nprof_mw_get_route_stats(mw, "GET", 3, "/list", 5, &s));
    ASSERT_EQ_U64(s.over_budget, 1);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(sampling_keeps_one_in_n_and_every_interesting_request)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.sample_every = 10;
    nprof_mw *mw = make_mw(rt, &o);
    nprof_store *store = nprof_runtime_store(rt);
    nprof_mw_headers hs;
    nprof_mw_request r = req_of("GET", "/ok", NULL, NULL);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_EQ_U64(nprof_store_size(store), 10);
    /* failed, slow, N+1 and profiled requests are always kept */
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 500, &hs, NULL, NULL));
    ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 5000000, 200, &hs, NULL, NULL));
    ASSERT_OK(run_request(mw, &r, "SELECT * FROM a WHERE id = 1", 5, 1000, 200, &hs, NULL, NULL));
    nprof_mw_request rp = req_of("GET", "/ok", "profile=1", NULL);
    ASSERT_OK(run_request(mw, &rp, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_EQ_U64(nprof_store_size(store), 14);
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.requests, 104); /* every request is aggregated */
    ASSERT_EQ_U64(t.kept, 14);
    ASSERT_EQ_U64(t.errors, 1);
    ASSERT_EQ_U64(t.n_plus_one_patterns, 1);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(production_keeps_one_in_ten_by_default)
{
    nprof_runtime *rt = make_runtime("production=1");
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_headers hs;
    nprof_mw_request r = req_of("GET", "/ok", NULL, NULL);
    for (int i = 0; i < 50; i++)
        ASSERT_OK(run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL));
    ASSERT_EQ_U64(nprof_store_size(nprof_runtime_store(rt)), 5);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* One request of three queries with parameters: a fast one, a slow one (5 ms against the
 * 1 ms threshold) and a fast one that failed.  Returns the profile's `params` of each as a
 * bit (1, 2, 4: present) read back from the store, or -1 when it was not kept. */
static int params_kept(nprof_mw *mw, const char *query, int status)
{
    nprof_store *store = nprof_runtime_store(nprof_mw_runtime(mw));
    size_t before = nprof_store_size(store); /* far below max_history here */
    nprof_mw_request r = req_of("GET", "/p", query, NULL);
    nprof_mw_state st;
    nprof_mw_headers hs;
    if (nprof_mw_request_begin(mw, &r, &st))
        return -2;
    const uint64_t ns[3] = {1000, 5000000, 1000};
    for (int i = 0; i < 3; i++) {
        nprof_query q = {.sql = "SELECT * FROM t WHERE id = $1", .sql_len = 29,
                         .params = "id=7", .params_len = 4, .duration_ns = ns[i],
                         .error = i == 2 ? "boom" : NULL, .error_len = i == 2 ? 4 : 0};
        nprof_sql_record(st.profile, &q);
    }
    if (nprof_mw_request_end(&st, status, &hs, NULL, NULL))
        return -2;
    if (nprof_store_size(store) == before)
        return -1;
    nprof_snapshot *snap;
    if (nprof_store_snapshot(store, &snap))
        return -2;
    const nprof_profile *p = nprof_snapshot_get(snap, nprof_snapshot_count(snap) - 1);
    int bits = 0;
    for (size_t i = 0; i < 3; i++) {
        nprof_query_info qi;
        if (nprof_profile_get_query(p, i, &qi) == NPROF_OK && qi.params &&
            qi.params_len == 4 && memcmp(qi.params, "id=7", 4) == 0)
            bits |= 1 << i;
    }
    nprof_snapshot_release(snap);
    return bits;
}

/* Production mode builds parameter summaries only where someone may read them: the 1 in
 * sample_every requests the store keeps, and ?profile= ones; a request kept for being
 * interesting keeps them on its slow and failed queries.  Development keeps them all. */
TEST(production_keeps_parameters_only_of_requests_it_keeps)
{
    nprof_runtime *rt = make_runtime("production=1,slow_query_threshold_ms=1");
    nprof_mw *mw = make_mw_with_token(rt);
    int seen[8] = {0};
    for (int i = 0; i < 20; i++) {
        int bits = params_kept(mw, NULL, 500); /* a 500: always kept */
        ASSERT_TRUE(bits == 7 || bits == 6);
        seen[bits]++;
    }
    ASSERT_EQ_INT(seen[7], 2); /* the 1 in 10 the store keeps anyway */
    ASSERT_EQ_INT(seen[6], 18);
    ASSERT_EQ_INT(params_kept(mw, "profile=1&profile_token=s3cret-token", 200), 7);
    ASSERT_EQ_INT(params_kept(mw, "profile=json&profile_token=s3cret-token", 200), 7);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);

    rt = make_runtime("production=0,slow_query_threshold_ms=1");
    mw = make_mw(rt, NULL);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(params_kept(mw, NULL, 500), 7);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);

    /* Outside a middleware a profile keeps them; the switch and the question, NULL-safe. */
    ASSERT_EQ_INT(nprof_profile_wants_params(NULL, 0, 0), 1);
    ASSERT_TRUE(nprof_profile_params_from_ns(NULL) == 0);
    nprof_profile_set_param_summaries(NULL, 0);

    /* The answer as a duration (what a hook reads once per request) agrees with the
     * question at the threshold, on both sides of it. */
    rt = make_runtime("slow_query_threshold_ms=1");
    nprof_profile *p;
    ASSERT_EQ_INT(nprof_request_begin(rt, "GET", 3, "/p", 2, 0, &p), NPROF_OK);
    ASSERT_TRUE(nprof_profile_params_from_ns(p) == 0);
    ASSERT_EQ_INT(nprof_profile_wants_params(p, 0, 0), 1);
    nprof_profile_set_param_summaries(p, 0);
    ASSERT_TRUE(nprof_profile_params_from_ns(p) == 1000001);
    ASSERT_EQ_INT(nprof_profile_wants_params(p, 1000000, 0), 0);
    ASSERT_EQ_INT(nprof_profile_wants_params(p, 1000001, 0), 1);
    ASSERT_EQ_INT(nprof_profile_wants_params(p, 0, 1), 1);
    nprof_profile_set_param_summaries(p, 1);
    ASSERT_TRUE(nprof_profile_params_from_ns(p) == 0);
    ASSERT_EQ_INT(nprof_request_end(p, 200), NPROF_OK);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* Begins a request with `query`, returns whether its stacks are to be sampled (and its
 * mode in *mode), and ends it. */
static int flame_asked(nprof_mw *mw, const char *query, hdrs *h, int *mode, size_t *headers)
{
    nprof_mw_request r = req_of("GET", "/a", query, h);
    nprof_mw_state st;
    nprof_mw_headers hs;
    if (nprof_mw_request_begin(mw, &r, &st))
        return -1;
    int sample = st.sample_stacks;
    *mode = st.profile_mode;
    char want[128];
    nprof_profile_info in;
    nprof_profile_get_info(st.profile, &in);
    snprintf(want, sizeof want, "/debug/performance/requests/%.*s/flame.svg",
             (int)in.request_id_len, in.request_id);
    nprof_mw_request_end(&st, 200, &hs, NULL, NULL);
    *headers = hs.count;
    const char *flame = header(&hs, "X-Profile-Flame");
    /* the flame graph's address comes with ?profile=flame, and only then */
    if (*mode == NPROF_MW_PROFILE_FLAME ? !flame || strcmp(flame, want) : flame != NULL)
        return -1;
    return sample;
}

TEST(profile_flame_samples_stacks_with_the_token_rules_of_profile)
{
    int mode;
    size_t headers;
    /* development: asked for, headers as for ?profile=1, stacks sampled */
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    ASSERT_EQ_INT(flame_asked(mw, "profile=flame", NULL, &mode, &headers), 1);
    ASSERT_EQ_INT(mode, NPROF_MW_PROFILE_FLAME);
    ASSERT_TRUE(headers >= 4);
    ASSERT_EQ_INT(flame_asked(mw, "profile=1", NULL, &mode, &headers), 0);
    ASSERT_EQ_INT(flame_asked(mw, "profile=flames", NULL, &mode, &headers), 0);
    ASSERT_EQ_INT(flame_asked(mw, NULL, NULL, &mode, &headers), 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
    /* production: only with the token */
    rt = make_runtime("production=1");
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.token = "s3cret-token";
    o.sample_every = UINT32_MAX; /* no ordinary request kept */
    mw = make_mw(rt, &o);
    ASSERT_EQ_INT(flame_asked(mw, "profile=flame", NULL, &mode, &headers), 0);
    ASSERT_EQ_INT(mode, NPROF_MW_PROFILE_NONE);
    ASSERT_EQ_U64(headers, 0);
    ASSERT_EQ_INT(flame_asked(mw, "profile=flame&profile_token=wrong", NULL, &mode, &headers), 0);
    ASSERT_EQ_INT(flame_asked(mw, "profile=flame&profile_token=s3cret-token", NULL, &mode,
                              &headers), 1);
    ASSERT_EQ_INT(mode, NPROF_MW_PROFILE_FLAME);
    ASSERT_TRUE(headers >= 4);
    hdrs h = {.name = {"X-Profile-Token"}, .value = {"s3cret-token"}, .n = 1};
    ASSERT_EQ_INT(flame_asked(mw, "profile=flame", &h, &mode, &headers), 1);
    /* a sampled request is kept for its flame graph, whatever sample_every says */
    ASSERT_EQ_U64(nprof_store_size(nprof_runtime_store(rt)), 2);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(stack_sample_every_picks_one_request_in_n)
{
    int mode;
    size_t headers;
    nprof_runtime *rt = make_runtime("stack_sample_every=4,production=1");
    nprof_mw *mw = make_mw(rt, NULL);
    int picked = 0;
    for (int i = 0; i < 100; i++) {
        int s = flame_asked(mw, NULL, NULL, &mode, &headers);
        ASSERT_TRUE(s == 0 || s == 1);
        ASSERT_EQ_INT(mode, NPROF_MW_PROFILE_NONE);
        ASSERT_EQ_U64(headers, 0); /* picked for sampling asks for no headers */
        picked += s;
    }
    ASSERT_EQ_INT(picked, 25);
    /* picked ones are kept: 25, plus 1 in 10 of the rest at most */
    ASSERT_U64_OP(nprof_store_size(nprof_runtime_store(rt)), >=, 25);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
    /* off by default */
    rt = make_runtime(NULL);
    mw = make_mw(rt, NULL);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ_INT(flame_asked(mw, NULL, NULL, &mode, &headers), 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(explicit_handles_work_without_current)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.set_current = 0;
    nprof_mw *mw = make_mw(rt, &o);
    /* two requests interleaved on one thread, as an event loop runs them */
    nprof_mw_request r1 = req_of("GET", "/a/1", NULL, NULL), r2 = req_of("POST", "/b", NULL, NULL);
    nprof_mw_state s1, s2;
    ASSERT_OK(nprof_mw_request_begin(mw, &r1, &s1));
    ASSERT_OK(nprof_mw_request_begin(mw, &r2, &s2));
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_query q = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 10};
    ASSERT_OK(nprof_sql_record(s1.profile, &q));
    ASSERT_OK(nprof_sql_record(s2.profile, &q));
    ASSERT_OK(nprof_sql_record(s2.profile, &q));
    ASSERT_OK(nprof_mw_mark_phase(&s2, NPROF_PHASE_HANDLER));
    nprof_mw_headers h1, h2;
    ASSERT_OK(nprof_mw_request_end(&s2, 201, &h2, NULL, NULL));
    ASSERT_OK(nprof_mw_request_end(&s1, 200, &h1, NULL, NULL));
    ASSERT_STR(header(&h1, "X-Query-Count"), "1");
    ASSERT_STR(header(&h2, "X-Query-Count"), "2");
    ASSERT_TRUE(s1.profile == NULL && s2.profile == NULL);
    ASSERT_EQ_INT(nprof_mw_request_end(&s1, 200, &h1, NULL, NULL), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(h1.count, 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(phase_marks_make_one_span_each_and_close_what_they_cross)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/phases", NULL, NULL);
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    nprof_profile *p = st.profile;
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING));
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER));
    int render = nprof_span_begin(p, "render", 6);
    ASSERT_TRUE(render >= 0);
    /* A span still open inside the handler: the mark closes it with its phase. */
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_MIDDLEWARE));
    nprof_span_info s[5];
    for (int i = 0; i < 5; i++)
        ASSERT_OK(nprof_profile_get_span(p, (size_t)i, &s[i]));
    ASSERT_EQ_INT(nprof_profile_get_span(p, 5, &s[0]), NPROF_ENOENT);
    int phases[5] = {NPROF_PHASE_MIDDLEWARE, NPROF_PHASE_ROUTING, NPROF_PHASE_HANDLER, -1,
                     NPROF_PHASE_MIDDLEWARE};
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ_INT(s[i].phase, phases[i]);
        ASSERT_EQ_INT(s[i].parent, i == 3 ? 2 : NPROF_SPAN_ROOT);
    }
    ASSERT_MEM_STR(s[1].name, s[1].name_len, "routing");
    ASSERT_EQ_INT(s[3].unclosed, 1);
    ASSERT_EQ_INT(s[2].unclosed, 0);
    ASSERT_EQ_U64(s[4].duration_ns, 0); /* still running */
    /* A mark from the phase running innermost begins the next at the tick the first ended
     * (1 ns of rounding); across an open span it ends and begins in two steps. */
    for (int i = 1; i < 3; i++) {
        uint64_t ended = s[i - 1].start_offset_ns + s[i - 1].duration_ns;
        ASSERT_TRUE(s[i].start_offset_ns + 1 >= ended && s[i].start_offset_ns <= ended + 1);
    }
    ASSERT_TRUE(s[4].start_offset_ns + 1 >= s[2].start_offset_ns + s[2].duration_ns);
    /* Each phase's time is its span's (one phase running at a time here). */
    nprof_profile_info info;
    ASSERT_OK(nprof_profile_get_info(p, &info));
    ASSERT_TRUE(info.routing_ns + 1 >= s[1].duration_ns && info.routing_ns <= s[1].duration_ns + 1);
    ASSERT_TRUE(info.handler_ns + 1 >= s[2].duration_ns && info.handler_ns <= s[2].duration_ns + 1);
    nprof_mw_headers hs;
    ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, NULL, NULL));
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* A mark whose span cannot be kept (max_spans) still moves the phases and their time on; a
 * mark from a phase that is not the innermost closes what runs inside it. */
TEST(phase_marks_past_the_span_limit_and_across_nested_phases)
{
    nprof_runtime *rt = make_runtime("max_spans=2");
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/limit", NULL, NULL);
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    nprof_profile *p = st.profile;
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING));  /* span 1: the last kept */
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER));  /* no room: no span */
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_MIDDLEWARE));
    nprof_profile_info in;
    ASSERT_OK(nprof_profile_get_info(p, &in));
    ASSERT_EQ_U64(in.span_count, 2);
    ASSERT_EQ_U64(in.spans_dropped, 2);
    nprof_span_info s1;
    ASSERT_OK(nprof_profile_get_span(p, 1, &s1));
    ASSERT_EQ_INT(s1.phase, NPROF_PHASE_ROUTING);
    ASSERT_EQ_INT(s1.parent, NPROF_SPAN_ROOT);
    /* The routing phase ended with its span at the mark whose span was dropped. */
    ASSERT_EQ_INT(s1.unclosed, 0);
    ASSERT_TRUE(in.routing_ns + 1 >= s1.duration_ns && in.routing_ns <= s1.duration_ns + 1);
    nprof_mw_headers hs;
    ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, NULL, NULL));
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);

    rt = make_runtime(NULL);
    mw = make_mw(rt, NULL);
    r = req_of("GET", "/nested", NULL, NULL);
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    p = st.profile;
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER));
    /* A routing phase begun inside the handler by hand: the next mark, from the handler,
     * ends both, and the middleware phase begins at the top level again. */
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_ROUTING));
    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_MIDDLEWARE));
    nprof_span_info s[4];
    for (int i = 0; i < 4; i++)
        ASSERT_OK(nprof_profile_get_span(p, (size_t)i, &s[i]));
    int phases[4] = {NPROF_PHASE_MIDDLEWARE, NPROF_PHASE_HANDLER, NPROF_PHASE_ROUTING,
                     NPROF_PHASE_MIDDLEWARE};
    int parents[4] = {NPROF_SPAN_ROOT, NPROF_SPAN_ROOT, 1, NPROF_SPAN_ROOT};
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ_INT(s[i].phase, phases[i]);
        ASSERT_EQ_INT(s[i].parent, parents[i]);
    }
    ASSERT_EQ_INT(s[2].unclosed, 1); /* closed by the handler's end around it */
    ASSERT_EQ_U64(s[3].duration_ns, 0); /* still running */
    ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, NULL, NULL));
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(current_profile_is_restored_after_nested_use)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_profile *outer;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/outer", 6, 0, &outer));
    nprof_current_set(outer);
    nprof_mw_request r = req_of("GET", "/inner", NULL, NULL);
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    ASSERT_TRUE(nprof_current() == st.profile);
    nprof_mw_headers hs;
    ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, NULL, NULL));
    ASSERT_TRUE(nprof_current() == outer);
    nprof_current_set(NULL);
    nprof_request_discard(outer);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(response_headers_go_out_before_the_body_and_grow_with_the_request)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/stream", NULL, NULL);
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    /* 2 ms spun, at least 1 ms asserted: the spin is timed by CLOCK_MONOTONIC and the headers
     * by the TSC, whose conversion may differ by parts per million.  Waiting only adds. */
    test_spin_ns(2000000);
    nprof_mw_headers h1, h2;
    ASSERT_EQ_INT(nprof_mw_get_response_headers(NULL, 200, &h1), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_mw_get_response_headers(&st, 200, NULL), NPROF_EINVAL);
    ASSERT_OK(nprof_mw_get_response_headers(&st, 200, &h1));
    ASSERT_TRUE(headers_clean(&h1));
    ASSERT_TRUE(header(&h1, "X-Profile") != NULL);
    ASSERT_STR(header(&h1, "X-Query-Count"), "0");
    /* the open phase (middleware) counts up to now, and the total covers it */
    ASSERT_TRUE(timing_ms(&h1, "middleware") >= 1.0);
    ASSERT_TRUE(timing_ms(&h1, "total") >= timing_ms(&h1, "middleware"));
    ASSERT_TRUE(totals_cover_phases(&h1));
    /* the request goes on: still current, not ended, no total of its own yet */
    ASSERT_TRUE(nprof_current() == st.profile);
    nprof_profile_info info;
    ASSERT_OK(nprof_profile_get_info(st.profile, &info));
    ASSERT_EQ_INT(info.ended, 0);
    ASSERT_EQ_U64(info.total_ns, 0);

    ASSERT_OK(nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER));
    /* The middleware phase is closed now: its figure stays what it is from here on. */
    nprof_profile_info closed;
    ASSERT_OK(nprof_profile_get_info(st.profile, &closed));
    nprof_query q = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000};
    ASSERT_OK(nprof_sql_record(nprof_current(), &q));
    test_spin_ns(2000000);
    ASSERT_OK(nprof_mw_get_response_headers(&st, 200, &h2));
    ASSERT_STR(header(&h2, "X-Query-Count"), "1");
    ASSERT_TRUE(timing_ms(&h2, "total") > timing_ms(&h1, "total"));
    ASSERT_TRUE(timing_ms(&h2, "handler") >= 1.0);
    ASSERT_TRUE(totals_cover_phases(&h2));
    /* asking again did not count the open phase twice: the header shows the closed phase
     * exactly (Server-Timing has nanosecond digits), whatever the machine's load */
    ASSERT_TRUE(timing_ms(&h2, "middleware") >= timing_ms(&h1, "middleware"));
    ASSERT_TRUE(fabs(timing_ms(&h2, "middleware") * 1e6 - (double)closed.middleware_ns) < 1.0);

    /* the body streams on; end aggregates the whole request, headers already sent */
    ASSERT_OK(nprof_sql_record(nprof_current(), &q));
    test_spin_ns(1000000);
    ASSERT_OK(nprof_mw_request_end(&st, 200, NULL, NULL, NULL));
    nprof_mw_route_stats rs;
    ASSERT_OK(nprof_mw_get_route_stats(mw, "GET", 3, "/stream", 7, &rs));
    ASSERT_EQ_U64(rs.count, 1);
    ASSERT_EQ_U64(rs.queries, 2);
    ASSERT_U64_OP(rs.total_ns, >=, 3000000);
    ASSERT_TRUE((double)rs.total_ns > timing_ms(&h2, "total") * 1e6);
    ASSERT_EQ_INT(nprof_mw_get_response_headers(&st, 200, &h2), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(h2.count, 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(response_headers_follow_the_header_mode)
{
    nprof_mw_state st;
    nprof_mw_headers hs;
    nprof_runtime *rt = make_runtime("production=1");
    nprof_mw *mw = make_mw_with_token(rt);
    const char *queries[] = {NULL, "profile=1", "profile=1&profile_token=wrong"};
    for (int i = 0; i < 3; i++) {
        nprof_mw_request r = req_of("GET", "/a", queries[i], NULL);
        ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
        ASSERT_OK(nprof_mw_get_response_headers(&st, 200, &hs));
        ASSERT_EQ_INT(hs.count, 0); /* production without the token: none */
        ASSERT_OK(nprof_mw_request_end(&st, 200, NULL, NULL, NULL));
    }
    hdrs h = {.name = {"X-Profile-Token"}, .value = {"s3cret-token"}, .n = 1};
    nprof_mw_request r = req_of("GET", "/a", "profile=1", &h);
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    ASSERT_OK(nprof_mw_get_response_headers(&st, 200, &hs));
    ASSERT_TRUE(header(&hs, "X-Profile") != NULL && header(&hs, "Server-Timing") != NULL);
    ASSERT_OK(nprof_mw_request_end(&st, 200, NULL, NULL, NULL));
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(response_headers_of_a_profile_json_request_leave_the_body_to_end)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/users/3", "profile=json", NULL);
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    ASSERT_EQ_INT(st.profile_mode, NPROF_MW_PROFILE_JSON);
    nprof_query q = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000};
    ASSERT_OK(nprof_sql_record(nprof_current(), &q));
    nprof_mw_headers hs;
    ASSERT_OK(nprof_mw_get_response_headers(&st, 200, &hs));
    ASSERT_STR(header(&hs, "X-Query-Count"), "1");
    ASSERT_TRUE(totals_cover_phases(&hs));
    nprof_buf body = NPROF_BUF_INIT;
    int replaced = 0;
    ASSERT_OK(nprof_mw_request_end(&st, 200, NULL, &body, &replaced));
    ASSERT_EQ_INT(replaced, 1);
    ASSERT_TRUE(body.data && strstr(body.data, "\"sql_count\":1") != NULL);
    ASSERT_TRUE(strstr(body.data, "\"route\":\"/users/{id}\"") != NULL);
    nprof_buf_free(&body);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(disabled_runtime_costs_nothing_and_adds_nothing)
{
    nprof_runtime *rt = make_runtime("enabled=0");
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("GET", "/a", "profile=1", NULL);
    nprof_mw_state st;
    ASSERT_EQ_INT(nprof_mw_request_begin(mw, &r, &st), NPROF_ENOPROFILE);
    ASSERT_TRUE(st.profile == NULL);
    ASSERT_EQ_INT(nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER), NPROF_ENOPROFILE);
    nprof_mw_headers hs;
    ASSERT_EQ_INT(nprof_mw_request_end(&st, 200, &hs, NULL, NULL), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(hs.count, 0);
    ASSERT_EQ_INT(nprof_mw_request_begin(NULL, &r, &st), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_mw_request_begin(mw, NULL, &st), NPROF_EINVAL);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(routes_beyond_the_limit_go_to_other)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.max_routes = 3;
    nprof_mw *mw = make_mw(rt, &o);
    nprof_mw_headers hs;
    char path[32];
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof path, "/r%c", 'a' + i);
        nprof_mw_request r = req_of("GET", path, NULL, NULL);
        ASSERT_OK(run_request(mw, &r, "SELECT 1", 0, 0, 200, &hs, NULL, NULL));
    }
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.routes, 3);
    ASSERT_EQ_U64(t.requests, 10);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* A request with `method` (len bytes, any bytes) on /items. */
static int request_with_method(nprof_mw *mw, const char *method, size_t len)
{
    nprof_mw_request r = req_of("GET", "/items", NULL, NULL);
    r.method = method;
    r.method_len = len;
    nprof_mw_headers hs;
    return run_request(mw, &r, "SELECT 1", 1, 1000, 200, &hs, NULL, NULL);
}

static uint64_t row_count(nprof_mw *mw, const char *method, const char *route)
{
    nprof_mw_route_stats rs;
    int rc = nprof_mw_get_route_stats(mw, method, strlen(method), route, strlen(route), &rs);
    return rc == NPROF_OK ? rs.count : 0;
}

TEST(standard_methods_each_keep_their_row)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE",
                                          "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    for (size_t i = 0; i < 9; i++)
        ASSERT_OK(request_with_method(mw, methods[i], strlen(methods[i])));
    for (size_t i = 0; i < 9; i++)
        ASSERT_EQ_U64(row_count(mw, methods[i], "/items"), 1);
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.routes, 9);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(made_up_methods_share_one_row_and_leave_room_for_real_routes)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.max_routes = 3;
    nprof_mw *mw = make_mw(rt, &o);
    /* Methods are case-sensitive (RFC 9110 9.1): "get" is not GET.  Extension methods,
     * random bytes (NUL, CR LF, non-ASCII), an empty and a 4 KiB method: all one row. */
    char long_method[4096];
    memset(long_method, 'X', sizeof long_method);
    ASSERT_OK(request_with_method(mw, "get", 3));
    ASSERT_OK(request_with_method(mw, "PROPFIND", 8));
    ASSERT_OK(request_with_method(mw, "GET ", 4));
    ASSERT_OK(request_with_method(mw, "G\0T", 3));
    ASSERT_OK(request_with_method(mw, "GET\r\nX-Evil: 1", 15));
    ASSERT_OK(request_with_method(mw, "", 0));
    ASSERT_OK(request_with_method(mw, long_method, sizeof long_method));
    uint64_t seed = 7;
    for (int i = 0; i < 500; i++) {
        char m[24];
        size_t len = 1 + (size_t)i % sizeof m;
        for (size_t k = 0; k < len; k++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            m[k] = (char)(seed >> 56);
        }
        ASSERT_OK(request_with_method(mw, m, len));
    }
    ASSERT_EQ_U64(row_count(mw, NPROF_MW_OTHER_METHOD, "/items"), 507);
    ASSERT_EQ_INT(nprof_mw_get_route_stats(mw, "get", 3, "/items", 6, &(nprof_mw_route_stats){0}),
                  NPROF_ENOENT);
    /* The table still has room: real requests get rows of their own, not "{other}". */
    ASSERT_OK(request_with_method(mw, "GET", 3));
    ASSERT_OK(request_with_method(mw, "POST", 4));
    ASSERT_EQ_U64(row_count(mw, "GET", "/items"), 1);
    ASSERT_EQ_U64(row_count(mw, "POST", "/items"), 1);
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.routes, 3);
    ASSERT_EQ_U64(t.requests, 509);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(profile_keeps_the_method_the_row_folds)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = make_mw(rt, NULL);
    nprof_mw_request r = req_of("get", "/items", "profile=json", NULL);
    r.method = "get\n\"x";
    r.method_len = 6;
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    nprof_profile_info in;
    ASSERT_OK(nprof_profile_get_info(st.profile, &in));
    ASSERT_MEM_STR(in.method, in.method_len, "get\n\"x");
    nprof_buf body = NPROF_BUF_INIT;
    nprof_mw_headers hs;
    int replaced = 0;
    ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, &body, &replaced));
    ASSERT_EQ_INT(replaced, 1);
    ASSERT_TRUE(headers_clean(&hs));
    ASSERT_TRUE(strstr(body.data, "\"method\":\"get\\n\\\"x\"") != NULL);
    ASSERT_EQ_U64(row_count(mw, NPROF_MW_OTHER_METHOD, "/items"), 1);
    nprof_buf_free(&body);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(random_bytes_never_reach_a_header_unsanitized)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=0.001");
    nprof_mw_budget any = {.route = "*", .max_queries = 1, .max_sql_ms = 0};
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.budgets = &any;
    o.budget_count = 1;
    nprof_mw *mw = make_mw(rt, &o);
    uint64_t seed = 42;
    for (int round = 0; round < 300; round++) {
        char sql[300], path[64];
        size_t len = 1 + (size_t)(round * 7 % 299);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            sql[i] = (char)(seed >> 56);
        }
        for (size_t i = 0; i < sizeof path - 1; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            path[i] = (char)(seed >> 56) | 1; /* no NUL: the path is a C string here */
        }
        path[0] = '/';
        path[sizeof path - 1] = '\0';
        nprof_mw_request r = req_of("GET", path, NULL, NULL);
        nprof_mw_state st;
        ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
        for (int q = 0; q < 6; q++) {
            nprof_query qq = {.sql = sql, .sql_len = len, .params = sql, .params_len = len / 2,
                              .duration_ns = 5000};
            nprof_sql_record(st.profile, &qq);
        }
        nprof_mw_headers hs;
        ASSERT_OK(nprof_mw_request_end(&st, 200, &hs, NULL, NULL));
        ASSERT_TRUE(headers_clean(&hs));
        ASSERT_TRUE(header(&hs, "X-Query-Budget") != NULL);
        ASSERT_STR(header(&hs, "X-Slow-Queries"), "6");
    }
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(options_have_the_documented_defaults);
    RUN(create_refuses_bad_options);
    RUN(development_request_gets_every_header);
    RUN(server_timing_durations_are_milliseconds);
    RUN(n_plus_one_header_is_quoted_and_sanitized);
    RUN(n_plus_one_header_names_the_call_site_as_a_parameter);
    RUN(slow_queries_are_counted_in_their_header);
    RUN(production_sends_no_headers_without_token);
    RUN(production_without_token_never_honours_profile);
    RUN(profile_json_replaces_the_body);
    RUN(headers_mode_on_request_needs_profile_parameter);
    RUN(route_templates_from_default_and_user_rules);
    RUN(framework_route_wins_over_rules);
    RUN(budgets_flag_requests_over_them);
    RUN(sampling_keeps_one_in_n_and_every_interesting_request);
    RUN(production_keeps_one_in_ten_by_default);
    RUN(profile_flame_samples_stacks_with_the_token_rules_of_profile);
    RUN(stack_sample_every_picks_one_request_in_n);
    RUN(production_keeps_parameters_only_of_requests_it_keeps);
    RUN(explicit_handles_work_without_current);
    RUN(phase_marks_make_one_span_each_and_close_what_they_cross);
    RUN(phase_marks_past_the_span_limit_and_across_nested_phases);
    RUN(current_profile_is_restored_after_nested_use);
    RUN(response_headers_go_out_before_the_body_and_grow_with_the_request);
    RUN(response_headers_follow_the_header_mode);
    RUN(response_headers_of_a_profile_json_request_leave_the_body_to_end);
    RUN(disabled_runtime_costs_nothing_and_adds_nothing);
    RUN(routes_beyond_the_limit_go_to_other);
    RUN(standard_methods_each_keep_their_row);
    RUN(made_up_methods_share_one_row_and_leave_room_for_real_routes);
    RUN(profile_keeps_the_method_the_row_folds);
    RUN(random_bytes_never_reach_a_header_unsanitized);
    return TEST_SUMMARY();
}
