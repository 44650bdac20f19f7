/*
 * bindings/python/ext/slowlog.c: _core.SlowLog, the C slow-query log (nanoprof/slowlog.h)
 * as a Python object: the UNLOGGED table, the background COPY writer, redaction, retention
 * and EXPLAIN, with nothing of it redone in Python.  nanoprof.SlowQueryLog (slowlog.py) is the
 * reference's API over it.
 *
 * The C log is handed by pointer to the C middleware and read by the query recorders, so
 * closing it while one of them still holds it would leave a dangling pointer: users (a
 * middleware) are counted, and close() refuses while there are any.  A recorder holds the
 * Python object and checks `closed` under the GIL before each use.
 */
#include "ext.h"

#include <string.h>

typedef struct nprof_py_slowlog {
    PyObject_HEAD
    nprof_slowlog *log; /* NULL once closed */
    Py_ssize_t users;   /* middlewares that point at `log` */
} nprof_py_slowlog;

int nprof_py_slowlog_check(PyObject *o)
{
    return PyObject_TypeCheck(o, &nprof_py_slowlog_type);
}

nprof_slowlog *nprof_py_slowlog_get(PyObject *o)
{
    return ((nprof_py_slowlog *)o)->log;
}

nprof_slowlog *nprof_py_slowlog_borrow(PyObject *o)
{
    nprof_py_slowlog *s = (nprof_py_slowlog *)o;
    if (!s->log) {
        PyErr_SetString(nprof_py_state_error, "this SlowQueryLog is closed");
        return NULL;
    }
    s->users++;
    return s->log;
}

void nprof_py_slowlog_unborrow(PyObject *o)
{
    ((nprof_py_slowlog *)o)->users--;
}

