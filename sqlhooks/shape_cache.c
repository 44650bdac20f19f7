/*
 * sqlhooks/shape_cache.c: the shapes of queries seen before, so that the same query with
 * new literals (an ORM's `WHERE id = 42`, then 43...) costs a scan and a lookup instead of a
 * normalization.
 *
 * The key is the 128-bit XXH3 (seeded per runtime) of the query's literal key: its text
 * with each literal replaced by its class (normalize.c).  A key is trusted once, when its
 * shape is first taken: a variant of the query, every literal swapped for another of its
 * class, must have the same shape.  When it does not (an ORDER BY ordinal) or
 * the shape is too long for a slot, the key is remembered as one to normalize every time.
 * Texts without a key (comments, dollar quotes...) are normalized every time too.
 *
 * A lookup copies the slot's value straight into the caller's buffer, which therefore needs
 * room for the text and a 16-byte trailer: NPROF_SQL_NORMALIZED_MAX(len) always has it.
 */
#include "shape_cache.h"

#include <stdlib.h>
#include <string.h>
/* Inlined, as in middleware/aggregate.c: every query's text is hashed here, and for a query
 * of a few dozen bytes the library's entry points and size dispatch cost as much as the
 * hash, and run from code of their own on each query. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "nanoprof/sql.h"
#include "normalize.h"
#include "runtime/profile.h"
#include "runtime/thread_mem.h"

#define KEY_MAX 2048 /* longer queries are normalized every time */

/* A slot's value: the normalized text, then this trailer, so that a lookup copies the text
 * straight into the caller's buffer (the trailer lands after it and is read from there). */
typedef struct shape_trailer {
    uint64_t fingerprint;
    uint64_t flags;
} shape_trailer;

#define SHAPE_TEXT_MAX (NPROF__MEMO_VALUE_MAX - sizeof(shape_trailer)) /* 976 bytes */
#define SHAPE_IGNORED 1u   /* the sql_ignore rule matches the text */
#define SHAPE_UNCACHED 2u  /* no text: queries of this key are normalized every time */

/* Whether every literal the key leaves out of `sql` becomes a placeholder: the shape of a
 * variant (normalize.h) is `text`. */
static int key_is_sound(const char *sql, size_t len, const char *text, size_t n)
{
    char variant[KEY_MAX * 2]; /* len plus at most one byte per literal */
    /* Only texts a slot can hold are checked: a variant's shape longer than that differs. */
    char shape[SHAPE_TEXT_MAX + 2];
    size_t vn, sn;
    if (n + 2 > sizeof shape ||
        !nprof__sql_literal_text(sql, len, 1, variant, sizeof variant, &vn))
        return 0;
    return nprof_sql_normalize(variant, vn, NPROF_SQL_QMARK, shape, n + 2, &sn) == NPROF_OK &&
           sn == n && memcmp(shape, text, n) == 0;
}

static int shape_fresh(nprof_runtime *rt, const char *sql, size_t len, char *out, size_t cap,
                       size_t *out_len, uint64_t *fingerprint, int *ignored, const uint64_t *key)
{
    size_t n = 0;
    int rc = nprof_sql_normalize(sql, len, NPROF_SQL_QMARK, out, cap, &n);
    *out_len = n;
    if (rc != NPROF_OK)
        return rc;
    *fingerprint = nprof__sql_text_fingerprint(out, n);
    *ignored = nprof__rule_match(&rt->sql_ignore, out, n);
    if (key) {
        shape_trailer tr = {.fingerprint = *fingerprint, .flags = *ignored ? SHAPE_IGNORED : 0};
        if (n <= SHAPE_TEXT_MAX && n + sizeof tr < cap && key_is_sound(sql, len, out, n)) {
            /* The value is put together in `out`: the trailer behind the text, then the
             * text's NUL back in its place. */
            memcpy(out + n, &tr, sizeof tr);
            nprof__memo_put(rt->shapes, key, out, n + sizeof tr);
            out[n] = '\0';
        } else {
            tr.flags = SHAPE_UNCACHED;
            nprof__memo_put(rt->shapes, key, &tr, sizeof tr);
        }
    }
    return NPROF_OK;
}

/* ---- the thread's exact texts -------------------------------------------------------------
 *
 * A parameterized query ("... WHERE id = $1", an ORM's compiled statement) comes back with
 * the very same text, and has no literal for the key to leave out.  For those, each thread
 * keeps the text itself with its shape: one 64-bit hash and a compare instead of the literal
 * scan, the 128-bit key and the shared table (measured: about 500 instructions less per
 * query).  Texts with literals are not kept here, so a stream of ever-new literals cannot
 * churn it; they take the shared table as before.  Entries are tagged with the runtime's
 * memo seed (random per runtime), so another runtime, with its own ignore rule, never takes
 * this one's. */
#define EXACT_SLOTS 16
#define EXACT_TEXT_MAX 256

typedef struct exact_entry {
    uint64_t seed; /* 0: empty */
    uint64_t hash;
    uint64_t fingerprint;
    uint32_t len, shape_len;
    int ignored;
    char text[EXACT_TEXT_MAX];
    char shape[EXACT_TEXT_MAX];
} exact_entry;

static _Thread_local exact_entry *exact_table;
static _Thread_local int exact_unavailable;

