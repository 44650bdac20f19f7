/*
 * bench/bench_store.c: how fast finished profiles go into the store, and how that scales.
 *
 * One runtime from nprof_config_init() defaults (store capacity opt.max_history = 1000, so
 * after the warmup every push evicts, and recycles, the oldest profile: the steady state of a
 * long-running server).  One operation = nprof_request_begin + nprof_request_end(200) +
 * nprof_store_push(nprof_runtime_store(rt), p): pushing an already-ended profile, with the
 * cost of getting one (from the runtime's pool) included.
 *
 * Measured, in pushes per second: total operations / wall time, from the first thread's
 * start (a barrier releases all threads at once) to the last thread's end, each thread
 * reading the clock itself:
 *   - 1 thread pushing into the runtime's store                             -- the ANCHOR
 *   - 2 threads pushing into the same runtime's store (each as many operations as the anchor)
 *   - for diagnosis: 2 threads of the same runtime, each pushing into a store of its own
 *     (nprof_store_create, same capacity), which shares everything but the ring
 * Interleaved run by run; the ratio is the same-run pushes/s ratio to the 1-thread anchor.
 * Before each shared-store 2-thread measurement a probe measures the machine's cross-core
 * cache-line round trip, printed per run: what two threads sharing anything pay, and on a
 * virtual machine not a constant.
 *
 * Target: 2 threads / 1 thread >= 1.6x (the machine has 2 cores).
 *
 * Usage: bench_store [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"

#define STORE_OPS 5000000u /* operations per thread per measurement */
#define MAX_THREADS 2

static const char PATH[] = "/api/v1/books/42";

typedef struct store_setup {
    nprof_runtime *rt;
    int threads;
    nprof_store *stores[MAX_THREADS]; /* the store each thread pushes into */
    bench_series round_trip;          /* cross-core probe before each measurement, ns */
} store_setup;

typedef struct worker {
    _Alignas(64) nprof_runtime *rt; /* one cache line per worker */
    nprof_store *store;
    uint64_t ops;
    pthread_barrier_t *start;
    uint64_t failures;
    uint64_t t_start, t_end; /* this thread's own first and last instants */
} worker;

static void *push_loop(void *arg)
{
    worker *w = arg;
    uint64_t failures = 0;
    pthread_barrier_wait(w->start);
    w->t_start = bench_now_ns();
    for (uint64_t i = 0; i < w->ops; i++) {
        nprof_profile *p;
        if (nprof_request_begin(w->rt, "GET", 3, PATH, sizeof PATH - 1, 0, &p) != NPROF_OK) {
            failures++;
            continue;
        }
        nprof_request_end(p, 200);
        failures += nprof_store_push(w->store, p) != NPROF_OK;
    }
    w->t_end = bench_now_ns();
    w->failures = failures;
    return NULL;
}

/*
 * The machine's cross-core cache-line round trip: two threads hand one atomic back and forth.
 * Everything two threads share through the store costs such transfers, and on a virtual
 * machine this latency is not a constant (the hypervisor moves virtual CPUs), so it is
 * measured next to every 2-thread measurement.
 */
#define PROBE_TRIPS 200000
static _Alignas(64) _Atomic uint64_t probe_flag;

static void *probe_pong(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < PROBE_TRIPS; i++) {
        while (atomic_load_explicit(&probe_flag, memory_order_acquire) != 2 * i + 1) {
        }
        atomic_store_explicit(&probe_flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static double probe_round_trip_ns(void)
{
    pthread_t t;
    atomic_store(&probe_flag, 0);
    if (pthread_create(&t, NULL, probe_pong, NULL) != 0)
        return -1;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < PROBE_TRIPS; i++) {
        atomic_store_explicit(&probe_flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&probe_flag, memory_order_acquire) != 2 * i + 2) {
        }
    }
    uint64_t t1 = bench_now_ns();
    pthread_join(t, NULL);
    return (double)(t1 - t0) / PROBE_TRIPS;
}

