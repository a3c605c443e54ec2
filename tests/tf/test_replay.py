"""``tfnp_inspect.replay``: calling a recorded function again on its captured inputs."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.recording.replay import ReplayError, ReplayResult, replay

pytestmark = pytest.mark.timeout(120)


def record_graph_call(func, *inputs, Tout=tf.float32, capture="full"):
    """Run ``func`` once through ``tf.numpy_function`` inside a tf.function; its invocation."""

    @tf.function
    def graph(*xs):
        return tf.numpy_function(func, list(xs), Tout)

    with npi.trace(capture=capture) as recorded:
        graph(*inputs)
    (invocation,) = recorded.invocations
    return invocation


def double(x):
    return x * 2


def test_pure_function_replays_to_the_recorded_outputs():
    invocation = record_graph_call(double, tf.constant([1.0, 2.5, -3.0]))

    result = replay(invocation)

    assert isinstance(result, ReplayResult)
    assert result.matches, result.differences
    assert result.differences == () and result.error is None
    np.testing.assert_array_equal(result.outputs[0], np.array([2.0, 5.0, -6.0], dtype=np.float32))
    assert "matches the recorded call" in repr(result)
    assert "matches the recorded call" in result._repr_html_()


def test_nondeterministic_function_differs_and_reports_the_size_of_the_difference():
    rng = np.random.default_rng(0)

    def noisy(x):
        return (x + rng.normal(size=x.shape)).astype(np.float32)

    invocation = record_graph_call(noisy, tf.zeros([4]))

    result = replay(invocation)

    assert not result.matches
    (difference,) = result.differences
    assert difference.startswith("output 0: 4 of 4 values differ (max abs difference ")
    expected = np.max(np.abs(result.outputs[0] - invocation.outputs[0].data))
    assert f"{expected:.6g}" in difference
    assert "differs from the recorded call" in repr(result)


def test_without_output_capture_contents_are_compared_by_fingerprint():
    calls = []

    def counter(x):
        calls.append(1)
        return x + len(calls)

    invocation = record_graph_call(counter, tf.zeros([3]))
    # Drop the output payload, keep the input: what a byte budget that ran out leaves behind.
    stripped = invocation.replace(raw_outputs=tuple(r._replace(data=None) for r in invocation.raw_outputs))

    result = replay(stripped)

    assert result.differences == (
        "output 0: contents differ (fingerprints differ; record with capture='full' to compare values)",
    )
    assert replay(stripped, func=lambda x: x + 1).matches


@pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning")
def test_mutating_function_replays_on_copies_and_leaves_the_record_intact():
    def mutate(x):
        x += 1
        return x * 1

    invocation = record_graph_call(mutate, tf.constant([1.0, 2.0]))
    recorded_input = invocation.inputs[0].data.copy()

    assert replay(invocation).matches
    assert replay(invocation).matches  # a second replay starts from the same inputs
    np.testing.assert_array_equal(invocation.inputs[0].data, recorded_input)


def test_graph_mode_scalars_arrive_as_numpy_scalars_as_they_did_in_the_recorded_call():
    def kind_of(x):
        return np.array(type(x).__name__.encode(), dtype=object)

    invocation = record_graph_call(kind_of, tf.constant(1.5), Tout=tf.string)

    assert replay(invocation).matches
    assert replay(invocation).outputs[0].item() == b"float32"


def test_other_dtype_shape_and_count_are_differences():
    invocation = record_graph_call(double, tf.constant([1.0, 2.0]))

    assert replay(invocation, func=lambda x: (x * 2).astype(np.float64)).differences == (
        "output 0: dtype float64, recorded float32",
    )
    assert replay(invocation, func=lambda x: x[:1] * 2).differences == ("output 0: shape [1], recorded [2]",)
    assert replay(invocation, func=lambda x: (x * 2, x)).differences == (
        "the replay returned 2 value(s); the recorded call returned 1",
    )


def test_exceptions_are_compared_with_the_recorded_error():
    def fail(x):
        raise ValueError(f"bad input of size {x.size}")

    with npi.trace(capture="full") as recorded:
        with pytest.raises(ValueError):
            npi.numpy_function(fail, [tf.constant([1, 2])], tf.int32)
    (invocation,) = recorded.invocations

    same = replay(invocation)
    assert same.matches and isinstance(same.error, ValueError)

    fixed = replay(invocation, func=lambda x: x)
    assert fixed.differences == (
        "the recorded call raised ValueError: bad input of size 2; the replay returned normally",
    )
    other = replay(invocation, func=lambda x: x.missing)
    assert other.differences[0].startswith("the replay raised AttributeError:")


def test_inputs_that_were_not_captured_need_capture_full():
    invocation = record_graph_call(double, tf.constant([1.0]), capture="summary")

    with pytest.raises(ValueError, match=r"input 0 was not captured.*capture='full'"):
        replay(invocation)


def test_a_function_that_is_gone_must_be_passed_explicitly():
    def make():
        def short_lived(x):
            return x - 1

        return short_lived

    func = make()
    with npi.trace(capture="full") as recorded:
        npi.numpy_function(func, [tf.constant([5.0])], tf.float32)  # eager: TF keeps no reference
    (invocation,) = recorded.invocations
    del func
    gc.collect()

    assert invocation.site.func is None
    with pytest.raises(ReplayError, match=r"pass it explicitly: replay\(invocation, func=\.\.\.\)"):
        replay(invocation)
    assert replay(invocation, func=lambda x: x - 1).matches


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="needs an Invocation, not int"):
        replay(3)
    invocation = record_graph_call(double, tf.constant([1.0]))
    with pytest.raises(TypeError, match="func must be callable"):
        replay(invocation, func="double")