static int slowlog_init(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"conninfo", "table", "queue_slots", "logged", "normalized_only",
                         "redact", "redact_rules", "explain", "retention_s", "max_rows", NULL};
    PyObject *conninfo, *table = Py_None, *slots = Py_None, *normalized = Py_None,
                        *rules = NULL, *retention = Py_None, *max_rows = Py_None;
    int logged = 0, redact = 1, explain = 0;
    if (self->log) {
        PyErr_SetString(nprof_py_state_error, "SlowLog.__init__() called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|$OOpOpOpOO:SlowLog", kw, &conninfo, &table,
                                     &slots, &logged, &normalized, &redact, &rules, &explain,
                                     &retention, &max_rows))
        return -1;
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return -1;
    nprof_slowlog_options o;
    nprof_slowlog_options_from_config(&o, nprof_runtime_config(rt));
    o.runtime = NULL; /* runtimes are replaced by configure(); the log must not depend on one */
    o.logged = logged;
    o.redact = redact;
    o.explain = explain;
    if (normalized != Py_None) {
        int t = PyObject_IsTrue(normalized);
        if (t < 0)
            return -1;
        o.normalized_only = t;
    } else {
        o.normalized_only = nprof_runtime_config(rt)->production ? 1 : 0;
    }
    uint64_t rows = o.max_rows;
    uint32_t retention_s = o.retention_s;
    if ((slots != Py_None && nprof_py_opt_uint(slots, "queue_slots", &o.queue_slots, 0) < 0) ||
        (retention != Py_None &&
         nprof_py_opt_uint(retention, "retention_s", &retention_s, 1) < 0))
        return -1;
    o.retention_s = retention_s;
    if (max_rows != Py_None) {
        if (!PyLong_Check(max_rows) || PyBool_Check(max_rows)) {
            PyErr_Format(PyExc_TypeError, "max_rows must be an int, not %.100s",
                         Py_TYPE(max_rows)->tp_name);
            return -1;
        }
        rows = PyLong_AsUnsignedLongLong(max_rows);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(nprof_py_config_error, "max_rows must be >= 0, got %R", max_rows);
            return -1;
        }
        o.max_rows = rows;
    }
    PyObject *keep[NPROF_SLOWLOG_MAX_USER_RULES + 2] = {0};
    int nkeep = 0, rc = -1;
    Py_ssize_t len;
    if (table != Py_None) {
        const char *t = nprof_py_text(table, &len, &keep[nkeep], "table");
        nkeep++;
        if (!t)
            goto out;
        if ((size_t)len >= sizeof o.table || memchr(t, '\0', (size_t)len)) {
            PyErr_Format(nprof_py_config_error,
                         "table must be a name of at most %d bytes ([A-Za-z0-9_], optionally "
                         "schema.table), got %R",
                         NPROF_SLOWLOG_TABLE_MAX - 1, table);
            goto out;
        }
        memcpy(o.table, t, (size_t)len);
        o.table[len] = '\0';
    }
    if (rules && rules != Py_None) {
        PyObject *seq = PySequence_Fast(rules, "redact_rules must be a sequence of patterns");
        if (!seq)
            goto out;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n > NPROF_SLOWLOG_MAX_USER_RULES) {
            Py_DECREF(seq);
            PyErr_Format(nprof_py_config_error, "redact_rules: at most %d rules",
                         NPROF_SLOWLOG_MAX_USER_RULES);
            goto out;
        }
        memset(o.redact_rules, 0, sizeof o.redact_rules);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *r = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyUnicode_Check(r)) {
                Py_DECREF(seq);
                PyErr_Format(PyExc_TypeError, "redact_rules[%zd] must be a str pattern", i);
                goto out;
            }
            o.redact_rules[i] = PyUnicode_AsUTF8(r);
            if (!o.redact_rules[i]) {
                Py_DECREF(seq);
                goto out;
            }
        }
        keep[nkeep++] = seq; /* the patterns' UTF-8 lives in the sequence's strings */
    }
    const char *ci = PyUnicode_AsUTF8AndSize(conninfo, &len);
    if (!ci)
        goto out;
    if (memchr(ci, '\0', (size_t)len)) {
        PyErr_SetString(PyExc_ValueError, "conninfo holds a NUL byte");
        goto out;
    }
    if (!len) {
        PyErr_SetString(nprof_py_config_error,
                        "conninfo is empty: pass a libpq connection string or URI, e.g. "
                        "'postgresql://user@host/dbname'");
        goto out;
    }
    int crc = nprof_slowlog_open(&self->log, ci, &o);
    if (crc != NPROF_OK) {
        self->log = NULL;
        if (crc == NPROF_EINVAL || crc == NPROF_EPARSE)
            PyErr_Format(nprof_py_config_error, "SlowQueryLog options refused: %s",
                         nprof_last_error_detail());
        else
            nprof_py_raise(crc, "opening the slow-query log");
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < nkeep; i++)
        Py_XDECREF(keep[i]);
    return rc;
}

static int check_open(nprof_py_slowlog *self)
{
    if (self->log)
        return 0;
    PyErr_SetString(nprof_py_state_error, "this SlowQueryLog is closed");
    return -1;
}

static PyObject *slowlog_wait_ready(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"timeout_ms", NULL};
    unsigned int timeout = 5000;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|I:wait_ready", kw, &timeout) ||
        check_open(self) < 0)
        return NULL;
    int rc;
    char detail[512];
    Py_BEGIN_ALLOW_THREADS
    rc = nprof_slowlog_wait_ready(self->log, timeout);
    /* The detail is per thread: read it before taking the GIL back. */
    snprintf(detail, sizeof detail, "%s", nprof_last_error_detail());
    Py_END_ALLOW_THREADS
    if (rc == NPROF_OK)
        Py_RETURN_NONE;
    if (rc == NPROF_EIO)
        return PyErr_Format(nprof_py_error,
                            "the slow-query table is not ready after %u ms: %s (check the "
                            "connection string and that the server is up)",
                            timeout, detail[0] ? detail : "no answer from the server");
    return nprof_py_raise(rc, "waiting for the slow-query table");
}

/* A string argument or None, as bytes for an entry; 0 or -1. */
static int entry_str(PyObject *o, const char **s, size_t *len, PyObject **keep, const char *what)
{
    *keep = NULL;
    if (!o || o == Py_None) {
        *s = NULL;
        *len = 0;
        return 0;
    }
    Py_ssize_t n;
    *s = nprof_py_text(o, &n, keep, what);
    *len = (size_t)n;
    return *s ? 0 : -1;
}

