"""The panel's live feed: a mirror of the recorder's newest records, and the refresher thread.

Appends arrive on TensorFlow's threads, so the listener only queues the record; a daemon thread
looks at the queue once per ``interval`` and refreshes the panel when it is not empty, waiting
longer when a refresh costs more than :data:`DUTY_CYCLE` of that time. No widget code here: the
refresher drives anything with ``refresh_if_changed()`` and ``refresh_cpu_s``.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Any, Protocol

from ...model.records import Invocation
from ...recording.recorder import Recorder, Subscription
from .state import E_SEQ, entry, view

#: Seconds between two refreshes at least (4 per second at most), whatever the rate of appends.
DEFAULT_INTERVAL = 0.25
#: Share of one core that refreshing may take: a slow refresh (a big buffer on a busy machine)
#: stretches the interval instead of slowing the user's loop.
DUTY_CYCLE = 0.01


class Mirror:
    """The panel's own copy of the recorder's newest records, fed by a listener.

    Reading ``recorder.invocations()`` at every refresh would build one view object per stored
    record, 10,000 of them several times a second, all alive at once (milliseconds of work,
    and garbage that sets the collector off on the user's threads). Instead the listener is a
    bare ``deque.append`` (no Python frame on TensorFlow's threads) that queues the view the
    recorder made for it anyway, for one refresh interval at most; :meth:`entries` turns the
    queue into entries of plain values (:class:`~.state.Entry`), kept in a deque as long as the
    ring buffer, so sorting needs no view at all.
    """

    def __init__(self, recorder: Recorder, live: bool) -> None:
        self._recorder = recorder
        self._live = live  # False: the recorder cannot change (loaded from disk)
        self._subscription: Subscription | None = None
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
        entries = [entry(inv) for inv in recorder.invocations()]  # after subscribing: no gap
        self._entries: deque[tuple[Any, ...]] = deque(entries, maxlen=self._capacity)
        #: Calls stored while (re)subscribing are both in the snapshot and in the queue.
        self._in_snapshot = {e[E_SEQ] for e in entries} if self._live else set()

    @property
    def changed(self) -> bool:
        """Calls arrived, or the recorder was cleared, since :meth:`entries` last ran."""
        return bool(self._arrived) or self._recorder.total < self._total

    def entries(self) -> list[tuple[Any, ...]]:
        """The newest records as entries, oldest first (more may arrive while this runs)."""
        popleft, fresh = self._arrived.popleft, []
        seen = self._in_snapshot
        try:
            while True:
                invocation = popleft()
                if invocation.seq not in seen:
                    fresh.append(entry(invocation))
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
        return next((view(e) for e in reversed(list(self._entries)) if e[E_SEQ] == seq), None)

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None


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
