"""The panel's live feed: a mirror of the recorder's newest records, and the refresher thread.

Appends arrive on TensorFlow's threads and cost them nothing here: the refresher thread polls
the recorder once per ``interval`` and reads the rows it has not seen yet, refreshing the panel
when there are some, and waiting longer when a refresh costs more than :data:`DUTY_CYCLE` of that
time. No widget code here: the refresher drives anything with ``refresh_if_changed()`` and
``refresh_cpu_s``.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Any, Protocol

from ...model.records import Invocation
from ...recording.recorder import Recorder
from .state import E_SEQ, entries_from_rows, view

#: Seconds between two refreshes at least (4 per second at most), whatever the rate of appends.
DEFAULT_INTERVAL = 0.25
#: Share of one core that refreshing may take: a slow refresh (a big buffer on a busy machine)
#: stretches the interval instead of slowing the user's loop.
DUTY_CYCLE = 0.01


class Mirror:
    """The panel's own copy of the recorder's newest records, read by polling.

    Reading ``recorder.invocations()`` at every refresh would build one view object per stored
    record, 10,000 of them several times a second. A listener would cost every call a Python
    path on TensorFlow's threads (the recorder's fast path stores rows only while nobody
    listens). Instead :meth:`entries` asks the recorder for the rows stored since it last
    looked (:meth:`Recorder.rows_since`) and keeps them as entries of plain values
    (:class:`~.state.Entry`), as many as the ring buffer holds, so sorting needs no view at all.
    """

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._capacity = recorder.capacity
        self._seen = 0  # records the mirror has read, evicted ones included
        self._clears = -1  # the recorder's clear() count when last read: -1, never read
        self._entries: deque[tuple[Any, ...]] = deque(maxlen=self._capacity)

    @property
    def changed(self) -> bool:
        """Calls arrived, or the recorder was cleared or resized, since :meth:`entries` last ran."""
        recorder = self._recorder
        return (recorder.total != self._seen or recorder.clears != self._clears
                or recorder.capacity != self._capacity)

    def entries(self) -> list[tuple[Any, ...]]:
        """The newest records as entries, oldest first (more may arrive while this runs)."""
        recorder = self._recorder
        if recorder.capacity != self._capacity:
            self._capacity = recorder.capacity
            self._entries = deque(self._entries, maxlen=self._capacity)
        rows, self._seen, clears = recorder.rows_since(self._seen, self._clears)
        if clears != self._clears:  # cleared since (or never read): the rows are all there is
            self._entries.clear()
            self._clears = clears
        self._entries.extend(entries_from_rows(rows))
        return list(self._entries)

    def find(self, seq: int) -> Invocation | None:
        """A record the panel has shown."""
        return next((view(e) for e in reversed(list(self._entries)) if e[E_SEQ] == seq), None)


class Refreshable(Protocol):
    """What the refresher drives (the widget)."""

    refresh_cpu_s: float

    def refresh_if_changed(self) -> None: ...


class Refresher:
    """Looks for new calls every ``interval`` and refreshes the panel when there are some.

    However fast calls arrive, on whichever threads, the panel is refreshed at most once per
    interval; after a refresh the thread waits ``interval`` or ``cost / DUTY_CYCLE``, whichever
    is longer (cost: the CPU time the refresh took). It holds the panel only weakly, so a
    forgotten panel is not kept alive by this thread.
    """

    def __init__(self, panel: Refreshable, interval: float, name: str) -> None:
        self._panel = weakref.ref(panel)
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
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

    def stop(self, wait: bool = True) -> None:
        """End the thread; ``wait=False`` does not join it (at interpreter shutdown a daemon
        thread may never run again)."""
        self._stopped.set()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()
