"""``benchmarks/core_floor.py`` measures a compact record from a copy of ``_probe_core.c`` with
``benchmarks/core_floor.c`` added: the copy must still be made and build, and its record must
leave the call's result as it is."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import core_floor


def test_the_floor_goes_before_the_method_table_and_is_listed_in_it() -> None:
    source = core_floor.floor_source()
    assert source.index("floor_call(PyObject *module") < source.index(core_floor.METHOD_TABLE)
    assert source.count('"compact_call"') == 1
    assert source.count('"floor_stats"') == source.count('"bytes_call"') == 1


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_the_copy_builds_and_has_recorded_nothing(tmp_path: Path) -> None:
    built = core_floor.build(tmp_path, core_floor.floor_source())
    spec = importlib.util.spec_from_file_location("_probe_core", built)  # names its init function
    assert spec is not None and spec.loader is not None
    core = importlib.util.module_from_spec(spec)  # not put in sys.modules
    spec.loader.exec_module(core)
    assert core.floor_stats() == {"stored": 0, "skipped": 0, "folded": 0, "mean_ns": 0, "arena_head": 0}
    with pytest.raises(RuntimeError, match="init"):  # before init(), as the installed core
        core.compact_call(None, len, ((),), None)
