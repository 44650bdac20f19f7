/*
 * bindings/python/ext/timed.c: TimedMethod, the database hooks' wrapper of a driver's
 * execute method (nanoprof/db/_base.py: sync_execute, async_execute), and TimedAwait, the
 * awaitable its coroutine form returns.
 *
 * The wrapper is set as a class attribute (`psycopg.Cursor.execute = wrapper`), so every
 * query the application runs goes through it: in Python it cost a frame (and for a
 * coroutine method a coroutine object and a second frame) on top of the recording.  Here a
 * query costs a C call: the guard's read, the recorder's start, the guard's set and reset
 * around the driver's call, and the recorder's finish.  What it does is exactly what the
 * Python wrappers did:
 *
 *     if guard.get() or not (t := recorder.start()):
 *         return func(self, query, *args, **kwargs)
 *     params, rows = args[0] if args else kwargs.get(pname), 0   # or the batch's
 *     token = guard.set(True)
 *     try:
 *         result = func(self, query, *args, **kwargs)
 *     except BaseException as exc:
 *         recorder.finish(t, text(query, self), params, rows, exc)
 *         raise
 *     finally:
 *         guard.reset(token)
 *     recorder.finish(t, text(query, self), params, rows)
 *     return result
 *
 * The recorder (a Live) is read on every call: uninstall turns it off by replacing its
 * start.  The exception a query raised propagates as the same object with the same
 * traceback (and, unlike a Python wrapper, no frame of ours in it).
 *
 * The coroutine form checks the guard and calls start_async when called, calls func (which
 * makes the driver's coroutine), and returns the driver's coroutine itself when nothing is
 * to be recorded.  Otherwise it returns a TimedAwait over it, which forwards every step to
 * the driver's coroutine and records the query when that coroutine returns or raises
 * (cancellation included).
 *
 * The guard of the coroutine form is not the ContextVar but a per-thread count of the
 * TimedAwait steps running now (step_depth): the Python wrapper set the ContextVar from its
 * first step to its end, but the only code that can see it is code running inside one of
 * its steps (between steps the task is suspended and other tasks run in their own
 * contexts), and a step is a synchronous call on this thread.  So "inside a step of a timed
 * query" says the same thing, for two integer writes per step instead of a ContextVar
 * set and reset per query (about 1,800 instructions, a fifth of a hooked query's cost).
 * The sync form keeps the ContextVar: a sync driver call can switch greenlets (gevent), and
 * the greenlet that runs meanwhile has its own context but shares this thread.
 */
#include "ext.h"

#include <stddef.h>
#include <string.h>

static PyObject *str_start, *str_finish, *str_start_async, *str_finish_async;
static PyObject *str_throw, *str_close, *str_query, *str_value, *str_wrapped;
static PyObject *str_module, *str_name, *str_qualname, *str_doc;

/* TimedAwait steps forwarding to a driver's coroutine on this thread now (see the top). */
static _Thread_local unsigned step_depth;

typedef struct {
    PyObject_HEAD
    PyObject *func;      /* the driver's method */
    PyObject *recorder;  /* start/finish/start_async/finish_async read on every call */
    PyObject *guard;     /* the ContextVar: true while a hook is timing a query */
    PyObject *text;      /* text(query, self) -> str | bytes for a query not str/bytes */
    PyObject *pname;     /* interned: the driver's keyword for the parameters */
    PyObject *dict;      /* __wrapped__, __name__, ... */
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
    int many;            /* executemany: params are a sequence of parameter sets */
    int rest;            /* pname "*": the parameters are all positional arguments after
                            the query (asyncpg's style), as a tuple */
    int asynchronous;    /* func returns an awaitable */
} timed_method;

/* What finish() is given about one query.  `start` is the int start() returned, or NULL
 * when the recorder is a LiveRecorder, whose start is `ticks`. */
typedef struct {
    PyObject *start;
    uint64_t ticks;
    PyObject *owner; /* the driver object (self): sql_text renders some queries with it */
    PyObject *query;
    PyObject *params;
    Py_ssize_t rows;
    PyObject *caller; /* async: the frame awaiting the query, taken at its first step.  The
                         call site is looked up from it: an error reaches the query through
                         throw(), which CPython runs without the awaiting coroutine's frame
                         on the stack, so the stack then ends at the event loop. */
} query_info;

/* ---- the parts both forms share ------------------------------------------------------- */

