/*
 * runtime/render.c: a profile as an X-Profile header value, as a JSON document and as
 * collapsed stacks.  The header is rendered on the request path (no allocation, integer
 * formatting); JSON and stacks are rendered on demand into caller-owned buffers.
 */
#include <string.h>

#include "collapsed.h"
#include "profile.h"
#include "text.h"

int nprof_profile_header(const nprof_profile *p, char *buf, size_t cap, size_t *out_len)
{
    if (!p)
        return NPROF_ENOPROFILE;
    /* Worst case: five 20-character durations, a 20-digit count and the labels. */
    char tmp[256], *o = tmp;
#define PUT_LITERAL(s) (memcpy(o, s, sizeof s - 1), o += sizeof s - 1)
    PUT_LITERAL("total=");
    o += nprof__format_duration(p->total_ns, o);
    PUT_LITERAL(" handler=");
    o += nprof__format_duration(nprof__phase_ns(p, NPROF_PHASE_HANDLER), o);
    PUT_LITERAL(" sql=");
    o += nprof__format_duration(p->sql_total_ns, o);
    PUT_LITERAL("(");
    o += nprof__format_u64(p->sql_count, o);
    PUT_LITERAL("q) middleware=");
    o += nprof__format_duration(nprof__phase_ns(p, NPROF_PHASE_MIDDLEWARE), o);
    PUT_LITERAL(" routing=");
    o += nprof__format_duration(nprof__phase_ns(p, NPROF_PHASE_ROUTING), o);
#undef PUT_LITERAL
    size_t len = (size_t)(o - tmp);
    if (out_len)
        *out_len = len;
    if (!buf || cap <= len)
        return NPROF_ERANGE;
    memcpy(buf, tmp, len);
    buf[len] = '\0';
    return NPROF_OK;
}

/* ---- JSON --------------------------------------------------------------------------------- */

typedef struct json {
    nprof_buf *out;
    int rc;
    int need_comma;
} json;

static void raw(json *j, const char *s)
{
    if (!j->rc)
        j->rc = nprof__buf_append_cstr(j->out, s);
}

static void key(json *j, const char *k)
{
    if (j->need_comma)
        raw(j, ",");
    if (!j->rc)
        j->rc = nprof__json_string(j->out, k, strlen(k));
    raw(j, ":");
    j->need_comma = 1;
}

static void kv_str(json *j, const char *k, const char *s, size_t len)
{
    key(j, k);
    if (!j->rc)
        j->rc = nprof__json_string(j->out, s, len);
}

static void kv_u64(json *j, const char *k, uint64_t v)
{
    key(j, k);
    if (!j->rc)
        j->rc = nprof__buf_append_u64(j->out, v);
}

static void kv_i64(json *j, const char *k, int64_t v)
{
    key(j, k);
    if (!j->rc)
        j->rc = nprof__buf_append_i64(j->out, v);
}

static void kv_bool(json *j, const char *k, int v)
{
    key(j, k);
    raw(j, v ? "true" : "false");
}

static void kv_duration(json *j, const char *k, uint64_t ns)
{
    char text[NPROF__DURATION_MAX];
    size_t n = nprof__format_duration(ns, text);
    kv_str(j, k, text, n);
}

static void kv_hex(json *j, const char *k, uint64_t v)
{
    char hex[16];
    nprof__format_hex64(v, hex);
    kv_str(j, k, hex, sizeof hex);
}

static void open_container(json *j, const char *k, const char *bracket)
{
    key(j, k);
    raw(j, bracket);
    j->need_comma = 0;
}

static void close_container(json *j, const char *bracket)
{
    raw(j, bracket);
    j->need_comma = 1;
}

static void element(json *j, const char *bracket)
{
    if (j->need_comma)
        raw(j, ",");
    raw(j, bracket);
    j->need_comma = 0;
}

/* One shape as an object of the n_plus_one / duplicates lists. */
static void render_pattern(json *j, const nprof_pattern_info *pi)
{
    element(j, "{");
    kv_hex(j, "fingerprint", pi->fingerprint);
    if (pi->normalized)
        kv_str(j, "normalized", pi->normalized, pi->normalized_len);
    if (pi->example)
        kv_str(j, "example", pi->example, pi->example_len);
    kv_u64(j, "count", pi->count);
    kv_u64(j, "exact_repeats", pi->exact_repeats);
    kv_u64(j, "total_ns", pi->total_ns);
    kv_duration(j, "total", pi->total_ns);
    close_container(j, "}");
}

