/*
 * bindings/python/ext/record.c: recording a query from Python: record_sql() and the
 * QueryRecorder the database hooks (nanoprof.db) call around every query.
 *
 * One call per query does everything in C: the text, the parameter summary (redacted with
 * the default rules before anything keeps it), the error, the batch size, the call site when
 * the profile wants one (nanoprof/profile.h: the first query of each shape, and slow ones),
 * the slow-query log when the query was over the recorder's threshold, and the query
 * observer (budgets in tests).  A hook's query must never be changed or failed by the
 * recording: QueryRecorder.finish() swallows what it cannot record and counts it.
 *
 * libnanoprof_pq.so, when preloaded, would record a psycopg2 or psycopg query again from
 * inside libpq.  A sync hook's start() therefore stops the shim on this thread until
 * finish() (nprof_pq_exclude_thread()); async hooks need nothing: the shim records into the
 * thread's current profile, which is never set on an event loop's thread (see ext.h).
 *
 * Held queries.  A query that is not slow, not failed, keeps no parameters and has no
 * observer is only written down in its request (its text object, start, duration, the
 * values' identity, rows) and recorded with the others held when the profile is next read,
 * its spans or phases change, or it ends (nprof_py_request_flush).  The recording is the
 * same; what changes is where it runs: a query's recording touches some 150 lines of code
 * that the driver and the event loop have pushed out of the instruction cache since the
 * last query, and in a batch only the first of them runs cold.  Holding only repeats of the
 * last text (an N+1 loop's) left that code to run cold twice in a request of one loop and
 * one other query (asyncpg's pool reset at release): at the first query and at the other.
 * What cannot wait is the call site of a shape's first query (the frames are gone later):
 * hold() takes it for a text new to the request, before holding it.
 */
#include "ext.h"

#include <string.h>

/* ---- parameter summaries ------------------------------------------------------------------ */

/* A short summary of query parameters ("$1='42', $2=NULL" or "name='x'"); values are cut so
 * the summary stays small; the C layer cuts it again at max_params_bytes. */
#define SUMMARY_MAX 1024
#define VALUE_MAX 64

typedef struct summary {
    char buf[SUMMARY_MAX];
    size_t len;
} summary;

static void put(summary *s, const char *t, size_t n)
{
    if (n > SUMMARY_MAX - s->len)
        n = SUMMARY_MAX - s->len;
    memcpy(s->buf + s->len, t, n);
    s->len += n;
}

static int put_value(summary *s, PyObject *v)
{
    if (v == Py_None) {
        put(s, "NULL", 4);
        return 0;
    }
    if (PyBytes_Check(v) || PyByteArray_Check(v) || PyMemoryView_Check(v)) {
        char t[48];
        Py_ssize_t n = PyObject_Length(v);
        if (n < 0)
            return -1;
        put(s, t, (size_t)snprintf(t, sizeof t, "<binary %zd bytes>", n));
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        /* The commonest parameter (ids): written here, without the str object that
         * str(v) would make, about a tenth of the cost.  Beyond 64 bits: str() below. */
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow && !(x == -1 && PyErr_Occurred())) {
            char t[24], *e = t + sizeof t;
            char *p = nprof_py_decimal(
                e, x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x);
            if (x < 0)
                *--p = '-';
            put(s, p, (size_t)(e - p));
            return 0;
        }
        PyErr_Clear();
    }
    int quoted = PyUnicode_Check(v);
    PyObject *text = quoted ? Py_NewRef(v) : (PyBool_Check(v) || PyLong_Check(v) ||
                                              PyFloat_Check(v))
                                                 ? PyObject_Str(v)
                                                 : PyObject_Repr(v);
    if (!text)
        return -1;
    Py_ssize_t n;
    PyObject *keep;
    const char *t = nprof_py_text(text, &n, &keep, "parameter");
    if (t) {
        size_t cut = (size_t)n > VALUE_MAX ? VALUE_MAX : (size_t)n;
        if (quoted)
            put(s, "'", 1);
        put(s, t, cut);
        if (cut < (size_t)n)
            put(s, "...", 3);
        if (quoted)
            put(s, "'", 1);
    }
    Py_XDECREF(keep);
    Py_DECREF(text);
    return t ? 0 : -1;
}

/* Positional parameters named after their column when the SQL says which ("WHERE email =
 * %s", "INSERT INTO users (name, password) VALUES ($1, $2)"), so the summary reads
 * "password='x'" and the redaction rules, which look for such names, see it. */
#define NAMED_MAX 64

typedef struct param_names {
    size_t used;                 /* entries below this may be named; none from it on */
    const char *name[NAMED_MAX]; /* NULL: the SQL does not say */
    size_t len[NAMED_MAX];
} param_names;

static void name_params(param_names *pn, const char *sql, size_t len)
{
    memset(pn->name, 0, sizeof pn->name);
    pn->used = 0;
    nprof_sql_param_column cols[NAMED_MAX];
    size_t count = 0;
    int rc = nprof_sql_param_columns(sql, len, cols, NAMED_MAX, &count);
    if (rc != NPROF_OK && rc != NPROF_ERANGE)
        return;
    if (count > NAMED_MAX)
        count = NAMED_MAX;
    size_t next = 0; /* the index of the next "?" or "%s" */
    for (size_t i = 0; i < count; i++) {
        const char *t = sql + cols[i].param_offset;
        size_t n = cols[i].param_length;
        size_t idx;
        if (n >= 2 && (t[0] == '$' || t[0] == '?') && t[1] >= '1' && t[1] <= '9') {
            idx = 0; /* $n and ?n: numbered from 1 */
            for (size_t k = 1; k < n && k < 6 && t[k] >= '0' && t[k] <= '9'; k++)
                idx = idx * 10 + (size_t)(t[k] - '0');
            idx--;
        } else if ((n == 1 && t[0] == '?') || (n == 2 && t[0] == '%' && t[1] == 's')) {
            idx = next++;
        } else {
            continue; /* a literal, or a named parameter (%(name)s, :name): a mapping names
                         itself */
        }
        if (idx < NAMED_MAX && cols[i].length) {
            pn->name[idx] = sql + cols[i].offset;
            pn->len[idx] = cols[i].length;
            if (idx >= pn->used)
                pn->used = idx + 1;
        }
    }
}

