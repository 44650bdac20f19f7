/*
 * sqlhooks/pq.c: libpq instrumentation (nanoprof/pq.h): the wrappers, the per-thread guard,
 * the per-connection state of asynchronous and pipelined queries and prepared statements,
 * and the recording of a finished query into the current profile and the process-wide
 * per-shape table.  The preloadable shim (pq_shim.c) is only a list of libpq's names that
 * forward here, so the same code serves hosts that link nanoprof and programs that do not.
 *
 * Why a guard: libpq calls its exported functions through its own PLT, so under the shim
 * PQexec reaches PQsendQuery and PQgetResult again; a per-thread depth counter lets only the
 * outermost call record.  The wrappers themselves call libpq through the PLT too, which
 * under the shim lands in the shim again and is forwarded there while the guard is held.
 *
 * Per-connection state is only needed for asynchronous queries (what is in flight, in
 * order) and prepared statements (name -> text).  Synchronous queries never touch it,
 * unless some connection is excluded.  The table of connections is sharded by PGconn
 * address, a mutex per shard held only to find, add or remove a connection: the state of
 * one connection is used by the thread using that PGconn (libpq forbids two at once), so it
 * needs no lock of its own.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <xxhash.h>

#include "nanoprof/clock.h"
#include "nanoprof/pq.h"
#include "nanoprof/redact.h"
#include "nanoprof/slowlog.h"
#include "nanoprof/sql.h"
#include "runtime/jsonw.h"
#include "runtime/profile.h"
#include "runtime/rules.h"
#include "runtime/thread_mem.h"
#include "shape_cache.h"

#define PQ_SHARDS 16
#define PQ_CONNS_PER_SHARD (NPROF_PQ_MAX_CONNS / PQ_SHARDS)
#define PQ_PARAM_VALUE_MAX 64   /* bytes of one parameter shown in the summary */
#define PQ_PARAMS_BUF 1024      /* the summary's buffer; opt.max_params_bytes cuts further */

enum pq_kind { PQ_QUERY = 1, PQ_PREPARE = 2, PQ_SYNC = 3 };

/* A query in flight on a connection, from its send to the NULL after its results. */
typedef struct pq_pending {
    int kind;
    int error, aborted;
    uint32_t results;
    char *sql;          /* kept part (opt.max_sql_bytes), allocated; NULL for PQ_SYNC */
    size_t sql_len, sql_alloc;
    char *params;       /* summary, allocated, or NULL */
    size_t params_len;
    uint64_t params_hash; /* params_identity(), taken when it was sent */
    char *name;         /* PQ_PREPARE: the statement's name, allocated */
    size_t name_len;
    uint64_t fp, send_ticks, rows;
} pq_pending;

typedef struct pq_stmt {
    uint64_t name_hash;
    char *name;
    size_t name_len;
    char *sql;      /* kept part */
    size_t sql_len;
    uint64_t fp;    /* of the whole text */
} pq_stmt;

typedef struct pq_conn {
    const void *conn;
    int excluded;
    uint32_t head, count;     /* ring of in-flight queries */
    uint32_t untracked;       /* sent after the ring was full: their results come after the
                                 ring's, are consumed in order and recorded nowhere */
    int untracked_results;    /* the oldest untracked statement has had a result */
    uint64_t last_end_ticks;  /* when the previous query's results ended */
    pq_pending q[NPROF_PQ_MAX_PENDING];
    pq_stmt *stmt;
    uint32_t nstmt, stmt_cap;
} pq_conn;

typedef struct pq_shard {
    _Alignas(NPROF__CACHELINE) pthread_mutex_t mu;
    uint32_t n;
    pq_conn *c[PQ_CONNS_PER_SHARD];
} pq_shard;

