/*
 * bindings/python/ext/profile.c: RequestProfile, the running request in the context
 * variable, and the module functions over them (record_sql, start_profile, end_profile,
 * get_current_profile, spans).
 *
 * A RequestProfile reads the C profile of a running request directly: nothing is copied into
 * Python per request.  When the request ends, its C profile goes back to the library (into
 * the store, where it is later reused for another request), so a view must not keep pointing
 * at it: if someone still holds the view, it is frozen first (a copy of everything it can
 * show, made once), otherwise it is just detached.  Profiles read from the store are frozen
 * copies too, so no Python object ever reads memory that another request may reuse.
 */
#include "ext.h"

#include <stddef.h>
#include <string.h>

PyTypeObject *nprof_py_sqlquery_type;

struct nprof_py_profile {
    PyObject_HEAD
    nprof_profile *p;        /* live: the running request's profile, borrowed; else NULL */
    nprof_py_request *req;   /* live: the request, borrowed (it clears p and req at its end) */
    int frozen;
    nprof_profile_info info; /* frozen: the scalars (string pointers cleared) */
    PyObject *method, *path, *route, *request_id;         /* frozen */
    PyObject *header, *json, *collapsed, *queries, *patterns; /* frozen */
    nprof_samples_info samples_info;                          /* frozen */
    PyObject *flames; /* frozen with samples: every flame() rendering, by flame_slot() */
};

/* ---- sampled call stacks: the formats flame() renders ------------------------------------- */

static const char *const flame_formats[] = {"collapsed", "speedscope", "chrome", "svg"};
#define FLAME_FORMATS 4

/* A format's name as flame() takes it: its enum nprof_samples_format, or -1 with ValueError. */
int nprof_py_samples_format(PyObject *name)
{
    for (int i = 0; i < FLAME_FORMATS; i++)
        if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, flame_formats[i]) == 0)
            return i;
    PyErr_Format(nprof_py_config_error,
                 "format %R: use 'collapsed', 'speedscope', 'chrome' or 'svg'", name);
    return -1;
}

static Py_ssize_t flame_slot(int format, unsigned flags)
{
    return (Py_ssize_t)format * 2 + (flags & NPROF_SAMPLES_COLLAPSE_LIBS ? 1 : 0);
}

static PyObject *render_flame(const nprof_profile *p, int format, unsigned flags)
{
    nprof_buf b = NPROF_BUF_INIT;
    return nprof_py_rendered(nprof_profile_render_samples(p, format, flags, &b), &b, 0,
                             "flame()");
}

/* A frozen view keeps every rendering of its samples (a sampled request is the rare one);
 * None when it has none. */
static PyObject *freeze_flames(const nprof_profile *p, const nprof_samples_info *si)
{
    if (!si->samples)
        Py_RETURN_NONE;
    PyObject *t = PyTuple_New(FLAME_FORMATS * 2);
    for (int f = 0; t && f < FLAME_FORMATS; f++)
        for (unsigned fl = 0; t && fl < 2; fl++) {
            PyObject *r = render_flame(p, f, fl ? NPROF_SAMPLES_COLLAPSE_LIBS : 0);
            if (!r)
                Py_CLEAR(t);
            else
                PyTuple_SET_ITEM(t, flame_slot(f, fl), r);
        }
    return t;
}

/* ---- building Python values from a C profile ---------------------------------------------- */

/* Fingerprints are shown as 16 hex digits everywhere (JSON, headers, the dashboard). */
static PyObject *fingerprint_hex(uint64_t fp)
{
    char t[17];
    snprintf(t, sizeof t, "%016llx", (unsigned long long)fp);
    return PyUnicode_FromStringAndSize(t, 16);
}

static PyObject *query_tuple(const nprof_query_info *q)
{
    PyObject *t = PyStructSequence_New(nprof_py_sqlquery_type);
    if (!t)
        return NULL;
    PyObject *items[10] = {
        nprof_py_str(q->sql, q->sql_len),
        PyLong_FromUnsignedLongLong(q->duration_ns),
        q->params ? nprof_py_str(q->params, q->params_len) : Py_NewRef(Py_None),
        q->normalized ? nprof_py_str(q->normalized, q->normalized_len) : Py_NewRef(Py_None),
        fingerprint_hex(q->fingerprint),
        PyLong_FromUnsignedLongLong(q->start_offset_ns),
        PyBool_FromLong(q->slow),
        /* Attributes only (not in the tuple), so code unpacking the reference's seven
         * fields keeps working. */
        q->callsite ? nprof_py_str(q->callsite, q->callsite_len) : Py_NewRef(Py_None),
        PyLong_FromUnsignedLong(q->batch_rows),
        q->error ? nprof_py_str(q->error, q->error_len) : Py_NewRef(Py_None),
    };
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        ok &= items[i] != NULL;
        PyStructSequence_SET_ITEM(t, i, items[i] ? items[i] : Py_NewRef(Py_None));
    }
    if (!ok)
        Py_CLEAR(t);
    return t;
}

