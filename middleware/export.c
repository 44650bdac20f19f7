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
    if (!store || !out)
        return NPROF_EINVAL;
    nprof_buf stacks = NPROF_BUF_INIT;
    int rc = nprof_store_render_collapsed(store, &stacks);
    if (!rc) {
        char title[96];
        int n = snprintf(title, sizeof title, "nanoprof flame graph: %zu stored requests",
                         nprof_store_size(store));
        rc = nprof__flame_svg(out, stacks.data, stacks.len, title, (size_t)n);
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
