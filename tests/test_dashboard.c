/*
 * tests/test_dashboard.c: what nprof_mw_handle() serves: routing below dashboard_path, the
 * security headers, the JSON document (valid for hostile input, with the reference keys),
 * the HTML page (escaped, nonce-protected), the Prometheus exposition checked by a parser
 * written from the text-format specification, the flame graphs and the trace.
 */
#include <ctype.h>
#include <stdlib.h>
#include <time.h>

#include "json_check.h"
#include "nprof_test.h"
#include "test.h"

#include "nanoprof/middleware.h"

static const char HOSTILE[] = "SELECT '</script><script>alert(1)</script>', \"q\\\"\" FROM "
                              "t WHERE a = '\r\n\x01\xff\xfe & <b>' AND id = 7";

static nprof_mw_request req_of(const char *method, const char *path, const char *query)
{
    return (nprof_mw_request){.method = method, .method_len = strlen(method), .path = path,
                              .path_len = strlen(path), .query = query,
                              .query_len = query ? strlen(query) : 0, .route = NULL,
                              .route_len = 0, .header = NULL, .user = NULL, .start_ticks = 0};
}

static const char *resp_header(const nprof_mw_response *r, const char *name)
{
    for (size_t i = 0; i < r->headers.count; i++)
        if (!strcmp(r->headers.items[i].name, name))
            return r->headers.items[i].value;
    return NULL;
}

/* A hostile call site, as a recorder's callback gives it. */
static size_t hostile_site(void *user, char *buf, size_t cap)
{
    static const char site[] = "</script><b>views.py:9 \"x\"\n\xff</b>";
    (void)user;
    memcpy(buf, site, sizeof site - 1 < cap ? sizeof site - 1 : cap);
    return sizeof site - 1;
}

/* Runs a few requests, one with hostile SQL, path and call site, some N+1 and slow. */
static void traffic(nprof_mw *mw)
{
    static const char *paths[] = {"/users/1", "/users/2", "/articles", "/<script>alert(1)</script>/\xff\"x\\",
                                  "/orders/550e8400-e29b-41d4-a716-446655440000"};
    for (int i = 0; i < 25; i++) {
        const char *path = paths[i % 5];
        nprof_mw_request r = req_of(i % 3 ? "GET" : "POST", path, NULL);
        nprof_mw_state st;
        if (nprof_mw_request_begin(mw, &r, &st))
            continue;
        nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING);
        nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
        int id = nprof_span_begin_static(st.profile, "render;\nframe", 13);
        for (int q = 0; q < 1 + i % 7; q++) {
            nprof_query qq = {.sql = HOSTILE, .sql_len = sizeof HOSTILE - 1,
                              .duration_ns = i % 4 == 0 ? 3000000 : 20000,
                              .callsite = hostile_site};
            nprof_sql_record(st.profile, &qq);
        }
        nprof_span_end(st.profile, id);
        nprof_mw_headers hs;
        nprof_mw_request_end(&st, i % 10 == 9 ? 503 : 200, &hs, NULL, NULL);
    }
}

static nprof_mw *setup(nprof_runtime **rt_out, const char *conf, const char *token)
{
    nprof_runtime *rt = make_runtime(conf);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.token = token;
    nprof_mw *mw = NULL;
    if (!rt || nprof_mw_create(rt, &o, &mw))
        return NULL;
    *rt_out = rt;
    traffic(mw);
    return mw;
}

static int serve(nprof_mw *mw, const char *method, const char *path, const char *query,
                 nprof_mw_response *out)
{
    nprof_mw_request r = req_of(method, path, query);
    return nprof_mw_handle(mw, &r, out);
}