static PyObject *query_item(const nprof_profile *p, size_t i, int *done)
{
    nprof_query_info q = {0};
    *done = nprof_profile_get_query(p, i, &q) != NPROF_OK;
    return *done ? NULL : query_tuple(&q);
}

static PyObject *pattern_item(const nprof_profile *p, size_t i, int *done)
{
    nprof_pattern_info pi = {0};
    *done = nprof_profile_get_pattern(p, i, &pi) != NPROF_OK;
    if (*done)
        return NULL;
    PyObject *fp = fingerprint_hex(pi.fingerprint);
    PyObject *norm = pi.normalized ? nprof_py_str(pi.normalized, pi.normalized_len)
                                   : Py_NewRef(Py_None);
    PyObject *ex = pi.example ? nprof_py_str(pi.example, pi.example_len) : Py_NewRef(Py_None);
    PyObject *site = pi.callsite ? nprof_py_str(pi.callsite, pi.callsite_len) : Py_NewRef(Py_None);
    PyObject *d = fp && norm && ex && site
                      ? Py_BuildValue("{s:O,s:O,s:O,s:K,s:K,s:K,s:K,s:K,s:O,s:O}", "fingerprint", fp,
                                      "normalized", norm, "example", ex, "count",
                                      (unsigned long long)pi.count, "exact_repeats",
                                      (unsigned long long)pi.exact_repeats, "slow_count",
                                      (unsigned long long)pi.slow_count, "total_ns",
                                      (unsigned long long)pi.total_ns, "max_ns",
                                      (unsigned long long)pi.max_ns, "n_plus_one",
                                      pi.n_plus_one ? Py_True : Py_False, "callsite", site)
                      : NULL;
    Py_XDECREF(site);
    Py_XDECREF(fp);
    Py_XDECREF(norm);
    Py_XDECREF(ex);
    return d;
}

/* A list of item(p, 0), item(p, 1), ... up to the first index past the end. */
static PyObject *profile_list(const nprof_profile *p,
                              PyObject *(*item)(const nprof_profile *, size_t, int *))
{
    PyObject *list = PyList_New(0);
    int done = 0;
    for (size_t i = 0; list; i++) {
        PyObject *v = item(p, i, &done);
        if (done)
            break;
        if (!v || PyList_Append(list, v) < 0)
            Py_CLEAR(list);
        Py_XDECREF(v);
    }
    return list;
}

static PyObject *header_str(const nprof_profile *p)
{
    char h[NPROF_HEADER_MAX];
    size_t len = 0;
    int rc = nprof_profile_render_header(p, h, sizeof h, &len);
    /* The header is fixed words and numbers, ASCII: latin-1 decodes it without UTF-8 checks. */
    return rc == NPROF_OK ? PyUnicode_DecodeLatin1(h, (Py_ssize_t)len, NULL)
                          : nprof_py_raise(rc, "to_header()");
}

typedef int (*render_fn)(const nprof_profile *, nprof_buf *);

static PyObject *rendered(const nprof_profile *p, render_fn fn, const char *what)
{
    nprof_buf b = NPROF_BUF_INIT;
    return nprof_py_rendered(fn(p, &b), &b, 0, what);
}

/* Copies what the view can show out of `p`.  0, or -1 with an exception. */
static int freeze(nprof_py_profile *v, const nprof_profile *p)
{
    if (v->frozen)
        return 0;
    nprof_profile_info in;
    if (nprof_profile_get_info(p, &in) != NPROF_OK) {
        PyErr_SetString(nprof_py_state_error, "the profile cannot be read");
        return -1;
    }
    v->method = nprof_py_str(in.method, in.method_len);
    v->path = nprof_py_str(in.path, in.path_len);
    v->route = nprof_py_str(in.route, in.route_len);
    v->request_id = nprof_py_str(in.request_id, in.request_id_len);
    v->header = header_str(p);
    v->json = rendered(p, nprof_profile_render_json, "to_json()");
    v->collapsed = rendered(p, nprof_profile_render_collapsed, "to_collapsed_stack()");
    v->queries = profile_list(p, query_item);
    v->patterns = profile_list(p, pattern_item);
    if (nprof_profile_get_samples_info(p, &v->samples_info) != NPROF_OK)
        memset(&v->samples_info, 0, sizeof v->samples_info);
    v->flames = freeze_flames(p, &v->samples_info);
    in.method = in.path = in.route = in.request_id = NULL;
    v->info = in;
    v->p = NULL;
    v->req = NULL;
    v->frozen = 1;
    if (!v->method || !v->path || !v->route || !v->request_id || !v->header || !v->json ||
        !v->collapsed || !v->queries || !v->patterns || !v->flames)
        return -1;
    return 0;
}

