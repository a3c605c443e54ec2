"""What the aggregates say beyond single calls, as the views word it: shapes, pipeline, retracing.

Pure data (titles, headers, rows): :mod:`.render` draws these sections as text and HTML for
the ``%%npfunc`` summary, ``%npfunc stats`` and ``%npfunc shapes``, and the panel's projection
(:mod:`.panel.state`) reads the same wording.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..checks.shapes import unknown_shape_hint
from ..model.pipeline import Concurrency
from ..model.shapes import PositionShapes, SiteShapes, dims_text, more_specific, signature, suggested_dims
from ..recording.diagnosis import Diagnosis
from .format import human_duration, plural

#: Distinct shapes listed per position in ``%npfunc shapes`` (the rest are counted).
LISTED_SHAPES = 4


class Section(NamedTuple):
    """One part of a report: a titled table (or, as text, the ``lines`` when given)."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[Any]]
    numeric: tuple[int, ...] = ()
    note: str = ""
    lines: list[str] | None = None  # the text form, when it is a list rather than a table


# -- wording shared with the panel ------------------------------------------------------------------


def threads_text(figures: Concurrency) -> str:
    """``2 (Dummy-3, Dummy-4)``: how many threads called the function, the first few named."""
    names = sorted(set(figures.threads.values()))
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 or figures.more_threads else "")
    return f"{figures.thread_count} ({shown})" if shown else str(figures.thread_count)


def parallel_work_text(work: float | None) -> str:
    """How many calls' worth of work progressed at once (``–`` when unknown)."""
    return "–" if work is None else f"{work:.2f}"


def share_text(share: float) -> str:
    return f"{share:.0%}"


def build_text(build: Any) -> str:
    """``scale at train.py:12: 12 ops, built in step``."""
    where = f" at {build.call_site}" if build.call_site else ""
    graphs = f", built in {', '.join(build.functions)}" if build.functions else ""
    return f"{build.func_name}{where}: {plural(build.ops, 'op')}{graphs}"


def registry_text(registry_size: int | None) -> str:
    return "" if registry_size is None else f"TensorFlow's PyFunc registry holds {plural(registry_size, 'function')}"


def retraced_builds(diagnosis: Diagnosis) -> list[Any]:
    """Call sites built into more than one op (retraced), most built first."""
    return [b for b in diagnosis.builds if b.ops > 1]


# -- sections -------------------------------------------------------------------------------------------

PIPELINE_HEADERS = (
    "function", "calls", "threads", "in flight (mean)", "in flight (max)", "parallel work", "busy", "time share",
)
BUILD_HEADERS = ("function", "call site", "ops", "built in")
SHAPES_HEADERS = ("function", "call site", "mode", "output", "returned", "shapes seen", "static shape", "declare")


def pipeline_row(figures: Concurrency, diagnosis: Diagnosis) -> list[Any]:
    return [
        figures.func_name,
        figures.calls,
        threads_text(figures),
        f"{figures.mean_in_flight:.2f}",
        figures.max_in_flight,
        parallel_work_text(diagnosis.parallel_work(figures)),
        human_duration(figures.busy_ns),
        share_text(diagnosis.time_share(figures)),
    ]


def sections(diagnosis: Diagnosis) -> list[Section]:
    """Signatures, the pipeline table and the retraced call sites (the empty ones left out)."""
    found = []
    if diagnosis.shapes:
        lines = [signature(site) for site in diagnosis.shapes]
        found.append(Section(
            "shapes (per op: inputs -> outputs; None: a dimension that varied)", ("signature",),
            [[line] for line in lines], lines=lines,
        ))
    if diagnosis.pipeline:
        found.append(Section(
            "pipeline (calls running at once, from the recorded intervals; parallel work: calls x their "
            "first-quartile duration / busy time, about 1 when calls take turns on the GIL)", PIPELINE_HEADERS,
            [pipeline_row(figures, diagnosis) for figures in diagnosis.pipeline], (1, 3, 4, 5, 6, 7),
        ))
    builds = retraced_builds(diagnosis)
    if builds:
        found.append(Section(
            "ops built per call site (a tf.function traced again builds its numpy_function again)",
            BUILD_HEADERS, [[b.func_name, b.call_site or "–", b.ops, ", ".join(b.functions) or "–"] for b in builds],
            (2,), registry_text(diagnosis.registry_size), lines=[build_text(b) for b in builds],
        ))
    return found


def _seen(position: PositionShapes) -> str:
    """``[224,224,3] ×4,990, [224,224,4] ×10``: the most frequent shapes with their counts."""
    ranked = sorted(position.distinct.items(), key=lambda item: -item[1])
    listed = ", ".join(f"{dims_text(shape)} ×{n:,}" for shape, n in ranked[:LISTED_SHAPES])
    rest = sum(n for _, n in ranked[LISTED_SHAPES:]) + position.others
    return f"{listed}, {rest:,} other" if rest else listed


def _declare(site: SiteShapes, index: int, position: PositionShapes, advised: bool) -> str:
    """The set_shape call the ``unknown-shape`` hint suggests for this output ('' for none)."""
    static = site.static_output(index)
    if not advised or not more_specific(static, position):
        return ""
    return f"set_shape({dims_text(suggested_dims(static, position), spaced=True)})"


def shapes_section(diagnosis: Diagnosis) -> Section:
    """``%npfunc shapes``: per op and output, what calls returned, what TF knows, what to declare."""
    rows: list[list[Any]] = []
    for site in diagnosis.shapes:
        advised = unknown_shape_hint(site) is not None
        for index, position in enumerate(site.outputs):
            static = site.static_output(index)
            rows.append([
                site.func_name, site.call_site or "–", site.mode, f"output {index}", position.label,
                _seen(position), "unknown" if static is None else dims_text(static),
                _declare(site, index, position, advised),
            ])
    return Section("outputs: what the calls returned and what TensorFlow knows statically", SHAPES_HEADERS, rows)


__all__ = [
    "BUILD_HEADERS",
    "PIPELINE_HEADERS",
    "SHAPES_HEADERS",
    "Section",
    "build_text",
    "parallel_work_text",
    "pipeline_row",
    "registry_text",
    "retraced_builds",
    "sections",
    "shapes_section",
    "share_text",
    "threads_text",
]
