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
 *             await self.app(scope, receive, <send with req's headers added>)
 *         except BaseException: req.end(500); raise
 *         req.end(req.status or 500)
 *
 * is what asgi_call() does: for a scope other than http it returns the app's own
 * coroutine; for http an ASGICall (a forward, forward.c) whose first step, in the awaiting
 * task as the coroutine's body ran, begins the request and makes what it awaits (the app's
 * coroutine, or the Python `_respond` for the dashboard and ?profile=json), and which ends
 * the request when that returns or raises.  A Python coroutine per request, its frame and
 * its bytecode were a fifth of what the middleware cost an app under load.
 *
 * ASGI servers tell ASGI 3 apps by `inspect.iscoroutinefunction(app.__call__)` (uvicorn,
 * hypercorn), so ASGIMiddleware keeps an `async def __call__` (which awaits asgi_call()),
 * and install_asgi_call() points the class's tp_call at the C call: calling the instance
 * skips the Python method, asking for `__call__` still finds it.  A subclass gets the
 * Python method (CPython sets its tp_call from its own lookup), which does the same.
 * The installed class's instances have `app` and `_mw` read at their slots' offsets.
 */
#include "ext.h"

#include <string.h>

#include <structmember.h>

static PyObject *str_type, *str_http, *str_app, *str_mw, *str_respond;

/* The class install_asgi_call() set up, and where its instances keep `app` and `_mw`: slots
 * (PerformanceMiddleware's __slots__), read at their offsets on every request.  Looked up
 * by name, each was a search of the class's MRO whenever the type cache had lost it, which
 * the rest of a request's code makes likely.  0: not a slot, looked up by name. */
static PyTypeObject *direct_class; /* strong */
static Py_ssize_t app_offset, mw_offset;

/* The middleware's attribute `name`, at `offset` for an instance of direct_class.  New
 * ref, or NULL with the exception of the lookup (an unset slot reads through it too, for
 * its AttributeError). */
NPROF__HOT_PATH
static PyObject *middleware_attr(PyObject *self, Py_ssize_t offset, PyObject *name)
{
    if (NPROF_LIKELY(offset && Py_TYPE(self) == direct_class)) {
        PyObject *v = *(PyObject **)((char *)self + offset);
        if (NPROF_LIKELY(v != NULL))
            return Py_NewRef(v);
    }
    return PyObject_GetAttr(self, name);
}

/* The offset of `cls`'s slot `name`, or 0 when `name` is something else there. */
static Py_ssize_t slot_offset(PyTypeObject *cls, PyObject *name)
{
    PyObject *d = PyObject_GetAttr((PyObject *)cls, name);
    Py_ssize_t offset = 0;
    if (d && Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY))
            offset = m->offset;
    }
    if (!d)
        PyErr_Clear();
    Py_XDECREF(d);
    return offset;
}

typedef struct {
    nprof_py_forward fw; /* fw.iter: the application's coroutine, made at the first step */
    nprof_py_request *req; /* the profiled request, from the first step to its end */
    /* The call, kept until the first step begins the request: there, in the awaiting
     * task's context, as the Python coroutine began it (a request begun at call time
     * would be made current in the caller's context, which may not be the task's). */
    PyObject *middleware, *scope, *receive;
    /* The server's send.  A profiled request's app is given the ASGICall itself as its
     * send (call_send), which adds the headers and sends with this one: a wrapper object
     * of its own per request was an allocation and a GC object more. */
    PyObject *send;
    vectorcallfunc vectorcall;
} asgi_call;

/* Lets go of what the first step needed; the send too, unless the app sends through us. */
NPROF__HOT_PATH
static void release_call(asgi_call *c)
{
    Py_CLEAR(c->middleware);
    Py_CLEAR(c->scope);
    Py_CLEAR(c->receive);
    if (!c->req)
        Py_CLEAR(c->send);
}

/* The ASGICall called as the app's send(message). */
NPROF__HOT_PATH
static PyObject *call_send(asgi_call *c, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames)
        return PyErr_Format(PyExc_TypeError, "send(message) takes one message");
    if (!c->send) /* cleared by the cyclic GC, which a send from a finalizer could see */
        return PyErr_Format(PyExc_RuntimeError, "send() of a request that is gone");
    return nprof_py_asgi_send_message(c->req, c->send, args[0]);
}

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

NPROF__HOT_PATH
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

/* Destroyed unfinished (its task was): the request ends as failed, as the Python
 * coroutine's `finally` ended it on GeneratorExit.  Closed before its first step: nothing
 * was begun. */
static void call_dropped(nprof_py_forward *f, int started)
{
    (void)started;
    if (end_request((asgi_call *)f, 500) < 0)
        PyErr_WriteUnraisable((PyObject *)f);
}

static int call_first_step(nprof_py_forward *f);

static const nprof_py_forward_ops call_ops = {
    .returned = call_returned,
    .raised = call_raised,
    .dropped = call_dropped,
    .first_step = call_first_step,
    .guarded = 0,
};

