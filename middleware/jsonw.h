/*
 * middleware/jsonw.h: a small JSON writer for the dashboard and the trace export.  Strings go
 * through the runtime's nprof__json_string (valid JSON and UTF-8 for any bytes, '<' '>' '&'
 * escaped so the JSON can sit inside HTML); numbers are written with integer arithmetic,
 * never printf, so no locale can turn a decimal point into a comma.  The first error sticks
 * in `rc` and every later call does nothing.
 */
#ifndef NPROF_MIDDLEWARE_JSONW_H
#define NPROF_MIDDLEWARE_JSONW_H

#include <string.h>

#include "runtime/text.h"

typedef struct nprof__jw {
    nprof_buf *out;
    int rc;
    int comma; /* a value was written at this level: the next one needs a ',' */
} nprof__jw;

static inline void nprof__jw_raw(nprof__jw *j, const char *s, size_t len)
{
    if (!j->rc)
        j->rc = nprof__buf_append(j->out, s, len);
}

#define NPROF__JW_LIT(j, s) nprof__jw_raw((j), s, sizeof s - 1)

static inline void nprof__jw_sep(nprof__jw *j)
{
    if (j->comma)
        NPROF__JW_LIT(j, ",");
    j->comma = 1;
}

static inline void nprof__jw_key(nprof__jw *j, const char *k)
{
    nprof__jw_sep(j);
    NPROF__JW_LIT(j, "\"");
    nprof__jw_raw(j, k, strlen(k)); /* keys are ours: plain ASCII */
    NPROF__JW_LIT(j, "\":");
}

static inline void nprof__jw_open(nprof__jw *j, char c)
{
    nprof__jw_raw(j, &c, 1);
    j->comma = 0;
}

static inline void nprof__jw_close(nprof__jw *j, char c)
{
    nprof__jw_raw(j, &c, 1);
    j->comma = 1;
}

static inline void nprof__jw_str(nprof__jw *j, const char *s, size_t len)
{
    if (!j->rc)
        j->rc = nprof__json_string(j->out, s ? s : "", s ? len : 0);
}

static inline void nprof__jw_u64(nprof__jw *j, uint64_t v)
{
    if (!j->rc)
        j->rc = nprof__buf_append_u64(j->out, v);
}

/* v / 10^decimals, with exactly `decimals` digits after the point (1..9). */
static inline void nprof__jw_fixed(nprof__jw *j, uint64_t v, int decimals)
{
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    char tmp[48];
    size_t n = nprof__format_u64(v / scale, tmp);
    tmp[n++] = '.';
    uint64_t frac = v % scale;
    for (int i = decimals - 1; i >= 0; i--, frac /= 10)
        tmp[n + (size_t)i] = (char)('0' + frac % 10);
    n += (size_t)decimals;
    nprof__jw_raw(j, tmp, n);
}

/* Nanoseconds as milliseconds with three decimals (rounded to the microsecond). */
static inline void nprof__jw_ms(nprof__jw *j, uint64_t ns)
{
    nprof__jw_fixed(j, (ns + 500) / 1000, 3);
}

static inline void nprof__jw_kstr(nprof__jw *j, const char *k, const char *s, size_t len)
{
    nprof__jw_key(j, k);
    nprof__jw_str(j, s, len);
}

static inline void nprof__jw_ku64(nprof__jw *j, const char *k, uint64_t v)
{
    nprof__jw_key(j, k);
    nprof__jw_u64(j, v);
}

static inline void nprof__jw_kms(nprof__jw *j, const char *k, uint64_t ns)
{
    nprof__jw_key(j, k);
    nprof__jw_ms(j, ns);
}

#endif /* NPROF_MIDDLEWARE_JSONW_H */
