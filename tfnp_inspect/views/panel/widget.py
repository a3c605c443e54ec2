"""``TracePanel``: a live, pageable Jupyter view of recorded invocations (an anywidget).

The Python side is a thin model: it turns the recorder's state into small JSON-able traits
(one page of rows, a per-function summary, the drill-down of one selected call; computed by the
pure :mod:`.state`) and the front-end (``extension/panel.js`` + ``panel.css``, a plain ES module,
no build step) draws them. The live feed (:mod:`.feed`) mirrors the recorder and refreshes the
traits at most once per ``interval``.

``_esm`` and ``_css`` are paths: anywidget reads the files, and with ``ANYWIDGET_HMR=1`` (and
``watchfiles`` installed) re-sends them to open panels whenever they change on disk, in a
development checkout (never inside site-packages). Live reload keeps every panel alive until the
kernel restarts (anywidget holds each instance from the files' change signal), so without
``ANYWIDGET_HMR=1`` each panel is given the files' contents instead.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ...recording.diagnosis import diagnose
from ...recording.recorder import Recorder
from ...recording.trace import Trace
from ..render import panel_text
from .feed import DEFAULT_INTERVAL, Mirror, Refresher
from .state import (
    SORT_KEYS,
    Query,
    findings,
    invocation_detail,
    missing_detail,
    page_of,
    process_choices,
    replay_outcome,
    summary,
    timeline,
    timeline_origin,
)


def asset(name: str) -> Path:
    """A front-end file: in ``extension/`` of a checkout, ``tfnp_inspect/extension`` installed."""
    return Path(str(files("tfnp_inspect.extension").joinpath(name)))


class TracePanel(anywidget.AnyWidget):
    """Table, filters, per-function summary and drill-down of a recorder or trace, kept live.

    ``source`` is ``tfnp_inspect.recorder()``, the :class:`~tfnp_inspect.Trace` of a
    ``trace()`` block, or one returned by ``load()``. Call :meth:`close` to stop updates.
    """

    _esm = asset("panel.js")
    _css = asset("panel.css")

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
    #: the timeline's zoom: [from, to] in ns after its origin, [] for every call
    timeline_window = traitlets.List([]).tag(sync=True)

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
    timeline = traitlets.Dict({}).tag(sync=True)  # lanes and bars (see state.timeline)
    findings = traitlets.Dict({}).tag(sync=True)  # derived hints, retraced call sites

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
        self._origin: int | None = None  # the timeline's zero (wall-clock ns), fixed once known
        #: Refreshes done so far and the CPU seconds they took (the throttle's effect and the
        #: panel's own cost, for tests and benchmarks).
        self.refreshes = 0
        self.refresh_cpu_s = 0.0
        if os.environ.get("ANYWIDGET_HMR") != "1":
            # anywidget ties every instance to the files' change signal by a strong reference
            # (anywidget issue 929), which would keep every panel alive: without live reload,
            # the instance gets the contents instead (the class keeps the paths).
            vars(self).update(_esm=str(type(self)._esm), _css=str(type(self)._css))
        super().__init__(page_size=page_size, capacity=recorder.capacity, live=not recorder.read_only)
        self._updating = False
        self._mirror = Mirror(recorder)
        self.on_msg(_handle_message)
        self.refresh()
        self._refresher = None if recorder.read_only else Refresher(
            self, interval, name=f"tfnp-panel-refresh-{self.model_id}"
        )

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    def refresh(self) -> None:
        """Rebuild the visible page and the summary from the recorder now."""
        started = time.thread_time()
        with self._lock:
            entries = self._mirror.entries()
            stats = self._recorder.stats()
            diagnosis = diagnose(self._recorder)
            if self._origin is None:
                self._origin = timeline_origin(entries)
            shown = page_of(entries, self._query())
            with self.hold_sync():
                self._updating = True
                try:
                    self.page = shown.page
                    self.page_count = shown.page_count
                    self.row_count = shown.row_count
                    self.rows = shown.rows
                    self.stored = len(entries)
                    self.total = self._recorder.total
                    self.dropped = self._recorder.dropped
                    self.functions = sorted(stats)
                    self.processes = self._process_choices(entries)
                    self.summary = [summary(stats[name], diagnosis) for name in sorted(stats)]
                    self.findings = findings(diagnosis)
                    self.timeline = timeline(entries, self._origin, self._window())
                finally:
                    self._updating = False
            self.refreshes += 1
            self.refresh_cpu_s += time.thread_time() - started

    def refresh_if_changed(self) -> None:
        """Refresh when calls arrived (or the recorder was cleared) since the last refresh."""
        if self._mirror.changed:
            self.refresh()

    def _process_choices(self, entries: list[tuple[Any, ...]]) -> list[str]:
        """The processes of a merged trace loaded from disk (computed once: it cannot change).

        A live recorder only holds this process's calls, and scanning 10,000 records at every
        refresh would cost the busy loop more than the rest of the refresh.
        """
        if not self._recorder.read_only:
            return []
        if self._processes is None:
            self._processes = process_choices(entries)
        return self._processes

    def _query(self) -> Query:
        return Query(
            function=self.function_filter, violations_only=self.violations_only,
            errors_only=self.errors_only, process=self.process_filter, sort_by=self.sort_by,
            sort_desc=self.sort_desc, page=self.page, page_size=self.page_size,
        )

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

    def _window(self) -> list[float]:
        window = self.timeline_window
        valid = len(window) == 2 and all(isinstance(v, (int, float)) for v in window) and window[0] < window[1]
        return [float(window[0]), float(window[1])] if valid else []

    @traitlets.observe("timeline_window")
    def _on_zoom(self, change: dict[str, Any]) -> None:
        if not self._updating:
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
        self.detail = invocation_detail(invocation) if invocation is not None else missing_detail(seq)

    def replay_selected(self) -> dict[str, Any]:
        """Re-run the selected call on its captured inputs (what the Replay button does)."""
        seq = self.selected_seq
        invocation = self._mirror.find(seq) if seq is not None else None
        if invocation is None:
            result: dict[str, Any] = {"seq": seq, "error": "select a recorded call first"}
        else:
            result = replay_outcome(invocation)
        self.replay_result = {}  # a repeated identical result must still reach the front-end
        self.replay_result = result
        return result

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget where it can be drawn; as text, a snapshot of what it shows (as tqdm
        falls back to a text bar) rather than ``<TracePanel object at 0x...>``."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/plain"] = panel_text(Trace(self._recorder))
        return bundle

    def close(self) -> None:
        """Stop live updates (end the refresher thread) and close the widget."""
        refresher = getattr(self, "_refresher", None)
        if refresher is not None:
            refresher.stop()
        super().close()

    def __del__(self) -> None:
        """ipywidgets closes a widget when it is collected. At interpreter shutdown the
        modules and the comm that ``close`` needs may be torn down already, and nobody is
        left to read an error: the refresher (a daemon thread) is only told to stop then."""
        try:
            if sys.is_finalizing():
                refresher = self.__dict__.get("_refresher")
                if refresher is not None:
                    refresher.stop(wait=False)
                return
            self.close()
        except Exception:  # noqa: BLE001 - a collected panel must never print a traceback
            pass


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