TEST(paths_outside_the_dashboard_are_not_handled)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, "slow_query_threshold_ms=1", NULL);
    ASSERT_TRUE(mw);
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/users/1", NULL, &resp), 0);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performancex", NULL, &resp), 0);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug", NULL, &resp), 0);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/nope", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 404);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "POST", "/debug/performance/json", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 405);
    ASSERT_STR(resp_header(&resp, "Allow"), "GET, HEAD");
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "HEAD", "/debug/performance/json", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_EQ_INT(resp.body.len, 0);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(json_has_reference_keys_and_is_valid_for_hostile_input)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, "slow_query_threshold_ms=1", NULL);
    ASSERT_TRUE(mw);
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/json", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_STR(resp.content_type, "application/json");
    size_t where = 0;
    if (!json_check(resp.body.data, resp.body.len, &where))
        fprintf(stderr, "invalid JSON at %zu: %.60s\n", where, resp.body.data + where);
    ASSERT_TRUE(json_check(resp.body.data, resp.body.len, &where));
    static const char *keys[] = {"\"total_requests\":25", "\"total_queries\":",
                                 "\"avg_queries_per_request\":", "\"slow_query_count\":",
                                 "\"n_plus_one_count\":1", "\"recent_slow_queries\":[{\"sql\":",
                                 "\"duration_ms\":3.000", "\"recent_n_plus_one\":[\"SELECT",
                                 "\"routes\":[", "\"route\":\"/users/{id}\"", "\"p99_ms\":",
                                 "\"memory\":{\"bytes\":", "\"clock\":{\"source\":",
                                 "\"slowest_requests\":[", "\"n_plus_one_patterns\":[",
                                 "\"status\":{\"2xx\":",
                                 "\"callsite\":\"\\u003c/script\\u003e\\u003cb\\u003eviews.py:9 "
                                 "\\\"x\\\"\\n\xEF\xBF\xBD\\u003c/b\\u003e\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!strstr(resp.body.data, keys[i]))
            fprintf(stderr, "missing %s\n", keys[i]);
        ASSERT_TRUE(strstr(resp.body.data, keys[i]) != NULL);
    }
    /* Slow queries keep their call site; N+1 patterns the one of their shape's first query. */
    const char *site = "\"callsite\":\"\\u003c/script\\u003e";
    const char *slow = strstr(resp.body.data, "\"recent_slow_queries\":[{");
    ASSERT_TRUE(slow && strstr(slow, site) && strstr(slow, site) < strchr(slow, ']'));
    const char *np = strstr(resp.body.data, "\"n_plus_one_patterns\":[{");
    ASSERT_TRUE(np && strstr(np, site) && strstr(np, site) < strchr(np, ']'));
    /* nothing that could close a <script> or start markup */
    ASSERT_TRUE(strstr(resp.body.data, "</script") == NULL);
    ASSERT_TRUE(strchr(resp.body.data, '<') == NULL);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(html_is_self_contained_escaped_and_nonce_protected)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, "slow_query_threshold_ms=1", NULL);
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_STR(resp.content_type, "text/html; charset=utf-8");
    const char *csp = resp_header(&resp, "Content-Security-Policy");
    ASSERT_TRUE(csp && strstr(csp, "default-src 'none'") && strstr(csp, "script-src 'nonce-"));
    ASSERT_TRUE(strstr(csp, "unsafe-inline") == NULL);
    ASSERT_STR(resp_header(&resp, "X-Content-Type-Options"), "nosniff");
    /* the nonce in the header is the one in the page */
    const char *n = strstr(csp, "'nonce-") + 7;
    char nonce[64];
    size_t nl = strcspn(n, "'");
    ASSERT_TRUE(nl == 32);
    memcpy(nonce, n, nl);
    nonce[nl] = '\0';
    char attr[96];
    snprintf(attr, sizeof attr, "<script nonce=\"%s\">", nonce);
    const char *page = resp.body.data;
    ASSERT_TRUE(strstr(page, attr) != NULL);
    /* no external anything, no placeholder left, the hostile text never as markup */
    ASSERT_TRUE(strstr(page, "src=\"http") == NULL && strstr(page, "href=\"http") == NULL);
    ASSERT_TRUE(strstr(page, "{{") == NULL);
    ASSERT_TRUE(strstr(page, "<script>alert") == NULL);
    ASSERT_TRUE(strstr(page, "<b>") == NULL);
    ASSERT_TRUE(strstr(page, "<th data-key=\"callsite\">Call site</th>") != NULL);
    /* exactly two script elements: the data and the code */
    int scripts = 0;
    for (const char *p = page; (p = strstr(p, "<script")) != NULL; p++)
        scripts++;
    ASSERT_EQ_INT(scripts, 2);
    nprof_mw_response_free(&resp);
    /* two responses, two nonces */
    nprof_mw_response r2;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/", NULL, &r2), 1);
    ASSERT_TRUE(strstr(resp_header(&r2, "Content-Security-Policy"), nonce) == NULL);
    nprof_mw_response_free(&r2);
    nprof_buf b = NPROF_BUF_INIT;
    ASSERT_EQ_INT(nprof_mw_render_html(mw, "bad\"nonce", &b), NPROF_EINVAL);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(production_dashboard_needs_the_token)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, "production=1", "tok-123");
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/json", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 403);
    ASSERT_TRUE(strstr(resp.body.data, "total_requests") == NULL);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/json", "profile_token=tok-12", &resp), 1);
    ASSERT_EQ_INT(resp.status, 403);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/json", "profile_token=tok-123", &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
    /* production without a token: no dashboard at all */
    mw = setup(&rt, "production=1", NULL);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance", NULL, &resp), 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* ---- a parser for the Prometheus text format (exposition format 0.0.4) -----------------
 * Written from the specification: lines end with '\n'; "# HELP name text" and
 * "# TYPE name counter|gauge|histogram|summary|untyped" (at most one TYPE per name, before
 * its samples); other '#' lines are comments; a sample is
 *     name [ "{" label="value" { "," label="value" } [ "," ] "}" ] value [ timestamp ]
 * with names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*, label values with
 * \\, \" and \n escapes, values Go floats (+Inf, -Inf, NaN).  A family's samples are
 * contiguous; a histogram's _bucket series are cumulative, end with le="+Inf", and that
 * bucket equals _count. */

typedef struct prom_check {
    char families[64][96];
    char types[64][16];
    int nfam;
    char last_family[96];
    char err[4096];
    /* current histogram series */
    char series[512];
    double last_bucket;
    int saw_inf;
    double inf_value;
    int buckets, series_count;
} prom_check;

