/*
 * tests/test_render.c: the X-Profile header (exactly the reference format), the JSON
 * document (valid for any input bytes, checked by a parser) and collapsed stacks.
 */
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"

/* Ticks that nprof_ticks_to_ns() turns into `ns` (or just above). */
static uint64_t ticks_for_ns(uint64_t ns)
{
    nprof_clock_info ci;
    nprof_clock_get_info(&ci);
    uint64_t t = (uint64_t)((double)ns * (double)ci.frequency_hz / 1e9);
    while (nprof_ticks_to_ns(t) < ns)
        t++;
    return t;
}

/* The reference example: total 1.2 ms, handler 0.8 ms, two queries of 150 us, middleware
 * 0.1 ms, routing 45 ns. */
static nprof_profile *reference_profile(nprof_runtime *rt)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        nprof_profile *p;
        if (nprof_request_begin(rt, "GET", 3, "/api/users", 10, nprof_ticks() - ticks_for_ns(1200000), &p))
            return NULL;
        nprof_phase_add_ns(p, NPROF_PHASE_HANDLER, 800000);
        nprof_phase_add_ns(p, NPROF_PHASE_MIDDLEWARE, 100000);
        nprof_phase_add_ns(p, NPROF_PHASE_ROUTING, 45);
        nprof_query_record(p, &(nprof_query){.sql = "SELECT * FROM users", .sql_len = 19, .duration_ns = 150000});
        nprof_query_record(p, &(nprof_query){.sql = "SELECT * FROM profiles", .sql_len = 22, .duration_ns = 150000});
        nprof_request_end(p, 200);
        nprof_profile_info info;
        nprof_profile_get_info(p, &info);
        if (info.total_ns < 1250000) /* not preempted between begin and end */
            return p;
        nprof_request_discard(p);
    }
    return NULL;
}

TEST(the_header_reads_exactly_like_the_reference)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = reference_profile(rt);
    ASSERT_TRUE(p);
    char buf[NPROF_HEADER_MAX];
    size_t len = 0;
    ASSERT_OK(nprof_profile_render_header(p, buf, sizeof buf, &len));
    ASSERT_STR(buf, "total=1.2ms handler=0.8ms sql=0.3ms(2q) middleware=0.1ms routing=45ns");
    ASSERT_EQ_U64(len, strlen(buf));
    /* Too small a buffer: the needed length, nothing written past the cap. */
    char small[10];
    memset(small, '#', sizeof small);
    size_t need = 0;
    ASSERT_EQ_INT(nprof_profile_render_header(p, small, sizeof small, &need), NPROF_ERANGE);
    ASSERT_EQ_U64(need, len);
    ASSERT_EQ_INT(nprof_profile_render_header(p, NULL, 0, &need), NPROF_ERANGE);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(the_json_has_the_reference_keys_and_values)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = reference_profile(rt);
    ASSERT_TRUE(p);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &out));
    size_t where = 0;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    const char *expected[] = {
        "\"method\":\"GET\"", "\"path\":\"/api/users\"", "\"total\":\"1.2ms\"",
        "\"middleware_ns\":100000", "\"routing_ns\":45", "\"handler_ns\":800000",
        "\"sql_total_ns\":300000", "\"sql_count\":2", "\"status\":200",
        "{\"sql\":\"SELECT * FROM users\",\"duration_ns\":150000,\"duration\":\"0.2ms\"",
        "\"sql\":\"SELECT * FROM profiles\"", "\"total_ns\":", "\"request_id\":\"",
        "\"queries_dropped\":0", "\"spans\":[]",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        if (!strstr(out.data, expected[i]))
            fprintf(stderr, "missing %s in %s\n", expected[i], out.data);
        ASSERT_TRUE(strstr(out.data, expected[i]) != NULL);
    }
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

static void random_bytes(char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(rand() % 256);
}

TEST(the_json_is_valid_for_hostile_and_random_bytes_everywhere)
{
    nprof_runtime *rt = make_runtime(NULL);
    srand(42);
    const char hostile[] = "\"}]</script><script>alert(1)</script>\r\n\x00\x1b[31m\xC0\xAF\xED\xA0\x80\\u0000\xF4\x90";
    for (int round = 0; round < 3000; round++) {
        char method[20], path[200], sql[400], params[100], span[60], rid[70];
        size_t ml = (size_t)(rand() % 20), pl = (size_t)(rand() % 200), sl = (size_t)(rand() % 400),
               al = (size_t)(rand() % 100), nl = (size_t)(rand() % 60), rl = (size_t)(rand() % 70);
        random_bytes(method, ml);
        random_bytes(path, pl);
        random_bytes(sql, sl);
        random_bytes(params, al);
        random_bytes(span, nl);
        random_bytes(rid, rl);
        if (round % 2) {
            memcpy(path, hostile, sizeof hostile - 1 < pl ? sizeof hostile - 1 : pl);
            memcpy(sql, hostile, sizeof hostile - 1 < sl ? sizeof hostile - 1 : sl);
        }
        nprof_profile *p;
        ASSERT_OK(nprof_request_begin(rt, method, ml, path, pl, 0, &p));
        nprof_profile_set_request_id(p, rid, rl);
        nprof_profile_set_route(p, path, pl / 2);
        int s = nprof_span_begin(p, span, nl);
        nprof_query_record(p, &(nprof_query){.sql = sql, .sql_len = sl, .params = params, .params_len = al,
                                             .normalized = sql, .normalized_len = sl / 3,
                                             .duration_ns = (uint64_t)rand(), .fingerprint = (uint64_t)rand()});
        if (round % 3)
            nprof_span_end(p, s);
        nprof_request_end(p, rand() - RAND_MAX / 2);
        nprof_buf out = NPROF_BUF_INIT;
        ASSERT_OK(nprof_profile_render_json(p, &out));
        size_t where = 0;
        if (!json_check(out.data, out.len, &where))
            fprintf(stderr, "round %d: invalid JSON at %zu: %.80s\n", round, where, out.data + (where > 20 ? where - 20 : 0));
        ASSERT_TRUE(json_check(out.data, out.len, &where));
        ASSERT_TRUE(strstr(out.data, "</script>") == NULL);
        nprof_buf_free(&out);
        /* The header never carries anything but what we formatted. */
        char h[NPROF_HEADER_MAX];
        ASSERT_OK(nprof_profile_render_header(p, h, sizeof h, NULL));
        for (const char *c = h; *c; c++)
            ASSERT_TRUE(*c >= 0x20 && *c < 0x7F);
        /* Collapsed stacks: every line is "frames number". */
        nprof_buf st = NPROF_BUF_INIT;
        ASSERT_OK(nprof_profile_render_collapsed(p, &st));
        for (char *line = st.data; line && *line;) {
            char *nl = strchr(line, '\n');
            ASSERT_TRUE(nl != NULL);
            char *space = nl;
            while (space > line && space[-1] != ' ')
                space--;
            ASSERT_TRUE(space > line + 1);
            for (char *d = space; d < nl; d++)
                ASSERT_TRUE(*d >= '0' && *d <= '9');
            ASSERT_TRUE(strncmp(line, "request", 7) == 0);
            for (char *c = line; c < nl; c++)
                ASSERT_TRUE((unsigned char)*c >= 0x20 && *c != 0x7F);
            line = nl + 1;
        }
        nprof_buf_free(&st);
        nprof_request_discard(p);
    }
    nprof_runtime_destroy(rt);
}

