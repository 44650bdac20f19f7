/*
 * bindings/python/ext/store.c: ProfileStore, the ring of finished requests (nanoprof/store.h).
 *
 * Reads take a snapshot, copy what they return into frozen RequestProfile objects and
 * release the snapshot at once: a snapshot held by Python code for long would keep every
 * profile evicted meanwhile from being reused.
 */
#include "ext.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    nprof_runtime *rt;
    nprof_store *s;
    int owned; /* made by nprof_store_create(): destroyed with the object */
} store_obj;

PyObject *nprof_py_store_new(nprof_runtime *rt, nprof_store *s, int owned)
{
    store_obj *o = PyObject_New(store_obj, &nprof_py_store_type);
    if (!o) {
        if (owned)
            nprof_store_destroy(s);
        return NULL;
    }
    o->rt = rt;
    o->s = s;
    o->owned = owned;
    return (PyObject *)o;
}

static void store_dealloc(store_obj *o)
{
    if (o->owned)
        nprof_store_destroy(o->s);
    PyObject_Free(o);
}

/* Frozen copies of the snapshot's profiles, from `from` on, newest first when `reverse`. */
static PyObject *snapshot_list(nprof_snapshot *snap, size_t from, int reverse)
{
    size_t n = nprof_snapshot_count(snap);
    PyObject *list = PyList_New(0);
    for (size_t k = from; list && k < n; k++) {
        size_t i = reverse ? n - 1 - (k - from) : k;
        PyObject *v = nprof_py_profile_frozen(nprof_snapshot_get(snap, i));
        if (!v || PyList_Append(list, v) < 0)
            Py_CLEAR(list);
        Py_XDECREF(v);
    }
    nprof_snapshot_release(snap);
    return list;
}

static int count_arg(PyObject *args, PyObject *kwargs, const char *fmt, Py_ssize_t *n)
{
    static char *kw[] = {"n", NULL};
    *n = 10;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kw, n))
        return -1;
    if (*n < 0) {
        PyErr_Format(PyExc_ValueError, "n must be >= 0, got %zd", *n);
        return -1;
    }
    return 0;
}

static PyObject *store_get_slowest(store_obj *o, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t n;
    if (count_arg(args, kwargs, "|n:get_slowest", &n) < 0)
        return NULL;
    nprof_snapshot *snap;
    int rc = nprof_store_snapshot_slowest(o->s, (size_t)n, &snap);
    return rc == NPROF_OK ? snapshot_list(snap, 0, 0) : nprof_py_raise(rc, "get_slowest()");
}

static PyObject *store_get_recent(store_obj *o, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t n;
    if (count_arg(args, kwargs, "|n:get_recent", &n) < 0)
        return NULL;
    nprof_snapshot *snap;
    int rc = nprof_store_snapshot(o->s, &snap);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "get_recent()");
    size_t count = nprof_snapshot_count(snap);
    return snapshot_list(snap, count > (size_t)n ? count - (size_t)n : 0, 1);
}

static PyObject *store_get_flame_graph(store_obj *o, PyObject *noargs)
{
    (void)noargs;
    nprof_buf b = NPROF_BUF_INIT;
    return nprof_py_rendered(nprof_store_render_collapsed(o->s, &b), &b, 0, "get_flame_graph()");
}

/* The store drawn as 'svg' (flame graph), 'trace' (Chrome Trace Event JSON) or 'collapsed'. */
static PyObject *store_render(store_obj *o, PyObject *what)
{
    const char *w = PyUnicode_Check(what) ? PyUnicode_AsUTF8(what) : NULL;
    if (!w)
        return PyErr_Format(PyExc_TypeError, "render() takes 'svg', 'trace' or 'collapsed'");
    int (*fn)(nprof_store *, nprof_buf *) = !strcmp(w, "svg")         ? nprof_store_render_flamegraph_svg
                                            : !strcmp(w, "trace")     ? nprof_store_render_trace
                                            : !strcmp(w, "collapsed") ? nprof_store_render_collapsed
                                                                      : NULL;
    if (!fn)
        return PyErr_Format(nprof_py_config_error,
                            "render(%R): use 'svg', 'trace' or 'collapsed'", what);
    nprof_buf b = NPROF_BUF_INIT;
    return nprof_py_rendered(fn(o->s, &b), &b, 0, "render()");
}

/* render_samples(format="collapsed", route=None, collapse_libs=False): the sampled call
 * stacks of the stored requests (of one route), summed per stack. */
