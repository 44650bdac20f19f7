/*
 * bindings/python/ext/middleware.c: the C middleware (nanoprof/middleware.h) for the Python
 * adapters: options, the dashboard, a request's begin / phase marks / headers / end, and the
 * ASGI `send` wrapper.  The per-request work of the WSGI, ASGI and Django adapters is here,
 * in C: reading the scope or environ, the token header, the headers to send, the end.
 */
#include "ext.h"

#include <string.h>

/* ---- options ----------------------------------------------------------------------------- */

/* Strings of the options live until nprof_mw_create() has copied them. */
#define MAX_RULES 64

/* Every string the options can hold: a pattern and a replacement per route rule, a route per
 * budget, the dashboard path and the token.  Kept because a rule may come from a generator,
 * whose items live only in the list made of it. */
typedef struct opt_strings {
    PyObject *keep[3 * MAX_RULES + 2];
    size_t n;
} opt_strings;

static const char *opt_cstr(opt_strings *k, PyObject *o, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (s && (size_t)len != strlen(s)) {
        PyErr_Format(PyExc_ValueError, "%s must not hold a NUL character", what);
        return NULL;
    }
    if (s && k->n == sizeof k->keep / sizeof *k->keep) {
        PyErr_Format(nprof_py_config_error, "%s: too many strings in the options", what);
        return NULL;
    }
    if (s)
        k->keep[k->n++] = Py_NewRef(o);
    return s;
}

typedef struct mw_opts {
    nprof_mw_options o;
    nprof_mw_route_rule rules[MAX_RULES];
    nprof_mw_budget budgets[MAX_RULES];
    opt_strings keep;
    PyObject *slow_log; /* borrowed */
} mw_opts;

static int parse_rules(mw_opts *m, PyObject *v)
{
    PyObject *seq = PySequence_Fast(v, "route_rules must be a sequence of (pattern, replacement)");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_RULES) {
        Py_DECREF(seq);
        PyErr_Format(nprof_py_config_error, "route_rules: at most %d rules", MAX_RULES);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *rule = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(rule) || PyTuple_GET_SIZE(rule) != 2) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError,
                         "route_rules[%zd] must be a (pattern, replacement) tuple", i);
            return -1;
        }
        m->rules[i].pattern = opt_cstr(&m->keep, PyTuple_GET_ITEM(rule, 0), "a route rule's pattern");
        m->rules[i].replacement =
            m->rules[i].pattern
                ? opt_cstr(&m->keep, PyTuple_GET_ITEM(rule, 1), "a route rule's replacement")
                : NULL;
        if (!m->rules[i].replacement) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    m->o.route_rules = m->rules;
    m->o.route_rule_count = (size_t)n;
    return 0;
}

/* budgets={"GET /users/{id}": 5, "*": (20, 50.0)}: max queries, or (max queries, max SQL ms). */
static int parse_budgets(mw_opts *m, PyObject *v)
{
    if (!PyDict_Check(v)) {
        PyErr_Format(PyExc_TypeError,
                     "budgets must be a dict of route -> max_queries or (max_queries, max_sql_ms)");
        return -1;
    }
    if (PyDict_GET_SIZE(v) > MAX_RULES) {
        PyErr_Format(nprof_py_config_error, "budgets: at most %d routes", MAX_RULES);
        return -1;
    }
    PyObject *k, *val;
    Py_ssize_t pos = 0;
    size_t n = 0;
    while (PyDict_Next(v, &pos, &k, &val)) {
        nprof_mw_budget *b = &m->budgets[n];
        b->route = opt_cstr(&m->keep, k, "a budget's route");
        if (!b->route)
            return -1;
        b->max_queries = 0;
        b->max_sql_ms = 0;
        if (PyTuple_Check(val) && PyTuple_GET_SIZE(val) == 2) {
            PyObject *q = PyTuple_GET_ITEM(val, 0), *ms = PyTuple_GET_ITEM(val, 1);
            if ((q != Py_None &&
                 nprof_py_opt_uint(q, "a budget's max_queries", &b->max_queries, 1) < 0) ||
                (ms != Py_None &&
                 nprof_py_opt_ms(ms, "a budget's max_sql_ms", &b->max_sql_ms) < 0))
                return -1;
        } else if (nprof_py_opt_uint(val, "a budget's max_queries", &b->max_queries, 1) < 0) {
            return -1;
        }
        n++;
    }
    m->o.budgets = m->budgets;
    m->o.budget_count = n;
    return 0;
}

static int parse_headers_mode(PyObject *v, int *out)
{
    static const char *const modes[] = {"auto", "always", "on_request"};
    for (int i = 0; i < 3; i++)
        if (PyUnicode_Check(v) && PyUnicode_CompareWithASCIIString(v, modes[i]) == 0) {
            *out = i;
            return 0;
        }
    PyErr_Format(nprof_py_config_error,
                 "headers must be 'auto', 'always' or 'on_request', got %R", v);
    return -1;
}

