/*
 * tests/test_dlopen.c: libnanoprof.so loaded the way Python loads an extension: dlopen()
 * with RTLD_NOW | RTLD_LOCAL into a process that links neither nanoprof nor jemalloc.
 *
 * A libnanoprof.so with a DT_NEEDED on libjemalloc.so.2 would fail right here with "cannot
 * allocate memory in static TLS block"; so would one that uses initial-exec TLS itself.
 * The library's path is argv[1].
 *
 * Only the headers' types are used: every function is reached through dlsym(), and the
 * _Static_asserts below check that the pointer types used here are the headers' own.
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "include/nanoprof/nanoprof.h"
#include "test.h"

typedef int (*runtime_create_fn)(const nprof_config *, nprof_runtime **);
typedef void (*runtime_destroy_fn)(nprof_runtime *);
typedef int (*ctl_get_fn)(nprof_runtime *, const char *, nprof_ctl_value *);
typedef int (*request_begin_fn)(nprof_runtime *, const char *, size_t, const char *, size_t,
                                uint64_t, nprof_profile **);
typedef int (*phase_fn)(nprof_profile *, int);
typedef int (*request_end_fn)(nprof_profile *, int);
typedef int (*header_fn)(const nprof_profile *, char *, size_t, size_t *);
typedef int (*submit_fn)(nprof_profile *);
typedef const char *(*errname_fn)(int);
typedef unsigned (*version_fn)(void);

/* The function designators are not evaluated inside _Generic: no symbol is referenced. */
#define SAME_TYPE(fn, type) _Generic(&fn, type: 1, default: 0)
_Static_assert(SAME_TYPE(nprof_runtime_create, runtime_create_fn), "nprof_runtime_create");
_Static_assert(SAME_TYPE(nprof_runtime_destroy, runtime_destroy_fn), "nprof_runtime_destroy");
_Static_assert(SAME_TYPE(nprof_ctl_get, ctl_get_fn), "nprof_ctl_get");
_Static_assert(SAME_TYPE(nprof_request_begin, request_begin_fn), "nprof_request_begin");
_Static_assert(SAME_TYPE(nprof_phase_begin, phase_fn), "nprof_phase_begin");
_Static_assert(SAME_TYPE(nprof_phase_end, phase_fn), "nprof_phase_end");
_Static_assert(SAME_TYPE(nprof_request_end, request_end_fn), "nprof_request_end");
_Static_assert(SAME_TYPE(nprof_profile_render_header, header_fn), "nprof_profile_render_header");
_Static_assert(SAME_TYPE(nprof_request_submit, submit_fn), "nprof_request_submit");
_Static_assert(SAME_TYPE(nprof_errname, errname_fn), "nprof_errname");
_Static_assert(SAME_TYPE(nprof_version_number, version_fn), "nprof_version_number");

static const char *lib_path;
static void *lib;

static struct {
    runtime_create_fn runtime_create;
    runtime_destroy_fn runtime_destroy;
    ctl_get_fn ctl_get;
    request_begin_fn request_begin;
    phase_fn phase_begin, phase_end;
    request_end_fn request_end;
    header_fn header;
    submit_fn submit;
    errname_fn errname;
    version_fn version;
} api;

/* The allocator the runtime reported, kept for the /proc/self/maps check. */
static char allocator_name[32], allocator_reason[512];

/* 1 when a mapping of /proc/self/maps has `needle` in its path. */
static int mapped(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            found = 1;
    fclose(f);
    return found;
}

#define LOAD(field, name)                                                           \
    do {                                                                            \
        *(void **)&api.field = dlsym(lib, name);                                    \
        if (!api.field)                                                             \
            fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());                    \
        ASSERT_TRUE(api.field != NULL);                                             \
    } while (0)

TEST(nothing_of_nanoprof_or_jemalloc_is_in_the_process_before_dlopen)
{
    ASSERT_TRUE(dlsym(RTLD_DEFAULT, "nprof_runtime_create") == NULL);
    ASSERT_EQ_INT(mapped("libnanoprof"), 0);
    if (dlsym(RTLD_DEFAULT, "mallocx") != NULL) {
        printf("     jemalloc was preloaded into this process\n");
        return;
    }
    ASSERT_EQ_INT(mapped("libjemalloc"), 0);
}