static nprof_py_profile *profile_alloc(void)
{
    nprof_py_profile *v = PyObject_New(nprof_py_profile, &nprof_py_profile_type);
    if (!v)
        return NULL;
    memset((char *)v + sizeof(PyObject), 0, sizeof *v - sizeof(PyObject));
    return v;
}

PyObject *nprof_py_profile_frozen(const nprof_profile *p)
{
    nprof_py_profile *v = profile_alloc();
    if (v && freeze(v, p) < 0)
        Py_CLEAR(v);
    return (PyObject *)v;
}

static void profile_dealloc(nprof_py_profile *v)
{
    Py_XDECREF(v->method);
    Py_XDECREF(v->path);
    Py_XDECREF(v->route);
    Py_XDECREF(v->request_id);
    Py_XDECREF(v->header);
    Py_XDECREF(v->json);
    Py_XDECREF(v->collapsed);
    Py_XDECREF(v->queries);
    Py_XDECREF(v->patterns);
    Py_XDECREF(v->flames);
    PyObject_Free(v);
}

/* The live profile, or NULL with StateError when the view was detached (never observable:
 * a view is detached only when nobody else holds it) or is frozen (callers check first). */
static const nprof_profile *live(nprof_py_profile *v)
{
    if (v->p) {
        /* what the sampler took so far and the queries held back, before it is read */
        nprof_py_sampler_flush(v->p);
        if (v->req)
            nprof_py_request_flush(v->req);
    }
    if (!v->p)
        PyErr_SetString(nprof_py_state_error,
                        "this profile's request has ended: read ended requests from "
                        "get_store()");
    return v->p;
}

/* A duration given by Python code: an int (not a bool) of nanoseconds, >= 0. */
int nprof_py_ns(PyObject *o, const char *what, uint64_t *out)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int of nanoseconds, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long ns = PyLong_AsUnsignedLongLong(o);
    if (ns == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "%s must be a non-negative int of nanoseconds, got %R",
                     what, o);
        return -1;
    }
    *out = ns;
    return 0;
}

/* ---- RequestProfile's attributes ---------------------------------------------------------- */

enum field {
    F_METHOD, F_PATH, F_ROUTE, F_REQUEST_ID, F_STATUS, F_ENDED, F_START, F_TOTAL, F_MIDDLEWARE,
    F_ROUTING, F_HANDLER, F_SQL_TOTAL, F_SQL_COUNT, F_DROPPED, F_SLOW, F_SPANS, F_MEMORY
};

static PyObject *profile_get(nprof_py_profile *v, void *closure)
{
    enum field f = (enum field)(intptr_t)closure;
    nprof_profile_info in;
    if (v->frozen) {
        in = v->info;
        switch (f) {
        case F_METHOD: return Py_NewRef(v->method);
        case F_PATH: return Py_NewRef(v->path);
        case F_ROUTE: return Py_NewRef(v->route);
        case F_REQUEST_ID: return Py_NewRef(v->request_id);
        default: break;
        }
    } else {
        const nprof_profile *p = live(v);
        if (!p)
            return NULL;
        nprof_profile_get_info(p, &in);
        switch (f) {
        case F_METHOD: return nprof_py_str(in.method, in.method_len);
        case F_PATH: return nprof_py_str(in.path, in.path_len);
        case F_ROUTE: return nprof_py_str(in.route, in.route_len);
        case F_REQUEST_ID: return nprof_py_str(in.request_id, in.request_id_len);
        default: break;
        }
    }
    switch (f) {
    case F_STATUS: return PyLong_FromLong(in.status);
    case F_ENDED: return PyBool_FromLong(in.ended);
    case F_START: return PyLong_FromUnsignedLongLong(in.start_ns);
    case F_TOTAL: return PyLong_FromUnsignedLongLong(in.total_ns);
    case F_MIDDLEWARE: return PyLong_FromUnsignedLongLong(in.middleware_ns);
    case F_ROUTING: return PyLong_FromUnsignedLongLong(in.routing_ns);
    case F_HANDLER: return PyLong_FromUnsignedLongLong(in.handler_ns);
    case F_SQL_TOTAL: return PyLong_FromUnsignedLongLong(in.sql_total_ns);
    case F_SQL_COUNT: return PyLong_FromUnsignedLongLong(in.sql_count);
    case F_DROPPED: return PyLong_FromUnsignedLongLong(in.queries_dropped);
    case F_SLOW: return PyLong_FromUnsignedLongLong(in.slow_count);
    case F_SPANS: return PyLong_FromSize_t(in.span_count);
    case F_MEMORY: return PyLong_FromSize_t(in.memory_bytes);
    default: Py_RETURN_NONE;
    }
}

