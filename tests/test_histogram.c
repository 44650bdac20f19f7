/*
 * tests/test_histogram.c: the log-linear latency histogram against exact percentiles of
 * random data: every quantile within 1 % of the exact nearest-rank value, for several
 * distributions and sizes, merged from several shards as the dashboard merges them.
 */
#include "test.h"

#include "middleware/histogram.h"
#include "nanoprof/nanoprof.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double uniform01(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest rank: the value at 1-based rank ceil(q * n) of the sorted data */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double q)
{
    double r = q * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

static double rel_error(uint64_t est, uint64_t exact)
{
    double d = (double)est - (double)exact;
    return (d < 0 ? -d : d) / (exact ? (double)exact : 1.0);
}

/* 2^x for 0 <= x < 62, roughly (the data only has to be spread, not exact): no libm. */
static double exp2_rough(double x)
{
    if (x < 0)
        x = 0;
    int i = (int)x;
    double f = x - i;
    return (double)(1ull << i) * (1 + f * (0.6931 + f * 0.2402));
}

enum dist { LOGNORMAL, UNIFORM_WIDE, BIMODAL, TINY };

static uint64_t draw(enum dist d)
{
    switch (d) {
    case LOGNORMAL: { /* median ~1 ms, long tail: 2^(20 + 1.7 z), z ~ normal (12 uniforms) */
        double z = -6;
        for (int i = 0; i < 12; i++)
            z += uniform01();
        return (uint64_t)exp2_rough(20 + 1.7 * z) + 1;
    }
    case UNIFORM_WIDE: /* 1 us .. 8 s on a log scale */
        return (uint64_t)exp2_rough(10 + 23 * uniform01());
    case BIMODAL:
        return uniform01() < 0.9 ? 200000 + rng() % 50000 : 80000000 + rng() % 20000000;
    case TINY:
        return rng() % 300; /* the exact linear range and the first log groups */
    }
    return 0;
}

static int check(enum dist d, size_t n, int shards)
{
    uint64_t *v = malloc(n * sizeof *v);
    nprof_runtime *rt = NULL;
    nprof_config c;
    nprof_config_init(&c);
    c.allocator = NPROF_ALLOCATOR_LIBC;
    if (!v || nprof_runtime_create(&c, &rt))
        return 0;
    nprof__alloc *a = NULL;
    /* the histogram takes its groups from an allocator; a private one is enough here */
    static nprof__alloc alloc;
    nprof__alloc_init(&alloc, NPROF_ALLOCATOR_LIBC);
    a = &alloc;
    nprof__hist *h = calloc((size_t)shards, sizeof *h);
    nprof__hist_flat *f = malloc(sizeof *f);
    f->used = 0;
    nprof__hist_flat_clear(f);
    uint64_t max = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = draw(d);
        max = v[i] > max ? v[i] : max;
        nprof__hist_add(&h[i % (size_t)shards], a, v[i]);
    }
    for (int s = 0; s < shards; s++)
        nprof__hist_flat_merge(f, &h[s]);
    f->max = max;
    qsort(v, n, sizeof *v, cmp_u64);
    int ok = f->count == n;
    static const double qs[] = {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};
    double worst = 0;
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        uint64_t exact = exact_quantile(v, n, qs[k]);
        uint64_t est = nprof__hist_flat_quantile(f, qs[k]);
        double e = rel_error(est, exact);
        worst = e > worst ? e : worst;
        if (e > 0.01) {
            fprintf(stderr, "dist %d n %zu q %.3f: exact %llu estimate %llu (%.3f%%)\n", (int)d, n,
                    qs[k], (unsigned long long)exact, (unsigned long long)est, e * 100);
            ok = 0;
        }
    }
    printf("     dist %d, %zu values, %d shards: worst relative error %.3f%%\n", (int)d, n, shards,
           worst * 100);
    for (int s = 0; s < shards; s++)
        nprof__hist_free(&h[s], a);
    ok = ok && nprof__counter_sum(&alloc.bytes) == 0; /* every group given back */
    nprof__alloc_fini(&alloc);
    free(h);
    free(f);
    free(v);
    nprof_runtime_destroy(rt);
    return ok;
}

TEST(quantiles_within_one_percent_lognormal)
{
    ASSERT_TRUE(check(LOGNORMAL, 200000, 4));
    ASSERT_TRUE(check(LOGNORMAL, 37, 1));
}

TEST(quantiles_within_one_percent_wide_uniform)
{
    ASSERT_TRUE(check(UNIFORM_WIDE, 100000, 16));
}

TEST(quantiles_within_one_percent_bimodal)
{
    ASSERT_TRUE(check(BIMODAL, 50000, 3));
}

TEST(small_values_are_exact)
{
    ASSERT_TRUE(check(TINY, 10000, 2));
    nprof__hist_flat *f = malloc(sizeof *f);
    f->used = 0;
    nprof__hist_flat_clear(f);
    for (uint64_t i = 0; i < 64; i++)
        nprof__hist_flat_add(f, i);
    ASSERT_EQ_U64(nprof__hist_flat_quantile(f, 0.5), 31);
    ASSERT_EQ_U64(nprof__hist_flat_quantile(f, 1.0), 63);
    free(f);
}

