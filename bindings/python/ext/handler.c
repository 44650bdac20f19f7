/*
 * bindings/python/ext/handler.c: @profile_handler.  A sync handler is wrapped by a C
 * callable (vectorcall), so a decorated call costs a profile begin/end, two context variable
 * writes and the header, with no Python frame of ours; async handlers go through a small
 * Python coroutine that calls handler_enter()/handler_exit() here.
 *
 * Under a middleware request the decorator only marks the handler phase (the middleware owns
 * the request and its headers).  Alone, it profiles the call as a request of its own and
 * attaches X-Profile to the result where the result can carry it.
 */
#include "ext.h"

#include <string.h>

/* ---- X-Profile on results -------------------------------------------------------------- */

/* Names used on every call, made once (PyDict_*ItemString would build and intern a new
 * str each time: a quarter of a decorated call's cost). */
static PyObject *str_x_profile, *str_flask;

static int init_names(void)
{
    if (!str_x_profile) {
        str_x_profile = PyUnicode_InternFromString("X-Profile");
        str_flask = PyUnicode_InternFromString("flask");
    }
    return str_x_profile && str_flask ? 0 : -1;
}

static PyObject *header_pair(PyObject *header)
{
    return PyTuple_Pack(2, str_x_profile, header);
}

/* (body, status, headers) or (body, headers): a copy with the header in the headers. */
static PyObject *attach_tuple(PyObject *t, PyObject *header)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    if (n < 2 || n > 3)
        return Py_NewRef(t);
    PyObject *h = PyTuple_GET_ITEM(t, n - 1);
    PyObject *nh;
    if (PyDict_Check(h)) {
        nh = PyDict_Copy(h);
        if (nh && PyDict_SetItem(nh, str_x_profile, header) < 0)
            Py_CLEAR(nh);
    } else if (PyList_Check(h)) {
        PyObject *pair = header_pair(header);
        nh = pair ? PySequence_List(h) : NULL;
        if (nh && PyList_Append(nh, pair) < 0)
            Py_CLEAR(nh);
        Py_XDECREF(pair);
    } else {
        return Py_NewRef(t);
    }
    if (!nh)
        return NULL;
    PyObject *out = PyTuple_New(n);
    if (!out) {
        Py_DECREF(nh);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n - 1; i++)
        PyTuple_SET_ITEM(out, i, Py_NewRef(PyTuple_GET_ITEM(t, i)));
    PyTuple_SET_ITEM(out, n - 1, nh);
    return out;
}

static int flask_loaded(void)
{
    return PyDict_GetItemWithError(PyImport_GetModuleDict(), str_flask) != NULL;
}

PyObject *nprof_py_attach(PyObject *result, PyObject *header)
{
    if (PyTuple_CheckExact(result))
        return attach_tuple(result, header);
    /* Plain values carry no headers, except in Flask, which makes them a response anyway. */
    PyTypeObject *t = Py_TYPE(result);
    int plain = result == Py_None || t == &PyUnicode_Type || t == &PyBytes_Type ||
                t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type ||
                t == &PyDict_Type || t == &PyList_Type;
    if (!nprof_py_attach_hook || (plain && !flask_loaded()))
        return Py_NewRef(result);
    return PyObject_CallFunctionObjArgs(nprof_py_attach_hook, result, header, NULL);
}

/* ---- method and path of the request a handler serves ------------------------------------ */

/* The hook is asked only when a framework request may be there: a first argument that is
 * not a plain value, or no argument in a process that loaded Flask (whose views take none). */
