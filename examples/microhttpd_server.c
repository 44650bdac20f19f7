/*
 * examples/microhttpd_server.c: nanoprof's C middleware mounted in a real HTTP server
 * (GNU libmicrohttpd), the whole integration in one file, for a framework author to copy.
 *
 * Usage (built by CMake when pkg-config finds libmicrohttpd: apt-get install libmicrohttpd-dev):
 *
 *     build/release/microhttpd_server --port 8080       # in the CMake build directory
 *     curl -i http://127.0.0.1:8080/articles            # N+1: see X-N-Plus-One
 *     curl -i http://127.0.0.1:8080/articles/7          # X-Profile, Server-Timing, X-Query-Count
 *     curl 'http://127.0.0.1:8080/articles/7?profile=json'   # the request's profile as JSON
 *     open http://127.0.0.1:8080/debug/performance      # the dashboard (/json, /metrics, ...)
 *
 *     microhttpd_server --port 8080 --production --token s3cret
 *     curl -i -H 'X-Profile-Token: s3cret' 'http://127.0.0.1:8080/articles?profile=1'
 *     curl -H 'X-Profile-Token: s3cret' http://127.0.0.1:8080/debug/performance/metrics
 *
 * --port 0 picks a free port; the first line on stdout says which ("listening on
 * http://127.0.0.1:<port>/").  SIGINT or SIGTERM stops the server cleanly.
 * tests/test_microhttpd_server.c runs it and checks what it answers.
 *
 * Where each nanoprof call goes, in libmicrohttpd's terms (MHD calls the access handler
 * several times per request: once when the headers are in, once per chunk of the body, and
 * once more when the body is done):
 *
 *     URI log callback      the request line was read: note the time and the raw query string
 *     access handler, 1st   nprof_mw_handle() (the dashboard?) or nprof_mw_request_begin()
 *     access handler, body  nothing: the upload counts as middleware time
 *     access handler, last  nprof_current_set(), routing and handler marks, the route
 *                           template, the handler, nprof_mw_request_end(), headers onto the
 *                           MHD response, queue it
 *     completion callback   end what never reached its response (client gone), free
 *
 * Errors: nanoprof never fails a request.  A begin that fails leaves the request unprofiled
 * (every later call does nothing on its state), and an end that gives no headers sends the
 * response without them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <nanoprof/nanoprof.h>

/* What every callback needs, given to MHD as its closure. */
typedef struct app {
    nprof_mw *mw;
    atomic_int begin_failures; /* reported once on stderr, then only counted */
} app;

/* One request, from the URI log callback to the completion callback.  MHD hands it back to
 * every callback of the request (its "request context"), whichever thread runs them. */
typedef struct request_ctx {
    uint64_t arrived_ticks;    /* nprof_ticks() when the request line was read */
    char *query;               /* the raw query string, without '?'; NULL when none */
    size_t query_len;
    int called;                /* the access handler's first call has run */
    int begun;                 /* nprof_mw_request_begin() ran: `st` is initialised */
    int is_dashboard;          /* nprof_mw_handle() answered: send `dashboard` */
    nprof_mw_state st;         /* the middleware's state of this request */
    nprof_mw_response dashboard;
} request_ctx;

/* ---- the application: a router and three handlers ---------------------------------------- */

/* What a database driver hook does around each call: time it and record it into the thread's
 * current profile.  nprof_sql_record() (not nprof_query_record()) gives the query its shape,
 * which N+1 detection needs; it accepts the NULL that nprof_current() returns when the
 * request is not profiled, so a hook never has to check. */
static void db_query(const char *sql)
{
    uint64_t start = nprof_ticks();
    struct timespec round_trip = {0, 200 * 1000}; /* stands in for the database: 0.2 ms */
    nanosleep(&round_trip, NULL);
    nprof_query q = {.sql = sql, .sql_len = strlen(sql), .start_ticks = start,
                     .duration_ns = nprof_ticks_to_ns(nprof_ticks() - start)};
    nprof_sql_record(nprof_current(), &q);
}

