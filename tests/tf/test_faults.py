"""Faults inside the user's function: errors after a write, KeyboardInterrupt and SystemExit,
and traced functions that call other traced functions.

Whatever happens, the user's exception reaches the caller as TensorFlow alone would deliver it
(the very same object in eager mode), the call is recorded with its error and its violations,
and tracing is left in a consistent state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

from core_helpers import (
    GRAPH_MODES,
    MODES,
    RECORDED_MODE,
    TF_NUMPY_FUNCTION,
    assert_complete,
    assert_tracing_off,
    error_core,
    normalize,
    run_in_mode,
    tf_is_patched,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]


class Boom(Exception):
    pass


def outcome(action: Callable[[], Any]) -> tuple[str, Any]:
    """('ok', normalized result) or ('raised', the exception), BaseException included."""
    try:
        return "ok", normalize(action())
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt and SystemExit are the point here
        return "raised", exc


def assert_same_error(traced: BaseException, bare: BaseException, mode: str, raised: BaseException) -> None:
    """Eager: the user's own exception object. Graph: the error TF makes of it, unchanged."""
    if mode == "eager":
        assert traced is raised
        assert bare is not traced and type(bare) is type(traced)
    else:
        assert type(traced) is type(bare)
        assert error_core(traced) == error_core(bare)


# -- raising after a write into an input ----------------------------------------------------------


def writes_then_raises(raised: list[BaseException]) -> Callable[[np.ndarray], np.ndarray]:
    def mutate_then_raise(x: np.ndarray) -> np.ndarray:
        x += 1
        error = Boom(f"failed after writing {x.size} values")
        raised.append(error)
        raise error

    return mutate_then_raise


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_raising_after_mutating_records_both_and_keeps_the_error(mode: str, strict: bool) -> None:
    raised: list[BaseException] = []
    func = writes_then_raises(raised)
    inputs = [np.arange(3, dtype=np.float32)]
    bare_kind, bare = outcome(lambda: run_in_mode(mode, lambda v: TF_NUMPY_FUNCTION(func, [v], tf.float32), inputs))
    with npi.trace(strict=strict) as trace:
        kind, traced = outcome(lambda: run_in_mode(mode, lambda v: npi.numpy_function(func, [v], tf.float32), inputs))

    assert (kind, bare_kind) == ("raised", "raised")
    assert_same_error(traced, bare, mode, raised[-1])  # strict mode: the user's error wins
    (record,) = assert_complete(trace, 1)
    assert record.error.type == "Boom"
    assert record.error.message == "failed after writing 3 values"
    assert "mutate_then_raise" in record.error.traceback
    assert [v.kind for v in record.violations] == ["mutated-input"]
    assert record.outputs == ()
    assert record.inputs[0].stats.min == 0.0  # the input as TF passed it, before the write
    assert trace.stats()[npi.function_name(func)].errors == 1
    assert_tracing_off()


# -- KeyboardInterrupt and SystemExit -------------------------------------------------------------

BASE_EXCEPTIONS = [KeyboardInterrupt, SystemExit]


def raising(exc: BaseException) -> Callable[[np.ndarray], np.ndarray]:
    def interrupted(x: np.ndarray) -> np.ndarray:
        raise exc

    return interrupted


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS)
def test_base_exception_leaving_the_trace_block(kind: type[BaseException]) -> None:
    exc = kind("stop now")
    with pytest.raises(kind) as caught:
        with npi.trace() as trace:
            npi.numpy_function(raising(exc), [np.ones(2)], tf.float64)
    assert caught.value is exc
    assert_tracing_off()  # the block unwound: TF is unpatched
    (record,) = assert_complete(trace, 1)
    assert record.error.type == kind.__name__
    assert record.error.message == "stop now"

    with npi.trace() as after:  # tracing works as before, and seq goes on
        assert npi.numpy_function(double, [np.ones(2)], tf.float64).numpy().tolist() == [2.0, 2.0]
    (next_record,) = assert_complete(after, 1)
    assert next_record.seq == record.seq + 1


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS)
def test_base_exception_caught_inside_the_trace_block(kind: type[BaseException]) -> None:
    exc = kind("stop now")
    interrupted = raising(exc)
    with npi.trace() as trace:
        with pytest.raises(kind) as caught:
            npi.numpy_function(interrupted, [np.ones(2)], tf.float64)
        assert caught.value is exc
        assert npi.is_active() and tf_is_patched()  # still recording
        assert npi.numpy_function(double, [np.ones(2)], tf.float64).numpy().tolist() == [2.0, 2.0]
    failed, succeeded = assert_complete(trace, 2)
    assert failed.error.type == kind.__name__ and succeeded.error is None
    stats = trace.stats()
    assert stats[npi.function_name(interrupted)].errors == 1 and stats["double"].errors == 0


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS)
def test_base_exception_while_installed(kind: type[BaseException], process_recorder: npi.Recorder) -> None:
    exc = kind(7)
    process_recorder.clear()
    npi.install()
    with pytest.raises(kind) as caught:
        npi.numpy_function(raising(exc), [np.ones(2)], tf.float64)
    assert caught.value is exc
    assert npi.is_installed() and npi.is_active()  # install() is not undone by the user's error
    npi.numpy_function(double, [np.ones(2)], tf.float64)
    npi.uninstall()
    failed, succeeded = assert_complete(npi.Trace(process_recorder), 2)
    assert failed.error.type == kind.__name__ and failed.error.message == "7"
    assert succeeded.error is None
    assert_tracing_off()


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS)
@pytest.mark.parametrize("mode", GRAPH_MODES)
def test_base_exception_in_graph_mode_as_tf_delivers_it(mode: str, kind: type[BaseException]) -> None:
    exc = kind("stop now")
    inputs = [np.ones(2, np.float32)]
    _, bare = outcome(lambda: run_in_mode(mode, lambda v: TF_NUMPY_FUNCTION(raising(exc), [v], tf.float32), inputs))
    with npi.trace() as trace:
        _, traced = outcome(lambda: run_in_mode(mode, lambda v: npi.numpy_function(raising(exc), [v], tf.float32), inputs))
    assert isinstance(bare, tf.errors.OpError)  # TF turns it into an UnknownError
    assert_same_error(traced, bare, mode, exc)
    (record,) = assert_complete(trace, 1)
    assert record.error.type == kind.__name__ and record.mode == "graph"
    assert_tracing_off()


