/*
 * runtime/flame.c: the flame graph drawer.  Collapsed stacks become a tree of frames (one
 * node per distinct path from the root), and the tree becomes an SVG whose frames are sized
 * by time, widest at the bottom, with a tooltip of each frame's time and share.  Reached from
 * the store's flame graph (middleware/export.c, /flamegraph.svg) and from sampled stacks
 * (samples_render.c, nprof_profile_render_samples() and the dashboard's per-request and
 * per-route flame graphs).  Off the request path; scratch memory from malloc.
 *
 * The SVG is self-contained (no external resource).  Its one script zooms: a click on a frame
 * widens it to the whole width with what lies above it, and a click on "all" goes back; it
 * reads the drawing's own attributes and writes text with textContent only.  The dashboard
 * serves it with a nonce its Content-Security-Policy names; opened from a file, it runs as
 * is; under a policy without the nonce it does not run, and the graph stays as drawn.
 */
#include "flame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "jsonw.h"

static int64_t fnode_new(nprof__ftree *t, size_t name, size_t len, uint32_t depth)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        nprof__fnode *n = realloc(t->n, cap * sizeof *n);
        if (!n)
            return -1;
        t->n = n;
        t->cap = cap;
    }
    t->n[t->count] = (nprof__fnode){.name = name, .name_len = len, .first_child = 0,
                                    .next_sibling = 0, .depth = depth, .total = 0};
    if (depth > t->max_depth)
        t->max_depth = depth;
    return (int64_t)t->count++;
}

size_t nprof__collapsed_line(const char *text, size_t len, size_t pos, size_t *frames_len,
                             uint64_t *ns)
{
    size_t eol = pos;
    while (eol < len && text[eol] != '\n')
        eol++;
    size_t sp = eol;
    while (sp > pos && text[sp - 1] != ' ')
        sp--;
    *frames_len = sp > pos ? sp - 1 - pos : 0;
    *ns = strtoull(text + sp, NULL, 10);
    return eol + 1;
}

int nprof__ftree_build(nprof__ftree *t, const char *text, size_t len)
{
    if (fnode_new(t, 0, 0, 0) < 0)
        return NPROF_ENOMEM;
    for (size_t pos = 0, line, frames_len; pos < len;) {
        uint64_t ns;
        line = pos;
        pos = nprof__collapsed_line(text, len, pos, &frames_len, &ns);
        uint32_t cur = 0;
        t->n[0].total += ns;
        for (size_t f = line, end = line + frames_len; f < end; f++) {
            size_t fe = f;
            while (fe < end && text[fe] != ';')
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
            f = fe;
        }
    }
    return NPROF_OK;
}

void nprof__ftree_free(nprof__ftree *t)
{
    free(t->n);
    memset(t, 0, sizeof *t);
}

/* XML text and attribute values: the five markup characters as entities, control bytes as
 * spaces (XML 1.0 allows none of them but tab and line breaks), invalid UTF-8 as U+FFFD. */
#define SP(c) [c] = {" ", 1}
static const nprof__escapes xml_escapes = {
    .widest = 6,
    .ascii = {
        SP(0x00), SP(0x01), SP(0x02), SP(0x03), SP(0x04), SP(0x05), SP(0x06), SP(0x07),
        SP(0x08), SP(0x09), SP(0x0a), SP(0x0b), SP(0x0c), SP(0x0d), SP(0x0e), SP(0x0f),
        SP(0x10), SP(0x11), SP(0x12), SP(0x13), SP(0x14), SP(0x15), SP(0x16), SP(0x17),
        SP(0x18), SP(0x19), SP(0x1a), SP(0x1b), SP(0x1c), SP(0x1d), SP(0x1e), SP(0x1f),
        SP(0x7f), ['&'] = {"&amp;", 5}, ['<'] = {"&lt;", 4}, ['>'] = {"&gt;", 4},
        ['"'] = {"&quot;", 6}, ['\''] = {"&#39;", 5},
    },
};
#undef SP

static int xml_text(nprof_buf *out, const char *s, size_t len)
{
    nprof__tw t;
    nprof__tw_init(&t, out);
    nprof__tw_escaped(&t, s, len, &xml_escapes, 0);
    return nprof__tw_finish(&t);
}

#define SVG_WIDTH 1200
#define SVG_FRAME 17
#define SVG_PAD 10
#define SVG_TOP 34
#define NPROF__FLAME_STR(x) #x
#define NPROF__FLAME_XSTR(x) NPROF__FLAME_STR(x) /* a constant above, as text */

/* `v` (>= 0) with one decimal, written with integers into `out` (32 bytes); returns out. */
static const char *tenths(double v, char *out)
{
    uint64_t t = v > 0 ? (uint64_t)(v * 10 + 0.5) : 0;
    snprintf(out, 32, "%llu.%u", (unsigned long long)(t / 10), (unsigned)(t % 10));
    return out;
}

