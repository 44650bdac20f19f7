/*
 * runtime/render.c: a profile as an X-Profile header value, as a JSON document and as
 * collapsed stacks.  The header is rendered on the request path (no allocation, integer
 * formatting); JSON and stacks are rendered on demand into caller-owned buffers.
 */
#include <string.h>

#include "collapsed.h"
#include "jsonw.h"
#include "profile.h"
#include "text.h"

int nprof_profile_render_header(const nprof_profile *p, char *buf, size_t cap, size_t *out_len)
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

/* A time twice: in nanoseconds under `ns_key`, and as the header writes it under `text_key`. */
static void time_members(nprof__jw *j, const char *ns_key, const char *text_key, uint64_t ns)
{
    nprof__jw_ku64(j, ns_key, ns);
    nprof__jw_key(j, text_key);
    nprof__jw_duration(j, ns);
}

/* One shape as an object of the n_plus_one / duplicates lists. */
static void render_pattern(nprof__jw *j, const nprof_pattern_info *pi)
{
    nprof__jw_obj(j);
    nprof__jw_key(j, "fingerprint");
    nprof__jw_hex(j, pi->fingerprint);
    if (pi->normalized)
        nprof__jw_kstr(j, "normalized", pi->normalized, pi->normalized_len);
    if (pi->example)
        nprof__jw_kstr(j, "example", pi->example, pi->example_len);
    nprof__jw_ku64(j, "count", pi->count);
    nprof__jw_ku64(j, "exact_repeats", pi->exact_repeats);
    time_members(j, "total_ns", "total", pi->total_ns);
    if (pi->callsite)
        nprof__jw_kstr(j, "callsite", pi->callsite, pi->callsite_len);
    nprof__jw_obj_end(j);
}

/* The shapes that are N+1 patterns (n_plus_one) or that have exact duplicates (else). */
static void render_pattern_list(nprof__jw *j, const nprof_profile *p, const char *key, int n_plus_one)
{
    nprof_pattern_info pi;
    nprof__jw_key(j, key);
    nprof__jw_arr(j);
    for (uint32_t i = 0; nprof_profile_get_pattern(p, i, &pi) == NPROF_OK; i++)
        if (n_plus_one ? pi.n_plus_one : pi.exact_repeats != 0)
            render_pattern(j, &pi);
    nprof__jw_arr_end(j);
}

/* The three lists: N+1 patterns, exact duplicates, slow queries (by query number). */
static void render_patterns(nprof__jw *j, const nprof_profile *p)
{
    nprof__jw_ku64(j, "slow_query_count", p->slow_count);
    nprof__jw_ku64(j, "duplicate_count", p->exact_repeats);
    render_pattern_list(j, p, "n_plus_one", 1);
    render_pattern_list(j, p, "duplicates", 0);
    uint64_t slow_ns = p->rt->slow_query_ns;
    nprof__jw_key(j, "slow_queries");
    nprof__jw_arr(j);
    for (uint32_t i = 0; i < p->query_count; i++)
        if (p->queries[i].duration_ns > slow_ns)
            nprof__jw_u64(j, i);
    nprof__jw_arr_end(j);
}

int nprof_profile_render_json(const nprof_profile *p, nprof_buf *out)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!out)
        return NPROF_EINVAL;
    nprof__jw jw, *j = &jw;
    nprof__jw_init(j, out);
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "method", p->method, p->method_len);
    nprof__jw_kstr(j, "path", p->path, p->path_len);
    nprof__jw_kstr(j, "route", p->route, p->route_len);
    nprof__jw_kstr(j, "request_id", p->request_id, p->request_id_len);
    nprof__jw_ki64(j, "status", p->status);
    nprof__jw_ku64(j, "start_ns", p->start_ns);
    time_members(j, "total_ns", "total", p->total_ns);
    nprof__jw_ku64(j, "middleware_ns", nprof__phase_ns(p, NPROF_PHASE_MIDDLEWARE));
    nprof__jw_ku64(j, "routing_ns", nprof__phase_ns(p, NPROF_PHASE_ROUTING));
    nprof__jw_ku64(j, "handler_ns", nprof__phase_ns(p, NPROF_PHASE_HANDLER));
    nprof__jw_ku64(j, "sql_total_ns", p->sql_total_ns);
    nprof__jw_ku64(j, "sql_count", p->sql_count);
    nprof__jw_ku64(j, "queries_dropped", p->queries_dropped);
    uint64_t slow_ns = p->rt->slow_query_ns;
    nprof__jw_key(j, "queries");
    nprof__jw_arr(j);
    for (uint32_t i = 0; i < p->query_count; i++) {
        const nprof__query *q = &p->queries[i];
        nprof__jw_obj(j);
        nprof__jw_kstr(j, "sql", q->sql, q->sql_len);
        time_members(j, "duration_ns", "duration", q->duration_ns);
        nprof__jw_ku64(j, "start_offset_ns", q->start_offset_ns);
        nprof__jw_ki64(j, "span", q->span);
        if (q->sql_full_len > q->sql_len) {
            nprof__jw_key(j, "truncated");
            nprof__jw_bool(j, 1);
            nprof__jw_ku64(j, "sql_length", q->sql_full_len);
        }
        if (q->params)
            nprof__jw_kstr(j, "params", q->params, q->params_len);
        if (q->normalized)
            nprof__jw_kstr(j, "normalized", q->normalized, q->normalized_len);
        if (q->fingerprint) {
            nprof__jw_key(j, "fingerprint");
            nprof__jw_hex(j, q->fingerprint);
        }
        if (q->duration_ns > slow_ns) {
            nprof__jw_key(j, "slow");
            nprof__jw_bool(j, 1);
        }
        if (q->callsite)
            nprof__jw_kstr(j, "callsite", q->callsite, q->callsite_len);
        if (q->batch_rows)
            nprof__jw_ku64(j, "rows", q->batch_rows);
        if (q->error)
            nprof__jw_kstr(j, "error", q->error, q->error_len);
        nprof__jw_obj_end(j);
    }
    nprof__jw_arr_end(j);
    render_patterns(j, p);
    nprof__jw_ku64(j, "spans_dropped", p->spans_dropped);
    nprof__jw_key(j, "spans");
    nprof__jw_arr(j);
    for (uint32_t i = 0; i < p->span_count; i++) {
        nprof_span_info s;
        nprof_profile_get_span(p, i, &s);
        nprof__jw_obj(j);
        nprof__jw_ku64(j, "id", i);
        nprof__jw_kstr(j, "name", s.name, s.name_len);
        nprof__jw_ki64(j, "parent", s.parent);
        nprof__jw_ku64(j, "start_offset_ns", s.start_offset_ns);
        nprof__jw_ku64(j, "duration_ns", s.duration_ns);
        if (s.unclosed) {
            nprof__jw_key(j, "unclosed");
            nprof__jw_bool(j, 1);
        }
        nprof__jw_obj_end(j);
    }
    nprof__jw_arr_end(j);
    nprof__samples_json(j, p);
    nprof__jw_obj_end(j);
    return nprof__jw_finish(j); /* all or nothing */
}

int nprof_profile_render_collapsed(const nprof_profile *p, nprof_buf *out)
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
