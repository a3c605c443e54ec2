"""What the aggregates read from a batch of stored rows, gathered in one pass.

A recorder folds evicted rows into its aggregates (stats, shapes, overlaps) a batch at a time.
Each aggregate reading its own columns row by row cost about 1 us a record; here the columns are
read once, into int64 arrays and a few totals, and the aggregates work on those.

:func:`columns_of` is the reference implementation; the compiled per-call core has a twin
(``_probe_core.columns``) that reads the rows in C and gives way to this one (returns None) for
anything unusual: values beyond int64, rows that are not plain tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .records import (
    A_DTYPE,
    A_SHAPE,
    C_BYTES_IN,
    C_BYTES_OUT,
    C_DURATION_NS,
    C_ERROR,
    C_RAW_INPUTS,
    C_RAW_OUTPUTS,
    C_SITE,
    C_START_NS,
    C_THREAD_ID,
    C_THREAD_NAME,
    C_VIOLATIONS,
)

Column = npt.NDArray[Any]  # int64, or object where a value does not fit int64


class RowColumns(NamedTuple):
    """One batch of stored rows (``CallRow`` order), as the aggregates read it.

    The compiled core returns a plain tuple in this order (checked at import).
    """

    durations: Column
    starts: Column
    errors: int  # rows of failed calls
    bytes_in: int
    bytes_out: int
    violations: list[tuple[Any, ...]]  # every row's Violation rows, in order
    threads: dict[Any, Any]  # thread ident -> the name its first row gives
    one_site: bool  # every row has the first row's site tuple
    #: every row a successful call with the first row's number of inputs and outputs, and at
    #: each position its shape and dtype (what lets the shapes count a batch without a loop)
    uniform: bool


_DURATION, _START, _ERROR = itemgetter(C_DURATION_NS), itemgetter(C_START_NS), itemgetter(C_ERROR)
_BYTES_IN, _BYTES_OUT, _VIOLATIONS = itemgetter(C_BYTES_IN), itemgetter(C_BYTES_OUT), itemgetter(C_VIOLATIONS)
_SITE, _THREAD_ID, _THREAD_NAME = itemgetter(C_SITE), itemgetter(C_THREAD_ID), itemgetter(C_THREAD_NAME)
_INPUTS, _OUTPUTS = itemgetter(C_RAW_INPUTS), itemgetter(C_RAW_OUTPUTS)
_SHAPE, _DTYPE = itemgetter(A_SHAPE), itemgetter(A_DTYPE)


def int_column(values: Sequence[int]) -> Column:
    """Integers as an int64 array, or an object array where one does not fit int64 (a loaded
    trace may hold any integer)."""
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        return np.array(values, dtype=object)


def exact_sum(column: Column) -> int:
    """The sum of a column as a Python int, exact even where int64 would overflow."""
    if not len(column):
        return 0
    if column.dtype == np.int64 and len(column) * max(abs(int(column.max())), abs(int(column.min()))) < 1 << 63:
        return int(column.sum())
    return sum(column.tolist())


def columns_of(rows: Sequence[Sequence[Any]]) -> RowColumns:
    """The columns of a batch of stored rows (see :class:`RowColumns`)."""
    errors = len(rows) - list(map(_ERROR, rows)).count(None)
    threads: dict[Any, Any] = {}
    for ident, name in zip(map(_THREAD_ID, rows), map(_THREAD_NAME, rows), strict=True):
        threads.setdefault(ident, name)
    sites = list(map(_SITE, rows))
    return RowColumns(
        int_column(list(map(_DURATION, rows))), int_column(list(map(_START, rows))), errors,
        sum(map(_BYTES_IN, rows)), sum(map(_BYTES_OUT, rows)),
        list(chain.from_iterable(filter(None, map(_VIOLATIONS, rows)))), threads,
        not sites or sites.count(sites[0]) == len(sites),
        bool(rows) and not errors and _alike(rows),
    )


def _alike(rows: Sequence[Sequence[Any]]) -> bool:
    """Every row has the first row's number of inputs and outputs, and at each position its
    shape and dtype (compared column by column, without a Python loop over the rows)."""
    inputs, outputs = list(map(_INPUTS, rows)), list(map(_OUTPUTS, rows))
    if len(set(map(len, inputs))) != 1 or len(set(map(len, outputs))) != 1:
        return False
    columns = [list(map(itemgetter(i), inputs)) for i in range(len(inputs[0]))]
    columns += [list(map(itemgetter(i), outputs)) for i in range(len(outputs[0]))]
    total = len(rows)
    for column in columns:
        first = column[0]
        if list(map(_SHAPE, column)).count(first[A_SHAPE]) != total:
            return False
        if list(map(_DTYPE, column)).count(first[A_DTYPE]) != total:
            return False
    return True


__all__ = ["RowColumns", "columns_of", "exact_sum", "int_column"]
