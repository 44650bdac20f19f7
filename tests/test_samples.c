/*
 * tests/test_samples.c: sampled call stacks in a profile (nprof_profile_add_sample()): merged
 * per distinct stack, bounded in depth and bytes, reset on reuse, and rendered in the four
 * formats and the profile's JSON, valid whatever bytes the frames hold; summed per route by
 * the store.
 */
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"

#define F(s) ((nprof_frame){.name = (s), .name_len = sizeof(s) - 1})
#define FL(s, l) ((nprof_frame){.name = (s), .name_len = sizeof(s) - 1, .lib = (l), .lib_len = sizeof(l) - 1})

static nprof_profile *begin(nprof_runtime *rt)
{
    nprof_profile *p = NULL;
    nprof_request_begin(rt, "GET", 3, "/articles", 9, 0, &p);
    return p;
}

/* The number at the end of collapsed line `stack` (0 when absent). */
static uint64_t line_ns(const char *text, const char *stack)
{
    size_t n = strlen(stack);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (!strncmp(l, stack, n) && l[n] == ' ')
            return strtoull(l + n + 1, NULL, 10);
    return 0;
}

/* The number at the end of the line that starts at `l`. */
static uint64_t line_value(const char *l)
{
    const char *sp = strchr(l, '\n');
    while (sp > l && sp[-1] != ' ')
        sp--;
    return strtoull(sp, NULL, 10);
}

