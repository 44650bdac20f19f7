/*
 * bindings/python/ext/asgi.c: the call of nanoprof.asgi.ASGIMiddleware, in C.
 *
 *     async def __call__(self, scope, receive, send):
 *         if scope["type"] != "http":
 *             return await self.app(scope, receive, send)
 *         req = self._mw.asgi_begin(scope)
 *         if req is None:                       # not profiled
 *             return await self.app(scope, receive, send)
 *         if <req is a dashboard response, or ?profile=json>:
 *             return await self._respond(req, scope, receive, send)
 *         try:
 *             await self.app(scope, receive, req.asgi_send(send))
 *         except BaseException: req.end(500); raise
 *         req.end(req.status or 500)
 *
 * is what asgi_call() does, with the ordinary request's try/end in an ASGICall (a forward,
 * forward.c) around the application's coroutine instead of a coroutine of ours: a Python
 * coroutine per request, its frame and its bytecode were a third of what the middleware
 * cost an app under load.  The other cases get the application's own coroutine, or the
 * Python `_respond` (rare: the dashboard, ?profile=json).
 *
 * ASGI servers tell ASGI 3 apps by `inspect.iscoroutinefunction(app.__call__)` (uvicorn,
 * hypercorn), so ASGIMiddleware keeps an `async def __call__` (which awaits asgi_call()),
 * and install_asgi_call() points the class's tp_call at the C call: calling the instance
 * skips the Python method, asking for `__call__` still finds it.  A subclass gets the
 * Python method (CPython sets its tp_call from its own lookup), which does the same.
 */
#include "ext.h"

#include <string.h>

static PyObject *str_type, *str_http, *str_app, *str_mw, *str_respond;

typedef struct {
    nprof_py_forward fw; /* fw.iter: the application's coroutine */
    nprof_py_request *req;
} asgi_call;

/* Ends the request with `status` (the app's status when it sent one, else 500).  0, or -1
 * with the exception ending raised. */
static int end_request(asgi_call *c, int status)
{
    nprof_py_request *r = c->req;
    if (!r)
        return 0;
    c->req = NULL;
    PyObject *out = nprof_py_request_end(r, status);
    Py_DECREF(r);
    Py_XDECREF(out);
    return out ? 0 : -1;
}

static int call_returned(nprof_py_forward *f, int started)
{
    (void)started;
    asgi_call *c = (asgi_call *)f;
    /* An app that returned without a response start gets a 500 from the server. */
    return end_request(c, c->req && c->req->status ? c->req->status : 500);
}

static void call_raised(nprof_py_forward *f, int started)
{
    (void)started;
    PyObject *type, *value, *tb;
    nprof_py_fetch_exception(&type, &value, &tb);
    if (end_request((asgi_call *)f, 500) < 0)
        nprof_py_replace_exception(&type, &value, &tb);
    PyErr_Restore(type, value, tb);
}

/* Closed before its first step, or destroyed unfinished (its task was): the request
 * ends as failed, as the Python coroutine's `finally` ended it on GeneratorExit. */
static void call_dropped(nprof_py_forward *f, int started)
{
    (void)started;
    if (end_request((asgi_call *)f, 500) < 0)
        PyErr_WriteUnraisable((PyObject *)f);
}

static const nprof_py_forward_ops call_ops = {
    .returned = call_returned,
    .raised = call_raised,
    .dropped = call_dropped,
    .first_step = NULL,
    .guarded = 0,
};

static int call_traverse(asgi_call *c, visitproc visit, void *arg)
{
    Py_VISIT(c->req);
    return nprof_py_forward_traverse(&c->fw, visit, arg);
}

static int call_clear(asgi_call *c)
{
    nprof_py_forward_clear(&c->fw);
    Py_CLEAR(c->req);
    return 0;
}

static PyObject *call_repr(asgi_call *c)
{
    return PyUnicode_FromFormat("<nanoprof ASGI request awaiting %R>",
                                c->fw.iter ? c->fw.iter : Py_None);
}

static PyTypeObject asgi_call_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.ASGICall",
    .tp_basicsize = sizeof(asgi_call),
    .tp_repr = (reprfunc)call_repr,
    .tp_doc = "A profiled ASGI request: awaits the application's coroutine, then ends the "
              "request (made by ASGIMiddleware's call, not from Python).",
    .tp_traverse = (traverseproc)call_traverse,
    .tp_clear = (inquiry)call_clear,
};

/* The app's coroutine for (scope, receive, send), in an ASGICall that ends `req` (whose
 * reference it takes) when the coroutine does. */
