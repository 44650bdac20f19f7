/*
 * bindings/python/ext/sampler.c: sampled Python call stacks per request (issue 16).
 *
 * One background pthread, started on the first sampled request, wakes every interval
 * (opt.stack_sample_interval_ms, 1 ms by default) and, only while at least one sampled
 * request runs, takes the GIL and reads the Python stack of each such request with the
 * public frame API (PyThreadState_GetFrame, PyFrame_GetBack, PyFrame_GetCode), weighted by
 * the wall time since that request's previous sample.  The thread never writes a profile:
 * stacks wait, merged, in the request's pending table (see pend_stack) until the request's
 * own thread adds them with nprof_profile_add_sample().  Wall clock: a request blocked in I/O, a lock or an `await`
 * shows where it waits.
 *
 * Who is sampled: a middleware request whose nprof_mw_state.sample_stacks the C middleware
 * set (?profile=flame, or one in opt.stack_sample_every), every request of a
 * Profiler(sample=True) block, @profile_handler(sample=True).  A request that is not sampled
 * pays one flag check (nprof_py_request.sampled) when it ends, nothing else.
 *
 * Async: a request begun inside an event loop remembers its asyncio task.  A tick that finds
 * that task running on its thread samples the thread's stack from the task's coroutine frame
 * inwards (the event loop's frames above it are dropped); a tick that finds it suspended
 * follows its await chain (cr_await / gi_yieldfrom from task.get_coro()) instead, so the time
 * it waits is attributed to the `await` that waits, not to whichever request runs meanwhile.
 *
 * Worker threads: a suspended task may be waiting for sync code it handed to a thread with
 * its context copied in (asgiref's sync_to_async, which runs Django's sync views and ORM
 * under ASGI).  Such a thread's current context holds the request, so a tick finds it and
 * samples its stack after the task's await chain: the view's own frames, not the await.
 * Likewise a child task the request made (create_task, gather: a copy of its context) that
 * runs on the loop while the request's task waits: its stack, under the await.  (A child
 * that is suspended too is not followed: Python 3.11 cannot read a suspended task's context,
 * Task.get_context() came in 3.12, so that time stays at the parent's await.)
 *
 * Spans: a span the request opens (Profiler.trace(), span_begin()) shows as a frame "[span]
 * name" in every stack sampled while it is open, placed under the frame that opened it (the
 * stack's depth at its begin), so the tree reads view -> [span] render -> template code.
 *
 * SQL: the query recorder calls nprof_py_sampler_query_begin(p) before a query and
 * nprof_py_sampler_query(p, ...) after it; the query is added at the stack that issued it,
 * weighted by its duration, and the ticks that fell inside it add nothing (no double count).
 *
 * The GIL: a thread that wants the GIL waits sys.getswitchinterval() (5 ms by default) before
 * it asks the holder to drop it, so a CPU-bound request would be sampled every 5 ms, not
 * every 1 ms, and always where it next releases the GIL.  While a sampled request runs the
 * switch interval is lowered to a quarter of the sampling interval (never raised), and put
 * back when the last sampled request ends, if nobody changed it meanwhile.  Only threads
 * that contend for the GIL switch more often; the sampler asks for it once per interval.
 *
 * Frames are named "qualname (path/file.py:first line)": the function's first line, not the
 * running one, so that a function is one box of the flame graph and its name is built once
 * per code object.  Per code object the name, the library ("django", "asyncio"; NULL for the
 * application) and whether it is nanoprof's own (never shown) are remembered
 * (codetab.c, the table callsite.c uses too), so a sample costs pointer lookups.
 *
 * Locking: everything but the thread's sleep is done with the GIL held, and the GIL guards
 * the list of sampled requests.  The thread reads only `active_count`, `stopping` and the
 * interval without it (atomics).  At interpreter exit (atexit) the thread is stopped and
 * joined before finalization starts; after fork() the child forgets the thread (it does not
 * exist there) and starts a new one on its next sampled request.
 */
#include "ext.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if PY_VERSION_HEX >= 0x030D0000
#define interpreter_finalizing() Py_IsFinalizing()
#else
#define interpreter_finalizing() _Py_IsFinalizing()
#endif

#define DEFAULT_INTERVAL_NS 1000000ull
#define MAX_KEPT (NPROF_SAMPLE_MAX_DEPTH + 1) /* one more than kept: the core marks the cut */
#define MAX_WALK 100000                       /* frames walked at most (a cycle guard) */
#define SQL_LABEL_MAX 512                     /* bytes of a query's shape in its frame */
#define SQL_INPUT_MAX 4096                    /* bytes of a query's text normalized for it */
#define MAX_OPEN_SPANS 16                     /* spans shown in a stack; deeper ones are not */
#define SPAN_LABEL_MAX 128                    /* bytes of "[span] name" */
/* The switch interval while sampling, as a fraction of the sampling interval: a tick waits
 * up to that long for a CPU-bound holder to let the GIL go, and the stack it then reads is
 * the one at the hand-off, so the wait is also how far a sample can land from its time
 * (with the interval itself, 0.5 ms of busy work before a 0.5 ms sleep was never seen). */
#define SWITCH_DIVISOR 4

/* ---- the code table ------------------------------------------------------------------ */


enum { CODE_APP = 0, CODE_LIB = 1, CODE_OWN = 2 };

typedef struct code_entry {
    PyObject *code; /* the table's (codetab.c) */
    int kind;       /* CODE_* */
    char *name;     /* "qualname (path:line)", malloc'd; NULL for CODE_OWN */
    size_t name_len;
    char *lib; /* library name, malloc'd; NULL for the application */
    size_t lib_len;
} code_entry;

/* Library roots (stdlib, site-packages): a frame under one belongs to the library named by
 * the first path component after it.  Own roots: nanoprof's package, never shown. */
enum { ROOT_LIBRARY = 0, ROOT_OWN = 1 }; /* the groups of set_sampler_paths() */
static nprof_py_paths roots; /* and the base application paths are shown relative to */

static void code_release(void *entry)
{
    code_entry *e = entry;
    free(e->name);
    free(e->lib);
}

/* Its epoch changes when it is emptied: names kept by pending samples were copied, and
 * their signatures (which hash names by address) expire with it. */
static nprof_py_codetab codes = {.entry_size = sizeof(code_entry), .release = code_release};

