"""What the trace panel shows, as plain JSON-able values: a pure projection of records and stats.

No IPython, widgets or threads here (importable and testable without them): the widget
(:mod:`.widget`) calls these on the entries its feed (:mod:`.feed`) keeps, and the front-end
draws the result. Every value is strict JSON (NaN and Inf become null: the browser would reject
the whole message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from ...model.jsonable import json_safe
from ...model.records import (
    C_ERROR,
    C_PROCESS,
    C_SITE,
    C_START_NS,
    C_THREAD_ID,
    C_THREAD_NAME,
    C_VIOLATIONS,
    S_FUNC_NAME,
    ArrayInfo,
    ArrayStats,
    Invocation,
    ProcessInfo,
    type_label,
)
from ...model.shapes import signature
from ...model.stats import DurationHistogram, FunctionStats, bucket_bounds
from ...recording.diagnosis import Diagnosis
from ..diagnosis import build_text, registry_text, threads_text
from ..format import array_badges, array_notes, array_preview

SPARKLINE_BINS = 32
ARRAY_HISTOGRAM_BINS = 16


class Entry(NamedTuple):
    """What the panel keeps per record (declaration only: entries are plain tuples, so that
    10,000 of them cost the garbage collector nothing, and sorting needs no view)."""

    seq: int
    duration_ns: int
    row: tuple[Any, ...]  # the recorder's row (see model.records.CallRow)


E_SEQ = Entry._fields.index("seq")
E_DURATION_NS = Entry._fields.index("duration_ns")
E_ROW = Entry._fields.index("row")
#: The orders the table offers, by the entry field they sort on.
SORT_KEYS: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    "seq": itemgetter(E_SEQ), "duration": itemgetter(E_DURATION_NS),
}


def entry(invocation: Invocation) -> tuple[Any, ...]:
    return (invocation.seq, invocation.duration_ns, invocation.row())


def view(entry: tuple[Any, ...]) -> Invocation:
    return Invocation.from_row(entry[E_ROW])


class Query(NamedTuple):
    """The view state the front-end sets: filters, order and page."""

    function: str = ""  # '' = every function
    violations_only: bool = False
    errors_only: bool = False
    process: str = ""  # '' = every process (a ProcessInfo.label)
    sort_by: str = "seq"
    sort_desc: bool = True
    page: int = 0
    page_size: int = 50


class Page(NamedTuple):
    """One page of the table, and how many rows and pages the filters leave."""

    rows: list[dict[str, Any]]
    page: int  # the page shown (the one asked for, moved back when it no longer exists)
    page_count: int
    row_count: int


def select(entries: list[tuple[Any, ...]], query: Query) -> list[tuple[Any, ...]]:
    """The entries that pass the filters, in the order asked for.

    A view is made per entry and dropped at once; without filters none is made at all.
    """
    name, process = query.function, query.process
    if name or process or query.violations_only or query.errors_only:

        def keep(inv: Invocation) -> bool:
            return (
                (not name or inv.func_name == name)
                and (not query.violations_only or bool(inv.violations))
                and (not query.errors_only or inv.error is not None)
                and (not process or inv.process.label == process)
            )

        entries = [e for e in entries if keep(view(e))]
    else:
        entries = list(entries)
    entries.sort(key=SORT_KEYS[query.sort_by], reverse=query.sort_desc)
    return entries


def page_of(entries: list[tuple[Any, ...]], query: Query) -> Page:
    """The rows of the page ``query`` asks for (the last one when it asks beyond)."""
    selected = select(entries, query)
    page_count = max(1, -(-len(selected) // query.page_size))
    page = min(query.page, page_count - 1)
    start = page * query.page_size
    rows = [row(view(e)) for e in selected[start:start + query.page_size]]
    return Page(rows, page, page_count, len(selected))


def process_choices(entries: Iterable[tuple[Any, ...]]) -> list[str]:
    """The processes to filter by: their labels when the records come from several."""
    labels = sorted({view(e).process.label for e in entries})
    return labels if len(labels) > 1 else []


def row(invocation: Invocation) -> dict[str, Any]:
    """One table row, read from the compact per-array tuples (no stats are computed here)."""
    raw_inputs, raw_outputs = invocation.raw_inputs, invocation.raw_outputs
    return {
        "seq": invocation.seq,
        "function": invocation.func_name,
        "mode": invocation.mode,
        "thread": invocation.thread_name,
        "process": invocation.process.label,
        "duration_ns": invocation.duration_ns,
        "inputs": [type_label(raw.dtype, raw.shape) for raw in raw_inputs],
        "outputs": [type_label(raw.dtype, raw.shape) for raw in raw_outputs],
        "badges": array_badges(raw_inputs, raw_outputs),
        "violations": sorted({v.kind for v in invocation.violations}),
        "error": str(invocation.error) if invocation.error is not None else None,
    }


def sparkline(histogram: DurationHistogram) -> dict[str, Any]:
    """The log-linear duration buckets between the fastest and slowest call, at most 32 bins."""
    if not histogram.counts:
        return {"counts": [], "low_ns": 0, "high_ns": 0}
    first, last = min(histogram.counts), max(histogram.counts)
    span = last - first + 1
    width = -(-span // SPARKLINE_BINS)
    counts = [0] * -(-span // width)
    for bucket, n in histogram.counts.items():
        counts[(bucket - first) // width] += n
    return {"counts": counts, "low_ns": bucket_bounds(first)[0], "high_ns": bucket_bounds(last)[1]}


def summary(stats: FunctionStats, diagnosis: Diagnosis | None = None) -> dict[str, Any]:
    """One function's line of the summary, with its duration sparkline, and (given the
    diagnosis) its ops' signatures, how its calls overlapped and its derived hints."""
    return json_safe({**_diagnosed(stats.func_name, diagnosis),
        "function": stats.func_name,
        "calls": stats.calls,
        "errors": stats.errors,
        "mean_ns": stats.mean_ns,
        # Quantiles are bucket midpoints: never show one above the exact maximum.
        "p50_ns": min(stats.p50_ns, stats.max_ns),
        "p99_ns": min(stats.p99_ns, stats.max_ns),
        "max_ns": stats.max_ns,
        "violations": dict(sorted(stats.violations.items())),
        "histogram": sparkline(stats.histogram),
    })


