/*
 * runtime/config.c: the option table and everything it drives: defaults, parsing of
 * NANOPROF_CONF-style "key=value,..." text, formatting, documentation rows and the values
 * that introspection shows as "opt.<name>".  A new option is one row here plus its field in
 * struct nprof_config.
 *
 * The upper layers' options (sql_*, slowlog_*) are rows here too, although runtime/ does not
 * use most of them: NANOPROF_CONF is one string read once, checked as a whole (a bad item
 * refuses all of it) and listed by one table, and the runtime that reads it cannot ask the
 * layers above for their rows.  sqlhooks/ reads its options from the nprof_config it is given
 * (nprof_slowlog_options_from_config()).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

enum option_type { OPT_BOOL, OPT_UINT, OPT_DOUBLE, OPT_ENUM, OPT_STRING };

typedef struct option {
    const char *name;
    enum option_type type;
    size_t offset;
    const char *default_text; /* parsed by nprof_config_init, so docs and defaults agree */
    double min, max;          /* range for OPT_UINT and OPT_DOUBLE */
    const char *const *choices; /* OPT_ENUM: NULL-terminated, index = value */
    const char *type_text;
    const char *doc;
} option;

static const char *const allocator_choices[] = {"auto", "jemalloc", "libc", NULL};
static const char *const auto_on_off_choices[] = {"auto", "on", "off", NULL};