static struct {
    pthread_mutex_t init_mu;
    _Atomic int state;           /* 0 not yet, 1 ready, -1 failed (forward only) */
    nprof_runtime *rt;           /* valid when state == 1 */
    int owns_rt;
    nprof_querystats *qs;
    nprof_redactor *redactor;    /* default rules, over parameter summaries kept in profiles */
    _Atomic(nprof_slowlog *) slowlog; /* slow queries go here when set */
    int owns_slowlog;            /* opened from opt.slowlog_conninfo: closed by the layer */
    nprof_slowlog *retired;      /* the layer's own log after nprof_pq_set_slowlog() replaced
                                    it: another thread may still be enqueueing into it, so it
                                    is closed at shutdown or exit, not then */
    _Atomic uint32_t conns;      /* connections tracked */
    _Atomic uint32_t excluded_conns;
    _Atomic uint64_t recorded, in_profile, failures, aborted, dropped_conns, dropped_pending,
        dropped_statements, unknown_statements;
    pq_shard shard[PQ_SHARDS];
} pq = {.init_mu = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local struct {
    int depth;          /* nesting of recorded calls on this thread */
    int excluded;       /* nprof_pq_exclude_thread() */
    const char *ov_sql; /* the text of the synchronous call in progress, for nprof_pq_overlap() */
    size_t ov_len;
    uint64_t ov_fp;     /* its fingerprint, once nprof_pq_overlap() took it */
} tls;

#define COUNT(field) atomic_fetch_add_explicit(&pq.field, 1, memory_order_relaxed)

/* ---- the runtime, created once ---------------------------------------------------------- */

/* The counters under the runtime's introspection names "stats.pq.*" (defined with them). */
#define PQ_CTL_PREFIX "stats.pq"
static const nprof__ctl_provider ctl_provider;

static int setup_locked(nprof_runtime *rt, int owns)
{
    nprof_querystats *qs;
    int rc = nprof_querystats_create(rt, 0, &qs);
    if (rc != NPROF_OK)
        return rc;
    rc = nprof__ctl_register(rt, PQ_CTL_PREFIX, &ctl_provider, &pq);
    if (rc != NPROF_OK) {
        nprof_querystats_destroy(qs);
        return rc;
    }
    /* Without a redactor, parameter summaries are left out of profiles rather than kept raw. */
    if (nprof_redactor_create(NULL, &pq.redactor) != NPROF_OK)
        pq.redactor = NULL;
    const nprof_config *cfg = nprof_runtime_config(rt);
    if (owns && cfg->slowlog_conninfo[0]) {
        /* The shim's own log, from NANOPROF_CONF.  Its connections are libnanoprof's: the
         * shim never records them (see pq_shim.c). */
        nprof_slowlog_options o;
        nprof_slowlog_options_from_config(&o, cfg);
        o.runtime = rt;
        nprof_slowlog *log = NULL;
        if (nprof_slowlog_open(&log, NULL, &o) == NPROF_OK) {
            atomic_store(&pq.slowlog, log);
            pq.owns_slowlog = 1;
        } else {
            fprintf(stderr, "nanoprof: slow-query log not opened: %s\n", nprof_last_error_detail());
        }
    }
    for (int i = 0; i < PQ_SHARDS; i++) {
        pthread_mutex_init(&pq.shard[i].mu, NULL);
        pq.shard[i].n = 0;
    }
    pq.rt = rt;
    pq.owns_rt = owns;
    pq.qs = qs;
    atomic_store_explicit(&pq.state, 1, memory_order_release);
    return NPROF_OK;
}

static nprof_runtime *pq_runtime_slow(void)
{
    pthread_mutex_lock(&pq.init_mu);
    if (atomic_load_explicit(&pq.state, memory_order_acquire) == 0) {
        nprof_runtime *rt = NULL;
        int rc = nprof_runtime_create(NULL, &rt);
        if (rc == NPROF_OK)
            rc = setup_locked(rt, 1);
        if (rc != NPROF_OK) {
            fprintf(stderr, "nanoprof: libpq queries are not recorded: %s (%s)\n",
                    nprof_strerror(rc), nprof_last_error_detail());
            nprof_runtime_destroy(rt);
            atomic_store_explicit(&pq.state, -1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&pq.init_mu);
    return atomic_load_explicit(&pq.state, memory_order_acquire) == 1 ? pq.rt : NULL;
}

static inline nprof_runtime *pq_runtime(void)
{
    int s = atomic_load_explicit(&pq.state, memory_order_acquire);
    if (NPROF_LIKELY(s == 1))
        return pq.rt;
    return s < 0 ? NULL : pq_runtime_slow();
}

int nprof_pq_init(nprof_runtime *rt)
{
    if (!rt)
        return NPROF_EINVAL;
    pthread_mutex_lock(&pq.init_mu);
    int rc = atomic_load_explicit(&pq.state, memory_order_acquire) == 1 ? NPROF_ESTATE
                                                                        : setup_locked(rt, 0);
    pthread_mutex_unlock(&pq.init_mu);
    return rc;
}

nprof_runtime *nprof_pq_runtime(void)
{
    return pq_runtime();
}

nprof_querystats *nprof_pq_querystats(void)
{
    return pq_runtime() ? pq.qs : NULL;
}

/* ---- the guard ---------------------------------------------------------------------------- */

/* Enters a call; returns the runtime when this call is to be recorded, else NULL. */
static inline nprof_runtime *pq_enter(void)
{
    if (tls.depth++ || tls.excluded)
        return NULL;
    nprof_runtime *rt = pq_runtime();
    return rt && nprof_runtime_enabled(rt) ? rt : NULL;
}

static inline void pq_leave(void)
{
    tls.depth--;
}

int nprof_pq_busy(void)
{
    return tls.depth > 0;
}

int nprof_pq_exclude_thread(int excluded)
{
    int prev = tls.excluded;
    tls.excluded = excluded != 0;
    return prev;
}

/* ---- connections ------------------------------------------------------------------------ */

static inline pq_shard *shard_of(const void *conn)
{
    uint64_t h = (uint64_t)(uintptr_t)conn * 0x9E3779B97F4A7C15ull;
    return &pq.shard[h >> 60];
}

/* The index of `conn` in shard `s` (its mutex held), or s->n when absent. */
static uint32_t shard_find(const pq_shard *s, const void *conn)
{
    uint32_t i = 0;
    while (i < s->n && s->c[i]->conn != conn)
        i++;
    return i;
}

/* The state of `conn`, created when `create` and absent; NULL when absent or not possible. */
static pq_conn *conn_get(nprof_runtime *rt, const void *conn, int create)
{
    pq_shard *s = shard_of(conn);
    pthread_mutex_lock(&s->mu);
    uint32_t i = shard_find(s, conn);
    pq_conn *found = i < s->n ? s->c[i] : NULL;
    if (!found && create) {
        if (s->n == PQ_CONNS_PER_SHARD) {
            COUNT(dropped_conns);
        } else if ((found = nprof__alloc_zeroed(&rt->alloc, sizeof *found)) != NULL) {
            found->conn = conn;
            s->c[s->n++] = found;
            atomic_fetch_add_explicit(&pq.conns, 1, memory_order_relaxed);
        } else {
            COUNT(failures);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

static void *dup_bytes(nprof_runtime *rt, const char *s, size_t n)
{
    char *d = nprof__alloc_bytes(&rt->alloc, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static void free_str(nprof_runtime *rt, char *s, size_t n)
{
    if (s)
        nprof__free_bytes(&rt->alloc, s, n + 1);
}

static void pending_clear(nprof_runtime *rt, pq_pending *e)
{
    free_str(rt, e->sql, e->sql_alloc);
    free_str(rt, e->params, e->params_len);
    free_str(rt, e->name, e->name_len);
    memset(e, 0, sizeof *e);
}

static void stmt_clear(nprof_runtime *rt, pq_stmt *st)
{
    free_str(rt, st->name, st->name_len);
    free_str(rt, st->sql, st->sql_len);
}

static void conn_free(nprof_runtime *rt, pq_conn *c)
{
    for (uint32_t i = 0; i < c->count; i++)
        pending_clear(rt, &c->q[(c->head + i) % NPROF_PQ_MAX_PENDING]);
    for (uint32_t i = 0; i < c->nstmt; i++)
        stmt_clear(rt, &c->stmt[i]);
    if (c->stmt)
        nprof__free_bytes(&rt->alloc, c->stmt, c->stmt_cap * sizeof *c->stmt);
    if (c->excluded)
        atomic_fetch_sub_explicit(&pq.excluded_conns, 1, memory_order_relaxed);
    nprof__free_bytes(&rt->alloc, c, sizeof *c);
}

/* Forgets `conn` (PQfinish, PQreset): its queries in flight and its statements. */
static void conn_forget(nprof_runtime *rt, const void *conn)
{
    if (!conn || !atomic_load_explicit(&pq.conns, memory_order_relaxed))
        return;
    pq_shard *s = shard_of(conn);
    pq_conn *c = NULL;
    pthread_mutex_lock(&s->mu);
    uint32_t i = shard_find(s, conn);
    if (i < s->n) {
        c = s->c[i];
        s->c[i] = s->c[--s->n];
    }
    pthread_mutex_unlock(&s->mu);
    if (c) {
        atomic_fetch_sub_explicit(&pq.conns, 1, memory_order_relaxed);
        conn_free(rt, c);
    }
}

int nprof_pq_exclude_conn(struct pg_conn *conn)
{
    nprof_runtime *rt = pq_runtime();
    if (!conn || !rt)
        return NPROF_EINVAL;
    pq_conn *c = conn_get(rt, conn, 1);
    if (!c)
        return NPROF_ELIMIT;
    if (!c->excluded) {
        c->excluded = 1;
        atomic_fetch_add_explicit(&pq.excluded_conns, 1, memory_order_relaxed);
    }
    return NPROF_OK;
}

/* Whether `conn` was excluded: one relaxed load unless some connection is. */
static inline int conn_excluded(nprof_runtime *rt, const void *conn)
{
    if (NPROF_LIKELY(!atomic_load_explicit(&pq.excluded_conns, memory_order_relaxed)))
        return 0;
    pq_conn *c = conn_get(rt, conn, 0);
    return c && c->excluded;
}

/* ---- prepared statements ---------------------------------------------------------------- */

static inline uint64_t name_hash(const char *name, size_t len)
{
    return XXH3_64bits(name, len);
}

static pq_stmt *stmt_find(pq_conn *c, const char *name, size_t len, uint64_t h)
{
    for (uint32_t i = 0; i < c->nstmt; i++) {
        pq_stmt *st = &c->stmt[i];
        if (st->name_hash == h && st->name_len == len && memcmp(st->name, name, len) == 0)
            return st;
    }
    return NULL;
}


/* Queries up to this many bytes are normalized on the stack, once, for both the profile and
 * the fingerprint; QMARK text stays below 2.5 times its input (nanoprof/sql.h). */
#define PQ_NORM_INPUT_MAX 2048
#define PQ_NORM_BUF (PQ_NORM_INPUT_MAX * 5 / 2 + 64)

/*
 * Fingerprints of texts this thread sent recently, by a hash of the raw bytes.  Drivers that
 * pass parameters separately (PQexecParams: Ruby's pg, PHP's pg_query_params, prepared
 * statements) send the same text again and again; hashing it costs a tenth of normalizing
 * it.  A false hit needs two texts with equal length and equal 64-bit XXH3.
 */
#define PQ_FP_CACHE 64
typedef struct {
    uint64_t raw, fp;
} fp_entry;

/* On the heap, the thread-local being only its pointer: libnanoprof's thread-local block
 * must stay small enough for glibc's static TLS surplus (runtime/text.c, error_detail). */
static _Thread_local fp_entry *fp_cache;

static void fp_cache_free(void *table)
{
    free(table);
    fp_cache = NULL;
}

static nprof__thread_mem fp_cache_mem = NPROF__THREAD_MEM_INIT(fp_cache_free);

static uint64_t fingerprint(const char *sql, size_t len)
{
    if (len > NPROF_PQ_FINGERPRINT_MAX)
        len = NPROF_PQ_FINGERPRINT_MAX;
    uint64_t raw = XXH3_64bits_withSeed(sql, len, len) | 1; /* never 0: 0 is an empty slot */
    if (!fp_cache) /* (none: no memory, or no key to free it with; then each text is new) */
        fp_cache = nprof__thread_mem_calloc(&fp_cache_mem, PQ_FP_CACHE * sizeof *fp_cache);
    fp_entry *slot = fp_cache ? &fp_cache[(unsigned)(raw >> 58) % PQ_FP_CACHE] : NULL;
    if (slot && slot->raw == raw)
        return slot->fp;
    /* A new text: the runtime's shape cache has it when only its literals are new. */
    uint64_t fp = 0;
    nprof_runtime *rt = pq_runtime();
    if (rt && len <= PQ_NORM_INPUT_MAX) {
        char norm[PQ_NORM_BUF];
        size_t n;
        int ignored;
        if (nprof__sql_shape_of(rt, sql, len, norm, sizeof norm, &n, &fp, &ignored, NULL) != NPROF_OK)
            fp = 0;
    }
    if (!fp)
        fp = nprof_sql_fingerprint(sql, len);
    if (slot) {
        slot->raw = raw;
        slot->fp = fp;
    }
    return fp;
}

/* Remembers statement `name` of `conn` as `sql` (replacing one of the same name). */
static void stmt_remember(nprof_runtime *rt, pq_conn *c, const char *name, size_t nlen,
                          const char *sql, size_t slen)
{
    size_t kept = nprof__sql_kept(rt, slen);
    uint64_t h = name_hash(name, nlen);
    pq_stmt *st = stmt_find(c, name, nlen, h);
    if (!st) {
        if (c->nstmt == c->stmt_cap) {
            uint32_t cap = c->stmt_cap ? c->stmt_cap * 2 : 8;
            if (c->stmt_cap >= NPROF_PQ_MAX_STATEMENTS) {
                COUNT(dropped_statements);
                return;
            }
            pq_stmt *grown = nprof__alloc_bytes(&rt->alloc, cap * sizeof *grown);
            if (!grown) {
                COUNT(failures);
                return;
            }
            if (c->stmt) {
                memcpy(grown, c->stmt, c->nstmt * sizeof *grown);
                nprof__free_bytes(&rt->alloc, c->stmt, c->stmt_cap * sizeof *c->stmt);
            }
            c->stmt = grown;
            c->stmt_cap = cap;
        }
        st = &c->stmt[c->nstmt];
        *st = (pq_stmt){.name_hash = h, .name = dup_bytes(rt, name, nlen), .name_len = nlen};
        if (!st->name) {
            COUNT(failures);
            return;
        }
        c->nstmt++;
    } else {
        free_str(rt, st->sql, st->sql_len);
    }
    st->sql = dup_bytes(rt, sql, kept);
    st->sql_len = st->sql ? kept : 0;
    st->fp = fingerprint(sql, slen);
    if (!st->sql)
        COUNT(failures);
}

/* Forgets statement `name` (len 0 and all: every statement), as DEALLOCATE does. */
static void stmt_forget(nprof_runtime *rt, pq_conn *c, const char *name, size_t nlen, int all)
{
    for (uint32_t i = 0; i < c->nstmt;) {
        pq_stmt *st = &c->stmt[i];
        if (all || (st->name_len == nlen && memcmp(st->name, name, nlen) == 0)) {
            stmt_clear(rt, st);
            c->stmt[i] = c->stmt[--c->nstmt];
        } else {
            i++;
        }
    }
}

/* ---- SQL-level PREPARE, EXECUTE and DEALLOCATE ---------------------------------------------- */

enum { SQL_PREPARE = 1, SQL_EXECUTE, SQL_DEALLOCATE };

typedef struct sql_ref {
    int kind;
    int all;           /* DEALLOCATE ALL */
    char name[64];     /* unquoted names folded to lower case, as PostgreSQL does */
    size_t name_len;
    const char *body;  /* PREPARE: the statement after AS; EXECUTE: "(args)" or "" */
    size_t body_len;
} sql_ref;

static inline int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

static inline int is_ident(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '$' || (unsigned char)ch >= 0x80;
}

/* Whether the word at `s` (bounded by `end`) is `kw` (upper case), case-insensitively. */
static int word_is(const char *s, const char *end, const char *kw)
{
    size_t n = strlen(kw);
    if ((size_t)(end - s) < n || (s + n < end && is_ident(s[n])))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((s[i] & ~0x20) != kw[i])
            return 0;
    return 1;
}

static const char *skip_space(const char *s, const char *end)
{
    while (s < end && is_space(*s))
        s++;
    return s;
}

/* Parses "PREPARE name [(types)] AS body", "EXECUTE name [(args)]" and "DEALLOCATE [PREPARE]
 * name|ALL" at the start of `sql`; 1 with `out` filled, else 0.  Cheap for every other text:
 * the first letter decides. */
static int sql_level(const char *sql, size_t len, sql_ref *out)
{
    const char *s = sql, *end = sql + len;
    s = skip_space(s, end);
    if (s == end)
        return 0;
    char first = (char)(*s & ~0x20);
    if (first != 'P' && first != 'E' && first != 'D')
        return 0;
    memset(out, 0, sizeof *out);
    if (word_is(s, end, "PREPARE"))
        out->kind = SQL_PREPARE, s += 7;
    else if (word_is(s, end, "EXECUTE"))
        out->kind = SQL_EXECUTE, s += 7;
    else if (word_is(s, end, "DEALLOCATE"))
        out->kind = SQL_DEALLOCATE, s += 10;
    else
        return 0;
    s = skip_space(s, end);
    if (out->kind == SQL_DEALLOCATE && word_is(s, end, "PREPARE"))
        s = skip_space(s + 7, end);
    if (out->kind == SQL_DEALLOCATE && word_is(s, end, "ALL")) {
        out->all = 1;
        return 1;
    }
    if (s < end && *s == '"') { /* a quoted name keeps its case; "" is a quote */
        for (s++; s < end; s++) {
            if (*s == '"' && !(s + 1 < end && s[1] == '"'))
                break;
            if (*s == '"')
                s++;
            if (out->name_len == sizeof out->name)
                return 0;
            out->name[out->name_len++] = *s;
        }
        if (s == end)
            return 0;
        s++;
    } else {
        for (; s < end && is_ident(*s); s++) {
            if (out->name_len == sizeof out->name)
                return 0;
            out->name[out->name_len++] = *s >= 'A' && *s <= 'Z' ? (char)(*s | 0x20) : *s;
        }
    }
    if (!out->name_len)
        return 0;
    s = skip_space(s, end);
    if (out->kind == SQL_EXECUTE) {
        out->body = s;
        out->body_len = (size_t)(end - s);
        while (out->body_len && (is_space(s[out->body_len - 1]) || s[out->body_len - 1] == ';'))
            out->body_len--;
        return 1;
    }
    if (out->kind == SQL_PREPARE) {
        if (s < end && *s == '(') { /* parameter types: skip to the matching parenthesis */
            int depth = 0;
            for (; s < end; s++) {
                depth += *s == '(';
                depth -= *s == ')';
                if (!depth)
                    break;
            }
            s = skip_space(s + (s < end), end);
        }
        if (!word_is(s, end, "AS"))
            return 0;
        out->body = skip_space(s + 2, end);
        out->body_len = (size_t)(end - out->body);
    }
    return 1;
}

/*
 * Applies a SQL-level PREPARE (remembered when `ok`), DEALLOCATE (forgotten when `ok`) or
 * EXECUTE to the statements of `conn`.  For an EXECUTE of a known statement, the query is
 * recorded as that statement: *sql, *len and *fp are pointed at its text (valid while the
 * connection's state is, which the caller's thread owns) and *args at the argument list.
 */
static void sql_level_apply(nprof_runtime *rt, PGconn *conn, int ok, const char **sql,
                            size_t *len, uint64_t *fp, const char **args, size_t *args_len)
{
    sql_ref ref;
    if (!sql_level(*sql, *len, &ref))
        return;
    int create = ref.kind == SQL_PREPARE && ok;
    if (!create && !atomic_load_explicit(&pq.conns, memory_order_relaxed))
        return;
    pq_conn *c = conn_get(rt, conn, create);
    if (!c)
        return;
    if (ref.kind == SQL_PREPARE && ok) {
        stmt_remember(rt, c, ref.name, ref.name_len, ref.body, ref.body_len);
    } else if (ref.kind == SQL_DEALLOCATE && ok) {
        stmt_forget(rt, c, ref.name, ref.name_len, ref.all);
    } else if (ref.kind == SQL_EXECUTE) {
        pq_stmt *st = stmt_find(c, ref.name, ref.name_len, name_hash(ref.name, ref.name_len));
        if (st && st->sql) {
            *args = ref.body;
            *args_len = ref.body_len;
            *sql = st->sql;
            *len = st->sql_len;
            *fp = st->fp;
        }
    }
}

/* A call's parameters, as libpq takes them (n 0: none). */
typedef struct pq_params {
    int n;
    const char *const *values;
    const int *lengths;
    const int *formats;
} pq_params;

/* ---- recording ---------------------------------------------------------------------------- */

/* One finished query, whichever way it came. */
typedef struct pq_done {
    const char *sql;
    size_t sql_len;
    uint64_t fp; /* 0: computed from sql */
    const char *params;
    size_t params_len;
    uint64_t params_hash; /* nprof_query.params_hash */
    uint64_t start_ticks, end_ticks;
    uint64_t rows;
    int error;
} pq_done;

/* Rows returned (a SELECT) or affected (INSERT/UPDATE/DELETE, from the command tag). */
static uint64_t result_rows(const PGresult *r)
{
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_SINGLE_TUPLE:
        return (uint64_t)PQntuples(r);
    case PGRES_COMMAND_OK: {
        const char *t = PQcmdTuples((PGresult *)r);
        return t && *t ? strtoull(t, NULL, 10) : 0;
    }
    default:
        return 0;
    }
}

static int result_error(const PGresult *r)
{
    if (!r)
        return 1;
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
}

/*
 * The parameter summary: $1='42', $2=NULL, $3=<binary 16 bytes>; each value cut at
 * PQ_PARAM_VALUE_MAX bytes ("..." marks the cut), the whole at `cap` - 1 bytes.
 * Returns its length.
 */
static size_t params_summary(char *out, size_t cap, int n, const char *const *values,
                             const int *lengths, const int *formats)
{
    size_t len = 0;
    for (int i = 0; i < n && len + 1 < cap; i++) {
        char piece[PQ_PARAM_VALUE_MAX + 48];
        int k;
        if (!values || !values[i])
            k = snprintf(piece, sizeof piece, "%s$%d=NULL", i ? ", " : "", i + 1);
        else if (formats && formats[i])
            k = snprintf(piece, sizeof piece, "%s$%d=<binary %d bytes>", i ? ", " : "", i + 1,
                         lengths ? lengths[i] : 0);
        else {
            size_t vlen = strnlen(values[i], PQ_PARAM_VALUE_MAX + 1);
            int cut = vlen > PQ_PARAM_VALUE_MAX;
            k = snprintf(piece, sizeof piece, "%s$%d='%.*s'%s", i ? ", " : "", i + 1,
                         (int)(cut ? PQ_PARAM_VALUE_MAX : vlen), values[i], cut ? "..." : "");
        }
        size_t take = k < 0 ? 0 : (size_t)k;
        if (take >= sizeof piece)
            take = sizeof piece - 1;
        if (len + take >= cap)
            take = cap - 1 - len;
        memcpy(out + len, piece, take);
        len += take;
    }
    out[len] = 0;
    return len;
}

static inline size_t params_cap(nprof_runtime *rt)
{
    size_t m = rt->cfg.max_params_bytes + 1u;
    return m < PQ_PARAMS_BUF ? m : PQ_PARAMS_BUF;
}

/* The summary of parameters, redacted (nanoprof/redact.h default rules), into `out` of
 * PQ_PARAMS_BUF bytes; returns its length, 0 when there is none or it cannot be redacted. */
static size_t params_redacted(nprof_runtime *rt, char *out, const pq_params *pp)
{
    if (pp->n <= 0 || !pq.redactor)
        return 0;
    char raw[PQ_PARAMS_BUF];
    size_t len = params_summary(raw, params_cap(rt), pp->n, pp->values, pp->lengths, pp->formats);
    size_t red = 0;
    if (nprof_redactor_apply(pq.redactor, raw, len, out, PQ_PARAMS_BUF - 1, &red, NULL) < 0)
        return 0;
    out[red] = 0;
    return red;
}

/* The identity of a call's parameter values (nprof_query.params_hash), from the values
 * themselves: for counting exact duplicates, which the summary cannot do when it is left
 * out (production mode), cut or redacted.  A SQL-level EXECUTE's argument list (`args`)
 * stands for its values.  0 when the call has none. */
static uint64_t params_identity(const pq_params *pp, const char *args, size_t args_len)
{
    if (args)
        return XXH3_64bits_withSeed(args, args_len, 1) | 1;
    if (pp->n <= 0)
        return 0;
    uint64_t h = (uint64_t)pp->n;
    for (int i = 0; i < pp->n; i++) {
        uint64_t v = 0x9E3779B97F4A7C15ull; /* NULL */
        if (pp->values && pp->values[i]) {
            int binary = pp->formats && pp->formats[i];
            size_t len = !binary ? strlen(pp->values[i])
                         : pp->lengths && pp->lengths[i] > 0 ? (size_t)pp->lengths[i] : 0;
            v = XXH3_64bits_withSeed(pp->values[i], len, (uint64_t)i + 2 + (binary ? 1u << 20 : 0));
        }
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h | 1;
}

/* The argument list of a SQL-level EXECUTE as the parameter summary, redacted. */
static size_t args_redacted(const char *args, size_t len, char *out)
{
    size_t red = 0;
    if (!len || !pq.redactor || nprof_redactor_apply(pq.redactor, args, len, out, PQ_PARAMS_BUF - 1, &red, NULL) < 0)
        return 0;
    out[red] = 0;
    return red;
}

/* The slow-query log, when one is set: the entry is copied into its queue (which redacts
 * the parameters), never waited for.  1 when the log took it. */
static int offer_slowlog(const pq_done *d, uint64_t fp, uint64_t duration_ns, nprof_profile *p)
{
    nprof_slowlog *log = atomic_load_explicit(&pq.slowlog, memory_order_acquire);
    if (!log)
        return 0;
    nprof_slowlog_entry e = {.sql = d->sql,
                             .sql_len = d->sql_len,
                             .params = d->params,
                             .params_len = d->params_len,
                             .duration_ms = (double)duration_ns / 1e6,
                             .fingerprint = fp};
    nprof_slowlog_entry_set_request(&e, p);
    int rc = nprof_slowlog_enqueue(log, &e);
    if (rc == NPROF_EINVAL)
        COUNT(failures);
    return rc == NPROF_OK;
}

int nprof_pq_set_slowlog(nprof_slowlog *log)
{
    if (!pq_runtime())
        return NPROF_ESTATE;
    pthread_mutex_lock(&pq.init_mu);
    nprof_slowlog *prev = atomic_exchange(&pq.slowlog, log);
    if (pq.owns_slowlog && prev != log && !pq.retired)
        pq.retired = prev;
    pq.owns_slowlog = 0;
    pthread_mutex_unlock(&pq.init_mu);
    return NPROF_OK;
}

static void record(nprof_runtime *rt, const pq_done *d)
{
    uint64_t duration_ns =
        d->end_ticks > d->start_ticks ? nprof_ticks_to_ns(d->end_ticks - d->start_ticks) : 0;
    nprof_profile *p = nprof_current();
    nprof_query q = {.sql = d->sql,
                     .sql_len = d->sql_len,
                     .params = d->params,
                     .params_len = d->params_len,
                     .params_hash = d->params_hash,
                     .duration_ns = duration_ns,
                     .start_ticks = d->start_ticks,
                     .fingerprint = d->fp};
    char norm[PQ_NORM_BUF];
    uint64_t text_hash = 0;
    /* The profile's shape of the query, on the stack, also gives the fingerprint that the
     * per-fingerprint table and the slow-query log need. */
    if (p && nprof__sql_kept(p->rt, d->sql_len) <= PQ_NORM_INPUT_MAX)
        nprof__sql_shape_query(p->rt, &q, norm, sizeof norm, &text_hash);
    uint64_t fp = q.fingerprint ? q.fingerprint : fingerprint(d->sql, d->sql_len);
    if (nprof_querystats_add(pq.qs, fp, d->sql, d->sql_len, duration_ns, d->rows, d->error) ==
        NPROF_EINVAL)
        COUNT(failures);
    /* Logged here first, then marked, so that the middleware's log
     * (nprof_slowlog_enqueue_profile) does not store the query a second time. */
    if (duration_ns > rt->slow_query_ns && offer_slowlog(d, fp, duration_ns, p))
        q.flags |= NPROF_QUERY_LOGGED;
    if (p) {
        q.fingerprint = fp;
        int rc = nprof__sql_record_hashed(p, &q, text_hash);
        if (rc == NPROF_OK || rc == NPROF_ELIMIT)
            COUNT(in_profile);
    }
    COUNT(recorded);
}

/* A synchronous call that was made: `fp` is the fingerprint when known (a prepared
 * statement's, or taken by nprof_pq_overlap()), else 0; `stmt`: `sql` is a prepared
 * statement's text, not one to look at for SQL-level PREPARE and EXECUTE. */
typedef struct pq_sync {
    const char *sql;
    size_t len;
    uint64_t fp;
    int stmt;
    pq_params params;
    uint64_t start_ticks;
} pq_sync;

/* Records synchronous call `call`, which ran until now with result `res`. */
static void record_sync(nprof_runtime *rt, PGconn *conn, const pq_sync *call, const PGresult *res)
{
    uint64_t end = nprof_ticks();
    const char *sql = call->sql;
    size_t len = call->len;
    uint64_t fp = call->fp;
    const pq_params *pp = &call->params;
    if (!conn || !sql || conn_excluded(rt, conn))
        return;
    int error = result_error(res);
    const char *args = NULL;
    size_t args_len = 0;
    if (!call->stmt)
        sql_level_apply(rt, conn, !error, &sql, &len, &fp, &args, &args_len);
    char params[PQ_PARAMS_BUF];
    size_t plen = 0;
    /* A summary only where one is kept (the profile may not want it: production mode). */
    nprof_profile *p = nprof_current();
    if (atomic_load_explicit(&pq.slowlog, memory_order_relaxed) ||
        (p && nprof_profile_wants_params(
                  p, end > call->start_ticks ? nprof_ticks_to_ns(end - call->start_ticks) : 0,
                  error)))
        plen = args ? args_redacted(args, args_len, params) : params_redacted(rt, params, pp);
    pq_done d = {.sql = sql,
                 .sql_len = len,
                 .fp = fp,
                 .params = plen ? params : NULL,
                 .params_len = plen,
                 .params_hash = params_identity(pp, args, args_len),
                 .start_ticks = call->start_ticks,
                 .end_ticks = end,
                 .rows = res ? result_rows(res) : 0,
                 .error = error};
    record(rt, &d);
}

/* ---- asynchronous queries ------------------------------------------------------------------- */

/* A query sent without waiting: its kind (PQ_QUERY, PQ_PREPARE, PQ_SYNC), its text or the
 * name of the prepared statement it executes, its parameters, when it was sent. */
typedef struct pq_send {
    int kind;
    const char *sql;
    const char *name;
    pq_params params;
    uint64_t send_ticks;
} pq_send;

/* The text an execution of a statement never seen prepared is recorded as ("EXECUTE name",
 * the name cut at 128 bytes); returns its length.  `text` holds PQ_UNKNOWN_STMT_BUF bytes. */
#define PQ_UNKNOWN_STMT_BUF 160
static size_t unknown_stmt_text(const char *name, char *text)
{
    COUNT(unknown_statements);
    int k = snprintf(text, PQ_UNKNOWN_STMT_BUF, "EXECUTE %.*s", 128, name);
    return k < 0 ? 0 : (size_t)k;
}

/* `e`'s text for an execution of prepared statement `name`: its text (copied) when the
 * statement was seen prepared, else recorded by name.  0 without memory. */
static int pending_stmt_text(nprof_runtime *rt, pq_conn *c, const char *name, pq_pending *e)
{
    size_t nlen = strlen(name);
    pq_stmt *st = stmt_find(c, name, nlen, name_hash(name, nlen));
    if (st && st->sql) {
        e->sql = dup_bytes(rt, st->sql, st->sql_len);
        e->sql_len = e->sql_alloc = st->sql_len;
        e->fp = st->fp;
    } else { /* prepared before we saw the connection, or not kept */
        char text[PQ_UNKNOWN_STMT_BUF];
        size_t k = unknown_stmt_text(name, text);
        e->sql = dup_bytes(rt, text, k);
        e->sql_len = e->sql_alloc = k;
    }
    return e->sql != NULL;
}

/* `e`'s text for query `sql` (a SQL-level EXECUTE as its statement's text, with *args its
 * argument list), cut at the profile's bound, with its fingerprint.  0 without memory. */
static int pending_sql_text(nprof_runtime *rt, PGconn *conn, const char *sql, pq_pending *e,
                            const char **args, size_t *args_len)
{
    size_t len = strlen(sql);
    uint64_t fp = 0;
    sql_level_apply(rt, conn, 1, &sql, &len, &fp, args, args_len);
    size_t kept = nprof__sql_kept(rt, len);
    e->fp = fp ? fp : fingerprint(sql, len);
    e->sql = dup_bytes(rt, sql, kept);
    e->sql_len = e->sql_alloc = kept;
    return e->sql != NULL;
}

/* `e`'s parameter summary (redacted), when someone will read it: a current profile or the
 * slow-query log. */
static void pending_params(nprof_runtime *rt, pq_pending *e, const pq_params *pp,
                           const char *args, size_t args_len)
{
    if ((pp->n <= 0 && !args) ||
        !(nprof_current() || atomic_load_explicit(&pq.slowlog, memory_order_relaxed)))
        return;
    char params[PQ_PARAMS_BUF];
    size_t plen = args ? args_redacted(args, args_len, params) : params_redacted(rt, params, pp);
    e->params = dup_bytes(rt, params, plen);
    e->params_len = e->params ? plen : 0;
}

/* Adds a query in flight to `conn`; its text (sql, or statement `name`'s text) is copied. */
static void pending_push(nprof_runtime *rt, PGconn *conn, const pq_send *send)
{
    pq_conn *c = conn_get(rt, conn, 1);
    if (!c || c->excluded)
        return;
    if (send->kind == PQ_PREPARE) /* at send time: later sends may execute it */
        stmt_remember(rt, c, send->name, strlen(send->name), send->sql, strlen(send->sql));
    if (c->untracked || c->count == NPROF_PQ_MAX_PENDING) {
        /* Not tracked, and neither is anything sent after it until its results are read:
         * results arrive in order, and must not be taken for a tracked statement's. */
        COUNT(dropped_pending);
        c->untracked++;
        return;
    }
    pq_pending *e = &c->q[(c->head + c->count) % NPROF_PQ_MAX_PENDING];
    *e = (pq_pending){.kind = send->kind, .send_ticks = send->send_ticks};
    if (send->kind == PQ_QUERY) {
        const char *args = NULL;
        size_t args_len = 0;
        int ok = send->sql ? pending_sql_text(rt, conn, send->sql, e, &args, &args_len)
                           : pending_stmt_text(rt, c, send->name, e);
        if (!ok) {
            COUNT(failures);
            pending_clear(rt, e);
            return;
        }
        pending_params(rt, e, &send->params, args, args_len);
        e->params_hash = params_identity(&send->params, args, args_len);
    }
    c->count++;
}

/* The oldest query in flight ends now: recorded (unless it is a PREPARE or was aborted). */
static void pending_finish(nprof_runtime *rt, pq_conn *c, uint64_t end)
{
    pq_pending *e = &c->q[c->head];
    uint64_t start = e->send_ticks > c->last_end_ticks ? e->send_ticks : c->last_end_ticks;
    c->last_end_ticks = end;
    if (e->kind == PQ_QUERY) {
        if (e->aborted) {
            COUNT(aborted);
        } else {
            pq_done d = {.sql = e->sql,
                         .sql_len = e->sql_len,
                         .fp = e->fp,
                         .params = e->params,
                         .params_len = e->params_len,
                         .params_hash = e->params_hash,
                         .start_ticks = start,
                         .end_ticks = end,
                         .rows = e->rows,
                         .error = e->error};
            record(rt, &d);
        }
    }
    pending_clear(rt, e);
    c->head = (c->head + 1) % NPROF_PQ_MAX_PENDING;
    c->count--;
}

/* Accounts for `res` (NULL included), just returned by PQgetResult on connection `c`. */
static void pending_result(nprof_runtime *rt, PGconn *conn, pq_conn *c, const PGresult *res)
{
    uint64_t now = nprof_ticks();
    if (!c->count) {
        /* Statements sent while the ring was full: a sync point ends with its own result,
         * a statement with the NULL after its results. */
        if (!c->untracked)
            return;
        if (res && PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            c->untracked_results = 1;
            return;
        }
        if (res || c->untracked_results || PQpipelineStatus(conn) == PQ_PIPELINE_OFF) {
            c->untracked--;
            c->untracked_results = 0;
        }
        return;
    }
    pq_pending *e = &c->q[c->head];
    if (!res) {
        /* In pipeline mode a NULL before any result only says nothing has arrived yet. */
        if (e->kind != PQ_SYNC && (e->results || PQpipelineStatus(conn) == PQ_PIPELINE_OFF))
            pending_finish(rt, c, now);
        return;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
        /* Everything up to the sync point is over (statements whose NULL we did not see). */
        while (c->count) {
            int was_sync = c->q[c->head].kind == PQ_SYNC;
            pending_finish(rt, c, now);
            if (was_sync)
                break;
        }
        return;
    }
    if (e->kind == PQ_SYNC) /* a result for a statement we did not track: ignore it */
        return;
    e->results++;
    e->rows += result_rows(res);
    if (st == PGRES_PIPELINE_ABORTED)
        e->aborted = 1;
    else if (result_error(res))
        e->error = 1;
}

/* ---- the wrappers --------------------------------------------------------------------------- */

/* Offers the text of a synchronous call to nprof_pq_overlap() (without a current profile:
 * with one, the text is normalized after the call anyway, and the fingerprint comes with
 * it); returns its length. */
static inline size_t overlap_begin(const char *sql)
{
    size_t len = sql ? strlen(sql) : 0;
    if (sql && !nprof_current()) {
        tls.ov_sql = sql;
        tls.ov_len = len;
        tls.ov_fp = 0;
    }
    return len;
}

/* The fingerprint nprof_pq_overlap() took (0: none), and the offer withdrawn. */
static inline uint64_t overlap_end(void)
{
    uint64_t fp = tls.ov_fp;
    tls.ov_sql = NULL;
    tls.ov_fp = 0;
    return fp;
}

void nprof_pq_overlap(void)
{
    if (tls.ov_sql && !tls.ov_fp)
        tls.ov_fp = fingerprint(tls.ov_sql, tls.ov_len);
}

PGresult *nprof_pq_exec(PGconn *conn, const char *query)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    size_t len = rt ? overlap_begin(query) : 0;
    PGresult *r = PQexec(conn, query);
    if (rt)
        record_sync(rt, conn, &(pq_sync){.sql = query, .len = len, .fp = overlap_end(),
                                         .start_ticks = start}, r);
    pq_leave();
    return r;
}

PGresult *nprof_pq_exec_params(PGconn *conn, const char *command, int nParams,
                               const unsigned int *paramTypes, const char *const *paramValues,
                               const int *paramLengths, const int *paramFormats, int resultFormat)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    size_t len = rt ? overlap_begin(command) : 0;
    PGresult *r = PQexecParams(conn, command, nParams, paramTypes, paramValues, paramLengths,
                               paramFormats, resultFormat);
    if (rt)
        record_sync(rt, conn,
                    &(pq_sync){.sql = command, .len = len, .fp = overlap_end(),
                               .params = {nParams, paramValues, paramLengths, paramFormats},
                               .start_ticks = start}, r);
    pq_leave();
    return r;
}

PGresult *nprof_pq_prepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                           const unsigned int *paramTypes)
{
    nprof_runtime *rt = pq_enter();
    PGresult *r = PQprepare(conn, stmtName, query, nParams, paramTypes);
    if (rt && conn && stmtName && query && PQresultStatus(r) == PGRES_COMMAND_OK) {
        pq_conn *c = conn_get(rt, conn, 1);
        if (c && !c->excluded)
            stmt_remember(rt, c, stmtName, strlen(stmtName), query, strlen(query));
    }
    pq_leave();
    return r;
}

PGresult *nprof_pq_exec_prepared(PGconn *conn, const char *stmtName, int nParams,
                                 const char *const *paramValues, const int *paramLengths,
                                 const int *paramFormats, int resultFormat)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    PGresult *r = PQexecPrepared(conn, stmtName, nParams, paramValues, paramLengths,
                                 paramFormats, resultFormat);
    if (rt && conn && stmtName) {
        size_t nlen = strlen(stmtName);
        pq_sync call = {.stmt = 1, .params = {nParams, paramValues, paramLengths, paramFormats},
                        .start_ticks = start};
        pq_conn *c = atomic_load_explicit(&pq.conns, memory_order_relaxed) ? conn_get(rt, conn, 0) : NULL;
        pq_stmt *st = c ? stmt_find(c, stmtName, nlen, name_hash(stmtName, nlen)) : NULL;
        if (c && c->excluded) {
            /* not recorded */
        } else if (st && st->sql) {
            call.sql = st->sql;
            call.len = st->sql_len;
            call.fp = st->fp;
            record_sync(rt, conn, &call, r);
        } else {
            char text[PQ_UNKNOWN_STMT_BUF];
            call.len = unknown_stmt_text(stmtName, text);
            call.sql = text;
            record_sync(rt, conn, &call, r);
        }
    }
    pq_leave();
    return r;
}

int nprof_pq_send_query(PGconn *conn, const char *query)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    int ok = PQsendQuery(conn, query);
    if (rt && ok == 1 && conn && query)
        pending_push(rt, conn, &(pq_send){.kind = PQ_QUERY, .sql = query, .send_ticks = start});
    pq_leave();
    return ok;
}

int nprof_pq_send_query_params(PGconn *conn, const char *command, int nParams,
                               const unsigned int *paramTypes, const char *const *paramValues,
                               const int *paramLengths, const int *paramFormats, int resultFormat)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    int ok = PQsendQueryParams(conn, command, nParams, paramTypes, paramValues, paramLengths,
                               paramFormats, resultFormat);
    if (rt && ok == 1 && conn && command)
        pending_push(rt, conn,
                     &(pq_send){.kind = PQ_QUERY, .sql = command,
                                .params = {nParams, paramValues, paramLengths, paramFormats},
                                .send_ticks = start});
    pq_leave();
    return ok;
}

int nprof_pq_send_prepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                          const unsigned int *paramTypes)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    int ok = PQsendPrepare(conn, stmtName, query, nParams, paramTypes);
    if (rt && ok == 1 && conn && stmtName && query)
        pending_push(rt, conn, &(pq_send){.kind = PQ_PREPARE, .sql = query, .name = stmtName,
                                          .send_ticks = start});
    pq_leave();
    return ok;
}