static void exact_free(void *table)
{
    free(table);
    exact_table = NULL;
}

static nprof__thread_mem exact_mem = NPROF__THREAD_MEM_INIT(exact_free);

NPROF__HOT_PATH
static exact_entry *exact_slot(uint64_t hash)
{
    if (NPROF_UNLIKELY(!exact_table)) {
        if (exact_unavailable)
            return NULL;
        exact_table = nprof__thread_mem_calloc(&exact_mem, EXACT_SLOTS * sizeof *exact_table);
        if (!exact_table) {
            exact_unavailable = 1; /* no memory, or no key: the shared table serves alone */
            return NULL;
        }
    }
    return &exact_table[hash % EXACT_SLOTS];
}

static void exact_put(exact_entry *e, uint64_t seed, uint64_t hash, const char *sql, size_t len,
                      const char *shape, size_t shape_len, uint64_t fingerprint, int ignored)
{
    if (!e || len > EXACT_TEXT_MAX || shape_len > EXACT_TEXT_MAX)
        return;
    e->seed = seed;
    e->hash = hash;
    e->fingerprint = fingerprint;
    e->len = (uint32_t)len;
    e->shape_len = (uint32_t)shape_len;
    e->ignored = ignored;
    memcpy(e->text, sql, len);
    memcpy(e->shape, shape, shape_len);
}

NPROF__HOT_PATH
int nprof__sql_shape_of(nprof_runtime *rt, const char *sql, size_t len, char *out, size_t cap,
                        size_t *out_len, uint64_t *fingerprint, int *ignored,
                        uint64_t *text_hash)
{
    *out_len = 0;
    *fingerprint = 0;
    *ignored = 0;
    if (text_hash)
        *text_hash = 0;
    uint64_t seed = rt->shapes ? nprof__memo_seed(rt->shapes) : 0;
    exact_entry *exact = NULL;
    uint64_t exact_hash = 0;
    if (seed && len && len <= EXACT_TEXT_MAX) { /* len 0: sql may be NULL */
        exact_hash = XXH3_64bits_withSeed(sql, len, seed);
        if (text_hash)
            *text_hash = exact_hash;
        exact = exact_slot(exact_hash);
        if (exact && exact->seed == seed && exact->hash == exact_hash && exact->len == len &&
            exact->shape_len < cap && memcmp(exact->text, sql, len) == 0) {
            memcpy(out, exact->shape, exact->shape_len);
            out[exact->shape_len] = '\0';
            *out_len = exact->shape_len;
            *fingerprint = exact->fingerprint;
            *ignored = exact->ignored;
            return NPROF_OK;
        }
    }
    char key_text[KEY_MAX];
    size_t kn;
    if (!rt->shapes || len > KEY_MAX ||
        !nprof__sql_literal_text(sql, len, 0, key_text, sizeof key_text, &kn))
        return shape_fresh(rt, sql, len, out, cap, out_len, fingerprint, ignored, NULL);
    /* No literal left out: the text is its own key, and worth keeping as it is. */
    int literal_free = exact && kn == len && memcmp(key_text, sql, len) == 0;
    XXH128_hash_t h = XXH3_128bits_withSeed(key_text, kn, seed);
    uint64_t key[2] = {h.low64, h.high64};
    long got = nprof__memo_get(rt->shapes, key, out, cap);
    int rc = NPROF_OK;
    shape_trailer tr;
    if (got < (long)sizeof(shape_trailer)) {
        rc = shape_fresh(rt, sql, len, out, cap, out_len, fingerprint, ignored, key);
    } else {
        size_t n = (size_t)got - sizeof tr;
        memcpy(&tr, out + n, sizeof tr);
        if (tr.flags & SHAPE_UNCACHED) {
            rc = shape_fresh(rt, sql, len, out, cap, out_len, fingerprint, ignored, NULL);
        } else {
            out[n] = '\0';
            *out_len = n;
            *fingerprint = tr.fingerprint;
            *ignored = (tr.flags & SHAPE_IGNORED) != 0;
        }
    }
    if (rc == NPROF_OK && literal_free)
        exact_put(exact, seed, exact_hash, sql, len, out, *out_len, *fingerprint, *ignored);
    return rc;
}

size_t nprof__sql_kept(const nprof_runtime *rt, size_t len)
{
    return len < rt->cfg.max_sql_bytes ? len : rt->cfg.max_sql_bytes;
}

int nprof__sql_shape_query(nprof_runtime *rt, nprof_query *q, char *buf, size_t cap,
                           uint64_t *text_hash)
{
    size_t kept = nprof__sql_kept(rt, q->sql_len), n;
    uint64_t fp, hash;
    int ignored;
    if (text_hash)
        *text_hash = 0;
    if (nprof__sql_shape_of(rt, q->sql, kept, buf, cap, &n, &fp, &ignored, &hash) != NPROF_OK)
        return 0;
    if (text_hash && kept == q->sql_len)
        *text_hash = hash; /* of the whole text, as the exact-repeat count hashes it */
    if (!q->normalized) {
        q->normalized = buf;
        q->normalized_len = n;
    }
    if (ignored)
        q->flags |= NPROF_QUERY_UNCOUNTED;
    if (!q->fingerprint && kept == q->sql_len)
        q->fingerprint = fp; /* the whole query was shaped: its fingerprint */
    return 1;
}
