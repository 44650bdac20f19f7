/*
 * bench/bench_clock.c: what one clock read costs.
 *
 * Measured (throughput cost, ns/call): a tight loop of calls whose results are summed into a
 * register accumulator that is stored into a volatile sink at the end, so no call can be
 * optimized away (a volatile read-modify-write per call would instead add a store-forwarding
 * chain of ~5 cycles to every case), for
 *   - raw rdtsc (inline asm, the same instruction nprof_ticks() issues)      -- the ANCHOR
 *   - nprof_ticks()       the inline raw counter read (load + branch + rdtsc)
 *   - nprof_now_ns()      the inline tick read converted to CLOCK_MONOTONIC nanoseconds
 *   - clock_gettime(CLOCK_MONOTONIC)  what a host would call without nanoprof (vDSO)
 * Every case is run N times, interleaved with the anchor, and compared with it run by run.
 * Also prints nprof_clock_get_info().
 *
 * Targets: nprof_now_ns() <= 1.3x raw rdtsc, and faster than clock_gettime(CLOCK_MONOTONIC).
 *
 * Usage: bench_clock [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count)
 */
#include <time.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"

#define CLOCK_OPS 20000000u /* calls per measurement */

/* The anchor: the bare counter instruction, nothing else. */
static inline uint64_t raw_counter(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__) && defined(__GNUC__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec;
#endif
}

/* One loop per case, written out so that each one inlines its call. */
#define CLOCK_LOOP(fn_name, expr)                                   \
    static double fn_name(void *ctx, uint64_t ops)                  \
    {                                                               \
        (void)ctx;                                                  \
        uint64_t acc = 0;                                           \
        uint64_t t0 = bench_now_ns();                               \
        for (uint64_t i = 0; i < ops; i++)                          \
            acc += (expr);                                          \
        uint64_t t1 = bench_now_ns();                               \
        bench_sink = acc;                                           \
        return (double)(t1 - t0) / (double)ops;                     \
    }

static inline uint64_t monotonic_read(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

CLOCK_LOOP(run_raw, raw_counter())
CLOCK_LOOP(run_ticks, nprof_ticks())
CLOCK_LOOP(run_now_ns, nprof_now_ns())
CLOCK_LOOP(run_clock_gettime, monotonic_read())

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_clock",
               "cost per call of the clock reads (anchor: raw rdtsc)");
    nprof_clock_init();

    nprof_clock_info info;
    if (nprof_clock_get_info(&info) != NPROF_OK) {
        fprintf(stderr, "nprof_clock_get_info failed\n");
        return 1;
    }
    printf("nprof_clock_get_info():\n");
    printf("  source                 %d (%s)\n", info.source, info.source_name);
    printf("  reason                 %s\n", info.reason);
    printf("  frequency_hz           %llu\n", (unsigned long long)info.frequency_hz);
    printf("  calibration_ns         %llu\n", (unsigned long long)info.calibration_ns);
    printf("  calibration_error_ppm  %.3f\n", info.calibration_error_ppm);
    printf("  read_cost_ns           %.2f\n", info.read_cost_ns);
    printf("  resolution_ns          %.2f\n\n", info.resolution_ns);

    uint64_t ops = bench_ops(CLOCK_OPS);
    bench_case cases[] = {
        {.name = "raw rdtsc", .fn = run_raw, .ops = ops},
        {.name = "nprof_ticks()", .fn = run_ticks, .ops = ops},
        {.name = "nprof_now_ns()", .fn = run_now_ns, .ops = ops},
        {.name = "clock_gettime(CLOCK_MONOTONIC)", .fn = run_clock_gettime, .ops = ops},
    };
    enum { RAW, TICKS, NOW, GETTIME, NCASES };
    printf("%llu calls per measurement\n", (unsigned long long)ops);
    bench_group_run("clock read, throughput cost", "ns/call", "%.2f", cases, NCASES);

    /* nprof_now_ns() against clock_gettime(), from the same runs. */
    bench_series vs_gettime = {.n = cases[NOW].value.n};
    for (int r = 0; r < vs_gettime.n; r++)
        vs_gettime.v[r] = cases[NOW].value.v[r] / cases[GETTIME].value.v[r];
    bench_series_print("nprof_now_ns / clock_gettime", "x", "%.3f", &vs_gettime);

    printf("\n");
    if (info.source != NPROF_CLOCK_TSC)
        printf("note: the clock source is %s, not tsc; the rdtsc target assumes tsc\n",
               info.source_name);
    bench_target(cases[NOW].ratio.median <= 1.3, "nprof_now_ns <= 1.3x raw rdtsc",
                 "%.3fx, %.2f vs %.2f ns/call", cases[NOW].ratio.median,
                 cases[NOW].value.median, cases[RAW].value.median);
    bench_target(vs_gettime.median < 1.0, "nprof_now_ns faster than clock_gettime",
                 "%.3fx, %.2f vs %.2f ns/call", vs_gettime.median, cases[NOW].value.median,
                 cases[GETTIME].value.median);
    return bench_finish();
}
