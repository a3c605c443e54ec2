"""tfnp_inspect: record, check and inspect every ``tf.numpy_function`` call.

Core API (no IPython or widgets needed)::

    import tfnp_inspect as npi
    with npi.trace() as t:          # or npi.install() for the whole process
        run_my_pipeline()
    t.violations, t.stats()

Jupyter: ``%load_ext tfnp_inspect``, then ``%%npfunc`` and ``%npfunc``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .checks.switches import switches as _switches
from .model import seams as _seams
from .model.naming import function_name
from .model.options import Options
from .model.records import (
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
from .model.stats import FunctionStats, TraceStats
from .recording import session as _session_hooks
from .recording.active import ViolationError, ViolationWarning
from .recording.recorder import Recorder, Subscription
from .recording.replay import replay
from .recording.session import (
    install,
    is_active,
    is_installed,
    recorder,
    trace,
    uninstall,
)
from .recording.strict import raise_violations
from .recording.trace import Trace
from .recording.wrapper import numpy_function

# Every PyFunc op built from now on keeps its declaration (TFNP_INSPECT=off switches this off).
_session_hooks.hook_tensorflow()

# The layers above the core provide themselves to it (records render, traces export).
_seams.provide("views", lambda: import_module(".views.render", __name__))
_seams.provide("io", lambda: import_module(".io", __name__))

if TYPE_CHECKING:  # provided on first use by __getattr__ below
    from .io import TraceFileError, load
    from .views.panel import TracePanel


def disable_check(kind: str | list[str], func: Any = None) -> None:
    """Switch a check kind off for every function, or only for ``func`` (a callable or name).

    ``kind`` is one of :data:`VIOLATION_KINDS` or a list of them (ValueError for an unknown
    one, TypeError for anything but a str or a list of str); ``func`` is None, a callable or a
    function name as records show it (TypeError otherwise).
    """
    _switches.disable(kind, func)


def enable_check(kind: str | list[str], func: Any = None) -> None:
    """Undo :func:`disable_check`."""
    _switches.enable(kind, func)


def __getattr__(name: str) -> Any:
    # UI layers and file formats are imported on first use: the core stays light.
    if name == "TracePanel":
        from .views.panel import TracePanel

        return TracePanel
    if name in ("load", "TraceFileError"):
        return getattr(import_module(".io", __name__), name)
    raise AttributeError(f"module 'tfnp_inspect' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tfnp_inspect``: register the ``%npfunc`` / ``%%npfunc`` magics."""
    from .integrations.magics import load_extension

    load_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .integrations.magics import unload_extension

    unload_extension(ipython)


__all__ = [
    "HINT_KINDS",
    "VIOLATION_KINDS",
    "ArrayInfo",
    "ArrayStats",
    "CallSite",
    "ErrorInfo",
    "FunctionStats",
    "Hint",
    "Invocation",
    "Options",
    "Recorder",
    "Subscription",
    "Trace",
    "TraceFileError",
    "TracePanel",
    "TraceStats",
    "Violation",
    "ViolationError",
    "ViolationWarning",
    "disable_check",
    "enable_check",
    "function_name",
    "install",
    "is_active",
    "is_installed",
    "load",
    "numpy_function",
    "raise_violations",
    "recorder",
    "replay",
    "set_task_label",
    "trace",
    "uninstall",
]
