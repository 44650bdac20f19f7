"""Which frames are never a query's call site: nanoprof itself, the standard library and
installed packages (the framework, the ORM, the driver).  The rest is the application, and
the innermost application frame of a query's stack is its call site ("views.py:42 in
article_list"), shown relative to the directory the process started in.

The C extension does the stack walk (``_core.callsite``); this module only gives it the
path prefixes, once at import and again when the application adds its own.
"""

from __future__ import annotations

import os
import site
import sysconfig

from . import _core

_extra: list[str] = []


def _default_prefixes() -> list[str]:
    paths = sysconfig.get_paths()
    found = [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths]
    try:
        found += site.getsitepackages()
    except AttributeError:  # some virtualenv versions' site module lacks it
        pass
    if site.ENABLE_USER_SITE and site.USER_SITE:
        found.append(site.USER_SITE)
    found.append(os.path.dirname(os.path.abspath(__file__)))
    # Resolved and as given: a venv's lib may be reached through a symlink.
    every = {p for path in found for p in (path, os.path.realpath(path))}
    return sorted({p.rstrip("/") + "/" for p in every if p})


def _apply(extra: list[str] | None = None) -> None:
    _core.set_callsite_exclude(_default_prefixes() + (_extra if extra is None else extra),
                               base=os.getcwd())


def _sampler_paths() -> None:
    """The sampler names a frame under the standard library or an installed package after
    that library ("django", "asyncio"), and never shows nanoprof's own frames."""
    own = os.path.dirname(os.path.abspath(__file__))
    owns = {p.rstrip("/") + "/" for p in (own, os.path.realpath(own))}
    libs = [p for p in _default_prefixes() if p not in owns]
    _core.set_sampler_paths(libs, sorted(owns), base=os.getcwd())


def exclude_callsite_paths(*prefixes: str) -> None:
    """Never report frames under these paths as a query's call site: for a library of your
    own that issues queries for its callers (a repository layer, a test helper), so that the
    line reported is the caller's."""
    for p in prefixes:
        if not isinstance(p, str) or not p:
            raise TypeError(f"exclude_callsite_paths() takes non-empty path strings, got {p!r}")
    wanted = _extra + [os.path.abspath(p) for p in prefixes]
    _apply(wanted)  # raises (and keeps the table as it was) when there are too many
    _extra[:] = wanted


_apply()
_sampler_paths()
