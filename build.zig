// build.zig for nanoprof (Zig 0.11.0), the secondary build next to CMakeLists.txt.
//
// Nothing here lists a source file: build() reads sources.txt, the same list CMakeLists.txt
// reads, and turns each line `<kind> <path> [NAME=value ...]` into build steps (see the
// comment at the top of sources.txt for the kinds).
//
//   zig build           libnanoprof.so + libnanoprof.a, headers, examples, benchmarks
//   zig build test      build and run every test (and every example) listed in sources.txt
const std = @import("std");

/// The library's own objects.  -fno-sanitize=undefined: zig turns UBSan on for C in Debug
/// builds, CMake does not; keep the two builds compiling the same code the same way.
/// -DNPROF_NO_DEPRECATED: the library's own code uses no deprecated alias (common.h, Names).
const lib_flags = [_][]const u8{
    "-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden",     "-Wall",
    "-Wextra",  "-Werror",       "-fno-sanitize=undefined", "-DNPROF_NO_DEPRECATED",
};
/// Tests, examples and benchmarks, as CMake's nprof_program() compiles them.
const c_program_flags = [_][]const u8{ "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-fno-sanitize=undefined" };
const cpp_program_flags = [_][]const u8{ "-std=c++17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-fno-sanitize=undefined" };
/// The public headers' own check, as CMake's public_headers target compiles it.
const header_check_flags = [_][]const u8{ "-Wpedantic", "-Werror" };

const Kind = enum { lib, @"test", @"test-env", @"test-jemalloc", @"test-dlopen", @"test-pq", fuzz, tool, example, bench, @"bench-pgquery", embed, preload, @"test-preload", @"bench-pq", @"bench-preload", @"example-microhttpd", @"test-microhttpd" };

const Entry = struct {
    kind: Kind,
    path: []const u8,
    /// The NAME=value fields after the path (used by test-env).
    env: []const []const u8,
};