TEST(dlopen_rtld_now_rtld_local_succeeds)
{
    ASSERT_TRUE(lib_path != NULL);
    struct stat st;
    ASSERT_EQ_INT(stat(lib_path, &st), 0);
    lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        fprintf(stderr, "dlopen(%s): %s\n", lib_path, dlerror());
    ASSERT_TRUE(lib != NULL);
    ASSERT_EQ_INT(mapped("libnanoprof"), 1);
    /* RTLD_LOCAL: the library's symbols did not enter the global scope. */
    ASSERT_TRUE(dlsym(RTLD_DEFAULT, "nprof_runtime_create") == NULL);
}

/* ---- thread-locals in static TLS --------------------------------------------------------
 *
 * A library loaded with dlopen() has its thread-locals placed in glibc's static TLS area only
 * while its block fits what is left of the surplus glibc keeps for late-loaded modules (512
 * bytes by default, shared by all of them).  Placed there, a thread-local read through a TLS
 * descriptor is two instructions; placed in dynamic TLS it is a call of _dl_tlsdesc_dynamic,
 * on every read of the request path (measured: about 20 such calls per request).  The block
 * once grew to 1,436 bytes with two arrays in it and silently went dynamic.
 */
#define TLS_BUDGET 256

static size_t tls_block_size;

static int find_tls_block(struct dl_phdr_info *info, size_t size, void *user)
{
    (void)size;
    (void)user;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libnanoprof"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS)
            tls_block_size = info->dlpi_phdr[i].p_memsz;
    return 1;
}

TEST(the_thread_local_block_stays_within_its_budget)
{
    ASSERT_TRUE(lib != NULL);
    tls_block_size = (size_t)-1;
    ASSERT_EQ_INT(dl_iterate_phdr(find_tls_block, NULL), 1);
    ASSERT_TRUE(tls_block_size != (size_t)-1); /* the library has thread-locals */
    printf("     PT_TLS: %zu bytes (budget %d)\n", tls_block_size, TLS_BUDGET);
    ASSERT_TRUE(tls_block_size <= TLS_BUDGET);
}

/* In a thread made after the dlopen(), the library's block exists before any of its code ran
 * there only when it is part of the static area: a dynamic one is made at the first read. */
enum { TLS_DYNAMIC, TLS_STATIC, TLS_DLINFO_FAILED };

static void *tls_placement_in_new_thread(void *arg)
{
    (void)arg;
    void *data = NULL;
    intptr_t placement = dlinfo(lib, RTLD_DI_TLS_DATA, &data) != 0 ? TLS_DLINFO_FAILED
                         : data                                    ? TLS_STATIC
                                                                   : TLS_DYNAMIC;
    return (void *)placement;
}

TEST(the_thread_locals_are_placed_in_static_tls)
{
    ASSERT_TRUE(lib != NULL);
#ifndef NPROF_TEST_STATIC_TLS
    printf("     skipped: this build does not read thread-locals through TLS descriptors, "
           "which glibc places in static TLS on dlopen()\n");
    return;
#endif
    pthread_t t;
    void *result = NULL;
    ASSERT_EQ_INT(pthread_create(&t, NULL, tls_placement_in_new_thread, NULL), 0);
    ASSERT_EQ_INT(pthread_join(t, &result), 0);
    ASSERT_EQ_INT((int)(intptr_t)result, TLS_STATIC);
}

