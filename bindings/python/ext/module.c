/*
 * bindings/python/ext/module.c: the module nanoprof._core: its process-wide state (the
 * default runtime, the context variable, the exception classes), the clock, configuration
 * and introspection, and the helpers the other files share.  See ext.h for why runtimes
 * are never destroyed.
 */
#include "ext.h"

#include <dlfcn.h>
#include <string.h>

PyObject *nprof_py_error;
PyObject *nprof_py_config_error;
PyObject *nprof_py_state_error;
PyObject *nprof_py_current;
PyObject *nprof_py_attach_hook;
PyObject *nprof_py_info_hook;
PyObject *nprof_py_json_loads;

static nprof_runtime *default_runtime;
static PyObject *get_running_loop; /* asyncio._get_running_loop */

/* ---- errors -------------------------------------------------------------------------- */

PyObject *nprof_py_raise(int rc, const char *context)
{
    PyObject *cls = rc == NPROF_ESTATE   ? nprof_py_state_error
                    : rc == NPROF_ENOMEM ? PyExc_MemoryError
                                         : nprof_py_error;
    const char *detail = nprof_last_error_detail();
    PyObject *msg = detail && *detail
                        ? PyUnicode_FromFormat("%s: %s (%s)", context, nprof_strerror(rc), detail)
                        : PyUnicode_FromFormat("%s: %s", context, nprof_strerror(rc));
    if (!msg)
        return NULL;
    if (cls == PyExc_MemoryError) {
        PyErr_SetObject(cls, msg);
        Py_DECREF(msg);
        return NULL;
    }
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return NULL;
    PyObject *code = PyLong_FromLong(rc);
    PyObject *name = PyUnicode_FromString(nprof_errname(rc));
    PyObject *det = PyUnicode_FromString(detail ? detail : "");
    if (code && name && det) {
        PyObject_SetAttrString(exc, "code", code);
        PyObject_SetAttrString(exc, "name", name);
        PyObject_SetAttrString(exc, "detail", det);
    }
    Py_XDECREF(code);
    Py_XDECREF(name);
    Py_XDECREF(det);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- text ---------------------------------------------------------------------------- */

NPROF__HOT_PATH
const char *nprof_py_text(PyObject *o, Py_ssize_t *len, PyObject **keep, const char *what)
{
    *keep = NULL;
    if (PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8AndSize(o, len);
        if (s)
            return s;
        /* Lone surrogates (from surrogateescape'd bytes) have no UTF-8 form: keep their bytes
         * as surrogatepass writes them; the renderers turn them into U+FFFD. */
        PyErr_Clear();
        PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
        if (!b)
            return NULL;
        *keep = b;
        *len = PyBytes_GET_SIZE(b);
        return PyBytes_AS_STRING(b);
    }
    if (PyBytes_Check(o)) {
        *len = PyBytes_GET_SIZE(o);
        return PyBytes_AS_STRING(o);
    }
    if (PyByteArray_Check(o) || PyMemoryView_Check(o)) {
        PyObject *b = PyBytes_FromObject(o);
        if (!b)
            return NULL;
        *keep = b;
        *len = PyBytes_GET_SIZE(b);
        return PyBytes_AS_STRING(b);
    }
    PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.100s", what,
                 Py_TYPE(o)->tp_name);
    return NULL;
}

