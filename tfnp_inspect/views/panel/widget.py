"""``TracePanel``: a live, pageable Jupyter view of recorded invocations (an anywidget).

The Python side is a thin model: it turns the recorder's state into small JSON-able traits
(one page of rows, a per-function summary, the drill-down of one selected call) and the
front-end (``extension/panel.js`` + ``panel.css``, plain ES module, no build step) draws them.
Appends arrive on TensorFlow's threads, so the listener only queues the record; a daemon
thread looks at the queue once per ``interval`` and refreshes the traits when it is not empty,
waiting longer when a refresh costs more than :data:`DUTY_CYCLE` of that time.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from importlib.resources import files
from operator import itemgetter
from typing import Any

import anywidget
import numpy as np
import traitlets

from ...model.stats import DurationHistogram, FunctionStats, bucket_bounds
from ...recording.recorder import Recorder
from ...model.records import (
    FLAG_SHARES_TENSOR,
    ArrayInfo,
    ArrayStats,
    Invocation,
    ProcessInfo,
    RawArray,
    dtype_name,
)
from ...recording.trace import Trace

#: Seconds between two refreshes at least (4 per second at most), whatever the rate of appends.
DEFAULT_INTERVAL = 0.25
#: Share of one core that refreshing may take: a slow refresh (a big buffer on a busy machine)
#: stretches the interval instead of slowing the user's loop.
DUTY_CYCLE = 0.01
SPARKLINE_BINS = 32
ARRAY_HISTOGRAM_BINS = 16
PREVIEW_CHARS = 400
#: The mirror keeps one ``(seq, duration_ns, row)`` entry per record: sorting needs no views.
SORT_KEYS = {"seq": itemgetter(0), "duration": itemgetter(1)}


def _asset(name: str) -> str:
    return (files("tfnp_inspect.extension") / name).read_text(encoding="utf-8")


class TracePanel(anywidget.AnyWidget):
    """Table, filters, per-function summary and drill-down of a recorder or trace, kept live.

    ``source`` is ``tfnp_inspect.recorder()``, the :class:`~tfnp_inspect.Trace` of a
    ``trace()`` block, or one returned by ``load()``. Call :meth:`close` to stop updates.
    """

    _esm = _asset("panel.js")
    _css = _asset("panel.css")

    # -- view state, set by the front-end --------------------------------------------------
    page = traitlets.Int(0, min=0).tag(sync=True)
    page_size = traitlets.Int(50, min=1, max=1000).tag(sync=True)
    function_filter = traitlets.Unicode("").tag(sync=True)  # '' = every function
    violations_only = traitlets.Bool(False).tag(sync=True)
    errors_only = traitlets.Bool(False).tag(sync=True)
    process_filter = traitlets.Unicode("").tag(sync=True)  # '' = every process
    sort_by = traitlets.Enum(tuple(SORT_KEYS), default_value="seq").tag(sync=True)
    sort_desc = traitlets.Bool(True).tag(sync=True)  # newest (or slowest) first
    selected_seq = traitlets.Int(None, allow_none=True).tag(sync=True)

    # -- derived state, set here ---------------------------------------------------------------
    rows = traitlets.List([]).tag(sync=True)  # the visible page only
    row_count = traitlets.Int(0).tag(sync=True)  # rows that pass the filters
    page_count = traitlets.Int(1).tag(sync=True)
    stored = traitlets.Int(0).tag(sync=True)  # invocations in the ring buffer
    total = traitlets.Int(0).tag(sync=True)  # ever recorded, evicted ones included
    dropped = traitlets.Int(0).tag(sync=True)
    capacity = traitlets.Int(0).tag(sync=True)
    live = traitlets.Bool(True).tag(sync=True)  # False for traces loaded from disk
    functions = traitlets.List([]).tag(sync=True)
    processes = traitlets.List([]).tag(sync=True)
    summary = traitlets.List([]).tag(sync=True)
    detail = traitlets.Dict({}).tag(sync=True)
    replay_result = traitlets.Dict({}).tag(sync=True)

    def __init__(
        self, source: Recorder | Trace, *, page_size: int = 50, interval: float = DEFAULT_INTERVAL
    ) -> None:
        recorder = _recorder_of(source)
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self._recorder = recorder
        self._lock = threading.RLock()
        self._updating = True  # the observers wait until the first refresh below
        self._processes: list[str] | None = None
        #: Refreshes done so far and the CPU seconds they took (the throttle's effect and the
        #: panel's own cost, for tests and benchmarks).
        self.refreshes = 0
        self.refresh_cpu_s = 0.0
        super().__init__(page_size=page_size, capacity=recorder.capacity, live=not recorder.read_only)
        self._updating = False
        self._mirror = _Mirror(recorder, live=not recorder.read_only)
        weakref.finalize(self, self._mirror.close)  # a forgotten panel stops listening too
        self.on_msg(_handle_message)
        self.refresh()
        self._refresher = None if recorder.read_only else _Refresher(self, interval)

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    def refresh(self) -> None:
        """Rebuild the visible page and the summary from the recorder now."""
        started = time.thread_time()
        with self._lock:
            entries = self._mirror.entries()
            stats = self._recorder.stats()
            selected = self._matching(entries)
            selected.sort(key=SORT_KEYS[self.sort_by], reverse=self.sort_desc)
            page_count = max(1, -(-len(selected) // self.page_size))
            page = min(self.page, page_count - 1)
            start = page * self.page_size
            with self.hold_sync():
                self._updating = True
                try:
                    self.page = page
                    self.page_count = page_count
                    self.row_count = len(selected)
                    self.rows = [_row(_view(e)) for e in selected[start:start + self.page_size]]
                    self.stored = len(entries)
                    self.total = self._recorder.total
                    self.dropped = self._recorder.dropped
                    self.functions = sorted(stats)
                    self.processes = self._process_choices(entries)
                    self.summary = [_summary(stats[name]) for name in sorted(stats)]
                finally:
                    self._updating = False
            self.refreshes += 1
            self.refresh_cpu_s += time.thread_time() - started

    def refresh_if_changed(self) -> None:
        """Refresh when calls arrived (or the recorder was cleared) since the last refresh."""
        if self._mirror.changed:
            self.refresh()

    def _process_choices(self, entries: list[tuple]) -> list[str]:
        """The processes of a merged trace loaded from disk (computed once: it cannot change).

        A live recorder only holds this process's calls, and scanning 10,000 records at every
        refresh would cost the busy loop more than the rest of the refresh.
        """
        if not self._recorder.read_only:
            return []
        if self._processes is None:
            labels = sorted({_process_label(_view(e).process) for e in entries})
            self._processes = labels if len(labels) > 1 else []
        return self._processes

    def _matching(self, entries: list[tuple]) -> list[tuple]:
        """The entries that pass the filters (a view is made per entry and dropped at once)."""
        name, process = self.function_filter, self.process_filter
        if not (name or process or self.violations_only or self.errors_only):
            return entries

        def keep(inv: Invocation) -> bool:
            return (
                (not name or inv.func_name == name)
                and (not self.violations_only or bool(inv.violations))
                and (not self.errors_only or inv.error is not None)
                and (not process or _process_label(inv.process) == process)
            )

        return [e for e in entries if keep(_view(e))]

    @traitlets.observe(
        "function_filter", "violations_only", "errors_only", "process_filter", "sort_by",
        "sort_desc", "page_size",
    )
    def _on_view_change(self, change: dict[str, Any]) -> None:
        if self._updating:
            return
        with self._lock:
            self._updating = True
            try:
                self.page = 0  # a new filter or order starts over at the top
            finally:
                self._updating = False
            self.refresh()

    @traitlets.observe("page")
    def _on_page_change(self, change: dict[str, Any]) -> None:
        if not self._updating:
            self.refresh()

    @traitlets.observe("selected_seq")
    def _on_select(self, change: dict[str, Any]) -> None:
        seq = change["new"]
        self.replay_result = {}
        if seq is None:
            self.detail = {}
            return
        invocation = self._mirror.find(seq)
        self.detail = invocation_detail(invocation) if invocation is not None else {
            "seq": seq, "missing": "this call is no longer in the ring buffer (evicted)",
        }

    def replay_selected(self) -> dict[str, Any]:
        """Re-run the selected call on its captured inputs (what the Replay button does)."""
        seq = self.selected_seq
        invocation = self._mirror.find(seq) if seq is not None else None
        if invocation is None:
            result: dict[str, Any] = {"seq": seq, "error": "select a recorded call first"}
        else:
            result = _replay(invocation)
        self.replay_result = {}  # a repeated identical result must still reach the front-end
        self.replay_result = result
        return result

    def close(self) -> None:
        """Stop live updates (unsubscribe, end the refresher thread) and close the widget."""
        refresher = getattr(self, "_refresher", None)
        if refresher is not None:
            refresher.stop()
        if hasattr(self, "_mirror"):
            self._mirror.close()
        super().close()


def _handle_message(panel: TracePanel, content: Any, buffers: Any) -> None:
    """Custom messages from the front-end: only ``{"type": "replay"}`` so far."""
    if isinstance(content, dict) and content.get("type") == "replay":
        panel.replay_selected()


def _recorder_of(source: Any) -> Recorder:
    if isinstance(source, Trace):
        return source.recorder
    if isinstance(source, Recorder):
        return source
    raise TypeError(
        "TracePanel source must be a tfnp_inspect.Recorder (tfnp_inspect.recorder()) or a "
        f"tfnp_inspect.Trace (from trace() or load()), not {type(source).__name__}"
    )


def _view(entry: tuple) -> Invocation:
    return Invocation.from_row(entry[2])


class _Mirror:
    """The panel's own copy of the recorder's newest records, fed by a listener.

    Reading ``recorder.invocations()`` at every refresh would build one view object per stored
    record, 10,000 of them several times a second, all alive at once (milliseconds of work,
    and garbage that sets the collector off on the user's threads). Instead the listener is a
    bare ``deque.append`` (no Python frame on TensorFlow's threads) that queues the view the
    recorder made for it anyway, for one refresh interval at most; :meth:`entries` turns the
    queue into ``(seq, duration_ns, row)`` tuples of plain values, kept in a deque as long as
    the ring buffer, so sorting needs no view at all.
    """

    def __init__(self, recorder: Recorder, live: bool) -> None:
        self._recorder = recorder
        self._live = live  # False: the recorder cannot change (loaded from disk)
        self._subscription: Any = None
        self._sync()

    def _sync(self) -> None:
        """Start from a snapshot: at first, and after the recorder was cleared or resized."""
        self.close()
        recorder = self._recorder
        self._capacity = recorder.capacity
        self._arrived: deque[Invocation] = deque(maxlen=self._capacity)
        if self._live:
            self._subscription = recorder.subscribe(self._arrived.append)
        self._total = recorder.total  # records the mirror has seen, evicted ones included
        entries = [_entry(inv) for inv in recorder.invocations()]  # after subscribing: no gap
        self._entries = deque(entries, maxlen=self._capacity)
        #: Calls stored while (re)subscribing are both in the snapshot and in the queue.
        self._in_snapshot = {e[0] for e in entries} if self._live else set()

    @property
    def changed(self) -> bool:
        """Calls arrived, or the recorder was cleared, since :meth:`entries` last ran."""
        return bool(self._arrived) or self._recorder.total < self._total

    def entries(self) -> list[tuple]:
        """The newest records as entries, oldest first (more may arrive while this runs)."""
        popleft, fresh = self._arrived.popleft, []
        seen = self._in_snapshot
        try:
            while True:
                invocation = popleft()
                if invocation.seq not in seen:
                    fresh.append(_entry(invocation))
        except IndexError:
            pass
        self._total += len(fresh)
        recorder = self._recorder
        if recorder.capacity != self._capacity or recorder.total < self._total:  # cleared, resized
            self._sync()
        else:
            self._entries.extend(fresh)
        return list(self._entries)

    def find(self, seq: int) -> Invocation | None:
        """A record the panel has shown (leaves the queue for the next refresh)."""
        return next((_view(e) for e in reversed(list(self._entries)) if e[0] == seq), None)

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None


def _entry(invocation: Invocation) -> tuple:
    return (invocation.seq, invocation.duration_ns, invocation.row())


class _Refresher:
    """Looks for new calls every ``interval`` and refreshes the panel when there are some.

    However fast calls arrive, on whichever threads, the panel is refreshed at most once per
    interval; after a refresh the thread waits ``interval`` or ``cost / DUTY_CYCLE``, whichever
    is longer (cost: the CPU time the refresh took). It holds the panel only weakly, so a
    forgotten panel is not kept alive by this thread.
    """

    def __init__(self, panel: TracePanel, interval: float) -> None:
        self._panel = weakref.ref(panel)
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"tfnp-panel-refresh-{panel.model_id}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        delay = self._interval
        while not self._stopped.wait(delay):
            panel = self._panel()
            if panel is None:
                return
            spent = panel.refresh_cpu_s
            panel.refresh_if_changed()
            cost = panel.refresh_cpu_s - spent
            del panel
            delay = max(self._interval, cost / DUTY_CYCLE)

    def stop(self) -> None:
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()


# -- turning records into JSON-able dicts ------------------------------------------------------


def _process_label(process: ProcessInfo) -> str:
    label = f"{process.host}:{process.pid}"
    return f"{label} ({process.task})" if process.task else label


def _shape_text(raw: RawArray) -> str:
    return f"{dtype_name(raw.dtype)}[{','.join(map(str, raw.shape))}]"


def _row(invocation: Invocation) -> dict[str, Any]:
    """One table row, read from the compact per-array tuples (no stats are computed here)."""
    badges = []
    for index, raw in enumerate(invocation.raw_inputs):
        if raw.flags & FLAG_SHARES_TENSOR:
            badges.append({
                "kind": "view", "text": f"in{index} view",
                "title": f"input {index} is a zero-copy view of a TensorFlow tensor",
            })
    for index, raw in enumerate(invocation.raw_outputs):
        if raw.aliases_input is not None:
            badges.append({
                "kind": "alias", "text": f"out{index}=in{raw.aliases_input}",
                "title": f"output {index} shares memory with input {raw.aliases_input}",
            })
        if raw.will_be_copied:
            badges.append({
                "kind": "copy", "text": f"out{index} copied",
                "title": f"TensorFlow will copy output {index} (not C-contiguous, unaligned or objects)",
            })
    return {
        "seq": invocation.seq,
        "function": invocation.func_name,
        "mode": invocation.mode,
        "thread": invocation.thread_name,
        "process": _process_label(invocation.process),
        "duration_ns": invocation.duration_ns,
        "inputs": [_shape_text(raw) for raw in invocation.raw_inputs],
        "outputs": [_shape_text(raw) for raw in invocation.raw_outputs],
        "badges": badges,
        "violations": sorted({v.kind for v in invocation.violations}),
        "error": str(invocation.error) if invocation.error is not None else None,
    }


def _finite(value: float) -> float | None:
    """JSON has no NaN or Inf (the browser would reject the whole message)."""
    return value if math.isfinite(value) else None


def _sparkline(histogram: DurationHistogram) -> dict[str, Any]:
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


def _summary(stats: FunctionStats) -> dict[str, Any]:
    return {
        "function": stats.func_name,
        "calls": stats.calls,
        "errors": stats.errors,
        "mean_ns": _finite(stats.mean_ns),
        # Quantiles are bucket midpoints: never show one above the exact maximum.
        "p50_ns": _finite(min(stats.p50_ns, stats.max_ns)),
        "p99_ns": _finite(min(stats.p99_ns, stats.max_ns)),
        "max_ns": stats.max_ns,
        "violations": dict(sorted(stats.violations.items())),
        "histogram": _sparkline(stats.histogram),
    }


def invocation_detail(invocation: Invocation) -> dict[str, Any]:
    """Everything the drill-down pane shows about one call, as plain JSON-able values."""
    error = invocation.error
    return {
        "seq": invocation.seq,
        "function": invocation.func_name,
        "module": invocation.site.module,
        "op_name": invocation.op_name,
        "mode": invocation.mode,
        "stateful": invocation.stateful,
        "origin": invocation.site.origin,
        "thread": invocation.thread_name,
        "process": _process_label(invocation.process),
        "call_site": invocation.call_site,
        "duration_ns": invocation.duration_ns,
        "inputs": _arrays("input", invocation.inputs),
        "outputs": _arrays("output", invocation.outputs),
        "violations": [
            {"kind": v.kind, "message": v.message, "argument": v.argument}
            for v in invocation.violations
        ],
        "hints": [{"kind": h.kind, "message": h.message} for h in invocation.hints],
        "error": None if error is None else {
            "type": error.type, "message": error.message, "traceback": error.traceback,
        },
        "replayable": invocation.captured and invocation.site.func is not None,
    }


def _arrays(role: str, infos: Iterable[ArrayInfo]) -> list[dict[str, Any]]:
    return [_array(f"{role} {i}", info) for i, info in enumerate(infos)]


def _array(label: str, info: ArrayInfo) -> dict[str, Any]:
    values = info.data  # captured with capture='full'; otherwise only the stats are known
    return {
        "label": label,
        "shape": list(info.shape),
        "dtype": info.dtype,
        "nbytes": info.nbytes,
        "fingerprint": f"{info.fingerprint:016x}" if info.fingerprint is not None else None,
        "aliasing": _aliasing(label, info),
        "stats": _stats(info.stats),
        "preview": _preview(values) if values is not None else None,
        "histogram": _value_histogram(values) if values is not None else None,
        "capture_note": info.capture_note,
    }


def _aliasing(label: str, info: ArrayInfo) -> list[str]:
    notes = []
    if info.shares_tensor_memory:
        access = "writeable: writing to it changes the tensor" if info.writeable else "read-only"
        notes.append(f"zero-copy view of a TensorFlow tensor ({access})")
    if info.aliases_input is not None:
        notes.append(f"shares memory with input {info.aliases_input}")
    if info.will_be_copied is True:
        notes.append("TensorFlow will copy it (not C-contiguous, not 64-byte aligned, or objects)")
    elif info.will_be_copied is False:
        notes.append("handed to TensorFlow without a copy")
    if not notes and label.startswith("input"):
        notes.append("own copy")
    return notes


def _stats(stats: ArrayStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "min": _finite(stats.min), "max": _finite(stats.max), "mean": _finite(stats.mean),
        "nan_count": stats.nan_count, "inf_count": stats.inf_count,
        "exact": stats.exact, "elements": stats.elements,
    }


def _preview(values: np.ndarray) -> str:
    text = np.array2string(np.asarray(values), threshold=24, edgeitems=3, max_line_width=100)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def _value_histogram(values: np.ndarray) -> dict[str, Any] | None:
    if values.dtype.kind not in "biuf" or values.size == 0:
        return None
    flat = values.ravel().astype(np.float64)
    finite = flat[np.isfinite(flat)]
    if not finite.size:
        return None
    counts, edges = np.histogram(finite, bins=ARRAY_HISTOGRAM_BINS)
    return {"counts": counts.tolist(), "low": float(edges[0]), "high": float(edges[-1])}


def _replay(invocation: Invocation) -> dict[str, Any]:
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
        "error": None if result.error is None else _exception_text(result.error),
    }


def _exception_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
