"""The benchmark's verdicts rest on ``bench_common.median_interval``: its coverage is what it says.

The benchmark judges a goal by the 95% confidence interval of the median of its paired rounds'
ratios ("within noise" when the interval holds the goal). These check the interval against the
binomial law it is built on, and against the published order-statistic ranks for small samples.
"""

from __future__ import annotations

import sys
from math import comb
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_common import MET, NOT_MET, WITHIN_NOISE, interval_verdict, median_interval


def coverage(count: int, cut: int) -> float:
    """P(the order statistics cut+1 and count-cut hold the median) for any continuous law."""
    return 1 - 2 * sum(comb(count, below) for below in range(cut + 1)) / 2**count


@pytest.mark.parametrize(("count", "ranks"), [(6, (1, 6)), (20, (6, 15)), (50, (18, 33)), (60, (22, 39))])
def test_ranks_are_the_published_ones(count: int, ranks: tuple[int, int]) -> None:
    assert median_interval([float(rank) for rank in range(count, 0, -1)]) == ranks


@settings(max_examples=200, deadline=None)
@given(count=st.integers(min_value=6, max_value=400))
def test_interval_is_the_narrowest_that_keeps_95_percent(count: int) -> None:
    low, _ = median_interval([float(rank) for rank in range(1, count + 1)])
    cut = int(low) - 1
    assert coverage(count, cut) >= 0.95
    assert coverage(count, cut + 1) < 0.95 or cut + 1 > (count - 1) // 2


@given(values=st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=1, max_size=80))
def test_interval_holds_the_sample_median(values: list[float]) -> None:
    low, high = median_interval(values)
    ordered = sorted(values)
    middle = (ordered[(len(values) - 1) // 2] + ordered[len(values) // 2]) / 2
    assert low <= middle <= high


def test_verdict_says_within_noise_when_the_interval_holds_the_goal() -> None:
    assert interval_verdict((1.01, 1.04), 1.05) == MET
    assert interval_verdict((1.06, 1.09), 1.05) == NOT_MET
    assert interval_verdict((1.03, 1.07), 1.05) == WITHIN_NOISE
