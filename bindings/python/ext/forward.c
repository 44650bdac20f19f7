/*
 * bindings/python/ext/forward.c: an awaitable that forwards every step to a coroutine and
 * tells its owner how that coroutine ended.  Two owners use it: TimedAwait (timed.c), a
 * query of a coroutine driver method, recorded when the driver's coroutine ends; and
 * ASGICall (asgi.c), an ASGI request, ended when the application's coroutine ends.
 *
 * It is what a Python `async def` wrapper with a try/except/finally around one `await`
 * does, without the wrapper's coroutine and frame: `await` reaches am_send, which is one
 * PyIter_Send into the wrapped coroutine.  send(), throw() and close() are forwarded as a
 * coroutine forwards them to the iterator it awaits (asyncio throws CancelledError in,
 * and closes a coroutine whose task is destroyed).
 *
 * Each owner is its own type, whose object starts with nprof_py_forward; the type gets the
 * shared slots from nprof_py_forward_type_ready() and keeps its own traverse, clear and
 * repr.  The owner's callbacks run once: `returned` or `raised` at the end, or `dropped`
 * when the awaitable is closed before it started or destroyed before its end.
 */
#include "ext.h"

#include <stddef.h>
#include <string.h>

_Thread_local unsigned nprof_py_step_depth;

static PyObject *str_throw, *str_close, *str_value, *str_name, *str_qualname;

enum {
    FW_NEW,     /* made, not stepped yet */
    FW_ACTIVE,  /* its first step was a send: the owner's work is under way */
    FW_PASSIVE, /* its first step was a throw(): forwarded, the owner is told `started` 0 */
    FW_DONE,    /* ended: steps go to the wrapped (ended) iterator, which refuses them */
};

void nprof_py_fetch_exception(PyObject **type, PyObject **value, PyObject **tb)
{
    PyErr_Fetch(type, value, tb);
    PyErr_NormalizeException(type, value, tb);
    if (*tb && *value)
        PyException_SetTraceback(*value, *tb);
}

void nprof_py_replace_exception(PyObject **type, PyObject **value, PyObject **tb)
{
    PyObject *t, *v, *b;
    nprof_py_fetch_exception(&t, &v, &b);
    if (v && *value && v != *value)
        PyException_SetContext(v, *value); /* steals */
    else
        Py_XDECREF(*value);
    Py_XDECREF(*type);
    Py_XDECREF(*tb);
    *type = t;
    *value = v;
    *tb = b;
}

NPROF__HOT_PATH
PyObject *nprof_py_await_iterator(PyObject *awaitable)
{
    if (PyCoro_CheckExact(awaitable) || PyGen_CheckExact(awaitable))
        return Py_NewRef(awaitable); /* a generator: a types.coroutine one, or a refusal */
    PyAsyncMethods *am = Py_TYPE(awaitable)->tp_as_async;
    if (!am || !am->am_await)
        return PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression",
                            Py_TYPE(awaitable)->tp_name);
    PyObject *iter = am->am_await(awaitable);
    if (iter && !PyIter_Check(iter)) {
        PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'",
                     Py_TYPE(iter)->tp_name);
        Py_CLEAR(iter);
    }
    return iter;
}

NPROF__HOT_PATH
void nprof_py_forward_start(nprof_py_forward *f, const nprof_py_forward_ops *ops, PyObject *iter)
{
    f->ops = ops;
    f->guarded = ops->guarded;
    f->unstacked = 0;
    f->finalized = 0;
    f->plain_start = ops->first_step == NULL;
    f->iter = Py_XNewRef(iter);
    f->weakrefs = NULL;
    f->state = FW_NEW;
}

/* ---- the end, told to the owner once -------------------------------------------------- */

NPROF__HOT_PATH
static int fw_returned(nprof_py_forward *f)
{
    int started = f->state == FW_ACTIVE;
    f->state = FW_DONE;
    return f->ops->returned(f, started);
}

static void fw_raised(nprof_py_forward *f)
{
    int started = f->state == FW_ACTIVE;
    f->state = FW_DONE;
    f->ops->raised(f, started);
}

/* Ended without a result or an error to report.  Runs with no exception set and leaves
 * none (the pending one, if any, is kept aside). */
static void fw_dropped(nprof_py_forward *f)
{
    int started = f->state == FW_ACTIVE;
    f->state = FW_DONE;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    f->ops->dropped(f, started);
    PyErr_Restore(type, value, tb);
}

/* One forwarded step, with this thread's step depth up when the owner asks for it and its
 * work is under way.  Only then is the thread-local touched: reaching it costs a call into
 * the loader (a TLS descriptor, see CMakeLists.txt) whose lines run cold, and most steps
 * are an ASGI request's, which is not guarded (it added 0, at the same cost). */
