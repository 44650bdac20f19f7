/*
 * sqlhooks/redact.c: redaction of parameter summaries and SQL text (nanoprof/redact.h).
 *
 * One pass over the input: each rule's next match is found once with PCRE2 (JIT) and cached;
 * the leftmost cached match is replaced, the copy moves past it, and only the rules whose
 * cached match now lies behind the copy position search again.  So every rule scans the
 * input about once, whatever the number of matches, and nothing is copied twice (no buffer
 * per rule).  The slow-query log calls this on the request path; it allocates nothing there
 * (the match data is per thread, runtime/rules.c).
 *
 * The redactor itself is allocated with malloc, once, like the PCRE2 code it holds.
 */
#include "nanoprof/redact.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rules.h"
#include "runtime/text.h"

struct nprof_redactor {
    nprof__rule rules[NPROF_REDACT_MAX_RULES];
    const char *need[NPROF_REDACT_MAX_RULES]; /* prefilters of the default rules (above) */
    size_t need_len[NPROF_REDACT_MAX_RULES];
    const char *const *words[NPROF_REDACT_MAX_RULES];
    uint32_t word_starts[NPROF_REDACT_MAX_RULES]; /* bit k: a word starts with 'a' + k */
    unsigned min_digits[NPROF_REDACT_MAX_RULES];
    size_t rule_count;
    size_t max_bytes;
    size_t replacement_len;
    char replacement[64];
};

/* The default rules; see the list in nanoprof/redact.h.  `need` is a literal every match
 * contains, `words` a list of lower-case ASCII words of which every match contains one in
 * any case, and `min_digits` a count of digits it needs: a text without them skips the rule
 * before PCRE2 starts, which is most of the time (a regular expression that can begin at any
 * letter, like the e-mail one, costs a few hundred ns on a 75-byte text even when it finds
 * nothing; the key rule about 200 ns on "id=1", a tenth of recording a query).
 *
 * `words` is exact only for ASCII text: caseless UTF matching lets U+017F match 's' and
 * U+212A 'k', so a text with any byte above 0x7F goes to PCRE2 whatever it contains. */
static const char *const secret_keys[] = {"pass", "pwd", "secret", "token", "api",
                                          "auth", "credential", "private", "session",
                                          "cookie", NULL};
static const char *const bearer_word[] = {"bearer", NULL};

static const struct default_rule {
    const char *pattern;
    const char *need;
    const char *const *words;
    unsigned min_digits;
} default_rules[] = {
    /* A value bound to a secret-looking key: key, optional closing quote, `=`, `:`, `=>` or
     * SQL's `=`, then a quoted or bare value.  Only the value (the group that matched) goes. */
    {"(?i)(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|auth(?:orization)?|"
     "credentials?|private[_-]?key|session(?:[_-]?id)?|cookie)[\\w-]*[\"'`]?\\s*(?:=>|[:=])\\s*"
     "(?:'((?:[^'\\\\]|\\\\.|'')*)'|\"((?:[^\"\\\\]|\\\\.)*)\"|(?!bearer\\s)([^\\s,;&)}\\]]+))",
     NULL, secret_keys, 0},
    /* Bearer tokens: the scheme stays, the credential goes. */
    {"(?i)\\bbearer\\s+([A-Za-z0-9._~+/=-]+)", NULL, bearer_word, 0},
    /* JSON Web Tokens: base64url header starting with {" (eyJ), payload, signature. */
    {"\\beyJ[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*", "eyJ", NULL, 0},
    /* E-mail addresses. */
    {"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}", "@", NULL, 0},
    /* Card-like digit runs: 13 to 19 digits, optionally grouped by single spaces or dashes. */
    {"(?<![\\d.])\\d(?:[ -]?\\d){12,18}(?![\\d.])", NULL, NULL, 13},
};
#define DEFAULT_RULE_COUNT (sizeof default_rules / sizeof default_rules[0])

void nprof_redactor_options_init(nprof_redactor_options *opts)
{
    if (!opts)
        return;
    *opts = (nprof_redactor_options){
        .flags = NPROF_REDACT_DEFAULTS,
        .rules = NULL,
        .rule_count = 0,
        .replacement = NULL,
        .max_bytes = 512,
    };
}

void nprof_redactor_destroy(nprof_redactor *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->rule_count; i++)
        nprof__rule_free(&r->rules[i]);
    free(r);
}

