"""What the trace panel shows, as plain JSON-able values: a pure projection of records and stats.

No IPython, widgets or threads here (importable and testable without them): the widget
(:mod:`.widget`) calls these on the entries its feed (:mod:`.feed`) keeps, and the front-end
draws the result. Every value is strict JSON (NaN and Inf become null: the browser would reject
the whole message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any, NamedTuple

import numpy as np

from ...model.jsonable import json_safe
from ...model.records import (
    C_DURATION_NS,
    C_ERROR,
    C_PROCESS,
    C_SEQ,
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


_ROW_SEQ, _ROW_DURATION = itemgetter(C_SEQ), itemgetter(C_DURATION_NS)


def entries_from_rows(rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Entries of the recorder's rows (no Python frame per row: the refresher reads thousands)."""
    return zip(map(_ROW_SEQ, rows), map(_ROW_DURATION, rows), rows, strict=True)


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
    Lanes and functions are numbered in the order their first call appears. Column-wise (numpy):
    the panel redraws it several times a second from 10,000 calls while the user's loop runs.
    """
    if origin_ns is None or not entries:
        return {"lanes": [], "functions": [], "bars": [], "start": 0, "end": 0, "window": [], "merged": False}
    rows = list(map(_ENTRY_ROW, entries))
    starts, ends = _offsets(rows, np.fromiter(map(_ENTRY_DURATION, entries), np.int64, len(entries)), origin_ns)
    first, last = starts.min().item(), ends.max().item()
    low, high = (window[0], window[1]) if len(window) == 2 else (None, None)
    if low is not None and high is not None:
        inside = np.flatnonzero((ends >= low) & (starts <= high))
        starts, ends = starts[inside], ends[inside]
        entries = [entries[i] for i in inside.tolist()]
        rows = [rows[i] for i in inside.tolist()]
    lane_keys = list(zip(map(_PROCESS, rows), map(_THREAD_ID, rows), strict=True))
    lane_of = {key: lane for lane, key in enumerate(dict.fromkeys(lane_keys))}
    lanes = np.fromiter(map(lane_of.__getitem__, lane_keys), np.int64, len(rows))
    lane_labels = [  # each lane's first call names it
        {"thread": rows[first][C_THREAD_NAME], "process": ProcessInfo(*lane_keys[first][0]).label}
        for first in np.unique(lanes, return_index=True)[1].tolist()
    ]
    names = list(map(_FUNC_NAME, map(_SITE, rows)))
    function_of = {name: index for index, name in enumerate(dict.fromkeys(names))}
    calls = _Calls(
        lanes, starts, ends, np.fromiter(map(_ENTRY_SEQ, entries), np.int64, len(entries)),
        np.fromiter(map(bool, map(_VIOLATIONS, rows)), bool, len(rows)) * BAR_VIOLATION
        | np.fromiter(map(is_not, map(_ERROR, rows), repeat(None)), bool, len(rows)) * BAR_ERROR,
        np.fromiter(map(function_of.__getitem__, names), np.int64, len(rows)),
    )
    shown_low = low if low is not None else first
    shown_high = high if high is not None else last
    bars, merged = _fit_bars(calls, max(1.0, float(shown_high) - float(shown_low)), max_bars)
    return {
        "lanes": lane_labels,
        "functions": list(function_of),
        "bars": bars,
        "start": first,
        "end": last,
        "window": [shown_low, shown_high],
        "merged": merged,
    }


_ENTRY_ROW, _ENTRY_SEQ, _ENTRY_DURATION = itemgetter(E_ROW), itemgetter(E_SEQ), itemgetter(E_DURATION_NS)
_START, _PROCESS, _THREAD_ID = itemgetter(C_START_NS), itemgetter(C_PROCESS), itemgetter(C_THREAD_ID)
_SITE, _FUNC_NAME = itemgetter(C_SITE), itemgetter(S_FUNC_NAME)
_VIOLATIONS, _ERROR = itemgetter(C_VIOLATIONS), itemgetter(C_ERROR)


def _offsets(rows: list[tuple[Any, ...]], durations: np.ndarray[Any, Any], origin_ns: int) -> tuple[Any, Any]:
    """Start and end times after ``origin_ns``: int64, or float64 for times a file put so far
    apart that their differences (or ends) leave int64 (still exact to the pixel)."""
    starts = np.fromiter(map(_START, rows), np.int64, len(rows))  # a file's times are int64
    reach = max(abs(int(starts.max()) - origin_ns), abs(int(starts.min()) - origin_ns)) + int(durations.max())
    if reach < 1 << 62:
        starts -= origin_ns
    else:
        starts, durations = starts.astype(np.float64) - origin_ns, durations.astype(np.float64)
    return starts, starts + durations


class _Calls(NamedTuple):
    """The timeline's calls, column-wise, in entry order."""

    lanes: np.ndarray[Any, Any]
    starts: np.ndarray[Any, Any]
    ends: np.ndarray[Any, Any]
    seqs: np.ndarray[Any, Any]
    flags: np.ndarray[Any, Any]
    functions: np.ndarray[Any, Any]


def _fit_bars(calls: _Calls, span: float, max_bars: int) -> tuple[list[list[Any]], bool]:
    """At most ``max_bars`` bars: neighbours closer than a pixel merge, then closer than two ...

    Calls are ordered by lane, then start (ties in entry order). A call joins the bar before it
    when it is on the same lane and starts less than the gap after the latest end in that lane
    so far (the bar's end: a later bar starts after every earlier end of its lane).
    """
    order = np.lexsort((calls.starts, calls.lanes))
    lanes, starts, ends = calls.lanes[order], calls.starts[order], calls.ends[order]
    seqs, flags, functions = calls.seqs[order], calls.flags[order], calls.functions[order]
    count = len(order)
    if count <= max_bars:
        return _bars((lanes, starts, ends, seqs, flags, np.ones(count, np.int64), functions)), False
    lane_begins = np.flatnonzero(np.r_[True, lanes[1:] != lanes[:-1]])
    latest_end = np.empty_like(ends)  # the latest end in the lane before each call
    for begin, stop in zip(lane_begins.tolist(), [*lane_begins[1:].tolist(), count], strict=True):
        latest_end[begin] = starts[begin]
        np.maximum.accumulate(ends[begin:stop - 1], out=latest_end[begin + 1:stop])
    new_lane = np.zeros(count, bool)
    new_lane[lane_begins] = True
    gap = span / TIMELINE_PIXELS
    for _ in range(40):
        begins = np.flatnonzero(new_lane | (starts - latest_end >= gap))
        if len(begins) <= max_bars:
            break
        gap *= 2
    begins = begins[-max_bars:]
    if len(begins) and begins[0] > 0:  # the oldest bars left out: their calls go with them
        lanes, starts, ends, seqs, flags, functions = (
            column[begins[0]:] for column in (lanes, starts, ends, seqs, flags, functions))
        begins = begins - begins[0]
    sizes = np.diff(np.r_[begins, len(lanes)])
    mixed = np.minimum.reduceat(functions, begins) != np.maximum.reduceat(functions, begins)
    return _bars((
        lanes[begins], starts[begins], np.maximum.reduceat(ends, begins), seqs[begins],
        np.bitwise_or.reduceat(flags, begins), sizes, np.where(mixed, -1, functions[begins]),
    )), True


def _bars(columns: tuple[np.ndarray[Any, Any], ...]) -> list[list[Any]]:
    """Bars as the front-end reads them: one list of plain numbers per bar, in BAR_* order."""
    return [list(bar) for bar in zip(*(column.tolist() for column in columns), strict=True)]
