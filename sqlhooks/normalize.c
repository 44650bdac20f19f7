/*
 * sqlhooks/normalize.c: SQL normalization and shape fingerprints (nanoprof/sql.h).
 *
 * A query becomes its shape in one pass over its bytes, in three stages that pull from each
 * other: a lexer cuts tokens (comments and whitespace vanish); a combiner merges what SQL
 * treats as one literal (`'1'::int`, `DATE '2024-01-01'`, `CAST($1 AS date)`); and a shaper
 * absorbs unary signs, collapses lists of literals, renames the names ORMs generate and
 * hands every token to one emitter, which chooses the spacing and either fills the caller's
 * buffer or feeds XXH3 through a small stack buffer.  nprof_sql_normalize() and
 * nprof_sql_fingerprint() therefore run the same code and cannot disagree.
 *
 * Linear time, no heap, no recursion.  Lookahead is a copy of the lexer state, taken back when
 * a pattern does not match; the patterns are short, and a failed CAST(...) leaves a count
 * behind so that its nested CASTs are not scanned again.  A list that may collapse is held
 * back, not buffered: what it held was only literals and commas, so the shaper can write it
 * out again from counters when the list turns out not to be one.  Frames for parentheses live
 * in a fixed array; deeper levels are counted and never collapse.
 *
 * The rules are chosen so that the output normalizes to itself: every decision depends only
 * on the classes of neighbouring tokens, and normalization never changes a token's class in
 * a way that matters (a literal and "?" are both operands, a keyword stays a keyword).
 */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "normalize.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "nanoprof/sql.h"
#include "runtime/text.h"

typedef unsigned char u8;

/*
 * Inlining: a normalization pass is compiled as one function (FLATTEN), so the state of the
 * lexer, shaper and emitter stays in registers and no token pays for calls between stages;
 * what is rare (comments, dollar quotes, casts, lists that turn out not to be lists, a full
 * buffer) stays out of line (NOINLINE), which keeps the pass at about 31 KB of code.  The
 * two together cut the instructions per query by a fifth (callgrind, bench corpus).
 * Within the pass, the lexer dispatches once per token on a table of what each byte starts,
 * and the tokens that meet no statement rule and no held list (most of them) take a short
 * way through the shaper, with the emitter specialised for their kind: together a third
 * fewer instructions again.
 */
#define FLATTEN __attribute__((flatten))
#define NOINLINE __attribute__((noinline))

/* ---- keywords ---------------------------------------------------------------------- */

#define KF_VALUE 1u  /* an operand (NULL, END, DATE...): a minus after it is binary */
#define KF_FUNC 2u   /* written like a function: no space before its '(' */
#define KF_TYPED 4u  /* starts a typed literal: DATE '2024-01-01' is one literal */
#define KF_CLAUSE 8u /* starts a clause, so it ends an ORDER BY / GROUP BY list */
#define KF_DDL 16u   /* a table name follows, whose column list keeps its space: t (a, b) */
#define KF_NAME 32u  /* often a column's name too (at, level, key, date): see used_as_name() */

/* Sorted by spelling ('_' sorts after the letters, as in ASCII): looked up by bisection. */
#define NPROF__SQL_KEYWORDS(X)                                                              \
    X(ABSOLUTE, 0) X(ADD, 0) X(ALL, 0) X(ALTER, 0) X(ANALYZE, 0) X(AND, 0)                  \
    X(ANY, KF_FUNC) X(ARRAY, KF_FUNC) X(AS, 0) X(ASC, 0) X(ASENSITIVE, 0) X(AT, KF_NAME)   \
    X(BACKWARD, 0) X(BEGIN, 0) X(BETWEEN, 0) X(BINARY, 0) X(BOTH, 0) X(BY, 0)              \
    X(CASCADE, 0) X(CASE, 0) X(CAST, KF_FUNC) X(CHECK, 0) X(CLOSE, 0)                      \
    X(COALESCE, KF_FUNC) X(COLLATE, 0) X(COLUMN, 0) X(COMMIT, 0) X(COMMITTED, 0)           \
    X(CONFLICT, 0) X(CONSTRAINT, 0) X(CONSTRAINTS, 0) X(COPY, 0) X(CREATE, 0)              \
    X(CROSS, 0) X(CUBE, 0) X(CURRENT, 0) X(CURRENT_DATE, KF_VALUE)                         \
    X(CURRENT_TIME, KF_VALUE) X(CURRENT_TIMESTAMP, KF_VALUE) X(CURRENT_USER, KF_VALUE)     \
    X(CURSOR, 0) X(DATE, KF_VALUE | KF_TYPED | KF_NAME) X(DEALLOCATE, 0) X(DECLARE, 0)     \
    X(DEFAULT, KF_VALUE) X(DEFERRABLE, 0) X(DEFERRED, 0) X(DELETE, 0) X(DESC, 0)           \
    X(DISCARD, 0) X(DISTINCT, 0) X(DO, 0) X(DROP, 0) X(ELSE, 0) X(END, KF_VALUE)           \
    X(ESCAPE, 0) X(EXCEPT, KF_CLAUSE) X(EXCLUDE, 0) X(EXECUTE, 0) X(EXISTS, KF_DDL)        \
    X(EXPLAIN, 0) X(EXTRACT, KF_FUNC) X(FALSE, KF_VALUE) X(FETCH, KF_CLAUSE)               \
    X(FILTER, 0) X(FIRST, KF_VALUE | KF_NAME) X(FOLLOWING, 0) X(FOR, KF_CLAUSE)            \
    X(FOREIGN, 0) X(FORWARD, 0) X(FROM, KF_CLAUSE) X(FULL, 0) X(GRANT, 0)                  \
    X(GREATEST, KF_FUNC)                                                                   \
    X(GROUP, KF_CLAUSE) X(GROUPING, 0) X(GROUPS, KF_CLAUSE) X(HAVING, KF_CLAUSE)           \
    X(HOLD, 0) X(IF, 0) X(ILIKE, 0) X(IMMEDIATE, 0) X(IN, 0) X(INDEX, KF_NAME) X(INNER, 0) \
    X(INSENSITIVE, 0) X(INSERT, 0) X(INTERSECT, KF_CLAUSE) X(INTERVAL, KF_TYPED)           \
    X(INTO, KF_CLAUSE | KF_DDL) X(IS, 0) X(ISOLATION, 0) X(JOIN, 0)                        \
    X(KEY, KF_VALUE | KF_NAME) X(LAST, KF_VALUE | KF_NAME) X(LATERAL, 0) X(LEAST, KF_FUNC) \
    X(LEFT, KF_FUNC) X(LEVEL, KF_VALUE | KF_NAME) X(LIKE, 0) X(LIMIT, KF_CLAUSE)           \
    X(LISTEN, 0) X(LOCAL, 0)                                                               \
    X(LOCALTIME, KF_VALUE) X(LOCALTIMESTAMP, KF_VALUE) X(LOCK, 0) X(LOCKED, 0)             \
    X(MATERIALIZED, 0) X(MERGE, 0) X(MOVE, 0) X(NAMES, 0) X(NATURAL, 0) X(NEXT, 0)         \
    X(NO, 0) X(NOT, 0) X(NOTHING, 0) X(NOTIFY, 0) X(NOWAIT, 0) X(NULL, KF_VALUE)           \
    X(NULLIF, KF_FUNC) X(NULLS, 0) X(OF, 0) X(OFFSET, KF_CLAUSE) X(ON, KF_CLAUSE)          \
    X(ONLY, 0) X(OR, 0) X(ORDER, KF_CLAUSE) X(OUTER, 0) X(OVER, 0) X(OVERLAPS, 0)          \
    X(PARTITION, 0) X(PRECEDING, 0) X(PREPARE, 0) X(PRIMARY, 0) X(PRIOR, 0)                \
    X(RANGE, KF_CLAUSE) X(READ, KF_NAME) X(RECURSIVE, 0) X(REFERENCES, KF_DDL)             \
    X(RELATIVE, 0)                                                                         \
    X(RELEASE, 0) X(REPEATABLE, 0) X(RESET, 0) X(RESTRICT, 0) X(RETURNING, KF_CLAUSE)      \
    X(REVOKE, 0) X(RIGHT, KF_FUNC) X(ROLLBACK, 0) X(ROLLUP, 0) X(ROW, KF_FUNC)             \
    X(ROWS, KF_CLAUSE) X(SAVEPOINT, 0) X(SCHEMA, 0) X(SCROLL, 0) X(SELECT, KF_CLAUSE)      \
    X(SERIALIZABLE, 0) X(SESSION, 0) X(SESSION_USER, KF_VALUE) X(SET, KF_CLAUSE)           \
    X(SETS, 0) X(SHARE, 0) X(SHOW, 0) X(SIMILAR, 0) X(SKIP, 0) X(SOME, KF_FUNC)            \
    X(START, KF_NAME) X(TABLE, KF_DDL) X(TEMP, 0) X(TEMPORARY, 0) X(THEN, 0) X(TIES, 0)    \
    X(TIME, KF_VALUE | KF_TYPED | KF_NAME) X(TIMESTAMP, KF_VALUE | KF_TYPED | KF_NAME)     \
    X(TIMESTAMPTZ, KF_VALUE | KF_TYPED) X(TO, 0) X(TRAILING, 0) X(TRANSACTION, 0)          \
    X(TRUE, KF_VALUE) X(TRUNCATE, 0) X(UNBOUNDED, 0) X(UNCOMMITTED, 0)                     \
    X(UNION, KF_CLAUSE) X(UNIQUE, 0) X(UNLISTEN, 0) X(UPDATE, 0) X(USING, 0)               \
    X(VACUUM, 0) X(VALUES, KF_CLAUSE) X(VIEW, KF_DDL) X(WHEN, 0) X(WHERE, KF_CLAUSE)       \
    X(WINDOW, KF_CLAUSE) X(WITH, 0) X(WITHOUT, 0) X(WORK, 0) X(WRITE, 0)                   \
    X(ZONE, KF_VALUE)

enum kw_id {
#define NPROF__KW_ENUM(name, flags) KW_##name,
    NPROF__SQL_KEYWORDS(NPROF__KW_ENUM)
#undef NPROF__KW_ENUM
        KW__COUNT
};

static const struct {
    const char *name;
    u8 len;
    u8 flags;
} kw_table[] = {
#define NPROF__KW_ROW(name, flags) {#name, (u8)(sizeof #name - 1), (u8)(flags)},
    NPROF__SQL_KEYWORDS(NPROF__KW_ROW)
#undef NPROF__KW_ROW
};

#define KW_LEN_MAX 17 /* CURRENT_TIMESTAMP */

/*
 * Keyword lookup is on the path of every word of every query, so it is a hash probe, not a
 * search: the key is the word upper-cased into zero-padded bytes (the lexer fills them while
 * it scans the word), compared as three 64-bit words (a keyword has at most 17 bytes).
 * `c & 0xDF` upper-cases a letter and maps no other identifier byte (digits, '$', bytes
 * >= 0x80) onto a letter or '_', so a masked word equals a keyword's spelling only if the
 * word is that keyword.
 * The table is open-addressed at a load under 1/4 and built once, when the library loads.
 */
#define KW_KEY_BYTES 32 /* a power of two: the lexer masks its index with it */
#define KW_HASH_SLOTS 1024u

typedef union kw_key {
    uint64_t w[KW_KEY_BYTES / 8];
    u8 b[KW_KEY_BYTES];
} kw_key;

static kw_key kw_keys[KW__COUNT];
static int16_t kw_slots[KW_HASH_SLOTS]; /* keyword id + 1, 0 for an empty slot */

static unsigned kw_hash(const kw_key *k, size_t len)
{
    uint64_t h = (k->w[0] ^ (k->w[1] * 31u) ^ len) * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 54); /* the top 10 bits: KW_HASH_SLOTS */
}

