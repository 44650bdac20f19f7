/*
 * tests/test_redact.c: the redaction rules (nanoprof/redact.h): every default rule on the
 * shapes it is meant for, what it must leave alone, user rules, the length limit and its
 * UTF-8 boundary, and bad input.
 */
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "test.h"

static nprof_redactor *defaults;

/* Redacts `in` with `r` into a static buffer and returns it NUL-terminated. */
static const char *red(const nprof_redactor *r, const char *in, int *count)
{
    static char out[2048];
    size_t n = 0;
    int c = nprof_redactor_apply(r, in, strlen(in), out, sizeof out - 1, &n, NULL);
    if (count)
        *count = c;
    out[n] = 0;
    return out;
}

TEST(key_value_secrets_lose_their_values_keep_their_keys)
{
    ASSERT_STR(red(defaults, "user=bob password=hunter2 page=3", NULL),
               "user=bob password=[redacted] page=3");
    ASSERT_STR(red(defaults, "{\"secret\": \"s3cr3t x\", \"n\": 1}", NULL),
               "{\"secret\": \"[redacted]\", \"n\": 1}");
    ASSERT_STR(red(defaults, "UPDATE users SET password = 'it''s', name = 'a'", NULL),
               "UPDATE users SET password = '[redacted]', name = 'a'");
    ASSERT_STR(red(defaults, "api_key=>abc123;access_token: zzz", NULL),
               "api_key=>[redacted];access_token: [redacted]");
    ASSERT_STR(red(defaults, "PASSWD='x y'", NULL), "PASSWD='[redacted]'");
}

/* The key and bearer rules are skipped on ASCII text without one of their words; the skip
 * must never change a result: any case, words inside longer keys, a word cut by the end of
 * the text, and non-ASCII text where caseless UTF matching finds more than ASCII would
 * (U+017F LONG S matches 's', U+212A KELVIN SIGN matches 'k'). */
TEST(prefiltered_rules_find_every_case)
{
    ASSERT_STR(red(defaults, "PaSsWoRd=x", NULL), "PaSsWoRd=[redacted]");
    ASSERT_STR(red(defaults, "x_AUTHORIZATION_header='a b'", NULL),
               "x_AUTHORIZATION_header='[redacted]'");
    ASSERT_STR(red(defaults, "SessionId: 77;CooKie=abc", NULL),
               "SessionId: [redacted];CooKie=[redacted]");
    ASSERT_STR(red(defaults, "h BEARER tok", NULL), "h BEARER [redacted]");
    ASSERT_STR(red(defaults, "id=1 name='pas'", NULL), "id=1 name='pas'");
    ASSERT_STR(red(defaults, "bearer", NULL), "bearer");
    ASSERT_STR(red(defaults, "pa\xc5\xbf\xc5\xbfword=hunter2", NULL),
               "pa\xc5\xbf\xc5\xbfword=[redacted]");
    ASSERT_STR(red(defaults, "api\xe2\x84\xaa" "ey=zz", NULL),
               "api\xe2\x84\xaa" "ey=[redacted]");
    /* The other prefilters (a byte that must occur, a count of digits) decided from one pass
     * over the text: upper case, a match at either end, one digit short. */
    ASSERT_STR(red(defaults, "Bob@Example.ORG", NULL), "[redacted]");
    ASSERT_STR(red(defaults, "EYJhbG.x.y", NULL), "EYJhbG.x.y");
    ASSERT_STR(red(defaults, "t eyJa.b.c", NULL), "t [redacted]");
    ASSERT_STR(red(defaults, "n=4111111111111111", NULL), "n=[redacted]");
    ASSERT_STR(red(defaults, "n=411111111111", NULL), "n=411111111111");
}

TEST(emails_cards_bearer_and_jwt)
{
    int n = 0;
    ASSERT_STR(red(defaults, "to alice.b+x@mail.example.co.uk now", &n), "to [redacted] now");
    ASSERT_EQ_INT(n, 1);
    ASSERT_STR(red(defaults, "card 4111 1111 1111 1111 ok", NULL), "card [redacted] ok");
    ASSERT_STR(red(defaults, "card=4111-1111-1111-1111", NULL), "card=[redacted]");
    ASSERT_STR(red(defaults, "Authorization: Bearer abc.DEF-123_x", NULL),
               "Authorization: Bearer [redacted]");
    ASSERT_STR(red(defaults, "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln end", NULL),
               "jwt [redacted] end");
}

