/*
 * runtime/text.c: output buffers, number formats, UTF-8 checks, frame names, durations and
 * the thread's last error detail (escaping and the writers are in jsonw.c).  Reached from
 * every renderer; nothing here allocates from the runtime's arena, because the buffers filled
 * here belong to the caller.
 */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/common.h"
#include "nanoprof/profile.h" /* nprof_duration_format(): its NPROF_API exports it */
#include "thread_mem.h"

int nprof__buf_reserve(nprof_buf *buf, size_t extra)
{
    if (extra > SIZE_MAX / 2 - buf->len)
        return NPROF_ENOMEM;
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return NPROF_OK;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap *= 2;
    char *data = realloc(buf->data, cap);
    if (!data)
        return NPROF_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return NPROF_OK;
}

int nprof__buf_append(nprof_buf *buf, const void *data, size_t len)
{
    int rc = nprof__buf_reserve(buf, len);
    if (rc)
        return rc;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return NPROF_OK;
}

int nprof__buf_append_cstr(nprof_buf *buf, const char *s)
{
    return nprof__buf_append(buf, s, strlen(s));
}

int nprof__buf_append_char(nprof_buf *buf, char c)
{
    return nprof__buf_append(buf, &c, 1);
}

size_t nprof__format_u64(uint64_t v, char *out)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    out[sizeof tmp - i] = '\0';
    return sizeof tmp - i;
}

/* Eight hex digits of `x` as eight bytes, most significant digit in the lowest byte when
 * stored little-endian: the nibbles are spread one per byte, then turned into ASCII at once. */
