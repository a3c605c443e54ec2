"""Retracing: one ``numpy_function`` call site built into many graphs (TF's registry grows).

Every graph that contains a PyFunc op pins its function and closure in TensorFlow's registry;
a ``tf.function`` retraced for every new Python argument builds the op again each time. The
counts come from the recording layer (ops built per function and call site since import).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..model.records import Hint
from . import messages

#: Ops built from one call site from which the hint is given.
RETRACED_OPS = 10


class BuildFigures(Protocol):
    """How often one call site was built (``recording.wrapper.BuildCount``)."""

    @property
    def func_name(self) -> str: ...
    @property
    def call_site(self) -> str | None: ...
    @property
    def ops(self) -> int: ...
    @property
    def functions(self) -> tuple[str, ...]: ...


def retraced_hint(build: BuildFigures, registry_size: int | None, seq: int = 0) -> Hint | None:
    if build.ops < RETRACED_OPS:
        return None
    message = messages.retraced_message(build.func_name, build.call_site, build.ops, build.functions, registry_size)
    return Hint("retraced", build.func_name, seq, message)


def retraced_hints(
    builds: Iterable[BuildFigures], registry_size: int | None, first_seqs: dict[str, int] | None = None,
) -> list[Hint]:
    seqs = first_seqs or {}
    hints = (retraced_hint(b, registry_size, seqs.get(b.func_name, 0)) for b in builds)
    return [hint for hint in hints if hint is not None]


__all__ = ["RETRACED_OPS", "BuildFigures", "retraced_hint", "retraced_hints"]
