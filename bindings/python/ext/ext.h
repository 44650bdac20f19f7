/*
 * bindings/python/ext/ext.h: what the files of the extension module nanoprof._core share.
 *
 * The extension is the one place that touches the CPython C API, and it reaches nanoprof
 * through the public C API only (nanoprof/nanoprof.h).  Its state is process-wide, like the
 * library's: one default runtime, one context variable holding the running request, the
 * exception classes.  Every function here runs with the GIL held unless it says otherwise.
 *
 * Runtimes are never destroyed: configure() makes a new default runtime and leaves the old
 * one to the middlewares, stores and profiles that still use it.  A runtime is a few hundred
 * KB, a process makes a handful, and a runtime that outlives everything that points into it
 * is what makes a stale C pointer (a thread's current profile, a profile a Python object
 * still reads) harmless instead of a use-after-free.
 */
#ifndef NPROF_PY_EXT_H
#define NPROF_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include <nanoprof/nanoprof.h>

/* ---- module state (module.c) --------------------------------------------------------- */

extern PyObject *nprof_py_error;        /* nanoprof.Error */
extern PyObject *nprof_py_config_error; /* nanoprof.ConfigError (also a ValueError) */
extern PyObject *nprof_py_state_error;  /* nanoprof.StateError */
extern PyObject *nprof_py_current;      /* the ContextVar holding the running request */
extern PyObject *nprof_py_attach_hook;  /* Python: attach_header(result, header) or NULL */
extern PyObject *nprof_py_info_hook;    /* Python: request_info(args) or NULL */
extern PyObject *nprof_py_json_loads;   /* json.loads */

/* The default runtime, created on first use from the defaults and NANOPROF_CONF.  NULL with
 * an exception set when it cannot be created. */
nprof_runtime *nprof_py_runtime(void);

/* Raises the exception for C result `rc` ("<context>: <strerror> (<detail>)"); returns NULL
 * so that callers can `return nprof_py_raise(...)`. */
PyObject *nprof_py_raise(int rc, const char *context);

/* The bytes of a str (UTF-8; lone surrogates pass as the bytes surrogatepass gives) or of a
 * bytes-like object.  *keep receives the object that owns the bytes (release it with
 * Py_XDECREF).  NULL with TypeError naming `what` for anything else. */
const char *nprof_py_text(PyObject *o, Py_ssize_t *len, PyObject **keep, const char *what);

/* Option values: an int in 0 (or 1, without `allow_zero`) .. UINT32_MAX, and a number of
 * milliseconds >= 0.  TypeError for another type, ConfigError (a ValueError) out of range,
 * both naming the option.  0 or -1. */
int nprof_py_opt_uint(PyObject *o, const char *name, uint32_t *out, int allow_zero);
int nprof_py_opt_ms(PyObject *o, const char *name, double *out);

/* A str from bytes that may hold invalid UTF-8 (replaced by U+FFFD). */
PyObject *nprof_py_str(const char *s, size_t len);

/* Takes the buffer's text as a str and frees the buffer. */
PyObject *nprof_py_buf_str(nprof_buf *b);

/* What a renderer wrote into `b` with result `rc`: a str (bytes when `as_bytes`), or the
 * exception for `rc` ("<what>: ...").  Frees the buffer either way. */
PyObject *nprof_py_rendered(int rc, nprof_buf *b, int as_bytes, const char *what);

/* Is an event loop running in this thread?  The C library's per-thread current profile is
 * only set outside one: tasks interleaved on a loop share a thread, so a thread-wide
 * current profile would hand one request's queries to another. */
int nprof_py_in_event_loop(void);

/* ---- profiles (profile.c) ------------------------------------------------------------ */

extern PyTypeObject nprof_py_profile_type;  /* RequestProfile */
extern PyTypeObject nprof_py_request_type;  /* Request: the state in the context variable */
extern PyTypeObject *nprof_py_sqlquery_type; /* SQLQuery (a named tuple) */