/* The names found in a query text, remembered per text: a parameterized query is sent with
 * the same text again and again (an ORM's compiled statement, a driver's prepared text), and
 * reading its columns costs a pass over it.  Direct-mapped on the text's Python hash, which
 * str and bytes keep once computed; an entry holds its text, so equal hashes are checked
 * against the text itself. */
#define NAMES_SLOTS 256

typedef struct named_text {
    PyObject *text;              /* strong; NULL: empty */
    Py_hash_t hash;
    size_t used;                 /* param_names.used */
    uint32_t offset[NAMED_MAX];  /* into the text's bytes */
    uint16_t len[NAMED_MAX];     /* 0: unknown */
} named_text;

static named_text *names_cache;

/* Whether `sql` holds a byte that starts a positional parameter marker ($1, ?, ?1, %s).
 * Three memchr calls (vectorized) on a text without one spare the column scan (a full lex,
 * about 60 instructions a byte) and the cache: an ORM's text with its literals inline and a
 * new one each time would miss the cache on every call. */
static int has_marker_byte(const char *sql, size_t len)
{
    return memchr(sql, '$', len) || memchr(sql, '?', len) || memchr(sql, '%', len);
}

static void cached_names(param_names *pn, PyObject *obj, const char *sql, size_t len)
{
    if (!has_marker_byte(sql, len)) {
        pn->used = 0; /* nothing to name: every parameter reads $<n> */
        return;
    }
    Py_hash_t h = -1;
    if ((PyUnicode_CheckExact(obj) || PyBytes_CheckExact(obj)) && len <= UINT32_MAX) {
        h = PyObject_Hash(obj);
        if (h == -1)
            PyErr_Clear();
    }
    if (h == -1 || (!names_cache && !(names_cache = PyMem_Calloc(NAMES_SLOTS, sizeof *names_cache)))) {
        name_params(pn, sql, len);
        return;
    }
    named_text *e = &names_cache[(size_t)h % NAMES_SLOTS];
    int hit = e->text == obj;
    if (!hit && e->text && e->hash == h && Py_TYPE(e->text) == Py_TYPE(obj)) {
        hit = PyObject_RichCompareBool(e->text, obj, Py_EQ) == 1;
        PyErr_Clear();
    }
    if (hit) {
        pn->used = e->used; /* only these are read (a query has a few parameters, not 64) */
        for (size_t i = 0; i < e->used; i++) {
            pn->name[i] = e->len[i] ? sql + e->offset[i] : NULL;
            pn->len[i] = e->len[i];
        }
        return;
    }
    name_params(pn, sql, len);
    Py_XSETREF(e->text, Py_NewRef(obj));
    e->hash = h;
    e->used = pn->used;
    for (size_t i = 0; i < pn->used; i++) {
        int keep = pn->name[i] && pn->len[i] <= UINT16_MAX;
        e->offset[i] = keep ? (uint32_t)(pn->name[i] - sql) : 0;
        e->len[i] = keep ? (uint16_t)pn->len[i] : 0;
    }
}

