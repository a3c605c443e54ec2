"""The active plan: the one global the hot path reads, and where finished calls are delivered.

Kept apart from :mod:`.session` (which switches recording on and off and patches TensorFlow) so
that the probe imports only this small module.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..model.records import Invocation, Violation
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
    every_byte: bool = False  # some recorder wants byte_checks='every-call'

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
            any(s.options.byte_checks == "every-call" for s in sinks),
        )

    def wants_full_capture_of(self, nbytes: int) -> bool:
        return any(
            s.options.capture == "full" and s.has_budget_for(nbytes) for s in self.sinks
        )


#: The active plan, or None when nothing records.
plan: Plan | None = None
#: (function name, kind) pairs already warned about since the first recorder became active.
warned: set[tuple[str, str]] = set()


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
        if key in warned:
            continue
        warned.add(key)
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