TEST(public_functions_resolve_and_internal_ones_stay_hidden)
{
    ASSERT_TRUE(lib != NULL);
    LOAD(runtime_create, "nprof_runtime_create");
    LOAD(runtime_destroy, "nprof_runtime_destroy");
    LOAD(ctl_get, "nprof_ctl_get");
    LOAD(request_begin, "nprof_request_begin");
    LOAD(phase_begin, "nprof_phase_begin");
    LOAD(phase_end, "nprof_phase_end");
    LOAD(request_end, "nprof_request_end");
    LOAD(header, "nprof_profile_render_header");
    LOAD(submit, "nprof_request_submit");
    LOAD(errname, "nprof_errname");
    LOAD(version, "nprof_version_number");
    ASSERT_EQ_INT(api.version(), NPROF_VERSION_NUMBER);
    /* What the inline clock readers need is exported... */
    ASSERT_TRUE(dlsym(lib, "nprof__clock") != NULL);
    ASSERT_TRUE(dlsym(lib, "nprof__ticks_slow") != NULL);
    /* ...and the runtime's internals are not. */
    ASSERT_TRUE(dlsym(lib, "nprof__alloc_init") == NULL);
    ASSERT_TRUE(dlsym(lib, "nprof__alloc_bytes") == NULL);
    ASSERT_TRUE(dlsym(lib, "nprof__fail") == NULL);
    ASSERT_TRUE(dlsym(lib, "nprof__profile_obtain") == NULL);
    /* Renamed calls are exported under their new names only: the old ones are macros and
     * inline functions of the headers (nanoprof/common.h, Names). */
    ASSERT_TRUE(dlsym(lib, "nprof_duration_format") != NULL);
    ASSERT_TRUE(dlsym(lib, "nprof_mw_create") != NULL);
    ASSERT_TRUE(dlsym(lib, "nprof_format_duration") == NULL);
    ASSERT_TRUE(dlsym(lib, "nprof_middleware_create") == NULL);
}

TEST(a_request_is_profiled_through_dlsym)
{
    ASSERT_TRUE(api.runtime_create && api.submit);
    nprof_runtime *rt = NULL;
    int rc = api.runtime_create(NULL, &rt);
    if (rc)
        fprintf(stderr, "nprof_runtime_create: %s\n", api.errname(rc));
    ASSERT_EQ_INT(rc, NPROF_OK);
    ASSERT_TRUE(rt != NULL);

    nprof_ctl_value v;
    ASSERT_EQ_INT(api.ctl_get(rt, "stats.memory.allocator", &v), NPROF_OK);
    ASSERT_EQ_INT(v.type, NPROF_CTL_STRING);
    snprintf(allocator_name, sizeof allocator_name, "%s", v.s);
    ASSERT_EQ_INT(api.ctl_get(rt, "stats.memory.allocator_reason", &v), NPROF_OK);
    snprintf(allocator_reason, sizeof allocator_reason, "%s", v.s);
    printf("     allocator=%s reason=\"%s\"\n", allocator_name, allocator_reason);

    nprof_profile *p = NULL;
    ASSERT_EQ_INT(api.request_begin(rt, "GET", 3, "/dl", 3, 0, &p), NPROF_OK);
    ASSERT_EQ_INT(api.phase_begin(p, NPROF_PHASE_HANDLER), NPROF_OK);
    test_spin_ns(20000);
    ASSERT_EQ_INT(api.phase_end(p, NPROF_PHASE_HANDLER), NPROF_OK);
    ASSERT_EQ_INT(api.request_end(p, 200), NPROF_OK);
    char header[NPROF_HEADER_MAX];
    size_t len = 0;
    ASSERT_EQ_INT(api.header(p, header, sizeof header, &len), NPROF_OK);
    printf("     X-Profile: %s\n", header);
    ASSERT_EQ_U64(len, strlen(header));
    ASSERT_TRUE(strncmp(header, "total=", 6) == 0);
    ASSERT_TRUE(strstr(header, " handler=") != NULL);
    ASSERT_EQ_INT(api.submit(p), NPROF_OK);
    ASSERT_EQ_INT(api.ctl_get(rt, "stats.store.size", &v), NPROF_OK);
    ASSERT_EQ_U64(v.u, 1);
    api.runtime_destroy(rt);
}