__attribute__((constructor)) static void kw_build(void)
{
    for (int id = 0; id < KW__COUNT; id++) {
        kw_key *k = &kw_keys[id];
        memcpy(k->b, kw_table[id].name, kw_table[id].len);
        unsigned h = kw_hash(k, kw_table[id].len);
        while (kw_slots[h])
            h = (h + 1) & (KW_HASH_SLOTS - 1);
        kw_slots[h] = (int16_t)(id + 1);
    }
}

/* The keyword whose spelling is the `len` masked bytes of `k` (zero past len), or -1. */
static int kw_find(const kw_key *k, size_t len)
{
    if (len < 2 || len > KW_LEN_MAX)
        return -1;
    for (unsigned h = kw_hash(k, len);; h = (h + 1) & (KW_HASH_SLOTS - 1)) {
        int id = kw_slots[h] - 1;
        if (id < 0)
            return -1;
        const kw_key *c = &kw_keys[id];
        if (c->w[0] == k->w[0] && c->w[1] == k->w[1] && c->w[2] == k->w[2] &&
            kw_table[id].len == len)
            return id;
    }
}

/*
 * The keyword id of the n-byte word at s[start], or -1.  Most words are up to eight bytes
 * long: their key is one 8-byte load with the bytes past the word cleared, where eight bytes
 * can be read, and only its first word can differ from a keyword's (the other two are zero
 * on both sides when the lengths are equal).  Longer ones (and the text's last bytes) are
 * copied byte by byte.  Upper-cased eight bytes at a time.
 */
static inline int word_keyword(const u8 *s, size_t len, size_t start, size_t n)
{
    if (n < 2 || n > KW_LEN_MAX)
        return -1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n <= 8 && start + 8 <= len) {
        uint64_t w;
        memcpy(&w, s + start, 8);
        w &= 0xDFDFDFDFDFDFDFDFull >> (8 * (8 - n));
        kw_key key = {{w, 0, 0, 0}};
        for (unsigned h = kw_hash(&key, n);; h = (h + 1) & (KW_HASH_SLOTS - 1)) {
            int id = kw_slots[h] - 1;
            if (id < 0 || (kw_keys[id].w[0] == w && kw_table[id].len == n))
                return id;
        }
    }
#endif
    kw_key key = {{0}};
    for (size_t k = 0; k < n; k++)
        key.b[k] = s[start + k];
    for (size_t w = 0; w < 3; w++)
        key.w[w] &= 0xDFDFDFDFDFDFDFDFull;
    return kw_find(&key, n);
}

int nprof__sql_keyword(const char *word, size_t len)
{
    kw_key k = {{0}};
    if (len > KW_LEN_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        u8 c = (u8)word[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
            return -1;
        k.b[i] = (u8)(c & 0xDF);
    }
    return kw_find(&k, len);
}

size_t nprof__sql_keyword_count(void)
{
    return KW__COUNT;
}

const char *nprof__sql_keyword_name(size_t i)
{
    return i < KW__COUNT ? kw_table[i].name : NULL;
}

static unsigned kw_flags(int kw)
{
    return kw >= 0 ? kw_table[kw].flags : 0;
}

/* ---- lexer ------------------------------------------------------------------------- */

enum tk {
    TK_EOF,
    TK_WORD,   /* identifier or keyword (kw >= 0) */
    TK_QIDENT, /* "quoted" or `backticked` identifier */
    TK_NUMBER,
    TK_STRING, /* every kind of string literal, dollar quotes included */
    TK_PARAM,  /* a placeholder already in the text: $1 ? ?1 %s %(name)s :name */
    TK_OP,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACK,
    TK_RBRACK,
    TK_COMMA,
    TK_DOT,
    TK_SEMI,
    TK_CAST,   /* :: */
    TK_VALUE,  /* combiner: one literal, whatever tokens it spanned */
    TK_NAME,   /* shaper: a generated name (savepoint, cursor...), written "?" */
    TK_RAWNUM  /* shaper: an ORDER BY / GROUP BY ordinal, written as it is */
};

struct tok {
    const u8 *p;
    size_t n;
    int kw;  /* TK_WORD: keyword id or -1 */
    u8 kind; /* enum tk */
    u8 bare; /* TK_NUMBER / TK_VALUE: plain decimal digits, no sign, no cast */
    u8 name; /* TK_VALUE (set where one is made): made in a name position */
};

struct lexer {
    const u8 *s;
    size_t len, pos;
    int prev_kw;  /* keyword id of the previous token, or -1 */
    u8 prev_kind; /* the previous token's kind, TK_EOF before the first */
};

/*
 * Character classes, one table lookup per byte.  Bytes >= 0x80 are identifier characters
 * (UTF-8 letters, and invalid bytes, which pass through in identifiers).
 */
#define CC_DIGIT 1u
#define CC_IDSTART 2u /* a-z A-Z _ and bytes >= 0x80 */
#define CC_IDCHAR 4u  /* CC_IDSTART, digits and '$' */
#define CC_OP 8u      /* + - * / < > = ~ ! @ # % ^ & | */
#define CC_SPACE 16u  /* every byte up to ' ': white space, NUL and control characters */

#define CC_D (CC_DIGIT | CC_IDCHAR)
#define CC_L (CC_IDSTART | CC_IDCHAR)
#define CC_S CC_SPACE
#define CC_O CC_OP
#define CC_ROW16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const u8 cc_table[256] = {
    CC_ROW16(CC_S), CC_ROW16(CC_S),
    /*  sp    !     "  #     $         %     &     '  (  )  *     +     ,  -     .  /  */
    CC_S, CC_O, 0, CC_O, CC_IDCHAR, CC_O, CC_O, 0, 0, 0, CC_O, CC_O, 0, CC_O, 0, CC_O,
    /*  0-9                                                      :  ;  <     =     >     ?  */
    CC_D, CC_D, CC_D, CC_D, CC_D, CC_D, CC_D, CC_D, CC_D, CC_D, 0, 0, CC_O, CC_O, CC_O, 0,
    /*  @     A-O */
    CC_O, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L,
    /*  P-Z                                                                [  \  ]  ^     _  */
    CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, 0, 0, 0, CC_O, CC_L,
    /*  `  a-o */
    0, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L,
    /*  p-z                                                                {  |     }  ~     DEL */
    CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, CC_L, 0, CC_O, 0, CC_O, 0,
    CC_ROW16(CC_L), CC_ROW16(CC_L), CC_ROW16(CC_L), CC_ROW16(CC_L),
    CC_ROW16(CC_L), CC_ROW16(CC_L), CC_ROW16(CC_L), CC_ROW16(CC_L),
};
#undef CC_D
#undef CC_L
#undef CC_S
#undef CC_O
#undef CC_ROW16

static inline int is_digit(u8 c)
{
    return cc_table[c] & CC_DIGIT;
}

static inline int is_ident_start(u8 c)
{
    return cc_table[c] & CC_IDSTART;
}

static inline int is_ident_char(u8 c)
{
    return cc_table[c] & CC_IDCHAR;
}

static inline int is_op_char(u8 c)
{
    return cc_table[c] & CC_OP;
}

NOINLINE static size_t skip_block_comment(const u8 *s, size_t len, size_t i)
{
    size_t depth = 1; /* PostgreSQL nests block comments */
    i += 2;
    while (i + 1 < len) {
        if (s[i] == '*' && s[i + 1] == '/') {
            i += 2;
            if (--depth == 0)
                return i;
        } else if (s[i] == '/' && s[i + 1] == '*') {
            i += 2;
            depth++;
        } else {
            i++;
        }
    }
    return len;
}

/*
 * The first c at or after i, or len.  Quoted names and strings are mostly short: sixteen
 * bytes are looked at in place where SSE2 is there, which saves a call to memchr.
 */
static inline size_t find_byte(const u8 *s, size_t len, size_t i, u8 c)
{
#if defined(__SSE2__)
    const __m128i cv = _mm_set1_epi8((char)c);
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cv));
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    const u8 *p = i < len ? memchr(s + i, c, len - i) : NULL;
    return p ? (size_t)(p - s) : len;
}

/* From the opening quote at q to just past the closing one ('' doubles; \ escapes in E''). */
NOINLINE static size_t scan_string(const u8 *s, size_t len, size_t q, int backslash)
{
    size_t i = q + 1;
    for (;;) {
        if (backslash) {
            while (i < len && s[i] != '\'' && s[i] != '\\')
                i++;
        } else {
            i = find_byte(s, len, i, '\'');
        }
        if (i >= len)
            return len; /* unterminated: the rest is the literal */
        if (s[i] == '\\') {
            i += 2;
            if (i > len)
                return len;
            continue;
        }
        if (i + 1 < len && s[i + 1] == '\'') {
            i += 2;
            continue;
        }
        return i + 1;
    }
}

/* Past the quote that closes the one at q ("" or '' inside stand for one), or 0 when the
 * text ends first. */
static size_t quote_end(const u8 *s, size_t len, size_t q)
{
    size_t i = q + 1;
    for (;;) {
        i = find_byte(s, len, i, s[q]);
        if (i >= len)
            return 0;
        if (i + 1 < len && s[i + 1] == s[q]) {
            i += 2;
            continue;
        }
        return i + 1;
    }
}

/* A quoted name from its opening quote at q; unterminated, it takes the rest of the text. */
static size_t scan_quoted(const u8 *s, size_t len, size_t q)
{
    size_t end = quote_end(s, len, q);
    return end ? end : len;
}

/* The end of a dollar-quote opener ($$ or $tag$) at i, or 0 when there is none. */
NOINLINE static size_t dollar_open(const u8 *s, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && s[j] == '$')
        return j + 1;
    if (j < len && is_ident_start(s[j])) {
        j++;
        while (j < len && (is_ident_start(s[j]) || is_digit(s[j])))
            j++;
        if (j < len && s[j] == '$')
            return j + 1;
    }
    return 0;
}

/*
 * Finds the closing $tag$.  Linear: a partial match after a '$' runs over tag characters,
 * which contain no '$', so the next candidate starts after it.
 */
NOINLINE static size_t scan_dollar(const u8 *s, size_t len, size_t i, size_t open_end)
{
    const u8 *tag = s + i;
    size_t tl = open_end - i, k = open_end;
    while (k < len) {
        const u8 *p = memchr(s + k, '$', len - k);
        if (!p)
            break;
        size_t off = (size_t)(p - s), m = 0;
        while (m < tl && off + m < len && s[off + m] == tag[m])
            m++;
        if (m == tl)
            return off + tl;
        k = off + 1;
    }
    return len;
}

static int is_base_digit(u8 c, int base)
{
    if (base == 16)
        return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
    if (base == 8)
        return c >= '0' && c <= '7';
    return c == '0' || c == '1';
}

/* Numbers as PostgreSQL 16 reads them: 1_000, .5, 1., 1e-5, 0x1F, 0o17, 0b101. */
static size_t scan_number(const u8 *s, size_t len, size_t i, u8 *bare)
{
    *bare = 1;
    if (s[i] == '0' && i + 2 < len) {
        u8 x = (u8)(s[i + 1] | 0x20);
        int base = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (base && is_base_digit(s[i + 2], base)) {
            i += 3;
            while (i < len && (is_base_digit(s[i], base) ||
                               (s[i] == '_' && i + 1 < len && is_base_digit(s[i + 1], base))))
                i++;
            *bare = 0;
            return i;
        }
    }
    while (i < len && (is_digit(s[i]) || (s[i] == '_' && i + 1 < len && is_digit(s[i + 1])))) {
        if (s[i] == '_')
            *bare = 0;
        i++;
    }
    if (i < len && s[i] == '.' && !(i + 1 < len && s[i + 1] == '.')) {
        *bare = 0;
        i++;
        while (i < len && (is_digit(s[i]) || (s[i] == '_' && i + 1 < len && is_digit(s[i + 1]))))
            i++;
    }
    if (i < len && (s[i] | 0x20) == 'e') {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < len && is_digit(s[j])) {
            *bare = 0;
            i = j + 1;
            while (i < len && is_digit(s[i]))
                i++;
        }
    }
    return i;
}

