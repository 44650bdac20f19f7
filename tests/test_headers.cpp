/*
 * tests/test_headers.cpp: the public headers as a C++17 program sees them.
 *
 * That each header compiles on its own, in C and in C++, and twice over, is checked for every
 * header by the public_headers target that both builds generate.  Here the inline clock
 * readers must run from C++, constants must be C++ constant expressions, and calls into the
 * library must link: a missing extern "C" would leave undefined C++-mangled symbols here.
 */
#include "nanoprof/nanoprof.h"

#include <cstring>
#include <string>
#include <type_traits>

#include "test.h"

/* Constants are usable in C++ constant expressions. */
static_assert(NPROF_VERSION_NUMBER == NPROF_VERSION_MAJOR * 10000 + NPROF_VERSION_MINOR * 100 +
                                          NPROF_VERSION_PATCH,
              "version number");
static_assert(NPROF_OK == 0 && NPROF_EINVAL < 0 && NPROF_EUNSUPPORTED == -11, "result codes");
static_assert(NPROF_PHASE_COUNT == 3, "phases");
static_assert(NPROF_HEADER_MAX >= 64, "header size");
static_assert(std::is_same<decltype(nprof_ticks()), uint64_t>::value, "nprof_ticks type");
static_assert(std::is_same<decltype(&nprof_runtime_create),
                           int (*)(const nprof_config *, nprof_runtime **)>::value,
              "nprof_runtime_create type");
/* Public structs are plain data a C++ program can copy and zero. */
static_assert(std::is_trivially_copyable<nprof_config>::value, "nprof_config");
static_assert(std::is_trivially_copyable<nprof_profile_info>::value, "nprof_profile_info");
static_assert(std::is_trivially_copyable<nprof_query>::value, "nprof_query");

TEST(inline_clock_functions_work_from_cpp)
{
    ASSERT_OK(nprof_clock_init());
    uint64_t t0 = nprof_ticks();
    uint64_t n0 = nprof_now_ns();
    test_spin_ns(1000000);
    uint64_t t1 = nprof_ticks();
    uint64_t n1 = nprof_now_ns();
    ASSERT_U64_OP(t1, >, t0);
    ASSERT_U64_OP(n1, >, n0);
    uint64_t ns = nprof_ticks_to_ns(t1 - t0);
    ASSERT_U64_OP(ns, >=, 900000);     /* at least the ~1 ms spun */
    ASSERT_U64_OP(ns, <, 1000000000);  /* and nowhere near a second */
    ASSERT_U64_OP(nprof_elapsed_ns(n0), >=, 900000);
    ASSERT_EQ_U64(nprof_elapsed_ns(n1 + 1000000000), 0); /* a start in the future */
    nprof_clock_info info;
    ASSERT_OK(nprof_clock_get_info(&info));
    ASSERT_TRUE(info.source_name != nullptr && info.source_name[0] != '\0');
}

TEST(error_and_version_functions_link_from_cpp)
{
    ASSERT_EQ_INT(nprof_version_number(), NPROF_VERSION_NUMBER);
    ASSERT_STR(nprof_version_string(), NPROF_VERSION_STRING);
    ASSERT_STR(nprof_errname(NPROF_EINVAL), "NPROF_EINVAL");
    ASSERT_STR(nprof_errname(12345), "NPROF_UNKNOWN");
    ASSERT_TRUE(std::strlen(nprof_strerror(NPROF_ENOMEM)) > 0);
    ASSERT_TRUE(nprof_last_error_detail() != nullptr);
}

TEST(format_duration_from_cpp)
{
    char buf[32];
    size_t len = 0;
    ASSERT_OK(nprof_duration_format(45, buf, sizeof buf, &len));
    ASSERT_EQ_U64(len, 4);
    ASSERT_STR(buf, "45ns");
    ASSERT_OK(nprof_duration_format(1200000, buf, sizeof buf, nullptr));
    ASSERT_STR(buf, "1.2ms");
    ASSERT_EQ_INT(nprof_duration_format(1200000, buf, 2, &len), NPROF_ERANGE);
    ASSERT_EQ_U64(len, 5);
}

TEST(config_and_buf_from_cpp)
{
    nprof_config cfg;
    nprof_config_init(&cfg);
    ASSERT_OK(nprof_config_set(&cfg, "max_queries", "42"));
    ASSERT_EQ_U64(cfg.max_queries, 42);
    nprof_buf buf = NPROF_BUF_INIT;
    ASSERT_OK(nprof_config_format(&cfg, &buf));
    std::string text(buf.data, buf.len);
    nprof_buf_free(&buf);
    ASSERT_TRUE(buf.data == nullptr);
    ASSERT_TRUE(text.find("max_queries=42") != std::string::npos);
    nprof_option_info opt;
    ASSERT_OK(nprof_config_get_option(0, &opt));
    ASSERT_TRUE(opt.name != nullptr);
}

TEST(runtime_and_request_from_cpp)
{
    nprof_runtime *rt = nullptr;
    ASSERT_OK(nprof_runtime_create(nullptr, &rt));
    ASSERT_TRUE(rt != nullptr);
    ASSERT_EQ_INT(nprof_runtime_enabled(rt), 1);

    /* A captureless lambda as the introspection visitor. */
    int count = 0;
    ASSERT_OK(nprof_ctl_foreach(
        rt, "stats.memory.",
        [](void *user, const char *, const nprof_ctl_value *) -> int {
            ++*static_cast<int *>(user);
            return 0;
        },
        &count));
    ASSERT_TRUE(count >= 5);

    nprof_profile *p = nullptr;
    ASSERT_OK(nprof_request_begin(rt, "GET", 3, "/cpp", 4, 0, &p));
    ASSERT_OK(nprof_phase_begin(p, NPROF_PHASE_HANDLER));
    const std::string sql = "SELECT 1";
    nprof_query q{};
    q.sql = sql.data();
    q.sql_len = sql.size();
    q.duration_ns = 1500;
    ASSERT_OK(nprof_query_record(p, &q));
    ASSERT_OK(nprof_phase_end(p, NPROF_PHASE_HANDLER));
    ASSERT_OK(nprof_request_end(p, 200));
    char header[NPROF_HEADER_MAX];
    ASSERT_OK(nprof_profile_render_header(p, header, sizeof header, nullptr));
    ASSERT_TRUE(std::strncmp(header, "total=", 6) == 0);
    ASSERT_TRUE(std::strstr(header, "sql=1.5us(1q)") != nullptr);
    ASSERT_OK(nprof_request_submit(p));
    ASSERT_EQ_U64(nprof_store_size(nprof_runtime_store(rt)), 1);
    nprof_runtime_destroy(rt);
}

int main()
{
    RUN(inline_clock_functions_work_from_cpp);
    RUN(error_and_version_functions_link_from_cpp);
    RUN(format_duration_from_cpp);
    RUN(config_and_buf_from_cpp);
    RUN(runtime_and_request_from_cpp);
    return TEST_SUMMARY();
}
