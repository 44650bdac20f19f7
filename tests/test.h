/*
 * tests/test.h: the test harness shared by every C test program.
 *
 * A test is a function declared with TEST(name) and listed in the program's main through
 * RUN(name).  Assertions print both operands with file and line, and end the current test;
 * main ends with TEST_SUMMARY(), which prints "N passed, N failed" and returns the exit code.
 */
#ifndef NPROF_TEST_H
#define NPROF_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_count, test_passed_count, test_current_failed;

#define TEST(name) static void name(void)

#define RUN(name)                                                      \
    do {                                                               \
        test_current_failed = 0;                                       \
        name();                                                        \
        if (test_current_failed) {                                     \
            test_failed_count++;                                       \
            fprintf(stderr, "FAIL %s\n", #name);                      \
        } else {                                                       \
            test_passed_count++;                                       \
            printf("ok   %s\n", #name);                                \
        }                                                              \
        fflush(stdout);                                                \
    } while (0)

#define TEST_SUMMARY()                                                           \
    (printf("%d passed, %d failed\n", test_passed_count, test_failed_count),     \
     test_failed_count ? 1 : 0)

#define TEST_FAIL_HERE()                                                         \
    do {                                                                         \
        test_current_failed = 1;                                                 \
        return;                                                                  \
    } while (0)

#define ASSERT_TRUE(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: expected true: %s\n", __FILE__, __LINE__, #cond);     \
            TEST_FAIL_HERE();                                                               \
        }                                                                                   \
    } while (0)

#define ASSERT_INT_OP(a, op, b)                                                             \
    do {                                                                                    \
        long long va_ = (long long)(a), vb_ = (long long)(b);                               \
        if (!(va_ op vb_)) {                                                                \
            fprintf(stderr, "%s:%d: expected %s %s %s, got %lld vs %lld\n", __FILE__,       \
                    __LINE__, #a, #op, #b, va_, vb_);                                       \
            TEST_FAIL_HERE();                                                               \
        }                                                                                   \
    } while (0)

#define ASSERT_U64_OP(a, op, b)                                                             \
    do {                                                                                    \
        uint64_t va_ = (uint64_t)(a), vb_ = (uint64_t)(b);                                  \
        if (!(va_ op vb_)) {                                                                \
            fprintf(stderr, "%s:%d: expected %s %s %s, got %" PRIu64 " vs %" PRIu64 "\n",   \
                    __FILE__, __LINE__, #a, #op, #b, va_, vb_);                             \
            TEST_FAIL_HERE();                                                               \
        }                                                                                   \
    } while (0)

#define ASSERT_EQ_INT(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_EQ_U64(a, b) ASSERT_U64_OP(a, ==, b)

/* Compares a counted byte string with a C string. */
#define ASSERT_MEM_STR(ptr, len, str)                                                       \
    do {                                                                                    \
        const char *pa_ = (const char *)(ptr);                                              \
        size_t la_ = (size_t)(len);                                                         \
        const char *sb_ = (str);                                                            \
        if (la_ != strlen(sb_) || memcmp(pa_, sb_, la_) != 0) {                             \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%.*s\" (%zu bytes)\n", __FILE__, \
                    __LINE__, sb_, (int)la_, pa_, la_);                                     \
            TEST_FAIL_HERE();                                                               \
        }                                                                                   \
    } while (0)

#define ASSERT_STR(a, b) ASSERT_MEM_STR((a), strlen(a), (b))

#define ASSERT_OK(expr)                                                                     \
    do {                                                                                    \
        int rc_ = (expr);                                                                   \
        if (rc_ != 0) {                                                                     \
            fprintf(stderr, "%s:%d: %s returned %d (%s)\n", __FILE__, __LINE__, #expr, rc_, \
                    nprof_errname(rc_));                                                    \
            TEST_FAIL_HERE();                                                               \
        }                                                                                   \
    } while (0)

/* Spins until at least `ns` nanoseconds of CLOCK_MONOTONIC have passed. */
#include <time.h>
static inline uint64_t test_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void test_spin_ns(uint64_t ns)
{
    uint64_t end = test_monotonic_ns() + ns;
    while (test_monotonic_ns() < end) {
    }
}

#endif /* NPROF_TEST_H */
