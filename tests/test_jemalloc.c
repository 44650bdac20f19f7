/*
 * tests/test_jemalloc.c: the allocator layer in a process that links jemalloc (so malloc is
 * jemalloc's and mallocx/mallctl are in the global scope).
 *
 * Covers: auto mode picks a dedicated arena; the runtime's blocks live in that arena and the
 * host's do not; the arena's statistics agree with stats.memory.*; the arena is released when
 * the runtime is destroyed.
 */
#include <jemalloc/jemalloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"

/* The arena that owns `ptr` (the start of a live block), or UINT32_MAX. */
static unsigned arena_of(const void *ptr)
{
    unsigned arena = UINT32_MAX;
    size_t sz = sizeof arena;
    if (mallctl("arenas.lookup", &arena, &sz, (void *)&ptr, sizeof ptr) != 0)
        return UINT32_MAX;
    return arena;
}

static unsigned je_unsigned(const char *name)
{
    unsigned v = 0;
    size_t sz = sizeof v;
    if (mallctl(name, &v, &sz, NULL, 0) != 0)
        return UINT32_MAX;
    return v;
}

/* Bytes jemalloc says are allocated from `arena` (small + large), refreshed. */
static uint64_t je_arena_allocated(unsigned arena)
{
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    char name[96];
    size_t small = 0, large = 0;
    sz = sizeof small;
    snprintf(name, sizeof name, "stats.arenas.%u.small.allocated", arena);
    if (mallctl(name, &small, &sz, NULL, 0) != 0)
        return UINT64_MAX;
    snprintf(name, sizeof name, "stats.arenas.%u.large.allocated", arena);
    sz = sizeof large;
    if (mallctl(name, &large, &sz, NULL, 0) != 0)
        return UINT64_MAX;
    return (uint64_t)small + large;
}

static int je_stats_enabled(void)
{
    bool stats = false;
    size_t sz = sizeof stats;
    return mallctl("config.stats", &stats, &sz, NULL, 0) == 0 && stats;
}

static nprof_profile *profile_with_queries(nprof_runtime *rt, unsigned queries)
{
    nprof_profile *p = NULL;
    if (nprof_request_begin(rt, "GET", 3, "/je", 3, 0, &p) != NPROF_OK)
        return NULL;
    char sql[200];
    memset(sql, 'q', sizeof sql);
    for (unsigned i = 0; i < queries; i++) {
        nprof_query q = {.sql = sql, .sql_len = sizeof sql, .duration_ns = 500};
        int rc = nprof_query_record(p, &q);
        if (rc != NPROF_OK && rc != NPROF_ELIMIT) {
            nprof_request_discard(p);
            return NULL;
        }
    }
    nprof_request_end(p, 200);
    return p;
}

TEST(jemalloc_is_in_this_process)
{
    /* Linked for real: jemalloc's own entry points answer. */
    const char *version = NULL;
    size_t sz = sizeof version;
    ASSERT_EQ_INT(mallctl("version", &version, &sz, NULL, 0), 0);
    ASSERT_TRUE(version != NULL && version[0] != '\0');
    printf("     jemalloc %s, %u automatic arenas\n", version, je_unsigned("opt.narenas"));
    void *p = mallocx(64, 0);
    ASSERT_TRUE(p != NULL);
    ASSERT_U64_OP(sallocx(p, 0), >=, 64);
    dallocx(p, 0);
}

TEST(auto_mode_picks_a_dedicated_jemalloc_arena)
{
    unsigned before = je_unsigned("arenas.narenas");
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    const char *name = ctl_str(rt, "stats.memory.allocator");
    const char *reason = ctl_str(rt, "stats.memory.allocator_reason");
    uint64_t arena = ctl_u64(rt, "stats.memory.arena");
    unsigned after = je_unsigned("arenas.narenas");
    ASSERT_TRUE(name && reason);
    ASSERT_STR(name, "jemalloc");
    ASSERT_STR(ctl_str(rt, "opt.allocator"), "auto");
    printf("     reason=\"%s\"\n", reason);
    ASSERT_TRUE(arena != UINT64_MAX);
    /* A manual arena: past the automatic ones, and one jemalloc counts. */
    ASSERT_U64_OP(arena, >=, je_unsigned("opt.narenas"));
    ASSERT_U64_OP(arena, <, after);
    ASSERT_U64_OP(after, >=, before);
    char expect[64];
    snprintf(expect, sizeof expect, "arena %u", (unsigned)arena);
    ASSERT_TRUE(strstr(reason, expect) != NULL);
    nprof_runtime_destroy(rt);
}

TEST(two_runtimes_get_two_arenas)
{
    nprof_runtime *a = NULL, *b = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &a));
    ASSERT_OK(nprof_runtime_create(NULL, &b));
    uint64_t arena_a = ctl_u64(a, "stats.memory.arena");
    uint64_t arena_b = ctl_u64(b, "stats.memory.arena");
    nprof_runtime_destroy(b);
    nprof_runtime_destroy(a);
    ASSERT_TRUE(arena_a != UINT64_MAX && arena_b != UINT64_MAX);
    ASSERT_TRUE(arena_a != arena_b);
}

