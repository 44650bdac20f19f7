/*
 * tests/test_callsite.c: what a query carries beyond its text and time: its call site (asked
 * of the recorder only for the first query of each shape and for slow ones), its batch size
 * and its error; how the profile keeps them within bounds, renders them as JSON, and forgets
 * them when its memory serves the next request.
 */
#include <stdint.h>
#include <string.h>

#include "json_check.h"
#include "nanoprof/nanoprof.h"
#include "nprof_test.h"
#include "test.h"

/* A recorder's call-site callback that counts its calls and writes `site` (`len` bytes,
 * returning `claim`, which may lie). */
typedef struct site_cb {
    int calls;
    const char *site;
    size_t len;
    size_t claim;
    size_t cap_seen;
} site_cb;

static size_t callsite_of(void *user, char *buf, size_t cap)
{
    site_cb *c = user;
    c->calls++;
    c->cap_seen = cap;
    memcpy(buf, c->site, c->len < cap ? c->len : cap);
    return c->claim;
}

static site_cb site(const char *s)
{
    return (site_cb){.site = s, .len = strlen(s), .claim = strlen(s)};
}

/* A query of shape `fingerprint` taking `ns`, asking `cb` for its call site. */
static nprof_query query_at(const char *sql, uint64_t fingerprint, uint64_t ns, site_cb *cb)
{
    return (nprof_query){.sql = sql,
                         .sql_len = strlen(sql),
                         .duration_ns = ns,
                         .fingerprint = fingerprint,
                         .callsite = cb ? callsite_of : NULL,
                         .callsite_user = cb};
}

/* Whether `needle` occurs in `from` before `end` (NULL: anywhere). */
static int found_before(const char *from, const char *needle, const char *end)
{
    const char *at = from ? strstr(from, needle) : NULL;
    return at && (!end || at < end);
}

#define MS 1000000ull
#define SLOW (200 * MS) /* over the 100 ms default of slow_query_threshold_ms */

static nprof_profile *begin(nprof_runtime *rt)
{
    nprof_profile *p = NULL;
    nprof_request_begin(rt, "GET", 3, "/books", 6, 0, &p);
    return p;
}

