#ifndef NPROF_RUNTIME_HOTPATH_H
#define NPROF_RUNTIME_HOTPATH_H

/*
 * runtime/hotpath.h: code layout on the per-request and per-query paths.
 *
 * Under a server those paths run cold: between two queries of a request the driver, the
 * event loop and the kernel push their lines out of the instruction cache, so what a query
 * costs follows the cache lines its code spans more than its instruction count.  A helper
 * that only some calls need stays out of line (NPROF__NOINLINE), so that its body does not
 * spread the common path over more lines at every place it is called; one that few calls
 * need (growing a buffer, a rare feature) also goes with the cold code, away from the hot
 * lines (NPROF__RARE).
 */
#if defined(__GNUC__)
#define NPROF__NOINLINE __attribute__((noinline))
#define NPROF__RARE __attribute__((noinline, cold))
#else
#define NPROF__NOINLINE
#define NPROF__RARE
#endif

#endif
