/*
 * bench/bench.h: the timing harness shared by the nanoprof benchmarks.
 *
 * Methodology (the "Stability Rule"): a figure is never one run.  Every measurement is
 * repeated N >= 5 times; each run's value is printed, then the median and the jitter,
 *     jitter % = (max - min) / median / 2 * 100,
 * and a figure whose jitter exceeds 5 % is flagged as not quotable.  Every measurement does
 * at least 1 million operations (or runs at least 1 s); a scaled-down run (for callgrind) is
 * flagged "SHORT RUN".  Each case is warmed up before the timed runs.
 *
 * Comparisons are made against an anchor measured in the same run: a group of cases is
 * executed run by run, every case once per run (the order rotating from run to run), so
 * frequency changes and scheduler noise hit the anchor and the subjects alike.  The ratio
 * reported for a subject is the median of its per-run ratios subject/anchor.
 *
 * Knobs (all optional):
 *   argv[1] or NPROF_BENCH_SCALE  multiplies every operation count (e.g. 0.01 under callgrind)
 *   NPROF_BENCH_RUNS              runs per measurement (default 7, at least 5, at most 31)
 *   NPROF_BENCH_ONLY              comma-separated group tags to run (e.g. "a,c"); default all
 *
 * Header-only: every function is static, each benchmark program includes it once.
 */
#ifndef NPROF_BENCH_H
#define NPROF_BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_RUNS 31
#define BENCH_DEFAULT_RUNS 7
#define BENCH_MIN_RUNS 5
#define BENCH_MIN_OPS 1000000u   /* per measurement, unless it runs >= 1 s */
#define BENCH_MIN_WARMUP 10000u  /* operations of warmup per case, whatever the scale */
#define BENCH_MAX_JITTER 5.0     /* percent; above it a figure is not quotable */

/* Anything written here is observable, so the loops that feed it cannot be removed. */
static volatile uint64_t bench_sink;

/* Makes the compiler assume `p` (and all memory) is read and written here. */
#define bench_escape(p) __asm__ __volatile__("" : : "g"(p) : "memory")

/* The harness's own clock: CLOCK_MONOTONIC, independent of the library under test. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- settings ------------------------------------------------------------------------ */

static double bench_scale = 1.0;
static int bench_runs = BENCH_DEFAULT_RUNS;

/* Reads argv[1] / NPROF_BENCH_SCALE and NPROF_BENCH_RUNS; prints the settings. */
static void bench_init(int argc, char **argv, const char *program, const char *what)
{
    const char *s = argc > 1 ? argv[1] : getenv("NPROF_BENCH_SCALE");
    if (s && *s) {
        double v = strtod(s, NULL);
        if (v > 0)
            bench_scale = v;
    }
    const char *r = getenv("NPROF_BENCH_RUNS");
    if (r && *r)
        bench_runs = atoi(r);
    if (bench_runs < BENCH_MIN_RUNS)
        bench_runs = BENCH_MIN_RUNS;
    if (bench_runs > BENCH_MAX_RUNS)
        bench_runs = BENCH_MAX_RUNS;
    printf("%s: %s\n", program, what);
    printf("runs per figure: %d, operation scale: %g%s\n\n", bench_runs, bench_scale,
           bench_scale < 1.0 ? "  (scaled down: figures are for profiling, not for quoting)"
                             : "");
}

/* Whether the group tagged `tag` is to run (NPROF_BENCH_ONLY unset, or it lists `tag`). */
static inline int bench_selected(const char *tag)
{
    const char *only = getenv("NPROF_BENCH_ONLY");
    if (!only || !*only)
        return 1;
    size_t len = strlen(tag);
    for (const char *p = only; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, tag, len) == 0)
            return 1;
        p += n + (end != NULL);
    }
    return 0;
}

/* `base` operations times the scale, at least 1. */
static uint64_t bench_ops(uint64_t base)
{
    double v = (double)base * bench_scale;
    return v < 1.0 ? 1 : (uint64_t)v;
}

/* ---- statistics ---------------------------------------------------------------------- */

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bench_median(const double *v, int n)
{
    double tmp[BENCH_MAX_RUNS];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, bench_cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* (max - min) / median / 2 * 100 */
static double bench_jitter(const double *v, int n)
{
    double lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    double med = bench_median(v, n);
    return med != 0 ? (hi - lo) / (med < 0 ? -med : med) / 2 * 100 : 0;
}

/* A series of per-run values with its summary. */
typedef struct bench_series {
    double v[BENCH_MAX_RUNS];
    int n;
    double median, jitter;
} bench_series;

static void bench_series_finish(bench_series *s)
{
    s->median = bench_median(s->v, s->n);
    s->jitter = bench_jitter(s->v, s->n);
}

/* Prints "  <label>  runs: a b c ...  median M <unit>  jitter J%" and a flag when noisy. */
static void bench_series_print(const char *label, const char *unit, const char *fmt,
                               bench_series *s)
{
    bench_series_finish(s);
    printf("  %-34s runs:", label);
    for (int i = 0; i < s->n; i++) {
        putchar(' ');
        printf(fmt, s->v[i]);
    }
    printf("\n  %-34s median ", "");
    printf(fmt, s->median);
    printf(" %s  jitter %.2f%%%s\n", unit, s->jitter,
           s->jitter > BENCH_MAX_JITTER ? "  ** NOISY: jitter > 5%, do not quote **" : "");
}

/* ---- other load on the machine ------------------------------------------------------- */

/*
 * Noise detector: CPU time the whole machine spent busy (/proc/stat) minus what this
 * process spent (CLOCK_PROCESS_CPUTIME_ID), over a measurement, in CPUs.  Other programs on
 * the same cores distort a figure (most of all a multi-threaded one); the harness reports the
 * worst such load seen during each case's runs (of at least 0.2 s).  /proc/stat counts in
 * clock ticks (10 ms), so values below ~0.1 CPU are resolution noise.
 */
typedef struct bench_load_mark {
    double busy_s, own_s, wall_s;
} bench_load_mark;

static double bench_proc_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system [idle] [iowait] irq softirq steal */
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
}

