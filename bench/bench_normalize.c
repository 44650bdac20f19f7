/*
 * bench/bench_normalize.c: what SQL normalization and fingerprints cost, against libpg_query
 * and a Python regex normalizer.
 *
 * Input: the ORM query corpus of bench/normalize_corpus.h (47 queries, 56 to 434 bytes).  One
 * operation = one query; the loops cycle through the corpus in order, so every measurement
 * covers whole passes over it.  Output of nanoprof goes into a static buffer of
 * NPROF_SQL_NORMALIZED_MAX bytes; a sum of the results is stored into a volatile sink.
 *
 * Measured (ns/query; each case interleaved run by run with the others of its group):
 *   group "corpus", the whole corpus:
 *   - libpg_query: pg_query_normalize + pg_query_fingerprint, results freed  -- the ANCHOR
 *   - nanoprof: nprof_sql_shape (NPROF_SQL_QMARK): normalized text and fingerprint in one pass
 *   - nanoprof: nprof_sql_normalize alone, nprof_sql_fingerprint alone, and the two calls one
 *     after the other (two passes: what a caller that does not use nprof_sql_shape pays)
 *   - Python: bench/normalize_regex.py (precompiled re.sub passes) run as a subprocess,
 *     /usr/bin/python3 normalize_regex.py <corpus file> <passes>; the figure is the one it
 *     prints, timed inside Python around its loop (start-up excluded).  The corpus file is
 *     written from normalize_corpus.h at start-up, each query followed by a NUL byte.
 *   group "size", one short and one long query on their own:
 *   - libpg_query on the 56-byte query (the ANCHOR), nanoprof on it, both on the 434-byte one
 * plus MB/s of input for the nanoprof cases, and the same-run ratios.
 *   group "alloc": malloc, calloc, realloc and memalign calls counted by wrappers defined
 *   here (they replace the libc ones for the whole process and forward to __libc_malloc & co.)
 *   around 1M nanoprof calls, with glibc's mallinfo2() before and after; libpg_query is
 *   counted too, to show the wrappers see a library's allocations.
 *
 * Operation counts, from each case's cost measured at start-up: every measurement does 1M
 * queries, or runs for 2 s by that estimate if 1M queries would take longer (libpg_query
 * and Python: an estimate taken in a slow stretch of a shared machine runs up to 1.9x high
 * here, and the measurement must still last 1 s), and the nanoprof cases run at least 0.3 s
 * (corpus) or 0.2 s (one query) even past 1M queries.
 *
 * Targets: nanoprof normalize + fingerprint >= 10x faster than libpg_query over the corpus,
 * >= 50x faster than the Python regex normalizer, and 0 heap allocations per query.
 *
 * Environment: NPROF_BENCH_PYTHON (default /usr/bin/python3), NPROF_BENCH_REGEX_SCRIPT (default
 * normalize_regex.py next to this source file), NPROF_BENCH_ONLY=corpus,size,alloc.
 *
 * Usage: bench_normalize [scale]   (or NPROF_BENCH_SCALE; NPROF_BENCH_RUNS for the run count)
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pg_query.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "nanoprof/nanoprof.h"
#include "nanoprof/sql.h"
#include "normalize_corpus.h"

/* ---- counting allocator ------------------------------------------------------------------ */

/*
 * These definitions in the executable take the place of libc's for every caller in the process
 * (nanoprof's static library, libpg_query, libc itself).  They forward to glibc's own entry
 * points, so nothing changes but the counter.  The program is single-threaded.
 */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *p);

static uint64_t heap_allocs; /* calls that may allocate: malloc, calloc, realloc, *memalign */
static uint64_t heap_frees;

void *malloc(size_t size)
{
    heap_allocs++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    heap_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    heap_allocs++;
    return __libc_realloc(p, size);
}

void *memalign(size_t alignment, size_t size)
{
    heap_allocs++;
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size)
{
    heap_allocs++;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    heap_allocs++;
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    heap_frees += p != NULL;
    __libc_free(p);
}

/* Bytes in use by malloc (arena + mmapped chunks), or -1 where mallinfo2 does not exist. */
static long long heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

/* ---- the cases --------------------------------------------------------------------------- */

typedef struct corpus_ctx {
    const nc_query *q; /* the queries, cycled through in order */
    size_t n;
} corpus_ctx;

/* Big enough for NPROF_SQL_NORMALIZED_MAX of every query (checked in main). */
static char out_buf[4096];