/* Is a query being timed here: inside a step of a TimedAwait on this thread, or with the
 * guard set in this context?  1, 0, or -1 with an exception. */
static int guard_is_set(timed_method *m)
{
    if (step_depth)
        return 1;
    PyObject *value;
    if (PyContextVar_Get(m->guard, Py_False, &value) < 0)
        return -1;
    int on = value == Py_False ? 0 : value == Py_True ? 1 : PyObject_IsTrue(value);
    Py_DECREF(value);
    return on;
}

/* Calls recorder.<finish_name>(start, text, params, rows[, error]).  0, or -1 with the
 * exception finish (or the text function) raised. */
static int record(timed_method *m, PyObject *finish_name, const query_info *q, PyObject *error)
{
    if (m->recorder == Py_None)
        return 0; /* a guard-only method: see guarded_call() */
    PyObject *text;
    if (PyUnicode_CheckExact(q->query) || PyBytes_CheckExact(q->query)) {
        text = Py_NewRef(q->query);
    } else {
        PyObject *targs[2] = {q->query, q->owner};
        text = PyObject_Vectorcall(m->text, targs, 2, NULL);
        if (!text)
            return -1;
    }
    if (!q->start) { /* a LiveRecorder */
        nprof_py_callsite_frame = q->caller;
        nprof_py_live_end(m->recorder, q->ticks, text, q->params ? q->params : Py_None, q->rows,
                          error, finish_name == str_finish);
        nprof_py_callsite_frame = NULL;
        Py_DECREF(text);
        return 0;
    }
    PyObject *rows = PyLong_FromSsize_t(q->rows);
    PyObject *done = NULL;
    PyObject *finish = rows ? PyObject_GetAttr(m->recorder, finish_name) : NULL;
    if (finish) {
        PyObject *fargs[5] = {q->start, text, q->params ? q->params : Py_None, rows, error};
        nprof_py_callsite_frame = q->caller;
        done = PyObject_Vectorcall(finish, fargs, error ? 5 : 4, NULL);
        nprof_py_callsite_frame = NULL;
        Py_DECREF(finish);
    }
    Py_XDECREF(rows);
    Py_DECREF(text);
    if (!done)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* The pending exception as a normalized (type, value, tb) with value.__traceback__ set, as
 * an `except ... as exc` block sees it.  The traceback is the one the exception carries:
 * nothing is added. */
static void fetch_exception(PyObject **type, PyObject **value, PyObject **tb)
{
    PyErr_Fetch(type, value, tb);
    PyErr_NormalizeException(type, value, tb);
    if (*tb && *value)
        PyException_SetTraceback(*value, *tb);
}

/* An exception raised while (type, value, tb) was being handled replaces it, with the old
 * one as its __context__, as it would in an `except` or `finally` block.  Takes the
 * references of the old triple and leaves the new one in it. */
static void replace_exception(PyObject **type, PyObject **value, PyObject **tb)
{
    PyObject *t, *v, *b;
    fetch_exception(&t, &v, &b);
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

/* The query raised (the exception is set): records it, then resets the guard (`token`, when
 * set: the sync form), in the order of the Python wrapper's `except` and `finally`.  The
 * query's exception stays set, the same object with the same traceback; an error of finish
 * or of the reset replaces it, chained, as it would have in Python. */
static void finish_failed(timed_method *m, PyObject *finish_name, const query_info *q,
                          PyObject *token)
{
    PyObject *type, *value, *tb;
    fetch_exception(&type, &value, &tb);
    if (record(m, finish_name, q, value ? value : Py_None) < 0)
        replace_exception(&type, &value, &tb);
    if (token && PyContextVar_Reset(m->guard, token) < 0)
        replace_exception(&type, &value, &tb);
    PyErr_Restore(type, value, tb);
}

/* Index of keyword `name` among the call's keyword names, or -1. */
static Py_ssize_t find_keyword(PyObject *kwnames, PyObject *name)
{
    if (!kwnames)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) /* interned names: pointers first */
        if (PyTuple_GET_ITEM(kwnames, i) == name)
            return i;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, i), name) == 0)
            return i; /* (cannot fail: both are str) */
    return -1;
}

/* ---- TimedAwait ------------------------------------------------------------------------- */

