"""Pipeline figures from the recorded intervals: how many calls of a function ran at once.

Each call is an interval of wall time (``start_ns``, ``duration_ns``) on a thread. Per function,
:class:`Concurrency` folds them into: the time at least one call was running (``busy_ns``, the
length of the union of the intervals), the calls in flight at once (mean: the summed durations
over ``busy_ns``; max: the deepest overlap), the threads that called it, and its first start and
last end. Nothing is measured per call beyond the interval the recorder keeps anyway.

Recorders fold rows in the order they were stored, which is about the order calls ended: a call
stored later may still have started before calls stored earlier. Intervals are therefore kept
for a while (:data:`LATENESS_NS` plus the longest call, at most :data:`MAX_RETAINED` of them),
and the figures are exact unless a call is stored after more than that many later calls ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .columns import Column, RowColumns

#: How long after a later call ended an earlier-started one may still be stored (checks,
#: a thread waiting for the GIL): intervals are kept this long past the longest call.
LATENESS_NS = 50_000_000
#: Intervals kept per function for overlaps with calls stored later.
MAX_RETAINED = 1024
#: Threads named per function (the count goes on beyond).
MAX_THREADS = 256

_Times = npt.NDArray[np.int64]
_NO_TIMES: _Times = np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class Concurrency:
    """How one function's calls overlapped in time (see the module's description).

    Calls are queued by :meth:`add` / :meth:`add_columns` and counted by :meth:`settle`, a batch
    at a time (numpy does the sweeps); every copy and snapshot is settled.
    """

    func_name: str
    calls: int = 0
    total_ns: int = 0
    busy_ns: int = 0
    max_in_flight: int = 0
    first_start_ns: int = 0
    last_end_ns: int = 0
    longest_ns: int = 0
    #: thread ident -> name, for the first MAX_THREADS threads
    threads: dict[int, str] = field(default_factory=dict[int, str])
    more_threads: int = 0
    _starts: list[Column] = field(default_factory=list[Column], repr=False, compare=False)
    _durations: list[Column] = field(default_factory=list[Column], repr=False, compare=False)
    #: intervals kept for overlaps with calls stored later
    _recent_starts: _Times = field(default_factory=lambda: _NO_TIMES, repr=False, compare=False)
    _recent_ends: _Times = field(default_factory=lambda: _NO_TIMES, repr=False, compare=False)

    def add(self, start_ns: int, duration_ns: int, thread_id: int, thread_name: str) -> None:
        """Queue one call (counted by the next :meth:`settle`)."""
        self._starts.append(np.array([start_ns], dtype=np.int64))
        self._durations.append(np.array([duration_ns], dtype=np.int64))
        self._thread(thread_id, thread_name)

    def add_columns(self, columns: RowColumns) -> None:
        """Queue a batch of stored rows (of this function)."""
        self._starts.append(columns.starts)
        self._durations.append(columns.durations)
        for ident, name in columns.threads.items():
            self._thread(ident, name)

    def _thread(self, ident: int, name: str) -> None:
        threads = self.threads
        if ident not in threads:
            if len(threads) < MAX_THREADS:
                threads[ident] = name
            else:
                self.more_threads += 1

    def settle(self) -> None:
        """Count the queued calls: totals, ``busy_ns`` and ``max_in_flight``."""
        if not self._starts:
            return
        starts = np.concatenate(self._starts).astype(np.int64, copy=False)
        ends = starts + np.concatenate(self._durations).astype(np.int64, copy=False)
        self._starts, self._durations = [], []
        durations = ends - starts
        if not self.calls or int(starts.min()) < self.first_start_ns:
            self.first_start_ns = int(starts.min())
        self.last_end_ns = max(self.last_end_ns, int(ends.max()))
        self.longest_ns = max(self.longest_ns, int(durations.max()))
        self.calls += len(starts)
        self.total_ns += int(durations.sum())
        # kept intervals that end before every new one starts cannot overlap them
        near = self._recent_ends > int(starts.min())
        if not near.any() and _one_after_another(starts, ends):
            # calls made one after another (a sequential loop, the usual case): the union is the
            # calls themselves, one at a time, with no sort
            self.busy_ns += int(durations.sum())
            self.max_in_flight = max(self.max_in_flight, 1)
        else:
            older_starts, older_ends = self._recent_starts[near], self._recent_ends[near]
            both_starts = np.concatenate((older_starts, starts))
            both_ends = np.concatenate((older_ends, ends))
            self.busy_ns += _union(both_starts, both_ends) - _union(older_starts, older_ends)
            self.max_in_flight = max(self.max_in_flight, _deepest(both_starts, both_ends))
        kept_starts = np.concatenate((self._recent_starts, starts))
        kept_ends = np.concatenate((self._recent_ends, ends))
        keep = kept_ends >= self.last_end_ns - self.longest_ns - LATENESS_NS
        kept_starts, kept_ends = kept_starts[keep], kept_ends[keep]
        if len(kept_ends) > MAX_RETAINED:
            latest = np.argsort(kept_ends, kind="stable")[-MAX_RETAINED:]
            kept_starts, kept_ends = kept_starts[latest], kept_ends[latest]
        self._recent_starts, self._recent_ends = kept_starts, kept_ends

    @property
    def retained(self) -> int:
        """Intervals kept for overlaps with calls stored later."""
        return len(self._recent_ends)

    @property
    def mean_in_flight(self) -> float:
        """Calls running at once, on average over the time at least one was."""
        return self.total_ns / self.busy_ns if self.busy_ns else 1.0

    @property
    def thread_count(self) -> int:
        return len(self.threads) + self.more_threads

    @property
    def span_ns(self) -> int:
        """From the first call's start to the last call's end."""
        return max(0, self.last_end_ns - self.first_start_ns) if self.calls else 0

    @property
    def busy_share(self) -> float:
        """Share of its own span (first start to last end) in which a call was running."""
        span = self.span_ns
        return min(1.0, self.busy_ns / span) if span else 1.0

    def merge(self, other: Concurrency) -> None:
        """Add another file's figures for the same function (processes never overlap here:
        their busy times add up)."""
        other.settle()
        self.settle()
        if other.calls:
            if not self.calls or other.first_start_ns < self.first_start_ns:
                self.first_start_ns = other.first_start_ns
            self.last_end_ns = max(self.last_end_ns, other.last_end_ns)
        self.calls += other.calls
        self.total_ns += other.total_ns
        self.busy_ns += other.busy_ns
        self.max_in_flight = max(self.max_in_flight, other.max_in_flight)
        self.longest_ns = max(self.longest_ns, other.longest_ns)
        for ident, name in other.threads.items():
            self._thread(ident, name)
        self.more_threads += other.more_threads

    def copy(self) -> Concurrency:
        """A settled snapshot (without the intervals kept for later overlaps)."""
        self.settle()
        return Concurrency(
            self.func_name, self.calls, self.total_ns, self.busy_ns, self.max_in_flight, self.first_start_ns,
            self.last_end_ns, self.longest_ns, dict(self.threads), self.more_threads,
        )

    def to_dict(self) -> dict[str, Any]:
        self.settle()
        return {
            "func_name": self.func_name,
            "calls": self.calls,
            "total_ns": self.total_ns,
            "busy_ns": self.busy_ns,
            "max_in_flight": self.max_in_flight,
            "first_start_ns": self.first_start_ns,
            "last_end_ns": self.last_end_ns,
            "longest_ns": self.longest_ns,
            "threads": [[ident, name] for ident, name in self.threads.items()],
            "more_threads": self.more_threads,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Concurrency:
        threads: list[tuple[int, str]] = [(int(ident), str(name)) for ident, name in data["threads"]]
        return cls(
            str(data["func_name"]), int(data["calls"]), int(data["total_ns"]), int(data["busy_ns"]),
            int(data["max_in_flight"]), int(data["first_start_ns"]), int(data["last_end_ns"]),
            int(data["longest_ns"]), dict(threads), int(data["more_threads"]),
        )


def _one_after_another(starts: _Times, ends: _Times) -> bool:
    """Whether each interval is non-empty and starts where or after the one before it ended
    (then their union is their sum and no two overlap)."""
    return bool((ends > starts).all() and (starts[1:] >= ends[:-1]).all())


def _union(starts: _Times, ends: _Times) -> int:
    """Length of the union of the intervals [start, end)."""
    if not len(starts):
        return 0
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    # a run of overlapping intervals begins where a start lies beyond everything before it
    begins = np.flatnonzero(np.concatenate(([True], starts[1:] > reach[:-1])))
    run_ends = reach[np.concatenate((begins[1:] - 1, [len(starts) - 1]))]
    return int((run_ends - starts[begins]).sum())


def _deepest(starts: _Times, ends: _Times) -> int:
    """The most intervals that contain one instant (touching ends do not overlap)."""
    if not len(starts):
        return 0
    times = np.concatenate((starts, ends))
    steps = np.concatenate((np.ones(len(starts), np.int64), -np.ones(len(ends), np.int64)))
    order = np.lexsort((steps, times))  # by time; at one instant, ends before starts
    return int(np.cumsum(steps[order]).max())


class PipelineFolder:
    """Folds stored rows into per-function :class:`Concurrency` (a recorder's, under its lock)."""

    __slots__ = ("by_name",)

    def __init__(self) -> None:
        self.by_name: dict[str, Concurrency] = {}

    def add_columns(self, func_name: str, columns: RowColumns) -> None:
        """Queue a batch of stored rows of one function (settled by :meth:`settle`)."""
        self._of(func_name).add_columns(columns)

    def _of(self, func_name: str) -> Concurrency:
        aggregate = self.by_name.get(func_name)
        if aggregate is None:
            aggregate = self.by_name[func_name] = Concurrency(func_name)
        return aggregate

    def settle(self) -> None:
        for aggregate in self.by_name.values():
            aggregate.settle()

    def update(self, aggregates: Iterable[Concurrency]) -> None:
        """Add figures read from a file (merging those of the same function)."""
        for aggregate in aggregates:
            known = self.by_name.get(aggregate.func_name)
            if known is None:
                self.by_name[aggregate.func_name] = aggregate.copy()
            else:
                known.merge(aggregate)

    def snapshot(self) -> list[Concurrency]:
        return [aggregate.copy() for aggregate in self.by_name.values()]

    def clear(self) -> None:
        self.by_name.clear()


def traced_span_ns(aggregates: Iterable[Concurrency]) -> int:
    """Wall time from the first recorded call's start to the last one's end, over all functions."""
    recorded = [a for a in aggregates if a.calls]
    if not recorded:
        return 0
    return max(a.last_end_ns for a in recorded) - min(a.first_start_ns for a in recorded)


__all__ = ["LATENESS_NS", "MAX_RETAINED", "Concurrency", "PipelineFolder", "traced_span_ns"]