int nprof_redactor_create(const nprof_redactor_options *opts, nprof_redactor **out)
{
    if (!out)
        return nprof__fail(NPROF_EINVAL, "nprof_redactor_create: NULL out");
    *out = NULL;
    nprof_redactor_options defaults;
    if (!opts) {
        nprof_redactor_options_init(&defaults);
        opts = &defaults;
    }
    size_t ndef = opts->flags & NPROF_REDACT_DEFAULTS ? DEFAULT_RULE_COUNT : 0;
    if (opts->rule_count > NPROF_REDACT_MAX_RULES - ndef || (opts->rule_count && !opts->rules))
        return nprof__fail(NPROF_EINVAL, "redaction: at most %zu user rules",
                           (size_t)NPROF_REDACT_MAX_RULES - ndef);
    const char *rep = opts->replacement ? opts->replacement : "[redacted]";
    nprof_redactor *r = calloc(1, sizeof *r);
    if (!r)
        return NPROF_ENOMEM;
    r->replacement_len = strlen(rep);
    if (r->replacement_len >= sizeof r->replacement) {
        free(r);
        return nprof__fail(NPROF_EINVAL, "redaction: replacement longer than %zu bytes",
                           sizeof r->replacement - 1);
    }
    memcpy(r->replacement, rep, r->replacement_len);
    r->max_bytes = opts->max_bytes ? opts->max_bytes : SIZE_MAX;
    for (size_t i = 0; i < ndef + opts->rule_count; i++) {
        const char *pattern = i < ndef ? default_rules[i].pattern : opts->rules[i - ndef];
        if (i < ndef) {
            r->need[i] = default_rules[i].need;
            r->need_len[i] = r->need[i] ? strlen(r->need[i]) : 0;
            r->words[i] = default_rules[i].words;
            for (const char *const *w = r->words[i]; w && *w; w++)
                r->word_starts[i] |= 1u << ((*w)[0] - 'a');
            r->min_digits[i] = default_rules[i].min_digits;
        }
        char what[48];
        snprintf(what, sizeof what, "redaction rule %zu", i < ndef ? i : i - ndef);
        int rc = pattern ? nprof__rule_compile(&r->rules[i], pattern, what)
                         : nprof__fail(NPROF_EINVAL, "%s: NULL pattern", what);
        if (rc) {
            r->rule_count = i;
            nprof_redactor_destroy(r);
            return rc;
        }
    }
    r->rule_count = ndef + opts->rule_count;
    *out = r;
    return NPROF_OK;
}

/* Does the ASCII text in[0..len) contain one of `words` (lower-case letters), in any case?
 * `starts` has bit k set when a word starts with 'a' + k: most bytes are passed on that. */
static int has_word_ascii_ci(const char *in, size_t len, const char *const *words,
                             uint32_t starts)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i] | 0x20; /* letters only: the words' are */
        unsigned letter = (unsigned)c - 'a';
        if (letter >= 26 || !(starts >> letter & 1u))
            continue;
        for (const char *const *w = words; *w; w++) {
            const char *word = *w;
            if ((unsigned char)word[0] != c)
                continue;
            size_t k = 1;
            while (word[k] && i + k < len && ((unsigned char)in[i + k] | 0x20) == (unsigned char)word[k])
                k++;
            if (!word[k])
                return 1;
        }
    }
    return 0;
}

/* What the prefilters ask of a text, gathered in one pass over it: which byte values occur
 * (256 bits) and how many digits.  On a short summary like "id=42" the pass and the checks
 * cost a few dozen instructions where a memmem, a memchr and a word scan per rule cost
 * hundreds, and a parameter summary is made for every query. */
typedef struct text_facts {
    uint64_t present[4]; /* bit c: byte value c occurs */
    unsigned digits;
} text_facts;

static void gather_facts(const char *in, size_t len, text_facts *f)
{
    uint64_t p0 = 0, p1 = 0, p2 = 0, p3 = 0;
    unsigned digits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        uint64_t bit = 1ull << (c & 63);
        switch (c >> 6) {
        case 0: p0 |= bit; break;
        case 1: p1 |= bit; break;
        case 2: p2 |= bit; break;
        default: p3 |= bit; break;
        }
        digits += (unsigned char)(c - '0') < 10;
    }
    f->present[0] = p0;
    f->present[1] = p1;
    f->present[2] = p2;
    f->present[3] = p3;
    f->digits = digits;
}

static int occurs(const text_facts *f, unsigned char c)
{
    return (int)(f->present[c >> 6] >> (c & 63) & 1u);
}