TEST(only_the_first_query_of_a_shape_and_slow_ones_ask_for_their_call_site)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    site_cb cb = site("views.py:42 in list_books");
    for (int i = 0; i < 10; i++) {
        nprof_query q = query_at("SELECT * FROM authors WHERE id = 1", 7, 1000, &cb);
        ASSERT_OK(nprof_query_record(p, &q));
    }
    ASSERT_EQ_INT(cb.calls, 1); /* nine fast repeats of a known shape: never asked */
    ASSERT_EQ_U64(cb.cap_seen, NPROF_CALLSITE_MAX);
    nprof_query slow = query_at("SELECT * FROM authors WHERE id = 2", 7, SLOW, &cb);
    ASSERT_OK(nprof_query_record(p, &slow));
    ASSERT_EQ_INT(cb.calls, 2); /* a slow repeat: asked once, for itself */
    nprof_query other = query_at("SELECT 1", 8, 1000, &cb);
    ASSERT_OK(nprof_query_record(p, &other));
    ASSERT_EQ_INT(cb.calls, 3); /* a new shape */

    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 0, &qi));
    ASSERT_MEM_STR(qi.callsite, qi.callsite_len, "views.py:42 in list_books");
    ASSERT_OK(nprof_profile_get_query(p, 1, &qi));
    ASSERT_TRUE(qi.callsite == NULL); /* a repeat keeps none */
    ASSERT_EQ_U64(qi.callsite_len, 0);
    ASSERT_OK(nprof_profile_get_query(p, 10, &qi));
    ASSERT_TRUE(qi.slow);
    ASSERT_MEM_STR(qi.callsite, qi.callsite_len, "views.py:42 in list_books");
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_get_pattern(p, 0, &pi));
    ASSERT_MEM_STR(pi.callsite, pi.callsite_len, "views.py:42 in list_books");
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_query_without_a_shape_asks_only_when_slow)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    site_cb cb = site("app.py:7");
    nprof_query fast = query_at("SELECT 1", 0, 1000, &cb);
    ASSERT_OK(nprof_query_record(p, &fast));
    nprof_query uncounted = query_at("SELECT 2", 9, 1000, &cb);
    uncounted.flags = NPROF_QUERY_UNCOUNTED; /* no shape either */
    ASSERT_OK(nprof_query_record(p, &uncounted));
    ASSERT_EQ_INT(cb.calls, 0);
    nprof_query slow = query_at("SELECT 3", 0, SLOW, &cb);
    ASSERT_OK(nprof_query_record(p, &slow));
    ASSERT_EQ_INT(cb.calls, 1);
    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 2, &qi));
    ASSERT_MEM_STR(qi.callsite, qi.callsite_len, "app.py:7");
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_shape_keeps_its_call_site_when_its_first_query_is_not_kept)
{
    nprof_runtime *rt = make_runtime("max_queries=1");
    nprof_profile *p = begin(rt);
    site_cb cb = site("jobs.py:3");
    nprof_query first = query_at("SELECT 1", 1, 1000, &cb);
    ASSERT_OK(nprof_query_record(p, &first));
    nprof_query dropped = query_at("SELECT 2", 2, 1000, &cb);
    ASSERT_EQ_INT(nprof_query_record(p, &dropped), NPROF_ELIMIT);
    nprof_query dropped_slow = query_at("SELECT 3", 0, SLOW, &cb);
    ASSERT_EQ_INT(nprof_query_record(p, &dropped_slow), NPROF_ELIMIT);
    ASSERT_EQ_INT(cb.calls, 2); /* not for the slow one: nothing would keep its call site */
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_get_pattern(p, 1, &pi));
    ASSERT_TRUE(pi.example == NULL);
    ASSERT_MEM_STR(pi.callsite, pi.callsite_len, "jobs.py:3");
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(odd_callbacks_and_call_sites_are_kept_within_bounds)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    /* No callback: nothing asked, nothing kept. */
    nprof_query none = query_at("SELECT 1", 1, SLOW, NULL);
    ASSERT_OK(nprof_query_record(p, &none));
    /* A callback that knows nothing. */
    site_cb empty = site("");
    nprof_query unknown = query_at("SELECT 2", 2, SLOW, &empty);
    ASSERT_OK(nprof_query_record(p, &unknown));
    ASSERT_EQ_INT(empty.calls, 1);
    /* 10 KB it cannot have written, NUL bytes and invalid UTF-8: cut at the cap. */
    static char big[10240];
    memset(big, 'x', sizeof big);
    memcpy(big, "a\0b\xff\xc0", 5);
    site_cb liar = {.site = big, .len = sizeof big, .claim = sizeof big};
    nprof_query huge = query_at("SELECT 3", 3, SLOW, &liar);
    ASSERT_OK(nprof_query_record(p, &huge));
    /* One that claims more than it wrote: the rest reads as zeros. */
    site_cb short_write = {.site = "ab", .len = 2, .claim = 5};
    nprof_query claim = query_at("SELECT 4", 4, 1000, &short_write);
    ASSERT_OK(nprof_query_record(p, &claim));

    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 0, &qi));
    ASSERT_TRUE(qi.callsite == NULL);
    ASSERT_OK(nprof_profile_get_query(p, 1, &qi));
    ASSERT_TRUE(qi.callsite == NULL);
    ASSERT_OK(nprof_profile_get_query(p, 2, &qi));
    ASSERT_EQ_U64(qi.callsite_len, NPROF_CALLSITE_MAX);
    ASSERT_TRUE(memcmp(qi.callsite, big, NPROF_CALLSITE_MAX) == 0);
    ASSERT_OK(nprof_profile_get_query(p, 3, &qi));
    ASSERT_EQ_U64(qi.callsite_len, 5);
    ASSERT_TRUE(memcmp(qi.callsite, "ab\0\0\0", 5) == 0);
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_get_pattern(p, 1, &pi));
    ASSERT_TRUE(pi.callsite == NULL);

    nprof_buf out = {0};
    ASSERT_OK(nprof_profile_render_json(p, &out));
    size_t where = 0;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(batch_rows_flags_and_errors_are_kept_and_errors_cut)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_query q = query_at("INSERT INTO t VALUES (%s)", 0, 1000, NULL);
    q.batch_rows = 500;
    q.flags = NPROF_QUERY_LOGGED;
    const char *err = "duplicate key \"t_pkey\"\nDETAIL:  Key (id)=(1) exists.";
    q.error = err;
    q.error_len = strlen(err);
    ASSERT_OK(nprof_query_record(p, &q));
    static char long_error[1000];
    memset(long_error, 'e', sizeof long_error);
    nprof_query cut = query_at("SELECT 1", 0, 1000, NULL);
    cut.error = long_error;
    cut.error_len = sizeof long_error;
    ASSERT_OK(nprof_query_record(p, &cut));
    nprof_query bad = query_at("SELECT 2", 0, 1000, NULL);
    bad.error_len = 3; /* with a NULL error */
    ASSERT_EQ_INT(nprof_query_record(p, &bad), NPROF_EINVAL);

    nprof_query_info qi;
    ASSERT_OK(nprof_profile_get_query(p, 0, &qi));
    ASSERT_EQ_U64(qi.batch_rows, 500);
    ASSERT_EQ_U64(qi.flags, NPROF_QUERY_LOGGED);
    ASSERT_MEM_STR(qi.error, qi.error_len, err);
    ASSERT_OK(nprof_profile_get_query(p, 1, &qi));
    ASSERT_EQ_U64(qi.batch_rows, 0);
    ASSERT_EQ_U64(qi.error_len, NPROF_QUERY_ERROR_MAX);
    nprof_profile_info in;
    ASSERT_OK(nprof_profile_get_info(p, &in));
    ASSERT_EQ_U64(in.sql_count, 2);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(json_shows_call_sites_rows_and_errors_only_when_there_are_some)
{
    nprof_runtime *rt = make_runtime("n_plus_one_threshold=2");
    nprof_profile *p = begin(rt);
    site_cb cb = site("views.py:42 \"quoted\"\n\x01");
    nprof_query a = query_at("SELECT * FROM a WHERE id = 1", 5, 1000, &cb);
    a.batch_rows = 3;
    a.error = "bad \"value\"\nline 2";
    a.error_len = strlen(a.error);
    ASSERT_OK(nprof_query_record(p, &a));
    nprof_query b = query_at("SELECT * FROM a WHERE id = 2", 5, 1000, &cb);
    ASSERT_OK(nprof_query_record(p, &b));
    nprof_request_end(p, 200);

    nprof_buf out = {0};
    ASSERT_OK(nprof_profile_render_json(p, &out));
    size_t where = 0;
    ASSERT_TRUE(json_check(out.data, out.len, &where));
    ASSERT_TRUE(strstr(out.data, "\"slow\"") == NULL);
    const char *first = strstr(out.data, "\"sql\":\"SELECT * FROM a WHERE id = 1\"");
    const char *second = strstr(out.data, "\"sql\":\"SELECT * FROM a WHERE id = 2\"");
    ASSERT_TRUE(first && second && first < second);
    const char *site_json = "\"callsite\":\"views.py:42 \\\"quoted\\\"\\n\\u0001\"";
    ASSERT_TRUE(found_before(first, site_json, second));
    ASSERT_TRUE(found_before(first, "\"rows\":3", second));
    ASSERT_TRUE(found_before(first, "\"error\":\"bad \\\"value\\\"\\nline 2\"", second));
    /* The second query is a repeat: no call site, rows or error in its object. */
    const char *second_end = strchr(second, '}');
    ASSERT_TRUE(second_end != NULL);
    ASSERT_TRUE(!found_before(second, "\"callsite\"", second_end));
    ASSERT_TRUE(!found_before(second, "\"rows\"", second_end));
    ASSERT_TRUE(!found_before(second, "\"error\"", second_end));
    /* The N+1 entry has its shape's call site. */
    ASSERT_TRUE(found_before(strstr(out.data, "\"n_plus_one\":[{"), site_json, NULL));
    nprof_buf_free(&out);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

TEST(a_recycled_profile_keeps_no_call_site_or_error_of_its_last_request)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    site_cb cb = site("secret_views.py:1 in reset_password");
    for (int i = 0; i < 40; i++) {
        nprof_query q = query_at("UPDATE users SET password = 'x'", (uint64_t)i + 1, SLOW, &cb);
        q.error = "password too short";
        q.error_len = 18;
        q.batch_rows = 9;
        q.flags = NPROF_QUERY_LOGGED;
        nprof_query_record(p, &q);
    }
    nprof_request_discard(p);
    nprof_profile *again = begin(rt);
    ASSERT_TRUE(again == p); /* the pool gave the same memory back */
    /* Same shapes again, fast and from code that knows no call site. */
    for (int i = 0; i < 40; i++) {
        nprof_query q = query_at("SELECT 1", (uint64_t)i + 1, 1000, NULL);
        ASSERT_OK(nprof_query_record(again, &q));
    }
    for (size_t i = 0; i < 40; i++) {
        nprof_query_info qi;
        ASSERT_OK(nprof_profile_get_query(again, i, &qi));
        ASSERT_TRUE(qi.callsite == NULL && qi.error == NULL);
        ASSERT_EQ_U64(qi.callsite_len + qi.error_len + qi.batch_rows + qi.flags, 0);
        nprof_pattern_info pi;
        ASSERT_OK(nprof_profile_get_pattern(again, i, &pi));
        ASSERT_TRUE(pi.callsite == NULL);
    }
    nprof_buf out = {0};
    ASSERT_OK(nprof_profile_render_json(again, &out));
    ASSERT_TRUE(strstr(out.data, "password") == NULL);
    ASSERT_TRUE(strstr(out.data, "secret") == NULL);
    nprof_buf_free(&out);
    nprof_request_discard(again);
    nprof_runtime_destroy(rt);
}