enum {
    AW_NEW,     /* made, not stepped yet */
    AW_TIMED,   /* stepped: its steps guard, the query is recorded when the driver's ends */
    AW_UNTIMED, /* first step was a throw(): forwarded, recorded as nothing (see throw) */
    AW_DONE,    /* ended: steps go to the driver's (ended) iterator, which refuses them */
};

typedef struct {
    PyObject_HEAD
    timed_method *method;
    PyObject *iter;  /* what is driven: the driver's coroutine, or its __await__() */
    query_info q;    /* strong references, released when the query ends */
    PyObject *weakrefs;
    int state;
} timed_await;

static void await_release_query(timed_await *aw)
{
    Py_CLEAR(aw->q.start);
    Py_CLEAR(aw->q.owner);
    Py_CLEAR(aw->q.query);
    Py_CLEAR(aw->q.params);
    Py_CLEAR(aw->q.caller);
}

/* The first step: the frame awaiting the query is its caller. */
static void await_begin(timed_await *aw)
{
    aw->q.caller = (PyObject *)PyThreadState_GetFrame(PyThreadState_Get());
    aw->state = AW_TIMED;
}

/* The driver's coroutine returned: record (the Python wrapper's finish, after its guard
 * was reset: no step of this query runs now).  0, or -1 with finish's error. */
static int await_returned(timed_await *aw)
{
    int was = aw->state;
    aw->state = AW_DONE;
    int rc = was == AW_TIMED ? record(aw->method, str_finish_async, &aw->q, NULL) : 0;
    await_release_query(aw);
    return rc;
}

/* The driver's coroutine raised (the exception is set): record. */
static void await_raised(timed_await *aw)
{
    int was = aw->state;
    aw->state = AW_DONE;
    if (was == AW_TIMED)
        finish_failed(aw->method, str_finish_async, &aw->q, NULL);
    await_release_query(aw);
}

/* Runs one forwarded step with the guard up when the query is timed. */
#define GUARDED_STEP(aw, call)                                                                \
    do {                                                                                     \
        int guarded_ = (aw)->state == AW_TIMED;                                              \
        step_depth += (unsigned)guarded_;                                                    \
        call;                                                                                \
        step_depth -= (unsigned)guarded_;                                                    \
    } while (0)

/* Has the cyclic GC cleared it (an object a finalizer kept alive may still be stepped)?
 * Raises when it has. */
static int await_cleared(timed_await *aw)
{
    if (aw->iter && aw->method)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    return 1;
}

