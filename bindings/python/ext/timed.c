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
 * TimedAwait steps running now (nprof_py_step_depth): the Python wrapper set the ContextVar from its
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
static PyObject *str_query, *str_wrapped;
static PyObject *str_module, *str_name, *str_qualname, *str_doc;

typedef struct {
    PyObject_HEAD
    PyObject *func;      /* the driver's method */
    PyObject *recorder;  /* start/finish/start_async/finish_async read on every call */
    PyObject *guard;     /* the QueryGuard: true while a hook is timing a query */
    PyObject *text;      /* text(query, self) -> str | bytes for a query not str/bytes */
    PyObject *pname;     /* interned: the driver's keyword for the parameters */
    PyObject *dict;      /* __wrapped__, __name__, ... */
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
    int many;            /* executemany: params are a sequence of parameter sets */
    int rest;            /* pname "*": the parameters are all positional arguments after
                            the query (asyncpg's style), as a tuple */
    int asynchronous;    /* func returns an awaitable */
    int guard_only;      /* recorder is None: see guarded_call().  A flag rather than a
                            compare with None, whose address is one more GOT line read
                            cold at every query */
    int wrapper;         /* Django's execute_wrapper protocol (func is None): called as
                            (execute, sql, params, many, context), it runs
                            execute(sql, params, many, context); `many` says per call
                            whether params is a batch */
} timed_method;

/* The driver's call: func(*args), or for an execute wrapper args[0](*args[1:]). */
NPROF__HOT_PATH
static PyObject *call_func(timed_method *m, PyObject *const *args, size_t nargsf,
                           PyObject *kwnames)
{
    if (!m->wrapper)
        return PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1)
        return PyErr_Format(PyExc_TypeError,
                            "an execute wrapper is called as (execute, sql, params, many, "
                            "context)");
    return PyObject_Vectorcall(args[0], args + 1, (size_t)(nargs - 1), kwnames);
}

/* What finish() is given about one query.  `start` is the int start() returned, or NULL
 * when the recorder is a LiveRecorder, whose start is `ticks`. */
typedef struct {
    PyObject *start;
    uint64_t ticks;
    PyObject *owner; /* the driver object (self): sql_text renders some queries with it */
    PyObject *query;
    PyObject *params; /* strong, or NULL with the values in item[0, nitems): asyncpg's *args,
                         held one by one (nprof_py_query_params) */
    Py_ssize_t nitems;
    PyObject *item[NPROF_PY_QUERY_PARAMS_INLINE];
    Py_ssize_t rows;
    nprof_py_query_ctx ctx; /* from a LiveRecorder's begin: its request, its slow log */
    PyObject *caller; /* async, at an end reached through throw() or close() (a
                         cancellation, a timeout): the frame awaiting the query, which CPython
                         leaves off the stack then (nprof_py_awaiting_frame), so that the
                         call site is looked up from it.  At an end reached by a send it is
                         NULL: the awaiting frame is the running one, and a frame object
                         taken at every query only for the few that want a call site cost
                         an allocation and its cache lines each time. */
} query_info;

/* Lets go of the parameters of `q`.  The items past nitems are NULL (a query_info starts
 * zeroed, only the first nitems are set, and make_await() clears what it moves), so all of
 * them are cleared in a row: a loop over nitems was laid out apart from the query's end,
 * which under callgrind came to 4 more instruction misses a /rec request (7 on /db). */
NPROF__HOT_PATH
static void release_params(query_info *q)
{
    _Static_assert(NPROF_PY_QUERY_PARAMS_INLINE == 3, "release_params clears three items");
    Py_CLEAR(q->params);
    Py_CLEAR(q->item[0]);
    Py_CLEAR(q->item[1]);
    Py_CLEAR(q->item[2]);
    q->nitems = 0;
}

/* ---- the parts both forms share ------------------------------------------------------- */

/* Is a query being timed here: inside a step of a TimedAwait on this thread, or with the
 * guard set in this context?  1, 0, or -1 with an exception. */
NPROF__HOT_PATH
static int guard_is_set(timed_method *m)
{
    return nprof_py_step_depth ? 1 : nprof_py_guard_is_set(m->guard);
}

/* Inlined where it is called, whatever its size: it runs at the end of every query, and
 * out of line (as the compiler chose once the parameters could be held one by one) it took
 * seven more cache lines of code a /rec request under callgrind. */
