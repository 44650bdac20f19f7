/*
 * bench/python/floor.c: the least an in-process request profiler with nanoprof's API can do,
 * written in C, for bench_asgi_db.py's `floor` variant (not part of nanoprof).
 *
 * What any such profiler of an asyncio app must do, and this does nothing else:
 *  - per request, an ASGI middleware: read the clock, make the request current in the
 *    task's context (a ContextVar: the only per-task state that follows a request across
 *    its awaits and into the tasks it starts, so that concurrent requests keep their
 *    queries apart), see the response start (its status) through a wrapper of `send`, and
 *    at the end read the clock and reset the ContextVar;
 *  - per query, a wrapper of the driver's coroutine method (asyncpg's fetchrow, ...), so
 *    that the query is timed in the task that issued it: look up the current request, read
 *    the clock before and after, and append the duration to the request.
 *
 * Everything nanoprof does on top (query texts, normalization and fingerprints, N+1 and
 * duplicate counting, call sites, phases, per-route aggregation, the store, production
 * sampling, headers) is left out, so its cost in the same run is the floor of the
 * mechanism: what a profiler pays before it records anything worth reading.
 *
 * Built with FLOOR_CORE defined (the `floor-core` variant, module floor_core), the same
 * mechanism also feeds nanoprof's C core through its public API, the least that gives
 * nanoprof's figures: the middleware begins and ends a request of an nprof_mw in production
 * mode (which aggregates it, keeps 1 in 10 in the store, answers ?profile=1 with the
 * headers), and each query's text, start, duration and parameter identity are kept in the
 * request and handed to nprof_sql_record() (normalization, fingerprint, N+1 and duplicate
 * counting) when its profile is next read: at the response's headers or the end.  No call
 * sites, phases, slow-query log or sampling: what is measured is a floor of nanoprof's own
 * work, not a competitor.
 *
 * Built by floor.py with the C compiler of the machine, against the running Python (and
 * for floor_core, against this tree's include/ and the installed package's libnanoprof).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#include <x86intrin.h>

#ifdef FLOOR_CORE
#include <nanoprof/nanoprof.h>
#define MODULE_NAME "floor_core"
#define floor_ticks nprof_ticks /* the start of a query is nanoprof's start_ticks */
#define MAX_QUERIES 8 /* held for the profile (one more flushes them first): the request
                          stays within pymalloc's 512 bytes */
static nprof_mw *core_mw; /* made by the first Middleware() */
static PyObject *str_method, *str_path, *str_query_string, *str_headers;
#else
#define MODULE_NAME "floor"
#define floor_ticks __rdtsc
#define MAX_QUERIES 32 /* the request stays within pymalloc's 512 bytes */
#endif

static PyObject *current; /* ContextVar: the request of the running task */
static PyObject *str_type, *str_http, *str_status, *str_start_type, *str_throw, *str_close;
static unsigned long long requests_done, queries_done, ticks_total; /* the "aggregation" */

/* ---- the request --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    uint64_t start, total;
    long status;
    uint32_t n;
#ifdef FLOOR_CORE
    nprof_mw_state st;
    uint32_t held; /* queries not yet given to the profile: q[0, held) */
    struct {
        PyObject *sql; /* strong */
        uint64_t start, ticks, params_hash;
    } q[MAX_QUERIES];
#else
    uint64_t duration[MAX_QUERIES];
#endif
} request;

#ifdef FLOOR_CORE
/* The held queries into the profile (or dropped, when it is gone). */
static void core_flush(request *r)
{
    for (uint32_t i = 0; i < r->held; i++) {
        Py_ssize_t len;
        const char *text = r->st.profile ? PyUnicode_AsUTF8AndSize(r->q[i].sql, &len) : NULL;
        if (text) {
            nprof_query q = {.sql = text, .sql_len = (size_t)len,
                             .duration_ns = nprof_ticks_to_ns(r->q[i].ticks),
                             .start_ticks = r->q[i].start, .params_hash = r->q[i].params_hash};
            nprof_sql_record(r->st.profile, &q);
        }
        Py_CLEAR(r->q[i].sql);
    }
    r->held = 0;
    if (PyErr_Occurred())
        PyErr_Clear();
}

