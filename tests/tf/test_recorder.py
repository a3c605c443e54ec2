"""One record per call with every field, the ring buffer, exact aggregates, the byte budget,
option validation, and no leaks."""

from __future__ import annotations

import functools
import gc
import os
import threading
import time
import weakref
from collections import Counter
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
import xxhash

import tfnp_inspect as npi

from core_helpers import GRAPH_MODES, MODES, RECORDED_MODE, run_in_mode, source_line

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

HERE = os.path.abspath(__file__)


def xxh3(array: np.ndarray) -> int:
    """The content hash the issue specifies, computed independently of the package."""
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(array).tobytes())


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


THREADS_SEEN: list[tuple[int, str]] = []


def double_noting_thread(x: np.ndarray) -> np.ndarray:
    THREADS_SEEN.append((threading.get_ident(), threading.current_thread().name))
    return x * 2


# -- one record per call, every field ----------------------------------------------------------


@pytest.mark.parametrize("stateful", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_one_record_per_call_with_all_fields(mode: str, stateful: bool) -> None:
    x = np.arange(6, dtype=np.float32)
    before = time.time_ns()
    with npi.trace() as t:
        run_in_mode(mode, lambda v: npi.numpy_function(double, [v], tf.float32, stateful=stateful, name="dbl"), [x], repeat=3)  # site: fields
    after = time.time_ns()

    records = t.invocations
    assert len(records) == 3 and t.total == 3 and t.dropped == 0
    seqs = [r.seq for r in records]
    assert len(set(seqs)) == 3
    if mode != "dataset":  # parallel calls may append in another order than they finished
        assert seqs == sorted(seqs)
    for record in records:
        assert record.func_name == "double"
        assert record.op_name == "dbl"
        assert record.stateful is stateful
        assert record.mode == RECORDED_MODE[mode]
        assert record.call_site == source_line(HERE, "fields")
        assert record.site.origin == "wrapper"
        assert record.site.func is double
        assert record.duration_ns > 0
        assert before - 10**8 <= record.start_ns <= after + 10**8  # wall clock, give or take drift
        assert record.error is None and record.violations == () and record.hints == ()
        assert record.pid == os.getpid()
        assert record.bytes_in == x.nbytes and record.bytes_out == x.nbytes


def test_seq_increases_across_traces_and_task_labels_reach_records() -> None:
    with npi.trace() as first:
        npi.numpy_function(double, [np.ones(1)], tf.float64)
    npi.set_task_label("worker-7")
    try:
        with npi.trace() as second:
            npi.numpy_function(double, [np.ones(1)], tf.float64)
    finally:
        npi.set_task_label(None)
    assert second.invocations[0].seq > first.invocations[0].seq
    assert first.invocations[0].task is None and second.invocations[0].task == "worker-7"
    with pytest.raises(TypeError, match="task label"):
        npi.set_task_label(7)


@pytest.mark.parametrize("mode", MODES)
def test_thread_of_each_call(mode: str) -> None:
    THREADS_SEEN.clear()
    with npi.trace() as t:
        run_in_mode(mode, lambda v: npi.numpy_function(double_noting_thread, [v], tf.float32), [np.ones(2, np.float32)], repeat=4)
    assert len(t.invocations) == 4
    for record in t.invocations:
        assert (record.thread_id, record.thread_name) in THREADS_SEEN
    if mode == "eager":
        assert {r.thread_name for r in t.invocations} == {threading.current_thread().name}


@pytest.mark.parametrize("mode", MODES)
def test_array_info_fields(mode: str) -> None:
    x = np.array([1.5, -2.0, 4.0, 0.5], dtype=np.float32)
    with npi.trace() as t:
        run_in_mode(mode, lambda v: npi.numpy_function(double, [v], tf.float32), [x])
    (record,) = t.invocations
    (given,) = record.inputs
    (returned,) = record.outputs
    assert given.shape == (4,) and given.dtype == "float32" and given.nbytes == 16
    assert given.fingerprint == xxh3(x)
    # graph mode hands over zero-copy views of the tensor buffers, eager mode copies
    assert given.shares_tensor_memory is (mode != "eager")
    assert given.writeable and given.c_contiguous and given.aliases_input is None
    assert given.stats.min == -2.0 and given.stats.max == 4.0 and given.stats.mean == 1.0
    assert given.stats.nan_count == 0 and given.stats.inf_count == 0
    assert given.stats.exact and given.stats.elements == 4
    assert given.data is None  # capture='summary' keeps no copy
    assert returned.shape == (4,) and returned.dtype == "float32" and returned.nbytes == 16
    assert returned.fingerprint == xxh3(x * 2)
    assert returned.shares_tensor_memory is False and returned.aliases_input is None
    assert returned.stats.min == -4.0 and returned.stats.max == 8.0 and returned.stats.mean == 2.0


def pass_through(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    return [x, x[1:], y[::2], np.ascontiguousarray(y[::-1]), y.reshape(2, 2).T]


@pytest.mark.parametrize("mode", MODES)
def test_aliases_input(mode: str) -> None:
    x = np.arange(4, dtype=np.float64)
    y = np.arange(4, 8, dtype=np.float64)
    tout = [tf.float64] * 5
    with npi.trace() as t:
        run_in_mode(mode, lambda a, b: npi.numpy_function(pass_through, [a, b], tout), [x, y])
    (record,) = t.invocations
    assert [o.aliases_input for o in record.outputs] == [0, 0, 1, None, 1]
    assert [o.c_contiguous for o in record.outputs] == [True, True, False, True, False]


def same_twice(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x.copy()


@pytest.mark.parametrize("mode", MODES)
def test_equal_contents_have_equal_fingerprints(mode: str) -> None:
    x = np.linspace(0, 1, 10)
    with npi.trace() as t:
        run_in_mode(mode, lambda a, b: npi.numpy_function(same_twice, [a, b], tf.float64), [x, x.copy()], repeat=2)
    first, second = t.invocations
    fingerprints = {a.fingerprint for r in t.invocations for a in r.inputs + r.outputs}
    assert fingerprints == {xxh3(x)}
    assert first.inputs == second.inputs  # equal records for equal contents


def numeric_mix(f: np.ndarray, i: np.ndarray, b: np.ndarray, s: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
    return [f, i, b, s, c]


def test_stats_of_numeric_arrays_only() -> None:
    f = np.array([1.0, np.nan, np.inf, -2.0, 4.0, -np.inf])
    i = np.array([[3, -7], [11, 0]], dtype=np.int16)
    b = np.array([True, False, True, True])
    s = np.array([b"ab", b"c"], dtype=object)
    c = np.array([1 + 1j, 2 - 1j], dtype=np.complex64)
    big = np.arange(10_000, dtype=np.float64)
    with npi.trace() as t:
        npi.numpy_function(numeric_mix, [f, i, b, s, c], [tf.float64, tf.int16, tf.bool, tf.string, tf.complex64])
        npi.numpy_function(double, [big], tf.float64)
    mixed, large = t.invocations
    floats, ints, bools, strings, complexes = mixed.inputs
    assert (floats.stats.min, floats.stats.max, floats.stats.mean) == (-2.0, 4.0, 1.0)  # over finite values
    assert (floats.stats.nan_count, floats.stats.inf_count, floats.stats.elements) == (1, 2, 6)
    assert (ints.stats.min, ints.stats.max, ints.stats.mean, ints.stats.elements) == (-7, 11, 1.75, 4)
    assert (bools.stats.min, bools.stats.max, bools.stats.mean) == (0, 1, 0.75)
    assert strings.stats is None and complexes.stats is None
    assert strings.dtype == "object" and strings.shape == (2,)
    assert all(s.exact for s in (floats.stats, ints.stats, bools.stats))
    sampled = large.inputs[0].stats
    assert not sampled.exact and 0 < sampled.elements < big.size  # a cheap sample, and it says so
    assert 0 <= sampled.min <= sampled.max <= big.max()


def test_capture_levels() -> None:
    x = np.arange(5, dtype=np.int32)
    with npi.trace(capture="none") as bare, npi.trace(capture="full") as full:
        npi.numpy_function(double, [x], tf.int32)
    (plain,), (captured,) = bare.invocations, full.invocations
    assert plain.inputs[0].stats is None and plain.inputs[0].data is None
    assert plain.inputs[0].fingerprint == captured.inputs[0].fingerprint == xxh3(x)
    np.testing.assert_array_equal(captured.inputs[0].data, x)
    np.testing.assert_array_equal(captured.outputs[0].data, x * 2)
    assert captured.captured and captured.captured_bytes == 2 * x.nbytes
    assert captured.outputs[0].stats.max == 8


# -- names, op names, call sites, threads -------------------------------------------------------


class Doubler:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x * 2

    def method(self, x: np.ndarray) -> np.ndarray:
        return x * 2


def test_function_names() -> None:
    def nested(x: np.ndarray) -> np.ndarray:
        return x + 1

    x = np.ones(2)
    with npi.trace() as t:
        for func in (double, nested, lambda v: v, Doubler(), Doubler().method, np.negative):
            npi.numpy_function(func, [x], tf.float64)
        npi.numpy_function(functools.partial(np.multiply, 2.0), [x], tf.float64)
    names = [r.func_name for r in t.invocations]
    assert names[:6] == [
        "double",
        "test_function_names.<locals>.nested",
        "test_function_names.<locals>.<lambda>",
        "Doubler",  # a callable without __name__: its type's name
        "Doubler.method",
        "negative",
    ]
    assert "partial" in names[6]


@pytest.mark.parametrize("mode", MODES)
def test_site_gives_the_function_back_while_it_lives(mode: str) -> None:
    def nested(x: np.ndarray) -> np.ndarray:
        return x + 1

    doubler = Doubler()
    functions = {"function": lambda: double, "nested": lambda: nested, "object": lambda: doubler,
                 "bound method": lambda: doubler.method}  # a fresh bound method object per access
    with npi.trace() as t:
        for get in functions.values():
            run_in_mode(mode, lambda v: npi.numpy_function(get(), [v], tf.float32), [np.ones(2, np.float32)])  # noqa: B023 - run at once
    gc.collect()
    found = {name: record.site.func for name, record in zip(functions, t.invocations, strict=False)}
    assert found == {name: get() for name, get in functions.items()}  # for replay


@pytest.mark.parametrize("mode", GRAPH_MODES)
def test_op_name_defaults_to_the_tf_op_name(mode: str) -> None:
    ops: list[str] = []

    def call(v: tf.Tensor) -> tf.Tensor:
        out = npi.numpy_function(double, [v], tf.float32)
        ops.append(out.op.name)
        return out

    with npi.trace() as t:
        run_in_mode(mode, call, [np.ones(2, np.float32)])
    (record,) = t.invocations
    assert record.op_name == ops[0]
    assert record.site.token.startswith("pyfunc_")


def test_eager_calls_have_no_op() -> None:
    with npi.trace() as t:
        npi.numpy_function(double, [np.ones(2)], tf.float64)
    (record,) = t.invocations
    assert record.op_name is None and record.site.token is None


def helper_calling_numpy_function(v: Any) -> Any:
    return npi.numpy_function(double, [v], tf.float32)  # site: helper


@pytest.mark.parametrize("mode", MODES)
def test_call_site_is_the_users_line_also_through_autograph(mode: str) -> None:
    def direct(v: tf.Tensor) -> tf.Tensor:
        doubled = npi.numpy_function(double, [v], tf.float32)  # site: direct
        return doubled + 1

    def through_helper(v: tf.Tensor) -> tf.Tensor:
        if tf.reduce_sum(v) > 0:  # autograph rewrites this function and the helper it calls
            v = helper_calling_numpy_function(v)
        return v

    def in_control_flow(v: tf.Tensor) -> tf.Tensor:
        for _ in tf.range(2):  # in graph mode, the body becomes a function of autograph's
            v = tf.ensure_shape(npi.numpy_function(double, [v], tf.float32), [2])  # site: loop body
        return v

    with npi.trace() as t:
        run_in_mode(mode, direct, [np.ones(2, np.float32)])
        run_in_mode(mode, through_helper, [np.ones(2, np.float32)])
        run_in_mode(mode, in_control_flow, [np.ones(2, np.float32)])
    assert [r.call_site for r in t.invocations] == [
        source_line(HERE, "direct"),
        source_line(HERE, "helper"),
        source_line(HERE, "loop body"),
        source_line(HERE, "loop body"),
    ]


def test_thread_names_follow_the_thread_that_called() -> None:
    names = ["alpha", "beta", "gamma", "delta"]

    def call() -> None:
        npi.numpy_function(double, [np.ones(2)], tf.float64)

    with npi.trace() as t:
        for name in names:  # finished threads' ids are reused for the next ones
            thread = threading.Thread(target=call, name=name)
            thread.start()
            thread.join()
    assert [r.thread_name for r in t.invocations] == names


def napping(x: np.ndarray) -> np.ndarray:
    time.sleep(0.002)
    return x


def test_duration_is_the_function_alone() -> None:
    with npi.trace() as t:
        npi.numpy_function(napping, [np.ones(2)], tf.float64)
    (record,) = t.invocations
    assert record.duration_ns >= 2_000_000


class Failure(Exception):
    pass


def failing(x: np.ndarray) -> np.ndarray:
    raise Failure(f"cannot handle {x.size} values")


@pytest.mark.parametrize("mode", MODES)
def test_errors_are_recorded(mode: str) -> None:
    with npi.trace() as t:
        with pytest.raises((Failure, tf.errors.UnknownError)):
            run_in_mode(mode, lambda v: npi.numpy_function(failing, [v], tf.float32), [np.ones(3, np.float32)])
    (record,) = t.invocations
    assert record.error.type == "Failure"
    assert record.error.message == "cannot handle 3 values"
    assert "cannot handle 3 values" in record.error.traceback and "failing" in record.error.traceback
    assert record.outputs == () and record.inputs[0].shape == (3,)
    stats = t.stats()["failing"]
    assert stats.calls == 1 and stats.errors == 1


# -- ring buffer and aggregates --------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_records() -> None:
    appended: list[int] = []
    with npi.trace(capacity=5) as t:
        t.subscribe(lambda inv: appended.append(inv.seq))
        for _ in range(12):
            npi.numpy_function(double, [np.ones(2)], tf.float64)
        assert t.capacity == 5
        assert [r.seq for r in t.invocations] == appended[-5:]
        assert t.total == 12 and t.dropped == 7 and len(t) == 5
        assert t.find(appended[-1]).seq == appended[-1]
        assert t.find(appended[0]) is None  # evicted
        t.recorder.configure(capacity=3)  # shrinking evicts at once
        assert [r.seq for r in t.invocations] == appended[-3:]
        assert t.total == 12 and t.dropped == 9
        t.recorder.clear()
        assert t.invocations == [] and t.total == 0 and t.dropped == 0 and len(t.stats()) == 0


WORK = {"sizes": [1]}


def varying(x: np.ndarray) -> np.ndarray:
    """Different sizes and occasional failures and mutations, so aggregates have work to do."""
    n = int(x[0])
    if n % 7 == 3:
        raise ValueError("every seventh")
    if n % 5 == 1:
        x[1] = -1  # mutated input
    return np.zeros(n % 13 * 8 + 1)


@pytest.mark.parametrize("capture", ["summary", "full"])  # 'full' evicts one record per store
def test_aggregates_stay_exact_across_eviction(capture: str) -> None:
    everything: list[Any] = []
    with npi.trace(capacity=16, capture=capture) as t:
        t.subscribe(everything.append)
        for n in range(300):
            try:
                npi.numpy_function(varying, [np.array([n, 0, 0], dtype=np.float64)], tf.float64)
            except ValueError:
                pass
            npi.numpy_function(double, [np.ones(n % 4 + 1)], tf.float64)
    assert len(everything) == 600 and t.total == 600 and t.dropped == 584
    stats = t.stats()
    for name in ("varying", "double"):
        mine = [inv for inv in everything if inv.func_name == name]
        durations = np.array([inv.duration_ns for inv in mine])
        aggregate = stats[name]
        assert aggregate.calls == len(mine) == 300
        assert aggregate.errors == sum(inv.error is not None for inv in mine)
        assert aggregate.total_ns == durations.sum() and aggregate.max_ns == durations.max()
        assert aggregate.mean_ns == pytest.approx(durations.mean())
        assert aggregate.bytes_in == sum(inv.bytes_in for inv in mine)
        assert aggregate.bytes_out == sum(inv.bytes_out for inv in mine)
        assert aggregate.violations == Counter(v.kind for inv in mine for v in inv.violations)
        assert sum(aggregate.histogram.counts.values()) == 300
        for q, estimate in ((0.5, aggregate.p50_ns), (0.99, aggregate.p99_ns)):
            truth = np.quantile(durations, q, method="lower")
            # log-linear buckets, 8 per power of two: the middle of a bucket is within 1/16
            assert abs(estimate - truth) <= truth / 16, (q, estimate, truth)
    assert stats["varying"].errors == len([n for n in range(300) if n % 7 == 3])
    assert stats["varying"].violations["mutated-input"] == len([n for n in range(300) if n % 5 == 1 and n % 7 != 3])
    assert stats["double"].errors == 0 and not stats["double"].violations


# -- byte budget ---------------------------------------------------------------------------------------


def test_payloads_over_budget_are_dropped_with_a_note() -> None:
    x = np.ones(128)  # 1 KiB in, 1 KiB out
    with npi.trace(capture="full", max_capture_bytes=5 * 1024) as t:
        for _ in range(6):
            npi.numpy_function(double, [x], tf.float64)
    recorder = t.recorder
    assert recorder.captured_bytes == sum(r.captured_bytes for r in t.invocations) == 5 * 1024
    arrays = [a for r in t.invocations for a in r.inputs + r.outputs]
    kept = [a for a in arrays if a.data is not None]
    refused = [a for a in arrays if a.data is None]
    assert len(kept) == 5 and len(refused) == 7  # array by array, in call order, until full
    assert all(r.captured for r in t.invocations[:3]) and not any(r.captured for r in t.invocations[3:])
    for array in refused:
        assert array.capture_note and "budget" in array.capture_note  # never silently
        assert array.stats is not None  # the summary is still there
    assert recorder.payloads_dropped == len(refused)


def test_a_payload_bigger_than_the_whole_budget() -> None:
    with npi.trace(capture="full", max_capture_bytes=1000) as t:
        npi.numpy_function(double, [np.ones(1000)], tf.float64)
        npi.numpy_function(double, [np.ones(10)], tf.float64)
    big, small = t.invocations
    assert big.inputs[0].data is None and "budget" in big.inputs[0].capture_note
    assert small.captured and t.recorder.captured_bytes == 160


def test_eviction_frees_the_budget() -> None:
    x = np.ones(128)  # each record holds 2 KiB of payload
    with npi.trace(capture="full", capacity=2, max_capture_bytes=4 * 1024) as t:
        for _ in range(10):
            npi.numpy_function(double, [x], tf.float64)
            assert t.recorder.captured_bytes == sum(r.captured_bytes for r in t.invocations) <= 4 * 1024
        # the buffer never holds more than the budget: no payload had to be refused
        assert all(r.captured for r in t.invocations)
        assert t.recorder.payloads_dropped == 0


def test_captured_bytes_never_exceed_the_budget() -> None:
    budget = 20_000
    rng = np.random.default_rng(0)
    with npi.trace(capture="full", capacity=7, max_capture_bytes=budget) as t:
        for size in rng.integers(1, 600, size=80):
            npi.numpy_function(double, [np.ones(int(size))], tf.float64)
            assert t.recorder.captured_bytes <= budget
            assert t.recorder.captured_bytes == sum(r.captured_bytes for r in t.invocations)
        assert any(r.captured for r in t.invocations)


# -- options ----------------------------------------------------------------------------------------------

BAD_OPTIONS = [
    ("capacity", 0, ValueError),
    ("capacity", -5, ValueError),
    ("capacity", 2.5, TypeError),
    ("capacity", "100", TypeError),
    ("capacity", True, TypeError),
    ("capture", "everything", ValueError),
    ("capture", 2, TypeError),
    ("capture", None, TypeError),
    ("max_capture_bytes", -1, ValueError),
    ("max_capture_bytes", 1.5e6, TypeError),
    ("checks", "mutated-input,typo", ValueError),
    ("checks", ["hidden-state", "nope"], ValueError),
    ("checks", 3, TypeError),
    ("checks", [1], TypeError),
    ("strict", "yes", TypeError),
    ("strict", 1, TypeError),
    ("colour", "blue", TypeError),
]


@pytest.mark.parametrize("option, value, error", BAD_OPTIONS, ids=[f"{o}={v!r}" for o, v, _ in BAD_OPTIONS])
@pytest.mark.parametrize("entry", ["Options.from_kwargs", "trace", "install", "Recorder"])
def test_bad_option_values_name_the_option(entry: str, option: str, value: Any, error: type) -> None:
    def apply() -> None:
        if entry == "Options.from_kwargs":
            npi.Options.from_kwargs(**{option: value})
        elif entry == "Recorder":
            npi.Recorder(**{option: value})
        elif entry == "trace":
            with npi.trace(**{option: value}):
                pass
        else:
            npi.install(**{option: value})

    with pytest.raises(error) as caught:
        apply()
    assert option in str(caught.value)
    assert not npi.is_active() and not npi.is_installed()


@pytest.mark.parametrize(
    "checks, expected",
    [
        (None, set(npi.VIOLATION_KINDS)),
        ("all", set(npi.VIOLATION_KINDS)),
        ("none", set()),
        ("mutated-input, hidden-state", {"mutated-input", "hidden-state"}),
        (["tout-mismatch"], {"tout-mismatch"}),
    ],
)
def test_checks_option_forms(checks: Any, expected: set[str]) -> None:
    assert set(npi.Options.from_kwargs(checks=checks).checks) == expected


def test_default_options() -> None:
    options = npi.Options.from_kwargs()
    assert options.capacity == 10_000 and options.capture == "summary"
    assert options.max_capture_bytes == 64 << 20 and not options.strict
    assert set(options.checks) == set(npi.VIOLATION_KINDS)


# -- no leaks ------------------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tiny(x: np.ndarray) -> np.ndarray:
    return x + 1


@pytest.mark.timeout(300)
def test_memory_stays_flat_over_100k_calls() -> None:
    @tf.function
    def loop(n: tf.Tensor) -> tf.Tensor:
        total = tf.constant(0.0)
        for _ in tf.range(n):
            total += tf.reduce_sum(npi.numpy_function(tiny, [tf.ones([16])], tf.float32))
        return total

    with npi.trace(capture="summary") as t:
        loop(tf.constant(20_000))  # warm-up: fills the ring buffer, grows TF's pools
        gc.collect()
        start = _rss_bytes()
        loop(tf.constant(40_000))
        gc.collect()
        middle = _rss_bytes()
        result = loop(tf.constant(40_000))
        gc.collect()
        end = _rss_bytes()
    assert result.numpy() == 40_000 * 16 * 2
    assert t.total == 100_000 and len(t) == t.capacity
    first_half, second_half = middle - start, end - middle
    # a leak of even 100 bytes per call would add 4 MB per half
    assert first_half < 4 << 20 and second_half < 4 << 20, (first_half, second_half)


REFS: list[weakref.ref] = []


def keep_weak_refs(x: np.ndarray) -> np.ndarray:
    out = x * 2
    REFS.append(weakref.ref(x))
    REFS.append(weakref.ref(out))
    return out


@pytest.mark.parametrize("capture", ["summary", "full"])
@pytest.mark.parametrize("mode", MODES)
def test_records_keep_no_arrays_alive(mode: str, capture: str) -> None:
    REFS.clear()
    with npi.trace(capture=capture) as t:
        run_in_mode(mode, lambda v: npi.numpy_function(keep_weak_refs, [v], tf.float32), [np.ones(64, np.float32)], repeat=3)
        # TF holds the arrays returned by the last call until the next PyFunc call
        run_in_mode(mode, lambda v: npi.numpy_function(double, [v], tf.float32), [np.ones(1, np.float32)])
    gc.collect()
    assert len(t.invocations) == 4
    assert len(REFS) == 6 and all(ref() is None for ref in REFS)


def test_untraced_calls_keep_no_reference_to_the_function() -> None:
    refs = []
    for n in range(5):
        func = lambda v, n=n: v + n  # noqa: E731 - a fresh closure per call, as in a loop
        refs.append(weakref.ref(func))
        npi.numpy_function(func, [np.ones(2)], tf.float64)
        del func
    gc.collect()
    assert [ref() for ref in refs] == [None] * 5


@pytest.mark.parametrize("checks", ["all", "mutated-input"])
def test_traced_calls_keep_no_reference_to_the_function(checks: str) -> None:
    refs = []
    with npi.trace(checks=checks) as t:
        for n in range(5):
            func = lambda v, n=n: v + n  # noqa: E731
            refs.append(weakref.ref(func))
            npi.numpy_function(func, [np.ones(2)], tf.float64, stateful=n % 2 == 0)
            del func
    gc.collect()
    assert len(t.invocations) == 5  # the records outlive the functions
    assert [ref() for ref in refs] == [None] * 5
    assert all(r.site.func is None for r in t.invocations)
