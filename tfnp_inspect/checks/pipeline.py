"""Pipeline diagnosis: functions that several threads called but that ran one call at a time.

Derived from the per-function :class:`~tfnp_inspect.model.pipeline.Concurrency` figures and the
duration statistics (the recorded intervals only: no clock is read per call for this). Two
figures say whether calls ran in parallel:

- *in flight*: how many calls' intervals overlapped, on average while any ran;
- *parallel work*: the calls times their typical duration (the first quartile: a call that did
  not wait for the GIL) over the time any call ran. A call preempted while it holds the GIL
  (Python switches threads every 5 ms, and other Python threads such as a Keras training loop
  ask for it too) overlaps another on paper without progressing: this figure stays near 1 for
  calls that take turns, and approaches the thread count for calls that really run in parallel.

A function whose Python code holds the GIL gets the ``serialized`` hint when its calls barely
overlapped, or when they overlapped a little (preempted calls) but their work progressed less than
one call at a time, and it kept the pipeline busy; one whose time goes to numpy work that releases
the GIL, to I/O or to sleeping overlaps, and gets none. Calls that release the GIL on a machine
with no free core also progress about one at a time, but overlap in wall time nearly completely:
that is why the work figure counts only below :data:`PREEMPTED_IN_FLIGHT`. What intervals cannot tell:
GIL-bound calls so long that every one of them is preempted look parallel by both figures (a
thread CPU clock read per call would tell; it is not taken, to keep the per-call cost as it is).
A sequential map or a ``tf.function`` loop also runs on several of TensorFlow's threads: it gets
the hint only when its calls kept the function busy most of the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..model.pipeline import Concurrency
from ..model.records import Hint
from . import messages

#: Calls needed before the overlap says anything.
MIN_CALLS = 16
#: Calls running at once (either figure) below which they "barely overlapped".
SERIALIZED_IN_FLIGHT = 1.15
#: Share of its own span (first start to last end) a function must have been running: below it
#: the pipeline was not waiting on it (a slow consumer, a loop doing other work between calls).
SERIALIZED_BUSY_SHARE = 0.4
#: The quantile of the durations taken as a call's own cost (one that did not wait).
TYPICAL_QUANTILE = 0.25
#: Calls in flight up to which overlap may come from preempted GIL-bound calls (their work then
#: progresses below one call at a time); calls starved of a free core overlap nearly completely.
PREEMPTED_IN_FLIGHT = 1.5
#: Parallel work below which calls that overlapped a little were preempted rather than parallel.
PREEMPTED_WORK = 1.0


def parallel_work(figures: Concurrency, typical_ns: float | None) -> float | None:
    """Calls times their typical duration over the time any call ran (None: unknown)."""
    if typical_ns is None or typical_ns != typical_ns or not figures.busy_ns:  # NaN: no durations
        return None
    return figures.calls * typical_ns / figures.busy_ns


def is_serialized(figures: Concurrency, typical_ns: float | None = None) -> bool:
    if figures.thread_count < 2 or figures.calls < MIN_CALLS or figures.busy_share < SERIALIZED_BUSY_SHARE:
        return False
    if figures.mean_in_flight < SERIALIZED_IN_FLIGHT:
        return True
    work = parallel_work(figures, typical_ns)
    return work is not None and work < PREEMPTED_WORK and figures.mean_in_flight < PREEMPTED_IN_FLIGHT


def serialized_hint(figures: Concurrency, first_seq: int = 0, typical_ns: float | None = None) -> Hint | None:
    """The ``serialized`` hint, or None where the calls ran in parallel (or too few threads or calls)."""
    if not is_serialized(figures, typical_ns):
        return None
    work = parallel_work(figures, typical_ns)
    message = messages.serialized_message(
        figures.func_name, figures.calls, figures.thread_count, figures.mean_in_flight,
        figures.mean_in_flight if work is None else work, figures.busy_share,
    )
    return Hint("serialized", figures.func_name, first_seq, message)


def serialized_hints(
    per_function: Iterable[Concurrency], first_seqs: Mapping[str, int] | None = None,
    typical_ns: Mapping[str, float] | None = None,
) -> list[Hint]:
    seqs, typical = first_seqs or {}, typical_ns or {}
    hints = (
        serialized_hint(figures, seqs.get(figures.func_name, 0), typical.get(figures.func_name))
        for figures in per_function
    )
    return [hint for hint in hints if hint is not None]


__all__ = [
    "MIN_CALLS", "PREEMPTED_IN_FLIGHT", "PREEMPTED_WORK", "SERIALIZED_BUSY_SHARE", "SERIALIZED_IN_FLIGHT",
    "TYPICAL_QUANTILE", "is_serialized",
    "parallel_work", "serialized_hint", "serialized_hints",
]