TEST(allocator_is_libc_unless_jemalloc_is_in_the_process)
{
    ASSERT_TRUE(allocator_name[0] != '\0');
    ASSERT_TRUE(allocator_reason[0] != '\0');
    if (dlsym(RTLD_DEFAULT, "mallocx") == NULL) {
        /* Nobody linked or preloaded jemalloc: the library may only have tried dlopen(). */
        if (strcmp(allocator_name, "libc") != 0) {
            /* Only acceptable if dlopen(libjemalloc.so.2) really worked. */
            ASSERT_STR(allocator_name, "jemalloc");
            void *je = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
            ASSERT_TRUE(je != NULL);
            dlclose(je);
        } else {
            ASSERT_STR(allocator_name, "libc");
            ASSERT_TRUE(strstr(allocator_reason, "libjemalloc.so.2") != NULL);
        }
    } else {
        printf("     jemalloc is in the process (preloaded?): allocator=%s\n", allocator_name);
        ASSERT_STR(allocator_name, "jemalloc");
    }
}

TEST(no_jemalloc_is_mapped_unless_the_runtime_uses_it)
{
    ASSERT_TRUE(allocator_name[0] != '\0');
    int je = mapped("libjemalloc");
    ASSERT_TRUE(je >= 0);
    if (!strcmp(allocator_name, "libc"))
        /* A failed dlopen() of libjemalloc.so.2 must leave nothing mapped. */
        ASSERT_EQ_INT(je, 0);
    else
        ASSERT_EQ_INT(je, 1);
}

/* ---- the library file's dynamic section --------------------------------------------- */

typedef struct dyn_summary {
    int ok;
    int needed_count;
    int needs_jemalloc;
    int static_tls; /* DF_STATIC_TLS: initial-exec TLS, which defeats dlopen() */
    char needed[512];
} dyn_summary;

/* Reads the NEEDED entries and DT_FLAGS of an ELF64 file through its section headers. */
static dyn_summary read_dynamic(const char *path)
{
    dyn_summary s;
    memset(&s, 0, sizeof s);
    FILE *f = fopen(path, "rb");
    if (!f)
        return s;
    unsigned char *data = NULL;
    long size = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > (long)sizeof(Elf64_Ehdr) &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size)) != NULL &&
        fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (!data)
        return s;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0 || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > (uint64_t)size)
        goto out;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(data + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNAMIC || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *str = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > (uint64_t)size ||
            str->sh_offset + str->sh_size > (uint64_t)size)
            goto out;
        const Elf64_Dyn *dyn = (const Elf64_Dyn *)(data + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof(Elf64_Dyn);
        for (size_t k = 0; k < n && dyn[k].d_tag != DT_NULL; k++) {
            if (dyn[k].d_tag == DT_NEEDED && dyn[k].d_un.d_val < str->sh_size) {
                const char *name = (const char *)(data + str->sh_offset + dyn[k].d_un.d_val);
                s.needed_count++;
                if (strstr(name, "jemalloc"))
                    s.needs_jemalloc = 1;
                size_t used = strlen(s.needed);
                snprintf(s.needed + used, sizeof s.needed - used, "%s%s", used ? " " : "", name);
            } else if (dyn[k].d_tag == DT_FLAGS && (dyn[k].d_un.d_val & DF_STATIC_TLS)) {
                s.static_tls = 1;
            }
        }
        s.ok = 1;
    }
out:
    free(data);
    return s;
}

TEST(library_has_no_needed_entry_for_jemalloc)
{
    ASSERT_TRUE(lib_path != NULL);
    dyn_summary s = read_dynamic(lib_path);
    ASSERT_TRUE(s.ok);
    printf("     NEEDED: %s\n", s.needed);
    ASSERT_TRUE(s.needed_count > 0);               /* the parse found something: libc at least */
    ASSERT_TRUE(strstr(s.needed, "libc.so") != NULL);
    ASSERT_EQ_INT(s.needs_jemalloc, 0);
    ASSERT_EQ_INT(s.static_tls, 0);
}

/* `readelf <options>` of the library, to read with fgets() and pclose(); NULL when readelf is
 * not installed (said), or when the command could not be started (*failed set). */