/*
 * An operator: the longest run of operator characters, not running into a comment, and (as
 * PostgreSQL does) without a trailing + or - unless it holds one of ~ ! @ # % ^ & | ?, so
 * that `=-5` is `=` then `-5`.
 */
NOINLINE static size_t scan_op(const u8 *s, size_t len, size_t i)
{
    size_t start = i++;
    while (i < len && is_op_char(s[i])) {
        if (i + 1 < len && ((s[i] == '-' && s[i + 1] == '-') || (s[i] == '/' && s[i + 1] == '*')))
            break;
        i++;
    }
    if (i - start > 1) {
        int special = 0;
        for (size_t j = start; j < i; j++)
            if (strchr("~!@#%^&|?", s[j]))
                special = 1;
        while (!special && i - start > 1 && (s[i - 1] == '+' || s[i - 1] == '-'))
            i--;
    }
    return i;
}

/* psycopg's %s, %b, %t and %(name)s: the end of the placeholder at i, or 0. */
NOINLINE static size_t percent_param(const u8 *s, size_t len, size_t i)
{
    if (i + 1 >= len)
        return 0;
    u8 c = s[i + 1];
    if ((c == 's' || c == 'b' || c == 't') && (i + 2 >= len || !is_ident_char(s[i + 2])))
        return i + 2;
    if (c == '(') {
        size_t j = i + 2;
        while (j < len && is_ident_char(s[j]))
            j++;
        if (j > i + 2 && j + 1 < len && s[j] == ')' &&
            (s[j + 1] == 's' || s[j + 1] == 'b' || s[j + 1] == 't') &&
            (j + 2 >= len || !is_ident_char(s[j + 2])))
            return j + 2;
    }
    return 0;
}

#define KB(kind) (1u << (kind))
#define OPERAND_KINDS                                                                       \
    (KB(TK_QIDENT) | KB(TK_NUMBER) | KB(TK_STRING) | KB(TK_PARAM) | KB(TK_RPAREN) |           \
     KB(TK_RBRACK) | KB(TK_VALUE) | KB(TK_NAME))

/*
 * Whether a token of this kind (and keyword) ends an operand: after one, a minus is binary
 * and ':x' or '%s' are no placeholders.  Asked only where that matters, from the kind and
 * keyword that the lexer and the shaper keep of their previous token anyway.
 */
static inline int ends_operand(u8 kind, int kw)
{
    return (KB(kind) & OPERAND_KINDS) ||
           (kind == TK_WORD && (kw < 0 || (kw_flags(kw) & KF_VALUE)));
}

/*
 * What a byte starts, for lex()'s one dispatch per token.  Words whose first letter may
 * prefix a string (E'', B'', X'', N'', U&'') have a class of their own, so that every other
 * word skips those checks; '-' and '/' have theirs because they may open a comment.
 */
enum lex_class {
    LC_OTHER, /* a byte that is a token on its own: { } \ DEL (and white space) */
    LC_CTRL,  /* a byte below TAB: white space to lex(), no literal key (nprof__sql_literal_text) */
    LC_WORD,
    LC_PREFIX,
    LC_DIGIT,
    LC_DOT,
    LC_QUOTE,
    LC_QNAME, /* " ` */
    LC_LPAREN, LC_RPAREN, LC_LBRACK, LC_RBRACK, LC_COMMA, LC_SEMI,
    LC_COLON,
    LC_DOLLAR,
    LC_QMARK,
    LC_PERCENT,
    LC_PLUS,
    LC_MINUS,
    LC_SLASH,
    LC_OP /* the other operator characters */
};

#define LC_W LC_WORD
#define LC_ROW16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const u8 lex_class[256] = {
    /* bytes up to ' ' are white space: lex() skips them before it looks here */
    LC_CTRL, LC_CTRL, LC_CTRL, LC_CTRL, LC_CTRL, LC_CTRL, LC_CTRL, LC_CTRL, LC_CTRL,
    LC_OTHER, LC_OTHER, LC_OTHER, LC_OTHER, LC_OTHER, LC_OTHER, LC_OTHER,
    LC_ROW16(LC_OTHER),
    /*  sp        !      "         #      $          %           &      '         */
    LC_OTHER, LC_OP, LC_QNAME, LC_OP, LC_DOLLAR, LC_PERCENT, LC_OP, LC_QUOTE,
    /*  (          )          *      +        ,         -         .       /        */
    LC_LPAREN, LC_RPAREN, LC_OP, LC_PLUS, LC_COMMA, LC_MINUS, LC_DOT, LC_SLASH,
    /*  0-9 */
    LC_DIGIT, LC_DIGIT, LC_DIGIT, LC_DIGIT, LC_DIGIT, LC_DIGIT, LC_DIGIT, LC_DIGIT, LC_DIGIT,
    LC_DIGIT,
    /*  :         ;        <      =      >      ?        */
    LC_COLON, LC_SEMI, LC_OP, LC_OP, LC_OP, LC_QMARK,
    /*  @      A     B          C     D     E          F     G     H     I     J     K     L */
    LC_OP, LC_W, LC_PREFIX, LC_W, LC_W, LC_PREFIX, LC_W, LC_W, LC_W, LC_W, LC_W, LC_W, LC_W,
    /*  M     N          O     P     Q     R     S     T     U          V     W     X */
    LC_W, LC_PREFIX, LC_W, LC_W, LC_W, LC_W, LC_W, LC_W, LC_PREFIX, LC_W, LC_W, LC_PREFIX,
    /*  Y     Z     [          \         ]          ^      _    */
    LC_W, LC_W, LC_LBRACK, LC_OTHER, LC_RBRACK, LC_OP, LC_W,
    /*  `         a     b          c     d     e          f     g     h     i     j     k */
    LC_QNAME, LC_W, LC_PREFIX, LC_W, LC_W, LC_PREFIX, LC_W, LC_W, LC_W, LC_W, LC_W, LC_W,
    /*  l     m     n          o     p     q     r     s     t     u          v     w */
    LC_W, LC_W, LC_PREFIX, LC_W, LC_W, LC_W, LC_W, LC_W, LC_W, LC_PREFIX, LC_W, LC_W,
    /*  x          y     z     {         |      }         ~      DEL      */
    LC_PREFIX, LC_W, LC_W, LC_OTHER, LC_OP, LC_OTHER, LC_OP, LC_OTHER,
    LC_ROW16(LC_W), LC_ROW16(LC_W), LC_ROW16(LC_W), LC_ROW16(LC_W),
    LC_ROW16(LC_W), LC_ROW16(LC_W), LC_ROW16(LC_W), LC_ROW16(LC_W),
};
#undef LC_W
#undef LC_ROW16

/* The byte after s[i], or 0 at the end: read only by the tokens that look at it. */
static inline u8 after(const u8 *s, size_t len, size_t i)
{
    return i + 1 < len ? s[i + 1] : 0;
}

/* An operator from its first character at i: most are one character followed by none. */
static inline size_t lex_op(const u8 *s, size_t len, size_t i)
{
    return i + 1 < len && is_op_char(s[i + 1]) ? scan_op(s, len, i) : i + 1;
}

/*
 * The next token.  White space (every byte up to ' ', NUL and control characters included)
 * and comments vanish.  A unary plus changes nothing and is dropped here too, before any
 * pattern sees it, so that `CAST +(5 AS int)` and `CAST(5 AS int)` read alike in every pass.
 */
static void lex(struct lexer *lx, struct tok *t)
{
    const u8 *s = lx->s;
    size_t len = lx->len, i = lx->pos, start, j;
    int kw = -1;
    u8 kind, bare = 0, nx;
again:
    while (i < len && s[i] <= ' ')
        i++;
    if (i >= len) {
        t->kind = TK_EOF;
        t->kw = -1;
        t->bare = 0;
        t->p = s + len;
        t->n = 0;
        lx->pos = len;
        return;
    }
    start = i;
    u8 c = s[i];
    switch (lex_class[c]) {
    case LC_PREFIX:
        nx = after(s, len, i);
        if (nx == '\'' && c != 'U' && c != 'u') {
            i = scan_string(s, len, i + 1, c == 'E' || c == 'e');
            kind = TK_STRING;
            break;
        }
        if ((c == 'U' || c == 'u') && nx == '&' && i + 2 < len &&
            (s[i + 2] == '\'' || s[i + 2] == '"')) {
            if (s[i + 2] == '\'') {
                i = scan_string(s, len, i + 2, 0);
                kind = TK_STRING;
            } else {
                i = scan_quoted(s, len, i + 2);
                kind = TK_QIDENT;
            }
            break;
        }
        /* otherwise a word */
        __attribute__((fallthrough));
    case LC_WORD:
        i++;
        while (i < len && is_ident_char(s[i]))
            i++;
        kind = TK_WORD;
        /* After a dot a word is a name, whatever it spells: t.end, "logs".at. */
        kw = lx->prev_kind == TK_DOT ? -1 : word_keyword(s, len, start, i - start);
        break;
    case LC_DOT:
        if (!is_digit(after(s, len, i))) {
            i++;
            kind = TK_DOT;
            break;
        }
        /* .5 is a number */
        __attribute__((fallthrough));
    case LC_DIGIT:
        i = scan_number(s, len, i, &bare);
        kind = TK_NUMBER;
        break;
    case LC_QUOTE:
        i = scan_string(s, len, i, 0);
        kind = TK_STRING;
        break;
    case LC_QNAME:
        i = scan_quoted(s, len, i);
        kind = TK_QIDENT;
        break;
    case LC_LPAREN: i++; kind = TK_LPAREN; break;
    case LC_RPAREN: i++; kind = TK_RPAREN; break;
    case LC_LBRACK: i++; kind = TK_LBRACK; break;
    case LC_RBRACK: i++; kind = TK_RBRACK; break;
    case LC_COMMA: i++; kind = TK_COMMA; break;
    case LC_SEMI: i++; kind = TK_SEMI; break;
    case LC_COLON:
        nx = after(s, len, i);
        if (nx == ':') {
            i += 2;
            kind = TK_CAST;
        } else if (nx == '=') {
            i += 2;
            kind = TK_OP;
        } else if (is_ident_start(nx) && !ends_operand(lx->prev_kind, lx->prev_kw)) {
            /* :name, but not the ':' of an array slice a[lo:hi] */
            i += 2;
            while (i < len && is_ident_char(s[i]))
                i++;
            kind = TK_PARAM;
        } else {
            i++;
            kind = TK_OP;
        }
        break;
    case LC_DOLLAR:
        if (is_digit(after(s, len, i))) {
            i += 2;
            while (i < len && is_digit(s[i]))
                i++;
            kind = TK_PARAM;
        } else if ((j = dollar_open(s, len, i)) != 0) {
            i = scan_dollar(s, len, i, j);
            kind = TK_STRING;
        } else {
            i++;
            kind = TK_OP;
        }
        break;
    case LC_QMARK:
        /* Always a placeholder, except the jsonb operators ?| and ?&: deciding by context
         * would make "1 2" -> "? ?" read back differently. */
        nx = after(s, len, i);
        if (is_digit(nx)) {
            i += 2;
            while (i < len && is_digit(s[i]))
                i++;
            kind = TK_PARAM;
        } else if (nx == '|' || nx == '&') {
            i = scan_op(s, len, i);
            kind = TK_OP;
        } else {
            i++;
            kind = TK_PARAM;
        }
        break;
    case LC_PERCENT:
        if (!ends_operand(lx->prev_kind, lx->prev_kw) && (j = percent_param(s, len, i)) != 0) {
            i = j;
            kind = TK_PARAM;
        } else {
            i = scan_op(s, len, i);
            kind = TK_OP;
        }
        break;
    case LC_MINUS:
        if (after(s, len, i) == '-') {
            const u8 *nl = memchr(s + i, '\n', len - i);
            i = nl ? (size_t)(nl - s) + 1 : len;
            goto again;
        }
        i = lex_op(s, len, i);
        kind = TK_OP;
        break;
    case LC_SLASH:
        if (after(s, len, i) == '*') {
            i = skip_block_comment(s, len, i);
            goto again;
        }
        i = lex_op(s, len, i);
        kind = TK_OP;
        break;
    case LC_PLUS:
        i = lex_op(s, len, i);
        if (i == start + 1 && !ends_operand(lx->prev_kind, lx->prev_kw))
            goto again; /* unary plus */
        kind = TK_OP;
        break;
    case LC_OP:
        i = lex_op(s, len, i);
        kind = TK_OP;
        break;
    default:
        i++;
        kind = TK_OP;
        break;
    }
    t->kind = kind;
    t->kw = kw;
    t->bare = bare;
    t->p = s + start;
    t->n = i - start;
    lx->pos = i;
    lx->prev_kind = kind;
    lx->prev_kw = kw;
}

