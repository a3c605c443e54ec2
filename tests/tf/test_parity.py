"""``tfnp_inspect.numpy_function`` is a drop-in for ``tf.numpy_function``.

Every test runs the same case, with the same assertions, through four implementations:
TensorFlow's own function, ours untraced, ours while ``trace()`` records, and
``tf.numpy_function`` while ``trace()`` has patched it. Each runs eagerly, in ``tf.function``
and in ``tf.data`` with parallel calls. The side-by-side tests at the end compare our outcome
with TensorFlow's, in the same test, on the corner cases where TF's behaviour is quirky.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

from core_helpers import (
    GRAPH_MODES,
    MODES,
    TF_NUMPY_FUNCTION,
    error_core,
    normalize,
    run_in_mode,
    tokens_normalized,
)

pytestmark = [
    pytest.mark.timeout(120),
    # the quirky returns are contract violations: parity is about what TF does with them
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]


class Impl(NamedTuple):
    name: str
    numpy_function: Callable[..., Any]
    trace: Any  # the active Trace, or None


IMPLS = ("tf", "tfnp", "tfnp-traced", "tf-patched")


def _patched_tf_numpy_function(*args: Any, **kwargs: Any) -> Any:
    return tf.numpy_function(*args, **kwargs)  # looked up at call time: patched while tracing


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> Iterator[Impl]:
    name = request.param
    if name == "tf":
        yield Impl(name, TF_NUMPY_FUNCTION, None)
    elif name == "tfnp":
        yield Impl(name, npi.numpy_function, None)
    else:
        with npi.trace() as trace:
            function = npi.numpy_function if name == "tfnp-traced" else _patched_tf_numpy_function
            yield Impl(name, function, trace)


def assert_recorded(impl: Impl, func_name: str, at_least: int = 1) -> None:
    """The traced implementations must really have recorded the calls (else parity is moot)."""
    if impl.trace is not None:
        calls = [inv for inv in impl.trace.invocations if inv.func_name == func_name]
        assert len(calls) >= at_least, f"{impl.name}: {len(calls)} calls of {func_name} recorded"


# -- values, dtypes, shapes ---------------------------------------------------------------------

DTYPE_VALUES = {
    tf.bool: [True, False, True],
    tf.int8: [-3, 0, 7],
    tf.int16: [-300, 0, 7],
    tf.int32: [-70000, 1, 2],
    tf.int64: [-(2**40), 1, 2],
    tf.uint8: [0, 200, 255],
    tf.uint16: [0, 60000, 3],
    tf.uint32: [0, 4_000_000_000, 3],
    tf.uint64: [0, 2**63 + 5, 3],
    tf.float16: [0.5, -1.5, 2.0],
    tf.float32: [0.25, -1.5, 3.0e10],
    tf.float64: [1e-300, -1.5, 3.0],
    tf.bfloat16: [0.5, -1.5, 2.0],
    tf.complex64: [1 + 2j, -3j, 0.5],
    tf.complex128: [1e200 + 2j, -3j, 0.5],
    tf.string: [b"a", b"bc\x00d", b""],
}
DTYPES = list(DTYPE_VALUES)


def _tensor_of(dtype: tf.DType) -> tf.Tensor:
    return tf.constant(DTYPE_VALUES[dtype], dtype=dtype)


RECEIVED: list[Any] = []  # (dtype, item type) of what each call of reverse_all was given


def reverse_all(*arrays: np.ndarray) -> list[np.ndarray]:
    """Reversed views (non-contiguous returns) of every input."""
    RECEIVED.append([(a.dtype, type(a.flat[0])) for a in arrays])
    return [a[::-1] for a in arrays]


@pytest.mark.parametrize("mode", MODES)
def test_every_dtype_keeps_values_dtype_and_shape(impl: Impl, mode: str) -> None:
    RECEIVED.clear()
    inputs = [_tensor_of(d) for d in DTYPES]
    runs = run_in_mode(mode, lambda *xs: impl.numpy_function(reverse_all, list(xs), DTYPES), inputs, repeat=2)
    assert len(runs) == 2
    for outputs in runs:
        assert len(outputs) == len(DTYPES)
        for dtype, out in zip(DTYPES, outputs, strict=False):
            assert out.dtype == dtype
            assert tuple(out.shape) == (3,)
            expected = np.array(DTYPE_VALUES[dtype][::-1], dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
            assert out.numpy().tolist() == expected.tolist(), dtype.name
    assert len(RECEIVED) == 2
    for received in RECEIVED:
        for dtype, (array_dtype, item_type) in zip(DTYPES, received, strict=False):
            if dtype == tf.string:  # tf.string arrives as an object array of bytes
                assert array_dtype == np.dtype(object) and item_type is bytes
            else:
                assert array_dtype == np.dtype(dtype.as_numpy_dtype)
    assert_recorded(impl, "reverse_all", 2)


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


def double_and_count(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x * 2, np.array(x.size, dtype=np.int32)


@pytest.mark.parametrize("mode", MODES)
def test_single_vs_list_returns(impl: Impl, mode: str) -> None:
    x = np.arange(4, dtype=np.float32)
    structures: list[tuple[str, ...]] = []

    def shape_of(result: Any) -> str:
        return f"list of {len(result)}" if type(result) is list else type(result).__name__

    def call(v: tf.Tensor) -> Any:
        single = impl.numpy_function(double, [v], tf.float32)
        one_in_list = impl.numpy_function(double, [v], [tf.float32])
        pair = impl.numpy_function(double_and_count, [v], (tf.float32, tf.int32))
        structures.append((shape_of(single), shape_of(one_in_list), shape_of(pair)))
        one = one_in_list[0] if type(one_in_list) is list else one_in_list
        return single, one, pair[0], pair[1]

    (single, one, pair_first, pair_second), = run_in_mode(mode, call, [x])
    for tensor in (single, one, pair_first):
        assert tensor.dtype == tf.float32 and tensor.numpy().tolist() == [0.0, 2.0, 4.0, 6.0]
    assert pair_second.dtype == tf.int32 and pair_second.numpy() == 4
    (single_kind, one_kind, pair_kind), = structures  # traced once in graph modes
    assert "Tensor" in single_kind and pair_kind == "list of 2"
    if mode == "eager":  # eager mode follows what func returned: one array, one tensor
        assert "Tensor" in one_kind
    else:  # graph mode follows Tout
        assert one_kind == "list of 1"
    assert_recorded(impl, "double", 2)


CALLS: list[int] = []


def side_effect_only(x: np.ndarray) -> None:
    CALLS.append(int(x))


@pytest.mark.parametrize("mode", MODES)
def test_zero_outputs(impl: Impl, mode: str) -> None:
    CALLS.clear()
    returned: list[Any] = []

    def call(v: tf.Tensor) -> tf.Tensor:
        returned.append(impl.numpy_function(side_effect_only, [v], []))
        return v

    run_in_mode(mode, call, [np.int64(5)], repeat=3)
    assert CALLS == [5, 5, 5]  # stateful: never pruned although nothing uses its output
    if mode == "eager":
        assert returned == [None, None, None]
    else:
        assert all(isinstance(r, tf.Operation) for r in returned)
        assert {r.type for r in returned} == {"PyFunc"}
    assert_recorded(impl, "side_effect_only", 3)


SEEN: list[Any] = []  # (type, shape) of what each call of received_kind was given


def received_kind(x: Any) -> np.ndarray:
    SEEN.append((type(x), np.shape(x)))
    return np.asarray(x) * 2


@pytest.mark.parametrize("mode", MODES)
def test_zero_size_and_zero_dimensional_arrays(impl: Impl, mode: str) -> None:
    SEEN.clear()
    empty = np.zeros((0, 3), dtype=np.float32)
    scalar = np.float64(2.5)

    def call(e: tf.Tensor, s: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return (
            impl.numpy_function(received_kind, [e], tf.float32),
            impl.numpy_function(received_kind, [s], tf.float64),
        )

    (out_empty, out_scalar), = run_in_mode(mode, call, [empty, scalar])
    assert out_empty.dtype == tf.float32 and tuple(out_empty.shape) == (0, 3)
    assert out_scalar.dtype == tf.float64 and tuple(out_scalar.shape) == () and out_scalar.numpy() == 5.0
    kinds = {shape: kind for kind, shape in SEEN}
    assert kinds[(0, 3)] is np.ndarray
    # eager mode hands 0-d inputs over as 0-d arrays, graph mode as numpy scalars
    assert kinds[()] is (np.ndarray if mode == "eager" else np.float64)
    assert_recorded(impl, "received_kind", 2)


LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "fortran": lambda x: np.asfortranarray(x.reshape(3, 4)),
    "transposed": lambda x: x.reshape(3, 4).T,
    "strided": lambda x: x[::3],
    "negative-stride": lambda x: x[::-2],
    "broadcast": lambda x: np.broadcast_to(x[:4], (2, 4)),
    "column": lambda x: x.reshape(3, 4)[:, 1],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_non_contiguous_returns(impl: Impl, mode: str, layout: str) -> None:
    x = np.arange(12, dtype=np.float64)
    make = LAYOUTS[layout]
    outputs = run_in_mode(mode, lambda v: impl.numpy_function(make, [v], tf.float64), [x], repeat=2)
    expected = make(x)
    for out in outputs:
        assert out.dtype == tf.float64
        assert tuple(out.shape) == expected.shape
        assert out.numpy().tolist() == expected.tolist()


# -- eager quirks kept as they are ---------------------------------------------------------------


def as_float64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def twice(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x, x + 1


def test_eager_keeps_float64_returned_for_float32_tout(impl: Impl) -> None:
    out = impl.numpy_function(as_float64, [np.ones(3, np.float32)], tf.float32)
    assert out.dtype == tf.float64  # eager mode does not check Tout
    assert out.numpy().tolist() == [1.0, 1.0, 1.0]
    assert_recorded(impl, "as_float64")


def test_eager_gives_a_list_for_two_values_with_one_tout(impl: Impl) -> None:
    out = impl.numpy_function(twice, [np.ones(2, np.float32)], tf.float32)
    assert isinstance(out, list) and len(out) == 2
    assert [o.numpy().tolist() for o in out] == [[1.0, 1.0], [2.0, 2.0]]
    assert_recorded(impl, "twice")


@pytest.mark.parametrize("mode", GRAPH_MODES)
@pytest.mark.parametrize(
    "func, message",
    [
        (as_float64, "0-th value returned by pyfunc_N is double, but expects float"),
        (twice, "pyfunc_N returns 2 values, but expects to see 1 values"),
    ],
    ids=["float64-for-float32", "two-for-one"],
)
def test_graph_mode_rejects_what_eager_accepts(impl: Impl, mode: str, func: Any, message: str) -> None:
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        run_in_mode(mode, lambda v: impl.numpy_function(func, [v], tf.float32), [np.ones(2, np.float32)])
    assert message in tokens_normalized(caught.value)
    assert_recorded(impl, func.__name__)


# -- exceptions ------------------------------------------------------------------------------------


class CustomError(Exception):
    pass


#: (exception, TF error class in tf.function, TF error class in tf.data)
EXCEPTIONS = {
    "ValueError": (ValueError("bad value 7"), tf.errors.InvalidArgumentError, tf.errors.InvalidArgumentError),
    "TypeError": (TypeError("bad type 7"), tf.errors.InvalidArgumentError, tf.errors.InvalidArgumentError),
    "StopIteration": (StopIteration("stop 7"), tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError),
    "MemoryError": (MemoryError("memory 7"), tf.errors.ResourceExhaustedError, tf.errors.ResourceExhaustedError),
    "NotImplementedError": (NotImplementedError("not yet 7"), tf.errors.UnimplementedError, tf.errors.UnimplementedError),
    "KeyError": (KeyError("key 7"), tf.errors.UnknownError, tf.errors.UnknownError),
    "CustomError": (CustomError("custom 7"), tf.errors.UnknownError, tf.errors.UnknownError),
}


RAISING: list[BaseException] = []  # the exception raise_stored raises


def raise_stored(x: np.ndarray) -> np.ndarray:
    raise RAISING[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(EXCEPTIONS))
def test_same_exception_class_and_message(impl: Impl, mode: str, name: str) -> None:
    exc, function_error, dataset_error = EXCEPTIONS[name]
    RAISING[:] = [exc]
    call = lambda v: impl.numpy_function(raise_stored, [v], tf.float32)  # noqa: E731
    if mode == "eager":
        with pytest.raises(type(exc)) as caught:
            run_in_mode(mode, call, [np.ones(2, np.float32)])
        assert caught.value is exc  # the original exception object, unchanged
    else:
        expected = function_error if mode == "function" else dataset_error
        with pytest.raises(tf.errors.OpError) as caught:
            run_in_mode(mode, call, [np.ones(2, np.float32)])
        assert type(caught.value) is expected
        assert f"{type(exc).__name__}: {exc}" in str(caught.value)
    assert_recorded(impl, "raise_stored")


# -- gradients, decorator, name ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_gradients_stay_none(impl: Impl, mode: str) -> None:
    def gradient(x: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = impl.numpy_function(double, [x], tf.float32)
        return tape.gradient(y, x)

    (grad,) = run_in_mode(mode, gradient, [np.ones(3, np.float32)])
    assert grad is None


@pytest.mark.parametrize("mode", MODES)
def test_decorator_form(impl: Impl, mode: str) -> None:
    @impl.numpy_function(Tout=tf.float32)
    def scaled_sum(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x + y) * np.float32(3)

    @impl.numpy_function(Tout=[tf.int64, tf.int64], stateful=False)
    def size_and_rank(x: np.ndarray) -> list[np.ndarray]:
        return [np.array(x.size, dtype=np.int64), np.array(x.ndim, dtype=np.int64)]

    def call(x: tf.Tensor, y: tf.Tensor) -> Any:
        return scaled_sum(x, y), size_and_rank(x)

    (total, (size, rank)), = run_in_mode(mode, call, [np.ones(2, np.float32), np.full(2, 2, np.float32)])
    assert total.dtype == tf.float32 and total.numpy().tolist() == [9.0, 9.0]
    assert size.dtype == tf.int64 and size.numpy() == 2
    assert rank.dtype == tf.int64 and rank.numpy() == 1
    assert_recorded(impl, scaled_sum.__qualname__)


@pytest.mark.parametrize("mode", GRAPH_MODES)
@pytest.mark.parametrize("stateful, op_type", [(True, "PyFunc"), (False, "PyFuncStateless")])
def test_name_and_statefulness_reach_the_op(impl: Impl, mode: str, stateful: bool, op_type: str) -> None:
    ops: list[tf.Operation] = []

    def call(v: tf.Tensor) -> tf.Tensor:
        out = impl.numpy_function(double, [v], tf.float32, stateful=stateful, name="my_op")
        ops.append(out.op)
        return out

    (out, *_) = run_in_mode(mode, call, [np.ones(2, np.float32)])
    assert out.numpy().tolist() == [2.0, 2.0]
    assert [op.name for op in ops] == ["my_op"]
    assert [op.type for op in ops] == [op_type]
    assert_recorded(impl, "double")


# -- side by side with TensorFlow on quirky returns -----------------------------------------------


def _returning(value: Any) -> Callable[[np.ndarray], Any]:
    def constant_result(x: np.ndarray) -> Any:
        return value() if callable(value) else value

    return constant_result


#: name -> (what func returns, Tout)
QUIRKS: dict[str, tuple[Any, Any]] = {
    "python-float": (2.5, tf.float64),
    "python-float-for-float32": (2.5, tf.float32),
    "python-int": (7, tf.int64),
    "python-int-for-int32": (7, tf.int32),
    "python-bool": (True, tf.bool),
    "python-list-two-touts": ([1.0, 2.0], [tf.float64, tf.float64]),
    "python-list-one-tout": ([1.0, 2.0], tf.float64),
    "nested-list": ([[1, 2, 3]], [tf.int64]),
    "bytes": (b"hi", tf.string),
    "str": ("hi", tf.string),
    "unicode-array": (lambda: np.array(["ab", "c"]), tf.string),
    "non-ascii-unicode-array": (lambda: np.array(["h\u00e9"]), tf.string),
    "object-bytes-array": (lambda: np.array([b"x", b"yz"], dtype=object), tf.string),
    "dict": ({"a": 1}, tf.float32),
    "none-for-one": (None, tf.float32),
    "one-for-two": (lambda: np.float32(1), [tf.float32, tf.float32]),
    "tuple-for-one": (lambda: (np.float32(1), np.float32(2)), tf.float32),
    "int-array-for-float": (lambda: np.arange(3), tf.float32),
}


def outcome(numpy_function: Callable[..., Any], mode: str, case: str) -> Any:
    """What running the case gives: the normalized results, or the error class and its core."""
    value, tout = QUIRKS[case]
    func = _returning(value)
    try:
        runs = run_in_mode(mode, lambda v: numpy_function(func, [v], tout), [np.ones(2, np.float32)], repeat=2)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        return ("raises", type(exc).__name__, error_core(exc))
    return ("returns", [normalize(r) for r in runs])


@functools.cache
def tf_outcome(mode: str, case: str) -> Any:
    return outcome(TF_NUMPY_FUNCTION, mode, case)


@pytest.mark.parametrize("impl", IMPLS[1:], indirect=True)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(QUIRKS))
def test_side_by_side_with_tensorflow(impl: Impl, mode: str, case: str) -> None:
    expected = tf_outcome(mode, case)
    assert outcome(impl.numpy_function, mode, case) == expected
    assert_recorded(impl, "_returning.<locals>.constant_result")
