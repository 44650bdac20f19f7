/*
 * sqlhooks/slowlog.c: the slow-query log's request side: opening and closing a log, the
 * bounded lock-free queue that nprof_slowlog_enqueue() copies entries into, and the counters.
 * The writer thread that drains the queue into PostgreSQL is in slowlog_writer.c, the
 * dashboards' read calls in slowlog_read.c.
 *
 * The queue is Dmitry Vyukov's bounded MPMC queue used with one consumer: an array of
 * fixed-size slots allocated once at open (from the runtime's allocator), each with a
 * sequence number that says whose turn it is.  A producer claims a position with one CAS on
 * enqueue_pos, copies the entry into that slot (text cut at the configured maxima) and
 * publishes it with a release store of the slot's sequence.  A full queue is seen from the
 * slot's sequence without waiting: the entry is dropped and counted.  No lock, no system call
 * (the wall clock is read through the vDSO), no allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nanoprof/clock.h"
#include "nanoprof/sql.h"
#include "runtime/profile.h"
#include "runtime/text.h"
#include "slowlog.h"

/* The log's own bounds: its slots are fixed-size, so its SQL is cut shorter than a
 * profile's (opt.max_sql_bytes is capped at this); everything else the writer needs that no
 * configuration option names. */
#define SLOWLOG_MAX_SQL_BYTES 2048

/* The options that are rows of runtime/config.c's table (slowlog_*, max_params_bytes,
 * max_sql_bytes) taken from `cfg`: one copy serves both the defaults (from nprof_config_init,
 * so the option table is the one place they are written) and nprof_slowlog_options_from_config.
 * normalized_only is left alone: its "auto" needs the production mode (from_config) or the
 * runtime given at open (options_init's -1). */
static void take_config(nprof_slowlog_options *opts, const nprof_config *cfg)
{
    /* A name too long for the options is refused at open, not silently cut here. */
    size_t tlen = strnlen(cfg->slowlog_table, sizeof cfg->slowlog_table);
    if (tlen < sizeof opts->table)
        memcpy(opts->table, cfg->slowlog_table, tlen + 1);
    else
        memset(opts->table, 'x', sizeof opts->table); /* no NUL: set_table() refuses it */
    opts->queue_slots = cfg->slowlog_queue_slots;
    opts->logged = cfg->slowlog_logged;
    opts->explain = cfg->slowlog_explain;
    opts->retention_s = cfg->slowlog_retention_s;
    opts->max_rows = cfg->slowlog_max_rows;
    opts->max_sql_bytes = cfg->max_sql_bytes < SLOWLOG_MAX_SQL_BYTES ? cfg->max_sql_bytes
                                                                     : SLOWLOG_MAX_SQL_BYTES;
    opts->max_params_bytes = cfg->max_params_bytes;
    opts->redact_rules[0] = cfg->slowlog_redact_rule[0] ? cfg->slowlog_redact_rule : NULL;
}

void nprof_slowlog_options_init(nprof_slowlog_options *opts)
{
    if (!opts)
        return;
    /* Only the writer's own knobs are written here; see take_config() for the rest. */
    *opts = (nprof_slowlog_options){
        .runtime = NULL,
        .normalized_only = -1,
        .redact = 1,
        .redact_rules = {NULL},
        .batch_rows = 2000,
        .flush_interval_ms = 20,
        .explain_interval_ms = 60000,
        .explain_timeout_ms = 200,
        .retention_interval_ms = 10000,
        .retention_batch = 1000,
        .reconnect_min_ms = 50,
        .reconnect_max_ms = 5000,
    };
    nprof_config defaults;
    nprof_config_init(&defaults);
    take_config(opts, &defaults);
    opts->redact_rules[0] = NULL; /* the default rule is "", so none; and `defaults` dies here */
}

void nprof_slowlog_options_from_config(nprof_slowlog_options *opts, const nprof_config *cfg)
{
    if (!opts)
        return;
    nprof_slowlog_options_init(opts);
    if (!cfg)
        return;
    take_config(opts, cfg); /* borrows cfg->slowlog_redact_rule: compiled at open */
    /* auto: the configuration's own production mode decides. */
    opts->normalized_only = cfg->slowlog_normalized_only == 0 ? cfg->production != 0
                                                               : cfg->slowlog_normalized_only == 1;
}