/* A handler's answer: status and body (static or in `buf`). */
typedef struct reply {
    int status;
    const char *content_type;
    char buf[1024];
    const char *body;
    size_t len;
} reply;

static void reply_text(reply *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = text;
    r->len = strlen(text);
}

/* GET /health: no query at all. */
static void health(reply *r, long id)
{
    (void)id;
    reply_text(r, 200, "ok\n");
}

/* GET /articles: the N+1 pattern nanoprof is there to find.  One query for the list, then one
 * per article for its author, as an ORM's lazy loading does: X-N-Plus-One names the shape. */
static void list_articles(reply *r, long id)
{
    (void)id;
    db_query("SELECT id, title, author_id FROM articles ORDER BY id DESC LIMIT 10");
    size_t len = (size_t)snprintf(r->buf, sizeof r->buf, "[");
    for (int i = 1; i <= 10; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT id, name FROM authors WHERE id = %d", 100 + i);
        db_query(sql);
        /* rendering is the handler's own time; a span shows it apart in the flame graph */
        int span = nprof_span_begin_static(nprof_current(), "render", 6);
        len += (size_t)snprintf(r->buf + len, sizeof r->buf - len, "%s{\"id\":%d,\"author\":%d}",
                                i > 1 ? "," : "", i, 100 + i);
        nprof_span_end(nprof_current(), span);
    }
    snprintf(r->buf + len, sizeof r->buf - len, "]\n");
    r->status = 200;
    r->content_type = "application/json";
    r->body = r->buf;
    r->len = strlen(r->buf);
}

/* GET /articles/<id>: the fixed version, one query with a join. */
static void show_article(reply *r, long id)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT a.id, a.title, u.name FROM articles a JOIN authors u ON u.id = a.author_id "
             "WHERE a.id = %ld", id);
    db_query(sql);
    snprintf(r->buf, sizeof r->buf, "{\"id\":%ld,\"title\":\"Article %ld\"}\n", id, id);
    r->status = 200;
    r->content_type = "application/json";
    r->body = r->buf;
    r->len = strlen(r->buf);
}

typedef void (*handler_fn)(reply *r, long id);

/* The router: finds the handler and the route template of `path`.  The template is what the
 * dashboard groups by ("/articles/{id}", not one row per id).  A path no route matches gets
 * one template of its own: otherwise every path a scanner tries would become a route row. */
static handler_fn route(const char *path, const char **template_out, long *id)
{
    *id = 0;
    if (!strcmp(path, "/health")) {
        *template_out = "/health";
        return health;
    }
    if (!strcmp(path, "/articles")) {
        *template_out = "/articles";
        return list_articles;
    }
    if (!strncmp(path, "/articles/", 10) && path[10] >= '0' && path[10] <= '9') {
        char *end;
        errno = 0;
        *id = strtol(path + 10, &end, 10);
        if (*end == '\0' && errno == 0) {
            *template_out = "/articles/{id}";
            return show_article;
        }
    }
    *template_out = "{unmatched}";
    return NULL;
}

/* ---- the adapter: nanoprof around every request ------------------------------------------ */

/* nprof_mw_header_fn: the middleware asks for X-Profile-Token through this.  MHD compares
 * header names case-insensitively, as the middleware expects, and takes counted names. */
static const char *lookup_header(void *user, const char *name, size_t name_len, size_t *value_len)
{
    const char *value = NULL;
    if (MHD_lookup_connection_value_n(user, MHD_HEADER_KIND, name, name_len, &value,
                                      value_len) != MHD_YES)
        return NULL;
    return value;
}

/* The request as the middleware takes it, for both nprof_mw_handle() and begin.  Only
 * read during those calls, so MHD's own strings are passed, not copies. */