static PyObject *store_render_samples(store_obj *o, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"format", "route", "collapse_libs", NULL};
    PyObject *fmt = NULL, *route = Py_None;
    int collapse = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|UOp:render_samples", kw, &fmt, &route,
                                     &collapse))
        return NULL;
    int format = fmt ? nprof_py_samples_format(fmt) : NPROF_SAMPLES_COLLAPSED;
    if (format < 0)
        return NULL;
    Py_ssize_t rl = 0;
    PyObject *keep = NULL;
    const char *r = route == Py_None ? NULL : nprof_py_text(route, &rl, &keep, "route");
    if (route != Py_None && !r)
        return NULL;
    nprof_buf b = NPROF_BUF_INIT;
    int rc = nprof_store_render_samples(o->s, r, (size_t)rl, format,
                                        collapse ? NPROF_SAMPLES_COLLAPSE_LIBS : 0, &b);
    Py_XDECREF(keep);
    return nprof_py_rendered(rc, &b, 0, "render_samples()");
}

static PyObject *store_clear(store_obj *o, PyObject *noargs)
{
    (void)noargs;
    nprof_store_clear(o->s);
    Py_RETURN_NONE;
}

static Py_ssize_t store_len(store_obj *o)
{
    return (Py_ssize_t)nprof_store_size(o->s);
}

static PyObject *store_capacity(store_obj *o, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(nprof_store_capacity(o->s));
}

static PyObject *store_push(store_obj *o, PyObject *noargs)
{
    (void)noargs;
    /* Ends the current standalone profile into this store instead of the runtime's. */
    nprof_py_request *r = nprof_py_current_request();
    if (!r || r->kind != NPROF_PY_REQ_STANDALONE)
        Py_RETURN_FALSE;
    Py_INCREF(r);
    nprof_profile *p = r->p;
    nprof_py_request_uncurrent(r);
    nprof_request_end(p, 200);
    nprof_py_request_release(r);
    r->p = NULL;
    Py_DECREF(r);
    int rc = nprof_store_push(o->s, p);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "ProfileStore.push_current()");
    Py_RETURN_TRUE;
}

static PyMethodDef store_methods[] = {
    {"get_slowest", (PyCFunction)(void (*)(void))store_get_slowest, METH_VARARGS | METH_KEYWORDS,
     "The n slowest stored requests, slowest first."},
    {"get_recent", (PyCFunction)(void (*)(void))store_get_recent, METH_VARARGS | METH_KEYWORDS,
     "The n most recent stored requests, newest first."},
    {"get_flame_graph", (PyCFunction)store_get_flame_graph, METH_NOARGS,
     "Collapsed stacks of every stored request, summed per stack."},
    {"render_samples", (PyCFunction)(void (*)(void))store_render_samples,
     METH_VARARGS | METH_KEYWORDS,
     "render_samples(format='collapsed', route=None, collapse_libs=False): the sampled call "
     "stacks of the stored requests (of one route), summed per stack."},
    {"clear", (PyCFunction)store_clear, METH_NOARGS, "Removes every stored request."},
    {"render", (PyCFunction)store_render, METH_O,
     "The stored requests as 'svg', 'trace' (Chrome trace JSON) or 'collapsed' text."},
    {"push_current", (PyCFunction)store_push, METH_NOARGS,
     "Ends the current start_profile() request into this store."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef store_getset[] = {
    {"capacity", (getter)store_capacity, NULL, "how many requests it keeps", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods store_seq = {.sq_length = (lenfunc)store_len};

static PyObject *store_new(PyTypeObject *t, PyObject *args, PyObject *kwargs)
{
    (void)t;
    static char *kw[] = {"capacity", NULL};
    Py_ssize_t cap = 1000;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:ProfileStore", kw, &cap))
        return NULL;
    if (cap < 1 || cap > UINT32_MAX)
        return PyErr_Format(nprof_py_config_error, "ProfileStore(capacity=%zd): capacity must "
                            "be between 1 and 4294967295", cap);
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return NULL;
    nprof_store *s;
    int rc = nprof_store_create(rt, (uint32_t)cap, &s);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "ProfileStore()");
    return nprof_py_store_new(rt, s, 1);
}

PyTypeObject nprof_py_store_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof.ProfileStore",
    .tp_basicsize = sizeof(store_obj),
    .tp_dealloc = (destructor)store_dealloc,
    .tp_as_sequence = &store_seq,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A ring of finished requests: get_store() gives the runtime's, "
              "ProfileStore(capacity) a separate one.",
    .tp_methods = store_methods,
    .tp_getset = store_getset,
    .tp_new = store_new,
};

static PyObject *py_get_store(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_runtime *rt = nprof_py_runtime();
    return rt ? nprof_py_store_new(rt, nprof_runtime_store(rt), 0) : NULL;
}

PyMethodDef nprof_py_store_methods[] = {
    {"get_store", py_get_store, METH_NOARGS, "The default runtime's ProfileStore."},
    {NULL, NULL, 0, NULL},
};
