"""Validated recording options shared by ``trace()``, ``install()`` and the magics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, cast

from .records import VIOLATION_KINDS

CAPTURE_LEVELS: tuple[str, ...] = ("none", "summary", "full")
#: 'sampled': arrays of 64 KiB and more are hashed whole on each op's first calls and on one call
#: in 16 after that, by sampled blocks on the others; 'every-call': every byte of every call.
BYTE_CHECKS: tuple[str, ...] = ("sampled", "every-call")
DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_CAPTURE_BYTES = 64 << 20


@dataclass(frozen=True)
class Options:
    """How much to record and which checks to run.

    capacity: invocations kept in the ring buffer (oldest evicted first).
    capture: 'none' (metadata and fingerprints), 'summary' (plus a small sample per numeric
        array for stats; the default) or 'full' (plus a copy of every input and output, for
        replay and post-mortem, within ``max_capture_bytes``).
    checks: the violation kinds to look for (all by default).
    strict: raise :class:`~tfnp_inspect.ViolationError` from the call that broke a contract.
    byte_checks: 'sampled' (default: systematic bugs are caught on every call at a bounded cost
        per call) or 'every-call' (every byte of every call, for bugs that strike once in a while).
    """

    capacity: int = DEFAULT_CAPACITY
    capture: str = "summary"
    max_capture_bytes: int = DEFAULT_MAX_CAPTURE_BYTES
    checks: frozenset[str] = frozenset(VIOLATION_KINDS)
    strict: bool = False
    byte_checks: str = "sampled"

    @classmethod
    def from_kwargs(cls, base: Options | None = None, **kwargs: Any) -> Options:
        """Build options from keyword arguments, naming any bad one and what is allowed."""
        known = {f.name for f in fields(cls)}
        for name in kwargs:
            if name not in known:
                raise TypeError(
                    f"unknown option {name!r}; allowed options: {', '.join(sorted(known))}"
                )
        values = {}
        for name, value in kwargs.items():
            values[name] = _VALIDATORS[name](value)
        return replace(base or cls(), **values)

    @property
    def capture_level(self) -> int:
        return CAPTURE_LEVELS.index(self.capture)


def _positive_int(name: str, minimum: int) -> Any:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"option {name!r} must be an int, not {type(value).__name__}")
        if value < minimum:
            raise ValueError(f"option {name!r} must be >= {minimum}, got {value}")
        return value

    return validate


def _capture(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"option 'capture' must be a str, not {type(value).__name__}")
    if value not in CAPTURE_LEVELS:
        raise ValueError(
            f"option 'capture' must be one of {', '.join(map(repr, CAPTURE_LEVELS))}; got {value!r}"
        )
    return value


def parse_checks(value: Any) -> frozenset[str]:
    """Accept None/'all', 'none', a comma-separated string or an iterable of kind names."""
    if value is None:
        return frozenset(VIOLATION_KINDS)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "all":
            return frozenset(VIOLATION_KINDS)
        if lowered in ("none", ""):
            return frozenset()
        items: Iterable[Any] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, Iterable):
        items = list(cast("Iterable[Any]", value))
    else:
        raise TypeError(
            "option 'checks' must be None, 'all', 'none', a comma-separated str or an iterable "
            f"of kinds, not {type(value).__name__}"
        )
    kinds: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"option 'checks' holds {item!r}; check kinds are str")
        if item not in VIOLATION_KINDS:
            raise ValueError(
                f"option 'checks' has unknown kind {item!r}; known kinds: {', '.join(VIOLATION_KINDS)}"
            )
        kinds.add(item)
    return frozenset(kinds)


def _strict(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"option 'strict' must be a bool, not {type(value).__name__}")
    return value


def _byte_checks(value: Any) -> str:
    if value not in BYTE_CHECKS:
        raise ValueError(f"option 'byte_checks' must be one of {', '.join(map(repr, BYTE_CHECKS))}; got {value!r}")
    return value


_VALIDATORS = {
    "capacity": _positive_int("capacity", 1),
    "capture": _capture,
    "max_capture_bytes": _positive_int("max_capture_bytes", 0),
    "checks": parse_checks,
    "strict": _strict,
    "byte_checks": _byte_checks,
}