/* ---- emitter ----------------------------------------------------------------------- */

struct emitter {
    char *out;        /* buffer mode: the caller's buffer */
    size_t room;      /* buffer mode: text bytes that fit (cap - 1) */
    size_t len;       /* bytes of normalized text so far, also past `room` */
    XXH3_state_t *xx; /* hash mode when non-NULL */
    size_t stage_len;
    unsigned dollar;  /* $n numbers handed out */
    int style;
    int prev_kw;
    u8 prev, pprev, ddl; /* prev: TK_EOF before the first token */
    u8 last_op;          /* the last byte of the last TK_OP */
    size_t pending_semi; /* ';' not written yet: dropped if nothing follows them */
    char *stage;      /* hash mode: NPROF__SQL_STAGE bytes not yet fed to XXH3 */
};

/*
 * Copies n <= 16 bytes with at most four fixed-size moves, reading and writing nothing outside
 * the n bytes (the two halves overlap instead): tokens are short, and a call to memcpy for
 * each would cost more than the copy.
 */
static inline void copy_small(char *dst, const char *src, size_t n)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else if (n) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

/* Hash mode, or a buffer that is full or about to be: the careful path of em_put. */
NOINLINE static void em_put_slow(struct emitter *em, const char *p, size_t n)
{
    if (em->xx) {
        if (n >= NPROF__SQL_STAGE) {
            XXH3_64bits_update(em->xx, em->stage, em->stage_len);
            em->stage_len = 0;
            XXH3_64bits_update(em->xx, p, n);
            return;
        }
        if (n > NPROF__SQL_STAGE - em->stage_len) {
            XXH3_64bits_update(em->xx, em->stage, em->stage_len);
            em->stage_len = 0;
        }
        memcpy(em->stage + em->stage_len, p, n);
        em->stage_len += n;
        return;
    }
    size_t at = em->len - n;
    if (at < em->room) {
        size_t k = em->room - at < n ? em->room - at : n;
        memcpy(em->out + at, p, k);
    }
}

/* Hash mode has no buffer (room 0), so every byte goes the slow way there. */
static inline void em_put(struct emitter *em, const void *src, size_t n)
{
    size_t at = em->len;
    em->len = at + n;
    if (at + n > em->room) {
        em_put_slow(em, src, n);
    } else if (n <= 16) {
        copy_small(em->out + at, src, n);
    } else {
        memcpy(em->out + at, src, n);
    }
}

/*
 * A space when `sp`, then the n >= 1 bytes at src, with one test of the room for both (hash
 * mode has none).  The space byte is stored either way: without one the text overwrites it.
 */
static inline void em_put_spaced(struct emitter *em, int sp, const char *src, size_t n)
{
    size_t at = em->len;
    if (at + (size_t)sp + n > em->room) {
        if (sp)
            em_put(em, " ", 1);
        em_put(em, src, n);
        return;
    }
    em->out[at] = ' ';
    at += (size_t)sp;
    em->len = at + n;
    if (n <= 16)
        copy_small(em->out + at, src, n);
    else
        memcpy(em->out + at, src, n);
}

static inline void em_space_byte(struct emitter *em)
{
    if (em->len < em->room)
        em->out[em->len++] = ' ';
    else
        em_put(em, " ", 1);
}

static int is_ident_like(u8 e, int kw)
{
    return (e == TK_WORD && kw < 0) || e == TK_QIDENT || e == TK_NAME;
}

/* Kinds after which no space comes (TK_EOF: nothing written yet), and kinds that have a rule
 * of their own for the space before them. */
#define EM_TIGHT_AFTER (KB(TK_EOF) | KB(TK_LPAREN) | KB(TK_LBRACK) | KB(TK_DOT) | KB(TK_CAST))
#define EM_RULE_BEFORE                                                                      \
    (KB(TK_RPAREN) | KB(TK_RBRACK) | KB(TK_COMMA) | KB(TK_SEMI) | KB(TK_DOT) | KB(TK_CAST) |  \
     KB(TK_LPAREN) | KB(TK_LBRACK))

/*
 * The canonical spacing: one space between tokens, none after ( [ . :: and none before
 * ) ] , ; . ::, none between a function name and its '(' (a table name after INTO, TABLE,
 * REFERENCES... keeps it), none between an operand and its subscript '['.  Tokens that
 * touch never read back as one: an ordinal keeps its space before '.' and '::' (1.x would
 * read as a decimal) and two colons never meet.
 */
static inline int em_space(const struct emitter *em, u8 e, const char *text, size_t n)
{
    u8 q = em->prev;
    int sp;
    if (!((KB(q) & EM_TIGHT_AFTER) | (KB(e) & EM_RULE_BEFORE)))
        return 1; /* most tokens */
    if (KB(q) & EM_TIGHT_AFTER) {
        sp = 0;
    } else {
        switch (e) {
        case TK_DOT:
        case TK_CAST:
            sp = q == TK_RAWNUM;
            break;
        case TK_LPAREN:
            if (is_ident_like(q, em->prev_kw))
                sp = em->ddl;
            else if (q == TK_WORD && (kw_flags(em->prev_kw) & KF_FUNC))
                sp = 0;
            else if (q == TK_WORD && em->prev_kw == KW_ALL && em->pprev == TK_OP)
                sp = 0; /* x = ALL(...) */
            else
                sp = 1;
            break;
        case TK_LBRACK:
            sp = !(is_ident_like(q, em->prev_kw) || q == TK_VALUE || q == TK_RAWNUM ||
                   q == TK_RPAREN || q == TK_RBRACK ||
                   (q == TK_WORD && (em->prev_kw == KW_ARRAY || (kw_flags(em->prev_kw) & KF_VALUE))));
            break;
        default: /* ) ] , ; */
            sp = 0;
        }
    }
    /* Only "::" and the operator ":" end in a colon. */
    if (!sp && n && text[0] == ':' && (q == TK_CAST || (q == TK_OP && em->last_op == ':')))
        sp = 1;
    return sp;
}

/* Writes a quoted identifier; control characters (newlines, NUL) become spaces. */
static void em_quoted(struct emitter *em, const u8 *p, size_t n)
{
    if (n >= 8) {
        /* Eight bytes at a time (the last load overlaps), by the "has a byte less than"
         * bit trick: almost every quoted identifier has no control character at all. */
        const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
        uint64_t any = 0, w;
        for (size_t k = 0; k + 8 <= n; k += 8) {
            memcpy(&w, p + k, 8);
            any |= (w - ones * ' ') & ~w & highs;
        }
        memcpy(&w, p + n - 8, 8);
        any |= (w - ones * ' ') & ~w & highs;
        if (!any) {
            em_put(em, p, n);
            return;
        }
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] >= ' ')
            j++;
        if (j > i)
            em_put(em, p + i, j - i);
        if (j < n) {
            em_put(em, " ", 1);
            j++;
        }
        i = j;
    }
}