/* Objects of one type kept for reuse when their kind comes and goes once per request or
 * query: allocating and freeing them is then most of what they cost, and pymalloc may set
 * up and tear down a whole pool for them each time.  Enough for what one event loop or
 * thread pool runs at once; the GIL guards it.  Zero-initialised. */
enum { NPROF_PY_SPARE_MAX = 64 };
typedef struct nprof_py_spare {
    int count;
    PyObject *items[NPROF_PY_SPARE_MAX];
} nprof_py_spare;

/* A kept object made new again (refcount 1, `type`; its fields as it was left), or NULL. */
static inline PyObject *nprof_py_spare_take(nprof_py_spare *s, PyTypeObject *type)
{
    if (!s->count)
        return NULL;
    return PyObject_Init(s->items[--s->count], type);
}

/* Keeps `o` (refcount 0, cleared; a GC object untracked): 1, or 0 when full. */
static inline int nprof_py_spare_give(nprof_py_spare *s, PyObject *o)
{
    if (s->count == NPROF_PY_SPARE_MAX)
        return 0;
    s->items[s->count++] = o;
    return 1;
}

typedef struct nprof_py_middleware nprof_py_middleware;
typedef struct nprof_py_profile nprof_py_profile;

typedef struct nprof_py_sampled nprof_py_sampled; /* sampler.c */

enum { NPROF_PY_REQ_STANDALONE = 0, NPROF_PY_REQ_MW = 1 };

/* A query's call site (record.c): looked up once, when first asked for, into `buf`. */
typedef struct nprof_py_site {
    char buf[NPROF_CALLSITE_MAX];
    size_t len;
    int done;
} nprof_py_site;

/* A query held back by record.c until its request's profile is next read (see
 * nprof_py_request_flush): its text object (strong) and what the recording needs of it. */
typedef struct nprof_py_held {
    PyObject *sql;            /* str or bytes, strong */
    uint64_t start_ticks, duration_ns, params_hash;
    uint32_t rows;
    int32_t site;             /* its call site's slot in the request's `sites`, or -1 */
} nprof_py_held;

/* Held queries a request keeps at most before they are recorded; call sites taken for
 * held queries of texts new to it (record.c: hold), at most, per request. */
enum { NPROF_PY_HELD_MAX = 8, NPROF_PY_HELD_SITES = 4 };

/* The state of one running request: what the context variable holds.  Internal: Python
 * code sees it as _core.Request (middleware requests) and reads the profile through a
 * RequestProfile view. */
typedef struct nprof_py_request {
    PyObject_HEAD
    /* ---- what a query reads and writes (record.c), first: at a query's end these lines
     * are cold again (the driver and the other requests ran meanwhile), and the fewer of
     * them a query touches, the less its recording costs.  Zeroed when the object is
     * reused. */
    int kind;                 /* NPROF_PY_REQ_* */
    int ended;
    uint32_t held_count;      /* record.c: queries held back */
    uint32_t sites_used;      /* record.c: call sites taken for held queries */
    nprof_profile *p;         /* the running profile; NULL once ended */
    nprof_py_sampled *sampled; /* sampler.c: set while its call stacks are sampled */
    PyObject *repeat_text;    /* record.c, strong: the last new text recorded or held */
    uint64_t params_from_ns;  /* nprof_profile_params_from_ns(p), read when p is set:
                                 record.c asks it instead of the profile at every query */
    char hot_end[1];
    /* ---- not zeroed when the object is reused: valid up to held_count ---- */
    nprof_py_held held[NPROF_PY_HELD_MAX];
    /* ---- the rest of the request, zeroed when the object is reused ---- */
    char cold_start[1];
    int status;
    int set_c_current;        /* made p the thread's nprof_current() at begin */
    nprof_current_saved c_prev; /* the thread's current profile before begin */
    nprof_mw_state st;        /* NPROF_PY_REQ_MW */
    nprof_py_middleware *mw;  /* strong; NPROF_PY_REQ_MW */
    nprof_py_profile *view;   /* strong; made on first get_current_profile() */
    PyObject *token;          /* the context variable's token, to restore it at end */
    char cold_end[1];
    /* ---- not zeroed either: valid up to sites_used ---- */
    nprof_py_site sites[NPROF_PY_HELD_SITES];
} nprof_py_request;

