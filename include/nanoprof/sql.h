/*
 * nanoprof/sql.h: SQL query shapes: normalization and fingerprints.
 *
 * Normalization turns a query into its shape: literals become placeholders, lists of
 * literals collapse, comments and extra whitespace go, keywords are upper-cased.  Queries
 * that differ only in their literals, comments, whitespace or keyword case get the same
 * normalized text and so the same fingerprint; this is what N+1 detection and per-query
 * statistics group by.
 *
 * The rules, in short (PostgreSQL's lexical rules, with MySQL and SQLite spellings):
 *   - tokens are rewritten with one space between them, none inside ( ) [ ], before , ; and
 *     around . and ::, none between a function name and its '(': `a=1` and `a = 1` agree;
 *   - literals become placeholders: numbers (1_000, .5, 1e-5, 0x1F), strings of every kind
 *     ('', E'', B'', X'', N'', U&'', $$..$$, $tag$..$tag$), TRUE and FALSE, a minus sign that
 *     is unary (`x = -5`, not `a - 5`), typed literals (DATE '2024-01-01', INTERVAL '1 day')
 *     and casts written on a literal ('1'::int, CAST($1 AS date)) are each one placeholder;
 *     placeholders already there ($1, ?, ?1, %s, %(name)s, :name) are rewritten the same way;
 *   - lists of literals collapse, so that batch sizes group together: IN (1, 2, 3) and
 *     IN ($1) give IN (?), = ANY(ARRAY[1, 2]) gives = ANY(?), ARRAY[1, 2] gives ARRAY[?], and
 *     VALUES (1, 'a'), (2, 'b') gives VALUES (?, ?) (NULL counts as a literal in a VALUES
 *     row).  A list holding anything else (a column, a function call, a subquery) keeps its
 *     shape;
 *   - names that ORMs make afresh become ?: SAVEPOINT s1, RELEASE [SAVEPOINT] s1,
 *     ROLLBACK TO [SAVEPOINT] s1, PREPARE p, EXECUTE p(1, 2) -> EXECUTE ?(?),
 *     DEALLOCATE [PREPARE] p -> DEALLOCATE ?, DECLARE c ... CURSOR, FETCH / MOVE (count and
 *     cursor), CLOSE c; the value of a SET becomes one literal (SET x TO 5 -> SET x = ?);
 *   - what changes the meaning stays: identifiers and their case (plain, "quoted",
 *     `backticked`, and [bracketed], though a keyword inside brackets is upper-cased), the
 *     select list, NULL (IS NULL differs from = ?), IS TRUE, ordinals (ORDER BY 1, GROUP BY 2);
 *   - comments go (-- and nested block comments; # is an operator, as in PostgreSQL) and
 *     keywords are upper-cased; function names not in the keyword table keep their case.
 * The normalized text is itself normalized (normalizing it again changes nothing), and never
 * holds a newline or a NUL.
 *
 * One pass over the bytes (the length is given: NUL bytes and invalid UTF-8 are data), no
 * regular expressions, no recursion and no heap allocation.  Any input, however malformed
 * (an unterminated string or comment, 100,000 nested parentheses, 10 MB of text), gives a
 * best-effort result in linear time: the rest of an unterminated literal is one literal, a
 * NUL byte separates tokens, invalid UTF-8 passes through in identifiers and vanishes in
 * literals, and lists nested deeper than 64 levels are kept as they are.
 *
 * Thread safety: every function here is reentrant.
 */
#ifndef NANOPROF_SQL_H
#define NANOPROF_SQL_H

#include "common.h"
#include "profile.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How placeholders are written in normalized text (the `style` argument below). */
enum nprof_sql_style {
    NPROF_SQL_QMARK = 0, /* every literal and placeholder becomes ? */
    NPROF_SQL_DOLLAR = 1 /* $1, $2, ... numbered in output order, as PostgreSQL writes them,
                            up to $65535 (then ?); generated names stay ? */
};

/*
 * A buffer of this many bytes always holds the normalized text of `len` bytes (NUL included),
 * in either style.
 *
 * Why 8x and not 2x: each token written stands for at least one input byte of its own and
 * takes at most one space plus max(its input length, 6) bytes.  Identifiers, keywords and
 * operators keep their length, literals and names shrink to "?", and the longest placeholder
 * is "$65535": NPROF_SQL_DOLLAR numbers stop at 65535, PostgreSQL's limit on bind parameters,
 * and later literals are written "?".  The worst case is DOLLAR style on "??????...", where
 * each 1-byte "?" becomes " $n", up to 7 bytes.  QMARK text stays below 2.5 * len + 1.
 * `len` must be below SIZE_MAX / 8.
 */
#define NPROF_SQL_NORMALIZED_MAX(len) (8 * (size_t)(len) + 64)

