"""Folding rows in batches gives exactly what folding them one by one gives (no TensorFlow).

The recorder folds evicted rows a batch at a time (their columns read once, then
``FunctionStats.add_columns``, the numpy histogram, ``SiteShapes`` counting repeats without a loop
over the rows); these compare each batched path with the per-row one it replaces, on the edge
values where they could differ.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfnp_inspect.model.columns import columns_of, int_column
from tfnp_inspect.model.records import ErrorInfo
from tfnp_inspect.model.shapes import SiteShapes
from tfnp_inspect.model.stats import DurationHistogram, FunctionStats, bucket_of
from tfnp_inspect.recording.recorder import EVICTION_BATCH, Recorder

import fabricate

_seqs = itertools.count(1)
EDGES = [0, 1, 7, 8, 9, 15, 16, 17, 1023, 1024, 1025, 2**31 - 1, 2**31, 2**53 - 1, 2**53, 2**53 + 1,
         2**62 - 1, 2**62, 2**63 - 1]


def test_numpy_buckets_equal_python_buckets_at_every_edge() -> None:
    values = EDGES + [2**k + d for k in range(3, 63) for d in (-1, 0, 1)]
    one_by_one, batched = DurationHistogram(), DurationHistogram()
    for value in values:
        one_by_one.add(value)
    batched.add_many(int_column(values))
    assert batched.counts == one_by_one.counts and batched.count == one_by_one.count
    assert all(bucket_of(v) in batched.counts for v in values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=300))
def test_histogram_batches_of_any_size(values: list[int]) -> None:
    one_by_one, batched = DurationHistogram(), DurationHistogram()
    for value in values:
        one_by_one.add(value)
    batched.add_many(int_column(values))
    assert batched.counts == one_by_one.counts


def _figures(stats: FunctionStats) -> tuple:
    return (stats.calls, stats.errors, stats.total_ns, stats.max_ns, stats.min_ns, stats.bytes_in, stats.bytes_out,
            dict(stats.violations), stats.histogram.counts, stats.histogram.count, stats.durations_ns)


def _rows(count: int, failing_every: int = 0, longest_ns: int = 1 << 64) -> list[tuple]:
    rows = []
    for i in range(count):
        error = ErrorInfo("ValueError", "x") if failing_every and i % failing_every == 0 else None
        inv = fabricate.invocation(
            [np.zeros(4, np.float32)], [] if error else [np.zeros(4, np.float32)], seq=next(_seqs),
            duration_ns=(EDGES[i % len(EDGES)] + i) % longest_ns, capture="none",
            error=error, start_ns=1_700_000_000_000_000_000 + i * 1000,
        )
        rows.append(inv.row())
    return rows


@pytest.mark.parametrize("count", [1, 5, 127, 128, 129, 300])
def test_function_stats_batches_equal_one_by_one(count: int) -> None:
    rows = _rows(count, failing_every=7)
    one_by_one, batched = FunctionStats("f"), FunctionStats("f")
    for row in rows:
        one_by_one.add(row[5], row[12], row[13], row[8] is not None, row[9])
    batched.add_columns(columns_of(rows[: count // 2]))
    batched.add_columns(columns_of(rows[count // 2:]))
    assert _figures(batched) == _figures(one_by_one)


def _shapes(rows: list[tuple], batched: bool) -> SiteShapes:
    aggregate = SiteShapes.for_site(rows[0][1])
    if batched:
        for start in range(0, len(rows), 40):
            aggregate.add_rows(rows[start:start + 40], columns_of(rows[start:start + 40]))
    else:
        for row in rows:
            aggregate.add_rows([row], columns_of([row]))
    aggregate.flush()
    return aggregate


def test_shape_batches_equal_one_by_one_with_repeats_new_shapes_and_failures() -> None:
    rows = []
    for i in range(400):
        size = 4 if i < 200 or i % 50 else 5  # a new shape now and then, after the repeats settle
        error = ErrorInfo("ValueError", "x") if i == 250 else None
        outputs = [] if error else [np.zeros(size, np.float32)]
        rows.append(fabricate.invocation([np.zeros(size, np.float32)], outputs, seq=next(_seqs), capture="none",
                                         error=error).row())
    assert _shapes(rows, batched=True) == _shapes(rows, batched=False)


def test_eviction_keeps_exact_aggregates_across_batches() -> None:
    recorder = Recorder(capacity=100)
    rows = _rows(100 + 3 * EVICTION_BATCH + 17, failing_every=11, longest_ns=10**9)
    for row in rows:
        recorder.store(row)
    expected = FunctionStats(rows[0][1][0])
    for row in rows:
        expected.add(row[5], row[12], row[13], row[8] is not None, row[9])
    assert _figures(recorder.stats()[expected.func_name]) == _figures(expected)
    assert recorder.total == len(rows) and len(recorder) == 100


def test_full_capture_evicts_one_record_a_call_but_folds_a_batch_at_a_time(monkeypatch) -> None:
    """Under 'full' capture every store of a full buffer evicts one record (its payload gives
    its bytes back at once); counting them one per call paid a batch's fixed cost on every call."""
    capacity = EVICTION_BATCH + 50
    recorder = Recorder(capacity=capacity, capture="full")
    rows = _rows(capacity + 2 * EVICTION_BATCH + 5, failing_every=13, longest_ns=10**9)
    folds = []
    add_columns = FunctionStats.add_columns
    monkeypatch.setattr(
        FunctionStats, "add_columns", lambda self, batch: (folds.append(len(batch.durations)), add_columns(self, batch)),
    )
    for row in rows:
        recorder.store(row)
        assert len(recorder) <= capacity
    assert len(folds) == 3 and min(folds) == EVICTION_BATCH  # the third: 5 rows and a batch ahead
    expected = FunctionStats(rows[0][1][0])
    for row in rows:
        expected.add(row[5], row[12], row[13], row[8] is not None, row[9])
    assert _figures(recorder.stats()[expected.func_name]) == _figures(expected)
    assert recorder.total == len(rows)