/* Records the queries held back in `r` into its profile (record.c): called before anything
 * reads the profile (its views, its response headers, its end) or changes the span its
 * queries go under (spans, phases), so that nobody can tell they were held. */
void nprof_py_request_record_held(nprof_py_request *r);

static inline void nprof_py_request_flush(nprof_py_request *r)
{
    if (r->held_count)
        nprof_py_request_record_held(r);
}

/* nprof_mw_mark_phase() for a middleware request, its held queries first. */
static inline int nprof_py_mark_phase(nprof_py_request *r, int phase)
{
    nprof_py_request_flush(r);
    return nprof_mw_mark_phase(&r->st, phase);
}

/* A zeroed request object. */
nprof_py_request *nprof_py_request_alloc(void);

/* Opens `r` (from nprof_py_request_alloc) as a request of `kind` over profile `p`: reads
 * what its queries ask of the profile once (params_from_ns), makes it current in the
 * context variable and, when `c_current`, the thread's C current profile too.  0, or -1
 * with an exception (the caller lets go of `r`). */
int nprof_py_request_open(nprof_py_request *r, int kind, nprof_profile *p, int c_current);

/* A new request over profile `p` (taken over), made current in the context variable and,
 * outside an event loop or for a `sync_call` (which nothing can interleave with), as the
 * thread's C current profile. */
nprof_py_request *nprof_py_request_start(int kind, nprof_profile *p, int sync_call);

/* The running request of this context, or NULL (no exception).  Borrowed: the context
 * variable keeps it alive while it is current. */
nprof_py_request *nprof_py_current_request(void);

/* The thread's C current profile goes back to what it was before the request, if it is
 * still this request's.  Call it before the profile ends. */
void nprof_py_request_uncurrent(nprof_py_request *r);

/* Before a request's profile goes back to the C library: freezes the view when someone
 * still holds it, else detaches it.  Then resets the context variable and the C current.
 * `p` must be ended already when the view is to be frozen. */
void nprof_py_request_release(nprof_py_request *r);

/* enum nprof_samples_format of a format name ('collapsed', 'speedscope', 'chrome', 'svg'),
 * or -1 with ConfigError (a ValueError) naming the four. */
int nprof_py_samples_format(PyObject *name);

/* A frozen RequestProfile with a copy of `p`. */
PyObject *nprof_py_profile_frozen(const nprof_profile *p);

/* The view of a running request (made once). */
PyObject *nprof_py_request_view(nprof_py_request *r);

/* Ends a standalone request: the profile ends, *header (may be NULL) receives its X-Profile
 * value, a frozen view is returned when `want_view` (else None is not returned: NULL with no
 * exception), and the C profile goes into the runtime's store. */
PyObject *nprof_py_request_finish(nprof_py_request *r, int status, int want_view,
                                  PyObject **header);

/* A duration from Python: an int of nanoseconds >= 0, else TypeError/ValueError naming
 * `what`.  0 or -1. */
int nprof_py_ns(PyObject *o, const char *what, uint64_t *out);

/* ---- what is known of each code object (codetab.c) ----------------------------------- */

/* A table of entries of `entry_size` bytes, each starting with `PyObject *code` (strong;
 * NULL: free), zero-initialised: `{.entry_size = sizeof(my_entry), .release = my_release}`.
 * `release` frees what an entry holds besides its code (the table then zeroes it).  Emptied
 * when 3/4 full; `epoch` counts the times it was emptied. */