static char *dup_bytes(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

/* Classifies `file`: kind, the path to show and the library name (may be empty). */
static int classify(const char *file, size_t len, const char **shown, size_t *shown_len,
                    const char **lib, size_t *lib_len)
{
    *shown = file;
    *shown_len = len;
    *lib = NULL;
    *lib_len = 0;
    if (len >= 8 && memcmp(file, "<frozen ", 8) == 0) {
        /* "<frozen importlib._bootstrap>": the library is the top-level module. */
        const char *m = file + 8;
        size_t n = 0;
        while (m + n < file + len && m[n] != '.' && m[n] != '>')
            n++;
        *lib = m;
        *lib_len = n;
        return CODE_LIB;
    }
    long root = nprof_py_paths_match(&roots, file, len);
    if (root >= 0) {
        if (roots.groups[root] == ROOT_OWN)
            return CODE_OWN;
        const char *rest = file + roots.lens[root];
        size_t rest_len = len - roots.lens[root];
        size_t n = 0;
        while (n < rest_len && rest[n] != '/')
            n++;
        if (n == rest_len && n > 3 && memcmp(rest + n - 3, ".py", 3) == 0)
            n -= 3; /* a top-level module: threading.py is "threading" */
        *shown = rest;
        *shown_len = rest_len;
        *lib = rest;
        *lib_len = n;
        return CODE_LIB;
    }
    *shown_len = nprof_py_paths_shown(&roots, shown, len);
    return CODE_APP;
}

static const char *code_str(PyObject *code, const char *attr, Py_ssize_t *len, PyObject **keep)
{
    *keep = PyObject_GetAttrString(code, attr);
    const char *s = *keep && PyUnicode_Check(*keep) ? PyUnicode_AsUTF8AndSize(*keep, len) : NULL;
    if (!s) {
        PyErr_Clear();
        *len = 1;
        return "?";
    }
    return s;
}

/* What the table knows of `code`, learnt on first sight; NULL on memory exhaustion. */
static const code_entry *code_lookup(PyCodeObject *code)
{
    void *empty;
    code_entry *e = nprof_py_codetab_find(&codes, code, &empty);
    if (e || !empty)
        return e;
    PyObject *fk, *qk;
    Py_ssize_t flen, qlen;
    const char *file = code_str((PyObject *)code, "co_filename", &flen, &fk);
    const char *shown, *lib;
    size_t shown_len, lib_len;
    int kind = classify(file, (size_t)flen, &shown, &shown_len, &lib, &lib_len);
    char *name = NULL, *libc = NULL;
    size_t name_len = 0;
    int ok = 1;
    if (kind != CODE_OWN) {
        const char *q = code_str((PyObject *)code, "co_qualname", &qlen, &qk);
        char line[24];
        int ln = snprintf(line, sizeof line, ":%d)", code->co_firstlineno);
        name_len = (size_t)qlen + 2 + shown_len + (size_t)ln;
        name = malloc(name_len + 1);
        if (name) {
            char *w = name;
            memcpy(w, q, (size_t)qlen);
            w += qlen;
            memcpy(w, " (", 2);
            w += 2;
            memcpy(w, shown, shown_len);
            w += shown_len;
            memcpy(w, line, (size_t)ln + 1);
        }
        Py_XDECREF(qk);
        ok = name != NULL;
        if (ok && lib_len) {
            libc = dup_bytes(lib, lib_len);
            ok = libc != NULL;
        }
    }
    Py_XDECREF(fk);
    if (!ok) {
        free(name);
        free(libc);
        return NULL;
    }
    e = empty;
    nprof_py_codetab_insert(&codes, e, code);
    e->kind = kind;
    e->name = name;
    e->name_len = name_len;
    e->lib = libc;
    e->lib_len = libc ? lib_len : 0;
    return e;
}

/* ---- sampled requests ---------------------------------------------------------------- */

/* A stack the tick saw, waiting to go into the profile: the sampler thread never writes the
 * profile itself.  A profile is owned by one thread at a time (profile.h), and the request's
 * thread may be writing it without the GIL (the libpq hook records a query inside PQexec,
 * which the driver runs with the GIL released), so samples wait here, merged per stack, and
 * the request's own thread adds them: when it ends, issues a query, or reads its profile. */
typedef struct pend_stack {
    uint64_t sig;         /* hash of the frames' table entries and the table's epoch */
    uint64_t ns;          /* summed weight */
    uint32_t count;       /* ticks merged */
    uint32_t n;           /* frames */
    nprof_frame *frames;  /* with the names and libraries copied behind them, one block */
} pend_stack;

#define PEND_MAX_BYTES (4u << 20) /* per request; past it ticks count as "[dropped]" */

typedef struct pending {
    pend_stack *stacks;
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 empty; 2 * cap of them */
    size_t bytes;
    uint64_t dropped_ns;
    uint32_t dropped;
} pending;

struct nprof_py_sampled {
    pending pend;            /* guarded by the GIL, like the rest */
    nprof_py_request *r;     /* borrowed: the request removes itself before it ends */
    nprof_profile *p;        /* NULL: removed during a tick, freed when the tick ends */
    uint64_t thread_id;      /* PyThreadState_GetID() of the thread that began it */
    /* Weak references: the task's context holds the request, so strong ones would make a
     * cycle the garbage collector cannot see (an abandoned task would never be freed). */
    PyObject *loop_ref;      /* the event loop it began in; NULL outside one */
    PyObject *task_ref;      /* the asyncio task that began it, or NULL */
    uint64_t last_ns;        /* when its previous sample was taken (or it began) */
    uint64_t interval_ns;    /* its sampling interval */
    uint64_t query_since_ns; /* inside a query since then (its ticks add nothing); 0: not */
    size_t index;            /* in `active` */
    struct open_span {
        int id;              /* the profile's span id */
        size_t depth;        /* frames of the stack that opened it, outermost first */
        const char *label;   /* "[span] name", in `labels` */
        size_t label_len;
    } spans[MAX_OPEN_SPANS]; /* open spans shown, outermost first */
    size_t span_n;
    /* Every label made for this request, kept until it ends: a stack's signature hashes
     * frame names by address, so an address must never name two different labels. */
    char **labels;
    size_t labels_n, labels_cap;
};

/* Guarded by the GIL. */
static nprof_py_sampled **active;
static size_t active_n, active_cap;
static int ticking;   /* a tick walks `active`: removals only mark the entry */
static int dead_seen; /* entries marked during the tick */
static double saved_switch = -1; /* the switch interval before we lowered it, -1: untouched */
static double our_switch;        /* the value we set */

/* Read by the thread without the GIL. */
static atomic_size_t active_count;
static atomic_int stopping;
static atomic_uint_fast64_t interval_ns = DEFAULT_INTERVAL_NS;

/* The thread: started once (again after fork), under the GIL. */
static pthread_t thread;
static int thread_running;
static int shut_down; /* atexit ran: never start again */
static int atfork_set;
static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cv;
static int idle_waiting; /* guarded by sleep_mu: the thread waits for a sampled request */
#define IDLE_AFTER_NS 200000000ull /* 0.2 s without sampled requests: wait on sleep_cv */

/* asyncio, imported at the first sampled request begun inside an event loop. */
static PyObject *get_running_loop, *current_tasks, *task_type;
static PyObject *str_cr_frame, *str_cr_await, *str_gi_frame, *str_gi_yieldfrom, *str_get_coro;

/* Measures, under the GIL. */
static uint64_t stat_ticks, stat_samples, stat_tick_ns, stat_tick_max_ns, stat_sql;

/* The object a weak reference points to (new ref), NULL when it is gone. */
static PyObject *deref(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o = NULL;
    if (PyWeakref_GetRef(ref, &o) < 0)
        PyErr_Clear();
    return o;
#else
    PyObject *o = PyWeakref_GetObject(ref); /* borrowed */
    return o && o != Py_None ? Py_NewRef(o) : NULL;
#endif
}

static int init_names(void)
{
    if (str_get_coro)
        return 0;
    str_cr_frame = PyUnicode_InternFromString("cr_frame");
    str_cr_await = PyUnicode_InternFromString("cr_await");
    str_gi_frame = PyUnicode_InternFromString("gi_frame");
    str_gi_yieldfrom = PyUnicode_InternFromString("gi_yieldfrom");
    str_get_coro = PyUnicode_InternFromString("get_coro");
    return str_cr_frame && str_cr_await && str_gi_frame && str_gi_yieldfrom && str_get_coro ? 0
                                                                                           : -1;
}

static int init_asyncio(void)
{
    if (current_tasks)
        return 0;
    PyObject *m = PyImport_ImportModule("_asyncio");
    if (!m)
        return -1;
    get_running_loop = PyObject_GetAttrString(m, "_get_running_loop");
    task_type = get_running_loop ? PyObject_GetAttrString(m, "Task") : NULL;
    current_tasks = task_type ? PyObject_GetAttrString(m, "_current_tasks") : NULL;
    Py_DECREF(m);
    if (current_tasks && !PyDict_Check(current_tasks)) {
        Py_CLEAR(current_tasks);
        PyErr_SetString(PyExc_RuntimeError,
                        "nanoprof's sampler: _asyncio._current_tasks is not a dict on this "
                        "Python; sample requests outside asyncio, or upgrade nanoprof");
    }
    if (!current_tasks || !PyType_Check(task_type)) {
        Py_CLEAR(get_running_loop);
        Py_CLEAR(task_type);
        Py_CLEAR(current_tasks);
        return -1;
    }
    return 0;
}

static uint64_t now_ns(void)
{
    return nprof_now_ns();
}

/* ---- reading stacks ----------------------------------------------------------------- */

/* The frames of one stack, outermost first once `finish`ed.  A stack deeper than MAX_KEPT
 * keeps its outermost frames: the walk goes from the innermost outwards, so the kept frames
 * are a ring of the last MAX_KEPT seen. */
typedef struct stack {
    nprof_frame ring[MAX_KEPT];
    size_t seen;
    nprof_frame out[MAX_KEPT + MAX_OPEN_SPANS + 1]; /* + the open spans, + a query's frame */
    size_t n;
} stack;

static void push_inner_to_outer(stack *s, const code_entry *e)
{
    nprof_frame *f = &s->ring[s->seen % MAX_KEPT];
    f->name = e->name;
    f->name_len = e->name_len;
    f->lib = e->lib;
    f->lib_len = e->lib_len;
    s->seen++;
}

static void finish(stack *s)
{
    size_t n = s->seen < MAX_KEPT ? s->seen : MAX_KEPT;
    for (size_t i = 0; i < n; i++)
        s->out[i] = s->ring[(s->seen - 1 - i) % MAX_KEPT];
    s->n = n;
}

/* Adds one frame object's code to the walk; returns 0, or -1 on memory exhaustion. */
static int add_frame(stack *s, PyFrameObject *f, int outer_first)
{
    PyCodeObject *code = PyFrame_GetCode(f);
    const code_entry *e = code_lookup(code);
    Py_DECREF(code);
    if (!e)
        return -1;
    if (e->kind == CODE_OWN)
        return 0;
    if (outer_first) {
        if (s->n < MAX_KEPT)
            s->out[s->n++] = (nprof_frame){e->name, e->name_len, e->lib, e->lib_len};
    } else {
        push_inner_to_outer(s, e);
    }
    return 0;
}

/* The frame a coroutine or generator runs in (new ref), or NULL. */
static PyObject *coro_frame(PyObject *o)
{
    PyObject *name = PyCoro_CheckExact(o) ? str_cr_frame : PyGen_CheckExact(o) ? str_gi_frame
                                                                                : NULL;
    if (!name)
        return NULL;
    PyObject *f = PyObject_GetAttr(o, name);
    if (!f)
        PyErr_Clear();
    else if (!PyFrame_Check(f))
        Py_CLEAR(f);
    return f;
}

#define STOP_NOT_MET 2 /* walk_frames(): `stop` is not on the stack */

/* Frame `f` (a reference taken, or NULL) and those it was called from, innermost first, up
 * to and including `stop` (a frame object) when it is met: the task's coroutine frame,
 * above which run the event loop's.  0, STOP_NOT_MET, or -1 on memory exhaustion. */
static int walk_frames(stack *s, PyFrameObject *f, PyObject *stop)
{
    int rc = stop ? STOP_NOT_MET : 0;
    for (size_t k = 0; f && k < MAX_WALK; k++) {
        if (add_frame(s, f, 0) < 0) {
            rc = -1;
            break;
        }
        if ((PyObject *)f == stop) {
            rc = 0;
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    finish(s);
    return rc;
}

/* The running stack of `ts` (walk_frames). */
static int walk_running(stack *s, PyThreadState *ts, PyObject *stop)
{
    return walk_frames(s, PyThreadState_GetFrame(ts), stop);
}

/* A suspended task: the frames of its await chain, outermost (the task's coroutine) first. */
static int walk_awaiting(stack *s, PyObject *coro)
{
    PyObject *o = Py_NewRef(coro);
    int rc = 0;
    for (size_t k = 0; o && k < MAX_WALK && s->n < MAX_KEPT; k++) {
        PyObject *next = NULL;
        if (PyCoro_CheckExact(o) || PyGen_CheckExact(o)) {
            PyObject *f = coro_frame(o);
            if (f) {
                rc = add_frame(s, (PyFrameObject *)f, 1);
                Py_DECREF(f);
            }
            next = PyObject_GetAttr(o, PyCoro_CheckExact(o) ? str_cr_await : str_gi_yieldfrom);
        } else if (task_type && PyObject_TypeCheck(o, (PyTypeObject *)task_type)) {
            /* Awaiting another task: its stack is what this request waits on. */
            next = PyObject_CallMethodNoArgs(o, str_get_coro);
        } else if ((next = nprof_py_forward_awaits(o)) != NULL) {
            Py_INCREF(next); /* an ASGICall or TimedAwait: what it forwards to */
        }
        if (!next)
            PyErr_Clear();
        else if (next == Py_None)
            Py_CLEAR(next);
        Py_DECREF(o);
        o = next;
        if (rc < 0)
            break;
    }
    Py_XDECREF(o);
    return rc;
}

static PyThreadState *find_thread(uint64_t id)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t; t = PyThreadState_Next(t))
        if (PyThreadState_GetID(t) == id)
            return t;
    return NULL;
}

/* Does thread `t` run code of `e` now: is e's request the current request of its current
 * context (a copy of the request's, made by create_task or sync_to_async)? */
static int runs_for(PyThreadState *t, const nprof_py_sampled *e)
{
    PyObject *ctx = t->context; /* GIL held: stable */
    if (!e->r || !ctx || !PyContext_CheckExact(ctx))
        return 0;
    PyObject *r = PyObject_GetItem(ctx, nprof_py_current);
    if (!r) {
        PyErr_Clear();
        return 0;
    }
    int mine = r == (PyObject *)e->r;
    Py_DECREF(r);
    return mine;
}

/* A thread other than `skip` (and this one) running code for `e`, or NULL. */
static PyThreadState *worker_of(const nprof_py_sampled *e, PyThreadState *skip)
{
    PyThreadState *self = PyThreadState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); t;
         t = PyThreadState_Next(t))
        if (t != skip && t != self && runs_for(t, e))
            return t;
    return NULL;
}

