/*
 * tools/nanoprof_sql.c: the nanoprof-sql program.  It reads SQL queries, one per line (or
 * NUL-separated with -0) from standard input or from files, and prints for each one its shape
 * fingerprint and normalized text, so that query logs can be grouped by shape with ordinary
 * tools, as pt-fingerprint does.  It is a thin shell around nprof_sql_normalize() and
 * nprof_sql_fingerprint(): what it prints is exactly what nanoprof records for a query.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* getdelim */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "nanoprof/sql.h"

static const char usage_text[] =
    "Usage: nanoprof-sql [--dollar] [-0] [FILE...]\n"
    "\n"
    "Prints the shape of SQL queries: for each query, its fingerprint (16 hex digits), a tab\n"
    "and its normalized text.  Literals become placeholders, lists of literals collapse\n"
    "(IN (1, 2, 3) -> IN (?)), comments and extra white space go, keywords are upper-cased,\n"
    "and generated names (savepoints, prepared statements, cursors) become ?.  Queries that\n"
    "differ only in those ways get the same fingerprint, the one nanoprof records for them,\n"
    "so your own query logs can be grouped by shape, as with pt-fingerprint:\n"
    "\n"
    "  nanoprof-sql queries.log | sort | uniq -c -w 16 | sort -rn | head\n"
    "\n"
    "Queries are read from the FILEs, or from standard input when there is none or FILE is\n"
    "'-'.  One query per line; lines may be of any length.  Every input record gives one\n"
    "output line (the normalized text never holds a newline), so `paste` lines them up.\n"
    "\n"
    "Options:\n"
    "  --dollar   write placeholders as $1, $2, ... in order, as PostgreSQL does (default ?);\n"
    "             the fingerprint is the same in both styles\n"
    "  -0         queries are separated by NUL bytes instead of newlines (as with xargs -0,\n"
    "             for queries that span lines)\n"
    "  -h, --help print this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if a file could not be read or the output not written,\n"
    "2 on a usage error.\n";

struct state {
    int style;
    int delim;
    char *out; /* normalized text, grown to NPROF_SQL_NORMALIZED_MAX of the longest query */
    size_t out_cap;
};

/* Prints one query's line; returns 0, or -1 when out of memory. */
static int print_query(struct state *st, const char *sql, size_t len)
{
    size_t need = NPROF_SQL_NORMALIZED_MAX(len), n = 0;
    if (need > st->out_cap) {
        char *grown = realloc(st->out, need);
        if (!grown)
            return -1;
        st->out = grown;
        st->out_cap = need;
    }
    if (nprof_sql_normalize(sql, len, st->style, st->out, st->out_cap, &n) != 0)
        return -1; /* cannot happen: the buffer has the documented size */
    printf("%016" PRIx64 "\t", nprof_sql_fingerprint(sql, len));
    fwrite(st->out, 1, n, stdout);
    putchar('\n');
    return 0;
}

/* Processes one stream; returns 0, or 1 after printing why it failed. */
static int process(struct state *st, FILE *in, const char *name)
{
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    int rc = 0;
    errno = 0;
    /* getdelim grows the buffer as needed, so no line is too long. */
    while ((got = getdelim(&line, &line_cap, st->delim, in)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == (char)st->delim)
            len--;
        if (print_query(st, line, len) != 0) {
            fprintf(stderr, "nanoprof-sql: %s: out of memory\n", name);
            rc = 1;
            break;
        }
    }
    if (!rc && ferror(in)) {
        fprintf(stderr, "nanoprof-sql: %s: %s\n", name, strerror(errno ? errno : EIO));
        rc = 1;
    }
    free(line);
    return rc;
}

int main(int argc, char **argv)
{
    struct state st = {NPROF_SQL_QMARK, '\n', NULL, 0};
    int first_file = argc, only_files = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_files || a[0] != '-' || strcmp(a, "-") == 0) {
            first_file = i;
            break;
        }
        if (strcmp(a, "--") == 0) {
            only_files = 1;
            first_file = i + 1;
            continue;
        }
        if (strcmp(a, "--dollar") == 0) {
            st.style = NPROF_SQL_DOLLAR;
        } else if (strcmp(a, "-0") == 0 || strcmp(a, "--null") == 0) {
            st.delim = '\0';
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            fprintf(stderr, "nanoprof-sql: unknown option '%s'\nTry 'nanoprof-sql --help'.\n", a);
            return 2;
        }
        first_file = i + 1;
    }
    if (first_file >= argc) {
        rc = process(&st, stdin, "standard input");
    } else {
        for (int i = first_file; i < argc; i++) {
            if (strcmp(argv[i], "-") == 0) {
                rc |= process(&st, stdin, "standard input");
                continue;
            }
            FILE *f = fopen(argv[i], "rb");
            if (!f) {
                fprintf(stderr, "nanoprof-sql: %s: %s\n", argv[i], strerror(errno));
                rc = 1;
                continue;
            }
            rc |= process(&st, f, argv[i]);
            fclose(f);
        }
    }
    free(st.out);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "nanoprof-sql: writing the output: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}
