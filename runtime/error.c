/*
 * runtime/error.c: result-code names and messages (from the one table in common.h) and the
 * library's version.
 */
#include "nanoprof/common.h"

const char *nprof_strerror(int code)
{
    switch (code) {
#define NPROF__ERRNO_MSG(name, value, msg) \
    case NPROF_##name:                     \
        return msg;
        NPROF_ERRNO_MAP(NPROF__ERRNO_MSG)
#undef NPROF__ERRNO_MSG
    }
    return "unknown error";
}

const char *nprof_errname(int code)
{
    switch (code) {
#define NPROF__ERRNO_NAME(name, value, msg) \
    case NPROF_##name:                      \
        return "NPROF_" #name;
        NPROF_ERRNO_MAP(NPROF__ERRNO_NAME)
#undef NPROF__ERRNO_NAME
    }
    return "NPROF_UNKNOWN";
}

unsigned nprof_version_number(void)
{
    return NPROF_VERSION_NUMBER;
}

const char *nprof_version_string(void)
{
    return NPROF_VERSION_STRING;
}
