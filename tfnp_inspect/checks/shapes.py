"""The shape contract's advice: outputs whose static shape knows less than every call showed.

The ``shape-mismatch`` violation is found per call by the probe (a returned shape that contradicts
the static one); this module derives the ``unknown-shape`` hint from the per-op aggregates
(:class:`~tfnp_inspect.model.shapes.SiteShapes`), off the hot path, whenever somebody reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model.records import Hint
from ..model.shapes import AGREEING_CALLS, SiteShapes, dims_text, more_specific, suggested_dims
from . import messages

#: Origins whose static shapes are the user's to declare: ops built before import have no known
#: static shapes, and Dataset.from_generator declares its output_signature itself.
DECLARED_ORIGIN = "wrapper"


def unknown_shape_hint(site: SiteShapes) -> Hint | None:
    """The ``unknown-shape`` hint for one graph-mode op, once :data:`AGREEING_CALLS` calls agree.

    Its message names the exact ``set_shape`` line (constant dimensions filled in, varying ones
    None) and follows later calls: a call that disagrees revises the suggested shape.
    """
    succeeded = site.calls - site.errors
    if site.mode != "graph" or site.origin != DECLARED_ORIGIN or succeeded < AGREEING_CALLS:
        return None
    if site.output_count_varies:
        return None
    fixes: list[tuple[int, str, str, str]] = []
    for index, observed in enumerate(site.outputs):
        static = site.static_output(index)
        if not more_specific(static, observed):
            continue
        suggested = suggested_dims(static, observed)
        known = "an unknown shape" if static is None else dims_text(static, spaced=True)
        fixes.append((index, observed.label, known, dims_text(suggested, spaced=True)))
    if not fixes:
        return None
    message = messages.unknown_shape_message(site.func_name, site.call_site, succeeded, len(site.outputs), fixes)
    return Hint("unknown-shape", site.func_name, site.settled_seq, message)


def unknown_shape_hints(sites: Iterable[SiteShapes]) -> list[Hint]:
    return [hint for hint in map(unknown_shape_hint, sites) if hint is not None]


__all__ = ["unknown_shape_hint", "unknown_shape_hints"]
