/*
 * tests/test_jsonw.c: the runtime's writers (runtime/jsonw.h), which every JSON document,
 * COPY row and Prometheus exposition goes through: the escaping rules (JSON's table, and the
 * one loop that repairs UTF-8 for every format), automatic commas, number formats, and the
 * first error sticking until the end, where the buffer is cut back to what it held.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "runtime/jsonw.h"
#include "test.h"

/* One string written by a fresh JSON writer; the caller frees the buffer. */
static nprof_buf json_of_string(const char *s, size_t len)
{
    nprof_buf b = NPROF_BUF_INIT;
    nprof__jw j;
    nprof__jw_init(&j, &b);
    nprof__jw_str(&j, s, len);
    if (nprof__jw_finish(&j))
        fprintf(stderr, "json_of_string failed\n");
    return b;
}

TEST(strings_escape_controls_quotes_and_html_and_replace_bad_utf8)
{
    const char in[] = "a\"b\\c\n\t\x01</script>&\xC3\xA9\xFF\x00z";
    nprof_buf b = json_of_string(in, sizeof in - 1);
    ASSERT_STR(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\\u003c/script\\u003e\\u0026\xC3\xA9\xEF\xBF\xBD\\u0000z\"");
    size_t where;
    ASSERT_TRUE(json_check(b.data, b.len, &where));
    nprof_buf_free(&b);
    ASSERT_TRUE(b.data == NULL && b.len == 0);
    nprof_buf_free(NULL);
}

TEST(every_ascii_byte_is_written_as_json_wants)
{
    for (unsigned c = 0; c < 0x80; c++) {
        char in = (char)c;
        nprof_buf b = json_of_string(&in, 1);
        char expect[16];
        if (c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\\')
            snprintf(expect, sizeof expect, "\"\\%c\"", c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : (int)c);
        else if (c < 0x20 || c == 0x7F || c == '<' || c == '>' || c == '&')
            snprintf(expect, sizeof expect, "\"\\u%04x\"", c);
        else
            snprintf(expect, sizeof expect, "\"%c\"", c);
        if (strcmp(b.data, expect) != 0)
            fprintf(stderr, "byte 0x%02x\n", c);
        ASSERT_STR(b.data, expect);
        nprof_buf_free(&b);
    }
}

TEST(invalid_utf8_becomes_one_replacement_per_bad_byte)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},         /* overlong '/' */
        {"\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* surrogate */
        {"\xF4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* > U+10FFFF */
        {"\xE2\x82", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},         /* truncated */
        {"\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\""},          /* valid: copied */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nprof_buf b = json_of_string(cases[i].in, strlen(cases[i].in));
        ASSERT_STR(b.data, cases[i].out);
        nprof_buf_free(&b);
    }
}

TEST(strings_and_keys_are_valid_for_every_random_byte_string)
{
    srand(1234);
    char in[300], key[40];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof in);
        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand() % 256);
        size_t klen = (size_t)(rand() % (int)sizeof key);
        for (size_t i = 0; i < klen; i++)
            key[i] = (char)(1 + rand() % 255); /* keys are C strings */
        key[klen] = '\0';
        nprof_buf b = NPROF_BUF_INIT;
        nprof__jw j;
        nprof__jw_init(&j, &b);
        nprof__jw_obj(&j);
        nprof__jw_kstr(&j, key, in, len);
        nprof__jw_obj_end(&j);
        ASSERT_OK(nprof__jw_finish(&j));
        size_t where = 0;
        if (!json_check(b.data, b.len, &where))
            fprintf(stderr, "invalid JSON at byte %zu of %zu in round %d\n", where, b.len, round);
        ASSERT_TRUE(json_check(b.data, b.len, &where));
        nprof_buf_free(&b);
    }
}

TEST(json_checker_rejects_what_is_not_json)
{
    const char *bad[] = {"", "{", "{\"a\":}", "[1,]", "\"\x01\"", "\"\xFF\"", "01", "{\"a\" 1}",
                         "[1 2]", "\"\\x\"", "tru", "{}}", "\"abc"};
    size_t where;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (json_check(bad[i], strlen(bad[i]), &where))
            fprintf(stderr, "accepted: %s\n", bad[i]);
        ASSERT_TRUE(!json_check(bad[i], strlen(bad[i]), &where));
    }
    const char *good = "{\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\"],\"b\":{}}";
    ASSERT_TRUE(json_check(good, strlen(good), &where));
}

TEST(containers_members_and_elements_get_their_commas)
{
    nprof_buf b = NPROF_BUF_INIT;
    nprof__jw j;
    nprof__jw_init(&j, &b);
    nprof__jw_obj(&j);
    nprof__jw_ku64(&j, "a", 1);
    nprof__jw_key(&j, "list");
    nprof__jw_arr(&j);
    nprof__jw_u64(&j, 1);
    nprof__jw_obj(&j);
    nprof__jw_obj_end(&j);
    nprof__jw_arr(&j);
    nprof__jw_arr_end(&j);
    nprof__jw_null(&j);
    nprof__jw_bool(&j, 0);
    nprof__jw_str(&j, NULL, 0);
    nprof__jw_raw(&j, "[2,3]", 5);
    nprof__jw_arr_end(&j);
    nprof__jw_key(&j, "o");
    nprof__jw_obj(&j);
    nprof__jw_ki64(&j, "b", -2);
    nprof__jw_kstr(&j, "c", "x", 1);
    nprof__jw_obj_end(&j);
    nprof__jw_kms(&j, "d_ms", 1500);
    nprof__jw_obj_end(&j);
    ASSERT_OK(nprof__jw_finish(&j));
    ASSERT_STR(b.data, "{\"a\":1,\"list\":[1,{},[],null,false,\"\",[2,3]],\"o\":{\"b\":-2,\"c\":\"x\"},\"d_ms\":0.002}");
    size_t where;
    ASSERT_TRUE(json_check(b.data, b.len, &where));
    nprof_buf_free(&b);
}

