/*
 * tests/test_microhttpd_server.c: examples/microhttpd_server.c as a client sees it.
 *
 * Starts the example (its path is argv[1]) on a free port of 127.0.0.1, sends it real HTTP
 * requests over loopback from a small socket client, and checks what comes back: the profile
 * headers on a handler's response, X-N-Plus-One on the N+1 endpoint, the dashboard's JSON,
 * metrics and flame graph, the token rules of production mode, and that hostile paths and
 * queries neither crash the server nor put a CR or LF into a header.  Each server is stopped
 * with SIGTERM and must exit 0 (under ASan, with no leak).  Nothing here measures speed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json_check.h"
#include "test.h"

static const char *example_path;

/* An exchange happened: connected, sent, and a response came back that parses. */
#define ASSERT_SENT(expr) ASSERT_EQ_INT((expr), 0)

/* A running example server. */
typedef struct server {
    pid_t pid;
    unsigned port;
} server;

/* Starts the example with `args` (NULL-terminated, after the program name) and reads its
 * port from the first line it prints.  0 on success. */
static int server_start(server *s, const char *const *args)
{
    const char *argv[16] = {example_path, "--port", "0"};
    int n = 3;
    for (; args && *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int out[2];
    if (pipe(out) != 0)
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execv(example_path, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    char line[256];
    size_t len = 0;
    /* A guard, not a measure: a server that never says where it listens fails the test. */
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        if (poll(&pfd, 1, 60000) <= 0)
            break;
        ssize_t got = read(out[0], line + len, sizeof line - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(out[0]); /* the server prints nothing more */
    line[len] = '\0';
    const char *colon = strstr(line, "127.0.0.1:");
    s->port = colon ? (unsigned)strtoul(colon + 10, NULL, 10) : 0;
    if (!s->port) {
        fprintf(stderr, "server_start: no port in \"%s\"\n", line);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        return -1;
    }
    return 0;
}

/* Stops it with SIGTERM; returns its exit status (0: a clean stop), or -1. */
static int server_stop(server *s)
{
    int status;
    kill(s->pid, SIGTERM);
    if (waitpid(s->pid, &status, 0) != s->pid)
        return -1;
    if (WIFSIGNALED(status))
        fprintf(stderr, "server killed by signal %d\n", WTERMSIG(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A response: status, the header block (lines split at CRLF, as sent) and the body. */
typedef struct response {
    int status;
    char *raw; /* the whole response, NUL-terminated */
    size_t raw_len;
    const char *headers; /* after the status line, up to the blank line */
    size_t headers_len;
    const char *body;
    size_t body_len;
} response;

static void response_free(response *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* Sends `request` (raw bytes, `len` of them) to the server and reads the whole response
 * (the requests say Connection: close).  0 on success. */
static int http_raw(const server *s, const char *request, size_t len, response *r)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval guard = {.tv_sec = 60}; /* a hung server fails, never blocks ctest */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &guard, sizeof guard);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer (414) before reading it all */
        sent += (size_t)n;
    }
    size_t cap = 65536;
    r->raw = malloc(cap);
    for (;;) {
        if (!r->raw)
            break;
        if (r->raw_len + 1 == cap) {
            char *bigger = realloc(r->raw, cap *= 2);
            if (!bigger)
                break;
            r->raw = bigger;
        }
        ssize_t n = recv(fd, r->raw + r->raw_len, cap - 1 - r->raw_len, 0);
        if (n <= 0)
            break;
        r->raw_len += (size_t)n;
    }
    close(fd);
    if (!r->raw || r->raw_len < 12)
        return -1;
    r->raw[r->raw_len] = '\0';
    if (strncmp(r->raw, "HTTP/1.", 7))
        return -1;
    r->status = atoi(r->raw + 9);
    const char *line_end = strstr(r->raw, "\r\n");
    const char *blank = strstr(r->raw, "\r\n\r\n");
    if (!line_end || !blank)
        return -1;
    r->headers = line_end + 2;
    r->headers_len = blank >= r->headers ? (size_t)(blank + 2 - r->headers) : 0;
    r->body = blank + 4;
    r->body_len = r->raw_len - (size_t)(r->body - r->raw);
    return 0;
}

/* GET `target` with extra header lines (each ending in CRLF, or NULL). */
static int http_get(const server *s, const char *target, const char *extra, response *r)
{
    size_t cap = strlen(target) + (extra ? strlen(extra) : 0) + 128;
    char *req = malloc(cap);
    if (!req)
        return -1;
    int len = snprintf(req, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                       target, extra ? extra : "");
    int rc = http_raw(s, req, (size_t)len, r);
    free(req);
    return rc;
}

/* A header's value (a copy in `out`), or NULL when the response has none by that name. */
static const char *header(const response *r, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    for (const char *line = r->headers; line < r->headers + r->headers_len;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - line) > name_len && line[name_len] == ':' &&
            !strncasecmp(line, name, name_len)) {
            const char *v = line + name_len + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        line = end + 2;
    }
    return NULL;
}

/* GET `target` (with `extra` header lines) and check the status and, when `type` is not
 * NULL, how the Content-Type starts.  1 when all is as expected, else 0 with a message. */
static int get_expect(const server *s, const char *target, const char *extra, int status,
                      const char *type, response *r)
{
    char v[256];
    if (http_get(s, target, extra, r) != 0) {
        fprintf(stderr, "GET %.80s: no response\n", target);
        return 0;
    }
    const char *ct = header(r, "Content-Type", v, sizeof v);
    if (r->status != status || (type && (!ct || strncmp(ct, type, strlen(type))))) {
        fprintf(stderr, "GET %.80s: expected %d %s, got %d %s\n", target, status,
                type ? type : "", r->status, ct ? ct : "(no Content-Type)");
        return 0;
    }
    return 1;
}

/* Every header line is "Name: value" of printable ASCII: no CR or LF inside a line, no
 * control byte, so nothing a request carried can start a header of its own. */
static int headers_clean(const response *r)
{
    for (const char *line = r->headers; line < r->headers + r->headers_len;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            return 0;
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (!colon || colon == line)
            return 0;
        for (const char *c = line; c < end; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return 0;
        line = end + 2;
    }
    return 1;
}

static int is_profile_header(const char *line)
{
    static const char *const names[] = {"X-Profile:", "Server-Timing:", "X-Query-Count:",
                                        "X-N-Plus-One:", "X-Slow-Queries:"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncasecmp(line, names[i], strlen(names[i])))
            return 1;
    return 0;
}

/* How many of the profile headers the response has. */
static int profile_headers(const response *r)
{
    int n = 0;
    for (const char *line = r->headers; line < r->headers + r->headers_len;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        n += is_profile_header(line);
        line = end + 2;
    }
    return n;
}

/* The unsigned number after `key` in `text` (e.g. "\"requests\":"), or -1. */
static long long number_after(const char *text, const char *key)
{
    const char *k = text ? strstr(text, key) : NULL;
    if (!k)
        return -1;
    k += strlen(key);
    while (*k == ' ')
        k++;
    return *k >= '0' && *k <= '9' ? strtoll(k, NULL, 10) : -1;
}

/* ---- development mode --------------------------------------------------------------------- */

static server dev;
static int dev_app_requests; /* requests the app answered, for the dashboard's count */

/* get_expect() on the development server, for a request the app answers (counted), whose
 * headers must all be clean. */
static int dev_get(const char *target, int status, const char *type, response *r)
{
    dev_app_requests++;
    if (!get_expect(&dev, target, NULL, status, type, r))
        return 0;
    if (!headers_clean(r))
        fprintf(stderr, "GET %.80s: a header line is not clean:\n%.*s\n", target,
                (int)r->headers_len, r->headers);
    return headers_clean(r);
}

/* A header's value, or "(absent)": for ASSERT_STR, which prints both sides. */
#define HEADER(r, name) (header((r), (name), v, sizeof v) ? v : "(absent)")

TEST(handler_response_has_well_formed_profile_headers)
{
    response r;
    char v[1024];
    ASSERT_TRUE(dev_get("/articles/7", 200, "application/json", &r));
    /* X-Profile: total=1.2ms handler=0.8ms sql=0.3ms(1q) middleware=... routing=... */
    const char *xp = header(&r, "X-Profile", v, sizeof v);
    ASSERT_TRUE(xp && !strncmp(xp, "total=", 6));
    ASSERT_TRUE(strstr(xp, " handler=") && strstr(xp, "(1q)") && strstr(xp, " routing="));
    /* Server-Timing: total;dur=<ms>, ... (W3C: comma-separated metrics, dur in ms) */
    const char *st = header(&r, "Server-Timing", v, sizeof v);
    ASSERT_TRUE(st && !strncmp(st, "total;dur=", 10));
    ASSERT_TRUE(strstr(st, ", handler;dur=") && strstr(st, ", sql;dur="));
    ASSERT_TRUE(strtod(st + 10, NULL) > 0);
    ASSERT_STR(HEADER(&r, "X-Query-Count"), "1");
    ASSERT_STR(HEADER(&r, "X-Slow-Queries"), "0");
    ASSERT_STR(HEADER(&r, "X-N-Plus-One"), "(absent)");
    ASSERT_TRUE(strstr(r.body, "\"id\":7") != NULL);
    response_free(&r);
}

TEST(plain_handler_has_profile_headers_and_no_query)
{
    response r;
    char v[1024];
    ASSERT_TRUE(dev_get("/health", 200, "text/plain", &r));
    ASSERT_TRUE(header(&r, "X-Profile", v, sizeof v) != NULL);
    ASSERT_STR(HEADER(&r, "X-Query-Count"), "0");
    ASSERT_MEM_STR(r.body, r.body_len, "ok\n");
    response_free(&r);
}

TEST(n_plus_one_endpoint_gets_x_n_plus_one)
{
    response r;
    char v[1024];
    ASSERT_TRUE(dev_get("/articles", 200, "application/json", &r));
    ASSERT_STR(HEADER(&r, "X-Query-Count"), "11");
    const char *np = header(&r, "X-N-Plus-One", v, sizeof v);
    ASSERT_TRUE(np != NULL);
    /* an RFC 8941 string of the shape, then its count */
    ASSERT_TRUE(np[0] == '"' && strstr(np, "authors") && strstr(np, "\";count=10"));
    response_free(&r);
}

TEST(profile_json_replaces_the_body)
{
    response r;
    ASSERT_TRUE(dev_get("/articles/3?profile=json", 200, "application/json", &r));
    size_t where = 0;
    ASSERT_TRUE(json_check(r.body, r.body_len, &where));
    ASSERT_TRUE(strstr(r.body, "\"route\":\"/articles/{id}\"") != NULL);
    ASSERT_TRUE(strstr(r.body, "\"queries\":[") != NULL);
    response_free(&r);
}

/* A POST whose body MHD reads in several calls (405: the app takes none), and two paths no
 * route matches (404, under the one route "{unmatched}"): profiled like any other. */
TEST(refused_requests_are_profiled_too)
{
    const char post[] = "POST /articles HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n"
                        "Connection: close\r\n\r\nhello=world";
    response r;
    char v[256];
    ASSERT_SENT(http_raw(&dev, post, sizeof post - 1, &r));
    dev_app_requests++;
    ASSERT_EQ_INT(r.status, 405);
    ASSERT_TRUE(header(&r, "X-Profile", v, sizeof v) != NULL);
    response_free(&r);
    static const char *const unknown[] = {"/no/such/page", "/articles/7/nothing"};
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(dev_get(unknown[i], 404, "text/plain", &r));
        ASSERT_TRUE(header(&r, "X-Profile", v, sizeof v) != NULL);
        response_free(&r);
    }
}

TEST(dashboard_json_parses_and_counts_the_requests)
{
    response r;
    ASSERT_TRUE(get_expect(&dev, "/debug/performance/json", NULL, 200, "application/json", &r));
    ASSERT_EQ_INT(profile_headers(&r), 0); /* dashboard requests are not profiled */
    size_t where = 0;
    if (!json_check(r.body, r.body_len, &where))
        fprintf(stderr, "invalid JSON at %zu: %.80s\n", where, r.body + where);
    ASSERT_TRUE(json_check(r.body, r.body_len, &where));
    const char *totals = strstr(r.body, "\"totals\":");
    ASSERT_TRUE(totals != NULL);
    ASSERT_INT_OP(number_after(totals, "\"requests\":"), ==, dev_app_requests);
    ASSERT_TRUE(strstr(r.body, "\"route\":\"/articles/{id}\"") != NULL);
    const char *unmatched = strstr(r.body, "\"route\":\"{unmatched}\"");
    ASSERT_TRUE(unmatched != NULL);
    ASSERT_INT_OP(number_after(unmatched, "\"count\":"), ==, 2);
    response_free(&r);
}

TEST(dashboard_html_metrics_and_flame_graph)
{
    response r;
    char v[1024];
    ASSERT_TRUE(get_expect(&dev, "/debug/performance", NULL, 200, "text/html", &r));
    ASSERT_TRUE(header(&r, "Content-Security-Policy", v, sizeof v) && strstr(v, "'nonce-"));
    response_free(&r);

    ASSERT_TRUE(get_expect(&dev, "/debug/performance/metrics", NULL, 200, "text/plain", &r));
    ASSERT_TRUE(strstr(r.body, "# TYPE nanoprof_") && strstr(r.body, "\nnanoprof_"));
    response_free(&r);

    ASSERT_TRUE(get_expect(&dev, "/debug/performance/flamegraph.svg", NULL, 200, "image/svg", &r));
    ASSERT_TRUE(strstr(r.body, "<svg") != NULL);
    response_free(&r);
}

/* Each hostile request is answered (or refused by MHD) without a crash, and no header of the
 * answer carries a CR, an LF or a header of the client's making. */
TEST(hostile_paths_and_queries_are_harmless)
{
    static const char *const targets[] = {
        "/<script>alert(1)</script>?profile=1",
        "/articles?profile=1&q=<script>alert(1)</script>",
        "/a%0D%0AX-Injected:%201?profile=1",
        "/articles?profile=1&x=%0D%0AX-Injected:%201",
        "/articles/%00?profile=1",
        "/articles?profile=1&q=a%00b",
        "/%FF%FE%C0%80?profile=json",
        "/articles?profile=json&profile_token=%0D%0A",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        response r;
        char v[256];
        ASSERT_SENT(http_get(&dev, targets[i], NULL, &r));
        ASSERT_TRUE(r.status == 200 || r.status == 404 || r.status == 400);
        ASSERT_TRUE(headers_clean(&r));
        ASSERT_TRUE(header(&r, "X-Injected", v, sizeof v) == NULL);
        if (strstr(targets[i], "profile=json") && r.status != 400) {
            size_t where;
            ASSERT_TRUE(json_check(r.body, r.body_len, &where));
            ASSERT_TRUE(!strstr(r.body, "<script>"));
        }
        response_free(&r);
    }
    /* a long query string (8 KiB), then one longer than MHD takes (it answers 414 itself) */
    for (size_t len = 8192; len <= 200000; len = len * 24) {
        char *target = malloc(len + 32);
        ASSERT_TRUE(target != NULL);
        int n = snprintf(target, len + 32, "/articles?profile=1&q=");
        memset(target + n, 'x', len);
        target[n + (int)len] = '\0';
        response r;
        int rc = http_get(&dev, target, NULL, &r);
        free(target);
        if (rc == 0) {
            ASSERT_TRUE(r.status == 200 || r.status == 414 || r.status == 431 || r.status == 400);
            ASSERT_TRUE(headers_clean(&r));
        }
        response_free(&r);
    }
    /* a header value with a token full of control bytes is no way in either */
    response r;
    ASSERT_SENT(http_get(&dev, "/health?profile=1", "X-Profile-Token: \x01\x7f<script>\r\n", &r));
    ASSERT_TRUE(headers_clean(&r));
    response_free(&r);
    /* and the server still answers */
    ASSERT_SENT(http_get(&dev, "/health", NULL, &r));
    ASSERT_EQ_INT(r.status, 200);
    response_free(&r);
}

/* The dashboard's count of measured requests, or -1. */
static long long dev_requests_counted(void)
{
    response r;
    long long n = -1;
    if (get_expect(&dev, "/debug/performance/json", NULL, 200, "application/json", &r))
        n = number_after(strstr(r.body, "\"totals\":"), "\"requests\":");
    response_free(&r);
    return n;
}

/* A client that goes away before its upload is done never gets a response: the server ends
 * the request in its completion callback, so it is still counted (and nothing leaks). */
TEST(an_unfinished_upload_is_ended_and_counted)
{
    long long before = dev_requests_counted();
    ASSERT_TRUE(before >= 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_TRUE(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)dev.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    /* "Expect: 100-continue": the server says "100 Continue" once the access handler's first
     * call has begun the request, so the client knows it is cutting short a begun request */
    const char head[] = "POST /articles HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                        "Expect: 100-continue\r\n\r\n";
    ASSERT_EQ_INT(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), sizeof head - 1);
    struct timeval guard = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    char got[64] = "";
    ssize_t n = recv(fd, got, sizeof got - 1, 0);
    ASSERT_TRUE(n > 0 && strstr(got, " 100 ") != NULL);
    close(fd); /* before any of the 1000 bytes */
    /* The server sees the close when it next polls the socket: wait for that (bounded). */
    long long after = before;
    for (int tries = 0; tries < 600 && after == before; tries++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        after = dev_requests_counted();
    }
    ASSERT_INT_OP(after, ==, before + 1);
}

TEST(development_server_stops_cleanly)
{
    ASSERT_EQ_INT(server_stop(&dev), 0);
}

/* ---- production mode ---------------------------------------------------------------------- */

static server prod;

/* What production answers: profile headers only to ?profile= with the token (header or
 * query), the dashboard only with it (403 otherwise), and the app's answer either way. */
TEST(production_needs_the_token_for_headers_and_dashboard)
{
    static const struct {
        const char *target, *extra;
        int status, profiled;
    } cases[] = {
        {"/articles", NULL, 200, 0},
        {"/articles?profile=1", NULL, 200, 0}, /* asking is not enough */
        {"/articles?profile=1", "X-Profile-Token: wrong\r\n", 200, 0},
        {"/articles?profile=1&profile_token=s3cre", NULL, 200, 0},
        {"/debug/performance/json", NULL, 403, 0},
        {"/debug/performance/metrics?profile_token=wrong", NULL, 403, 0},
        {"/articles?profile=1", "X-Profile-Token: s3cret\r\n", 200, 1},
        {"/articles?profile=1&profile_token=s3cret", NULL, 200, 1},
        {"/debug/performance/json", "X-Profile-Token: s3cret\r\n", 200, 0},
        {"/debug/performance/metrics?profile_token=s3cret", NULL, 200, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        response r;
        char v[256];
        ASSERT_TRUE(get_expect(&prod, cases[i].target, cases[i].extra, cases[i].status, NULL, &r));
        if (cases[i].profiled) {
            ASSERT_TRUE(header(&r, "X-Profile", v, sizeof v) && !strncmp(v, "total=", 6));
            ASSERT_TRUE(header(&r, "X-N-Plus-One", v, sizeof v) != NULL);
        } else {
            ASSERT_EQ_INT(profile_headers(&r), 0);
        }
        if (!strcmp(cases[i].target, "/debug/performance/json") && r.status == 200) {
            size_t where;
            ASSERT_TRUE(json_check(r.body, r.body_len, &where));
            /* every /articles request above was measured, profiled or not */
            ASSERT_INT_OP(number_after(strstr(r.body, "\"totals\":"), "\"requests\":"), ==, 6);
        }
        if (strstr(cases[i].target, "/metrics") && r.status == 200)
            ASSERT_TRUE(strstr(r.body, "# TYPE nanoprof_") != NULL);
        response_free(&r);
    }
}

TEST(production_server_stops_cleanly)
{
    ASSERT_EQ_INT(server_stop(&prod), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <path of microhttpd_server>\n", argv[0]);
        return 2;
    }
    example_path = argv[1];
    signal(SIGPIPE, SIG_IGN);

    if (server_start(&dev, NULL) != 0) {
        fprintf(stderr, "FAIL the development server did not start\n");
        return 1;
    }
    RUN(handler_response_has_well_formed_profile_headers);
    RUN(plain_handler_has_profile_headers_and_no_query);
    RUN(n_plus_one_endpoint_gets_x_n_plus_one);
    RUN(profile_json_replaces_the_body);
    RUN(refused_requests_are_profiled_too);
    RUN(dashboard_json_parses_and_counts_the_requests);
    RUN(dashboard_html_metrics_and_flame_graph);
    RUN(hostile_paths_and_queries_are_harmless);
    RUN(an_unfinished_upload_is_ended_and_counted);
    RUN(development_server_stops_cleanly);

    const char *const prod_args[] = {"--production", "--token", "s3cret", NULL};
    if (server_start(&prod, prod_args) != 0) {
        fprintf(stderr, "FAIL the production server did not start\n");
        return 1;
    }
    RUN(production_needs_the_token_for_headers_and_dashboard);
    RUN(production_server_stops_cleanly);
    return TEST_SUMMARY();
}
