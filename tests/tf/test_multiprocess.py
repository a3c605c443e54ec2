"""Traces recorded by separate processes, exported, then merged into one view by the parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import tfnp_inspect as npi

pytestmark = pytest.mark.timeout(300)

WORKER = '''
import os, sys, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf
import tfnp_inspect as npi

label, path = sys.argv[1], sys.argv[2]
npi.set_task_label(label)


def scale(x):
    return x * 2


def mutate(x):
    x += 1
    return x


@tf.function
def step(x):
    return tf.numpy_function(scale, [x], tf.float32)


warnings.simplefilter("ignore", npi.ViolationWarning)
with npi.trace() as trace:
    for i in range(3):
        step(tf.constant([float(i)]))
    npi.numpy_function(mutate, [np.float32([1.0])], tf.float32)
trace.export(path)
print(os.getpid())
'''


def record_in_subprocess(label: str, path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, label, str(path)],
        capture_output=True, text=True, timeout=240, check=True,
    )
    return int(done.stdout.split()[-1])


@pytest.fixture(scope="module")
def worker_files(tmp_path_factory):
    """Two workers, one after the other, so every call of the first precedes the second's."""
    folder = tmp_path_factory.mktemp("workers")
    first, second = folder / "worker-0.npftrace", folder / "worker-1.npftrace"
    pids = record_in_subprocess("worker-0", first), record_in_subprocess("worker-1", second)
    return (first, second), pids


def test_merge_orders_by_time_and_keeps_processes_apart(worker_files):
    (first, second), (first_pid, second_pid) = worker_files
    parts = [npi.load(first), npi.load(second)]
    merged = npi.load([second, first])  # given out of order on purpose

    assert merged.read_only
    assert str(first) in merged.source and str(second) in merged.source
    invocations = merged.invocations
    assert len(invocations) == sum(len(p.invocations) for p in parts) == 8
    starts = [inv.start_ns for inv in invocations]
    assert starts == sorted(starts)
    # Ordered by time, so the first worker's calls come first although its file came second.
    assert [inv.task for inv in invocations] == ["worker-0"] * 4 + ["worker-1"] * 4
    assert {(inv.pid, inv.task) for inv in invocations} == {
        (first_pid, "worker-0"), (second_pid, "worker-1"),
    }
    assert len({first_pid, second_pid, os.getpid()}) == 3
    assert {inv.mode for inv in invocations} == {"graph", "eager"}


def test_merge_sums_totals_and_merges_stats(worker_files):
    (first, second), _ = worker_files
    parts = [npi.load(first), npi.load(second)]
    merged = npi.load([first, second])
    assert merged.total == sum(p.total for p in parts) == 8
    assert merged.dropped == 0
    stats = merged.stats()
    assert stats["scale"].calls == 6
    assert stats["mutate"].violations == {"mutated-input": 2}
    assert stats["scale"].total_ns == sum(p.stats()["scale"].total_ns for p in parts)
    assert stats["scale"].max_ns == max(p.stats()["scale"].max_ns for p in parts)
    assert stats["scale"].histogram.count == 6
    assert [v.kind for v in merged.violations] == ["mutated-input"] * 2
    # Merging did not touch the parts' own figures.
    assert [p.stats()["scale"].calls for p in parts] == [3, 3]


def test_merged_chrome_trace_has_one_track_group_per_process(worker_files, tmp_path):
    (first, second), (first_pid, second_pid) = worker_files
    path = tmp_path / "merged.json"
    npi.load([first, second]).to_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert set(names) == {first_pid, second_pid}
    assert names[first_pid].startswith("worker-0 (") and names[second_pid].startswith("worker-1 (")
    slices = [e for e in events if e["ph"] == "X"]
    assert {e["args"]["task"] for e in slices} == {"worker-0", "worker-1"}


def test_a_merged_view_exports_and_loads_again(worker_files, tmp_path):
    merged = npi.load(list(worker_files[0]))
    merged.export(tmp_path / "merged.npftrace")
    again = npi.load(tmp_path / "merged.npftrace")
    key = [(inv.pid, inv.task, inv.seq, inv.start_ns) for inv in merged.invocations]
    assert [(inv.pid, inv.task, inv.seq, inv.start_ns) for inv in again.invocations] == key
    assert {k: v.to_dict() for k, v in again.stats().items()} == {
        k: v.to_dict() for k, v in merged.stats().items()
    }
    assert (again.total, again.dropped, again.violations) == (
        merged.total, merged.dropped, merged.violations,
    )
