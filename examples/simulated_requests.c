/*
 * examples/simulated_requests.c: nanoprof in a pretend web server.
 *
 * Profiles a handful of simulated requests the way a framework adapter would: begin, the
 * middleware / routing / handler phases, SQL queries recorded from a "database hook" that
 * only knows the thread's current profile, a nested span, end.  Prints each request's
 * X-Profile header, the JSON of the slowest one, the store's flame graph and a few
 * introspection values.  This is the README's main job until the web demo exists.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <nanoprof/nanoprof.h>

/* Busy work standing in for real code (sleeping would hand the CPU away and distort). */
static void work_us(unsigned us)
{
    uint64_t end = nprof_now_ns() + (uint64_t)us * 1000;
    while (nprof_now_ns() < end) {
    }
}

/* What a database driver hook does: time the call, record it into the current profile. */
static void run_query(const char *sql, unsigned cost_us)
{
    uint64_t start = nprof_ticks();
    work_us(cost_us);
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .start_ticks = start,
                     .duration_ns = nprof_ticks_to_ns(nprof_ticks() - start)};
    nprof_query_record(nprof_current(), &q);
}

/* A handler with an N+1 pattern: one query for the list, one per article for its author. */
static void list_articles(void)
{
    run_query("SELECT id, title, author_id FROM articles ORDER BY id DESC LIMIT 5", 120);
    for (int id = 1; id <= 5; id++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT id, name FROM authors WHERE id = %d", id);
        run_query(sql, 40);
    }
    int span = nprof_span_begin_static(nprof_current(), "render_json", 11);
    work_us(80);
    nprof_span_end(nprof_current(), span);
}

static void health(void)
{
    work_us(3);
}

static void serve(nprof_runtime *rt, const char *method, const char *path, const char *route,
                  void (*handler)(void), int status)
{
    nprof_profile *p;
    if (nprof_request_begin(rt, method, strlen(method), path, strlen(path), 0, &p) != NPROF_OK)
        return; /* profiling off: serve the request unprofiled */
    nprof_current_set(p);

    nprof_phase_begin(p, NPROF_PHASE_MIDDLEWARE); /* e.g. sessions, auth */
    work_us(30);
    nprof_phase_end(p, NPROF_PHASE_MIDDLEWARE);

    nprof_phase_begin(p, NPROF_PHASE_ROUTING);
    nprof_profile_set_route(p, route, strlen(route));
    nprof_phase_end(p, NPROF_PHASE_ROUTING);

    nprof_phase_begin(p, NPROF_PHASE_HANDLER);
    handler();
    nprof_phase_end(p, NPROF_PHASE_HANDLER);

    nprof_request_end(p, status);
    char header[NPROF_HEADER_MAX];
    if (nprof_profile_header(p, header, sizeof header, NULL) == NPROF_OK)
        printf("%-4s %-22s %d  X-Profile: %s\n", method, path, status, header);
    nprof_request_submit(p); /* into the store; also clears the thread's current profile */
}

int main(void)
{
    nprof_runtime *rt;
    int rc = nprof_runtime_create(NULL, &rt);
    if (rc != NPROF_OK) {
        fprintf(stderr, "nanoprof: %s: %s\n", nprof_strerror(rc), nprof_last_error_detail());
        return 1;
    }

    printf("== requests\n");
    for (int round = 0; round < 3; round++) {
        serve(rt, "GET", "/api/articles", "/api/articles", list_articles, 200);
        serve(rt, "GET", "/health", "/health", health, 200);
    }

    nprof_snapshot *slowest;
    if (nprof_store_slowest(nprof_runtime_store(rt), 1, &slowest) == NPROF_OK) {
        nprof_buf json = NPROF_BUF_INIT;
        if (nprof_snapshot_count(slowest) &&
            nprof_profile_json(nprof_snapshot_get(slowest, 0), &json) == NPROF_OK)
            printf("\n== the slowest request as JSON (?profile=json)\n%s\n", json.data);
        nprof_buf_free(&json);
        nprof_snapshot_release(slowest);
    }

    nprof_buf flame = NPROF_BUF_INIT;
    if (nprof_store_flame_graph(nprof_runtime_store(rt), &flame) == NPROF_OK)
        printf("\n== flame graph of the store (collapsed stacks, for speedscope / flamegraph.pl)\n%s",
               flame.data ? flame.data : "");
    nprof_buf_free(&flame);

    printf("\n== introspection\n");
    const char *names[] = {"clock.source", "clock.read_cost_ns", "stats.requests", "stats.queries",
                           "stats.store.size", "stats.memory.bytes", "stats.memory.allocator",
                           "stats.memory.allocator_reason"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        nprof_ctl_value v;
        if (nprof_ctl_get(rt, names[i], &v) != NPROF_OK)
            continue;
        if (v.type == NPROF_CTL_UINT)
            printf("%-30s %llu\n", names[i], (unsigned long long)v.u);
        else if (v.type == NPROF_CTL_DOUBLE)
            printf("%-30s %.2f\n", names[i], v.d);
        else
            printf("%-30s %s\n", names[i], v.s);
    }
    nprof_runtime_destroy(rt);
    return 0;
}