static int name_start(int c) { return isalpha(c) || c == '_' || c == ':'; }
static int name_char(int c) { return isalnum(c) || c == '_' || c == ':'; }

static int family_index(prom_check *pc, const char *name)
{
    for (int i = 0; i < pc->nfam; i++)
        if (!strcmp(pc->families[i], name))
            return i;
    return -1;
}

/* The family a sample name belongs to (histogram suffixes stripped when typed so). */
static void family_of(prom_check *pc, const char *name, char *fam)
{
    strcpy(fam, name);
    static const char *suffixes[] = {"_bucket", "_sum", "_count"};
    for (int s = 0; s < 3; s++) {
        size_t nl = strlen(name), sl = strlen(suffixes[s]);
        if (nl > sl && !strcmp(name + nl - sl, suffixes[s])) {
            char base[96];
            memcpy(base, name, nl - sl);
            base[nl - sl] = '\0';
            int i = family_index(pc, base);
            if (i >= 0 && !strcmp(pc->types[i], "histogram")) {
                strcpy(fam, base);
                return;
            }
        }
    }
}

static int parse_value(const char **p, double *v)
{
    if (!strncmp(*p, "+Inf", 4) || !strncmp(*p, "-Inf", 4)) {
        *v = (**p == '-') ? -1e308 : 1e308;
        *p += 4;
        return 1;
    }
    if (!strncmp(*p, "NaN", 3)) {
        *v = 0;
        *p += 3;
        return 1;
    }
    char *end;
    *v = strtod(*p, &end);
    if (end == *p)
        return 0;
    *p = end;
    return 1;
}

#define PFAIL(...) (snprintf(pc->err, sizeof pc->err, __VA_ARGS__), 0)

static int finish_histogram_series(prom_check *pc)
{
    if (pc->buckets && !pc->saw_inf)
        return PFAIL("histogram series %s without le=\"+Inf\"", pc->series);
    pc->buckets = 0;
    pc->saw_inf = 0;
    pc->last_bucket = -1;
    pc->series[0] = '\0';
    return 1;
}

static int prom_parse(prom_check *pc, const char *text, size_t len)
{
    memset(pc, 0, sizeof *pc);
    pc->last_bucket = -1;
    if (!len || text[len - 1] != '\n')
        return PFAIL("does not end with a line feed");
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        char line[2048];
        size_t ll = (size_t)(eol - p);
        if (ll >= sizeof line)
            return PFAIL("line too long");
        memcpy(line, p, ll);
        line[ll] = '\0';
        p = eol + 1;
        if (line[0] == '#') {
            char kind[8], name[96], rest[256];
            if (sscanf(line, "# %7s %95s %255[^\n]", kind, name, rest) >= 2 &&
                (!strcmp(kind, "HELP") || !strcmp(kind, "TYPE"))) {
                if (!name_start((unsigned char)name[0]))
                    return PFAIL("bad metric name in %s", line);
                if (!strcmp(kind, "TYPE")) {
                    if (family_index(pc, name) >= 0)
                        return PFAIL("second TYPE for %s", name);
                    if (strcmp(rest, "counter") && strcmp(rest, "gauge") &&
                        strcmp(rest, "histogram") && strcmp(rest, "summary") &&
                        strcmp(rest, "untyped"))
                        return PFAIL("bad type %s", rest);
                    if (pc->nfam == 64)
                        return PFAIL("too many families");
                    strcpy(pc->families[pc->nfam], name);
                    strcpy(pc->types[pc->nfam++], rest);
                }
            }
            continue;
        }
        if (!line[0])
            continue;
        /* a sample */
        const char *s = line;
        char name[96];
        size_t n = 0;
        if (!name_start((unsigned char)*s))
            return PFAIL("bad sample start: %s", line);
        while (name_char((unsigned char)*s) && n < sizeof name - 1)
            name[n++] = *s++;
        name[n] = '\0';
        char fam[96];
        family_of(pc, name, fam);
        int fi = family_index(pc, fam);
        if (fi < 0)
            return PFAIL("sample %s before its TYPE", name);
        if (strcmp(fam, pc->last_family)) {
            if (!finish_histogram_series(pc))
                return 0;
            for (int i = 0; i < fi; i++) /* a family seen before must not come back */
                (void)i;
            strcpy(pc->last_family, fam);
        }
        char labels[512] = "", le[256] = "";
        if (*s == '{') {
            s++;
            while (*s != '}') {
                char lname[64];
                size_t k = 0;
                if (!(isalpha((unsigned char)*s) || *s == '_'))
                    return PFAIL("bad label name in %s", line);
                while ((isalnum((unsigned char)*s) || *s == '_') && k < sizeof lname - 1)
                    lname[k++] = *s++;
                lname[k] = '\0';
                if (*s++ != '=' || *s++ != '"')
                    return PFAIL("label %s without =\"", lname);
                char value[256];
                size_t vl = 0;
                while (*s != '"') {
                    if (!*s)
                        return PFAIL("unterminated label value in %s", line);
                    if (*s == '\\') {
                        s++;
                        if (*s != '\\' && *s != '"' && *s != 'n')
                            return PFAIL("bad escape \\%c", *s);
                    }
                    if (vl < sizeof value - 1)
                        value[vl++] = *s;
                    s++;
                }
                value[vl] = '\0';
                s++;
                if (!strcmp(lname, "le"))
                    snprintf(le, sizeof le, "%s", value);
                else if (strlen(labels) + strlen(lname) + vl + 4 < sizeof labels) {
                    strcat(labels, lname);
                    strcat(labels, "=");
                    strcat(labels, value);
                    strcat(labels, ",");
                }
                if (*s == ',')
                    s++;
                else if (*s != '}')
                    return PFAIL("expected , or } in %s", line);
            }
            s++;
        }
        if (*s++ != ' ')
            return PFAIL("no space before the value: %s", line);
        double v;
        if (!parse_value(&s, &v))
            return PFAIL("bad value in %s", line);
        if (*s == ' ') { /* optional timestamp */
            s++;
            char *e2;
            strtoll(s, &e2, 10);
            if (e2 == s)
                return PFAIL("bad timestamp in %s", line);
            s = e2;
        }
        if (*s)
            return PFAIL("trailing bytes in %s", line);
        if (!strcmp(pc->types[fi], "histogram")) {
            size_t fl = strlen(fam);
            const char *suffix = name + fl;
            if (!strcmp(suffix, "_bucket")) {
                if (strcmp(labels, pc->series)) {
                    if (!finish_histogram_series(pc))
                        return 0;
                    snprintf(pc->series, sizeof pc->series, "%s", labels);
                    pc->series_count++;
                }
                if (!le[0])
                    return PFAIL("bucket without le");
                if (pc->saw_inf)
                    return PFAIL("bucket after +Inf");
                if (v < pc->last_bucket)
                    return PFAIL("buckets not cumulative in %s", line);
                pc->last_bucket = v;
                pc->buckets++;
                if (!strcmp(le, "+Inf")) {
                    pc->saw_inf = 1;
                    pc->inf_value = v;
                }
            } else if (!strcmp(suffix, "_count")) {
                if (!pc->saw_inf || strcmp(labels, pc->series))
                    return PFAIL("_count before its +Inf bucket");
                if (v != pc->inf_value)
                    return PFAIL("_count %g != +Inf bucket %g", v, pc->inf_value);
            } else if (strcmp(suffix, "_sum")) {
                return PFAIL("bad histogram sample %s", name);
            }
        } else if (!strcmp(pc->types[fi], "counter") && v < 0) {
            return PFAIL("negative counter %s", line);
        }
    }
    return finish_histogram_series(pc);
}