#define FIELD(name) offsetof(nprof_config, name)
static const option options[] = {
    {"enabled", OPT_BOOL, FIELD(enabled), "1", 0, 1, NULL, "bool",
     "Profile requests at all; when 0 nprof_request_begin() costs one branch."},
    {"production", OPT_BOOL, FIELD(production), "0", 0, 1, NULL, "bool",
     "Production mode: dashboards and per-request profile output need a token, raw SQL "
     "literals are not stored."},
    {"max_history", OPT_UINT, FIELD(max_history), "1000", 1, 10000000, NULL, "uint",
     "Finished profiles kept in the runtime's store (ring buffer)."},
    {"max_queries", OPT_UINT, FIELD(max_queries), "500", 0, 10000000, NULL, "uint",
     "SQL queries per request kept in full; later ones are counted and timed only."},
    {"max_spans", OPT_UINT, FIELD(max_spans), "256", 0, 1000000, NULL, "uint",
     "Spans per request kept; later ones are counted as dropped."},
    {"max_sql_bytes", OPT_UINT, FIELD(max_sql_bytes), "4096", 16, 64u << 20, NULL, "uint",
     "Bytes of SQL text kept per query; longer text is cut (its full length is kept)."},
    {"max_params_bytes", OPT_UINT, FIELD(max_params_bytes), "512", 0, 1u << 20, NULL, "uint",
     "Bytes of parameter summary kept per query."},
    {"max_profile_bytes", OPT_UINT, FIELD(max_profile_bytes), "1048576", 16384, 1u << 30, NULL,
     "uint", "Memory one request's profile may hold, its own 4.4 KB included; past it queries "
     "and spans are only counted."},
    {"slow_query_threshold_ms", OPT_DOUBLE, FIELD(slow_query_threshold_ms), "100", 0, 1e9, NULL,
     "double", "A query slower than this many milliseconds is slow."},
    {"n_plus_one_threshold", OPT_UINT, FIELD(n_plus_one_threshold), "5", 2, 1000000, NULL,
     "uint", "A query shape repeated this many times in one request is an N+1 pattern."},
    {"stack_sample_every", OPT_UINT, FIELD(stack_sample_every), "0", 0, 4294967295.0, NULL,
     "uint", "Sample the call stacks of 1 request in this many (the middleware sets "
     "sample_stacks for the adapter's sampler); 0: only requests that ask with ?profile=flame."},
    {"stack_sample_interval_ms", OPT_DOUBLE, FIELD(stack_sample_interval_ms), "1", 0.1, 1000,
     NULL, "double", "Wall-clock period, in milliseconds, at which a sampled request's call "
     "stacks are taken."},
    {"allocator", OPT_ENUM, FIELD(allocator), "auto", 0, 0, allocator_choices,
     "enum(auto|jemalloc|libc)",
     "Who serves the runtime's memory: a dedicated jemalloc arena when possible (auto), "
     "jemalloc or fail, or the C library."},
    {"sql_ignore", OPT_STRING, FIELD(sql_ignore),
     "^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT|SET|SHOW|BEGIN|START TRANSACTION|COMMIT|"
     "ROLLBACK|END)\\b", 0, 0, NULL, "string",
     "A PCRE2 pattern matched against the normalized SQL: matching queries are timed and listed "
     "but not counted as N+1 patterns or duplicates (empty: none ignored)."},
    {"sql_shape_cache", OPT_UINT, FIELD(sql_shape_cache), "512", 0, 1u << 20, NULL, "uint",
     "Query shapes the runtime remembers (1 KB each) by the text with its literals left out, "
     "so that a query seen before with other literals is not normalized again (0: off)."},
    {"slowlog_conninfo", OPT_STRING, FIELD(slowlog_conninfo), "", 0, 0, NULL, "string",
     "libpq connection string of the slow-query log's database (empty: no log)."},
    {"slowlog_table", OPT_STRING, FIELD(slowlog_table), "nanoprof_slow_queries", 0, 0, NULL,
     "string", "Table of the slow-query log: letters, digits, '_', optionally schema.table."},
    {"slowlog_queue_slots", OPT_UINT, FIELD(slowlog_queue_slots), "4096", 2, 1u << 24, NULL,
     "uint", "Slow queries the log's queue holds while the writer catches up; more are dropped."},
    {"slowlog_logged", OPT_BOOL, FIELD(slowlog_logged), "0", 0, 1, NULL, "bool",
     "Keep the slow-query table LOGGED (survives a crash; written with synchronous_commit=off) "
     "instead of UNLOGGED."},
    {"slowlog_explain", OPT_BOOL, FIELD(slowlog_explain), "0", 0, 1, NULL, "bool",
     "Store EXPLAIN (FORMAT JSON) plans of slow SELECTs, once per query shape per minute."},
    {"slowlog_retention_s", OPT_UINT, FIELD(slowlog_retention_s), "604800", 0, 1u << 31, NULL,
     "uint", "Slow-query rows older than this many seconds are deleted (0: kept)."},
    {"slowlog_max_rows", OPT_UINT, FIELD(slowlog_max_rows), "1000000", 0, 4294967295.0, NULL,
     "uint", "The slow-query table keeps at most this many rows, oldest deleted first (0: no bound)."},
    {"slowlog_normalized_only", OPT_ENUM, FIELD(slowlog_normalized_only), "auto", 0, 0,
     auto_on_off_choices, "enum(auto|on|off)",
     "Store only the normalized SQL (no literals) in the slow-query log; auto: on in production."},
    {"slowlog_redact_rule", OPT_STRING, FIELD(slowlog_redact_rule), "", 0, 0, NULL, "string",
     "One more PCRE2 redaction rule for slow-query parameters and SQL, after the built-in ones."},
};
#define OPTION_COUNT (sizeof options / sizeof options[0])

size_t nprof__config_option_count(void)
{
    return OPTION_COUNT;
}

static const option *find_option(const char *key, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, key, len) == 0)
            return &options[i];
    return NULL;
}

