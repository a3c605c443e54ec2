"""The compiled column reader against its reference, ``columns_of``, batch by batch (no TensorFlow).

A recorder reads the columns of each batch of rows it folds with ``_probe_core.columns`` where
it was built; whatever that returns must equal what the pure-Python ``columns_of`` returns, and
where it cannot decide (values beyond int64, rows that are not plain tuples) it must say None so
that the reference reads them.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfnp_inspect.model.columns import RowColumns, columns_of, exact_sum
from tfnp_inspect.model.records import C_BYTES_IN, C_DURATION_NS, C_SITE, C_THREAD_ID, C_THREAD_NAME, ErrorInfo
from tfnp_inspect.recording import core
from tfnp_inspect.recording.recorder import Recorder

import fabricate

_seqs = itertools.count(1)
compiled_columns = pytest.mark.skipif(core.compiled is None, reason="the compiled core is not built here")


def _row(size: int = 4, *, func: str = "double", error: bool = False, violated: bool = False, thread: int = 1,
         duration_ns: int = 1_500, dtype: Any = np.float32, outputs: int = 1) -> tuple[Any, ...]:
    inputs = [np.zeros(size, dtype)]
    inv = fabricate.invocation(
        inputs, [] if error else [np.zeros(size, dtype)] * outputs, func=func, seq=next(_seqs), capture="none",
        duration_ns=duration_ns, error=ErrorInfo("ValueError", "x") if error else None,
    )
    if violated:
        inv = inv.replace(violations=(fabricate.violation(inv),))
    row = list(inv.row())
    row[C_THREAD_ID], row[C_THREAD_NAME] = thread, f"worker-{thread}"
    return tuple(row)


def _shared_site(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows of one op share their site tuple, as the hot path stores them."""
    site = rows[0][C_SITE]
    return [(*row[:C_SITE], site, *row[C_SITE + 1:]) if row[C_SITE] == site else row for row in rows]


def _same(compiled: RowColumns, reference: RowColumns) -> None:
    for name, got, expected in zip(RowColumns._fields, compiled, reference, strict=True):
        if isinstance(expected, np.ndarray):
            assert got.dtype == expected.dtype and got.tolist() == expected.tolist(), name
        else:
            assert got == expected and type(got) is type(expected), name


BATCHES = {
    "steady state": lambda: [_row() for _ in range(50)],
    "one failed call": lambda: [_row(error=i == 7) for i in range(20)],
    "violations": lambda: [_row(violated=i % 3 == 0) for i in range(10)],
    "threads": lambda: [_row(thread=1 + i % 3) for i in range(12)],
    "a new shape": lambda: [_row(4 if i < 9 else 5) for i in range(12)],
    "a new dtype": lambda: [_row(dtype=np.float32 if i else np.float64) for i in range(5)],
    "a second output": lambda: [_row(outputs=1 if i < 3 else 2) for i in range(5)],
    "two ops": lambda: [_row(func="double" if i % 2 else "halve") for i in range(8)],
    "one row": lambda: [_row()],
}


@compiled_columns
@pytest.mark.parametrize("case", list(BATCHES))
def test_the_compiled_reader_gives_what_the_reference_gives(case: str) -> None:
    rows = _shared_site(BATCHES[case]())
    compiled = core.compiled.columns(rows)  # type: ignore[union-attr]
    assert compiled is not None
    _same(RowColumns._make(compiled), columns_of(rows))


@compiled_columns
@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([4, 5]), st.booleans(), st.booleans(), st.integers(1, 3),
                          st.integers(0, 10**12)), min_size=1, max_size=40))
def test_any_mix_of_rows_reads_alike(specs: list[tuple[int, bool, bool, int, int]]) -> None:
    rows = _shared_site([
        _row(size, error=error, violated=violated, thread=thread, duration_ns=duration)
        for size, error, violated, thread, duration in specs
    ])
    _same(RowColumns._make(core.compiled.columns(rows)), columns_of(rows))  # type: ignore[union-attr]


def test_equal_shapes_and_sites_that_are_other_objects_still_read_as_one_kind() -> None:
    """A loaded trace or the Python core may build equal tuples that are not the same objects."""
    rows = [_row() for _ in range(20)]
    assert len({id(row[C_SITE]) for row in rows}) > 1
    reference = columns_of(rows)
    assert reference.one_site and reference.uniform
    if core.compiled is not None:
        _same(RowColumns._make(core.compiled.columns(rows)), reference)


@compiled_columns
@pytest.mark.parametrize("field, value", [(C_DURATION_NS, 1 << 63), (C_BYTES_IN, 1 << 62)])
def test_values_beyond_int64_are_left_to_the_reference(field: int, value: int) -> None:
    rows = [_row() for _ in range(3)]
    rows[1] = (*rows[1][:field], value, *rows[1][field + 1:])
    rows[2] = (*rows[2][:field], value, *rows[2][field + 1:])
    assert core.compiled.columns(rows) is None  # type: ignore[union-attr]
    reference = columns_of(rows)
    if field == C_DURATION_NS:
        assert reference.durations.dtype == object and exact_sum(reference.durations) == 2 * value + 1_500
    else:
        assert reference.bytes_in == 2 * value + rows[0][C_BYTES_IN]


@compiled_columns
def test_rows_that_are_not_plain_tuples_are_left_to_the_reference() -> None:
    rows: list[Any] = [_row() for _ in range(3)]
    assert core.compiled.columns([]) is None  # type: ignore[union-attr]
    assert core.compiled.columns([list(rows[0]), *rows[1:]]) is None  # type: ignore[union-attr]
    assert core.compiled.columns([*rows[:1], list(rows[1])]) is None  # type: ignore[union-attr]
    assert core.compiled.columns(tuple(rows)) is None  # type: ignore[union-attr]


def test_a_recorder_folds_a_batch_of_two_ops_into_each_ops_aggregates() -> None:
    recorder = Recorder(capacity=10)
    rows = _shared_site([_row(func="double")] * 1) + [_row(func="halve", duration_ns=7) for _ in range(30)]
    for row in rows:
        recorder.store(row)
    stats = recorder.stats()
    assert stats["double"].calls == 1 and stats["halve"].calls == 30 and stats["halve"].max_ns == 7
    assert {shapes.func_name: shapes.calls for shapes in recorder.shapes()} == {"double": 1, "halve": 30}
    assert {figures.func_name: figures.calls for figures in recorder.pipeline()} == {"double": 1, "halve": 30}
