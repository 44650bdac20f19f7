/*
 * tests/test_interleave.c: a thread's current profile never points at a request that has
 * ended.  Requests begun and ended in random order on one thread (through the middleware and
 * through the raw profile API), profiles ended on another thread than the one whose current
 * they are, and threads recycling each other's profiles through one store: every query
 * recorded through nprof_current() lands in the request that was current by the rules of
 * profile.h and middleware.h, or nowhere.
 *
 * A small store (max_history=8) makes profiles come back for new requests within a few
 * steps, so a stale current pointer would soon point at another live request: the per-request
 * query counts are checked exactly, and the texts of the kept queries name their request.
 */
#include <sched.h>
#include <stdatomic.h>

#include "nprof_test.h"
#include "test.h"

#include "nanoprof/middleware.h"

/* ---- a model of the rules, and the driver that checks the library against it ------------- */

enum { REQUESTS = 1000, MAX_OPEN = 16 };

typedef struct open_req {
    int id;
    nprof_profile *p;
    nprof_mw_state st;          /* through the middleware */
    nprof_current_saved prev;   /* through the raw API */
} open_req;

typedef struct driver {
    nprof_runtime *rt;
    nprof_mw *mw; /* NULL: the raw profile API */
    uint64_t rng;
    /* The model: which request the thread's current is (-1: none), and per request the one
     * that was current when it began, whether it still runs and the queries it must hold. */
    int current;
    int begun;
    int prev[REQUESTS];
    char live[REQUESTS];
    uint64_t expected[REQUESTS];
    open_req open[MAX_OPEN];
    int open_count;
} driver;