static int parse_option(mw_opts *m, const char *name, PyObject *v)
{
    nprof_mw_options *o = &m->o;
    if (!strcmp(name, "dashboard_path")) {
        o->dashboard_path = v == Py_None ? NULL : opt_cstr(&m->keep, v, "dashboard_path");
        return v == Py_None || o->dashboard_path ? 0 : -1;
    }
    if (!strcmp(name, "token")) {
        o->token = v == Py_None ? NULL : opt_cstr(&m->keep, v, "token");
        return v == Py_None || o->token ? 0 : -1;
    }
    if (!strcmp(name, "sample_every"))
        return nprof_py_opt_uint(v, name, &o->sample_every, 1);
    if (!strcmp(name, "slow_request_ms"))
        return nprof_py_opt_ms(v, name, &o->slow_request_ms);
    if (!strcmp(name, "headers"))
        return parse_headers_mode(v, &o->headers);
    if (!strcmp(name, "default_route_rules")) {
        int t = PyObject_IsTrue(v);
        o->default_route_rules = t;
        return t < 0 ? -1 : 0;
    }
    if (!strcmp(name, "route_rules"))
        return parse_rules(m, v);
    if (!strcmp(name, "budgets"))
        return v == Py_None ? 0 : parse_budgets(m, v);
    if (!strcmp(name, "max_routes"))
        return nprof_py_opt_uint(v, name, &o->max_routes, 0);
    if (!strcmp(name, "max_n_plus_one"))
        return nprof_py_opt_uint(v, name, &o->max_n_plus_one, 0);
    if (!strcmp(name, "refresh_seconds"))
        return nprof_py_opt_uint(v, name, &o->refresh_seconds, 1);
    if (!strcmp(name, "dashboard_items"))
        return nprof_py_opt_uint(v, name, &o->dashboard_items, 0);
    if (!strcmp(name, "slow_log")) {
        if (v == Py_None)
            return 0;
        if (!nprof_py_slowlog_check(v)) {
            PyErr_Format(PyExc_TypeError, "slow_log must be a nanoprof SlowQueryLog, not %.100s",
                         Py_TYPE(v)->tp_name);
            return -1;
        }
        m->slow_log = v; /* borrowed from kwargs; taken by middleware_init once created */
        return 0;
    }
    PyErr_Format(nprof_py_config_error,
                 "unknown middleware option '%s'; the options are dashboard_path, token, "
                 "sample_every, slow_request_ms, headers, default_route_rules, route_rules, "
                 "budgets, max_routes, max_n_plus_one, refresh_seconds, dashboard_items, "
                 "slow_log",
                 name);
    return -1;
}

/* ---- the Middleware type ------------------------------------------------------------------- */

static int middleware_init(nprof_py_middleware *self, PyObject *args, PyObject *kwargs)
{
    if (self->mw) {
        PyErr_SetString(nprof_py_state_error, "Middleware.__init__() called twice");
        return -1;
    }
    if (PyTuple_GET_SIZE(args)) {
        PyErr_SetString(PyExc_TypeError, "Middleware() takes keyword arguments only");
        return -1;
    }
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return -1;
    mw_opts *m = PyMem_Calloc(1, sizeof *m);
    if (!m) {
        PyErr_NoMemory();
        return -1;
    }
    nprof_mw_options_init(&m->o);
    /* The C middleware never touches the thread's current profile: the Request does, and
     * only outside an event loop (ext.h). */
    m->o.set_current = 0;
    int rc = 0;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (rc == 0 && kwargs && PyDict_Next(kwargs, &pos, &k, &v)) {
        const char *name = PyUnicode_AsUTF8(k);
        rc = name ? parse_option(m, name, v) : -1;
    }
    if (rc == 0 && m->slow_log) {
        m->o.slowlog = nprof_py_slowlog_borrow(m->slow_log);
        if (m->o.slowlog)
            self->slow_log = Py_NewRef(m->slow_log);
        else
            rc = -1;
    }
    if (rc == 0) {
        int crc = nprof_mw_create(rt, &m->o, &self->mw);
        if (crc != NPROF_OK) {
            if (crc == NPROF_EINVAL || crc == NPROF_EPARSE)
                PyErr_Format(nprof_py_config_error, "PerformanceMiddleware options refused: %s",
                             nprof_last_error_detail());
            else
                nprof_py_raise(crc, "creating the middleware");
            rc = -1;
        } else {
            self->rt = rt;
            const char *d = m->o.dashboard_path ? m->o.dashboard_path : "";
            self->dashboard_len = strlen(d);
            memcpy(self->dashboard, d, self->dashboard_len + 1);
        }
    }
    for (size_t i = 0; i < m->keep.n; i++)
        Py_DECREF(m->keep.keep[i]);
    PyMem_Free(m);
    return rc;
}

