/*
 * tests/test_config.c: the option table, NANOPROF_CONF parsing (all or nothing, clear
 * errors), formatting round trips, and the "opt.*" introspection names.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "test.h"

TEST(defaults_are_the_documented_ones)
{
    nprof_config c;
    nprof_config_init(&c);
    ASSERT_EQ_INT(c.enabled, 1);
    ASSERT_EQ_INT(c.production, 0);
    ASSERT_EQ_U64(c.max_history, 1000);
    ASSERT_EQ_U64(c.n_plus_one_threshold, 5);
    ASSERT_TRUE(c.slow_query_threshold_ms == 100.0);
    ASSERT_EQ_INT(c.allocator, NPROF_ALLOCATOR_AUTO);
    nprof_config_init(NULL); /* accepted, does nothing */
}

TEST(every_option_is_documented_and_parses_its_own_default)
{
    nprof_option_info o;
    size_t n = 0;
    nprof_config c, d;
    nprof_config_init(&c);
    nprof_config_init(&d);
    while (nprof_config_get_option(n, &o) == NPROF_OK) {
        ASSERT_TRUE(o.name && o.name[0] && o.type && o.default_value && o.doc && strlen(o.doc) > 10);
        ASSERT_OK(nprof_config_set(&c, o.name, o.default_value));
        n++;
    }
    ASSERT_U64_OP(n, >=, 11);
    ASSERT_EQ_INT(nprof_config_get_option(n, &o), NPROF_ENOENT);
    ASSERT_EQ_INT(memcmp(&c, &d, sizeof c), 0);
}

TEST(set_accepts_valid_values_and_rejects_bad_ones_without_change)
{
    nprof_config c;
    nprof_config_init(&c);
    ASSERT_OK(nprof_config_set(&c, "slow_query_threshold_ms", "12.5"));
    ASSERT_TRUE(c.slow_query_threshold_ms == 12.5);
    ASSERT_OK(nprof_config_set(&c, "enabled", "off"));
    ASSERT_EQ_INT(c.enabled, 0);
    ASSERT_OK(nprof_config_set(&c, "allocator", "libc"));
    ASSERT_EQ_INT(c.allocator, NPROF_ALLOCATOR_LIBC);
    ASSERT_TRUE(c.stack_sample_interval_ms == 1.0 && c.stack_sample_every == 0);
    ASSERT_OK(nprof_config_set(&c, "stack_sample_interval_ms", "2.5"));
    ASSERT_TRUE(c.stack_sample_interval_ms == 2.5);
    ASSERT_OK(nprof_config_set(&c, "stack_sample_every", "100"));
    ASSERT_EQ_U64(c.stack_sample_every, 100);
    nprof_config before = c;
    ASSERT_EQ_INT(nprof_config_set(&c, "max_history", "-3"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "max_history", "0"), NPROF_EPARSE); /* below range */
    ASSERT_EQ_INT(nprof_config_set(&c, "max_history", "12x"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "max_history", "99999999999999999999"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "slow_query_threshold_ms", "nan"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "enabled", "maybe"), NPROF_EPARSE);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "enabled") != NULL);
    ASSERT_EQ_INT(nprof_config_set(&c, "allocator", "tcmalloc"), NPROF_EPARSE);
    /* The stack sampler's period: a tenth of a millisecond to a second. */
    ASSERT_EQ_INT(nprof_config_set(&c, "stack_sample_interval_ms", "0.05"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "stack_sample_interval_ms", "1001"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "stack_sample_every", "-1"), NPROF_EPARSE);
    ASSERT_EQ_INT(nprof_config_set(&c, "no_such_option", "1"), NPROF_ENOENT);
    ASSERT_EQ_INT(nprof_config_set(NULL, "enabled", "1"), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_config_set(&c, NULL, "1"), NPROF_EINVAL);
    ASSERT_EQ_INT(memcmp(&c, &before, sizeof c), 0);
}

/* A failure in another thread writes that thread's detail, not this one's; the detail's
 * buffer is the thread's own and goes with it (ASan checks that it is freed). */
static void *fail_in_thread(void *arg)
{
    nprof_config c;
    nprof_config_init(&c);
    if (nprof_config_set(&c, "max_history", "12x") != NPROF_EPARSE)
        return NULL;
    snprintf(arg, 256, "%s", nprof_last_error_detail());
    return arg;
}

TEST(the_error_detail_is_the_threads_own)
{
    nprof_config c;
    nprof_config_init(&c);
    ASSERT_EQ_INT(nprof_config_set(&c, "enabled", "maybe"), NPROF_EPARSE);
    char theirs[256] = "";
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        void *r = NULL;
        ASSERT_EQ_INT(pthread_create(&t, NULL, fail_in_thread, theirs), 0);
        ASSERT_EQ_INT(pthread_join(t, &r), 0);
        ASSERT_TRUE(r == theirs);
        ASSERT_TRUE(strstr(theirs, "max_history") != NULL);
    }
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "enabled") != NULL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "max_history") == NULL);
}