static void request_dealloc(PyObject *self)
{
    request *r = (request *)self;
    core_flush(r);
    nprof_mw_request_end(&r->st, r->status ? (int)r->status : 500, NULL, NULL, NULL);
    PyObject_Free(self);
}
#endif

static PyTypeObject request_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = MODULE_NAME ".Request",
    .tp_basicsize = sizeof(request),
    .tp_flags = Py_TPFLAGS_DEFAULT,
#ifdef FLOOR_CORE
    .tp_dealloc = request_dealloc,
#endif
};

/* ---- a forwarding awaitable: the middleware's call, or one timed query ---------------------- */

enum { CALL, QUERY };

typedef struct {
    PyObject_HEAD
    int kind, done;
    PyObject *inner;                       /* the iterator every step goes to */
    PyObject *app, *scope, *receive, *send; /* CALL, until its first step */
    PyObject *token;                       /* CALL: the ContextVar's reset token */
    request *req;
    uint64_t start;                        /* QUERY */
#ifdef FLOOR_CORE
    PyObject *sql;                         /* QUERY: its text, a str (strong) */
    uint64_t params_hash;                  /* QUERY: its parameters' identity */
#endif
} forward;

static PyTypeObject forward_type, send_type;
static PyObject *send_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw);

typedef struct {
    PyObject_HEAD
    PyObject *send;
    request *req;
    vectorcallfunc vectorcall;
} send_wrapper;

static PyObject *awaitable_iter(PyObject *o)
{
    if (PyCoro_CheckExact(o))
        return Py_NewRef(o);
    return PyObject_CallMethod(o, "__await__", NULL);
}

#ifdef FLOOR_CORE
/* The scope's str or bytes item `key` as UTF-8, or NULL with *len 0. */
static const char *scope_text(PyObject *scope, PyObject *key, size_t *len)
{
    PyObject *v = PyDict_GetItemWithError(scope, key);
    Py_ssize_t n = 0;
    const char *s = NULL;
    if (v && PyUnicode_Check(v))
        s = PyUnicode_AsUTF8AndSize(v, &n);
    else if (v && PyBytes_Check(v) && PyBytes_GET_SIZE(v))
        s = PyBytes_AS_STRING(v), n = PyBytes_GET_SIZE(v);
    if (!s && PyErr_Occurred())
        PyErr_Clear();
    *len = s ? (size_t)n : 0;
    return s;
}

/* The nprof_mw request of `r`, begun from the scope; a request it cannot begin is served
 * unprofiled (st.profile NULL), as nanoprof's middleware does. */
static void core_begin(request *r, PyObject *scope)
{
    _Static_assert(sizeof(request) <= 512, "a floor_core request outgrows pymalloc");
    nprof_mw_request mr = {.start_ticks = r->start};
    mr.method = scope_text(scope, str_method, &mr.method_len);
    mr.path = scope_text(scope, str_path, &mr.path_len);
    /* The path as the route: the bench's paths have no ids, so it is the template the
     * framework would give (nanoprof takes Starlette's), without the route rules' regex. */
    mr.route = mr.path;
    mr.route_len = mr.path_len;
    mr.query = scope_text(scope, str_query_string, &mr.query_len);
    r->held = 0;
    if (nprof_mw_request_begin(core_mw, &mr, &r->st) != NPROF_OK)
        r->st.profile = NULL;
}
#endif