/* One send() (next(): None) to the driver's coroutine, as PyIter_Send reports it. */
static PySendResult await_am_send(timed_await *aw, PyObject *arg, PyObject **result)
{
    *result = NULL;
    if (await_cleared(aw))
        return PYGEN_ERROR;
    if (aw->state == AW_NEW)
        await_begin(aw);
    PySendResult status;
    GUARDED_STEP(aw, status = PyIter_Send(aw->iter, arg, result));
    if (aw->state == AW_DONE || status == PYGEN_NEXT)
        return status;
    if (status == PYGEN_RETURN) {
        if (await_returned(aw) < 0) {
            Py_CLEAR(*result);
            return PYGEN_ERROR;
        }
        return PYGEN_RETURN;
    }
    await_raised(aw);
    return PYGEN_ERROR;
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

static PyObject *await_iternext(timed_await *aw)
{
    PyObject *result;
    PySendResult status = await_am_send(aw, Py_None, &result);
    if (status == PYGEN_NEXT)
        return result;
    if (status == PYGEN_RETURN) {
        if (result != Py_None) /* None: returning NULL with nothing set says it */
            raise_stop(result);
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *await_send(timed_await *aw, PyObject *arg)
{
    PyObject *result;
    PySendResult status = await_am_send(aw, arg, &result);
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
    fetch_exception(&type, &value, &tb);
    PyObject *result = value ? PyObject_GetAttr(value, str_value) : Py_NewRef(Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return result;
}

/* After a throw() or close() forwarded to the driver's iterator returned `r`: a yielded
 * value passes, a return ends the query and becomes StopIteration, an error ends it. */
static PyObject *await_after_forward(timed_await *aw, PyObject *r)
{
    if (r || aw->state == AW_DONE)
        return r;
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        await_raised(aw);
        return NULL;
    }
    PyObject *value = take_stop_value();
    if (!value) {
        await_raised(aw);
        return NULL;
    }
    if (await_returned(aw) == 0)
        raise_stop(value);
    Py_DECREF(value);
    return NULL;
}

/* throw(type[, value[, traceback]]) or throw(exception) when the driver's iterator has no
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
        fetch_exception(&t, &v, &b);
        if (v)
            PyException_SetTraceback(v, tb);
        Py_XSETREF(b, Py_NewRef(tb));
        PyErr_Restore(t, v, b);
    }
}

/* throw(...): forwarded to the driver's iterator.  As the first step, it is forwarded
 * without the guard and ends in no record: the Python wrapper, thrown into before
 * it started, raised without running its body (an un-started driver coroutine likewise
 * raises the exception at once, so the query never ran). */
static PyObject *await_throw(timed_await *aw, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3)
        return PyErr_Format(PyExc_TypeError, "throw expected 1 to 3 arguments, got %zd", nargs);
    if (await_cleared(aw))
        return NULL;
    if (aw->state == AW_NEW)
        aw->state = AW_UNTIMED;
    PyObject *throw = PyObject_GetAttr(aw->iter, str_throw);
    PyObject *r = NULL;
    if (throw) {
        GUARDED_STEP(aw, r = PyObject_Vectorcall(throw, args, (size_t)nargs, NULL));
        Py_DECREF(throw);
    } else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        raise_thrown(args, nargs);
    }
    return await_after_forward(aw, r);
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

/* close(): the driver's coroutine is closed.  A query under way is recorded as ended by
 * GeneratorExit, as the Python wrapper's `except BaseException` recorded it; one not
 * started is not recorded. */
static PyObject *await_close(timed_await *aw, PyObject *noargs)
{
    (void)noargs;
    if (!aw->iter || !aw->method)
        Py_RETURN_NONE; /* cleared by the GC: nothing left to close */
    int was = aw->state;
    if (was != AW_TIMED) {
        aw->state = AW_DONE;
        await_release_query(aw);
        return close_iter(aw->iter);
    }
    PyObject *r;
    GUARDED_STEP(aw, r = close_iter(aw->iter));
    if (!r) {
        await_raised(aw);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_SetNone(PyExc_GeneratorExit);
    await_raised(aw);
    if (!PyErr_ExceptionMatches(PyExc_GeneratorExit))
        return NULL; /* finish raised */
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyObject *await_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* Dropped before its end.  Never awaited: the driver's coroutine is closed, so that it does
 * not warn that it was never awaited (the query never started; nothing is recorded).
 * Started (its task was destroyed mid-query): nothing is recorded, since the running
 * request here is whatever this thread runs now. */
static void await_finalize(timed_await *aw)
{
    if (aw->state == AW_DONE || !aw->method)
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (aw->state == AW_NEW && aw->iter) {
        PyObject *r = close_iter(aw->iter);
        if (r)
            Py_DECREF(r);
        else
            PyErr_WriteUnraisable((PyObject *)aw);
    }
    aw->state = AW_DONE;
    await_release_query(aw);
    PyErr_Restore(type, value, tb);
}

static int await_traverse(timed_await *aw, visitproc visit, void *arg)
{
    Py_VISIT(aw->method);
    Py_VISIT(aw->iter);
    Py_VISIT(aw->q.start);
    Py_VISIT(aw->q.owner);
    Py_VISIT(aw->q.query);
    Py_VISIT(aw->q.params);
    Py_VISIT(aw->q.caller);
    return 0;
}

static int await_clear(timed_await *aw)
{
    Py_CLEAR(aw->method);
    Py_CLEAR(aw->iter);
    await_release_query(aw);
    return 0;
}

static void await_dealloc(timed_await *aw)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)aw) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(aw);
    if (aw->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)aw);
    await_clear(aw);
    PyObject_GC_Del(aw);
}

static PyObject *await_repr(timed_await *aw)
{
    return PyUnicode_FromFormat("<nanoprof timed query awaiting %R>",
                                aw->iter ? aw->iter : Py_None);
}

/* __name__ and __qualname__: the driver's coroutine's, which asyncio shows for a task. */
static PyObject *await_get_name(timed_await *aw, void *name)
{
    if (!aw->iter)
        return PyUnicode_FromString("TimedAwait");
    return PyObject_GetAttr(aw->iter, *(PyObject **)name);
}