int nprof_pq_send_query_prepared(PGconn *conn, const char *stmtName, int nParams,
                                 const char *const *paramValues, const int *paramLengths,
                                 const int *paramFormats, int resultFormat)
{
    nprof_runtime *rt = pq_enter();
    uint64_t start = rt ? nprof_ticks() : 0;
    int ok = PQsendQueryPrepared(conn, stmtName, nParams, paramValues, paramLengths,
                                 paramFormats, resultFormat);
    if (rt && ok == 1 && conn && stmtName)
        pending_push(rt, conn,
                     &(pq_send){.kind = PQ_QUERY, .name = stmtName,
                                .params = {nParams, paramValues, paramLengths, paramFormats},
                                .send_ticks = start});
    pq_leave();
    return ok;
}

PGresult *nprof_pq_get_result(PGconn *conn)
{
    nprof_runtime *rt = pq_enter();
    PGresult *r = PQgetResult(conn);
    if (rt && conn && atomic_load_explicit(&pq.conns, memory_order_relaxed)) {
        pq_conn *c = conn_get(rt, conn, 0);
        if (c && (c->count || c->untracked))
            pending_result(rt, conn, c, r);
    }
    pq_leave();
    return r;
}

int nprof_pq_pipeline_sync(PGconn *conn)
{
    nprof_runtime *rt = pq_enter();
    int ok = PQpipelineSync(conn);
    if (rt && ok == 1 && conn)
        pending_push(rt, conn, &(pq_send){.kind = PQ_SYNC});
    pq_leave();
    return ok;
}

