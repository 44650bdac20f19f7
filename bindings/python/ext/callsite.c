/*
 * bindings/python/ext/callsite.c: the application line that issued a query.
 *
 * A query's call site is the innermost frame of the Python stack that belongs to the
 * application: not to nanoprof, the standard library, the framework, the ORM or the driver.
 * Which frames are "library" is decided by the frame's file, against a list of path prefixes
 * (the standard library, site-packages, nanoprof's own package: set by nanoprof at import,
 * extendable by the user).  Walking the stack is paid only when a call site is wanted (the
 * first query of each shape in a request, a slow query, a query seen by an observer), and
 * the per-frame decision is remembered per code object (codetab.c), so a walk through
 * thirty ORM frames costs thirty pointer lookups, not thirty prefix comparisons.
 */
#include "ext.h"

#include <stdlib.h>
#include <string.h>


typedef struct site_code {
    PyObject *code;  /* the table's (codetab.c) */
    char *where;     /* NULL: a library frame; else "display/path.py\0qualname" */
    size_t path_len; /* bytes of the display path */
    int lasti, line; /* the last instruction offset asked about and its line (lasti -1:
                        none; set at insert): a call site is usually the same line again, in a loop, and
                        CPython finds a line by walking the code's line table */
} site_code;

static nprof_py_paths library_paths; /* and the base paths are shown relative to */

static void site_release(void *entry)
{
    free(((site_code *)entry)->where);
}

static nprof_py_codetab sites = {.entry_size = sizeof(site_code), .release = site_release};

static int is_library(const char *file, size_t len)
{
    /* Frozen modules (importlib) and nanoprof's generated code are never the application. */
    if (len >= 8 && memcmp(file, "<frozen ", 8) == 0)
        return 1;
    return nprof_py_paths_match(&library_paths, file, len) >= 0;
}

/* What the table says of `code`, learning it on first sight.  NULL with *library set for a
 * library frame; NULL with an exception on failure. */
static site_code *lookup(PyCodeObject *code, int *library)
{
    void *empty;
    site_code *s = nprof_py_codetab_find(&sites, code, &empty);
    if (s) {
        *library = s->where == NULL;
        return s;
    }
    if (!empty) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t flen;
    PyObject *filename = PyObject_GetAttrString((PyObject *)code, "co_filename");
    const char *file = filename && PyUnicode_Check(filename)
                           ? PyUnicode_AsUTF8AndSize(filename, &flen)
                           : NULL;
    if (!file) {
        Py_XDECREF(filename);
        PyErr_Clear();
        file = "?";
        flen = 1;
        filename = NULL;
    }
    char *where = NULL;
    size_t path_len = 0;
    if (!is_library(file, (size_t)flen)) {
        const char *shown = file;
        size_t shown_len = nprof_py_paths_shown(&library_paths, &shown, (size_t)flen);
        PyObject *qn = PyObject_GetAttrString((PyObject *)code, "co_qualname");
        Py_ssize_t qlen = 0;
        const char *q = qn && PyUnicode_Check(qn) ? PyUnicode_AsUTF8AndSize(qn, &qlen) : NULL;
        if (!q) {
            PyErr_Clear();
            q = "?";
            qlen = 1;
        }
        where = malloc(shown_len + (size_t)qlen + 2);
        if (where) {
            memcpy(where, shown, shown_len);
            where[shown_len] = '\0';
            memcpy(where + shown_len + 1, q, (size_t)qlen);
            where[shown_len + 1 + qlen] = '\0';
            path_len = shown_len;
        }
        Py_XDECREF(qn);
        if (!where) {
            Py_XDECREF(filename);
            PyErr_NoMemory();
            return NULL;
        }
    }
    Py_XDECREF(filename);
    s = empty;
    nprof_py_codetab_insert(&sites, s, code);
    s->where = where;
    s->path_len = path_len;
    s->lasti = -1;
    *library = where == NULL;
    return s;
}

/* Appends `n` bytes of `t` to buf[*at], within `cap`. */
static void put(char *buf, size_t cap, size_t *at, const char *t, size_t n)
{
    if (n > cap - *at)
        n = cap - *at;
    memcpy(buf + *at, t, n);
    *at += n;
}

PyObject *nprof_py_callsite_frame;