static double run_np_both(void *vctx, uint64_t ops)
{
    const corpus_ctx *c = vctx;
    uint64_t acc = 0;
    size_t j = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        const nc_query *q = &c->q[j];
        size_t len = 0;
        uint64_t fp = 0;
        acc += (uint64_t)nprof_sql_shape(q->sql, q->len, NPROF_SQL_QMARK, out_buf, sizeof out_buf,
                                         &len, &fp);
        acc += len + fp;
        if (++j == c->n)
            j = 0;
    }
    uint64_t t1 = bench_now_ns();
    bench_sink = acc;
    return (double)(t1 - t0) / (double)ops;
}

/* The same result through the two separate calls: two normalization passes. */
static double run_np_two_calls(void *vctx, uint64_t ops)
{
    const corpus_ctx *c = vctx;
    uint64_t acc = 0;
    size_t j = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        const nc_query *q = &c->q[j];
        size_t len = 0;
        acc += (uint64_t)nprof_sql_normalize(q->sql, q->len, NPROF_SQL_QMARK, out_buf,
                                             sizeof out_buf, &len);
        acc += len + nprof_sql_fingerprint(q->sql, q->len);
        if (++j == c->n)
            j = 0;
    }
    uint64_t t1 = bench_now_ns();
    bench_sink = acc;
    return (double)(t1 - t0) / (double)ops;
}

static double run_np_normalize(void *vctx, uint64_t ops)
{
    const corpus_ctx *c = vctx;
    uint64_t acc = 0;
    size_t j = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        const nc_query *q = &c->q[j];
        size_t len = 0;
        acc += (uint64_t)nprof_sql_normalize(q->sql, q->len, NPROF_SQL_QMARK, out_buf,
                                             sizeof out_buf, &len);
        acc += len;
        if (++j == c->n)
            j = 0;
    }
    uint64_t t1 = bench_now_ns();
    bench_sink = acc;
    return (double)(t1 - t0) / (double)ops;
}

static double run_np_fingerprint(void *vctx, uint64_t ops)
{
    const corpus_ctx *c = vctx;
    uint64_t acc = 0;
    size_t j = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        const nc_query *q = &c->q[j];
        acc += nprof_sql_fingerprint(q->sql, q->len);
        if (++j == c->n)
            j = 0;
    }
    uint64_t t1 = bench_now_ns();
    bench_sink = acc;
    return (double)(t1 - t0) / (double)ops;
}

/* pg_query_normalize + pg_query_fingerprint of one query, results freed; adds to *acc. */
static inline void pg_both(const nc_query *q, uint64_t *acc)
{
    PgQueryNormalizeResult nr = pg_query_normalize(q->sql);
    *acc += nr.error != NULL;
    if (nr.normalized_query)
        *acc += (unsigned char)nr.normalized_query[0];
    pg_query_free_normalize_result(nr);
    PgQueryFingerprintResult fr = pg_query_fingerprint(q->sql);
    *acc += fr.fingerprint + (fr.error != NULL);
    pg_query_free_fingerprint_result(fr);
}

static double run_pg_both(void *vctx, uint64_t ops)
{
    const corpus_ctx *c = vctx;
    uint64_t acc = 0;
    size_t j = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        pg_both(&c->q[j], &acc);
        if (++j == c->n)
            j = 0;
    }
    uint64_t t1 = bench_now_ns();
    bench_sink = acc;
    return (double)(t1 - t0) / (double)ops;
}

/* ---- the Python anchor ----------------------------------------------------------------- */

static const char *python_exe;
static char regex_script[4096];
static char corpus_path[] = "/tmp/bench_normalize_corpus.XXXXXX";
static int corpus_written;

static void remove_corpus_file(void)
{
    if (corpus_written)
        unlink(corpus_path);
}

/* Writes the corpus, each query followed by a NUL, to a new temporary file. */
static int write_corpus_file(void)
{
    int fd = mkstemp(corpus_path);
    if (fd < 0)
        return -1;
    corpus_written = 1;
    atexit(remove_corpus_file);
    for (size_t i = 0; i < NC_COUNT; i++) {
        const nc_query *q = &normalize_corpus[i];
        if (write(fd, q->sql, q->len) != (ssize_t)q->len || write(fd, "", 1) != 1) {
            close(fd);
            return -1;
        }
    }
    return close(fd);
}