/* Appends the running stack of thread `ts`, outermost first, to `s` (after its frames):
 * from frame `stop` inwards when given (nothing when `stop` is not on the stack).  0, or -1
 * on memory exhaustion. */
static int append_thread(stack *s, PyThreadState *ts, PyObject *stop)
{
    stack *w = PyMem_Malloc(sizeof *w);
    if (!w)
        return -1;
    w->seen = w->n = 0;
    int rc = walk_running(w, ts, stop);
    for (size_t i = 0; rc == 0 && i < w->n && s->n < MAX_KEPT; i++)
        s->out[s->n++] = w->out[i];
    PyMem_Free(w);
    return rc < 0 ? -1 : 0;
}

/* The stack `e` is at now: its task's await chain when the task is suspended (followed by
 * the stack of a worker thread running its sync code, if any), else its thread's running
 * stack (from the task's coroutine frame inwards).  `ts` is its thread. */
#define GONE 1 /* read_stack(): the request's thread or task is gone */

static int read_stack(nprof_py_sampled *e, PyThreadState *ts, stack *s)
{
    s->seen = s->n = 0;
    if (!e->task_ref)
        return ts ? walk_running(s, ts, NULL) : GONE;
    PyObject *task = deref(e->task_ref), *loop = deref(e->loop_ref);
    PyObject *coro = task ? PyObject_CallMethodNoArgs(task, str_get_coro) : NULL;
    int rc = GONE;
    PyObject *frame = coro ? coro_frame(coro) : NULL;
    if (frame) { /* NULL: the task is gone, or its coroutine has finished */
        Py_DECREF(frame);
        rc = 0;
    }
    if (rc == 0 && loop) {
        PyObject *running = PyDict_GetItemWithError(current_tasks, loop); /* borrowed */
        if (!running && PyErr_Occurred())
            PyErr_Clear();
        if (running != task) {
            rc = walk_awaiting(s, coro);
            PyThreadState *worker = rc == 0 ? worker_of(e, ts) : NULL;
            if (worker) {
                rc = append_thread(s, worker, NULL);
            } else if (rc == 0 && running && ts && runs_for(ts, e)) {
                /* Another task of this request runs on the loop now (a child it made with
                 * create_task or gather, in a copy of its context): the child's stack, from
                 * its coroutine inwards, under the await that waits. */
                Py_INCREF(running); /* borrowed from the loop's dict */
                PyObject *rcoro = PyObject_CallMethodNoArgs(running, str_get_coro);
                Py_DECREF(running);
                PyObject *stop = rcoro ? coro_frame(rcoro) : NULL;
                PyErr_Clear();
                if (stop)
                    rc = append_thread(s, ts, stop);
                Py_XDECREF(stop);
                Py_XDECREF(rcoro);
            }
        } else if (ts) {
            PyObject *stop = coro_frame(coro);
            rc = walk_running(s, ts, stop);
            Py_XDECREF(stop);
            if (rc == STOP_NOT_MET) {
                /* The task is current but between two steps of its coroutine (the loop's
                 * call_soon inside Task.__step): its time goes to where it awaits. */
                s->seen = s->n = 0;
                rc = walk_awaiting(s, coro);
            }
        }
    }
    PyErr_Clear();
    Py_XDECREF(coro);
    Py_XDECREF(task);
    Py_XDECREF(loop);
    return rc;
}

