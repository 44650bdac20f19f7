/*
 * tests/test_alloc.c: the allocator layer as seen through the public API, in a process that
 * has no jemalloc linked in (the static library and libc only).
 *
 * Covers: which allocator serves the runtime and why (libc forced, auto, jemalloc demanded),
 * NANOPROF_CONF, the byte accounting behind stats.memory.* against what profiles report,
 * and the per-profile memory bound (max_queries, max_profile_bytes).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "runtime/profile.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* A 200-byte query text that differs by `i`. */
static void make_sql(char sql[200], unsigned i)
{
    memset(sql, 'x', 200);
    int n = snprintf(sql, 200, "SELECT * FROM t WHERE id = %u /*", i);
    sql[n] = ' ';
    memcpy(sql + 198, "*/", 2);
}

/* Begins a request, records `queries` 200-byte queries, ends it.  NULL on any failure. */
static nprof_profile *profile_with_queries(nprof_runtime *rt, unsigned queries)
{
    nprof_profile *p = NULL;
    if (nprof_request_begin(rt, "GET", 3, "/items", 6, 0, &p) != NPROF_OK)
        return NULL;
    char sql[200];
    for (unsigned i = 0; i < queries; i++) {
        make_sql(sql, i);
        nprof_query q = {.sql = sql, .sql_len = sizeof sql, .duration_ns = 1000 + i};
        int rc = nprof_query_record(p, &q);
        if (rc != NPROF_OK && rc != NPROF_ELIMIT) {
            nprof_request_discard(p);
            return NULL;
        }
    }
    if (nprof_request_end(p, 200) != NPROF_OK) {
        nprof_request_discard(p);
        return NULL;
    }
    return p;
}

/* memory_bytes of a profile, or SIZE_MAX. */
static size_t profile_bytes(const nprof_profile *p)
{
    nprof_profile_info info;
    return nprof_profile_get_info(p, &info) == NPROF_OK ? info.memory_bytes : SIZE_MAX;
}

/* ---- which allocator ---------------------------------------------------------------------- */

TEST(jemalloc_is_not_in_this_process)
{
    /* The premise of the tests below: this program links no jemalloc. */
    ASSERT_TRUE(dlsym(RTLD_DEFAULT, "mallocx") == NULL);
    ASSERT_TRUE(dlsym(RTLD_DEFAULT, "sdallocx") == NULL);
}

TEST(allocator_libc_is_reported_with_a_reason)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    const char *name = ctl_str(rt, "stats.memory.allocator");
    const char *reason = ctl_str(rt, "stats.memory.allocator_reason");
    const char *opt = ctl_str(rt, "opt.allocator");
    nprof_ctl_value v;
    int arena_rc = nprof_ctl_get(rt, "stats.memory.arena", &v);
    int resident_rc = nprof_ctl_get(rt, "stats.memory.arena_resident_bytes", &v);
    nprof_runtime_destroy(rt);

    ASSERT_TRUE(name != NULL && reason != NULL && opt != NULL);
    ASSERT_STR(name, "libc");
    ASSERT_STR(opt, "libc");
    ASSERT_TRUE(reason[0] != '\0');
    ASSERT_TRUE(strstr(reason, "libc") != NULL);
    /* The arena names are jemalloc-only. */
    ASSERT_EQ_INT(arena_rc, NPROF_ENOENT);
    ASSERT_EQ_INT(resident_rc, NPROF_ENOENT);
}

static int visit_collect(void *user, const char *name, const nprof_ctl_value *value)
{
    (void)value;
    int *flags = user;
    if (!strcmp(name, "stats.memory.allocator"))
        flags[0]++;
    if (!strcmp(name, "stats.memory.allocator_reason"))
        flags[1]++;
    if (!strcmp(name, "stats.memory.arena") || !strcmp(name, "stats.memory.arena_resident_bytes"))
        flags[2]++;
    if (strncmp(name, "stats.memory.", 13) != 0)
        flags[3]++;
    return 0;
}