static void em_tok(struct emitter *em, u8 e, int kw, const u8 *p, size_t n)
{
    /* Statement terminators are written only once something follows them: "SELECT 1;" and
     * "SELECT 1" are one query, as PostgreSQL counts them. */
    if (e == TK_SEMI) {
        em->pending_semi++;
        return;
    }
    for (; em->pending_semi; em->pending_semi--) {
        if (em_space(em, TK_SEMI, ";", 1))
            em_put(em, " ", 1);
        em_put(em, ";", 1);
        em->ddl = 0;
        em->pprev = em->prev;
        em->prev = TK_SEMI;
        em->prev_kw = -1;
    }
    char num[32];
    const char *text = (const char *)p;
    if (e == TK_WORD && kw >= 0) {
        text = kw_table[kw].name;
        n = kw_table[kw].len;
    } else if (e == TK_VALUE) {
        if (em->style == NPROF_SQL_DOLLAR && em->dollar < NPROF__SQL_DOLLAR_MAX) {
            unsigned v = ++em->dollar;
            size_t k = sizeof num;
            do {
                num[--k] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            num[--k] = '$';
            text = num + k;
            n = sizeof num - k;
        } else {
            text = "?";
            n = 1;
        }
    } else if (e == TK_NAME) {
        text = "?";
        n = 1;
    }
    int sp = em_space(em, e, text, n);
    if (e == TK_QIDENT) {
        if (sp)
            em_space_byte(em);
        em_quoted(em, (const u8 *)text, n);
    } else {
        em_put_spaced(em, sp, text, n);
    }

    /* A name after INTO / TABLE / REFERENCES (dotted or not) is a table, not a function. */
    if ((e == TK_WORD && kw < 0) || e == TK_QIDENT)
        em->ddl = (em->prev == TK_WORD && (kw_flags(em->prev_kw) & KF_DDL)) ||
                  (em->prev == TK_DOT && em->ddl);
    else if (e != TK_DOT)
        em->ddl = 0;
    em->pprev = em->prev;
    em->prev = e;
    em->prev_kw = e == TK_WORD ? kw : -1;
    if (e == TK_OP)
        em->last_op = (u8)text[n - 1];
}

static void em_punct(struct emitter *em, u8 e)
{
    static const char txt[] = "()[],";
    size_t at = e == TK_LPAREN ? 0 : e == TK_RPAREN ? 1 : e == TK_LBRACK ? 2 : e == TK_RBRACK ? 3 : 4;
    em_tok(em, e, -1, (const u8 *)txt + at, 1);
}

/* ---- shaper ------------------------------------------------------------------------ */

enum list { L_NONE, L_IN, L_ANY, L_EXEC, L_ARRAY, L_ROW };
enum vals { V_NONE, V_HOLD, V_PLAIN }; /* VALUES rows here: collapsing, or keeping shape */

enum stmt {
    ST_FIRST, /* no token of the statement seen yet: its first one decides */
    ST_NONE, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK, ST_PREPARE, ST_EXECUTE, ST_DEALLOCATE,
    ST_DECLARE, ST_FETCH, ST_CLOSE, ST_SET
};

/*
 * One level of parentheses or brackets.  A frame that `hold`s has written nothing since its
 * opener (a list) or since its first VALUES row: its content was literals and commas only,
 * so the counters below are enough to write it out again.  Held frames are always the top
 * of the stack.
 */
struct frame {
    size_t n;     /* elements held (list) or rows held (VALUES) */
    size_t ncols; /* VALUES: elements in every held row */
    u8 close;     /* TK_RPAREN or TK_RBRACK */
    u8 list;      /* enum list */
    u8 hold;
    u8 comma;     /* a held ',' after the last element or row */
    u8 arr_kw;    /* 1: a held ARRAY keyword before its '['; 2: a held bare '[' sub-array */
    u8 elem_arr;  /* the held elements are 1: ARRAY[...] lists, 2: [...] lists, 0: literals */
    u8 ord;       /* in an ORDER BY / GROUP BY list: bare integers are ordinals */
    u8 vrow;      /* a row of VALUES: NULL counts as a literal */
    u8 vals;      /* enum vals */
    u8 cols;      /* the column list after a table name: INSERT INTO t (a, b) */
    u8 cast;      /* the parentheses of a CAST that is no literal: AS names a type there */
};

struct norm {
    struct lexer lx;
    struct emitter em;
    size_t cast_skip; /* CAST tokens already known not to start a literal */
    size_t signs;     /* unary minus signs waiting for their operand */
    size_t overflow;  /* nesting levels beyond the frame array */
    size_t stmt_idx;  /* tokens seen in the current statement */
    unsigned depth;   /* top frame; st[0] is the statement */
    int prev_kw;
    u8 prev_kind, pprev_kind;
    u8 name_pos;  /* the next token is in a name position */
    u8 plain;     /* no statement rule, sign or held list is pending: see process_plain() */
    u8 stmt, swallow, swallowed;
    struct frame st[NPROF__SQL_DEPTH_MAX];
};

/* ---- combiner ---------------------------------------------------------------------- */

static int word_is(const struct tok *t, const char *w)
{
    size_t n = strlen(w);
    if ((t->kind != TK_WORD) || t->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((t->p[i] & ~0x20) != (u8)w[i])
            return 0;
    return 1;
}

static int is_sign(const struct tok *t)
{
    return t->kind == TK_OP && t->n == 1 && (t->p[0] == '-' || t->p[0] == '+');
}

static int kw_is(const struct tok *t, int kw)
{
    return t->kind == TK_WORD && t->kw == kw;
}

/* Lexes the next token if it is of `kind`; otherwise leaves the lexer where it was. */
static int accept(struct lexer *lx, struct tok *t, int kind)
{
    struct lexer save = *lx;
    lex(lx, t);
    if (t->kind == kind)
        return 1;
    *lx = save;
    return 0;
}

/*
 * A type name after '::' or AS: words (dotted), the multi-word names (double precision,
 * character varying, timestamp with time zone), an optional (n[, n]) of plain integers and
 * [] / [n] suffixes.  Returns 1 when a name was read; the lexer is then past it.
 */
NOINLINE static int parse_type(struct lexer *lx)
{
    struct tok t, u;
    lex(lx, &t);
    if (t.kind != TK_WORD && t.kind != TK_QIDENT)
        return 0;
    for (;;) {
        struct lexer save = *lx;
        lex(lx, &u);
        if (u.kind == TK_DOT) {
            lex(lx, &u);
            if (u.kind == TK_WORD || u.kind == TK_QIDENT) {
                t = u;
                continue;
            }
        }
        *lx = save;
        break;
    }
    int timey = kw_is(&t, KW_TIME) || kw_is(&t, KW_TIMESTAMP);
    const char *second = word_is(&t, "DOUBLE") ? "PRECISION"
                         : (word_is(&t, "CHARACTER") || word_is(&t, "CHAR") || word_is(&t, "BIT"))
                             ? "VARYING"
                             : NULL;
    if (second) {
        struct lexer save = *lx;
        lex(lx, &u);
        if (!word_is(&u, second))
            *lx = save;
    }
    {
        struct lexer save = *lx;
        int ok = 0;
        if (accept(lx, &u, TK_LPAREN)) {
            for (;;) {
                lex(lx, &u);
                if (u.kind != TK_NUMBER || !u.bare)
                    break;
                lex(lx, &u);
                if (u.kind == TK_RPAREN) {
                    ok = 1;
                    break;
                }
                if (u.kind != TK_COMMA)
                    break;
            }
        }
        if (!ok)
            *lx = save;
    }
    if (timey) {
        struct lexer save = *lx;
        lex(lx, &u);
        int ok = kw_is(&u, KW_WITH) || kw_is(&u, KW_WITHOUT);
        if (ok) {
            lex(lx, &u);
            ok = kw_is(&u, KW_TIME);
        }
        if (ok) {
            lex(lx, &u);
            ok = kw_is(&u, KW_ZONE);
        }
        if (!ok)
            *lx = save;
    }
    for (;;) {
        struct lexer save = *lx;
        if (!accept(lx, &u, TK_LBRACK))
            break;
        lex(lx, &u);
        if (u.kind == TK_NUMBER && u.bare)
            lex(lx, &u);
        if (u.kind != TK_RBRACK) {
            *lx = save;
            break;
        }
    }
    return 1;
}

/* Casts written on a literal belong to it: '1'::int, $3::jsonb, 5::numeric(10)[]. */
static void cast_suffixes(struct lexer *lx, struct tok *t)
{
    for (;;) {
        /* Almost every literal is followed by something else than "::": the first byte after
         * the white space settles it without lexing the next token, unless that byte is a
         * ':' or may start a comment ('-', '/'). */
        size_t i = lx->pos;
        while (i < lx->len && (cc_table[lx->s[i]] & CC_SPACE))
            i++;
        if (i >= lx->len || (lx->s[i] != ':' && lx->s[i] != '-' && lx->s[i] != '/'))
            return;
        struct lexer save = *lx;
        struct tok u;
        lex(lx, &u);
        if (u.kind != TK_CAST || !parse_type(lx)) {
            *lx = save;
            return;
        }
        t->bare = 0;
        /* The literal, cast and all, is what the next token follows: after 6::in, a '+'
         * is an operator, not a unary plus after the keyword IN that named the type.
         * Otherwise the plus is dropped, and the output 6::in+1 -> ?::in ? -> ? ? shapes
         * differently again. */
        lx->prev_kind = TK_VALUE;
        lx->prev_kw = -1;
    }
}

/*
 * Whether `t` starts a literal: a number, string, placeholder, TRUE/FALSE (not after IS or
 * NOT: IS TRUE is a test like IS NULL) or a typed literal (DATE '...', whose string is then
 * consumed).  `prev_kw` is the keyword before `t`.
 */
static int atom(struct lexer *lx, const struct tok *t, int prev_kw)
{
    switch (t->kind) {
    case TK_NUMBER: case TK_STRING: case TK_PARAM:
        return 1;
    case TK_WORD:
        if (t->kw == KW_TRUE || t->kw == KW_FALSE)
            return prev_kw != KW_IS && prev_kw != KW_NOT;
        if (kw_flags(t->kw) & KF_TYPED) {
            struct tok u;
            return accept(lx, &u, TK_STRING);
        }
        return 0;
    }
    return 0;
}

/*
 * CAST(literal AS type) is a literal, nested CASTs included.  One scan counts the k leading
 * "CAST (" openers, reads the literal and then as many "AS type )" closers as match (j).  If
 * j < k, the outer k - j CASTs are plain keywords: this one is returned as such and the next
 * k - j - 1 are marked in cast_skip, so that no CAST is scanned twice (linear time even for
 * 50,000 nested CASTs); the inner j ones match again when the shaper reaches them.
 */
NOINLINE static void try_cast(struct norm *n, struct tok *t)
{
    struct lexer *lx = &n->lx, after = *lx;
    struct tok u;
    size_t k = 0;
    if (!accept(lx, &u, TK_LPAREN))
        return;
    k = 1;
    int pk;
    for (;;) {
        pk = lx->prev_kw;
        lex(lx, &u);
        while (is_sign(&u)) {
            pk = lx->prev_kw;
            lex(lx, &u);
        }
        if (kw_is(&u, KW_CAST)) {
            struct tok v;
            if (accept(lx, &v, TK_LPAREN)) {
                k++;
                continue;
            }
        }
        break;
    }
    size_t j = 0;
    /* In FETCH / MOVE every word is a name, so a word here is what the shaper would see as a
     * literal too; NULL in a VALUES row is not (the row frame is not the CAST's). */
    if (atom(lx, &u, pk) ||
        (n->name_pos && ((u.kind == TK_WORD && u.kw < 0) || u.kind == TK_QIDENT))) {
        cast_suffixes(lx, &u);
        while (j < k) {
            if (!accept(lx, &u, TK_WORD) || u.kw != KW_AS || !parse_type(lx))
                break;
            if (!accept(lx, &u, TK_RPAREN))
                break;
            cast_suffixes(lx, &u);
            j++;
        }
    }
    if (j == k) {
        t->kind = TK_VALUE;
        t->bare = 0;
        t->name = n->name_pos;
        return;
    }
    n->cast_skip = k - j - 1;
    *lx = after;
}

/*
 * Whether a dot and a word follow at once (x.name, not x.b'01' or x. name), as the lexer
 * reads them: where the word ends, with `after` the lexer past it; NULL otherwise.  One
 * test for the qualified name and for the keyword used as a name before it, so both read
 * x.b'01', which normalizes to x.?, as they read x.?.
 */
static const u8 *dot_word(const struct lexer *lx, struct lexer *after)
{
    const u8 *s = lx->s;
    if (!(lx->pos + 1 < lx->len && s[lx->pos] == '.' && is_ident_start(s[lx->pos + 1])))
        return NULL;
    struct tok dot, part;
    *after = *lx;
    lex(after, &dot);
    size_t at = after->pos;
    lex(after, &part);
    if (dot.kind != TK_DOT || part.kind != TK_WORD || part.p != s + at)
        return NULL;
    return part.p + part.n;
}

/*
 * "schema"."table"."column" and schema.table.column, written without spaces as ORMs write
 * every column, go to the shaper and the emitter as one token: nothing between the parts is
 * ever spaced or rewritten, and a name of three tokens cost three passes through the shaper.
 * A word after a dot is a name whatever it spells (t.end, logs.at: lex() looks up no keyword
 * there); neither kind joins in a name position (SAVEPOINT "s"), where the first part alone
 * becomes a placeholder.
 */
static void qualified_name(struct lexer *lx, struct tok *t)
{
    const u8 *s = lx->s;
    size_t len = lx->len;
    if (t->kind == TK_QIDENT) {
        size_t i = lx->pos;
        if (t->p[0] != '"')
            return;
        while (i + 1 < len && s[i] == '.' && s[i + 1] == '"')
            i = scan_quoted(s, len, i + 1);
        t->n = (size_t)(s + i - t->p);
        lx->pos = i;
        return;
    }
    struct lexer ahead;
    const u8 *end;
    while ((end = dot_word(lx, &ahead))) {
        t->n = (size_t)(end - t->p);
        *lx = ahead;
    }
}

/* Keywords that start a table constraint where a column could stand. */
static int starts_constraint(int kw)
{
    return kw == KW_PRIMARY || kw == KW_UNIQUE || kw == KW_CHECK || kw == KW_FOREIGN ||
           kw == KW_CONSTRAINT || kw == KW_EXCLUDE || kw == KW_LIKE;
}

/* Keywords an operand follows in a list or a condition. */
static int before_operand(int kw)
{
    switch (kw) {
    case KW_SELECT: case KW_DISTINCT: case KW_BY: case KW_RETURNING: case KW_WHERE:
    case KW_AND: case KW_OR: case KW_WHEN: case KW_HAVING:
        return 1;
    }
    return 0;
}

/* Keywords that follow an operand there. */
static int after_operand(int kw)
{
    switch (kw) {
    case KW_FROM: case KW_AS: case KW_ASC: case KW_DESC: case KW_NULLS: case KW_IS:
    case KW_IN: case KW_BETWEEN: case KW_LIKE: case KW_ILIKE: case KW_NOT: case KW_AND:
    case KW_OR: case KW_THEN:
        return 1;
    }
    return 0;
}

/*
 * Whether the keyword `t`, one flagged KF_NAME, is used as a name here (README: identifiers
 * keep their case, and only keywords are upper-cased).  Tables have columns called at,
 * level, key, date or read, which PostgreSQL accepts unquoted, and ORMs quote only reserved
 * words.  (After a dot every word is a name, which lex() sees by itself.)  The places where
 * such a word can only be a name, from its neighbours:
 *   - before a dot: at.x;
 *   - first in an element of a table's column list, unless it starts a constraint:
 *     INSERT INTO logs (msg, at), CREATE TABLE logs (at timestamptz, PRIMARY KEY (id));
 *   - next to an operator: SET level = ?, WHERE ? < at, key ->> ?;
 *   - after AS, except in the parentheses of a CAST: x AS date, not CAST(x AS date);
 *   - an operand on its own in a list or a condition: SELECT at, level FROM, ORDER BY at
 *     DESC, count(key), ON CONFLICT (key), WHERE read AND, level IS NULL; a keyword there
 *     would have a neighbour of its own (NULLS FIRST, ISOLATION LEVEL READ COMMITTED,
 *     PRIMARY KEY, AT TIME ZONE, x::date).
 * Each rule looks only at the kinds of the neighbours, which normalization keeps, so the
 * output normalizes to itself.  Asked for no other keyword, so that the rest pay one test.
 */
NOINLINE static int used_as_name(const struct norm *n, const struct tok *t)
{
    const struct lexer *lx = &n->lx;
    const struct frame *f = &n->st[n->depth];
    u8 pk = n->prev_kind;
    int pkw = n->prev_kw;
    int starts_element = pk == TK_LPAREN || pk == TK_COMMA;
    if (n->name_pos)
        return 0;
    struct lexer ahead;
    if (dot_word(lx, &ahead))
        return 1;
    /* What follows, lexed as it would be after a name (a '+' there is binary). */
    ahead = *lx;
    struct tok u;
    ahead.prev_kind = TK_WORD;
    ahead.prev_kw = -1;
    lex(&ahead, &u);
    u8 nk = u.kind;
    int ends_element = nk == TK_COMMA || nk == TK_RPAREN;
    if (!n->overflow && f->cols && starts_element &&
        (ends_element || ((nk == TK_WORD || nk == TK_QIDENT) && !starts_constraint(t->kw))))
        return 1;
    if (nk == TK_OP || pk == TK_OP)
        return 1;
    if (pkw == KW_AS)
        return n->overflow || !f->cast;
    return (starts_element || before_operand(pkw)) &&
           (ends_element || nk == TK_SEMI || nk == TK_EOF ||
            (nk == TK_WORD && after_operand(u.kw)));
}

/* The next token for the shaper, with literals combined into TK_VALUE. */
static void next_token(struct norm *n, struct tok *t)
{
    struct lexer *lx = &n->lx;
    int pk = lx->prev_kw;
    lex(lx, t);
    switch (t->kind) {
    case TK_WORD:
        if (t->kw == KW_CAST) {
            if (n->cast_skip)
                n->cast_skip--;
            else
                try_cast(n, t);
            return;
        }
        /* NULL is a literal directly in a VALUES row, and a keyword anywhere else. */
        if (t->kw == KW_NULL ? !n->overflow && n->st[n->depth].vrow : atom(lx, t, pk))
            break;
        if (t->kw >= 0 && (kw_flags(t->kw) & KF_NAME) && used_as_name(n, t)) {
            t->kw = -1;
            lx->prev_kw = -1;
        }
        if (t->kw < 0 && n->name_pos)
            break;
        if (t->kw < 0)
            qualified_name(lx, t);
        return;
    case TK_QIDENT:
        if (n->name_pos)
            break;
        qualified_name(lx, t);
        return;
    case TK_NUMBER: case TK_STRING: case TK_PARAM:
        break;
    default:
        return;
    }
    t->kind = TK_VALUE;
    t->name = n->name_pos;
    cast_suffixes(lx, t);
}

/* Kinds whose token is always one byte. */
static inline int punct_kind(u8 kind)
{
    return kind == TK_COMMA || kind == TK_DOT || kind == TK_LPAREN || kind == TK_RPAREN ||
           kind == TK_LBRACK || kind == TK_RBRACK || kind == TK_SEMI;
}

/* ---- shaper: lists ----------------------------------------------------------------- */

static void emit(struct norm *n, u8 e, int kw, const u8 *p, size_t len)
{
    em_tok(&n->em, e, kw, p, len);
}

static void emit_value(struct norm *n)
{
    emit(n, TK_VALUE, -1, NULL, 0);
}

NOINLINE static void emit_row(struct norm *n, size_t ncols)
{
    em_punct(&n->em, TK_LPAREN);
    for (size_t c = 0; c < ncols; c++) {
        if (c)
            em_punct(&n->em, TK_COMMA);
        emit_value(n);
    }
    em_punct(&n->em, TK_RPAREN);
}

/* Writes out what a held frame held back, exactly as it would have been written. */
NOINLINE static void flush_frame(struct norm *n, struct frame *f)
{
    if (f->vals == V_HOLD) {
        for (size_t r = 0; r < f->n; r++) {
            if (r)
                em_punct(&n->em, TK_COMMA);
            emit_row(n, f->ncols);
        }
        if (f->comma)
            em_punct(&n->em, TK_COMMA);
        f->vals = V_PLAIN;
    } else {
        em_punct(&n->em, f->close == TK_RPAREN ? TK_LPAREN : TK_LBRACK);
        for (size_t e = 0; e < f->n; e++) {
            if (e)
                em_punct(&n->em, TK_COMMA);
            if (f->elem_arr) {
                if (f->elem_arr == 1)
                    emit(n, TK_WORD, KW_ARRAY, NULL, 0);
                em_punct(&n->em, TK_LBRACK);
                emit_value(n);
                em_punct(&n->em, TK_RBRACK);
            } else {
                emit_value(n);
            }
        }
        if (f->comma)
            em_punct(&n->em, TK_COMMA);
        if (f->arr_kw == 1)
            emit(n, TK_WORD, KW_ARRAY, NULL, 0);
        f->list = L_NONE;
    }
    f->hold = f->comma = f->arr_kw = f->elem_arr = 0;
    f->n = 0;
}

/* The lists turned out not to be lists of literals: write out every held frame. */
NOINLINE static void break_all(struct norm *n)
{
    unsigned i = n->depth;
    if (!n->st[i].hold)
        return;
    while (i > 0 && n->st[i - 1].hold)
        i--;
    for (; i <= n->depth; i++)
        flush_frame(n, &n->st[i]);
}

/* Ends holding before a token that cannot continue it: VALUES rows collapse, lists break. */
NOINLINE static void leave_hold(struct norm *n)
{
    struct frame *f = &n->st[n->depth];
    if (!f->hold)
        return;
    if (f->vals == V_HOLD && !f->comma && f->n) {
        emit_row(n, f->ncols);
        f->vals = V_NONE;
        f->hold = 0;
        f->n = 0;
        return;
    }
    break_all(n);
}

static int push(struct norm *n, u8 close, u8 list, u8 hold, u8 vrow)
{
    if (n->overflow || n->depth + 1 >= NPROF__SQL_DEPTH_MAX) {
        n->overflow++;
        return 0;
    }
    struct frame *f = &n->st[++n->depth];
    memset(f, 0, sizeof *f);
    f->close = close;
    f->list = list;
    f->hold = hold;
    f->vrow = vrow;
    return 1;
}

/* A literal arrives at a held frame: returns 1 when the frame took it. */
static int held_value(struct norm *n)
{
    struct frame *f = &n->st[n->depth];
    if (!f->hold)
        return 0;
    if (f->vals == V_HOLD) {
        leave_hold(n);
        return 0;
    }
    if ((f->n == 0 || f->comma) && !f->arr_kw && !f->elem_arr) {
        f->n++;
        f->comma = 0;
        return 1;
    }
    break_all(n);
    return 0;
}

/* A closer arrives at a held frame: collapse the list when it was one. */
NOINLINE static int close_held(struct norm *n, u8 kind)
{
    struct frame *f = &n->st[n->depth];
    if (kind != f->close || f->n == 0 || f->comma || f->arr_kw) {
        break_all(n);
        return 0;
    }
    struct frame *parent = &n->st[n->depth - 1];
    switch (f->list) {
    case L_ROW:
        if (parent->n && parent->ncols != f->n) {
            break_all(n);
            return 0;
        }
        parent->ncols = f->n;
        parent->n++;
        parent->comma = 0;
        n->depth--;
        return 1;
    case L_ARRAY:
        if (parent->hold && parent->arr_kw) {
            parent->elem_arr = parent->arr_kw;
            parent->n++;
            parent->comma = 0;
            parent->arr_kw = 0;
            n->depth--;
            return 1;
        }
        n->depth--;
        em_punct(&n->em, TK_LBRACK);
        emit_value(n);
        em_punct(&n->em, TK_RBRACK);
        return 1;
    default:
        n->depth--;
        em_punct(&n->em, TK_LPAREN);
        emit_value(n);
        em_punct(&n->em, TK_RPAREN);
        return 1;
    }
}

/* Any other token arrives at a held frame: returns 1 when the frame took it. */
static int held_token(struct norm *n, const struct tok *t)
{
    struct frame *f = &n->st[n->depth];
    if (!f->hold)
        return 0;
    if (f->vals == V_HOLD) {
        if (t->kind == TK_COMMA && !f->comma) {
            f->comma = 1;
            return 1;
        }
        if (t->kind == TK_LPAREN && f->comma && n->depth + 1 < NPROF__SQL_DEPTH_MAX) {
            push(n, TK_RPAREN, L_ROW, 1, 1);
            return 1;
        }
        leave_hold(n);
        return 0;
    }
    switch (t->kind) {
    case TK_COMMA:
        if (f->n && !f->comma && !f->arr_kw) {
            f->comma = 1;
            return 1;
        }
        break;
    case TK_RPAREN:
    case TK_RBRACK:
        return close_held(n, t->kind);
    case TK_WORD:
        if (t->kw == KW_ARRAY && (f->list == L_ANY || f->list == L_ARRAY) && !f->arr_kw &&
            (f->n == 0 || (f->comma && f->elem_arr == 1))) {
            f->arr_kw = 1;
            return 1;
        }
        break;
    case TK_LBRACK:
        /* ARRAY[...] in ANY(...) or in an array; a bare [...] sub-array in an array */
        if (n->depth + 1 < NPROF__SQL_DEPTH_MAX &&
            (f->arr_kw == 1 || (f->list == L_ARRAY && !f->arr_kw &&
                                (f->n == 0 || (f->comma && f->elem_arr == 2))))) {
            if (!f->arr_kw)
                f->arr_kw = 2;
            push(n, TK_RBRACK, L_ARRAY, 1, 0);
            return 1;
        }
        break;
    }
    break_all(n);
    return 0;
}

/*
 * A token that no held list took, of kind `kind` (kind: a constant where the caller knows
 * it, which leaves one copy of this and of the emitter per kind, without the tests that do
 * not apply to it).
 */
static inline void plain_kind(struct norm *n, const struct tok *t, u8 kind)
{
    struct frame *f = &n->st[n->depth];
    int kw = kind == TK_WORD ? t->kw : -1;
    if (!n->overflow && f->vals == V_PLAIN && kind != TK_COMMA &&
        !(kind == TK_LPAREN && n->prev_kind == TK_COMMA))
        f->vals = V_NONE;
    switch (kind) {
    case TK_LPAREN: {
        if (n->overflow || n->depth + 1 >= NPROF__SQL_DEPTH_MAX) {
            n->overflow++;
            break;
        }
        if (n->prev_kw == KW_VALUES) {
            f->vals = V_HOLD;
            f->hold = 1;
            f->n = f->ncols = 0;
            f->comma = 0;
            push(n, TK_RPAREN, L_ROW, 1, 1);
            return;
        }
        u8 list = L_NONE;
        if (n->prev_kw == KW_IN)
            list = L_IN;
        else if (n->prev_kw == KW_ANY || n->prev_kw == KW_SOME ||
                 (n->prev_kw == KW_ALL && n->pprev_kind == TK_OP))
            list = L_ANY;
        else if (n->prev_kind == TK_NAME && n->stmt == ST_EXECUTE)
            list = L_EXEC;
        push(n, TK_RPAREN, list, list != L_NONE, f->vals == V_PLAIN && n->prev_kind == TK_COMMA);
        if (list != L_NONE)
            return;
        /* The emitter knows whether a table name came before: it spaces the '(' for one. */
        n->st[n->depth].cols = n->em.ddl && is_ident_like(n->em.prev, n->em.prev_kw);
        n->st[n->depth].cast = n->prev_kw == KW_CAST;
        break;
    }
    case TK_LBRACK:
        if (n->prev_kw == KW_ARRAY && !n->overflow && n->depth + 1 < NPROF__SQL_DEPTH_MAX) {
            push(n, TK_RBRACK, L_ARRAY, 1, 0);
            return;
        }
        push(n, TK_RBRACK, L_NONE, 0, 0);
        break;
    case TK_RPAREN:
    case TK_RBRACK:
        if (n->overflow)
            n->overflow--;
        else if (n->depth)
            n->depth--;
        break;
    case TK_SEMI:
        n->depth = 0;
        n->overflow = 0;
        memset(&n->st[0], 0, sizeof n->st[0]);
        break;
    case TK_WORD:
        if (kw >= 0 && !n->overflow) {
            if (kw_flags(kw) & KF_CLAUSE)
                f->ord = 0;
            if (kw == KW_BY && (n->prev_kw == KW_ORDER || n->prev_kw == KW_GROUP))
                f->ord = 1;
        }
        break;
    }
    /* (Punctuation is one byte: a constant lets the copy be one store.) */
    emit(n, kind, kw, t->p, punct_kind(kind) ? 1 : t->n);
}

static void plain_token(struct norm *n, const struct tok *t)
{
    plain_kind(n, t, t->kind);
}

static void set_prev(struct norm *n, u8 kind, int kw)
{
    n->pprev_kind = n->prev_kind;
    n->prev_kind = kind;
    n->prev_kw = kw;
}

/* A literal that no held list took: a placeholder, or an ORDER BY / GROUP BY ordinal. */
static void plain_value(struct norm *n, const struct tok *t, size_t had_signs)
{
    struct frame *f = &n->st[n->depth];
    if (!n->overflow && f->vals == V_PLAIN)
        f->vals = V_NONE;
    if (!n->overflow && f->ord && (n->prev_kw == KW_BY || n->prev_kind == TK_COMMA) && t->bare &&
        !had_signs)
        emit(n, TK_RAWNUM, -1, t->p, t->n);
    else
        emit_value(n);
}

static void generic(struct norm *n, const struct tok *t)
{
    int kw = t->kind == TK_WORD ? t->kw : -1;
    if (is_sign(t) && !ends_operand(n->prev_kind, n->prev_kw)) {
        /* Unary: a minus waits for its operand, which absorbs it if it is a literal.  A
         * unary plus changes nothing and is dropped. */
        if (t->p[0] == '-') {
            n->signs++;
            set_prev(n, TK_OP, -1);
        }
        return;
    }
    if (t->kind == TK_VALUE) {
        size_t had_signs = n->signs;
        n->signs = 0;
        if (t->name) {
            leave_hold(n);
            emit(n, TK_NAME, -1, NULL, 0);
            set_prev(n, TK_NAME, -1);
            return;
        }
        if (!held_value(n))
            plain_value(n, t, had_signs);
        set_prev(n, TK_VALUE, -1);
        return;
    }
    if (n->signs) {
        leave_hold(n);
        for (; n->signs; n->signs--)
            emit(n, TK_OP, -1, (const u8 *)"-", 1);
    }
    if (!held_token(n, t))
        plain_token(n, t);
    set_prev(n, t->kind, kw);
}

/* ---- shaper: statements ------------------------------------------------------------ */

static u8 stmt_kind(int kw)
{
    switch (kw) {
    case KW_SAVEPOINT: return ST_SAVEPOINT;
    case KW_RELEASE: return ST_RELEASE;
    case KW_ROLLBACK: return ST_ROLLBACK;
    case KW_PREPARE: return ST_PREPARE;
    case KW_EXECUTE: return ST_EXECUTE;
    case KW_DEALLOCATE: return ST_DEALLOCATE;
    case KW_DECLARE: return ST_DECLARE;
    case KW_FETCH: case KW_MOVE: return ST_FETCH;
    case KW_CLOSE: return ST_CLOSE;
    case KW_SET: return ST_SET;
    }
    return ST_NONE;
}

/* plain_kind() for a token of a kind known here, then the shaper's memory of it. */
static inline void plain_as(struct norm *n, const struct tok *t, u8 kind)
{
    plain_kind(n, t, kind);
    set_prev(n, kind, kind == TK_WORD ? t->kw : -1);
}

/*
 * Most tokens meet none of the rules below: past the first token of a statement that is not
 * one of stmt_kind()'s, with no list held and no sign waiting (n->plain, kept by run()), a
 * name, keyword, comma, dot, parenthesis or binary operator goes straight to plain_kind()
 * and a literal to plain_value().  Returns 0 for the others.
 */
static int process_plain(struct norm *n, const struct tok *t)
{
    if (!n->plain)
        return 0;
    switch (t->kind) {
    case TK_VALUE:
        if (t->name)
            return 0;
        plain_value(n, t, 0);
        set_prev(n, TK_VALUE, -1);
        break;
    case TK_OP:
        if (is_sign(t) && !ends_operand(n->prev_kind, n->prev_kw))
            return 0;
        plain_as(n, t, TK_OP);
        break;
    case TK_WORD: plain_as(n, t, TK_WORD); break;
    case TK_QIDENT: plain_as(n, t, TK_QIDENT); break;
    case TK_COMMA: plain_as(n, t, TK_COMMA); break;
    case TK_DOT: plain_as(n, t, TK_DOT); break;
    case TK_LPAREN:
        plain_as(n, t, TK_LPAREN);
        n->plain = !n->st[n->depth].hold; /* IN (, ANY(, VALUES ( hold what follows */
        break;
    case TK_RPAREN: plain_as(n, t, TK_RPAREN); break;
    default:
        return 0;
    }
    n->stmt_idx++;
    n->name_pos = 0;
    return 1;
}

/*
 * Statement-level rules: names that ORMs and drivers make up afresh (savepoints, prepared
 * statements, cursors) become "?" in both styles (they are not parameters, so they take no
 * $n), and the value of a SET becomes one literal.
 * Every token that process_plain() does not take comes here.
 */
static void process_rules(struct norm *n, struct tok *t)
{
    if (n->swallow) {
        if (t->kind != TK_SEMI) {
            n->swallowed = 1;
            return;
        }
        if (n->swallowed)
            emit_value(n);
        n->swallow = n->swallowed = 0;
    }
    if (is_sign(t) && !ends_operand(n->prev_kind, n->prev_kw)) {
        generic(n, t); /* absorbed or dropped: the statement has not moved on */
        return;
    }
    size_t idx = n->stmt_idx++;
    int kw = t->kind == TK_WORD ? t->kw : -1;
    int name_next = 0, swallow = 0;
    if (idx == 0)
        n->stmt = stmt_kind(kw);
    switch (n->stmt) {
    case ST_SAVEPOINT: case ST_PREPARE: case ST_EXECUTE: case ST_DECLARE: case ST_CLOSE:
        name_next = idx == 0;
        break;
    case ST_RELEASE:
        name_next = idx == 0 || (idx == 1 && kw == KW_SAVEPOINT);
        break;
    case ST_ROLLBACK:
        name_next = kw == KW_TO || (kw == KW_SAVEPOINT && n->prev_kw == KW_TO);
        break;
    case ST_DEALLOCATE:
        if (idx == 1 && kw == KW_PREPARE) { /* DEALLOCATE [PREPARE] name: one form */
            set_prev(n, TK_WORD, kw);
            n->name_pos = 1;
            return;
        }
        name_next = idx == 0;
        break;
    case ST_FETCH:
        name_next = 1; /* FETCH / MOVE: counts and cursor names alike */
        if (kw == KW_IN)
            t->kw = KW_FROM;
        break;
    case ST_SET:
        if (n->depth == 0 && !n->overflow &&
            (kw == KW_TO || (t->kind == TK_OP && t->n == 1 && t->p[0] == '=') ||
             (kw == KW_ZONE && n->prev_kw == KW_TIME) ||
             ((kw == KW_NAMES || kw == KW_SCHEMA) && idx <= 2)))
            swallow = 1;
        if (swallow && kw == KW_TO) { /* SET x TO v and SET x = v are one statement */
            t->kind = TK_OP;
            t->kw = -1;
            t->p = (const u8 *)"=";
            t->n = 1;
        }
        break;
    }
    generic(n, t);
    if (t->kind == TK_SEMI) {
        n->stmt_idx = 0;
        n->stmt = ST_FIRST;
        name_next = 0;
    }
    n->name_pos = (u8)name_next;
    if (swallow) {
        n->swallow = 1;
        n->swallowed = 0;
        n->name_pos = 0;
    }
}

static void run(struct norm *n, const char *sql, size_t len)
{
    struct tok t;
    n->lx.s = (const u8 *)sql;
    n->lx.len = len;
    n->lx.prev_kw = -1;
    n->prev_kw = -1;
    n->em.prev_kw = -1;
    for (;;) {
        next_token(n, &t);
        if (t.kind == TK_EOF)
            break;
        if (!process_plain(n, &t)) {
            process_rules(n, &t);
            /* Only these rules and an opening parenthesis change what n->plain sums up (a
             * SET statement is the only one that swallows). */
            n->plain = n->stmt == ST_NONE && !n->st[n->depth].hold && !n->signs;
        }
    }
    if (n->swallow && n->swallowed)
        emit_value(n);
    leave_hold(n);
    for (; n->signs; n->signs--)
        emit(n, TK_OP, -1, (const u8 *)"-", 1);
}

/* ---- literal keys (the shape cache's key, sqlhooks/shape_cache.c) ------------------- */

/*
 * A query's literal key is its text with each string and number literal replaced by one
 * byte naming the literal's class: a string, a bare number (digits only) or another number.
 * The normalizer decides what to do with a literal from its class and its neighbours, never
 * from its digits or characters, so two texts with one key have one shape as long as every
 * literal the key leaves out is one the normalizer turns into a placeholder (not an
 * ORDER BY ordinal, which it keeps).  That part is checked once per key, when the shape is
 * first taken: see nprof__sql_literal_text()'s variant form.
 *
 * The scan marks a literal only where lex() certainly starts one, and gives up (no key) on
 * what would need its whole state: comments, dollar quotes, prefixed strings (E'', B'',
 * X'', N''), unterminated quotes, numbers that run into a word or a dot, and bytes below
 * TAB, which could be mistaken for the class bytes.
 */
/* The lexer's byte classes the scan looks at; every other byte is copied as it is. */
#define LK_LOOK                                                                             \
    (KB(LC_CTRL) | KB(LC_QUOTE) | KB(LC_QNAME) | KB(LC_DIGIT) | KB(LC_DOLLAR) |              \
     KB(LC_PERCENT) | KB(LC_MINUS) | KB(LC_SLASH))

/* Whether s[i] continues a word (a name or keyword) that lex() is reading: the run of name
 * characters before it starts with a letter.  After $1 or ?1, which are not words, a '$'
 * opens a dollar quote. */
static int lk_in_word(const u8 *s, size_t i)
{
    size_t j = i;
    while (j > 0 && is_ident_char(s[j - 1]))
        j--;
    return j < i && is_ident_start(s[j]);
}

/* The stand-in of a literal in a variant: of the same class, and not equal to the original,
 * so that a literal the normalizer writes out shows as a difference. */
static const char *lk_stand_in(u8 class, const u8 *p, size_t n)
{
    static const char *const choice[][2] = {
        [NPROF__LK_STRING] = {"'x'", "'y'"},
        [NPROF__LK_BARE] = {"1", "2"},
        [NPROF__LK_NUMBER] = {"1.5", "2.5"},
    };
    const char *a = choice[class][0];
    return n == strlen(a) && memcmp(p, a, n) == 0 ? choice[class][1] : a;
}

/*
 * The first byte at or after i that may need a look (of a class in LK_LOOK; '#' and '&'
 * come out too) and is not inside a double-quoted name, or len.  *in_name says whether i is
 * inside such a name, before and after: a '"' toggles it, and so does each quote of a
 * doubled "" (twice, with nothing between).  Sixteen bytes at a time where SSE2 is there:
 * most of a query is names and spaces, an ORM quotes every name, and a query holds a
 * handful of literals.
 */
static inline size_t lk_next(const u8 *s, size_t len, size_t i, unsigned *in_name)
{
    unsigned in = *in_name;
#if defined(__SSE2__)
    const __m128i lo1 = _mm_set1_epi8(0x22), w1 = _mm_set1_epi8(0x27 - 0x22); /* " # $ % & ' */
    const __m128i lo2 = _mm_set1_epi8(0x2F), w2 = _mm_set1_epi8(0x39 - 0x2F); /* / 0-9 */
    const __m128i w3 = _mm_set1_epi8(0x08), tick = _mm_set1_epi8(0x60);       /* < TAB, ` */
    const __m128i dash = _mm_set1_epi8(0x2D);
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i a = _mm_sub_epi8(v, lo1), b = _mm_sub_epi8(v, lo2);
        __m128i hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(a, w1), a),
                         _mm_cmpeq_epi8(_mm_min_epu8(b, w2), b)),
            _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, w3), v),
                         _mm_or_si128(_mm_cmpeq_epi8(v, tick), _mm_cmpeq_epi8(v, dash))));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        while (mask) {
            size_t at = i + (size_t)__builtin_ctz(mask);
            mask &= mask - 1;
            if (s[at] == '"')
                in ^= 1;
            else if (!in) {
                *in_name = 0;
                return at;
            }
        }
    }