/* ---- pending samples ---------------------------------------------------------------- */

static uint64_t stack_sig(const stack *s)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ codes.epoch;
    for (size_t i = 0; i < s->n; i++) {
        h ^= (uintptr_t)s->out[i].name;
        h *= 0x100000001B3ull;
        h ^= h >> 29;
    }
    return h ^ s->n;
}

static void pend_free(pending *q)
{
    for (uint32_t i = 0; i < q->n; i++)
        free(q->stacks[i].frames);
    free(q->stacks);
    free(q->slots);
    memset(q, 0, sizeof *q);
}

static int pend_grow(pending *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 16;
    pend_stack *st = realloc(q->stacks, cap * sizeof *st);
    if (!st)
        return -1;
    q->stacks = st;
    uint32_t *slots = calloc((size_t)cap * 2, sizeof *slots);
    if (!slots)
        return -1;
    for (uint32_t i = 0; i < q->n; i++) {
        size_t h = (size_t)q->stacks[i].sig & (cap * 2 - 1);
        while (slots[h])
            h = (h + 1) & (cap * 2 - 1);
        slots[h] = i + 1;
    }
    free(q->slots);
    q->slots = slots;
    q->cap = cap;
    return 0;
}

/* Adds a tick's stack to the request's pending samples (the sampler thread, GIL held). */
static void pend_add(pending *q, const stack *s, uint64_t w)
{
    uint64_t sig = stack_sig(s);
    size_t h = 0;
    if (q->cap) {
        for (h = (size_t)sig & (q->cap * 2 - 1); q->slots[h]; h = (h + 1) & (q->cap * 2 - 1)) {
            pend_stack *p = &q->stacks[q->slots[h] - 1];
            if (p->sig == sig && p->n == s->n) {
                p->ns += w;
                p->count++;
                return;
            }
        }
    }
    size_t need = s->n * sizeof(nprof_frame);
    for (size_t i = 0; i < s->n; i++)
        need += s->out[i].name_len + s->out[i].lib_len;
    nprof_frame *block = q->bytes + need <= PEND_MAX_BYTES ? malloc(need ? need : 1) : NULL;
    if (block && q->n == q->cap) {
        if (pend_grow(q) < 0) {
            free(block);
            block = NULL;
        } else {
            for (h = (size_t)sig & (q->cap * 2 - 1); q->slots[h]; h = (h + 1) & (q->cap * 2 - 1)) {
            }
        }
    }
    if (!block) {
        q->dropped_ns += w;
        q->dropped++;
        return;
    }
    char *text = (char *)(block + s->n);
    for (size_t i = 0; i < s->n; i++) {
        nprof_frame f = s->out[i];
        memcpy(text, f.name, f.name_len);
        block[i].name = text;
        block[i].name_len = f.name_len;
        text += f.name_len;
        block[i].lib = f.lib ? text : NULL;
        block[i].lib_len = f.lib_len;
        if (f.lib_len)
            memcpy(text, f.lib, f.lib_len);
        text += f.lib_len;
    }
    q->stacks[q->n] = (pend_stack){sig, w, 1, (uint32_t)s->n, block};
    q->slots[h] = ++q->n;
    q->bytes += need;
}

