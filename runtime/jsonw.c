/*
 * runtime/jsonw.c: escaping into output formats, the sticky-error text writer and the JSON
 * writer (see jsonw.h).  Reached from every renderer: the profile's JSON (render.c), the
 * query statistics, the libpq counters and the slow-query log's rows (sqlhooks/), the
 * dashboard, the trace export and the Prometheus text (middleware/).  Nothing here allocates
 * from the runtime's arena: the buffers belong to the caller.
 */
#include "jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

_Static_assert(sizeof(nprof__escape) == 8, "an escape is copied as one 8-byte move");

/* ---- escaping ------------------------------------------------------------------------------ */

/* Writes `len` escaped bytes at `o`, which has room for len * t->widest + 8 bytes (the 8
 * spare ones let each escape be copied as one 8-byte move); returns the end. */
static char *escape_into(char *o, const unsigned char *s, size_t len, const nprof__escapes *t)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            const nprof__escape *e = &t->ascii[c];
            if (!e->len) {
                *o++ = (char)c;
            } else {
                memcpy(o, e, sizeof *e); /* only the first `len` bytes count */
                o += e->len;
            }
            i++;
            continue;
        }
        size_t n = nprof__utf8_valid_prefix(s + i, len - i);
        if (n) {
            memcpy(o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        }
    }
    return o;
}

/* Appends `len` escaped bytes between two `quote` characters (none when 0), then `tail` (none
 * when 0), with one reservation: `widest` is at most 7, which bounds the product. */
static void escape_append(nprof__tw *t, const char *s, size_t len, const nprof__escapes *e,
                          char quote, char tail)
{
    if (t->rc)
        return;
    if (!s)
        len = 0;
    if (len > SIZE_MAX / 32 || nprof__buf_reserve(t->out, len * e->widest + 3 + 8)) {
        t->rc = NPROF_ENOMEM;
        return;
    }
    nprof_buf *buf = t->out;
    char *o = buf->data + buf->len;
    if (quote)
        *o++ = quote;
    o = escape_into(o, (const unsigned char *)s, len, e);
    if (quote)
        *o++ = quote;
    if (tail)
        *o++ = tail;
    buf->len = (size_t)(o - buf->data);
    buf->data[buf->len] = '\0';
}

/* JSON strings: '"', '\\' and every control character escaped; '<', '>' and '&' too, so that
 * a document inside an HTML <script> element cannot close it or start markup. */
#define U(h, l) [0x##h##l] = {"\\u00" #h #l, 6}
static const nprof__escapes json_escapes = {
    .widest = 6,
    .ascii = {
        U(0, 0), U(0, 1), U(0, 2), U(0, 3), U(0, 4), U(0, 5), U(0, 6), U(0, 7), U(0, 8),
        ['\t'] = {"\\t", 2}, ['\n'] = {"\\n", 2}, U(0, b), U(0, c), ['\r'] = {"\\r", 2},
        U(0, e), U(0, f), U(1, 0), U(1, 1), U(1, 2), U(1, 3), U(1, 4), U(1, 5), U(1, 6),
        U(1, 7), U(1, 8), U(1, 9), U(1, a), U(1, b), U(1, c), U(1, d), U(1, e), U(1, f),
        ['"'] = {"\\\"", 2}, ['\\'] = {"\\\\", 2}, U(2, 6) /* & */, U(3, c) /* < */,
        U(3, e) /* > */, U(7, f),
    },
};
#undef U

/* ---- the text writer ----------------------------------------------------------------------- */

void nprof__tw_init(nprof__tw *t, nprof_buf *out)
{
    t->out = out;
    t->rc = NPROF_OK;
    t->start = out->len;
}

void nprof__tw_check(nprof__tw *t, int rc)
{
    if (!t->rc)
        t->rc = rc;
}

int nprof__tw_finish(nprof__tw *t)
{
    if (t->rc && t->out->len > t->start) {
        t->out->len = t->start; /* all or nothing */
        t->out->data[t->start] = '\0';
    }
    return t->rc;
}

void nprof__tw_cstr(nprof__tw *t, const char *s)
{
    nprof__tw_raw(t, s, strlen(s));
}

void nprof__tw_u64(nprof__tw *t, uint64_t v)
{
    char tmp[24];
    nprof__tw_raw(t, tmp, nprof__format_u64(v, tmp));
}

void nprof__tw_i64(nprof__tw *t, int64_t v)
{
    if (!t->rc)
        t->rc = nprof__buf_append_i64(t->out, v);
}