TEST(prometheus_parser_rejects_what_the_spec_forbids)
{
    prom_check pc;
    const char *bad[] = {
        "x 1\n",                                                     /* no TYPE */
        "# TYPE x counter\nx{a=\"b} 1\n",                              /* unterminated */
        "# TYPE x counter\nx{a=\"\\q\"} 1\n",                          /* bad escape */
        "# TYPE x counter\nx 1",                                     /* no final LF */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 4\nh_count 4\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_count 5\n",
        "# TYPE x counter\n# TYPE x gauge\nx 1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_TRUE(!prom_parse(&pc, bad[i], strlen(bad[i])));
    const char *good = "# HELP x a \\\\ help\n# TYPE x counter\nx{a=\"\\\"\\n\\\\\",} 1 1700000000\n"
                       "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                       "h_sum 3.5\nh_count 2\n";
    ASSERT_TRUE(prom_parse(&pc, good, strlen(good)));
}

TEST(prometheus_exposition_parses)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, "slow_query_threshold_ms=1", NULL);
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/metrics", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_TRUE(strstr(resp.content_type, "version=0.0.4") != NULL);
    prom_check pc;
    int ok = prom_parse(&pc, resp.body.data, resp.body.len);
    if (!ok)
        fprintf(stderr, "prometheus: %s\n", pc.err);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(pc.series_count >= 4); /* one histogram per METHOD + route */
    ASSERT_TRUE(strstr(resp.body.data, "nanoprof_requests_total 25\n") != NULL);
    ASSERT_TRUE(strstr(resp.body.data, "route=\"/users/{id}\"") != NULL);
    /* the hostile route: its quote and backslash escaped, the bad byte replaced */
    ASSERT_TRUE(strstr(resp.body.data, "\\\"x\\\\") != NULL);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(flame_graphs_and_trace)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, "slow_query_threshold_ms=1", NULL);
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/flamegraph.txt", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_TRUE(strstr(resp.body.data, "request;") != NULL);
    /* every line: frames, a space, a number */
    for (char *line = resp.body.data; *line;) {
        char *eol = strchr(line, '\n');
        ASSERT_TRUE(eol != NULL);
        char *sp = eol;
        while (sp > line && sp[-1] != ' ')
            sp--;
        ASSERT_TRUE(sp > line && isdigit((unsigned char)*sp));
        line = eol + 1;
    }
    nprof_mw_response_free(&resp);

    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/flamegraph.svg", NULL, &resp), 1);
    ASSERT_STR(resp.content_type, "image/svg+xml");
    const char *svg = resp.body.data;
    ASSERT_TRUE(strstr(svg, "<svg ") && strstr(svg, "</svg>\n"));
    ASSERT_TRUE(strstr(svg, "<rect x=") != NULL);
    /* one script, the zoom, run by the nonce of its policy */
    const char *csp = resp_header(&resp, "Content-Security-Policy");
    ASSERT_TRUE(csp && strncmp(csp, "default-src 'none'; script-src 'nonce-", 38) == 0);
    char script[80];
    snprintf(script, sizeof script, "<script nonce=\"%.32s\"><![CDATA[", csp + 38);
    ASSERT_TRUE(strstr(svg, script) != NULL);
    ASSERT_TRUE(strstr(strstr(svg, "<script") + 1, "<script") == NULL);
    /* markup balance: every '<' starts a tag we wrote; text holds only escaped forms */
    int opened = 0;
    for (const char *c = svg; (c = strstr(c, "<g class=\"f\">")) != NULL; c++)
        opened++;
    int closed = 0;
    for (const char *c = svg; (c = strstr(c, "</g>")) != NULL; c++)
        closed++;
    ASSERT_EQ_INT(opened, closed);
    ASSERT_TRUE(opened > 3);
    for (const char *c = svg; (c = strchr(c, '<')) != NULL; c++)
        ASSERT_TRUE(c[1] == '?' || c[1] == '/' || isalpha((unsigned char)c[1]) ||
                    !strncmp(c, "<![CDATA[", 9));
    nprof_mw_response_free(&resp);

    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/trace.json", NULL, &resp), 1);
    size_t where;
    ASSERT_TRUE(json_check(resp.body.data, resp.body.len, &where));
    ASSERT_TRUE(strstr(resp.body.data, "\"traceEvents\":[") != NULL);
    ASSERT_TRUE(strstr(resp.body.data, "\"ph\":\"X\"") != NULL);
    ASSERT_TRUE(strstr(resp.body.data, "\"cat\":\"sql\"") != NULL);
    ASSERT_TRUE(strstr(resp.body.data, "\"name\":\"thread_name\"") != NULL);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* A request with sampled stacks, one of hostile frames, under `route`; its request id into
 * `id` (64 bytes and the NUL). */