TEST(bucket_bounds_cover_the_whole_range)
{
    /* every value lands in a bucket that holds it, and buckets are at most 1/64 wide */
    uint64_t probes[] = {0, 1, 63, 64, 65, 127, 128, 1000, 999999, 1u << 31, (1ull << 40) + 12345,
                         UINT64_MAX / 3, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        unsigned g, s;
        nprof__hist_index(probes[i], &g, &s);
        ASSERT_TRUE(g < NPROF__HIST_GROUPS && s < NPROF__HIST_SUB);
        uint64_t lo = nprof__hist_bucket_low(g, s), w = nprof__hist_bucket_width(g);
        ASSERT_U64_OP(lo, <=, probes[i]);
        ASSERT_U64_OP(probes[i] - lo, <, w);
        if (g)
            ASSERT_U64_OP(w * 64, <=, lo);
    }
}

TEST(count_le_is_cumulative)
{
    nprof__hist_flat *f = malloc(sizeof *f);
    f->used = 0;
    nprof__hist_flat_clear(f);
    for (uint64_t i = 1; i <= 1000; i++)
        nprof__hist_flat_add(f, i * 1000);
    /* within a bucket the values are taken as spread evenly: within 1 % of the truth */
    uint64_t all = nprof__hist_flat_count_le(f, 1000000);
    ASSERT_TRUE(all >= 990 && all <= 1000);
    ASSERT_EQ_U64(nprof__hist_flat_count_le(f, 1100000), 1000);
    uint64_t half = nprof__hist_flat_count_le(f, 500000);
    ASSERT_TRUE(half >= 495 && half <= 505);
    ASSERT_EQ_U64(nprof__hist_flat_count_le(f, 999), 0);
    free(f);
}

TEST(empty_histogram_gives_zero)
{
    nprof__hist_flat *f = malloc(sizeof *f);
    f->used = 0;
    nprof__hist_flat_clear(f);
    ASSERT_EQ_U64(nprof__hist_flat_quantile(f, 0.99), 0);
    free(f);
}

/* The charts' coarse scale: bounds increasing, each value inside the bucket it maps to, each
 * fine bucket inside one coarse bucket, and quantiles within a quarter of the fine ones. */
TEST(coarse_scale_holds_every_value_and_folds_fine_buckets_exactly)
{
    ASSERT_EQ_INT(NPROF__HIST_COARSE, 122);
    ASSERT_EQ_U64(nprof__hist_coarse_low(0), 0);
    ASSERT_EQ_U64(nprof__hist_coarse_low(1), 1024);
    ASSERT_EQ_U64(nprof__hist_coarse_low(2), 1280);
    for (unsigned i = 1; i < NPROF__HIST_COARSE; i++)
        ASSERT_U64_OP(nprof__hist_coarse_low(i - 1), <, nprof__hist_coarse_low(i));
    ASSERT_EQ_U64(nprof__hist_coarse_low(NPROF__HIST_COARSE - 1), 1ull << 40);
    for (int k = 0; k < 100000; k++) {
        uint64_t v = rng() >> (rng() % 64);
        unsigned i = nprof__hist_coarse_index(v);
        ASSERT_U64_OP(nprof__hist_coarse_low(i), <=, v);
        if (i + 1 < NPROF__HIST_COARSE)
            ASSERT_U64_OP(v, <, nprof__hist_coarse_low(i + 1));
    }
    nprof__hist_flat *f = calloc(1, sizeof *f);
    ASSERT_TRUE(f);
    uint64_t direct[NPROF__HIST_COARSE] = {0}, folded[NPROF__HIST_COARSE] = {0};
    for (int k = 0; k < 20000; k++) {
        uint64_t v = (uint64_t)exp2_rough(8 + uniform01() * 30);
        nprof__hist_flat_add(f, v);
        direct[nprof__hist_coarse_index(v)]++;
    }
    nprof__hist_flat_coarse(f, folded);
    for (unsigned i = 0; i < NPROF__HIST_COARSE; i++)
        ASSERT_EQ_U64(folded[i], direct[i]);
    uint64_t fine = nprof__hist_flat_quantile(f, 0.95);
    uint64_t coarse = nprof__hist_coarse_quantile(folded, f->count, 0.95);
    ASSERT_TRUE(rel_error(coarse, fine) <= 0.25);
    ASSERT_EQ_U64(nprof__hist_coarse_quantile(folded, 0, 0.95), 0);
    free(f);
}

int main(void)
{
    RUN(quantiles_within_one_percent_lognormal);
    RUN(quantiles_within_one_percent_wide_uniform);
    RUN(quantiles_within_one_percent_bimodal);
    RUN(small_values_are_exact);
    RUN(bucket_bounds_cover_the_whole_range);
    RUN(count_le_is_cumulative);
    RUN(empty_histogram_gives_zero);
    RUN(coarse_scale_holds_every_value_and_folds_fine_buckets_exactly);
    return TEST_SUMMARY();
}
