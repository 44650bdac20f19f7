/*
 * examples/simulated_requests.c: nanoprof in a pretend web server.
 *
 * Profiles a handful of simulated requests the way a framework adapter would: begin, the
 * middleware / routing / handler phases, SQL queries recorded from a "database hook" that
 * only knows the thread's current profile, a nested span, end.  Prints each request's
 * X-Profile header, the JSON of the slowest one, the store's flame graph and a few
 * introspection values.  Then the same requests go through the middleware core, as a
 * framework adapter sends them: the response headers it adds (X-Profile, Server-Timing,
 * X-Query-Count, X-Slow-Queries, X-N-Plus-One) and the dashboard's JSON and metrics.
 * The README's main job is the web demo (examples/demo/); this is the C API alone.
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
    nprof_sql_record(nprof_current(), &q); /* with its shape: N+1 patterns need it */
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
    if (nprof_profile_render_header(p, header, sizeof header, NULL) == NPROF_OK)
        printf("%-4s %-22s %d  X-Profile: %s\n", method, path, status, header);
    nprof_request_submit(p); /* into the store; also clears the thread's current profile */
}

/* What a framework adapter does around each request: ask whether the dashboard wants it,
 * else begin, mark the phases, run the handler, end, and send the headers it got. */
static void serve_through_middleware(nprof_mw *mw, const char *method, const char *path,
                                     const char *query, void (*handler)(void), int status,
                                     int print)
{
    nprof_mw_request req = {.method = method, .method_len = strlen(method), .path = path,
                            .path_len = strlen(path), .query = query,
                            .query_len = query ? strlen(query) : 0, .route = NULL,
                            .route_len = 0, .header = NULL, .user = NULL, .start_ticks = 0};
    nprof_mw_response resp;
    if (nprof_mw_handle(mw, &req, &resp) == 1) {
        printf("%s %s -> %d %s, %zu bytes\n", method, path, resp.status, resp.content_type,
               resp.body.len);
        nprof_mw_response_free(&resp);
        return;
    }
    nprof_mw_state st;
    nprof_mw_request_begin(mw, &req, &st); /* when it fails, the calls below do nothing */
    work_us(30);                            /* middleware: sessions, auth */
    nprof_mw_mark_phase(&st, NPROF_PHASE_ROUTING);
    nprof_mw_mark_phase(&st, NPROF_PHASE_HANDLER);
    handler();
    nprof_mw_headers headers;
    nprof_mw_request_end(&st, status, &headers, NULL, NULL);
    if (!print)
        return;
    printf("%s %s%s%s -> %d\n", method, path, query ? "?" : "", query ? query : "", status);
    for (size_t i = 0; i < headers.count; i++)
        printf("    %s: %s\n", headers.items[i].name, headers.items[i].value);
}

static void show_dashboard(nprof_mw *mw)
{
    serve_through_middleware(mw, "GET", "/debug/performance", NULL, NULL, 0, 1);
    static const char *const pages[] = {"/debug/performance/json", "/debug/performance/metrics"};
    for (size_t i = 0; i < 2; i++) {
        nprof_mw_request req = {.method = "GET", .method_len = 3, .path = pages[i],
                                .path_len = strlen(pages[i]), .query = NULL, .query_len = 0,
                                .route = NULL, .route_len = 0, .header = NULL, .user = NULL,
                                .start_ticks = 0};
        nprof_mw_response resp;
        if (nprof_mw_handle(mw, &req, &resp) != 1)
            continue;
        printf("\n== GET %s (%d, %s)\n", pages[i], resp.status, resp.content_type);
        /* the metrics are long: their first lines tell the format */
        size_t show = resp.body.len;
        if (i == 1) {
            const char *cut = resp.body.data;
            for (int lines = 0; cut && lines < 24; lines++)
                cut = strchr(cut, '\n') ? strchr(cut, '\n') + 1 : NULL;
            if (cut)
                show = (size_t)(cut - resp.body.data);
        }
        printf("%.*s%s\n", (int)show, resp.body.data, show < resp.body.len ? "..." : "");
        nprof_mw_response_free(&resp);
    }
}

static void run_middleware(nprof_runtime *rt)
{
    nprof_mw *mw;
    if (nprof_mw_create(rt, NULL, &mw) != NPROF_OK) {
        fprintf(stderr, "nanoprof: %s\n", nprof_last_error_detail());
        return;
    }
    printf("\n== the same requests through the middleware (the headers an adapter adds)\n");
    for (int round = 0; round < 3; round++) {
        char path[32];
        snprintf(path, sizeof path, "/api/articles/%d", 40 + round); /* one route: {id} */
        serve_through_middleware(mw, "GET", path, round == 2 ? "profile=1" : NULL,
                                 list_articles, 200, round == 2);
        serve_through_middleware(mw, "GET", "/health", NULL, health, 200, round == 2);
    }
    show_dashboard(mw);
    nprof_mw_destroy(mw);
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
    if (nprof_store_snapshot_slowest(nprof_runtime_store(rt), 1, &slowest) == NPROF_OK) {
        nprof_buf json = NPROF_BUF_INIT;
        if (nprof_snapshot_count(slowest) &&
            nprof_profile_render_json(nprof_snapshot_get(slowest, 0), &json) == NPROF_OK)
            printf("\n== the slowest request as JSON (?profile=json)\n%s\n", json.data);
        nprof_buf_free(&json);
        nprof_snapshot_release(slowest);
    }

    nprof_buf flame = NPROF_BUF_INIT;
    if (nprof_store_render_collapsed(nprof_runtime_store(rt), &flame) == NPROF_OK)
        printf("\n== flame graph of the store (collapsed stacks, for speedscope / flamegraph.pl)\n%s",
               flame.data ? flame.data : "");
    nprof_buf_free(&flame);

    printf("\n== introspection\n");
    const char *names[] = {"clock.source", "clock.read_cost_ns", "stats.requests", "stats.queries",
                           "stats.store.size", "stats.memory.bytes", "stats.memory.allocator",
                           "stats.memory.allocator_reason", "stats.sql.shape_cache.used",
                           "stats.sql.shape_cache.misses"};
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
    run_middleware(rt);
    nprof_runtime_destroy(rt);
    return 0;
}