/* The counters under the runtime's introspection names "stats.slowlog.<field>" (registered at
 * open when the log has a runtime): one list gives the names and the fields of
 * nprof_slowlog_stats they come from.  last_error is left out: a string would not outlive the
 * read (nprof_slowlog_get_stats has it). */
#define SLOWLOG_CTL_PREFIX "stats.slowlog"
#define SLOWLOG_FIELDS(X)                                                                     \
    X(enqueued) X(dropped) X(written) X(unwritten) X(truncated) X(redactions) X(batches)      \
    X(batch_retries) X(reconnects) X(plans) X(deleted) X(queue_slots) X(queue_depth)          \
    X(connected)
#define SLOWLOG_NAME(field) #field,
#define SLOWLOG_VALUE(field) (uint64_t)st.field,
static const char *const ctl_names[] = {SLOWLOG_FIELDS(SLOWLOG_NAME)};

static void read_ctl(void *user, nprof_ctl_value *values)
{
    nprof_slowlog_stats st;
    if (nprof_slowlog_get_stats(user, &st) != NPROF_OK)
        return;
    const uint64_t v[] = {SLOWLOG_FIELDS(SLOWLOG_VALUE)};
    nprof__ctl_uints(values, v, sizeof v / sizeof v[0]);
}

static const nprof__ctl_provider ctl_provider = {ctl_names, sizeof ctl_names / sizeof ctl_names[0],
                                                 read_ctl};

/* Checks a table name ([A-Za-z0-9_]+, optionally schema.table) and quotes it. */
static int set_table(nprof_slowlog *log, const char *name)
{
    size_t len = strnlen(name, NPROF_SLOWLOG_TABLE_MAX);
    const char *dot = memchr(name, '.', len);
    if (len == 0 || len >= NPROF_SLOWLOG_TABLE_MAX || dot == name || (dot && dot == name + len - 1))
        return nprof__fail(NPROF_EINVAL, "slowlog: bad table name \"%.64s\"", name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || (c == '.' && name + i == dot);
        if (!ok)
            return nprof__fail(NPROF_EINVAL,
                               "slowlog: table name \"%.64s\": only letters, digits, '_' and one '.'",
                               name);
    }
    const char *last = dot ? dot + 1 : name;
    if (dot)
        snprintf(log->qtable, sizeof log->qtable, "\"%.*s\".\"%s\"", (int)(dot - name), name, last);
    else
        snprintf(log->qtable, sizeof log->qtable, "\"%s\"", name);
    /* Index names: the table's own name, cut so that a suffix still fits in 63 bytes. */
    snprintf(log->index_prefix, sizeof log->index_prefix, "%.40s", last);
    return NPROF_OK;
}

static uint64_t round_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

static void free_log(nprof_slowlog *log)
{
    nprof_redactor_destroy(log->redactor);
    if (log->slots)
        nprof__free_cacheline(log->alloc, log->slots, log->slots_bytes);
    if (log->own_alloc_used)
        nprof__alloc_fini(&log->own_alloc);
    free(log->conninfo);
    free(log);
}