/* A callback that records into another profile: allowed (only the same profile is not). */
typedef struct nested {
    nprof_profile *other;
    int calls;
} nested;

static size_t records_elsewhere(void *user, char *buf, size_t cap)
{
    nested *n = user;
    n->calls++;
    nprof_query q = {.sql = "SELECT inner", .sql_len = 12};
    nprof_query_record(n->other, &q);
    memcpy(buf, "outer.py:1", 10);
    return cap ? 10 : 0;
}

TEST(the_sql_layer_passes_the_call_site_through)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt), *other = begin(rt);
    nested n = {.other = other};
    nprof_query q = {.sql = "SELECT * FROM books WHERE id = 7",
                     .sql_len = 32,
                     .duration_ns = 1000,
                     .callsite = records_elsewhere,
                     .callsite_user = &n};
    ASSERT_OK(nprof_sql_record(p, &q)); /* fingerprinted by the SQL layer: a first shape */
    q.sql = "SELECT * FROM books WHERE id = 8";
    ASSERT_OK(nprof_sql_record(p, &q));
    ASSERT_EQ_INT(n.calls, 1);
    nprof_pattern_info pi;
    ASSERT_OK(nprof_profile_get_pattern(p, 0, &pi));
    ASSERT_EQ_U64(pi.count, 2);
    ASSERT_MEM_STR(pi.callsite, pi.callsite_len, "outer.py:1");
    nprof_profile_info in;
    ASSERT_OK(nprof_profile_get_info(other, &in));
    ASSERT_EQ_U64(in.sql_count, 1);
    nprof_request_discard(other);
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