static int summarize(summary *s, PyObject *params, PyObject *sql_obj, const char *sql,
                     size_t sql_len)
{
    if (PyUnicode_Check(params) || PyBytes_Check(params))
        return put_value(s, params);
    if (PyDict_Check(params)) {
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        for (int first = 1; PyDict_Next(params, &pos, &k, &v) && s->len < SUMMARY_MAX; first = 0) {
            PyObject *ks = PyObject_Str(k);
            Py_ssize_t n;
            PyObject *keep;
            const char *t = ks ? nprof_py_text(ks, &n, &keep, "parameter name") : NULL;
            if (t) {
                if (!first)
                    put(s, ", ", 2);
                put(s, t, (size_t)n);
                put(s, "=", 1);
                Py_XDECREF(keep);
            }
            Py_XDECREF(ks);
            if (!t || put_value(s, v) < 0)
                return -1;
        }
        return 0;
    }
    PyObject *seq = PySequence_Fast(params, "params must be a sequence, a mapping or None");
    if (!seq)
        return -1;
    param_names pn;
    pn.used = 0;
    if (PySequence_Fast_GET_SIZE(seq))
        cached_names(&pn, sql_obj, sql, sql_len);
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && s->len < SUMMARY_MAX; i++) {
        if (i)
            put(s, ", ", 2);
        if ((size_t)i < pn.used && pn.name[i]) {
            put(s, pn.name[i], pn.len[i]);
            put(s, "=", 1);
        } else {
            /* "$<i+1>=", written by hand: snprintf costs more than the rest of a value. */
            char t[24], *e = t + sizeof t;
            e[-1] = '=';
            char *d = nprof_py_decimal(e - 1, (unsigned long long)i + 1);
            *--d = '$';
            put(s, d, (size_t)(e - d));
        }
        if (put_value(s, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* The default redaction rules, made once.  Without them (PCRE2 failed to compile, out of
 * memory) parameter summaries are left out rather than kept raw. */
static nprof_redactor *redactor;
static int redactor_failed;

/* The redacted summary of `params` (of query `sql`) into `out` (SUMMARY_MAX bytes); its
 * length, 0 when there is none.  -1 with an exception when a parameter could not be turned into text. */
static Py_ssize_t params_summary(PyObject *params, PyObject *sql_obj, const char *sql,
                                 size_t sql_len, char *out)
{
    if (!params || params == Py_None)
        return 0;
    if (!redactor && !redactor_failed && nprof_redactor_create(NULL, &redactor) != NPROF_OK)
        redactor_failed = 1;
    summary s;
    s.len = 0;
    if (summarize(&s, params, sql_obj, sql, sql_len) < 0)
        return -1;
    size_t n = 0;
    if (!redactor || nprof_redactor_apply(redactor, s.buf, s.len, out, SUMMARY_MAX, &n, NULL) < 0)
        return 0;
    return (Py_ssize_t)n;
}

/* ---- the identity of the parameter values ------------------------------------------------- */

/* Folds the hash of `item` into `h`; 0 when the item has no hash. */
static int fold_hash(uint64_t *h, PyObject *item)
{
    Py_hash_t v = PyObject_Hash(item);
    if (v == -1) {
        PyErr_Clear();
        return 0;
    }
    *h = (*h ^ (uint64_t)v) * 0xff51afd7ed558ccdull;
    *h ^= *h >> 33;
    return 1;
}

/* The hashes of `n` items folded in order, or 0 when one of them has no hash. */
static inline uint64_t fold_items(PyObject *const *items, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull + (uint64_t)n;
    for (Py_ssize_t i = 0; i < n && h; i++)
        if (!fold_hash(&h, items[i]))
            h = 0;
    return h;
}

/* A container's values hashed one by one (a list's items, a dict's keys and values, any
 * other sequence), or 0 when one of them has no hash. */
static NPROF__NOINLINE uint64_t items_identity(PyObject *params)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    if (PyDict_Check(params)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(params, &pos, &k, &v))
            if (!fold_hash(&h, k) || !fold_hash(&h, v))
                return 0;
        return h;
    }
    PyObject *seq = PySequence_Fast(params, "");
    if (!seq) {
        PyErr_Clear();
        return 0;
    }
    h = fold_items(PySequence_Fast_ITEMS(seq), PySequence_Fast_GET_SIZE(seq));
    Py_DECREF(seq);
    return h;
}

/* An identity that is 0 (a value without a hash) made unlike any other. */
static inline uint64_t identity_or_unlike(uint64_t h)
{
    static uint64_t unlike_any;
    return h ? h : 0xA5A5000000000000ull ^ ++unlike_any;
}

/* What tells a query's parameter values apart (nprof_query.params_hash), so that exact
 * duplicates (same text, same values) are counted by value: the summary is left out in
 * production mode, and cut and redacted where it is kept, so different values could read
 * the same.  Python's own hash of the parameters: a tuple of numbers and strings costs a
 * few dozen instructions.  A list or a dict (which have no hash) is hashed item by item,
 * without the TypeError that asking for its hash would build; a value with no hash at all
 * makes the query unlike any other, so that a duplicate can go uncounted but none is
 * reported falsely.  0 for no parameters. */
NPROF__HOT_PATH
static uint64_t params_identity(PyObject *params)
{
    if (!params || params == Py_None)
        return 0;
    uint64_t h;
    if (PyTuple_CheckExact(params)) {
        /* A driver's positional parameters (asyncpg's *args): folded here, as a list's
         * are, rather than through tuplehash, whose lines were one more cold stop of
         * every query. */
        h = fold_items(&PyTuple_GET_ITEM(params, 0), PyTuple_GET_SIZE(params));
    } else if (PyList_Check(params) || PyDict_Check(params)) {
        h = items_identity(params);
    } else {
        Py_hash_t v = PyObject_Hash(params);
        if (NPROF_LIKELY(v != -1)) {
            h = (uint64_t)v;
        } else {
            PyErr_Clear();
            h = items_identity(params);
        }
    }
    return identity_or_unlike(h);
}

/* The identity of a query's parameters: an object's, or that of values held one by one,
 * which fold as the tuple of them would. */
NPROF__HOT_PATH
static uint64_t query_identity(const nprof_py_query_params *p)
{
    if (p->obj)
        return params_identity(p->obj);
    return p->n ? identity_or_unlike(fold_items(p->item, p->n)) : 0;
}

/* ---- the text of a query, an error -------------------------------------------------------- */

/* The query's text: str and bytes-likes as they are; anything else through str() (a hook
 * that could not turn a driver's query object into text), or its type's name. */
NPROF__HOT_PATH
static const char *query_text(PyObject *sql, Py_ssize_t *len, PyObject **keep)
{
    const char *t = NULL;
    if (PyUnicode_Check(sql) || PyBytes_Check(sql) || PyByteArray_Check(sql) ||
        PyMemoryView_Check(sql)) {
        t = nprof_py_text(sql, len, keep, "sql");
    } else {
        PyObject *s = PyObject_Str(sql);
        if (s) {
            t = nprof_py_text(s, len, keep, "sql");
            if (t && !*keep) {
                *keep = s; /* the UTF-8 lives in `s` */
                return t;
            }
            Py_DECREF(s);
        }
    }
    if (!t) {
        PyErr_Clear();
        *keep = PyUnicode_FromFormat("<query of type %.100s>", Py_TYPE(sql)->tp_name);
        t = *keep ? PyUnicode_AsUTF8AndSize(*keep, len) : NULL;
        if (!t) {
            PyErr_Clear();
            *len = 0;
            t = "";
        }
    }
    return t;
}

/* "TypeName: message" of an exception, or the text of a str; NULL for None.  New ref. */
static PyObject *error_text(PyObject *error)
{
    if (!error || error == Py_None)
        return NULL;
    if (PyUnicode_Check(error))
        return Py_NewRef(error);
    PyObject *msg = PyObject_Str(error);
    PyObject *t = msg ? PyUnicode_FromFormat("%s: %U", Py_TYPE(error)->tp_name, msg) : NULL;
    Py_XDECREF(msg);
    if (!t) {
        PyErr_Clear();
        t = PyUnicode_FromString(Py_TYPE(error)->tp_name);
    }
    return t;
}

/* ---- call sites --------------------------------------------------------------------------- */

/* What nprof_query.callsite points at: the call site is looked up once per query, when the
 * profile asks, and kept for the slow-query log and the observer; a held query's was looked
 * up when it was held (hold). */
static size_t site_get(nprof_py_site *s)
{
    if (!s->done) {
        s->len = nprof_py_callsite_write(s->buf, sizeof s->buf);
        s->done = 1;
    }
    return s->len;
}

static size_t site_callback(void *user, char *buf, size_t cap)
{
    nprof_py_site *s = user;
    size_t n = site_get(s);
    if (n > cap)
        n = cap;
    memcpy(buf, s->buf, n);
    return n;
}

/* ---- counters and the observer ------------------------------------------------------------ */

/* Process-wide, under the GIL. */
static struct {
    unsigned long long recorded, in_request, slow_logged, slow_dropped, failures, held;
} counts;

static PyObject *observer;           /* set_query_observer(), or NULL */
static PyTypeObject *query_event_type; /* QueryEvent */

static NPROF__RARE void observe(const char *sql, size_t sql_len, uint64_t duration_ns,
                                const char *params, size_t params_len, uint32_t rows,
                                PyObject *error, nprof_py_site *where, int in_request)
{
    char norm[4096];
    size_t norm_len = 0;
    uint64_t fp = 0;
    int rc = nprof_sql_shape(sql, sql_len, NPROF_SQL_QMARK, norm, sizeof norm, &norm_len, &fp);
    if (rc != NPROF_OK)
        norm_len = rc == NPROF_ERANGE ? sizeof norm - 1 : 0;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fp);
    size_t wl = site_get(where);
    PyObject *ev = PyStructSequence_New(query_event_type);
    if (!ev) {
        PyErr_WriteUnraisable(observer);
        return;
    }
    PyObject *items[9] = {
        nprof_py_str(sql, sql_len),
        nprof_py_str(norm, norm_len),
        PyUnicode_FromStringAndSize(hex, 16),
        PyLong_FromUnsignedLongLong(duration_ns),
        params_len ? nprof_py_str(params, params_len) : Py_NewRef(Py_None),
        PyLong_FromUnsignedLong(rows),
        error ? Py_NewRef(error) : Py_NewRef(Py_None),
        wl ? nprof_py_str(where->buf, wl) : Py_NewRef(Py_None),
        PyBool_FromLong(in_request),
    };
    int ok = 1;
    for (int i = 0; i < 9; i++) {
        ok &= items[i] != NULL;
        PyStructSequence_SET_ITEM(ev, i, items[i] ? items[i] : Py_NewRef(Py_None));
    }
    if (!ok) {
        Py_DECREF(ev);
        PyErr_WriteUnraisable(observer);
        return;
    }
    /* The observer may replace itself while it runs. */
    PyObject *fn = Py_NewRef(observer);
    PyObject *r = PyObject_CallOneArg(fn, ev);
    if (!r)
        PyErr_WriteUnraisable(fn);
    Py_XDECREF(r);
    Py_DECREF(fn);
    Py_DECREF(ev);
}