static PyObject *profiled(PyObject *app, nprof_py_request *req, PyObject *scope,
                          PyObject *receive, PyObject *send)
{
    PyObject *wrapped = nprof_py_request_asgi_send((PyObject *)req, send);
    PyObject *awaitable = NULL, *iter = NULL;
    if (wrapped) {
        PyObject *args[3] = {scope, receive, wrapped};
        awaitable = PyObject_Vectorcall(app, args, 3, NULL);
        Py_DECREF(wrapped);
    }
    if (awaitable) {
        iter = nprof_py_await_iterator(awaitable);
        Py_DECREF(awaitable);
    }
    asgi_call *c = iter ? PyObject_GC_New(asgi_call, &asgi_call_type) : NULL;
    if (!c) {
        /* Nothing will await it: the request ends here, failed, and the error propagates. */
        Py_XDECREF(iter);
        PyObject *type, *value, *tb;
        nprof_py_fetch_exception(&type, &value, &tb);
        PyObject *out = nprof_py_request_end(req, 500);
        if (!out)
            nprof_py_replace_exception(&type, &value, &tb);
        Py_XDECREF(out);
        Py_DECREF(req);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    nprof_py_forward_start(&c->fw, &call_ops, iter);
    c->req = req;
    Py_DECREF(iter);
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* Is `scope` an HTTP scope?  Anything else (lifespan, websocket, a scope we cannot read)
 * goes to the app untouched: the app, not the profiler, says what is wrong with it. */
static int is_http(PyObject *scope)
{
    if (!PyDict_Check(scope))
        return 0;
    PyObject *type = PyDict_GetItemWithError(scope, str_type);
    if (!type) {
        PyErr_Clear();
        return 0;
    }
    return type == str_http ||
           (PyUnicode_Check(type) && PyUnicode_Compare(type, str_http) == 0);
}

/* An awaitable for one ASGI call of the middleware `self` (an ASGIMiddleware). */
static PyObject *call_middleware(PyObject *self, PyObject *scope, PyObject *receive,
                                 PyObject *send)
{
    PyObject *app = PyObject_GetAttr(self, str_app);
    if (!app)
        return NULL;
    PyObject *args[3] = {scope, receive, send};
    if (!is_http(scope)) {
        PyObject *out = PyObject_Vectorcall(app, args, 3, NULL);
        Py_DECREF(app);
        return out;
    }
    PyObject *mw = PyObject_GetAttr(self, str_mw);
    PyObject *req = NULL;
    if (mw && !PyObject_TypeCheck(mw, &nprof_py_middleware_type))
        PyErr_Format(PyExc_TypeError, "ASGIMiddleware._mw is a %.100s, not a _core.Middleware",
                     Py_TYPE(mw)->tp_name);
    else if (mw)
        req = nprof_py_mw_asgi_begin((nprof_py_middleware *)mw, scope);
    Py_XDECREF(mw);
    PyObject *out = NULL;
    if (!req) {
        out = NULL;
    } else if (req == Py_None) {
        Py_DECREF(req);
        out = PyObject_Vectorcall(app, args, 3, NULL);
    } else if (!PyObject_TypeCheck(req, &nprof_py_request_type) ||
               ((nprof_py_request *)req)->st.profile_mode == NPROF_MW_PROFILE_JSON) {
        /* A dashboard response, or ?profile=json: the Python side sends them. */
        PyObject *rargs[5] = {self, req, scope, receive, send};
        out = PyObject_VectorcallMethod(str_respond, rargs, 5, NULL);
        Py_DECREF(req);
    } else {
        out = profiled(app, (nprof_py_request *)req, scope, receive, send);
    }
    Py_DECREF(app);
    return out;
}

/* The class's tp_call (install_asgi_call): instance(scope, receive, send). */
static PyObject *middleware_tp_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"scope", "receive", "send", NULL};
    PyObject *scope, *receive, *send;
    if (!kwargs && PyTuple_GET_SIZE(args) == 3)
        return call_middleware(self, PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1),
                               PyTuple_GET_ITEM(args, 2));
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:__call__", kw, &scope, &receive, &send))
        return NULL;
    return call_middleware(self, scope, receive, send);
}

/* _core.asgi_call(middleware, scope, receive, send): what ASGIMiddleware.__call__ awaits. */
static PyObject *asgi_call_function(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError,
                            "asgi_call(middleware, scope, receive, send) takes 4 arguments, "
                            "got %zd",
                            nargs);
    return call_middleware(args[0], args[1], args[2], args[3]);
}

/* _core.install_asgi_call(cls): instances of `cls` (exactly) are called in C. */
static PyObject *install_asgi_call(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyType_Check(cls) || !PyType_HasFeature((PyTypeObject *)cls, Py_TPFLAGS_HEAPTYPE))
        return PyErr_Format(PyExc_TypeError, "install_asgi_call() takes a class, got %.100s",
                            Py_TYPE(cls)->tp_name);
    ((PyTypeObject *)cls)->tp_call = middleware_tp_call;
    Py_RETURN_NONE;
}

static PyMethodDef asgi_functions[] = {
    {"asgi_call", (PyCFunction)(void (*)(void))asgi_call_function, METH_FASTCALL,
     "asgi_call(middleware, scope, receive, send): the awaitable of one ASGI call of an "
     "ASGIMiddleware."},
    {"install_asgi_call", install_asgi_call, METH_O,
     "install_asgi_call(cls): calling an instance of cls runs asgi_call() directly."},
    {NULL, NULL, 0, NULL},
};

int nprof_py_asgi_init(PyObject *m)
{
    static const nprof_py_name names[] = {
        {&str_type, "type"}, {&str_http, "http"}, {&str_app, "app"},
        {&str_mw, "_mw"},    {&str_respond, "_respond"},
    };
    if (nprof_py_intern_names(names, sizeof names / sizeof *names) < 0)
        return -1;
    if (nprof_py_forward_type_ready(&asgi_call_type) < 0 ||
        PyModule_AddObjectRef(m, "ASGICall", (PyObject *)&asgi_call_type) < 0 ||
        PyModule_AddFunctions(m, asgi_functions) < 0)
        return -1;
    return 0;
}
