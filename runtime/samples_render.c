/*
 * runtime/samples_render.c: sampled call stacks out, for nprof_profile_render_samples(),
 * nprof_store_render_samples() and the "samples" member of the profile's JSON.
 *
 * Every view goes the same way: the stacks of one profile (or of a route's stored profiles)
 * are merged into collapsed.c's stack map, frames cleaned by nprof__frame_name() (and, with
 * NPROF_SAMPLES_COLLAPSE_LIBS, each run of one library's frames made one "[lib]" frame,
 * which can merge stacks that differed only inside the library), time lost to limits under
 * "[dropped]".  The map gives collapsed text, in which a query's stack ends in its label with
 * count and mean ("SQL SELECT ... (12 x 3.1ms)"); the SVG (flame.c), the Chrome trace and
 * speedscope's document are drawn from that text, so they all show the same frames.
 *
 * The JSON member is the exception: it gives the frames as the sampler gave them (escaped
 * by the JSON writer), for tools that want the raw names and libraries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collapsed.h"
#include "flame.h"
#include "jsonw.h"
#include "profile.h"
#include "text.h"

#define FRAME_MAX 256 /* bytes of a frame's name in the views */
#define LIB_MAX 64    /* bytes of a library's name in a "[lib]" frame */
#define TITLE_MAX 400 /* bytes of a view's title */

static const char speedscope_schema[] = "https://www.speedscope.app/file-format-schema.json";

/* ---- profiles into the stack map ------------------------------------------------------------ */

static int same_lib(const nprof__sframe *a, const nprof__sframe *b)
{
    return a->lib_len == b->lib_len && !memcmp(a->lib, b->lib, a->lib_len);
}

/* Appends one frame of a collapsed stack, after a ';' unless it is the first. */
static int put_frame(nprof_buf *keys, size_t key, const char *open, const char *s, size_t len,
                     size_t max, const char *close)
{
    int rc = keys->len > key ? nprof__buf_append_char(keys, ';') : NPROF_OK;
    rc = rc ? rc : nprof__buf_append_cstr(keys, open);
    rc = rc ? rc : nprof__frame_name(keys, s, len, max);
    return rc ? rc : nprof__buf_append_cstr(keys, close);
}

/* Adds `ns` and `count` to the stack just written to st->keys from `key` on. */
static int merge(nprof__stacks *st, size_t key, unsigned flags, uint64_t ns, uint64_t count)
{
    nprof__stack_entry *e = nprof__stacks_take_key(st, key, flags);
    if (!e)
        return NPROF_ENOMEM;
    e->ns += ns;
    e->count += count;
    return NPROF_OK;
}

/* Adds every sampled stack of `p` to `st` (see the top of the file). */
static int add_samples(nprof__stacks *st, const nprof_profile *p, unsigned flags)
{
    const nprof__samples *s = &p->samples;
    int rc = NPROF_OK;
    for (uint32_t i = 0; i < s->stack_count && rc == NPROF_OK; i++) {
        const nprof__sstack *k = &s->stacks[i];
        size_t key = st->keys.len;
        const nprof__sframe *run = NULL; /* the first frame of the library run being merged */
        for (uint32_t d = 0; d < k->depth && rc == NPROF_OK; d++) {
            const nprof__sframe *f = &s->frames[k->frames[d]];
            int query = (k->flags & NPROF_SAMPLE_SQL) && d + 1 == k->depth;
            if ((flags & NPROF_SAMPLES_COLLAPSE_LIBS) && f->lib && !query) {
                if (!run || !same_lib(run, f))
                    rc = put_frame(&st->keys, key, "[", f->lib, f->lib_len, LIB_MAX, "]");
                run = f;
                continue;
            }
            run = NULL;
            rc = put_frame(&st->keys, key, "", f->name, f->name_len, FRAME_MAX, "");
        }
        if (!k->depth && !rc)
            rc = nprof__buf_append_cstr(&st->keys, "[no frames]");
        if (!rc)
            rc = merge(st, key, k->flags, k->ns, k->count);
    }
    if (!rc && s->dropped) {
        size_t key = st->keys.len;
        rc = nprof__buf_append_cstr(&st->keys, "[dropped]");
        rc = rc ? rc : merge(st, key, 0, s->dropped_ns, s->dropped);
    }
    return rc;
}

/* ---- collapsed text ------------------------------------------------------------------------- */

/* Appends "frames[ (N x mean)] ns\n" per stack, sorted by stack: a query's stack says how
 * many times it ran and how long it took on average. */