TEST(identical_stacks_merge_with_summed_time_and_count)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    ASSERT_TRUE(p);
    nprof_frame a[] = {F("view"), F("serializer"), F("render")};
    nprof_frame b[] = {F("view"), F("serializer")};
    for (int i = 0; i < 10; i++)
        ASSERT_OK(nprof_profile_add_sample(p, a, 3, 1000000, 0));
    ASSERT_OK(nprof_profile_add_sample(p, b, 2, 500000, 0));
    nprof_samples_info si;
    ASSERT_OK(nprof_profile_get_samples_info(p, &si));
    ASSERT_EQ_U64(si.stacks, 2);
    ASSERT_EQ_U64(si.samples, 11);
    ASSERT_EQ_U64(si.sampled_ns, 10500000);
    ASSERT_EQ_U64(si.dropped, 0);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_STR(out.data, "view;serializer 500000\nview;serializer;render 10000000\n");
    nprof_buf_free(&out);
    /* The same frames with the SQL flag are another stack. */
    nprof_frame q[] = {F("view"), F("SQL SELECT 1")};
    ASSERT_OK(nprof_profile_add_sample(p, q, 2, 3000000, NPROF_SAMPLE_SQL));
    ASSERT_OK(nprof_profile_add_sample(p, q, 2, 1000000, NPROF_SAMPLE_SQL));
    ASSERT_OK(nprof_profile_add_sample(p, q, 2, 7, 0));
    ASSERT_OK(nprof_profile_get_samples_info(p, &si));
    ASSERT_EQ_U64(si.stacks, 4);
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_EQ_U64(line_ns(out.data, "view;SQL SELECT 1 (2 x 2.0ms)"), 4000000);
    ASSERT_EQ_U64(line_ns(out.data, "view;SQL SELECT 1"), 7);
    nprof_buf_free(&out);
    nprof_request_end(p, 200);
    ASSERT_EQ_INT(nprof_profile_add_sample(p, a, 3, 1, 0), NPROF_ESTATE);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(bad_arguments_get_clear_codes)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_frame bad[] = {{.name = NULL, .name_len = 3}};
    nprof_frame bad_lib[] = {{.name = "x", .name_len = 1, .lib = NULL, .lib_len = 2}};
    nprof_frame ok[] = {F("x")};
    nprof_samples_info si;
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_EQ_INT(nprof_profile_add_sample(NULL, ok, 1, 1, 0), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_profile_add_sample(p, NULL, 1, 1, 0), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_add_sample(p, bad, 1, 1, 0), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_add_sample(p, bad_lib, 1, 1, 0), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_add_sample(p, ok, 1, 1, 0x80), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_get_samples_info(NULL, &si), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_profile_get_samples_info(p, NULL), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_render_samples(NULL, 0, 0, &out), NPROF_ENOPROFILE);
    ASSERT_EQ_INT(nprof_profile_render_samples(p, 4, 0, &out), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_render_samples(p, -1, 0, &out), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_render_samples(p, 0, 0x10, &out), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_render_samples(p, 0, 0, NULL), NPROF_EINVAL);
    ASSERT_OK(nprof_profile_get_samples_info(p, &si));
    ASSERT_EQ_U64(si.samples, 0);
    ASSERT_EQ_U64(out.len, 0);
    /* No frames at all is a sample of its own. */
    ASSERT_OK(nprof_profile_add_sample(p, NULL, 0, 5, 0));
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_STR(out.data, "[no frames] 5\n");
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(deep_stacks_keep_their_outer_frames_and_a_query_keeps_its_leaf)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    enum { DEPTH = 900 };
    static nprof_frame deep[DEPTH];
    static char names[DEPTH][8];
    for (int i = 0; i < DEPTH; i++) {
        int n = snprintf(names[i], sizeof names[i], "f%d", i);
        deep[i] = (nprof_frame){.name = names[i], .name_len = (size_t)n};
    }
    ASSERT_OK(nprof_profile_add_sample(p, deep, DEPTH, 10, 0));
    ASSERT_OK(nprof_profile_add_sample(p, deep, DEPTH, 20, NPROF_SAMPLE_SQL));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &out));
    size_t where;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    nprof_buf_free(&out);
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, 0, &out));
    char *first = out.data, *second = strchr(out.data, '\n') + 1;
    int frames1 = 1, frames2 = 1;
    for (char *c = first; c < second; c++)
        frames1 += *c == ';';
    for (char *c = second; *c; c++)
        frames2 += *c == ';';
    ASSERT_EQ_INT(frames1, NPROF_SAMPLE_MAX_DEPTH);
    ASSERT_EQ_INT(frames2, NPROF_SAMPLE_MAX_DEPTH);
    char tail[64];
    snprintf(tail, sizeof tail, ";f%d;[truncated] 10\n", NPROF_SAMPLE_MAX_DEPTH - 2);
    ASSERT_TRUE(strstr(out.data, tail) != NULL);
    snprintf(tail, sizeof tail, ";f%d;[truncated];f%d (1 x 20ns) 20\n", NPROF_SAMPLE_MAX_DEPTH - 3,
             DEPTH - 1);
    ASSERT_TRUE(strstr(out.data, tail) != NULL);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(past_max_profile_bytes_samples_count_under_dropped)
{
    nprof_runtime *rt = make_runtime("max_profile_bytes=262144");
    ASSERT_TRUE(rt);
    nprof_profile *p = begin(rt);
    char name[1000];
    memset(name, 'n', sizeof name);
    int limited = 0;
    uint64_t total = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "%d", i);
        name[strlen(name)] = 'n';
        nprof_frame f[] = {F("view"), {.name = name, .name_len = sizeof name}};
        int rc = nprof_profile_add_sample(p, f, 2, 1000, 0);
        total += 1000;
        ASSERT_TRUE(rc == NPROF_OK || rc == NPROF_ELIMIT);
        limited += rc == NPROF_ELIMIT;
    }
    ASSERT_TRUE(limited > 0);
    nprof_samples_info si;
    ASSERT_OK(nprof_profile_get_samples_info(p, &si));
    ASSERT_EQ_U64(si.samples, 2000);
    ASSERT_EQ_U64(si.dropped, (uint64_t)limited);
    ASSERT_EQ_U64(si.dropped_ns, (uint64_t)limited * 1000);
    ASSERT_EQ_U64(si.sampled_ns, total);
    nprof_profile_info pi;
    ASSERT_OK(nprof_profile_get_info(p, &pi));
    ASSERT_U64_OP(pi.memory_bytes, <=, 262144);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_EQ_U64(line_ns(out.data, "[dropped]"), (uint64_t)limited * 1000);
    /* Every nanosecond is somewhere. */
    uint64_t sum = 0;
    for (const char *l = out.data; *l; l = strchr(l, '\n') + 1)
        sum += line_value(l);
    ASSERT_EQ_U64(sum, total);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_reused_profile_keeps_nothing_of_the_last_requests_samples)
{
    nprof_runtime *rt = make_runtime(NULL);
    for (int round = 0; round < 50; round++) {
        nprof_profile *p = begin(rt);
        ASSERT_TRUE(p);
        nprof_samples_info si;
        ASSERT_OK(nprof_profile_get_samples_info(p, &si));
        ASSERT_EQ_U64(si.samples + si.stacks + si.sampled_ns + si.dropped, 0);
        nprof_buf out = NPROF_BUF_INIT;
        ASSERT_OK(nprof_profile_render_json(p, &out));
        ASSERT_TRUE(strstr(out.data, "\"samples\"") == NULL);
        nprof_buf_free(&out);
        char name[32];
        for (int i = 0; i < 300; i++) {
            int n = snprintf(name, sizeof name, "r%d-f%d", round, i);
            nprof_frame f[] = {F("view"), {.name = name, .name_len = (size_t)n, .lib = "lib", .lib_len = 3}};
            ASSERT_OK(nprof_profile_add_sample(p, f, 2, 1, 0));
        }
        nprof_request_end(p, 200);
        if (round % 2)
            nprof_request_discard(p);
        else
            ASSERT_OK(nprof_request_submit(p));
    }
    nprof_runtime_destroy(rt);
}