/* Failures name the line and print both sides; the driver then stops with that line. */
#define CHECK_U64(a, b)                                                                     \
    do {                                                                                    \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                    \
        if (a_ != b_) {                                                                     \
            fprintf(stderr, "%s:%d: expected %s == %s, got %" PRIu64 " vs %" PRIu64 "\n",   \
                    __FILE__, __LINE__, #a, #b, a_, b_);                                    \
            return __LINE__;                                                                \
        }                                                                                   \
    } while (0)
#define CHECK_PTR(a, b)                                                                     \
    do {                                                                                    \
        const void *a_ = (a), *b_ = (b);                                                    \
        if (a_ != b_) {                                                                     \
            fprintf(stderr, "%s:%d: expected %s == %s, got %p vs %p\n", __FILE__, __LINE__, \
                    #a, #b, a_, b_);                                                        \
            return __LINE__;                                                                \
        }                                                                                   \
    } while (0)

static uint32_t next_random(driver *d)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return (uint32_t)(d->rng >> 16);
}

/* The profile the model says is current, or NULL. */
static nprof_profile *model_current(const driver *d)
{
    for (int i = 0; i < d->open_count; i++)
        if (d->open[i].id == d->current)
            return d->open[i].p;
    return NULL;
}

static int label(char *buf, size_t cap, int id)
{
    return snprintf(buf, cap, "SELECT %d", id);
}

static int begin_one(driver *d)
{
    open_req *o = &d->open[d->open_count];
    int id = d->begun++;
    o->id = id;
    char path[32];
    int len = snprintf(path, sizeof path, "/r/%d", id);
    if (d->mw) {
        nprof_mw_request r = {.method = "GET", .method_len = 3, .path = path,
                              .path_len = (size_t)len};
        CHECK_U64(nprof_mw_request_begin(d->mw, &r, &o->st), NPROF_OK);
        o->p = o->st.profile;
    } else {
        CHECK_U64(nprof_request_begin(d->rt, "GET", 3, path, (size_t)len, 0, &o->p), NPROF_OK);
        o->prev = nprof_current_save();
        nprof_profile *was = nprof_current_set(o->p);
        CHECK_PTR(was, model_current(d)); /* the previous one, as nprof_current() saw it */
    }
    d->open_count++;
    d->prev[id] = d->current;
    d->live[id] = 1;
    d->current = id;
    CHECK_PTR(nprof_current(), o->p);
    return 0;
}

/* A query through the thread's current profile (a database hook), and one through an open
 * request's own handle (an event loop), each named after the request the model expects. */
static int record_some(driver *d)
{
    char sql[32];
    nprof_profile *cur = nprof_current();
    CHECK_PTR(cur, model_current(d));
    nprof_query q = {.sql = sql, .sql_len = (size_t)label(sql, sizeof sql, d->current),
                     .duration_ns = 1000};
    int rc = nprof_sql_record(cur, &q);
    CHECK_U64(rc, d->current >= 0 ? NPROF_OK : NPROF_ENOPROFILE);
    if (d->current >= 0)
        d->expected[d->current]++;
    open_req *o = &d->open[next_random(d) % (uint32_t)d->open_count];
    q.sql_len = (size_t)label(sql, sizeof sql, o->id);
    CHECK_U64(nprof_query_record(o->p, &q), NPROF_OK);
    d->expected[o->id]++;
    return 0;
}

/* Ends open request number `k`: first checks that it holds its own queries and only them. */
static int end_one(driver *d, int k)
{
    open_req o = d->open[k];
    d->open[k] = d->open[--d->open_count];
    nprof_profile_info info;
    CHECK_U64(nprof_profile_get_info(o.p, &info), NPROF_OK);
    CHECK_U64(info.sql_count, d->expected[o.id]);
    char want[32];
    int want_len = label(want, sizeof want, o.id);
    for (size_t i = 0; i < info.queries_kept; i++) {
        nprof_query_info qi;
        CHECK_U64(nprof_profile_get_query(o.p, i, &qi), NPROF_OK);
        CHECK_U64(qi.sql_len, (uint64_t)want_len);
        CHECK_U64(memcmp(qi.sql, want, (size_t)want_len), 0);
    }
    if (d->mw) {
        nprof_mw_headers hs;
        CHECK_U64(nprof_mw_request_end(&o.st, 200, &hs, NULL, NULL), NPROF_OK);
        const char *count = NULL;
        for (size_t i = 0; i < hs.count; i++)
            if (!strcmp(hs.items[i].name, "X-Query-Count"))
                count = hs.items[i].value;
        CHECK_U64(count ? strtoull(count, NULL, 10) : UINT64_MAX, d->expected[o.id]);
    } else {
        /* The raw way: put the previous one back only if this request is still current.
         * Ended, submitted (ended by submit) or discarded without an end: all three. */
        int mine = nprof_current() == o.p;
        switch (o.id % 3) {
        case 0:
            CHECK_U64(nprof_request_end(o.p, 200), NPROF_OK);
            CHECK_U64(nprof_current() == o.p, 0);
            CHECK_U64(nprof_request_submit(o.p), NPROF_OK);
            break;
        case 1:
            CHECK_U64(nprof_request_submit(o.p), NPROF_OK);
            break;
        default:
            nprof_request_discard(o.p);
        }
        if (mine)
            nprof_current_restore(o.prev);
    }
    d->live[o.id] = 0;
    if (d->current == o.id) {
        int prev = d->prev[o.id];
        d->current = prev >= 0 && d->live[prev] ? prev : -1;
    }
    CHECK_PTR(nprof_current(), model_current(d));
    return 0;
}

/* REQUESTS requests, begun and ended in random order with up to MAX_OPEN open at once.
 * Returns 0, or the line of the first failed check. */
static int interleave(nprof_runtime *rt, nprof_mw *mw, uint64_t seed)
{
    driver *d = calloc(1, sizeof *d);
    if (!d)
        return __LINE__;
    d->rt = rt;
    d->mw = mw;
    d->rng = seed | 1;
    d->current = -1;
    int rc = 0;
    while (!rc && (d->begun < REQUESTS || d->open_count)) {
        uint32_t r = next_random(d) % 8;
        if (d->begun < REQUESTS && d->open_count < MAX_OPEN && (r < 3 || !d->open_count)) {
            rc = begin_one(d);
        } else if (r < 6 && d->open_count) {
            rc = record_some(d);
        } else {
            rc = end_one(d, (int)(next_random(d) % (uint32_t)d->open_count));
        }
    }
    free(d);
    return rc;
}

/* ---- tests ------------------------------------------------------------------------------- */

TEST(interleaved_middleware_requests_get_exactly_their_queries)
{
    nprof_runtime *rt = make_runtime("max_history=8");
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    ASSERT_EQ_INT(interleave(rt, mw, 0x9E3779B97F4A7C15ull), 0);
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(mw, &t));
    ASSERT_EQ_U64(t.requests, REQUESTS);
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(interleaved_raw_requests_get_exactly_their_queries)
{
    nprof_runtime *rt = make_runtime("max_history=8");
    ASSERT_EQ_INT(interleave(rt, NULL, 0xD1B54A32D192ED03ull), 0);
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_runtime_destroy(rt);
}

TEST(ending_a_request_that_is_not_current_leaves_the_current_one)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_mw *mw = NULL;
    ASSERT_OK(nprof_mw_create(rt, NULL, &mw));
    nprof_mw_request ra = {.method = "GET", .method_len = 3, .path = "/a", .path_len = 2};
    nprof_mw_request rb = {.method = "GET", .method_len = 3, .path = "/b", .path_len = 2};
    nprof_mw_state a, b;
    ASSERT_OK(nprof_mw_request_begin(mw, &ra, &a));
    ASSERT_OK(nprof_mw_request_begin(mw, &rb, &b));
    nprof_profile *pb = b.profile;
    ASSERT_OK(nprof_mw_request_end(&a, 200, NULL, NULL, NULL));
    ASSERT_TRUE(nprof_current() == pb); /* end A while B is current: B stays */
    ASSERT_OK(nprof_mw_request_end(&b, 200, NULL, NULL, NULL));
    ASSERT_TRUE(nprof_current() == NULL); /* B's previous, A, has ended */
    nprof_mw_destroy(mw);
    nprof_runtime_destroy(rt);
}