/* Parses `text` (NUL-terminated) into the field of `o` in `cfg`. */
static int parse_value(nprof_config *cfg, const option *o, const char *text)
{
    char *field = (char *)cfg + o->offset;
    char *end = NULL;
    switch (o->type) {
    case OPT_BOOL:
        if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes") || !strcmp(text, "on"))
            *(int *)field = 1;
        else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no") || !strcmp(text, "off"))
            *(int *)field = 0;
        else
            return nprof__fail(NPROF_EPARSE, "option %s: \"%s\" is not a boolean (1/0, true/false, yes/no, on/off)",
                               o->name, text);
        return NPROF_OK;
    case OPT_UINT: {
        errno = 0;
        if (*text == '-' || *text == '\0')
            return nprof__fail(NPROF_EPARSE, "option %s: \"%s\" is not an unsigned integer", o->name, text);
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || *end != '\0')
            return nprof__fail(NPROF_EPARSE, "option %s: \"%s\" is not an unsigned integer", o->name, text);
        if ((double)v < o->min || (double)v > o->max)
            return nprof__fail(NPROF_EPARSE, "option %s: %llu is outside [%.0f, %.0f]", o->name, v,
                               o->min, o->max);
        *(uint32_t *)field = (uint32_t)v;
        return NPROF_OK;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (errno || *end != '\0' || end == text || !isfinite(v))
            return nprof__fail(NPROF_EPARSE, "option %s: \"%s\" is not a number", o->name, text);
        if (v < o->min || v > o->max)
            return nprof__fail(NPROF_EPARSE, "option %s: %g is outside [%g, %g]", o->name, v, o->min, o->max);
        *(double *)field = v;
        return NPROF_OK;
    }
    case OPT_STRING:
        if (strlen(text) >= NPROF_CONFIG_STRING_MAX)
            return nprof__fail(NPROF_EPARSE, "option %s: longer than %d bytes", o->name,
                               NPROF_CONFIG_STRING_MAX - 1);
        strcpy(field, text);
        return NPROF_OK;
    case OPT_ENUM:
        for (int i = 0; o->choices[i]; i++) {
            if (!strcmp(text, o->choices[i])) {
                *(int *)field = i;
                return NPROF_OK;
            }
        }
        return nprof__fail(NPROF_EPARSE, "option %s: \"%s\" is not one of %s", o->name, text, o->type_text);
    }
    return NPROF_EINVAL;
}

void nprof_config_init(nprof_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < OPTION_COUNT; i++)
        parse_value(cfg, &options[i], options[i].default_text);
}

int nprof_config_set(nprof_config *cfg, const char *key, const char *value)
{
    if (!cfg || !key || !value)
        return nprof__fail(NPROF_EINVAL, "nprof_config_set: NULL argument");
    const option *o = find_option(key, strlen(key));
    if (!o)
        return nprof__fail(NPROF_ENOENT, "unknown option \"%.64s\"", key);
    nprof_config copy = *cfg;
    int rc = parse_value(&copy, o, value);
    if (rc == NPROF_OK)
        *cfg = copy;
    return rc;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int nprof_config_parse(nprof_config *cfg, const char *text, size_t len)
{
    if (!cfg || (!text && len))
        return nprof__fail(NPROF_EINVAL, "nprof_config_parse: NULL argument");
    nprof_config work = *cfg;
    size_t pos = 0;
    while (pos < len) {
        /* Items end at a ',' that no backslash escapes ("\\," is a comma inside a value). */
        size_t end = pos;
        while (end < len && text[end] != ',')
            end += text[end] == '\\' && end + 1 < len ? 2 : 1;
        size_t a = pos, b = end;
        while (a < b && is_space(text[a]))
            a++;
        while (b > a && is_space(text[b - 1]))
            b--;
        if (a < b) {
            size_t eq = a;
            while (eq < b && text[eq] != '=')
                eq++;
            if (eq == b)
                return nprof__fail(NPROF_EPARSE, "item \"%.*s\" has no '='", (int)(b - a > 64 ? 64 : b - a), text + a);
            size_t ke = eq, vs = eq + 1;
            while (ke > a && is_space(text[ke - 1]))
                ke--;
            while (vs < b && is_space(text[vs]))
                vs++;
            if (memchr(text + a, '\0', b - a))
                return nprof__fail(NPROF_EPARSE, "a NUL byte inside item at offset %zu", a);
            const option *o = find_option(text + a, ke - a);
            if (!o)
                return nprof__fail(NPROF_EPARSE,
                                   "unknown option \"%.*s\"", (int)(ke - a > 64 ? 64 : ke - a), text + a);
            char value[2 * NPROF_CONFIG_STRING_MAX];
            if (b - vs >= sizeof value)
                return nprof__fail(NPROF_EPARSE, "option %s: value longer than %zu bytes", o->name,
                                   sizeof value - 1);
            size_t n = 0;
            for (size_t i = vs; i < b; i++)
                value[n++] = text[i] == '\\' && i + 1 < b && (text[i + 1] == ',' || text[i + 1] == '\\')
                                 ? text[++i] : text[i];
            value[n] = '\0';
            int rc = parse_value(&work, o, value);
            if (rc)
                return rc;
        }
        pos = end + 1;
    }
    *cfg = work;
    return NPROF_OK;
}

int nprof_config_validate(const nprof_config *cfg)
{
    if (!cfg)
        return nprof__fail(NPROF_EINVAL, "nprof_config_validate: NULL configuration");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option *o = &options[i];
        const char *field = (const char *)cfg + o->offset;
        double v;
        switch (o->type) {
        case OPT_BOOL:
            v = *(const int *)field;
            if (v != 0 && v != 1)
                return nprof__fail(NPROF_EINVAL, "option %s: %g is not 0 or 1", o->name, v);
            continue;
        case OPT_UINT:
            v = *(const uint32_t *)field;
            break;
        case OPT_DOUBLE:
            v = *(const double *)field;
            if (!isfinite(v))
                return nprof__fail(NPROF_EINVAL, "option %s: not a finite number", o->name);
            break;
        case OPT_ENUM: {
            int n = 0, e = *(const int *)field;
            while (o->choices[n])
                n++;
            if (e < 0 || e >= n)
                return nprof__fail(NPROF_EINVAL, "option %s: %d is not one of %s", o->name, e, o->type_text);
            continue;
        }
        case OPT_STRING:
            if (!memchr(field, '\0', NPROF_CONFIG_STRING_MAX))
                return nprof__fail(NPROF_EINVAL, "option %s: not NUL-terminated", o->name);
            continue;
        default:
            continue;
        }
        if (v < o->min || v > o->max)
            return nprof__fail(NPROF_EINVAL, "option %s: %g is outside [%g, %g]", o->name, v, o->min, o->max);
    }
    return NPROF_OK;
}