static PyObject *slowlog_enqueue(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"sql", "duration_ms", "params", "fingerprint", "method", "route",
                         "request_id", "callsite", NULL};
    PyObject *sql, *params = Py_None, *method = Py_None, *route = Py_None, *rid = Py_None,
                   *site = Py_None;
    double ms;
    unsigned long long fp = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Od|O$KOOOO:enqueue", kw, &sql, &ms, &params,
                                     &fp, &method, &route, &rid, &site) ||
        check_open(self) < 0)
        return NULL;
    if (!(ms >= 0))
        return PyErr_Format(PyExc_ValueError, "duration_ms must be >= 0, got %g", ms);
    nprof_slowlog_entry e = {.duration_ms = ms, .fingerprint = fp};
    PyObject *keep[6] = {0};
    PyObject *res = NULL;
    if (entry_str(sql, &e.sql, &e.sql_len, &keep[0], "sql") < 0 ||
        entry_str(params, &e.params, &e.params_len, &keep[1], "params") < 0 ||
        entry_str(method, &e.method, &e.method_len, &keep[2], "method") < 0 ||
        entry_str(route, &e.route, &e.route_len, &keep[3], "route") < 0 ||
        entry_str(rid, &e.request_id, &e.request_id_len, &keep[4], "request_id") < 0 ||
        entry_str(site, &e.callsite, &e.callsite_len, &keep[5], "callsite") < 0)
        goto out;
    int rc = nprof_slowlog_enqueue(self->log, &e);
    if (rc == NPROF_OK || rc == NPROF_EFULL)
        res = PyBool_FromLong(rc == NPROF_OK);
    else
        nprof_py_raise(rc, "enqueueing a slow query");
out:
    for (int i = 0; i < 6; i++)
        Py_XDECREF(keep[i]);
    return res;
}

typedef int (*read_fn)(nprof_slowlog *, uint32_t, uint32_t, nprof_buf *);

static int read_recent(nprof_slowlog *log, uint32_t n, uint32_t since, nprof_buf *b)
{
    (void)since;
    return nprof_slowlog_read_recent(log, n, b);
}

/* The read calls block for a round trip to the server: without the GIL. */
static PyObject *slowlog_read(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs,
                              read_fn fn, const char *what)
{
    static char *kw[] = {"n", "since_s", NULL};
    unsigned int n = 50, since = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|II", kw, &n, &since) || check_open(self) < 0)
        return NULL;
    nprof_buf b = NPROF_BUF_INIT;
    int rc;
    char detail[512];
    self->users++; /* no close() while the GIL is released */
    Py_BEGIN_ALLOW_THREADS
    rc = fn(self->log, n, since, &b);
    snprintf(detail, sizeof detail, "%s", nprof_last_error_detail());
    Py_END_ALLOW_THREADS
    self->users--;
    if (rc != NPROF_OK) {
        nprof_buf_free(&b);
        if (rc == NPROF_EIO)
            return PyErr_Format(nprof_py_error, "%s: %s", what, detail);
        return nprof_py_raise(rc, what);
    }
    return nprof_py_buf_str(&b);
}

static PyObject *slowlog_read_recent(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs)
{
    return slowlog_read(self, args, kwargs, read_recent, "reading the slow-query log");
}

static PyObject *slowlog_read_slowest(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs)
{
    return slowlog_read(self, args, kwargs, nprof_slowlog_read_slowest,
                        "reading the slow-query log");
}

static PyObject *slowlog_read_by_fingerprint(nprof_py_slowlog *self, PyObject *args,
                                             PyObject *kwargs)
{
    return slowlog_read(self, args, kwargs, nprof_slowlog_read_by_fingerprint,
                        "reading the slow-query log");
}