#define FORWARDED_STEP(f, call)                                                               \
    do {                                                                                     \
        if ((f)->guarded && (f)->state == FW_ACTIVE) {                                        \
            nprof_py_step_depth++;                                                           \
            call;                                                                            \
            nprof_py_step_depth--;                                                           \
        } else {                                                                             \
            call;                                                                            \
        }                                                                                    \
    } while (0)

/* Has the cyclic GC cleared it (an object a finalizer kept alive may still be stepped)?
 * Raises when it has.  (A new forward may have no iterator yet: its owner makes it at the
 * first step.) */
static int fw_cleared(nprof_py_forward *f)
{
    if (f->iter || f->state == FW_NEW)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    return 1;
}

/* ---- the steps ------------------------------------------------------------------------- */

/* One send to the wrapped iterator: its am_send called directly (a coroutine's, for what
 * both owners wrap), which is what PyIter_Send does first, without that function's own
 * lines on a path that runs cold at every step. */
NPROF__HOT_PATH
static inline PySendResult send_to(PyObject *iter, PyObject *arg, PyObject **result)
{
    PyAsyncMethods *am = Py_TYPE(iter)->tp_as_async;
    if (NPROF_LIKELY(am && am->am_send))
        return am->am_send(iter, arg, result);
    return PyIter_Send(iter, arg, result);
}

/* The wrapped iterator's step ended it (`status` not PYGEN_NEXT): the owner is told. */
NPROF__HOT_PATH
static NPROF__NOINLINE PySendResult fw_step_ended(nprof_py_forward *f, PySendResult status,
                                                 PyObject **result)
{
    if (f->state == FW_DONE)
        return status;
    if (status == PYGEN_RETURN) {
        if (fw_returned(f) < 0) {
            Py_CLEAR(*result);
            return PYGEN_ERROR;
        }
        return PYGEN_RETURN;
    }
    fw_raised(f);
    return PYGEN_ERROR;
}

/* The step itself, for every kind of send: forwarded with the step depth raised as the
 * forward's state asks (FORWARDED_STEP), and an end told to the owner. */
NPROF__HOT_PATH
static inline PySendResult forward_step(nprof_py_forward *f, PyObject *arg, PyObject **result)
{
    PySendResult status;
    FORWARDED_STEP(f, status = send_to(f->iter, arg, result));
    return NPROF_LIKELY(status == PYGEN_NEXT) ? status : fw_step_ended(f, status, result);
}

/* A send to a forward that is not simply under way: its first step (the owner's work
 * begins), a passive or ended one (forwarded as it is), or one the GC cleared. */
static NPROF__NOINLINE PySendResult fw_send_other(nprof_py_forward *f, PyObject *arg,
                                                 PyObject **result)
{
    *result = NULL;
    if (fw_cleared(f))
        return PYGEN_ERROR;
    if (f->state == FW_NEW) {
        f->state = FW_ACTIVE;
        if (f->ops->first_step && f->ops->first_step(f) < 0) {
            f->state = FW_DONE; /* the owner has ended its work and set the exception */
            return PYGEN_ERROR;
        }
        if (!f->iter) {
            f->state = FW_DONE;
            PyErr_SetString(PyExc_SystemError, "a forward's first step made no iterator");
            return PYGEN_ERROR;
        }
    }
    return forward_step(f, arg, result);
}

/* A step of a forward under way, the one that runs at every step of every request and
 * query: a few instructions around the send, the rest out of line. */
NPROF__HOT_PATH
static PySendResult fw_am_send(nprof_py_forward *f, PyObject *arg, PyObject **result)
{
    if (NPROF_UNLIKELY(f->state != FW_ACTIVE || !f->iter)) {
        /* A first step with nothing to do first (TimedAwait's) starts it here. */
        if (f->state != FW_NEW || !f->plain_start || !f->iter)
            return fw_send_other(f, arg, result);
        f->state = FW_ACTIVE;
    }
    return forward_step(f, arg, result);
}

/* Raises StopIteration carrying `value`.  The instance is made here: PyErr_SetObject would
 * take a tuple for the arguments and an exception for the instance itself. */
static void raise_stop(PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return;
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (stop) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
}

