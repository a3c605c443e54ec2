"""Turning recording on and off: ``trace()``, ``install()``, ``recorder()``, and live delivery.

While any recorder is active (a ``trace()`` block or ``install()``), ``tf.numpy_function`` and
the PyFunc registry are patched; every call made anywhere in the process in that time goes to
every active recorder. TensorFlow runs graph-mode calls on its own threads, so a call cannot be
attributed to the Python thread that started the graph: the window of activity is temporal.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .options import CAPTURE_LEVELS
from .records import Invocation, Violation
from .recorder import Recorder


class ViolationWarning(UserWarning):
    """Issued the first time each function breaks each contract (filter it with ``warnings``)."""


class ViolationError(RuntimeError):
    """Raised from a call that broke a contract, in strict mode (TF maps it to UnknownError)."""

    def __init__(self, violations: tuple[Violation, ...]) -> None:
        self.violations = violations
        super().__init__("\n".join(f"[{v.kind}] {v.message}" for v in violations))


@dataclass(frozen=True)
class Plan:
    """The union of what the active recorders want; read once per call by the probes."""

    sinks: tuple[Recorder, ...]
    exact_sinks: tuple[Recorder, ...]  # options equal the union: records go in as they are
    fitted_sinks: tuple[Recorder, ...]  # the others: records are fitted to their options
    capture: int  # index into CAPTURE_LEVELS
    checks: frozenset[str]
    strict: frozenset[str]  # kinds for which some active recorder is strict

    @classmethod
    def of(cls, sinks: tuple[Recorder, ...]) -> Plan | None:
        if not sinks:
            return None
        capture = max(s.options.capture_level for s in sinks)
        checks = frozenset().union(*(s.options.checks for s in sinks))
        exact = tuple(s for s in sinks if s.options.capture_level == capture and s.options.checks == checks)
        return cls(
            sinks,
            exact,
            tuple(s for s in sinks if s not in exact),
            capture,
            checks,
            frozenset().union(*(s.options.checks for s in sinks if s.options.strict)),
        )

    def wants_full_capture_of(self, nbytes: int) -> bool:
        return any(
            s.options.capture == "full" and s.has_budget_for(nbytes) for s in self.sinks
        )


_lock = threading.RLock()
#: The active plan, or None: the one global the hot path reads.
active: Plan | None = None
_sinks: tuple[Recorder, ...] = ()
_process_recorder: Recorder | None = None
_installed = False
_warned: set[tuple[str, str]] = set()


def _set_sinks(sinks: tuple[Recorder, ...]) -> None:
    global active, _sinks
    from . import tf_hooks, wrapper  # the patch needs TF; taken only when tracing starts

    was_active = bool(_sinks)
    _sinks = sinks
    if sinks and not was_active:
        tf_hooks.patch(wrapper.patched_numpy_function, wrapper.observe_foreign)
    active = Plan.of(sinks)
    if not sinks and was_active:
        tf_hooks.unpatch()


def activate(rec: Recorder) -> None:
    with _lock:
        if rec not in _sinks:
            _warned.clear()
            _set_sinks(_sinks + (rec,))


def deactivate(rec: Recorder) -> None:
    with _lock:
        if rec in _sinks:
            _set_sinks(tuple(s for s in _sinks if s is not rec))


def refresh() -> None:
    """Recompute the plan after a recorder's options changed."""
    global active
    with _lock:
        active = Plan.of(_sinks)


def recorder() -> Recorder:
    """The process-wide recorder that ``install()`` and ``%npfunc on`` feed."""
    global _process_recorder
    with _lock:
        if _process_recorder is None:
            _process_recorder = Recorder()
        return _process_recorder


def install(**options: Any) -> Recorder:
    """Record every ``numpy_function`` call in the process until :func:`uninstall`."""
    global _installed
    rec = recorder()
    with _lock:
        if options:
            rec.configure(**options)
        activate(rec)
        refresh()
        _installed = True
    return rec


def uninstall() -> None:
    """Stop process-wide recording (what was recorded stays in ``recorder()``)."""
    global _installed
    with _lock:
        if _process_recorder is not None:
            deactivate(_process_recorder)
        _installed = False


def is_installed() -> bool:
    return _installed


def is_active() -> bool:
    return active is not None


@contextmanager
def trace(**options: Any) -> Iterator[Any]:
    """Record the calls made while the block runs into a fresh :class:`~tfnp_inspect.Trace`."""
    from .traces import Trace

    rec = Recorder(**options)
    activate(rec)
    try:
        yield Trace(rec)
    finally:
        deactivate(rec)


def deliver(plan: Plan, invocation: Invocation) -> None:
    """Hand a finished invocation to every active recorder, warn, and enforce strict mode."""
    row = invocation.row()
    for sink in plan.exact_sinks:
        sink.store(row)
    deliver_rest(plan, invocation)


def deliver_rest(plan: Plan, invocation: Invocation) -> None:
    """What :func:`deliver` does after the exact sinks (the hot path stores into those itself)."""
    for sink in plan.fitted_sinks:
        sink.append(invocation)
    violations = invocation.violations
    if not violations:
        return
    for violation in violations:
        key = (violation.func_name, violation.kind)
        if key in _warned:
            continue
        _warned.add(key)
        _warn(violation)
    strict = tuple(v for v in violations if v.kind in plan.strict)
    if strict:
        raise ViolationError(strict)


def _warn(violation: Violation) -> None:
    filename, lineno = "<unknown>", 0
    if violation.call_site:
        filename, _, line = violation.call_site.rpartition(":")
        lineno = int(line) if line.isdigit() else 0
    warnings.warn_explicit(
        f"[{violation.kind}] {violation.message}",
        ViolationWarning,
        filename,
        lineno,
        module="tfnp_inspect",
    )


__all__ = [
    "CAPTURE_LEVELS", "Plan", "ViolationError", "ViolationWarning", "install", "recorder",
    "trace", "uninstall",
]