void nprof__tw_fixed(nprof__tw *t, uint64_t v, int decimals)
{
    char tmp[NPROF__FIXED_MAX];
    nprof__tw_raw(t, tmp, nprof__format_fixed(v, decimals, tmp));
}

void nprof__tw_escaped(nprof__tw *t, const char *s, size_t len, const nprof__escapes *e,
                       char quote)
{
    escape_append(t, s, len, e, quote, 0);
}

void nprof__tw_printf(nprof__tw *t, const char *fmt, ...)
{
    if (t->rc)
        return;
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) /* our formats are short: longer is a bug */
        t->rc = NPROF_ERANGE;
    else
        nprof__tw_raw(t, tmp, (size_t)n);
}

/* ---- the JSON writer ----------------------------------------------------------------------- */

void nprof__jw_init(nprof__jw *j, nprof_buf *out)
{
    nprof__tw_init(&j->t, out);
    j->comma = 0;
}

int nprof__jw_finish(nprof__jw *j)
{
    return nprof__tw_finish(&j->t);
}

/* Before any value or member: the ',' that separates it from the previous one. */
static void sep(nprof__jw *j)
{
    if (j->comma)
        nprof__tw_raw(&j->t, ",", 1);
    j->comma = 1;
}

static void open_container(nprof__jw *j, char c)
{
    sep(j);
    nprof__tw_raw(&j->t, &c, 1);
    j->comma = 0;
}

static void close_container(nprof__jw *j, char c)
{
    nprof__tw_raw(&j->t, &c, 1);
    j->comma = 1;
}

void nprof__jw_obj(nprof__jw *j)
{
    open_container(j, '{');
}

void nprof__jw_obj_end(nprof__jw *j)
{
    close_container(j, '}');
}

void nprof__jw_arr(nprof__jw *j)
{
    open_container(j, '[');
}

void nprof__jw_arr_end(nprof__jw *j)
{
    close_container(j, ']');
}

void nprof__jw_key(nprof__jw *j, const char *k)
{
    sep(j);
    escape_append(&j->t, k, strlen(k), &json_escapes, '"', ':'); /* "key": at once */
    j->comma = 0; /* the value follows the ':' */
}

void nprof__jw_str(nprof__jw *j, const char *s, size_t len)
{
    sep(j);
    nprof__tw_escaped(&j->t, s, len, &json_escapes, '"');
}

void nprof__jw_u64(nprof__jw *j, uint64_t v)
{
    sep(j);
    nprof__tw_u64(&j->t, v);
}

void nprof__jw_i64(nprof__jw *j, int64_t v)
{
    sep(j);
    nprof__tw_i64(&j->t, v);
}

void nprof__jw_bool(nprof__jw *j, int v)
{
    sep(j);
    nprof__tw_cstr(&j->t, v ? "true" : "false");
}

void nprof__jw_null(nprof__jw *j)
{
    sep(j);
    nprof__tw_raw(&j->t, "null", 4);
}

void nprof__jw_fixed(nprof__jw *j, uint64_t v, int decimals)
{
    sep(j);
    nprof__tw_fixed(&j->t, v, decimals);
}

void nprof__jw_double(nprof__jw *j, double d, int decimals)
{
    double scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    double a = d < 0 ? -d : d, scaled = a * scale + 0.5;
    /* NaN fails the comparison too; the bound keeps the conversion defined */
    uint64_t v = scaled < 1.8e19 ? (uint64_t)scaled : 0;
    sep(j);
    if (d < 0 && v)
        nprof__tw_raw(&j->t, "-", 1);
    nprof__tw_fixed(&j->t, v, decimals);
}

void nprof__jw_ms(nprof__jw *j, uint64_t ns)
{
    char tmp[NPROF__FIXED_MAX];
    sep(j);
    nprof__tw_raw(&j->t, tmp, nprof__format_fixed(ns / 1000 + (ns % 1000 >= 500), 3, tmp));
}

void nprof__jw_duration(nprof__jw *j, uint64_t ns)
{
    char text[NPROF__DURATION_MAX];
    nprof__jw_str(j, text, nprof__format_duration(ns, text));
}

void nprof__jw_hex(nprof__jw *j, uint64_t v)
{
    char hex[16];
    nprof__format_hex64(v, hex);
    nprof__jw_str(j, hex, sizeof hex);
}

void nprof__jw_raw(nprof__jw *j, const char *s, size_t len)
{
    sep(j);
    nprof__tw_raw(&j->t, s, len);
}
