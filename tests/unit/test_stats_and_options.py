"""Duration histograms, per-function aggregates and recording options, without TensorFlow."""

from __future__ import annotations

import math
from collections import Counter

import pytest

import tfnp_inspect as npi
from tfnp_inspect.model.options import CAPTURE_LEVELS, Options, parse_checks
from tfnp_inspect.model.stats import DurationHistogram, FunctionStats, bucket_bounds, bucket_of

DURATIONS = [0, 1, 7, 8, 9, 15, 16, 100, 1_000, 12_345, 10**6, 2**40 + 3]


@pytest.mark.parametrize("value", DURATIONS)
def test_every_value_lies_in_the_bounds_of_its_bucket(value):
    low, high = bucket_bounds(bucket_of(value))
    assert low <= value < high
    assert high - low <= max(1, low // 8)  # 8 sub-buckets per power of two: within 1/8


def test_buckets_grow_with_the_value():
    buckets = [bucket_of(v) for v in range(5_000)]
    assert buckets == sorted(buckets)


def test_the_inlined_bucket_of_add_agrees_with_bucket_of():
    stats = FunctionStats("f")
    for value in DURATIONS:
        stats.add(value, 0, 0, False, ())
    assert stats.histogram.counts == Counter(bucket_of(v) for v in DURATIONS)


def test_quantiles_stay_within_a_bucket_of_the_truth():
    histogram = DurationHistogram()
    for value in range(1_000, 101_000, 1_000):
        histogram.add(value)
    assert abs(histogram.quantile(0.5) - 50_000) <= 50_000 / 8
    assert abs(histogram.quantile(0.99) - 99_000) <= 99_000 / 8
    assert math.isnan(DurationHistogram().quantile(0.5))


def test_aggregates_count_errors_bytes_and_violation_kinds():
    stats = FunctionStats("f")
    stats.add(100, 8, 16, False, [("mutated-input", "f", 1, None, "m", None)])
    stats.add(300, 8, 16, True, [])
    assert (stats.calls, stats.errors, stats.total_ns, stats.max_ns) == (2, 1, 400, 300)
    assert (stats.bytes_in, stats.bytes_out, stats.mean_ns) == (16, 32, 200)
    assert stats.violations == Counter({"mutated-input": 1})
    assert math.isnan(FunctionStats("idle").mean_ns)


def test_merge_snapshot_and_dict_round_trip():
    first, second = FunctionStats("f"), FunctionStats("f")
    for value in (10, 20):
        first.add(value, 1, 1, False, ())
    second.add(5_000, 2, 2, True, [("hidden-state", "f", 3, None, "m", "global 'x'")])
    snapshot = first.snapshot()
    first.merge(second)
    assert (snapshot.calls, first.calls, first.errors, first.max_ns) == (2, 3, 1, 5_000)
    assert first.histogram.count == 3 and snapshot.histogram.count == 2
    again = FunctionStats.from_dict(first.to_dict())
    assert again.to_dict() == first.to_dict()


def test_trace_stats_is_a_mapping_with_totals():
    a, b = FunctionStats("a"), FunctionStats("b")
    a.add(1, 0, 0, False, [("nondeterministic", "a", 1, None, "m", None)])
    b.add(1, 0, 0, False, ())
    b.add(1, 0, 0, False, ())
    stats = npi.TraceStats({"a": a, "b": b})
    assert list(stats) == ["a", "b"] and len(stats) == 2 and stats["b"].calls == 2
    assert stats.calls == 3 and stats.violations == Counter({"nondeterministic": 1})


def test_options_defaults_and_validation():
    options = Options()
    assert (options.capture, options.capture_level, options.strict) == ("summary", 1, False)
    assert options.checks == frozenset(npi.VIOLATION_KINDS)
    changed = Options.from_kwargs(options, capture="full", capacity=5, checks="mutated-input")
    assert (changed.capture_level, changed.capacity, changed.checks) == (2, 5, {"mutated-input"})
    assert CAPTURE_LEVELS[changed.capture_level] == "full"


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"capacity": 0}, ValueError, "'capacity' must be >= 1"),
        ({"capacity": True}, TypeError, "must be an int"),
        ({"capture": "all"}, ValueError, "'none', 'summary', 'full'"),
        ({"capture": 2}, TypeError, "must be a str"),
        ({"strict": 1}, TypeError, "must be a bool"),
        ({"checks": "mutated"}, ValueError, "unknown kind 'mutated'"),
        ({"checks": [1]}, TypeError, "check kinds are str"),
        ({"checks": 3}, TypeError, "comma-separated"),
        ({"colour": "red"}, TypeError, "unknown option 'colour'"),
    ],
)
def test_bad_options_name_the_option(kwargs, error, words):
    with pytest.raises(error, match=words):
        Options.from_kwargs(**kwargs)


def test_check_lists():
    every = frozenset(npi.VIOLATION_KINDS)
    assert parse_checks(None) == parse_checks("all") == parse_checks(" ALL ") == every
    assert parse_checks("none") == parse_checks("") == frozenset()
    assert parse_checks("hidden-state, tout-mismatch") == {"hidden-state", "tout-mismatch"}
    assert parse_checks(["nondeterministic"]) == {"nondeterministic"}
