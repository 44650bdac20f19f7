/*
 * tests/test_store.c: ProfileStore: ring order and eviction, slowest(n), clear, the
 * aggregated flame graph, snapshots that pin profiles while pushes go on in other threads,
 * and memory that returns to the pool instead of leaking.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "runtime/profile.h"
#include "test.h"

/* A finished profile whose path is "/r/<n>" and whose total is about n microseconds. */
static nprof_profile *finished(nprof_runtime *rt, int n, uint64_t start_ticks)
{
    char path[32];
    int len = snprintf(path, sizeof path, "/r/%d", n);
    nprof_profile *p;
    if (nprof_request_begin(rt, "GET", 3, path, (size_t)len, start_ticks, &p))
        return NULL;
    nprof_request_end(p, 200);
    return p;
}

static int path_number(const nprof_profile *p)
{
    nprof_profile_info info;
    nprof_profile_get_info(p, &info);
    char digits[24] = "";
    size_t n = info.path_len - 3 < sizeof digits - 1 ? info.path_len - 3 : sizeof digits - 1;
    memcpy(digits, info.path + 3, n); /* profile strings are counted, not NUL-terminated */
    return atoi(digits);
}

TEST(a_small_store_is_an_exact_ring_of_the_last_pushes)
{
    nprof_runtime *rt = make_runtime("max_history=5");
    nprof_store *s = nprof_runtime_store(rt);
    ASSERT_EQ_U64(nprof_store_capacity(s), 5);
    for (int i = 0; i < 12; i++)
        ASSERT_OK(nprof_request_submit(finished(rt, i, 0)));
    ASSERT_EQ_U64(nprof_store_size(s), 5);
    nprof_snapshot *snap;
    ASSERT_OK(nprof_store_snapshot(s, &snap));
    ASSERT_EQ_U64(nprof_snapshot_count(snap), 5);
    for (size_t i = 0; i < 5; i++)
        ASSERT_EQ_INT(path_number(nprof_snapshot_get(snap, i)), 7 + (int)i); /* oldest first */
    ASSERT_TRUE(nprof_snapshot_get(snap, 5) == NULL);
    nprof_snapshot_release(snap);
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(rt, "stats.store.pushed", &v));
    ASSERT_EQ_U64(v.u, 12);
    nprof_runtime_destroy(rt);
}

TEST(a_large_store_keeps_the_last_capacity_profiles_from_one_thread)
{
    nprof_runtime *rt = make_runtime("max_history=100");
    for (int i = 0; i < 1037; i++)
        ASSERT_OK(nprof_request_submit(finished(rt, i, 0)));
    nprof_snapshot *snap;
    ASSERT_OK(nprof_store_snapshot(nprof_runtime_store(rt), &snap));
    ASSERT_EQ_U64(nprof_snapshot_count(snap), 100);
    for (size_t i = 0; i < 100; i++)
        ASSERT_EQ_INT(path_number(nprof_snapshot_get(snap, i)), 937 + (int)i);
    nprof_snapshot_release(snap);
    nprof_runtime_destroy(rt);
}

TEST(slowest_returns_the_n_longest_requests_slowest_first)
{
    nprof_runtime *rt = make_runtime("max_history=64");
    nprof_clock_info ci;
    nprof_clock_get_info(&ci);
    uint64_t ticks_per_us = ci.frequency_hz / 1000000;
    int durations[] = {30, 5, 900, 120, 7, 450, 60};
    for (int i = 0; i < 7; i++)
        nprof_request_submit(finished(rt, durations[i], nprof_ticks() - (uint64_t)durations[i] * 1000 * ticks_per_us));
    nprof_snapshot *snap;
    ASSERT_OK(nprof_store_snapshot_slowest(nprof_runtime_store(rt), 3, &snap));
    ASSERT_EQ_U64(nprof_snapshot_count(snap), 3);
    ASSERT_EQ_INT(path_number(nprof_snapshot_get(snap, 0)), 900);
    ASSERT_EQ_INT(path_number(nprof_snapshot_get(snap, 1)), 450);
    ASSERT_EQ_INT(path_number(nprof_snapshot_get(snap, 2)), 120);
    nprof_snapshot_release(snap);
    ASSERT_OK(nprof_store_snapshot_slowest(nprof_runtime_store(rt), 100, &snap));
    ASSERT_EQ_U64(nprof_snapshot_count(snap), 7);
    nprof_snapshot_release(snap);
    nprof_runtime_destroy(rt);
}

TEST(clear_empties_the_store_but_a_held_snapshot_keeps_its_profiles)
{
    nprof_runtime *rt = make_runtime("max_history=10");
    nprof_store *s = nprof_runtime_store(rt);
    for (int i = 0; i < 10; i++)
        nprof_request_submit(finished(rt, i, 0));
    nprof_snapshot *snap;
    ASSERT_OK(nprof_store_snapshot(s, &snap));
    nprof_store_clear(s);
    ASSERT_EQ_U64(nprof_store_size(s), 0);
    /* New requests reuse memory, but not the pinned profiles. */
    for (int i = 100; i < 130; i++)
        nprof_request_submit(finished(rt, i, 0));
    for (size_t i = 0; i < 10; i++)
        ASSERT_EQ_INT(path_number(nprof_snapshot_get(snap, i)), (int)i);
    nprof_snapshot_release(snap);
    ASSERT_EQ_U64(nprof_store_size(s), 10);
    nprof_snapshot_release(NULL);
    nprof_store_clear(NULL);
    nprof_runtime_destroy(rt);
}

