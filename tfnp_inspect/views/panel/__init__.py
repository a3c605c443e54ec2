"""The live trace panel (anywidget): widget, live feed and the pure state it shows."""

from .widget import TracePanel

__all__ = ["TracePanel"]
