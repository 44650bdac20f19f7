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

#include <string.h>
#include <xxhash.h>

#include "nanoprof/sql.h"
#include "normalize.h"
#include "runtime/profile.h"

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

int nprof__sql_shape_of(nprof_runtime *rt, const char *sql, size_t len, char *out, size_t cap,
                        size_t *out_len, uint64_t *fingerprint, int *ignored)
{
    *out_len = 0;
    *fingerprint = 0;
    *ignored = 0;
    char key_text[KEY_MAX];
    size_t kn;
    if (!rt->shapes || len > KEY_MAX ||
        !nprof__sql_literal_text(sql, len, 0, key_text, sizeof key_text, &kn))
        return shape_fresh(rt, sql, len, out, cap, out_len, fingerprint, ignored, NULL);
    XXH128_hash_t h = XXH3_128bits_withSeed(key_text, kn, nprof__memo_seed(rt->shapes));
    uint64_t key[2] = {h.low64, h.high64};
    long got = nprof__memo_get(rt->shapes, key, out, cap);
    if (got < (long)sizeof(shape_trailer))
        return shape_fresh(rt, sql, len, out, cap, out_len, fingerprint, ignored, key);
    shape_trailer tr;
    size_t n = (size_t)got - sizeof tr;
    memcpy(&tr, out + n, sizeof tr);
    if (tr.flags & SHAPE_UNCACHED)
        return shape_fresh(rt, sql, len, out, cap, out_len, fingerprint, ignored, NULL);
    out[n] = '\0';
    *out_len = n;
    *fingerprint = tr.fingerprint;
    *ignored = (tr.flags & SHAPE_IGNORED) != 0;
    return NPROF_OK;
}

size_t nprof__sql_kept(const nprof_runtime *rt, size_t len)
{
    return len < rt->cfg.max_sql_bytes ? len : rt->cfg.max_sql_bytes;
}

int nprof__sql_shape_query(nprof_runtime *rt, nprof_query *q, char *buf, size_t cap)
{
    size_t kept = nprof__sql_kept(rt, q->sql_len), n;
    uint64_t fp;
    int ignored;
    if (nprof__sql_shape_of(rt, q->sql, kept, buf, cap, &n, &fp, &ignored) != NPROF_OK)
        return 0;
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