/* Bit k set: the letter 'a' + k occurs, in either case.  'A'..'Z' are bits 1..26 of the
 * second word, 'a'..'z' bits 33..58. */
static uint32_t letters_of(const text_facts *f)
{
    return (uint32_t)(((f->present[1] >> 1) | (f->present[1] >> 33)) & 0x3ffffffu);
}

static int any_high_byte(const text_facts *f)
{
    return (f->present[2] | f->present[3]) != 0;
}

/* Whether rule i's literal `need` can occur: each of its bytes must, before memmem looks. */
static int need_met(const nprof_redactor *r, size_t i, const text_facts *f, const char *in,
                    size_t len)
{
    for (size_t k = 0; k < r->need_len[i]; k++)
        if (!occurs(f, (unsigned char)r->need[i][k]))
            return 0;
    return r->need_len[i] == 1 || memmem(in, len, r->need[i], r->need_len[i]) != NULL;
}

/* The length of out[0..len) without a trailing UTF-8 sequence that the cut left incomplete. */
static size_t utf8_trim_tail(const char *out, size_t len)
{
    size_t back = 0;
    while (back < len && back < 3 && ((unsigned char)out[len - 1 - back] & 0xC0) == 0x80)
        back++;
    if (back == len)
        return len;
    unsigned char lead = (unsigned char)out[len - 1 - back];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > back + 1 && lead >= 0xC0 ? len - 1 - back : len;
}

int nprof_redactor_apply(const nprof_redactor *r, const char *in, size_t len, char *out, size_t cap,
                         size_t *out_len, int *truncated)
{
    if (out_len)
        *out_len = 0;
    if (truncated)
        *truncated = 0;
    if (!r || (!in && len) || (!out && cap))
        return NPROF_EINVAL;
    size_t limit = cap < r->max_bytes ? cap : r->max_bytes;
    /* Per rule: the cached next match (span) and whether there is one. */
    size_t span[NPROF_REDACT_MAX_RULES][4];
    unsigned char found[NPROF_REDACT_MAX_RULES];
    text_facts facts;
    int gathered = 0;
    for (size_t i = 0; i < r->rule_count; i++) {
        if (r->need[i] || r->words[i] || r->min_digits[i]) {
            if (!gathered) {
                gather_facts(in, len, &facts);
                gathered = 1;
            }
            /* `words` is exact only for ASCII text (see the rules above). */
            int skip = (r->need[i] && !need_met(r, i, &facts, in, len)) ||
                       (r->words[i] && !any_high_byte(&facts) &&
                        (!(letters_of(&facts) & r->word_starts[i]) ||
                         !has_word_ascii_ci(in, len, r->words[i], r->word_starts[i]))) ||
                       facts.digits < r->min_digits[i];
            if (skip) {
                found[i] = 0;
                continue;
            }
        }
        found[i] = (unsigned char)nprof__rule_find(&r->rules[i], in, len, 0, span[i]);
    }
    size_t pos = 0, n = 0;
    int replaced = 0, cut = 0;
    for (;;) {
        /* The leftmost replacement among the rules; ties go to the rule listed first. */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < r->rule_count; i++) {
            while (found[i]) {
                /* A match whose group lies behind the copy position (another rule's
                 * replacement covered it), or whose group is empty: look again further on.
                 * `from` grows every time, so this ends. */
                size_t from;
                if (span[i][2] < pos)
                    from = pos;
                else if (span[i][3] == span[i][2])
                    from = span[i][1] > span[i][0] ? span[i][1] : span[i][0] + 1;
                else
                    break;
                found[i] = from <= len && nprof__rule_find(&r->rules[i], in, len, from, span[i]);
            }
            if (found[i] && (best == SIZE_MAX || span[i][2] < span[best][2]))
                best = i;
        }
        size_t copy_end = best == SIZE_MAX ? len : span[best][2];
        size_t chunk = copy_end - pos;
        if (chunk > limit - n) {
            chunk = limit - n;
            cut = 1;
        }
        memcpy(out + n, in + pos, chunk);
        n += chunk;
        if (cut || best == SIZE_MAX)
            break;
        size_t rep = r->replacement_len;
        if (rep > limit - n) {
            rep = limit - n;
            cut = 1;
        }
        memcpy(out + n, r->replacement, rep);
        n += rep;
        replaced++;
        pos = span[best][3];
        if (cut)
            break;
    }
    if (cut)
        n = utf8_trim_tail(out, n);
    if (out_len)
        *out_len = n;
    if (truncated)
        *truncated = cut;
    return replaced;
}
