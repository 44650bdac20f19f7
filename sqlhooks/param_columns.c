/*
 * sqlhooks/param_columns.c: which column each placeholder or literal of a query is compared
 * with or stored into, so that a parameter summary can say `password='x'` instead of
 * `$2='x'` and the redaction rules (redact.h) see the column's name.
 *
 * One pass over the normalizer's tokens (normalize.h), so that strings, comments, quoted
 * names and placeholders read as they do everywhere else, with a few words of state and no
 * allocation; what the text does not say plainly stays unknown:
 *   - `col <op> value` for the comparison operators and LIKE / ILIKE (with NOT), which also
 *     covers UPDATE ... SET col = value and ON CONFLICT ... DO UPDATE SET;
 *   - `col [NOT] IN (v, v, ...)`, `col <op> ANY|SOME|ALL (v, ...)`, `col BETWEEN v AND v`;
 *   - `INSERT INTO t (a, b) VALUES (v, v), (v, v)`, by position (the first COLUMNS_MAX
 *     columns); a value nested in the position (lower(%s)) is stored into it too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "nanoprof/sql.h"
#include "runtime/text.h"
#include "normalize.h"

#define COLUMNS_MAX 128 /* INSERT columns remembered by position; later ones are unknown */

typedef struct span {
    size_t offset, len;
} span;

/* Where an INSERT is: its column list, then its VALUES rows. */
enum insert_state {
    INS_NONE,
    INS_TABLE,   /* after INSERT [INTO]: the table's name, then its column list */
    INS_COLUMNS, /* inside the column list */
    INS_AFTER,   /* after the column list: VALUES, or something else */
    INS_ROWS,    /* after VALUES or a row: '(' opens a row, ',' the next one */
    INS_ROW      /* inside a row */
};

typedef struct scan_state {
    const char *sql;
    span cand;          /* the name just read, when the token before was one */
    span pending;       /* the column the next value is compared with (after an operator) */
    size_t sign;        /* offset of a unary minus before the value, or SIZE_MAX */
    int between;        /* 1: in BETWEEN's first value, 2: waiting for its AND */
    span list;          /* the column of an IN / ANY list */
    size_t list_depth;  /* depth of the list's items; 0: no list */
    int list_open;      /* IN or ANY was read: the next '(' opens the list */
    int list_item;      /* the next token starts an item of the list */
    size_t depth;       /* ( and [ open */
    int ins;            /* enum insert_state */
    size_t row_depth;   /* depth of a row's values */
    size_t pos;         /* position in the row */
    size_t ncols;
    span cols[COLUMNS_MAX];
} scan_state;

static const span NONE = {0, 0};

static inline int word_is_n(const scan_state *st, const nprof__sql_token *t, const char *w,
                            size_t n)
{
    /* The length and the first letter first: most words differ there, and strncasecmp's
     * call costs more than the rest of this pass over a token. */
    return t->kind == NPROF__TOK_WORD && t->len == n &&
           (st->sql[t->offset] | 0x20) == (w[0] | 0x20) &&
           !strncasecmp(st->sql + t->offset, w, n);
}

/* Is token `t` the keyword `w` (a string literal), in any case? */
#define word_is(st, t, w) word_is_n((st), (t), "" w, sizeof(w) - 1)

/* A column's name: a word that is no value keyword, or a quoted name without its quotes. */
static int name_of(const scan_state *st, const nprof__sql_token *t, span *out)
{
    if (t->kind == NPROF__TOK_WORD) {
        if (word_is(st, t, "TRUE") || word_is(st, t, "FALSE") || word_is(st, t, "NULL") ||
            word_is(st, t, "DEFAULT"))
            return 0;
        *out = (span){t->offset, t->len};
        return 1;
    }
    if (t->kind != NPROF__TOK_QNAME)
        return 0;
    const char *p = st->sql + t->offset;
    int closed = t->len >= 2 && p[t->len - 1] == p[0];
    *out = closed ? (span){t->offset + 1, t->len - 2} : (span){t->offset, t->len};
    return 1;
}

