"""The bounded, thread-safe store of invocations that every view (Trace, magics, panel) reads."""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice, repeat, starmap
from typing import Any

from ..model.columns import RowColumns, columns_of
from ..model.options import Options
from ..model.pipeline import Concurrency, PipelineFolder
from ..model.records import (
    A_CAPTURE_NOTE,
    A_DATA,
    C_RAW_INPUTS,
    C_RAW_OUTPUTS,
    C_SEQ,
    C_SITE,
    C_VIOLATIONS,
    FLAG_STATS_EXACT,
    S_FUNC_NAME,
    Hint,
    Invocation,
    RawArray,
    Violation,
    captured_bytes,
)
from ..model.shapes import ShapeFolder, SiteShapes
from ..model.stats import FunctionStats, TraceStats
from . import core
from .arrays import stats_sample

Listener = Callable[[Invocation], None]

#: Violations are rare and precious: keep this many even after their invocations were evicted.
VIOLATION_HISTORY = 1000
#: Records evicted at once (amortizes folding them into the aggregates).
EVICTION_BATCH = 1024


class Subscription:
    """Handle returned by :meth:`Recorder.subscribe`; call ``close()`` (or use ``with``) to stop."""

    def __init__(self, recorder: Recorder, listener: Listener) -> None:
        self._recorder = recorder
        self.listener = listener

    def close(self) -> None:
        self._recorder._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Recorder:
    """Ring buffer of :class:`Invocation` plus exact per-function aggregates.

    Appends come from TensorFlow's threads. The append itself takes no lock (``deque.append``
    is atomic); everything else (eviction, the aggregates, the capture budget) happens under
    one lock. To keep the append cheap, records are folded into the aggregates lazily, in
    batches: when somebody reads them, or just before the oldest ones are evicted (the buffer
    may run up to :data:`EVICTION_BATCH` records over capacity; those already count as dropped
    and are hidden from readers).
    """

    # slots: the compiled core reads `_hot` on every call at its offset (_probe_core.slot_read)
    __slots__ = (
        "__weakref__", "_buffer", "_capacity", "_captured_bytes", "_clears", "_evicted", "_folded", "_full_capture",
        "_hot", "_listeners", "_lock", "_payloads_dropped", "_pipeline", "_shapes", "_stats", "_trim_above",
        "_violations", "loaded_builds", "loaded_registry_size", "options", "read_only",
    )

    def __init__(self, options: Options | None = None, **kwargs: Any) -> None:
        self.options = Options.from_kwargs(options, **kwargs)
        self._lock = threading.Lock()
        self._buffer: deque[tuple[Any, ...]] = deque()  # rows (see CallRow)
        self._violations: deque[tuple] = deque(maxlen=VIOLATION_HISTORY)  # Violation rows
        self._stats: dict[str, FunctionStats] = {}
        #: observed shapes per op and output, and how each function's calls overlapped
        #: (folded with the stats, so they count evicted calls too)
        self._shapes = ShapeFolder()
        self._pipeline = PipelineFolder()
        #: what a loaded trace's file says about retracing (live recorders ask TF's registry)
        self.loaded_builds: list[Any] = []
        self.loaded_registry_size: int | None = None
        self._listeners: tuple[Subscription, ...] = ()
        self._folded = 0  # records (in arrival order) already counted in the aggregates
        self._evicted = 0
        self._clears = 0  # clear() calls so far: readers that follow the buffer start again
        self._captured_bytes = 0
        self._payloads_dropped = 0
        self._apply_options()
        self.read_only = False

    def _apply_options(self) -> None:
        self._capacity = self.options.capacity
        self._full_capture = self.options.capture == "full"
        self._trim_above = self._capacity + EVICTION_BATCH
        self._update_hot()

    def _update_hot(self) -> None:
        """What the compiled core needs to store a row itself (the common case of :meth:`store`:
        no 'full' capture, no listener, no violation): None sends every row through ``store``."""
        self._hot = None if self._full_capture or self._listeners else (
            self._buffer.append, self._buffer, self._trim_above, self._lock.locked,
        )

    # -- configuration -------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.options.capacity

    def configure(self, **kwargs: Any) -> None:
        """Change options; a smaller capacity evicts the oldest records at once."""
        self._check_writable()
        with self._lock:
            self.options = Options.from_kwargs(self.options, **kwargs)
            self._apply_options()
            if len(self._buffer) > self._capacity:
                self._evict(len(self._buffer) - self._capacity)

    # -- writing (hot path) ---------------------------------------------------------------
    def has_budget_for(self, nbytes: int) -> bool:
        """A cheap pre-check before copying a payload; :meth:`store` settles the accounts.

        When the buffer is full, the next store evicts the oldest record: its payload counts
        as free already.
        """
        free = self.options.max_capture_bytes - self._captured_bytes
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            try:
                free += captured_bytes(buffer[0])
            except IndexError:  # emptied meanwhile by clear()
                pass
        return nbytes <= free

    def append(self, invocation: Invocation) -> None:
        """Store one invocation (adjusted to this recorder's options) and tell the listeners."""
        self.store(self._fit(invocation).row())

    def store(self, row: tuple) -> None:
        """Store a row already made to this recorder's options (the hot path; see CallSite)."""
        buffer = self._buffer
        if self._full_capture:
            with self._lock:  # make room first: evicted payloads give their bytes back
                if len(buffer) >= self._capacity:
                    self._evict(len(buffer) - self._capacity + 1)
                buffer.append(self._charge_payload(row))
        else:
            buffer.append(row)
            # while another thread trims, its eviction will take this row into account
            if len(buffer) > self._trim_above and not self._lock.locked():
                self._trim()
        violations = row[C_VIOLATIONS]
        if violations:
            self._violations.extend(violations)
        listeners = self._listeners
        if not listeners:
            return
        invocation = Invocation.from_row(row)
        for subscription in listeners:
            try:
                subscription.listener(invocation)
            except Exception as exc:  # noqa: BLE001 - a broken listener must never break the user's program
                self._unsubscribe(subscription)
                warnings.warn(
                    f"tfnp_inspect: listener {subscription.listener!r} raised {exc!r} and was removed",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _charge_payload(self, row: tuple) -> tuple:
        """Count a row's captured bytes against the budget (lock held).

        Arrays refused before copying carry their note already; a row that no longer fits
        (another thread charged first) loses its payloads here, with a note too.
        """
        nbytes = captured_bytes(row)
        refused = _refused_payloads(row)
        if nbytes and self._captured_bytes + nbytes > self.options.max_capture_bytes:
            note = f"dropped: capture budget of {self.options.max_capture_bytes} bytes is full"
            invocation = Invocation.from_row(row)
            row = invocation.replace(**_strip(invocation, keep_sample=True, note=note)).row()
            refused = _refused_payloads(row)
            nbytes = 0
        self._payloads_dropped += refused
        self._captured_bytes += nbytes
        return row

    def _fit(self, invocation: Invocation) -> Invocation:
        """Drop what this recorder did not ask for: other checks' findings, deeper capture."""
        options = self.options
        changes: dict[str, Any] = {}
        violations = invocation.violations
        if violations and any(v.kind not in options.checks for v in violations):
            changes["violations"] = tuple(v for v in violations if v.kind in options.checks)
        if options.capture != "full":
            arrays = invocation.raw_inputs + invocation.raw_outputs
            keep_sample = options.capture == "summary"
            if any(a.data is not None or (a.sample is not None and not keep_sample) for a in arrays):
                changes.update(_strip(invocation, keep_sample=keep_sample))
        return invocation.replace(**changes) if changes else invocation

    def _fold(self, upto: int | None = None) -> None:
        """Add the records not yet counted to the per-function aggregates (lock held): all of
        them, or those before record number ``upto`` (counted from the first ever stored).

        Other threads may append meanwhile (only appends happen outside the lock): rows are read
        up to a length taken first. Rows are folded per op (rows of one op share their site
        tuple), a batch at a time. Eviction folds what it evicts and at most a batch more, so
        that the lock is never held for long.
        """
        buffer = self._buffer
        end = len(buffer) if upto is None else min(len(buffer), upto - self._evicted)
        rows = _rows_between(buffer, self._folded - self._evicted, end)
        if rows:
            batches = _batches_by_op(rows)
            stats_by_name = self._stats
            for group, columns in batches:
                name = group[0][C_SITE][S_FUNC_NAME]
                stats = stats_by_name.get(name)
                if stats is None:
                    stats = stats_by_name[name] = FunctionStats(name)
                stats.add_columns(columns)
            self._fold_ops(batches)
        self._folded = self._evicted + end

    def _fold_ops(self, batches: Iterable[tuple[list[tuple[Any, ...]], RowColumns]]) -> None:
        """Fold rows of one op each, with their columns, into the shapes and overlaps (lock held)."""
        for rows, columns in batches:
            site = rows[0][C_SITE]
            self._shapes.add_rows(site, rows, columns)
            self._pipeline.add_columns(site[S_FUNC_NAME], columns)
        self._pipeline.settle()

    def _trim(self) -> None:
        """Evict down to capacity; a thread that finds another one trimming leaves it be."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            excess = len(self._buffer) - self._capacity
            if excess > 0:
                self._evict(excess)
        finally:
            self._lock.release()

    def _evict(self, count: int) -> None:
        """Drop the ``count`` oldest records, counting them first (lock held).

        Counts a batch ahead: under 'full' capture every store evicts one record, and folding
        them one at a time would pay a batch's fixed cost (the numpy calls) on every call.
        """
        if self._folded < self._evicted + count:
            self._fold(self._evicted + max(count, EVICTION_BATCH))
        popleft = self._buffer.popleft
        if self._captured_bytes:
            for _ in range(count):
                # rows charged under 'full' give their bytes back whatever the level is now
                # (they keep their payloads after a switch to 'summary' or 'none')
                self._captured_bytes -= captured_bytes(popleft())
        else:  # nothing to give back: dropped without a Python loop
            deque(starmap(popleft, repeat((), count)), maxlen=0)
        self._evicted += count

    def _visible(self) -> list[tuple[Any, ...]]:
        """The newest ``capacity`` rows (``list(deque)`` is one atomic C call)."""
        rows = list(self._buffer)
        return rows[-self._capacity:] if len(rows) > self._capacity else rows

    # -- reading ---------------------------------------------------------------------------
    def invocations(self) -> list[Invocation]:
        view = Invocation.from_row
        return [view(row) for row in self._visible()]

    def violations(self) -> list[Violation]:
        return [Violation(*row) for row in list(self._violations)]

    def hints(self) -> list[Hint]:
        """The hints of the kept calls, each call's own (``Trace.hints`` adds those derived from
        every call: ``unknown-shape``, ``serialized``, ``retraced``)."""
        return [h for inv in self.invocations() for h in inv.hints]

    def stats(self) -> TraceStats:
        with self._lock:
            self._fold()
            return TraceStats({name: s.snapshot() for name, s in self._stats.items()})

    def shapes(self) -> list[SiteShapes]:
        """Observed shapes per op and output, every call counted (see :mod:`..model.shapes`)."""
        with self._lock:
            self._fold()
            return self._shapes.snapshot()

    def pipeline(self) -> list[Concurrency]:
        """How each function's calls overlapped in time (see :mod:`..model.pipeline`)."""
        with self._lock:
            self._fold()
            return self._pipeline.snapshot()

    def rows_since(self, seen: int, clears: int) -> tuple[list[tuple[Any, ...]], int, int]:
        """The rows stored after the first ``seen`` ever stored, oldest first (only the newest
        ``capacity`` of them), with the number stored so far and of :meth:`clear` calls.

        For a reader that follows the buffer (the panel) by polling: what it has not seen, in one
        locked read, and nothing on the appending threads. When ``clears`` is not the current
        count, the buffer was emptied since the reader last looked: every visible row comes back.
        """
        with self._lock:
            stored = len(self._buffer)  # appends after this are for the next read
            total = self._evicted + stored
            new = min(total - seen if clears == self._clears else total, stored, self._capacity)
            rows = _rows_between(self._buffer, stored - new, stored) if new > 0 else []
            return rows, total, self._clears

    def find(self, seq: int) -> Invocation | None:
        for row in reversed(self._visible()):
            if row[C_SEQ] == seq:
                return Invocation.from_row(row)
        return None

    def __len__(self) -> int:
        return min(len(self._buffer), self._capacity)

    @property
    def total(self) -> int:
        """Records ever stored (exact)."""
        with self._lock:
            return self._evicted + len(self._buffer)

    @property
    def clears(self) -> int:
        """How many times :meth:`clear` ran (readers that follow the buffer start again)."""
        return self._clears

    @property
    def dropped(self) -> int:
        """Records evicted so far (exact; ``total - dropped`` are still readable)."""
        with self._lock:
            return self._evicted + max(0, len(self._buffer) - self._capacity)

    @property
    def captured_bytes(self) -> int:
        return self._captured_bytes

    @property
    def payloads_dropped(self) -> int:
        """Arrays whose 'full' capture was refused (budget full, or over the per-array limit)."""
        return self._payloads_dropped

    def clear(self) -> None:
        self._check_writable()
        with self._lock:
            self._buffer.clear()
            self._violations.clear()
            self._stats.clear()
            self._shapes.clear()
            self._pipeline.clear()
            self._folded = self._evicted = 0
            self._captured_bytes = self._payloads_dropped = 0
            self._clears += 1

    # -- listeners ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Subscription:
        """Call ``listener(invocation)`` after every append, from whichever thread appended."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__}")
        subscription = Subscription(self, listener)
        with self._lock:
            self._listeners = (*self._listeners, subscription)
            self._update_hot()
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._listeners = tuple(s for s in self._listeners if s is not subscription)
            self._update_hot()

    # -- loading ------------------------------------------------------------------------------
    def load_records(
        self, invocations: list[Invocation], violations: list[Violation],
        stats: dict[str, FunctionStats], total: int, dropped: int,
    ) -> None:
        """Fill a fresh recorder from an exported trace, then freeze it.

        ``total`` must equal ``dropped`` plus the records given (what was evicted plus what
        is kept); a file where it does not is inconsistent.
        """
        if total != dropped + len(invocations):
            raise ValueError(
                f"inconsistent trace: total={total} but dropped={dropped} + {len(invocations)} kept"
            )
        with self._lock:
            self._buffer.extend(inv.row() for inv in invocations)
            self._violations.extend(v.row() for v in violations)
            self._stats.update(stats)
            # files that carry no shapes or overlaps (written before they were kept): the kept calls'
            if self._buffer:
                self._fold_ops(_batches_by_op(list(self._buffer)))
            self._evicted = dropped
            self._folded = dropped + len(self._buffer)  # the exported aggregates count them all
            self._captured_bytes = sum(map(captured_bytes, self._buffer))
            if len(self._buffer) > self._capacity:
                self.options = Options.from_kwargs(self.options, capacity=len(self._buffer))
                self._apply_options()
        self.read_only = True

    def load_diagnosis(
        self, shapes: list[SiteShapes], pipeline: list[Concurrency], builds: list[Any], registry_size: int | None,
    ) -> None:
        """Replace what :meth:`load_records` derived from the kept calls with a file's exact
        figures (which count the evicted calls too), and give the file's build counts."""
        with self._lock:
            self._shapes.clear()
            self._shapes.update(shapes)
            self._pipeline.clear()
            self._pipeline.update(pipeline)
            self.loaded_builds = list(builds)
            self.loaded_registry_size = registry_size

    def _check_writable(self) -> None:
        if self.read_only:
            raise RuntimeError("this trace was loaded from disk and is read-only")

    def __repr__(self) -> str:
        return (
            f"<Recorder {len(self)}/{self.capacity} invocations, total={self.total}, "
            f"dropped={self.dropped}, capture={self.options.capture!r}>"
        )


