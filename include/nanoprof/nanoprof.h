/*
 * nanoprof/nanoprof.h: the whole public API of nanoprof in one include.
 *
 * nanoprof is an embeddable nanosecond-resolution request profiler.  A host (a web framework,
 * a C HTTP server, a language binding) creates one runtime, begins a profile per request,
 * marks phases and spans, records SQL queries, ends the request, renders headers or JSON from
 * the profile, and submits it to the runtime's store for dashboards and flame graphs.
 *
 * Headers, one per concern:
 *   common.h   version, result codes, nprof_buf
 *   clock.h    nanosecond clock (inline tick reads)
 *   config.h   configuration struct, NANOPROF_CONF
 *   runtime.h  the runtime handle and dotted-name introspection
 *   profile.h  RequestProfile: phases, spans, queries, renderers
 *   store.h    ProfileStore ring buffer, snapshots, flame graphs
 *   sql.h      SQL normalization, fingerprints, recording queries with their shape
 *   middleware.h  the request lifecycle of a web framework: headers, aggregation,
 *                 dashboards and exports
 *   redact.h   PCRE2 redaction of parameters and SQL text
 *   slowlog.h  the persistent slow-query log in a PostgreSQL table
 *   querystats.h  per-shape query statistics for a whole process (in-process
 *                 pg_stat_statements)
 *   pq.h       libpq instrumentation: wrappers, begin/end, the LD_PRELOAD shim's recording
 */
#ifndef NANOPROF_NANOPROF_H
#define NANOPROF_NANOPROF_H

#include "common.h"
#include "clock.h"
#include "config.h"
#include "runtime.h"
#include "profile.h"
#include "store.h"
#include "sql.h"
#include "middleware.h"
#include "redact.h"
#include "slowlog.h"
#include "querystats.h"
#include "pq.h"

#endif /* NANOPROF_NANOPROF_H */