typedef struct nprof_py_codetab {
    size_t entry_size;
    void (*release)(void *entry);
    void *slots;
    size_t used;
    uint64_t epoch;
} nprof_py_codetab;

/* The entry of `code`, or NULL with *empty the zeroed entry to fill and then pass to
 * nprof_py_codetab_insert() (*empty NULL too: out of memory).  GIL held. */
void *nprof_py_codetab_find(nprof_py_codetab *t, PyCodeObject *code, void **empty);
/* Claims `empty` (from nprof_py_codetab_find, with no other call in between) for `code`. */
void nprof_py_codetab_insert(nprof_py_codetab *t, void *empty, PyCodeObject *code);
/* Empties the table (the settings that decide its entries changed). */
void nprof_py_codetab_clear(nprof_py_codetab *t);

/* ---- recording queries (record.c), call sites (callsite.c), the slow log (slowlog.c) -- */

extern PyTypeObject nprof_py_recorder_type; /* QueryRecorder */
extern PyTypeObject nprof_py_live_type;     /* LiveRecorder: a recorder until off() */

/* What a query's end needs, taken at its begin: the request it runs in (a query ends in the
 * context it began in, so its end need not look it up again), and the recorder's slow-query
 * log (new references, or NULL) with its threshold.  Kept with the query, so that its end
 * reads none of the recorder's objects: at the end of an awaited query they are cold lines,
 * two of them at every query. */
typedef struct nprof_py_query_ctx {
    nprof_py_request *req;
    PyObject *slow_log;
    uint64_t threshold_ns;
} nprof_py_query_ctx;

static inline void nprof_py_query_ctx_clear(nprof_py_query_ctx *c)
{
    Py_CLEAR(c->req);
    Py_CLEAR(c->slow_log);
}

/* The tuple of items[0, n) (new references to them).  New ref, or NULL with an exception. */
static inline PyObject *nprof_py_tuple_of(PyObject *const *items, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(items[i]));
    return t;
}

/* A query's parameters as a hook hands them over: one object (a sequence, a mapping, None),
 * or, for a driver that takes them as the arguments after the query (asyncpg's
 * fetch(query, *args)), those arguments one by one, so that no tuple is made of them at
 * every query (its allocation, GC tracking and release were about 170 instructions a query
 * under callgrind).  `obj` NULL: the values are item[0, n); more than fit there come as a
 * tuple. */
enum { NPROF_PY_QUERY_PARAMS_INLINE = 3 };
typedef struct nprof_py_query_params {
    PyObject *obj; /* borrowed */
    PyObject *const *item;
    Py_ssize_t n;
} nprof_py_query_params;

/* The parameters as one object: `obj`, or the tuple of the values.  New ref, or NULL with
 * an exception.  For what reads them whole (a summary, a recorder's finish() in Python). */
static inline PyObject *nprof_py_query_params_object(const nprof_py_query_params *p)
{
    return p->obj ? Py_NewRef(p->obj) : nprof_py_tuple_of(p->item, p->n);
}

/* A LiveRecorder's start() (`sync`) or start_async() and its finish() or finish_async(),
 * called from C (TimedMethod) without attribute reads or int objects: begin returns the
 * start in ticks, 0 when nothing would be recorded (then end need not be called), and fills
 * `ctx` (zeroed first; NULL: Python's start(), whose finish() looks them up again), which
 * the caller hands to end and clears after it (nprof_py_query_ctx_clear).  End never fails:
 * what it could not record is counted.  `o` must be a LiveRecorder
 * (Py_IS_TYPE(o, &nprof_py_live_type)). */
uint64_t nprof_py_live_begin(PyObject *o, int sync, nprof_py_query_ctx *ctx /* or NULL */);
void nprof_py_live_end(uint64_t start, const nprof_py_query_ctx *ctx, PyObject *sql,
                       const nprof_py_query_params *params, Py_ssize_t rows, PyObject *error,
                       int sync);