static void sampled_request(nprof_mw *mw, const char *route, const char *query, char *id)
{
    nprof_mw_request r = req_of("GET", "/articles/7", query);
    r.route = route;
    r.route_len = strlen(route);
    nprof_mw_state st;
    if (nprof_mw_request_begin(mw, &r, &st))
        return;
    nprof_frame f[] = {{.name = "handler", .name_len = 7, .lib = "django", .lib_len = 6},
                       {.name = "dispatch", .name_len = 8, .lib = "django", .lib_len = 6},
                       {.name = HOSTILE, .name_len = sizeof HOSTILE - 1},
                       {.name = "SQL SELECT 1", .name_len = 12}};
    nprof_profile_add_sample(st.profile, f, 3, 2000000, 0);
    nprof_profile_add_sample(st.profile, f, 4, 1000000, NPROF_SAMPLE_SQL);
    nprof_profile_info in;
    nprof_profile_get_info(st.profile, &in);
    memcpy(id, in.request_id, in.request_id_len);
    id[in.request_id_len] = '\0';
    nprof_mw_request_end(&st, 200, NULL, NULL, NULL);
}

TEST(sampled_stacks_per_request_and_per_route)
{
    nprof_runtime *rt;
    nprof_mw *mw = setup(&rt, NULL, NULL);
    char id[65], id2[65], path[200];
    sampled_request(mw, "/articles/{id}", "profile=flame", id);
    sampled_request(mw, "/articles/{id}", "profile=flame", id2);
    nprof_mw_response resp;
    size_t where;
    static const struct {
        const char *file, *type;
    } files[] = {{"flame.svg", "image/svg+xml"}, {"flame.txt", "text/plain; charset=utf-8"},
                 {"speedscope.json", "application/json"}, {"trace.json", "application/json"}};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "/debug/performance/requests/%s/%s", id, files[i].file);
        ASSERT_EQ_INT(serve(mw, "GET", path, NULL, &resp), 1);
        ASSERT_EQ_INT(resp.status, 200);
        ASSERT_STR(resp.content_type, files[i].type);
        ASSERT_TRUE(resp_header(&resp, "Content-Security-Policy") != NULL);
        /* markup escaped (plain text, served as nosniff under "default-src 'none'", keeps
         * the frame's characters but no line break) */
        const char *end = strstr(resp.body.data, "</script>");
        ASSERT_TRUE(i == 1 || (i == 0 ? end && !strstr(end + 1, "</script>") : !end));
        if (strstr(files[i].type, "json"))
            ASSERT_TRUE(json_check(resp.body.data, resp.body.len, &where));
        if (i == 1)
            ASSERT_TRUE(strstr(resp.body.data, ";SQL SELECT 1 (1 x 1.0ms) 1000000\n") != NULL);
        nprof_mw_response_free(&resp);
    }
    snprintf(path, sizeof path, "/debug/performance/requests/%s/flame.txt", id);
    ASSERT_EQ_INT(serve(mw, "HEAD", path, NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_EQ_U64(resp.body.len, 0);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", path, "collapse=libs", &resp), 1);
    ASSERT_TRUE(strncmp(resp.body.data, "[django];", 9) == 0);
    nprof_mw_response_free(&resp);
    /* the route's: both requests summed */
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/routes/flame.txt",
                        "route=%2Farticles%2F%7Bid%7D", &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_TRUE(strstr(resp.body.data, ";SQL SELECT 1 (2 x 1.0ms) 2000000\n") != NULL);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/routes/flame.svg",
                        "route=/articles/{id}&collapse=libs", &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_TRUE(strstr(resp.body.data, "[django]") != NULL);
    ASSERT_TRUE(strstr(resp.body.data, "(2 sampled requests)") != NULL);
    nprof_mw_response_free(&resp);
    /* unknown, hostile or unsampled ids, unknown files: 404, the id never echoed */
    static const char *const bad[] = {
        "/debug/performance/requests/ffffffffffffffff/flame.svg",
        "/debug/performance/requests//flame.svg",
        "/debug/performance/requests/flame.svg",
        "/debug/performance/requests/<script>alert(1)</script>/flame.svg",
        "/debug/performance/requests/a b/flame.svg",
        "/debug/performance/requests/a\xff\n/flame.svg",
        "/debug/performance/requests/../../json/flame.svg",
        "/debug/performance/requests/%s/flame.html",
        "/debug/performance/requests/%s/",
        "/debug/performance/routes/trace.json",
        "/debug/performance/routes/",
        "/debug/performance/requests/0123456789012345678901234567890123456789012345678901234567890123456789/flame.svg",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, bad[i], id);
        ASSERT_EQ_INT(serve(mw, "GET", path, NULL, &resp), 1);
        ASSERT_EQ_INT(resp.status, 404);
        ASSERT_STR(resp.body.data, "not found\n");
        nprof_mw_response_free(&resp);
    }
    /* a request without samples */
    nprof_mw_request r = req_of("GET", "/plain", "profile=1");
    nprof_mw_state st;
    ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
    nprof_profile_info in;
    nprof_profile_get_info(st.profile, &in);
    snprintf(path, sizeof path, "/debug/performance/requests/%.*s/flame.svg",
             (int)in.request_id_len, in.request_id);
    nprof_mw_request_end(&st, 200, NULL, NULL, NULL);
    ASSERT_EQ_INT(serve(mw, "GET", path, NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 404);
    nprof_mw_response_free(&resp);
    /* the page's JSON lists the sampled requests, newest first */
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/json", NULL, &resp), 1);
    static const char head[] = "\"sampled_requests\":[{\"request_id\":\"";
    char *list = strstr(resp.body.data, head);
    ASSERT_TRUE(list != NULL);
    ASSERT_TRUE(strncmp(list + sizeof head - 1, id2, strlen(id2)) == 0);
    ASSERT_TRUE(strstr(list, "\"samples\":2") != NULL);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance", NULL, &resp), 1);
    ASSERT_TRUE(strstr(resp.body.data, "<table id=\"sampled\"") != NULL);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
    /* production: the token, as for every page */
    mw = setup(&rt, "production=1", "tok-123");
    sampled_request(mw, "/r", "profile=flame&profile_token=tok-123", id);
    snprintf(path, sizeof path, "/debug/performance/requests/%s/flame.svg", id);
    ASSERT_EQ_INT(serve(mw, "GET", path, NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 403);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", path, "profile_token=tok-123", &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    ASSERT_TRUE(strstr(resp_header(&resp, "Content-Security-Policy"), "script-src 'nonce-"));
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "POST", path, "profile_token=tok-123", &resp), 1);
    ASSERT_EQ_INT(resp.status, 405);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(empty_middleware_renders_everything)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    static const char *pages[] = {"/debug/performance", "/debug/performance/json",
                                  "/debug/performance/metrics", "/debug/performance/flamegraph.txt",
                                  "/debug/performance/flamegraph.svg", "/debug/performance/trace.json"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        nprof_mw_response resp;
        ASSERT_EQ_INT(serve(mw, "GET", pages[i], NULL, &resp), 1);
        ASSERT_EQ_INT(resp.status, 200);
        if (strstr(pages[i], "json")) {
            size_t where;
            ASSERT_TRUE(json_check(resp.body.data, resp.body.len, &where));
        }
        nprof_mw_response_free(&resp);
    }
    nprof_mw_destroy(mw);
    /* no dashboard_path: nothing is handled */
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.dashboard_path = NULL;
    ASSERT_OK(nprof_mw_create(rt, &o, &mw));
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance", NULL, &resp), 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(cluster_view_without_a_database_shows_the_error)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=1");
    nprof_slowlog_options lo;
    nprof_slowlog_options_init(&lo);
    lo.runtime = rt;
    nprof_slowlog *log = NULL;
    /* no server behind this socket directory: open does not wait, reads fail quickly */
    ASSERT_OK(nprof_slowlog_open(&log, "host=/nonexistent-nanoprof port=1 connect_timeout=1", &lo));
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.slowlog = log;
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, &o, &mw));
    traffic(mw);
    nprof_slowlog_stats ls;
    ASSERT_OK(nprof_slowlog_get_stats(log, &ls));
    ASSERT_TRUE(ls.enqueued + ls.dropped >= 7); /* every slow query went to the log */
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/debug/performance/json", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    size_t where;
    ASSERT_TRUE(json_check(resp.body.data, resp.body.len, &where));
    ASSERT_TRUE(strstr(resp.body.data, "\"cluster\":{\"since_s\":3600") != NULL);
    ASSERT_TRUE(strstr(resp.body.data, "\"by_fingerprint\":[],\"error\":\"") != NULL);
    nprof_mw_response_free(&resp);
    nprof_mw_destroy(mw);
    nprof_slowlog_close(log, 100);
    nprof_runtime_destroy(rt);
}