pub fn build(b: *std.Build) !void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const entries = try readSources(b);
    const version = try readVersion(b);

    // ---- the library: shared and static, from the `lib` lines --------------------------
    var lib_sources = std.ArrayList([]const u8).init(b.allocator);
    for (entries) |e| if (e.kind == .lib) try lib_sources.append(e.path);
    // `embed` sources: each NAME=path becomes -DNAME="<absolute path>" for .incbin.  zig's
    // cache does not see files an assembler directive reads, so a hash of their contents goes
    // into the flags too: editing one recompiles the source, as CMake's OBJECT_DEPENDS does.
    var embed_sources = std.ArrayList(struct { path: []const u8, flags: []const []const u8 }).init(b.allocator);
    for (entries) |e| if (e.kind == .embed) {
        var flags = std.ArrayList([]const u8).init(b.allocator);
        try flags.appendSlice(&lib_flags);
        var hasher = std.hash.Wyhash.init(0);
        for (e.env) |assignment| {
            const eq = std.mem.indexOfScalar(u8, assignment, '=').?; // checked in readSources
            const file = assignment[eq + 1 ..];
            const contents = try b.build_root.handle.readFileAlloc(b.allocator, file, 16 << 20);
            hasher.update(contents);
            try flags.append(b.fmt("-D{s}=\"{s}\"", .{ assignment[0..eq], b.pathFromRoot(file) }));
        }
        try flags.append(b.fmt("-DNPROF_EMBED_CONTENT_HASH=0x{x}", .{hasher.final()}));
        try embed_sources.append(.{ .path = e.path, .flags = flags.items });
    };

    const shared = b.addSharedLibrary(.{ .name = "nanoprof", .target = target, .optimize = optimize, .version = version });
    const static = b.addStaticLibrary(.{ .name = "nanoprof", .target = target, .optimize = optimize });
    // zig links its compiler_rt into shared libraries with default visibility, so the .so
    // would also export memcpy, memset, cos, ... and interpose glibc's in programs that link
    // it.  Export only the API (every NPROF_API symbol is nprof_*), as the CMake build does.
    try b.cache_root.handle.writeFile("libnanoprof.map", "{ global: nprof_*; local: *; };\n");
    shared.version_script = try b.cache_root.handle.realpathAlloc(b.allocator, "libnanoprof.map");

    for ([_]*std.Build.Step.Compile{ shared, static }) |lib| {
        lib.addCSourceFiles(lib_sources.items, &lib_flags);
        for (embed_sources.items) |es| lib.addCSourceFile(.{ .file = .{ .path = es.path }, .flags = es.flags });
        lib.addIncludePath(.{ .path = "include" });
        lib.addIncludePath(.{ .path = "." }); // upper layers include "runtime/..." headers
        lib.linkLibC();
        lib.linkSystemLibrary("pthread");
        lib.linkSystemLibrary("dl");
        lib.linkSystemLibrary("xxhash");
        lib.linkSystemLibrary("pcre2-8");
        lib.linkSystemLibrary("libpq"); // the pkg-config name: brings its include path
        // jemalloc is deliberately not linked: see runtime/alloc.c for why.
        b.installArtifact(lib);
    }
    b.installDirectory(.{
        .source_dir = .{ .path = "include/nanoprof" },
        .install_dir = .header,
        .install_subdir = "nanoprof",
    });

    // ---- the preload shim: libnanoprof_<name>.so from a `preload` line ------------------
    // It calls libnanoprof.so and needs libpq itself (kept even where the linker drops unused
    // libraries: see preload/pq_shim.c); it exports only libpq's names.
    var preload: ?*std.Build.Step.Compile = null;
    for (entries) |e| if (e.kind == .preload) {
        const stem = std.fs.path.stem(e.path);
        const base = if (std.mem.endsWith(u8, stem, "_shim")) stem[0 .. stem.len - 5] else stem;
        const shim = b.addSharedLibrary(.{ .name = b.fmt("nanoprof_{s}", .{base}), .target = target, .optimize = optimize });
        shim.addCSourceFiles(&.{e.path}, &lib_flags);
        shim.addIncludePath(.{ .path = "include" });
        shim.linkLibC();
        shim.linkSystemLibrary("dl");
        shim.linkLibrary(shared);
        shim.linkSystemLibrary("libpq"); // the pkg-config name: brings its include path
        shim.linkSystemLibrary2("pq", .{ .needed = true, .use_pkg_config = .no });
        const map = b.fmt("libnanoprof_{s}.map", .{base});
        try b.cache_root.handle.writeFile(map, "{ global: PQ*; local: *; };\n");
        shim.version_script = try b.cache_root.handle.realpathAlloc(b.allocator, map);
        b.installArtifact(shim);
        preload = shim;
    };

    // ---- tests, examples, benchmarks ---------------------------------------------------
    const test_step = b.step("test", "Build and run the tests listed in sources.txt");
    // Programs by path, so that a `test-env` line can run the program of a `test` line again.
    var programs = std.StringHashMap(*std.Build.Step.Compile).init(b.allocator);

    for (entries) |e| {
        const exe = switch (e.kind) {
            // libFuzzer targets need clang's -fsanitize=fuzzer: CMake builds them (NPROF_FUZZ).
            // The libmicrohttpd example and its test are CMake's too (an optional library).
            .lib, .embed, .@"test-env", .fuzz, .preload, .@"test-preload", .@"bench-preload", .@"example-microhttpd", .@"test-microhttpd" => continue,
            .@"test", .@"test-jemalloc", .@"test-pq", .bench, .@"bench-pgquery", .@"bench-pq" => program(b, e.path, target, optimize, static),
            // tools/nanoprof_sql.c installs as nanoprof-sql, as in CMake.
            .tool => programNamed(b, try std.mem.replaceOwned(u8, b.allocator, std.fs.path.stem(e.path), "_", "-"), e.path, target, optimize, static),
            .example => program(b, e.path, target, optimize, shared),
            .@"test-dlopen" => program(b, e.path, target, optimize, null),
        };
        try programs.put(e.path, exe);
        switch (e.kind) {
            .@"test", .@"test-jemalloc" => {
                if (e.kind == .@"test-jemalloc") exe.linkSystemLibrary("jemalloc");
                exe.defineCMacro("NPROF_SOURCE_DIR", b.fmt("\"{s}\"", .{b.build_root.path orelse "."}));
                test_step.dependOn(&TestRun.create(b, exe, null, &.{}).step);
            },
            .@"test-pq" => {
                exe.linkSystemLibrary("libpq"); // the pkg-config name: brings its include path
                exe.defineCMacro("NPROF_SOURCE_DIR", b.fmt("\"{s}\"", .{b.build_root.path orelse "."}));
                test_step.dependOn(&TestRun.create(b, exe, null, &.{}).step);
            },
            .tool => b.installArtifact(exe),
            .@"bench-pgquery" => {
                // libxxhash before libpg_query, which exports its own bundled XXH3_*.
                exe.linkSystemLibrary("xxhash");
                exe.linkSystemLibrary("pg_query");
                b.installArtifact(exe);
            },
            .@"test-dlopen" => {
                exe.linkSystemLibrary("dl");
                test_step.dependOn(&TestRun.create(b, exe, shared, &.{}).step);
            },
            .example => {
                // As in CMake: the examples link jemalloc, so the runtime takes an arena of it.
                exe.linkSystemLibrary("jemalloc");
                b.installArtifact(exe);
                // As in CMake: every example runs to completion as part of the tests.
                test_step.dependOn(&b.addRunArtifact(exe).step);
            },
            .bench => b.installArtifact(exe),
            .@"bench-pq" => {
                exe.linkSystemLibrary("libpq");
                exe.defineCMacro("NPROF_SOURCE_DIR", b.fmt("\"{s}\"", .{b.build_root.path orelse "."}));
                b.installArtifact(exe);
            },
            .lib, .embed, .@"test-env", .fuzz, .preload, .@"test-preload", .@"bench-preload", .@"example-microhttpd", .@"test-microhttpd" => unreachable,
        }
    }

    // test-preload: the test-pq program again, on libnanoprof.so, given the shim's path.
    for (entries) |e| {
        if (e.kind != .@"test-preload") continue;
        const shim = preload orelse {
            std.log.err("sources.txt: test-preload {s} without a preload line", .{e.path});
            return error.BadSourcesTxt;
        };
        const exe = programNamed(b, b.fmt("{s}_preload", .{std.fs.path.stem(e.path)}), e.path, target, optimize, shared);
        exe.linkSystemLibrary("libpq");
        exe.defineCMacro("NPROF_PQ_PRELOAD", "1");
        exe.defineCMacro("NPROF_SOURCE_DIR", b.fmt("\"{s}\"", .{b.build_root.path orelse "."}));
        test_step.dependOn(&TestRun.create(b, exe, shim, &.{}).step);
    }

    // bench-preload: the bench-pq program again, on libnanoprof.so; installed in bin/, it
    // preloads the shim installed in lib/.
    for (entries) |e| {
        if (e.kind != .@"bench-preload") continue;
        const exe = programNamed(b, b.fmt("{s}_preload", .{std.fs.path.stem(e.path)}), e.path, target, optimize, shared);
        exe.linkSystemLibrary("libpq");
        exe.defineCMacro("NPROF_PQ_PRELOAD", "1");
        exe.defineCMacro("NPROF_SOURCE_DIR", b.fmt("\"{s}\"", .{b.build_root.path orelse "."}));
        b.installArtifact(exe);
    }

    // Every public header compiles on its own, as C11 and as C++, even included twice, as in
    // CMake: a tiny .c and .cpp per header, generated from the folder's listing (no list).
    const checks = b.addWriteFiles();
    const public_headers = b.addExecutable(.{ .name = "public_headers", .target = target, .optimize = optimize });
    public_headers.addCSourceFile(.{ .file = checks.add("main.c", "int main(void) { return 0; }\n"), .flags = &c_program_flags });
    var include_dir = try b.build_root.handle.openIterableDir("include/nanoprof", .{});
    defer include_dir.close();
    var headers = include_dir.iterate();
    while (try headers.next()) |header| {
        if (header.kind != .file or !std.mem.endsWith(u8, header.name, ".h")) continue;
        const text = b.fmt("#include <nanoprof/{s}>\n#include <nanoprof/{s}>\n", .{ header.name, header.name });
        public_headers.addCSourceFile(.{ .file = checks.add(b.fmt("{s}.c", .{header.name}), text), .flags = &(c_program_flags ++ header_check_flags) });
        public_headers.addCSourceFile(.{ .file = checks.add(b.fmt("{s}.cpp", .{header.name}), text), .flags = &(cpp_program_flags ++ header_check_flags) });
    }
    public_headers.addIncludePath(.{ .path = "include" });
    public_headers.linkLibC();
    public_headers.linkLibCpp();
    test_step.dependOn(&public_headers.step);

    // Each layer includes only its own and lower layers' headers, as ctest checks.
    const layering = b.addSystemCommand(&.{ "sh", "tests/layering.sh", b.pathFromRoot(".") });
    layering.setName("run tests/layering.sh");
    test_step.dependOn(&layering.step);

    // Every public declaration has its comment, as ctest checks.
    const api_comments = b.addSystemCommand(&.{ "sh", "tests/api_comments.sh", b.pathFromRoot(".") });
    api_comments.setName("run tests/api_comments.sh");
    test_step.dependOn(&api_comments.step);

    for (entries) |e| {
        if (e.kind != .@"test-env") continue;
        const exe = programs.get(e.path) orelse {
            std.log.err("sources.txt: test-env {s}: no test line builds that program", .{e.path});
            return error.BadSourcesTxt;
        };
        test_step.dependOn(&TestRun.create(b, exe, null, e.env).step);
    }
}

