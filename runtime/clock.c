/*
 * runtime/clock.c: choosing and calibrating the tick source behind nprof_ticks().
 *
 * Reached once, through pthread_once, from the first slow-path tick read, nprof_clock_init()
 * or nprof_runtime_create().  Afterwards the inline readers in include/nanoprof/clock.h use
 * the published nprof__clock without ever coming back here (except on the monotonic path,
 * where nprof__ticks_slow() is the read itself).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "nanoprof/clock.h"

nprof__clock_state nprof__clock;

static pthread_once_t calibrate_once = PTHREAD_ONCE_INIT;

/* Written by calibrate() before nprof__clock.source is published; read-only afterwards. */
static struct {
    const char *reason;
    uint64_t frequency_hz;
    uint64_t calibration_ns;
    double calibration_error_ppm;
    double read_cost_ns;
    double resolution_ns;
} clock_meta;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef uint64_t (*counter_fn)(void);

#if defined(__x86_64__)
static uint64_t read_tsc(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* The kernel's view: a line of /proc/cpuinfo flags or the chosen clocksource. */
static int file_contains_word(const char *path, const char *prefix, const char *word)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[8192];
    int found = 0;
    size_t wl = strlen(word);
    while (!found && fgets(line, sizeof line, f)) {
        if (prefix && strncmp(line, prefix, strlen(prefix)) != 0)
            continue;
        for (char *p = strstr(line, word); p; p = strstr(p + 1, word)) {
            int starts = p == line || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':';
            char after = p[wl];
            if (starts && (after == ' ' || after == '\n' || after == '\0')) {
                found = 1;
                break;
            }
        }
        if (prefix)
            break; /* the first "flags" line speaks for every CPU */
    }
    fclose(f);
    return found;
}

static int tsc_is_invariant(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000007u &&
        __get_cpuid(0x80000007u, &a, &b, &c, &d) && (d & (1u << 8)))
        return 1;
    return file_contains_word("/proc/cpuinfo", "flags", "constant_tsc") == 1 &&
           file_contains_word("/proc/cpuinfo", "flags", "nonstop_tsc") == 1;
}
#endif

#if defined(__aarch64__)
static uint64_t read_cntvct(void)
{
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}
#endif

/* A (counter, CLOCK_MONOTONIC) pair read as close together as the machine allows: the
 * tightest of a few brackets.  *width_ns receives the bracket's width in ns. */
static void read_pair(counter_fn counter, uint64_t *ticks, uint64_t *ns, double *width_ticks)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 16; i++) {
        uint64_t t0 = counter();
        uint64_t m = monotonic_ns();
        uint64_t t1 = counter();
        if (t1 - t0 < best) {
            best = t1 - t0;
            *ticks = t0 + (t1 - t0) / 2;
            *ns = m;
        }
    }
    *width_ticks = (double)best;
}

/* Fits mult so that ns = ticks * mult >> 32 over a sleep of about 20 ms. */
static void calibrate_counter(counter_fn counter)
{
    uint64_t t0 = 0, m0 = 0, t1 = 0, m1 = 0;
    double w0, w1;
    read_pair(counter, &t0, &m0, &w0);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    read_pair(counter, &t1, &m1, &w1);
    uint64_t dt = t1 - t0, dm = m1 - m0;
    if (dt == 0)
        dt = 1;
    __extension__ typedef unsigned __int128 u128;
    nprof__clock.mult = (uint64_t)(((u128)dm << NPROF__CLOCK_SHIFT) / dt);
    nprof__clock.base_ticks = t1;
    nprof__clock.base_ns = m1;
    clock_meta.frequency_hz = (uint64_t)((double)dt * 1e9 / (double)dm + 0.5);
    clock_meta.calibration_ns = dm;
    /* Each end is known to within half its bracket. */
    clock_meta.calibration_error_ppm = (w0 + w1) / 2.0 / (double)dt * 1e6;
}

static void measure_read_quality(void)
{
    enum { READS = 20000 };
    uint64_t begin = monotonic_ns();
    uint64_t sink = 0;
    for (int i = 0; i < READS; i++)
        sink += nprof_now_ns();
    uint64_t end = monotonic_ns();
    clock_meta.read_cost_ns = (double)(end - begin) / READS;
    uint64_t best = UINT64_MAX, prev = nprof_now_ns();
    for (int i = 0; i < READS; i++) {
        uint64_t now = nprof_now_ns();
        if (now > prev && now - prev < best)
            best = now - prev;
        prev = now;
    }
    clock_meta.resolution_ns = best == UINT64_MAX ? 0.0 : (double)best;
    (void)sink;
}