static PyObject *fw_iternext(nprof_py_forward *f)
{
    PyObject *result;
    PySendResult status = fw_am_send(f, Py_None, &result);
    if (status == PYGEN_NEXT)
        return result;
    if (status == PYGEN_RETURN) {
        if (result != Py_None) /* None: returning NULL with nothing set says it */
            raise_stop(result);
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *fw_send(nprof_py_forward *f, PyObject *arg)
{
    PyObject *result;
    PySendResult status = fw_am_send(f, arg, &result);
    if (status == PYGEN_NEXT)
        return result;
    if (status == PYGEN_RETURN) {
        raise_stop(result);
        Py_DECREF(result);
    }
    return NULL;
}

/* The value of the pending StopIteration (which is cleared).  New ref, or NULL with an
 * exception. */
static PyObject *take_stop_value(void)
{
    PyObject *type, *value, *tb;
    nprof_py_fetch_exception(&type, &value, &tb);
    PyObject *result = value ? PyObject_GetAttr(value, str_value) : Py_NewRef(Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return result;
}

/* After a throw() forwarded to the wrapped iterator returned `r`: a yielded value passes,
 * a return ends it and becomes StopIteration, an error ends it. */
static PyObject *fw_after_throw(nprof_py_forward *f, PyObject *r)
{
    if (r || f->state == FW_DONE)
        return r;
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        fw_raised(f);
        return NULL;
    }
    PyObject *value = take_stop_value();
    if (!value) {
        fw_raised(f);
        return NULL;
    }
    if (fw_returned(f) == 0)
        raise_stop(value);
    Py_DECREF(value);
    return NULL;
}

/* throw(type[, value[, traceback]]) or throw(exception) when the wrapped iterator has no
 * throw(): the exception is raised here, as `await` does for such an iterator. */
static void raise_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 ? args[1] : Py_None;
    PyObject *tb = nargs > 2 ? args[2] : Py_None;
    if (PyExceptionInstance_Check(typ)) {
        if (val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    } else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from BaseException, "
                     "not %.100s",
                     Py_TYPE(typ)->tp_name);
        return;
    }
    if (tb != Py_None) {
        PyObject *t, *v, *b;
        nprof_py_fetch_exception(&t, &v, &b);
        if (v)
            PyException_SetTraceback(v, tb);
        Py_XSETREF(b, Py_NewRef(tb));
        PyErr_Restore(t, v, b);
    }
}

/* throw(...): forwarded to the wrapped iterator.  As the first step it makes the forward
 * passive: a wrapper thrown into before it started raises without running its body, so
 * the owner's work never began (an un-started coroutine likewise raises at once). */
static PyObject *fw_throw(nprof_py_forward *f, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3)
        return PyErr_Format(PyExc_TypeError, "throw expected 1 to 3 arguments, got %zd", nargs);
    if (fw_cleared(f))
        return NULL;
    if (!f->iter) {
        /* Not started, and nothing to forward to yet: raised here, as a coroutine not
         * started raises what is thrown into it. */
        raise_thrown(args, nargs);
        fw_dropped(f);
        return NULL;
    }
    if (f->state == FW_NEW)
        f->state = FW_PASSIVE;
    PyObject *throw = PyObject_GetAttr(f->iter, str_throw);
    PyObject *r = NULL;
    f->unstacked = 1;
    if (throw) {
        FORWARDED_STEP(f, r = PyObject_Vectorcall(throw, args, (size_t)nargs, NULL));
        Py_DECREF(throw);
    } else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        raise_thrown(args, nargs);
    }
    r = fw_after_throw(f, r);
    f->unstacked = 0;
    return r;
}

/* iter.close() when it has one, else None. */
static PyObject *close_iter(PyObject *iter)
{
    PyObject *close = PyObject_GetAttr(iter, str_close);
    if (!close) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return r;
}

/* close(): the wrapped coroutine is closed.  Under way, the owner is told it raised
 * GeneratorExit, as a wrapper's `except BaseException` would see it; not started, that it
 * was dropped. */
static PyObject *fw_close(nprof_py_forward *f, PyObject *noargs)
{
    (void)noargs;
    if (!f->iter) {
        /* Not started and nothing made yet, or cleared by the GC: nothing to close. */
        if (f->state == FW_NEW)
            fw_dropped(f);
        Py_RETURN_NONE;
    }
    if (f->state != FW_ACTIVE) {
        PyObject *r = close_iter(f->iter);
        if (f->state != FW_DONE)
            fw_dropped(f);
        return r;
    }
    PyObject *r;
    f->unstacked = 1;
    FORWARDED_STEP(f, r = close_iter(f->iter));
    if (r) {
        Py_DECREF(r);
        PyErr_SetNone(PyExc_GeneratorExit);
    }
    fw_raised(f);
    f->unstacked = 0;
    if (!r || !PyErr_ExceptionMatches(PyExc_GeneratorExit))
        return NULL; /* the close's error, or the owner's callback raised */
    PyErr_Clear();
    Py_RETURN_NONE;
}