/* Adds one pending stack `count` times (a sample each, as if added tick by tick), the weight
 * shared among them. */
static void add_counted(nprof_profile *p, const nprof_frame *frames, size_t n, uint64_t ns,
                        uint32_t count)
{
    uint64_t each = ns / count, rest = ns % count;
    for (uint32_t k = 0; k < count; k++)
        if (nprof_profile_add_sample(p, frames, n, each + (k ? 0 : rest), 0) == NPROF_OK)
            stat_samples++;
}

/* Moves the pending samples of `e` into its profile: from the request's own thread. */
static void pend_flush(nprof_py_sampled *e)
{
    pending *q = &e->pend;
    if (!q->n && !q->dropped)
        return;
    for (uint32_t i = 0; i < q->n; i++)
        add_counted(e->p, q->stacks[i].frames, q->stacks[i].n, q->stacks[i].ns,
                    q->stacks[i].count);
    if (q->dropped) {
        static const nprof_frame dropped = {"[dropped by the sampler]", 24, NULL, 0};
        add_counted(e->p, &dropped, 1, q->dropped_ns, q->dropped);
    }
    pend_free(q);
}

static nprof_py_sampled *find_sampled(nprof_profile *p);

void nprof_py_sampler_flush(nprof_profile *p)
{
    if (!atomic_load_explicit(&active_count, memory_order_relaxed) || !p)
        return;
    nprof_py_sampled *e = find_sampled(p);
    if (e && !ticking)
        pend_flush(e);
}

/* ---- the tick ------------------------------------------------------------------------ */

static void restore_switch_interval(void);

static void spans_free(nprof_py_sampled *e)
{
    for (size_t i = 0; i < e->labels_n; i++)
        free(e->labels[i]);
    free(e->labels);
    e->labels = NULL;
    e->labels_n = e->labels_cap = 0;
    e->span_n = 0;
}

/* The open spans of `e` as frames of `s` (outermost first): each after the frames of the
 * stack that opened it, or at the end of a shorter stack (a suspended await chain). */
static void insert_spans(const nprof_py_sampled *e, stack *s)
{
    for (size_t k = 0; k < e->span_n && s->n < sizeof s->out / sizeof s->out[0] - 1; k++) {
        size_t at = e->spans[k].depth + k;
        if (at > s->n)
            at = s->n;
        memmove(&s->out[at + 1], &s->out[at], (s->n - at) * sizeof s->out[0]);
        s->out[at] = (nprof_frame){e->spans[k].label, e->spans[k].label_len, NULL, 0};
        s->n++;
    }
}

/* A request that was never ended (its thread ended first, its task was dropped) is no
 * longer sampled: nothing of it is left to read. */
static void retire(nprof_py_sampled *e)
{
    if (e->r)
        e->r->sampled = NULL;
    pend_free(&e->pend); /* its profile is nobody's to write any more */
    spans_free(e);
    e->p = NULL;
    e->r = NULL;
    Py_CLEAR(e->task_ref);
    Py_CLEAR(e->loop_ref);
    atomic_fetch_sub(&active_count, 1);
    dead_seen = 1;
}

static void compact(void)
{
    size_t w = 0;
    for (size_t i = 0; i < active_n; i++) {
        nprof_py_sampled *e = active[i];
        if (e->p) {
            e->index = w;
            active[w++] = e;
        } else {
            pend_free(&e->pend);
            spans_free(e);
            free(e);
        }
    }
    active_n = w;
    dead_seen = 0;
}

/* One pass over the sampled requests, GIL held. */
static void tick(void)
{
    uint64_t t0 = now_ns();
    ticking = 1;
    stack *s = PyMem_Malloc(sizeof *s);
    for (size_t i = 0; s && i < active_n; i++) {
        nprof_py_sampled *e = active[i];
        if (!e->p)
            continue;
        uint64_t now = now_ns();
        if (now - e->last_ns < e->interval_ns / 4 * 3)
            continue;
        uint64_t w = now - e->last_ns;
        if (e->query_since_ns) /* the query's own sample stands for the time since */
            w = e->query_since_ns > e->last_ns ? e->query_since_ns - e->last_ns : 0;
        e->last_ns = now;
        if (!w)
            continue;
        int rc = read_stack(e, find_thread(e->thread_id), s);
        if (rc == GONE) {
            retire(e);
            continue;
        }
        if (rc < 0) {
            PyErr_Clear();
            continue;
        }
        if (s->n && e->p) { /* still sampled: reading may have run Python code */
            insert_spans(e, s);
            pend_add(&e->pend, s, w);
        }
    }
    PyMem_Free(s);
    ticking = 0;
    if (dead_seen) {
        compact();
        if (atomic_load(&active_count) == 0)
            restore_switch_interval();
    }
    uint64_t took = now_ns() - t0;
    stat_ticks++;
    stat_tick_ns += took;
    if (took > stat_tick_max_ns)
        stat_tick_max_ns = took;
}

static void deadline_after(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ns / 1000000000u);
    ts->tv_nsec += (long)(ns % 1000000000u);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *sampler_main(void *arg)
{
    (void)arg;
    PyGILState_STATE g = PyGILState_Ensure(); /* this thread's state, kept until it stops */
    PyThreadState *ts = PyEval_SaveThread();
    uint64_t rng = now_ns() | 1;
    uint64_t busy_ns = now_ns(); /* when a sampled request last ran */
    for (;;) {
        pthread_mutex_lock(&sleep_mu);
        /* Idle for a while: sleep until a sampled request begins.  Just idle: keep ticking
         * without the GIL, so that back-to-back sampled requests (a Profiler block, 1 in N
         * under load) do not each pay for waking this thread. */
        if (atomic_load(&active_count))
            busy_ns = now_ns();
        else if (now_ns() - busy_ns > IDLE_AFTER_NS) {
            idle_waiting = 1;
            while (!atomic_load(&stopping) && atomic_load(&active_count) == 0)
                pthread_cond_wait(&sleep_cv, &sleep_mu);
            idle_waiting = 0;
        }
        if (!atomic_load(&stopping)) {
            /* Each wait is drawn from 0.5 to 1.5 intervals: a fixed period locks in phase
             * with periodic work (a loop of 0.5 ms computing and 0.5 ms waiting was seen
             * waiting at every tick).  Weights are the time measured, so the mean is all
             * that the interval has to hold. */
            uint64_t iv = atomic_load(&interval_ns);
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            struct timespec until;
            deadline_after(&until, iv / 2 + (rng >> 33) % (iv + 1));
            while (!atomic_load(&stopping) &&
                   pthread_cond_timedwait(&sleep_cv, &sleep_mu, &until) == 0) {
            }
        }
        pthread_mutex_unlock(&sleep_mu);
        if (atomic_load(&stopping))
            break;
        if (interpreter_finalizing())
            return NULL; /* never touch the GIL then; the process is going away */
        if (atomic_load(&active_count) == 0)
            continue;
        PyEval_RestoreThread(ts);
        if (!atomic_load(&stopping))
            tick();
        PyEval_SaveThread();
    }
    if (interpreter_finalizing())
        return NULL;
    PyEval_RestoreThread(ts);
    PyGILState_Release(g); /* deletes this thread's state and releases the GIL */
    return NULL;
}