int nprof_slowlog_open(nprof_slowlog **out, const char *conninfo, const nprof_slowlog_options *opts)
{
    if (!out)
        return nprof__fail(NPROF_EINVAL, "nprof_slowlog_open: NULL out");
    *out = NULL;
    nprof_slowlog_options defaults;
    if (!opts) {
        nprof_slowlog_options_init(&defaults);
        opts = &defaults;
    }
    if ((!conninfo || !*conninfo) && opts->runtime)
        conninfo = opts->runtime->cfg.slowlog_conninfo;
    if (!conninfo || !*conninfo)
        return nprof__fail(NPROF_EINVAL, "nprof_slowlog_open: no conninfo (argument or opt.slowlog_conninfo)");
    if (opts->queue_slots < 2 || opts->queue_slots > (1u << 24) || opts->max_sql_bytes < 16 ||
        opts->max_sql_bytes > (1u << 20) || opts->max_params_bytes > (1u << 16) || !opts->batch_rows ||
        opts->reconnect_min_ms == 0 || opts->reconnect_max_ms < opts->reconnect_min_ms ||
        opts->normalized_only < -1 || opts->normalized_only > 1)
        return nprof__fail(NPROF_EINVAL, "nprof_slowlog_open: an option is out of range "
                                         "(queue_slots 2..2^24, max_sql_bytes 16..2^20, "
                                         "max_params_bytes <= 2^16, batch_rows > 0, "
                                         "0 < reconnect_min_ms <= reconnect_max_ms)");

    size_t log_size = (sizeof(nprof_slowlog) + NPROF__CACHELINE - 1) & ~(size_t)(NPROF__CACHELINE - 1);
    nprof_slowlog *log = aligned_alloc(NPROF__CACHELINE, log_size);
    if (!log)
        return NPROF_ENOMEM;
    memset(log, 0, log_size);
    log->opts = *opts;
    memset(log->opts.redact_rules, 0, sizeof log->opts.redact_rules); /* borrowed; not kept */
    log->rt = opts->runtime;
    int rc = set_table(log, opts->table);
    if (rc) {
        free(log);
        return rc;
    }
    if (log->rt) {
        log->alloc = &log->rt->alloc;
    } else {
        rc = nprof__alloc_init(&log->own_alloc, NPROF_ALLOCATOR_AUTO);
        if (rc) {
            free(log);
            return rc;
        }
        log->own_alloc_used = 1;
        log->alloc = &log->own_alloc;
    }
    log->conninfo = strdup(conninfo);
    log->normalized_only = opts->normalized_only >= 0 ? opts->normalized_only
                                                      : log->rt ? log->rt->cfg.production : 0;
    log->max_sql = opts->max_sql_bytes;
    log->max_params = opts->max_params_bytes;
    uint64_t cap = round_pow2(opts->queue_slots);
    log->mask = cap - 1;
    log->slot_stride = (sizeof(nprof__slot) + log->max_sql + log->max_params + NPROF__CACHELINE - 1) &
                       ~(size_t)(NPROF__CACHELINE - 1);
    log->slots_bytes = log->slot_stride * (size_t)cap;
    log->slots = log->conninfo ? nprof__alloc_cacheline(log->alloc, log->slots_bytes) : NULL;
    if (!log->slots) {
        free_log(log);
        return NPROF_ENOMEM;
    }
    /* Touch every page now: a first-touch page fault on the request path can wait for the
     * process's memory-map lock, which is blocking in all but name. */
    memset(log->slots, 0, log->slots_bytes);
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&nprof__slowlog_slot(log, i)->seq, i);

    if (opts->redact) {
        nprof_redactor_options ro;
        nprof_redactor_options_init(&ro);
        ro.max_bytes = 0; /* the slot's size is the limit */
        size_t n = 0;
        while (n < NPROF_SLOWLOG_MAX_USER_RULES && opts->redact_rules[n])
            n++;
        ro.rules = opts->redact_rules;
        ro.rule_count = n;
        rc = nprof_redactor_create(&ro, &log->redactor);
        if (rc) {
            free_log(log);
            return rc;
        }
    }
    if (gethostname(log->host, sizeof log->host - 1) != 0)
        snprintf(log->host, sizeof log->host, "unknown");
    log->pid = (int)getpid();
    {
        /* Batch ids are (token << 32) | batch number; the token tells this log's batches from
         * every other writer's, so a retry can ask whether its batch already arrived. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)log->pid << 40) ^
                     (uint64_t)(uintptr_t)log;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        log->writer_token = (x & 0x7fffffffu) | 1u;
    }

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log->cv, &ca);
    pthread_cond_init(&log->ready_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->read_mu, NULL);
    rc = log->rt ? nprof__ctl_register(log->rt, SLOWLOG_CTL_PREFIX, &ctl_provider, log) : NPROF_OK;
    if (rc != NPROF_OK || pthread_create(&log->thread, NULL, nprof__slowlog_writer, log) != 0) {
        if (rc == NPROF_OK)
            nprof__ctl_unregister(log->rt, SLOWLOG_CTL_PREFIX, log);
        pthread_cond_destroy(&log->cv);
        pthread_cond_destroy(&log->ready_cv);
        pthread_mutex_destroy(&log->mu);
        pthread_mutex_destroy(&log->read_mu);
        free_log(log);
        return rc ? rc : nprof__fail(NPROF_EIO, "slowlog: cannot start the writer thread: %s",
                                     strerror(errno));
    }
    log->thread_started = 1;
    *out = log;
    return NPROF_OK;
}

struct timespec nprof__slowlog_deadline(uint32_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

void nprof__slowlog_set_error(nprof_slowlog *log, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log->mu);
    vsnprintf(log->last_error, sizeof log->last_error, fmt, ap);
    /* libpq's messages end with a newline; the stats carry one line. */
    size_t n = strlen(log->last_error);
    while (n && (log->last_error[n - 1] == '\n' || log->last_error[n - 1] == ' '))
        log->last_error[--n] = 0;
    pthread_mutex_unlock(&log->mu);
    va_end(ap);
}

