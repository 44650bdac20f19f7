/*
 * tests/test_text.c: UTF-8 validation, JSON escaping, frame names and duration formatting:
 * the functions that make renderer output valid for any input bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "runtime/text.h"
#include "test.h"

TEST(utf8_accepts_valid_sequences_and_rejects_the_rest)
{
    static const struct {
        const char *bytes;
        size_t expect;
    } cases[] = {
        {"A", 1}, {"\xC3\xA9", 2}, {"\xE2\x82\xAC", 3}, {"\xF0\x9F\x98\x80", 4},
        {"\xF4\x8F\xBF\xBF", 4}, /* U+10FFFF */
        {"\xC0\xAF", 0},        /* overlong '/' */
        {"\xC1\xBF", 0},        /* overlong */
        {"\xE0\x80\xAF", 0},    /* overlong */
        {"\xED\xA0\x80", 0},    /* surrogate U+D800 */
        {"\xF4\x90\x80\x80", 0}, /* above U+10FFFF */
        {"\xF5\x80\x80\x80", 0},
        {"\x80", 0},            /* lone continuation */
        {"\xFF", 0},
        {"\xE2\x82", 0},        /* truncated */
        {"\xC3(", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = nprof__utf8_valid_prefix((const unsigned char *)cases[i].bytes,
                                              strlen(cases[i].bytes));
        if (got != cases[i].expect)
            fprintf(stderr, "case %zu\n", i);
        ASSERT_EQ_U64(got, cases[i].expect);
    }
}

TEST(json_strings_escape_controls_quotes_and_html_and_replace_bad_utf8)
{
    nprof_buf b = NPROF_BUF_INIT;
    const char in[] = "a\"b\\c\n\t\x01</script>&\xC3\xA9\xFF\x00z";
    ASSERT_OK(nprof__json_string(&b, in, sizeof in - 1));
    ASSERT_STR(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\\u003c/script\\u003e\\u0026\xC3\xA9\xEF\xBF\xBD\\u0000z\"");
    size_t where;
    ASSERT_TRUE(json_check(b.data, b.len, &where));
    nprof_buf_free(&b);
    ASSERT_TRUE(b.data == NULL && b.len == 0);
    nprof_buf_free(NULL);
}

TEST(json_strings_are_valid_for_every_random_byte_string)
{
    srand(1234);
    char in[300];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof in);
        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand() % 256);
        nprof_buf b = NPROF_BUF_INIT;
        ASSERT_OK(nprof__json_string(&b, in, len));
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

TEST(frame_names_cannot_break_a_collapsed_stack_line)
{
    nprof_buf b = NPROF_BUF_INIT;
    const char in[] = "  SELECT 1;\n  DROP\tTABLE x; \xFF\x00 ";
    ASSERT_OK(nprof__frame_name(&b, in, sizeof in - 1, 256));
    ASSERT_STR(b.data, "SELECT 1: DROP TABLE x: \xEF\xBF\xBD");
    nprof_buf_free(&b);
    ASSERT_OK(nprof__frame_name(&b, "", 0, 256));
    ASSERT_STR(b.data, "?");
    nprof_buf_free(&b);
    ASSERT_OK(nprof__frame_name(&b, "abcdefgh", 8, 5));
    ASSERT_STR(b.data, "abcde");
    nprof_buf_free(&b);
    /* A multibyte character is never cut in half. */
    ASSERT_OK(nprof__frame_name(&b, "ab\xE2\x82\xAC", 5, 4));
    ASSERT_STR(b.data, "ab");
    nprof_buf_free(&b);
}

TEST(durations_use_the_header_units)
{
    static const struct {
        uint64_t ns;
        const char *text;
    } cases[] = {
        {0, "0ns"},           {45, "45ns"},          {999, "999ns"},
        {1000, "1.0us"},      {1049, "1.0us"},       {1050, "1.1us"},
        {12345, "12.3us"},    {99949, "99.9us"},     {99950, "0.1ms"},
        {100000, "0.1ms"},    {800000, "0.8ms"},     {1200000, "1.2ms"},
        {999949999, "999.9ms"}, {999950000, "1.00s"}, {2500000000u, "2.50s"},
        {UINT64_MAX, "18446744073.71s"},
    };
    char out[NPROF__DURATION_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nprof__format_duration(cases[i].ns, out);
        ASSERT_STR(out, cases[i].text);
    }
    char small[4];
    ASSERT_EQ_INT(nprof_format_duration(1200000, small, sizeof small), NPROF_ERANGE);
    ASSERT_EQ_INT(nprof_format_duration(1200000, out, sizeof out), 5);
    ASSERT_STR(out, "1.2ms");
}

TEST(buffers_grow_and_format_numbers)
{
    nprof_buf b = NPROF_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        ASSERT_OK(nprof__buf_append_cstr(&b, "x"));
    ASSERT_EQ_U64(b.len, 10000);
    ASSERT_EQ_U64(strlen(b.data), 10000);
    b.len = 0;
    ASSERT_OK(nprof__buf_append_u64(&b, 0));
    ASSERT_OK(nprof__buf_append_char(&b, ' '));
    ASSERT_OK(nprof__buf_append_u64(&b, UINT64_MAX));
    ASSERT_OK(nprof__buf_append_char(&b, ' '));
    ASSERT_OK(nprof__buf_append_i64(&b, INT64_MIN));
    ASSERT_OK(nprof__buf_append_char(&b, ' '));
    ASSERT_OK(nprof__buf_append_hex64(&b, 0xabcdef0123456789ull));
    ASSERT_STR(b.data, "0 18446744073709551615 -9223372036854775808 abcdef0123456789");
    nprof_buf_free(&b);
}

int main(void)
{
    RUN(utf8_accepts_valid_sequences_and_rejects_the_rest);
    RUN(json_strings_escape_controls_quotes_and_html_and_replace_bad_utf8);
    RUN(json_strings_are_valid_for_every_random_byte_string);
    RUN(json_checker_rejects_what_is_not_json);
    RUN(frame_names_cannot_break_a_collapsed_stack_line);
    RUN(durations_use_the_header_units);
    RUN(buffers_grow_and_format_numbers);
    return TEST_SUMMARY();
}