/*
 * Writes the normalized text of the `len` bytes at `sql` into `out` (at most `cap` bytes,
 * always NUL-terminated when cap > 0), in `style` (enum nprof_sql_style).  *out_len (may be
 * NULL) receives the full length of the normalized text without the NUL, also when it did
 * not fit; it is 0 after NPROF_EINVAL.  `sql` is only read, `out` belongs to the caller.
 * Errors: NPROF_EINVAL (`sql` NULL with len > 0, `out` NULL with cap > 0, unknown style),
 * NPROF_ERANGE (cap too small: `out` holds the first cap - 1 bytes, and *out_len + 1 bytes
 * would have been enough; NPROF_SQL_NORMALIZED_MAX(len) always is).  With out NULL and cap 0
 * the call only measures: NPROF_ERANGE and the length in *out_len.
 */
NPROF_API int nprof_sql_normalize(const char *sql, size_t len, int style, char *out, size_t cap,
                                  size_t *out_len);

/*
 * The query's shape fingerprint: XXH3-64 (seed 0) of its normalized text in NPROF_SQL_QMARK
 * style, so it always agrees with nprof_sql_normalize(): a query of up to 1600 bytes is
 * normalized into a stack buffer and hashed in one call, a longer one is normalized in a single
 * pass whose text is fed to XXH3 in small pieces (no buffer of its size is needed).  Equal
 * shapes give equal fingerprints; the fingerprint of a normalized text, in either style, equals
 * the fingerprint of the original.  Never 0 (0 means "no fingerprint" elsewhere in the API): a
 * digest of 0 is returned as 1.  `sql` may be NULL when `len` is 0.
 */
NPROF_API uint64_t nprof_sql_fingerprint(const char *sql, size_t len);

/*
 * nprof_sql_normalize() and nprof_sql_fingerprint() of the same query, at the cost of one
 * normalization when `style` is NPROF_SQL_QMARK and the text fits in `out` (the fingerprint
 * is then the hash of `out`); otherwise the fingerprint takes a pass of its own.  Arguments,
 * results and errors are those of nprof_sql_normalize(); *fingerprint (may be NULL) receives
 * the fingerprint of the whole query also after NPROF_ERANGE, and 0 after NPROF_EINVAL.
 */
NPROF_API int nprof_sql_shape(const char *sql, size_t len, int style, char *out, size_t cap,
                              size_t *out_len, uint64_t *fingerprint);

/*
 * Records a query into profile `p` as nprof_query_record() does, after giving it its shape:
 * the normalized text (of the part of the query the profile keeps, opt.max_sql_bytes) and the
 * fingerprint (of the whole query), unless the caller set them.  A query whose normalized
 * text matches opt.sql_ignore (transaction control, SAVEPOINT, SET, ...) is recorded and timed
 * but not counted as an N+1 pattern or a duplicate.  Accepts a NULL profile
 * (NPROF_ENOPROFILE), so a database hook can pass nprof_current() unconditionally.
 * Normalizing uses a buffer owned by the calling thread; nothing is allocated per query.
 */
NPROF_API int nprof_sql_record(nprof_profile *p, const nprof_query *q);

/* One placeholder or literal of a query, and the column the SQL compares it with or stores
 * it into, filled by nprof_sql_param_columns().  Offsets are into the text given. */
typedef struct nprof_sql_param_column {
    size_t offset;       /* the column's name: its last part (`col` of `t.col`), without
                            the quotes of a quoted name */
    size_t length;       /* 0: the SQL does not say */
    size_t param_offset; /* the placeholder or literal itself (a unary minus included) */
    size_t param_length;
} nprof_sql_param_column;

/*
 * For each placeholder and literal of the `len` bytes at `sql`, in the order of the text
 * ($n, ?, ?n, %s, %(name)s, :name, numbers, strings of every kind, TRUE and FALSE), the column
 * it is compared with or inserted into when the SQL says so plainly, so that a parameter
 * summary can name the column (`password='x'` rather than `$2='x'`) and the redaction rules
 * (redact.h) see it:
 *     col = v (and <> != < > <= >= LIKE ILIKE, with NOT; UPDATE t SET col = v)
 *     col [NOT] IN (v, v, ...)    col IN v    col = ANY (v)    col BETWEEN v AND v
 *     INSERT INTO t (a, b) VALUES (v, v), (v, v)  (by position; the first 128 columns)
 * Anything else (v = col, expressions, function arguments outside INSERT rows) is unknown:
 * length 0.  Strings, comments and quoted names are read as nprof_sql_normalize() reads them.
 * Fills out[0 .. cap-1] and sets *count to the number of placeholders and literals.  Returns
 * NPROF_OK, NPROF_ERANGE when there are more than `cap` (the first `cap` are filled, *count
 * says how many there are; cap 0 with out NULL only counts), or NPROF_EINVAL (`count` NULL,
 * `sql` NULL with len > 0, `out` NULL with cap > 0).  One pass in linear time, no allocation,
 * any bytes; reentrant.
 */
NPROF_API int nprof_sql_param_columns(const char *sql, size_t len, nprof_sql_param_column *out,
                                      size_t cap, size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_SQL_H */