/* handler_ns = X on a running profile adds the difference to the handler phase, as the
 * reference's manual profiling does (profile.handler_ns = elapsed_nanos(start)). */
static int profile_set_handler(nprof_py_profile *v, PyObject *value, void *closure)
{
    (void)closure;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "handler_ns cannot be deleted");
        return -1;
    }
    if (v->frozen || !v->p) {
        PyErr_SetString(nprof_py_state_error,
                        "handler_ns can only be set while the request runs");
        return -1;
    }
    uint64_t ns;
    if (nprof_py_ns(value, "handler_ns", &ns) < 0)
        return -1;
    nprof_profile_info in;
    nprof_profile_get_info(v->p, &in);
    if (ns < in.handler_ns) {
        PyErr_Format(PyExc_ValueError,
                     "handler_ns can only grow: it is %llu ns already, %llu was given",
                     (unsigned long long)in.handler_ns, (unsigned long long)ns);
        return -1;
    }
    int rc = nprof_phase_add_ns(v->p, NPROF_PHASE_HANDLER, ns - in.handler_ns);
    if (rc != NPROF_OK) {
        nprof_py_raise(rc, "handler_ns");
        return -1;
    }
    return 0;
}

static PyObject *profile_sql_queries(nprof_py_profile *v, void *closure)
{
    (void)closure;
    if (v->frozen)
        return PyList_GetSlice(v->queries, 0, PY_SSIZE_T_MAX);
    const nprof_profile *p = live(v);
    return p ? profile_list(p, query_item) : NULL;
}

static PyObject *filter_n_plus_one(PyObject *patterns)
{
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out && i < PyList_GET_SIZE(patterns); i++) {
        PyObject *d = PyList_GET_ITEM(patterns, i);
        PyObject *flag = PyDict_GetItemString(d, "n_plus_one");
        if (flag == Py_True && PyList_Append(out, d) < 0)
            Py_CLEAR(out);
    }
    return out;
}

static PyObject *profile_patterns(nprof_py_profile *v, void *closure)
{
    int only_n_plus_one = closure != NULL;
    PyObject *all;
    if (v->frozen) {
        all = Py_NewRef(v->patterns);
    } else {
        const nprof_profile *p = live(v);
        all = p ? profile_list(p, pattern_item) : NULL;
    }
    if (!all || !only_n_plus_one)
        return all;
    PyObject *out = filter_n_plus_one(all);
    Py_DECREF(all);
    return out;
}

static PyObject *profile_samples_info(nprof_py_profile *v, void *closure)
{
    (void)closure;
    nprof_samples_info si;
    if (v->frozen) {
        si = v->samples_info;
    } else {
        const nprof_profile *p = live(v);
        if (!p)
            return NULL;
        if (nprof_profile_get_samples_info(p, &si) != NPROF_OK)
            memset(&si, 0, sizeof si);
    }
    return Py_BuildValue("{s:n,s:K,s:K,s:K,s:K}", "stacks", (Py_ssize_t)si.stacks, "samples",
                         (unsigned long long)si.samples, "sampled_ns",
                         (unsigned long long)si.sampled_ns, "dropped",
                         (unsigned long long)si.dropped, "dropped_ns",
                         (unsigned long long)si.dropped_ns);
}

static PyObject *profile_to_dict(nprof_py_profile *v, PyObject *noargs);

/* The "samples" member of the profile's JSON (its stacks with their frames, libraries, time
 * and counts), None when nothing was sampled. */
static PyObject *profile_samples(nprof_py_profile *v, void *closure)
{
    (void)closure;
    PyObject *d = profile_to_dict(v, NULL);
    if (!d)
        return NULL;
    PyObject *out = PyDict_Check(d) ? PyDict_GetItemString(d, "samples") : NULL;
    out = Py_NewRef(out ? out : Py_None);
    Py_DECREF(d);
    return out;
}

