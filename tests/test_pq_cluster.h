/*
 * tests/test_pq_cluster.h: the throwaway PostgreSQL of tests/test_slowlog_pg.h behind a call
 * that hands the conninfo to the caller's buffer:
 *
 *     char conninfo[1024];
 *     int rc = pq_cluster_start("test_x", conninfo, sizeof conninfo);
 *     if (rc) return rc;   // 77: no PostgreSQL server on this machine (skipped); 1: failure
 *
 * The cluster is stopped at exit.  Header-only: each program includes it once.
 */
#ifndef NPROF_TEST_PQ_CLUSTER_H
#define NPROF_TEST_PQ_CLUSTER_H

#include "test_slowlog_pg.h"

static int pq_cluster_start(const char *prog, char *conninfo, size_t cap)
{
    int rc = pg_start(prog);
    if (rc == PG_SKIP_EXIT)
        fprintf(stderr, "%s: no PostgreSQL server installed: skipped\n", prog);
    if (rc == 0)
        snprintf(conninfo, cap, "%s", pg_conninfo);
    return rc;
}

#endif /* NPROF_TEST_PQ_CLUSTER_H */