extern PyTypeObject nprof_py_slowlog_type;  /* SlowLog */

/* Adds QueryEvent to the module; 0 or -1. */
int nprof_py_record_init(PyObject *m);

/* Writes the call site of the running Python code ("file.py:42 in function": the innermost
 * frame outside the excluded paths) into `buf`, at most `cap` bytes, no NUL; returns the
 * bytes written, 0 when every frame is excluded.  Never raises. */
size_t nprof_py_callsite_write(char *buf, size_t cap);

/* The same as a str, or None.  New ref. */
PyObject *nprof_py_callsite(void);

/* When set (borrowed, by a caller around a recording), call sites are looked up from this
 * frame and its callers first, then from the running stack: see timed.c, query_info.caller. */
extern PyObject *nprof_py_callsite_frame;

/* During a throw() or close() forwarded into `awaited` (nprof_py_forward.unstacked): the
 * frame of the coroutine that awaits it, which CPython leaves off the stack then, found
 * down the chain of awaits of the running coroutines.  New ref, or NULL when not found (the
 * running stack is then all there is).  Keeps a pending exception as it is. */
PyObject *nprof_py_awaiting_frame(PyObject *awaited);

/* Is `o` a SlowLog?  Its C log, NULL once closed. */
int nprof_py_slowlog_check(PyObject *o);
nprof_slowlog *nprof_py_slowlog_get(PyObject *o);

/* For a holder of the C pointer (a middleware): the log, counted as used until
 * nprof_py_slowlog_unborrow(), so that close() refuses meanwhile.  NULL with StateError when
 * it is closed. */
nprof_slowlog *nprof_py_slowlog_borrow(PyObject *o);
void nprof_py_slowlog_unborrow(PyObject *o);

/* A module-level interned string and its text, for nprof_py_intern_names(). */
typedef struct nprof_py_name {
    PyObject **slot;
    const char *text;
} nprof_py_name;

/* Interns each text into its slot, once (a filled slot is kept); 0, or -1 with an error. */
int nprof_py_intern_names(const nprof_py_name *names, size_t count);

/* ---- path tables (paths.c) ------------------------------------------------------------ */

/* Path prefixes, each tagged with the group it came in (0, 1, ...), and the directory that
 * paths under it are shown relative to: how callsite.c and sampler.c classify a frame's
 * file.  Read and set with the GIL held.  A zeroed table is empty. */
#define NPROF_PY_PATHS_MAX 64
typedef struct nprof_py_paths {
    char *items[NPROF_PY_PATHS_MAX];
    size_t lens[NPROF_PY_PATHS_MAX];
    int groups[NPROF_PY_PATHS_MAX];
    size_t count;
    char *base;
    size_t base_len;
} nprof_py_paths;

/* Replaces the table with the paths of the sequences groups[0..ngroups) and `base` (None:
 * none; a trailing '/' is dropped).  On error (a str for a sequence, a path that is not
 * text, more than NPROF_PY_PATHS_MAX) the table is unchanged: -1 with the exception,
 * which names the paths `what` ("sampler paths"). */
int nprof_py_paths_set(nprof_py_paths *t, PyObject *const *groups, int ngroups, PyObject *base,
                       const char *what);
void nprof_py_paths_clear(nprof_py_paths *t);
/* The index of the longest prefix `file` starts with, or -1. */
long nprof_py_paths_match(const nprof_py_paths *t, const char *file, size_t len);
/* `file` as shown: relative to the base when under it (*file moves past it); its length. */
size_t nprof_py_paths_shown(const nprof_py_paths *t, const char **file, size_t len);

/* ---- forwarding awaitables (forward.c) ------------------------------------------------ */

/* An awaitable that forwards every step (send, throw, close) to the coroutine `iter` and
 * tells its owner how that coroutine ended: TimedAwait (a query of a coroutine driver
 * method) and ASGICall (an ASGI request).  An owner's object starts with this. */