/* ---- one query ---------------------------------------------------------------------------- */

typedef struct one_query {
    PyObject *sql, *error;
    nprof_py_query_params params;
    nprof_py_request *req; /* the request it ran in, or NULL */
    uint64_t start_ticks;
    uint64_t duration_ns;
    uint32_t rows;
} one_query;

/* The slow-query log's entry for a query the profile recorded as `q` (its parameters and
 * call site included); out of line: one query in many is slow. */
static NPROF__RARE void log_slow(nprof_slowlog *log, nprof_profile *p, const nprof_query *q,
                                    nprof_py_site *where)
{
    nprof_slowlog_entry e = {
        .sql = q->sql,
        .sql_len = q->sql_len,
        .params = q->params,
        .params_len = q->params_len,
        .duration_ms = (double)q->duration_ns / 1e6,
        .fingerprint = nprof_sql_fingerprint(q->sql, q->sql_len),
    };
    size_t wl = site_get(where);
    e.callsite = wl ? where->buf : NULL;
    e.callsite_len = wl;
    nprof_slowlog_entry_set_request(&e, p);
    if (nprof_slowlog_enqueue(log, &e) == NPROF_OK)
        counts.slow_logged++;
    else
        counts.slow_dropped++;
}

/* The summary of the parameters into `params` (SUMMARY_MAX bytes), its length; a parameter
 * without a text form (its __repr__ raised) leaves a note instead, and the query is still
 * recorded.  Out of line: production mode asks for it on one request in sample_every. */
static NPROF__NOINLINE size_t query_params(const one_query *a, const char *text, size_t len,
                                             char *params)
{
    PyObject *values = nprof_py_query_params_object(&a->params);
    Py_ssize_t plen = values ? params_summary(values, a->sql, text, len, params) : -1;
    Py_XDECREF(values);
    if (plen >= 0)
        return (size_t)plen;
    PyErr_Clear();
    static const char unprintable[] = "<parameters without a text form>";
    memcpy(params, unprintable, sizeof unprintable - 1);
    return sizeof unprintable - 1;
}

/* Counts what nprof_sql_record() into a request returned (a query past max_queries is still
 * counted by the profile). */
NPROF__HOT_PATH
static void count_into_request(int rc)
{
    if (NPROF_LIKELY(rc == NPROF_OK || rc == NPROF_ELIMIT))
        counts.in_request++;
    else
        counts.failures++;
}

/* Whether the profile of `r` (NULL: no request) wants the parameter summary of a query that
 * took `duration_ns`: nprof_profile_wants_params(), from the answer the request read when
 * it began (r->params_from_ns), so that a query reads neither the profile's line nor the
 * runtime's for it. */
NPROF__HOT_PATH
static int params_wanted(const nprof_py_request *r, uint64_t duration_ns, int failed)
{
    return !r || !r->p || failed || duration_ns >= r->params_from_ns;
}

/* Is `sql` the text of a query `r` holds now? */
NPROF__HOT_PATH
static int held_text(const nprof_py_request *r, PyObject *sql)
{
    for (uint32_t i = 0; i < r->held_count; i++)
        if (r->held[i].sql == sql)
            return 1;
    return 0;
}

/* Holds `a` back in `r` instead of recording it now: not slow, not failed, its parameters
 * not kept, nobody watching, its text a str or bytes.  A text that the request holds now or
 * recorded last is a repeat, whose shape's first query has its call site already.  Any
 * other may be the first of its shape, whose call site the profile will ask for when it is
 * recorded: that is taken now, while the frames that issued the query still run, into one of
 * the request's NPROF_PY_HELD_SITES slots; with none left, the query is recorded now (a
 * request whose queries each have another text, literals written into them, pays for a few
 * call sites it did not need, not for one a query).  1 when held. */
