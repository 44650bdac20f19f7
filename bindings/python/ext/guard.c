/*
 * bindings/python/ext/guard.c: QueryGuard, the database hooks' "a query is being timed
 * here" flag (nanoprof/db/_base.py: `active`).
 *
 * It is a ContextVar (default False) with the ContextVar's get/set/reset, plus a count of
 * the set() calls whose token has not been reset yet.  While that count is 0 no context can
 * hold anything but the default, so a hook asking "is the guard up?" needs no read.  That
 * read is what it saves: on a context where the variable was never set (every ordinary
 * query of an async app, whose timed awaits guard by step depth instead), PyContextVar_Get
 * misses in the context's HAMT, a miss CPython does not cache, about 150 instructions a
 * query.
 *
 * The count is conservative: a token never reset (a hook that lost it) keeps the count up
 * for good, which only brings the read back.  A context copied while the guard was up (a
 * task or thread started inside a timed query) keeps its copy after the count falls to 0;
 * what runs there after the query has ended is not part of that query, and is recorded.
 */
#include "ext.h"

typedef struct {
    PyObject_HEAD
    PyObject *var;          /* the ContextVar */
    Py_ssize_t outstanding; /* set() tokens not reset yet (changed under the GIL) */
} query_guard;

NPROF__HOT_PATH
int nprof_py_guard_is_set(PyObject *guard)
{
    query_guard *g = (query_guard *)guard;
    if (!g->outstanding)
        return 0;
    PyObject *value;
    if (PyContextVar_Get(g->var, Py_False, &value) < 0)
        return -1;
    int on = value == Py_False ? 0 : value == Py_True ? 1 : PyObject_IsTrue(value);
    Py_DECREF(value);
    return on;
}

PyObject *nprof_py_guard_set(PyObject *guard, PyObject *value)
{
    query_guard *g = (query_guard *)guard;
    PyObject *token = PyContextVar_Set(g->var, value);
    if (token)
        g->outstanding++;
    return token;
}

int nprof_py_guard_reset(PyObject *guard, PyObject *token)
{
    query_guard *g = (query_guard *)guard;
    if (PyContextVar_Reset(g->var, token) < 0)
        return -1; /* used already, or another context's: the count stays up */
    if (g->outstanding > 0)
        g->outstanding--;
    return 0;
}

static PyObject *guard_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"name", NULL};
    PyObject *name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U:QueryGuard", kw, &name))
        return NULL;
    query_guard *g = (query_guard *)type->tp_alloc(type, 0);
    if (!g)
        return NULL;
    const char *text = PyUnicode_AsUTF8(name);
    g->var = text ? PyContextVar_New(text, Py_False) : NULL;
    if (!g->var) {
        Py_DECREF(g);
        return NULL;
    }
    return (PyObject *)g;
}

static void guard_dealloc(query_guard *g)
{
    Py_XDECREF(g->var);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyObject *guard_get(query_guard *g, PyObject *noargs)
{
    (void)noargs;
    if (!g->outstanding) /* the Python hooks skip the read as the C ones do */
        return Py_NewRef(Py_False);
    PyObject *value;
    if (PyContextVar_Get(g->var, Py_False, &value) < 0)
        return NULL;
    return value;
}

static PyObject *guard_set(query_guard *g, PyObject *value)
{
    return nprof_py_guard_set((PyObject *)g, value);
}

static PyObject *guard_reset(query_guard *g, PyObject *token)
{
    if (nprof_py_guard_reset((PyObject *)g, token) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *guard_get_var(query_guard *g, void *closure)
{
    (void)closure;
    return Py_NewRef(g->var);
}

static PyObject *guard_get_outstanding(query_guard *g, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(g->outstanding);
}

static PyObject *guard_repr(query_guard *g)
{
    return PyUnicode_FromFormat("<nanoprof QueryGuard %R, %zd set>", g->var, g->outstanding);
}

static PyMethodDef guard_methods[] = {
    {"get", (PyCFunction)guard_get, METH_NOARGS, "get(): the value in this context."},
    {"set", (PyCFunction)guard_set, METH_O, "set(value): a token for reset(), as ContextVar's."},
    {"reset", (PyCFunction)guard_reset, METH_O,
     "reset(token): the value before that set(), as ContextVar's."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef guard_getset[] = {
    {"var", (getter)guard_get_var, NULL, "the ContextVar", NULL},
    {"outstanding", (getter)guard_get_outstanding, NULL,
     "set() tokens not reset yet: while 0, the hooks skip reading the variable", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_guard_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.QueryGuard",
    .tp_basicsize = sizeof(query_guard),
    .tp_dealloc = (destructor)guard_dealloc,
    .tp_repr = (reprfunc)guard_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "QueryGuard(name): a ContextVar (default False) that counts its set() tokens "
              "not reset yet, so that a read can be skipped while none is.",
    .tp_methods = guard_methods,
    .tp_getset = guard_getset,
    .tp_new = guard_new,
};

int nprof_py_guard_init(PyObject *m)
{
    if (PyType_Ready(&nprof_py_guard_type) < 0 ||
        PyModule_AddObjectRef(m, "QueryGuard", (PyObject *)&nprof_py_guard_type) < 0)
        return -1;
    return 0;
}