TEST(an_ended_request_is_no_current_profile)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    ASSERT_TRUE(nprof_current_set(p) == NULL);
    ASSERT_TRUE(nprof_current() == p);
    ASSERT_OK(nprof_request_end(p, 200));
    ASSERT_TRUE(nprof_current() == NULL); /* ended, not yet submitted */
    nprof_query q = {.sql = "SELECT 1", .sql_len = 8, .duration_ns = 1};
    ASSERT_EQ_INT(nprof_query_record(nprof_current(), &q), NPROF_ENOPROFILE);
    ASSERT_TRUE(nprof_current_set(p) == NULL); /* an ended request cannot be made current */
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_current_saved none = nprof_current_save();
    ASSERT_TRUE(none.profile_ == NULL && none.cell_ == NULL && none.generation_ == 0);
    nprof_current_restore((nprof_current_saved){0}); /* all zero: none */
    ASSERT_TRUE(nprof_current() == NULL);
    ASSERT_OK(nprof_request_submit(p));
    nprof_runtime_destroy(rt);
}

TEST(a_saved_current_whose_profile_was_reused_comes_back_as_none)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *a, *b;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/a", 2, 0, &a));
    nprof_current_set(a);
    nprof_current_saved saved = nprof_current_save();
    ASSERT_TRUE(saved.profile_ == a);
    nprof_request_discard(a);
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/b", 2, 0, &b));
    ASSERT_TRUE(b == a); /* the pool hands the same memory out again */
    nprof_current_set(NULL);
    nprof_current_restore(saved); /* a's request, not b's */
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_request_discard(b);
    nprof_runtime_destroy(rt);
}

/* ---- another thread ends this thread's current request ------------------------------------- */

static nprof_runtime *shared_rt;
static nprof_profile *handed;
static _Atomic int stage;

static void wait_stage(int s)
{
    while (atomic_load(&stage) < s)
        sched_yield();
}

/* Thread 2: ends the request thread 1 made current, then begins one that (the pool hands
 * memory back where it was freed) gets the same profile, and keeps it live while thread 1
 * looks at its current. */
static void *end_it_elsewhere(void *arg)
{
    (void)arg;
    wait_stage(1);
    nprof_profile *p = handed;
    if (nprof_request_end(p, 200) != NPROF_OK)
        return (void *)1;
    nprof_request_discard(p);
    nprof_profile *again;
    if (nprof_request_begin(shared_rt, "GET", 3, "/again", 6, 0, &again) != NPROF_OK)
        return (void *)2;
    handed = again;
    atomic_store(&stage, 2);
    wait_stage(3);
    nprof_request_discard(again);
    return NULL;
}

