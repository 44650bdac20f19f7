/*
 * nanoprof/redact.h: taking secrets and personal data out of text before it is stored.
 *
 * A redactor is a set of PCRE2 rules compiled once (with JIT where the platform has it).
 * Applying it copies the text into a caller's buffer with every match replaced by a marker
 * ("[redacted]" by default) and cuts the result at a maximum length.  The slow-query log
 * (nanoprof/slowlog.h) runs one over every parameter summary on the request path, before the
 * entry is queued, and over the SQL text on its writer thread.
 *
 * The default rules (NPROF_REDACT_DEFAULTS) catch:
 *   - a value bound to a key or column named like password, passwd, pwd, secret, token,
 *     api_key, auth, credential, private_key, session or cookie, in the spellings a parameter
 *     summary or a query uses: `password=x`, `token: x`, `"secret": "x"`, `password = 'x'`
 *     (SQL), `api_key => x`; only the value is replaced, the key stays readable;
 *   - e-mail addresses;
 *   - card-like digit runs: 13 to 19 digits, optionally grouped by spaces or dashes;
 *   - bearer tokens (`Bearer <token>`) and JSON Web Tokens (`eyJ...`.`...`.`...`).
 * What they cannot see: a secret with nothing around it that names it (a bare positional
 * parameter such as `['alice', 'hunter2']`).  Add a rule for the shapes your application
 * uses, or summarize parameters as key=value.
 *
 * A rule with capture groups replaces only its first group that took part in the match
 * (so `(?i)ssn=(\d+)` keeps "ssn=" and hides the number); a rule without groups replaces
 * the whole match.  Rules are matched against the original text, leftmost match first; when
 * two rules match at the same place the one listed first wins.
 *
 * Thread safety: a redactor is immutable after creation; any number of threads may apply it
 * at once.  Applying it allocates nothing after a thread's first call (PCRE2 match data is
 * kept per thread).
 */
#ifndef NANOPROF_REDACT_H
#define NANOPROF_REDACT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A compiled set of redaction rules, opaque and immutable: made by nprof_redactor_create(),
 * freed by nprof_redactor_destroy(), applied by nprof_redactor_apply() from any thread. */
typedef struct nprof_redactor nprof_redactor;

#define NPROF_REDACT_MAX_RULES 32 /* default rules plus user rules */

/* nprof_redactor_options.flags */
#define NPROF_REDACT_DEFAULTS 1u /* include the default rules listed above */

/* How to build a redactor: fill with nprof_redactor_options_init(), then change fields. */
typedef struct nprof_redactor_options {
    unsigned flags;              /* NPROF_REDACT_* (default NPROF_REDACT_DEFAULTS) */
    const char *const *rules;    /* `rule_count` extra PCRE2 patterns (UTF-8, matched with
                                    PCRE2_MATCH_INVALID_UTF), applied after the defaults;
                                    copied at creation (default none) */
    size_t rule_count;
    const char *replacement;     /* what a match becomes, NUL-terminated, copied; NULL:
                                    "[redacted]" */
    size_t max_bytes;            /* output is cut at this many bytes, on a UTF-8 boundary
                                    (default 512; 0: no limit but the caller's buffer) */
} nprof_redactor_options;

/* Fills `opts` with the defaults above.  Accepts NULL.  Never fails. */
NPROF_API void nprof_redactor_options_init(nprof_redactor_options *opts);

/*
 * Compiles the rules into a new redactor, *out (the caller's: destroy it).  `opts` NULL means
 * the defaults; it is copied, the caller keeps it.  Errors: NPROF_EINVAL (`out` NULL,
 * more than NPROF_REDACT_MAX_RULES rules, a NULL pattern), NPROF_EPARSE (a pattern does not
 * compile; nprof_last_error_detail() gives its number and the offset), NPROF_ENOMEM.
 */
NPROF_API int nprof_redactor_create(const nprof_redactor_options *opts, nprof_redactor **out);

/* Frees the redactor.  Accepts NULL.  No thread may be applying it. */
NPROF_API void nprof_redactor_destroy(nprof_redactor *r);

/*
 * Copies the `len` bytes at `in` into `out` (at most `cap` bytes, and at most the redactor's
 * max_bytes; not NUL-terminated) with every match replaced.  *out_len (may be NULL) receives
 * the bytes written; *truncated (may be NULL) is set to 1 when the result was cut, else
 * 0.  Returns the number of replacements made (>= 0: a count, not only a code), or NPROF_EINVAL
 * (`r` NULL, `in` NULL with len > 0, `out` NULL with cap > 0).  Never returns NPROF_ERANGE: a
 * short `cap` cuts the output, as max_bytes does.  `in` and `out` must not overlap.  Rules are
 * matched over the whole input before anything is cut, so a cut never leaves the first half of
 * a secret behind, and it never splits a valid UTF-8 sequence.
 */
NPROF_API int nprof_redactor_apply(const nprof_redactor *r, const char *in, size_t len, char *out,
                                   size_t cap, size_t *out_len, int *truncated);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* Renamed: the redactor's functions and types all have the prefix nprof_redactor_. */
#define nprof_redact nprof_redactor_apply
#define nprof_redact_options_init nprof_redactor_options_init
/* The old name of nprof_redactor_options. */
typedef nprof_redactor_options nprof_redact_options;
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_REDACT_H */
