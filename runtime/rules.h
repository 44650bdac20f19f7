/*
 * runtime/rules.h: user-configurable rules (PCRE2 patterns), compiled once with JIT when the
 * runtime is created and matched on the request path without allocating.  The SQL layer's
 * ignore list uses them; route templating and parameter redaction will too.
 */
#ifndef NPROF_RUNTIME_RULES_H
#define NPROF_RUNTIME_RULES_H

#include <stddef.h>

typedef struct nprof__rule {
    void *code; /* pcre2_code_8 *, NULL when the pattern is empty */
    int jit;    /* JIT compiled */
} nprof__rule;

/* Compiles `pattern` (NUL-terminated; "" is a rule that matches nothing).  Errors:
 * NPROF_EPARSE with nprof_last_error_detail() naming the option `what` and the position. */
int nprof__rule_compile(nprof__rule *rule, const char *pattern, const char *what);

/* 1 when the rule matches somewhere in `len` bytes of `s`, else 0 (also for an empty rule, or
 * when matching fails for lack of memory: a rule never breaks the request). */
int nprof__rule_match(const nprof__rule *rule, const char *s, size_t len);

/*
 * Finds the first match at or after `offset` in `len` bytes of `s`: 1 with span[0..1] the
 * match and span[2..3] its first group that took part (the match itself when none did, or
 * the pattern has no groups), else 0 (no match, an empty rule, or matching failed for lack of
 * memory).  Redaction (sqlhooks/redact.c) replaces that group, or the whole match.
 */
int nprof__rule_find(const nprof__rule *rule, const char *s, size_t len, size_t offset,
                     size_t span[4]);

/*
 * Replaces every match of the rule in `len` bytes of `s` by the literal `repl` (NUL-terminated),
 * writing the result to `out` (at most `cap` bytes, NUL included).  Returns the result's
 * length (the input copied unchanged when nothing matched, or for an empty rule), or -1 when
 * it does not fit or matching fails: the caller then keeps the input.  Never allocates.
 */
long nprof__rule_replace(const nprof__rule *rule, const char *s, size_t len, const char *repl,
                         char *out, size_t cap);

void nprof__rule_free(nprof__rule *rule);

#endif /* NPROF_RUNTIME_RULES_H */