def invocation_detail(invocation: Invocation) -> dict[str, Any]:
    """Everything the drill-down pane shows about one call, as plain JSON-able values."""
    error = invocation.error
    site = invocation.site
    return {
        "seq": invocation.seq,
        "function": invocation.func_name,
        "module": site.module,
        "op_name": invocation.op_name,
        "mode": invocation.mode,
        "stateful": invocation.stateful,
        "origin": site.origin,
        "thread": invocation.thread_name,
        "process": invocation.process.label,
        "call_site": invocation.call_site,
        "duration_ns": invocation.duration_ns,
        "inputs": [_array(f"input {i}", info, True) for i, info in enumerate(invocation.inputs)],
        "outputs": [_array(f"output {i}", info, False) for i, info in enumerate(invocation.outputs)],
        "violations": [
            {"kind": v.kind, "message": v.message, "argument": v.argument}
            for v in invocation.violations
        ],
        "hints": [{"kind": h.kind, "message": h.message} for h in invocation.hints],
        "error": None if error is None else {
            "type": error.type, "message": error.message, "traceback": error.traceback,
        },
        "replayable": invocation.captured and site.func is not None,
    }


def missing_detail(seq: int) -> dict[str, Any]:
    """The drill-down of a call that the ring buffer no longer holds."""
    return {"seq": seq, "missing": "this call is no longer in the ring buffer (evicted)"}


def _array(label: str, info: ArrayInfo, is_input: bool) -> dict[str, Any]:
    values = info.data  # captured with capture='full'; otherwise only the stats are known
    return {
        "label": label,
        "shape": list(info.shape),
        "dtype": info.dtype,
        "nbytes": info.nbytes,
        "fingerprint": f"{info.fingerprint:016x}" if info.fingerprint is not None else None,
        "aliasing": array_notes(info, detailed=True, is_input=is_input),
        "stats": _stats(info.stats),
        "preview": array_preview(values) if values is not None else None,
        "histogram": _value_histogram(values) if values is not None else None,
        "capture_note": info.capture_note,
    }


