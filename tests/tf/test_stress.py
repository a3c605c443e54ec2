"""Stress: many threads, parallel tf.data calls and tracing toggled mid-run.

Each test checks afterwards that every call was recorded once (``seq`` contiguous, totals and
aggregates exact), that the user's results are unchanged, that nothing deadlocked (threads are
joined with a timeout) and that nothing leaked (threads, tracing state, the user's function).
The shared checks live in ``core_helpers.py``, the fixtures in ``conftest.py``.
"""

from __future__ import annotations

import gc
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.recording.recorder import VIOLATION_HISTORY

from core_helpers import (
    TF_NUMPY_FUNCTION,
    assert_aggregates_exact,
    assert_complete,
    assert_tracing_off,
    run_threads,
    xxh3,
)

pytestmark = pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning")




# -- 8 threads x many calls with violations firing -------------------------------------------

THREADS = 8
CALLS_PER_THREAD = 5000


def bump_then_double(x: np.ndarray) -> np.ndarray:
    """Writes into its input on every call: a mutated-input violation each time."""
    x += 1
    return x * 2


@pytest.mark.timeout(180)
def test_eight_threads_calling_with_violations_firing(no_leaks: None) -> None:
    calls = THREADS * CALLS_PER_THREAD
    wrong_results: list[tuple[int, Any]] = []

    def worker(index: int) -> Callable[[], None]:
        x = np.full(3, index, np.float32)
        expected = (x + 1) * 2

        def run() -> None:
            for _ in range(CALLS_PER_THREAD):
                result = npi.numpy_function(bump_then_double, [x], tf.float32)
                if not np.array_equal(result.numpy(), expected):
                    wrong_results.append((index, result.numpy()))

        return run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with npi.trace(capacity=calls) as trace:
            errors = run_threads([worker(i) for i in range(THREADS)])
    assert errors == []
    assert wrong_results == []  # eager inputs are copies: the caller's x never changes

    records = assert_complete(trace, calls)
    by_thread = Counter(inv.thread_name for inv in records)
    assert by_thread == {f"stress-{i}": CALLS_PER_THREAD for i in range(THREADS)}
    for inv in records:
        index = int(inv.thread_name.split("-")[1])
        x = np.full(3, index, np.float32)
        assert inv.error is None
        assert [v.kind for v in inv.violations] == ["mutated-input"]
        assert inv.inputs[0].fingerprint == xxh3(x)  # as TF passed it, before the write
        assert inv.outputs[0].fingerprint == xxh3((x + 1) * 2)
    stats = trace.stats()["bump_then_double"]
    assert stats.violations == {"mutated-input": calls}
    assert len(trace.violations) == min(calls, VIOLATION_HISTORY)
    warned = [w for w in caught if issubclass(w.category, npi.ViolationWarning)]
    assert len(warned) == 1, "one warning per function and kind per activation, whatever the threads"


@pytest.mark.timeout(120)
def test_dataset_with_eight_parallel_calls_and_eviction(no_leaks: None) -> None:
    elements, capacity = 3000, 1000
    dataset = tf.data.Dataset.range(elements).map(
        lambda i: tf.fill([4], tf.cast(i, tf.float32))
    ).map(lambda x: npi.numpy_function(bump_then_double, [x], tf.float32), num_parallel_calls=8)

    with npi.trace(capacity=capacity) as trace:
        results = [element.numpy() for element in dataset]

    assert [r.tolist() for r in results] == [[2.0 * (i + 1)] * 4 for i in range(elements)]
    assert trace.total == elements
    assert trace.dropped == elements - capacity
    kept = trace.invocations
    assert len(kept) == capacity
    seqs = [inv.seq for inv in kept]
    assert len(set(seqs)) == capacity and max(seqs) - min(seqs) < elements
    assert_aggregates_exact(trace, elements, kept)
    # graph-mode inputs are zero-copy views: the write lands in TF's own buffer
    assert trace.stats()["bump_then_double"].violations == {"mutated-input": elements}
    assert all(inv.mode == "graph" and inv.thread_name != "MainThread" for inv in kept)
    assert all(
        inv.outputs[0].fingerprint == xxh3(np.full(4, 2 * (inv.inputs[0].stats.min + 1), np.float32))
        for inv in kept
    )


# -- tracing switched on and off from another thread ---------------------------------------


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