TEST(foreach_lists_memory_names_that_apply_to_libc)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    int flags[4] = {0, 0, 0, 0};
    int rc = nprof_ctl_foreach(rt, "stats.memory.", visit_collect, flags);
    nprof_runtime_destroy(rt);
    ASSERT_OK(rc);
    ASSERT_EQ_INT(flags[0], 1);
    ASSERT_EQ_INT(flags[1], 1);
    ASSERT_EQ_INT(flags[2], 0); /* jemalloc-only names are skipped, not listed empty */
    ASSERT_EQ_INT(flags[3], 0); /* the prefix is honoured */
}

TEST(auto_mode_without_jemalloc_linked_is_consistent_with_its_reason)
{
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    const char *name = ctl_str(rt, "stats.memory.allocator");
    const char *reason = ctl_str(rt, "stats.memory.allocator_reason");
    const char *opt = ctl_str(rt, "opt.allocator");
    char name_copy[32] = "", reason_copy[256] = "";
    if (name)
        snprintf(name_copy, sizeof name_copy, "%s", name);
    if (reason)
        snprintf(reason_copy, sizeof reason_copy, "%s", reason);
    nprof_ctl_value v;
    int arena_rc = nprof_ctl_get(rt, "stats.memory.arena", &v);
    nprof_runtime_destroy(rt);

    ASSERT_TRUE(name && reason && opt);
    ASSERT_STR(opt, "auto");
    ASSERT_TRUE(reason_copy[0] != '\0');
    printf("     auto: allocator=%s reason=\"%s\"\n", name_copy, reason_copy);
    /* Whether dlopen() of libjemalloc.so.2 can work here, asked independently. */
    void *probe = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!strcmp(name_copy, "libc")) {
        /* Fell back: the reason says dlopen failed, and jemalloc was not left loaded. */
        ASSERT_TRUE(strstr(reason_copy, "libjemalloc.so.2") != NULL);
        ASSERT_TRUE(strstr(reason_copy, "failed") != NULL);
        ASSERT_EQ_INT(arena_rc, NPROF_ENOENT);
        ASSERT_TRUE(probe == NULL);
    } else {
        /* dlopen(libjemalloc.so.2) worked: a dedicated arena was created and named. */
        ASSERT_STR(name_copy, "jemalloc");
        ASSERT_TRUE(strstr(reason_copy, "jemalloc arena") != NULL);
        ASSERT_EQ_INT(arena_rc, NPROF_OK);
        ASSERT_TRUE(probe != NULL);
    }
    if (probe)
        dlclose(probe);
}

TEST(forcing_jemalloc_when_auto_chose_libc_is_unsupported)
{
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    const char *name = ctl_str(rt, "stats.memory.allocator");
    int auto_is_libc = name && !strcmp(name, "libc");
    nprof_runtime_destroy(rt);

    nprof_config cfg;
    nprof_config_init(&cfg);
    ASSERT_OK(nprof_config_set(&cfg, "allocator", "jemalloc"));
    ASSERT_EQ_INT(cfg.allocator, NPROF_ALLOCATOR_JEMALLOC);
    rt = (nprof_runtime *)&cfg; /* must be overwritten */
    int rc = nprof_runtime_create(&cfg, &rt);
    if (auto_is_libc) {
        ASSERT_EQ_INT(rc, NPROF_EUNSUPPORTED);
        ASSERT_TRUE(rt == NULL);
        const char *detail = nprof_last_error_detail();
        ASSERT_TRUE(detail != NULL && detail[0] != '\0');
        ASSERT_TRUE(strstr(detail, "jemalloc") != NULL);
    } else {
        ASSERT_OK(rc);
        ASSERT_STR(ctl_str(rt, "stats.memory.allocator"), "jemalloc");
        nprof_runtime_destroy(rt);
    }
}

/* ---- NANOPROF_CONF ------------------------------------------------------------------------ */