typedef struct nprof_py_forward nprof_py_forward;

typedef struct nprof_py_forward_ops {
    /* The coroutine returned: 0, or -1 with an exception (its value is then dropped).
     * `started`: its first step was a send, so the owner's work is under way (a first
     * throw() means it never began). */
    int (*returned)(nprof_py_forward *f, int started);
    /* It raised; the exception is set, and one the callback raises replaces it (chained). */
    void (*raised)(nprof_py_forward *f, int started);
    /* Closed before it started, or destroyed before its end: no exception is set, and one
     * the callback leaves is discarded. */
    void (*dropped)(nprof_py_forward *f, int started);
    /* Before the first send is forwarded; or NULL.  It may make the iterator (f->iter is
     * NULL until then: throw() and close() before it find nothing to forward to).  0, or -1
     * with an exception, its own work ended: the forward ends with that error. */
    int (*first_step)(nprof_py_forward *f);
    int guarded; /* the steps of a started forward raise nprof_py_step_depth */
    /* Or NULL: takes the object, cleared and untracked, for reuse (1) instead of it being
     * freed (0). */
    int (*recycle)(nprof_py_forward *f);
} nprof_py_forward_ops;

struct nprof_py_forward {
    PyObject_HEAD
    const nprof_py_forward_ops *ops;
    PyObject *iter;
    PyObject *weakrefs;
    int state;
    int guarded;     /* ops->guarded, here where a step reads it */
    int plain_start; /* no ops->first_step */
    /* In a throw() or close() forwarded in, and the owner's callbacks that it ends in: they
     * run without the awaiting coroutine's frame on the stack (CPython pushes a coroutine's
     * frame when it forwards to another coroutine, not to an object like this one). */
    int unstacked;
    /* Its finalizer ran: CPython has marked it finalized (it marks an object exactly when
     * it calls its tp_finalize) and would never finalize it again, so it is not reused. */
    int finalized;
};

/* Steps of guarded forwards running on this thread now (TimedAwait: a query being timed). */
extern _Thread_local unsigned nprof_py_step_depth;

/* When `o` is a forward: the iterator it forwards to (borrowed; NULL when none yet), else
 * NULL. */
PyObject *nprof_py_forward_inner(PyObject *o);

/* Fills an owner's type with the shared slots (its tp_name, tp_basicsize, tp_doc,
 * tp_traverse, tp_clear and tp_repr are its own; traverse and clear must call the two
 * below) and readies it; 0 or -1. */
int nprof_py_forward_type_ready(PyTypeObject *type);
/* Sets up a new object (fields after the shared head are the owner's); `iter` may be NULL
 * when the owner's first_step makes it. */
void nprof_py_forward_start(nprof_py_forward *f, const nprof_py_forward_ops *ops, PyObject *iter);
int nprof_py_forward_traverse(nprof_py_forward *f, visitproc visit, void *arg);
/* What `o` awaits when it is a forward (borrowed; NULL when cleared), else NULL: the await
 * chain goes on through it (the sampler walks cr_await links, which it has none of). */
PyObject *nprof_py_forward_awaits(PyObject *o);
void nprof_py_forward_clear(nprof_py_forward *f);

/* What `await` iterates for `awaitable`: a coroutine itself, else its __await__().  New
 * ref, or NULL with the TypeError `await` would raise. */
PyObject *nprof_py_await_iterator(PyObject *awaitable);

/* The pending exception as a normalized (type, value, tb) with value.__traceback__ set, as
 * an `except ... as exc` block sees it. */
void nprof_py_fetch_exception(PyObject **type, PyObject **value, PyObject **tb);
/* An exception raised while (type, value, tb) was being handled replaces it, with the old
 * one as its __context__, as in an `except` or `finally` block.  Takes the old triple's
 * references and leaves the new one in it. */
