/*
 * tests/pg_test.h: the throwaway PostgreSQL of every test and benchmark that needs a server,
 * through tests/pg_cluster.sh: start (stopped again at exit and on SIGINT/SIGTERM/SIGHUP),
 * pause and resume (the server goes away and comes back on the same data), and a few libpq
 * helpers.  Header-only; each program includes it once.
 *
 * Where the server comes from: $NPROF_TEST_PG (a conninfo; pause/resume are then
 * unavailable), else a cluster started in $TMPDIR.  The source tree (for the script) is
 * $NPROF_SOURCE_DIR, else the compile-time NPROF_SOURCE_DIR, else ".".
 */
#ifndef NPROF_TEST_PG_TEST_H
#define NPROF_TEST_PG_TEST_H

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#define PG_SKIP_EXIT 77

static char pg_conninfo[1024];
static char pg_dir[512];
static char pg_script[4200];
static volatile sig_atomic_t pg_running;

/* Runs `sh <script> <cmd> <dir>` and returns its exit code.  posix_spawn, not fork: glibc
 * spawns with CLONE_VM, so the parent's memory is not made copy-on-write, and threads that keep
 * running (a producer measured for blocking) take no page faults because of the script. */
static int pg_script_run(const char *cmd)
{
    extern char **environ;
    char *argv[] = {"sh", pg_script, (char *)cmd, pg_dir, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
        return 1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static void pg_stop(void)
{
    if (!pg_running)
        return;
    pg_running = 0;
    pg_script_run("stop");
}

static void pg_stop_on_signal(int sig)
{
    pg_stop();
    signal(sig, SIG_DFL);
    raise(sig);
}

/*
 * Starts a cluster with the script of source tree `src`: 0 with pg_conninfo set,
 * PG_SKIP_EXIT without PostgreSQL, 1 on failure.  The server is stopped at exit.
 */
static inline int pg_start_in(const char *program, const char *src)
{
    snprintf(pg_script, sizeof pg_script, "%s/tests/pg_cluster.sh", src);
    if (access(pg_script, R_OK) != 0) {
        fprintf(stderr, "%s: %s: %s (set NPROF_SOURCE_DIR to the source tree)\n", program,
                pg_script, strerror(errno));
        return 1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(pg_dir, sizeof pg_dir, "%s/nprof-pg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(pg_dir)) {
        fprintf(stderr, "%s: mkdtemp: %s\n", program, strerror(errno));
        return 1;
    }
    pg_running = 1;
    atexit(pg_stop);
    signal(SIGINT, pg_stop_on_signal);
    signal(SIGTERM, pg_stop_on_signal);
    signal(SIGHUP, pg_stop_on_signal);
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "sh '%s' start '%s'", pg_script, pg_dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 1;
    if (!fgets(pg_conninfo, sizeof pg_conninfo, p))
        pg_conninfo[0] = 0;
    int status = pclose(p);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    pg_conninfo[strcspn(pg_conninfo, "\r\n")] = 0;
    if (rc == PG_SKIP_EXIT) {
        pg_running = 0;
        rmdir(pg_dir);
        return PG_SKIP_EXIT;
    }
    if (rc != 0 || !pg_conninfo[0]) {
        fprintf(stderr, "%s: pg_cluster.sh start failed (exit %d)\n", program, rc);
        return 1;
    }
    return 0;
}

/* $NPROF_TEST_PG when set, else a cluster started with the script of the source tree
 * ($NPROF_SOURCE_DIR, else the compile-time NPROF_SOURCE_DIR, else "."). */
static inline int pg_start(const char *program)
{
    const char *given = getenv("NPROF_TEST_PG");
    if (given && *given) {
        snprintf(pg_conninfo, sizeof pg_conninfo, "%s", given);
        return 0;
    }
    const char *src = getenv("NPROF_SOURCE_DIR");
#ifdef NPROF_SOURCE_DIR
    if (!src || !*src)
        src = NPROF_SOURCE_DIR;
#endif
    return pg_start_in(program, src && *src ? src : ".");
}

/* Stops the server but keeps its data (pg_cluster.sh pause); 0 on success. */
static inline int pg_pause(void)
{
    return pg_running ? pg_script_run("pause") : 1;
}

static inline int pg_resume(void)
{
    return pg_running ? pg_script_run("resume") : 1;
}

static inline PGconn *pg_connect(void)
{
    PGconn *c = PQconnectdb(pg_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs `sql`; 1 on success, else 0 with the error printed. */
static inline int pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s\n  failed: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* The first column of the first row of `sql` as an integer, or -1. */
static inline long long pg_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s\n  failed: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return v;
}

#endif /* NPROF_TEST_PG_TEST_H */