TEST(the_flame_graph_sums_equal_stacks_over_all_profiles)
{
    nprof_runtime *rt = make_runtime("max_history=50");
    for (int r = 0; r < 4; r++) {
        nprof_profile *p;
        ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
        nprof_phase_begin(p, NPROF_PHASE_HANDLER);
        nprof_query_record(p, &(nprof_query){.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1000,
                                             .normalized = "SELECT ?", .normalized_len = 8});
        nprof_phase_end(p, NPROF_PHASE_HANDLER);
        nprof_request_submit(p);
    }
    nprof_buf out = NPROF_BUF_INIT;
    ASSERT_OK(nprof_store_render_collapsed(nprof_runtime_store(rt), &out));
    ASSERT_TRUE(strstr(out.data, "request;handler;sql;SELECT ? 4000\n") != NULL);
    /* One line per stack, sorted. */
    ASSERT_TRUE(strstr(out.data, "request;handler;sql;SELECT ?") == strstr(out.data, "SELECT ?") - 20);
    char *prev = NULL;
    for (char *line = out.data; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        char *sp = strrchr(line, ' ');
        *sp = '\0';
        if (prev)
            ASSERT_INT_OP(strcmp(prev, line), <, 0);
        prev = line;
        line = nl + 1;
    }
    nprof_buf_free(&out);
    nprof_buf empty = NPROF_BUF_INIT;
    nprof_store_clear(nprof_runtime_store(rt));
    ASSERT_OK(nprof_store_render_collapsed(nprof_runtime_store(rt), &empty));
    ASSERT_EQ_U64(empty.len, 0);
    nprof_buf_free(&empty);
    nprof_runtime_destroy(rt);
}

TEST(a_profile_of_another_runtime_is_refused_and_released)
{
    nprof_runtime *a = make_runtime("max_history=10"), *b = make_runtime("max_history=10");
    nprof_store *extra;
    ASSERT_OK(nprof_store_create(a, 3, &extra));
    ASSERT_EQ_INT(nprof_store_push(extra, finished(b, 1, 0)), NPROF_EINVAL);
    ASSERT_OK(nprof_store_push(extra, finished(a, 2, 0)));
    ASSERT_EQ_U64(nprof_store_size(extra), 1);
    ASSERT_EQ_U64(nprof_store_size(nprof_runtime_store(a)), 0);
    ASSERT_EQ_INT(nprof_store_push(NULL, finished(a, 3, 0)), NPROF_EINVAL);
    nprof_store_destroy(extra);
    ASSERT_EQ_INT(nprof_store_create(a, 0, &extra), NPROF_EINVAL);
    ASSERT_TRUE(extra == NULL);
    nprof_snapshot *snap;
    ASSERT_EQ_INT(nprof_store_snapshot(NULL, &snap), NPROF_EINVAL);
    nprof_store *again;
    ASSERT_OK(nprof_store_create(a, 3, &again));
    nprof_store_destroy(again);
    nprof_store_destroy(NULL);
    nprof_runtime_destroy(a);
    nprof_runtime_destroy(b);
}

static nprof_runtime *race_rt;
static _Atomic int pushers_done;

static void *push_many(void *arg)
{
    int base = (int)(intptr_t)arg;
    for (int i = 0; i < 20000; i++) {
        nprof_profile *p = finished(race_rt, base + i, 0);
        if (!p)
            return (void *)1;
        nprof_query_record(p, &(nprof_query){.sql = "x", .sql_len = 1});
        if (nprof_request_submit(p) != NPROF_OK)
            return (void *)2;
    }
    atomic_fetch_add(&pushers_done, 1);
    return NULL;
}

static void *read_while_pushing(void *arg)
{
    (void)arg;
    long rounds = 0;
    while (atomic_load(&pushers_done) < 4) {
        nprof_snapshot *snap;
        if (nprof_store_snapshot(nprof_runtime_store(race_rt), &snap))
            return (void *)1;
        for (size_t i = 0; i < nprof_snapshot_count(snap); i++) {
            /* Everything a pinned profile says must stay put while we read it. */
            const nprof_profile *p = nprof_snapshot_get(snap, i);
            nprof_profile_info info;
            nprof_profile_get_info(p, &info);
            if (!info.ended || info.path_len < 4 || memcmp(info.path, "/r/", 3) != 0)
                return (void *)2;
        }
        if (rounds % 16 == 0) {
            nprof_buf out = NPROF_BUF_INIT;
            if (nprof_store_render_collapsed(nprof_runtime_store(race_rt), &out))
                return (void *)3;
            nprof_buf_free(&out);
            const nprof_profile *p = nprof_snapshot_get(snap, 0);
            if (p) {
                nprof_buf js = NPROF_BUF_INIT;
                size_t where;
                if (nprof_profile_render_json(p, &js) || !json_check(js.data, js.len, &where))
                    return (void *)4;
                nprof_buf_free(&js);
            }
        }
        nprof_snapshot_release(snap);
        rounds++;
    }
    return rounds > 0 ? NULL : (void *)5;
}

