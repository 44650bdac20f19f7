/*
 * sqlhooks/normalize.h: private declarations of the SQL normalizer (sqlhooks/normalize.c).
 * The public entry points are in nanoprof/sql.h; this header holds the limits that shape
 * the output and the keyword table, which tests/test_normalize.c checks directly.
 */
#ifndef NPROF_SQLHOOKS_NORMALIZE_H
#define NPROF_SQLHOOKS_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Nesting depth up to which lists are tracked (and may collapse).  Deeper parentheses and
 * brackets are only counted, so 100,000 nested parentheses cost no memory.
 */
#define NPROF__SQL_DEPTH_MAX 64

/*
 * The highest $n written in NPROF_SQL_DOLLAR style.  PostgreSQL's protocol cannot bind more
 * parameters than this; later literals are written "?".  The cap is what keeps every output
 * within NPROF_SQL_NORMALIZED_MAX(len): a 1-byte literal becomes at most " $65535".
 */
#define NPROF__SQL_DOLLAR_MAX 65535u

/* Bytes of normalized text the fingerprint's streaming pass gathers before feeding XXH3. */
#define NPROF__SQL_STAGE 256

/* The keyword id of the `len` bytes at `word` (ASCII case-insensitive), or -1. */
int nprof__sql_keyword(const char *word, size_t len);

/* The number of keywords and the upper-case spelling of keyword `i` (for tests). */
size_t nprof__sql_keyword_count(void);
const char *nprof__sql_keyword_name(size_t i);

/* The fingerprint of a QMARK-normalized text: what nprof_sql_fingerprint() returns for its
 * query (XXH3-64, never 0). */
uint64_t nprof__sql_text_fingerprint(const char *text, size_t n);

/*
 * The literal key of `sql` (variant 0), or a variant of it (variant 1), into `out` (`cap`
 * bytes, not NUL-terminated), its length in *out_len; see normalize.c.  Returns 1, or 0
 * when the text has no key (a comment, a dollar quote, a prefixed or unterminated string, a
 * byte below TAB... or `cap` too small).
 *   key:     every literal becomes one byte: NPROF__LK_STRING, _BARE (digits only), _NUMBER.
 *   variant: every literal becomes a different literal of its class ('x' or 'y', 1 or 2,
 *            1.5 or 2.5): if the variant has the original's shape, no literal the key
 *            leaves out is written out by the normalizer, and every text of that key has
 *            that same shape.  At most len + (number of literals) bytes.
 */
#define NPROF__LK_STRING 1
#define NPROF__LK_BARE 2
#define NPROF__LK_NUMBER 3
int nprof__sql_literal_text(const char *sql, size_t len, int variant, char *out, size_t cap,
                            size_t *out_len);

/*
 * The normalizer's tokens, for the other passes that read SQL (param_columns.c), so that
 * every pass agrees on what a string, a comment, a quoted name or a placeholder is: white
 * space and comments are skipped, and each token is whole (an unterminated string runs to
 * the end).  A pass keeps an nprof__sql_scan and asks for one token after the other.
 */
enum nprof__sql_token_kind {
    NPROF__TOK_EOF,
    NPROF__TOK_WORD,    /* identifier or keyword (`keyword` >= 0) */
    NPROF__TOK_QNAME,   /* "quoted" or `backticked` identifier, quotes included */
    NPROF__TOK_LITERAL, /* a number or any kind of string */
    NPROF__TOK_PARAM,   /* $1 ? ?1 %s %(name)s :name */
    NPROF__TOK_OP,      /* an operator: = <> <= LIKE is a word */
    NPROF__TOK_OPEN,    /* ( or [ */
    NPROF__TOK_CLOSE,   /* ) or ] */
    NPROF__TOK_COMMA,
    NPROF__TOK_DOT,
    NPROF__TOK_OTHER    /* ; :: and the rest */
};

typedef struct nprof__sql_token {
    size_t offset, len; /* in the text */
    int kind;           /* enum nprof__sql_token_kind */
    int keyword;        /* NPROF__TOK_WORD: nprof__sql_keyword() of it, or -1 */
} nprof__sql_token;

typedef struct nprof__sql_scan {
    const char *sql;
    size_t len, pos;
    int prev_kw;             /* what the lexer needs of the token before: whether ':x' or */
    unsigned char prev_kind; /* '%s' is a placeholder depends on it */
} nprof__sql_scan;

/* Starts a scan of the `len` bytes at `sql` (NULL only with len 0). */
void nprof__sql_scan_init(nprof__sql_scan *sc, const char *sql, size_t len);
/* The next token into *t; NPROF__TOK_EOF (again and again) at the end. */
void nprof__sql_scan_next(nprof__sql_scan *sc, nprof__sql_token *t);

#endif /* NPROF_SQLHOOKS_NORMALIZE_H */