#if defined(__GNUC__) || defined(__clang__)
#define RECORD_INLINE inline __attribute__((always_inline))
#else
#define RECORD_INLINE inline
#endif

/* Calls recorder.finish (`sync`) or finish_async (start, text, params, rows[, error]).  0,
 * or -1 with the exception finish (or the text function) raised.  The method's kind is an
 * int rather than the method's name: the name is a global that the common path (a
 * LiveRecorder's) does not need, and each global it reads is one more data line fetched cold
 * at every query.  For the same reason the caller's frame is set and cleared only when there
 * is one (nprof_py_callsite_frame is NULL otherwise): a store to a global fetches its line
 * as a load does. */
NPROF__HOT_PATH
static RECORD_INLINE int record(timed_method *m, int sync, const query_info *q, PyObject *error)
{
    if (m->guard_only)
        return 0; /* see guarded_call() */
    PyObject *text;
    if (PyUnicode_CheckExact(q->query) || PyBytes_CheckExact(q->query)) {
        text = Py_NewRef(q->query);
    } else {
        PyObject *targs[2] = {q->query, q->owner};
        text = PyObject_Vectorcall(m->text, targs, 2, NULL);
        if (!text)
            return -1;
    }
    int rc = 0;
    if (NPROF_UNLIKELY(q->caller != NULL))
        nprof_py_callsite_frame = q->caller;
    nprof_py_query_params params = {
        .obj = q->nitems ? NULL : q->params ? q->params : Py_None,
        .item = q->item,
        .n = q->nitems,
    };
    if (!q->start) { /* a LiveRecorder */
        nprof_py_live_end(q->ticks, &q->ctx, text, &params, q->rows, error, sync);
    } else {
        PyObject *rows = PyLong_FromSsize_t(q->rows);
        PyObject *values = rows ? nprof_py_query_params_object(&params) : NULL;
        PyObject *done = NULL;
        PyObject *finish =
            values ? PyObject_GetAttr(m->recorder, sync ? str_finish : str_finish_async) : NULL;
        if (finish) {
            PyObject *fargs[5] = {q->start, text, values, rows, error};
            done = PyObject_Vectorcall(finish, fargs, error ? 5 : 4, NULL);
            Py_DECREF(finish);
        }
        Py_XDECREF(values);
        Py_XDECREF(rows);
        rc = done ? 0 : -1;
        Py_XDECREF(done);
    }
    if (NPROF_UNLIKELY(q->caller != NULL))
        nprof_py_callsite_frame = NULL;
    Py_DECREF(text);
    return rc;
}

/* The query raised (the exception is set): records it, then resets the guard (`token`, when
 * set: the sync form), in the order of the Python wrapper's `except` and `finally`.  The
 * query's exception stays set, the same object with the same traceback; an error of finish
 * or of the reset replaces it, chained, as it would have in Python. */
static void finish_failed(timed_method *m, int sync, const query_info *q, PyObject *token)
{
    PyObject *type, *value, *tb;
    nprof_py_fetch_exception(&type, &value, &tb);
    if (record(m, sync, q, value ? value : Py_None) < 0)
        nprof_py_replace_exception(&type, &value, &tb);
    if (token && nprof_py_guard_reset(m->guard, token) < 0)
        nprof_py_replace_exception(&type, &value, &tb);
    PyErr_Restore(type, value, tb);
}

/* Index of keyword `name` among the call's keyword names, or -1. */
static Py_ssize_t find_keyword(PyObject *kwnames, PyObject *name)
{
    if (!kwnames)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) /* names are unique: the first equal one is it */
        if (nprof_py_str_is(PyTuple_GET_ITEM(kwnames, i), name))
            return i;
    return -1;
}

/* ---- TimedAwait: the coroutine form's awaitable (a forward, forward.c) ------------------ */

typedef struct {
    nprof_py_forward fw; /* fw.iter: the driver's coroutine, or its __await__() */
    timed_method *method;
    query_info q;        /* strong references, released when the query ends */
} timed_await;

NPROF__HOT_PATH
static void await_release_query(timed_await *aw)
{
    Py_CLEAR(aw->q.start);
    Py_CLEAR(aw->q.owner);
    Py_CLEAR(aw->q.query);
    release_params(&aw->q);
    Py_CLEAR(aw->q.caller);
    nprof_py_query_ctx_clear(&aw->q.ctx);
}