#define FIELD(name, f, doc) {name, (getter)profile_get, NULL, doc, (void *)(intptr_t)(f)}
static PyGetSetDef profile_getset[] = {
    FIELD("method", F_METHOD, "HTTP method (or what start_profile() was given)"),
    FIELD("path", F_PATH, "request path"),
    FIELD("route", F_ROUTE, "route template, \"\" when unknown"),
    FIELD("request_id", F_REQUEST_ID, "request id"),
    FIELD("status", F_STATUS, "HTTP status, 0 until the request ends"),
    FIELD("ended", F_ENDED, "whether the request has ended"),
    FIELD("start_ns", F_START, "start, on the nanos() time line"),
    FIELD("total_ns", F_TOTAL, "total time, 0 until the request ends"),
    FIELD("middleware_ns", F_MIDDLEWARE, "time in middleware (exclusive)"),
    FIELD("routing_ns", F_ROUTING, "time in routing (exclusive)"),
    {"handler_ns", (getter)profile_get, (setter)profile_set_handler,
     "time in the handler; settable while the request runs (adds the difference)",
     (void *)(intptr_t)F_HANDLER},
    FIELD("sql_total_ns", F_SQL_TOTAL, "time of every SQL query"),
    FIELD("sql_count", F_SQL_COUNT, "number of SQL queries (kept or only counted)"),
    FIELD("queries_dropped", F_DROPPED, "queries counted but not kept (max_queries)"),
    FIELD("slow_count", F_SLOW, "queries over slow_query_threshold_ms"),
    FIELD("span_count", F_SPANS, "spans kept"),
    FIELD("memory_bytes", F_MEMORY, "bytes the C profile holds"),
    {"sql_queries", (getter)profile_sql_queries, NULL, "the kept queries as SQLQuery", NULL},
    {"patterns", (getter)profile_patterns, NULL, "every query shape with its counts", NULL},
    {"n_plus_one", (getter)profile_patterns, NULL, "the shapes seen n_plus_one_threshold times",
     (void *)1},
    {"samples_info", (getter)profile_samples_info, NULL,
     "the sampled call stacks' counts: stacks, samples, sampled_ns, dropped, dropped_ns", NULL},
    {"samples", (getter)profile_samples, NULL,
     "the sampled call stacks as in to_dict()['samples'], None when nothing was sampled", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
#undef FIELD

static PyObject *profile_to_header(nprof_py_profile *v, PyObject *noargs)
{
    (void)noargs;
    if (v->frozen)
        return Py_NewRef(v->header);
    const nprof_profile *p = live(v);
    return p ? header_str(p) : NULL;
}

/* The frozen copy `kept`, or `fn` rendered from the live profile. */
static PyObject *kept_or_rendered(nprof_py_profile *v, PyObject *kept, render_fn fn,
                                  const char *what)
{
    if (v->frozen)
        return Py_NewRef(kept);
    const nprof_profile *p = live(v);
    return p ? rendered(p, fn, what) : NULL;
}

static PyObject *profile_to_json(nprof_py_profile *v, PyObject *noargs)
{
    (void)noargs;
    return kept_or_rendered(v, v->json, nprof_profile_render_json, "to_json()");
}

static PyObject *profile_to_dict(nprof_py_profile *v, PyObject *noargs)
{
    PyObject *text = profile_to_json(v, noargs);
    if (!text)
        return NULL;
    PyObject *d = PyObject_CallOneArg(nprof_py_json_loads, text);
    Py_DECREF(text);
    return d;
}

static PyObject *profile_to_collapsed(nprof_py_profile *v, PyObject *noargs)
{
    (void)noargs;
    return kept_or_rendered(v, v->collapsed, nprof_profile_render_collapsed,
                            "to_collapsed_stack()");
}

/* flame(format="collapsed", collapse_libs=False): the request's sampled call stacks. */
static PyObject *profile_flame(nprof_py_profile *v, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"format", "collapse_libs", NULL};
    PyObject *fmt = NULL;
    int collapse = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Up:flame", kw, &fmt, &collapse))
        return NULL;
    int format = fmt ? nprof_py_samples_format(fmt) : NPROF_SAMPLES_COLLAPSED;
    if (format < 0)
        return NULL;
    unsigned flags = collapse ? NPROF_SAMPLES_COLLAPSE_LIBS : 0;
    if (!v->frozen) {
        const nprof_profile *p = live(v);
        return p ? render_flame(p, format, flags) : NULL;
    }
    if (v->flames != Py_None)
        return Py_NewRef(PyTuple_GET_ITEM(v->flames, flame_slot(format, flags)));
    /* No samples: the empty document of that format, from a scratch profile. */
    nprof_runtime *rt = nprof_py_runtime();
    nprof_profile *scratch = NULL;
    int rc = rt ? nprof_request_begin(rt, "", 0, "", 0, 0, &scratch) : NPROF_EINVAL;
    if (!rt)
        return NULL;
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "flame()");
    PyObject *out = render_flame(scratch, format, flags);
    nprof_request_discard(scratch);
    return out;
}

