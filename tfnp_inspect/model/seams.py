"""The one seam through which the core reaches the layers above it.

Records, stats, traces and replay results show themselves in Jupyter (``_repr_html_``) and a
trace writes itself to files (``trace.export``), but the core must not import rendering or file
formats. The upper layers provide themselves here instead: the package's ``__init__`` registers
a loader for each layer, and the core asks for a layer by name when somebody looks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_loaders: dict[str, Callable[[], Any]] = {}


def provide(layer: str, loader: Callable[[], Any]) -> None:
    """Register how to import ``layer`` (``'views'``: rendering; ``'io'``: file formats)."""
    _loaders[layer] = loader


def layer(name: str) -> Any:
    """The module that implements ``name``; imported on first use by its loader."""
    try:
        loader = _loaders[name]
    except KeyError:
        raise RuntimeError(f"tfnp_inspect's {name!r} layer is not registered") from None
    return loader()
