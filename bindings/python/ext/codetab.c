/*
 * bindings/python/ext/codetab.c: what a part of the extension learnt about each code object
 * it met (callsite.c: where a frame is shown and whether it is a library's; sampler.c: a
 * frame's name and library), so that walking thirty frames of a stack costs thirty pointer
 * lookups, not thirty path comparisons and string builds.
 *
 * Open addressing on the code object's address, in a fixed array emptied when it is 3/4
 * full.  Each entry holds a strong reference to its code object, so an address in the table
 * can never be reused by another code object while it is there.  Used with the GIL held.
 */
#include "ext.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 4096 /* a power of two */

static PyObject **code_of(nprof_py_codetab *t, size_t i)
{
    return (PyObject **)((char *)t->slots + i * t->entry_size);
}

void nprof_py_codetab_clear(nprof_py_codetab *t)
{
    if (!t->slots)
        return;
    for (size_t i = 0; i < SLOTS; i++) {
        PyObject **code = code_of(t, i);
        if (!*code)
            continue;
        Py_CLEAR(*code);
        t->release(code);
        memset(code, 0, t->entry_size);
    }
    t->used = 0;
    t->epoch++;
}

void *nprof_py_codetab_find(nprof_py_codetab *t, PyCodeObject *code, void **empty)
{
    *empty = NULL;
    if (!t->slots && !(t->slots = calloc(SLOTS, t->entry_size)))
        return NULL;
    size_t h = ((uintptr_t)code >> 4) * 0x9E3779B97F4A7C15ull >> 20;
    for (size_t i = 0;; i++) {
        PyObject **slot = code_of(t, (h + i) & (SLOTS - 1));
        if (*slot == (PyObject *)code)
            return slot;
        if (*slot)
            continue;
        if (t->used >= SLOTS / 4 * 3) { /* full enough: start again, empty */
            nprof_py_codetab_clear(t);
            return nprof_py_codetab_find(t, code, empty);
        }
        *empty = slot;
        return NULL;
    }
}

void nprof_py_codetab_insert(nprof_py_codetab *t, void *empty, PyCodeObject *code)
{
    *(PyObject **)empty = Py_NewRef((PyObject *)code);
    t->used++;
}
