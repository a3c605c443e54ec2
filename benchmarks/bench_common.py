"""What every benchmark section shares: the result row, paired timing, RSS and unit formatting.

Each section measures the instrumented variant and its baseline side by side in one process
(alternating, best of several repetitions, so that both see the same machine state) and
returns :class:`Row` objects; ``run.py`` prints them as one table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfnp_inspect.model.options import Options

MIB = 1 << 20

#: What ``install()`` does when given no options, spelled out: ``install(**options)`` keeps
#: the options of the previous call for any option it is not given (a mode that sets one must
#: not leak into the next), so every option is given, from Options' own defaults.
DEFAULT_OPTIONS: dict[str, Any] = {option.name: getattr(Options(), option.name) for option in fields(Options)}


@dataclass
class Row:
    """One line of the results table: a figure, its baseline, their ratio and the goal."""

    section: str
    case: str
    measured: str  # the instrumented figure, formatted with its unit
    baseline: str  # what it is compared with, formatted with its unit
    ratio: float | None
    cpu_ratio: float | None = None  # the same ratio in process CPU time, where it applies
    goal: str = ""
    met: bool | None = None  # None: no goal for this row
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers for results.json

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def skipped(section: str, case: str, reason: str) -> Row:
    """A row that could not be measured, kept in the table with the reason."""
    return Row(section, case, "-", "-", None, note=f"skipped: {reason}")


@dataclass
class Timing:
    """One timed run: wall seconds and this process's CPU seconds (all threads)."""

    wall: float
    cpu: float


def timed_run(action: Callable[[], Any]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


@dataclass
class Pair:
    """Best (minimum) wall and CPU time of an instrumented run and of its bare baseline.

    Wall time is what users see; CPU time is steadier on a machine shared with other
    processes (they stretch wall time, not this process's CPU time).
    """

    instrumented: Timing = field(default_factory=lambda: Timing(float("inf"), float("inf")))
    bare: Timing = field(default_factory=lambda: Timing(float("inf"), float("inf")))

    def add(self, instrumented: Timing, bare: Timing) -> None:
        self.instrumented = Timing(
            min(self.instrumented.wall, instrumented.wall), min(self.instrumented.cpu, instrumented.cpu)
        )
        self.bare = Timing(min(self.bare.wall, bare.wall), min(self.bare.cpu, bare.cpu))

    @property
    def ratio(self) -> float:
        return self.instrumented.wall / self.bare.wall

    @property
    def cpu_ratio(self) -> float:
        return self.instrumented.cpu / self.bare.cpu


def interleaved(
    runs: dict[Any, tuple[Callable[[], Timing], Callable[[], Timing]]], repetitions: int,
) -> dict[Any, Pair]:
    """Time every (instrumented, bare) pair once per round, ``repetitions`` rounds.

    Each callable does one run (with any set-up kept outside its timed part) and returns its
    :class:`Timing`. Rounds go over all pairs, so each variant's repetitions are spread over
    the whole measurement: a burst of load from another process spoils a few runs of many
    variants, not every run of one.
    """
    best = {key: Pair() for key in runs}
    for _ in range(repetitions):
        for key, (instrumented, bare) in runs.items():
            best[key].add(instrumented(), bare())
    return best


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux), else the peak from getrusage."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def duration(seconds: float) -> str:
    """A duration with a unit that keeps three significant digits readable."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e9:.0f} ns"


def mebibytes(nbytes: float) -> str:
    return f"{nbytes / MIB:+.1f} MiB" if nbytes < 0 else f"{nbytes / MIB:.1f} MiB"


def size_label(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale} {unit}"
    return f"{nbytes} B"