/* The middleware's first step, in the task's context: the request begins. */
static int call_begin(forward *f)
{
    request *r = PyObject_New(request, &request_type);
    if (!r)
        return -1;
    r->start = floor_ticks();
    r->total = 0;
    r->status = 0;
    r->n = 0;
#ifdef FLOOR_CORE
    core_begin(r, f->scope);
#endif
    f->req = r;
    f->token = PyContextVar_Set(current, (PyObject *)r);
    if (!f->token)
        return -1;
    send_wrapper *w = PyObject_New(send_wrapper, &send_type);
    if (!w)
        return -1;
    w->send = f->send;
    f->send = NULL;
    w->req = (request *)Py_NewRef(r);
    w->vectorcall = send_call;
    PyObject *args[3] = {f->scope, f->receive, (PyObject *)w};
    PyObject *coro = PyObject_Vectorcall(f->app, args, 3, NULL);
    Py_DECREF(w);
    Py_CLEAR(f->app);
    Py_CLEAR(f->scope);
    Py_CLEAR(f->receive);
    if (!coro)
        return -1;
    f->inner = awaitable_iter(coro);
    Py_DECREF(coro);
    return f->inner ? 0 : -1;
}

static void finish(forward *f)
{
    if (f->done)
        return;
    f->done = 1;
    uint64_t now = floor_ticks();
    request *r = f->req;
    if (!r)
        return;
    if (f->kind == QUERY) {
#ifdef FLOOR_CORE
        r->n++;
        if (!f->sql)
            return;
        if (r->held == MAX_QUERIES)
            core_flush(r);
        r->q[r->held].sql = f->sql;
        r->q[r->held].start = f->start;
        r->q[r->held].ticks = now - f->start;
        r->q[r->held].params_hash = f->params_hash;
        r->held++;
        f->sql = NULL;
#else
        if (r->n < MAX_QUERIES)
            r->duration[r->n++] = now - f->start;
#endif
        return;
    }
    r->total = now - r->start;
#ifdef FLOOR_CORE
    core_flush(r);
    nprof_mw_request_end(&r->st, r->status ? (int)r->status : 500, NULL, NULL, NULL);
#endif
    requests_done++;
    queries_done += r->n;
    ticks_total += r->total;
    if (f->token) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (PyContextVar_Reset(current, f->token) < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
        Py_CLEAR(f->token);
    }
}

static PySendResult fw_am_send(PyObject *self, PyObject *value, PyObject **result)
{
    forward *f = (forward *)self;
    if (!f->inner) {
        if (f->done || call_begin(f) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "floor: awaited twice");
            finish(f);
            *result = NULL;
            return PYGEN_ERROR;
        }
    }
    PySendResult r = PyIter_Send(f->inner, value, result);
    if (r != PYGEN_NEXT)
        finish(f);
    return r;
}

static PyObject *fw_send(PyObject *self, PyObject *value)
{
    PyObject *res;
    PySendResult r = fw_am_send(self, value, &res);
    if (r == PYGEN_NEXT)
        return res;
    if (r == PYGEN_RETURN) {
        PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, res);
        Py_DECREF(res);
        if (e) {
            PyErr_SetObject(PyExc_StopIteration, e);
            Py_DECREF(e);
        }
    }
    return NULL;
}

static PyObject *fw_iternext(PyObject *self)
{
    return fw_send(self, Py_None);
}

/* throw() and close() go to the inner iterator; an end there ends the request or query. */
static PyObject *fw_delegate(forward *f, PyObject *name, PyObject *args)
{
    if (!f->inner) { /* never started: nothing to hand it to, it ends here */
        finish(f);
        if (name == str_close)
            Py_RETURN_NONE;
        PyObject *exc = PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0) : NULL;
        if (exc && PyExceptionInstance_Check(exc))
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        else if (exc && PyExceptionClass_Check(exc))
            PyErr_SetNone(exc);
        else
            PyErr_SetString(PyExc_TypeError, "throw() takes an exception");
        return NULL;
    }
    PyObject *m = PyObject_GetAttr(f->inner, name);
    PyObject *res = m ? PyObject_Call(m, args, NULL) : NULL;
    Py_XDECREF(m);
    if (!res || name == str_close)
        finish(f);
    return res;
}

static PyObject *fw_throw(PyObject *self, PyObject *args)
{
    return fw_delegate((forward *)self, str_throw, args);
}