TEST(profiles_live_in_the_runtime_arena_and_host_blocks_do_not)
{
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    uint64_t arena = ctl_u64(rt, "stats.memory.arena");
    ASSERT_TRUE(arena != UINT64_MAX);

    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/a", 2, 0, &p));
    ASSERT_EQ_U64(arena_of(p), arena);
    /* The store the runtime created at start-up is in the arena too. */
    ASSERT_EQ_U64(arena_of(nprof_runtime_store(rt)), arena);

    void *host = malloc(sizeof(void *) * 100);
    void *host_big = malloc(1 << 20);
    ASSERT_TRUE(host && host_big);
    ASSERT_TRUE(arena_of(host) != UINT32_MAX); /* the lookup works on host blocks... */
    ASSERT_TRUE(arena_of(host) != arena);      /* ...and they are not ours */
    ASSERT_TRUE(arena_of(host_big) != arena);

    /* Renderer output belongs to the caller: the host's heap, not the arena. */
    ASSERT_OK(nprof_request_end(p, 200));
    nprof_buf json = NPROF_BUF_INIT;
    ASSERT_OK(nprof_profile_render_json(p, &json));
    ASSERT_TRUE(json.data != NULL);
    ASSERT_TRUE(arena_of(json.data) != arena);
    nprof_buf_free(&json);

    /* A second store and a snapshot are the runtime's too. */
    nprof_store *s = NULL;
    ASSERT_OK(nprof_store_create(rt, 16, &s));
    ASSERT_EQ_U64(arena_of(s), arena);
    ASSERT_OK(nprof_store_push(s, p));
    nprof_snapshot *snap = NULL;
    ASSERT_OK(nprof_store_snapshot(s, &snap));
    ASSERT_EQ_U64(arena_of(snap), arena);
    ASSERT_EQ_U64(nprof_snapshot_count(snap), 1);
    ASSERT_EQ_U64(arena_of(nprof_snapshot_get(snap, 0)), arena);
    nprof_snapshot_release(snap);
    nprof_store_destroy(s);

    free(host);
    free(host_big);
    nprof_runtime_destroy(rt);
}

TEST(arena_resident_bytes_are_reported)
{
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    nprof_profile *p = profile_with_queries(rt, 100);
    ASSERT_TRUE(p != NULL);
    ASSERT_OK(nprof_request_submit(p));
    uint64_t resident = ctl_u64(rt, "stats.memory.arena_resident_bytes");
    uint64_t bytes = ctl_u64(rt, "stats.memory.bytes");
    nprof_runtime_destroy(rt);
    ASSERT_TRUE(resident != UINT64_MAX);
    ASSERT_U64_OP(resident, >, 0);
    if (je_stats_enabled())
        ASSERT_U64_OP(resident, >=, bytes); /* resident pages hold at least the live blocks */
}

TEST(memory_bytes_agree_with_the_arena_statistics)
{
    if (!je_stats_enabled()) {
        printf("     skipped: this jemalloc was built without statistics\n");
        return;
    }
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    unsigned arena = (unsigned)ctl_u64(rt, "stats.memory.arena");
    /* No thread cache on the arena: jemalloc's counts are exact at every step. */
    ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.bytes"), je_arena_allocated(arena));
    for (int r = 0; r < 10; r++) {
        nprof_profile *p = profile_with_queries(rt, (unsigned)r * 60);
        ASSERT_TRUE(p != NULL);
        ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.bytes"), je_arena_allocated(arena));
        ASSERT_OK(nprof_request_submit(p));
    }
    ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.bytes"), je_arena_allocated(arena));
    nprof_store_clear(nprof_runtime_store(rt));
    ASSERT_EQ_U64(ctl_u64(rt, "stats.memory.bytes"), je_arena_allocated(arena));
    nprof_runtime_destroy(rt);
}

