"""Builds and imports floor.c (the `floor` variant of bench_asgi_db.py): compiled once per
Python and source, with the machine's C compiler, into a cache directory."""

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


def load() -> ModuleType:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    tag = hashlib.sha256(SOURCE.read_bytes() + sys.version.encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nanoprof-bench"
    target = cache / f"floor-{tag}{suffix}"
    if not target.exists():
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise SystemExit("the floor variant needs a C compiler (apt-get install -y gcc)")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cc, "-O2", "-g", "-shared", "-fPIC", "-Wall", "-Werror",
               f"-I{sysconfig.get_path('include')}", str(SOURCE), "-o", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"floor.c did not build:\n{done.stderr}")
        os.replace(tmp, target)
    spec = importlib.util.spec_from_file_location("floor", target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