static PyGetSetDef await_getset[] = {
    {"__name__", (getter)await_get_name, NULL, "the driver's coroutine's name", &str_name},
    {"__qualname__", (getter)await_get_name, NULL, "the driver's coroutine's qualified name",
     &str_qualname},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef await_methods[] = {
    {"send", (PyCFunction)await_send, METH_O, "send(value): the next step of the query."},
    {"throw", (PyCFunction)(void (*)(void))await_throw, METH_FASTCALL,
     "throw(exception) or throw(type[, value[, tb]]): raised in the query's coroutine."},
    {"close", (PyCFunction)await_close, METH_NOARGS, "close(): closes the query's coroutine."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods await_as_async = {
    .am_await = await_await,
    .am_send = (sendfunc)await_am_send,
};

PyTypeObject nprof_py_timed_await_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.TimedAwait",
    .tp_basicsize = sizeof(timed_await),
    .tp_dealloc = (destructor)await_dealloc,
    .tp_as_async = &await_as_async,
    .tp_repr = (reprfunc)await_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A timed query of a coroutine method: awaits the driver's coroutine, then "
              "records the query (made by TimedMethod, not from Python).",
    .tp_traverse = (traverseproc)await_traverse,
    .tp_clear = (inquiry)await_clear,
    .tp_weaklistoffset = offsetof(timed_await, weakrefs),
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)await_iternext,
    .tp_methods = await_methods,
    .tp_getset = await_getset,
    .tp_finalize = (destructor)await_finalize,
};

/* ---- TimedMethod ---------------------------------------------------------------------- */

/* What `await` iterates for `awaitable`: a coroutine itself, else its __await__().  New
 * ref, or NULL with the TypeError `await` would raise. */
static PyObject *await_iterator(PyObject *awaitable)
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

/* The call with the sequence of an executemany replaced by the list made of it (the same
 * arguments otherwise).  *buf receives what to PyMem_Free after, or NULL. */
static PyObject *const *replace_argument(PyObject *const *args, Py_ssize_t total, Py_ssize_t at,
                                         PyObject *value, PyObject **small, Py_ssize_t nsmall,
                                         PyObject ***heap)
{
    PyObject **out = small;
    *heap = NULL;
    if (total > nsmall) {
        out = PyMem_Malloc((size_t)total * sizeof *out);
        if (!out) {
            PyErr_NoMemory();
            return NULL;
        }
        *heap = out;
    }
    memcpy(out, args, (size_t)total * sizeof *out);
    out[at] = value;
    return out;
}

static PyObject *timed_call(timed_method *m, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames);

/* func(self, query=..., ...): the Python wrapper took `query` as its own parameter and
 * passed it on by position; so does this.  Without `query` (or self), func is called as it
 * was, to raise its own TypeError. */
static PyObject *call_query_by_keyword(timed_method *m, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t at = nargs == 1 ? find_keyword(kwnames, str_query) : -1;
    if (at < 0)
        return PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    PyObject **moved = PyMem_Malloc((size_t)(nkw + 1) * sizeof *moved);
    PyObject *names = PyTuple_New(nkw - 1);
    PyObject *result = NULL;
    if (!moved || !names) {
        if (!moved)
            PyErr_NoMemory();
        goto done;
    }
    moved[0] = args[0];
    moved[1] = args[1 + at];
    for (Py_ssize_t i = 0, j = 0; i < nkw; i++) {
        if (i == at)
            continue;
        PyTuple_SET_ITEM(names, j, Py_NewRef(PyTuple_GET_ITEM(kwnames, i)));
        moved[2 + j] = args[1 + i];
        j++;
    }
    result = timed_call(m, moved, 2, nkw > 1 ? names : NULL);
done:
    PyMem_Free(moved);
    Py_XDECREF(names);
    return result;
}

/* A TimedAwait over the driver's `iter`, taking the references of `q` (start, params). */
static PyObject *make_await(timed_method *m, PyObject *iter, query_info *q)
{
    timed_await *aw = PyObject_GC_New(timed_await, &nprof_py_timed_await_type);
    if (!aw)
        return NULL;
    /* Zeroed first: PyObject_GC_New does not, and a field added later must not start as
     * garbage that the release path would decref. */
    memset((char *)aw + sizeof(PyObject), 0, sizeof *aw - sizeof(PyObject));
    aw->method = (timed_method *)Py_NewRef(m);
    aw->iter = Py_NewRef(iter);
    aw->q.start = q->start;
    aw->q.ticks = q->ticks;
    aw->q.params = q->params;
    aw->q.owner = Py_NewRef(q->owner);
    aw->q.query = Py_NewRef(q->query);
    aw->q.rows = q->rows;
    q->start = q->params = NULL;
    aw->state = AW_NEW;
    PyObject_GC_Track(aw);
    return (PyObject *)aw;
}

/* func(...) called now (it makes the driver's coroutine), in a TimedAwait that takes the
 * references of `q` (start, params); its steps run guarded (see the top). */
static PyObject *call_async(timed_method *m, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames, query_info *q)
{
    PyObject *awaitable = PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    PyObject *iter = awaitable ? await_iterator(awaitable) : NULL;
    Py_XDECREF(awaitable);
    if (!iter)
        return NULL;
    PyObject *aw = make_await(m, iter, q);
    Py_DECREF(iter);
    return aw;
}

/* A method with no recorder (None) is guard-only: the queries it runs inside are part of
 * something else (a pool's housekeeping: asyncpg's Connection.reset()), so its body runs
 * with the guard up and nothing is recorded, for any arguments. */
static PyObject *guarded_call(timed_method *m, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    if (m->asynchronous) {
        query_info q = {.owner = Py_None, .query = Py_None};
        return call_async(m, args, nargsf, kwnames, &q);
    }
    PyObject *token = PyContextVar_Set(m->guard, Py_True);
    if (!token)
        return NULL;
    PyObject *result = PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    if (PyContextVar_Reset(m->guard, token) < 0)
        Py_CLEAR(result); /* (an error of the reset replaces the result, as in Python) */
    Py_DECREF(token);
    return result;
}

static PyObject *timed_call(timed_method *m, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    if (m->recorder == Py_None)
        return guarded_call(m, args, nargsf, kwnames);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 2)
        return call_query_by_keyword(m, args, nargsf, kwnames);
    int busy = guard_is_set(m);
    if (busy < 0)
        return NULL;
    if (busy)
        return PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    PyObject *start = NULL;
    uint64_t ticks = 0;
    if (Py_IS_TYPE(m->recorder, &nprof_py_live_type)) {
        ticks = nprof_py_live_begin(m->recorder, !m->asynchronous);
        if (!ticks)
            return PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    } else {
        start = PyObject_VectorcallMethod(m->asynchronous ? str_start_async : str_start,
                                          &m->recorder, 1, NULL);
        if (!start)
            return NULL;
        int on = PyObject_IsTrue(start);
        if (on <= 0) {
            Py_DECREF(start);
            return on < 0 ? NULL : PyObject_Vectorcall(m->func, args, nargsf, kwnames);
        }
    }

    /* From here start() is paired with a finish() on every path: a sync start() keeps the
     * preload shim out of this thread until then. */
    query_info q = {.start = start, .ticks = ticks, .owner = args[0], .query = args[1],
                    .params = NULL, .rows = 0};
    PyObject *const *call_args = args;
    size_t call_nargsf = nargsf;
    PyObject *small[8], **heap = NULL;
    PyObject *batch = NULL; /* the list made of an executemany's iterator */
    PyObject *result = NULL, *token = NULL;
    PyObject *finish_name = m->asynchronous ? str_finish_async : str_finish;

    Py_ssize_t kw = nargs > 2 ? -1 : find_keyword(kwnames, m->pname);
    if (m->rest) {
        /* asyncpg's fetch(query, *args): every argument after the query is a parameter. */
        if (nargs > 2) {
            q.params = PyTuple_New(nargs - 2);
            if (!q.params)
                goto failed;
            for (Py_ssize_t i = 2; i < nargs; i++)
                PyTuple_SET_ITEM(q.params, i - 2, Py_NewRef(args[i]));
        } else {
            q.params = Py_NewRef(Py_None);
        }
    } else if (!m->many) {
        q.params = Py_NewRef(nargs > 2 ? args[2] : kw >= 0 ? args[nargs + kw] : Py_None);
    } else if (nargs > 2 || kw >= 0) {
        /* batch(): a list or tuple as it is, anything else consumed into a list, which the
         * driver then gets (counting must not eat the application's rows). */
        Py_ssize_t at = nargs > 2 ? 2 : nargs + kw;
        PyObject *seq = args[at];
        if (!PyList_Check(seq) && !PyTuple_Check(seq)) {
            batch = PySequence_List(seq);
            if (!batch)
                goto failed;
            seq = batch;
            Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
            call_args = replace_argument(args, total, at, batch, small,
                                         (Py_ssize_t)(sizeof small / sizeof *small), &heap);
            if (!call_args)
                goto failed;
            call_nargsf = (size_t)nargs;
        }
        if (PyList_CheckExact(seq) || PyTuple_CheckExact(seq)) {
            q.rows = PySequence_Fast_GET_SIZE(seq);
            q.params = Py_NewRef(q.rows ? PySequence_Fast_GET_ITEM(seq, 0) : Py_None);
        } else { /* a subclass: its own len() and [0], as batch() saw them */
            q.rows = PyObject_Length(seq);
            if (q.rows < 0)
                goto failed;
            q.params = q.rows ? PySequence_GetItem(seq, 0) : Py_NewRef(Py_None);
            if (!q.params)
                goto failed;
        }
    } else {
        q.params = Py_NewRef(Py_None);
    }

    if (m->asynchronous) {
        result = call_async(m, call_args, call_nargsf, kwnames, &q);
        if (!result)
            goto failed;
        goto done;
    }

    token = PyContextVar_Set(m->guard, Py_True);
    if (!token)
        goto failed;
    result = PyObject_Vectorcall(m->func, call_args, call_nargsf, kwnames);
    if (!result)
        goto failed;
    int reset = PyContextVar_Reset(m->guard, token);
    Py_CLEAR(token);
    if (reset < 0 || record(m, finish_name, &q, NULL) < 0)
        Py_CLEAR(result);
    goto done;

failed:
    finish_failed(m, finish_name, &q, token);
done:
    Py_XDECREF(token);
    Py_XDECREF(q.start);
    Py_XDECREF(q.params);
    Py_XDECREF(batch);
    PyMem_Free(heap);
    return result;
}