TEST(memory_bytes_grow_with_the_store_and_shrink_when_it_is_cleared)
{
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    uint64_t bytes0 = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks0 = ctl_u64(rt, "stats.memory.blocks");
    ASSERT_TRUE(bytes0 > 0 && bytes0 != UINT64_MAX);

    nprof_profile *p = NULL;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    uint64_t one = ctl_u64(rt, "stats.memory.bytes") - bytes0;
    nprof_request_discard(p);

    uint64_t prev = bytes0;
    for (int r = 0; r < 40; r++) {
        p = profile_with_queries(rt, 80);
        ASSERT_TRUE(p != NULL);
        ASSERT_OK(nprof_request_submit(p));
        uint64_t b = ctl_u64(rt, "stats.memory.bytes");
        ASSERT_U64_OP(b, >, prev);
        prev = b;
    }
    uint64_t full = ctl_u64(rt, "stats.memory.bytes");
    ASSERT_U64_OP(full - bytes0, >=, 40 * 80 * 200);
    ASSERT_U64_OP(ctl_u64(rt, "stats.memory.peak_bytes"), >=, full);
    ASSERT_U64_OP(ctl_u64(rt, "stats.memory.blocks"), >=, blocks0 + 40);

    nprof_snapshot *snap = NULL;
    ASSERT_OK(nprof_store_snapshot(nprof_runtime_store(rt), &snap));
    uint64_t sum = 0;
    for (size_t i = 0; i < nprof_snapshot_count(snap); i++) {
        nprof_profile_info info;
        ASSERT_OK(nprof_profile_get_info(nprof_snapshot_get(snap, i), &info));
        sum += info.memory_bytes;
    }
    nprof_snapshot_release(snap);
    ASSERT_U64_OP(sum, <=, full - bytes0);

    nprof_store_clear(nprof_runtime_store(rt));
    uint64_t cleared = ctl_u64(rt, "stats.memory.bytes");
    uint64_t blocks = ctl_u64(rt, "stats.memory.blocks");
    ASSERT_U64_OP(cleared, <, full);
    ASSERT_EQ_U64((cleared - bytes0) % one, 0); /* only reset profile objects remain */
    ASSERT_EQ_U64((cleared - bytes0) / one, blocks - blocks0);
    ASSERT_U64_OP(ctl_u64(rt, "stats.memory.arena_resident_bytes"), >, 0);

    /* Fill again and destroy with everything still held. */
    for (int r = 0; r < 40; r++) {
        p = profile_with_queries(rt, 80);
        ASSERT_TRUE(p != NULL);
        ASSERT_OK(nprof_request_submit(p));
    }
    p = profile_with_queries(rt, 10); /* and one in flight, never submitted */
    ASSERT_TRUE(p != NULL);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(destroying_the_runtime_releases_its_arena)
{
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    for (int r = 0; r < 20; r++) {
        nprof_profile *p = profile_with_queries(rt, 50);
        ASSERT_TRUE(p != NULL);
        ASSERT_OK(nprof_request_submit(p));
    }
    uint64_t arena = ctl_u64(rt, "stats.memory.arena");
    unsigned narenas = je_unsigned("arenas.narenas");
    nprof_runtime_destroy(rt);
    /* jemalloc hands a destroyed arena's index to the next arenas.create, so a runtime made
     * after the destroy reuses it instead of growing the arena count. */
    ASSERT_OK(nprof_runtime_create(NULL, &rt));
    uint64_t arena2 = ctl_u64(rt, "stats.memory.arena");
    unsigned narenas2 = je_unsigned("arenas.narenas");
    nprof_runtime_destroy(rt);
    ASSERT_EQ_U64(arena2, arena);
    ASSERT_EQ_U64(narenas2, narenas);
}

TEST(allocator_libc_still_works_with_jemalloc_present)
{
    nprof_config cfg;
    nprof_config_init(&cfg);
    ASSERT_OK(nprof_config_set(&cfg, "allocator", "libc"));
    nprof_runtime *rt = NULL;
    ASSERT_OK(nprof_runtime_create(&cfg, &rt));
    ASSERT_STR(ctl_str(rt, "stats.memory.allocator"), "libc");
    nprof_ctl_value v;
    ASSERT_EQ_INT(nprof_ctl_get(rt, "stats.memory.arena", &v), NPROF_ENOENT);
    nprof_profile *p = profile_with_queries(rt, 20);
    ASSERT_TRUE(p != NULL);
    ASSERT_OK(nprof_request_submit(p));
    ASSERT_U64_OP(ctl_u64(rt, "stats.memory.bytes"), >, 20 * 200);
    nprof_runtime_destroy(rt);

    /* And demanding jemalloc succeeds here. */
    ASSERT_OK(nprof_config_set(&cfg, "allocator", "jemalloc"));
    ASSERT_OK(nprof_runtime_create(&cfg, &rt));
    ASSERT_STR(ctl_str(rt, "stats.memory.allocator"), "jemalloc");
    ASSERT_STR(ctl_str(rt, "opt.allocator"), "jemalloc");
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(jemalloc_is_in_this_process);
    RUN(auto_mode_picks_a_dedicated_jemalloc_arena);
    RUN(two_runtimes_get_two_arenas);
    RUN(profiles_live_in_the_runtime_arena_and_host_blocks_do_not);
    RUN(arena_resident_bytes_are_reported);
    RUN(memory_bytes_agree_with_the_arena_statistics);
    RUN(memory_bytes_grow_with_the_store_and_shrink_when_it_is_cleared);
    RUN(destroying_the_runtime_releases_its_arena);
    RUN(allocator_libc_still_works_with_jemalloc_present);
    return TEST_SUMMARY();
}
