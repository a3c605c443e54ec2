"""Check kinds switched off globally or per function (``npi.disable_check``), process-wide."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ..model.naming import function_name
from ..model.records import VIOLATION_KINDS


class CheckSwitches:
    """Kinds switched off globally or for one function (by name), process-wide."""

    # slots: the compiled core reads `version` on every call at its offset (_probe_core.slot_read)
    __slots__ = ("_lock", "off_globally", "off_per_function", "version")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change; probes re-read the switches when it moves
        self.off_globally: frozenset[str] = frozenset()
        self.off_per_function: dict[str, frozenset[str]] = {}

    def disable(self, kinds: Iterable[str], func: Any = None) -> None:
        self._update(kinds, func, add=True)

    def enable(self, kinds: Iterable[str], func: Any = None) -> None:
        self._update(kinds, func, add=False)

    def _update(self, kinds: Iterable[str], func: Any, add: bool) -> None:
        kinds = frozenset(_validate_kinds(kinds))
        name = None if func is None else _function_key(func)
        with self._lock:
            if name is None:
                current = self.off_globally
                self.off_globally = current | kinds if add else current - kinds
            else:
                current = self.off_per_function.get(name, frozenset())
                updated = current | kinds if add else current - kinds
                per_function = {**self.off_per_function, name: updated}
                if not updated:
                    del per_function[name]
                self.off_per_function = per_function
            self.version += 1

    def active(self, requested: frozenset[str], func_name: str) -> frozenset[str]:
        return requested - self.off_globally - self.off_per_function.get(func_name, frozenset())

    def reset(self) -> None:
        with self._lock:
            self.off_globally = frozenset()
            self.off_per_function = {}
            self.version += 1


def _validate_kinds(kinds: Iterable[str] | str) -> list[str]:
    known = ", ".join(VIOLATION_KINDS)
    if isinstance(kinds, str):
        kinds = [kinds]
    elif isinstance(kinds, (bytes, bytearray)) or not isinstance(kinds, Iterable):
        raise TypeError(
            f"a check kind must be a str or a list of str, not {type(kinds).__name__}; known kinds: {known}"
        )
    kinds = list(kinds)
    for kind in kinds:
        if not isinstance(kind, str):
            raise TypeError(f"a check kind must be a str, not {type(kind).__name__} ({kind!r}); known kinds: {known}")
        if kind not in VIOLATION_KINDS:
            raise ValueError(f"unknown check kind {kind!r}; known kinds: {known}")
    return kinds


def _function_key(func: Any) -> str:
    """The name checks are switched by: ``func`` itself when a str, else the callable's name."""
    if isinstance(func, str):
        return func
    if not callable(func):
        raise TypeError(
            f"func must be a callable or a function name (str), not {type(func).__name__} ({func!r:.60})"
        )
    return function_name(func)


switches = CheckSwitches()