static void middleware_dealloc(nprof_py_middleware *self)
{
    /* Requests hold a reference to their middleware: none is in flight here. */
    nprof_mw_destroy(self->mw);
    if (self->slow_log) {
        nprof_py_slowlog_unborrow(self->slow_log);
        Py_CLEAR(self->slow_log);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_mw(nprof_py_middleware *self)
{
    if (!self->mw) {
        PyErr_SetString(nprof_py_state_error, "the Middleware was not initialised");
        return -1;
    }
    return 0;
}

/* ---- request headers, as the adapters hold them --------------------------------------------- */

enum { HDR_NONE, HDR_PAIRS, HDR_ENVIRON, HDR_MAPPING };

typedef struct header_source {
    int kind;
    PyObject *obj;
    PyObject *found; /* keeps the value found alive during the call */
} header_source;

static int ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

static const char *value_bytes(header_source *src, PyObject *v, size_t *len)
{
    Py_ssize_t n;
    PyObject *keep;
    const char *s = nprof_py_text(v, &n, &keep, "a header value");
    if (!s) {
        PyErr_Clear();
        return NULL;
    }
    Py_XSETREF(src->found, keep ? keep : Py_NewRef(v));
    *len = (size_t)n;
    return s;
}

/* nprof_mw_header_fn over the adapter's headers: ASGI (name, value) byte pairs, a WSGI
 * environ (HTTP_X_PROFILE_TOKEN), or any mapping (Django's request.headers). */
NPROF__HOT_PATH
static const char *header_lookup(void *user, const char *name, size_t name_len, size_t *len)
{
    header_source *src = user;
    if (src->kind == HDR_PAIRS) {
        PyObject *seq = PySequence_Fast(src->obj, "headers");
        if (!seq) {
            PyErr_Clear();
            return NULL;
        }
        const char *out = NULL;
        for (Py_ssize_t i = 0; !out && i < PySequence_Fast_GET_SIZE(seq); i++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
            /* What ASGI servers send, a tuple of two bytes, is read in place, the name's
             * length compared first: production mode looks for the token on every request,
             * and a browser's dozen headers then cost a few loads each. */
            if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2 &&
                PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 0))) {
                PyObject *k = PyTuple_GET_ITEM(pair, 0);
                if ((size_t)PyBytes_GET_SIZE(k) == name_len &&
                    ascii_ieq(PyBytes_AS_STRING(k), name, name_len))
                    out = value_bytes(src, PyTuple_GET_ITEM(pair, 1), len);
                continue;
            }
            if (!PyTuple_Check(pair) && !PyList_Check(pair))
                continue;
            if (PySequence_Size(pair) != 2)
                continue;
            PyObject *k = PySequence_GetItem(pair, 0);
            Py_ssize_t kl;
            PyObject *keep;
            const char *ks = k ? nprof_py_text(k, &kl, &keep, "a header name") : NULL;
            if (ks && (size_t)kl == name_len && ascii_ieq(ks, name, name_len)) {
                PyObject *v = PySequence_GetItem(pair, 1);
                out = v ? value_bytes(src, v, len) : NULL;
                Py_XDECREF(v);
            }
            if (ks)
                Py_XDECREF(keep);
            Py_XDECREF(k);
            PyErr_Clear();
        }
        Py_DECREF(seq);
        return out;
    }
    if (src->kind == HDR_ENVIRON || src->kind == HDR_MAPPING) {
        char key[80];
        size_t n = 0;
        if (src->kind == HDR_ENVIRON) {
            memcpy(key, "HTTP_", 5);
            n = 5;
        }
        for (size_t i = 0; i < name_len && n < sizeof key - 1; i++) {
            char c = name[i];
            if (src->kind == HDR_ENVIRON)
                c = c == '-' ? '_' : (c >= 'a' && c <= 'z' ? (char)(c - 32) : c);
            key[n++] = c;
        }
        key[n] = '\0';
        PyObject *v = PyMapping_GetItemString(src->obj, key);
        if (!v && src->kind == HDR_MAPPING) {
            PyErr_Clear();
            for (size_t i = 0; i < n; i++)
                key[i] = key[i] >= 'A' && key[i] <= 'Z' ? (char)(key[i] + 32) : key[i];
            v = PyMapping_GetItemString(src->obj, key);
        }
        if (!v) {
            PyErr_Clear();
            return NULL;
        }
        const char *out = value_bytes(src, v, len);
        Py_DECREF(v);
        return out;
    }
    return NULL;
}

/* ---- dashboard and begin ----------------------------------------------------------------- */

/* Header names come from the C middleware's static strings: each is made into a Python object
 * once, lowercased for ASGI (whose header names are lowercase) and as given for WSGI. */
#define NAME_CACHE 24
static struct {
    const char *name;
    PyObject *obj[2]; /* [0] bytes, lowercase; [1] str */
} name_cache[NAME_CACHE];

static PyObject *header_name(const char *name, size_t len, int as_str)
{
    int free_slot = -1;
    for (int i = 0; i < NAME_CACHE; i++) {
        if (name_cache[i].name == name && name_cache[i].obj[as_str])
            return Py_NewRef(name_cache[i].obj[as_str]);
        if (free_slot < 0 && (!name_cache[i].name || name_cache[i].name == name))
            free_slot = i;
    }
    PyObject *o;
    if (as_str) {
        o = PyUnicode_DecodeLatin1(name, (Py_ssize_t)len, NULL);
    } else {
        o = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (o) {
            char *d = PyBytes_AS_STRING(o);
            for (size_t i = 0; i < len; i++)
                d[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 32) : name[i];
        }
    }
    if (o && free_slot >= 0) {
        name_cache[free_slot].name = name;
        name_cache[free_slot].obj[as_str] = Py_NewRef(o);
    }
    return o;
}