TEST(nanoprof_conf_allocator_libc_is_honoured)
{
    /* The struct asks for jemalloc (unavailable here); the environment wins. */
    nprof_config cfg;
    nprof_config_init(&cfg);
    cfg.allocator = NPROF_ALLOCATOR_JEMALLOC;
    ASSERT_OK(setenv("NANOPROF_CONF", "allocator=libc, max_queries = 7", 1));
    nprof_runtime *rt = NULL;
    int rc = nprof_runtime_create(&cfg, &rt);
    unsetenv("NANOPROF_CONF");
    ASSERT_OK(rc);
    ASSERT_TRUE(rt != NULL);
    const char *name = ctl_str(rt, "stats.memory.allocator");
    const char *opt = ctl_str(rt, "opt.allocator");
    uint64_t max_queries = ctl_u64(rt, "opt.max_queries");
    int cfg_alloc = nprof_runtime_config(rt)->allocator;
    const char *reason = ctl_str(rt, "stats.memory.allocator_reason");
    int reason_ok = reason && reason[0] != '\0';
    nprof_runtime_destroy(rt);
    ASSERT_TRUE(name && opt);
    ASSERT_STR(name, "libc");
    ASSERT_STR(opt, "libc");
    ASSERT_EQ_INT(cfg_alloc, NPROF_ALLOCATOR_LIBC);
    ASSERT_EQ_U64(max_queries, 7);
    ASSERT_TRUE(reason_ok);
}

TEST(malformed_nanoprof_conf_creates_no_runtime)
{
    static const char *const bad[] = {
        "allocator=tcmalloc", /* not one of the choices */
        "allocator",          /* no '=' */
        "no_such_option=1",   /* unknown key */
        "max_queries=-5",     /* not unsigned */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_OK(setenv("NANOPROF_CONF", bad[i], 1));
        nprof_runtime *rt = (nprof_runtime *)&rt; /* must become NULL */
        int rc = nprof_runtime_create(NULL, &rt);
        char detail[512];
        snprintf(detail, sizeof detail, "%s", nprof_last_error_detail());
        unsetenv("NANOPROF_CONF");
        if (rc == NPROF_OK)
            nprof_runtime_destroy(rt);
        if (rc != NPROF_EPARSE)
            fprintf(stderr, "NANOPROF_CONF=\"%s\"\n", bad[i]);
        ASSERT_EQ_INT(rc, NPROF_EPARSE);
        ASSERT_TRUE(rt == NULL);
        ASSERT_TRUE(detail[0] != '\0');
        ASSERT_TRUE(strstr(detail, "NANOPROF_CONF") != NULL);
    }
    /* And with the variable gone, creation works again. */
    ASSERT_TRUE(getenv("NANOPROF_CONF") == NULL);
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    nprof_runtime_destroy(rt);
}

/* ---- byte accounting ---------------------------------------------------------------------- */

