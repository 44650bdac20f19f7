"""Builds and imports floor.c (the `floor` variant of bench_asgi_db.py), or with core=True
floor.c built as floor_core (the `floor-core` variant: the same mechanism feeding
nanoprof's C core through this tree's public headers and the installed package's
libnanoprof): compiled once per Python, source and library, with the machine's C compiler,
into a cache directory."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "floor.c"
INCLUDE = HERE.parent.parent / "include"


def _libnanoprof() -> Path:
    """The installed nanoprof package's libnanoprof, found without importing nanoprof."""
    spec = importlib.util.find_spec("nanoprof")
    if not spec or not spec.submodule_search_locations:
        raise SystemExit("the floor-core variant needs the nanoprof package installed")
    lib = Path(list(spec.submodule_search_locations)[0]) / "libnanoprof.so.0"
    if not lib.exists():
        raise SystemExit(f"the floor-core variant needs {lib}, which is not there")
    return lib


def load(core: bool = False) -> ModuleType:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    name = "floor_core" if core else "floor"
    key = SOURCE.read_bytes() + sys.version.encode()
    extra: list[str] = []
    if core:
        lib = _libnanoprof()
        key += str(lib).encode() + lib.read_bytes()
        key += b"".join(h.read_bytes() for h in sorted((INCLUDE / "nanoprof").glob("*.h")))
        extra = ["-DFLOOR_CORE", f"-I{INCLUDE}", str(lib), f"-Wl,-rpath,{lib.parent}"]
    tag = hashlib.sha256(key).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nanoprof-bench"
    target = cache / f"{name}-{tag}{suffix}"
    if not target.exists():
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise SystemExit("the floor variant needs a C compiler (apt-get install -y gcc)")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cc, "-O2", "-g", "-shared", "-fPIC", "-Wall", "-Werror",
               f"-I{sysconfig.get_path('include')}", str(SOURCE), *extra, "-o", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"floor.c ({name}) did not build:\n{done.stderr}")
        os.replace(tmp, target)
    spec = importlib.util.spec_from_file_location(name, target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