#endif
    for (; i < len; i++) {
        if (s[i] == '"')
            in ^= 1;
        else if (!in && (KB(lex_class[s[i]]) & LK_LOOK))
            break;
    }
    *in_name = in;
    return i;
}

int nprof__sql_literal_text(const char *sql, size_t len, int variant, char *out, size_t cap,
                            size_t *out_len)
{
    const u8 *s = (const u8 *)sql;
    size_t i = 0, k = 0, run = 0; /* s[run..i) goes to the output as it is */
    unsigned in_name = 0;
    if (!s && len)
        return 0;
    for (;;) {
        i = lk_next(s, len, i, &in_name);
        if (i >= len)
            break;
        size_t start = i, end;
        u8 class, c = s[i];
        switch (lex_class[c]) {
        case LC_QUOTE:
            if (i > 0 && is_ident_char(s[i - 1]))
                return 0; /* E'..', B'..', X'..', N'..' */
            if (!(end = quote_end(s, len, i))) /* as scan_string(.., 0) ends it */
                return 0;
            class = NPROF__LK_STRING;
            break;
        case LC_QNAME:
            if (!(i = quote_end(s, len, i)))
                return 0;
            continue;
        case LC_DIGIT:
            if (i > 0 && (is_ident_char(s[i - 1]) || s[i - 1] == '?')) {
                i++; /* in a word, or a placeholder's number: $1, ?1 */
                continue;
            }
            if (i > 0 && s[i - 1] == '.')
                return 0; /* x.5, .5: not worth telling apart */
            end = scan_number(s, len, i, &class);
            if (end < len && (is_ident_char(s[end]) || s[end] == '.'))
                return 0;
            class = class ? NPROF__LK_BARE : NPROF__LK_NUMBER;
            break;
        case LC_DOLLAR:
            if (!lk_in_word(s, i) && !(i + 1 < len && is_digit(s[i + 1])))
                return 0; /* a dollar quote, or a lone '$' */
            i++;
            continue;
        case LC_PERCENT:
            end = percent_param(s, len, i);
            i = end ? end : i + 1;
            continue;
        case LC_MINUS:
        case LC_SLASH:
            if (i + 1 < len && s[i + 1] == (s[i] == '-' ? '-' : '*'))
                return 0; /* a comment */
            i++;
            continue;
        case LC_CTRL:
            return 0;
        default: /* '#' or '&' from the vector scan */
            i++;
            continue;
        }
        /* A literal at s[start..end): the run before it, then its class or its stand-in. */
        const char *put = (const char *)&"\0\1\2\3"[class];
        size_t put_n = 1;
        if (variant) {
            put = lk_stand_in(class, s + start, end - start);
            put_n = strlen(put);
        }
        size_t plain = start - run;
        if (k + plain + put_n > cap)
            return 0;
        memcpy(out + k, s + run, plain);
        memcpy(out + k + plain, put, put_n);
        k += plain + put_n;
        i = run = end;
    }
    if (in_name || k + (len - run) > cap)
        return 0; /* an unterminated "name", or no room */
    if (len > run) /* an empty text may come as NULL: memcpy must not see it */
        memcpy(out + k, s + run, len - run);
    *out_len = k + (len - run);
    return 1;
}