static int collapsed_text(const nprof__stacks *st, nprof_buf *out)
{
    nprof__stack_line *lines;
    size_t n;
    int rc = nprof__stacks_lines(st, &lines, &n);
    nprof__tw t;
    nprof__tw_init(&t, out);
    for (size_t i = 0; i < n && rc == NPROF_OK; i++) {
        const nprof__stack_entry *e = lines[i].entry;
        nprof__tw_raw(&t, lines[i].key, lines[i].len);
        if (e->flags & NPROF_SAMPLE_SQL) {
            char mean[NPROF__DURATION_MAX];
            nprof__tw_cstr(&t, " (");
            nprof__tw_u64(&t, e->count);
            nprof__tw_cstr(&t, " x ");
            nprof__format_duration(e->count ? e->ns / e->count : 0, mean);
            nprof__tw_cstr(&t, mean);
            nprof__tw_cstr(&t, ")");
        }
        nprof__tw_cstr(&t, " ");
        nprof__tw_u64(&t, e->ns);
        nprof__tw_cstr(&t, "\n");
    }
    free(lines);
    nprof__tw_check(&t, rc);
    return nprof__tw_finish(&t);
}

/* ---- speedscope ------------------------------------------------------------------------------ */

/*
 * speedscope's file format: one "sampled" profile whose samples are the distinct stacks
 * (each a list of indexes into the shared frames) weighted by their time in nanoseconds.
 * Frames are numbered in first-seen order through a second stack map, used as a set of
 * names: an entry's count is its index + 1.
 */
static void speedscope(nprof__jw *j, const char *text, size_t len, const char *title,
                       size_t title_len)
{
    nprof__stacks names;
    nprof__stacks_init(&names);
    uint64_t total = 0, frames = 0;
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "$schema", speedscope_schema, sizeof speedscope_schema - 1);
    nprof__jw_kstr(j, "exporter", "nanoprof " NPROF_VERSION_STRING,
                   strlen("nanoprof " NPROF_VERSION_STRING));
    nprof__jw_kstr(j, "name", title, title_len);
    nprof__jw_ku64(j, "activeProfileIndex", 0);
    nprof__jw_key(j, "profiles");
    nprof__jw_arr(j);
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "type", "sampled", 7);
    nprof__jw_kstr(j, "name", title, title_len);
    nprof__jw_kstr(j, "unit", "nanoseconds", 11);
    nprof__jw_ku64(j, "startValue", 0);
    nprof__jw_key(j, "samples");
    nprof__jw_arr(j);
    for (size_t pos = 0, frames_len; pos < len;) {
        uint64_t ns;
        size_t line = pos;
        pos = nprof__collapsed_line(text, len, pos, &frames_len, &ns);
        nprof__jw_arr(j);
        for (size_t f = line, end = line + frames_len; f < end; f++) {
            size_t fe = f;
            while (fe < end && text[fe] != ';')
                fe++;
            size_t key = names.keys.len;
            nprof__tw_check(&j->t, nprof__buf_append(&names.keys, text + f, fe - f));
            nprof__stack_entry *e = j->t.rc ? NULL : nprof__stacks_take_key(&names, key, 0);
            if (!e) {
                nprof__tw_check(&j->t, NPROF_ENOMEM);
                break;
            }
            if (!e->count) {
                e->count = ++frames;
                e->ns = 1; /* listed by nprof__stacks_lines() */
            }
            nprof__jw_u64(j, e->count - 1);
            f = fe;
        }
        nprof__jw_arr_end(j);
        total += ns;
    }
    nprof__jw_arr_end(j);
    nprof__jw_key(j, "weights");
    nprof__jw_arr(j);
    for (size_t pos = 0, frames_len; pos < len;) {
        uint64_t ns;
        pos = nprof__collapsed_line(text, len, pos, &frames_len, &ns);
        nprof__jw_u64(j, ns);
    }
    nprof__jw_arr_end(j);
    nprof__jw_ku64(j, "endValue", total);
    nprof__jw_obj_end(j);
    nprof__jw_arr_end(j);
    /* The shared frames, by index. */
    nprof__stack_line *lines = NULL;
    size_t n = 0;
    nprof__tw_check(&j->t, nprof__stacks_lines(&names, &lines, &n));
    const nprof__stack_line **by_index = n ? calloc(n, sizeof *by_index) : NULL;
    if (n && !by_index)
        nprof__tw_check(&j->t, NPROF_ENOMEM);
    for (size_t i = 0; by_index && i < n; i++)
        by_index[lines[i].entry->count - 1] = &lines[i];
    nprof__jw_key(j, "shared");
    nprof__jw_obj(j);
    nprof__jw_key(j, "frames");
    nprof__jw_arr(j);
    for (size_t i = 0; by_index && i < n; i++) {
        nprof__jw_obj(j);
        nprof__jw_kstr(j, "name", by_index[i]->key, by_index[i]->len);
        nprof__jw_obj_end(j);
    }
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
    nprof__jw_obj_end(j);
    free(by_index);
    free(lines);
    nprof__stacks_free(&names);
}

