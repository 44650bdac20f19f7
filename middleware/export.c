/*
 * middleware/export.c: the exports below dashboard_path that other tools open:
 * flamegraph.svg, a flame graph drawn by us from the store's collapsed stacks (the same data
 * as flamegraph.txt), and trace.json, the stored requests in the Chrome Trace Event format,
 * one track per request with its phases, spans and queries, for Perfetto or chrome://tracing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "internal.h"
#include "nanoprof/store.h"
#include "runtime/jsonw.h"

/* ---- flamegraph.svg ----------------------------------------------------------------------- */

typedef struct fnode {
    size_t name, name_len;  /* in the collapsed text */
    uint32_t first_child, next_sibling, depth;
    uint64_t total;         /* ns of this frame and everything above it */
} fnode;

typedef struct ftree {
    fnode *n;
    size_t count, cap;
    uint32_t max_depth;
} ftree;

static int64_t fnode_new(ftree *t, size_t name, size_t len, uint32_t depth)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        fnode *n = realloc(t->n, cap * sizeof *n);
        if (!n)
            return -1;
        t->n = n;
        t->cap = cap;
    }
    t->n[t->count] = (fnode){.name = name, .name_len = len, .first_child = 0,
                             .next_sibling = 0, .depth = depth, .total = 0};
    if (depth > t->max_depth)
        t->max_depth = depth;
    return (int64_t)t->count++;
}

/* Builds the tree of frames from "a;b;c ns" lines; node 0 is the root ("all"). */
static int ftree_build(ftree *t, const char *text, size_t len)
{
    if (fnode_new(t, 0, 0, 0) < 0)
        return NPROF_ENOMEM;
    size_t pos = 0;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n')
            eol++;
        size_t sp = eol;
        while (sp > pos && text[sp - 1] != ' ')
            sp--;
        if (sp > pos + 1) {
            uint64_t ns = strtoull(text + sp, NULL, 10);
            uint32_t cur = 0;
            t->n[0].total += ns;
            size_t f = pos;
            while (f < sp - 1) {
                size_t fe = f;
                while (fe < sp - 1 && text[fe] != ';')
                    fe++;
                uint32_t child = t->n[cur].first_child, last = 0;
                while (child && !(t->n[child].name_len == fe - f &&
                                  !memcmp(text + t->n[child].name, text + f, fe - f))) {
                    last = child;
                    child = t->n[child].next_sibling;
                }
                if (!child) {
                    int64_t c = fnode_new(t, f, fe - f, t->n[cur].depth + 1);
                    if (c < 0)
                        return NPROF_ENOMEM;
                    child = (uint32_t)c;
                    if (last)
                        t->n[last].next_sibling = child;
                    else
                        t->n[cur].first_child = child;
                }
                t->n[child].total += ns;
                cur = child;
                f = fe + 1;
            }
        }
        pos = eol + 1;
    }
    return NPROF_OK;
}

/* XML text: & < > " ' escaped, control bytes as spaces. */
static int xml_text(nprof_buf *out, const char *s, size_t len)
{
    int rc = NPROF_OK;
    for (size_t i = 0; i < len && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&': rc = nprof__buf_append_cstr(out, "&amp;"); break;
        case '<': rc = nprof__buf_append_cstr(out, "&lt;"); break;
        case '>': rc = nprof__buf_append_cstr(out, "&gt;"); break;
        case '"': rc = nprof__buf_append_cstr(out, "&quot;"); break;
        case '\'': rc = nprof__buf_append_cstr(out, "&#39;"); break;
        default: rc = nprof__buf_append_char(out, c < 0x20 ? ' ' : (char)c); break;
        }
    }
    return rc;
}

#define SVG_WIDTH 1200
#define SVG_FRAME 17
#define SVG_PAD 10
#define SVG_TOP 34

/* `v` (>= 0) with one decimal, written with integers into `out` (32 bytes); returns out. */
static const char *tenths(double v, char *out)
{
    uint64_t t = v > 0 ? (uint64_t)(v * 10 + 0.5) : 0;
    snprintf(out, 32, "%llu.%u", (unsigned long long)(t / 10), (unsigned)(t % 10));
    return out;
}