static PyObject *profile_repr(nprof_py_profile *v)
{
    PyObject *m = profile_get(v, (void *)(intptr_t)F_METHOD);
    PyObject *p = m ? profile_get(v, (void *)(intptr_t)F_PATH) : NULL;
    PyObject *h = p ? profile_to_header(v, NULL) : NULL;
    PyObject *r = h ? PyUnicode_FromFormat("<RequestProfile %U %U %U%s>", m, p, h,
                                           v->frozen ? "" : " (running)")
                    : NULL;
    if (!r) {
        PyErr_Clear();
        r = PyUnicode_FromString("<RequestProfile (ended)>");
    }
    Py_XDECREF(m);
    Py_XDECREF(p);
    Py_XDECREF(h);
    return r;
}

static PyMethodDef profile_methods[] = {
    {"to_header", (PyCFunction)profile_to_header, METH_NOARGS, "The X-Profile header value."},
    {"to_dict", (PyCFunction)profile_to_dict, METH_NOARGS, "The profile as a dict."},
    {"to_json", (PyCFunction)profile_to_json, METH_NOARGS, "The profile as JSON text."},
    {"to_collapsed_stack", (PyCFunction)profile_to_collapsed, METH_NOARGS,
     "Collapsed stacks for flame graphs."},
    {"flame", (PyCFunction)(void (*)(void))profile_flame, METH_VARARGS | METH_KEYWORDS,
     "flame(format='collapsed', collapse_libs=False): the sampled call stacks as 'collapsed', "
     "'speedscope', 'chrome' or 'svg'."},
    {NULL, NULL, 0, NULL},
};

static PyObject *profile_new(PyTypeObject *t, PyObject *a, PyObject *k)
{
    (void)t;
    (void)a;
    (void)k;
    return PyErr_Format(PyExc_TypeError,
                        "RequestProfile objects come from start_profile(), "
                        "get_current_profile() and get_store()");
}

PyTypeObject nprof_py_profile_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof.RequestProfile",
    .tp_basicsize = sizeof(nprof_py_profile),
    .tp_dealloc = (destructor)profile_dealloc,
    .tp_repr = (reprfunc)profile_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One request's profile: read live while the request runs, a copy afterwards.",
    .tp_methods = profile_methods,
    .tp_getset = profile_getset,
    .tp_new = profile_new,
};

/* ---- the running request ------------------------------------------------------------------ */

/* Not tracked by the garbage collector: a request refers to its middleware, its view and the
 * context variable's token, none of which can refer back to it, so it is never in a cycle. */
/* Request objects are kept for reuse: there is one per request, of a size nothing else in
 * a server has, so pymalloc would empty its pool at the end of every request and set one up
 * again at the next (allocate_from_new_pool: some 850 instructions and 85 instruction-cache
 * misses per request, measured with callgrind's cache simulation). */
static nprof_py_spare request_spare;

nprof_py_request *nprof_py_request_alloc(void)
{
    nprof_py_request *r = (nprof_py_request *)nprof_py_spare_take(&request_spare,
                                                                  &nprof_py_request_type);
    if (!r)
        r = PyObject_New(nprof_py_request, &nprof_py_request_type);
    if (r) {
        /* Zeroed but for its held queries and call sites (1.4 KiB), valid up to their
         * counts. */
        memset((char *)r + sizeof(PyObject), 0,
               offsetof(nprof_py_request, hot_end) - sizeof(PyObject));
        memset((char *)r + offsetof(nprof_py_request, cold_start), 0,
               offsetof(nprof_py_request, cold_end) - offsetof(nprof_py_request, cold_start));
    }
    return r;
}

int nprof_py_request_open(nprof_py_request *r, int kind, nprof_profile *p, int c_current)
{
    r->kind = kind;
    r->p = p;
    /* Whether its queries keep parameter summaries is settled by the begin: read here, where
     * the profile's lines are warm, rather than at every query (record.c: params_wanted()). */
    r->params_from_ns = nprof_profile_params_from_ns(p);
    r->token = PyContextVar_Set(nprof_py_current, (PyObject *)r);
    if (!r->token)
        return -1;
    if (c_current) {
        r->c_prev = nprof_current_save();
        nprof_current_set(p);
        r->set_c_current = 1;
    }
    return 0;
}

nprof_py_request *nprof_py_request_start(int kind, nprof_profile *p, int sync_call)
{
    nprof_py_request *r = nprof_py_request_alloc();
    if (r && nprof_py_request_open(r, kind, p, sync_call || !nprof_py_in_event_loop()) < 0)
        Py_CLEAR(r);
    return r;
}