static PyObject *fw_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *empty = PyTuple_New(0);
    PyObject *res = empty ? fw_delegate((forward *)self, str_close, empty) : NULL;
    Py_XDECREF(empty);
    return res;
}

static PyObject *fw_await(PyObject *self)
{
    return Py_NewRef(self);
}

static void fw_dealloc(PyObject *self)
{
    forward *f = (forward *)self;
    finish(f);
    Py_XDECREF(f->inner);
    Py_XDECREF(f->app);
    Py_XDECREF(f->scope);
    Py_XDECREF(f->receive);
    Py_XDECREF(f->send);
    Py_XDECREF(f->token);
    Py_XDECREF(f->req);
#ifdef FLOOR_CORE
    Py_XDECREF(f->sql);
#endif
    PyObject_Free(self);
}

static PyMethodDef fw_methods[] = {
    {"send", fw_send, METH_O, NULL},
    {"throw", fw_throw, METH_VARARGS, NULL},
    {"close", fw_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods fw_async = {.am_await = fw_await, .am_send = fw_am_send};

static PyTypeObject forward_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = MODULE_NAME ".Forward",
    .tp_basicsize = sizeof(forward),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = fw_dealloc,
    .tp_as_async = &fw_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_iternext,
    .tp_methods = fw_methods,
};

static forward *forward_new(int kind)
{
    forward *f = PyObject_New(forward, &forward_type);
    if (!f)
        return NULL;
    f->kind = kind;
    f->done = 0;
    f->inner = f->app = f->scope = f->receive = f->send = f->token = NULL;
    f->req = NULL;
    f->start = 0;
#ifdef FLOOR_CORE
    f->sql = NULL;
    f->params_hash = 0;
#endif
    return f;
}

/* ---- send: sees the response start ------------------------------------------------------- */

#ifdef FLOOR_CORE
/* A copy of the response start `message` with the profile's headers added, or NULL (none
 * asked for: production answers only ?profile= with the token, which the check uses). */
static PyObject *core_headers(request *r, PyObject *message)
{
    if (!r->st.profile || r->st.profile_mode == NPROF_MW_PROFILE_NONE)
        return NULL;
    core_flush(r);
    nprof_mw_headers h;
    if (nprof_mw_get_response_headers(&r->st, (int)r->status, &h) != NPROF_OK || !h.count)
        return NULL;
    PyObject *copy = PyDict_Copy(message);
    PyObject *old = copy ? PyDict_GetItemWithError(copy, str_headers) : NULL;
    PyObject *list = old ? PySequence_List(old) : copy && !PyErr_Occurred() ? PyList_New(0) : NULL;
    for (size_t i = 0; list && i < h.count; i++) {
        PyObject *pair = Py_BuildValue("(y#y#)", h.items[i].name, (Py_ssize_t)h.items[i].name_len,
                                       h.items[i].value, (Py_ssize_t)h.items[i].value_len);
        if (!pair || PyList_Append(list, pair) < 0)
            Py_CLEAR(list);
        Py_XDECREF(pair);
    }
    if (!list || PyDict_SetItem(copy, str_headers, list) < 0) {
        PyErr_Clear();
        Py_CLEAR(copy);
    }
    Py_XDECREF(list);
    return copy;
}
#endif

static PyObject *send_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    send_wrapper *w = (send_wrapper *)self;
    if (PyVectorcall_NARGS(nargsf) == 1 && !kw && PyDict_CheckExact(args[0])) {
        PyObject *type = PyDict_GetItemWithError(args[0], str_type);
        if (type && PyUnicode_Check(type) && PyUnicode_Compare(type, str_start_type) == 0) {
            PyObject *status = PyDict_GetItemWithError(args[0], str_status);
            if (status && PyLong_Check(status))
                w->req->status = PyLong_AsLong(status);
#ifdef FLOOR_CORE
            PyObject *with = core_headers(w->req, args[0]);
            if (with) {
                PyObject *res = PyObject_Vectorcall(w->send, &with, 1, NULL);
                Py_DECREF(with);
                return res;
            }
#endif
        }
        if (PyErr_Occurred())
            PyErr_Clear();
    }
    return PyObject_Vectorcall(w->send, args, nargsf, kw);
}