static PyObject *slowlog_stats(nprof_py_slowlog *self, PyObject *noargs)
{
    (void)noargs;
    if (check_open(self) < 0)
        return NULL;
    nprof_slowlog_stats s;
    int rc = nprof_slowlog_get_stats(self->log, &s);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "slow-query log stats");
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:I,s:O,s:s}", "enqueued",
        (unsigned long long)s.enqueued, "dropped", (unsigned long long)s.dropped, "written",
        (unsigned long long)s.written, "unwritten", (unsigned long long)s.unwritten, "truncated",
        (unsigned long long)s.truncated, "redactions", (unsigned long long)s.redactions,
        "batches", (unsigned long long)s.batches, "batch_retries",
        (unsigned long long)s.batch_retries, "reconnects", (unsigned long long)s.reconnects,
        "plans", (unsigned long long)s.plans, "deleted", (unsigned long long)s.deleted,
        "queue_slots", s.queue_slots, "queue_depth", s.queue_depth, "connected",
        s.connected ? Py_True : Py_False, "last_error", s.last_error);
}

static PyObject *slowlog_close(nprof_py_slowlog *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"timeout_ms", NULL};
    unsigned int timeout = 5000;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|I:close", kw, &timeout))
        return NULL;
    if (!self->log)
        Py_RETURN_TRUE;
    if (self->users > 0)
        return PyErr_Format(nprof_py_state_error,
                            "this SlowQueryLog is still used by %zd middleware(s): close it "
                            "after the application has stopped",
                            self->users);
    nprof_slowlog *log = self->log;
    self->log = NULL; /* recorders see it closed from now on */
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = nprof_slowlog_close(log, timeout);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(rc == NPROF_OK);
}

static PyObject *slowlog_get_closed(nprof_py_slowlog *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->log == NULL);
}

static void slowlog_dealloc(nprof_py_slowlog *self)
{
    /* Nothing holds the pointer any more (users hold the object): flush what fits in a
     * second, without blocking other threads meanwhile. */
    if (self->log) {
        nprof_slowlog *log = self->log;
        self->log = NULL;
        Py_BEGIN_ALLOW_THREADS
        nprof_slowlog_close(log, 1000);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef slowlog_methods[] = {
    {"wait_ready", (PyCFunction)(void (*)(void))slowlog_wait_ready, METH_VARARGS | METH_KEYWORDS,
     "wait_ready(timeout_ms=5000): blocks until the table exists."},
    {"enqueue", (PyCFunction)(void (*)(void))slowlog_enqueue, METH_VARARGS | METH_KEYWORDS,
     "enqueue(sql, duration_ms, params=None, *, ...) -> bool: False when the queue was full."},
    {"read_recent", (PyCFunction)(void (*)(void))slowlog_read_recent,
     METH_VARARGS | METH_KEYWORDS, "read_recent(n=50) -> JSON text of the latest rows."},
    {"read_slowest", (PyCFunction)(void (*)(void))slowlog_read_slowest,
     METH_VARARGS | METH_KEYWORDS, "read_slowest(n=50, since_s=0) -> JSON text."},
    {"read_by_fingerprint", (PyCFunction)(void (*)(void))slowlog_read_by_fingerprint,
     METH_VARARGS | METH_KEYWORDS, "read_by_fingerprint(n=50, since_s=0) -> JSON text."},
    {"stats", (PyCFunction)slowlog_stats, METH_NOARGS, "The log's counters."},
    {"close", (PyCFunction)(void (*)(void))slowlog_close, METH_VARARGS | METH_KEYWORDS,
     "close(timeout_ms=5000) -> bool: flushes and closes; True when all was written."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef slowlog_getset[] = {
    {"closed", (getter)slowlog_get_closed, NULL, "whether close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_slowlog_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.SlowLog",
    .tp_basicsize = sizeof(nprof_py_slowlog),
    .tp_dealloc = (destructor)slowlog_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C slow-query log: a PostgreSQL table written by a background thread.",
    .tp_methods = slowlog_methods,
    .tp_getset = slowlog_getset,
    .tp_init = (initproc)slowlog_init,
    .tp_new = PyType_GenericNew,
};