int nprof__config_value(const nprof_config *cfg, size_t index, nprof_ctl_value *out)
{
    if (index >= OPTION_COUNT)
        return NPROF_ENOENT;
    const option *o = &options[index];
    const char *field = (const char *)cfg + o->offset;
    memset(out, 0, sizeof *out);
    switch (o->type) {
    case OPT_BOOL:
        out->type = NPROF_CTL_UINT;
        out->u = *(const int *)field ? 1 : 0;
        break;
    case OPT_UINT:
        out->type = NPROF_CTL_UINT;
        out->u = *(const uint32_t *)field;
        break;
    case OPT_DOUBLE:
        out->type = NPROF_CTL_DOUBLE;
        out->d = *(const double *)field;
        break;
    case OPT_ENUM: {
        int v = *(const int *)field;
        int n = 0;
        while (o->choices[n])
            n++;
        out->type = NPROF_CTL_STRING;
        out->s = v >= 0 && v < n ? o->choices[v] : "?";
        break;
    }
    case OPT_STRING:
        out->type = NPROF_CTL_STRING;
        out->s = field;
        break;
    }
    return NPROF_OK;
}

int nprof_config_format(const nprof_config *cfg, nprof_buf *out)
{
    if (!cfg || !out)
        return NPROF_EINVAL;
    int rc = NPROF_OK;
    for (size_t i = 0; i < OPTION_COUNT && rc == NPROF_OK; i++) {
        nprof_ctl_value v;
        nprof__config_value(cfg, i, &v);
        if (i)
            rc = nprof__buf_append_char(out, ',');
        if (!rc)
            rc = nprof__buf_append_cstr(out, options[i].name);
        if (!rc)
            rc = nprof__buf_append_char(out, '=');
        if (rc)
            break;
        if (v.type == NPROF_CTL_UINT) {
            rc = nprof__buf_append_u64(out, v.u);
        } else if (v.type == NPROF_CTL_STRING) {
            for (const char *c = v.s; *c && !rc; c++) {
                if (*c == ',' || *c == '\\')
                    rc = nprof__buf_append_char(out, '\\');
                if (!rc)
                    rc = nprof__buf_append_char(out, *c);
            }
        } else {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%.17g", v.d);
            rc = nprof__buf_append_cstr(out, tmp);
        }
    }
    return rc;
}

int nprof_config_get_option(size_t index, nprof_option_info *out)
{
    if (!out)
        return NPROF_EINVAL;
    if (index >= OPTION_COUNT)
        return NPROF_ENOENT;
    out->name = options[index].name;
    out->type = options[index].type_text;
    out->default_value = options[index].default_text;
    out->doc = options[index].doc;
    return NPROF_OK;
}

const char *nprof__config_option_name(size_t index)
{
    return index < OPTION_COUNT ? options[index].name : NULL;
}