def _stats(stats: ArrayStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return json_safe({
        "min": stats.min, "max": stats.max, "mean": stats.mean,
        "nan_count": stats.nan_count, "inf_count": stats.inf_count,
        "exact": stats.exact, "elements": stats.elements,
    })


def _value_histogram(values: np.ndarray) -> dict[str, Any] | None:
    """Counts of the finite values in equal-width bins between their min and max.

    Binned by hand rather than by ``np.histogram``, which refuses ranges its float64 edges
    cannot split (equal large int64 timestamps, neighbouring values near 1e18) or overflow
    (-1.7e308 .. 1.7e308): values and bounds are halved first, so no difference overflows.
    Equal values give one bin.
    """
    if values.dtype.kind not in "biuf" or values.size == 0:
        return None
    flat = values.ravel().astype(np.float64)
    finite = flat[np.isfinite(flat)]
    if not finite.size:
        return None
    low, high = float(finite.min()), float(finite.max())
    half_low = low / 2
    width = high / 2 - half_low
    if not width > 0:
        return {"counts": [int(finite.size)], "low": low, "high": high}
    with np.errstate(all="ignore"):
        position = (finite / 2 - half_low) / width * ARRAY_HISTOGRAM_BINS
    index = np.clip(position.astype(np.int64), 0, ARRAY_HISTOGRAM_BINS - 1)
    counts = np.bincount(index, minlength=ARRAY_HISTOGRAM_BINS)
    return {"counts": counts.tolist(), "low": low, "high": high}


def replay_outcome(invocation: Invocation) -> dict[str, Any]:
    """Re-run a call on its captured inputs (the Replay button) and say how it compares."""
    # Imported on use: most panels are never asked to replay.
    from ...recording.replay import ReplayError, replay

    try:
        result = replay(invocation)
    except ReplayError as exc:  # inputs not captured, or the function is gone
        return {"seq": invocation.seq, "error": str(exc)}
    return {
        "seq": invocation.seq,
        "matches": bool(result.matches),
        "differences": [str(d) for d in result.differences],
        "error": None if result.error is None else f"{type(result.error).__name__}: {result.error}",
    }


# -- diagnosis: signatures, pipeline figures, derived hints ---------------------------------------


def _diagnosed(func_name: str, diagnosis: Diagnosis | None) -> dict[str, Any]:
    """What the diagnosis adds to one function's summary line (nothing without one)."""
    if diagnosis is None:
        return {}
    figures = diagnosis.pipeline_of(func_name)
    pipeline = None if figures is None else {
        "threads": figures.thread_count,
        "thread_names": threads_text(figures),
        "mean_in_flight": figures.mean_in_flight,
        "max_in_flight": figures.max_in_flight,
        "parallel_work": diagnosis.parallel_work(figures),
        "busy_ns": figures.busy_ns,
        "time_share": diagnosis.time_share(figures),
    }
    return {
        "signatures": [signature(site) for site in diagnosis.shapes if site.func_name == func_name],
        "pipeline": pipeline,
        "hints": sorted({h.kind for h in diagnosis.hints if h.func_name == func_name}),
    }


def findings(diagnosis: Diagnosis) -> dict[str, Any]:
    """The derived hints and the retraced call sites, for the panel's findings section."""
    return {
        "hints": [
            {"kind": h.kind, "function": h.func_name, "seq": h.seq, "message": h.message} for h in diagnosis.hints
        ],
        "builds": [build_text(b) for b in diagnosis.builds if b.ops > 1],
        "registry": registry_text(diagnosis.registry_size),
    }


# -- the timeline: threads as lanes, calls as bars --------------------------------------------------

#: Bars sent to the front-end at most; beyond, neighbouring calls closer than a pixel merge.
TIMELINE_MAX_BARS = 2000
#: The width the timeline is drawn at, in pixels (what "closer than a pixel" means).
TIMELINE_PIXELS = 1200
#: Bar flags: the call (or one of the merged calls) broke a contract, or raised.
BAR_VIOLATION, BAR_ERROR = 1, 2
#: Positions in a bar: lane, start and end (ns after the timeline's origin), seq of the first
#: call, flags, calls merged into it, function (index into ``functions``; -1 when several).
BAR_LANE, BAR_START, BAR_END, BAR_SEQ, BAR_FLAGS, BAR_CALLS, BAR_FUNCTION = range(7)


def timeline_origin(entries: Iterable[tuple[Any, ...]]) -> int | None:
    """The earliest start among ``entries`` (wall-clock ns): times go to the browser relative
    to it, since epoch nanoseconds do not fit a JavaScript number exactly."""
    return min((e[E_ROW][C_START_NS] for e in entries), default=None)


def timeline(
    entries: list[tuple[Any, ...]], origin_ns: int | None, window: Sequence[float] = (),
    max_bars: int = TIMELINE_MAX_BARS,
) -> dict[str, Any]:
    """The calls of ``entries`` on a time axis: one lane per thread, one bar per call.

    ``window`` is ``[from, to]`` in ns after ``origin_ns`` (empty: every call). When more than
    ``max_bars`` calls fall in it, calls of a lane that are closer than a pixel of the drawn
    window merge into one bar (its ``calls`` says how many, its flags are theirs together).
    """
    if origin_ns is None or not entries:
        return {"lanes": [], "functions": [], "bars": [], "start": 0, "end": 0, "window": [], "merged": False}
    lanes: dict[tuple[Any, int], int] = {}
    lane_labels: list[dict[str, str]] = []
    functions: dict[str, int] = {}
    calls: list[list[int]] = []
    first, last = None, None
    low, high = (window[0], window[1]) if len(window) == 2 else (None, None)
    for e in entries:
        row = e[E_ROW]
        start = row[C_START_NS] - origin_ns
        end = start + e[E_DURATION_NS]
        first = start if first is None or start < first else first
        last = end if last is None or end > last else last
        if low is not None and high is not None and (end < low or start > high):
            continue
        key = (row[C_PROCESS], row[C_THREAD_ID])
        lane = lanes.get(key)
        if lane is None:
            lane = lanes[key] = len(lane_labels)
            lane_labels.append({"thread": row[C_THREAD_NAME], "process": ProcessInfo(*row[C_PROCESS]).label})
        name = row[C_SITE][S_FUNC_NAME]
        function = functions.setdefault(name, len(functions))
        flags = (BAR_VIOLATION if row[C_VIOLATIONS] else 0) | (BAR_ERROR if row[C_ERROR] is not None else 0)
        calls.append([lane, start, end, e[E_SEQ], flags, 1, function])
    shown_low = low if low is not None else (first or 0)
    shown_high = high if high is not None else (last or 0)
    bars, merged = _fit_bars(calls, max(1.0, float(shown_high) - float(shown_low)), max_bars)
    return {
        "lanes": lane_labels,
        "functions": list(functions),
        "bars": bars,
        "start": first or 0,
        "end": last or 0,
        "window": [shown_low, shown_high],
        "merged": merged,
    }


def _fit_bars(calls: list[list[int]], span: float, max_bars: int) -> tuple[list[list[int]], bool]:
    """At most ``max_bars`` bars: neighbours closer than a pixel merge, then closer than two ..."""
    if len(calls) <= max_bars:
        return sorted(calls, key=itemgetter(BAR_LANE, BAR_START)), False
    calls.sort(key=itemgetter(BAR_LANE, BAR_START))
    gap = span / TIMELINE_PIXELS
    bars = calls
    for _ in range(40):
        bars = _merge_close(calls, gap)
        if len(bars) <= max_bars:
            break
        gap *= 2
    return bars[-max_bars:], True


def _merge_close(calls: list[list[int]], gap: float) -> list[list[int]]:
    bars: list[list[int]] = []
    for call in calls:
        previous = bars[-1] if bars else None
        if previous is not None and previous[BAR_LANE] == call[BAR_LANE] and call[BAR_START] - previous[BAR_END] < gap:
            previous[BAR_END] = max(previous[BAR_END], call[BAR_END])
            previous[BAR_FLAGS] |= call[BAR_FLAGS]
            previous[BAR_CALLS] += call[BAR_CALLS]
            if previous[BAR_FUNCTION] != call[BAR_FUNCTION]:
                previous[BAR_FUNCTION] = -1
        else:
            bars.append(list(call))
    return bars