TEST(ordinary_text_is_left_alone)
{
    int n = -1;
    const char *plain = "id=42 name='O''Brien' amount=12.50 at 2024-01-02 ids (1,2,3) 日本";
    ASSERT_STR(red(defaults, plain, &n), plain);
    ASSERT_EQ_INT(n, 0);
    /* 12 digits is not card-like; a decimal with many digits is not either. */
    ASSERT_STR(red(defaults, "order 123456789012 and 3.14159265358979323", NULL),
               "order 123456789012 and 3.14159265358979323");
}

TEST(user_rules_replace_their_first_group_or_the_match)
{
    const char *rules[] = {"(?i)ssn=(\\d+)", "internal-[a-z]+"};
    nprof_redactor_options o;
    nprof_redactor_options_init(&o);
    o.flags = 0;
    o.rules = rules;
    o.rule_count = 2;
    o.replacement = "***";
    nprof_redactor *r = NULL;
    ASSERT_OK(nprof_redactor_create(&o, &r));
    ASSERT_STR(red(r, "SSN=123456 host internal-db password=x", NULL),
               "SSN=*** host *** password=x");
    nprof_redactor_destroy(r);
}

TEST(output_is_cut_at_max_bytes_on_a_utf8_boundary)
{
    nprof_redactor_options o;
    nprof_redactor_options_init(&o);
    o.max_bytes = 8;
    nprof_redactor *r = NULL;
    ASSERT_OK(nprof_redactor_create(&o, &r));
    char out[64];
    size_t n = 0;
    int cut = 0;
    /* "abcdef" then a 3-byte character that would straddle the limit. */
    nprof_redactor_apply(r, "abcdef\xe6\x97\xa5xyz", 12, out, sizeof out, &n, &cut);
    ASSERT_EQ_INT(cut, 1);
    ASSERT_MEM_STR(out, n, "abcdef");
    /* A secret past the limit never shows, even partly: the marker is what gets cut. */
    nprof_redactor_apply(r, "pwd=hunter2", 11, out, sizeof out, &n, &cut);
    ASSERT_EQ_INT(cut, 1);
    ASSERT_MEM_STR(out, n, "pwd=[red");
    /* The caller's buffer is a limit too. */
    nprof_redactor_apply(r, "abcdef", 6, out, 3, &n, &cut);
    ASSERT_MEM_STR(out, n, "abc");
    ASSERT_EQ_INT(cut, 1);
    nprof_redactor_destroy(r);
}

TEST(invalid_utf8_and_nul_bytes_do_not_stop_matching)
{
    char out[128];
    size_t n = 0;
    const char in[] = "\xff\x00 password=abc \xc3";
    int c = nprof_redactor_apply(defaults, in, sizeof in - 1, out, sizeof out, &n, NULL);
    ASSERT_EQ_INT(c, 1);
    ASSERT_TRUE(memmem(out, n, "abc", 3) == NULL);
    ASSERT_EQ_U64(n, sizeof in - 1 - 3 + strlen("[redacted]"));
}

TEST(bad_input_gets_clear_errors)
{
    nprof_redactor *r = NULL;
    const char *bad[] = {"(unclosed"};
    nprof_redactor_options o;
    nprof_redactor_options_init(&o);
    o.rules = bad;
    o.rule_count = 1;
    ASSERT_EQ_INT(nprof_redactor_create(&o, &r), NPROF_EPARSE);
    ASSERT_TRUE(r == NULL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "redaction rule 0") != NULL);
    ASSERT_EQ_INT(nprof_redactor_create(NULL, NULL), NPROF_EINVAL);
    char out[4];
    ASSERT_EQ_INT(nprof_redactor_apply(NULL, "a", 1, out, 4, NULL, NULL), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_redactor_apply(defaults, NULL, 1, out, 4, NULL, NULL), NPROF_EINVAL);
    size_t n = 99;
    ASSERT_EQ_INT(nprof_redactor_apply(defaults, "", 0, out, 4, &n, NULL), 0);
    ASSERT_EQ_U64(n, 0);
    nprof_redactor_destroy(NULL);
}

int main(void)
{
    if (nprof_redactor_create(NULL, &defaults) != NPROF_OK) {
        fprintf(stderr, "cannot create the default redactor: %s\n", nprof_last_error_detail());
        return 1;
    }
    RUN(key_value_secrets_lose_their_values_keep_their_keys);
    RUN(prefiltered_rules_find_every_case);
    RUN(emails_cards_bearer_and_jwt);
    RUN(ordinary_text_is_left_alone);
    RUN(user_rules_replace_their_first_group_or_the_match);
    RUN(output_is_cut_at_max_bytes_on_a_utf8_boundary);
    RUN(invalid_utf8_and_nul_bytes_do_not_stop_matching);
    RUN(bad_input_gets_clear_errors);
    nprof_redactor_destroy(defaults);
    return TEST_SUMMARY();
}