static void use_monotonic(const char *reason)
{
    nprof__clock.mult = (uint64_t)1 << NPROF__CLOCK_SHIFT;
    nprof__clock.base_ticks = 0;
    nprof__clock.base_ns = 0;
    clock_meta.reason = reason;
    clock_meta.frequency_hz = 1000000000u;
    clock_meta.calibration_ns = 0;
    clock_meta.calibration_error_ppm = 0.0;
    __atomic_store_n(&nprof__clock.source, NPROF_CLOCK_MONOTONIC, __ATOMIC_RELEASE);
}

static void calibrate(void)
{
    const char *want = getenv("NANOPROF_CLOCK");
    if (want && strcmp(want, "monotonic") == 0) {
        use_monotonic("NANOPROF_CLOCK=monotonic");
    } else {
#if defined(__x86_64__)
        int forced = want && strcmp(want, "tsc") == 0;
        int kernel_tsc = file_contains_word(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource", NULL, "tsc");
        if (!tsc_is_invariant()) {
            use_monotonic("the TSC is not invariant (CPUID 80000007H:EDX[8] and the kernel's "
                          "constant_tsc/nonstop_tsc flags are missing)");
        } else if (kernel_tsc == 0 && !forced) {
            use_monotonic("the TSC is invariant but the kernel does not use it as its "
                          "clocksource (NANOPROF_CLOCK=tsc overrides)");
        } else {
            calibrate_counter(read_tsc);
            clock_meta.reason = forced ? "invariant TSC, forced by NANOPROF_CLOCK=tsc"
                                : kernel_tsc == 1
                                    ? "invariant TSC, trusted by the kernel as its clocksource"
                                    : "invariant TSC (the kernel's clocksource is not readable)";
            __atomic_store_n(&nprof__clock.source, NPROF_CLOCK_TSC, __ATOMIC_RELEASE);
        }
#elif defined(__aarch64__)
        calibrate_counter(read_cntvct);
        clock_meta.reason = "aarch64 virtual counter cntvct_el0";
        __atomic_store_n(&nprof__clock.source, NPROF_CLOCK_CNTVCT, __ATOMIC_RELEASE);
#else
        use_monotonic("no cycle counter support for this architecture");
#endif
    }
    measure_read_quality();
}

uint64_t nprof__ticks_slow(void)
{
    int source = __atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE);
    if (source == NPROF_CLOCK_UNINITIALIZED) {
        pthread_once(&calibrate_once, calibrate);
        source = __atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE);
    }
#if defined(__x86_64__)
    if (source == NPROF_CLOCK_TSC)
        return read_tsc();
#elif defined(__aarch64__)
    if (source == NPROF_CLOCK_CNTVCT)
        return read_cntvct();
#endif
    return monotonic_ns();
}

int nprof_clock_init(void)
{
    pthread_once(&calibrate_once, calibrate);
    return NPROF_OK;
}

int nprof_clock_get_info(nprof_clock_info *out)
{
    if (!out)
        return NPROF_EINVAL;
    nprof_clock_init();
    memset(out, 0, sizeof *out);
    out->source = __atomic_load_n(&nprof__clock.source, __ATOMIC_ACQUIRE);
    out->source_name = out->source == NPROF_CLOCK_TSC      ? "tsc"
                       : out->source == NPROF_CLOCK_CNTVCT ? "cntvct"
                                                           : "monotonic";
    out->reason = clock_meta.reason;
    out->frequency_hz = clock_meta.frequency_hz;
    out->calibration_ns = clock_meta.calibration_ns;
    out->read_cost_ns = clock_meta.read_cost_ns;
    out->resolution_ns = clock_meta.resolution_ns;
    out->calibration_error_ppm = clock_meta.calibration_error_ppm;
    if (out->source != NPROF_CLOCK_MONOTONIC) {
        /* Measure the drift since calibration; over a long life this beats the estimate. */
        uint64_t ticks = 0, mono = 0;
        double width;
        read_pair(nprof_ticks, &ticks, &mono, &width);
        uint64_t elapsed = mono - nprof__clock.base_ns;
        if (elapsed >= 100u * 1000 * 1000) {
            uint64_t predicted = nprof__clock.base_ns + nprof_ticks_to_ns(ticks - nprof__clock.base_ticks);
            double diff = (double)predicted - (double)mono;
            out->calibration_error_ppm = (diff < 0 ? -diff : diff) / (double)elapsed * 1e6;
        }
    }
    return NPROF_OK;
}