static void describe(const request_ctx *ctx, struct MHD_Connection *c, const char *method,
                     const char *url, nprof_mw_request *req)
{
    *req = (nprof_mw_request){
        .method = method, .method_len = strlen(method),
        /* The path MHD decoded, the one the router sees.  (A %00 in it ends the string
         * early: the profile then shows the path up to there, never bytes beyond.) */
        .path = url, .path_len = strlen(url),
        /* The raw query string: the middleware parses ?profile= and profile_token itself */
        .query = ctx->query, .query_len = ctx->query_len,
        .route = NULL, .route_len = 0, /* not known yet: the router runs later */
        .header = lookup_header, .user = c,
        .start_ticks = ctx->arrived_ticks,
    };
}

/* MHD_OPTION_URI_LOG_CALLBACK: called once per request, as soon as the request line is read,
 * with the raw URI.  Two reasons to start here: it is the earliest moment of the request (its
 * time counts from here, so reading the headers is inside it), and the only place MHD shows
 * the query string as sent, before it splits and decodes it into arguments.  What it
 * returns is the request context MHD passes to every later callback. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    request_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL; /* the request is served unprofiled */
    ctx->arrived_ticks = nprof_ticks();
    const char *q = strchr(uri, '?');
    if (q) {
        ctx->query_len = strlen(q + 1);
        ctx->query = malloc(ctx->query_len + 1);
        if (ctx->query)
            memcpy(ctx->query, q + 1, ctx->query_len + 1);
        else
            ctx->query_len = 0; /* no ?profile= then, which only costs the profile output */
    }
    return ctx;
}

/* Adds the middleware's headers to an MHD response.  Their values are printable ASCII
 * whatever the SQL or the path held (nprof_mw_headers), so MHD never refuses one for a CR
 * or LF; were it to refuse, the response goes without that header, never fails. */
static void add_headers(struct MHD_Response *resp, const nprof_mw_headers *hs)
{
    for (size_t i = 0; i < hs->count; i++)
        MHD_add_response_header(resp, hs->items[i].name, hs->items[i].value);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, int status, const char *content_type,
                                  const void *body, size_t len, const nprof_mw_headers *hs)
{
    /* MUST_COPY: the body lives in this call's memory (a handler's buffer, an nprof_buf);
     * MHD only reads it then, though its parameter is not const. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body,
                                                                MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO; /* out of memory: MHD closes the connection */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (hs)
        add_headers(resp, hs);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp); /* MHD keeps its own reference until it is sent */
    return ok;
}

/* The first call of a request: its headers are in. */
static void first_call(app *a, request_ctx *ctx, struct MHD_Connection *c, const char *method,
                       const char *url)
{
    nprof_mw_request req;
    describe(ctx, c, method, url, &req);
    /* The dashboard first: its requests are answered here and not profiled (they would
     * crowd the dashboard with its own refreshes).  It checks the token in production and
     * says 403 itself; without a configured token it returns 0 and the app answers. */
    int rc = nprof_mw_handle(a->mw, &req, &ctx->dashboard);
    if (rc == 1) {
        ctx->is_dashboard = 1;
        return;
    }
    if (rc < 0) /* out of memory rendering it: the app answers (a 404), the server goes on */
        fprintf(stderr, "microhttpd_server: dashboard: %s\n", nprof_strerror(rc));
    /* Begin as soon as the headers are in, so that reading the body (the calls in between)
     * is middleware time.  It sets the thread's current profile too (opts.set_current). */
    rc = nprof_mw_request_begin(a->mw, &req, &ctx->st);
    ctx->begun = 1; /* whatever rc says: st is initialised, and end is safe on it */
    if (rc != NPROF_OK && rc != NPROF_ENOPROFILE && atomic_fetch_add(&a->begin_failures, 1) == 0)
        fprintf(stderr, "microhttpd_server: profiling a request failed: %s (reported once)\n",
                nprof_strerror(rc));
}

