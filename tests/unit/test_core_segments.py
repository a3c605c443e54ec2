"""``benchmarks/core_segments.py`` times the compiled core part by part from an instrumented copy
of ``_probe_core.c``: its anchors must still be in the source, and the copy must build."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import core_segments


def test_every_part_is_marked_once_in_the_order_the_core_runs() -> None:
    source = core_segments.instrumented_source()
    marks = [source.index(f"SEGMENT_MARK({index});") for index in range(len(core_segments.PARTS))]
    assert marks == sorted(marks)
    assert source.count("SEGMENT_MARK(") == len(core_segments.PARTS) + 1  # and the macro itself


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_the_instrumented_copy_builds_and_counts_nothing_before_a_call(tmp_path: Path) -> None:
    built = core_segments.build(tmp_path)
    spec = importlib.util.spec_from_file_location("_probe_core", built)  # names its init function
    assert spec is not None and spec.loader is not None
    core = importlib.util.module_from_spec(spec)  # not put in sys.modules
    spec.loader.exec_module(core)
    assert core.segments() == [0] * (len(core_segments.PARTS) + 1)