void nprof_py_replace_exception(PyObject **type, PyObject **value, PyObject **tb);

/* ---- the hooks' guard (guard.c) --------------------------------------------------- */

extern PyTypeObject nprof_py_guard_type; /* QueryGuard: a ContextVar that counts its sets */

/* Is `guard` (a QueryGuard) true in this context?  1, 0, or -1 with an exception; no read
 * of the variable while no set() is outstanding. */
int nprof_py_guard_is_set(PyObject *guard);
/* guard.set(value) and guard.reset(token), as ContextVar's (the token, or -1/NULL with an
 * exception). */
PyObject *nprof_py_guard_set(PyObject *guard, PyObject *value);
int nprof_py_guard_reset(PyObject *guard, PyObject *token);
/* Readies QueryGuard and adds it to the module; 0 or -1. */
int nprof_py_guard_init(PyObject *m);

/* ---- timed driver methods (timed.c) ------------------------------------------------- */

extern PyTypeObject nprof_py_timed_method_type; /* TimedMethod: a driver's execute, timed */
extern PyTypeObject nprof_py_timed_await_type;  /* TimedAwait: its coroutine form's awaitable */

/* Readies TimedMethod and TimedAwait and adds them to the module; 0 or -1. */
int nprof_py_timed_init(PyObject *m);

/* ---- headers and the handler decorator (handler.c) ---------------------------------- */

/* `result` with X-Profile: `header` attached where the result can carry it (a (body,
 * status, headers) tuple here, framework responses through the attach hook).  New ref. */
PyObject *nprof_py_attach(PyObject *result, PyObject *header);

/* ---- the middleware (middleware.c) --------------------------------------------------- */

extern PyTypeObject nprof_py_middleware_type;
extern PyTypeObject nprof_py_hook_type; /* hooks.c: PhaseHook */

/* tp_descr_get of the extension's callables that stand in for Python functions on a class
 * (PhaseHook, TimedMethod): bound to an instance as a method, themselves on the class. */
PyObject *nprof_py_method_get(PyObject *self, PyObject *obj, PyObject *type);

struct nprof_py_middleware {
    PyObject_HEAD
    nprof_mw *mw;
    nprof_runtime *rt;
    char dashboard[256];      /* dashboard_path, "" when off */
    size_t dashboard_len;
    PyObject *slow_log;       /* SlowLog borrowed by the C middleware, or NULL */
};

/* Middleware.asgi_begin(scope): None (not profiled), a (status, headers, body) tuple (a
 * dashboard response to send), or the new Request, current in this context. */
PyObject *nprof_py_mw_asgi_begin(nprof_py_middleware *self, PyObject *scope);
/* The ASGI send of a profiled request (asgi.c's call object is the send the app gets):
 * sends `msg` with the server's `send`, with the headers of `r` added at
 * http.response.start, the status kept for the end and the handler's phase ended at the
 * last body message.  `r` may be NULL or ended: the message then goes as it came. */
PyObject *nprof_py_asgi_send_message(nprof_py_request *r, PyObject *send, PyObject *msg);
/* Interns what the send reads of a message (at import): 0, or -1 with an exception. */
int nprof_py_send_init(void);
/* Request.end(status): ends a middleware request (once; later calls give None).  The
 * ?profile=json body as bytes, else None; NULL with an exception. */
PyObject *nprof_py_request_end(nprof_py_request *r, int status);

/* ---- ASGIMiddleware's call (asgi.c) ------------------------------------------------- */

/* Readies ASGICall and adds asgi_call() and install_asgi_call() to the module; 0 or -1. */
int nprof_py_asgi_init(PyObject *m);

/* ---- the store (store.c) ------------------------------------------------------------- */

extern PyTypeObject nprof_py_store_type;
PyObject *nprof_py_store_new(nprof_runtime *rt, nprof_store *s, int owned);

