/*
 * bindings/python/ext/hooks.c: the phase hooks that framework integrations patch into an
 * ASGI router (nanoprof/integrations/starlette.py).  A hook is called instead of the
 * framework's method on every request, so it is a C callable: it marks the phase of the
 * running middleware request, sets the route template, and returns what the method returns
 * (its coroutine, untouched: no coroutine of ours around it).  The phase ends when the next
 * one is marked or when the response's last body message goes out (middleware.c's send).
 *
 * The route template is the ASGI one: the matched route's `path` attribute, prefixed by what
 * Mounts moved into scope["root_path"] beyond where the server mounted the app
 * (scope["app_root_path"]), so "/api" + "/users/{id}".
 */
#include "ext.h"

typedef struct {
    PyObject_HEAD
    PyObject *func;
    int phase;
    int with_route; /* args are (route, scope, receive, send): set the route template */
    PyObject *dict;
    vectorcallfunc vectorcall;
} hook_obj;

static PyObject *str_path, *str_root_path, *str_app_root_path;

/* The template of `route` under `scope`, or NULL (no exception) when it has none. */
static PyObject *asgi_route(PyObject *route, PyObject *scope)
{
    PyObject *path = PyObject_GetAttr(route, str_path);
    if (!path || !PyUnicode_Check(path)) {
        PyErr_Clear();
        Py_XDECREF(path);
        return NULL;
    }
    /* (Errors are cleared only where a lookup failed: the usual request, with an empty
     * root_path, calls nothing it does not need.) */
    PyObject *root = PyDict_Check(scope) ? PyDict_GetItemWithError(scope, str_root_path) : NULL;
    if (!root || !PyUnicode_Check(root) || PyUnicode_GET_LENGTH(root) == 0) {
        if (!root)
            PyErr_Clear();
        return path;
    }
    PyObject *base = PyDict_GetItemWithError(scope, str_app_root_path);
    if (!base || !PyUnicode_Check(base)) {
        if (!base)
            PyErr_Clear();
        base = root; /* no app_root_path: root_path is all the server's */
    }
    Py_ssize_t bl = PyUnicode_GET_LENGTH(base), rl = PyUnicode_GET_LENGTH(root);
    if (bl >= rl || PyUnicode_Tailmatch(root, base, 0, bl, -1) != 1) {
        PyErr_Clear();
        return path;
    }
    PyObject *mount = PyUnicode_Substring(root, bl, rl);
    PyObject *full = mount ? PyUnicode_Concat(mount, path) : NULL;
    Py_XDECREF(mount);
    Py_DECREF(path);
    if (!full)
        PyErr_Clear();
    return full;
}

NPROF__HOT_PATH
static PyObject *hook_call(hook_obj *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    nprof_py_request *r = nprof_py_current_request();
    if (r && r->kind == NPROF_PY_REQ_MW && !r->ended) {
        nprof_py_mark_phase(r, h->phase);
        if (h->with_route && PyVectorcall_NARGS(nargsf) >= 2) {
            PyObject *route = asgi_route(args[0], args[1]);
            if (route) {
                Py_ssize_t len;
                const char *s = PyUnicode_AsUTF8AndSize(route, &len);
                if (s)
                    nprof_mw_set_route(&r->st, s, (size_t)len);
                else
                    PyErr_Clear(); /* a route we cannot read leaves the rules to name it */
                Py_DECREF(route);
            }
        }
    }
    return PyObject_Vectorcall(h->func, args, nargsf, kwnames);
}

NPROF__HOT_PATH
PyObject *nprof_py_method_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    return !obj || obj == Py_None ? Py_NewRef(self) : PyMethod_New(self, obj);
}

static int hook_traverse(hook_obj *h, visitproc visit, void *arg)
{
    Py_VISIT(h->func);
    Py_VISIT(h->dict);
    return 0;
}

static int hook_clear(hook_obj *h)
{
    Py_CLEAR(h->func);
    Py_CLEAR(h->dict);
    return 0;
}

static void hook_dealloc(hook_obj *h)
{
    PyObject_GC_UnTrack(h);
    hook_clear(h);
    PyObject_GC_Del(h);
}

static PyObject *hook_new(PyTypeObject *t, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"func", "phase", "route", NULL};
    PyObject *func;
    int phase, with_route = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi|p:PhaseHook", kw, &func, &phase,
                                     &with_route))
        return NULL;
    if (!PyCallable_Check(func))
        return PyErr_Format(PyExc_TypeError, "PhaseHook(func, ...): func must be callable");
    if (phase < 0 || phase >= NPROF_PHASE_COUNT)
        return PyErr_Format(PyExc_ValueError, "PhaseHook: phase must be 0, 1 or 2, got %d", phase);
    if (!str_path) {
        str_path = PyUnicode_InternFromString("path");
        str_root_path = PyUnicode_InternFromString("root_path");
        str_app_root_path = PyUnicode_InternFromString("app_root_path");
        if (!str_path || !str_root_path || !str_app_root_path)
            return NULL;
    }
    hook_obj *h = (hook_obj *)t->tp_alloc(t, 0);
    if (!h)
        return NULL;
    h->func = Py_NewRef(func);
    h->phase = phase;
    h->with_route = with_route;
    h->vectorcall = (vectorcallfunc)hook_call;
    return (PyObject *)h;
}

static PyGetSetDef hook_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_hook_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.PhaseHook",
    .tp_basicsize = sizeof(hook_obj),
    .tp_dealloc = (destructor)hook_dealloc,
    .tp_vectorcall_offset = offsetof(hook_obj, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "PhaseHook(func, phase, route=False): func, marking `phase` of the running "
              "request when called (and, with route, the ASGI route template of its "
              "(route, scope, ...) arguments).",
    .tp_traverse = (traverseproc)hook_traverse,
    .tp_clear = (inquiry)hook_clear,
    .tp_descr_get = nprof_py_method_get,
    .tp_getset = hook_getset,
    .tp_dictoffset = offsetof(hook_obj, dict),
    .tp_new = hook_new,
};
