/*
 * nanoprof/config.h: the runtime's configuration.
 *
 * Three sources, later ones winning: the defaults (nprof_config_init), the struct the host
 * fills before nprof_runtime_create(), and the environment variable NANOPROF_CONF, a
 * "key=value,key=value" string read once by nprof_runtime_create().  One internal table of
 * options drives parsing, formatting, the "opt.*" introspection names and the documentation
 * (nprof_config_get_option()), so the four can never disagree.
 */
#ifndef NANOPROF_CONFIG_H
#define NANOPROF_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which allocator serves the runtime's memory. */
enum nprof_allocator_mode {
    NPROF_ALLOCATOR_AUTO = 0,     /* a dedicated jemalloc arena when jemalloc can be had,
                                     else the C library's malloc */
    NPROF_ALLOCATOR_JEMALLOC = 1, /* jemalloc or fail with NPROF_EUNSUPPORTED */
    NPROF_ALLOCATOR_LIBC = 2      /* always the C library's malloc */
};

#define NPROF_CONFIG_STRING_MAX 256 /* bytes of a string option, NUL included */

/*
 * The runtime's options, one field per option of the table (README.md lists them with their
 * defaults).  Plain data owned by the caller: fill it with nprof_config_init(), change fields
 * or apply text with nprof_config_set()/_parse(), and pass it to nprof_runtime_create(),
 * which copies it.  Not thread-safe: one thread fills a given struct.
 */
typedef struct nprof_config {
    int enabled;                    /* profile requests at all (default 1) */
    int production;                 /* production mode: stricter defaults in upper layers (0) */
    uint32_t max_history;           /* profiles kept by the runtime's store (1000) */
    uint32_t max_queries;           /* queries per request kept in full; later ones are only
                                       counted and timed (500) */
    uint32_t max_spans;             /* spans per request kept (256) */
    uint32_t max_sql_bytes;         /* bytes of SQL text kept per query (4096) */
    uint32_t max_params_bytes;      /* bytes of parameter summary kept per query (512) */
    uint32_t max_profile_bytes;     /* memory one request's profile may hold, at least 16 KiB
                                       (1 MiB) */
    double slow_query_threshold_ms; /* a query slower than this is slow (100.0) */
    uint32_t n_plus_one_threshold;  /* a query shape repeated this often in one request is an
                                       N+1 pattern (5) */
    uint32_t stack_sample_every;    /* sample the call stacks of 1 request in N
                                       (nprof_mw_state.sample_stacks); 0: only ?profile=flame
                                       requests (0) */
    double stack_sample_interval_ms; /* the stack sampler's wall-clock period, 0.1 to 1000
                                       (1.0) */
    int allocator;                  /* enum nprof_allocator_mode (auto) */
    char sql_ignore[NPROF_CONFIG_STRING_MAX]; /* PCRE2 pattern over normalized SQL: matching
                                       queries are not counted as N+1 or duplicates
                                       (transaction control, SAVEPOINT, SET, SHOW) */
    uint32_t sql_shape_cache;       /* query shapes remembered by literal key, 1 KB each, so
                                       that a repeated query with new literals is not
                                       normalized again; 0 off (512) */
    /* The slow-query log (nanoprof/slowlog.h; nprof_slowlog_options_from_config()).  Its
     * options are here, in the runtime layer's header, because NANOPROF_CONF is parsed and
     * checked as a whole by one table (runtime/config.c). */
    char slowlog_conninfo[NPROF_CONFIG_STRING_MAX]; /* libpq conninfo of its database ("") */
    char slowlog_table[NPROF_CONFIG_STRING_MAX]; /* table name (nanoprof_slow_queries) */
    uint32_t slowlog_queue_slots;   /* entries its queue holds (4096) */
    int slowlog_logged;             /* LOGGED table + synchronous_commit=off, not UNLOGGED (0) */
    int slowlog_explain;            /* store EXPLAIN plans of slow SELECTs (0) */
    uint32_t slowlog_retention_s;   /* delete rows older than this, 0 never (604800) */
    uint32_t slowlog_max_rows;      /* delete the oldest rows beyond this, 0 never (1000000) */
    int slowlog_normalized_only;    /* enum: 0 auto (= production), 1 on, 2 off (auto) */
    char slowlog_redact_rule[NPROF_CONFIG_STRING_MAX]; /* one more PCRE2 redaction rule ("") */
} nprof_config;

/* Fills `cfg` with the documented defaults.  Accepts NULL (does nothing).  Never fails. */
NPROF_API void nprof_config_init(nprof_config *cfg);

/*
 * Sets one option from text, as NANOPROF_CONF would.  `key` and `value` are NUL-terminated.
 * Errors: NPROF_EINVAL (NULL argument), NPROF_ENOENT (unknown key), NPROF_EPARSE (value not
 * of the option's type or out of its range).  On error `cfg` is unchanged and
 * nprof_last_error_detail() says what was wrong.
 */
NPROF_API int nprof_config_set(nprof_config *cfg, const char *key, const char *value);

/*
 * Applies a "key=value,key=value" string of `len` bytes (not necessarily NUL-terminated).
 * Whitespace around keys and values is ignored; empty items are skipped; "\," is a comma
 * and "\\" a backslash inside a value.  All or nothing:
 * on any error `cfg` is left exactly as it was, and nprof_last_error_detail() names the item.
 */
NPROF_API int nprof_config_parse(nprof_config *cfg, const char *text, size_t len);

/*
 * Checks a configuration filled by hand against every option's type and range (the checks
 * nprof_config_set() makes on text).  nprof_runtime_create() calls it, so a bad struct is
 * refused there instead of misbehaving later.  Errors: NPROF_EINVAL, with the option named
 * by nprof_last_error_detail().
 */
NPROF_API int nprof_config_validate(const nprof_config *cfg);

/* Appends every option as "key=value,..." to `out` (parseable by nprof_config_parse()).
 * Errors: NPROF_EINVAL (`cfg` or `out` NULL), NPROF_ENOMEM. */
NPROF_API int nprof_config_format(const nprof_config *cfg, nprof_buf *out);

/* One row of the option table, for documentation and tooling.  Every string is static. */
typedef struct nprof_option_info {
    const char *name;          /* "slow_query_threshold_ms" */
    const char *type;          /* "bool", "uint", "double", "string" or "enum(a|b|c)" */
    const char *default_value; /* as text */
    const char *doc;           /* one sentence */
} nprof_option_info;

/* Fills `out` with option number `index` (0-based), to list every option.  Errors:
 * NPROF_EINVAL (`out` NULL), NPROF_ENOENT past the last option.  Thread-safe. */
NPROF_API int nprof_config_get_option(size_t index, nprof_option_info *out);

/* ---- deprecated aliases, removed in 0.3 (see common.h, Names) ---------------------------- */
#ifndef NPROF_NO_DEPRECATED
/* nprof_config_option(index, out): renamed nprof_config_get_option(). */
#define nprof_config_option nprof_config_get_option
#endif /* NPROF_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_CONFIG_H */