/* A hook that logs one query itself takes the request's fields from the profile: the route
 * template once there is one, the path before, nothing without a request. */
TEST(a_slow_log_entry_takes_its_request_fields_from_the_profile)
{
    nprof_runtime *rt = make_runtime(NULL);
    nprof_profile *p = begin(rt);
    nprof_slowlog_entry e = {.sql = "SELECT 1", .sql_len = 8};
    nprof_slowlog_entry_set_request(&e, p);
    ASSERT_MEM_STR(e.method, e.method_len, "GET");
    ASSERT_MEM_STR(e.route, e.route_len, "/books");
    ASSERT_TRUE(e.request_id_len > 0);
    ASSERT_OK(nprof_profile_set_route(p, "/books/{id}", 11));
    ASSERT_OK(nprof_profile_set_request_id(p, "req-7", 5));
    nprof_slowlog_entry_set_request(&e, p);
    ASSERT_MEM_STR(e.route, e.route_len, "/books/{id}");
    ASSERT_MEM_STR(e.request_id, e.request_id_len, "req-7");
    nprof_slowlog_entry none = {.route = "kept", .route_len = 4};
    nprof_slowlog_entry_set_request(&none, NULL);
    ASSERT_MEM_STR(none.route, none.route_len, "kept");
    ASSERT_TRUE(none.method == NULL);
    nprof_slowlog_entry_set_request(NULL, p); /* accepted, does nothing */
    nprof_request_discard(p);
    nprof_runtime_destroy(rt);
}

int main(void)
{
    RUN(only_the_first_query_of_a_shape_and_slow_ones_ask_for_their_call_site);
    RUN(a_query_without_a_shape_asks_only_when_slow);
    RUN(a_shape_keeps_its_call_site_when_its_first_query_is_not_kept);
    RUN(odd_callbacks_and_call_sites_are_kept_within_bounds);
    RUN(batch_rows_flags_and_errors_are_kept_and_errors_cut);
    RUN(json_shows_call_sites_rows_and_errors_only_when_there_are_some);
    RUN(a_recycled_profile_keeps_no_call_site_or_error_of_its_last_request);
    RUN(the_sql_layer_passes_the_call_site_through);
    RUN(a_slow_log_entry_takes_its_request_fields_from_the_profile);
    return TEST_SUMMARY();
}