TEST(json_appends_to_what_the_buffer_holds)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    nprof_request_end(p, 204);
    nprof_buf out = NPROF_BUF_INIT;
    out.data = malloc(16);
    out.cap = 16;
    memcpy(out.data, "[", 2);
    out.len = 1;
    ASSERT_OK(nprof_profile_render_json(p, &out));
    ASSERT_TRUE(out.data[0] == '[' && out.data[1] == '{');
    ASSERT_EQ_INT(nprof_profile_render_json(p, NULL), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_profile_render_json(NULL, &out), NPROF_ENOPROFILE);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* Parses "stack ns" lines into a total and looks up one stack's value (or -1). */
static long long stack_value(const char *text, const char *stack, unsigned long long *sum)
{
    long long found = -1;
    *sum = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *space = nl;
        while (space[-1] != ' ')
            space--;
        unsigned long long v = strtoull(space, NULL, 10);
        *sum += v;
        if ((size_t)(space - 1 - line) == strlen(stack) && !memcmp(line, stack, strlen(stack)))
            found = (long long)v;
        line = nl + 1;
    }
    return found;
}

TEST(collapsed_stacks_give_self_times_that_add_up_to_the_total)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE));
    test_spin_ns(200000);
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    int s = nprof_span_begin(p, "load;users\n", 11);
    test_spin_ns(300000);
    for (int i = 0; i < 3; i++)
        nprof_query_record(p, &(nprof_query){.sql = "SELECT 1", .sql_len = 8, .duration_ns = 50000,
                                             .normalized = "SELECT ?", .normalized_len = 8});
    nprof_span_end(p, s);
    nprof_query_record(p, &(nprof_query){.sql = "UPDATE t\nSET a=1", .sql_len = 16, .duration_ns = 20000});
    test_spin_ns(100000);
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_HANDLER));
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_collapsed(p, &out));
    unsigned long long sum = 0;
    ASSERT_INT_OP(stack_value(out.data, "request;handler;load:users;sql;SELECT ?", &sum), ==, 150000);
    ASSERT_INT_OP(stack_value(out.data, "request;handler;sql;UPDATE t SET a=1", &sum), ==, 20000);
    ASSERT_INT_OP(stack_value(out.data, "request;middleware", &sum), >=, 200000);
    ASSERT_INT_OP(stack_value(out.data, "request;handler;load:users", &sum), >=, 300000 - 150000);
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    /* Self times telescope to the total, give or take a nanosecond of rounding per span. */
    ASSERT_U64_OP(sum, <=, info.total_ns + 4);
    ASSERT_U64_OP(sum + 4, >=, info.total_ns);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(queries_not_kept_still_show_their_time_in_the_stacks)
{
    nprof_config c;
    nprof_config_init(&c);
    c.allocator = NPROF_ALLOCATOR_LIBC;
    c.max_queries = 2;
    nprof_runtime *rt;
    ASSERT_OK(nprof_runtime_create(&c, &rt));
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, nprof_ticks() - ticks_for_ns(10000000), &p));
    for (int i = 0; i < 5; i++)
        nprof_query_record(p, &(nprof_query){.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000});
    nprof_request_end(p, 200);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_collapsed(p, &out));
    unsigned long long sum;
    ASSERT_INT_OP(stack_value(out.data, "request;sql;SELECT 1", &sum), ==, 2000);
    ASSERT_INT_OP(stack_value(out.data, "request;sql;[queries not kept]", &sum), ==, 3000);
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(the_header_reads_exactly_like_the_reference);
    RUN(the_json_has_the_reference_keys_and_values);
    RUN(the_json_is_valid_for_hostile_and_random_bytes_everywhere);
    RUN(json_appends_to_what_the_buffer_holds);
    RUN(collapsed_stacks_give_self_times_that_add_up_to_the_total);
    RUN(queries_not_kept_still_show_their_time_in_the_stacks);
    return TEST_SUMMARY();
}
