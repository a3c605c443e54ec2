"""What every benchmark section shares: the result row, paired timing, RSS and unit formatting.

Each section measures the instrumented variant and its baseline side by side in one process
(in paired rounds, see :class:`Paired`, so that both see the same machine state) and returns
:class:`Row` objects; ``run.py`` prints them as one table.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from math import comb
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfnp_inspect.model.options import Options

MIB = 1 << 20

#: What the Met column says. A paired row is judged by the 95% confidence interval of its median
#: (:func:`median_interval`), not by the median alone: "within noise" when the interval holds the
#: goal, so that a noisy round of the machine cannot pass or fail a goal by chance.
MET, NOT_MET, WITHIN_NOISE = "yes", "NO", "within noise"
CONFIDENCE = 0.95


def verdict(met: bool) -> str:
    """The Met column of a row measured without rounds (one figure against its goal)."""
    return MET if met else NOT_MET


def interval_verdict(interval: tuple[float, float], goal: float) -> str:
    """Met when the whole confidence interval is at or under the goal, not met when it is all
    above it, within noise when it holds the goal."""
    low, high = interval
    return MET if high <= goal else NOT_MET if low > goal else WITHIN_NOISE


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free confidence interval of the median: a pair of order statistics.

    The number B of values below the true median is binomial(n, 1/2) whatever the distribution,
    so cutting ``k`` values from each end keeps the median inside with probability
    1 - 2 P(B <= k); ``k`` is the largest cut that keeps that at ``confidence`` or more. The rounds'
    ratios are far from normal (a stall of the machine gives a long tail), hence no t-interval.
    """
    ordered = sorted(values)
    count = len(ordered)
    tail = (1 - confidence) / 2
    cut, at_most_next = 0, (1 + count) / 2 ** count  # P(B <= cut + 1)
    while cut < (count - 1) // 2 and at_most_next <= tail:
        cut += 1
        at_most_next += comb(count, cut + 1) / 2 ** count
    return ordered[cut], ordered[count - 1 - cut]

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
    met: str | None = None  # MET, NOT_MET or WITHIN_NOISE; None: no goal for this row
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
class Paired:
    """An instrumented variant and its bare baseline, timed in rounds of four runs: instrumented,
    bare, bare, instrumented (ABBA).

    Each round gives one ratio: the two instrumented runs over the two bare ones, taken within
    a few hundredths of a second of each other. The figure is the median of those ratios. On a
    shared virtual machine the speed of the whole machine drifts by 10-50% for seconds at a
    time; runs that close together see the same speed, and the ABBA order cancels a steady
    drift within the round. Over 100 rounds the median moved by about 1% between full runs of
    the benchmark, where a ratio of best times over 12 runs moved by 5%; the A/A control row
    shows what it reads when nothing differs.
    """

    instrumented: list[Timing] = field(default_factory=list)
    bare: list[Timing] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)

    def add(self, first: Timing, bare_first: Timing, bare_second: Timing, second: Timing) -> None:
        self.instrumented += (first, second)
        self.bare += (bare_first, bare_second)
        self.ratios.append((first.wall + second.wall) / (bare_first.wall + bare_second.wall))
        self.cpu_ratios.append((first.cpu + second.cpu) / max(bare_first.cpu + bare_second.cpu, 1e-9))

    @property
    def ratio(self) -> float:
        """Median of the rounds' wall-time ratios."""
        return statistics.median(self.ratios)

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.cpu_ratios)

    @property
    def spread(self) -> tuple[float, float]:
        """The middle half of the rounds' ratios (first and third quartiles)."""
        if len(self.ratios) < 2:
            return self.ratio, self.ratio
        quartiles = statistics.quantiles(self.ratios, n=4)
        return quartiles[0], quartiles[2]

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% confidence interval of :attr:`ratio` (see :func:`median_interval`)."""
        return median_interval(self.ratios)

    def verdict(self, goal: float) -> str:
        return interval_verdict(self.interval, goal)

    @property
    def typical_instrumented(self) -> Timing:
        """The median instrumented run (wall and CPU time each)."""
        return _median_run(self.instrumented)

    @property
    def typical_bare(self) -> Timing:
        return _median_run(self.bare)

    def spread_note(self) -> str:
        low, high = self.interval
        first, third = self.spread
        return (f"95% interval of the median {low:.3f}-{high:.3f}; middle half of {len(self.ratios)} paired "
                f"rounds {first:.3f}-{third:.3f}")


def _median_run(runs: list[Timing]) -> Timing:
    return Timing(statistics.median(t.wall for t in runs), statistics.median(t.cpu for t in runs))


def interleaved(
    runs: dict[Any, tuple[Callable[[], Timing], Callable[[], Timing]]], rounds: int,
) -> dict[Any, Paired]:
    """Time every (instrumented, bare) pair in ``rounds`` ABBA rounds (see :class:`Paired`).

    Each callable does one run (with any set-up kept outside its timed part) and returns its
    :class:`Timing`. A round goes over all pairs, in reverse order every other round, so that
    no pair always follows the same one.
    """
    paired = {key: Paired() for key in runs}
    keys = list(runs)
    for index in range(rounds):
        for key in keys if index % 2 == 0 else reversed(keys):
            instrumented, bare = runs[key]
            first = instrumented()
            bare_first = bare()
            bare_second = bare()
            paired[key].add(first, bare_first, bare_second, instrumented())
    return paired


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