/* The script's default place: next to this source file (__FILE__ is absolute under CMake). */
static void find_regex_script(void)
{
    const char *env = getenv("NPROF_BENCH_REGEX_SCRIPT");
    if (env && *env) {
        snprintf(regex_script, sizeof regex_script, "%s", env);
        return;
    }
    const char *file = __FILE__, *slash = strrchr(file, '/');
    int dir_len = slash ? (int)(slash - file) + 1 : 0;
    snprintf(regex_script, sizeof regex_script, "%.*snormalize_regex.py", dir_len, file);
}

/*
 * Runs the script over the corpus file for `passes` passes; returns the ns/query it printed,
 * or -1 (with a message on stderr) when it could not be run.
 */
static double python_run(uint64_t passes)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    char passes_arg[32];
    snprintf(passes_arg, sizeof passes_arg, "%llu", (unsigned long long)passes);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        char *const args[] = {(char *)python_exe, regex_script, corpus_path, passes_arg, NULL};
        execv(python_exe, args);
        _exit(127);
    }
    close(fds[1]);
    char line[512];
    size_t used = 0;
    ssize_t got;
    while ((got = read(fds[0], line + used, sizeof line - 1 - used)) > 0 ||
           (got < 0 && errno == EINTR))
        used += got > 0 ? (size_t)got : 0;
    close(fds[0]);
    line[used] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    double ns;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(line, "%lf", &ns) != 1) {
        fprintf(stderr, "%s %s: failed (status %d), output: %s\n", python_exe, regex_script,
                status, line);
        return -1;
    }
    return ns;
}

