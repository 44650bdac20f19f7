/*
 * bindings/python/ext/paths.c: the path tables frames are classified by.  The call-site
 * finder (callsite.c) and the stack sampler (sampler.c) each ask of a frame's file which
 * configured prefix it starts with (a library's root, nanoprof's own package) and how to
 * show it (relative to the application's directory); both keep one of these tables, set
 * from Python (nanoprof/_callsite.py) and read with the GIL held.
 */
#include "ext.h"

#include <stdlib.h>
#include <string.h>

/* A malloc'd NUL-terminated copy of text `o`: NULL with the exception. */
static char *copy_text(PyObject *o, size_t *len, const char *what)
{
    Py_ssize_t n;
    PyObject *keep;
    const char *t = nprof_py_text(o, &n, &keep, what);
    if (!t)
        return NULL;
    char *c = malloc((size_t)n + 1);
    if (c) {
        memcpy(c, t, (size_t)n);
        c[n] = '\0';
        *len = (size_t)n;
    } else {
        PyErr_NoMemory();
    }
    Py_XDECREF(keep);
    return c;
}

int nprof_py_paths_set(nprof_py_paths *t, PyObject *const *groups, int ngroups, PyObject *base,
                       const char *what)
{
    nprof_py_paths fresh;
    memset(&fresh, 0, sizeof fresh);
    for (int g = 0; g < ngroups; g++) {
        if (PyUnicode_Check(groups[g]) || PyBytes_Check(groups[g])) {
            PyErr_Format(PyExc_TypeError, "%s must be a sequence of paths, not one %.50s", what,
                         Py_TYPE(groups[g])->tp_name);
            goto fail;
        }
        PyObject *seq = PySequence_Fast(groups[g], "expected a sequence of paths");
        if (!seq)
            goto fail;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            if (fresh.count == NPROF_PY_PATHS_MAX) {
                PyErr_Format(PyExc_ValueError, "at most %d %s", NPROF_PY_PATHS_MAX, what);
                Py_DECREF(seq);
                goto fail;
            }
            char *c = copy_text(PySequence_Fast_GET_ITEM(seq, i), &fresh.lens[fresh.count],
                                "a path");
            if (!c) {
                Py_DECREF(seq);
                goto fail;
            }
            fresh.items[fresh.count] = c;
            fresh.groups[fresh.count++] = g;
        }
        Py_DECREF(seq);
    }
    if (base != Py_None) {
        fresh.base = copy_text(base, &fresh.base_len, "base");
        if (!fresh.base)
            goto fail;
        while (fresh.base_len > 1 && fresh.base[fresh.base_len - 1] == '/')
            fresh.base[--fresh.base_len] = '\0';
    }
    nprof_py_paths_clear(t);
    *t = fresh;
    return 0;
fail:
    nprof_py_paths_clear(&fresh);
    return -1;
}

void nprof_py_paths_clear(nprof_py_paths *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->items[i]);
    free(t->base);
    memset(t, 0, sizeof *t);
}

long nprof_py_paths_match(const nprof_py_paths *t, const char *file, size_t len)
{
    long best = -1;
    for (size_t i = 0; i < t->count; i++)
        if (len >= t->lens[i] && (best < 0 || t->lens[i] > t->lens[best]) &&
            memcmp(file, t->items[i], t->lens[i]) == 0)
            best = (long)i;
    return best;
}

size_t nprof_py_paths_shown(const nprof_py_paths *t, const char **file, size_t len)
{
    if (t->base_len && len > t->base_len + 1 && memcmp(*file, t->base, t->base_len) == 0 &&
        (*file)[t->base_len] == '/') {
        *file += t->base_len + 1;
        return len - t->base_len - 1;
    }
    return len;
}