NPROF__HOT_PATH
static int hold(nprof_py_request *r, const one_query *a, int to_log)
{
    if (to_log || observer || !a->start_ticks || r->sampled ||
        r->held_count == NPROF_PY_HELD_MAX || (a->error && a->error != Py_None) ||
        params_wanted(r, a->duration_ns, 0))
        return 0;
    int32_t site = -1;
    if (a->sql != r->repeat_text && !held_text(r, a->sql)) {
        if (r->sites_used == NPROF_PY_HELD_SITES ||
            (!PyUnicode_CheckExact(a->sql) && !PyBytes_CheckExact(a->sql)))
            return 0;
        site = (int32_t)r->sites_used++;
        r->sites[site].done = 0;
        site_get(&r->sites[site]);
        Py_XSETREF(r->repeat_text, Py_NewRef(a->sql));
    }
    nprof_py_held *h = &r->held[r->held_count++];
    h->sql = Py_NewRef(a->sql);
    h->start_ticks = a->start_ticks;
    h->duration_ns = a->duration_ns;
    h->params_hash = query_identity(&a->params);
    h->rows = a->rows;
    h->site = site;
    return 1; /* counted when recorded (nprof_py_request_record_held): one global's line less
                 to fetch at every query */
}

NPROF__HOT_PATH
void nprof_py_request_record_held(nprof_py_request *r)
{
    uint32_t n = r->held_count;
    r->held_count = 0;
    if (r->p) { /* with no profile (the request is over) they are only let go */
        counts.recorded += n;
        counts.held += n;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    for (uint32_t i = 0; i < n; i++) {
        nprof_py_held *h = &r->held[i];
        if (r->p) {
            Py_ssize_t len;
            PyObject *keep = NULL;
            const char *text = query_text(h->sql, &len, &keep);
            nprof_query q = {
                .sql = text,
                .sql_len = (size_t)len,
                .duration_ns = h->duration_ns,
                .start_ticks = h->start_ticks,
                .batch_rows = h->rows,
                .params_hash = h->params_hash,
                .callsite = h->site >= 0 ? site_callback : NULL,
                .callsite_user = h->site >= 0 ? &r->sites[h->site] : NULL,
            };
            count_into_request(nprof_sql_record(r->p, &q));
            Py_XDECREF(keep);
        }
        Py_CLEAR(h->sql);
    }
    PyErr_Restore(type, value, tb);
}

/* Records `a` where it belongs; `log` and `threshold_ns` from the recorder (log NULL: none).
 * 1 when recorded into a request, 0 when not, -1 with an exception (for record_sql(), which
 * reports bad arguments; the hooks swallow it).  What every query does is written first and
 * the rest (parameters, an error, the slow-query log, the observer) is marked unlikely, so
 * that the common path stays a few cache lines long: this runs between a driver's own code
 * and the application's, with its lines pushed out of the cache since the last query. */
NPROF__HOT_PATH
static int record_query(const one_query *a, nprof_slowlog *log, uint64_t threshold_ns)
{
    nprof_py_request *r = a->req;
    nprof_profile *p = r ? r->p : NULL;
    int to_log = NPROF_UNLIKELY(log != NULL) && a->duration_ns >= threshold_ns;
    if (!p && !to_log && NPROF_LIKELY(!observer))
        return 0;
    if (p) {
        if (hold(r, a, to_log))
            return 1;
        nprof_py_request_flush(r);
    }
    Py_ssize_t len;
    PyObject *keep = NULL;
    const char *text = query_text(a->sql, &len, &keep);
    char params[SUMMARY_MAX];
    /* A summary only where it will be read: the profile keeps it (production mode keeps it
     * for the requests it stores, and for slow and failed queries), the slow-query log, or
     * an observer (a query budget lists it). */
    int failed = NPROF_UNLIKELY(a->error && a->error != Py_None);
    int wanted = to_log || observer || params_wanted(r, a->duration_ns, failed);
    int any = a->params.obj ? a->params.obj != Py_None : a->params.n > 0;
    size_t plen = wanted && any ? query_params(a, text, (size_t)len, params) : 0;
    PyObject *err = NULL;
    Py_ssize_t elen = 0;
    const char *etext = NULL;
    if (failed) {
        err = error_text(a->error);
        etext = err ? PyUnicode_AsUTF8AndSize(err, &elen) : NULL;
        if (err && !etext) {
            PyErr_Clear();
            Py_CLEAR(err);
        }
    }
    nprof_py_site where;
    where.done = 0;
    nprof_query q = {
        .sql = text,
        .sql_len = (size_t)len,
        .params = plen ? params : NULL,
        .params_len = plen,
        .duration_ns = a->duration_ns,
        .start_ticks = a->start_ticks,
        .batch_rows = a->rows,
        .error = etext,
        .error_len = (size_t)elen,
        .callsite = site_callback,
        .callsite_user = &where,
        .flags = to_log ? NPROF_QUERY_LOGGED : 0,
    };
    int rc = NPROF_OK;
    if (p) {
        q.params_hash = query_identity(&a->params);
        rc = nprof_sql_record(p, &q);
        count_into_request(rc);
        /* A hook's query (record_sql() has no start, so no begin mark): into the sampled
         * call stacks too, at the frames that issued it. */
        if (a->start_ticks)
            nprof_py_sampler_query(p, text, (size_t)len, a->duration_ns);
        if (a->sql != r->repeat_text && (PyUnicode_CheckExact(a->sql) || PyBytes_CheckExact(a->sql)))
            Py_XSETREF(r->repeat_text, Py_NewRef(a->sql));
    }
    if (to_log)
        log_slow(log, p, &q, &where);
    counts.recorded++;
    if (NPROF_UNLIKELY(observer != NULL))
        observe(text, (size_t)len, a->duration_ns, q.params, q.params_len, a->rows, err, &where,
                p != NULL);
    Py_XDECREF(keep);
    Py_XDECREF(err);
    if (NPROF_UNLIKELY(rc != NPROF_OK && rc != NPROF_ELIMIT && rc != NPROF_ESTATE)) {
        nprof_py_raise(rc, "recording a query");
        return -1;
    }
    return p != NULL;
}

/* ---- record_sql --------------------------------------------------------------------------- */

static PyObject *py_record_sql(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    (void)self;
    static const char *const names[] = {"sql", "duration_ns", "params"};
    PyObject *a[3] = {NULL, NULL, Py_None};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 3)
        return PyErr_Format(PyExc_TypeError, "record_sql() takes at most 3 arguments");
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int found = 0;
        for (int i = 0; i < 3 && !found; i++)
            if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                if (i < nargs)
                    return PyErr_Format(PyExc_TypeError, "record_sql() got %s twice", names[i]);
                a[i] = args[nargs + k];
                found = 1;
            }
        if (!found)
            return PyErr_Format(PyExc_TypeError, "record_sql() got an unexpected argument %R",
                                name);
    }
    if (!a[0] || !a[1])
        return PyErr_Format(PyExc_TypeError, "record_sql(sql, duration_ns, params=None)");
    /* record_sql() is the explicit API: a wrong type is an error, also with no request. */
    if (!PyUnicode_Check(a[0]) && !PyBytes_Check(a[0]) && !PyByteArray_Check(a[0]))
        return PyErr_Format(PyExc_TypeError, "sql must be str or bytes, not %.100s",
                            Py_TYPE(a[0])->tp_name);
    one_query q = {.sql = a[0], .params = {.obj = a[2]}, .req = nprof_py_current_request()};
    if (nprof_py_ns(a[1], "duration_ns", &q.duration_ns) < 0)
        return NULL;
    if (a[2] != Py_None && !PyUnicode_Check(a[2]) && !PyBytes_Check(a[2]) &&
        !PyDict_Check(a[2]) && !PySequence_Check(a[2]))
        return PyErr_Format(PyExc_TypeError,
                            "params must be a sequence, a mapping or None, not %.100s",
                            Py_TYPE(a[2])->tp_name);
    int rc = record_query(&q, NULL, 0);
    if (rc < 0)
        return NULL;
    return PyBool_FromLong(rc);
}