def add_one(x: np.ndarray) -> np.ndarray:
    return x + 1


def add_one_prebuilt(x: np.ndarray) -> np.ndarray:
    """Registered by TF's own numpy_function before tracing: observed through the registry."""
    return x + 1


EXPECTED_OUTPUT = {"double": lambda x: x * 2, "add_one": lambda x: x + 1, "add_one_prebuilt": lambda x: x + 1}


def _counting_loop(numpy_function: Any, func: Any) -> Any:
    @tf.function
    def loop(n: Any) -> Any:
        x = tf.zeros([2])
        for _ in tf.range(n):
            x = numpy_function(func, [x], tf.float32)
            x.set_shape([2])
        return x

    return loop


@pytest.mark.timeout(120)
def test_tracing_toggled_from_another_thread_mid_run(no_leaks: None, process_recorder: npi.Recorder) -> None:
    loops = {
        "add_one": _counting_loop(npi.numpy_function, add_one),
        "add_one_prebuilt": _counting_loop(TF_NUMPY_FUNCTION, add_one_prebuilt),
    }
    for loop in loops.values():
        loop(tf.constant(1))  # traced with tracing off
    stop = threading.Event()
    wrong: list[Any] = []
    recorders: list[npi.Recorder] = []

    def eager_worker(seed: int) -> Callable[[], None]:
        def run() -> None:
            x = np.arange(4, dtype=np.float32) + seed
            while not stop.is_set():
                result = npi.numpy_function(double, [x], tf.float32).numpy()
                if not np.array_equal(result, x * 2):
                    wrong.append(("double", result))

        return run

    def graph_worker(name: str) -> Callable[[], None]:
        def run() -> None:
            while not stop.is_set():
                result = loops[name](tf.constant(50)).numpy()
                if result.tolist() != [50.0, 50.0]:
                    wrong.append((name, result))

        return run

    def toggler() -> None:
        try:
            for cycle in range(30):
                if cycle % 3 == 2:  # the process-wide recorder collects all these cycles
                    npi.install(capture="full", capacity=1_000_000)
                    time.sleep(0.02)
                    npi.uninstall()
                else:
                    with npi.trace(capture="full", capacity=1_000_000) as trace:
                        time.sleep(0.02)
                    recorders.append(trace.recorder)
                time.sleep(0.01)
        finally:
            stop.set()

    errors = run_threads([eager_worker(0), eager_worker(10), graph_worker("add_one"),
                          graph_worker("add_one_prebuilt"), toggler])
    assert errors == []
    assert wrong == []
    assert_tracing_off()
    recorders.append(process_recorder)

    seen_seqs: set[int] = set()
    recorded = Counter()
    for rec in recorders:
        records = rec.invocations()
        assert rec.total == len(records) and rec.dropped == 0
        assert_aggregates_exact(npi.Trace(rec), rec.total, records)
        for inv in records:
            assert inv.seq not in seen_seqs, "a call was recorded twice"
            seen_seqs.add(inv.seq)
            recorded[inv.func_name] += 1
            assert inv.error is None and inv.violations == ()
            assert inv.site.origin == "wrapper"  # built after import: declared, however it was built
            source, result = inv.inputs[0].data, inv.outputs[0].data
            assert source is not None and result is not None
            assert np.array_equal(result, EXPECTED_OUTPUT[inv.func_name](source))
    assert set(recorded) == set(EXPECTED_OUTPUT), f"some functions were never recorded: {recorded}"


@pytest.mark.timeout(60)
def test_the_function_is_not_kept_alive_after_stress(no_leaks: None) -> None:
    """Threads calling a traced function leave no reference to it behind.

    (A ``tf.data`` pipeline is left out: TensorFlow itself keeps a dataset's functions alive
    with its graph, instrumented or not.)
    """

    def make() -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: x * 3

    func = make()
    ref = weakref.ref(func)
    calls_per_thread = 250

    def worker() -> None:
        for _ in range(calls_per_thread):
            npi.numpy_function(func, [np.ones(2, np.float32)], tf.float32)  # noqa: F821 - deleted below, on purpose

    with npi.trace() as trace:
        errors = run_threads([worker] * 4)
    assert errors == []
    assert_complete(trace, 4 * calls_per_thread)
    del func, worker
    gc.collect()
    assert ref() is None
    assert all(inv.site.func is None for inv in trace.invocations)
