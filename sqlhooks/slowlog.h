/*
 * sqlhooks/slowlog.h: the slow-query log's internals, shared by slowlog.c (queue, request
 * path, open/close), slowlog_writer.c (the writer thread) and slowlog_read.c (dashboards).
 */
#ifndef NPROF_SQLHOOKS_SLOWLOG_H
#define NPROF_SQLHOOKS_SLOWLOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

#include "nanoprof/redact.h"
#include "nanoprof/slowlog.h"
#include "runtime/alloc.h"
#include "runtime/counter.h"

#define NPROF__SLOW_METHOD_MAX 16
#define NPROF__SLOW_ROUTE_MAX 256
#define NPROF__SLOW_REQUEST_ID_MAX 64

/* A fingerprint column (bigint: the 64 bits as a signed value) as the 16 lowercase hex
 * digits nanoprof prints everywhere else.  to_hex() of a bigint prints the 64 bits as
 * unsigned (a negative value gives 16 digits, its two's complement); lpad() puts back the
 * leading zeros it leaves out.  The read calls and the companion view both use it. */
#define NPROF__SLOWLOG_FP_HEX(column) "lpad(to_hex(" column "), 16, '0')"

/* Slot flags. */
#define NPROF__SLOT_TRUNCATED 1u   /* sql or params was cut */
#define NPROF__SLOT_SQL_CUT 2u     /* the sql was cut: no plan, fingerprint of the kept part */
#define NPROF__SLOT_HAS_PARAMS 4u
#define NPROF__SLOT_HAS_METHOD 8u
#define NPROF__SLOT_HAS_ROUTE 16u
#define NPROF__SLOT_HAS_REQUEST_ID 32u
#define NPROF__SLOT_HAS_CALLSITE 64u

/*
 * One queue slot (Vyukov's bounded queue): `seq` equals the slot's position when it is free
 * for the producer of that position, position + 1 once that producer has filled it, and
 * position + capacity once the writer has consumed it.  The text follows the header:
 * max_sql_bytes of SQL, then max_params_bytes of parameters.
 */
typedef struct nprof__slot {
    _Atomic uint64_t seq;
    double duration_ms;
    uint64_t timestamp_us;
    uint64_t fingerprint;
    uint32_t sql_len;
    uint32_t params_len;
    uint16_t route_len;
    uint8_t method_len;
    uint8_t request_id_len;
    uint32_t flags;
    uint16_t callsite_len;
    char method[NPROF__SLOW_METHOD_MAX];
    char request_id[NPROF__SLOW_REQUEST_ID_MAX];
    char route[NPROF__SLOW_ROUTE_MAX];
    char callsite[NPROF_CALLSITE_MAX];
    char text[];
} nprof__slot;

struct nprof_slowlog {
    /* Producers: the next position to fill.  Alone on its line: every enqueue writes it. */
    _Alignas(NPROF__CACHELINE) _Atomic uint64_t enqueue_pos;
    _Alignas(NPROF__CACHELINE) _Atomic uint64_t dropped;   /* rare path only */
    _Atomic int closing;                                   /* enqueue refuses once set */
    /* The writer: the next position to consume (only the writer thread touches it). */
    _Alignas(NPROF__CACHELINE) uint64_t dequeue_pos;

    /* Fixed at open. */
    _Alignas(NPROF__CACHELINE) char *slots;
    size_t slot_stride;
    size_t slots_bytes;
    uint64_t mask;                 /* capacity - 1 */
    uint32_t max_sql, max_params;
    int normalized_only;
    nprof_redactor *redactor;      /* NULL when redaction is off */
    nprof__alloc *alloc;
    nprof__alloc own_alloc;        /* used when no runtime was given */
    int own_alloc_used;
    nprof_runtime *rt;
    nprof_slowlog_options opts;
    char *conninfo;
    char qtable[160];              /* the table, quoted: "schema"."name" */
    char index_prefix[64];         /* the unquoted last part, for index names */
    char host[128];
    int pid;
    uint64_t writer_token;         /* high bits of this log's batch ids */

    nprof__counter truncated, redactions;

    /* The writer's counters, read by nprof_slowlog_get_stats(). */
    _Atomic uint64_t written, batches, batch_retries, reconnects, plans, deleted, consumed;
    _Atomic int connected;
    _Atomic int aborting;          /* close's time is up: the writer exits now */

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;            /* guards the fields below */
    pthread_cond_t cv;             /* wakes the writer (close), and close (writer done) */
    pthread_cond_t ready_cv;       /* wakes nprof_slowlog_wait_ready(): `ready` or `done` set,
                                      or close began; apart from `cv` so that no waiter cuts
                                      the writer's naps short */
    int stop;                      /* close asked the writer to flush and exit */
    int done;                      /* the writer has exited its loop */
    int ready;                     /* connected, table and view made (the writer sets and
                                      clears it) */
    PGcancel *cancel;              /* for the writer's connection, so close can cancel */
    char last_error[256];

    pthread_mutex_t read_mu;       /* guards read_conn */
    PGconn *read_conn;
};

/* The slot at queue position `pos`. */
static inline nprof__slot *nprof__slowlog_slot(const nprof_slowlog *log, uint64_t pos)
{
    return (nprof__slot *)(log->slots + (size_t)(pos & log->mask) * log->slot_stride);
}

/* CLOCK_MONOTONIC now + `ms`, for the condition variable's timed waits. */
struct timespec nprof__slowlog_deadline(uint32_t ms);

/* The writer thread's body (slowlog_writer.c). */
void *nprof__slowlog_writer(void *arg);

/* Sets log->ready (takes log->mu) and wakes nprof_slowlog_wait_ready(). */
void nprof__slowlog_set_ready(nprof_slowlog *log, int ready);

/* Records the writer's last error for the stats (takes log->mu). */
void nprof__slowlog_set_error(nprof_slowlog *log, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Opens a connection for `log` with its settings (UTF8, application_name), waiting at most
 * `timeout_ms` and giving up early when log->aborting is set.  NULL on failure, with the
 * reason in `err`. */
PGconn *nprof__slowlog_connect(nprof_slowlog *log, uint32_t timeout_ms, char *err,
                               size_t err_len);

#endif /* NPROF_SQLHOOKS_SLOWLOG_H */