TEST(parse_reads_a_conf_string_with_spaces_and_empty_items)
{
    nprof_config c;
    nprof_config_init(&c);
    const char *text = " max_history = 50 ,, slow_query_threshold_ms=250,production=yes, ";
    ASSERT_OK(nprof_config_parse(&c, text, strlen(text)));
    ASSERT_EQ_U64(c.max_history, 50);
    ASSERT_TRUE(c.slow_query_threshold_ms == 250.0);
    ASSERT_EQ_INT(c.production, 1);
    ASSERT_OK(nprof_config_parse(&c, "", 0));
    ASSERT_OK(nprof_config_parse(&c, NULL, 0));
}

TEST(parse_is_all_or_nothing_and_names_the_bad_item)
{
    nprof_config c;
    nprof_config_init(&c);
    nprof_config before = c;
    const char *bad[] = {
        "max_history=10,max_queries=oops",
        "max_history=10,bogus=1",
        "max_history=10,noequals",
        "max_history=10,enabled=2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ_INT(nprof_config_parse(&c, bad[i], strlen(bad[i])), NPROF_EPARSE);
        ASSERT_TRUE(nprof_last_error_detail()[0] != '\0');
        ASSERT_EQ_INT(memcmp(&c, &before, sizeof c), 0);
    }
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "enabled") != NULL);
    /* A NUL inside the text is an error, not a terminator. */
    const char nul[] = "max_history=1\0000";
    ASSERT_EQ_INT(nprof_config_parse(&c, nul, sizeof nul - 1), NPROF_EPARSE);
    /* Only `len` bytes are read: the rest of the buffer is not part of the text. */
    const char *longer = "max_history=7,max_history=8";
    ASSERT_OK(nprof_config_parse(&c, longer, 13));
    ASSERT_EQ_U64(c.max_history, 7);
    /* A value too long for any option. */
    char huge[600];
    memset(huge, '1', sizeof huge);
    memcpy(huge, "max_history=", 12);
    ASSERT_EQ_INT(nprof_config_parse(&c, huge, sizeof huge), NPROF_EPARSE);
}

TEST(format_round_trips_through_parse)
{
    nprof_config c, d;
    nprof_config_init(&c);
    c.max_queries = 77;
    c.slow_query_threshold_ms = 0.125;
    c.allocator = NPROF_ALLOCATOR_LIBC;
    c.production = 1;
    nprof_buf text = NPROF_BUF_INIT;
    ASSERT_OK(nprof_config_format(&c, &text));
    ASSERT_TRUE(strstr(text.data, "max_queries=77") != NULL);
    ASSERT_TRUE(strstr(text.data, "allocator=libc") != NULL);
    nprof_config_init(&d);
    ASSERT_OK(nprof_config_parse(&d, text.data, text.len));
    nprof_buf_free(&text);
    ASSERT_EQ_INT(memcmp(&c, &d, sizeof c), 0);
}

static int count_names(void *user, const char *name, const nprof_ctl_value *v)
{
    (void)v;
    int *n = user;
    if (strncmp(name, "opt.", 4) == 0)
        (*n)++;
    return 0;
}

TEST(runtime_applies_nanoprof_conf_over_the_struct_and_reports_it)
{
    nprof_config c;
    nprof_config_init(&c);
    c.max_history = 10;
    c.allocator = NPROF_ALLOCATOR_LIBC;
    setenv("NANOPROF_CONF", "max_history=20,n_plus_one_threshold=9", 1);
    nprof_runtime *rt = NULL;
    int rc = nprof_runtime_create(&c, &rt);
    unsetenv("NANOPROF_CONF");
    ASSERT_OK(rc);
    ASSERT_EQ_U64(nprof_runtime_config(rt)->max_history, 20);
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(rt, "opt.n_plus_one_threshold", &v));
    ASSERT_EQ_INT(v.type, NPROF_CTL_UINT);
    ASSERT_EQ_U64(v.u, 9);
    ASSERT_OK(nprof_ctl_get(rt, "opt.allocator", &v));
    ASSERT_EQ_INT(v.type, NPROF_CTL_STRING);
    ASSERT_STR(v.s, "libc");
    ASSERT_OK(nprof_ctl_get(rt, "opt.slow_query_threshold_ms", &v));
    ASSERT_EQ_INT(v.type, NPROF_CTL_DOUBLE);
    ASSERT_OK(nprof_ctl_get(rt, "stats.store.capacity", &v));
    ASSERT_EQ_U64(v.u, 20);
    ASSERT_EQ_INT(nprof_ctl_get(rt, "opt.nope", &v), NPROF_ENOENT);
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.nope", &v), NPROF_ENOENT);
    ASSERT_EQ_INT(nprof_ctl_get(rt, NULL, &v), NPROF_EINVAL);
    int opts = 0;
    ASSERT_OK(nprof_ctl_foreach(rt, "opt.", count_names, &opts));
    nprof_option_info o;
    int documented = 0;
    while (nprof_config_get_option((size_t)documented, &o) == NPROF_OK)
        documented++;
    ASSERT_EQ_INT(opts, documented);
    nprof_runtime_destroy(rt);
    nprof_runtime_destroy(NULL);
}