NPROF__HOT_PATH
nprof_py_request *nprof_py_current_request(void)
{
    PyObject *v = NULL;
    if (PyContextVar_Get(nprof_py_current, NULL, &v) < 0) {
        PyErr_Clear();
        return NULL;
    }
    if (!v)
        return NULL;
    /* The context holds a reference while the request is current. */
    Py_DECREF(v);
    if (Py_TYPE(v) != &nprof_py_request_type || ((nprof_py_request *)v)->ended)
        return NULL;
    return (nprof_py_request *)v;
}

PyObject *nprof_py_request_view(nprof_py_request *r)
{
    if (!r->view) {
        r->view = profile_alloc();
        if (!r->view)
            return NULL;
        r->view->p = r->p;
        r->view->req = r;
    }
    return Py_NewRef(r->view);
}

/* The thread's C current profile goes back to what it was, if it is still this request's
 * (begin A, begin B, end A leaves B current).  Before the profile ends: an ended profile is
 * nobody's current any more. */
NPROF__HOT_PATH
void nprof_py_request_uncurrent(nprof_py_request *r)
{
    nprof_py_request_flush(r);
    Py_CLEAR(r->repeat_text);
    if (r->sampled) /* before the profile ends: a tick must not add to an ended profile */
        nprof_py_sampler_stop(r);
    if (r->set_c_current && nprof_current() == r->p)
        nprof_current_restore(r->c_prev);
    r->set_c_current = 0;
}

NPROF__HOT_PATH
void nprof_py_request_release(nprof_py_request *r)
{
    nprof_py_request_uncurrent(r);
    if (r->view) {
        /* Only the request holds the view: nobody can read it again, no copy needed. */
        if (Py_REFCNT(r->view) > 1 && r->p && freeze(r->view, r->p) < 0)
            PyErr_WriteUnraisable((PyObject *)r->view);
        r->view->p = NULL;
        r->view->req = NULL;
        Py_CLEAR(r->view);
    }
    if (r->token) {
        if (PyContextVar_Reset(nprof_py_current, r->token) < 0) {
            /* Ended in another context than it began in (a WSGI server closing the body
             * elsewhere): that context forgets it when it is dropped; here, only make sure
             * this request is not current. */
            PyErr_Clear();
            PyObject *v = NULL;
            if (PyContextVar_Get(nprof_py_current, NULL, &v) == 0 && v == (PyObject *)r) {
                PyObject *t = PyContextVar_Set(nprof_py_current, Py_None);
                Py_XDECREF(t);
            }
            Py_XDECREF(v);
            PyErr_Clear();
        }
        Py_CLEAR(r->token);
    }
    r->ended = 1;
}

/* A request dropped without being ended (an adapter whose body was never closed): its C
 * profile must not leak nor stay anyone's current. */
static void request_dealloc(nprof_py_request *r)
{
    if (!r->ended && r->p) {
        nprof_py_request_uncurrent(r);
        if (r->view) {
            r->view->p = NULL;
            r->view->req = NULL;
            Py_CLEAR(r->view);
        }
        if (r->kind == NPROF_PY_REQ_MW)
            nprof_mw_request_end(&r->st, 0, NULL, NULL, NULL);
        else
            nprof_request_discard(r->p);
        r->p = NULL;
    }
    Py_XDECREF(r->repeat_text);
    Py_XDECREF(r->view);
    Py_XDECREF(r->token);
    Py_XDECREF(r->mw);
    if (!nprof_py_spare_give(&request_spare, (PyObject *)r))
        PyObject_Free(r);
}

extern PyMethodDef nprof_py_request_type_methods[];
extern PyGetSetDef nprof_py_request_type_getset[];

PyTypeObject nprof_py_request_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.Request",
    .tp_basicsize = sizeof(nprof_py_request),
    .tp_dealloc = (destructor)request_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One running request (made by Middleware.begin and start_profile).",
    .tp_methods = nprof_py_request_type_methods,
    .tp_getset = nprof_py_request_type_getset,
};

/* ---- module functions --------------------------------------------------------------------- */

static PyObject *py_start_profile(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"method", "path", NULL};
    PyObject *method = NULL, *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|UU:start_profile", kw, &method, &path))
        return NULL;
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return NULL;
    Py_ssize_t ml = 0, pl = 0;
    PyObject *mk = NULL, *pk = NULL;
    const char *m = method ? nprof_py_text(method, &ml, &mk, "method") : "";
    const char *p = m && path ? nprof_py_text(path, &pl, &pk, "path") : "";
    nprof_profile *prof = NULL;
    int rc = m && p ? nprof_request_begin(rt, m, (size_t)ml, p, (size_t)pl, 0, &prof) : NPROF_EINVAL;
    Py_XDECREF(mk);
    Py_XDECREF(pk);
    if (!m || !p)
        return NULL;
    if (rc == NPROF_ENOPROFILE)
        Py_RETURN_NONE;
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "start_profile()");
    nprof_py_request *r = nprof_py_request_start(NPROF_PY_REQ_STANDALONE, prof, 0);
    if (!r) {
        nprof_request_discard(prof);
        return NULL;
    }
    PyObject *view = nprof_py_request_view(r);
    Py_DECREF(r); /* the context variable keeps it */
    return view;
}