/* ---- QueryRecorder ------------------------------------------------------------------------ */

typedef struct recorder {
    PyObject_HEAD
    PyObject *slow_log; /* SlowLog or NULL */
    PyObject *threshold_ms; /* float or None */
    uint64_t threshold_ns;
} recorder;

/* Sync hooks on this thread between start() and finish(): the shim is kept out while > 0. */
static _Thread_local int sync_depth;
static _Thread_local int shim_was_excluded;

/* start() and start_async() as ticks: 0 when nothing would be recorded.  `ctx` (or NULL)
 * receives what the end needs (ext.h: nprof_py_query_ctx) when it is not 0. */
NPROF__HOT_PATH
static uint64_t recorder_begin(recorder *self, int sync, nprof_py_query_ctx *ctx)
{
    nprof_py_request *r = nprof_py_current_request();
    if (!r && !self->slow_log && !observer)
        return 0;
    /* A sampled request's ticks during its query add nothing: the query itself is added
     * with the stack that issued it, when it ends (record_query). */
    if (r && nprof_py_sampler_running())
        nprof_py_sampler_query_begin(r->p);
    if (ctx) {
        ctx->req = r ? (nprof_py_request *)Py_NewRef(r) : NULL;
        if (NPROF_UNLIKELY(self->slow_log != NULL)) {
            ctx->slow_log = Py_NewRef(self->slow_log);
            ctx->threshold_ns = self->threshold_ns;
        }
    }
    if (sync && sync_depth++ == 0)
        shim_was_excluded = nprof_pq_exclude_thread(1);
    uint64_t t = nprof_ticks();
    return t ? t : 1;
}

static PyObject *recorder_start(recorder *self, PyObject *noargs)
{
    (void)noargs;
    return PyLong_FromUnsignedLongLong(recorder_begin(self, 1, NULL));
}

static PyObject *recorder_start_async(recorder *self, PyObject *noargs)
{
    (void)noargs;
    return PyLong_FromUnsignedLongLong(recorder_begin(self, 0, NULL));
}

/* finish() after a start that gave `start` ticks (0: nothing to record), in request `req`
 * (or NULL), with the recorder's `slow_log` (a SlowLog, or NULL) and its threshold.  Never
 * fails: what could not be recorded is counted. */
NPROF__HOT_PATH
static void recorder_end(PyObject *slow_log, uint64_t threshold_ns, uint64_t start,
                         nprof_py_request *req, PyObject *sql,
                         const nprof_py_query_params *params, Py_ssize_t rows, PyObject *error,
                         int sync)
{
    uint64_t now = nprof_ticks();
    if (!start)
        return; /* start() said there was nothing to record */
    if (sync && sync_depth > 0 && --sync_depth == 0)
        nprof_pq_exclude_thread(shim_was_excluded);
    one_query q = {.sql = sql, .params = *params, .error = error, .start_ticks = start,
                   .req = req};
    q.duration_ns = now > start ? nprof_ticks_to_ns(now - start) : 0;
    q.rows = rows > 0 ? (rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows) : 0;
    nprof_slowlog *log = slow_log ? nprof_py_slowlog_get(slow_log) : NULL;
    if (record_query(&q, log, threshold_ns) < 0) {
        /* Never into the application's query: counted, and the error dropped. */
        counts.failures++;
        PyErr_Clear();
    }
}

/* finish(start, sql, params=None, rows=0, error=None, caller=None): positional for speed,
 * keywords accepted.  `caller`, a frame: where the query's call site is looked for first,
 * before the running stack (a greenlet's, say, whose frames are all the library's while the
 * application's await is in its parent greenlet). */