/* The last call of a request: its body is in.  Route, run the handler, end, respond. */
static enum MHD_Result last_call(request_ctx *ctx, struct MHD_Connection *c, const char *method,
                                 const char *url)
{
    /* This pool thread may have begun other requests since this one's first call (it runs an
     * event loop over many connections): make this request the current one again, so the
     * handler's database hook (db_query -> nprof_current()) records into it.  NULL when the
     * request is not profiled, which is right too. */
    nprof_current_set(ctx->st.profile);

    /* Routing, then the route template as soon as the router knows it: it names the row the
     * request is aggregated into, the dashboard's unit. */
    nprof_mw_mark_phase(&ctx->st, NPROF_PHASE_ROUTING);
    const char *template;
    long id;
    handler_fn handler = route(url, &template, &id);
    nprof_mw_set_route(&ctx->st, template, strlen(template));

    nprof_mw_mark_phase(&ctx->st, NPROF_PHASE_HANDLER);
    reply r;
    if (!handler)
        reply_text(&r, 404, "not found\n");
    else if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        reply_text(&r, 405, "method not allowed\n");
    else
        handler(&r, id);
    /* The handler returned: close its phase here, or the profile shows it closed by the end
     * of the request ("unclosed" in the JSON), as a handler that never returned would be. */
    nprof_mw_mark_phase(&ctx->st, -1);

    /* End before the response is queued: MHD sends headers with the response, so they must
     * be known now.  (A streamed body, MHD_create_response_from_callback(), would take
     * nprof_mw_get_response_headers() here and end in on_completed, after the last byte.)
     * For ?profile=json the profile is the body instead of the handler's. */
    nprof_mw_headers hs;
    nprof_buf json = NPROF_BUF_INIT;
    int json_replaces_body = 0;
    /* Not profiled (NPROF_ENOPROFILE): `hs` comes back empty and the response goes without */
    nprof_mw_request_end(&ctx->st, r.status, &hs, &json, &json_replaces_body);
    enum MHD_Result ok =
        json_replaces_body ? send_reply(c, r.status, "application/json", json.data, json.len, &hs)
                           : send_reply(c, r.status, r.content_type, r.body, r.len, &hs);
    nprof_buf_free(&json);
    return ok;
}

/* The context of a request on_uri() had no memory for: it is served, unprofiled. */
static char unprofiled; /* only its address is used */