PyObject *nprof_py_request_finish(nprof_py_request *r, int status, int want_view,
                                  PyObject **header)
{
    PyObject *view = NULL;
    nprof_profile *p = r->p;
    nprof_py_request_uncurrent(r);
    nprof_request_end(p, status);
    if (header)
        *header = header_str(p);
    if (want_view) {
        view = nprof_py_request_view(r);
        if (view && freeze((nprof_py_profile *)view, p) < 0)
            Py_CLEAR(view);
    }
    nprof_py_request_release(r);
    r->p = NULL;
    nprof_request_submit(p);
    return view;
}

/* end_profile()'s status: an int (not a bool) from 100 to 999, or 0 for a request that sent
 * no response (the C core counts 0 and 600 to 999 as "other").  Anything else would land in
 * the aggregates as a status no response had.  0, or -1 with TypeError or ValueError. */
static int status_arg(PyObject *o, int *out)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "end_profile(status): an int HTTP status, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow = 0;
    long st = PyLong_AsLongAndOverflow(o, &overflow);
    if (st == -1 && PyErr_Occurred())
        return -1;
    if (overflow || (st != 0 && (st < 100 || st > 999))) {
        PyErr_Format(PyExc_ValueError,
                     "end_profile(status): an HTTP status from 100 to 999, or 0 for a "
                     "request that sent no response; got %R",
                     o);
        return -1;
    }
    *out = (int)st;
    return 0;
}

static PyObject *py_end_profile(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"status", NULL};
    PyObject *arg = NULL;
    int status = 200;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:end_profile", kw, &arg))
        return NULL;
    if (arg && status_arg(arg, &status) < 0)
        return NULL;
    nprof_py_request *r = nprof_py_current_request();
    if (!r)
        Py_RETURN_NONE;
    if (r->kind != NPROF_PY_REQ_STANDALONE)
        return PyErr_Format(nprof_py_state_error,
                            "end_profile(): the current request belongs to the middleware, "
                            "which ends it itself");
    Py_INCREF(r);
    PyObject *view = nprof_py_request_finish(r, status, 1, NULL);
    Py_DECREF(r);
    return view;
}

static PyObject *py_get_current_profile(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_py_request *r = nprof_py_current_request();
    if (!r)
        Py_RETURN_NONE;
    return nprof_py_request_view(r);
}

static PyObject *py_span_begin(PyObject *self, PyObject *name)
{
    (void)self;
    Py_ssize_t len;
    PyObject *keep;
    const char *s = nprof_py_text(name, &len, &keep, "span name");
    if (!s)
        return NULL;
    nprof_py_request *r = nprof_py_current_request();
    if (r)
        nprof_py_request_flush(r);
    int id = r ? nprof_span_begin(r->p, s, (size_t)len) : NPROF_ENOPROFILE;
    if (id >= 0 && r->sampled)
        nprof_py_sampler_span_begin(r, id, s, (size_t)len);
    Py_XDECREF(keep);
    return PyLong_FromLong(id);
}

static PyObject *py_span_end(PyObject *self, PyObject *id)
{
    (void)self;
    long v = PyLong_AsLong(id);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    nprof_py_request *r = nprof_py_current_request();
    if (r && v >= 0) {
        nprof_py_request_flush(r);
        if (r->sampled)
            nprof_py_sampler_span_end(r, (int)v);
        int rc = nprof_span_end(r->p, (int)v);
        if (rc != NPROF_OK && rc != NPROF_ESTATE)
            return nprof_py_raise(rc, "span_end()");
    }
    Py_RETURN_NONE;
}

PyMethodDef nprof_py_profile_methods[] = {
    {"start_profile", (PyCFunction)(void (*)(void))py_start_profile,
     METH_VARARGS | METH_KEYWORDS, "Begins a profile and makes it current."},
    {"end_profile", (PyCFunction)(void (*)(void))py_end_profile, METH_VARARGS | METH_KEYWORDS,
     "Ends the current profile begun by start_profile() and returns it."},
    {"get_current_profile", py_get_current_profile, METH_NOARGS,
     "The running request's profile, or None."},
    {"span_begin", py_span_begin, METH_O, "Opens a span in the current profile."},
    {"span_end", py_span_end, METH_O, "Closes a span of the current profile."},
    {NULL, NULL, 0, NULL},
};