def _read_columns(rows: list[tuple[Any, ...]]) -> RowColumns:
    """:func:`~..model.columns.columns_of`, read by the compiled twin where it can."""
    read = core.compiled.columns(rows) if core.compiled is not None else None
    return columns_of(rows) if read is None else RowColumns._make(read)


def _batches_by_op(rows: list[tuple[Any, ...]]) -> list[tuple[list[tuple[Any, ...]], RowColumns]]:
    """Rows grouped by op (rows of one op share their site tuple), each with its columns: the
    usual batch is of one op, read in one pass."""
    columns = _read_columns(rows)
    if columns.one_site:
        return [(rows, columns)]
    by_site: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_site.setdefault(id(row[C_SITE]), []).append(row)
    return [(group, _read_columns(group)) for group in by_site.values()]


def _rows_between(buffer: deque[tuple[Any, ...]], start: int, end: int) -> list[tuple[Any, ...]]:
    """``buffer[start:end]``. One C-level pass, during which no other thread runs; a deque read
    by index costs a walk from its nearer end per row (quadratic for a large batch), so that is
    only the fallback for when a finalizer run by the garbage collector let a thread append
    meanwhile (iterating a deque that grows raises)."""
    try:
        return list(islice(buffer, start, end))
    except RuntimeError:
        return [buffer[index] for index in range(start, end)]


def _refused_payloads(row: tuple[Any, ...]) -> int:
    """Arrays of a row whose 'full' capture was refused (no payload, and a note saying why)."""
    arrays = row[C_RAW_INPUTS] + row[C_RAW_OUTPUTS]
    return sum(1 for raw in arrays if raw[A_DATA] is None and raw[A_CAPTURE_NOTE] is not None)


def _strip(invocation: Invocation, keep_sample: bool, note: str | None = None) -> dict[str, Any]:
    """Field changes that remove full payloads (keeping or deriving the small stats sample)."""

    def strip(raw: RawArray) -> RawArray:
        sample, flags = (raw.sample if keep_sample else None), raw.flags
        if raw.data is not None and keep_sample and sample is None:
            sample, exact = stats_sample(raw.data)
            flags = flags | FLAG_STATS_EXACT if exact else flags
        return raw._replace(
            data=None, sample=sample, flags=flags,
            capture_note=note if raw.data is not None else raw.capture_note,
        )

    return {
        "raw_inputs": tuple(map(strip, invocation.raw_inputs)),
        "raw_outputs": tuple(map(strip, invocation.raw_outputs)),
    }
