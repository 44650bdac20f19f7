/*
 * runtime/config.h: the option table behind nanoprof/config.h, shared with introspection
 * (runtime/ctl.c lists every option as "opt.<name>").
 */
#ifndef NPROF_RUNTIME_CONFIG_H
#define NPROF_RUNTIME_CONFIG_H

#include <stddef.h>

#include "nanoprof/config.h"
#include "nanoprof/runtime.h"

/* Number of rows in the option table. */
size_t nprof__config_option_count(void);

/* Value of option number `index` of `cfg`, as introspection reports it (enums as strings). */
int nprof__config_value(const nprof_config *cfg, size_t index, nprof_ctl_value *out);

/* Name of option number `index`, or NULL past the end. */
const char *nprof__config_option_name(size_t index);

#endif /* NPROF_RUNTIME_CONFIG_H */
