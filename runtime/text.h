/*
 * runtime/text.h: bytes to text, safely: growable output buffers, number formats, UTF-8
 * validation, flame-graph frame names and duration formatting.  Escaping into output formats
 * and the writers that renderers use are in jsonw.h, on top of these.
 */
#ifndef NPROF_RUNTIME_TEXT_H
#define NPROF_RUNTIME_TEXT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "nanoprof/common.h"

/* Makes room for `extra` more bytes plus a NUL.  NPROF_ENOMEM leaves `buf` as it was. */
int nprof__buf_reserve(nprof_buf *buf, size_t extra);
int nprof__buf_append(nprof_buf *buf, const void *data, size_t len);
int nprof__buf_append_cstr(nprof_buf *buf, const char *s);
int nprof__buf_append_char(nprof_buf *buf, char c);
int nprof__buf_append_u64(nprof_buf *buf, uint64_t v);
int nprof__buf_append_i64(nprof_buf *buf, int64_t v);
/* Writes `v` in decimal into `out` (at least 21 bytes), NUL-terminated; returns the length. */
size_t nprof__format_u64(uint64_t v, char *out);
/* Writes v / 10^decimals into `out` (at least NPROF__FIXED_MAX bytes) with exactly
 * `decimals` (0 to 19) digits after the point and no point when `decimals` is 0,
 * NUL-terminated; returns the length.  Integer arithmetic: no locale, no rounding. */
#define NPROF__FIXED_MAX 48
static inline size_t nprof__format_fixed(uint64_t v, int decimals, char *out)
{
    /* Inline: callers pass constant decimals, which turns the divisions into multiplications
     * (durations in the X-Profile header are formatted on the request path). */
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    size_t n = nprof__format_u64(v / scale, out);
    if (decimals) {
        out[n++] = '.';
        uint64_t frac = v % scale;
        for (int i = decimals - 1; i >= 0; i--, frac /= 10)
            out[n + (size_t)i] = (char)('0' + frac % 10);
        n += (size_t)decimals;
        out[n] = '\0';
    }
    return n;
}
/* Writes `v` as exactly 16 lower-case hex digits into `out` (no NUL). */
void nprof__format_hex64(uint64_t v, char *out);
/* Appends `v` as 16 lower-case hex digits. */
int nprof__buf_append_hex64(nprof_buf *buf, uint64_t v);

/*
 * Length of the valid UTF-8 sequence at s[0..len) (1 to 4), or 0 when the bytes there are not
 * valid UTF-8 (overlong forms, surrogates, code points above U+10FFFF and truncated sequences
 * are all invalid).  `len` must be at least 1.
 */
size_t nprof__utf8_valid_prefix(const unsigned char *s, size_t len);

/* Appends a flame-graph frame name: ';' becomes ':', control characters and line breaks
 * become ' ', invalid UTF-8 becomes U+FFFD, runs of spaces collapse, at most `max` bytes. */
int nprof__frame_name(nprof_buf *buf, const char *s, size_t len, size_t max);

/* Writes a duration in the header's units ("45ns", "12.5us", "1.2ms", "2.50s") into `out`
 * (at least NPROF__DURATION_MAX bytes), NUL-terminated; returns the length. */
#define NPROF__DURATION_MAX 32
size_t nprof__format_duration(uint64_t ns, char *out);

/* Records the detail sentence returned by nprof_last_error_detail() and returns `code`. */
int nprof__fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void nprof__clear_error(void);

#endif /* NPROF_RUNTIME_TEXT_H */