/* ---- tokens for other passes (normalize.h) ---------------------------------------- */

void nprof__sql_scan_init(nprof__sql_scan *sc, const char *sql, size_t len)
{
    *sc = (nprof__sql_scan){.sql = sql ? sql : "", .len = len, .prev_kw = -1, .prev_kind = TK_EOF};
}

void nprof__sql_scan_next(nprof__sql_scan *sc, nprof__sql_token *t)
{
    static const u8 kinds[] = {
        [TK_EOF] = NPROF__TOK_EOF,       [TK_WORD] = NPROF__TOK_WORD,
        [TK_QIDENT] = NPROF__TOK_QNAME,  [TK_NUMBER] = NPROF__TOK_LITERAL,
        [TK_STRING] = NPROF__TOK_LITERAL, [TK_PARAM] = NPROF__TOK_PARAM,
        [TK_OP] = NPROF__TOK_OP,         [TK_LPAREN] = NPROF__TOK_OPEN,
        [TK_RPAREN] = NPROF__TOK_CLOSE,  [TK_LBRACK] = NPROF__TOK_OPEN,
        [TK_RBRACK] = NPROF__TOK_CLOSE,  [TK_COMMA] = NPROF__TOK_COMMA,
        [TK_DOT] = NPROF__TOK_DOT,       [TK_SEMI] = NPROF__TOK_OTHER,
        [TK_CAST] = NPROF__TOK_OTHER,    [TK_VALUE] = NPROF__TOK_OTHER,
        [TK_NAME] = NPROF__TOK_OTHER,    [TK_RAWNUM] = NPROF__TOK_OTHER,
    };
    struct lexer lx = {.s = (const u8 *)sc->sql, .len = sc->len, .pos = sc->pos,
                       .prev_kw = sc->prev_kw, .prev_kind = sc->prev_kind};
    struct tok tk;
    lex(&lx, &tk);
    sc->pos = lx.pos;
    sc->prev_kw = lx.prev_kw;
    sc->prev_kind = lx.prev_kind;
    t->offset = (size_t)(tk.p - (const u8 *)sc->sql);
    t->len = tk.n;
    t->kind = kinds[tk.kind];
    t->keyword = tk.kind == TK_WORD ? tk.kw : -1;
}

