"""What a recorder's aggregates say beyond single calls: shape contracts, pipeline, retracing.

Derived when somebody reads it (``Trace.diagnosis()``, the summaries, the panel), never on
the hot path: the recorder folds its rows into per-op shapes and per-function overlaps in
batches, TF's registry is asked for the build counts, and the checks turn them into hints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from ..checks.pipeline import TYPICAL_QUANTILE, parallel_work, serialized_hints
from ..checks.retracing import retraced_hints
from ..checks.shapes import unknown_shape_hints
from ..model.pipeline import Concurrency, traced_span_ns
from ..model.records import Hint
from ..model.shapes import SiteShapes, signature
from ..model.stats import TraceStats
from . import wrapper


class Aggregates(Protocol):
    """What a diagnosis reads from a recorder."""

    read_only: bool
    loaded_builds: list[Any]
    loaded_registry_size: int | None

    def shapes(self) -> list[SiteShapes]: ...
    def pipeline(self) -> list[Concurrency]: ...
    def stats(self) -> TraceStats: ...


class Diagnosis(NamedTuple):
    """Everything derived from a recorder's aggregates, at one moment."""

    shapes: list[SiteShapes]  # per op: observed and static shapes
    pipeline: list[Concurrency]  # per function: how its calls overlapped
    span_ns: int  # wall time from the first call's start to the last call's end
    builds: list[Any]  # wrapper.BuildCount per call site of a recorded function
    registry_size: int | None  # functions in TF's PyFunc registry (None: unknown)
    hints: list[Hint]  # unknown-shape, serialized, retraced
    typical_ns: dict[str, float]  # per function: the first quartile of its durations

    def parallel_work(self, figures: Concurrency) -> float | None:
        """Calls times their typical duration over the time any ran (see checks.pipeline)."""
        return parallel_work(figures, self.typical_ns.get(figures.func_name))

    def time_share(self, figures: Concurrency) -> float:
        """Share of the traced wall time in which a call of the function was running."""
        return min(1.0, figures.busy_ns / self.span_ns) if self.span_ns else 0.0

    def signatures(self) -> list[str]:
        """One line per op: ``load_image(string[]) -> uint8[224,224,3]  (5,000 calls)``."""
        return [signature(site) for site in self.shapes]

    def signatures_of(self, func_name: str) -> list[str]:
        return [signature(site) for site in self.shapes if site.func_name == func_name]

    def pipeline_of(self, func_name: str) -> Concurrency | None:
        return next((p for p in self.pipeline if p.func_name == func_name), None)

    def filtered(self, include: Callable[[str], bool] | None) -> Diagnosis:
        """The part about the functions ``include`` accepts (all of it for None)."""
        if include is None:
            return self
        return self._replace(
            shapes=[s for s in self.shapes if include(s.func_name)],
            pipeline=[p for p in self.pipeline if include(p.func_name)],
            builds=[b for b in self.builds if include(b.func_name)],
            hints=[h for h in self.hints if include(h.func_name)],
        )


def diagnose(recorder: Aggregates) -> Diagnosis:
    shapes = recorder.shapes()
    pipeline = recorder.pipeline()
    if recorder.read_only:
        builds, registry_size = list(recorder.loaded_builds), recorder.loaded_registry_size
    else:
        # builds are counted per process since import: those of the call sites recorded here
        sites = {(s.func_name, s.call_site) for s in shapes}
        builds = [b for b in wrapper.build_counts() if (b.func_name, b.call_site) in sites]
        registry_size = wrapper.registry_size()
    first_seqs: dict[str, int] = {}
    for site in shapes:
        if site.first_seq and (site.func_name not in first_seqs or site.first_seq < first_seqs[site.func_name]):
            first_seqs[site.func_name] = site.first_seq
    typical = {name: stats.quantile(TYPICAL_QUANTILE) for name, stats in recorder.stats().items()}
    hints = (
        unknown_shape_hints(shapes)
        + serialized_hints(pipeline, first_seqs, typical)
        + retraced_hints(builds, registry_size, first_seqs)
    )
    return Diagnosis(shapes, pipeline, traced_span_ns(pipeline), builds, registry_size, hints, typical)


__all__ = ["Diagnosis", "diagnose"]