/* ---- Chrome Trace Event format ------------------------------------------------------------- */

/* Node `node` and the frames above it as complete events, laid out as the flame graph is:
 * each frame spans its time, its children side by side from its start.  Timestamps are
 * microseconds (to the nanosecond) from 0: the layout of merged stacks, not a timeline. */
static void chrome_node(nprof__jw *j, const nprof__ftree *t, const char *text, uint32_t node,
                        uint64_t start_ns)
{
    const nprof__fnode *n = &t->n[node];
    if (node) {
        nprof__jw_obj(j);
        nprof__jw_kstr(j, "name", text + n->name, n->name_len);
        nprof__jw_kstr(j, "cat", "sample", 6);
        nprof__jw_kstr(j, "ph", "X", 1);
        nprof__jw_ku64(j, "pid", 1);
        nprof__jw_ku64(j, "tid", 1);
        nprof__jw_key(j, "ts");
        nprof__jw_fixed(j, start_ns, 3);
        nprof__jw_key(j, "dur");
        nprof__jw_fixed(j, n->total, 3);
        nprof__jw_obj_end(j);
    }
    for (uint32_t c = n->first_child; c && !j->t.rc; c = t->n[c].next_sibling) {
        chrome_node(j, t, text, c, start_ns);
        start_ns += t->n[c].total;
    }
}

static void chrome(nprof__jw *j, const char *text, size_t len, const char *title,
                   size_t title_len)
{
    nprof__ftree t = {0};
    nprof__tw_check(&j->t, nprof__ftree_build(&t, text, len));
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "displayTimeUnit", "ns", 2);
    nprof__jw_key(j, "traceEvents");
    nprof__jw_arr(j);
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "name", "process_name", 12);
    nprof__jw_kstr(j, "ph", "M", 1);
    nprof__jw_ku64(j, "pid", 1);
    nprof__jw_key(j, "args");
    nprof__jw_obj(j);
    nprof__jw_kstr(j, "name", title, title_len);
    nprof__jw_obj_end(j);
    nprof__jw_obj_end(j);
    if (!j->t.rc)
        chrome_node(j, &t, text, 0, 0);
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
    nprof__ftree_free(&t);
}

/* ---- the formats ---------------------------------------------------------------------------- */

static int check_format(int format, unsigned flags)
{
    return format >= NPROF_SAMPLES_COLLAPSED && format <= NPROF_SAMPLES_SVG &&
           !(flags & ~NPROF_SAMPLES_COLLAPSE_LIBS);
}

/* Appends the merged stacks of `st` in `format`, the document named `title` (an SVG's script
 * carrying `nonce`). */
static int render(const nprof__stacks *st, int format, const char *title, size_t title_len,
                  const char *nonce, nprof_buf *out)
{
    if (format == NPROF_SAMPLES_COLLAPSED)
        return collapsed_text(st, out);
    nprof_buf text = NPROF_BUF_INIT;
    int rc = collapsed_text(st, &text);
    const char *s = text.data ? text.data : "";
    if (!rc && format == NPROF_SAMPLES_SVG) {
        rc = nprof__flame_svg(out, s, text.len, title, title_len, nonce);
    } else if (!rc) {
        nprof__jw jw;
        nprof__jw_init(&jw, out);
        if (format == NPROF_SAMPLES_SPEEDSCOPE)
            speedscope(&jw, s, text.len, title, title_len);
        else
            chrome(&jw, s, text.len, title, title_len);
        rc = nprof__jw_finish(&jw);
    }
    nprof_buf_free(&text);
    return rc;
}

/* "<prefix><text> (<number> <unit>)" into `title`, the text cut to fit; returns the length. */
static size_t make_title(char *title, const char *prefix, const char *text, size_t len,
                         uint64_t number, const char *unit)
{
    size_t room = TITLE_MAX - 64 - strlen(prefix);
    int n = snprintf(title, TITLE_MAX, "%s%.*s (%llu %s)", prefix,
                     (int)(len < room ? len : room), text, (unsigned long long)number, unit);
    return n > 0 ? (size_t)n : 0;
}

int nprof_profile_render_samples(const nprof_profile *p, int format, unsigned flags,
                                 nprof_buf *out)
{
    return nprof__profile_render_samples(p, format, flags, NULL, out);
}