TEST(memory_stats_grow_with_stored_profiles_and_cover_them)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    uint64_t bytes0 = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks0 = ctl_u64(rt, "stats.memory.blocks");
    ASSERT_TRUE(bytes0 != UINT64_MAX && blocks0 != UINT64_MAX);
    ASSERT_TRUE(bytes0 > 0);  /* the store's ring is already held */
    ASSERT_TRUE(blocks0 > 0);

    enum { REQUESTS = 20, QUERIES = 100 };
    uint64_t last_bytes = bytes0, peak_seen = bytes0;
    for (int r = 0; r < REQUESTS; r++) {
        nprof_profile *p = profile_with_queries(rt, QUERIES);
        ASSERT_TRUE(p != NULL);
        ASSERT_OK(nprof_request_submit(p));
        uint64_t b = ctl_u64(rt, "stats.memory.bytes");
        ASSERT_U64_OP(b, >, last_bytes); /* every stored profile holds more memory */
        last_bytes = b;
        if (b > peak_seen)
            peak_seen = b;
    }
    uint64_t bytes1 = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks1 = ctl_u64(rt, "stats.memory.blocks");
    uint64_t peak1 = ctl_u64(rt, "stats.memory.peak_bytes");
    ASSERT_U64_OP(blocks1, >=, blocks0 + REQUESTS); /* at least one block per profile */
    ASSERT_U64_OP(peak1, >=, bytes1);
    ASSERT_U64_OP(peak1, >=, peak_seen);
    /* 20 x 100 queries of 200 bytes were kept: at least that much text is held. */
    ASSERT_U64_OP(bytes1 - bytes0, >=, (uint64_t)REQUESTS * QUERIES * 200);

    /* What the stored profiles report is covered by what the runtime reports. */
    nprof_snapshot *snap = NULL;
    ASSERT_OK(nprof_store_snapshot(nprof_runtime_store(rt), &snap));
    ASSERT_EQ_U64(nprof_snapshot_count(snap), REQUESTS);
    uint64_t sum = 0;
    for (size_t i = 0; i < nprof_snapshot_count(snap); i++) {
        const nprof_profile *p = nprof_snapshot_get(snap, i);
        nprof_profile_info info;
        ASSERT_OK(nprof_profile_get_info(p, &info));
        ASSERT_EQ_U64(info.queries_kept, QUERIES);
        ASSERT_TRUE(info.memory_bytes > (size_t)QUERIES * 200);
        sum += info.memory_bytes;
    }
    uint64_t bytes_with_snap = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks_with_snap = ctl_u64(rt, "stats.memory.blocks");
    nprof_snapshot_release(snap);
    ASSERT_U64_OP(sum, <=, bytes_with_snap);
    ASSERT_U64_OP(sum, <=, bytes1 - bytes0);
    /* ...and not grossly exceeded: beyond the profiles, only per-block rounding (at most a
     * page for a block glibc maps by itself) and the snapshot (one block) are counted. */
    ASSERT_U64_OP(bytes_with_snap - bytes0, <=, sum + (blocks_with_snap - blocks0) * 4096 + 4096 +
                                                    (uint64_t)nprof_store_capacity(
                                                        nprof_runtime_store(rt)) * sizeof(void *));
    /* Releasing the snapshot gave its block back. */
    ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.blocks"), blocks_with_snap - 1);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.bytes"), bytes1);
    nprof_runtime_destroy(rt);
}

TEST(memory_stats_shrink_when_the_store_is_cleared)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    uint64_t bytes0 = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks0 = ctl_u64(rt, "stats.memory.blocks");

    /* The size of one profile object with nothing on the heap, as the allocator counts it. */
    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    uint64_t one = ctl_u64(rt, "stats.memory.bytes") - bytes0;
    ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.blocks"), blocks0 + 1);
    ASSERT_U64_OP(one, >=, profile_bytes(p));
    nprof_request_discard(p);

    for (int r = 0; r < 30; r++) {
        p = profile_with_queries(rt, 50);
        ASSERT_TRUE(p != NULL);
        ASSERT_OK(nprof_request_submit(p));
    }
    uint64_t full = ctl_u64(rt, "stats.memory.bytes");
    ASSERT_U64_OP(full, >, bytes0 + 30 * 50 * 200);
    ASSERT_EQ_U64(nprof_store_size(nprof_runtime_store(rt)), 30);

    nprof_store_clear(nprof_runtime_store(rt));
    ASSERT_EQ_U64(nprof_store_size(nprof_runtime_store(rt)), 0);
    uint64_t cleared = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks = ctl_u64(rt, "stats.memory.blocks");
    ASSERT_U64_OP(cleared, <, full);
    /* What is left beyond the empty runtime is whole, reset profile objects kept for reuse:
     * no query text, no heap arrays (an aligned block's usable size varies by its padding). */
    ASSERT_U64_OP(cleared, >=, bytes0);
    uint64_t kept = blocks - blocks0;
    ASSERT_U64_OP(kept, >=, 1);
    ASSERT_U64_OP(kept, <=, NPROF__POOL_READY);
    ASSERT_U64_OP(cleared - bytes0, >=, kept * (one - 64));
    ASSERT_U64_OP(cleared - bytes0, <=, kept * (one + 64));
    ASSERT_U64_OP(ctl_u64(rt, "stats.memory.peak_bytes"), >=, full);
    nprof_runtime_destroy(rt);
}