/* Whether the token is a value this pass reports: a literal, a placeholder, TRUE or FALSE. */
static int is_value(const scan_state *st, const nprof__sql_token *t)
{
    return t->kind == NPROF__TOK_LITERAL || t->kind == NPROF__TOK_PARAM ||
           word_is(st, t, "TRUE") || word_is(st, t, "FALSE");
}

static int is_comparison(const scan_state *st, const nprof__sql_token *t)
{
    if (t->kind == NPROF__TOK_WORD)
        return word_is(st, t, "LIKE") || word_is(st, t, "ILIKE");
    if (t->kind != NPROF__TOK_OP || t->len > 2)
        return 0;
    static const char *const ops[] = {"=", "==", "<>", "!=", "<", ">", "<=", ">="};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strlen(ops[i]) == t->len && !memcmp(st->sql + t->offset, ops[i], t->len))
            return 1;
    return 0;
}

/* A word that may stand between an operator and its value: a typed literal's type. */
static int is_literal_type(const scan_state *st, const nprof__sql_token *t)
{
    return word_is(st, t, "DATE") || word_is(st, t, "TIME") || word_is(st, t, "TIMESTAMP") ||
           word_is(st, t, "TIMESTAMPTZ") || word_is(st, t, "INTERVAL");
}

/* The column a value at this point goes with: a comparison first, then a list, then an
 * INSERT's position. */
static span column_of_value(scan_state *st)
{
    span col = NONE;
    if (st->pending.len)
        col = st->pending;
    else if ((st->list_depth && st->list_depth == st->depth && st->list_item) || st->list_open)
        col = st->list; /* an item, or `IN %s` (a driver expands a tuple there) */
    else if (st->ins == INS_ROW && st->pos < st->ncols)
        col = st->cols[st->pos];
    if (st->between == 1)
        st->between = 2; /* the AND re-arms pending */
    else
        st->pending = NONE;
    st->list_item = 0;
    st->list_open = 0;
    return col;
}

/* The INSERT state machine, for a token that is not a value. */
static void insert_step(scan_state *st, const nprof__sql_token *t)
{
    switch (st->ins) {
    case INS_NONE:
        if (word_is(st, t, "INSERT")) {
            st->ins = INS_TABLE;
            st->ncols = 0;
        }
        break;
    case INS_TABLE:
        if (t->kind == NPROF__TOK_OPEN)
            st->ins = INS_COLUMNS;
        else if (word_is(st, t, "VALUES"))
            st->ins = INS_ROWS; /* no column list: positions unknown */
        else if (!(t->kind == NPROF__TOK_WORD || t->kind == NPROF__TOK_QNAME ||
                   t->kind == NPROF__TOK_DOT) ||
                 word_is(st, t, "SELECT") || word_is(st, t, "SET"))
            st->ins = INS_NONE;
        break;
    case INS_COLUMNS: {
        span name;
        if (t->kind == NPROF__TOK_CLOSE)
            st->ins = INS_AFTER;
        else if (name_of(st, t, &name) && st->ncols < COLUMNS_MAX)
            st->cols[st->ncols++] = name;
        else if (t->kind != NPROF__TOK_COMMA && t->kind != NPROF__TOK_WORD &&
                 t->kind != NPROF__TOK_QNAME)
            st->ins = INS_NONE;
        break;
    }
    case INS_AFTER:
        st->ins = word_is(st, t, "VALUES") ? INS_ROWS : INS_NONE;
        break;
    case INS_ROWS:
        if (t->kind == NPROF__TOK_OPEN) {
            st->ins = INS_ROW;
            st->row_depth = st->depth + 1; /* depth counts this '(' after the step */
            st->pos = 0;
        } else if (t->kind != NPROF__TOK_COMMA) {
            st->ins = INS_NONE; /* ON CONFLICT, RETURNING, ... */
        }
        break;
    case INS_ROW:
        if (t->kind == NPROF__TOK_COMMA && st->depth == st->row_depth)
            st->pos++;
        else if (t->kind == NPROF__TOK_CLOSE && st->depth == st->row_depth)
            st->ins = INS_ROWS;
        break;
    }
}