static void after_fork_child(void)
{
    /* The thread is not in the child; its thread state was deleted by CPython. */
    thread_running = 0;
    idle_waiting = 0;
    atomic_store(&stopping, 0);
    pthread_mutex_init(&sleep_mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&sleep_cv, &a);
    pthread_condattr_destroy(&a);
}

static PyMethodDef shutdown_def;

static int start_thread(void)
{
    if (thread_running)
        return 0;
    if (shut_down) {
        PyErr_SetString(nprof_py_state_error,
                        "the stack sampler was stopped at interpreter exit");
        return -1;
    }
    if (!atfork_set) {
        PyObject *atexit = PyImport_ImportModule("atexit");
        PyObject *fn = atexit ? PyCFunction_New(&shutdown_def, NULL) : NULL;
        PyObject *res = fn ? PyObject_CallMethod(atexit, "register", "O", fn) : NULL;
        Py_XDECREF(atexit);
        Py_XDECREF(fn);
        if (!res)
            return -1;
        Py_DECREF(res);
        if (pthread_atfork(NULL, NULL, after_fork_child) != 0) {
            PyErr_SetString(nprof_py_error, "the stack sampler could not register its fork "
                                            "handler (pthread_atfork)");
            return -1;
        }
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&sleep_cv, &a);
        pthread_condattr_destroy(&a);
        atfork_set = 1;
    }
    atomic_store(&stopping, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&thread, &attr, sampler_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        PyErr_Format(nprof_py_error,
                     "the stack sampler's thread could not be started (%s): the request is "
                     "not sampled",
                     strerror(rc));
        return -1;
    }
    thread_running = 1;
    return 0;
}

/* Stops and joins the thread (atexit, and tests). */
static PyObject *py_sampler_shutdown(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    shut_down = 1;
    if (!thread_running)
        Py_RETURN_NONE;
    pthread_mutex_lock(&sleep_mu);
    atomic_store(&stopping, 1);
    pthread_cond_broadcast(&sleep_cv);
    pthread_mutex_unlock(&sleep_mu);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    thread_running = 0;
    Py_RETURN_NONE;
}

static PyMethodDef shutdown_def = {"_sampler_shutdown", py_sampler_shutdown, METH_NOARGS,
                                   "Stops the stack sampler's thread (atexit)."};

/* ---- the switch interval ----------------------------------------------------------------- */

/* Both may run while an exception propagates (a request object freed during unwinding ends
 * its sampling): it is kept aside meanwhile. */
static double switch_interval(void)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *get = PySys_GetObject("getswitchinterval"); /* borrowed */
    PyObject *v = get ? PyObject_CallNoArgs(get) : NULL;
    double d = v ? PyFloat_AsDouble(v) : -1;
    Py_XDECREF(v);
    if (d < 0)
        PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    return d;
}

static void set_switch_interval(double s)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *set = PySys_GetObject("setswitchinterval");
    PyObject *v = set ? PyObject_CallFunction(set, "d", s) : NULL;
    if (!v)
        PyErr_Clear();
    Py_XDECREF(v);
    PyErr_Restore(et, ev, tb);
}

static void lower_switch_interval(uint64_t ns)
{
    double want = (double)ns / 1e9, cur = switch_interval();
    if (cur < 0 || cur <= want)
        return;
    if (saved_switch < 0)
        saved_switch = cur;
    set_switch_interval(want);
    our_switch = switch_interval();
}

static void restore_switch_interval(void)
{
    if (saved_switch < 0)
        return;
    if (switch_interval() == our_switch) /* nobody changed it meanwhile */
        set_switch_interval(saved_switch);
    saved_switch = -1;
}

/* ---- starting and stopping ----------------------------------------------------------------- */

static uint64_t default_interval_ns(void)
{
    nprof_runtime *rt = nprof_py_runtime();
    nprof_ctl_value v;
    if (!rt || nprof_ctl_get(rt, "opt.stack_sample_interval_ms", &v) != NPROF_OK) {
        PyErr_Clear();
        return DEFAULT_INTERVAL_NS;
    }
    double ms = v.type == NPROF_CTL_DOUBLE ? v.d : v.type == NPROF_CTL_UINT ? (double)v.u : 1;
    return ms > 0 ? (uint64_t)(ms * 1e6) : DEFAULT_INTERVAL_NS;
}

static void update_interval(void)
{
    uint64_t min = 0;
    for (size_t i = 0; i < active_n; i++)
        if (active[i]->p && (!min || active[i]->interval_ns < min))
            min = active[i]->interval_ns;
    if (min)
        atomic_store(&interval_ns, min);
}

int nprof_py_sampler_start(nprof_py_request *r, uint64_t interval)
{
    if (r->sampled || r->ended || !r->p)
        return 0;
    if (init_names() < 0)
        return -1;
    if (!interval)
        interval = default_interval_ns();
    if (interval < 100000)
        interval = 100000; /* 0.1 ms: below, the GIL hand-offs would be the workload */
    nprof_py_sampled *e = calloc(1, sizeof *e);
    if (!e) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *loop = NULL;
    if (nprof_py_in_event_loop()) {
        if (init_asyncio() < 0) {
            free(e);
            return -1;
        }
        loop = PyObject_CallNoArgs(get_running_loop);
        if (!loop) {
            free(e);
            return -1;
        }
        PyObject *task = loop != Py_None ? PyDict_GetItemWithError(current_tasks, loop) : NULL;
        if (task) {
            e->task_ref = PyWeakref_NewRef(task, NULL);
            e->loop_ref = e->task_ref ? PyWeakref_NewRef(loop, NULL) : NULL;
        }
        Py_DECREF(loop);
        if (PyErr_Occurred()) {
            Py_XDECREF(e->task_ref);
            Py_XDECREF(e->loop_ref);
            free(e);
            return -1;
        }
    }
    if (active_n == active_cap) {
        size_t cap = active_cap ? active_cap * 2 : 16;
        nprof_py_sampled **a = realloc(active, cap * sizeof *a);
        if (!a) {
            Py_XDECREF(e->task_ref);
            Py_XDECREF(e->loop_ref);
            free(e);
            PyErr_NoMemory();
            return -1;
        }
        active = a;
        active_cap = cap;
    }
    if (start_thread() < 0) {
        Py_XDECREF(e->task_ref);
        Py_XDECREF(e->loop_ref);
        free(e);
        return -1;
    }
    e->r = r;
    e->p = r->p;
    e->thread_id = PyThreadState_GetID(PyThreadState_Get());
    e->interval_ns = interval;
    e->last_ns = now_ns();
    e->index = active_n;
    active[active_n++] = e;
    r->sampled = e;
    update_interval();
    lower_switch_interval(atomic_load(&interval_ns) / SWITCH_DIVISOR);
    pthread_mutex_lock(&sleep_mu);
    atomic_fetch_add(&active_count, 1);
    if (idle_waiting)
        pthread_cond_broadcast(&sleep_cv);
    pthread_mutex_unlock(&sleep_mu);
    return 0;
}