NPROF__HOT_PATH
static PyObject *header_list(const nprof_mw_headers *h, int as_str)
{
    PyObject *list = PyList_New((Py_ssize_t)h->count);
    for (size_t i = 0; list && i < h->count; i++) {
        const nprof_mw_header *x = &h->items[i];
        PyObject *name = header_name(x->name, x->name_len, as_str);
        /* Values are visible ASCII (middleware.h): latin-1 is the cheapest exact decoding. */
        PyObject *value = as_str ? PyUnicode_DecodeLatin1(x->value, (Py_ssize_t)x->value_len, NULL)
                                 : PyBytes_FromStringAndSize(x->value, (Py_ssize_t)x->value_len);
        PyObject *pair = name && value ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (!pair) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/* The dashboard's response as (status, headers, body); headers as byte pairs (ASGI) or
 * str pairs (WSGI), with Content-Type first. */
static PyObject *dashboard_response(nprof_mw_response *resp, int as_str)
{
    PyObject *headers = header_list(&resp->headers, as_str);
    PyObject *ct = headers ? (as_str ? Py_BuildValue("(ss)", "Content-Type", resp->content_type)
                                     : Py_BuildValue("(yy)", "content-type", resp->content_type))
                           : NULL;
    PyObject *out = NULL;
    if (ct && PyList_Insert(headers, 0, ct) == 0)
        out = Py_BuildValue("(iOy#)", resp->status, headers, resp->body.data ? resp->body.data : "",
                            (Py_ssize_t)resp->body.len);
    Py_XDECREF(ct);
    Py_XDECREF(headers);
    nprof_mw_response_free(resp);
    return out;
}

typedef struct req_text {
    nprof_mw_request req;
    PyObject *keep[4];
    header_source hdr;
} req_text;

NPROF__HOT_PATH
static void req_text_free(req_text *t)
{
    for (int i = 0; i < 4; i++)
        Py_XDECREF(t->keep[i]);
    Py_XDECREF(t->hdr.found);
}

static int text_field(PyObject *o, const char **s, size_t *len, PyObject **keep, const char *what)
{
    Py_ssize_t n = 0;
    *s = nprof_py_text(o, &n, keep, what);
    *len = (size_t)n;
    return *s ? 0 : -1;
}

/* A WSGI string is bytes decoded as latin-1 (PEP 3333): its bytes are its code points. */
static int wsgi_field(PyObject *o, const char **s, size_t *len, PyObject **keep, const char *what)
{
    if (PyUnicode_Check(o) && !PyUnicode_IS_ASCII(o)) {
        PyObject *b = PyUnicode_AsLatin1String(o);
        if (!b) {
            PyErr_Clear();
            return text_field(o, s, len, keep, what);
        }
        *keep = b;
        *s = PyBytes_AS_STRING(b);
        *len = (size_t)PyBytes_GET_SIZE(b);
        return 0;
    }
    return text_field(o, s, len, keep, what);
}

static int is_dashboard(nprof_py_middleware *self, const char *path, size_t len)
{
    size_t d = self->dashboard_len;
    return d && len >= d && !memcmp(path, self->dashboard, d) && (len == d || path[d] == '/');
}

/* The dashboard's answer to `t` as a tuple, or None when `t` is not a dashboard request
 * (or the dashboard is off for it); NULL with an exception on error. */
static PyObject *serve_dashboard(nprof_py_middleware *self, req_text *t, int as_str)
{
    if (!is_dashboard(self, t->req.path, t->req.path_len))
        Py_RETURN_NONE;
    nprof_mw_response resp;
    int rc = nprof_mw_handle(self->mw, &t->req, &resp);
    if (rc == 1)
        return dashboard_response(&resp, as_str);
    nprof_mw_response_free(&resp);
    if (rc < 0)
        return nprof_py_raise(rc, "serving the dashboard");
    Py_RETURN_NONE;
}

/* How a request's caller stands to an event loop: ASGI requests always run in one; other
 * callers (WSGI, and Django, whose request.META looks the same in both) are asked. */
enum { LOOP_ASK = 0, LOOP_ALWAYS = 1 };

/* Begins a request (a Request), or gives None when profiling is off. */
NPROF__HOT_PATH
static PyObject *begin_request(nprof_py_middleware *self, req_text *t, int loop)
{
    nprof_py_request *r = nprof_py_request_alloc();
    if (!r)
        return NULL;
    int rc = nprof_mw_request_begin(self->mw, &t->req, &r->st);
    if (rc == NPROF_ENOPROFILE) {
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    if (rc != NPROF_OK) {
        Py_DECREF(r);
        return nprof_py_raise(rc, "beginning a request");
    }
    /* Opened here rather than made by nprof_py_request_start(): the middleware began it. */
    r->mw = (nprof_py_middleware *)Py_NewRef(self);
    if (nprof_py_request_open(r, NPROF_PY_REQ_MW, r->st.profile,
                              loop == LOOP_ASK && !nprof_py_in_event_loop()) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    /* ?profile=flame or opt.stack_sample_every: a sampler that cannot start leaves the
     * request unsampled, it does not fail it. */
    if (r->st.sample_stacks && nprof_py_sampler_start(r, 0) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    return (PyObject *)r;
}

/* Serves a dashboard request (a tuple), or begins the request (a Request or None). */
static PyObject *begin_or_serve(nprof_py_middleware *self, req_text *t, int as_str, int loop)
{
    PyObject *answer = serve_dashboard(self, t, as_str);
    if (answer != Py_None)
        return answer;
    Py_DECREF(answer);
    return begin_request(self, t, loop);
}

/* Where a protocol keeps a request: the keys of its method, path and query string, how its
 * strings hold bytes, where the token header is, and the form of the dashboard's headers. */
typedef struct protocol {
    const char *name;      /* "the ASGI scope" */
    const char *keys[4];   /* method, path, query string, headers (NULL: the dict itself) */
    int (*field)(PyObject *, const char **, size_t *, PyObject **, const char *);
    int header_kind;
    int str_headers;
    int loop;              /* LOOP_* */
    PyObject *key_objs[4]; /* the keys as interned str, made on first use */
} protocol;

static protocol ASGI = {"the ASGI scope", {"method", "path", "query_string", "headers"},
                        text_field, HDR_PAIRS, 0, LOOP_ALWAYS, {NULL}};
static protocol WSGI = {"the WSGI environ",
                        {"REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", NULL},
                        wsgi_field, HDR_ENVIRON, 1, LOOP_ASK, {NULL}};

/* The request's fields in `d`; an interned key finds its entry without building a str
 * (PyDict_GetItemString would make and intern one per lookup). */
static int protocol_fields(protocol *proto, PyObject *d, PyObject *v[4])
{
    for (int i = 0; i < 4; i++) {
        if (!proto->keys[i]) {
            v[i] = d;
            continue;
        }
        if (!proto->key_objs[i] && !(proto->key_objs[i] = PyUnicode_InternFromString(proto->keys[i])))
            return -1;
        v[i] = PyDict_GetItemWithError(d, proto->key_objs[i]);
        if (!v[i] && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/*
 * A request the middleware could not read or begin (a server's scope whose method, path or
 * query string is not text, a failure of the C library) goes to the application
 * unprofiled: the profiler never turns a request the app would serve into an error.  The
 * reason is a RuntimeWarning, shown once per message by the default filters, and raised
 * where warnings are errors.  None (serve it unprofiled), or NULL with an exception: the
 * warning's, or what is not an Exception (KeyboardInterrupt) as it was.
 */
static NPROF__NOINLINE PyObject *served_unprofiled(const protocol *proto)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return NULL;
    PyObject *type, *value, *tb;
    nprof_py_fetch_exception(&type, &value, &tb);
    int rc = PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                              "nanoprof served a request unprofiled: it could not begin it "
                              "from %s (%.100s: %S)",
                              proto->name, ((PyTypeObject *)type)->tp_name,
                              value ? value : Py_None);
    if (rc < 0) {
        /* The warning raised: it goes up, with the reason as its context. */
        nprof_py_replace_exception(&type, &value, &tb);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    Py_RETURN_NONE;
}

NPROF__HOT_PATH
static PyObject *protocol_begin(nprof_py_middleware *self, PyObject *d, protocol *proto)
{
    if (check_mw(self) < 0)
        return NULL; /* a middleware used before its __init__: the program's error */
    if (!PyDict_Check(d)) {
        PyErr_Format(PyExc_TypeError, "expected %s (a dict), got %.100s", proto->name,
                     Py_TYPE(d)->tp_name);
        return served_unprofiled(proto);
    }
    req_text t;
    memset(&t, 0, sizeof t);
    PyObject *v[4];
    if (protocol_fields(proto, d, v) < 0)
        return served_unprofiled(proto);
    /* PEP 3333: PATH_INFO "may be empty if the request URL targets the application root". */
    PyObject *root = !v[1] && proto == &WSGI ? PyUnicode_FromString("/") : NULL;
    if (root)
        v[1] = root;
    if (!v[0] || !v[1]) {
        Py_XDECREF(root);
        PyErr_Format(PyExc_ValueError, "%s has no %s or %s", proto->name, proto->keys[0],
                     proto->keys[1]);
        return served_unprofiled(proto);
    }
    PyObject *out = NULL;
    if (proto->field(v[0], &t.req.method, &t.req.method_len, &t.keep[0], proto->keys[0]) == 0 &&
        proto->field(v[1], &t.req.path, &t.req.path_len, &t.keep[1], proto->keys[1]) == 0 &&
        (!v[2] || proto->field(v[2], &t.req.query, &t.req.query_len, &t.keep[2],
                               proto->keys[2]) == 0)) {
        if (v[3]) {
            t.hdr = (header_source){proto->header_kind, v[3], NULL};
            t.req.header = header_lookup;
            t.req.user = &t.hdr;
        }
        out = begin_or_serve(self, &t, proto->str_headers, proto->loop);
    }
    Py_XDECREF(root);
    req_text_free(&t);
    return out ? out : served_unprofiled(proto);
}

PyObject *nprof_py_mw_asgi_begin(nprof_py_middleware *self, PyObject *scope)
{
    return protocol_begin(self, scope, &ASGI);
}

static PyObject *mw_wsgi_begin(nprof_py_middleware *self, PyObject *environ)
{
    return protocol_begin(self, environ, &WSGI);
}

static int headers_source(PyObject *headers, header_source *src)
{
    if (!headers || headers == Py_None) {
        src->kind = HDR_NONE;
        return 0;
    }
    src->obj = headers;
    src->kind = PyMapping_Check(headers) && !PyList_Check(headers) && !PyTuple_Check(headers)
                    ? HDR_MAPPING
                    : HDR_PAIRS;
    return 0;
}

/* begin() and handle(): the generic form (Django), with str or bytes arguments. */
static int generic_request(PyObject *args, PyObject *kwargs, req_text *t, const char *fname)
{
    static char *kw[] = {"method", "path", "query", "headers", "route", NULL};
    PyObject *method, *path, *query = NULL, *headers = NULL, *route = NULL;
    char fmt[40];
    snprintf(fmt, sizeof fmt, "OO|OOO:%s", fname);
    memset(t, 0, sizeof *t);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kw, &method, &path, &query, &headers,
                                     &route))
        return -1;
    if (text_field(method, &t->req.method, &t->req.method_len, &t->keep[0], "method") < 0 ||
        text_field(path, &t->req.path, &t->req.path_len, &t->keep[1], "path") < 0 ||
        (query && query != Py_None &&
         text_field(query, &t->req.query, &t->req.query_len, &t->keep[2], "query") < 0) ||
        (route && route != Py_None &&
         text_field(route, &t->req.route, &t->req.route_len, &t->keep[3], "route") < 0))
        return -1;
    headers_source(headers, &t->hdr);
    if (t->hdr.kind != HDR_NONE) {
        t->req.header = header_lookup;
        t->req.user = &t->hdr;
    }
    return 0;
}

static PyObject *mw_begin(nprof_py_middleware *self, PyObject *args, PyObject *kwargs)
{
    if (check_mw(self) < 0)
        return NULL;
    req_text t;
    PyObject *out = NULL;
    /* begin() never serves the dashboard: handle() does, for adapters that ask first. */
    if (generic_request(args, kwargs, &t, "begin") == 0)
        out = begin_request(self, &t, LOOP_ASK);
    req_text_free(&t);
    return out;
}

static PyObject *mw_handle(nprof_py_middleware *self, PyObject *args, PyObject *kwargs)
{
    if (check_mw(self) < 0)
        return NULL;
    req_text t;
    PyObject *out = NULL;
    if (generic_request(args, kwargs, &t, "handle") == 0)
        out = serve_dashboard(self, &t, 1);
    req_text_free(&t);
    return out;
}

static PyObject *mw_totals(nprof_py_middleware *self, PyObject *noargs)
{
    (void)noargs;
    if (check_mw(self) < 0)
        return NULL;
    nprof_mw_totals t;
    int rc = nprof_mw_get_totals(self->mw, &t);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "totals()");
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "requests",
                         (unsigned long long)t.requests, "queries", (unsigned long long)t.queries,
                         "sql_ns", (unsigned long long)t.sql_ns, "slow_queries",
                         (unsigned long long)t.slow_queries, "n_plus_one_patterns",
                         (unsigned long long)t.n_plus_one_patterns, "n_plus_one_requests",
                         (unsigned long long)t.n_plus_one_requests, "over_budget",
                         (unsigned long long)t.over_budget, "errors", (unsigned long long)t.errors,
                         "kept", (unsigned long long)t.kept, "routes", (unsigned long long)t.routes);
}

static PyObject *mw_route_stats(nprof_py_middleware *self, PyObject *args)
{
    const char *method, *route;
    Py_ssize_t ml, rl;
    if (check_mw(self) < 0 || !PyArg_ParseTuple(args, "s#s#:route_stats", &method, &ml, &route, &rl))
        return NULL;
    nprof_mw_route_stats s;
    int rc = nprof_mw_get_route_stats(self->mw, method, (size_t)ml, route, (size_t)rl, &s);
    if (rc == NPROF_ENOENT)
        Py_RETURN_NONE;
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "route_stats()");
    return Py_BuildValue(
        "{s:K,s:(KKKKKK),s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "count",
        (unsigned long long)s.count, "status", (unsigned long long)s.status[0],
        (unsigned long long)s.status[1], (unsigned long long)s.status[2],
        (unsigned long long)s.status[3], (unsigned long long)s.status[4],
        (unsigned long long)s.status[5], "total_ns", (unsigned long long)s.total_ns, "max_ns",
        (unsigned long long)s.max_ns, "p50_ns", (unsigned long long)s.p50_ns, "p95_ns",
        (unsigned long long)s.p95_ns, "p99_ns", (unsigned long long)s.p99_ns, "queries",
        (unsigned long long)s.queries, "sql_ns", (unsigned long long)s.sql_ns, "slow_queries",
        (unsigned long long)s.slow_queries, "n_plus_one", (unsigned long long)s.n_plus_one,
        "over_budget", (unsigned long long)s.over_budget);
}

static PyObject *mw_render(nprof_py_middleware *self, PyObject *what)
{
    if (check_mw(self) < 0)
        return NULL;
    const char *w = PyUnicode_Check(what) ? PyUnicode_AsUTF8(what) : NULL;
    if (!w)
        return PyErr_Format(PyExc_TypeError, "render() takes a str");
    nprof_buf b = NPROF_BUF_INIT;
    int rc;
    if (!strcmp(w, "json"))
        rc = nprof_mw_render_json(self->mw, &b);
    else if (!strcmp(w, "html"))
        rc = nprof_mw_render_html(self->mw, "render", &b);
    else if (!strcmp(w, "prometheus"))
        rc = nprof_mw_render_prometheus(self->mw, &b);
    else if (!strcmp(w, "flamegraph.svg"))
        rc = nprof_mw_render_flamegraph_svg(self->mw, &b);
    else if (!strcmp(w, "flamegraph.txt"))
        rc = nprof_store_render_collapsed(nprof_runtime_store(self->rt), &b);
    else if (!strcmp(w, "trace"))
        rc = nprof_mw_render_trace(self->mw, &b);
    else
        return PyErr_Format(nprof_py_config_error,
                            "render(%R): use 'json', 'html', 'prometheus', 'flamegraph.svg', "
                            "'flamegraph.txt' or 'trace'",
                            what);
    return nprof_py_rendered(rc, &b, 1, "render()");
}

static PyObject *mw_get_dashboard_path(nprof_py_middleware *self, void *closure)
{
    (void)closure;
    if (!self->dashboard_len)
        Py_RETURN_NONE;
    return PyUnicode_FromStringAndSize(self->dashboard, (Py_ssize_t)self->dashboard_len);
}

static PyObject *mw_get_store(nprof_py_middleware *self, void *closure)
{
    (void)closure;
    if (check_mw(self) < 0)
        return NULL;
    return nprof_py_store_new(self->rt, nprof_runtime_store(self->rt), 0);
}

static PyMethodDef middleware_methods[] = {
    {"asgi_begin", (PyCFunction)nprof_py_mw_asgi_begin, METH_O,
     "Begins an ASGI http request, or serves the dashboard (a tuple)."},
    {"wsgi_begin", (PyCFunction)mw_wsgi_begin, METH_O,
     "Begins a WSGI request, or serves the dashboard (a tuple)."},
    {"begin", (PyCFunction)(void (*)(void))mw_begin, METH_VARARGS | METH_KEYWORDS,
     "begin(method, path, query=b'', headers=None, route=None): begins a request."},
    {"handle", (PyCFunction)(void (*)(void))mw_handle, METH_VARARGS | METH_KEYWORDS,
     "handle(method, path, query=b'', headers=None): a dashboard response or None."},
    {"totals", (PyCFunction)mw_totals, METH_NOARGS, "The aggregated totals."},
    {"route_stats", (PyCFunction)mw_route_stats, METH_VARARGS, "One route row."},
    {"render", (PyCFunction)mw_render, METH_O, "One dashboard output as bytes."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef middleware_getset[] = {
    {"dashboard_path", (getter)mw_get_dashboard_path, NULL, "the dashboard's path or None", NULL},
    {"store", (getter)mw_get_store, NULL, "the store its requests are kept in", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject nprof_py_middleware_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nanoprof._core.Middleware",
    .tp_basicsize = sizeof(nprof_py_middleware),
    .tp_dealloc = (destructor)middleware_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The C middleware: aggregation, headers, sampling and the dashboard.",
    .tp_methods = middleware_methods,
    .tp_getset = middleware_getset,
    .tp_init = (initproc)middleware_init,
    .tp_new = PyType_GenericNew,
};

/* ---- the Request's methods ------------------------------------------------------------------- */

static nprof_py_request *running(PyObject *o)
{
    nprof_py_request *r = (nprof_py_request *)o;
    if (r->kind != NPROF_PY_REQ_MW) {
        PyErr_SetString(nprof_py_state_error, "not a middleware request");
        return NULL;
    }
    return r;
}

static PyObject *req_phase(PyObject *o, PyObject *phase)
{
    nprof_py_request *r = running(o);
    long ph = r ? PyLong_AsLong(phase) : -1;
    if (!r || (ph == -1 && PyErr_Occurred()))
        return NULL;
    if (ph < -1 || ph >= NPROF_PHASE_COUNT)
        return PyErr_Format(PyExc_ValueError, "phase must be -1, 0, 1 or 2, got %ld", ph);
    if (!r->ended)
        nprof_py_mark_phase(r, (int)ph);
    Py_RETURN_NONE;
}

static PyObject *req_set_route(PyObject *o, PyObject *route)
{
    nprof_py_request *r = running(o);
    Py_ssize_t len;
    PyObject *keep;
    const char *s = r ? nprof_py_text(route, &len, &keep, "route") : NULL;
    if (!s)
        return NULL;
    if (!r->ended)
        nprof_mw_set_route(&r->st, s, (size_t)len);
    Py_XDECREF(keep);
    Py_RETURN_NONE;
}

/* The response's status, kept for the request's end.  0, or -1 with the exception of an
 * int that is no C long. */
NPROF__HOT_PATH
static int take_status(nprof_py_request *r, PyObject *status)
{
    long st = PyLong_AsLong(status);
    if (st == -1 && PyErr_Occurred())
        return -1;
    r->status = (int)st;
    return 0;
}

/* Our headers for the response as the request stands (byte pairs, or str pairs with
 * `as_str`); NULL with no exception when it gets none (ended, or production without an
 * allowed ?profile=: then the held queries are not even flushed), NULL with an exception on
 * error. */
NPROF__HOT_PATH
static PyObject *our_headers(nprof_py_request *r, int as_str)
{
    if (r->ended || !r->st.wants_headers)
        return NULL;
    nprof_py_request_flush(r);
    nprof_mw_headers h;
    int rc = nprof_mw_get_response_headers(&r->st, r->status, &h);
    if (rc == NPROF_ENOPROFILE)
        return NULL;
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "response_headers()");
    return header_list(&h, as_str);
}

/* Request.response_headers(status): the status kept, and our headers as a list. */
static PyObject *headers_now(nprof_py_request *r, PyObject *status, int as_str)
{
    if (take_status(r, status) < 0)
        return NULL;
    PyObject *ours = our_headers(r, as_str);
    return ours || PyErr_Occurred() ? ours : PyList_New(0);
}

static PyObject *req_response_headers(PyObject *o, PyObject *status)
{
    nprof_py_request *r = running(o);
    return r ? headers_now(r, status, 0) : NULL;
}

static PyObject *req_response_headers_str(PyObject *o, PyObject *status)
{
    nprof_py_request *r = running(o);
    return r ? headers_now(r, status, 1) : NULL;
}

/* Ends the request: the profile ends (a held view is frozen with the final figures), the
 * middleware aggregates it and keeps or recycles it. */
NPROF__HOT_PATH
PyObject *nprof_py_request_end(nprof_py_request *r, int status)
{
    if (r->ended)
        Py_RETURN_NONE;
    r->status = status;
    nprof_py_request_uncurrent(r);
    if (r->view && Py_REFCNT(r->view) > 1)
        nprof_request_end(r->p, status); /* so that the frozen copy has the final total */
    nprof_py_request_release(r);
    nprof_buf json = NPROF_BUF_INIT;
    int replaces = 0;
    nprof_mw_request_end(&r->st, status, NULL, &json, &replaces);
    r->p = NULL;
    PyObject *out = replaces ? PyBytes_FromStringAndSize(json.data, (Py_ssize_t)json.len)
                             : Py_NewRef(Py_None);
    nprof_buf_free(&json);
    return out;
}

static PyObject *req_end(PyObject *o, PyObject *status)
{
    nprof_py_request *r = running(o);
    long st = r ? PyLong_AsLong(status) : -1;
    if (!r || (st == -1 && PyErr_Occurred()))
        return NULL;
    return nprof_py_request_end(r, (int)st);
}

/* ---- the ASGI send (ASGIMiddleware's call object is the send the app is given) ------------- */

static PyObject *str_type, *str_start, *str_body, *str_more_body, *str_status, *str_headers;

/* The last body message of the response: the handler is done with it, what follows is the
 * middleware's (framework hooks mark the handler phase when it starts, not when it ends). */
static void last_body(nprof_py_request *r, PyObject *msg)
{
    PyObject *more = PyDict_GetItemWithError(msg, str_more_body);
    int last = more ? PyObject_IsTrue(more) == 0 : !PyErr_Occurred();
    if (last)
        nprof_py_mark_phase(r, NPROF_PHASE_MIDDLEWARE);
    else
        PyErr_Clear(); /* a more_body we cannot read: the server's to judge */
}

/* http.response.start gets our headers (a new message: the app's dict is not changed);
 * everything else goes through as it is. */
NPROF__HOT_PATH
PyObject *nprof_py_asgi_send_message(nprof_py_request *r, PyObject *send, PyObject *msg)
{
    int running = r && !r->ended;
    PyObject *type = running && PyDict_Check(msg) ? PyDict_GetItemWithError(msg, str_type)
                                                  : NULL;
    if (!type || !nprof_py_str_is(type, str_start)) {
        if (type && nprof_py_str_is(type, str_body))
            last_body(r, msg);
        else if (!type && running)
            PyErr_Clear(); /* a message the app's server will refuse, not ours to judge */
        return PyObject_CallOneArg(send, msg);
    }
    PyObject *status = PyDict_GetItemWithError(msg, str_status);
    PyObject *ours = status && PyLong_Check(status) && take_status(r, status) == 0
                         ? our_headers(r, 0)
                         : NULL;
    if (!ours || PyList_GET_SIZE(ours) == 0) {
        /* Nothing to add (production, most requests): the message goes as it came, with no
         * copy of it or of its header list, and no list of ours made for it (and no error of
         * ours: a status that is no C long is the server's to judge). */
        Py_XDECREF(ours);
        PyErr_Clear();
        return PyObject_CallOneArg(send, msg);
    }
    /* The app's headers, then ours, in a new list in a copy of the message.  Headers that
     * are no iterable (None) are not ours to judge: the message goes as it came, for the
     * server to refuse as it would without the profiler.  (What iterating them raises is
     * the app's error, and goes up.) */
    PyObject *theirs = PyDict_GetItemWithError(msg, str_headers);
    if (theirs && !Py_TYPE(theirs)->tp_iter && !PySequence_Check(theirs)) {
        Py_DECREF(ours);
        return PyObject_CallOneArg(send, msg);
    }
    PyObject *all = NULL;
    if (theirs) {
        all = PySequence_List(theirs);
        if (all && PyList_SetSlice(all, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, ours) < 0)
            Py_CLEAR(all);
    } else if (!PyErr_Occurred()) {
        all = Py_NewRef(ours);
    }
    PyObject *copy = all ? PyDict_Copy(msg) : NULL;
    PyObject *out = NULL;
    if (copy && PyDict_SetItem(copy, str_headers, all) == 0)
        out = PyObject_CallOneArg(send, copy);
    Py_XDECREF(copy);
    Py_XDECREF(all);
    Py_DECREF(ours);
    return out;
}

int nprof_py_send_init(void)
{
    static const nprof_py_name names[] = {
        {&str_type, "type"},
        {&str_start, "http.response.start"},
        {&str_body, "http.response.body"},
        {&str_more_body, "more_body"},
        {&str_status, "status"},
        {&str_headers, "headers"},
    };
    return nprof_py_intern_names(names, sizeof names / sizeof *names);
}

PyMethodDef nprof_py_request_type_methods[] = {
    {"phase", req_phase, METH_O, "Marks a phase: 0 middleware, 1 routing, 2 handler, -1 none."},
    {"set_route", req_set_route, METH_O, "Sets the route template."},
    {"response_headers", req_response_headers, METH_O,
     "Headers (byte pairs) to send at the response start."},
    {"response_headers_str", req_response_headers_str, METH_O,
     "Headers (str pairs, for WSGI) to send at the response start."},
    {"end", req_end, METH_O, "Ends the request; the ?profile=json body or None."},
    {NULL, NULL, 0, NULL},
};

static PyObject *req_get(PyObject *o, void *closure)
{
    nprof_py_request *r = (nprof_py_request *)o;
    switch ((intptr_t)closure) {
    case 0: return PyLong_FromLong(r->st.profile_mode);
    case 1: return PyBool_FromLong(r->kind != NPROF_PY_REQ_MW || r->st.authorized);
    case 2: return PyBool_FromLong(r->ended);
    case 3: return PyLong_FromLong(r->status);
    default:
        if (r->ended || !r->p)
            Py_RETURN_NONE;
        return nprof_py_request_view(r);
    }
}

PyGetSetDef nprof_py_request_type_getset[] = {
    {"profile_mode", req_get, NULL, "0 none, 1 ?profile=1, 2 ?profile=json", (void *)0},
    {"authorized", req_get, NULL,
     "development mode, or a request that asks with ?profile= and gives the right token",
     (void *)1},
    {"ended", req_get, NULL, "whether end() ran", (void *)2},
    {"status", req_get, NULL, "the status seen at the response start or at end", (void *)3},
    {"profile", req_get, NULL, "the running profile's view, None once ended", (void *)4},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- hooks for framework integrations ------------------------------------------------------ */

static PyObject *py_mark_phase(PyObject *self, PyObject *phase)
{
    (void)self;
    long ph = PyLong_AsLong(phase);
    if (ph == -1 && PyErr_Occurred())
        return NULL;
    if (ph < -1 || ph >= NPROF_PHASE_COUNT)
        return PyErr_Format(PyExc_ValueError, "phase must be -1, 0, 1 or 2, got %ld", ph);
    nprof_py_request *r = nprof_py_current_request();
    if (!r || r->kind != NPROF_PY_REQ_MW)
        Py_RETURN_FALSE;
    nprof_py_mark_phase(r, (int)ph);
    Py_RETURN_TRUE;
}

static PyObject *py_mark_route(PyObject *self, PyObject *route)
{
    (void)self;
    Py_ssize_t len;
    PyObject *keep;
    const char *s = nprof_py_text(route, &len, &keep, "route");
    if (!s)
        return NULL;
    nprof_py_request *r = nprof_py_current_request();
    int ok = r && r->kind == NPROF_PY_REQ_MW;
    if (ok)
        nprof_mw_set_route(&r->st, s, (size_t)len);
    Py_XDECREF(keep);
    return PyBool_FromLong(ok);
}

PyMethodDef nprof_py_middleware_methods[] = {
    {"mark_phase", py_mark_phase, METH_O, "Marks a phase of the current middleware request."},
    {"mark_route", py_mark_route, METH_O, "Sets the route of the current middleware request."},
    {NULL, NULL, 0, NULL},
};
