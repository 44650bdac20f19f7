/*
 * nanoprof/clock.h: the nanosecond clock.
 *
 * Two levels:
 *   - nprof_ticks() reads the raw counter (rdtsc on x86-64 with an invariant TSC that the
 *     kernel trusts, cntvct_el0 on aarch64, CLOCK_MONOTONIC elsewhere).  It is static inline,
 *     so on the hot path a caller pays for the counter instruction, one load and one
 *     predictable branch.  Store ticks; convert later with nprof_ticks_to_ns().
 *   - nprof_now_ns() / nprof_elapsed_ns() give nanoseconds on the CLOCK_MONOTONIC time line
 *     (the offset is fixed at calibration), for callers that want plain numbers.
 *   - nprof_ticks_ordered() / nprof_now_ns_ordered() are the same reads fenced against
 *     earlier instructions, for timestamps compared with ones another thread published.
 *
 * Ticks are converted by a fixed-point multiply and shift calibrated once against
 * CLOCK_MONOTONIC (about 20 ms, on first use or at nprof_clock_init(), thread-safe).
 * The environment variable NANOPROF_CLOCK=monotonic forces the clock_gettime() path;
 * NANOPROF_CLOCK=tsc accepts an invariant TSC even when the kernel chose another clocksource.
 *
 * Thread safety: every function here may be called from any thread at any time.
 */
#ifndef NANOPROF_CLOCK_H
#define NANOPROF_CLOCK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where ticks come from (nprof_clock_info.source). */
enum nprof_clock_source {
    NPROF_CLOCK_UNINITIALIZED = 0,
    NPROF_CLOCK_TSC = 1,       /* x86-64 rdtsc, invariant TSC */
    NPROF_CLOCK_CNTVCT = 2,    /* aarch64 virtual counter */
    NPROF_CLOCK_MONOTONIC = 3  /* clock_gettime(CLOCK_MONOTONIC); one tick = 1 ns */
};

/*
 * Internal: the calibrated conversion, shared by the inline readers below.  Written once by
 * the calibration (source last, with release order); never touch it directly.
 */
#define NPROF__CLOCK_SHIFT 32
typedef struct nprof__clock_state {
    int32_t source;      /* enum nprof_clock_source; read with acquire order */
    uint32_t reserved;
    uint64_t mult;       /* ns = ticks * mult >> NPROF__CLOCK_SHIFT */
    uint64_t base_ticks; /* counter value at calibration */
    uint64_t base_ns;    /* CLOCK_MONOTONIC at the same instant, ns */
} nprof__clock_state;

NPROF_API extern nprof__clock_state nprof__clock;

/* Internal slow path: calibrates on first use, then reads the selected source. */
NPROF_API uint64_t nprof__ticks_slow(void);

/* The raw counter.  Monotonic per thread; across threads within the counter's sync error. */
static inline uint64_t nprof_ticks(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (NPROF_LIKELY(__atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE) == NPROF_CLOCK_TSC)) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
    }
#elif defined(__aarch64__) && defined(__GNUC__)
    if (NPROF_LIKELY(__atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE) ==
                     NPROF_CLOCK_CNTVCT)) {
        uint64_t v;
        __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
        return v;
    }
#endif
    return nprof__ticks_slow();
}

/* Converts a tick difference (end - start) to nanoseconds. */
static inline uint64_t nprof_ticks_to_ns(uint64_t ticks)
{
    if (NPROF_UNLIKELY(__atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE) ==
                       NPROF_CLOCK_UNINITIALIZED))
        (void)nprof__ticks_slow();
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 nprof__u128;
    return (uint64_t)(((nprof__u128)ticks * nprof__clock.mult) >> NPROF__CLOCK_SHIFT);
#else
    /* The same product in 32-bit halves, for compilers without 128-bit integers. */
    uint64_t m = nprof__clock.mult;
    uint64_t th = ticks >> 32, tl = ticks & 0xffffffffu, mh = m >> 32, ml = m & 0xffffffffu;
    return ((th * mh) << 32) + th * ml + tl * mh + ((tl * ml) >> 32);