static int svg_frames(nprof_buf *out, const nprof__ftree *t, const char *text, uint32_t node,
                      double x, double scale, double height)
{
    const nprof__fnode *n = &t->n[node];
    double w = (double)n->total * scale;
    if (w < 0.5)
        return NPROF_OK;
    const char *name = node ? text + n->name : "all";
    size_t name_len = node ? n->name_len : 3;
    double y = height - SVG_PAD - (double)(n->depth + 1) * SVG_FRAME;
    uint64_t h = XXH3_64bits(name, name_len);
    char tmp[256];
    int rc = nprof__buf_append_cstr(out, "<g class=\"f\"><title>");
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

/* The zoom (see the top).  Each frame keeps its drawn place (x0, w0, y0) and its label (its
 * title without the " (time, share)" the drawer appends); zooming on frame z shows z and the
 * frames above it whose middle lies inside z, scaled to the width, its ancestors at full
 * width, and hides the rest.  Labels are cut to the width as the drawer cuts them.  No '<' in it:
 * every '<' of the document opens markup of ours. */
static const char zoom_script[] =
    "(function () {\n"
    "  var W = " NPROF__FLAME_XSTR(SVG_WIDTH) ", PAD = " NPROF__FLAME_XSTR(SVG_PAD) ";\n"
    "  var NS = \"http://www.w3.org/2000/svg\";\n"
    "  var frames = Array.prototype.slice.call(document.querySelectorAll(\"g.f\"));\n"
    "  function fit(g, x, w) {\n"
    "    g.rect.setAttribute(\"x\", x.toFixed(1));\n"
    "    g.rect.setAttribute(\"width\", w.toFixed(1));\n"
    "    var n = w > 12 ? Math.floor((w - 6) / 7) : 0;\n"
    "    var t = g.querySelector(\"text\");\n"
    "    if (!t && n >= 3) {\n"
    "      t = document.createElementNS(NS, \"text\");\n"
    "      t.setAttribute(\"y\", (g.y0 + " NPROF__FLAME_XSTR(SVG_FRAME) " - 5).toFixed(1));\n"
    "      g.appendChild(t);\n"
    "    }\n"
    "    if (!t) return;\n"
    "    t.setAttribute(\"x\", (x + 3).toFixed(1));\n"
    "    t.textContent = n >= 3 ? (g.label.length > n ? g.label.slice(0, n - 2) + \"..\" : g.label) : \"\";\n"
    "  }\n"
    "  function zoom(z) {\n"
    "    var scale = (W - 2 * PAD) / z.w0;\n"
    "    frames.forEach(function (g) {\n"
    "      var mid = g.x0 + g.w0 / 2;\n"
    "      var inside = mid >= z.x0 && z.x0 + z.w0 >= mid;\n"
    "      var below = g.y0 > z.y0 && z.x0 + 0.1 >= g.x0 && g.x0 + g.w0 >= z.x0 + z.w0 - 0.1;\n"
    "      var show = below || g === z || (z.y0 > g.y0 && inside);\n"
    "      g.style.display = show ? \"\" : \"none\";\n"
    "      if (show) fit(g, below ? PAD : PAD + (g.x0 - z.x0) * scale, below ? W - 2 * PAD : g.w0 * scale);\n"
    "    });\n"
    "  }\n"
    "  frames.forEach(function (g) {\n"
    "    g.rect = g.querySelector(\"rect\");\n"
    "    g.x0 = Number(g.rect.getAttribute(\"x\"));\n"
    "    g.w0 = Number(g.rect.getAttribute(\"width\"));\n"
    "    g.y0 = Number(g.rect.getAttribute(\"y\"));\n"
    "    var t = g.querySelector(\"title\").textContent;\n"
    "    g.label = t.slice(0, t.lastIndexOf(\" (\"));\n"
    "    g.addEventListener(\"click\", function () { zoom(g); });\n"
    "  });\n"
    "})();\n";

int nprof__flame_svg(nprof_buf *out, const char *text, size_t len, const char *title,
                     size_t title_len, const char *nonce)
{
    nprof__ftree t = {0};
    int rc = nprof__ftree_build(&t, text ? text : "", text ? len : 0);
    if (!rc) {
        double height = SVG_TOP + (double)(t.max_depth + 1) * SVG_FRAME + 2 * SVG_PAD;
        double scale = t.n[0].total ? (double)(SVG_WIDTH - 2 * SVG_PAD) / (double)t.n[0].total : 0;
        char head[512];
        snprintf(head, sizeof head,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%u\" "
                 "viewBox=\"0 0 %d %u\" font-family=\"monospace\" font-size=\"12\">\n"
                 "<style>g.f{cursor:pointer}</style>\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f8\"/>\n"
                 "<text x=\"%d\" y=\"22\" font-size=\"16\">",
                 SVG_WIDTH, (unsigned)height, SVG_WIDTH, (unsigned)height, SVG_PAD);
        rc = nprof__buf_append_cstr(out, head);
        rc = rc ? rc : xml_text(out, title, title_len);
        rc = rc ? rc : nprof__buf_append_cstr(out, " (click to zoom, all to reset)</text>\n");
        if (!rc && t.n[0].total)
            rc = svg_frames(out, &t, text, 0, SVG_PAD, scale, height);
        rc = rc ? rc : nprof__buf_append_cstr(out, "<script");
        if (nonce) {
            rc = rc ? rc : nprof__buf_append_cstr(out, " nonce=\"");
            rc = rc ? rc : xml_text(out, nonce, strlen(nonce));
            rc = rc ? rc : nprof__buf_append_char(out, '"');
        }
        rc = rc ? rc : nprof__buf_append_cstr(out, "><![CDATA[\n");
        rc = rc ? rc : nprof__buf_append(out, zoom_script, sizeof zoom_script - 1);
        rc = rc ? rc : nprof__buf_append_cstr(out, "]]></script>\n</svg>\n");
    }
    nprof__ftree_free(&t);
    return rc;
}