TEST(collapse_libs_merges_each_run_of_one_library)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_frame a[] = {FL("handler", "django"), FL("dispatch", "django"), F("article_list"),
                       FL("all", "django"), FL("execute", "psycopg"), FL("SQL SELECT 1", "psycopg")};
    nprof_frame b[] = {FL("handler", "django"), FL("get_response", "django"), F("article_list"),
                       FL("count", "django")};
    ASSERT_OK(nprof_profile_add_sample(p, a, 6, 300, NPROF_SAMPLE_SQL));
    ASSERT_OK(nprof_profile_add_sample(p, b, 4, 100, 0));
    ASSERT_OK(nprof_profile_add_sample(p, b, 4, 100, 0));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, NPROF_SAMPLES_COLLAPSE_LIBS, &out));
    ASSERT_STR(out.data, "[django];article_list;[django] 200\n"
                         "[django];article_list;[django];[psycopg];SQL SELECT 1 (1 x 300ns) 300\n");
    nprof_buf_free(&out);
    ASSERT_OK(nprof_profile_render_json(p, &out));
    ASSERT_TRUE(strstr(out.data, "\"libs\":[\"django\",\"django\",null,\"django\"]") != NULL);
    ASSERT_TRUE(strstr(out.data, "\"ns\":200,\"count\":2,\"sql\":false") != NULL);
    ASSERT_TRUE(strstr(out.data, "\"sql\":true") != NULL);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

static void random_bytes(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(rand() & 0xFF);
}

TEST(hostile_frame_bytes_are_kept_and_every_format_stays_valid)
{
    nprof_runtime *rt = make_runtime(NULL);
    srand(16);
    const char hostile[] = "a;b\nc d\0e</script><svg onload=x>\"'&\xC0\xAF\xED\xA0\x80\xF4\x90\xFF";
    for (int round = 0; round < 200; round++) {
        nprof_profile *p = begin(rt);
        char names[6][80], lib[20];
        nprof_frame f[6];
        for (int i = 0; i < 6; i++) {
            size_t n = (size_t)(rand() % 80);
            random_bytes(names[i], n);
            if ((round + i) % 2)
                memcpy(names[i], hostile, n < sizeof hostile - 1 ? n : sizeof hostile - 1);
            f[i] = (nprof_frame){.name = names[i], .name_len = n};
            if (i % 3 == 1) {
                f[i].lib = lib;
                f[i].lib_len = (size_t)(rand() % 20);
                random_bytes(lib, f[i].lib_len);
            }
        }
        for (int k = 0; k < 4; k++)
            ASSERT_OK(nprof_profile_add_sample(p, f, (size_t)(1 + rand() % 6), (uint64_t)rand(),
                                               k % 2 ? NPROF_SAMPLE_SQL : 0));
        nprof_buf out = NPROF_BUF_INIT;
        size_t where = 0;
        ASSERT_OK(nprof_profile_render_json(p, &out));
        ASSERT_TRUE(json_check(out.data, out.len, &where));
        ASSERT_TRUE(strstr(out.data, "</script>") == NULL);
        nprof_buf_free(&out);
        for (unsigned flags = 0; flags < 2; flags++) {
            ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_SPEEDSCOPE, flags, &out));
            ASSERT_TRUE(json_check(out.data, out.len, &where));
            nprof_buf_free(&out);
            ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_CHROME, flags, &out));
            ASSERT_TRUE(json_check(out.data, out.len, &where));
            nprof_buf_free(&out);
            ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, flags, &out));
            for (const char *l = out.data; *l; l = strchr(l, '\n') + 1) {
                const char *eol = strchr(l, '\n'), *sp = eol;
                while (sp > l && sp[-1] != ' ')
                    sp--;
                ASSERT_TRUE(sp > l + 1 && sp < eol); /* "frames ns" */
                for (const char *c = sp; c < eol; c++)
                    ASSERT_TRUE(*c >= '0' && *c <= '9');
            }
            ASSERT_EQ_U64(strlen(out.data), out.len); /* no NUL byte */
            nprof_buf_free(&out);
            ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_SVG, flags, &out));
            ASSERT_EQ_U64(strlen(out.data), out.len);
            ASSERT_TRUE(strstr(out.data, "<svg onload") == NULL);
            /* one script, ours: the zoom */
            const char *script = strstr(out.data, "<script><![CDATA[\n(function () {");
            ASSERT_TRUE(script != NULL);
            ASSERT_TRUE(strstr(script + 1, "<script") == NULL);
            ASSERT_TRUE(strstr(out.data, "</script>") == strstr(script, "]]></script>\n</svg>\n") + 3);
            for (size_t i = 0; i < out.len; i++) {
                unsigned char c = (unsigned char)out.data[i];
                ASSERT_TRUE(c >= 0x20 || c == '\n');
            }
            nprof_buf_free(&out);
        }
        nprof_request_discard(p);
    }
    nprof_runtime_destroy(rt);
}