TEST(a_request_ended_on_another_thread_is_no_longer_current)
{
    shared_rt = make_runtime(NULL);
    atomic_store(&stage, 0);
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, end_it_elsewhere, NULL), 0);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(shared_rt, "GET", 3, "/mine", 5, 0, &p));
    nprof_current_set(p);
    handed = p;
    atomic_store(&stage, 1); /* hands p over */
    wait_stage(2);
    nprof_profile *seen = nprof_current();
    int same_memory = handed == p;
    atomic_store(&stage, 3);
    void *result;
    pthread_join(t, &result);
    ASSERT_TRUE(result == NULL);
    ASSERT_TRUE(seen == NULL);
    printf("     (thread 2's next request reused the profile: %s)\n", same_memory ? "yes" : "no");
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_runtime_destroy(shared_rt);
}

/* Thread 2 keeps an ended request as its current while thread 1 destroys the runtime: the
 * check reads no memory the runtime gave back (ASan). */
static void *current_outlives_runtime(void *arg)
{
    (void)arg;
    wait_stage(1);
    nprof_current_set(handed);
    atomic_store(&stage, 2);
    wait_stage(3);
    return nprof_current() == NULL ? NULL : (void *)1;
}

TEST(a_current_profile_outliving_its_runtime_reads_as_none)
{
    shared_rt = make_runtime(NULL);
    atomic_store(&stage, 0);
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, current_outlives_runtime, NULL), 0);
    ASSERT_OK(nprof_request_begin(shared_rt, "GET", 3, "/x", 2, 0, &handed));
    atomic_store(&stage, 1);
    wait_stage(2);
    ASSERT_OK(nprof_request_submit(handed)); /* ends it: thread 2's slot is stale */
    nprof_runtime_destroy(shared_rt);        /* and frees it */
    atomic_store(&stage, 3);
    void *result;
    pthread_join(t, &result);
    ASSERT_TRUE(result == NULL);
}

TEST(destroying_another_runtime_keeps_this_threads_current)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/", 1, 0, &p));
    nprof_current_set(p);
    nprof_runtime *other = make_runtime(NULL);
    nprof_runtime_destroy(other); /* not its runtime: stays */
    ASSERT_TRUE(nprof_current() == p);
    nprof_request_discard(p);
    ASSERT_TRUE(nprof_current() == NULL);
    nprof_runtime_destroy(rt);
}

/* ---- threads recycling each other's profiles -------------------------------------------------- */

static nprof_mw *shared_mw;

static void *interleave_on_a_thread(void *arg)
{
    intptr_t n = (intptr_t)arg;
    int line = interleave(shared_rt, n % 2 ? NULL : shared_mw, 0x2545F4914F6CDD1Dull * (uint64_t)(n + 1));
    if (line)
        fprintf(stderr, "thread %d failed at line %d\n", (int)n, line);
    return line ? (void *)1 : NULL;
}

TEST(threads_interleaving_requests_on_one_store_never_mix_them)
{
    shared_rt = make_runtime("max_history=8");
    ASSERT_OK(nprof_mw_create(shared_rt, NULL, &shared_mw));
    ASSERT_TRUE(run_threads(4, interleave_on_a_thread));
    nprof_mw_totals t;
    ASSERT_OK(nprof_mw_get_totals(shared_mw, &t));
    ASSERT_EQ_U64(t.requests, 2 * REQUESTS);
    nprof_mw_destroy(shared_mw);
    nprof_runtime_destroy(shared_rt);
}

int main(void)
{
    RUN(interleaved_middleware_requests_get_exactly_their_queries);
    RUN(interleaved_raw_requests_get_exactly_their_queries);
    RUN(ending_a_request_that_is_not_current_leaves_the_current_one);
    RUN(an_ended_request_is_no_current_profile);
    RUN(a_saved_current_whose_profile_was_reused_comes_back_as_none);
    RUN(a_request_ended_on_another_thread_is_no_longer_current);
    RUN(a_current_profile_outliving_its_runtime_reads_as_none);
    RUN(destroying_another_runtime_keeps_this_threads_current);
    RUN(threads_interleaving_requests_on_one_store_never_mix_them);
    return TEST_SUMMARY();
}
