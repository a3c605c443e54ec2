"""Turning recording on and off: ``trace()``, ``install()``, ``recorder()``, and live delivery.

While any recorder is active (a ``trace()`` block or ``install()``), ``tf.numpy_function`` and
the PyFunc registry are patched; every call made anywhere in the process in that time goes to
every active recorder. TensorFlow runs graph-mode calls on its own threads, so a call cannot be
attributed to the Python thread that started the graph: the window of activity is temporal.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import active
from .active import Plan
from .recorder import Recorder
from .trace import Trace

#: ``TFNP_INSPECT=off`` (or 0, false, no) switches everything off without editing code: no hook
#: is installed at import, and ``trace()``/``install()`` record nothing.
DISABLED = os.environ.get("TFNP_INSPECT", "").strip().lower() in {"off", "0", "false", "no"}

_lock = threading.RLock()
_sinks: tuple[Recorder, ...] = ()
_process_recorder: Recorder | None = None
_installed = False


def _set_sinks(sinks: tuple[Recorder, ...]) -> None:
    global _sinks
    from . import tf_hooks, wrapper  # the patch needs TF; taken only when tracing starts

    was_active = bool(_sinks)
    _sinks = sinks
    if sinks and not was_active:
        tf_hooks.patch(wrapper.numpy_function, wrapper.registry_call)
    active.plan = Plan.of(sinks)
    if not sinks and was_active:
        tf_hooks.unpatch()


def hook_tensorflow() -> None:
    """Keep the declaration of every PyFunc op built from now on (called by ``import tfnp_inspect``).

    Costs nothing per call: only graph construction goes through the hook, and TF is not imported
    by it (the patch waits for TensorFlow's own import).
    """
    if DISABLED:
        return
    from . import tf_hooks, wrapper

    tf_hooks.hook_construction(wrapper.on_build, wrapper.eager_call)


def activate(rec: Recorder) -> None:
    if DISABLED:
        return
    with _lock:
        if rec not in _sinks:
            active.warned.clear()
            _set_sinks((*_sinks, rec))


def deactivate(rec: Recorder) -> None:
    with _lock:
        if rec in _sinks:
            _set_sinks(tuple(s for s in _sinks if s is not rec))


def refresh() -> None:
    """Recompute the plan after a recorder's options changed."""
    with _lock:
        active.plan = Plan.of(_sinks)


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
    return active.plan is not None


@contextmanager
def trace(**options: Any) -> Iterator[Any]:
    """Record the calls made while the block runs into a fresh :class:`~tfnp_inspect.Trace`."""
    rec = Recorder(**options)
    activate(rec)
    try:
        yield Trace(rec)
    finally:
        deactivate(rec)


__all__ = ["install", "is_active", "is_installed", "recorder", "trace", "uninstall"]