/* ---- sampled call stacks (sampler.c) ----------------------------------------------- */

/* Samples `r`'s Python call stacks into its profile every `interval_ns` (0: the runtime's
 * opt.stack_sample_interval_ms) until nprof_py_sampler_stop().  Call it from the request's
 * own thread (and task, in an event loop), after r->p is set.  0, or -1 with an exception
 * (the request then simply is not sampled). */
int nprof_py_sampler_start(nprof_py_request *r, uint64_t interval_ns);

/* Stops sampling `r`, if it is sampled: before its profile ends (nprof_py_request_uncurrent
 * calls it).  Never raises. */
void nprof_py_sampler_stop(nprof_py_request *r);

/* For the query recorder, around one query of profile `p` (one branch when nothing is
 * sampled; nothing when `p` is NULL or not sampled): query_begin before it runs, so that the
 * sampler's ticks meanwhile add nothing; query after it ends, on the same thread, which adds
 * the Python stack that issued it with a last frame "SQL <its shape>" (`sql` as run: it is
 * normalized here, literals as ?) and NPROF_SAMPLE_SQL, weighted `duration_ns`.  query
 * returns 0 or a negative NPROF_E* code; neither raises. */
void nprof_py_sampler_query_begin(nprof_profile *p);

/* A span `id` of `r` opened (after nprof_span_begin() gave the id) or closed, from the
 * request's own code: while open, its stacks show "[span] name" under the frame that opened
 * it.  Nothing when `r` is not sampled; never raises. */
void nprof_py_sampler_span_begin(nprof_py_request *r, int id, const char *name, size_t len);
void nprof_py_sampler_span_end(nprof_py_request *r, int id);

/* Is any request sampled now?  A relaxed load: the query recorder's one branch. */
int nprof_py_sampler_running(void);

/* Adds the samples taken of `p` so far (they wait for the request's own thread, which alone
 * may write its profile) before `p` is read: a live RequestProfile calls it.  Never raises. */
void nprof_py_sampler_flush(nprof_profile *p);
int nprof_py_sampler_query(nprof_profile *p, const char *sql, size_t sql_len,
                           uint64_t duration_ns);

/* Whether `o` is a str equal to the str `s`, compared here: an ASGI message's type is a
 * literal of the framework's that is not interned (it has dots), so it is rarely `s`
 * itself, and PyUnicode_Compare() is a call into libpython whose lines run cold on every
 * request.  Anything but a str is unequal, with no exception. */
static inline int nprof_py_str_is(PyObject *o, PyObject *s)
{
    if (o == s)
        return 1;
    if (!PyUnicode_Check(o))
        return 0;
    if (PyUnicode_READY(o) < 0) { /* a legacy str that cannot be made ready (no memory) */
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(o);
    return n == PyUnicode_GET_LENGTH(s) && PyUnicode_KIND(o) == PyUnicode_KIND(s) &&
           memcmp(PyUnicode_DATA(o), PyUnicode_DATA(s), (size_t)n * PyUnicode_KIND(o)) == 0;
}

/* Writes `u` in decimal so that it ends just before `end`; returns where it starts.  The
 * request path formats line numbers and integer parameters with this: snprintf costs more
 * than the rest of what it is part of.  `end` needs 20 bytes before it. */
static inline char *nprof_py_decimal(char *end, unsigned long long u)
{
    char *p = end;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    return p;
}

/* Module-level functions defined in each file, gathered by module.c. */
extern PyMethodDef nprof_py_profile_methods[];
extern PyMethodDef nprof_py_handler_methods[];
extern PyMethodDef nprof_py_middleware_methods[];
extern PyMethodDef nprof_py_store_methods[];
extern PyMethodDef nprof_py_record_methods[];
extern PyMethodDef nprof_py_callsite_methods[];
extern PyMethodDef nprof_py_sampler_methods[];

#endif /* NPROF_PY_EXT_H */