/* Finish and reset forget the connection whether or not this thread records (an excluded
 * thread's connection may have state too); the runtime is only looked at if it exists. */
static void forget(const void *conn)
{
    if (atomic_load_explicit(&pq.state, memory_order_acquire) == 1)
        conn_forget(pq.rt, conn);
}

void nprof_pq_finish(PGconn *conn)
{
    tls.depth++;
    forget(conn);
    PQfinish(conn);
    pq_leave();
}

void nprof_pq_reset(PGconn *conn)
{
    tls.depth++;
    forget(conn);
    PQreset(conn);
    pq_leave();
}

int nprof_pq_reset_start(PGconn *conn)
{
    tls.depth++;
    forget(conn);
    int ok = PQresetStart(conn);
    pq_leave();
    return ok;
}

/* ---- begin/end ------------------------------------------------------------------------------- */

void nprof_pq_begin(nprof_pq_call *call)
{
    nprof_runtime *rt = pq_enter();
    if (call) {
        call->rt = rt;
        call->start_ticks = rt ? nprof_ticks() : 0;
    }
}

void nprof_pq_end(nprof_pq_call *call, PGconn *conn, const char *query, size_t query_len,
                  int nParams, const char *const *paramValues, const int *paramLengths,
                  const int *paramFormats, const PGresult *res)
{
    if (call && call->rt)
        record_sync(call->rt, conn,
                    &(pq_sync){.sql = query, .len = query_len,
                               .params = {nParams, paramValues, paramLengths, paramFormats},
                               .start_ticks = call->start_ticks}, res);
    pq_leave();
}

