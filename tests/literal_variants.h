/*
 * tests/literal_variants.h: queries that share a literal key (sqlhooks/normalize.h), for the
 * shape cache's tests and fuzz target.  lv_fill() turns a key back into a query, taking each
 * literal from a pool of its class chosen to be awkward: quotes, comment and dollar-quote
 * markers inside strings, huge and odd numbers.
 */
#ifndef NPROF_TESTS_LITERAL_VARIANTS_H
#define NPROF_TESTS_LITERAL_VARIANTS_H

#include <stdint.h>
#include <string.h>

#include "sqlhooks/normalize.h"

static const char *const lv_strings[] = {
    "''", "'a'", "'it''s'", "'-- no comment'", "'/* nor this */'", "'\"q\"'", "'$$'",
    "'\\'", "'ORDER BY 1'", "'\xc3\xa9t\xc3\xa9'", "'x\ny'", "'?'", "'%s'", "'::int'",
};
static const char *const lv_bare[] = {"0", "7", "42", "007", "123456789012345678901234567890"};
static const char *const lv_numbers[] = {"1.5", "1e10", "0x1F", "1_000", "5.", "1.5e-3",
                                         "0b101", "0o17", "3.14159", "1E+5"};

#define LV_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A query of literal key `key` (`kn` bytes), its literals picked by `seed`; its length, or 0
 * when it does not fit in `cap`. */
static size_t lv_fill(const char *key, size_t kn, uint64_t seed, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < kn; i++) {
        const char *put = key + i;
        size_t n = 1;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned pick = (unsigned)(seed >> 33);
        switch (key[i]) {
        case NPROF__LK_STRING: put = lv_strings[pick % LV_COUNT(lv_strings)]; n = strlen(put); break;
        case NPROF__LK_BARE: put = lv_bare[pick % LV_COUNT(lv_bare)]; n = strlen(put); break;
        case NPROF__LK_NUMBER: put = lv_numbers[pick % LV_COUNT(lv_numbers)]; n = strlen(put); break;
        default: break;
        }
        if (k + n > cap)
            return 0;
        memcpy(out + k, put, n);
        k += n;
    }
    return k;
}

#endif /* NPROF_TESTS_LITERAL_VARIANTS_H */
