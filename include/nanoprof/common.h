/*
 * nanoprof/common.h: what every other nanoprof header needs: the version, the export
 * macro, the one table of result codes, and the conventions all the public headers follow.
 *
 * Names.  Every public function is nprof_<object>_<verb>[_<what>]: the object first, with one
 * prefix per object, then what the call does to it (libuv's uv_<object>_<verb>).  The objects:
 *     runtime (nprof_runtime)  config  ctl (introspection)  clock  buf  version  duration
 *     request  phase  span  query  current  profile (nprof_profile)
 *     store (nprof_store)  snapshot (nprof_snapshot)
 *     sql  redactor (nprof_redactor)  querystats (nprof_querystats)  slowlog (nprof_slowlog)
 *     pq (the libpq layer)  mw (nprof_mw, the middleware)
 * A handle type is named like its prefix, and so are the object's other types
 * (nprof_mw_options, nprof_redactor_options) and macros (NPROF_MW_*, NPROF_SLOWLOG_*).
 * The verbs, each used for one thing only:
 *     _create / _destroy  make and free a handle (destroy accepts NULL); the slow-query log,
 *                         which connects to a database, has _open / _close
 *     _options_init       fills an options struct with its documented defaults
 *     _get_<what>         copies something into a caller's struct: nprof_pq_get_stats(),
 *                         nprof_mw_get_totals(), nprof_profile_get_query(p, i, &out)
 *     _set_<what>         changes one setting
 *     _render_<format>    appends a rendering (JSON, collapsed stacks, HTML, ...) to an
 *                         nprof_buf, or writes one into a caller's fixed buffer
 *     _read_<what>        the same from a database (the slow-query log's read side)
 *     and plain verbs that say what they do: begin/end, record, push, enqueue, apply, ...
 * Accessors that cannot fail return their value and are named after it, without a verb:
 * nprof_runtime_config(), nprof_store_size(), nprof_querystats_dropped().
 * Names that follow another convention on purpose: the inline clock readers, named after the
 * value they return like uv_hrtime() (nprof_ticks(), nprof_now_ns(), nprof_elapsed_ns(), ...);
 * the error functions nprof_strerror(), nprof_errname() and nprof_last_error_detail(), like
 * uv_strerror(); and the libpq wrappers (nprof_pq_exec(), ...), libpq's names in snake case.
 * Internal names have two underscores (nprof__*, NPROF__*) and are not API.
 *
 * Renamed calls and types keep their old names for one release: each header ends with a
 * block "deprecated aliases, removed in 0.3" of #define old_name new_name (typedefs for
 * types; a call whose arguments changed keeps its old form as a static inline function over
 * the new one).  They are macros, not exported symbols: the library exports the new names
 * only, so a program written for 0.1 compiles unchanged, but must be rebuilt.  Define
 * NPROF_NO_DEPRECATED before including nanoprof to hide them.
 *
 * Results.  A call that can fail returns an int: 0 (NPROF_OK) on success, a negative
 * NPROF_E* code otherwise.  The exceptions, each said again at its declaration:
 *   - ints that carry a value >= 0 on success: a span id (nprof_span_begin(),
 *     nprof_span_begin_ex(), nprof_span_begin_static()); a count (nprof_redactor_apply():
 *     replacements made; nprof_slowlog_enqueue_profile(): entries queued); a yes/no
 *     (nprof_mw_handle(): 1 for a dashboard request, 0 otherwise); and the walks
 *     nprof_ctl_foreach() and nprof_querystats_foreach(), which return the visitor's non-zero
 *     value when it stopped them;
 *   - ints that are values, never errors: nprof_runtime_enabled(), nprof_pq_busy(),
 *     nprof_pq_exclude_thread() (the previous setting);
 *   - the libpq wrappers (nprof_pq_exec(), ...) return exactly what libpq returns;
 *   - calls that cannot fail return their value (a size, a count, a pointer, a fingerprint)
 *     or nothing (void).
 * No call returns a length through its int result (only the deprecated wrappers of 0.1's
 * nprof_format_duration() and nprof_mw_route_template() still do): lengths go to a size_t
 * out parameter.
 *
 * Fixed buffers.  A call that writes into a caller's buffer takes (buf, cap) and a
 * `size_t *out_len` (may be NULL) that receives the length written, without the NUL.  When
 * `cap` is too small it returns NPROF_ERANGE and *out_len holds the length needed (a buffer of
 * *out_len + 1 bytes suffices); buf NULL with cap 0 only measures.  Those calls are
 * nprof_profile_render_header(), nprof_duration_format(), nprof_sql_normalize(),
 * nprof_sql_shape() and nprof_mw_get_route_template(); no other call returns NPROF_ERANGE.
 * nprof_redactor_apply() also writes into a caller's buffer, but cuts its output to fit, as
 * it cuts it at the redactor's max_bytes, and reports the cut in *truncated.  Output whose
 * size is not known in advance goes to an nprof_buf, which grows.
 *
 * Strings are passed with their length (NUL bytes are data) unless a declaration says
 * NUL-terminated.  Strings passed in are copied, or only read during the call, unless the
 * declaration says borrowed.  Strings returned stay valid as long as the object they come
 * from, unless the declaration says static.
 */
#ifndef NANOPROF_COMMON_H
#define NANOPROF_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The version's one home: CMakeLists.txt and build.zig read these three lines (keep each
 * "#define NPROF_VERSION_<part> <number>") for the package, the soname and nanoprof.pc. */
#define NPROF_VERSION_MAJOR 0
#define NPROF_VERSION_MINOR 1
#define NPROF_VERSION_PATCH 0
#define NPROF_VERSION_NUMBER \
    (NPROF_VERSION_MAJOR * 10000 + NPROF_VERSION_MINOR * 100 + NPROF_VERSION_PATCH)
