"""The bounded, thread-safe store of invocations that every view (Trace, magics, panel) reads."""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

from .aggregates import FunctionStats, TraceStats
from .options import Options
from .arrays import stats_sample
from .records import FLAG_STATS_EXACT, Hint, Invocation, RawArray, Violation

Listener = Callable[[Invocation], None]

#: Violations are rare and precious: keep this many even after their invocations were evicted.
VIOLATION_HISTORY = 1000


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

    Appends come from TensorFlow's threads; one lock keeps ``total``, ``dropped``, the
    aggregates and the capture budget consistent with the buffer.
    """

    def __init__(self, options: Options | None = None, **kwargs: Any) -> None:
        self.options = Options.from_kwargs(options, **kwargs)
        self._lock = threading.Lock()
        self._buffer: deque[Invocation] = deque()
        self._violations: deque[Violation] = deque(maxlen=VIOLATION_HISTORY)
        self._stats: dict[str, FunctionStats] = {}
        self._listeners: tuple[Subscription, ...] = ()
        self._total = 0
        self._dropped = 0
        self._captured_bytes = 0
        self._payloads_dropped = 0
        self.read_only = False

    # -- configuration -------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.options.capacity

    def configure(self, **kwargs: Any) -> None:
        """Change options; a smaller capacity evicts the oldest records at once."""
        self._check_writable()
        with self._lock:
            self.options = Options.from_kwargs(self.options, **kwargs)
            while len(self._buffer) > self.options.capacity:
                self._evict_oldest()

    # -- writing (hot path) ---------------------------------------------------------------
    def has_budget_for(self, nbytes: int) -> bool:
        """A cheap pre-check before copying a payload; :meth:`append` settles the accounts."""
        return self._captured_bytes + nbytes <= self.options.max_capture_bytes

    def append(self, invocation: Invocation) -> Invocation:
        """Store one invocation (adjusted to this recorder's options) and tell the listeners."""
        invocation = self._fit(invocation)
        with self._lock:
            if self.options.capture == "full" and invocation.captured_bytes:
                if not self.has_budget_for(invocation.captured_bytes):
                    self._payloads_dropped += 1
                    note = f"dropped: capture budget of {self.options.max_capture_bytes} bytes is full"
                    invocation = invocation.replace(**_strip(invocation, keep_sample=True, note=note))
                self._captured_bytes += invocation.captured_bytes
            if len(self._buffer) >= self.options.capacity:
                self._evict_oldest()
            self._buffer.append(invocation)
            self._total += 1
            stats = self._stats.get(invocation.site.func_name)
            if stats is None:
                stats = self._stats[invocation.site.func_name] = FunctionStats(invocation.site.func_name)
            violations = invocation.violations
            stats.add(
                invocation.duration_ns,
                invocation.bytes_in,
                invocation.bytes_out,
                invocation.error is not None,
                [v.kind for v in violations] if violations else (),
            )
            if violations:
                self._violations.extend(violations)
            listeners = self._listeners
        for subscription in listeners:
            try:
                subscription.listener(invocation)
            except Exception as exc:  # a broken listener must never break the user's program
                self._unsubscribe(subscription)
                warnings.warn(
                    f"tfnp_inspect: listener {subscription.listener!r} raised {exc!r} and was removed",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return invocation

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

    def _evict_oldest(self) -> None:
        old = self._buffer.popleft()
        self._dropped += 1
        if self.options.capture == "full":
            self._captured_bytes -= old.captured_bytes

    # -- reading ---------------------------------------------------------------------------
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._buffer)

    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations)

    def hints(self) -> list[Hint]:
        return [h for inv in self.invocations() for h in inv.hints]

    def stats(self) -> TraceStats:
        with self._lock:
            return TraceStats({name: s.snapshot() for name, s in self._stats.items()})

    def find(self, seq: int) -> Invocation | None:
        with self._lock:
            for inv in reversed(self._buffer):
                if inv.seq == seq:
                    return inv
        return None

    @property
    def total(self) -> int:
        return self._total

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def captured_bytes(self) -> int:
        return self._captured_bytes

    @property
    def payloads_dropped(self) -> int:
        """Captured payloads refused because the byte budget was full."""
        return self._payloads_dropped

    def clear(self) -> None:
        self._check_writable()
        with self._lock:
            self._buffer.clear()
            self._violations.clear()
            self._stats.clear()
            self._total = self._dropped = self._captured_bytes = self._payloads_dropped = 0

    # -- listeners ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Subscription:
        """Call ``listener(invocation)`` after every append, from whichever thread appended."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__}")
        subscription = Subscription(self, listener)
        with self._lock:
            self._listeners = self._listeners + (subscription,)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._listeners = tuple(s for s in self._listeners if s is not subscription)

    # -- loading ------------------------------------------------------------------------------
    def load_records(
        self, invocations: list[Invocation], violations: list[Violation],
        stats: dict[str, FunctionStats], total: int, dropped: int,
    ) -> None:
        """Fill a fresh recorder from an exported trace, then freeze it."""
        with self._lock:
            self._buffer.extend(invocations)
            self._violations.extend(violations)
            self._stats.update(stats)
            self._total, self._dropped = total, dropped
            self._captured_bytes = sum(inv.captured_bytes for inv in invocations)
        self.read_only = True

    def _check_writable(self) -> None:
        if self.read_only:
            raise RuntimeError("this trace was loaded from disk and is read-only")

    def __repr__(self) -> str:
        return (
            f"<Recorder {len(self._buffer)}/{self.capacity} invocations, total={self._total}, "
            f"dropped={self._dropped}, capture={self.options.capture!r}>"
        )


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
