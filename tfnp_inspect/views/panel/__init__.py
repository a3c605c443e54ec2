"""The live trace panel (anywidget): :mod:`.widget`, its live :mod:`.feed`, and the pure
:mod:`.state` it shows (importable without IPython, ipywidgets or anywidget)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .widget import TracePanel

__all__ = ["TracePanel"]


def __getattr__(name: str) -> Any:
    # The widget needs anywidget: imported when asked for, so that .state and .feed need not.
    if name == "TracePanel":
        try:
            from .widget import TracePanel
        except ImportError as exc:
            missing = exc.name or "a dependency"
            raise ImportError(
                f"the trace panel needs ipywidgets and anywidget ({missing} is not installed): "
                "pip install 'tfnp-inspect[jupyter]'",
                name=exc.name,
            ) from exc
        return TracePanel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