/* "0.1.0", spelled from the numbers above. */
#define NPROF__STRINGIFY(x) #x
#define NPROF__VERSION_TEXT(major, minor, patch) \
    NPROF__STRINGIFY(major) "." NPROF__STRINGIFY(minor) "." NPROF__STRINGIFY(patch)
#define NPROF_VERSION_STRING \
    NPROF__VERSION_TEXT(NPROF_VERSION_MAJOR, NPROF_VERSION_MINOR, NPROF_VERSION_PATCH)

/* NPROF_API marks the library's exported declarations: default visibility in the shared
 * library (built with -fvisibility=hidden), nothing when NPROF_STATIC_DEFINE is set. */
#if defined(NPROF_STATIC_DEFINE)
#define NPROF_API
#elif defined(__GNUC__)
#define NPROF_API __attribute__((visibility("default")))
#else
#define NPROF_API
#endif

/* Branch hints for the inline hot paths (clock.h): the condition is usually true / false. */
#if defined(__GNUC__)
#define NPROF_LIKELY(x) __builtin_expect(!!(x), 1)
#define NPROF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define NPROF_LIKELY(x) (x)
#define NPROF_UNLIKELY(x) (x)
#endif

/*
 * Code layout of nanoprof's own per-request and per-query paths (the library and the Python
 * extension; not API).  Under a server those paths run cold: between two queries the driver,
 * the event loop and the kernel push their lines out of the instruction cache, so a query
 * costs what its code's cache lines cost more than what its instructions do.  A helper that
 * only some calls need stays out of line (NPROF__NOINLINE), so that its body does not spread
 * the common path over more lines where it is called; one that few calls need (growing a
 * buffer, a rare feature) also goes with the cold code, away from the hot lines
 * (NPROF__RARE).
 */
#if defined(__GNUC__)
#define NPROF__NOINLINE __attribute__((noinline))
#define NPROF__RARE __attribute__((noinline, cold))
#else
#define NPROF__NOINLINE
#define NPROF__RARE
#endif

/* The functions that every request or every query runs (the library's and the Python
 * extension's), side by side in one section of their binary: scattered among the rest, each
 * took cache lines of its own, partly filled with its neighbours' code.  (Measured on /db:
 * about a hundred fewer instruction-cache misses per request for the extension's.) */
#if defined(__GNUC__) && defined(__ELF__)
#define NPROF__HOT_PATH __attribute__((section(".text.hot.nprof")))
#else
#define NPROF__HOT_PATH
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The result codes.  X(name, value, message): one row per code; the table also feeds
 * nprof_strerror() and nprof_errname(), so a new code is added here and nowhere else.
 */
#define NPROF_ERRNO_MAP(X)                                                                  \
    X(OK, 0, "success")                                                                     \
    X(EINVAL, -1, "invalid argument (misuse of the API)")                                   \
    X(ENOMEM, -2, "out of memory")                                                          \
    X(ERANGE, -3, "output buffer too small; the needed size was reported")                  \
    X(ESTATE, -4, "call made in the wrong state (e.g. ending a span that is not open)")     \
    X(ENOPROFILE, -5, "no profile: profiling is disabled or no request is current")         \
    X(ENOENT, -6, "no such name or entry")                                                  \
    X(ELIMIT, -7, "a configured bound was reached; the event was counted, not kept")       \
    X(EPARSE, -8, "malformed configuration text")                                           \
    X(EFULL, -9, "queue full; the entry was dropped and counted")                          \
    X(EIO, -10, "input/output or connection failure")                                       \
    X(EUNSUPPORTED, -11, "not supported on this platform or build")

/* The result codes as constants: NPROF_OK, NPROF_EINVAL, ... with the values above. */
enum nprof_result {
#define NPROF__ERRNO_ENUM(name, value, msg) NPROF_##name = (value),
    NPROF_ERRNO_MAP(NPROF__ERRNO_ENUM)
#undef NPROF__ERRNO_ENUM
};

/* A sentence describing `code`; "unknown error" for codes outside the table.  Static
 * storage; thread-safe. */
NPROF_API const char *nprof_strerror(int code);

/* The symbolic name of `code` ("NPROF_EINVAL"), "NPROF_UNKNOWN" outside the table. */
NPROF_API const char *nprof_errname(int code);

/*
 * A sentence with the details of the last failure on this thread (which option, which
 * character, which library could not be loaded), or "" when there is none.  Thread-local;
 * valid until the next failing nanoprof call on this thread.
 */
NPROF_API const char *nprof_last_error_detail(void);

/* The library's version at run time, to compare with NPROF_VERSION_NUMBER at build time. */
NPROF_API unsigned nprof_version_number(void);

/* The library's version at run time as text ("0.1.0"), NPROF_VERSION_STRING at its build.
 * Static storage. */
NPROF_API const char *nprof_version_string(void);

/*
 * A growable byte buffer for renderers whose output size is not known in advance.
 * The memory belongs to the caller (it comes from the C library's malloc, not from the
 * runtime's arena, so it may outlive the runtime); release it with nprof_buf_free().
 * `data` is always NUL-terminated when non-NULL; `len` excludes the terminator.
 */
typedef struct nprof_buf {
    char *data;
    size_t len;
    size_t cap;
} nprof_buf;

/* An empty buffer, to initialise an nprof_buf with: nprof_buf b = NPROF_BUF_INIT; */
#define NPROF_BUF_INIT {NULL, 0, 0}

/* Frees the buffer's memory and resets it to empty.  Accepts NULL and empty buffers. */
NPROF_API void nprof_buf_free(nprof_buf *buf);

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_COMMON_H */
