/*
 * nanoprof/common.h: what every other nanoprof header needs: the version, the export
 * macro, and the one table of result codes.
 *
 * Result codes: every fallible call returns an int, 0 (NPROF_OK) on success and a negative
 * NPROF_E* code otherwise.  nprof_strerror() turns a code into a sentence, nprof_errname()
 * into its symbolic name; both accept any int and never return NULL.
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

#if defined(NPROF_STATIC_DEFINE)
#define NPROF_API
#elif defined(__GNUC__)
#define NPROF_API __attribute__((visibility("default")))
#else
#define NPROF_API
#endif

#if defined(__GNUC__)
#define NPROF_LIKELY(x) __builtin_expect(!!(x), 1)
#define NPROF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define NPROF_LIKELY(x) (x)
#define NPROF_UNLIKELY(x) (x)
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

enum nprof_result {
#define NPROF__ERRNO_ENUM(name, value, msg) NPROF_##name = (value),
    NPROF_ERRNO_MAP(NPROF__ERRNO_ENUM)
#undef NPROF__ERRNO_ENUM
};

/* A sentence describing `code`; "unknown error" for codes outside the table.  Static storage. */
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

#define NPROF_BUF_INIT {NULL, 0, 0}

/* Frees the buffer's memory and resets it to empty.  Accepts NULL and empty buffers. */
NPROF_API void nprof_buf_free(nprof_buf *buf);

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_COMMON_H */