static double run_python(void *vctx, uint64_t ops)
{
    (void)vctx;
    uint64_t passes = (ops + NC_COUNT - 1) / NC_COUNT;
    double ns = python_run(passes);
    if (ns < 0)
        exit(1);
    return ns;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/*
 * Operations for one measurement of a case that costs `ns_per_op`: what the harness's rule asks
 * (1M operations, or fewer if they take 1 s; 2 s then, to stay clear of the limit), and
 * at least `seconds` worth; scaled, then rounded up to whole passes of `pass` operations.
 */
static uint64_t ops_for(double ns_per_op, double seconds, uint64_t pass)
{
    double per_s = 1e9 / (ns_per_op > 0.1 ? ns_per_op : 0.1);
    double rule = (double)BENCH_MIN_OPS < 2.0 * per_s ? (double)BENCH_MIN_OPS : 2.0 * per_s;
    double want = seconds * per_s > rule ? seconds * per_s : rule;
    uint64_t ops = bench_ops((uint64_t)want + 1);
    return (ops + pass - 1) / pass * pass;
}

/*
 * ns per operation of a case after a warm-up call: the least of three measurements of `ops`
 * operations (the least disturbed one; an overestimate would make the measurements short).
 */
static double calibrate(bench_fn fn, void *ctx, uint64_t warm_ops, uint64_t ops)
{
    warm_ops = bench_ops(warm_ops); /* scaled too: a callgrind run stays short */
    ops = bench_ops(ops);
    (void)fn(ctx, warm_ops);
    double best = fn(ctx, ops);
    for (int i = 0; i < 2; i++) {
        double v = fn(ctx, ops);
        best = v < best ? v : best;
    }
    return best;
}

/* MB/s (10^6 bytes) of input per run, from ns/query and the bytes per query. */
static void print_mbps(const char *label, const bench_case *c, double bytes_per_query)
{
    bench_series s = {.n = c->value.n};
    for (int r = 0; r < s.n; r++)
        s.v[r] = bytes_per_query / c->value.v[r] * 1e3;
    bench_series_print(label, "MB/s", "%.0f", &s);
}

/* A per-run ratio of two cases of one group (a / b), printed as a series. */
static bench_series print_ratio(const char *label, const bench_case *a, const bench_case *b)
{
    bench_series s = {.n = a->value.n};
    for (int r = 0; r < s.n; r++)
        s.v[r] = a->value.v[r] / b->value.v[r];
    bench_series_print(label, "x", "%.4f", &s);
    return s;
}

static void show(const char *who, const char *text)
{
    printf("    %-12s %s\n", who, text);
}

/* Prints what each normalizer makes of one query (nanoprof in both styles, libpg_query). */
static void show_query(const char *title, const nc_query *q)
{
    size_t len;
    printf("  %s (%zu bytes, %s):\n", title, q->len, q->origin);
    printf("    %-12s %.*s\n", "input", (int)q->len, q->sql);
    nprof_sql_normalize(q->sql, q->len, NPROF_SQL_QMARK, out_buf, sizeof out_buf, &len);
    show("nanoprof ?", out_buf);
    nprof_sql_normalize(q->sql, q->len, NPROF_SQL_DOLLAR, out_buf, sizeof out_buf, &len);
    show("nanoprof $n", out_buf);
    PgQueryNormalizeResult nr = pg_query_normalize(q->sql);
    show("libpg_query", nr.normalized_query ? nr.normalized_query : "(error)");
    pg_query_free_normalize_result(nr);
    printf("    %-12s nanoprof %016llx\n", "fingerprint",
           (unsigned long long)nprof_sql_fingerprint(q->sql, q->len));
}

/* Checks every corpus query with both libraries; returns the number of problems. */
static int check_corpus(size_t *min_len, size_t *max_len, size_t *total)
{
    int problems = 0;
    static char buf2[sizeof out_buf];
    *min_len = SIZE_MAX;
    *max_len = *total = 0;
    for (size_t i = 0; i < NC_COUNT; i++) {
        const nc_query *q = &normalize_corpus[i];
        *min_len = q->len < *min_len ? q->len : *min_len;
        *max_len = q->len > *max_len ? q->len : *max_len;
        *total += q->len;
        if (NPROF_SQL_NORMALIZED_MAX(q->len) > sizeof out_buf) {
            fprintf(stderr, "query %zu: %zu bytes, too long for the output buffer\n", i, q->len);
            exit(1);
        }
        size_t len = 0;
        int rc = nprof_sql_normalize(q->sql, q->len, NPROF_SQL_QMARK, out_buf, sizeof out_buf,
                                     &len);
        uint64_t fp = nprof_sql_fingerprint(q->sql, q->len);
        if (rc != NPROF_OK || fp == 0) {
            printf("  ** query %zu: nprof_sql_normalize %s, fingerprint %016llx **\n", i,
                   nprof_errname(rc), (unsigned long long)fp);
            problems++;
        } else if (nprof_sql_fingerprint(out_buf, len) != fp) {
            printf("  ** query %zu: the fingerprint of its normalized text differs **\n", i);
            problems++;
        } else if (nprof_sql_normalize(out_buf, len, NPROF_SQL_QMARK, buf2, sizeof buf2, NULL) !=
                       NPROF_OK ||
                   strcmp(out_buf, buf2) != 0) {
            printf("  ** query %zu: normalizing its normalized text changes it **\n", i);
            problems++;
        }
        PgQueryNormalizeResult nr = pg_query_normalize(q->sql);
        PgQueryFingerprintResult fr = pg_query_fingerprint(q->sql);
        if (nr.error || fr.error) {
            printf("  ** query %zu: libpg_query: %s **\n", i,
                   (nr.error ? nr.error : fr.error)->message);
            problems++;
        }
        pg_query_free_normalize_result(nr);
        pg_query_free_fingerprint_result(fr);
    }
    return problems;
}

int main(int argc, char **argv)
{
    bench_init(argc, argv, "bench_normalize",
               "SQL normalize + fingerprint per query (anchors: libpg_query, Python re.sub)");

    size_t min_len, max_len, total;
    int problems = check_corpus(&min_len, &max_len, &total);
    double avg_len = (double)total / NC_COUNT;
    const nc_query *shortq = &normalize_corpus[NC_SHORT], *longq = &normalize_corpus[NC_LONG];
    printf("corpus: %zu queries (bench/normalize_corpus.h), %zu to %zu bytes, mean %.1f bytes\n",
           (size_t)NC_COUNT, min_len, max_len, avg_len);
    printf("libpg_query: PostgreSQL %s parser; checks: %d problem(s)\n\n", PG_VERSION, problems);
    show_query("short query", shortq);
    show_query("long query", longq);
    printf("\n");

    corpus_ctx all = {normalize_corpus, NC_COUNT};
    corpus_ctx one_short = {shortq, 1}, one_long = {longq, 1};
    const uint64_t million = 1000000u;

    python_exe = getenv("NPROF_BENCH_PYTHON");
    if (!python_exe || !*python_exe)
        python_exe = "/usr/bin/python3";
    find_regex_script();

    /* ---- the whole corpus ---- */
    if (bench_selected("corpus")) {
        int have_python = access(python_exe, X_OK) == 0 && access(regex_script, R_OK) == 0;
        if (have_python && write_corpus_file() != 0) {
            fprintf(stderr, "cannot write the corpus file %s\n", corpus_path);
            have_python = 0;
        }
        /* Python's cost read a third high from 40 passes (its runs then fell short of 1 s),
         * and not from 150. */
        double py_ns = have_python ? python_run(150) : -1;
        if (py_ns < 0) {
            printf("** the Python anchor cannot run (%s %s): set NPROF_BENCH_PYTHON / "
                   "NPROF_BENCH_REGEX_SCRIPT **\n",
                   python_exe, regex_script);
            have_python = 0;
        }
        /* Here libpg_query ran 60% slower over its first few thousand queries than later
         * (the estimate was 18.9 us, the runs 11-12 us, so its runs were short of 1 s):
         * warmed with 100 passes, the estimate is within a few percent. */
        double pg_ns = calibrate(run_pg_both, &all, 100 * NC_COUNT, 20 * NC_COUNT);
        double np_ns = calibrate(run_np_both, &all, 100 * NC_COUNT, 1000 * NC_COUNT);
        bench_case cases[] = {
            {.name = "libpg_query normalize+fingerprint", .fn = run_pg_both, .ctx = &all,
             .ops = ops_for(pg_ns, 0, NC_COUNT)},
            {.name = "nanoprof normalize+fingerprint (nprof_sql_shape)", .fn = run_np_both,
             .ctx = &all,
             .ops = ops_for(np_ns, 0.3, NC_COUNT)},
            {.name = "nanoprof normalize alone", .fn = run_np_normalize, .ctx = &all,
             .ops = ops_for(np_ns, 0.3, NC_COUNT)},
            {.name = "nanoprof fingerprint alone", .fn = run_np_fingerprint, .ctx = &all,
             .ops = ops_for(np_ns, 0.3, NC_COUNT)},
            {.name = "nanoprof normalize, then fingerprint", .fn = run_np_two_calls,
             .ctx = &all, .ops = ops_for(2 * np_ns, 0.3, NC_COUNT)},
            {.name = "Python re.sub normalizer", .fn = run_python, .ctx = NULL,
             .ops = have_python ? ops_for(py_ns, 0, NC_COUNT) : 0},
        };
        enum { PG, NP, NP_NORM, NP_FP, NP_TWO, PY };
        int ncases = have_python ? 6 : 5;
        printf("queries per measurement: libpg_query %llu, nanoprof %llu / %llu / %llu, "
               "Python %llu (%llu passes)\n",
               (unsigned long long)cases[PG].ops, (unsigned long long)cases[NP].ops,
               (unsigned long long)cases[NP_NORM].ops, (unsigned long long)cases[NP_FP].ops,
               (unsigned long long)cases[PY].ops,
               (unsigned long long)(cases[PY].ops / NC_COUNT));
        if (have_python)
            printf("(Python runs in a child process: the harness counts its CPU as "
                   "\"other processes\" during the Python case)\n");
        bench_group_run("whole corpus, per query", "ns/query", "%.1f", cases, ncases);

        printf("\n  input throughput, whole corpus (%.1f bytes/query):\n", avg_len);
        print_mbps("nanoprof normalize+fingerprint", &cases[NP], avg_len);
        print_mbps("nanoprof normalize alone", &cases[NP_NORM], avg_len);
        print_mbps("nanoprof fingerprint alone", &cases[NP_FP], avg_len);
        print_mbps("nanoprof normalize, then fingerprint", &cases[NP_TWO], avg_len);
        print_mbps("libpg_query normalize+fingerprint", &cases[PG], avg_len);
        bench_series vs_py = {0};
        if (have_python) {
            printf("\n  against the Python normalizer (same runs):\n");
            vs_py = print_ratio("nanoprof norm+fp / Python", &cases[NP], &cases[PY]);
            print_ratio("nanoprof normalize / Python", &cases[NP_NORM], &cases[PY]);
            print_ratio("libpg_query / Python", &cases[PG], &cases[PY]);
        }
        printf("\n");
        double r = cases[NP].ratio.median;
        bench_target(r > 0 && r <= 0.1, "nanoprof >= 10x faster than libpg_query",
                     "%.1fx: %.1f vs %.1f ns/query", r > 0 ? 1 / r : 0, cases[NP].value.median,
                     cases[PG].value.median);
        if (have_python)
            bench_target(vs_py.median > 0 && vs_py.median <= 0.02,
                         "nanoprof >= 50x faster than Python re.sub",
                         "%.1fx: %.1f vs %.1f ns/query", vs_py.median > 0 ? 1 / vs_py.median : 0,
                         cases[NP].value.median, cases[PY].value.median);
        else
            bench_target(0, "nanoprof >= 50x faster than Python re.sub",
                         "not measured: the Python anchor could not run");
        printf("\n");
    }

    /* ---- one short and one long query ---- */
    if (bench_selected("size")) {
        double pg_s = calibrate(run_pg_both, &one_short, 4000, 2000); /* warm-up: see above */
        double pg_l = calibrate(run_pg_both, &one_long, 1000, 500);
        double np_s = calibrate(run_np_both, &one_short, 10000, 200000);
        double np_l = calibrate(run_np_both, &one_long, 2000, 40000);
        bench_case cases[] = {
            {.name = "libpg_query, short query", .fn = run_pg_both, .ctx = &one_short,
             .ops = ops_for(pg_s, 0, 1)},
            {.name = "nanoprof, short query", .fn = run_np_both, .ctx = &one_short,
             .ops = ops_for(np_s, 0.2, 1)},
            {.name = "libpg_query, long query", .fn = run_pg_both, .ctx = &one_long,
             .ops = ops_for(pg_l, 0, 1)},
            {.name = "nanoprof, long query", .fn = run_np_both, .ctx = &one_long,
             .ops = ops_for(np_l, 0.2, 1)},
        };
        enum { PG_S, NP_S, PG_L, NP_L };
        printf("normalize + fingerprint of the short (%zu-byte) and the long (%zu-byte) query\n",
               shortq->len, longq->len);
        bench_group_run("one query, per query", "ns/query", "%.1f", cases, 4);
        printf("\n");
        print_mbps("nanoprof, short query", &cases[NP_S], (double)shortq->len);
        print_mbps("nanoprof, long query", &cases[NP_L], (double)longq->len);
        bench_series long_ratio = print_ratio("nanoprof / libpg_query, long", &cases[NP_L],
                                              &cases[PG_L]);
        printf("\n  per size, medians: short %zu B: nanoprof %.1f ns, libpg_query %.0f ns (%.1fx)"
               "\n                     long %zu B: nanoprof %.1f ns, libpg_query %.0f ns (%.1fx)\n\n",
               shortq->len, cases[NP_S].value.median, cases[PG_S].value.median,
               1 / cases[NP_S].ratio.median, longq->len, cases[NP_L].value.median,
               cases[PG_L].value.median, 1 / long_ratio.median);
    }

    /* ---- heap allocations ---- */
    if (bench_selected("alloc")) {
        printf("== heap allocations (counting malloc/calloc/realloc/memalign wrappers, "
               "mallinfo2) ==\n");
        corpus_ctx *ctx = &all;
        uint64_t ops = bench_ops(million);
        ops = (ops + NC_COUNT - 1) / NC_COUNT * NC_COUNT;
        run_np_both(ctx, NC_COUNT); /* anything lazy happens before the count */
        long long in_use0 = heap_in_use();
        uint64_t a0 = heap_allocs, f0 = heap_frees;
        run_np_both(ctx, ops);
        uint64_t allocs = heap_allocs - a0, frees = heap_frees - f0;
        long long in_use1 = heap_in_use();
        double per_query = (double)allocs / (double)ops;
        printf("  nanoprof normalize+fingerprint: %llu queries: %llu allocation calls, %llu frees, "
               "bytes in use %+lld (mallinfo2)\n",
               (unsigned long long)ops, (unsigned long long)allocs, (unsigned long long)frees,
               in_use0 >= 0 ? in_use1 - in_use0 : 0);
        uint64_t pg_ops = bench_ops(10000) < 10000 ? bench_ops(10000) : 10000;
        uint64_t pa0 = heap_allocs;
        run_pg_both(ctx, pg_ops);
        double pg_per_query = (double)(heap_allocs - pa0) / (double)pg_ops;
        printf("  libpg_query (control: the counter sees a library's allocations): %llu queries, "
               "%.1f allocation calls per query\n",
               (unsigned long long)pg_ops, pg_per_query);
        printf("  heap allocations per query: %g\n\n", per_query);
        /* Proven only if the counter demonstrably works (the control allocates). */
        bench_target(allocs == 0 && frees == 0 && pg_per_query > 0, "no heap allocation per query",
                     "%llu calls over %llu queries; control libpg_query %.1f/query",
                     (unsigned long long)allocs, (unsigned long long)ops, pg_per_query);
    }
    return bench_finish();
}