/* Runs `ops` operations on each of the setup's threads; returns pushes per second. */
static double run_push(void *ctx, uint64_t ops)
{
    store_setup *s = ctx;
    /* Scaled-down runs are for callgrind, which runs one thread at a time: no spinning. */
    if (s->threads > 1 && s->round_trip.n < BENCH_MAX_RUNS && bench_scale >= 1.0)
        s->round_trip.v[s->round_trip.n++] = probe_round_trip_ns();
    pthread_t tid[MAX_THREADS];
    worker w[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)s->threads + 1);
    for (int i = 0; i < s->threads; i++) {
        w[i] = (worker){.rt = s->rt, .store = s->stores[i], .ops = ops, .start = &start};
        if (pthread_create(&tid[i], NULL, push_loop, &w[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&start); /* every thread exists: go */
    uint64_t failures = 0, t0 = UINT64_MAX, t1 = 0;
    for (int i = 0; i < s->threads; i++) {
        pthread_join(tid[i], NULL);
        failures += w[i].failures;
        t0 = w[i].t_start < t0 ? w[i].t_start : t0; /* from the first thread's start */
        t1 = w[i].t_end > t1 ? w[i].t_end : t1;     /* to the last thread's end */
    }
    pthread_barrier_destroy(&start);
    if (failures) {
        fprintf(stderr, "%llu operations failed\n", (unsigned long long)failures);
        exit(1);
    }
    return (double)ops * s->threads / ((double)(t1 - t0) / 1e9);
}

static uint64_t ctl_uint(nprof_runtime *rt, const char *name)
{
    nprof_ctl_value v;
    return nprof_ctl_get(rt, name, &v) == NPROF_OK ? v.u : (uint64_t)-1;
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_store",
               "store pushes (begin + end + push) per second, 1 vs 2 threads");

    nprof_config cfg;
    nprof_config_init(&cfg);
    nprof_runtime *rt;
    if (nprof_runtime_create(&cfg, &rt) != NPROF_OK) {
        fprintf(stderr, "nprof_runtime_create: %s\n", nprof_last_error_detail());
        return 1;
    }
    nprof_store *shared = nprof_runtime_store(rt), *own[MAX_THREADS];
    for (int i = 0; i < MAX_THREADS; i++) {
        if (nprof_store_create(rt, nprof_store_capacity(shared), &own[i]) != NPROF_OK) {
            fprintf(stderr, "nprof_store_create failed\n");
            return 1;
        }
    }
    nprof_ctl_value alloc;
    nprof_ctl_get(rt, "stats.memory.allocator", &alloc);
    printf("runtime: allocator %s, store capacity %u, %ld online CPUs\n", alloc.s,
           nprof_store_capacity(shared), sysconf(_SC_NPROCESSORS_ONLN));

    store_setup one = {.rt = rt, .threads = 1, .stores = {shared}};
    store_setup two = {.rt = rt, .threads = 2, .stores = {shared, shared}};
    store_setup two_own = {.rt = rt, .threads = 2, .stores = {own[0], own[1]}};
    uint64_t ops = bench_ops(STORE_OPS);
    bench_case cases[] = {
        {.name = "1 thread, runtime store", .fn = run_push, .ctx = &one, .ops = ops},
        {.name = "2 threads, same runtime store", .fn = run_push, .ctx = &two, .ops = ops},
        {.name = "2 threads, a store each (diag.)", .fn = run_push, .ctx = &two_own, .ops = ops},
    };
    printf("%llu operations per thread per measurement\n", (unsigned long long)ops);
    bench_group_run("begin + end + nprof_store_push", "pushes/s", "%.4g", cases, 3);
    /* The probe ran before the warmup and before each timed 2-thread measurement of the
     * shared store: drop the warmup's, keep one per run. */
    if (two.round_trip.n > 1) {
        bench_series trip = {.n = two.round_trip.n - 1};
        memcpy(trip.v, two.round_trip.v + 1, (size_t)trip.n * sizeof trip.v[0]);
        bench_series_print("cross-core round trip (probe)", "ns", "%.0f", &trip);
    }

    printf("\n  per push: 1 thread %.1f ns, 2 threads %.1f ns per push per thread\n",
           1e9 / cases[0].value.median, 2e9 / cases[1].value.median);
    printf("  store: pushed %llu, size %llu of %llu; memory %llu B in %llu blocks (peak %llu B)\n\n",
           (unsigned long long)ctl_uint(rt, "stats.store.pushed"),
           (unsigned long long)ctl_uint(rt, "stats.store.size"),
           (unsigned long long)ctl_uint(rt, "stats.store.capacity"),
           (unsigned long long)ctl_uint(rt, "stats.memory.bytes"),
           (unsigned long long)ctl_uint(rt, "stats.memory.blocks"),
           (unsigned long long)ctl_uint(rt, "stats.memory.peak_bytes"));

    bench_target(cases[1].ratio.median >= 1.6, "2 threads / 1 thread >= 1.6x",
                 "%.3fx: %.4g vs %.4g pushes/s", cases[1].ratio.median, cases[1].value.median,
                 cases[0].value.median);

    for (int i = 0; i < MAX_THREADS; i++)
        nprof_store_destroy(own[i]);
    nprof_runtime_destroy(rt);
    return bench_finish();
}
