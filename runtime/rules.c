/*
 * runtime/rules.c: PCRE2 rules.  Patterns are compiled once (with JIT where the platform has
 * it) when the runtime is created, so a bad pattern is refused there with its position, and
 * matching costs no compilation.  Match data is per thread: created on a thread's first
 * match, reused for every later one, freed when the thread exits.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"

#include <pcre2.h>
#include <string.h>

#include "nanoprof/common.h"
#include "text.h"
#include "thread_mem.h"

/* This thread's match data, released at its exit (thread_mem.h). */
static _Thread_local pcre2_match_data *match_data;

static void free_match_data(void *md)
{
    pcre2_match_data_free((pcre2_match_data *)md);
    match_data = NULL; /* a later use on this thread (another key's release) makes anew */
}

static nprof__thread_mem match_data_mem = NPROF__THREAD_MEM_INIT(free_match_data);

/* This thread's match data, with room for the groups nprof__rule_find() reports. */
static pcre2_match_data *thread_match_data(void)
{
    if (!match_data) {
        pcre2_match_data *md = pcre2_match_data_create(8, NULL);
        if (md && nprof__thread_mem_keep(&match_data_mem, md) < 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
        match_data = md;
    }
    return match_data;
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

int nprof__rule_find(const nprof__rule *rule, const char *s, size_t len, size_t offset,
                     size_t span[4])
{
    if (!rule->code || offset > len)
        return 0;
    pcre2_match_data *md = thread_match_data();
    if (!md)
        return 0;
    int rc = rule->jit ? pcre2_jit_match(rule->code, (PCRE2_SPTR)s, len, offset, 0, md, NULL)
                       : pcre2_match(rule->code, (PCRE2_SPTR)s, len, offset, 0, md, NULL);
    if (rc < 0)
        return 0;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    span[0] = ov[0];
    span[1] = ov[1] < ov[0] ? ov[0] : ov[1]; /* \K can put the end before the start */
    span[2] = span[0];
    span[3] = span[1];
    /* rc is 0 when the ovector was too small: then every pair it holds was set. */
    int pairs = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
    for (int g = 1; g < pairs; g++) {
        if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] >= ov[2 * g]) {
            span[2] = ov[2 * g];
            span[3] = ov[2 * g + 1];
            break;
        }
    }
    return 1;
}

long nprof__rule_replace(const nprof__rule *rule, const char *s, size_t len, const char *repl,
                         char *out, size_t cap)
{
    if (!rule->code) {
        if (len >= cap)
            return -1;
        memcpy(out, s, len);
        out[len] = '\0';
        return (long)len;
    }
    pcre2_match_data *md = thread_match_data();
    if (!md)
        return -1;
    PCRE2_SIZE out_len = cap;
    int rc = pcre2_substitute(rule->code, (PCRE2_SPTR)s, len, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_LITERAL, md, NULL,
                              (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out,
                              &out_len);
    return rc >= 0 ? (long)out_len : -1;
}

void nprof__rule_free(nprof__rule *rule)
{
    pcre2_code_free((pcre2_code *)rule->code);
    rule->code = NULL;
}