void nprof_py_sampler_stop(nprof_py_request *r)
{
    nprof_py_sampled *e = r->sampled;
    if (!e)
        return;
    if (!ticking)
        pend_flush(e);
    pend_free(&e->pend);
    if (!ticking)
        spans_free(e); /* else compact() frees them with the entry */
    r->sampled = NULL;
    e->p = NULL;
    e->r = NULL;
    Py_CLEAR(e->task_ref);
    Py_CLEAR(e->loop_ref);
    atomic_fetch_sub(&active_count, 1);
    if (ticking) {
        dead_seen = 1; /* the tick frees it when done */
    } else {
        size_t i = e->index;
        active[i] = active[--active_n];
        active[i]->index = i;
        free(e);
    }
    if (atomic_load(&active_count) == 0)
        restore_switch_interval();
    else
        update_interval();
}

/* ---- spans ------------------------------------------------------------------------------------- */

/* The frames the request's own code is at now (its thread's stack, from its task's coroutine
 * inwards): a span's depth, and a query's stack.  0, or -1 (memory). */
static int read_own_stack(nprof_py_sampled *e, stack *s)
{
    s->seen = s->n = 0;
    PyObject *task = e->task_ref ? deref(e->task_ref) : NULL;
    PyObject *coro = task ? PyObject_CallMethodNoArgs(task, str_get_coro) : NULL;
    PyErr_Clear();
    if (coro && PyThreadState_GetID(PyThreadState_Get()) != e->thread_id) {
        /* A worker thread running the request's sync code: under the task's await. */
        int rc = walk_awaiting(s, coro);
        if (rc == 0)
            rc = append_thread(s, PyThreadState_Get(), NULL);
        Py_DECREF(coro);
        Py_XDECREF(task);
        return rc;
    }
    PyObject *stop = coro ? coro_frame(coro) : NULL;
    PyErr_Clear();
    int rc = walk_running(s, PyThreadState_Get(), stop);
    if (rc == STOP_NOT_MET && nprof_py_callsite_frame) {
        /* Run off the task's stack (SQLAlchemy's async engines make the cursor call in a
         * greenlet whose frames are all SQLAlchemy's): the query goes under the frame its
         * recorder was given, the task greenlet's, as its call site does. */
        s->seen = s->n = 0;
        rc = walk_frames(s, (PyFrameObject *)Py_NewRef(nprof_py_callsite_frame), stop);
    }
    Py_XDECREF(stop);
    Py_XDECREF(coro);
    Py_XDECREF(task);
    return rc == STOP_NOT_MET ? 0 : rc; /* outside the task's coroutine: its whole stack */
}

void nprof_py_sampler_span_begin(nprof_py_request *r, int id, const char *name, size_t len)
{
    nprof_py_sampled *e = r->sampled;
    if (!e || !e->p || id < 0 || e->span_n >= MAX_OPEN_SPANS)
        return;
    if (e->labels_n == e->labels_cap) {
        size_t cap = e->labels_cap ? e->labels_cap * 2 : 8;
        char **l = realloc(e->labels, cap * sizeof *l);
        if (!l)
            return;
        e->labels = l;
        e->labels_cap = cap;
    }
    size_t n = len < SPAN_LABEL_MAX - 7 ? len : SPAN_LABEL_MAX - 7;
    char *label = malloc(7 + n);
    stack *s = label ? PyMem_Malloc(sizeof *s) : NULL;
    if (!s || read_own_stack(e, s) < 0) {
        PyErr_Clear();
        PyMem_Free(s);
        free(label);
        return;
    }
    memcpy(label, "[span] ", 7);
    memcpy(label + 7, name, n);
    e->labels[e->labels_n++] = label;
    e->spans[e->span_n++] = (struct open_span){id, s->n, label, 7 + n};
    PyMem_Free(s);
}

void nprof_py_sampler_span_end(nprof_py_request *r, int id)
{
    nprof_py_sampled *e = r->sampled;
    if (!e)
        return;
    /* Ending a span ends the spans opened inside it too (profile.h), so cut there. */
    for (size_t k = 0; k < e->span_n; k++)
        if (e->spans[k].id == id) {
            e->span_n = k;
            return;
        }
}

/* ---- queries ---------------------------------------------------------------------------- */

static nprof_py_sampled *find_sampled(nprof_profile *p)
{
    for (size_t i = 0; i < active_n; i++)
        if (active[i]->p == p)
            return active[i];
    return NULL;
}

NPROF__HOT_PATH
int nprof_py_sampler_running(void)
{
    return atomic_load_explicit(&active_count, memory_order_relaxed) != 0;
}

void nprof_py_sampler_query_begin(nprof_profile *p)
{
    if (!atomic_load_explicit(&active_count, memory_order_relaxed) || !p)
        return;
    nprof_py_sampled *e = find_sampled(p);
    if (e)
        e->query_since_ns = now_ns();
}

int nprof_py_sampler_query(nprof_profile *p, const char *sql, size_t sql_len,
                           uint64_t duration_ns)
{
    if (!atomic_load_explicit(&active_count, memory_order_relaxed) || !p)
        return 0;
    nprof_py_sampled *e = find_sampled(p);
    if (!e)
        return 0;
    uint64_t now = now_ns();
    e->query_since_ns = 0;
    if (!ticking)
        pend_flush(e);
    if (now > e->last_ns)
        e->last_ns = now;
    stack *s = PyMem_Malloc(sizeof *s);
    if (!s)
        return NPROF_ENOMEM;
    /* The query runs in the request's own code. */
    int rc = read_own_stack(e, s);
    if (rc < 0) {
        PyErr_Clear();
        PyMem_Free(s);
        return NPROF_ENOMEM;
    }
    /* Past NPROF_SAMPLE_MAX_DEPTH the profile keeps the outermost frames, "[truncated]" and
     * then the query's frame. */
    /* Its shape, so that every execution of one statement merges into one frame; the first
     * SQL_INPUT_MAX bytes say enough for a frame's name. */
    char name[4 + SQL_LABEL_MAX];
    size_t n = 0;
    memcpy(name, "SQL ", 4);
    if (nprof_sql_normalize(sql, sql_len < SQL_INPUT_MAX ? sql_len : SQL_INPUT_MAX,
                            NPROF_SQL_QMARK, name + 4, SQL_LABEL_MAX, &n) == NPROF_EINVAL)
        n = 0;
    if (n > SQL_LABEL_MAX - 1)
        n = SQL_LABEL_MAX - 1;
    insert_spans(e, s);
    s->out[s->n++] = (nprof_frame){name, 4 + n, NULL, 0};
    rc = nprof_profile_add_sample(p, s->out, s->n, duration_ns, NPROF_SAMPLE_SQL);
    PyMem_Free(s);
    stat_sql++;
    return rc == NPROF_ELIMIT ? 0 : rc;
}