/* ---- public ------------------------------------------------------------------------ */

/* The state of a pass, cleared up to the frame stack: frames above st[0] are cleared when
 * they are pushed, so a short query does not pay for clearing all of them. */
static void norm_init(struct norm *n)
{
    memset(n, 0, offsetof(struct norm, st) + sizeof n->st[0]);
}

/* Normalizes into `out` (cap bytes, NUL-terminated when cap > 0); the length in *out_len. */
FLATTEN static size_t normalize_into(const char *sql, size_t len, int style, char *out, size_t cap)
{
    struct norm n;
    norm_init(&n);
    n.em.out = out;
    n.em.room = cap ? cap - 1 : 0;
    n.em.style = style;
    run(&n, sql ? sql : "", len);
    if (cap)
        out[n.em.len < cap ? n.em.len : cap - 1] = '\0';
    return n.em.len;
}

int nprof_sql_normalize(const char *sql, size_t len, int style, char *out, size_t cap,
                        size_t *out_len)
{
    if (out_len)
        *out_len = 0;
    if (!sql && len)
        return nprof__fail(NPROF_EINVAL, "nprof_sql_normalize: sql is NULL with len %zu", len);
    if (!out && cap)
        return nprof__fail(NPROF_EINVAL, "nprof_sql_normalize: out is NULL with cap %zu", cap);
    if (style != NPROF_SQL_QMARK && style != NPROF_SQL_DOLLAR)
        return nprof__fail(NPROF_EINVAL, "nprof_sql_normalize: unknown style %d", style);
    size_t n = normalize_into(sql, len, style, out, cap);
    if (out_len)
        *out_len = n;
    if (n >= cap)
        return nprof__fail(NPROF_ERANGE, "nprof_sql_normalize: %zu bytes needed, cap is %zu",
                           n + 1, cap);
    return NPROF_OK;
}

uint64_t nprof__sql_text_fingerprint(const char *text, size_t n)
{
    uint64_t h = XXH3_64bits(text, n);
    return h ? h : 1;
}

/*
 * Queries up to this many bytes are fingerprinted by normalizing into a stack buffer and
 * hashing it in one call (QMARK text stays below 2.5 * len + 1 bytes); longer ones stream
 * their text into XXH3 through the emitter's stage, never needing more than it.
 */
#define FINGERPRINT_BUFFERED_MAX 1600

uint64_t nprof_sql_fingerprint(const char *sql, size_t len)
{
    if (!sql)
        len = 0;
    if (len <= FINGERPRINT_BUFFERED_MAX) {
        char text[FINGERPRINT_BUFFERED_MAX * 5 / 2 + 8];
        size_t n = normalize_into(sql, len, NPROF_SQL_QMARK, text, sizeof text);
        if (n < sizeof text)
            return nprof__sql_text_fingerprint(text, n);
    }
    XXH3_state_t xx;
    char stage[NPROF__SQL_STAGE];
    struct norm n;
    norm_init(&n);
    XXH3_INITSTATE(&xx);
    XXH3_64bits_reset(&xx);
    n.em.xx = &xx;
    n.em.stage = stage;
    n.em.style = NPROF_SQL_QMARK;
    run(&n, sql ? sql : "", len);
    XXH3_64bits_update(&xx, stage, n.em.stage_len);
    uint64_t h = XXH3_64bits_digest(&xx);
    return h ? h : 1;
}

int nprof_sql_shape(const char *sql, size_t len, int style, char *out, size_t cap,
                    size_t *out_len, uint64_t *fingerprint)
{
    if (fingerprint)
        *fingerprint = 0;
    size_t n = 0;
    int rc = nprof_sql_normalize(sql, len, style, out, cap, &n);
    if (out_len)
        *out_len = n;
    if (rc == NPROF_EINVAL || !fingerprint)
        return rc;
    /* In QMARK style the text that fit is the very text the fingerprint hashes. */
    *fingerprint = rc == NPROF_OK && style == NPROF_SQL_QMARK
                       ? nprof__sql_text_fingerprint(out, n)
                       : nprof_sql_fingerprint(sql, len);
    return rc;
}