TEST(discarded_profiles_return_their_heap_memory)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    nprof_profile *p = profile_with_queries(rt, 0);
    ASSERT_TRUE(p != NULL);
    nprof_request_discard(p); /* one pooled profile object from now on */
    uint64_t base = ctl_u64(rt, "stats.memory.bytes");
    uint64_t base_blocks = ctl_u64(rt, "stats.memory.blocks");
    for (int r = 0; r < 10; r++) {
        p = profile_with_queries(rt, 300);
        ASSERT_TRUE(p != NULL);
        ASSERT_U64_OP(ctl_u64(rt, "stats.memory.bytes"), >, base + 300 * 200);
        nprof_request_discard(p);
        /* The pooled object was reused and its heap released. */
        ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.bytes"), base);
        ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.blocks"), base_blocks);
    }
    nprof_runtime_destroy(rt);
}

/* ---- bounded memory per request --------------------------------------------------------- */

enum { FLOOD = 100000 };

/* Records FLOOD 200-byte queries; fills `info`; returns the number recorded with NPROF_OK or
 * -1 on an unexpected result code. */
static long flood(nprof_profile *p, nprof_profile_info *info, size_t *max_bytes_seen)
{
    char sql[200];
    long ok = 0;
    *max_bytes_seen = 0;
    for (unsigned i = 0; i < FLOOD; i++) {
        make_sql(sql, i);
        nprof_query q = {.sql = sql, .sql_len = sizeof sql, .params = "id=1", .params_len = 4, .duration_ns = 10};
        int rc = nprof_query_record(p, &q);
        if (rc == NPROF_OK)
            ok++;
        else if (rc != NPROF_ELIMIT)
            return -1;
        if (i % 1000 == 0 || i == FLOOD - 1) {
            size_t b = profile_bytes(p);
            if (b > *max_bytes_seen)
                *max_bytes_seen = b;
        }
    }
    if (nprof_profile_get_info(p, info) != NPROF_OK)
        return -1;
    return ok;
}

TEST(one_request_with_100000_queries_is_bounded_by_max_queries)
{
    nprof_runtime *rt = make_runtime(NULL);
    ASSERT_TRUE(rt != NULL);
    uint64_t max_queries = ctl_u64(rt, "opt.max_queries");
    uint64_t max_profile_bytes = ctl_u64(rt, "opt.max_profile_bytes");
    ASSERT_EQ_U64(max_queries, 500);
    ASSERT_EQ_U64(max_profile_bytes, 1u << 20);
    uint64_t bytes0 = ctl_u64(rt, "stats.memory.bytes");

    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/flood", 6, 0, &p));
    nprof_profile_info info;
    size_t max_seen;
    long ok = flood(p, &info, &max_seen);
    uint64_t bytes1 = ctl_u64(rt, "stats.memory.bytes");
    ASSERT_EQ_INT(ok, 500);
    ASSERT_EQ_U64(info.sql_count, FLOOD);
    ASSERT_EQ_U64(info.sql_total_ns, (uint64_t)FLOOD * 10);
    ASSERT_EQ_U64(info.queries_kept, 500);
    ASSERT_EQ_U64(info.queries_dropped, FLOOD - 500);
    ASSERT_U64_OP(info.memory_bytes, <=, max_profile_bytes);
    ASSERT_U64_OP(max_seen, <=, max_profile_bytes);
    /* The kept ones are the first 500, in full. */
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 499, &qi));
    ASSERT_EQ_U64(qi.sql_len, 200);
    ASSERT_TRUE(memcmp(qi.sql, "SELECT * FROM t WHERE id = 499 ", 31) == 0);
    ASSERT_EQ_INT(nprof_profile_get_query(p, 500, &qi), NPROF_ENOENT);
    /* The runtime holds what the profile holds (plus allocator rounding), no more. */
    ASSERT_U64_OP(bytes1 - bytes0, >=, info.memory_bytes);
    ASSERT_U64_OP(bytes1 - bytes0, <=, info.memory_bytes + 64 * 4096);
    /* The runtime's counters take a request's events when it ends. */
    ASSERT_EQ_U64(ctl_u64(rt, "stats.queries"), 0);
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.queries"), FLOOD);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.queries_dropped"), FLOOD - 500);

    char header[NPROF_HEADER_MAX];
    ASSERT_OK(nprof_profile_render_header(p, header, sizeof header, NULL));
    ASSERT_TRUE(strstr(header, "(100000q)") != NULL);
    ASSERT_OK(nprof_request_submit(p));
    nprof_runtime_destroy(rt);
}