/* Option values (ext.h). */
int nprof_py_opt_uint(PyObject *o, const char *name, uint32_t *out, int allow_zero)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s takes an int, not %.100s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < (allow_zero ? 0 : 1) || v > UINT32_MAX) {
        PyErr_Format(nprof_py_config_error, "%s must be %s, got %lld", name,
                     allow_zero ? "an int >= 0" : "an int >= 1", v);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int nprof_py_opt_ms(PyObject *o, const char *name, double *out)
{
    if (PyBool_Check(o) || !(PyLong_Check(o) || PyFloat_Check(o))) {
        PyErr_Format(PyExc_TypeError, "%s takes a number of milliseconds, not %.100s", name,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (!(v >= 0)) {
        PyErr_Format(nprof_py_config_error, "%s must be >= 0, got %R", name, o);
        return -1;
    }
    *out = v;
    return 0;
}


PyObject *nprof_py_str(const char *s, size_t len)
{
    return PyUnicode_DecodeUTF8(s ? s : "", (Py_ssize_t)len, "replace");
}

PyObject *nprof_py_buf_str(nprof_buf *b)
{
    PyObject *s = nprof_py_str(b->data, b->len);
    nprof_buf_free(b);
    return s;
}

int nprof_py_intern_names(const nprof_py_name *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!*names[i].slot && !(*names[i].slot = PyUnicode_InternFromString(names[i].text)))
            return -1;
    return 0;
}

PyObject *nprof_py_rendered(int rc, nprof_buf *b, int as_bytes, const char *what)
{
    PyObject *out;
    if (rc != NPROF_OK)
        out = nprof_py_raise(rc, what);
    else if (as_bytes)
        out = PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
    else
        return nprof_py_buf_str(b);
    nprof_buf_free(b);
    return out;
}

int nprof_py_in_event_loop(void)
{
    PyObject *loop = PyObject_CallNoArgs(get_running_loop);
    if (!loop) {
        PyErr_Clear();
        return 0;
    }
    int running = loop != Py_None;
    Py_DECREF(loop);
    return running;
}

/* ---- the default runtime --------------------------------------------------------------- */

nprof_runtime *nprof_py_runtime(void)
{
    if (default_runtime)
        return default_runtime;
    nprof_runtime *rt;
    int rc = nprof_runtime_create(NULL, &rt);
    if (rc != NPROF_OK) {
        nprof_py_raise(rc, "creating the nanoprof runtime (check NANOPROF_CONF)");
        return NULL;
    }
    default_runtime = rt;
    return rt;
}

/* The text nprof_config_set() takes for `value`, checked against the option's type. */
static PyObject *option_text(const nprof_option_info *info, PyObject *value)
{
    const char *type = info->type;
    if (!strcmp(type, "bool")) {
        if (!PyBool_Check(value) && !(PyLong_CheckExact(value)))
            return PyErr_Format(PyExc_TypeError, "option %s takes a bool, not %.100s",
                                info->name, Py_TYPE(value)->tp_name);
        int t = PyObject_IsTrue(value);
        return t < 0 ? NULL : PyUnicode_FromString(t ? "1" : "0");
    }
    if (!strcmp(type, "uint") || !strcmp(type, "double")) {
        int is_double = type[0] == 'd';
        if (PyBool_Check(value) || !(PyLong_Check(value) || (is_double && PyFloat_Check(value))))
            return PyErr_Format(PyExc_TypeError, "option %s takes %s, not %.100s", info->name,
                                is_double ? "a number" : "an int", Py_TYPE(value)->tp_name);
        double d = PyFloat_AsDouble(value);
        if (d == -1.0 && PyErr_Occurred())
            return NULL;
        if (d < 0) {
            PyErr_Format(nprof_py_config_error, "option %s must not be negative (got %R)",
                         info->name, value);
            return NULL;
        }
        return PyObject_Str(value);
    }
    /* Strings and enums ("enum(a|b)") take text; an enum also takes its index. */
    if (PyUnicode_Check(value))
        return Py_NewRef(value);
    if (!strncmp(type, "enum", 4) && PyLong_Check(value) && !PyBool_Check(value))
        return PyObject_Str(value);
    return PyErr_Format(PyExc_TypeError, "option %s takes a str, not %.100s", info->name,
                        Py_TYPE(value)->tp_name);
}

static int find_option(const char *name, nprof_option_info *out)
{
    for (size_t i = 0; nprof_config_get_option(i, out) == NPROF_OK; i++)
        if (!strcmp(out->name, name))
            return 1;
    return 0;
}

static PyObject *unknown_option(PyObject *key)
{
    PyObject *names = PyList_New(0);
    nprof_option_info info;
    for (size_t i = 0; names && nprof_config_get_option(i, &info) == NPROF_OK; i++) {
        PyObject *n = PyUnicode_FromString(info.name);
        if (!n || PyList_Append(names, n) < 0) {
            Py_XDECREF(n);
            Py_CLEAR(names);
        }
        Py_XDECREF(n);
    }
    if (!names)
        return NULL;
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *joined = sep ? PyUnicode_Join(sep, names) : NULL;
    if (joined)
        PyErr_Format(nprof_py_config_error, "unknown option %R; the options are: %U", key, joined);
    Py_XDECREF(sep);
    Py_XDECREF(joined);
    Py_DECREF(names);
    return NULL;
}

static PyObject *py_configure(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    if (PyTuple_GET_SIZE(args))
        return PyErr_Format(PyExc_TypeError, "configure() takes keyword arguments only");
    nprof_runtime *cur = nprof_py_runtime();
    if (!cur)
        return NULL;
    nprof_config cfg = *nprof_runtime_config(cur);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (kwargs && PyDict_Next(kwargs, &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key);
        if (!name)
            return NULL;
        nprof_option_info info;
        if (!find_option(name, &info))
            return unknown_option(key);
        PyObject *text = option_text(&info, value);
        if (!text)
            return NULL;
        Py_ssize_t len;
        const char *v = PyUnicode_AsUTF8AndSize(text, &len);
        if (v && (size_t)len != strlen(v)) {
            Py_DECREF(text);
            PyErr_Format(nprof_py_config_error, "option %s: the value holds a NUL byte", name);
            return NULL;
        }
        int rc = v ? nprof_config_set(&cfg, name, v) : NPROF_EINVAL;
        Py_DECREF(text);
        if (!v)
            return NULL;
        if (rc != NPROF_OK) {
            PyErr_Format(nprof_py_config_error, "option %s=%R refused: %s", name, value,
                         nprof_last_error_detail());
            return NULL;
        }
    }
    nprof_runtime *rt;
    int rc = nprof_runtime_create(&cfg, &rt);
    if (rc != NPROF_OK) {
        if (rc == NPROF_EINVAL || rc == NPROF_EPARSE) {
            PyErr_Format(nprof_py_config_error, "configure(): %s", nprof_last_error_detail());
            return NULL;
        }
        return nprof_py_raise(rc, "configure()");
    }
    default_runtime = rt; /* the old one stays for whatever still uses it (ext.h) */
    Py_RETURN_NONE;
}

/* A Python value for one introspection value. */
static PyObject *ctl_value(const nprof_ctl_value *v)
{
    switch (v->type) {
    case NPROF_CTL_UINT:
        return PyLong_FromUnsignedLongLong(v->u);
    case NPROF_CTL_DOUBLE:
        return PyFloat_FromDouble(v->d);
    default:
        return PyUnicode_FromString(v->s ? v->s : "");
    }
}

static PyObject *py_ctl(PyObject *self, PyObject *name)
{
    (void)self;
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return NULL;
    if (!PyUnicode_Check(name))
        return PyErr_Format(PyExc_TypeError, "ctl() takes a str name, not %.100s",
                            Py_TYPE(name)->tp_name);
    const char *n = PyUnicode_AsUTF8(name);
    if (!n)
        return NULL;
    nprof_ctl_value v;
    int rc = nprof_ctl_get(rt, n, &v);
    if (rc == NPROF_ENOENT)
        return PyErr_Format(PyExc_KeyError, "no introspection value named %R (see stats())",
                            name);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "ctl()");
    return ctl_value(&v);
}

static int stats_visit(void *user, const char *name, const nprof_ctl_value *value)
{
    PyObject *v = ctl_value(value);
    if (!v)
        return -1;
    int rc = PyDict_SetItemString((PyObject *)user, name, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *py_stats(PyObject *self, PyObject *args)
{
    (void)self;
    const char *prefix = "";
    if (!PyArg_ParseTuple(args, "|s:stats", &prefix))
        return NULL;
    nprof_runtime *rt = nprof_py_runtime();
    if (!rt)
        return NULL;
    PyObject *d = PyDict_New();
    if (d && nprof_ctl_foreach(rt, prefix, stats_visit, d) != NPROF_OK)
        Py_CLEAR(d);
    return d;
}

static PyObject *py_config(PyObject *self, PyObject *noargs)
{
    (void)noargs;
    PyObject *args = Py_BuildValue("(s)", "opt.");
    PyObject *all = args ? py_stats(self, args) : NULL;
    Py_XDECREF(args);
    if (!all)
        return NULL;
    PyObject *out = PyDict_New();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (out && PyDict_Next(all, &pos, &key, &value)) {
        PyObject *short_key = PyUnicode_Substring(key, 4, PyUnicode_GET_LENGTH(key));
        if (!short_key || PyDict_SetItem(out, short_key, value) < 0)
            Py_CLEAR(out);
        Py_XDECREF(short_key);
    }
    Py_DECREF(all);
    return out;
}

static PyObject *py_options(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    PyObject *out = PyList_New(0);
    nprof_option_info info;
    for (size_t i = 0; out && nprof_config_get_option(i, &info) == NPROF_OK; i++) {
        PyObject *row = Py_BuildValue("(ssss)", info.name, info.type, info.default_value, info.doc);
        if (!row || PyList_Append(out, row) < 0)
            Py_CLEAR(out);
        Py_XDECREF(row);
    }
    return out;
}

static PyObject *py_set_enabled(PyObject *self, PyObject *flag)
{
    (void)self;
    int on = PyObject_IsTrue(flag);
    nprof_runtime *rt = on < 0 ? NULL : nprof_py_runtime();
    if (!rt)
        return NULL;
    nprof_runtime_set_enabled(rt, on);
    Py_RETURN_NONE;
}

static PyObject *py_is_enabled(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_runtime *rt = nprof_py_runtime();
    return rt ? PyBool_FromLong(nprof_runtime_enabled(rt)) : NULL;
}

/* ---- the clock ------------------------------------------------------------------------ */

static PyObject *py_nanos(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return PyLong_FromUnsignedLongLong(nprof_now_ns());
}

static PyObject *py_elapsed_nanos(PyObject *self, PyObject *start)
{
    (void)self;
    unsigned long long s = PyLong_AsUnsignedLongLong(start);
    if (s == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError))
            return NULL;
        PyErr_Format(PyExc_ValueError, "elapsed_nanos(start): start must be a value of nanos()");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(nprof_elapsed_ns(s));
}

static PyObject *py_clock_info(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    nprof_clock_info ci;
    int rc = nprof_clock_get_info(&ci);
    if (rc != NPROF_OK)
        return nprof_py_raise(rc, "clock_info()");
    return Py_BuildValue("{s:s,s:s,s:K,s:d,s:d,s:d}", "source", ci.source_name, "reason",
                         ci.reason, "frequency_hz", (unsigned long long)ci.frequency_hz,
                         "error_ppm", ci.calibration_error_ppm, "read_cost_ns", ci.read_cost_ns,
                         "resolution_ns", ci.resolution_ns);
}

/* ---- hooks and paths ---------------------------------------------------------------------- */

static PyObject *set_hook(PyObject **slot, PyObject *hook)
{
    if (hook != Py_None && !PyCallable_Check(hook))
        return PyErr_Format(PyExc_TypeError, "the hook must be callable or None");
    Py_XSETREF(*slot, hook == Py_None ? NULL : Py_NewRef(hook));
    Py_RETURN_NONE;
}

static PyObject *py_set_attach_hook(PyObject *self, PyObject *hook)
{
    (void)self;
    return set_hook(&nprof_py_attach_hook, hook);
}

static PyObject *py_set_request_info_hook(PyObject *self, PyObject *hook)
{
    (void)self;
    return set_hook(&nprof_py_info_hook, hook);
}

/* libnanoprof_pq.so is installed beside libnanoprof.so.0, which this module links: find the
 * latter through a symbol it exports. */
static PyObject *py_pq_preload_path(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    Dl_info info;
    if (!dladdr((void *)nprof_strerror, &info) || !info.dli_fname)
        return PyErr_Format(nprof_py_error, "cannot locate libnanoprof.so");
    const char *slash = strrchr(info.dli_fname, '/');
    size_t dir = slash ? (size_t)(slash - info.dli_fname) : 0;
    char path[4096];
    int n = snprintf(path, sizeof path, "%.*s%slibnanoprof_pq.so", (int)dir, info.dli_fname,
                     dir ? "/" : "");
    if (n < 0 || (size_t)n >= sizeof path)
        return PyErr_Format(nprof_py_error, "the path of libnanoprof.so is too long");
    return PyUnicode_DecodeFSDefaultAndSize(path, n);
}

static PyMethodDef module_methods[] = {
    {"nanos", py_nanos, METH_NOARGS, "Nanoseconds on the C clock's time line."},
    {"elapsed_nanos", py_elapsed_nanos, METH_O, "Nanoseconds since a value of nanos()."},
    {"clock_info", py_clock_info, METH_NOARGS, "The clock's source, frequency and cost."},
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_VARARGS | METH_KEYWORDS,
     "Makes a new default runtime with the given options."},
    {"config", py_config, METH_NOARGS, "The default runtime's options."},
    {"options", py_options, METH_NOARGS, "(name, type, default, doc) of every option."},
    {"ctl", py_ctl, METH_O, "One introspection value by dotted name."},
    {"stats", py_stats, METH_VARARGS, "Introspection values under a prefix."},
    {"set_enabled", py_set_enabled, METH_O, "Turns profiling on or off."},
    {"is_enabled", py_is_enabled, METH_NOARGS, "Whether profiling is on."},
    {"set_attach_hook", py_set_attach_hook, METH_O, "Sets the header attach hook."},
    {"set_request_info_hook", py_set_request_info_hook, METH_O, "Sets the request info hook."},
    {"pq_preload_path", py_pq_preload_path, METH_NOARGS, "Path of libnanoprof_pq.so."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "nanoprof._core",
    "The C extension behind nanoprof (import from nanoprof instead).", -1, NULL,
    NULL, NULL, NULL, NULL,
};

static int add_methods(PyObject *m, PyMethodDef *defs)
{
    for (PyMethodDef *d = defs; d->ml_name; d++) {
        PyObject *f = PyCFunction_NewEx(d, NULL, PyModule_GetNameObject(m));
        if (!f || PyModule_AddObject(m, d->ml_name, f) < 0) {
            Py_XDECREF(f);
            return -1;
        }
    }
    return 0;
}

static PyObject *new_error(PyObject *m, const char *name, PyObject *bases, const char *doc)
{
    char full[64];
    snprintf(full, sizeof full, "nanoprof.%s", name);
    PyObject *cls = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    if (cls && PyModule_AddObjectRef(m, name, cls) < 0)
        Py_CLEAR(cls);
    return cls;
}

PyMODINIT_FUNC PyInit__core(void)
{
    if (nprof_version_number() != NPROF_VERSION_NUMBER) {
        PyErr_Format(PyExc_ImportError,
                     "nanoprof._core was built for libnanoprof %s but loaded %s: reinstall "
                     "the package",
                     NPROF_VERSION_STRING, nprof_version_string());
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    PyObject *json = PyImport_ImportModule("json");
    if (!asyncio || !json)
        goto fail;
    get_running_loop = PyObject_GetAttrString(asyncio, "_get_running_loop");
    nprof_py_json_loads = PyObject_GetAttrString(json, "loads");
    Py_CLEAR(asyncio);
    Py_CLEAR(json);
    if (!get_running_loop || !nprof_py_json_loads)
        goto fail;

    nprof_py_error = new_error(m, "Error", NULL,
                               "A nanoprof call failed: `code` and `name` are the C result code "
                               "and its name, `detail` says which option or input was at fault.");
    PyObject *cfg_bases = nprof_py_error ? PyTuple_Pack(2, nprof_py_error, PyExc_ValueError) : NULL;
    nprof_py_config_error =
        cfg_bases ? new_error(m, "ConfigError", cfg_bases,
                              "An option's name or value was refused; the message names it.")
                  : NULL;
    Py_XDECREF(cfg_bases);
    nprof_py_state_error =
        nprof_py_config_error
            ? new_error(m, "StateError", nprof_py_error,
                        "A call made in the wrong state (a span that is not open, a profile "
                        "whose request has ended).")
            : NULL;
    if (!nprof_py_state_error)
        goto fail;

    nprof_py_current = PyContextVar_New("nanoprof.current_request", NULL);
    if (!nprof_py_current || PyModule_AddObjectRef(m, "current_request", nprof_py_current) < 0)
        goto fail;

    if (PyModule_AddStringConstant(m, "__version__", nprof_version_string()) < 0 ||
        PyModule_AddIntConstant(m, "PHASE_MIDDLEWARE", NPROF_PHASE_MIDDLEWARE) < 0 ||
        PyModule_AddIntConstant(m, "PHASE_ROUTING", NPROF_PHASE_ROUTING) < 0 ||
        PyModule_AddIntConstant(m, "PHASE_HANDLER", NPROF_PHASE_HANDLER) < 0 ||
        PyModule_AddIntConstant(m, "PROFILE_NONE", NPROF_MW_PROFILE_NONE) < 0 ||
        PyModule_AddIntConstant(m, "PROFILE_HEADER", NPROF_MW_PROFILE_HEADER) < 0 ||
        PyModule_AddIntConstant(m, "PROFILE_JSON", NPROF_MW_PROFILE_JSON) < 0 ||
        PyModule_AddIntConstant(m, "PROFILE_FLAME", NPROF_MW_PROFILE_FLAME) < 0 ||
        PyModule_AddObjectRef(m, "PROFILE_GUIDED", NPROF_PY_PGO ? Py_True : Py_False) < 0)
        goto fail;

    PyTypeObject *types[] = {&nprof_py_profile_type, &nprof_py_request_type,
                             &nprof_py_middleware_type, &nprof_py_store_type, &nprof_py_hook_type,
                             &nprof_py_recorder_type, &nprof_py_live_type,
                             &nprof_py_slowlog_type};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0 ||
            PyModule_AddObjectRef(m, strrchr(types[i]->tp_name, '.') + 1,
                                  (PyObject *)types[i]) < 0)
            goto fail;

    static PyStructSequence_Field query_fields[] = {
        {"sql", "the query text as recorded (cut at max_sql_bytes)"},
        {"duration_ns", "how long it took"},
        {"params", "the parameter summary, or None"},
        {"normalized", "the normalized text (literals as ?), or None"},
        {"fingerprint", "XXH3 fingerprint of the normalized text, 16 hex digits"},
        {"start_offset_ns", "when it started, from the start of the request"},
        {"slow", "over slow_query_threshold_ms"},
        {"callsite", "the application line that issued it (first of its shape, or slow)"},
        {"rows", "parameter sets of a batch (executemany), 0 for one statement"},
        {"error", "what the query raised, or None"},
        {NULL, NULL},
    };
    static PyStructSequence_Desc query_desc = {"nanoprof.SQLQuery",
                                               "One SQL query of a request.", query_fields, 7};
    nprof_py_sqlquery_type = PyStructSequence_NewType(&query_desc);
    if (!nprof_py_sqlquery_type ||
        PyModule_AddObjectRef(m, "SQLQuery", (PyObject *)nprof_py_sqlquery_type) < 0)
        goto fail;

    if (add_methods(m, module_methods) < 0 || add_methods(m, nprof_py_profile_methods) < 0 ||
        add_methods(m, nprof_py_handler_methods) < 0 ||
        add_methods(m, nprof_py_middleware_methods) < 0 ||
        add_methods(m, nprof_py_store_methods) < 0 ||
        add_methods(m, nprof_py_record_methods) < 0 ||
        add_methods(m, nprof_py_callsite_methods) < 0 ||
        add_methods(m, nprof_py_sampler_methods) < 0 || nprof_py_record_init(m) < 0 ||
        nprof_py_timed_init(m) < 0 || nprof_py_send_init() < 0 || nprof_py_asgi_init(m) < 0 ||
        nprof_py_guard_init(m) < 0)
        goto fail;
    return m;
fail:
    Py_XDECREF(asyncio);
    Py_XDECREF(json);
    Py_DECREF(m);
    return NULL;
}