static void send_dealloc(PyObject *self)
{
    send_wrapper *w = (send_wrapper *)self;
    Py_XDECREF(w->send);
    Py_XDECREF(w->req);
    PyObject_Free(self);
}

static PyTypeObject send_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = MODULE_NAME ".Send",
    .tp_basicsize = sizeof(send_wrapper),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(send_wrapper, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = send_dealloc,
};

/* ---- the middleware ------------------------------------------------------------------------ */

/* The middleware and the query wrapper: a callable over one object (the app, the driver's
 * method), called through vectorcall. */
typedef struct {
    PyObject_HEAD
    PyObject *target;
    vectorcallfunc vectorcall;
} wrapper;

static PyObject *wrapper_make(PyTypeObject *t, PyObject *args, PyObject *kw, vectorcallfunc call)
{
    PyObject *target;
    static char *names[] = {"target", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", names, &target))
        return NULL;
    wrapper *w = (wrapper *)t->tp_alloc(t, 0);
    if (!w)
        return NULL;
    w->target = Py_NewRef(target);
    w->vectorcall = call;
    return (PyObject *)w;
}

static void wrapper_dealloc(PyObject *self)
{
    Py_XDECREF(((wrapper *)self)->target);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *mw_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    wrapper *m = (wrapper *)self;
    if (PyVectorcall_NARGS(nargsf) != 3 || kw) {
        PyErr_SetString(PyExc_TypeError, "floor.Middleware(scope, receive, send)");
        return NULL;
    }
    PyObject *type = PyDict_Check(args[0]) ? PyDict_GetItemWithError(args[0], str_type) : NULL;
    if (!type || !PyUnicode_Check(type) || PyUnicode_Compare(type, str_http) != 0) {
        if (PyErr_Occurred())
            return NULL;
        return PyObject_Vectorcall(m->target, args, 3, NULL);
    }
    forward *f = forward_new(CALL);
    if (!f)
        return NULL;
    f->app = Py_NewRef(m->target);
    f->scope = Py_NewRef(args[0]);
    f->receive = Py_NewRef(args[1]);
    f->send = Py_NewRef(args[2]);
    return (PyObject *)f;
}

#ifdef FLOOR_CORE
/* nanoprof's runtime and middleware as asgi_db_app's nanoprof-prod configures them:
 * production mode, the reference's production thresholds, the bench's token. */
static int core_create(void)
{
    if (core_mw)
        return 0;
    nprof_config cfg;
    nprof_config_init(&cfg);
    cfg.production = 1;
    cfg.slow_query_threshold_ms = 200;
    cfg.n_plus_one_threshold = 10;
    nprof_runtime *rt;
    int rc = nprof_runtime_create(&cfg, &rt);
    if (rc == NPROF_OK) {
        nprof_mw_options o;
        nprof_mw_options_init(&o);
        o.token = "bench-token";
        o.set_current = 0;
        rc = nprof_mw_create(rt, &o, &core_mw);
    }
    if (rc != NPROF_OK) {
        PyErr_Format(PyExc_RuntimeError, "floor_core: nanoprof said %s (%s)", nprof_strerror(rc),
                     nprof_last_error_detail());
        return -1;
    }
    return 0;
}
#endif

static PyObject *mw_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
#ifdef FLOOR_CORE
    if (core_create() < 0)
        return NULL;
#endif
    return wrapper_make(t, args, kw, mw_call);
}

static PyTypeObject middleware_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = MODULE_NAME ".Middleware",
    .tp_basicsize = sizeof(wrapper),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(wrapper, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = mw_new,
    .tp_dealloc = wrapper_dealloc,
};

/* ---- the query wrapper ---------------------------------------------------------------------- */