#endif
}

/*
 * nprof_ticks(), but read only after every earlier instruction of this thread has completed
 * (lfence before rdtsc; isb before cntvct_el0).  A plain rdtsc may execute a few dozen cycles
 * early, before a load that precedes it in program order: measured here, one read in 70
 * landed up to 27 ticks (10 ns) before a timestamp it had just loaded from another thread.
 * Use the ordered read where a timestamp is compared with one published by another thread;
 * it costs about 1.7x the plain read.  Intervals measured on one thread need no ordering.
 */
static inline uint64_t nprof_ticks_ordered(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (NPROF_LIKELY(__atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE) == NPROF_CLOCK_TSC)) {
        uint32_t lo, hi;
        __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
        return ((uint64_t)hi << 32) | lo;
    }
#elif defined(__aarch64__) && defined(__GNUC__)
    if (NPROF_LIKELY(__atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE) ==
                     NPROF_CLOCK_CNTVCT)) {
        uint64_t v;
        __asm__ __volatile__("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
        return v;
    }
#endif
    return nprof__ticks_slow(); /* clock_gettime() is ordered already */
}

/* Converts a counter value to nanoseconds on the CLOCK_MONOTONIC time line. */
static inline uint64_t nprof_ticks_to_timeline_ns(uint64_t t)
{
    int64_t d = (int64_t)(t - nprof__clock.base_ticks);
    /* A counter read on another core can sit a few ticks before the calibration point. */
    if (NPROF_UNLIKELY(d < 0))
        return nprof__clock.base_ns - nprof_ticks_to_ns((uint64_t)-d);
    return nprof__clock.base_ns + nprof_ticks_to_ns((uint64_t)d);
}

/* Monotonic nanoseconds on the CLOCK_MONOTONIC time line (a plain, unordered read). */
static inline uint64_t nprof_now_ns(void)
{
    return nprof_ticks_to_timeline_ns(nprof_ticks());
}

/* nprof_now_ns() from an ordered read: never before a timestamp this thread has just loaded
 * from another thread. */
static inline uint64_t nprof_now_ns_ordered(void)
{
    return nprof_ticks_to_timeline_ns(nprof_ticks_ordered());
}

/* Nanoseconds since `start_ns` (a value of nprof_now_ns()); 0 if `start_ns` is in the future. */
static inline uint64_t nprof_elapsed_ns(uint64_t start_ns)
{
    uint64_t now = nprof_now_ns();
    return now > start_ns ? now - start_ns : 0;
}

/*
 * Calibrates now instead of on first use (so the first request does not pay ~20 ms).
 * Idempotent and thread-safe.  Returns NPROF_OK.
 */
NPROF_API int nprof_clock_init(void);

/* What the clock is and how good it is: filled by nprof_clock_get_info(). */
typedef struct nprof_clock_info {
    int source;                   /* enum nprof_clock_source */
    const char *source_name;      /* "tsc", "cntvct" or "monotonic" (static) */
    const char *reason;           /* why this source was chosen (static) */
    uint64_t frequency_hz;        /* counter ticks per second */
    uint64_t calibration_ns;      /* how long the calibration ran */
    double calibration_error_ppm; /* |tick-derived - CLOCK_MONOTONIC| / elapsed, measured over
                                     the longest interval seen so far (see below) */
    double read_cost_ns;          /* mean cost of one nprof_now_ns(), measured at init */
    double resolution_ns;         /* smallest non-zero step seen between two reads */
} nprof_clock_info;

/*
 * Fills `out`.  The calibration error is re-measured on each call against CLOCK_MONOTONIC
 * over the whole time since calibration, so it tightens as the process lives.
 * Errors: NPROF_EINVAL if `out` is NULL.
 */
NPROF_API int nprof_clock_get_info(nprof_clock_info *out);

#ifdef __cplusplus
}
#endif

#endif /* NANOPROF_CLOCK_H */