static uint64_t unwritten_count(nprof_slowlog *log)
{
    uint64_t enq = atomic_load(&log->enqueue_pos), done = atomic_load(&log->consumed);
    uint64_t written = atomic_load(&log->written);
    /* consumed - written are rows the writer holds or gave up on; enq - consumed still queued. */
    return enq - done + (done - written);
}

int nprof_slowlog_close(nprof_slowlog *log, uint32_t timeout_ms)
{
    if (!log)
        return NPROF_OK;
    /* First: once this returns no introspection read can reach the log freed below. */
    nprof__ctl_unregister(log->rt, SLOWLOG_CTL_PREFIX, log);
    atomic_store(&log->closing, 1);
    struct timespec deadline = nprof__slowlog_deadline(timeout_ms);
    pthread_mutex_lock(&log->mu);
    log->stop = 1;
    pthread_cond_broadcast(&log->cv);
    pthread_cond_broadcast(&log->ready_cv);
    while (!log->done) {
        if (pthread_cond_timedwait(&log->cv, &log->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (!log->done) {
        /* Out of time: the writer stops where it is.  A statement in flight is cancelled so
         * the join below does not wait for the server. */
        atomic_store(&log->aborting, 1);
        if (log->cancel) {
            char err[128];
            PQcancel(log->cancel, err, sizeof err);
        }
        pthread_cond_broadcast(&log->cv);
    }
    pthread_mutex_unlock(&log->mu);
    if (log->thread_started)
        pthread_join(log->thread, NULL);
    pthread_mutex_lock(&log->read_mu);
    PQfinish(log->read_conn);
    log->read_conn = NULL;
    pthread_mutex_unlock(&log->read_mu);
    int rc = unwritten_count(log) ? NPROF_EIO : NPROF_OK;
    if (rc)
        nprof__fail(rc, "slowlog: %llu entries were not written before close",
                    (unsigned long long)unwritten_count(log));
    pthread_cond_destroy(&log->cv);
    pthread_cond_destroy(&log->ready_cv);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->read_mu);
    free_log(log);
    return rc;
}

void nprof__slowlog_set_ready(nprof_slowlog *log, int ready)
{
    pthread_mutex_lock(&log->mu);
    log->ready = ready;
    pthread_cond_broadcast(&log->ready_cv);
    pthread_mutex_unlock(&log->mu);
}

int nprof_slowlog_wait_ready(nprof_slowlog *log, uint32_t timeout_ms)
{
    if (!log)
        return nprof__fail(NPROF_EINVAL, "nprof_slowlog_wait_ready: NULL log");
    struct timespec deadline = nprof__slowlog_deadline(timeout_ms);
    char err[sizeof log->last_error];
    int rc = NPROF_EIO, timed_out = 0;
    pthread_mutex_lock(&log->mu);
    /* The writer broadcasts each change of `ready` and its exit; close broadcasts too. */
    for (;;) {
        if (log->stop || atomic_load(&log->closing)) {
            rc = NPROF_ESTATE;
            break;
        }
        if (log->ready) {
            rc = NPROF_OK;
            break;
        }
        if (log->done || timed_out)
            break;
        timed_out = pthread_cond_timedwait(&log->ready_cv, &log->mu, &deadline) == ETIMEDOUT;
    }
    memcpy(err, log->last_error, sizeof err);
    pthread_mutex_unlock(&log->mu);
    if (rc == NPROF_ESTATE)
        return nprof__fail(rc, "slowlog: the log is closing");
    if (rc == NPROF_EIO)
        return nprof__fail(rc, "slowlog: not ready after %u ms: %s", timeout_ms,
                           err[0] ? err : "connecting");
    return rc;
}

static inline size_t cut(size_t len, size_t max, uint32_t *flags)
{
    if (NPROF_UNLIKELY(len > max)) {
        *flags |= NPROF__SLOT_TRUNCATED;
        return max;
    }
    return len;
}

/* Copies an optional field of an entry (NULL: absent) into its slot array, cut at `max`
 * without counting as truncated (labels, not the query); marks `has` in *flags when present.
 * Returns the bytes kept. */
static inline size_t put_label(char *dst, const char *src, size_t len, size_t max,
                               uint32_t *flags, uint32_t has)
{
    if (!src)
        return 0;
    *flags |= has;
    size_t n = len < max ? len : max;
    memcpy(dst, src, n);
    return n;
}

int nprof_slowlog_enqueue(nprof_slowlog *log, const nprof_slowlog_entry *e)
{
    if (NPROF_UNLIKELY(!log || !e || (!e->sql && e->sql_len) || (!e->params && e->params_len) ||
                       (!e->method && e->method_len) || (!e->route && e->route_len) ||
                       (!e->request_id && e->request_id_len) ||
                       (!e->callsite && e->callsite_len)))
        return NPROF_EINVAL;
    if (NPROF_UNLIKELY(atomic_load_explicit(&log->closing, memory_order_relaxed)))
        return NPROF_ESTATE;
    uint64_t pos = atomic_load_explicit(&log->enqueue_pos, memory_order_relaxed);
    nprof__slot *s;
    for (;;) {
        s = nprof__slowlog_slot(log, pos);
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&log->enqueue_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            /* The slot still holds an entry of the previous lap: the queue is full. */
            atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
            return NPROF_EFULL;
        } else {
            pos = atomic_load_explicit(&log->enqueue_pos, memory_order_relaxed);
        }
    }

    uint32_t flags = 0;
    size_t n = e->sql_len;
    if (NPROF_UNLIKELY(n > log->max_sql)) {
        n = log->max_sql;
        flags |= NPROF__SLOT_TRUNCATED | NPROF__SLOT_SQL_CUT;
    }
    if (n)
        memcpy(s->text, e->sql, n);
    s->sql_len = (uint32_t)n;
    s->params_len = 0;
    if (e->params) {
        flags |= NPROF__SLOT_HAS_PARAMS;
        char *dst = s->text + log->max_sql;
        if (log->redactor) {
            size_t got = 0;
            int cutp = 0;
            int r = nprof_redactor_apply(log->redactor, e->params, e->params_len, dst, log->max_params, &got, &cutp);
            if (r > 0)
                nprof__counter_add(&log->redactions, (uint64_t)r);
            if (cutp)
                flags |= NPROF__SLOT_TRUNCATED;
            s->params_len = (uint32_t)got;
        } else {
            size_t m = cut(e->params_len, log->max_params, &flags);
            memcpy(dst, e->params, m);
            s->params_len = (uint32_t)m;
        }
    }
    s->method_len = (uint8_t)put_label(s->method, e->method, e->method_len,
                                       NPROF__SLOW_METHOD_MAX, &flags, NPROF__SLOT_HAS_METHOD);
    s->route_len = (uint16_t)put_label(s->route, e->route, e->route_len, NPROF__SLOW_ROUTE_MAX,
                                       &flags, NPROF__SLOT_HAS_ROUTE);
    s->request_id_len = (uint8_t)put_label(s->request_id, e->request_id, e->request_id_len,
                                           NPROF__SLOW_REQUEST_ID_MAX, &flags,
                                           NPROF__SLOT_HAS_REQUEST_ID);
    s->callsite_len = (uint16_t)put_label(s->callsite, e->callsite, e->callsite_len,
                                          NPROF_CALLSITE_MAX, &flags, NPROF__SLOT_HAS_CALLSITE);
    if (NPROF_UNLIKELY(flags & NPROF__SLOT_TRUNCATED))
        nprof__counter_add(&log->truncated, 1);
    s->flags = flags;
    s->duration_ms = e->duration_ms;
    s->fingerprint = e->fingerprint;
    uint64_t ts = e->timestamp_us;
    if (!ts) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now); /* vDSO: no system call */
        ts = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    }
    s->timestamp_us = ts;
    atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
    return NPROF_OK;
}