static PyObject *recorder_finish_impl(recorder *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames, int sync)
{
    static const char *const names[] = {"start", "sql", "params", "rows", "error", "caller"};
    enum { N = sizeof names / sizeof *names };
    PyObject *a[N] = {NULL, NULL, Py_None, NULL, Py_None, Py_None};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > N)
        return PyErr_Format(PyExc_TypeError, "finish() takes at most %d arguments", (int)N);
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int found = 0;
        for (int i = 0; i < N && !found; i++)
            if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                a[i] = args[nargs + k];
                found = 1;
            }
        if (!found)
            return PyErr_Format(PyExc_TypeError, "finish() got an unexpected argument %R", name);
    }
    if (!a[0] || !a[1] || !PyLong_Check(a[0]))
        return PyErr_Format(PyExc_TypeError,
                            "finish(start, sql, params=None, rows=0, error=None, caller=None): "
                            "start is the int start() returned");
    if (a[5] != Py_None && !PyFrame_Check(a[5]))
        return PyErr_Format(PyExc_TypeError, "finish(): caller is a frame or None, got %.100s",
                            Py_TYPE(a[5])->tp_name);
    unsigned long long start = PyLong_AsUnsignedLongLong(a[0]);
    if (PyErr_Occurred())
        return NULL;
    long rows = 0;
    if (a[3]) {
        rows = PyLong_Check(a[3]) ? PyLong_AsLong(a[3]) : 0;
        if (rows == -1 && PyErr_Occurred())
            PyErr_Clear();
    }
    /* From Python, start() kept no request: the query ends in the context it began in. */
    nprof_py_callsite_frame = a[5] != Py_None ? a[5] : NULL;
    nprof_py_query_params params = {.obj = a[2]};
    recorder_end(self->slow_log, self->threshold_ns, start,
                 start ? nprof_py_current_request() : NULL, a[1], &params, rows, a[4], sync);
    nprof_py_callsite_frame = NULL;
    Py_RETURN_NONE;
}

static PyObject *recorder_finish(recorder *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    return recorder_finish_impl(self, args, nargs, kwnames, 1);
}

static PyObject *recorder_finish_async(recorder *self, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames)
{
    return recorder_finish_impl(self, args, nargs, kwnames, 0);
}

static int recorder_init(recorder *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"slow_log", "threshold_ms", NULL};
    PyObject *log = Py_None, *thr = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:QueryRecorder", kw, &log, &thr))
        return -1;
    if (log != Py_None && !nprof_py_slowlog_check(log)) {
        PyErr_Format(PyExc_TypeError, "slow_log must be a nanoprof SlowQueryLog, not %.100s",
                     Py_TYPE(log)->tp_name);
        return -1;
    }
    double ms = 0;
    if (thr != Py_None) {
        if (nprof_py_opt_ms(thr, "threshold_ms", &ms) < 0)
            return -1;
        if (ms > 1e9) { /* a threshold in ns must fit */
            PyErr_Format(nprof_py_config_error, "threshold_ms must be at most 1e9, got %R", thr);
            return -1;
        }
    } else if (log != Py_None) {
        nprof_runtime *rt = nprof_py_runtime();
        if (!rt)
            return -1;
        ms = nprof_runtime_config(rt)->slow_query_threshold_ms;
    }
    Py_XSETREF(self->slow_log, log == Py_None ? NULL : Py_NewRef(log));
    Py_XSETREF(self->threshold_ms, Py_NewRef(thr));
    self->threshold_ns = (uint64_t)(ms * 1e6);
    return 0;
}

static void recorder_dealloc(recorder *self)
{
    Py_XDECREF(self->slow_log);
    Py_XDECREF(self->threshold_ms);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *recorder_get_slow_log(recorder *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->slow_log ? self->slow_log : Py_None);
}

static PyObject *recorder_get_threshold(recorder *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->threshold_ms ? self->threshold_ms : Py_None);
}

