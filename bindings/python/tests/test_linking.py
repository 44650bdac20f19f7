"""How the extension, the library it loads and the preload shim are linked: no call of their
code goes through the PLT (the root CMakeLists.txt, NPROF_BIND_FLAGS).  They run cold on
every request, and the PLT entries of the calls a request makes took dozens of cache lines
of their own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nanoprof import _core

PACKAGE = Path(_core.__file__).resolve().parent


def _jump_slots(path: Path) -> list[str]:
    """The PLT slots of `path`'s calls, but those of names reserved to the implementation
    ("__..."): calls the toolchain adds, not the code (glibc's static pthread_atfork calling
    __register_atfork, a sanitizer's __asan_init), which our flags do not reach and which
    run at load, not per request."""
    out = subprocess.run(["readelf", "-rW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    assert "R_X86_64_" in out or "R_AARCH64_" in out, f"readelf read no relocations:\n{out}"
    slots = []
    for line in out.splitlines():
        fields = line.split()  # offset, info, type, value, symbol[@version], +, addend
        if len(fields) > 4 and "JUMP_SLO" in fields[2] and not fields[4].startswith("__"):
            slots.append(line)
    return slots


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf is not installed")
@pytest.mark.parametrize("name", ["_core", "libnanoprof"])
def test_no_call_goes_through_the_plt(name: str) -> None:
    files = sorted(PACKAGE.glob(f"{name}*.so*"))
    assert files, f"no {name} in {PACKAGE}"
    for path in files:
        slots = _jump_slots(path)
        assert not slots, f"{path.name} calls through PLT slots:\n" + "\n".join(slots[:10])