# -- a traced function calling another traced function eagerly ----------------------------------


def add_one(x: np.ndarray) -> np.ndarray:
    return x + 1


def calling(numpy_function: Callable[..., Any], inner: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """An outer function whose body runs ``inner`` through ``numpy_function`` (eagerly: TF
    runs every numpy function eagerly, also the ones called from graph mode)."""

    def outer(x: np.ndarray) -> np.ndarray:
        try:
            inner_result = np.asarray(numpy_function(inner, [x], tf.float32))
        except Boom:
            inner_result = np.zeros_like(x)
        return inner_result * 2

    return outer


def raising_boom(x: np.ndarray) -> np.ndarray:
    raise Boom("inner failed")


OUTER = "calling.<locals>.outer"


def assert_nested(records: list[Any], calls: int, inner_name: str) -> None:
    """Each outer call encloses exactly one inner call on the same thread, recorded just before it."""
    inner = [r for r in records if r.func_name == inner_name]
    outer = [r for r in records if r.func_name == OUTER]
    assert len(inner) == len(outer) == calls
    for record in inner:
        assert record.mode == "eager"
        enclosing = [
            o for o in outer
            if o.thread_id == record.thread_id
            and o.start_ns <= record.start_ns
            and record.start_ns + record.duration_ns <= o.start_ns + o.duration_ns
        ]
        assert len(enclosing) == 1
        assert record.seq < enclosing[0].seq  # the inner call finishes first
    if calls == 1:
        assert inner[0].seq + 1 == outer[0].seq


@pytest.mark.parametrize("inner", [add_one, raising_boom], ids=["inner-ok", "inner-raises"])
@pytest.mark.parametrize("mode", MODES)
def test_traced_function_calling_another_traced_function(mode: str, inner: Callable[..., Any]) -> None:
    inputs, repeat = [np.arange(3, dtype=np.float32)], (3 if mode == "dataset" else 1)
    bare_outer = calling(TF_NUMPY_FUNCTION, inner)
    traced_outer = calling(npi.numpy_function, inner)
    bare = normalize(run_in_mode(mode, lambda v: TF_NUMPY_FUNCTION(bare_outer, [v], tf.float32), inputs, repeat))
    with npi.trace() as trace:
        traced = normalize(run_in_mode(mode, lambda v: npi.numpy_function(traced_outer, [v], tf.float32), inputs, repeat))
    assert traced == bare
    records = assert_complete(trace, 2 * repeat)
    assert_nested(records, repeat, inner.__name__)
    assert all(r.mode == RECORDED_MODE[mode] for r in records if r.func_name == OUTER)
    assert all((r.error is not None) == (r.func_name == "raising_boom") for r in records)


def test_keyboard_interrupt_from_a_nested_call_unwinds_both() -> None:
    interrupt = KeyboardInterrupt("inner interrupted")
    outer = calling(npi.numpy_function, raising(interrupt))
    with npi.trace() as trace:
        with pytest.raises(KeyboardInterrupt) as caught:
            npi.numpy_function(outer, [np.ones(2, np.float32)], tf.float32)
    assert caught.value is interrupt
    inner_record, outer_record = assert_complete(trace, 2)
    assert inner_record.func_name == "raising.<locals>.interrupted" and outer_record.func_name == OUTER
    assert inner_record.error.type == outer_record.error.type == "KeyboardInterrupt"
    assert_tracing_off()
