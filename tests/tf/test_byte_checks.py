"""Byte checks that scale: large arrays are hashed whole on each op's first calls and on one
call in FULL_CHECK_EVERY, sampled on the others; ``byte_checks='every-call'`` checks every byte.

Real TF graphs (tf.function and tf.data): a dense in-place write is caught on every call, a
sparse one on the fully checked calls; the twin that writes into a copy stays silent.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.model.fingerprints import SAMPLED_MIN_BYTES
from tfnp_inspect.recording.arrays import UNHASHED_FROM_BYTES
from tfnp_inspect.recording.probe import FULL_CHECK_CALLS, FULL_CHECK_EVERY

BIG = 1 << 18  # float32 elements: 1 MiB, above the sampling threshold
JUST_OVER = SAMPLED_MIN_BYTES // 4 + 16  # float32 elements: the smallest arrays that are sampled
CALLS = 40


def dense_write(x: np.ndarray) -> np.ndarray:
    x *= 2  # every byte, like an in-place augmentation
    return x.copy()


def sparse_write(x: np.ndarray) -> np.ndarray:
    x[BIG // 2 + 7] += 1.0  # one element, away from the sampled blocks
    return x.copy()


def writes_a_copy(x: np.ndarray) -> np.ndarray:
    y = x.copy()
    y *= 2
    return y


def run(func, byte_checks: str = "sampled", via: str = "function", size: int = BIG):
    values = tf.ones([size], tf.float32)
    with npi.trace(byte_checks=byte_checks) as t:
        if via == "function":
            step = tf.function(lambda v: tf.numpy_function(func, [tf.identity(v)], tf.float32))
            results = [step(values).numpy() for _ in range(CALLS)]
        else:
            dataset = tf.data.Dataset.from_tensors(values).repeat(CALLS)
            results = [r.numpy() for r in dataset.map(lambda v: tf.numpy_function(func, [v], tf.float32))]
    return t, results


def flagged_calls(t) -> list[int]:
    """Positions (0-based, in call order) of the calls that got a mutated-input violation."""
    order = {inv.seq: i for i, inv in enumerate(sorted(t.invocations, key=lambda inv: inv.seq))}
    return sorted(order[v.seq] for v in t.violations if v.kind == "mutated-input")


@pytest.mark.parametrize("via", ["function", "dataset"])
def test_dense_writes_are_caught_on_every_call(via: str) -> None:
    t, _ = run(dense_write, via=via)
    assert flagged_calls(t) == list(range(CALLS))
    assert not all(inv.fully_checked for inv in t.invocations)  # sampling was on


def test_sparse_writes_are_caught_on_the_fully_checked_calls() -> None:
    t, _ = run(sparse_write)
    full = [i for i in range(CALLS) if i < FULL_CHECK_CALLS or i % FULL_CHECK_EVERY == 0]
    flagged = flagged_calls(t)
    assert set(full) <= set(flagged)  # the first calls always: systematic bugs show at once
    checked = sorted(i for i, inv in enumerate(sorted(t.invocations, key=lambda inv: inv.seq)) if inv.fully_checked)
    assert checked == full


def test_every_call_mode_checks_every_byte() -> None:
    t, _ = run(sparse_write, byte_checks="every-call")
    assert flagged_calls(t) == list(range(CALLS))
    assert all(inv.fully_checked for inv in t.invocations)


@pytest.mark.parametrize("byte_checks", ["sampled", "every-call"])
def test_writing_into_a_copy_stays_silent_and_results_match(byte_checks: str) -> None:
    t, traced = run(writes_a_copy, byte_checks)
    assert t.violations == []
    step = tf.function(lambda v: tf.numpy_function(writes_a_copy, [tf.identity(v)], tf.float32))
    plain = [step(tf.ones([BIG], tf.float32)).numpy() for _ in range(3)]
    for got, want in zip(traced[:3], plain, strict=True):
        assert got.tobytes() == want.tobytes()


def test_byte_checks_option_is_validated() -> None:
    with pytest.raises(ValueError, match="byte_checks"):
        npi.trace(byte_checks="sometimes").__enter__()


@pytest.mark.parametrize("via", ["function", "dataset"])
def test_arrays_just_over_the_threshold_are_sampled_and_dense_writes_still_caught(via: str) -> None:
    t, _ = run(dense_write, via=via, size=JUST_OVER)
    assert flagged_calls(t) == list(range(CALLS))
    assert not all(inv.fully_checked for inv in t.invocations)
    quiet, traced = run(writes_a_copy, via=via, size=JUST_OVER)
    assert quiet.violations == []
    assert all(got.tobytes() == np.full(JUST_OVER, 2, np.float32).tobytes() for got in traced)


@pytest.mark.parametrize(("stateful", "capture", "hashed"), [
    (True, "summary", False),  # nothing compares a large output: not fingerprinted
    (False, "summary", True),  # the determinism check compares them
    (True, "full", True),  # replay compares them
])
def test_large_outputs_are_fingerprinted_where_something_compares_them(stateful: bool, capture: str,
                                                                      hashed: bool) -> None:
    size = UNHASHED_FROM_BYTES // 4  # float32 elements: the smallest unhashed output
    step = tf.function(lambda v: tf.numpy_function(writes_a_copy, [v], tf.float32, stateful=stateful))
    with npi.trace(capture=capture) as t:
        step(tf.range(size, dtype=tf.float32))
    (inv,) = t.invocations
    assert inv.inputs[0].fingerprint is not None  # inputs always: the mutation check needs them
    assert (inv.outputs[0].fingerprint is not None) is hashed
