"""Issue 13 §4: one documented way to catch a strict-mode violation raised from graph code,
``with npi.raise_violations(): ...`` (TensorFlow turns it into UnknownError there)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

pytestmark = pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning")


def add_one_in_place(x: np.ndarray) -> np.ndarray:
    x += 1
    return x


def fails(x: np.ndarray) -> np.ndarray:
    raise ValueError("the user's own error")


def in_function(func) -> None:
    tf.function(lambda x: npi.numpy_function(func, [x], tf.float32))(tf.ones(3))


def in_dataset(func) -> None:
    dataset = tf.data.Dataset.from_tensors(tf.ones(3)).repeat(3)
    list(dataset.map(lambda x: npi.numpy_function(func, [x], tf.float32), num_parallel_calls=2))


def eagerly(func) -> None:
    npi.numpy_function(func, [tf.ones(3)], tf.float32)


@pytest.mark.parametrize("run", [in_function, in_dataset, eagerly], ids=["tf.function", "tf.data", "eager"])
def test_a_strict_violation_is_caught_as_violation_error(run) -> None:
    with npi.trace(strict=True) as t:
        if run is not eagerly:  # what happened before: TF's error, "ViolationError" only in its text
            with pytest.raises(tf.errors.UnknownError, match="ViolationError") as plain:
                run(add_one_in_place)
            assert not isinstance(plain.value, npi.ViolationError)
        with pytest.raises(npi.ViolationError) as caught, npi.raise_violations():
            run(add_one_in_place)
    error = caught.value
    assert [v.kind for v in error.violations] == ["mutated-input"]
    assert error.violations[0] in t.violations  # the recorded Violation, seq and call site included
    assert error.violations[0].seq > 0 and error.violations[0].call_site
    if run is not eagerly:
        assert isinstance(error.__cause__, tf.errors.UnknownError)


def test_other_errors_pass_through_unchanged() -> None:
    with npi.trace(strict=True), pytest.raises(tf.errors.OpError) as raised, npi.raise_violations():
        in_function(fails)
    assert not isinstance(raised.value, npi.ViolationError) and "the user's own error" in str(raised.value)
    with pytest.raises(KeyError), npi.raise_violations():
        raise KeyError("x")


def test_outside_the_trace_block_the_violations_are_rebuilt_from_the_text() -> None:
    """The trace() block ended before the error reached raise_violations: its recorder is gone,
    so the kind and message come from TensorFlow's text."""
    with pytest.raises(npi.ViolationError) as caught, npi.raise_violations(), npi.trace(strict=True) as t:
        in_function(add_one_in_place)
    (violation,) = caught.value.violations
    recorded = t.violations[0]
    assert (violation.kind, violation.func_name, violation.message) == (
        recorded.kind, recorded.func_name, recorded.message,
    )
    assert violation.seq == -1 and violation.call_site is None


def test_several_violations_of_one_call() -> None:
    def twice(x: np.ndarray) -> np.ndarray:
        x += 1  # mutated-input
        return x.astype(np.float64)  # tout-mismatch (float64 for float32)

    with npi.trace(strict=True) as t, pytest.raises(npi.ViolationError) as caught, npi.raise_violations():
        in_function(twice)
    kinds = {v.kind for v in caught.value.violations}
    assert kinds == {"mutated-input", "tout-mismatch"} and set(caught.value.violations) <= set(t.violations)
