"""Shared wording of every view (views/format.py): units, previews, notes and badges."""

from __future__ import annotations

import numpy as np
import pytest

from tfnp_inspect.model.jsonable import json_safe
from tfnp_inspect.model.records import array_info
from tfnp_inspect.views import format as fmt

import fabricate


@pytest.mark.parametrize(
    ("ns", "text"),
    [(float("nan"), "–"), (12, "12 ns"), (1_500, "1.50 µs"), (45_600, "45.6 µs"), (2.5e6, "2.50 ms"), (3e9, "3.00 s")],
)
def test_durations(ns, text):
    assert fmt.human_duration(ns) == text


@pytest.mark.parametrize(("count", "text"), [(512, "512 B"), (1536, "1.50 KiB"), (64 << 20, "64.0 MiB"), (3 << 50, "3072 TiB")])
def test_bytes(count, text):
    assert fmt.human_bytes(count) == text


def test_plural():
    assert (fmt.plural(1, "call"), fmt.plural(0, "call"), fmt.plural(2, "hint")) == ("1 call", "0 calls", "2 hints")


def test_previews_are_summarised_and_bounded():
    assert fmt.array_preview(np.arange(4.0)) == "[0. 1. 2. 3.]"
    long = fmt.array_preview(np.arange(1_000.0))
    assert "..." in long and len(long) < 100
    tall = fmt.array_preview(np.zeros((30, 2, 2)))
    assert len(tall.splitlines()) == fmt.PREVIEW_MAX_LINES + 1 and tall.endswith("(1 more line)")  # singular
    wide = fmt.array_preview(np.array(["x" * 5_000]))
    assert len(wide) == fmt.PREVIEW_MAX_CHARS + 2 and wide.endswith(" …")


def test_notes_in_both_lengths():
    raw = fabricate.raw_array(np.arange(6.0).reshape(2, 3).T, shares_tensor=True, will_be_copied=True,
                              aliases_input=1, capture_note="not captured: capture budget is full")
    info = array_info(raw)
    assert fmt.array_notes(info) == [
        "view of a TF tensor buffer", "shares memory with input 1", "TF copies it", "not C-contiguous",
        "not captured: capture budget is full",
    ]
    assert fmt.array_notes(info, detailed=True) == [
        "zero-copy view of a TensorFlow tensor (writeable: writing to it changes the tensor)",
        "shares memory with input 1",
        "TensorFlow will copy it (not C-contiguous, not 64-byte aligned, or objects)",
    ]
    plain = array_info(fabricate.raw_array(np.ones(2), will_be_copied=False))
    assert fmt.array_notes(plain) == []
    assert fmt.array_notes(plain, detailed=True) == ["handed to TensorFlow without a copy"]
    own = array_info(fabricate.raw_array(np.ones(2)))
    assert fmt.array_notes(own, detailed=True, is_input=True) == ["own copy"]


def test_badges_from_compact_rows():
    inputs = [fabricate.raw_array(np.ones(2), shares_tensor=True), fabricate.raw_array(np.ones(2))]
    outputs = [fabricate.raw_array(np.ones(2), aliases_input=0, will_be_copied=True)]
    badges = fmt.array_badges(inputs, outputs)
    assert [(b["kind"], b["text"]) for b in badges] == [("view", "in0 view"), ("alias", "out0=in0"), ("copy", "out0 copied")]
    assert badges[0]["title"].startswith("input 0: zero-copy view of a TensorFlow tensor")
    assert badges[1]["title"] == "output 0 shares memory with input 0"


def test_json_safe_writes_nan_and_inf_as_null():
    value = {"mean": float("nan"), "max": float("inf"), "n": 3, "xs": [1.5, float("-inf")], "ok": True}
    assert json_safe(value) == {"mean": None, "max": None, "n": 3, "xs": [1.5, None], "ok": True}