/* ---- introspection, shutdown, the exit dump ------------------------------------------------ */

/* The counters: one list gives nprof_pq_stats's fields, their introspection names
 * ("stats.pq.<field>", registered with the layer's runtime) and nprof_pq_render_json's keys. */
#define PQ_FIELDS(X)                                                                          \
    X(recorded) X(in_profile) X(failures) X(aborted) X(dropped_conns) X(dropped_pending)      \
    X(dropped_statements) X(unknown_statements) X(conns)

int nprof_pq_get_stats(nprof_pq_stats *out)
{
    if (!out)
        return NPROF_EINVAL;
#define PQ_LOAD(f) .f = atomic_load_explicit(&pq.f, memory_order_relaxed),
    *out = (nprof_pq_stats){PQ_FIELDS(PQ_LOAD)};
#undef PQ_LOAD
    return NPROF_OK;
}

#define PQ_NAME(f) #f,
static const char *const ctl_names[] = {PQ_FIELDS(PQ_NAME)};
#undef PQ_NAME
#define PQ_NAMES (sizeof ctl_names / sizeof ctl_names[0])

static void read_ctl(void *user, nprof_ctl_value *values)
{
    (void)user;
    nprof_pq_stats s;
    nprof_pq_get_stats(&s);
#define PQ_VALUE(f) s.f,
    const uint64_t v[] = {PQ_FIELDS(PQ_VALUE)};
#undef PQ_VALUE
    nprof__ctl_uints(values, v, PQ_NAMES);
}