static void entry_from_info(nprof_slowlog_entry *e, const nprof_profile_info *info)
{
    e->method = info->method;
    e->method_len = info->method_len;
    e->route = info->route_len ? info->route : info->path;
    e->route_len = info->route_len ? info->route_len : info->path_len;
    e->request_id = info->request_id;
    e->request_id_len = info->request_id_len;
}

void nprof_slowlog_entry_set_request(nprof_slowlog_entry *e, const nprof_profile *p)
{
    nprof_profile_info info;
    if (e && p && nprof_profile_get_info(p, &info) == NPROF_OK)
        entry_from_info(e, &info);
}

int nprof_slowlog_enqueue_profile(nprof_slowlog *log, const nprof_profile *p)
{
    if (!log)
        return NPROF_EINVAL;
    nprof_profile_info info;
    int rc = nprof_profile_get_info(p, &info);
    if (rc)
        return rc;
    if (!info.slow_count)
        return 0;
    /* Profile times are on the monotonic time line; the table wants wall-clock time. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t real_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    uint64_t mono_ns = nprof_now_ns();
    int queued = 0;
    nprof_query_info q;
    for (size_t i = 0; nprof_profile_get_query(p, i, &q) == NPROF_OK; i++) {
        if (!q.slow || (q.flags & NPROF_QUERY_LOGGED))
            continue; /* fast, or a database hook sent it to a log already */
        uint64_t end_ns = info.start_ns + q.start_offset_ns + q.duration_ns;
        uint64_t ago_us = mono_ns > end_ns ? (mono_ns - end_ns) / 1000u : 0;
        nprof_slowlog_entry e = {
            .sql = q.sql,
            .sql_len = q.sql_len,
            .params = q.params,
            .params_len = q.params_len,
            .duration_ms = (double)q.duration_ns / 1e6,
            .timestamp_us = real_us > ago_us ? real_us - ago_us : real_us,
            .fingerprint = q.fingerprint,
            .callsite = q.callsite,
            .callsite_len = q.callsite_len,
        };
        entry_from_info(&e, &info);
        if (nprof_slowlog_enqueue(log, &e) == NPROF_OK)
            queued++;
    }
    return queued;
}