static FILE *readelf(const char *options, int *failed)
{
    *failed = 0;
    if (system("command -v readelf >/dev/null 2>&1") != 0) {
        printf("     skipped: readelf is not installed\n");
        return NULL;
    }
    char cmd[4200];
    FILE *f = NULL;
    if (strlen(lib_path) < 4000 && !strchr(lib_path, '\'')) {
        snprintf(cmd, sizeof cmd, "readelf %s '%s' 2>&1", options, lib_path);
        f = popen(cmd, "r");
    }
    *failed = f == NULL;
    return f;
}

TEST(readelf_agrees_that_jemalloc_is_not_needed)
{
    int failed;
    FILE *f = readelf("-d", &failed);
    ASSERT_EQ_INT(failed, 0);
    if (!f)
        return;
    char line[1024];
    int needed = 0, jemalloc = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "(NEEDED)")) {
            needed++;
            if (strstr(line, "jemalloc"))
                jemalloc++;
        }
    }
    int status = pclose(f);
    ASSERT_EQ_INT(status, 0);
    ASSERT_TRUE(needed > 0);
    ASSERT_EQ_INT(jemalloc, 0);
}

/* No call of the library goes through the PLT (CMakeLists.txt, NPROF_BIND_FLAGS): its
 * calls to its own exported functions bind inside it, and its calls to other libraries jump
 * through their GOT entries.  A PLT slot for an nprof_ function would also mean a call that
 * could not be inlined.  Names reserved to the implementation ("__...") are the calls the
 * toolchain adds (a sanitizer's or the fuzzer's instrumentation), which the flags do not
 * reach. */
TEST(no_call_of_the_library_goes_through_the_plt)
{
#ifndef NPROF_TEST_NO_PLT
    printf("     skipped: this build does not bind the library's calls\n");
    return;
#endif
    int failed;
    FILE *f = readelf("-rW", &failed);
    ASSERT_EQ_INT(failed, 0);
    if (!f)
        return;
    char line[1024];
    int relocations = 0, slots = 0, own = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "R_X86_64_") || strstr(line, "R_AARCH64_"))
            relocations++;
        char symbol[256];
        if (!strstr(line, "JUMP_SLO") ||
            sscanf(line, "%*s %*s %*s %*s %255s", symbol) != 1 || !strncmp(symbol, "__", 2))
            continue;
        slots++;
        own += strstr(line, " nprof_") != NULL;
        if (slots <= 5)
            printf("     %s", line);
    }
    ASSERT_EQ_INT(pclose(f), 0);
    printf("     %d relocations, %d PLT slots, %d of them for nanoprof's own functions\n",
           relocations, slots, own);
    ASSERT_TRUE(relocations > 0); /* the parse read the relocations: there are some */
    ASSERT_EQ_INT(own, 0);
    ASSERT_EQ_INT(slots, 0);
}

TEST(dlclose_succeeds)
{
    ASSERT_TRUE(lib != NULL);
    ASSERT_EQ_INT(dlclose(lib), 0);
    lib = NULL;
    memset(&api, 0, sizeof api);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s path/to/libnanoprof.so\n", argv[0]);
        return 2;
    }
    lib_path = argv[1];
    RUN(nothing_of_nanoprof_or_jemalloc_is_in_the_process_before_dlopen);
    RUN(dlopen_rtld_now_rtld_local_succeeds);
    RUN(the_thread_local_block_stays_within_its_budget);
    RUN(the_thread_locals_are_placed_in_static_tls);
    RUN(public_functions_resolve_and_internal_ones_stay_hidden);
    RUN(a_request_is_profiled_through_dlsym);
    RUN(allocator_is_libc_unless_jemalloc_is_in_the_process);
    RUN(no_jemalloc_is_mapped_unless_the_runtime_uses_it);
    RUN(library_has_no_needed_entry_for_jemalloc);
    RUN(readelf_agrees_that_jemalloc_is_not_needed);
    RUN(no_call_of_the_library_goes_through_the_plt);
    RUN(dlclose_succeeds);
    return TEST_SUMMARY();
}
