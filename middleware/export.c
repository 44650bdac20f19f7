/*
 * middleware/export.c: the exports below dashboard_path that other tools open:
 * flamegraph.svg, a flame graph drawn by us from the store's collapsed stacks (the same data
 * as flamegraph.txt), and trace.json, the stored requests in the Chrome Trace Event format,
 * one track per request with its phases, spans and queries, for Perfetto or chrome://tracing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nanoprof/store.h"
#include "runtime/flame.h"
#include "runtime/jsonw.h"

/* ---- flamegraph.svg ----------------------------------------------------------------------- */

int nprof_mw_render_flamegraph_svg(nprof_mw *mw, nprof_buf *out)
{
    return mw ? nprof_store_render_flamegraph_svg(nprof_runtime_store(mw->rt), out)
              : NPROF_EINVAL;
}

int nprof_store_render_flamegraph_svg(nprof_store *store, nprof_buf *out)
{
    return nprof__mw_render_flamegraph_svg(store, NULL, out);
}

int nprof__mw_render_flamegraph_svg(nprof_store *store, const char *nonce, nprof_buf *out)
{
    if (!store || !out)
        return NPROF_EINVAL;
    nprof_buf stacks = NPROF_BUF_INIT;
    int rc = nprof_store_render_collapsed(store, &stacks);
    if (!rc) {
        char title[96];
        int n = snprintf(title, sizeof title, "nanoprof flame graph: %zu stored requests",
                         nprof_store_size(store));
        rc = nprof__flame_svg(out, stacks.data, stacks.len, title, (size_t)n, nonce);
    }
    nprof_buf_free(&stacks);
    return rc;
}

/* ---- trace.json ------------------------------------------------------------------------------ */

static void event_head(nprof__jw *j, const char *cat, uint64_t ts_ns, uint64_t dur_ns, size_t tid)
{
    nprof__jw_kstr(j, "cat", cat, strlen(cat));
    nprof__jw_kstr(j, "ph", "X", 1);
    nprof__jw_ku64(j, "pid", 1);
    nprof__jw_ku64(j, "tid", tid);
    nprof__jw_key(j, "ts"); /* microseconds, to the nanosecond */
    nprof__jw_fixed(j, ts_ns, 3);
    nprof__jw_key(j, "dur");
    nprof__jw_fixed(j, dur_ns, 3);
}

/* A metadata event naming the process (tid 0) or a track. */
static void name_event(nprof__jw *j, const char *what, size_t tid, const char *name, size_t len)
{
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "name", what, strlen(what));
    nprof__jw_kstr(j, "ph", "M", 1);
    nprof__jw_ku64(j, "pid", 1);
    nprof__jw_ku64(j, "tid", tid);
    nprof__jw_key(j, "args");
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "name", name, len);
    nprof__jw_obj_end(j);
    nprof__jw_obj_end(j);
}

static void trace_profile(nprof__jw *j, const nprof_profile *p, size_t tid)
{
    nprof_profile_info in;
    if (nprof_profile_get_info(p, &in))
        return;
    char label[NPROF__METHOD_MAX + 1 + 256];
    size_t pl = in.path_len < 256 ? in.path_len : 256;
    memcpy(label, in.method, in.method_len);
    label[in.method_len] = ' ';
    memcpy(label + in.method_len + 1, in.path, pl);
    name_event(j, "thread_name", tid, label, in.method_len + 1 + pl); /* the track's name */
    /* the request */
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "name", label, in.method_len + 1 + pl);
    event_head(j, "request", in.start_ns, in.total_ns, tid);
    nprof__jw_key(j, "args");
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "route", in.route, in.route_len);
    nprof__jw_kstr(j, "request_id", in.request_id, in.request_id_len);
    nprof__jw_ku64(j, "status", in.status > 0 ? (uint64_t)in.status : 0);
    nprof__jw_ku64(j, "sql_count", in.sql_count);
    nprof__jw_obj_end(j);
    nprof__jw_obj_end(j);
    for (size_t i = 0; i < in.span_count; i++) {
        nprof_span_info si;
        if (nprof_profile_get_span(p, i, &si))
            continue;
        nprof__jw_obj(j);
        nprof__jw_kstr(j, "name", si.name, si.name_len);
        event_head(j, si.phase >= 0 ? "phase" : "span", in.start_ns + si.start_offset_ns,
                   si.duration_ns, tid);
        nprof__jw_obj_end(j);
    }
    for (size_t i = 0; i < in.queries_kept; i++) {
        nprof_query_info qi;
        if (nprof_profile_get_query(p, i, &qi))
            continue;
        nprof__jw_obj(j);
        nprof__jw_kstr(j, "name", "sql", 3);
        event_head(j, "sql", in.start_ns + qi.start_offset_ns, qi.duration_ns, tid);
        nprof__jw_key(j, "args");
        nprof__jw_obj(j);
        nprof__jw_kstr(j, "sql", qi.sql, qi.sql_len);
        nprof__jw_ku64(j, "slow", (uint64_t)qi.slow);
        nprof__jw_obj_end(j);
        nprof__jw_obj_end(j);
    }
}

int nprof_mw_render_trace(nprof_mw *mw, nprof_buf *out)
{
    return mw ? nprof_store_render_trace(nprof_runtime_store(mw->rt), out) : NPROF_EINVAL;
}

