/*
 * tests/test_text.c: UTF-8 validation, frame names, number and duration formatting: the
 * functions under the renderers' output (escaping and the writers: test_jsonw.c).
 */
#include <string.h>

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
    /* Too small: NPROF_ERANGE and the length needed (without the NUL), which then fits. */
    char small[4] = "abc";
    size_t need = 0;
    ASSERT_EQ_INT(nprof_duration_format(1200000, small, sizeof small, &need), NPROF_ERANGE);
    ASSERT_EQ_U64(need, 5);
    ASSERT_STR(small, "abc"); /* left as it was */
    need = 0;
    ASSERT_EQ_INT(nprof_duration_format(1200000, NULL, 0, &need), NPROF_ERANGE); /* measures */
    ASSERT_EQ_U64(need, 5);
    size_t len = 0;
    ASSERT_OK(nprof_duration_format(1200000, out, need + 1, &len));
    ASSERT_EQ_U64(len, 5);
    ASSERT_STR(out, "1.2ms");
    ASSERT_OK(nprof_duration_format(45, out, sizeof out, NULL));
    ASSERT_STR(out, "45ns");
    ASSERT_EQ_INT(nprof_duration_format(45, NULL, 8, &len), NPROF_EINVAL);
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
    char fixed[NPROF__FIXED_MAX];
    ASSERT_EQ_U64(nprof__format_fixed(1234567, 3, fixed), 8);
    ASSERT_STR(fixed, "1234.567");
    nprof__format_fixed(7, 0, fixed);
    ASSERT_STR(fixed, "7");
    nprof__format_fixed(UINT64_MAX, 19, fixed);
    ASSERT_STR(fixed, "1.8446744073709551615");
}

int main(void)
{
    RUN(utf8_accepts_valid_sequences_and_rejects_the_rest);
    RUN(frame_names_cannot_break_a_collapsed_stack_line);
    RUN(durations_use_the_header_units);
    RUN(buffers_grow_and_format_numbers);
    return TEST_SUMMARY();
}