TEST(frames_keep_their_bytes_as_given_in_the_json)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_frame f[] = {F("a;b\nc\0d")};
    ASSERT_OK(nprof_profile_add_sample(p, f, 1, 9, 0));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &out));
    ASSERT_TRUE(strstr(out.data, "\"samples\":{\"sampled_ns\":9,\"samples\":1,\"dropped\":0,"
                                 "\"dropped_ns\":0,\"stacks\":[{\"frames\":[\"a;b\\nc\\u0000d\"],"
                                 "\"ns\":9,\"count\":1,\"sql\":false}]}") != NULL);
    nprof_buf_free(&out);
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_STR(out.data, "a:b c d 9\n");
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* The n-th occurrence of `needle` in `hay` (0-based), or NULL. */
static const char *nth(const char *hay, const char *needle, int n)
{
    const char *at = hay;
    for (int i = 0; at && i <= n; i++)
        at = strstr(i ? at + 1 : at, needle);
    return at;
}

TEST(speedscope_shares_frames_and_weights_samples_in_nanoseconds)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_frame a[] = {F("view"), F("render")};
    nprof_frame b[] = {F("view"), F("SQL SELECT 1")};
    ASSERT_OK(nprof_profile_add_sample(p, a, 2, 3000, 0));
    ASSERT_OK(nprof_profile_add_sample(p, b, 2, 1000, NPROF_SAMPLE_SQL));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_SPEEDSCOPE, 0, &out));
    size_t where;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    ASSERT_TRUE(strstr(out.data, "\"$schema\":\"https://www.speedscope.app/file-format-schema.json\"") != NULL);
    ASSERT_TRUE(strstr(out.data, "\"type\":\"sampled\"") != NULL);
    ASSERT_TRUE(strstr(out.data, "\"unit\":\"nanoseconds\"") != NULL);
    /* Sorted stacks: "view;SQL SELECT 1 (1 x 1.0us)" before "view;render". */
    ASSERT_TRUE(strstr(out.data, "\"samples\":[[0,1],[0,2]],\"weights\":[1000,3000],\"endValue\":4000") != NULL);
    ASSERT_TRUE(strstr(out.data, "\"shared\":{\"frames\":[{\"name\":\"view\"},"
                                 "{\"name\":\"SQL SELECT 1 (1 x 1.0us)\"},{\"name\":\"render\"}]}") != NULL);
    ASSERT_TRUE(nth(out.data, "\"view\"", 1) == NULL); /* one frame, shared */
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(chrome_trace_lays_merged_stacks_out_as_nested_complete_events)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_frame a[] = {F("view"), F("a")};
    nprof_frame b[] = {F("view"), F("b")};
    ASSERT_OK(nprof_profile_add_sample(p, a, 2, 3000, 0));
    ASSERT_OK(nprof_profile_add_sample(p, b, 2, 1500, 0));
    ASSERT_OK(nprof_profile_add_sample(p, b, 2, 500, 0));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_CHROME, 0, &out));
    size_t where;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    ASSERT_TRUE(strstr(out.data, "{\"name\":\"view\",\"cat\":\"sample\",\"ph\":\"X\",\"pid\":1,"
                                 "\"tid\":1,\"ts\":0.000,\"dur\":5.000}") != NULL);
    ASSERT_TRUE(strstr(out.data, "{\"name\":\"a\",\"cat\":\"sample\",\"ph\":\"X\",\"pid\":1,"
                                 "\"tid\":1,\"ts\":0.000,\"dur\":3.000}") != NULL);
    ASSERT_TRUE(strstr(out.data, "{\"name\":\"b\",\"cat\":\"sample\",\"ph\":\"X\",\"pid\":1,"
                                 "\"tid\":1,\"ts\":3.000,\"dur\":2.000}") != NULL);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(an_svg_flame_graph_draws_every_frame_with_its_label)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_frame a[] = {F("view"), F("<b>&render")};
    ASSERT_OK(nprof_profile_add_sample(p, a, 2, 3000000, 0));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_samples(p, NPROF_SAMPLES_SVG, 0, &out));
    ASSERT_TRUE(strncmp(out.data, "<?xml", 5) == 0);
    ASSERT_TRUE(strstr(out.data, "<title>&lt;b&gt;&amp;render (3.000 ms, 100.00%)</title>") != NULL);
    ASSERT_TRUE(strstr(out.data, "nanoprof: GET /articles (1 samples)") != NULL);
    ASSERT_TRUE(strstr(out.data, "</svg>\n") != NULL);
    nprof_buf_free(&out);
    /* No samples: still a document. */
    nprof_profile *empty = begin(rt);
    ASSERT_OK(nprof_profile_render_samples(empty, NPROF_SAMPLES_SVG, 0, &out));
    ASSERT_TRUE(strstr(out.data, "</svg>\n") != NULL);
    nprof_buf_free(&out);
    for (int format = 0; format <= NPROF_SAMPLES_SVG; format++) {
        size_t where;
        ASSERT_OK(nprof_profile_render_samples(empty, format, 0, &out));
        if (format == NPROF_SAMPLES_SPEEDSCOPE || format == NPROF_SAMPLES_CHROME)
            ASSERT_TRUE(json_check(out.data, out.len, &where));
        nprof_buf_free(&out);
    }
    nprof_request_discard(empty);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