int nprof__profile_render_samples(const nprof_profile *p, int format, unsigned flags,
                                  const char *nonce, nprof_buf *out)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!out || !check_format(format, flags))
        return NPROF_EINVAL;
    nprof__stacks st;
    nprof__stacks_init(&st);
    int rc = add_samples(&st, p, flags);
    char title[TITLE_MAX];
    char what[NPROF__METHOD_MAX + 1 + FRAME_MAX];
    size_t path_len = p->path_len < FRAME_MAX ? p->path_len : FRAME_MAX;
    memcpy(what, p->method, p->method_len);
    what[p->method_len] = ' ';
    memcpy(what + p->method_len + 1, p->path, path_len);
    size_t title_len = make_title(title, "nanoprof: ", what, p->method_len + 1 + path_len,
                                  p->samples.samples, "samples");
    if (!rc)
        rc = render(&st, format, title, title_len, nonce, out);
    nprof__stacks_free(&st);
    return rc;
}

int nprof_store_render_samples(nprof_store *s, const char *route, size_t route_len,
                               int format, unsigned flags, nprof_buf *out)
{
    return nprof__store_render_samples(s, route, route_len, format, flags, NULL, out);
}

int nprof__store_render_samples(nprof_store *s, const char *route, size_t route_len,
                                int format, unsigned flags, const char *nonce, nprof_buf *out)
{
    if (!s || !out || (!route && route_len) || !check_format(format, flags))
        return NPROF_EINVAL;
    nprof_snapshot *snap;
    int rc = nprof_store_snapshot(s, &snap);
    if (rc)
        return rc;
    nprof__stacks st;
    nprof__stacks_init(&st);
    uint64_t sampled = 0;
    size_t n = nprof_snapshot_count(snap);
    for (size_t i = 0; i < n && rc == NPROF_OK; i++) {
        const nprof_profile *p = nprof_snapshot_get(snap, i);
        if (!p->samples.samples ||
            (route && (p->route_len != route_len || memcmp(p->route, route, route_len))))
            continue;
        sampled++;
        rc = add_samples(&st, p, flags);
    }
    char title[TITLE_MAX];
    size_t title_len = route ? make_title(title, "nanoprof: ", route, route_len, sampled,
                                          "sampled requests")
                             : make_title(title, "nanoprof: ", "every route", 11, sampled,
                                          "sampled requests");
    if (!rc)
        rc = render(&st, format, title, title_len, nonce, out);
    nprof__stacks_free(&st);
    nprof_snapshot_release(snap);
    return rc;
}

/* ---- the profile's JSON --------------------------------------------------------------------- */

void nprof__samples_json(nprof__jw *j, const nprof_profile *p)
{
    const nprof__samples *s = &p->samples;
    if (!s->samples)
        return;
    nprof__jw_key(j, "samples");
    nprof__jw_obj(j);
    nprof__jw_ku64(j, "sampled_ns", s->sampled_ns);
    nprof__jw_ku64(j, "samples", s->samples);
    nprof__jw_ku64(j, "dropped", s->dropped);
    nprof__jw_ku64(j, "dropped_ns", s->dropped_ns);
    nprof__jw_key(j, "stacks");
    nprof__jw_arr(j);
    for (uint32_t i = 0; i < s->stack_count; i++) {
        const nprof__sstack *k = &s->stacks[i];
        int libs = 0;
        nprof__jw_obj(j);
        nprof__jw_key(j, "frames");
        nprof__jw_arr(j);
        for (uint32_t d = 0; d < k->depth; d++) {
            const nprof__sframe *f = &s->frames[k->frames[d]];
            nprof__jw_str(j, f->name, f->name_len);
            libs |= f->lib != NULL;
        }
        nprof__jw_arr_end(j);
        if (libs) {
            /* Beside the frames, one for one: null for application code. */
            nprof__jw_key(j, "libs");
            nprof__jw_arr(j);
            for (uint32_t d = 0; d < k->depth; d++) {
                const nprof__sframe *f = &s->frames[k->frames[d]];
                if (f->lib)
                    nprof__jw_str(j, f->lib, f->lib_len);
                else
                    nprof__jw_null(j);
            }
            nprof__jw_arr_end(j);
        }
        nprof__jw_ku64(j, "ns", k->ns);
        nprof__jw_ku64(j, "count", k->count);
        nprof__jw_key(j, "sql");
        nprof__jw_bool(j, (k->flags & NPROF_SAMPLE_SQL) != 0);
        nprof__jw_obj_end(j);
    }
    nprof__jw_arr_end(j);
    nprof__jw_obj_end(j);
}