/// Runs a test program of sources.txt as ctest does with SKIP_RETURN_CODE 77: exit 0 passes,
/// 77 marks the step skipped (nothing to test here, e.g. no PostgreSQL server), anything else
/// fails.  A plain Run step knows one expected exit code only.  Output goes to the terminal.
const TestRun = struct {
    step: std.Build.Step,
    exe: std.Build.LazyPath,
    /// A library whose path is the program's argument (test-dlopen, test-preload).
    arg: ?std.Build.LazyPath,
    /// NAME=value pairs added to the environment (test-env; checked in readSources).
    env: []const []const u8,

    fn create(b: *std.Build, exe: *std.Build.Step.Compile, arg: ?*std.Build.Step.Compile, env: []const []const u8) *TestRun {
        const self = b.allocator.create(TestRun) catch @panic("OOM");
        const name = if (env.len == 0) b.fmt("run {s}", .{exe.name}) else b.fmt("run {s} {s}", .{ exe.name, std.mem.join(b.allocator, " ", env) catch @panic("OOM") });
        self.* = .{
            .step = std.Build.Step.init(.{ .id = .custom, .name = name, .owner = b, .makeFn = make }),
            // Asked for now, while the build graph is made: a binary nobody asks for is not emitted.
            .exe = exe.getEmittedBin(),
            .arg = if (arg) |a| a.getEmittedBin() else null,
            .env = env,
        };
        self.exe.addStepDependencies(&self.step);
        if (self.arg) |a| a.addStepDependencies(&self.step);
        return self;
    }

    fn make(step: *std.Build.Step, prog_node: *std.Progress.Node) anyerror!void {
        _ = prog_node;
        const self = @fieldParentPtr(TestRun, "step", step);
        const b = step.owner;
        var argv = std.ArrayList([]const u8).init(b.allocator);
        try argv.append(self.exe.getPath(b));
        if (self.arg) |a| try argv.append(a.getPath(b));
        var env = try std.process.getEnvMap(b.allocator);
        for (self.env) |assignment| {
            const eq = std.mem.indexOfScalar(u8, assignment, '=').?;
            try env.put(assignment[0..eq], assignment[eq + 1 ..]);
        }
        var child = std.process.Child.init(argv.items, b.allocator);
        child.env_map = &env;
        const term = child.spawnAndWait() catch |err| return step.fail("cannot run {s}: {s}", .{ argv.items[0], @errorName(err) });
        switch (term) {
            .Exited => |code| switch (code) {
                0 => return,
                77 => return error.MakeSkipped,
                else => return step.fail("{s} exited with code {d} (0 passes, 77 is skipped)", .{ argv.items[0], code }),
            },
            .Signal => |signal| return step.fail("{s} was killed by signal {d}", .{ argv.items[0], signal }),
            else => return step.fail("{s} ended with {any}", .{ argv.items[0], term }),
        }
    }
};

