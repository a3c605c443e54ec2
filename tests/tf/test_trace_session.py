"""Turning recording on and off: ``trace()`` blocks, patching TF's aliases, nesting, threads,
``install()``, graphs built before tracing, and live listeners."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

from core_helpers import (
    ALIASES,
    MODES,
    PARALLEL_CALLS,
    TF_NUMPY_FUNCTION,
    run_in_mode,
    source_line,
    tf_is_patched,
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

HERE = os.path.abspath(__file__)


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


def triple(x: np.ndarray) -> np.ndarray:
    return x * 3


def _call_double(v: Any) -> Any:
    return npi.numpy_function(double, [v], tf.float32)


@pytest.mark.parametrize("mode", MODES)
def test_only_calls_inside_the_block_are_recorded(mode: str) -> None:
    x = np.ones(2, np.float32)
    outputs = []
    function = tf.function(_call_double)  # built and run before the block
    dataset = tf.data.Dataset.from_tensors(x).repeat(2).map(_call_double, num_parallel_calls=4)
    runs = {
        "eager": lambda: [_call_double(tf.constant(x))],
        "function": lambda: [function(tf.constant(x))],
        "dataset": lambda: list(dataset),
    }
    outputs += runs[mode]()
    with npi.trace() as t:
        outputs += runs[mode]()
        inside = t.total
    outputs += runs[mode]()
    calls_per_run = 2 if mode == "dataset" else 1
    assert inside == calls_per_run and t.total == inside  # nothing after the block either
    assert len(outputs) == 3 * calls_per_run
    assert all(o.numpy().tolist() == [2.0, 2.0] for o in outputs)
    assert {r.func_name for r in t.invocations} == {"double"}


@pytest.mark.parametrize("alias", list(ALIASES))
@pytest.mark.parametrize("mode", MODES)
def test_tf_aliases_are_patched_inside_and_recorded(alias: str, mode: str) -> None:
    owner = ALIASES[alias]
    with npi.trace() as t:
        assert owner.numpy_function is not TF_NUMPY_FUNCTION
        outputs = run_in_mode(mode, lambda v: owner.numpy_function(triple, [v], tf.float32), [np.ones(2, np.float32)], repeat=2)  # site: alias
    assert owner.numpy_function is TF_NUMPY_FUNCTION
    assert [o.numpy().tolist() for o in outputs] == [[3.0, 3.0]] * 2
    assert len(t.invocations) == 2
    for record in t.invocations:
        assert record.func_name == "triple" and record.site.origin == "wrapper"
        assert record.call_site == source_line(HERE, "alias")


class Boom(Exception):
    pass


def test_aliases_restored_when_the_block_raises() -> None:
    with pytest.raises(Boom):
        with npi.trace():
            assert tf_is_patched()
            raise Boom()
    assert not tf_is_patched() and not npi.is_active()
    for owner in ALIASES.values():
        assert owner.numpy_function is TF_NUMPY_FUNCTION


def test_aliases_restored_when_a_traced_call_raises() -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        raise Boom("inside func")

    with pytest.raises(Boom):
        with npi.trace() as t:
            tf.numpy_function(broken, [np.ones(1)], tf.float64)
    assert not tf_is_patched()
    assert t.invocations[0].error.type == "Boom"


def test_nesting() -> None:
    x = np.ones(2)
    with npi.trace() as outer:
        npi.numpy_function(double, [x], tf.float64)
        with npi.trace() as inner:
            npi.numpy_function(triple, [x], tf.float64)
        assert tf_is_patched() and npi.is_active()  # the outer block still records
        npi.numpy_function(double, [x], tf.float64)
    assert not tf_is_patched()
    assert [r.func_name for r in outer.invocations] == ["double", "triple", "double"]
    assert [r.func_name for r in inner.invocations] == ["triple"]
    assert inner.invocations[0].seq == outer.invocations[1].seq
    assert outer.stats()["double"].calls == 2 and inner.stats().calls == 1


def test_nested_blocks_keep_their_own_options() -> None:
    def mutating(x: np.ndarray) -> np.ndarray:
        x[0] = 5
        return x.copy()

    with npi.trace(capture="summary") as outer:
        with npi.trace(capture="full", checks="none") as inner:
            npi.numpy_function(mutating, [np.ones(3)], tf.float64)
    (seen_outside,), (seen_inside,) = outer.invocations, inner.invocations
    assert [v.kind for v in seen_outside.violations] == ["mutated-input"]
    assert seen_inside.violations == ()
    assert seen_inside.inputs[0].data is not None and seen_outside.inputs[0].data is None


def test_two_threads_tracing_at_once() -> None:
    calls = 200
    barrier = threading.Barrier(2, timeout=60)
    traces: dict[str, Any] = {}
    errors: list[BaseException] = []

    def worker(func: Any) -> None:
        try:
            with npi.trace() as t:
                traces[func.__name__] = t
                barrier.wait()  # both blocks are open before either records
                for _ in range(calls):
                    npi.numpy_function(func, [np.ones(3)], tf.float64)
                barrier.wait()  # and stay open until both are done
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f,)) for f in (double, triple)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not tf_is_patched() and not npi.is_active()
    for t in traces.values():
        records = t.invocations
        seqs = [r.seq for r in records]
        assert len(set(seqs)) == len(seqs) == t.total
        counts = {name: sum(r.func_name == name for r in records) for name in ("double", "triple")}
        assert counts == {"double": calls, "triple": calls}  # the window is process-wide
        stats = t.stats()
        assert stats["double"].calls == stats["triple"].calls == calls
        for record in records:
            assert record.outputs[0].fingerprint is not None and record.error is None


def test_one_thread_leaving_keeps_the_other_recording() -> None:
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with npi.trace():
            entered.set()
            leave.wait(60)

    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(60)
    try:
        with npi.trace() as mine:
            npi.numpy_function(double, [np.ones(1)], tf.float64)
        assert tf_is_patched() and npi.is_active()  # the other thread's block is still open
        tf.numpy_function(double, [np.ones(1)], tf.float64)
    finally:
        leave.set()
        thread.join()
    assert not tf_is_patched()
    assert mine.total == 1


@pytest.fixture
def installed() -> Iterator[npi.Recorder]:
    recorder = npi.install(capacity=50)
    recorder.clear()
    try:
        yield recorder
    finally:
        npi.uninstall()
        recorder.clear()
        recorder.configure(capacity=npi.Options().capacity)


def test_install_and_uninstall(installed: npi.Recorder) -> None:
    assert installed is npi.recorder() and npi.is_installed() and tf_is_patched()
    assert installed.capacity == 50
    tf.numpy_function(double, [np.ones(2)], tf.float64)
    npi.numpy_function(triple, [np.ones(2)], tf.float64)
    npi.uninstall()
    assert not npi.is_installed() and not tf_is_patched() and not npi.is_active()
    npi.numpy_function(triple, [np.ones(2)], tf.float64)  # not recorded any more
    assert [r.func_name for r in installed.invocations()] == ["double", "triple"]
    assert installed.total == 2 and installed.stats().calls == 2


def test_install_with_a_trace_inside(installed: npi.Recorder) -> None:
    with npi.trace() as t:
        npi.numpy_function(double, [np.ones(2)], tf.float64)
    assert tf_is_patched()  # still installed
    npi.numpy_function(double, [np.ones(2)], tf.float64)
    assert t.total == 1 and installed.total == 2


# -- graphs traced before tracing was switched on -------------------------------------------------


def prebuilt(x: np.ndarray) -> np.ndarray:
    return x + 10


def test_graphs_built_before_tracing_keep_their_declaration() -> None:
    """Ops built after ``import tfnp_inspect`` but before tracing get every check (issue 12)."""
    function = tf.function(lambda v: tf.numpy_function(prebuilt, [v], tf.float32))
    dataset = tf.data.Dataset.range(6).map(
        lambda i: tf.numpy_function(prebuilt, [i], tf.int64), num_parallel_calls=4
    )
    assert function(tf.ones([3])).numpy().tolist() == [11.0] * 3  # traced and run untraced
    assert sorted(dataset.as_numpy_iterator()) == list(range(10, 16))

    with npi.trace() as t:
        from_function = function(tf.ones([3]))
        from_dataset = sorted(dataset.as_numpy_iterator())
    assert from_function.numpy().tolist() == [11.0] * 3 and from_dataset == list(range(10, 16))
    records = t.invocations
    assert len(records) == 7
    for record in records:
        assert record.func_name == "prebuilt"
        assert record.site.origin == "wrapper" and record.mode == "graph"
        assert record.stateful is True and record.call_site is not None  # kept at construction
        assert record.site.token is not None and record.site.token.startswith("pyfunc_")
        assert record.error is None and len(record.inputs) == len(record.outputs) == 1
    vector = [r for r in records if r.inputs[0].shape == (3,)]
    assert len(vector) == 1 and vector[0].inputs[0].shares_tensor_memory
    assert sorted(int(r.outputs[0].stats.max) for r in records if r.inputs[0].shape == ()) == list(range(10, 16))

    function(tf.ones([3]))
    assert t.total == 7  # and nothing once the block is closed


def mutating_prebuilt(x: np.ndarray) -> np.ndarray:
    x += 1
    return x.copy()


def test_prebuilt_graphs_are_checked_too() -> None:
    function = tf.function(lambda v: tf.numpy_function(mutating_prebuilt, [v], tf.float32))
    function(tf.ones([2]))
    with npi.trace() as t:
        function(tf.ones([2]))
    (record,) = t.invocations
    assert record.site.origin == "wrapper"
    assert [v.kind for v in record.violations] == ["mutated-input"]


def test_instrumented_graphs_are_recorded_once() -> None:
    function = tf.function(lambda v: npi.numpy_function(double, [v], tf.float32))
    function(tf.ones([2]))  # built with our wrapper, before tracing
    with npi.trace() as t:
        function(tf.ones([2]))
    (record,) = t.invocations  # not a second time through the registry hook
    assert record.site.origin == "wrapper" and record.call_site is not None


# -- live listeners -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_subscribers_receive_each_invocation(mode: str) -> None:
    received: list[Any] = []
    with npi.trace() as t:
        subscription = t.subscribe(received.append)
        run_in_mode(mode, _call_double, [np.ones(2, np.float32)], repeat=3)
        subscription.close()
        run_in_mode(mode, _call_double, [np.ones(2, np.float32)])
    assert len(received) == 3 and t.total == 4
    assert sorted(r.seq for r in received) == sorted(r.seq for r in t.invocations)[:3]
    assert all(r.func_name == "double" and r.outputs for r in received)


def test_subscription_as_context_manager() -> None:
    received: list[int] = []
    with npi.trace() as t:
        with t.subscribe(lambda inv: received.append(inv.seq)):
            npi.numpy_function(double, [np.ones(1)], tf.float64)
        npi.numpy_function(double, [np.ones(1)], tf.float64)
    assert received == [t.invocations[0].seq]


def test_subscribe_rejects_non_callables() -> None:
    with npi.trace() as t:
        with pytest.raises(TypeError, match="callable"):
            t.subscribe("not a function")


@pytest.mark.parametrize("mode", MODES)
def test_a_raising_listener_is_removed_with_a_warning(mode: str) -> None:
    calls: list[int] = []
    healthy: list[int] = []

    def broken(invocation: Any) -> None:
        calls.append(invocation.seq)
        raise RuntimeError("listener bug")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with npi.trace() as t:
            t.subscribe(broken)
            t.subscribe(lambda inv: healthy.append(inv.seq))
            outputs = run_in_mode(mode, _call_double, [np.ones(2, np.float32)], repeat=3)
    assert [o.numpy().tolist() for o in outputs] == [[2.0, 2.0]] * 3  # the program is unaffected
    assert len(healthy) == 3 and t.total == 3
    # removed at its first failure (parallel calls may have been inside it at that moment)
    if mode == "dataset":
        assert 1 <= len(calls) <= PARALLEL_CALLS
    else:
        assert len(calls) == 1
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == len(calls)
    assert all("listener bug" in m and "removed" in m for m in messages)


def test_tracing_started_before_tensorflow_is_imported() -> None:
    """``trace()`` before ``import tensorflow``: the registry patch imports TF, whose import then
    installs the construction hooks; neither may wait for the other (this once deadlocked)."""
    import subprocess
    import sys

    script = (
        "import tfnp_inspect as npi\n"
        "with npi.trace() as t:\n"
        "    import tensorflow as tf\n"
        "    tf.function(lambda v: tf.numpy_function(lambda x: x * 2, [v], tf.float32))(tf.ones([2]))\n"
        "print(len(t.invocations), t.invocations[0].site.origin)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "wrapper"]


def module_level_double(x: np.ndarray) -> np.ndarray:
    return x * 2


def test_imported_graph_def_runs_under_install(process_recorder: npi.Recorder) -> None:
    """An imported GraphDef finds its callback through TF's own link ``func.ag_dnc_wrapper__``
    (the registration outlives the graph that made it); recording must leave that link as TF set it."""
    npi.install()
    try:
        built = tf.Graph()
        with built.as_default():
            x = tf.compat.v1.placeholder(tf.float32, name="x")
            y = tf.compat.v1.py_func(module_level_double, [x], tf.float32)
        graph_def, output_name = built.as_graph_def(), y.name
        del built, x, y
        imported = tf.Graph()
        with imported.as_default():
            feed = tf.compat.v1.placeholder(tf.float32, name="feed")
            (result,) = tf.compat.v1.import_graph_def(graph_def, input_map={"x:0": feed}, return_elements=[output_name])
            with tf.compat.v1.Session() as session:
                assert session.run(result, {feed: [1.5, 2.0]}).tolist() == [3.0, 4.0]
    finally:
        npi.uninstall()
    assert [inv.func_name for inv in process_recorder.invocations()] == ["module_level_double"]


def test_a_retraced_function_is_remembered_once() -> None:
    """Every op keeps its function weakly for replay; one function built into many graphs (a
    tf.function retraced per Python scalar) must cost one entry, not one per op."""
    from tfnp_inspect.model import records

    def retraced(x: np.ndarray) -> np.ndarray:
        return x + 1

    before = len(records._site_functions)
    step = tf.function(lambda v, k: tf.numpy_function(retraced, [v], tf.float32) * k)
    for k in range(30):
        step(tf.ones([1]), float(k))  # a new graph, and a new op, for every Python float
    assert len(records._site_functions) - before == 1