/* With max_queries out of the way, the byte budget is what stops the profile growing. */
static void check_byte_budget(const char *budget_text, uint64_t budget)
{
    nprof_config cfg;
    nprof_config_init(&cfg);
    cfg.allocator = NPROF_ALLOCATOR_LIBC;
    ASSERT_OK(nprof_config_set(&cfg, "max_profile_bytes", budget_text));
    ASSERT_OK(nprof_config_set(&cfg, "max_queries", "1000000"));
    ASSERT_EQ_U64(cfg.max_profile_bytes, budget);
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(&cfg, &rt));
    ASSERT_EQ_U64(ctl_u64(rt, "opt.max_profile_bytes"), budget);
    uint64_t bytes0 = ctl_u64(rt, "stats.memory.bytes");

    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "POST", 4, "/bulk", 5, 0, &p));
    size_t empty_bytes = profile_bytes(p);
    nprof_profile_info info;
    size_t max_seen;
    long ok = flood(p, &info, &max_seen);
    uint64_t bytes1 = ctl_u64(rt, "stats.memory.bytes");
    printf("     max_profile_bytes=%" PRIu64 ": kept %ld queries, memory_bytes=%zu (empty %zu)\n",
           budget, ok, info.memory_bytes, empty_bytes);
    ASSERT_TRUE(ok > 0);
    ASSERT_TRUE(ok < FLOOD);
    ASSERT_EQ_U64(info.queries_kept, (uint64_t)ok);
    ASSERT_EQ_U64(info.sql_count, FLOOD);
    ASSERT_EQ_U64(info.queries_dropped, (uint64_t)(FLOOD - ok));
    /* The bound: never more than max_profile_bytes, whose minimum exceeds an empty profile. */
    ASSERT_U64_OP(empty_bytes, <, budget);
    uint64_t bound = budget;
    ASSERT_U64_OP(info.memory_bytes, <=, bound);
    ASSERT_U64_OP(max_seen, <=, bound);
    if (budget >= 2 * empty_bytes)
        /* A budget well above the fixed part is mostly used, not left idle. */
        ASSERT_U64_OP(info.memory_bytes, >=, budget / 2);
    ASSERT_U64_OP(bytes1 - bytes0, >=, info.memory_bytes);
    ASSERT_U64_OP(bytes1 - bytes0, <=, bound + 64 * 4096);
    /* Everything kept is intact. */
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, (size_t)ok - 1, &qi));
    ASSERT_EQ_U64(qi.sql_len, 200);
    ASSERT_MEM_STR(qi.params, qi.params_len, "id=1");
    ASSERT_EQ_INT(nprof_profile_get_query(p, (size_t)ok, &qi), NPROF_ENOENT);
    ASSERT_OK(nprof_request_submit(p));
    nprof_runtime_destroy(rt);
}

TEST(smaller_max_profile_bytes_bounds_one_request)
{
    check_byte_budget("65536", 65536);
    if (test_current_failed)
        return;
    check_byte_budget("16384", 16384);
}

TEST(the_minimum_max_profile_bytes_still_bounds_the_profile)
{
    /* 16384 is the option's documented minimum, above the size of an empty profile. */
    check_byte_budget("16384", 16384);
}

