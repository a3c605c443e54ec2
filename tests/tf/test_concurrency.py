"""Recording under concurrency: tf.data with 8 parallel calls, Python threads calling eagerly,
and appends racing reads. Nothing lost or duplicated, every count exact."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

pytestmark = pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning")

CALLS = 100_000
CAPACITY = 10_000


def increment(i: np.int64) -> np.int64:
    return i + 1


def assert_contiguous_unique(seqs: list[int], count: int) -> None:
    assert len(seqs) == count
    assert len(set(seqs)) == count  # nothing duplicated
    assert max(seqs) - min(seqs) + 1 == count  # nothing lost in between


@pytest.mark.timeout(300)
def test_tf_data_with_8_parallel_calls_and_100k_invocations() -> None:
    dataset = tf.data.Dataset.range(CALLS).map(
        lambda i: npi.numpy_function(increment, [i], tf.int64), num_parallel_calls=8
    )
    appended: list[int] = []
    with npi.trace(capture="none", capacity=CAPACITY) as t:
        t.subscribe(lambda inv: appended.append(inv.seq))  # called from TF's threads
        total = dataset.reduce(np.int64(0), lambda acc, x: acc + x)
    assert total.numpy() == CALLS * (CALLS + 1) // 2  # every element went through func
    assert t.total == CALLS and t.dropped == CALLS - CAPACITY
    assert_contiguous_unique(appended, CALLS)
    kept = [r.seq for r in t.invocations]
    assert len(kept) == CAPACITY == len(set(kept)) and set(kept) <= set(appended)
    stats = t.stats()["increment"]
    assert stats.calls == CALLS and stats.errors == 0
    assert stats.bytes_in == stats.bytes_out == 8 * CALLS
    assert stats.histogram.count == CALLS == sum(stats.histogram.counts.values())
    assert not stats.violations


def _functions(count: int) -> list[Any]:
    def make(k: int) -> Any:
        def add(x: np.ndarray) -> np.ndarray:
            return x + k

        add.__qualname__ = f"add_{k}"
        return add

    return [make(k) for k in range(count)]


@pytest.mark.timeout(300)
def test_python_threads_calling_eagerly() -> None:
    threads_count, per_thread, capacity = 8, 1500, 1000
    functions = _functions(threads_count)
    barrier = threading.Barrier(threads_count, timeout=60)
    errors: list[BaseException] = []

    def worker(func: Any) -> None:
        try:
            barrier.wait()
            x = np.zeros(4)
            for _ in range(per_thread):
                npi.numpy_function(func, [x], tf.float64)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    appended: list[Any] = []
    with npi.trace(capacity=capacity) as t:
        t.subscribe(appended.append)
        threads = [threading.Thread(target=worker, args=(f,), name=f"worker-{k}") for k, f in enumerate(functions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    calls = threads_count * per_thread
    assert t.total == calls and t.dropped == calls - capacity and len(t.invocations) == capacity
    assert_contiguous_unique([inv.seq for inv in appended], calls)
    stats = t.stats()
    for k in range(threads_count):
        mine = [inv for inv in appended if inv.func_name == f"add_{k}"]
        assert stats[f"add_{k}"].calls == per_thread == len(mine)
        assert {inv.thread_name for inv in mine} == {f"worker-{k}"}
        assert stats[f"add_{k}"].total_ns == sum(inv.duration_ns for inv in mine)
    assert not t.violations


def _site(name: str) -> npi.CallSite:
    return npi.CallSite(
        func_name=name, module=None, mode="eager", stateful=True, op_name=None, token=None,
        call_site=None, tout=None, tout_is_list=False,
    )


@pytest.mark.timeout(120)
def test_appends_racing_reads_stay_consistent() -> None:
    writers, per_writer, capacity = 8, 5000, 300
    recorder = npi.Recorder(capacity=capacity)
    sites = [_site(f"f{k}") for k in range(writers)]
    start = threading.Barrier(writers + 1, timeout=60)
    done = threading.Event()
    problems: list[str] = []

    def writer(k: int) -> None:
        start.wait()
        for n in range(per_writer):
            recorder.append(npi.Invocation.create(k * per_writer + n, sites[k], k, f"w{k}", 0, n + 1, (), ()))

    def reader() -> None:
        start.wait()
        while not done.is_set():
            records = recorder.invocations()
            stats = recorder.stats()
            if len(records) > capacity:
                problems.append(f"{len(records)} records visible with capacity {capacity}")
            if len({r.seq for r in records}) != len(records):
                problems.append("a record is visible twice")
            if stats.calls > recorder.total:
                problems.append(f"{stats.calls} calls aggregated, {recorder.total} appended")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    watcher = threading.Thread(target=reader)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert problems == []
    total = writers * per_writer
    assert recorder.total == total and recorder.dropped == total - capacity
    assert len(recorder.invocations()) == capacity
    stats = recorder.stats()
    assert stats.calls == total
    for k in range(writers):
        assert stats[f"f{k}"].calls == per_writer
        assert stats[f"f{k}"].total_ns == per_writer * (per_writer + 1) // 2
        assert stats[f"f{k}"].max_ns == per_writer