static int call_traverse(asgi_call *c, visitproc visit, void *arg)
{
    Py_VISIT(c->req);
    Py_VISIT(c->middleware);
    Py_VISIT(c->scope);
    Py_VISIT(c->receive);
    Py_VISIT(c->send);
    return nprof_py_forward_traverse(&c->fw, visit, arg);
}

static int call_clear(asgi_call *c)
{
    nprof_py_forward_clear(&c->fw);
    Py_CLEAR(c->req);
    release_call(c);
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
    .tp_flags = Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(asgi_call, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_doc = "An ASGI request through ASGIMiddleware: its first step begins the request, "
              "then it awaits the application's coroutine and ends the request with it (made "
              "by ASGIMiddleware's call, not from Python).  Called with a message, it is "
              "the send the application was given: the server's, with the profile's "
              "headers added at http.response.start.",
    .tp_traverse = (traverseproc)call_traverse,
    .tp_clear = (inquiry)call_clear,
};

/* What `await` iterates for awaitable `a` (a new ref, taken from the caller), or NULL. */
static PyObject *iterate(PyObject *a)
{
    if (!a)
        return NULL;
    PyObject *iter = nprof_py_await_iterator(a);
    Py_DECREF(a);
    return iter;
}

/* The first step, in the awaiting task: begins the request and makes what is awaited.
 * Unprofiled, the app's own coroutine; a dashboard response or ?profile=json, the Python
 * _respond; otherwise the app's coroutine with the send that adds the headers, and the
 * request ends when it does.  -1 with an exception (and the request ended, as failed)
 * when the app could not be called. */
NPROF__HOT_PATH
static int call_first_step(nprof_py_forward *f)
{
    asgi_call *c = (asgi_call *)f;
    PyObject *args[3] = {c->scope, c->receive, c->send};
    PyObject *app = middleware_attr(c->middleware, app_offset, str_app);
    PyObject *mw = app ? middleware_attr(c->middleware, mw_offset, str_mw) : NULL;
    PyObject *req = NULL;
    if (mw && !PyObject_TypeCheck(mw, &nprof_py_middleware_type))
        PyErr_Format(PyExc_TypeError, "ASGIMiddleware._mw is a %.100s, not a _core.Middleware",
                     Py_TYPE(mw)->tp_name);
    else if (mw)
        req = nprof_py_mw_asgi_begin((nprof_py_middleware *)mw, c->scope);
    if (req == Py_None) {
        f->iter = iterate(PyObject_Vectorcall(app, args, 3, NULL));
    } else if (req && (!PyObject_TypeCheck(req, &nprof_py_request_type) ||
                       ((nprof_py_request *)req)->st.profile_mode == NPROF_MW_PROFILE_JSON)) {
        PyObject *rargs[5] = {c->middleware, req, c->scope, c->receive, c->send};
        f->iter = iterate(PyObject_VectorcallMethod(str_respond, rargs, 5, NULL));
    } else if (req) {
        c->req = (nprof_py_request *)Py_NewRef(req);
        args[2] = (PyObject *)c; /* call_send */
        f->iter = iterate(PyObject_Vectorcall(app, args, 3, NULL));
        if (!f->iter)
            call_raised(f, 1); /* the app was not called, or raised at once: ended, failed */
    }
    Py_XDECREF(req);
    Py_XDECREF(mw);
    Py_XDECREF(app);
    release_call(c); /* what runs now holds what it needs */
    return f->iter ? 0 : -1;
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
    return nprof_py_str_is(type, str_http);
}

/* An awaitable for one ASGI call of the middleware `self` (an ASGIMiddleware): the app's
 * own coroutine for a scope other than http, else an ASGICall (see call_first_step). */
NPROF__HOT_PATH
static PyObject *call_middleware(PyObject *self, PyObject *scope, PyObject *receive,
                                 PyObject *send)
{
    if (!is_http(scope)) {
        PyObject *app = middleware_attr(self, app_offset, str_app);
        PyObject *args[3] = {scope, receive, send};
        PyObject *out = app ? PyObject_Vectorcall(app, args, 3, NULL) : NULL;
        Py_XDECREF(app);
        return out;
    }
    asgi_call *c = PyObject_GC_New(asgi_call, &asgi_call_type);
    if (!c)
        return NULL;
    nprof_py_forward_start(&c->fw, &call_ops, NULL);
    c->req = NULL;
    c->middleware = Py_NewRef(self);
    c->scope = Py_NewRef(scope);
    c->receive = Py_NewRef(receive);
    c->send = Py_NewRef(send);
    c->vectorcall = (vectorcallfunc)call_send;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* The class's tp_call (install_asgi_call): instance(scope, receive, send). */
NPROF__HOT_PATH
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
    PyTypeObject *t = (PyTypeObject *)cls;
    t->tp_call = middleware_tp_call;
    Py_XSETREF(direct_class, (PyTypeObject *)Py_NewRef(cls));
    app_offset = slot_offset(t, str_app);
    mw_offset = slot_offset(t, str_mw);
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