/* ---- accounting under threads --------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 200, THREAD_QUERIES = 20 };

static void *profiling_thread(void *arg)
{
    nprof_runtime *rt = arg;
    for (int r = 0; r < PER_THREAD; r++) {
        nprof_profile *p = profile_with_queries(rt, THREAD_QUERIES);
        if (!p)
            return (void *)1;
        if (r % 5 == 4) {
            nprof_request_discard(p);
        } else if (nprof_request_submit(p) != NPROF_OK) {
            return (void *)1;
        }
    }
    return NULL;
}

TEST(memory_accounting_is_exact_with_threads_profiling_concurrently)
{
    nprof_runtime *rt = make_runtime("max_history=100");
    ASSERT_TRUE(rt != NULL);
    uint64_t bytes0 = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks0 = ctl_u64(rt, "stats.memory.blocks");
    /* The blocks one request of the threads' size holds (the profile and what it grew),
     * measured on a runtime of its own so that the counters below stay exact. */
    nprof_runtime *probe = make_runtime("max_history=100");
    ASSERT_TRUE(probe != NULL);
    uint64_t probe0 = ctl_u64(probe, "stats.memory.blocks");
    nprof_profile *one = profile_with_queries(probe, THREAD_QUERIES);
    ASSERT_TRUE(one != NULL);
    uint64_t per_profile = ctl_u64(probe, "stats.memory.blocks") - probe0;
    nprof_request_discard(one);
    nprof_runtime_destroy(probe);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, profiling_thread, rt), 0);
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *res;
        pthread_join(t[i], &res);
        failures += res != NULL;
    }
    ASSERT_EQ_INT(failures, 0);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.requests"), THREADS * PER_THREAD);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.requests_submitted"), THREADS * PER_THREAD * 4 / 5);
    ASSERT_EQ_U64(ctl_u64(rt, "stats.queries"), THREADS * PER_THREAD * THREAD_QUERIES);

    /* The ring holds at most its capacity; the counters cover its profiles. */
    nprof_snapshot *snap = NULL;
    ASSERT_OK(nprof_store_snapshot(nprof_runtime_store(rt), &snap));
    size_t n = nprof_snapshot_count(snap);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += profile_bytes(nprof_snapshot_get(snap, i));
    uint64_t bytes = ctl_u64(rt, "stats.memory.bytes");
    nprof_snapshot_release(snap);
    ASSERT_TRUE(n > 0 && n <= 100);
    ASSERT_U64_OP(sum, <=, bytes - bytes0);
    ASSERT_U64_OP(ctl_u64(rt, "stats.memory.peak_bytes"), >=, bytes);

    /* Once cleared, only pooled profiles (and the batch nodes that carry them) remain beyond
     * the empty runtime, within each shard's idle bound (four threads and this one, which
     * cleared).  How many of them are still as big as their request left them depends on the
     * interleaving: a profile is trimmed when its own thread takes it back, but one adopted
     * by, or handed back from, another thread is trimmed only when it is handed out again.
     * So the bound counts every idle profile at the blocks one such request holds. */
    nprof_store_clear(nprof_runtime_store(rt));
    uint64_t left_blocks = ctl_u64(rt, "stats.memory.blocks") - blocks0;
    uint64_t left_bytes = ctl_u64(rt, "stats.memory.bytes") - bytes0;
    ASSERT_U64_OP(left_blocks, <=, (THREADS + 1) * NPROF__POOL_IDLE_BLOCKS * per_profile);
    ASSERT_U64_OP(left_bytes, <, (left_blocks + 1) * 8192);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(jemalloc_is_not_in_this_process);
    RUN(allocator_libc_is_reported_with_a_reason);
    RUN(foreach_lists_memory_names_that_apply_to_libc);
    RUN(auto_mode_without_jemalloc_linked_is_consistent_with_its_reason);
    RUN(forcing_jemalloc_when_auto_chose_libc_is_unsupported);
    RUN(nanoprof_conf_allocator_libc_is_honoured);
    RUN(malformed_nanoprof_conf_creates_no_runtime);
    RUN(memory_stats_grow_with_stored_profiles_and_cover_them);
    RUN(memory_stats_shrink_when_the_store_is_cleared);
    RUN(discarded_profiles_return_their_heap_memory);
    RUN(one_request_with_100000_queries_is_bounded_by_max_queries);
    RUN(smaller_max_profile_bytes_bounds_one_request);
    RUN(the_minimum_max_profile_bytes_still_bounds_the_profile);
    RUN(memory_accounting_is_exact_with_threads_profiling_concurrently);
    return TEST_SUMMARY();
}
