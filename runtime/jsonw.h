/*
 * runtime/jsonw.h: the one way nanoprof writes an output format into an nprof_buf.
 *
 * - Escaping: one loop (nprof__tw_escaped) turns any bytes into valid UTF-8 text, each
 *   format saying in a table what becomes of each ASCII byte.  JSON's table is in jsonw.c;
 *   the COPY rows of the slow-query log and Prometheus labels keep theirs beside their format.
 * - A sticky-error text writer (nprof__tw): the first failure is kept and every later call
 *   does nothing, so a renderer writes a whole document and checks once, at
 *   nprof__tw_finish(), which also takes the buffer back to where the writer began when
 *   anything failed (all or nothing).
 * - The JSON writer (nprof__jw) over it: objects and arrays with automatic commas, keys,
 *   strings with their length, numbers written with integer arithmetic (never printf, so no
 *   locale can turn a decimal point into a comma).
 *
 * Every JSON document of the runtime and of the layers above is written through nprof__jw, so
 * "valid JSON and valid UTF-8 for any input bytes, safe inside HTML" is enforced here.
 */
#ifndef NPROF_RUNTIME_JSONW_H
#define NPROF_RUNTIME_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nanoprof/common.h"
#include "text.h"

/* ---- escaping ------------------------------------------------------------------------------ */

/* What one ASCII byte becomes: `len` bytes of `to`, or the byte itself when `len` is 0. */
typedef struct nprof__escape {
    char to[7];
    unsigned char len;
} nprof__escape;

/* A format's escaping: one entry per ASCII byte, and `widest`, the longest output of one
 * input byte (3 to 7: U+FFFD takes 3 bytes in UTF-8, an escape's `to` holds 7). */
typedef struct nprof__escapes {
    unsigned char widest;
    nprof__escape ascii[128];
} nprof__escapes;

/* ---- the sticky-error text writer ---------------------------------------------------------- */

typedef struct nprof__tw {
    nprof_buf *out;
    int rc;       /* the first error, or 0; once set, every call does nothing */
    size_t start; /* out->len when the writer began: where a failed document is cut back to */
} nprof__tw;

void nprof__tw_init(nprof__tw *t, nprof_buf *out);
/* Makes `rc` the writer's error if it has none yet (0 changes nothing). */
void nprof__tw_check(nprof__tw *t, int rc);
/* The writer's error, or 0.  On an error the buffer is cut back to where the writer began. */
int nprof__tw_finish(nprof__tw *t);
/* Appends `len` bytes as they are.  Inline: most appends are a few bytes into room the
 * buffer already has. */
static inline void nprof__tw_raw(nprof__tw *t, const char *s, size_t len)
{
    nprof_buf *b = t->out;
    if (t->rc)
        return;
    if (len < b->cap - b->len) { /* room for the bytes and the NUL */
        memcpy(b->data + b->len, s, len);
        b->len += len;
        b->data[b->len] = '\0';
    } else {
        t->rc = nprof__buf_append(b, s, len);
    }
}
void nprof__tw_cstr(nprof__tw *t, const char *s);
void nprof__tw_u64(nprof__tw *t, uint64_t v);
void nprof__tw_i64(nprof__tw *t, int64_t v);
/* v / 10^decimals with exactly `decimals` (0 to 19) digits after the point. */
void nprof__tw_fixed(nprof__tw *t, uint64_t v, int decimals);
/*
 * Appends `len` bytes of `s` (NULL with len 0 is ""), between two `quote` characters unless
 * `quote` is 0.  ASCII bytes are written as `e` says; from 0x80 up, a valid UTF-8 sequence is
 * copied and every byte of an invalid one (overlong, surrogate, above U+10FFFF, truncated)
 * becomes U+FFFD, so the result is valid UTF-8 for any input.
 */
void nprof__tw_escaped(nprof__tw *t, const char *s, size_t len, const nprof__escapes *e,
                       char quote);
void nprof__tw_printf(nprof__tw *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- the JSON writer ----------------------------------------------------------------------- */

typedef struct nprof__jw {
    nprof__tw t;
    int comma; /* a value or member was written at this level: the next one needs a ',' */
} nprof__jw;

void nprof__jw_init(nprof__jw *j, nprof_buf *out);
/* As nprof__tw_finish(): the first error, and the buffer as it was before the document. */
int nprof__jw_finish(nprof__jw *j);

/* Containers.  Each value (a container too) is preceded by a ',' when one is due. */
void nprof__jw_obj(nprof__jw *j);
void nprof__jw_obj_end(nprof__jw *j);
void nprof__jw_arr(nprof__jw *j);
void nprof__jw_arr_end(nprof__jw *j);
/* A member's key (escaped like any string); its value comes next. */
void nprof__jw_key(nprof__jw *j, const char *k);

/* Values. */
void nprof__jw_str(nprof__jw *j, const char *s, size_t len); /* NULL with len 0: "" */
void nprof__jw_u64(nprof__jw *j, uint64_t v);
void nprof__jw_i64(nprof__jw *j, int64_t v);
void nprof__jw_bool(nprof__jw *j, int v);
void nprof__jw_null(nprof__jw *j);
/* v / 10^decimals, with exactly `decimals` (1 to 19) digits after the point. */
void nprof__jw_fixed(nprof__jw *j, uint64_t v, int decimals);
/* `d` rounded to `decimals` (1 to 9) digits after the point; NaN, infinities and values
 * whose scaled magnitude a uint64 cannot hold (beyond 1.8e19 / 10^decimals) are written as
 * 0. */
void nprof__jw_double(nprof__jw *j, double d, int decimals);
/* Nanoseconds as milliseconds with three decimals (rounded to the microsecond). */
void nprof__jw_ms(nprof__jw *j, uint64_t ns);
/* Nanoseconds as a string in the X-Profile header's units ("45ns", "1.2ms"). */
void nprof__jw_duration(nprof__jw *j, uint64_t ns);
/* A 64-bit value as a string of 16 lower-case hex digits (fingerprints). */
void nprof__jw_hex(nprof__jw *j, uint64_t v);
/* One JSON value written as given (a number the database printed, a document rendered
 * elsewhere): the caller vouches that it is one valid JSON value. */
void nprof__jw_raw(nprof__jw *j, const char *s, size_t len);

/* A member: key and value in one call, for the common kinds. */
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

static inline void nprof__jw_ki64(nprof__jw *j, const char *k, int64_t v)
{
    nprof__jw_key(j, k);
    nprof__jw_i64(j, v);
}

static inline void nprof__jw_kms(nprof__jw *j, const char *k, uint64_t ns)
{
    nprof__jw_key(j, k);
    nprof__jw_ms(j, ns);
}

#endif /* NPROF_RUNTIME_JSONW_H */