int nprof_store_render_trace(nprof_store *store, nprof_buf *out)
{
    if (!store || !out)
        return NPROF_EINVAL;
    nprof_snapshot *snap = NULL;
    int rc = nprof_store_snapshot(store, &snap);
    if (rc)
        return rc;
    nprof__jw jw, *j = &jw;
    nprof__jw_init(j, out);
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "displayTimeUnit", "ns", 2);
    nprof__jw_key(j, "traceEvents");
    nprof__jw_arr(j);
    name_event(j, "process_name", 0, "nanoprof", 8);
    size_t n = nprof_snapshot_count(snap);
    for (size_t i = 0; i < n; i++)
        trace_profile(j, nprof_snapshot_get(snap, i), i + 1);
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
    nprof_snapshot_release(snap);
    return nprof__jw_finish(j);
}

/* ---- sampled call stacks ----------------------------------------------------------------------
 *
 * Below dashboard_path:
 *     /requests/<request_id>/flame.svg | flame.txt | speedscope.json | trace.json
 *     /routes/flame.svg | flame.txt | speedscope.json       ?route=<template> (else every route)
 * each with ?collapse=libs for NPROF_SAMPLES_COLLAPSE_LIBS.  The request id comes from the
 * client: it is only compared with the stored ones, never echoed, and anything but the
 * printable ASCII a request id can hold (nprof_profile_set_request_id()) is refused.
 */

typedef struct samples_file {
    const char *name;
    int format;
} samples_file;

static const samples_file request_files[] = {
    {"flame.svg", NPROF_SAMPLES_SVG},
    {"flame.txt", NPROF_SAMPLES_COLLAPSED},
    {"speedscope.json", NPROF_SAMPLES_SPEEDSCOPE},
    {"trace.json", NPROF_SAMPLES_CHROME},
};
#define ROUTE_FILES 3 /* the first three: a trace of summed stacks adds nothing to them */

#define REQUESTS_PREFIX "/requests/"
#define ROUTES_PREFIX "/routes/"

/* The format of file `name` among the first `count` of request_files, or -1. */
static int file_format(const char *name, size_t len, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(request_files[i].name) == len && !memcmp(request_files[i].name, name, len))
            return request_files[i].format;
    return -1;
}

/* Splits "/requests/<id>/<file>": the id's bytes and the file's format, or -1. */
static int request_export(const char *sub, size_t len, const char **id, size_t *id_len)
{
    size_t plen = sizeof REQUESTS_PREFIX - 1;
    if (len <= plen || memcmp(sub, REQUESTS_PREFIX, plen))
        return -1;
    size_t slash = len;
    while (slash > plen && sub[slash - 1] != '/')
        slash--;
    if (slash <= plen + 1 || slash - 1 - plen > NPROF__REQUEST_ID_MAX)
        return -1;
    *id = sub + plen;
    *id_len = slash - 1 - plen;
    for (size_t i = 0; i < *id_len; i++)
        if ((unsigned char)(*id)[i] <= 0x20 || (unsigned char)(*id)[i] >= 0x7F)
            return -1;
    return file_format(sub + slash, len - slash, sizeof request_files / sizeof request_files[0]);
}

int nprof__mw_samples_format(const char *sub, size_t len)
{
    const char *id;
    size_t id_len, plen = sizeof ROUTES_PREFIX - 1;
    if (len > plen && !memcmp(sub, ROUTES_PREFIX, plen))
        return file_format(sub + plen, len - plen, ROUTE_FILES);
    return request_export(sub, len, &id, &id_len);
}

/* The request's stored profile with id `id` that has samples, rendered; NPROF_ENOENT when
 * there is none. */
static int render_request_samples(nprof_store *store, const char *id, size_t id_len, int format,
                                  unsigned flags, const char *nonce, nprof_buf *out)
{
    nprof_snapshot *snap = NULL;
    int rc = nprof_store_snapshot(store, &snap);
    if (rc)
        return rc;
    rc = NPROF_ENOENT;
    /* Newest first: an id the application set may repeat, the latest is the one asked for. */
    for (size_t i = nprof_snapshot_count(snap); i-- > 0 && rc == NPROF_ENOENT;) {
        const nprof_profile *p = nprof_snapshot_get(snap, i);
        nprof_profile_info in;
        nprof_samples_info si;
        if (nprof_profile_get_info(p, &in) || in.request_id_len != id_len ||
            memcmp(in.request_id, id, id_len) || nprof_profile_get_samples_info(p, &si) ||
            !si.samples)
            continue;
        rc = nprof__profile_render_samples(p, format, flags, nonce, out);
    }
    nprof_snapshot_release(snap);
    return rc;
}

int nprof__mw_render_samples(nprof_mw *mw, const nprof_mw_request *req, const char *sub,
                             size_t sub_len, const char *nonce, nprof_buf *out)
{
    int format = nprof__mw_samples_format(sub, sub_len);
    if (format < 0)
        return NPROF_ENOENT;
    size_t len = 0;
    const char *v = nprof__mw_query_param(req, "collapse", &len);
    unsigned flags = v && len == 4 && !memcmp(v, "libs", 4) ? NPROF_SAMPLES_COLLAPSE_LIBS : 0;
    nprof_store *store = nprof_runtime_store(mw->rt);
    const char *id;
    size_t id_len;
    if (request_export(sub, sub_len, &id, &id_len) >= 0)
        return render_request_samples(store, id, id_len, format, flags, nonce, out);
    v = nprof__mw_query_param(req, "route", &len);
    if (!v)
        return nprof__store_render_samples(store, NULL, 0, format, flags, nonce, out);
    char route[NPROF__ROUTE_MAX + 1];
    size_t n = nprof__mw_url_decode(v, len, route, sizeof route);
    if (n > sizeof route)
        return NPROF_ENOENT; /* longer than any route a profile keeps for its row */
    return nprof__store_render_samples(store, route, n, format, flags, nonce, out);
}