/* MHD_AccessHandlerCallback: called for the headers, for each chunk of body, and once more
 * at the end of the body (*upload_data_size == 0 after the first call). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    (void)upload_data;
    app *a = cls;
    request_ctx *ctx = *req_cls;
    if (!ctx) { /* a first call without a context: mark it, as MHD's own examples do */
        *req_cls = &unprofiled;
        return MHD_YES;
    }
    if (ctx != (void *)&unprofiled && !ctx->called) {
        ctx->called = 1;
        first_call(a, ctx, c, method, url);
        return MHD_YES; /* MHD reads the body, if any, and calls again */
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* this app takes no bodies: consume and ignore */
        return MHD_YES;
    }
    if (ctx == (void *)&unprofiled) {
        request_ctx none = {.begun = 0}; /* a zeroed state: every nprof_mw_ call does nothing */
        return last_call(&none, c, method, url);
    }
    if (ctx->is_dashboard) /* with its own headers: Content-Security-Policy, Cache-Control */
        return send_reply(c, ctx->dashboard.status, ctx->dashboard.content_type,
                          ctx->dashboard.body.data, ctx->dashboard.body.len,
                          &ctx->dashboard.headers);
    return last_call(ctx, c, method, url);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over, answered or not.  A request whose client
 * went away before the response (an upload cut short, a timeout, the server stopping) is
 * ended here, so it is still counted and its profile goes back to the runtime.  Its status is
 * 499, nginx's "client closed request": no response was sent, and the route's row shows it. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request_ctx *ctx = *req_cls;
    if (!ctx || ctx == (void *)&unprofiled)
        return;
    if (ctx->begun && ctx->st.profile) /* end sets st.profile to NULL: this is "not ended" */
        nprof_mw_request_end(&ctx->st, 499, NULL, NULL, NULL);
    nprof_mw_response_free(&ctx->dashboard); /* zeroed when the request was not one */
    free(ctx->query);
    free(ctx);
    *req_cls = NULL;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--port N] [--threads N] [--production --token TOKEN]\n"
                    "  --port N        listen on 127.0.0.1:N (8080; 0: a free port)\n"
                    "  --threads N     MHD's thread pool size (2)\n"
                    "  --production    profile output and the dashboard need the token\n"
                    "  --token TOKEN   the token (X-Profile-Token header or profile_token=)\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned port = 8080, threads = 2;
    int production = 0;
    const char *token = NULL; /* a real server reads it from its secret store: argv shows in ps */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--production"))
            production = 1;
        else if (!strcmp(argv[i], "--token") && i + 1 < argc)
            token = argv[++i];
        else
            return usage(argv[0]);
    }
    if (port > 65535 || threads < 1 || threads > 64)
        return usage(argv[0]);
    if (production && !token)
        fprintf(stderr, "microhttpd_server: --production without --token: the dashboard is off "
                        "and no response carries profile headers\n");

    /* Signals are taken by sigwait() below, on this thread only: blocked before MHD starts
     * its threads, so they inherit the mask and none of them is interrupted by one. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    /* One runtime and one middleware per process, before the first request.  Production is a
     * runtime option (the SQL layer keeps no literals then); NANOPROF_CONF still overrides. */
    nprof_config cfg;
    nprof_config_init(&cfg);
    cfg.production = production;
    nprof_runtime *rt;
    int rc = nprof_runtime_create(&cfg, &rt);
    if (rc != NPROF_OK) {
        fprintf(stderr, "microhttpd_server: %s: %s\n", nprof_strerror(rc), nprof_last_error_detail());
        return 1;
    }
    nprof_mw_options opts;
    nprof_mw_options_init(&opts); /* dashboard at /debug/performance */
    opts.token = token;
    app a = {.mw = NULL};
    atomic_init(&a.begin_failures, 0);
    rc = nprof_mw_create(rt, &opts, &a.mw);
    if (rc != NPROF_OK) {
        fprintf(stderr, "microhttpd_server: %s: %s\n", nprof_strerror(rc), nprof_last_error_detail());
        nprof_runtime_destroy(rt);
        return 1;
    }

    /* Loopback only: the dashboard shows SQL and paths, not for the open network.
     *
     * MHD's internal polling threads, a pool of them, each an event loop over many
     * connections: MHD's usual production mode, and the harder case for a profiler, which
     * is why this example uses it.  A thread serves other requests between a request's
     * first and last call, so last_call() sets the request current again; with
     * MHD_USE_THREAD_PER_CONNECTION the same code works, one request per thread. */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
        on_request, &a,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        /* An idle client is dropped after 30 s (MHD's default is never): besides the usual
         * reason, its request then ends in on_completed instead of staying in flight. */
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, &a,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &a,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "microhttpd_server: cannot listen on 127.0.0.1:%u\n", port);
        nprof_mw_destroy(a.mw);
        nprof_runtime_destroy(rt);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on http://127.0.0.1:%u/ (dashboard: /debug/performance%s)\n",
           info ? info->port : port, production ? ", production" : "");
    fflush(stdout); /* a pipe (the test) reads the port from this line */

    int sig;
    sigwait(&stop_signals, &sig);

    /* The order matters: MHD first (it ends the requests in flight, through on_completed),
     * then the middleware (no request may be in flight), then the runtime under it. */
    MHD_stop_daemon(d);
    nprof_mw_destroy(a.mw);
    nprof_runtime_destroy(rt);
    return 0;
}
