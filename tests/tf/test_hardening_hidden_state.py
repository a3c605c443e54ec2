"""Issue 13 §2: the hidden-state watch costs a bounded amount per call, whatever the size of the
global arrays a ``stateful=False`` function reads, and still catches writes into them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

CALLS = 40

# 64 MiB, transposed (F-contiguous); 16 MiB C-contiguous; 2 MiB with a column stride
BIG_T = np.arange(16 << 20, dtype=np.float32).reshape(4096, 4096).T
MID = np.arange(4 << 20, dtype=np.float32).reshape(2048, 2048)
STRIDED = np.zeros((1024, 1024), np.float32)[:, ::2]
WRITTEN = np.zeros(1 << 20, np.float32)  # 4 MiB, written into by the functions below


def reads_nothing(x: np.ndarray) -> np.ndarray:
    return x + np.float32(1)


def reads_big_transposed(x: np.ndarray) -> np.ndarray:
    return x + BIG_T[3, 5]


def reads_mid(x: np.ndarray) -> np.ndarray:
    return x + MID[7, 11]


def per_call_seconds(func: Callable, calls: int = CALLS) -> float:
    """Seconds per call of ``func`` in one tf.function loop, traced with default options."""
    with npi.trace() as t:

        @tf.function
        def loop(v: tf.Tensor) -> tf.Tensor:
            total = tf.constant(0.0)
            for i in tf.range(calls):
                y = npi.numpy_function(func, [v + tf.cast(i, tf.float32)], tf.float32, stateful=False)
                total += tf.reduce_sum(y)
            return total

        loop(tf.zeros(4))  # the watch is built on the first call; time the others
        start = time.perf_counter()
        loop(tf.zeros(4))
        seconds = (time.perf_counter() - start) / calls
    assert t.total == 2 * calls and not t.violations, t.violations
    return seconds


@pytest.mark.parametrize("func", [reads_big_transposed, reads_mid], ids=["64MiB-transposed", "16MiB"])
def test_reading_a_large_global_array_costs_a_bounded_amount_per_call(func: Callable) -> None:
    """Before: the array was made contiguous and hashed whole twice per call (64 MiB
    transposed: ~0.3 s per call; 16 MiB: ~3 ms). Now a few microseconds."""
    baseline = min(per_call_seconds(reads_nothing) for _ in range(3))
    watched = min(per_call_seconds(func) for _ in range(3))
    assert watched - baseline < 0.2e-3, (
        f"{func.__name__}: {watched * 1e6:.0f} us per call vs {baseline * 1e6:.0f} us for a "
        "function that reads no global"
    )


def run_graph(func: Callable, calls: int, stateful: bool = False) -> Any:
    with npi.trace() as t:
        f = tf.function(lambda v: npi.numpy_function(func, [v], tf.float32, stateful=stateful))
        for _ in range(calls):
            f(tf.zeros(4))
    return t


def hidden_seqs(trace: Any, name: str) -> list[int]:
    """Positions (1-based, in call order) of the calls that broke hidden-state."""
    seqs = sorted(inv.seq for inv in trace.invocations)
    flagged = {v.seq for v in trace.violations if v.kind == "hidden-state" and v.func_name == name}
    return [i + 1 for i, seq in enumerate(seqs) if seq in flagged]


def test_dense_writes_into_a_large_global_array_are_caught_on_every_call() -> None:
    def adds_to_every_element(x: np.ndarray) -> np.ndarray:
        WRITTEN[...] += 1
        return x

    def writes_transposed(x: np.ndarray) -> np.ndarray:
        # one row of the transposed view: an element in every 16 KiB of memory, so in every
        # position of the moving window
        BIG_T[100, :] += 1
        return x

    def writes_strided(x: np.ndarray) -> np.ndarray:
        STRIDED[...] += 1  # neither C- nor F-contiguous: compared on a grid
        return x

    for func, name in ((adds_to_every_element, "'WRITTEN'"), (writes_strided, "'STRIDED'")):
        t = run_graph(func, 5)
        assert hidden_seqs(t, func.__qualname__) == [1, 2, 3, 4, 5], func.__qualname__
        assert name in t.violations[0].message
    t = run_graph(writes_transposed, 5)
    assert hidden_seqs(t, writes_transposed.__qualname__) == [1, 2, 3, 4, 5]


def test_sparse_writes_are_caught_on_the_first_call_at_the_ends_and_within_a_bounded_number_of_calls() -> None:
    def counts_in_first_element(x: np.ndarray) -> np.ndarray:
        WRITTEN[0] += 1
        return x

    def counts_in_last_element(x: np.ndarray) -> np.ndarray:
        WRITTEN[-1] += 1
        return x

    def counts_in_the_middle(x: np.ndarray) -> np.ndarray:
        WRITTEN[300_001] += 1  # not in a fixed block: found when the moving window gets there
        return x

    for func in (counts_in_first_element, counts_in_last_element):
        t = run_graph(func, 3)
        assert hidden_seqs(t, func.__qualname__) == [1, 2, 3], func.__qualname__
    # 4 MiB: the window covers the whole array within 256 calls, each call then sees the write
    t = run_graph(counts_in_the_middle, 260)
    flagged = hidden_seqs(t, counts_in_the_middle.__qualname__)
    assert flagged and flagged[0] <= 256, flagged


def test_reading_only_is_not_reported_and_the_analysis_is_complete() -> None:
    """A pure reader of large globals: no violation, and could-be-stateless advice (which the
    inspector gives only after a complete analysis) when it is declared stateful."""
    t = run_graph(reads_big_transposed, 3)
    assert t.violations == []
    with npi.trace() as t:
        ds = tf.data.Dataset.range(110).map(
            lambda i: npi.numpy_function(reads_mid, [tf.fill([4], tf.cast(i, tf.float32))], tf.float32))
        for _ in ds:
            pass
    assert [h for h in t.hints if h.kind == "could-be-stateless"], t.hints
