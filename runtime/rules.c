/*
 * runtime/rules.c: PCRE2 rules.  Patterns are compiled once (with JIT where the platform has
 * it) when the runtime is created, so a bad pattern is refused there with its position, and
 * matching costs no compilation.  Match data is per thread: created on a thread's first
 * match, reused for every later one, freed when the thread exits.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"

#include <pcre2.h>
#include <pthread.h>
#include <string.h>

#include "nanoprof/common.h"
#include "text.h"

static pthread_key_t match_data_key;
static pthread_once_t match_data_once = PTHREAD_ONCE_INIT;

static void free_match_data(void *md)
{
    pcre2_match_data_free((pcre2_match_data *)md);
}

static void make_key(void)
{
    pthread_key_create(&match_data_key, free_match_data);
}

/* This thread's match data: the rules only ask whether they match, so one pair suffices. */
static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&match_data_once, make_key);
    pcre2_match_data *md = pthread_getspecific(match_data_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md)
            pthread_setspecific(match_data_key, md);
    }
    return md;
}

int nprof__rule_compile(nprof__rule *rule, const char *pattern, const char *what)
{
    memset(rule, 0, sizeof *rule);
    if (!pattern || !pattern[0])
        return NPROF_OK;
    int err;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &offset, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return nprof__fail(NPROF_EPARSE, "option %s: bad pattern at offset %zu: %s", what,
                           (size_t)offset, (const char *)msg);
    }
    rule->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    rule->code = code;
    return NPROF_OK;
}

int nprof__rule_match(const nprof__rule *rule, const char *s, size_t len)
{
    if (!rule->code)
        return 0;
    pcre2_match_data *md = thread_match_data();
    if (!md)
        return 0;
    int rc = rule->jit ? pcre2_jit_match(rule->code, (PCRE2_SPTR)s, len, 0, 0, md, NULL)
                       : pcre2_match(rule->code, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    return rc >= 0;
}

void nprof__rule_free(nprof__rule *rule)
{
    pcre2_code_free((pcre2_code *)rule->code);
    rule->code = NULL;
}
