"""How the extension was built: the wheel's build is profile-guided (NPROF_PGO, see
bindings/python/CMakeLists.txt), and says so."""

from __future__ import annotations

import os

import pytest

from nanoprof import _core


def test_the_build_says_whether_it_is_profile_guided() -> None:
    assert isinstance(_core.PROFILE_GUIDED, bool)


@pytest.mark.skipif(os.environ.get("NANOPROF_EXPECT_PGO") != "1",
                    reason="NANOPROF_EXPECT_PGO=1 is set where the build must be profile-guided "
                           "(scripts/test.sh, for the wheel)")
def test_the_wheel_is_profile_guided() -> None:
    # The wheel's build trains and compiles with the counts; a compiler CMake could not use
    # for that, or a failed check, would leave a slower build that still passes every test.
    assert _core.PROFILE_GUIDED, (
        "the installed nanoprof was built without profile-guided optimization: its build "
        "needs GCC and NPROF_PGO=ON (pyproject.toml), and prints why it left it out")
