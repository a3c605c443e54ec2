"""Issue 13 §4: timing percentiles lie within [min, max] and are exact for small counts (the
histogram's bucket midpoints used to give p50 above max with one call)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.model.stats import EXACT_QUANTILE_CALLS, FunctionStats


def stats_of(durations: list[int]) -> FunctionStats:
    stats = FunctionStats("f")
    for duration in durations:
        stats.add(duration, 0, 0, False, ())
    return stats


def test_one_call_has_p50_and_p99_equal_to_its_duration() -> None:
    stats = stats_of([33_337])
    assert stats.p50_ns == stats.p99_ns == stats.max_ns == stats.min_ns == 33_337


@pytest.mark.parametrize("calls", [2, 3, 64, EXACT_QUANTILE_CALLS])
def test_small_counts_are_exact(calls: int) -> None:
    durations = [random.Random(calls).randrange(1_000, 5_000_000) for _ in range(calls)]
    stats = stats_of(durations)
    assert stats.p50_ns == pytest.approx(np.percentile(durations, 50))
    assert stats.p99_ns == pytest.approx(np.percentile(durations, 99))
    assert min(durations) <= stats.p50_ns <= stats.p99_ns <= max(durations) == stats.max_ns


@pytest.mark.parametrize("seed", range(5))
def test_large_counts_stay_within_min_and_max_and_near_the_truth(seed: int) -> None:
    rng = random.Random(seed)
    durations = [rng.choice([rng.randrange(9_000, 9_100), rng.randrange(1_000_000, 1_000_100)]) for _ in range(5000)]
    stats = stats_of(durations)
    for q, value in ((0.5, stats.p50_ns), (0.99, stats.p99_ns)):
        assert min(durations) <= value <= max(durations)
        truth = np.quantile(durations, q)
        assert abs(value - truth) <= truth / 8


def test_merge_snapshot_and_dict_keep_exactness_and_bounds() -> None:
    first, second = stats_of([100, 200]), stats_of([300])
    snapshot = first.snapshot()
    first.merge(second)
    assert (first.min_ns, first.max_ns, first.p50_ns) == (100, 300, 200)
    assert snapshot.p50_ns == 150 and snapshot.durations_ns == [100, 200]
    again = FunctionStats.from_dict(first.to_dict())
    assert again.to_dict() == first.to_dict() and again.p99_ns == first.p99_ns
    big = stats_of(list(range(1_000, 1_000 + 3 * EXACT_QUANTILE_CALLS)))
    merged = stats_of([5])
    merged.merge(big)
    assert merged.min_ns == 5 and merged.p50_ns <= merged.max_ns and merged.durations_ns == []


def test_stats_from_older_files_without_min_or_durations_stay_below_max() -> None:
    data = stats_of([1500, 1500]).to_dict()
    del data["min_ns"], data["durations_ns"]
    old = FunctionStats.from_dict(data)
    assert old.p50_ns <= old.max_ns == 1500 and old.p99_ns <= 1500


def test_public_stats_of_a_trace_use_the_same_rule() -> None:
    stats = npi.TraceStats({"f": stats_of([7_777])})
    assert stats["f"].p50_ns == stats["f"].p99_ns == 7_777
