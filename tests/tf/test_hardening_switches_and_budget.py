"""Issue 13 §3: clear errors from disable_check/enable_check, and the capture budget after the
process recorder's capture level is switched back and forth."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

X = np.ones(22, np.float32)  # 88 bytes in, 88 out: 176 bytes captured per call


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


def calls(n: int) -> None:
    for _ in range(n):
        npi.numpy_function(double, [X], tf.float32)


def test_budget_accounting_survives_full_summary_full(process_recorder: npi.Recorder) -> None:
    rec = npi.install(capture="full", capacity=4, max_capture_bytes=1000)
    calls(4)
    assert rec.captured_bytes == 4 * 176
    npi.install(capture="summary")
    calls(300)  # evicts the four 'full' records (in batches, past capacity)
    npi.install(capture="full")
    calls(8)
    kept = rec.invocations()
    notes = [a.capture_note for inv in kept for a in inv.inputs + inv.outputs if a.capture_note]
    assert notes == [], notes  # was: "dropped: capture budget of 1000 bytes is full"
    assert all(a.data is not None for inv in kept for a in inv.inputs + inv.outputs)
    assert rec.captured_bytes == sum(inv.captured_bytes for inv in kept) == 4 * 176
    assert rec.payloads_dropped == 0


@pytest.mark.parametrize("kind", [None, 5, 1.5, [None], ["hidden-state", 3], b"hidden-state"])
def test_a_kind_that_is_not_a_str_or_list_of_str_is_a_type_error(kind: object) -> None:
    for switch in (npi.disable_check, npi.enable_check):
        with pytest.raises(TypeError, match="check kind") as raised:
            switch(kind)
        assert "not iterable" not in str(raised.value)
        assert "hidden-state" in str(raised.value)  # names the kinds to choose from


@pytest.mark.parametrize("func", [5, 1.5, b"double", ["double"], object()])
def test_func_that_is_not_a_callable_or_a_name_is_a_type_error(func: object) -> None:
    for switch in (npi.disable_check, npi.enable_check):
        with pytest.raises(TypeError, match="func must be a callable or a function name"):
            switch("hidden-state", func)
    from tfnp_inspect.checks.switches import switches

    assert not switches.off_per_function and not switches.off_globally  # nothing half-applied


def test_disable_check_by_callable_and_by_name_still_work() -> None:
    npi.disable_check("mutated-input", double)
    npi.disable_check(["hidden-state"], "other")
    try:
        from tfnp_inspect.checks.switches import switches

        assert switches.off_per_function == {
            npi.function_name(double): frozenset({"mutated-input"}), "other": frozenset({"hidden-state"}),
        }
    finally:
        npi.enable_check("mutated-input", double)
        npi.enable_check("hidden-state", "other")
    with pytest.raises(ValueError, match="unknown check kind 'nope'"):
        npi.disable_check("nope")