TEST(pushes_from_four_threads_and_a_reader_neither_crash_nor_leak)
{
    race_rt = make_runtime("max_history=256");
    atomic_store(&pushers_done, 0);
    pthread_t pushers[4], reader;
    pthread_create(&reader, NULL, read_while_pushing, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&pushers[i], NULL, push_many, (void *)(intptr_t)(i * 100000));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(pushers[i], &r);
        ASSERT_TRUE(r == NULL);
    }
    void *r;
    pthread_join(reader, &r);
    ASSERT_TRUE(r == NULL);
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(race_rt, "stats.store.pushed", &v));
    ASSERT_EQ_U64(v.u, 80000);
    ASSERT_OK(nprof_ctl_get(race_rt, "stats.store.size", &v));
    ASSERT_EQ_U64(v.u, 256);
    /* A reader's release that raced a pusher's last eviction can leave the evicted profiles
     * on the store's retired list, for the next release or eviction to recycle (store.c):
     * how many depends on the interleaving.  One more snapshot, taken and released here,
     * recycles them. */
    nprof_snapshot *last;
    ASSERT_OK(nprof_store_snapshot(nprof_runtime_store(race_rt), &last));
    nprof_snapshot_release(last);
    /* Memory is then bounded by what the store and the pool hold, not by the 80,000
     * requests: the store's blocks and, per thread shard that pushed, read or recycled (four
     * pushers, the reader, this thread), the pool's idle bound. */
    ASSERT_OK(nprof_ctl_get(race_rt, "stats.memory.blocks", &v));
    ASSERT_U64_OP(v.u, <=, 256 + 3 + 6 * NPROF__POOL_IDLE_BLOCKS);
    nprof_store_clear(nprof_runtime_store(race_rt));
    ASSERT_OK(nprof_ctl_get(race_rt, "stats.store.size", &v));
    ASSERT_EQ_U64(v.u, 0);
    nprof_runtime_destroy(race_rt);
}

static nprof_runtime *uneven_rt;

/* A pusher that alternates, every 5,000 pushes, between full speed and spinning between
 * pushes; threads 0 and 1 do so in opposite phases. */
static void *push_unevenly(void *arg)
{
    int parity = (int)(intptr_t)arg & 1;
    for (int i = 0; i < 100000; i++) {
        nprof_profile *p = finished(uneven_rt, i, 0);
        if (!p || nprof_store_push(nprof_runtime_store(uneven_rt), p) != NPROF_OK)
            return (void *)1;
        int slow = (i / 5000 & 1) == parity;
        for (volatile int k = 0; slow && k < 300; k++) {
        }
    }
    return NULL;
}

/* Two threads never push at the same rate, and each evicts the other's profiles: the faster
 * one must not allocate a new profile for every one it ships back to the slower, which would
 * then free it (malloc and free across threads on every request). */
TEST(threads_pushing_at_different_rates_reuse_profiles_instead_of_allocating)
{
    uneven_rt = make_runtime("max_history=1000");
    uint64_t before = ctl_u64(uneven_rt, "stats.memory.allocations");
    ASSERT_TRUE(run_threads(2, push_unevenly));
    nprof_ctl_value v;
    ASSERT_OK(nprof_ctl_get(uneven_rt, "stats.store.pushed", &v));
    ASSERT_EQ_U64(v.u, 200000);
    /* A bound that holds however the two threads interleave: a slot, once filled, stays
     * filled, so every push evicts a profile except the first into each slot, and the pusher
     * takes the evicted one back (its own, or adopted while it has fewer than
     * NPROF__POOL_ADOPT ready): a thread's `ready` never runs dry after a push that evicted.
     * Only the pushes that fill an empty slot allocate a profile: 1000 of them, plus what a
     * thread allocates on its first request (2 here; 16 allowed). */
    uint64_t allocations = ctl_u64(uneven_rt, "stats.memory.allocations") - before;
    ASSERT_U64_OP(allocations, <=, 1000 + 2 * 16);
    nprof_runtime_destroy(uneven_rt);
}

int main(void)
{
    RUN(a_small_store_is_an_exact_ring_of_the_last_pushes);
    RUN(a_large_store_keeps_the_last_capacity_profiles_from_one_thread);
    RUN(slowest_returns_the_n_longest_requests_slowest_first);
    RUN(clear_empties_the_store_but_a_held_snapshot_keeps_its_profiles);
    RUN(the_flame_graph_sums_equal_stacks_over_all_profiles);
    RUN(a_profile_of_another_runtime_is_refused_and_released);
    RUN(pushes_from_four_threads_and_a_reader_neither_crash_nor_leak);
    RUN(threads_pushing_at_different_rates_reuse_profiles_instead_of_allocating);
    return TEST_SUMMARY();
}