static int request_info(PyObject *const *args, Py_ssize_t nargs, PyObject **method,
                        PyObject **path)
{
    *method = *path = NULL;
    if (!nprof_py_info_hook)
        return 0;
    if (nargs) {
        PyTypeObject *t = Py_TYPE(args[0]);
        if (t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type ||
            t == &PyBytes_Type || t == &PyDict_Type || t == &PyList_Type ||
            t == &PyTuple_Type || args[0] == Py_None)
            return 0;
    } else if (!flask_loaded()) {
        return 0;
    }
    PyObject *tuple = PyTuple_New(nargs);
    if (!tuple)
        return -1;
    for (Py_ssize_t i = 0; i < nargs; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    PyObject *info = PyObject_CallOneArg(nprof_py_info_hook, tuple);
    Py_DECREF(tuple);
    if (!info) {
        /* The profiler must not break the handler: an arguments list the hook cannot read
         * is profiled under the function's name. */
        PyErr_Clear();
        return 0;
    }
    if (PyTuple_Check(info) && PyTuple_GET_SIZE(info) == 2 &&
        PyUnicode_Check(PyTuple_GET_ITEM(info, 0)) && PyUnicode_Check(PyTuple_GET_ITEM(info, 1))) {
        *method = Py_NewRef(PyTuple_GET_ITEM(info, 0));
        *path = Py_NewRef(PyTuple_GET_ITEM(info, 1));
    }
    Py_DECREF(info);
    return 0;
}

/* Begins the standalone request of a decorated call; NULL with no exception when profiling
 * is off, NULL with an exception on error. */
static nprof_py_request *begin_call(PyObject *const *args, Py_ssize_t nargs, PyObject *qualname,
                                    int sync_call)
{
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return NULL;
    PyObject *method, *path;
    if (request_info(args, nargs, &method, &path) < 0)
        return NULL;
    Py_ssize_t ml = 4, pl = 0;
    PyObject *mk = NULL, *pk = NULL;
    const char *m = method ? nprof_py_text(method, &ml, &mk, "method") : "CALL";
    const char *p = m ? nprof_py_text(path ? path : qualname, &pl, &pk, "path") : NULL;
    nprof_profile *prof = NULL;
    int rc = m && p ? nprof_request_begin(rt, m, (size_t)ml, p, (size_t)pl, 0, &prof) : NPROF_EINVAL;
    Py_XDECREF(mk);
    Py_XDECREF(pk);
    Py_XDECREF(method);
    Py_XDECREF(path);
    if (rc == NPROF_ENOPROFILE || (rc == NPROF_EINVAL && PyErr_Occurred()))
        return NULL;
    if (rc != NPROF_OK)
        return (nprof_py_request *)nprof_py_raise(rc, "@profile_handler");
    nprof_py_request *r = nprof_py_request_start(NPROF_PY_REQ_STANDALONE, prof, sync_call);
    if (!r) {
        nprof_request_discard(prof);
        return NULL;
    }
    nprof_phase_begin(prof, NPROF_PHASE_HANDLER);
    return r;
}

/* Ends it: the result (NULL when the handler raised, with the exception still set) gets
 * X-Profile; the exception, if any, passes through unchanged. */
static PyObject *end_call(nprof_py_request *r, PyObject *result)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    nprof_py_request_flush(r);
    nprof_phase_end(r->p, NPROF_PHASE_HANDLER);
    PyObject *header = NULL;
    nprof_py_request_finish(r, result ? 200 : 500, 0, result ? &header : NULL);
    Py_DECREF(r);
    if (!result) {
        PyErr_Restore(et, ev, tb);
        return NULL;
    }
    if (!header) {
        Py_DECREF(result);
        return NULL;
    }
    PyObject *out = nprof_py_attach(result, header);
    Py_DECREF(header);
    Py_DECREF(result);
    return out;
}

/* ---- the sync wrapper ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *func;
    PyObject *qualname;
    PyObject *dict;
    vectorcallfunc vectorcall;
} handler_obj;

static int mw_mark(nprof_py_request *r, int phase)
{
    return r->kind == NPROF_PY_REQ_MW && !r->ended ? nprof_py_mark_phase(r, phase) : 0;
}

static PyObject *handler_call(handler_obj *h, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    nprof_py_request *cur = nprof_py_current_request();
    if (cur && cur->kind == NPROF_PY_REQ_MW) {
        Py_INCREF(cur);
        mw_mark(cur, NPROF_PHASE_HANDLER);
        PyObject *res = PyObject_Vectorcall(h->func, args, nargsf, kwnames);
        mw_mark(cur, NPROF_PHASE_MIDDLEWARE);
        Py_DECREF(cur);
        return res;
    }
    /* A sync call runs to its end with nothing else on this thread in between, even inside
     * an event loop: the thread's C current profile can be this call's. */
    nprof_py_request *r = begin_call(args, PyVectorcall_NARGS(nargsf), h->qualname, 1);
    if (!r) {
        if (PyErr_Occurred())
            return NULL;
        return PyObject_Vectorcall(h->func, args, nargsf, kwnames);
    }
    return end_call(r, PyObject_Vectorcall(h->func, args, nargsf, kwnames));
}

