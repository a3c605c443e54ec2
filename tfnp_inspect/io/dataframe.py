"""A recorded trace as a pandas DataFrame, one row per invocation (needs ``tfnp-inspect[pandas]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..model.records import Invocation, RawArray, dtype_name
from ..recording.trace import Trace

PANDAS_HINT = "pip install 'tfnp-inspect[pandas]'"


def _shapes(raws: tuple[RawArray, ...]) -> list[tuple[int, ...]]:
    return [tuple(raw.shape) for raw in raws]


def _dtypes(raws: tuple[RawArray, ...]) -> list[str]:
    return [dtype_name(raw.dtype) for raw in raws]


#: The columns of :func:`to_dataframe`, each with how it is read from an invocation.
DATAFRAME_COLUMNS: dict[str, Callable[[Invocation], Any]] = {
    "seq": lambda inv: inv.seq,
    "func_name": lambda inv: inv.func_name,
    "op_name": lambda inv: inv.op_name,
    "mode": lambda inv: inv.mode,
    "stateful": lambda inv: inv.stateful,
    "origin": lambda inv: inv.site.origin,
    "call_site": lambda inv: inv.call_site,
    "thread_id": lambda inv: inv.thread_id,
    "thread_name": lambda inv: inv.thread_name,
    "start": lambda inv: inv.start_ns,  # becomes a UTC timestamp
    "duration_ns": lambda inv: inv.duration_ns,
    "input_shapes": lambda inv: _shapes(inv.raw_inputs),
    "input_dtypes": lambda inv: _dtypes(inv.raw_inputs),
    "output_shapes": lambda inv: _shapes(inv.raw_outputs),
    "output_dtypes": lambda inv: _dtypes(inv.raw_outputs),
    # what TF knows statically about each output (None: unknown rank; None overall: nothing)
    "static_shapes": lambda inv: None if inv.site.static_shapes is None else list(inv.site.static_shapes),
    "bytes_in": lambda inv: inv.bytes_in,
    "bytes_out": lambda inv: inv.bytes_out,
    "violations": lambda inv: [v.kind for v in inv.violations],
    "error": lambda inv: None if inv.error is None else str(inv.error),
    "host": lambda inv: inv.host,
    "pid": lambda inv: inv.pid,
    "task": lambda inv: inv.task,
}


#: Columns computed over all the calls rather than read from one.
DERIVED_COLUMNS = ("in_flight",)
#: Every column of :func:`to_dataframe`, in order.
COLUMNS = (*DATAFRAME_COLUMNS, *DERIVED_COLUMNS)


def to_dataframe(trace: Trace) -> Any:
    """One row per invocation, for filtering, grouping and plotting with pandas."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(f"Trace.to_dataframe() needs pandas: {PANDAS_HINT}") from exc
    readers = DATAFRAME_COLUMNS.values()
    rows = [[read(inv) for read in readers] for inv in trace.invocations]
    frame = pd.DataFrame(rows, columns=list(DATAFRAME_COLUMNS))
    frame["start"] = pd.to_datetime(frame["start"], unit="ns", utc=True)
    frame["in_flight"] = in_flight_at_start(trace.invocations)
    return frame


def in_flight_at_start(invocations: list[Invocation]) -> list[int]:
    """Per call: the calls of the same function (in the same process) running when it started,
    itself included, among the kept calls."""
    groups: dict[tuple[str, str, int], list[int]] = {}
    for index, inv in enumerate(invocations):
        groups.setdefault((inv.func_name, inv.host, inv.pid), []).append(index)
    counts = [1] * len(invocations)
    for members in groups.values():
        starts = np.array([invocations[i].start_ns for i in members], dtype=np.int64)
        ends = starts + np.array([invocations[i].duration_ns for i in members], dtype=np.int64)
        started = np.searchsorted(np.sort(starts), starts, side="right")
        ended = np.searchsorted(np.sort(ends), starts, side="right")
        for i, running in zip(members, (started - ended).tolist(), strict=True):
            counts[i] = max(1, running)
    return counts
