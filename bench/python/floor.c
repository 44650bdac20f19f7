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
 * Built by floor.py with the C compiler of the machine, against the running Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <x86intrin.h>

#define MAX_QUERIES 32 /* the request stays within pymalloc's 512 bytes */

static PyObject *current; /* ContextVar: the request of the running task */
static PyObject *str_type, *str_http, *str_status, *str_start_type, *str_throw, *str_close;
static unsigned long long requests_done, queries_done, ticks_total; /* the "aggregation" */

/* ---- the request --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    uint64_t start, total;
    long status;
    uint32_t n;
    uint64_t duration[MAX_QUERIES];
} request;

static PyTypeObject request_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "floor.Request",
    .tp_basicsize = sizeof(request),
    .tp_flags = Py_TPFLAGS_DEFAULT,
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

/* The middleware's first step, in the task's context: the request begins. */
static int call_begin(forward *f)
{
    request *r = PyObject_New(request, &request_type);
    if (!r)
        return -1;
    r->start = __rdtsc();
    r->total = 0;
    r->status = 0;
    r->n = 0;
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
    uint64_t now = __rdtsc();
    request *r = f->req;
    if (!r)
        return;
    if (f->kind == QUERY) {
        if (r->n < MAX_QUERIES)
            r->duration[r->n++] = now - f->start;
        return;
    }
    r->total = now - r->start;
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
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "floor.Forward",
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
    return f;
}

/* ---- send: sees the response start ------------------------------------------------------- */

static PyObject *send_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    send_wrapper *w = (send_wrapper *)self;
    if (PyVectorcall_NARGS(nargsf) == 1 && !kw && PyDict_CheckExact(args[0])) {
        PyObject *type = PyDict_GetItemWithError(args[0], str_type);
        if (type && PyUnicode_Check(type) && PyUnicode_Compare(type, str_start_type) == 0) {
            PyObject *status = PyDict_GetItemWithError(args[0], str_status);
            if (status && PyLong_Check(status))
                w->req->status = PyLong_AsLong(status);
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
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "floor.Send",
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

static PyObject *mw_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
    return wrapper_make(t, args, kw, mw_call);
}

static PyTypeObject middleware_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "floor.Middleware",
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
    uint64_t start = __rdtsc();
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
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "floor.Timed",
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
    PyModuleDef_HEAD_INIT, "floor", "the floor of an in-process profiler (bench only)", -1,
    floor_functions, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_floor(void)
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
    current = PyContextVar_New("floor_request", NULL);
    PyObject *m = PyModule_Create(&floor_module);
    if (!m || !current || !str_close)
        return NULL;
    if (PyModule_AddObjectRef(m, "Middleware", (PyObject *)&middleware_type) < 0 ||
        PyModule_AddObjectRef(m, "Timed", (PyObject *)&timed_type) < 0)
        return NULL;
    return m;
}