/* At the end of a query ended by a throw() or close(): the frame that awaits it, which is
 * then off the stack (see query_info.caller).  At an end reached by a send, that frame is
 * the running one, and nothing is looked up. */
static void await_find_caller(timed_await *aw)
{
    if (NPROF_UNLIKELY(aw->fw.unstacked))
        aw->q.caller = nprof_py_awaiting_frame((PyObject *)aw);
}

/* The driver's coroutine returned: record (the Python wrapper's finish, after its guard
 * was reset: no step of this query runs now).  0, or -1 with finish's error. */
NPROF__HOT_PATH
static int await_returned(nprof_py_forward *f, int started)
{
    timed_await *aw = (timed_await *)f;
    int rc = 0;
    if (started) {
        await_find_caller(aw);
        rc = record(aw->method, 0, &aw->q, NULL);
    }
    await_release_query(aw);
    return rc;
}

/* The driver's coroutine raised (the exception is set): record. */
static void await_raised(nprof_py_forward *f, int started)
{
    timed_await *aw = (timed_await *)f;
    if (started) {
        await_find_caller(aw);
        finish_failed(aw->method, 0, &aw->q, NULL);
    }
    await_release_query(aw);
}

/* Closed before it started, or dropped mid-query (its task was destroyed): nothing is
 * recorded, since the running request here is whatever this thread runs now. */
static void await_dropped(nprof_py_forward *f, int started)
{
    (void)started;
    await_release_query((timed_await *)f);
}

/* Ended TimedAwaits are kept for the next queries: there is one per query, and a GC
 * object's allocation and release are most of what the awaitable itself costs. */
static nprof_py_spare await_spare;

NPROF__HOT_PATH
static int await_recycle(nprof_py_forward *f)
{
    return nprof_py_spare_give(&await_spare, (PyObject *)f);
}

static const nprof_py_forward_ops await_ops = {
    .returned = await_returned,
    .raised = await_raised,
    .dropped = await_dropped,
    .guarded = 1,
    .recycle = await_recycle,
};

static int await_traverse(timed_await *aw, visitproc visit, void *arg)
{
    Py_VISIT(aw->method);
    Py_VISIT(aw->q.start);
    Py_VISIT(aw->q.owner);
    Py_VISIT(aw->q.query);
    Py_VISIT(aw->q.params);
    for (Py_ssize_t i = 0; i < aw->q.nitems; i++)
        Py_VISIT(aw->q.item[i]);
    Py_VISIT(aw->q.caller);
    Py_VISIT(aw->q.ctx.slow_log);
    return nprof_py_forward_traverse(&aw->fw, visit, arg);
}

NPROF__HOT_PATH
static int await_clear(timed_await *aw)
{
    nprof_py_forward_clear(&aw->fw);
    Py_CLEAR(aw->method);
    await_release_query(aw);
    return 0;
}

static PyObject *await_repr(timed_await *aw)
{
    return PyUnicode_FromFormat("<nanoprof timed query awaiting %R>",
                                aw->fw.iter ? aw->fw.iter : Py_None);
}

PyTypeObject nprof_py_timed_await_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.TimedAwait",
    .tp_basicsize = sizeof(timed_await),
    .tp_repr = (reprfunc)await_repr,
    .tp_doc = "A timed query of a coroutine method: awaits the driver's coroutine, then "
              "records the query (made by TimedMethod, not from Python).",
    .tp_traverse = (traverseproc)await_traverse,
    .tp_clear = (inquiry)await_clear,
};

/* ---- TimedMethod ---------------------------------------------------------------------- */

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
    if (at < 0 || m->wrapper)
        return call_func(m, args, nargsf, kwnames);
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
NPROF__HOT_PATH
static PyObject *make_await(timed_method *m, PyObject *iter, query_info *q)
{
    timed_await *aw = (timed_await *)nprof_py_spare_take(&await_spare,
                                                         &nprof_py_timed_await_type);
    if (!aw && !(aw = PyObject_GC_New(timed_await, &nprof_py_timed_await_type)))
        return NULL;
    /* Every field is set here (forward_start sets the head's): the query's as a whole,
     * its references moved from `q`. */
    nprof_py_forward_start(&aw->fw, &await_ops, iter);
    aw->method = (timed_method *)Py_NewRef(m);
    aw->q = *q;
    Py_INCREF(q->owner);
    Py_INCREF(q->query);
    q->start = q->params = NULL;
    q->nitems = 0;
    memset(q->item, 0, sizeof q->item); /* moved too: release_params() clears them all */
    q->ctx = (nprof_py_query_ctx){NULL, NULL, 0};
    PyObject_GC_Track(aw);
    return (PyObject *)aw;
}