static PyMethodDef recorder_methods[] = {
    {"start", (PyCFunction)recorder_start, METH_NOARGS,
     "start() -> int: before a sync query; 0 when nothing would be recorded."},
    {"finish", (PyCFunction)(void (*)(void))recorder_finish, METH_FASTCALL | METH_KEYWORDS,
     "finish(start, sql, params=None, rows=0, error=None, caller=None): after a sync query."},
    {"start_async", (PyCFunction)recorder_start_async, METH_NOARGS,
     "start_async() -> int: before an awaited query."},
    {"finish_async", (PyCFunction)(void (*)(void))recorder_finish_async,
     METH_FASTCALL | METH_KEYWORDS,
     "finish_async(start, sql, params=None, rows=0, error=None, caller=None): after an "
     "awaited query."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef recorder_getset[] = {
    {"slow_log", (getter)recorder_get_slow_log, NULL, "the SlowLog slow queries go to", NULL},
    {"threshold_ms", (getter)recorder_get_threshold, NULL, "the slow-log threshold", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_recorder_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.QueryRecorder",
    .tp_basicsize = sizeof(recorder),
    .tp_dealloc = (destructor)recorder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What a database hook calls around each query (start, then finish).",
    .tp_methods = recorder_methods,
    .tp_getset = recorder_getset,
    .tp_init = (initproc)recorder_init,
    .tp_new = PyType_GenericNew,
};

/* ---- LiveRecorder ------------------------------------------------------------------------- */

/* The recorder as the hooks of one install see it (db/_base.py: Live): off() at uninstall
 * makes start() return 0, so objects that keep a timed class after uninstall (a connection
 * made while installed, with its timed cursors) stop recording instead of going on with the
 * uninstalled timer's recorder.  A C type, so that TimedMethod calls its start and finish
 * directly (nprof_py_live_start/_finish) instead of through two attribute reads and two
 * Python-level calls per query. */
typedef struct live_recorder {
    PyObject_HEAD
    recorder *rec; /* strong */
    int on;
} live_recorder;

PyTypeObject nprof_py_live_type;

static PyObject *live_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *rec;
    if (kwargs && PyDict_GET_SIZE(kwargs))
        return PyErr_Format(PyExc_TypeError, "LiveRecorder(recorder) takes no keywords");
    if (!PyArg_ParseTuple(args, "O!:LiveRecorder", &nprof_py_recorder_type, &rec))
        return NULL;
    live_recorder *self = (live_recorder *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->rec = (recorder *)Py_NewRef(rec);
    self->on = 1;
    return (PyObject *)self;
}

static void live_dealloc(live_recorder *self)
{
    Py_XDECREF(self->rec);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

NPROF__HOT_PATH
uint64_t nprof_py_live_begin(PyObject *o, int sync, nprof_py_query_ctx *ctx)
{
    live_recorder *self = (live_recorder *)o;
    if (ctx)
        *ctx = (nprof_py_query_ctx){NULL, NULL, 0};
    return self->on ? recorder_begin(self->rec, sync, ctx) : 0;
}

NPROF__HOT_PATH
void nprof_py_live_end(uint64_t start, const nprof_py_query_ctx *ctx, PyObject *sql,
                       const nprof_py_query_params *params, Py_ssize_t rows, PyObject *error,
                       int sync)
{
    recorder_end(ctx->slow_log, ctx->threshold_ns, start, ctx->req, sql, params, rows, error,
                 sync);
}

static PyObject *live_start(PyObject *self, PyObject *noargs)
{
    (void)noargs;
    return PyLong_FromUnsignedLongLong(nprof_py_live_begin(self, 1, NULL));
}

static PyObject *live_start_async(PyObject *self, PyObject *noargs)
{
    (void)noargs;
    return PyLong_FromUnsignedLongLong(nprof_py_live_begin(self, 0, NULL));
}

static PyObject *live_finish(live_recorder *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    return recorder_finish_impl(self->rec, args, nargs, kwnames, 1);
}

static PyObject *live_finish_async(live_recorder *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    return recorder_finish_impl(self->rec, args, nargs, kwnames, 0);
}

static PyObject *live_off(live_recorder *self, PyObject *noargs)
{
    (void)noargs;
    self->on = 0;
    Py_RETURN_NONE;
}

static PyObject *live_get_recorder(live_recorder *self, void *closure)
{
    (void)closure;
    return Py_NewRef((PyObject *)self->rec);
}

static PyObject *live_get_on(live_recorder *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->on);
}

static PyMethodDef live_methods[] = {
    {"start", live_start, METH_NOARGS, "start() -> int: the recorder's, or 0 once off."},
    {"finish", (PyCFunction)(void (*)(void))live_finish, METH_FASTCALL | METH_KEYWORDS,
     "finish(start, sql, params=None, rows=0, error=None, caller=None): the recorder's."},
    {"start_async", live_start_async, METH_NOARGS,
     "start_async() -> int: the recorder's, or 0 once off."},
    {"finish_async", (PyCFunction)(void (*)(void))live_finish_async,
     METH_FASTCALL | METH_KEYWORDS,
     "finish_async(start, sql, params=None, rows=0, error=None, caller=None): the "
     "recorder's."},
    {"off", (PyCFunction)live_off, METH_NOARGS,
     "off(): start() returns 0 from now on (a query already started still finishes)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef live_getset[] = {
    {"recorder", (getter)live_get_recorder, NULL, "the QueryRecorder", NULL},
    {"on", (getter)live_get_on, NULL, "False once off() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_live_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.LiveRecorder",
    .tp_basicsize = sizeof(live_recorder),
    .tp_dealloc = (destructor)live_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "LiveRecorder(recorder): a QueryRecorder as one install of the hooks uses it, "
              "until off().",
    .tp_methods = live_methods,
    .tp_getset = live_getset,
    .tp_new = live_new,
};

/* ---- module functions --------------------------------------------------------------------- */

static PyObject *py_set_query_observer(PyObject *self, PyObject *fn)
{
    (void)self;
    if (fn != Py_None && !PyCallable_Check(fn))
        return PyErr_Format(PyExc_TypeError, "the observer must be callable or None, not %.100s",
                            Py_TYPE(fn)->tp_name);
    PyObject *prev = observer ? observer : Py_NewRef(Py_None);
    observer = fn == Py_None ? NULL : Py_NewRef(fn);
    return prev;
}

static PyObject *py_hook_stats(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K}", "recorded", counts.recorded, "in_request",
                         counts.in_request, "slow_logged", counts.slow_logged, "slow_dropped",
                         counts.slow_dropped, "failures", counts.failures, "held", counts.held);
}

int nprof_py_record_init(PyObject *m)
{
    static PyStructSequence_Field fields[] = {
        {"sql", "the query text"},
        {"normalized", "its shape (literals as ?)"},
        {"fingerprint", "XXH3 of the shape, 16 hex digits"},
        {"duration_ns", "how long it took"},
        {"params", "the redacted parameter summary, or None"},
        {"rows", "parameter sets of a batch, 0 for one statement"},
        {"error", "'Type: message' when it raised, or None"},
        {"callsite", "the application line that issued it, or None"},
        {"in_request", "recorded into a request's profile"},
        {NULL, NULL},
    };
    static PyStructSequence_Desc desc = {"nanoprof.QueryEvent",
                                         "One query, as a query observer sees it.", fields, 9};
    query_event_type = PyStructSequence_NewType(&desc);
    if (!query_event_type ||
        PyModule_AddObjectRef(m, "QueryEvent", (PyObject *)query_event_type) < 0)
        return -1;
    return 0;
}

PyMethodDef nprof_py_record_methods[] = {
    {"record_sql", (PyCFunction)(void (*)(void))py_record_sql, METH_FASTCALL | METH_KEYWORDS,
     "record_sql(sql, duration_ns, params=None): records a query into the current request."},
    {"set_query_observer", py_set_query_observer, METH_O,
     "set_query_observer(fn or None) -> previous: fn(QueryEvent) for every recorded query."},
    {"hook_stats", py_hook_stats, METH_NOARGS, "Counters of the query recorders."},
    {NULL, NULL, 0, NULL},
};