size_t nprof_py_callsite_write(char *buf, size_t cap)
{
    /* The given frame and the frames it was called from, then the running stack: a given
     * frame is a suspended coroutine's (nprof_py_awaiting_frame), whose callers are the
     * running frames, not linked to it. */
    PyObject *given = nprof_py_callsite_frame;
    PyFrameObject *f = given ? (PyFrameObject *)Py_NewRef(given)
                             : PyThreadState_GetFrame(PyThreadState_Get()); /* new ref or NULL */
    size_t n = 0;
    while (f || given) {
        if (!f) {
            given = NULL;
            f = PyThreadState_GetFrame(PyThreadState_Get());
            continue;
        }
        PyCodeObject *code = PyFrame_GetCode(f);
        int library = 1;
        site_code *s = lookup(code, &library);
        Py_DECREF(code);
        if (!s) {
            PyErr_Clear();
            break;
        }
        if (!library) {
            char line[24];
            int ln;
#if PY_VERSION_HEX >= 0x030B0000
            int lasti = PyFrame_GetLasti(f);
            if (lasti >= 0 && lasti == s->lasti) {
                ln = s->line;
            } else {
                ln = PyFrame_GetLineNumber(f);
                s->lasti = lasti;
                s->line = ln;
            }
#else
            ln = PyFrame_GetLineNumber(f);
#endif
            /* ":<line> in ", by hand: snprintf cost more than the rest of the call site. */
            char *e = line + sizeof line;
            memcpy(e - 4, " in ", 4);
            char *d = nprof_py_decimal(e - 4, ln > 0 ? (unsigned long long)ln : 0);
            *--d = ':';
            size_t k = (size_t)(e - d);
            /* Keep the end of a long path: the file name and line are what say where. */
            const char *path = s->where;
            size_t plen = s->path_len;
            const char *qual = s->where + plen + 1;
            size_t qlen = strlen(qual);
            size_t room = cap > k + qlen + 3 ? cap - k - qlen : 0;
            if (plen > room && room > 3) {
                put(buf, cap, &n, "...", 3);
                path += plen - (room - 3);
                plen = room - 3;
            }
            put(buf, cap, &n, path, plen);
            put(buf, cap, &n, d, k);
            put(buf, cap, &n, qual, qlen);
            Py_DECREF(f);
            return n;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    return n;
}

/* What `o` (a coroutine, a generator or one of nanoprof's forwards) awaits now, or NULL;
 * new ref.  Never raises.  (A rare path: attributes by name.) */
static PyObject *awaits(PyObject *o)
{
    PyObject *inner = nprof_py_forward_inner(o);
    if (inner)
        return Py_NewRef(inner);
    const char *name = PyCoro_CheckExact(o) ? "cr_await" : PyGen_Check(o) ? "gi_yieldfrom" : NULL;
    PyObject *next = name ? PyObject_GetAttrString(o, name) : NULL;
    if (!next)
        PyErr_Clear();
    return next;
}

/* Down the chain of awaits from `gen` (stolen) to the coroutine that awaits `awaited`: its
 * frame, new ref, or NULL.  Bounded: a chain is a few awaits deep, and a cycle would be a
 * bug elsewhere, not a reason to spin. */
static PyObject *frame_awaiting(PyObject *gen, PyObject *awaited)
{
    PyObject *frame = NULL;
    for (int depth = 0; gen && !frame && depth < 64; depth++) {
        PyObject *next = awaits(gen);
        if (next == awaited && (PyCoro_CheckExact(gen) || PyGen_Check(gen))) {
            frame = PyObject_GetAttrString(gen, PyCoro_CheckExact(gen) ? "cr_frame" : "gi_frame");
            if (!frame || !PyFrame_Check(frame)) {
                Py_CLEAR(frame);
                PyErr_Clear();
            }
        }
        Py_DECREF(gen);
        gen = next;
    }
    Py_XDECREF(gen);
    return frame;
}

/* The coroutine of the running asyncio task, new ref, or NULL.  asyncio only when already
 * imported: a query under another event loop (trio) must not import it. */
static PyObject *task_coroutine(void)
{
    PyObject *name = PyUnicode_FromString("asyncio");
    PyObject *asyncio = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    PyObject *task = asyncio ? PyObject_CallMethod(asyncio, "current_task", NULL) : NULL;
    PyObject *coro = task && task != Py_None ? PyObject_CallMethod(task, "get_coro", NULL) : NULL;
    Py_XDECREF(asyncio);
    Py_XDECREF(task);
    if (!coro)
        PyErr_Clear();
    return coro;
}

PyObject *nprof_py_awaiting_frame(PyObject *awaited)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    /* From the innermost coroutine whose frame is running (a coroutine's throw() into the
     * coroutine it awaits runs with its frame pushed), else from the task's own coroutine
     * (the one awaiting the query may be the task's, with no coroutine frame running). */
    PyFrameObject *top = PyThreadState_GetFrame(PyThreadState_Get());
    PyObject *gen = top ? PyFrame_GetGenerator(top) : NULL;
    Py_XDECREF(top);
    PyObject *frame = gen ? frame_awaiting(gen, awaited) : NULL;
    if (!frame && (gen = task_coroutine()) != NULL)
        frame = frame_awaiting(gen, awaited);
    PyErr_Restore(type, value, tb);
    return frame;
#else
    (void)awaited;
    return NULL;
#endif
}

PyObject *nprof_py_callsite(void)
{
    char buf[NPROF_CALLSITE_MAX];
    size_t n = nprof_py_callsite_write(buf, sizeof buf);
    return n ? nprof_py_str(buf, n) : Py_NewRef(Py_None);
}

static PyObject *py_callsite(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return nprof_py_callsite();
}

static PyObject *py_set_callsite_exclude(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"prefixes", "base", NULL};
    PyObject *seq_in, *base = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:set_callsite_exclude", kw, &seq_in,
                                     &base))
        return NULL;
    if (nprof_py_paths_set(&library_paths, &seq_in, 1, base, "path prefixes") < 0)
        return NULL;
    nprof_py_codetab_clear(&sites);
    Py_RETURN_NONE;
}

PyMethodDef nprof_py_callsite_methods[] = {
    {"callsite", py_callsite, METH_NOARGS,
     "callsite(): the innermost application frame as 'file.py:42 in function', or None."},
    {"set_callsite_exclude", (PyCFunction)(void (*)(void))py_set_callsite_exclude,
     METH_VARARGS | METH_KEYWORDS,
     "set_callsite_exclude(prefixes, base=None): paths whose frames are never a call site; "
     "paths under `base` are shown relative to it."},
    {NULL, NULL, 0, NULL},
};