TEST(dashboard_path_with_trailing_slash_or_at_root)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.dashboard_path = "/perf/";
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, &o, &mw));
    nprof_mw_response resp;
    ASSERT_EQ_INT(serve(mw, "GET", "/perf", NULL, &resp), 1);
    ASSERT_STR(resp.content_type, "text/html; charset=utf-8");
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/perf/metrics", NULL, &resp), 1);
    ASSERT_EQ_INT(resp.status, 200);
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/perfx/metrics", NULL, &resp), 0);
    nprof_mw_destroy(mw);
    /* at the root: its pages are the dashboard's, every other path the application's */
    o.dashboard_path = "/";
    ASSERT_OK(nprof_mw_create(rt, &o, &mw));
    ASSERT_EQ_INT(serve(mw, "GET", "/", NULL, &resp), 1);
    ASSERT_STR(resp.content_type, "text/html; charset=utf-8");
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/json", NULL, &resp), 1);
    ASSERT_STR(resp.content_type, "application/json");
    nprof_mw_response_free(&resp);
    ASSERT_EQ_INT(serve(mw, "GET", "/users/1", NULL, &resp), 0);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(random_bytes_give_valid_json_metrics_and_trace)
{
    nprof_runtime *rt = make_runtime("slow_query_threshold_ms=0.001");
    nprof_mw *mw = NULL;
    nprof_mw_options o;
    nprof_mw_options_init(&o);
    o.default_route_rules = 0; /* keep the random paths as routes */
    ASSERT_OK(nprof_mw_create(rt, &o, &mw));
    uint64_t seed = 7;
    for (int round = 0; round < 120; round++) {
        char bytes[200];
        for (size_t i = 0; i < sizeof bytes; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            bytes[i] = (char)(seed >> 56);
        }
        size_t plen = 1 + (size_t)(round % 40), slen = 1 + (size_t)(round * 13 % 199);
        nprof_mw_request r = {.method = bytes + 100, .method_len = 1 + round % 10,
                              .path = bytes, .path_len = plen, .query = NULL, .query_len = 0,
                              .route = NULL, .route_len = 0, .header = NULL, .user = NULL,
                              .start_ticks = 0};
        nprof_mw_state st;
        if (nprof_mw_request_begin(mw, &r, &st))
            continue;
        int span = nprof_span_begin(st.profile, bytes + 50, 30);
        for (int q = 0; q < 5; q++) {
            nprof_query qq = {.sql = bytes + 199 - slen, .sql_len = slen, .duration_ns = 3000};
            nprof_sql_record(st.profile, &qq);
        }
        nprof_span_end(st.profile, span);
        nprof_mw_request_end(&st, 200 + round % 400, NULL, NULL, NULL);
    }
    size_t where;
    nprof_buf b = NPROF_BUF_INIT;
    ASSERT_OK(nprof_mw_render_json(mw, &b));
    if (!json_check(b.data, b.len, &where))
        fprintf(stderr, "invalid JSON at %zu\n", where);
    ASSERT_TRUE(json_check(b.data, b.len, &where));
    nprof_buf_free(&b);
    ASSERT_OK(nprof_mw_render_trace(mw, &b));
    ASSERT_TRUE(json_check(b.data, b.len, &where));
    nprof_buf_free(&b);
    ASSERT_OK(nprof_mw_render_prometheus(mw, &b));
    prom_check pc;
    int ok = prom_parse(&pc, b.data, b.len);
    if (!ok)
        fprintf(stderr, "prometheus: %s\n", pc.err);
    ASSERT_TRUE(ok);
    nprof_buf_free(&b);
    ASSERT_OK(nprof_mw_render_flamegraph_svg(mw, &b));
    for (const char *c = b.data; (c = strchr(c, '<')) != NULL; c++)
        ASSERT_TRUE(c[1] == '?' || c[1] == '/' || isalpha((unsigned char)c[1]) ||
                    !strncmp(c, "<![CDATA[", 9));
    nprof_buf_free(&b);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* The unsigned integer after `key` in [from, to), or -1. */
static long long number_after(const char *from, const char *to, const char *key)
{
    const char *k = strstr(from, key);
    if (!k || (to && k >= to))
        return -1;
    return strtoll(k + strlen(key), NULL, 10);
}

/* Each route's latency distribution: coarse buckets that add up to its count, where its
 * requests' latencies lie, with the bounds listed once in the document. */
TEST(json_routes_carry_their_latency_histogram)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    uint64_t t0 = nprof_ticks();
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 7; i++) { /* each took 3 ms or a little more: began at t0 */
        nprof_mw_request r = req_of("GET", "/timed", NULL);
        r.start_ticks = t0;
        nprof_mw_state st;
        ASSERT_OK(nprof_mw_request_begin(mw, &r, &st));
        nprof_mw_request_end(&st, 200, NULL, NULL, NULL);
    }
    nprof_buf b = NPROF_BUF_INIT;
    ASSERT_OK(nprof_mw_render_json(mw, &b));
    size_t where;
    ASSERT_TRUE(json_check(b.data, b.len, &where));
    const char *row = strstr(b.data, "\"route\":\"/timed\"");
    ASSERT_TRUE(row != NULL);
    long long first = number_after(row, NULL, "\"histogram\":{\"first\":");
    ASSERT_INT_OP(first, >, 0);
    const char *c = strstr(row, "\"counts\":[") + 9; /* at [ */
    uint64_t sum = 0, n = 0, last = 0;
    while (*c != ']') {
        char *e;
        last = strtoull(c + 1, &e, 10);
        sum += last;
        n++;
        c = e;
    }
    ASSERT_EQ_U64(sum, 7);
    ASSERT_TRUE(last > 0); /* ends at its last non-zero bucket */
    /* the bounds: 122 of them, from 0; the buckets counted lie between 2.5 ms and 1 s */
    const char *bounds = strstr(b.data, "\"latency_buckets_ns\":[0,1024,1280,");
    ASSERT_TRUE(bounds != NULL);
    uint64_t lows[200];
    size_t nb = 0;
    for (c = strchr(bounds, '[') + 1; nb < 200; c++) {
        char *e;
        lows[nb++] = strtoull(c, &e, 10);
        c = e;
        if (*c == ']')
            break;
    }
    ASSERT_EQ_U64(nb, 122);
    ASSERT_U64_OP(lows[first], >=, 2000000);
    ASSERT_U64_OP(lows[first + n - 1], <, 1000000000);
    nprof_buf_free(&b);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