/* func(...) called now (it makes the driver's coroutine), in a TimedAwait that takes the
 * references of `q` (start, params); its steps run guarded (see the top). */
NPROF__HOT_PATH
static PyObject *call_async(timed_method *m, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames, query_info *q)
{
    PyObject *awaitable = PyObject_Vectorcall(m->func, args, nargsf, kwnames);
    PyObject *iter = awaitable ? nprof_py_await_iterator(awaitable) : NULL;
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
    PyObject *token = nprof_py_guard_set(m->guard, Py_True);
    if (!token)
        return NULL;
    PyObject *result = call_func(m, args, nargsf, kwnames);
    if (nprof_py_guard_reset(m->guard, token) < 0)
        Py_CLEAR(result); /* (an error of the reset replaces the result, as in Python) */
    Py_DECREF(token);
    return result;
}

NPROF__HOT_PATH
static PyObject *timed_call(timed_method *m, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    /* The branch hints keep the common case (a query by position, through the module's
     * LiveRecorder) on one straight run of code: it runs at every query, cold. */
    if (NPROF_UNLIKELY(m->guard_only))
        return guarded_call(m, args, nargsf, kwnames);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (NPROF_UNLIKELY(nargs < 2))
        return call_query_by_keyword(m, args, nargsf, kwnames);
    int busy = guard_is_set(m);
    if (busy < 0)
        return NULL;
    if (busy)
        return call_func(m, args, nargsf, kwnames);
    PyObject *start = NULL;
    uint64_t ticks = 0;
    nprof_py_query_ctx ctx = {NULL, NULL, 0};
    if (NPROF_LIKELY(Py_IS_TYPE(m->recorder, &nprof_py_live_type))) {
        ticks = nprof_py_live_begin(m->recorder, !m->asynchronous, &ctx);
        if (!ticks)
            return call_func(m, args, nargsf, kwnames);
    } else {
        start = PyObject_VectorcallMethod(m->asynchronous ? str_start_async : str_start,
                                          &m->recorder, 1, NULL);
        if (!start)
            return NULL;
        int on = PyObject_IsTrue(start);
        if (on <= 0) {
            Py_DECREF(start);
            return on < 0 ? NULL : call_func(m, args, nargsf, kwnames);
        }
    }

    /* From here start() is paired with a finish() on every path: a sync start() keeps the
     * preload shim out of this thread until then. */
    query_info q = {.start = start, .ticks = ticks, .owner = args[0], .query = args[1],
                    .params = NULL, .rows = 0, .ctx = ctx};
    /* Everything the `failed` and `done` paths release is set before the first goto. */
    PyObject *const *call_args = args;
    size_t call_nargsf = nargsf;
    PyObject *small[8], **heap = NULL;
    PyObject *batch = NULL; /* the list made of an executemany's iterator */
    PyObject *result = NULL, *token = NULL;
    int many = m->many;
    if (NPROF_UNLIKELY(m->wrapper)) {
        q.owner = Py_None; /* execute: no driver object to render a query with */
        many = nargs > 3 ? PyObject_IsTrue(args[3]) : 0;
        if (many < 0)
            goto failed;
    }

    Py_ssize_t kw = nargs > 2 || m->wrapper ? -1 : find_keyword(kwnames, m->pname);
    if (m->rest) {
        /* asyncpg's fetch(query, *args): every argument after the query is a parameter. */
        Py_ssize_t n = nargs - 2;
        if (NPROF_LIKELY(n <= NPROF_PY_QUERY_PARAMS_INLINE)) {
            /* Held one by one: no tuple at every query (nprof_py_query_params). */
            for (Py_ssize_t i = 0; i < n; i++)
                q.item[i] = Py_NewRef(args[2 + i]);
            q.nitems = n;
        } else if (!(q.params = nprof_py_tuple_of(args + 2, n))) {
            goto failed;
        }
    } else if (!many) {
        q.params = Py_NewRef(nargs > 2 ? args[2] : kw >= 0 ? args[nargs + kw] : Py_None);
    } else if ((nargs > 2 && args[2] != Py_None) || kw >= 0) {
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

    token = nprof_py_guard_set(m->guard, Py_True);
    if (!token)
        goto failed;
    result = call_func(m, call_args, call_nargsf, kwnames);
    if (!result)
        goto failed;
    int reset = nprof_py_guard_reset(m->guard, token);
    Py_CLEAR(token);
    if (reset < 0 || record(m, 1, &q, NULL) < 0)
        Py_CLEAR(result);
    goto done;

failed:
    finish_failed(m, !m->asynchronous, &q, token);
done:
    Py_XDECREF(token);
    Py_XDECREF(q.start);
    release_params(&q);
    nprof_py_query_ctx_clear(&q.ctx);
    Py_XDECREF(batch);
    if (heap)
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
    static char *kw[] = {"",     "",           "guard",           "text", "pname",
                         "many", "asynchronous", "execute_wrapper", NULL};
    PyObject *func, *recorder, *guard = NULL, *text = NULL, *pname = NULL;
    int many = 0, asynchronous = 0, wrapper = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$OOUppp:TimedMethod", kw, &func,
                                     &recorder, &guard, &text, &pname, &many, &asynchronous,
                                     &wrapper))
        return NULL;
    if (wrapper && (func != Py_None || many || asynchronous || pname))
        return PyErr_Format(PyExc_TypeError,
                            "TimedMethod(None, recorder, execute_wrapper=True): an execute "
                            "wrapper calls the execute it is given, takes `many` per call and "
                            "is synchronous");
    if (!wrapper && !PyCallable_Check(func))
        return PyErr_Format(PyExc_TypeError, "TimedMethod(func, ...): func must be callable");
    if (!guard || !PyObject_TypeCheck(guard, &nprof_py_guard_type))
        return PyErr_Format(PyExc_TypeError, "TimedMethod: guard must be a _core.QueryGuard");
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
    m->wrapper = wrapper;
    m->guard_only = recorder == Py_None;
    m->vectorcall = (vectorcallfunc)timed_call;
    if (!wrapper && copy_func_attributes(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

static PyObject *method_repr(timed_method *m)
{
    if (m->wrapper)
        return PyUnicode_FromString("<nanoprof timed execute wrapper>");
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
              "asynchronous=False, execute_wrapper=False): func(self, query, *args, **kwargs) "
              "timed as one query (see nanoprof/db/_base.py: sync_execute, async_execute); "
              "with recorder None, func(*args, **kwargs) runs guarded and records nothing "
              "(unrecorded()).  TimedMethod(None, recorder, execute_wrapper=True, ...): "
              "Django's execute wrapper (execute, sql, params, many, context).",
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
    return PyBool_FromLong(nprof_py_step_depth != 0);
}

static PyMethodDef timed_functions[] = {
    {"in_timed_step", in_timed_step, METH_NOARGS,
     "in_timed_step() -> bool: a step of a timed coroutine query runs on this thread now."},
    {NULL, NULL, 0, NULL},
};

int nprof_py_timed_init(PyObject *m)
{
    static const nprof_py_name names[] = {
        {&str_start, "start"},       {&str_finish, "finish"},
        {&str_start_async, "start_async"}, {&str_finish_async, "finish_async"},
        {&str_query, "query"},
        {&str_wrapped, "__wrapped__"}, {&str_module, "__module__"},
        {&str_name, "__name__"},     {&str_qualname, "__qualname__"},
        {&str_doc, "__doc__"},
    };
    if (nprof_py_intern_names(names, sizeof names / sizeof *names) < 0)
        return -1;
    if (PyType_Ready(&nprof_py_timed_method_type) < 0 ||
        nprof_py_forward_type_ready(&nprof_py_timed_await_type) < 0 ||
        PyModule_AddObjectRef(m, "TimedMethod", (PyObject *)&nprof_py_timed_method_type) < 0 ||
        PyModule_AddObjectRef(m, "TimedAwait", (PyObject *)&nprof_py_timed_await_type) < 0 ||
        PyModule_AddFunctions(m, timed_functions) < 0)
        return -1;
    return 0;
}