static uint64_t counter_sum(nprof__counter *c)
{
    uint64_t sum = 0;
    for (int i = 0; i < NPROF__SHARDS; i++)
        sum += atomic_load_explicit(&c->shard[i].value, memory_order_relaxed);
    return sum;
}

int nprof_slowlog_get_stats(nprof_slowlog *log, nprof_slowlog_stats *out)
{
    if (!log || !out)
        return NPROF_EINVAL;
    memset(out, 0, sizeof *out);
    out->enqueued = atomic_load(&log->enqueue_pos);
    out->dropped = atomic_load(&log->dropped);
    out->written = atomic_load(&log->written);
    out->unwritten = unwritten_count(log);
    out->truncated = counter_sum(&log->truncated);
    out->redactions = counter_sum(&log->redactions);
    out->batches = atomic_load(&log->batches);
    out->batch_retries = atomic_load(&log->batch_retries);
    out->reconnects = atomic_load(&log->reconnects);
    out->plans = atomic_load(&log->plans);
    out->deleted = atomic_load(&log->deleted);
    out->queue_slots = (uint32_t)(log->mask + 1);
    uint64_t consumed = atomic_load(&log->consumed);
    out->queue_depth = out->enqueued > consumed ? (uint32_t)(out->enqueued - consumed) : 0;
    out->connected = atomic_load(&log->connected);
    pthread_mutex_lock(&log->mu);
    memcpy(out->last_error, log->last_error, sizeof out->last_error);
    pthread_mutex_unlock(&log->mu);
    return NPROF_OK;
}
