"""tfnp_inspect: record, check and inspect every ``tf.numpy_function`` call.

Core API (no IPython or widgets needed)::

    import tfnp_inspect as npi
    with npi.trace() as t:          # or npi.install() for the whole process
        run_my_pipeline()
    t.violations, t.stats()

Jupyter: ``%load_ext tfnp_inspect``, then ``%%npfunc`` and ``%npfunc``.
"""

from __future__ import annotations

from typing import Any

from .aggregates import FunctionStats, TraceStats
from .checks import function_name
from .checks import switches as _switches
from .options import Options
from .records import (
    HINT_KINDS,
    VIOLATION_KINDS,
    ArrayInfo,
    ArrayStats,
    CallSite,
    ErrorInfo,
    Hint,
    Invocation,
    Violation,
    set_task_label,
)
from .recorder import Recorder, Subscription
from .session import (
    ViolationError,
    ViolationWarning,
    install,
    is_active,
    is_installed,
    recorder,
    trace,
    uninstall,
)
from .traces import Trace
from .wrapper import numpy_function

__version__ = "0.1.0"


def disable_check(kind: str | list[str], func: Any = None) -> None:
    """Switch a check kind off for every function, or only for ``func`` (a callable or name)."""
    _switches.disable(kind, func)


def enable_check(kind: str | list[str], func: Any = None) -> None:
    """Undo :func:`disable_check`."""
    _switches.enable(kind, func)


def __getattr__(name: str) -> Any:
    # UI layers and file formats are imported on first use: the core stays light.
    if name == "TracePanel":
        from .panel import TracePanel

        return TracePanel
    if name in ("load", "TraceFileError"):
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module 'tfnp_inspect' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tfnp_inspect``: register the ``%npfunc`` / ``%%npfunc`` magics."""
    from .magics import load_extension

    load_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_extension

    unload_extension(ipython)


__all__ = [
    "HINT_KINDS", "VIOLATION_KINDS", "ArrayInfo", "ArrayStats", "CallSite", "ErrorInfo",
    "FunctionStats", "Hint", "Invocation", "Options", "Recorder", "Subscription", "Trace",
    "TraceStats", "Violation", "ViolationError", "ViolationWarning", "disable_check",
    "enable_check", "function_name", "install", "is_active", "is_installed", "load",
    "numpy_function", "recorder", "set_task_label", "trace", "uninstall", "TracePanel",
    "TraceFileError",
]
