/*
 * tests/fuzz_samples.c: libFuzzer target for sampled call stacks (nprof_profile_add_sample()
 * and its renderers).  The input's first byte picks the flags and the separator of frames;
 * the rest is split into frames (every third one with a library), added as a stack and as
 * each of its prefixes, some as queries.  For any bytes: every JSON document is valid JSON,
 * collapsed stacks are "frames ns" lines, the SVG holds no control byte and no markup of the
 * input's, and the time adds up.  Any violation aborts, so the fuzzer reports the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"

static void fail(const char *what, const char *doc, size_t len)
{
    fprintf(stderr, "fuzz_samples: %s\noutput (%zu bytes): %.*s\n", what, len, (int)len, doc);
    abort();
}

static nprof_runtime *runtime(void)
{
    static nprof_runtime *rt;
    if (!rt) {
        nprof_config c;
        nprof_config_init(&c);
        c.allocator = NPROF_ALLOCATOR_LIBC;
        c.max_profile_bytes = 65536; /* small enough that big inputs reach "[dropped]" */
        if (nprof_runtime_create(&c, &rt))
            abort();
    }
    return rt;
}

/* Collapsed text: lines of frames, a space, digits; returns their summed time. */
static uint64_t check_collapsed(const char *s, size_t len)
{
    uint64_t sum = 0;
    if (strlen(s) != len)
        fail("NUL in collapsed stacks", s, len);
    for (const char *l = s; *l;) {
        const char *eol = strchr(l, '\n'), *sp = eol;
        if (!eol)
            fail("unterminated line", s, len);
        while (sp > l && sp[-1] != ' ')
            sp--;
        if (sp <= l + 1 || sp == eol)
            fail("line without frames or time", s, len);
        for (const char *c = sp; c < eol; c++)
            if (*c < '0' || *c > '9')
                fail("time not a number", s, len);
        sum += strtoull(sp, NULL, 10);
        l = eol + 1;
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & 3, sql_mask = data[0] >> 2;
    char sep = (char)(data[0] | 1); /* never NUL: NUL bytes stay data */
    enum { MAX_FRAMES = 300 };
    static nprof_frame frames[MAX_FRAMES];
    size_t n = 0;
    const char *s = (const char *)data + 1, *end = (const char *)data + size;
    while (s <= end && n < MAX_FRAMES) {
        const char *e = memchr(s, sep, (size_t)(end - s));
        if (!e)
            e = end;
        frames[n] = (nprof_frame){.name = s, .name_len = (size_t)(e - s)};
        if (n % 3 == 2)
            frames[n].lib = s, frames[n].lib_len = (size_t)(e - s) / 2;
        n++;
        s = e + 1;
    }
    nprof_profile *p;
    if (nprof_request_begin(runtime(), "GET", 3, "/", 1, 0, &p))
        abort();
    uint64_t added = 0;
    for (size_t k = 1; k <= n; k++) {
        unsigned sf = (sql_mask >> (k % 6)) & 1 ? NPROF_SAMPLE_SQL : 0;
        int rc = nprof_profile_add_sample(p, frames, k, 1000 + k, sf);
        if (rc != NPROF_OK && rc != NPROF_ELIMIT)
            abort();
        added += 1000 + k;
        if (nprof_profile_add_sample(p, frames, n, 7, 0) == NPROF_EINVAL)
            abort();
        added += 7;
    }
    nprof_buf out = NPROF_BUF_INIT;
    size_t where;
    if (nprof_profile_render_json(p, &out) || !json_check(out.data, out.len, &where))
        fail("profile JSON", out.data, out.len);
    nprof_buf_free(&out);
    for (int format = NPROF_SAMPLES_COLLAPSED; format <= NPROF_SAMPLES_SVG; format++) {
        if (nprof_profile_render_samples(p, format, flags & NPROF_SAMPLES_COLLAPSE_LIBS, &out))
            abort();
        const char *doc = out.data ? out.data : "";
        if (format == NPROF_SAMPLES_COLLAPSED && check_collapsed(doc, out.len) != added)
            fail("time lost", doc, out.len);
        if ((format == NPROF_SAMPLES_SPEEDSCOPE || format == NPROF_SAMPLES_CHROME) &&
            !json_check(doc, out.len, &where))
            fail("invalid JSON", doc, out.len);
        if (format == NPROF_SAMPLES_SVG) {
            for (size_t i = 0; i < out.len; i++)
                if ((unsigned char)doc[i] < 0x20 && doc[i] != '\n')
                    fail("control byte in the SVG", doc, out.len);
            for (const char *c = doc; (c = strchr(c, '<')) != NULL; c++)
                if (c[1] != '?' && c[1] != '/' && strncmp(c + 1, "svg", 3) &&
                    strncmp(c + 1, "rect", 4) && strncmp(c + 1, "text", 4) &&
                    strncmp(c + 1, "g class=", 8) && strncmp(c + 1, "title", 5) &&
                    strncmp(c + 1, "style>", 6) && strncmp(c + 1, "script>", 7) &&
                    strncmp(c + 1, "![CDATA[", 8))
                    fail("markup in the SVG that is not ours", doc, out.len);
        }
        nprof_buf_free(&out);
    }
    nprof_request_discard(p);
    return 0;
}
