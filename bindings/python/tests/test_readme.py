"""The README's configuration reference is the option table of runtime/config.c, as
scripts/config_reference.py renders it: a new option or a changed default or doc string fails
here until the README is regenerated (python scripts/config_reference.py --write)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nanoprof

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "config_reference.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_option_table() -> None:
    ref = load()
    in_readme = ref.current(ref.README.read_text())
    assert in_readme == ref.generated(), (
        "README.md's configuration reference is out of date: "
        "python scripts/config_reference.py --write")


def test_every_option_has_a_row() -> None:
    ref = load()
    rows = ref.current(ref.README.read_text()).splitlines()
    for name, *_ in nanoprof.options():
        assert sum(row.startswith(f"| `{name}` |") for row in rows) == 1, name


def test_a_pipe_in_a_value_stays_inside_its_cell() -> None:
    ref = load()
    row = ref.table([("x", "enum(a|b)", "a|b", "one | two")]).splitlines()[-1]
    assert row == r"| `x` | enum(a\|b) | `a\|b` | one \| two |"