static PyObject *handler_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (!obj || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static int handler_traverse(handler_obj *h, visitproc visit, void *arg)
{
    Py_VISIT(h->func);
    Py_VISIT(h->qualname);
    Py_VISIT(h->dict);
    return 0;
}

static int handler_clear(handler_obj *h)
{
    Py_CLEAR(h->func);
    Py_CLEAR(h->qualname);
    Py_CLEAR(h->dict);
    return 0;
}

static void handler_dealloc(handler_obj *h)
{
    PyObject_GC_UnTrack(h);
    handler_clear(h);
    PyObject_GC_Del(h);
}

static PyObject *handler_repr(handler_obj *h)
{
    return PyUnicode_FromFormat("<profiled handler %R>", h->func);
}

static PyGetSetDef handler_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject handler_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof.ProfiledHandler",
    .tp_basicsize = sizeof(handler_obj),
    .tp_dealloc = (destructor)handler_dealloc,
    .tp_vectorcall_offset = offsetof(handler_obj, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)handler_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A handler profiled by @profile_handler.",
    .tp_traverse = (traverseproc)handler_traverse,
    .tp_clear = (inquiry)handler_clear,
    .tp_descr_get = handler_get,
    .tp_getset = handler_getset,
    .tp_dictoffset = offsetof(handler_obj, dict),
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
};

static PyObject *py_profile_handler_sync(PyObject *self, PyObject *func)
{
    (void)self;
    if (!PyCallable_Check(func))
        return PyErr_Format(PyExc_TypeError, "@profile_handler takes a function, not %.100s",
                            Py_TYPE(func)->tp_name);
    if ((handler_type.tp_dict == NULL && PyType_Ready(&handler_type) < 0) || init_names() < 0)
        return NULL;
    PyObject *qualname = PyObject_GetAttrString(func, "__qualname__");
    if (!qualname || !PyUnicode_Check(qualname)) {
        PyErr_Clear();
        Py_XDECREF(qualname);
        qualname = PyObject_Repr(func);
        if (!qualname)
            return NULL;
    }
    handler_obj *h = PyObject_GC_New(handler_obj, &handler_type);
    if (!h) {
        Py_DECREF(qualname);
        return NULL;
    }
    h->func = Py_NewRef(func);
    h->qualname = qualname;
    h->dict = NULL;
    h->vectorcall = (vectorcallfunc)handler_call;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

/* ---- async handlers -------------------------------------------------------------------------- */

static PyObject *py_handler_enter(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyTuple_Check(args[0]) || !PyUnicode_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "handler_enter(args: tuple, qualname: str)");
    if (init_names() < 0)
        return NULL;
    nprof_py_request *cur = nprof_py_current_request();
    if (cur && cur->kind == NPROF_PY_REQ_MW) {
        mw_mark(cur, NPROF_PHASE_HANDLER);
        return Py_NewRef(cur);
    }
    nprof_py_request *r = begin_call(&PyTuple_GET_ITEM(args[0], 0), PyTuple_GET_SIZE(args[0]),
                                     args[1], 0);
    if (!r && !PyErr_Occurred())
        Py_RETURN_NONE;
    return (PyObject *)r;
}

static PyObject *py_handler_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "handler_exit(token, result, failed)");
    PyObject *token = args[0], *result = args[1];
    int failed = PyObject_IsTrue(args[2]);
    if (token == Py_None)
        return Py_NewRef(result);
    if (Py_TYPE(token) != &nprof_py_request_type)
        return PyErr_Format(PyExc_TypeError, "handler_exit(): not a token of handler_enter()");
    nprof_py_request *r = (nprof_py_request *)token;
    if (r->kind == NPROF_PY_REQ_MW) {
        mw_mark(r, NPROF_PHASE_MIDDLEWARE);
        return Py_NewRef(result);
    }
    if (r->ended || !r->p)
        return Py_NewRef(result);
    Py_INCREF(r); /* end_call() takes the reference begin_call() gave */
    PyObject *out = end_call(r, failed ? NULL : Py_NewRef(result));
    if (failed && !out && !PyErr_Occurred())
        Py_RETURN_NONE;
    return out;
}

PyMethodDef nprof_py_handler_methods[] = {
    {"profile_handler_sync", py_profile_handler_sync, METH_O,
     "The C wrapper behind @profile_handler for a sync function."},
    {"handler_enter", (PyCFunction)(void (*)(void))py_handler_enter, METH_FASTCALL,
     "Begins what an async handler's call is profiled as."},
    {"handler_exit", (PyCFunction)(void (*)(void))py_handler_exit, METH_FASTCALL,
     "Ends what handler_enter() began; returns the result with X-Profile."},
    {NULL, NULL, 0, NULL},
};