static const nprof__ctl_provider ctl_provider = {ctl_names, PQ_NAMES, read_ctl};

int nprof_pq_render_json(nprof_buf *out)
{
    if (!out)
        return NPROF_EINVAL;
    if (!pq_runtime())
        return NPROF_ESTATE;
    nprof_ctl_value v[PQ_NAMES];
    read_ctl(NULL, v);
    /* The table renders itself; it goes into the document as one value. */
    nprof_buf table = NPROF_BUF_INIT;
    int rc = nprof_querystats_render_json(pq.qs, 0, &table);
    nprof__jw jw, *j = &jw;
    nprof__jw_init(j, out);
    nprof__tw_check(&j->t, rc);
    nprof__jw_obj(j);
    nprof__jw_key(j, "pq");
    nprof__jw_obj(j);
    for (size_t i = 0; i < PQ_NAMES; i++)
        nprof__jw_ku64(j, ctl_names[i], v[i].u);
    nprof__jw_obj_end(j);
    nprof__jw_key(j, "querystats");
    nprof__jw_raw(j, table.data, table.len);
    nprof__jw_obj_end(j);
    nprof_buf_free(&table);
    return nprof__jw_finish(j);
}

void nprof_pq_shutdown(void)
{
    pthread_mutex_lock(&pq.init_mu);
    if (atomic_load_explicit(&pq.state, memory_order_acquire) == 1) {
        nprof__ctl_unregister(pq.rt, PQ_CTL_PREFIX, &pq);
        for (int i = 0; i < PQ_SHARDS; i++) {
            pq_shard *s = &pq.shard[i];
            for (uint32_t k = 0; k < s->n; k++)
                conn_free(pq.rt, s->c[k]);
            s->n = 0;
            pthread_mutex_destroy(&s->mu);
        }
        atomic_store_explicit(&pq.conns, 0, memory_order_relaxed);
        nprof_slowlog *log = atomic_exchange(&pq.slowlog, NULL);
        if (pq.owns_slowlog)
            nprof_slowlog_close(log, 2000);
        pq.owns_slowlog = 0;
        nprof_slowlog_close(pq.retired, 2000);
        pq.retired = NULL;
        nprof_redactor_destroy(pq.redactor);
        pq.redactor = NULL;
        nprof_querystats_destroy(pq.qs);
        pq.qs = NULL;
        if (pq.owns_rt)
            nprof_runtime_destroy(pq.rt);
        pq.rt = NULL;
    }
    atomic_store_explicit(&pq.state, 0, memory_order_release);
    pthread_mutex_unlock(&pq.init_mu);
}