static int svg_frames(nprof_buf *out, const ftree *t, const char *text, uint32_t node,
                      double x, double scale, double height)
{
    const fnode *n = &t->n[node];
    double w = (double)n->total * scale;
    if (w < 0.5)
        return NPROF_OK;
    const char *name = node ? text + n->name : "all";
    size_t name_len = node ? n->name_len : 3;
    double y = height - SVG_PAD - (double)(n->depth + 1) * SVG_FRAME;
    uint64_t h = XXH3_64bits(name, name_len);
    char tmp[256];
    int rc = nprof__buf_append_cstr(out, "<g><title>");
    rc = rc ? rc : xml_text(out, name, name_len);
    uint64_t root = t->n[0].total ? t->n[0].total : 1;
    uint64_t us = (n->total + 500) / 1000;
    uint64_t bp = (uint64_t)((double)n->total * 10000.0 / (double)root); /* basis points */
    char xs[32], ys[32], ws[32];
    /* Integers only, never %f: a host's LC_NUMERIC could write a decimal comma into the SVG. */
    snprintf(tmp, sizeof tmp,
             " (%llu.%03u ms, %u.%02u%%)</title><rect x=\"%s\" y=\"%s\" width=\"%s\" "
             "height=\"%d\" fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>",
             (unsigned long long)(us / 1000), (unsigned)(us % 1000), (unsigned)(bp / 100),
             (unsigned)(bp % 100), tenths(x, xs), tenths(y, ys), tenths(w, ws), SVG_FRAME - 1,
             205 + (unsigned)(h % 50), 80 + (unsigned)((h >> 8) % 130),
             (unsigned)((h >> 16) % 55));
    rc = rc ? rc : nprof__buf_append_cstr(out, tmp);
    size_t fit = w > 12 ? (size_t)((w - 6) / 7) : 0;
    if (fit >= 3) {
        size_t show = name_len;
        int cut = 0;
        if (show > fit) {
            show = fit - 2;
            while (show > 0 && ((unsigned char)name[show] & 0xC0) == 0x80)
                show--; /* never cut a UTF-8 sequence */
            cut = 1;
        }
        char tx[32], ty[32];
        snprintf(tmp, sizeof tmp, "<text x=\"%s\" y=\"%s\">", tenths(x + 3, tx),
                 tenths(y + SVG_FRAME - 5, ty));
        rc = rc ? rc : nprof__buf_append_cstr(out, tmp);
        rc = rc ? rc : xml_text(out, name, show);
        rc = rc ? rc : nprof__buf_append_cstr(out, cut ? "..</text>" : "</text>");
    }
    rc = rc ? rc : nprof__buf_append_cstr(out, "</g>\n");
    double cx = x;
    for (uint32_t c = n->first_child; c && !rc; c = t->n[c].next_sibling) {
        rc = svg_frames(out, t, text, c, cx, scale, height);
        cx += (double)t->n[c].total * scale;
    }
    return rc;
}

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
    ftree t = {0};
    if (!rc)
        rc = ftree_build(&t, stacks.data ? stacks.data : "", stacks.len);
    if (!rc) {
        double height = SVG_TOP + (double)(t.max_depth + 1) * SVG_FRAME + 2 * SVG_PAD;
        double scale = t.n[0].total ? (double)(SVG_WIDTH - 2 * SVG_PAD) / (double)t.n[0].total : 0;
        char head[512];
        snprintf(head, sizeof head,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%u\" "
                 "viewBox=\"0 0 %d %u\" font-family=\"monospace\" font-size=\"12\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f8\"/>\n"
                 "<text x=\"%d\" y=\"22\" font-size=\"16\">nanoprof flame graph: %zu stored "
                 "requests</text>\n",
                 SVG_WIDTH, (unsigned)height, SVG_WIDTH, (unsigned)height, SVG_PAD,
                 nprof_store_size(store));
        rc = nprof__buf_append_cstr(out, head);
        if (!rc && t.n[0].total)
            rc = svg_frames(out, &t, stacks.data, 0, SVG_PAD, scale, height);
        if (!rc)
            rc = nprof__buf_append_cstr(out, "</svg>\n");
    }
    free(t.n);
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