/* Each value alone, as a fresh writer writes it. */
#define VALUE_IS(call, text)                                                                     \
    do {                                                                                         \
        nprof_buf b_ = NPROF_BUF_INIT;                                                           \
        nprof__jw j_, *j = &j_;                                                                  \
        nprof__jw_init(j, &b_);                                                                  \
        call;                                                                                    \
        ASSERT_OK(nprof__jw_finish(j));                                                          \
        ASSERT_STR(b_.data, text);                                                               \
        nprof_buf_free(&b_);                                                                     \
    } while (0)

TEST(numbers_have_one_fixed_format_without_printf)
{
    VALUE_IS(nprof__jw_u64(j, UINT64_MAX), "18446744073709551615");
    VALUE_IS(nprof__jw_i64(j, INT64_MIN), "-9223372036854775808");
    VALUE_IS(nprof__jw_fixed(j, 1234567, 3), "1234.567");
    VALUE_IS(nprof__jw_fixed(j, 5, 9), "0.000000005");
    VALUE_IS(nprof__jw_ms(j, 1499), "0.001");
    VALUE_IS(nprof__jw_ms(j, 1500), "0.002");
    VALUE_IS(nprof__jw_ms(j, UINT64_MAX), "18446744073709.552"); /* no overflow when rounding */
    VALUE_IS(nprof__jw_double(j, 100.0, 3), "100.000");
    VALUE_IS(nprof__jw_double(j, 0.0625, 3), "0.063"); /* exact in binary: rounds up */
    VALUE_IS(nprof__jw_double(j, -2.25, 1), "-2.3");
    VALUE_IS(nprof__jw_double(j, -0.0001, 3), "0.000");
    VALUE_IS(nprof__jw_double(j, NAN, 3), "0.000");
    VALUE_IS(nprof__jw_double(j, 1e300, 3), "0.000");
    VALUE_IS(nprof__jw_duration(j, 1200000), "\"1.2ms\"");
    VALUE_IS(nprof__jw_duration(j, 45), "\"45ns\"");
    VALUE_IS(nprof__jw_hex(j, 0xabcdef0123456789ull), "\"abcdef0123456789\"");
    VALUE_IS(nprof__jw_hex(j, 1), "\"0000000000000001\"");
    VALUE_IS(nprof__jw_bool(j, 7), "true");
}

TEST(the_first_error_sticks_and_the_buffer_is_cut_back)
{
    nprof_buf b = NPROF_BUF_INIT;
    ASSERT_OK(nprof__buf_append_cstr(&b, "kept"));
    nprof__jw j;
    nprof__jw_init(&j, &b);
    nprof__jw_obj(&j);
    nprof__jw_kstr(&j, "a", "b", 1);
    /* A string too long to reserve fails without touching its bytes. */
    nprof__jw_kstr(&j, "huge", "x", SIZE_MAX / 2);
    ASSERT_EQ_INT(j.t.rc, NPROF_ENOMEM);
    size_t len = b.len;
    nprof__jw_ku64(&j, "after", 1); /* does nothing now */
    nprof__tw_check(&j.t, NPROF_EINVAL); /* the first error stays */
    ASSERT_EQ_U64(b.len, len);
    nprof__jw_obj_end(&j);
    ASSERT_EQ_INT(nprof__jw_finish(&j), NPROF_ENOMEM);
    ASSERT_STR(b.data, "kept");
    ASSERT_EQ_U64(b.len, 4);
    nprof_buf_free(&b);
}

TEST(text_writer_escapes_with_the_table_of_its_format)
{
    /* A format like COPY's: its own escapes, no quotes; UTF-8 repaired by the one loop. */
    static const nprof__escapes tabs = {.widest = 3,
                                        .ascii = {[0] = {"\xEF\xBF\xBD", 3}, ['\t'] = {"\\t", 2}}};
    nprof_buf b = NPROF_BUF_INIT;
    nprof__tw t;
    nprof__tw_init(&t, &b);
    nprof__tw_escaped(&t, "a\tb\x00\xFF\x01", 6, &tabs, 0);
    nprof__tw_raw(&t, "|", 1);
    nprof__tw_escaped(&t, "q", 1, &tabs, '\'');
    nprof__tw_raw(&t, "|", 1);
    nprof__tw_fixed(&t, 1500000000, 9);
    nprof__tw_raw(&t, "|", 1);
    nprof__tw_fixed(&t, 42, 0);
    nprof__tw_printf(&t, "|%04d|", 7);
    nprof__tw_i64(&t, -1);
    ASSERT_OK(nprof__tw_finish(&t));
    ASSERT_STR(b.data, "a\\tb\xEF\xBF\xBD\xEF\xBF\xBD\x01|'q'|1.500000000|42|0007|-1");
    nprof_buf_free(&b);
}

int main(void)
{
    RUN(strings_escape_controls_quotes_and_html_and_replace_bad_utf8);
    RUN(every_ascii_byte_is_written_as_json_wants);
    RUN(invalid_utf8_becomes_one_replacement_per_bad_byte);
    RUN(strings_and_keys_are_valid_for_every_random_byte_string);
    RUN(json_checker_rejects_what_is_not_json);
    RUN(containers_members_and_elements_get_their_commas);
    RUN(numbers_have_one_fixed_format_without_printf);
    RUN(the_first_error_sticks_and_the_buffer_is_cut_back);
    RUN(text_writer_escapes_with_the_table_of_its_format);
    return TEST_SUMMARY();
}