NPROF__HOT_PATH
static PyObject *fw_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* Destroyed before its end.  Never awaited: the wrapped coroutine is closed, so that it
 * does not warn that it was never awaited. */
static void fw_finalize(nprof_py_forward *f)
{
    f->finalized = 1;
    if (f->state == FW_DONE)
        return;
    if (!f->iter) {
        if (f->state == FW_NEW)
            fw_dropped(f); /* never started, nothing made: the owner lets go */
        return;
    }
    if (f->state == FW_NEW) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *r = close_iter(f->iter);
        if (r)
            Py_DECREF(r);
        else
            PyErr_WriteUnraisable((PyObject *)f);
        PyErr_Restore(type, value, tb);
    }
    fw_dropped(f);
}

PyObject *nprof_py_forward_inner(PyObject *o)
{
    PyAsyncMethods *am = Py_TYPE(o)->tp_as_async;
    if (!am || am->am_send != (sendfunc)fw_am_send)
        return NULL;
    return ((nprof_py_forward *)o)->iter;
}

int nprof_py_forward_traverse(nprof_py_forward *f, visitproc visit, void *arg)
{
    Py_VISIT(f->iter);
    return 0;
}

NPROF__HOT_PATH
void nprof_py_forward_clear(nprof_py_forward *f)
{
    Py_CLEAR(f->iter);
}

NPROF__HOT_PATH
static void fw_dealloc(nprof_py_forward *f)
{
    /* Ended (the usual case): its finalizer has nothing to do, so it is not called. */
    int ended = f->state == FW_DONE;
    if (!ended && PyObject_CallFinalizerFromDealloc((PyObject *)f) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(f);
    if (f->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)f);
    Py_TYPE(f)->tp_clear((PyObject *)f);
    /* Only an object whose finalizer never ran is reused: CPython marks a finalized object
     * and would never finalize it again, so a reused one dropped unawaited would leave its
     * coroutine unclosed.  Read from our own flag: PyObject_GC_IsFinalized() is a call into
     * libpython whose lines are cold at every query. */
    if (ended && f->ops->recycle && !f->finalized && f->ops->recycle(f))
        return;
    PyObject_GC_Del(f);
}

/* __name__ and __qualname__: the wrapped coroutine's, which asyncio shows for a task. */
static PyObject *fw_get_name(nprof_py_forward *f, void *name)
{
    if (!f->iter)
        return PyUnicode_FromString(Py_TYPE(f)->tp_name);
    return PyObject_GetAttr(f->iter, *(PyObject **)name);
}

static PyGetSetDef fw_getset[] = {
    {"__name__", (getter)fw_get_name, NULL, "the wrapped coroutine's name", &str_name},
    {"__qualname__", (getter)fw_get_name, NULL, "the wrapped coroutine's qualified name",
     &str_qualname},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef fw_methods[] = {
    {"send", (PyCFunction)fw_send, METH_O, "send(value): the next step."},
    {"throw", (PyCFunction)(void (*)(void))fw_throw, METH_FASTCALL,
     "throw(exception) or throw(type[, value[, tb]]): raised in the wrapped coroutine."},
    {"close", (PyCFunction)fw_close, METH_NOARGS, "close(): closes the wrapped coroutine."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods fw_as_async = {
    .am_await = fw_await,
    .am_send = (sendfunc)fw_am_send,
};

PyObject *nprof_py_forward_awaits(PyObject *o)
{
    if (Py_TYPE(o)->tp_as_async != &fw_as_async)
        return NULL;
    return ((nprof_py_forward *)o)->iter;
}

int nprof_py_forward_type_ready(PyTypeObject *type)
{
    static const nprof_py_name names[] = {
        {&str_throw, "throw"}, {&str_close, "close"},       {&str_value, "value"},
        {&str_name, "__name__"}, {&str_qualname, "__qualname__"},
    };
    if (nprof_py_intern_names(names, sizeof names / sizeof *names) < 0)
        return -1;
    type->tp_dealloc = (destructor)fw_dealloc;
    type->tp_as_async = &fw_as_async;
    type->tp_flags |= Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC; /* and the owner's own */
    type->tp_weaklistoffset = offsetof(nprof_py_forward, weakrefs);
    type->tp_iter = PyObject_SelfIter;
    type->tp_iternext = (iternextfunc)fw_iternext;
    type->tp_methods = fw_methods;
    type->tp_getset = fw_getset;
    type->tp_finalize = (destructor)fw_finalize;
    return PyType_Ready(type);
}