/* Set on a class (Connection.fetchrow = Timed(fetchrow)) and called as a method: CPython
 * passes the instance as the first argument (Py_TPFLAGS_METHOD_DESCRIPTOR), no bound
 * method is made. */
static PyObject *timed_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    wrapper *t = (wrapper *)self;
    PyObject *req = NULL;
    if (PyContextVar_Get(current, NULL, &req) < 0)
        return NULL;
    if (!req)
        return PyObject_Vectorcall(t->target, args, nargsf, kw);
    uint64_t start = floor_ticks();
    PyObject *coro = PyObject_Vectorcall(t->target, args, nargsf, kw);
    if (!coro) {
        Py_DECREF(req);
        return NULL;
    }
    forward *f = forward_new(QUERY);
    if (!f) {
        Py_DECREF(req);
        Py_DECREF(coro);
        return NULL;
    }
    f->req = (request *)req;
    f->start = start;
#ifdef FLOOR_CORE
    /* conn.fetchrow(query, *args): the text, and the values' identity for duplicates */
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs >= 2 && PyUnicode_CheckExact(args[1])) {
        f->sql = Py_NewRef(args[1]);
        uint64_t h = 0x9e3779b97f4a7c15u;
        for (Py_ssize_t i = 2; i < nargs; i++) {
            Py_hash_t v = PyObject_Hash(args[i]);
            if (v == -1)
                PyErr_Clear();
            h = (h ^ (uint64_t)v) * 0x100000001b3u;
        }
        f->params_hash = h ? h : 1;
    }
#endif
    f->inner = awaitable_iter(coro);
    Py_DECREF(coro);
    if (!f->inner) {
        f->done = 1;
        Py_DECREF(f);
        return NULL;
    }
    return (PyObject *)f;
}

static PyObject *timed_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (!obj || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyObject *timed_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
    return wrapper_make(t, args, kw, timed_call);
}

static PyTypeObject timed_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = MODULE_NAME ".Timed",
    .tp_basicsize = sizeof(wrapper),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(wrapper, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = timed_get,
    .tp_new = timed_new,
    .tp_dealloc = wrapper_dealloc,
};

/* ---- the module ----------------------------------------------------------------------------- */

static PyObject *floor_stats(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return Py_BuildValue("{sKsKsK}", "requests", requests_done, "queries", queries_done,
                         "ticks", ticks_total);
}

static PyMethodDef floor_functions[] = {
    {"stats", floor_stats, METH_NOARGS, "requests, queries and clock ticks recorded so far"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef floor_module = {
    PyModuleDef_HEAD_INIT, MODULE_NAME, "the floor of an in-process profiler (bench only)", -1,
    floor_functions, NULL, NULL, NULL, NULL,
};

#ifdef FLOOR_CORE
PyMODINIT_FUNC PyInit_floor_core(void)
#else
PyMODINIT_FUNC PyInit_floor(void)
#endif
{
    PyTypeObject *types[] = {&request_type, &forward_type, &send_type, &middleware_type,
                             &timed_type};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    str_type = PyUnicode_InternFromString("type");
    str_http = PyUnicode_InternFromString("http");
    str_status = PyUnicode_InternFromString("status");
    str_start_type = PyUnicode_InternFromString("http.response.start");
    str_throw = PyUnicode_InternFromString("throw");
    str_close = PyUnicode_InternFromString("close");
#ifdef FLOOR_CORE
    str_method = PyUnicode_InternFromString("method");
    str_path = PyUnicode_InternFromString("path");
    str_query_string = PyUnicode_InternFromString("query_string");
    str_headers = PyUnicode_InternFromString("headers");
    if (!str_headers)
        return NULL;
#endif
    current = PyContextVar_New("floor_request", NULL);
    PyObject *m = PyModule_Create(&floor_module);
    if (!m || !current || !str_close)
        return NULL;
    if (PyModule_AddObjectRef(m, "Middleware", (PyObject *)&middleware_type) < 0 ||
        PyModule_AddObjectRef(m, "Timed", (PyObject *)&timed_type) < 0)
        return NULL;
    return m;
}