/* The three lists: N+1 patterns, exact duplicates, slow queries (by query number). */
static void render_patterns(json *j, const nprof_profile *p)
{
    nprof_pattern_info pi;
    kv_u64(j, "slow_query_count", p->slow_count);
    kv_u64(j, "duplicate_count", p->exact_repeats);
    open_container(j, "n_plus_one", "[");
    for (uint32_t i = 0; nprof_profile_pattern(p, i, &pi) == NPROF_OK; i++)
        if (pi.n_plus_one)
            render_pattern(j, &pi);
    close_container(j, "]");
    open_container(j, "duplicates", "[");
    for (uint32_t i = 0; nprof_profile_pattern(p, i, &pi) == NPROF_OK; i++)
        if (pi.exact_repeats)
            render_pattern(j, &pi);
    close_container(j, "]");
    uint64_t slow_ns = p->rt->slow_query_ns;
    open_container(j, "slow_queries", "[");
    for (uint32_t i = 0; i < p->query_count; i++) {
        if (p->queries[i].duration_ns <= slow_ns)
            continue;
        if (j->need_comma)
            raw(j, ",");
        if (!j->rc)
            j->rc = nprof__buf_append_u64(j->out, i);
        j->need_comma = 1;
    }
    close_container(j, "]");
}

int nprof_profile_json(const nprof_profile *p, nprof_buf *out)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!out)
        return NPROF_EINVAL;
    size_t rollback = out->len;
    json j = {out, NPROF_OK, 0};
    raw(&j, "{");
    kv_str(&j, "method", p->method, p->method_len);
    kv_str(&j, "path", p->path, p->path_len);
    kv_str(&j, "route", p->route, p->route_len);
    kv_str(&j, "request_id", p->request_id, p->request_id_len);
    kv_i64(&j, "status", p->status);
    kv_u64(&j, "start_ns", p->start_ns);
    kv_u64(&j, "total_ns", p->total_ns);
    kv_duration(&j, "total", p->total_ns);
    kv_u64(&j, "middleware_ns", nprof__phase_ns(p, NPROF_PHASE_MIDDLEWARE));
    kv_u64(&j, "routing_ns", nprof__phase_ns(p, NPROF_PHASE_ROUTING));
    kv_u64(&j, "handler_ns", nprof__phase_ns(p, NPROF_PHASE_HANDLER));
    kv_u64(&j, "sql_total_ns", p->sql_total_ns);
    kv_u64(&j, "sql_count", p->sql_count);
    kv_u64(&j, "queries_dropped", p->queries_dropped);
    uint64_t slow_ns = p->rt->slow_query_ns;
    open_container(&j, "queries", "[");
    for (uint32_t i = 0; i < p->query_count; i++) {
        const nprof__query *q = &p->queries[i];
        element(&j, "{");
        kv_str(&j, "sql", q->sql, q->sql_len);
        kv_u64(&j, "duration_ns", q->duration_ns);
        kv_duration(&j, "duration", q->duration_ns);
        kv_u64(&j, "start_offset_ns", q->start_offset_ns);
        kv_i64(&j, "span", q->span);
        if (q->sql_full_len > q->sql_len) {
            kv_bool(&j, "truncated", 1);
            kv_u64(&j, "sql_length", q->sql_full_len);
        }
        if (q->params)
            kv_str(&j, "params", q->params, q->params_len);
        if (q->normalized)
            kv_str(&j, "normalized", q->normalized, q->normalized_len);
        if (q->fingerprint)
            kv_hex(&j, "fingerprint", q->fingerprint);
        if (q->duration_ns > slow_ns)
            kv_bool(&j, "slow", 1);
        close_container(&j, "}");
    }
    close_container(&j, "]");
    render_patterns(&j, p);
    kv_u64(&j, "spans_dropped", p->spans_dropped);
    open_container(&j, "spans", "[");
    for (uint32_t i = 0; i < p->span_count; i++) {
        nprof_span_info s;
        nprof_profile_span(p, i, &s);
        element(&j, "{");
        kv_u64(&j, "id", i);
        kv_str(&j, "name", s.name, s.name_len);
        kv_i64(&j, "parent", s.parent);
        kv_u64(&j, "start_offset_ns", s.start_offset_ns);
        kv_u64(&j, "duration_ns", s.duration_ns);
        if (s.unclosed)
            kv_bool(&j, "unclosed", 1);
        close_container(&j, "}");
    }
    close_container(&j, "]");
    raw(&j, "}");
    if (j.rc) {
        out->len = rollback; /* all or nothing */
        if (out->data)
            out->data[rollback] = '\0';
    }
    return j.rc;
}

int nprof_profile_collapsed(const nprof_profile *p, nprof_buf *out)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!out)
        return NPROF_EINVAL;
    nprof__stacks st;
    nprof__stacks_init(&st);
    int rc = nprof__stacks_add_profile(&st, p);
    if (!rc)
        rc = nprof__stacks_emit(&st, out);
    nprof__stacks_free(&st);
    return rc;
}