static void sampled_request(nprof_runtime *rt, const char *route, const char *leaf, uint64_t ns)
{
    nprof_profile *p = begin(rt);
    nprof_profile_set_route(p, route, strlen(route));
    nprof_frame f[] = {F("view"), {.name = leaf, .name_len = strlen(leaf)}};
    if (ns)
        nprof_profile_add_sample(p, f, 2, ns, 0);
    nprof_request_end(p, 200);
    nprof_request_submit(p);
}

TEST(the_store_sums_stacks_over_a_routes_sampled_requests)
{
    nprof_runtime *rt = make_runtime("max_history=64");
    nprof_store *s = nprof_runtime_store(rt);
    sampled_request(rt, "/a", "x", 100);
    sampled_request(rt, "/a", "x", 200);
    sampled_request(rt, "/a", "y", 50);
    sampled_request(rt, "/a", "y", 0); /* not sampled */
    sampled_request(rt, "/b", "x", 1000);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_store_render_samples(s, "/a", 2, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_STR(out.data, "view;x 300\nview;y 50\n");
    nprof_buf_free(&out);
    ASSERT_OK(nprof_store_render_samples(s, NULL, 0, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_STR(out.data, "view;x 1300\nview;y 50\n");
    nprof_buf_free(&out);
    ASSERT_OK(nprof_store_render_samples(s, "/none", 5, NPROF_SAMPLES_COLLAPSED, 0, &out));
    ASSERT_EQ_U64(out.len, 0);
    ASSERT_OK(nprof_store_render_samples(s, "/a", 2, NPROF_SAMPLES_SVG, 0, &out));
    ASSERT_TRUE(strstr(out.data, "nanoprof: /a (3 sampled requests)") != NULL);
    nprof_buf_free(&out);
    size_t where;
    ASSERT_OK(nprof_store_render_samples(s, "/a", 2, NPROF_SAMPLES_SPEEDSCOPE, 0, &out));
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    nprof_buf_free(&out);
    ASSERT_EQ_INT(nprof_store_render_samples(NULL, NULL, 0, 0, 0, &out), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_store_render_samples(s, NULL, 3, 0, 0, &out), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_store_render_samples(s, NULL, 0, 9, 0, &out), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_store_render_samples(s, NULL, 0, 0, 0, NULL), NPROF_EINVAL);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(identical_stacks_merge_with_summed_time_and_count);
    RUN(bad_arguments_get_clear_codes);
    RUN(deep_stacks_keep_their_outer_frames_and_a_query_keeps_its_leaf);
    RUN(past_max_profile_bytes_samples_count_under_dropped);
    RUN(a_reused_profile_keeps_nothing_of_the_last_requests_samples);
    RUN(collapse_libs_merges_each_run_of_one_library);
    RUN(hostile_frame_bytes_are_kept_and_every_format_stays_valid);
    RUN(frames_keep_their_bytes_as_given_in_the_json);
    RUN(speedscope_shares_frames_and_weights_samples_in_nanoseconds);
    RUN(chrome_trace_lays_merged_stacks_out_as_nested_complete_events);
    RUN(an_svg_flame_graph_draws_every_frame_with_its_label);
    RUN(the_store_sums_stacks_over_a_routes_sampled_requests);
    return TEST_SUMMARY();
}