/* Everything but a value: names, operators, lists and brackets. */
static void other_token(scan_state *st, const nprof__sql_token *t)
{
    insert_step(st, t);
    span name;
    if (t->kind == NPROF__TOK_OPEN) {
        st->depth++;
        if (st->list_open) {
            st->list_depth = st->depth;
            st->list_item = 1;
        }
        st->list_open = 0;
        st->pending = NONE;
        st->cand = NONE;
        return;
    }
    if (t->kind == NPROF__TOK_CLOSE) {
        if (st->list_depth == st->depth)
            st->list_depth = 0;
        if (st->depth)
            st->depth--;
    } else if (t->kind == NPROF__TOK_COMMA) {
        st->cand = NONE;
        st->pending = NONE;
        st->between = 0;
        st->list_item = st->list_depth && st->list_depth == st->depth;
        return;
    } else if (st->pending.len && t->kind == NPROF__TOK_OP && t->len == 1 &&
               st->sql[t->offset] == '-') {
        st->sign = t->offset; /* a negative value: still the pending column's */
        return;
    } else if (st->pending.len && is_literal_type(st, t)) {
        return;
    } else if (st->between == 2 && word_is(st, t, "AND")) {
        st->between = 0; /* BETWEEN's second value: pending is still set */
        return;
    } else if (st->pending.len && (word_is(st, t, "ANY") || word_is(st, t, "SOME") ||
                                   word_is(st, t, "ALL"))) {
        st->list = st->pending;
        st->list_open = 1;
        st->pending = NONE;
        return;
    } else if (st->cand.len && is_comparison(st, t)) {
        st->pending = st->cand;
        st->cand = NONE;
        return;
    } else if (st->cand.len && word_is(st, t, "BETWEEN")) {
        st->pending = st->cand;
        st->between = 1;
        st->cand = NONE;
        return;
    } else if (st->cand.len && word_is(st, t, "IN")) {
        st->list = st->cand;
        st->list_open = 1;
        st->cand = NONE;
        return;
    } else if (st->cand.len && word_is(st, t, "NOT")) {
        return; /* NOT IN, NOT LIKE, NOT BETWEEN: the name stays the candidate */
    } else if (t->kind == NPROF__TOK_DOT) {
        return; /* t.col: the next name replaces the table's */
    } else if (name_of(st, t, &name)) {
        st->cand = name;
        st->pending = NONE;
        st->list_open = 0;
        st->list_item = 0; /* a list item that is an expression: `IN (SELECT 5)` */
        return;
    }
    st->cand = NONE;
    st->pending = NONE;
    st->between = 0;
    st->list_open = 0;
    st->list_item = 0;
}

int nprof_sql_param_columns(const char *sql, size_t len, nprof_sql_param_column *out, size_t cap,
                            size_t *count)
{
    if (count)
        *count = 0;
    if ((!sql && len) || (!out && cap) || !count)
        return nprof__fail(NPROF_EINVAL, "nprof_sql_param_columns: %s",
                           !count ? "count is NULL" : !out && cap ? "out is NULL with a cap"
                                                                  : "sql is NULL with a length");
    scan_state st;
    memset(&st, 0, offsetof(scan_state, cols)); /* the columns are written before read */
    st.sql = sql ? sql : "";
    st.sign = SIZE_MAX;
    nprof__sql_scan sc;
    nprof__sql_scan_init(&sc, sql, len);
    size_t n = 0;
    for (;;) {
        nprof__sql_token t;
        nprof__sql_scan_next(&sc, &t);
        if (t.kind == NPROF__TOK_EOF)
            break;
        if (!is_value(&st, &t)) {
            other_token(&st, &t);
            if (t.kind != NPROF__TOK_OP || st.sign != t.offset)
                st.sign = SIZE_MAX;
            continue;
        }
        span col = column_of_value(&st);
        if (n < cap) {
            size_t from = st.sign != SIZE_MAX ? st.sign : t.offset;
            out[n] = (nprof_sql_param_column){.offset = col.offset,
                                              .length = col.len,
                                              .param_offset = from,
                                              .param_length = t.offset + t.len - from};
        }
        n++;
        st.sign = SIZE_MAX;
        st.cand = NONE;
    }
    *count = n;
    return n > cap ? NPROF_ERANGE : NPROF_OK;
}