static int method_traverse(timed_method *m, visitproc visit, void *arg)
{
    Py_VISIT(m->func);
    Py_VISIT(m->recorder);
    Py_VISIT(m->guard);
    Py_VISIT(m->text);
    Py_VISIT(m->dict);
    return 0;
}

static int method_clear(timed_method *m)
{
    Py_CLEAR(m->func);
    Py_CLEAR(m->recorder);
    Py_CLEAR(m->guard);
    Py_CLEAR(m->text);
    Py_CLEAR(m->pname);
    Py_CLEAR(m->dict);
    return 0;
}

static void method_dealloc(timed_method *m)
{
    PyObject_GC_UnTrack(m);
    if (m->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)m);
    method_clear(m);
    PyObject_GC_Del(m);
}

/* __module__, __name__, __qualname__ and __doc__ of func, and func as __wrapped__, as
 * functools.wraps gives a Python wrapper (patch() then renames it after its class). */
static int copy_func_attributes(timed_method *m)
{
    m->dict = PyDict_New();
    if (!m->dict || PyDict_SetItem(m->dict, str_wrapped, m->func) < 0)
        return -1;
    PyObject *names[] = {str_module, str_name, str_qualname, str_doc};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        PyObject *value = PyObject_GetAttr(m->func, names[i]);
        if (!value) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();
            continue;
        }
        int rc = PyDict_SetItem(m->dict, names[i], value);
        Py_DECREF(value);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static PyObject *method_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"", "", "guard", "text", "pname", "many", "asynchronous", NULL};
    PyObject *func, *recorder, *guard = NULL, *text = NULL, *pname = NULL;
    int many = 0, asynchronous = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$OOUpp:TimedMethod", kw, &func, &recorder,
                                     &guard, &text, &pname, &many, &asynchronous))
        return NULL;
    if (!PyCallable_Check(func))
        return PyErr_Format(PyExc_TypeError, "TimedMethod(func, ...): func must be callable");
    if (!guard || !PyContextVar_CheckExact(guard))
        return PyErr_Format(PyExc_TypeError, "TimedMethod: guard must be a ContextVar");
    if (!text || !PyCallable_Check(text))
        return PyErr_Format(PyExc_TypeError, "TimedMethod: text must be callable");
    timed_method *m = (timed_method *)type->tp_alloc(type, 0);
    if (!m)
        return NULL;
    m->func = Py_NewRef(func);
    m->recorder = Py_NewRef(recorder);
    m->guard = Py_NewRef(guard);
    m->text = Py_NewRef(text);
    /* No keyword: "" matches none.  Interned: call sites' keywords are, so that they are
     * found by pointer. */
    m->pname = pname ? Py_NewRef(pname) : PyUnicode_FromString("");
    if (!m->pname) {
        Py_DECREF(m);
        return NULL;
    }
    PyUnicode_InternInPlace(&m->pname);
    m->many = many;
    m->rest = PyUnicode_CompareWithASCIIString(m->pname, "*") == 0;
    if (m->rest && many) {
        PyErr_SetString(PyExc_ValueError, "TimedMethod: pname='*' is for one statement, not many");
        Py_DECREF(m);
        return NULL;
    }
    m->asynchronous = asynchronous;
    m->vectorcall = (vectorcallfunc)timed_call;
    if (copy_func_attributes(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

static PyObject *method_repr(timed_method *m)
{
    return PyUnicode_FromFormat("<nanoprof timed %R>", m->func);
}

static PyObject *method_get_pname(timed_method *m, void *closure)
{
    (void)closure;
    return Py_NewRef(m->pname);
}

static PyObject *method_get_many(timed_method *m, void *closure)
{
    (void)closure;
    return PyBool_FromLong(m->many);
}

static PyObject *method_get_asynchronous(timed_method *m, void *closure)
{
    (void)closure;
    return PyBool_FromLong(m->asynchronous);
}

static PyObject *method_get_recorder(timed_method *m, void *closure)
{
    (void)closure;
    return Py_NewRef(m->recorder);
}

static PyGetSetDef method_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"pname", (getter)method_get_pname, NULL, "the driver's keyword for the parameters", NULL},
    {"many", (getter)method_get_many, NULL, "times an executemany", NULL},
    {"asynchronous", (getter)method_get_asynchronous, NULL, "times a coroutine method", NULL},
    {"recorder", (getter)method_get_recorder, NULL, "the recorder (a Live)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_timed_method_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.TimedMethod",
    .tp_basicsize = sizeof(timed_method),
    .tp_dealloc = (destructor)method_dealloc,
    .tp_vectorcall_offset = offsetof(timed_method, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)method_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "TimedMethod(func, recorder, /, *, guard, text, pname='', many=False, "
              "asynchronous=False): func(self, query, *args, **kwargs) timed as one query "
              "(see nanoprof/db/_base.py: sync_execute, async_execute); with recorder None, "
              "func(*args, **kwargs) runs guarded and records nothing (unrecorded()).",
    .tp_traverse = (traverseproc)method_traverse,
    .tp_clear = (inquiry)method_clear,
    .tp_weaklistoffset = offsetof(timed_method, weakrefs),
    .tp_descr_get = nprof_py_method_get,
    .tp_getset = method_getset,
    .tp_dictoffset = offsetof(timed_method, dict),
    .tp_new = method_new,
};

/* _core.in_timed_step(): for the Python hooks, the half of the guard that is not the
 * ContextVar (db/_base.py: guarded()). */
static PyObject *in_timed_step(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return PyBool_FromLong(step_depth != 0);
}

static PyMethodDef timed_functions[] = {
    {"in_timed_step", in_timed_step, METH_NOARGS,
     "in_timed_step() -> bool: a step of a timed coroutine query runs on this thread now."},
    {NULL, NULL, 0, NULL},
};

int nprof_py_timed_init(PyObject *m)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&str_start, "start"},       {&str_finish, "finish"},
        {&str_start_async, "start_async"}, {&str_finish_async, "finish_async"},
        {&str_throw, "throw"},       {&str_close, "close"},
        {&str_query, "query"},       {&str_value, "value"},
        {&str_wrapped, "__wrapped__"}, {&str_module, "__module__"},
        {&str_name, "__name__"},     {&str_qualname, "__qualname__"},
        {&str_doc, "__doc__"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!*names[i].slot && !(*names[i].slot = PyUnicode_InternFromString(names[i].text)))
            return -1;
    if (PyType_Ready(&nprof_py_timed_method_type) < 0 ||
        PyType_Ready(&nprof_py_timed_await_type) < 0 ||
        PyModule_AddObjectRef(m, "TimedMethod", (PyObject *)&nprof_py_timed_method_type) < 0 ||
        PyModule_AddObjectRef(m, "TimedAwait", (PyObject *)&nprof_py_timed_await_type) < 0 ||
        PyModule_AddFunctions(m, timed_functions) < 0)
        return -1;
    return 0;
}
