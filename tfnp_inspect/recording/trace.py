"""``Trace``: the read side of a recorder, what ``trace()`` yields and ``load()`` returns."""

from __future__ import annotations

import os
from typing import Any

from ..model import seams
from ..model.records import Hint, Invocation, Violation
from ..model.stats import TraceStats
from .diagnosis import Diagnosis, diagnose
from .recorder import Recorder, Subscription


class Trace:
    """A view of recorded invocations: live while its ``trace()`` block runs, frozen after.

    Wraps a :class:`~tfnp_inspect.recorder.Recorder`; every reader (magics, panel, export)
    goes through here or through the recorder itself.
    """

    def __init__(self, recorder: Recorder, source: str | None = None) -> None:
        self.recorder = recorder
        self.source = source  # the file(s) a loaded trace came from

    @property
    def invocations(self) -> list[Invocation]:
        return self.recorder.invocations()

    @property
    def violations(self) -> list[Violation]:
        return self.recorder.violations()

    @property
    def hints(self) -> list[Hint]:
        """The kept calls' own hints, then those derived from every call (``unknown-shape``,
        ``serialized``, ``retraced``: see :meth:`diagnosis`)."""
        return self.recorder.hints() + self.diagnosis().hints

    def diagnosis(self) -> Diagnosis:
        """Beyond single calls: observed and static shapes per op, how each function's calls
        overlapped, ops built per call site, and the hints derived from them."""
        return diagnose(self.recorder)

    def stats(self) -> TraceStats:
        return self.recorder.stats()

    @property
    def total(self) -> int:
        return self.recorder.total

    @property
    def dropped(self) -> int:
        return self.recorder.dropped

    @property
    def capacity(self) -> int:
        return self.recorder.capacity

    @property
    def read_only(self) -> bool:
        return self.recorder.read_only

    def find(self, seq: int) -> Invocation | None:
        return self.recorder.find(seq)

    def subscribe(self, listener: Any) -> Subscription:
        return self.recorder.subscribe(listener)

    def __len__(self) -> int:
        return len(self.recorder.invocations())

    def __repr__(self) -> str:
        return seams.layer("views").trace_text(self)

    def __str__(self) -> str:
        """``print(trace)``: the summary ``%%npfunc`` shows, violations and hints included."""
        return seams.layer("views").trace_summary_text(self)

    def _repr_html_(self) -> str:
        return seams.layer("views").trace_html(self)

    def export(self, path: str | os.PathLike[str]) -> None:
        """Save for post-mortem: ``tfnp_inspect.load(path)`` gives this trace back, read-only.

        The file format is described in :mod:`tfnp_inspect.io.trace_file`.
        """
        seams.layer("io").export_trace(self, path)

    def to_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """Write Chrome trace-event JSON, to open in Perfetto UI next to a TensorFlow profile."""
        seams.layer("io").write_chrome_trace(self, path)

    def to_dataframe(self) -> Any:
        """A pandas DataFrame with one row per invocation (needs ``tfnp-inspect[pandas]``)."""
        return seams.layer("io").to_dataframe(self)