TEST(a_malformed_nanoprof_conf_creates_nothing_and_says_why)
{
    setenv("NANOPROF_CONF", "max_history=lots", 1);
    nprof_runtime *rt = (nprof_runtime *)1;
    int rc = nprof_runtime_create(NULL, &rt);
    unsetenv("NANOPROF_CONF");
    ASSERT_EQ_INT(rc, NPROF_EPARSE);
    ASSERT_TRUE(rt == NULL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "NANOPROF_CONF") != NULL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "max_history") != NULL);
    ASSERT_EQ_INT(nprof_runtime_create(NULL, NULL), NPROF_EINVAL);
}

TEST(a_hand_filled_struct_out_of_range_is_refused_by_create)
{
    nprof_config c;
    nprof_runtime *rt = (nprof_runtime *)1;
    const char *options[] = {"max_history", "allocator", "enabled", "slow_query_threshold_ms",
                             "max_profile_bytes"};
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        nprof_config_init(&c);
        ASSERT_OK(nprof_config_validate(&c));
        switch (i) {
        case 0: c.max_history = 0; break;      /* would divide by zero in the store */
        case 1: c.allocator = 7; break;
        case 2: c.enabled = 2; break;
        case 3: c.slow_query_threshold_ms = -1.0; break;
        case 4: c.max_profile_bytes = 100; break; /* smaller than an empty profile */
        }
        ASSERT_EQ_INT(nprof_config_validate(&c), NPROF_EINVAL);
        ASSERT_TRUE(strstr(nprof_last_error_detail(), options[i]) != NULL);
        ASSERT_EQ_INT(nprof_runtime_create(&c, &rt), NPROF_EINVAL);
        ASSERT_TRUE(rt == NULL);
    }
    ASSERT_EQ_INT(nprof_config_validate(NULL), NPROF_EINVAL);
}

TEST(string_options_take_escaped_commas_and_bad_patterns_are_refused)
{
    nprof_config c;
    nprof_config_init(&c);
    c.allocator = NPROF_ALLOCATOR_LIBC;
    const char *text = "sql_ignore=^(SELECT a\\, b|SET)\\b\\\\,max_history=3";
    ASSERT_OK(nprof_config_parse(&c, text, strlen(text)));
    ASSERT_STR(c.sql_ignore, "^(SELECT a, b|SET)\\b\\");
    ASSERT_EQ_U64(c.max_history, 3);
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_config_format(&c, &out));
    nprof_config d;
    nprof_config_init(&d);
    ASSERT_OK(nprof_config_parse(&d, out.data, out.len));
    nprof_buf_free(&out);
    ASSERT_STR(d.sql_ignore, c.sql_ignore);
    /* A pattern PCRE2 cannot compile stops the runtime from being created, and says where. */
    ASSERT_OK(nprof_config_set(&c, "sql_ignore", "^(SAVEPOINT"));
    nprof_runtime *rt = (nprof_runtime *)1;
    ASSERT_EQ_INT(nprof_runtime_create(&c, &rt), NPROF_EPARSE);
    ASSERT_TRUE(rt == NULL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "sql_ignore") != NULL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "offset") != NULL);
    ASSERT_OK(nprof_config_set(&c, "sql_ignore", ""));
    ASSERT_OK(nprof_runtime_create(&c, &rt));
    nprof_runtime_destroy(rt);
}

TEST(every_result_code_has_a_name_and_a_message)
{
    for (int code = 0; code >= NPROF_EUNSUPPORTED; code--) {
        ASSERT_TRUE(strncmp(nprof_errname(code), "NPROF_", 6) == 0);
        ASSERT_TRUE(strcmp(nprof_errname(code), "NPROF_UNKNOWN") != 0);
        ASSERT_TRUE(strcmp(nprof_strerror(code), "unknown error") != 0);
    }
    ASSERT_STR(nprof_errname(NPROF_EINVAL), "NPROF_EINVAL");
    ASSERT_STR(nprof_strerror(12345), "unknown error");
    ASSERT_STR(nprof_errname(-999), "NPROF_UNKNOWN");
    ASSERT_EQ_U64(nprof_version_number(), NPROF_VERSION_NUMBER);
    ASSERT_STR(nprof_version_string(), NPROF_VERSION_STRING);
}

int main(void)
{
    RUN(defaults_are_the_documented_ones);
    RUN(every_option_is_documented_and_parses_its_own_default);
    RUN(set_accepts_valid_values_and_rejects_bad_ones_without_change);
    RUN(the_error_detail_is_the_threads_own);
    RUN(parse_reads_a_conf_string_with_spaces_and_empty_items);
    RUN(parse_is_all_or_nothing_and_names_the_bad_item);
    RUN(format_round_trips_through_parse);
    RUN(runtime_applies_nanoprof_conf_over_the_struct_and_reports_it);
    RUN(a_malformed_nanoprof_conf_creates_nothing_and_says_why);
    RUN(a_hand_filled_struct_out_of_range_is_refused_by_create);
    RUN(string_options_take_escaped_commas_and_bad_patterns_are_refused);
    RUN(every_result_code_has_a_name_and_a_message);
    return TEST_SUMMARY();
}