/* ---- module functions ------------------------------------------------------------------------ */

static uint64_t interval_arg(PyObject *o, int *err)
{
    *err = 0;
    if (!o || o == Py_None)
        return 0;
    double ms;
    if (nprof_py_opt_ms(o, "interval_ms", &ms) < 0) {
        *err = 1;
        return 0;
    }
    if (ms < 0.1) {
        PyErr_Format(nprof_py_config_error,
                     "interval_ms must be at least 0.1 (ms), got %R: a shorter interval "
                     "spends the request's time handing the GIL over",
                     o);
        *err = 1;
        return 0;
    }
    return (uint64_t)(ms * 1e6);
}

static PyObject *py_sample_current(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"interval_ms", NULL};
    PyObject *iv = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:sample_current", kw, &iv))
        return NULL;
    int err;
    uint64_t interval = interval_arg(iv, &err);
    if (err)
        return NULL;
    nprof_py_request *r = nprof_py_current_request();
    if (!r || r->sampled)
        Py_RETURN_FALSE;
    if (nprof_py_sampler_start(r, interval) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *py_unsample_current(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_py_request *r = nprof_py_current_request();
    int was = r && r->sampled;
    if (was)
        nprof_py_sampler_stop(r);
    return PyBool_FromLong(was);
}

static PyObject *py_is_sampled(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_py_request *r = nprof_py_current_request();
    return PyBool_FromLong(r && r->sampled);
}

static PyObject *py_sampler_stats(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return Py_BuildValue("{s:n,s:O,s:K,s:K,s:K,s:K,s:K,s:K,s:d}", "active",
                         (Py_ssize_t)atomic_load(&active_count), "thread_running",
                         thread_running ? Py_True : Py_False, "ticks",
                         (unsigned long long)stat_ticks, "samples",
                         (unsigned long long)stat_samples, "sql_samples",
                         (unsigned long long)stat_sql, "tick_ns_total",
                         (unsigned long long)stat_tick_ns, "tick_ns_max",
                         (unsigned long long)stat_tick_max_ns, "interval_ns",
                         (unsigned long long)atomic_load(&interval_ns), "saved_switch_interval",
                         saved_switch);
}

/* set_sampler_paths(libraries, own, base): library roots (a frame under one is named after
 * the first path component below it), nanoprof's own roots (never shown), the directory
 * application paths are shown relative to. */
static PyObject *py_set_sampler_paths(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"libraries", "own", "base", NULL};
    PyObject *libs, *own, *base = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:set_sampler_paths", kw, &libs, &own,
                                     &base))
        return NULL;
    PyObject *groups[2] = {[ROOT_LIBRARY] = libs, [ROOT_OWN] = own};
    if (nprof_py_paths_set(&roots, groups, 2, base, "sampler paths") < 0)
        return NULL;
    nprof_py_codetab_clear(&codes);
    Py_RETURN_NONE;
}

/* Test-only entry points for the query recorder's two calls, on the current request. */
static PyObject *py_sampler_query_begin(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_py_request *r = nprof_py_current_request();
    if (r)
        nprof_py_sampler_query_begin(r->p);
    Py_RETURN_NONE;
}

static PyObject *py_sampler_query(PyObject *self, PyObject *args)
{
    (void)self;
    const char *sql;
    Py_ssize_t len;
    unsigned long long ns;
    if (!PyArg_ParseTuple(args, "s#K:_sampler_query", &sql, &len, &ns))
        return NULL;
    nprof_py_request *r = nprof_py_current_request();
    int rc = r ? nprof_py_sampler_query(r->p, sql, (size_t)len, ns) : 0;
    if (rc < 0)
        return nprof_py_raise(rc, "_sampler_query()");
    Py_RETURN_NONE;
}

/* The current thread's stack as the sampler names it (a list, outermost first): tests. */
static PyObject *py_sampler_stack(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    if (init_names() < 0)
        return NULL;
    stack *s = PyMem_Malloc(sizeof *s);
    if (!s)
        return PyErr_NoMemory();
    s->seen = s->n = 0;
    PyObject *out = NULL;
    if (walk_running(s, PyThreadState_Get(), NULL) == 0) {
        out = PyList_New((Py_ssize_t)s->n);
        for (size_t i = 0; out && i < s->n; i++) {
            PyObject *t = Py_BuildValue("(NN)", nprof_py_str(s->out[i].name, s->out[i].name_len),
                                        s->out[i].lib ? nprof_py_str(s->out[i].lib,
                                                                     s->out[i].lib_len)
                                                      : Py_NewRef(Py_None));
            if (!t)
                Py_CLEAR(out);
            else
                PyList_SET_ITEM(out, (Py_ssize_t)i, t);
        }
    } else {
        PyErr_NoMemory();
    }
    PyMem_Free(s);
    return out;
}

PyMethodDef nprof_py_sampler_methods[] = {
    {"sample_current", (PyCFunction)(void (*)(void))py_sample_current,
     METH_VARARGS | METH_KEYWORDS,
     "sample_current(interval_ms=None): samples the current request's call stacks until it "
     "ends; False when there is none or it is sampled already."},
    {"unsample_current", py_unsample_current, METH_NOARGS,
     "Stops sampling the current request; whether it was sampled."},
    {"is_sampled", py_is_sampled, METH_NOARGS, "Whether the current request is sampled."},
    {"sampler_stats", py_sampler_stats, METH_NOARGS,
     "The sampler's counters: ticks, samples, time spent in ticks (ns)."},
    {"set_sampler_paths", (PyCFunction)(void (*)(void))py_set_sampler_paths,
     METH_VARARGS | METH_KEYWORDS,
     "set_sampler_paths(libraries, own, base=None): how frames are named and which are "
     "nanoprof's own."},
    {"_sampler_shutdown", py_sampler_shutdown, METH_NOARGS,
     "Stops the stack sampler's thread (atexit)."},
    {"_sampler_query_begin", py_sampler_query_begin, METH_NOARGS,
     "Test entry: nprof_py_sampler_query_begin() on the current request."},
    {"_sampler_query", py_sampler_query, METH_VARARGS,
     "Test entry: nprof_py_sampler_query(sql, duration_ns) on the current request."},
    {"_sampler_stack", py_sampler_stack, METH_NOARGS,
     "Test entry: this thread's stack as the sampler names it."},
    {NULL, NULL, 0, NULL},
};