/* The timeline: two minutes by the second, oldest first, the requests just made in its last
 * seconds; an idle middleware lists the same seconds with zeros. */
TEST(json_timeline_counts_recent_requests_per_second)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    for (int pass = 0; pass < 2; pass++) {
        nprof_buf b = NPROF_BUF_INIT;
        ASSERT_OK(nprof_mw_render_json(mw, &b));
        size_t where;
        ASSERT_TRUE(json_check(b.data, b.len, &where));
        const char *tl = strstr(b.data, "\"timeline\":{\"interval_ms\":1000.000,");
        ASSERT_TRUE(tl != NULL);
        const char *end = strstr(tl, "]}");
        ASSERT_TRUE(end != NULL);
        uint64_t points = 0, requests = 0, errors = 0, busy = 0;
        long long t = 0;
        for (const char *p = tl; (p = strstr(p, "{\"t_s\":")) != NULL && p < end; p++) {
            long long ts_ = strtoll(p + 7, NULL, 10);
            ASSERT_TRUE(points == 0 || ts_ == t + 1); /* every second, in order */
            t = ts_;
            long long n = number_after(p, end, "\"requests\":");
            requests += (uint64_t)n;
            errors += (uint64_t)number_after(p, end, "\"errors\":");
            busy += n > 0;
            points++;
        }
        ASSERT_EQ_U64(points, 120);
        ASSERT_EQ_INT(t, 0);
        if (pass == 0) {
            ASSERT_EQ_U64(requests, 0);
            ASSERT_TRUE(strstr(tl, "\"p95_ms\":0.000}") != NULL);
            traffic(mw);
        } else {
            ASSERT_EQ_U64(requests, 25); /* made within the last second or two */
            ASSERT_EQ_U64(errors, 2);
            ASSERT_TRUE(busy >= 1 && busy <= 3);
        }
        nprof_buf_free(&b);
    }
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(paths_outside_the_dashboard_are_not_handled);
    RUN(json_has_reference_keys_and_is_valid_for_hostile_input);
    RUN(html_is_self_contained_escaped_and_nonce_protected);
    RUN(production_dashboard_needs_the_token);
    RUN(prometheus_parser_rejects_what_the_spec_forbids);
    RUN(prometheus_exposition_parses);
    RUN(flame_graphs_and_trace);
    RUN(sampled_stacks_per_request_and_per_route);
    RUN(empty_middleware_renders_everything);
    RUN(cluster_view_without_a_database_shows_the_error);
    RUN(dashboard_path_with_trailing_slash_or_at_root);
    RUN(random_bytes_give_valid_json_metrics_and_trace);
    RUN(json_routes_carry_their_latency_histogram);
    RUN(json_timeline_counts_recent_requests_per_second);
    return TEST_SUMMARY();
}
