"""The compiled twin of the hot paths (``_probe_core.c``), when it was built and may be used.

``TFNP_INSPECT_CORE`` picks it: 'auto' (the default) takes it where it was built for this version
of the record layouts, 'python' never does (the pure-Python reference implementations run), and
'compiled' makes a missing or stale build an error instead of a fallback. The per-call core
(:mod:`.probe`) and the recorder's column reader (:mod:`.recorder`) both take it from here.
"""

from __future__ import annotations

import os
from types import ModuleType

from ..checks import messages
from ..model import columns, records

CORE_CHOICES = ("auto", "compiled", "python")


def _wanted() -> str:
    wanted = os.environ.get("TFNP_INSPECT_CORE", "auto")
    if wanted not in CORE_CHOICES:
        raise ValueError(messages.core_choice_message(wanted, CORE_CHOICES))
    return wanted


def stale(reason: str) -> None:
    """A build that cannot be used: an error where it was asked for, else the Python twins run."""
    if WANTED == "compiled":
        raise ImportError(messages.core_missing_message(reason))


def _load() -> ModuleType | None:
    if WANTED == "python":
        return None
    try:
        from . import _probe_core  # type: ignore[attr-defined]  # built by setup.py; optional
    except ImportError as exc:
        stale(str(exc))
        return None
    layouts = (records.CallRow._fields, records.RawArray._fields, columns.RowColumns._fields)
    if layouts != (_probe_core.ROW_FIELDS, _probe_core.ARRAY_FIELDS, _probe_core.COLUMN_FIELDS):
        stale("it was built for another version of the record layouts")
        return None
    return _probe_core


WANTED = _wanted()
#: The compiled module, or None where the pure-Python twins run.
compiled: ModuleType | None = _load()

__all__ = ["CORE_CHOICES", "WANTED", "compiled", "stale"]
