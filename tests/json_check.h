/*
 * tests/json_check.h: a strict JSON validator (RFC 8259), used to prove that renderers emit
 * valid JSON and valid UTF-8 for any input.  Iterative, so hostile nesting cannot overflow it.
 * json_check() returns 1 when `len` bytes are one valid JSON value, else 0 and sets *where.
 */
#ifndef NPROF_JSON_CHECK_H
#define NPROF_JSON_CHECK_H

#include <stddef.h>
#include <string.h>

static size_t json__ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static int json__hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Returns the index after a valid string starting at s[i] == '"', or 0. */
static size_t json__string(const char *str, size_t len, size_t i)
{
    const unsigned char *s = (const unsigned char *)str;
    i++;
    while (i < len) {
        unsigned c = s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (++i >= len)
                return 0;
            if (s[i] == 'u') {
                if (i + 4 >= len || !json__hex(str[i + 1]) || !json__hex(str[i + 2]) ||
                    !json__hex(str[i + 3]) || !json__hex(str[i + 4]))
                    return 0;
                i += 5;
            } else if (strchr("\"\\/bfnrt", s[i]) && s[i]) {
                i++;
            } else {
                return 0;
            }
            continue;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!n || i + n > len)
            return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n;
    }
    return 0;
}

static size_t json__number(const char *s, size_t len, size_t i)
{
    if (i < len && s[i] == '-')
        i++;
    if (i >= len)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    return i;
}

static int json_check(const char *s, size_t len, size_t *where)
{
    char stack[4096]; /* '{' or '[' per open container */
    int depth = 0;
    /* States: expecting a value, or after a value (a ',' or a closer), or an object key. */
    enum { VALUE, AFTER, KEY } state = VALUE;
    size_t i = json__ws(s, len, 0);
    while (1) {
        if (state == VALUE || state == KEY) {
            if (i >= len)
                goto bad;
            if (state == KEY) {
                if (s[i] != '"')
                    goto bad;
                size_t e = json__string(s, len, i);
                if (!e)
                    goto bad;
                i = json__ws(s, len, e);
                if (i >= len || s[i] != ':')
                    goto bad;
                i = json__ws(s, len, i + 1);
                state = VALUE;
                continue;
            }
            char c = s[i];
            size_t e = 0;
            if (c == '{' || c == '[') {
                if (depth == (int)sizeof stack)
                    goto bad;
                stack[depth++] = c;
                i = json__ws(s, len, i + 1);
                if (i < len && s[i] == (c == '{' ? '}' : ']')) {
                    depth--;
                    i++;
                    state = AFTER;
                } else {
                    state = c == '{' ? KEY : VALUE;
                }
                continue;
            } else if (c == '"') {
                e = json__string(s, len, i);
            } else if (c == 't' && len - i >= 4 && !memcmp(s + i, "true", 4)) {
                e = i + 4;
            } else if (c == 'f' && len - i >= 5 && !memcmp(s + i, "false", 5)) {
                e = i + 5;
            } else if (c == 'n' && len - i >= 4 && !memcmp(s + i, "null", 4)) {
                e = i + 4;
            } else {
                e = json__number(s, len, i);
            }
            if (!e)
                goto bad;
            i = e;
            state = AFTER;
            continue;
        }
        /* AFTER a value */
        i = json__ws(s, len, i);
        if (depth == 0)
            return i == len ? 1 : (*where = i, 0);
        if (i >= len)
            goto bad;
        if (s[i] == ',') {
            i = json__ws(s, len, i + 1);
            state = stack[depth - 1] == '{' ? KEY : VALUE;
        } else if ((s[i] == '}' && stack[depth - 1] == '{') || (s[i] == ']' && stack[depth - 1] == '[')) {
            depth--;
            i++;
        } else {
            goto bad;
        }
    }
bad:
    *where = i;
    return 0;
}

#endif /* NPROF_JSON_CHECK_H */
