"""The pytest plugin's report text, and replay of fabricated calls (no TensorFlow involved)."""

from __future__ import annotations

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.integrations import pytest_plugin
from tfnp_inspect.recording.replay import ReplayError, replay

import fabricate


def test_failure_text_lists_each_violation_once_with_its_calls():
    first = fabricate.invocation(seq=1)
    second = fabricate.invocation(seq=2)
    found = [fabricate.violation(first), fabricate.violation(second), fabricate.violation(first, "hidden-state", "x")]
    text = pytest_plugin.failure_text(found)
    lines = text.splitlines()
    assert lines[0] == "3 tf.numpy_function contract violation(s) recorded during the test:"
    assert lines[1] == "[mutated-input] double at model.py:12 (calls #1, #2): wrote into input 0"
    assert lines[2] == "[hidden-state] double at model.py:12 (call #1): x"


def double(x):
    return x * 2


def noisy(x):
    return x * 2 + np.random.default_rng().random(x.shape)


def test_replay_of_a_pure_function_matches():
    inv = fabricate.invocation([np.arange(4.0)], func=double, capture="full")
    result = replay(inv)
    assert result.matches and result.error is None
    np.testing.assert_array_equal(result.outputs[0], np.arange(4.0) * 2)
    assert "matches the recorded call" in repr(result)


def test_replay_reports_what_differs():
    inv = fabricate.invocation([np.arange(4.0)], func=noisy, capture="full")
    result = replay(inv)
    assert not result.matches and result.differences[0].startswith("output 0: 4 of 4 values differ")
    fewer = replay(inv, func=lambda x: None)
    assert fewer.differences == ("the replay returned 0 value(s); the recorded call returned 1",)
    both = replay(inv, func=lambda x: (x, x))
    assert "returned 2 value(s)" in both.differences[0]


def test_replay_compares_errors():
    failed = fabricate.invocation([np.ones(1)], func=double, capture="full", error=npi.ErrorInfo("ValueError", "bad"))
    assert replay(failed).differences == ("the recorded call raised ValueError: bad; the replay returned normally",)

    def raises(x):
        raise ValueError("bad")

    assert replay(failed, func=raises).matches


def test_replay_needs_captured_inputs_and_a_function():
    with pytest.raises(ReplayError, match="capture='full'"):
        replay(fabricate.invocation(func=double))
    with pytest.raises(ReplayError, match="no longer known"):
        replay(fabricate.invocation(func="gone", capture="full"))
    with pytest.raises(TypeError, match="needs an Invocation"):
        replay("not a call")
