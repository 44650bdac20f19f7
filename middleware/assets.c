/*
 * middleware/assets.c: the dashboard's templates (dashboards/dashboard.html, .css, .js),
 * built into the library, so nothing is read from disk at run time.  Both builds compile this
 * file with NPROF_ASSET_HTML, NPROF_ASSET_CSS and NPROF_ASSET_JS set to the templates'
 * absolute paths (sources.txt, kind `embed`), and the assembler's .incbin copies each file's
 * bytes into .rodata, followed by a NUL.  CMake lists the templates as dependencies of this
 * object; build.zig adds a hash of their contents to its flags: either way, editing a
 * template rebuilds the library.  ELF targets (Linux, the BSDs) only.
 */
#include "internal.h"

#if !defined(NPROF_ASSET_HTML) || !defined(NPROF_ASSET_CSS) || !defined(NPROF_ASSET_JS)
#error "middleware/assets.c needs NPROF_ASSET_HTML, NPROF_ASSET_CSS and NPROF_ASSET_JS (see sources.txt)"
#endif

#define NPROF__INCBIN(sym, path)                                                             \
    __asm__(".section .rodata\n"                                                             \
            ".balign 16\n"                                                                   \
            ".hidden " #sym "\n"                                                             \
            ".hidden " #sym "_end\n"                                                         \
            ".type " #sym ", @object\n" #sym ":\n"                                            \
            ".incbin \"" path "\"\n" #sym "_end:\n"                                          \
            ".byte 0\n"                                                                      \
            ".previous\n")

NPROF__INCBIN(nprof__asset_html_data, NPROF_ASSET_HTML);
NPROF__INCBIN(nprof__asset_css_data, NPROF_ASSET_CSS);
NPROF__INCBIN(nprof__asset_js_data, NPROF_ASSET_JS);

/* Hidden, as in the assembly: the library reaches them PC-relative, never through the GOT. */
#define HIDDEN __attribute__((visibility("hidden")))
extern HIDDEN const char nprof__asset_html_data[], nprof__asset_html_data_end[];
extern HIDDEN const char nprof__asset_css_data[], nprof__asset_css_data_end[];
extern HIDDEN const char nprof__asset_js_data[], nprof__asset_js_data_end[];

nprof__asset nprof__asset_html(void)
{
    return (nprof__asset){nprof__asset_html_data,
                          (size_t)(nprof__asset_html_data_end - nprof__asset_html_data)};
}

nprof__asset nprof__asset_css(void)
{
    return (nprof__asset){nprof__asset_css_data,
                          (size_t)(nprof__asset_css_data_end - nprof__asset_css_data)};
}

nprof__asset nprof__asset_js(void)
{
    return (nprof__asset){nprof__asset_js_data,
                          (size_t)(nprof__asset_js_data_end - nprof__asset_js_data)};
}