/// An executable from one C or C++ file, named after the file, compiled like CMake's
/// nprof_program() and linked with `lib` (the static or shared libnanoprof) if given.
fn program(
    b: *std.Build,
    path: []const u8,
    target: std.zig.CrossTarget,
    optimize: std.builtin.OptimizeMode,
    lib: ?*std.Build.Step.Compile,
) *std.Build.Step.Compile {
    return programNamed(b, std.fs.path.stem(path), path, target, optimize, lib);
}

fn programNamed(
    b: *std.Build,
    name: []const u8,
    path: []const u8,
    target: std.zig.CrossTarget,
    optimize: std.builtin.OptimizeMode,
    lib: ?*std.Build.Step.Compile,
) *std.Build.Step.Compile {
    const exe = b.addExecutable(.{ .name = name, .target = target, .optimize = optimize });
    const is_cpp = std.mem.endsWith(u8, path, ".cpp");
    exe.addCSourceFile(.{ .file = .{ .path = path }, .flags = if (is_cpp) &cpp_program_flags else &c_program_flags });
    exe.addIncludePath(.{ .path = "include" });
    exe.addIncludePath(.{ .path = "." });
    exe.addIncludePath(.{ .path = "tests" });
    exe.linkLibC();
    if (is_cpp) exe.linkLibCpp();
    if (lib) |l| {
        // The static archive's users get NPROF_STATIC_DEFINE, as CMake's nanoprof::static
        // gives it; its pthread, dl and xxhash come along through linkLibrary.
        if (!l.isDynamicLibrary()) exe.defineCMacro("NPROF_STATIC_DEFINE", null);
        exe.linkLibrary(l);
    }
    return exe;
}

