"""How the user's functions are named and located in every record and message."""

from __future__ import annotations

from typing import Any

_AUTOGRAPH_PREFIX = "outer_factory.<locals>.inner_factory.<locals>."


def function_name(func: Any) -> str:
    """Qualified name of a callable; the type's name for callables without ``__name__``.

    Functions defined inside code that autograph rewrote carry its factory in their qualified
    name; that part is noise to the user and is dropped.
    """
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(name, str):
        return name.replace(_AUTOGRAPH_PREFIX, "")
    inner = getattr(func, "func", None)  # functools.partial
    if inner is not None and callable(inner):
        return f"partial({function_name(inner)})"
    return type(func).__qualname__


def defined_at(func: Any) -> str | None:
    """file:line where a Python function (or the one it wraps) is defined."""
    for _ in range(8):
        code = getattr(func, "__code__", None)
        if code is not None:
            return f"{code.co_filename}:{code.co_firstlineno}"
        func = getattr(func, "__wrapped__", None) or getattr(func, "__func__", None) or getattr(func, "func", None)
        if func is None:
            return None
    return None
