"""Per-function aggregates that stay exact when the ring buffer evicts records.

Durations go into a log-linear histogram (8 buckets per power of two, so quantiles are within
about 6% of the truth) in constant memory; counts, totals, minima and maxima are exact. The
first :data:`EXACT_QUANTILE_CALLS` durations are also kept as they are, so that the quantiles
of a function called that few times are exact; every quantile lies within [min, max].
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from . import seams
from .columns import Column, RowColumns, exact_sum
from .records import V_KIND

_SUB_BITS = 3  # 2**3 sub-buckets per power of two
#: Values below this are buckets of their own; the sub-bucket is the next _SUB_BITS bits.
_SUB_BUCKETS = 1 << _SUB_BITS
_SUB_MASK = _SUB_BUCKETS - 1
#: bit_length minus this is how far a value shifts right to leave its top _SUB_BITS + 1 bits.
_SHIFT_BIAS = _SUB_BITS + 1
#: Functions called at most this many times get exact quantiles (their durations are kept).
EXACT_QUANTILE_CALLS = 128
#: ``min_ns`` before the first call, or when it is unknown (stats read from older files).
NO_MIN = 1 << 63


def bucket_of(value_ns: int) -> int:
    if value_ns < _SUB_BUCKETS:
        return value_ns
    shift = value_ns.bit_length() - _SHIFT_BIAS
    return ((shift + 1) << _SUB_BITS) | ((value_ns >> shift) & _SUB_MASK)


#: From this many values on, :meth:`DurationHistogram.add_many` buckets them with numpy.
_NUMPY_BATCH = 32


def _buckets(values: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """:func:`bucket_of` of each (non-negative) value."""
    _, exponent = np.frexp(values.astype(np.float64))  # the bit length, while values < 2**53
    exponent = exponent.astype(np.int64)
    # a value just below a power of two may round up to it as a float: one step down fixes that
    exponent -= (values >> np.maximum(exponent - 1, 0)) == 0
    shift = np.maximum(exponent - _SHIFT_BIAS, 0)
    large = ((shift + 1) << _SUB_BITS) | ((values >> shift) & _SUB_MASK)
    return np.where(values < _SUB_BUCKETS, values, large)


def bucket_bounds(bucket: int) -> tuple[int, int]:
    """[low, high) of the values that land in ``bucket``."""
    if bucket < _SUB_BUCKETS:
        return bucket, bucket + 1
    shift = (bucket >> _SUB_BITS) - 1
    mantissa = _SUB_BUCKETS | (bucket & _SUB_MASK)
    return mantissa << shift, (mantissa + 1) << shift


class DurationHistogram:
    """Streaming histogram of durations in nanoseconds."""

    __slots__ = ("count", "counts")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0

    def add(self, value_ns: int) -> None:
        b = bucket_of(value_ns)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.count += 1

    def add_many(self, values_ns: Column) -> None:
        """Add a batch (what :meth:`add` does for each value, in numpy for large batches)."""
        counts = self.counts
        if len(values_ns) < _NUMPY_BATCH or values_ns.dtype != np.int64 or int(values_ns.min()) < 0:
            for value in values_ns.tolist():
                b = bucket_of(value)
                counts[b] = counts.get(b, 0) + 1
        else:
            # bucket numbers are small (under 8 * 64): counted by index, no sort
            how_many = np.bincount(_buckets(values_ns))
            buckets = np.flatnonzero(how_many)
            for b, n in zip(buckets.tolist(), how_many[buckets].tolist(), strict=True):
                counts[b] = counts.get(b, 0) + n
        self.count += len(values_ns)

    def merge(self, other: DurationHistogram) -> None:
        for b, n in other.counts.items():
            self.counts[b] = self.counts.get(b, 0) + n
        self.count += other.count

    def quantile(self, q: float, low: float | None = None, high: float | None = None) -> float:
        """The q-quantile (0..1), at the middle of its bucket, kept within ``[low, high]``
        (the exact minimum and maximum, when known); NaN when empty."""
        if not self.count:
            return float("nan")
        rank = q * (self.count - 1)
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen > rank:
                break
        else:
            b = max(self.counts)
        first, last = bucket_bounds(b)
        value = (first + last - 1) / 2
        if high is not None and value > high:
            value = float(high)
        if low is not None and value < low:
            value = float(low)
        return value

    def copy(self) -> DurationHistogram:
        clone = DurationHistogram()
        clone.counts = dict(self.counts)
        clone.count = self.count
        return clone


_KIND = itemgetter(V_KIND)


@dataclass(slots=True)
class FunctionStats:
    """Aggregates of one function over every recorded call, evicted or not."""

    func_name: str
    calls: int = 0
    errors: int = 0
    total_ns: int = 0
    max_ns: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    violations: Counter[str] = field(default_factory=Counter[str])
    histogram: DurationHistogram = field(default_factory=DurationHistogram, repr=False)
    #: The shortest call (:data:`NO_MIN` before the first, or when unknown).
    min_ns: int = NO_MIN
    #: The durations of the first :data:`EXACT_QUANTILE_CALLS` calls, as they were.
    durations_ns: list[int] = field(default_factory=list[int], repr=False)

    def add(self, duration_ns: int, bytes_in: int, bytes_out: int, failed: bool, violations: Any) -> None:
        """Count one call; ``violations`` are Violation rows (kind first). Recorders fold a batch
        at a time with :meth:`add_columns`; this is the same for one call."""
        self.calls += 1
        if failed:
            self.errors += 1
        self.total_ns += duration_ns
        if duration_ns > self.max_ns:
            self.max_ns = duration_ns
        if duration_ns < self.min_ns:
            self.min_ns = duration_ns
        if self.calls <= EXACT_QUANTILE_CALLS:
            self.durations_ns.append(duration_ns)
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        for violation in violations:
            self.violations[violation[V_KIND]] += 1
        self.histogram.add(duration_ns)

    def add_columns(self, columns: RowColumns) -> None:
        """Count a batch of stored rows (of this function), as :meth:`add` would one by one."""
        durations = columns.durations
        if not len(durations):
            return
        room = EXACT_QUANTILE_CALLS - self.calls
        if room > 0:
            self.durations_ns.extend(durations[:room].tolist())
        self.calls += len(durations)
        self.errors += columns.errors
        self.total_ns += exact_sum(durations)
        self.max_ns = max(self.max_ns, int(durations.max()))
        self.min_ns = min(self.min_ns, int(durations.min()))
        self.bytes_in += columns.bytes_in
        self.bytes_out += columns.bytes_out
        if columns.violations:  # most batches have none
            self.violations.update(map(_KIND, columns.violations))
        self.histogram.add_many(durations)

    def merge(self, other: FunctionStats) -> None:
        exact = self._exact() and other._exact() and self.calls + other.calls <= EXACT_QUANTILE_CALLS
        self.durations_ns = self.durations_ns + other.durations_ns if exact else []
        self.calls += other.calls
        self.errors += other.errors
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)
        self.min_ns = min(self.min_ns, other.min_ns)
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.violations.update(other.violations)
        self.histogram.merge(other.histogram)

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.calls if self.calls else float("nan")

    @property
    def p50_ns(self) -> float:
        return self.quantile(0.50)

    @property
    def p99_ns(self) -> float:
        return self.quantile(0.99)

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1) of the durations: exact (linear between the two nearest
        calls) while every duration is kept, else from the histogram; within [min, max]."""
        if self._exact() and self.durations_ns:
            ordered = sorted(self.durations_ns)
            rank = q * (len(ordered) - 1)
            below = int(rank)
            above = min(below + 1, len(ordered) - 1)
            return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)
        low = self.min_ns if self.min_ns != NO_MIN else None
        return self.histogram.quantile(q, low, self.max_ns if self.calls else None)

    def _exact(self) -> bool:
        """Whether ``durations_ns`` holds every call (not so for stats read from older files)."""
        return len(self.durations_ns) == self.histogram.count

    def snapshot(self) -> FunctionStats:
        return FunctionStats(
            self.func_name, self.calls, self.errors, self.total_ns, self.max_ns, self.bytes_in,
            self.bytes_out, Counter(self.violations), self.histogram.copy(), self.min_ns,
            list(self.durations_ns),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "func_name": self.func_name,
            "calls": self.calls,
            "errors": self.errors,
            "total_ns": self.total_ns,
            "mean_ns": self.mean_ns,
            "p50_ns": self.p50_ns,
            "p99_ns": self.p99_ns,
            "max_ns": self.max_ns,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "violations": dict(self.violations),
            "histogram": {str(b): n for b, n in sorted(self.histogram.counts.items())},
            "min_ns": self.min_ns if self.min_ns != NO_MIN else None,
            "durations_ns": list(self.durations_ns) if self._exact() else None,
        }

    def _repr_html_(self) -> str:
        return seams.layer("views").function_stats_html(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionStats:
        stats = cls(
            str(data["func_name"]), int(data["calls"]), int(data["errors"]), int(data["total_ns"]),
            int(data["max_ns"]), int(data["bytes_in"]), int(data["bytes_out"]),
            Counter({str(k): int(v) for k, v in dict(data["violations"]).items()}),
        )
        for b, n in dict(data["histogram"]).items():
            stats.histogram.counts[int(b)] = int(n)
        stats.histogram.count = sum(stats.histogram.counts.values())
        if data.get("min_ns") is not None:  # absent from files written before it was kept
            stats.min_ns = int(data["min_ns"])
        if data.get("durations_ns") is not None:
            stats.durations_ns = [int(d) for d in data["durations_ns"]]
        return stats


class TraceStats(Mapping[str, FunctionStats]):
    """Snapshot of the per-function aggregates, keyed by function name."""

    def __init__(self, per_function: Mapping[str, FunctionStats]) -> None:
        self._per_function = dict(per_function)

    def __getitem__(self, name: str) -> FunctionStats:
        return self._per_function[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._per_function)

    def __len__(self) -> int:
        return len(self._per_function)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self._per_function.values())

    @property
    def violations(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for s in self._per_function.values():
            total.update(s.violations)
        return total

    def __repr__(self) -> str:
        return seams.layer("views").stats_text(self)

    def _repr_html_(self) -> str:
        return seams.layer("views").stats_html(self)