/// The version, from its one home: the NPROF_VERSION_MAJOR/MINOR/PATCH lines of
/// include/nanoprof/common.h, which CMakeLists.txt reads too.
fn readVersion(b: *std.Build) !std.SemanticVersion {
    const path = "include/nanoprof/common.h";
    const text = try b.build_root.handle.readFileAlloc(b.allocator, path, 1 << 20);
    const names = [_][]const u8{ "MAJOR", "MINOR", "PATCH" };
    var parts = [_]?usize{ null, null, null };
    var lines = std.mem.splitScalar(u8, text, '\n');
    while (lines.next()) |line| {
        for (names, &parts) |name, *part| {
            const prefix = b.fmt("#define NPROF_VERSION_{s} ", .{name});
            if (std.mem.startsWith(u8, line, prefix))
                part.* = std.fmt.parseInt(usize, std.mem.trimRight(u8, line[prefix.len..], " \t\r"), 10) catch null;
        }
    }
    for (names, parts) |name, part| if (part == null) {
        std.log.err("{s}: no '#define NPROF_VERSION_{s} <number>' line", .{ path, name });
        return error.BadVersion;
    };
    return .{ .major = parts[0].?, .minor = parts[1].?, .patch = parts[2].? };
}

/// Parses sources.txt: '#' lines and blank lines are skipped; every other line is
/// `<kind> <path> [NAME=value ...]`, fields separated by spaces or tabs.
fn readSources(b: *std.Build) ![]Entry {
    const text = b.build_root.handle.readFileAlloc(b.allocator, "sources.txt", 1 << 20) catch |err| {
        std.log.err("cannot read sources.txt in {s}: {s}", .{ b.build_root.path orelse ".", @errorName(err) });
        return err;
    };
    var entries = std.ArrayList(Entry).init(b.allocator);
    var lines = std.mem.splitScalar(u8, text, '\n');
    var line_number: usize = 0;
    while (lines.next()) |raw| {
        line_number += 1;
        const line = std.mem.trim(u8, raw, " \t\r");
        if (line.len == 0 or line[0] == '#') continue;

        var fields = std.mem.tokenizeAny(u8, line, " \t");
        const kind_name = fields.next().?;
        const kind = std.meta.stringToEnum(Kind, kind_name) orelse {
            std.log.err("sources.txt:{d}: unknown kind '{s}'", .{ line_number, kind_name });
            return error.BadSourcesTxt;
        };
        const path = fields.next() orelse {
            std.log.err("sources.txt:{d}: '{s}' without a path", .{ line_number, kind_name });
            return error.BadSourcesTxt;
        };
        var env = std.ArrayList([]const u8).init(b.allocator);
        while (fields.next()) |field| {
            if (std.mem.indexOfScalar(u8, field, '=') == null) {
                std.log.err("sources.txt:{d}: '{s}' is not NAME=value", .{ line_number, field });
                return error.BadSourcesTxt;
            }
            try env.append(field);
        }
        if (kind == .@"test-env" and env.items.len == 0) {
            std.log.err("sources.txt:{d}: test-env without NAME=value", .{line_number});
            return error.BadSourcesTxt;
        }
        try entries.append(.{ .kind = kind, .path = path, .env = env.items });
    }
    return entries.items;
}