NPROF__HOT_PATH
static uint64_t hex8_swar(uint32_t x)
{
    uint64_t n = x;
    n = ((n & 0xFFFF0000u) << 16) | (n & 0x0000FFFFu);
    n = ((n & 0x0000FF000000FF00ull) << 8) | (n & 0x000000FF000000FFull);
    n = ((n & 0x00F000F000F000F0ull) << 4) | (n & 0x000F000F000F000Full);
    uint64_t letters = ((n + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull; /* >= 10 */
    n += 0x3030303030303030ull + letters * ('a' - '0' - 10);
    return __builtin_bswap64(n);
}

void nprof__format_hex64(uint64_t v, char *out)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Request ids are formatted on every request: no loop, no table. */
    uint64_t hi = hex8_swar((uint32_t)(v >> 32)), lo = hex8_swar((uint32_t)v);
    memcpy(out, &hi, 8);
    memcpy(out + 8, &lo, 8);
#else
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
#endif
}

int nprof__buf_append_u64(nprof_buf *buf, uint64_t v)
{
    char tmp[24];
    return nprof__buf_append(buf, tmp, nprof__format_u64(v, tmp));
}

int nprof__buf_append_i64(nprof_buf *buf, int64_t v)
{
    if (v >= 0)
        return nprof__buf_append_u64(buf, (uint64_t)v);
    int rc = nprof__buf_append_char(buf, '-');
    return rc ? rc : nprof__buf_append_u64(buf, (uint64_t)0 - (uint64_t)v);
}

int nprof__buf_append_hex64(nprof_buf *buf, uint64_t v)
{
    char tmp[16];
    nprof__format_hex64(v, tmp);
    return nprof__buf_append(buf, tmp, sizeof tmp);
}

NPROF__HOT_PATH
void nprof_buf_free(nprof_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

size_t nprof__utf8_valid_prefix(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static const char replacement_char[] = "\xEF\xBF\xBD"; /* U+FFFD */

int nprof__frame_name(nprof_buf *buf, const char *str, size_t len, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    int rc = nprof__buf_reserve(buf, max + 3);
    if (rc)
        return rc;
    char *start = buf->data + buf->len, *o = start;
    int last_space = 1; /* also drops leading spaces */
    for (size_t i = 0; i < len && (size_t)(o - start) < max;) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t n = nprof__utf8_valid_prefix(s + i, len - i);
            const char *src = n ? (const char *)s + i : replacement_char;
            size_t w = n ? n : 3;
            if ((size_t)(o - start) + w > max)
                break;
            memcpy(o, src, w);
            o += w;
            i += n ? n : 1;
            last_space = 0;
            continue;
        }
        i++;
        if (c < 0x20 || c == 0x7F || c == ' ') {
            if (!last_space)
                *o++ = ' ';
            last_space = 1;
            continue;
        }
        *o++ = c == ';' ? ':' : (char)c;
        last_space = 0;
    }
    while (o > start && o[-1] == ' ')
        o--;
    if (o == start) /* an empty frame would merge into its parent */
        *o++ = '?';
    buf->len = (size_t)(o - buf->data);
    buf->data[buf->len] = '\0';
    return NPROF_OK;
}

/* Appends a unit after the `n` bytes of number in `out`: the header's one number format,
 * written without printf (this runs on the request path). */
static size_t with_unit(char *out, size_t n, const char *unit, size_t unit_len)
{
    memcpy(out + n, unit, unit_len + 1);
    return n + unit_len;
}

size_t nprof__format_duration(uint64_t ns, char *out)
{
    /* Integer arithmetic, rounded to the shown digit: this runs on the request path. */
    if (ns < 1000)
        return with_unit(out, nprof__format_u64(ns, out), "ns", 2);
    uint64_t tenths_us = ns / 100 + (ns % 100 >= 50);
    if (tenths_us < 1000)
        return with_unit(out, nprof__format_fixed(tenths_us, 1, out), "us", 2);
    uint64_t tenths_ms = ns / 100000 + (ns % 100000 >= 50000);
    if (tenths_ms < 10000)
        return with_unit(out, nprof__format_fixed(tenths_ms, 1, out), "ms", 2);
    uint64_t hundredths_s = ns / 10000000 + (ns % 10000000 >= 5000000);
    return with_unit(out, nprof__format_fixed(hundredths_s, 2, out), "s", 1);
}

int nprof_duration_format(uint64_t ns, char *buf, size_t cap, size_t *out_len)
{
    char tmp[NPROF__DURATION_MAX];
    size_t n = nprof__format_duration(ns, tmp);
    if (out_len)
        *out_len = n;
    if (!buf && cap)
        return NPROF_EINVAL;
    if (cap <= n)
        return NPROF_ERANGE;
    memcpy(buf, tmp, n + 1);
    return NPROF_OK;
}

/*
 * The thread's last error detail lives on the heap, not in the thread-local block: a module
 * loaded with dlopen() gets its thread-locals in glibc's static TLS area, read in two
 * instructions, only while its block fits what is left of the surplus that glibc keeps for
 * late-loaded modules (512 bytes by default, shared by all of them).  A larger block goes to
 * dynamic TLS, and then every thread-local read on the request path is a call of
 * _dl_tlsdesc_dynamic.  tests/test_dlopen.c keeps the block under its budget.
 */
#define DETAIL_MAX 256
static _Thread_local char *error_detail;
static _Thread_local unsigned char detail_lost; /* the last failure's detail had no memory */

static void free_detail(void *data)
{
    free(data);
    error_detail = NULL;
}

static nprof__thread_mem detail_mem = NPROF__THREAD_MEM_INIT(free_detail);

int nprof__fail(int code, const char *fmt, ...)
{
    if (!error_detail)
        error_detail = nprof__thread_mem_calloc(&detail_mem, DETAIL_MAX);
    detail_lost = error_detail == NULL;
    if (error_detail) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error_detail, DETAIL_MAX, fmt, ap);
        va_end(ap);
    }
    return code;
}

void nprof__clear_error(void)
{
    detail_lost = 0;
    if (error_detail)
        error_detail[0] = '\0';
}

const char *nprof_last_error_detail(void)
{
    if (detail_lost)
        return "(the detail of this error was lost: no memory to write it)";
    return error_detail ? error_detail : "";
}