static bench_load_mark bench_load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    bench_load_mark m = {bench_proc_busy_s(), (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
                         (double)bench_now_ns() / 1e9};
    return m;
}

/* CPUs used by other processes between the two marks (>= 0); 0 when the interval is too
 * short for /proc/stat's 10 ms ticks to say anything (< 0.2 s); -1 when unknown. */
static double bench_load_other(bench_load_mark a, bench_load_mark b)
{
    if (a.busy_s < 0 || b.busy_s < 0)
        return -1;
    if (b.wall_s - a.wall_s < 0.2)
        return 0;
    double other = ((b.busy_s - a.busy_s) - (b.own_s - a.own_s)) / (b.wall_s - a.wall_s);
    return other > 0 ? other : 0;
}

/* ---- a group of cases, measured run by run against an anchor --------------------------- */

/* Runs `ops` operations and returns the case's value (ns/op, ops/s, ...). */
typedef double (*bench_fn)(void *ctx, uint64_t ops);

typedef struct bench_case {
    const char *name;
    bench_fn fn;
    void *ctx;
    uint64_t ops;          /* operations per measurement (already scaled) */
    bench_series value;    /* filled by bench_group_run */
    bench_series ratio;    /* value / anchor value, per run */
    int short_run;         /* some measurement had < 1M ops and took < 1 s */
    double other_load;     /* most CPUs other processes used during one of its runs */
} bench_case;

/*
 * Measures cases[0] (the anchor) and cases[1..n-1] bench_runs times each, interleaved run by
 * run, after one warmup pass per case, then prints every case's runs, median, jitter and the
 * median of its same-run ratios to the anchor.
 */
static void bench_group_run(const char *title, const char *unit, const char *fmt,
                            bench_case *cases, int n)
{
    printf("== %s ==\n", title);
    if (n > 16) {
        fprintf(stderr, "bench_group_run: at most 16 cases\n");
        exit(2);
    }
    for (int i = 0; i < n; i++) {
        uint64_t warm = cases[i].ops / 10 > BENCH_MIN_WARMUP ? cases[i].ops / 10 : BENCH_MIN_WARMUP;
        (void)cases[i].fn(cases[i].ctx, warm);
        cases[i].value.n = cases[i].ratio.n = 0;
        cases[i].short_run = 0;
        cases[i].other_load = 0;
    }
    for (int r = 0; r < bench_runs; r++) {
        double v[16];
        for (int k = 0; k < n; k++) {
            int i = (k + r) % n; /* rotate the order: no case is always first */
            bench_load_mark m0 = bench_load_now();
            uint64_t t0 = bench_now_ns();
            v[i] = cases[i].fn(cases[i].ctx, cases[i].ops);
            uint64_t wall = bench_now_ns() - t0;
            double other = bench_load_other(m0, bench_load_now());
            if (other < 0)
                cases[i].other_load = -1; /* unknown (no /proc/stat): stays unknown */
            else if (cases[i].other_load >= 0 && other > cases[i].other_load)
                cases[i].other_load = other;
            if (cases[i].ops < BENCH_MIN_OPS && wall < 1000000000u)
                cases[i].short_run = 1;
        }
        for (int i = 0; i < n; i++) {
            cases[i].value.v[cases[i].value.n++] = v[i];
            cases[i].ratio.v[cases[i].ratio.n++] = v[0] != 0 ? v[i] / v[0] : 0;
        }
    }
    for (int i = 0; i < n; i++) {
        char label[96];
        snprintf(label, sizeof label, "%s%s", cases[i].name, i == 0 ? " (anchor)" : "");
        bench_series_print(label, unit, fmt, &cases[i].value);
        if (i > 0) {
            bench_series_finish(&cases[i].ratio);
            printf("  %-34s ratio to anchor (same run): %.3fx  (ratio jitter %.2f%%)\n", "",
                   cases[i].ratio.median, cases[i].ratio.jitter);
        }
        if (cases[i].other_load > 0.1)
            printf("  %-34s ** other processes used up to %.2f CPUs during a run **\n", "",
                   cases[i].other_load);
        if (cases[i].short_run)
            printf("  %-34s ** SHORT RUN: < 1M ops and < 1 s per measurement **\n", "");
    }
}

/* ---- targets --------------------------------------------------------------------------- */

static int bench_targets_missed;

/* Prints "TARGET <what>: MET|MISSED (<details>)". */
static void bench_target(int met, const char *what, const char *fmt, ...)
{
    char details[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(details, sizeof details, fmt, ap);
    va_end(ap);
    printf("TARGET %-44s %s  (%s)\n", what, met ? "MET" : "MISSED", details);
    if (!met)
        bench_targets_missed++;
}

/* Prints the summary line; the exit status is 0 even when a target is missed (a benchmark
 * reports, it does not gate). */
static int bench_finish(void)
{
    printf("\n%d target(s) missed\n", bench_targets_missed);
    return 0;
}

#endif /* NPROF_BENCH_H */