/* NANOPROF_PQ_DUMP=<file>: the table and the counters, written when the process ends. */
__attribute__((destructor)) static void dump_at_exit(void)
{
    /* The layer's own slow-query log: written out before the process goes (2 s at most). */
    if (atomic_load_explicit(&pq.state, memory_order_acquire) == 1) {
        if (pq.owns_slowlog) {
            nprof_slowlog *log = atomic_exchange(&pq.slowlog, NULL);
            pq.owns_slowlog = 0;
            nprof_slowlog_close(log, 2000);
        }
        nprof_slowlog_close(pq.retired, 2000);
        pq.retired = NULL;
    }
    const char *path = getenv("NANOPROF_PQ_DUMP");
    if (!path || !*path || atomic_load_explicit(&pq.state, memory_order_acquire) != 1)
        return;
    nprof_buf b = NPROF_BUF_INIT;
    if (nprof_pq_render_json(&b) == NPROF_OK) {
        FILE *f = fopen(path, "w");
        if (f) {
            fwrite(b.data, 1, b.len, f);
            fputc('\n', f);
            fclose(f);
        } else {
            fprintf(stderr, "nanoprof: NANOPROF_PQ_DUMP=%s: cannot write\n", path);
        }
    }
    nprof_buf_free(&b);
}
