"""Arrays of every kind through the recorder: every TF dtype, numpy-only dtypes (unicode, bytes,
objects, datetimes, records), zero-size, 0-d, non-native byte order, strided views, an array over
2 GiB, and hypothesis-generated shapes, dtypes and strides.

The user's results and errors must stay exactly what TensorFlow alone gives; the record must
describe each array faithfully (shape, dtype, size, a layout-independent fingerprint, stats of
numeric arrays) or say why it could not (capture notes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfnp_inspect as npi
from tfnp_inspect.recording.arrays import MAX_CAPTURE_ARRAY_BYTES

from core_helpers import (
    MODES,
    TF_NUMPY_FUNCTION,
    assert_complete,
    assert_tracing_off,
    error_core,
    normalize,
    run_in_mode,
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

GIB = 1 << 30


def identity(x: Any) -> Any:
    return x


def outcome(run: Callable[[], Any]) -> tuple[str, Any]:
    """What the user sees: ('ok', normalized result) or ('raised', error type and message core)."""
    try:
        return "ok", normalize(run())
    except Exception as exc:  # noqa: BLE001 - compared, type and text, with TF's own outcome
        return "raised", (type(exc), error_core(exc))


def traced_and_bare(
    mode: str, func: Callable[..., Any], inputs: list[Any], tout: Any, **options: Any,
) -> tuple[Any, tuple[str, Any]]:
    """Run ``func`` through TF's numpy_function untraced and through ours traced; the trace and
    the traced outcome, after checking that it equals TF's."""
    bare = outcome(lambda: run_in_mode(mode, lambda *v: TF_NUMPY_FUNCTION(func, list(v), tout), inputs))
    with npi.trace(**options) as trace:
        traced = outcome(lambda: run_in_mode(mode, lambda *v: npi.numpy_function(func, list(v), tout), inputs))
    assert repr(traced) == repr(bare)  # repr: NaN results compare equal
    assert_tracing_off()
    return trace, traced


def plain_fingerprint(array: np.ndarray) -> int:
    """xxh3_64 of the contents of a plain (non-object) array, computed independently."""
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(array).tobytes())


def assert_stats_match(info: npi.ArrayInfo, values: np.ndarray) -> None:
    """Exact stats (small arrays) equal numpy's; numeric kinds only, and only when non-empty."""
    if values.dtype.kind not in "biuf" or values.size == 0:
        assert info.stats is None
        return
    stats = info.stats
    assert stats is not None
    flat = values.astype(np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    if not stats.exact:
        assert 0 < stats.elements < flat.size
        return
    assert stats.elements == flat.size
    assert stats.nan_count == int(np.isnan(flat).sum())
    assert stats.inf_count == int(np.isinf(flat).sum())
    if finite.size:
        assert (stats.min, stats.max) == (finite.min(), finite.max())
        assert math.isclose(stats.mean, finite.mean(), rel_tol=1e-9, abs_tol=1e-12)
    else:
        assert math.isnan(stats.min) and math.isnan(stats.max)


# -- every TF dtype, as input and output ----------------------------------------------------

TF_DTYPE_VALUES = {
    tf.bool: [True, False, True],
    tf.int8: [-128, 0, 127],
    tf.int16: [-300, 0, 7],
    tf.int32: [-70000, 1, 2],
    tf.int64: [-(2**40), 1, 2**62],
    tf.uint8: [0, 200, 255],
    tf.uint16: [0, 60000, 3],
    tf.uint32: [0, 4_000_000_000, 3],
    tf.uint64: [0, 2**63 + 5, 3],
    tf.float16: [0.5, -1.5, 65504.0],
    tf.bfloat16: [0.5, -1.5, 3.0],
    tf.float32: [1.5, float("nan"), float("-inf")],
    tf.float64: [1e-300, -2.5, 1e300],
    tf.complex64: [1 + 2j, 0j, -1j],
    tf.complex128: [1 + 2j, 0j, -1j],
    tf.string: [b"plain", "h\u00e9llo".encode(), b"\x00\xff"],
}


@pytest.mark.parametrize("dtype", list(TF_DTYPE_VALUES), ids=lambda d: d.name)
@pytest.mark.parametrize("mode", MODES)
def test_every_tf_dtype_as_input_and_output(mode: str, dtype: tf.DType) -> None:
    values = np.array(TF_DTYPE_VALUES[dtype], dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    trace, (kind, _) = traced_and_bare(mode, identity, [tf.constant(values, dtype)], dtype)
    assert kind == "ok"
    (record,) = assert_complete(trace, 1)
    expected_name = "object" if dtype == tf.string else str(values.dtype)
    for info in (*record.inputs, *record.outputs):
        assert (info.shape, info.dtype, info.nbytes) == ((3,), expected_name, values.nbytes)
        assert_stats_match(info, values)
    assert record.outputs[0].fingerprint == record.inputs[0].fingerprint
    if dtype != tf.string:
        assert record.inputs[0].fingerprint == plain_fingerprint(values)
    assert record.outputs[0].aliases_input == 0


def test_object_arrays_are_fingerprinted_by_value() -> None:
    """Object arrays hold pointers: equal items must give equal fingerprints, others not."""
    first = np.array([b"ab", b"c"], dtype=object)
    same = np.array([b"a" + b"b", b"c"], dtype=object)  # equal items, other objects
    other = np.array([b"a", b"bc"], dtype=object)  # same bytes in total, other items
    with npi.trace() as trace:
        for value in (first, same, other):
            npi.numpy_function(lambda v=value: v, [], tf.string)
    a, b, c = (r.outputs[0].fingerprint for r in assert_complete(trace, 3))
    assert a == b != c


# -- numpy-only dtypes: recorded as they are, converted (or refused) by TF as always ------------

NUMPY_ONLY = {
    "unicode": np.array(["ab", "h\u00e9llo"]),
    "ascii-unicode": np.array(["ab", "cde"]),
    "bytes": np.array([b"ab", b"c"]),
    "object-bytes": np.array([b"x", b"yz"], dtype=object),
    "object-mixed": np.array([1, "a", None], dtype=object),
    "datetime": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
    "timedelta": np.array([1, -2], dtype="timedelta64[s]"),
    "record": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]),
    "big-endian-int": np.array([3, -1, 7], dtype=">i4"),
    "big-endian-float": np.array([1.5, -2.0, np.inf], dtype=">f8"),
    "little-endian-explicit": np.array([1, 2], dtype="<u2"),
    "unicode-0d": np.array("hi"),
}


@pytest.mark.parametrize("capture", ["summary", "full"])
@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("name", list(NUMPY_ONLY))
def test_numpy_only_dtypes_as_outputs(name: str, mode: str, capture: str) -> None:
    value = NUMPY_ONLY[name]
    trace, _ = traced_and_bare(mode, lambda x: value, [np.ones(1, np.float32)], tf.string, capture=capture)
    (record,) = assert_complete(trace, 1)
    (info,) = record.outputs
    assert (info.shape, info.dtype, info.nbytes) == (value.shape, str(value.dtype), value.nbytes)
    assert isinstance(info.fingerprint, int)
    assert_stats_match(info, value)
    if value.dtype.kind in "biufcmMSUV":
        assert info.fingerprint == plain_fingerprint(value)
    if capture == "full":
        assert info.data is not value and info.data.dtype == value.dtype
        assert info.data.tolist() == value.tolist() or np.array_equal(info.data, value, equal_nan=True)


# -- zero-size and 0-d ------------------------------------------------------------------------

ZERO_SIZE_SHAPES = [(0,), (3, 0), (0, 2, 0)]


@pytest.mark.parametrize("dtype", [tf.float32, tf.int64, tf.bool, tf.string], ids=lambda d: d.name)
@pytest.mark.parametrize("shape", ZERO_SIZE_SHAPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_zero_size_arrays(mode: str, shape: tuple[int, ...], dtype: tf.DType) -> None:
    trace, (kind, _result) = traced_and_bare(mode, identity, [tf.zeros(shape, dtype)], dtype, capture="full")
    assert kind == "ok"
    (record,) = assert_complete(trace, 1)
    for info in (*record.inputs, *record.outputs):
        assert info.shape == shape and info.nbytes == 0 and info.stats is None
        assert info.data is not None and info.data.shape == shape


ZERO_D = {tf.float32: 2.5, tf.int32: -7, tf.bool: True, tf.string: b"one"}


@pytest.mark.parametrize("dtype", list(ZERO_D), ids=lambda d: d.name)
@pytest.mark.parametrize("mode", MODES)
def test_zero_d_values(mode: str, dtype: tf.DType) -> None:
    """Graph mode hands 0-d inputs over as numpy scalars (or bytes): recorded as 0-d arrays."""
    value = ZERO_D[dtype]
    trace, (kind, _) = traced_and_bare(mode, identity, [tf.constant(value, dtype)], dtype, capture="full")
    assert kind == "ok"
    (record,) = assert_complete(trace, 1)
    expected = np.array(value, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    for info in (*record.inputs, *record.outputs):
        assert (info.shape, info.dtype) == ((), str(expected.dtype))
        assert info.data.shape == () and info.data.item() == value
        assert_stats_match(info, expected)


# -- layouts: strided, transposed, Fortran-ordered outputs -----------------------------------------

LAYOUTS = {
    "every-other": lambda a: a[::2],
    "reversed": lambda a: a[::-1],
    "transposed": lambda a: a.reshape(4, 6).T,
    "fortran": lambda a: np.asfortranarray(a.reshape(4, 6)),
    "column": lambda a: a.reshape(4, 6)[:, 1],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("mode", ["eager", "function"])
def test_fingerprints_ignore_layout(mode: str, layout: str) -> None:
    """A strided output and its contiguous copy are the same contents: same fingerprint."""
    make = LAYOUTS[layout]

    def strided(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        view = make(x * 1)
        return view, np.ascontiguousarray(view)

    source = np.arange(24, dtype=np.float32)
    trace, (kind, _) = traced_and_bare(mode, strided, [source], [tf.float32, tf.float32])
    assert kind == "ok"
    (record,) = assert_complete(trace, 1)
    view, copy = record.outputs
    expected = make(source)
    assert view.c_contiguous == expected.flags.c_contiguous and copy.c_contiguous
    assert view.shape == copy.shape == expected.shape
    assert view.fingerprint == copy.fingerprint == plain_fingerprint(expected)
    assert_stats_match(view, expected)


# -- over 2 GiB: summarized, refused from capture with a note, never copied ------------------------


def memory_available() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    """This process's peak resident set (VmHWM) since the last :func:`reset_peak_rss`."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def ends_and_size(x: np.ndarray) -> np.ndarray:
    return np.array([x.size, x[0], x[-1]], dtype=np.int64)


@pytest.mark.timeout(180)
def test_array_over_two_gib_is_summarized_and_never_copied() -> None:
    if memory_available() < 8 * GIB:
        pytest.skip(f"needs 8 GiB of free memory, {memory_available() / GIB:.1f} GiB available")
    if not reset_peak_rss():
        pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs) to measure copies")
    size = MAX_CAPTURE_ARRAY_BYTES + 4096
    big = tf.fill([size], tf.constant(3, tf.uint8))

    @tf.function
    def run(x: tf.Tensor) -> tf.Tensor:  # graph mode: the input is a zero-copy view
        return npi.numpy_function(ends_and_size, [x], tf.int64)

    run.get_concrete_function(tf.TensorSpec([size], tf.uint8))
    reset_peak_rss()
    before = peak_rss()
    with npi.trace(capture="full") as trace:
        result = run(big)
    grown = peak_rss() - before
    assert grown < GIB, f"peak RSS grew by {grown / GIB:.2f} GiB: the array was copied"
    assert result.numpy().tolist() == [size, 3, 3]

    (record,) = assert_complete(trace, 1)
    (info,) = record.inputs
    assert (info.shape, info.dtype, info.nbytes) == ((size,), "uint8", size)
    assert info.data is None
    assert info.capture_note and "not captured" in info.capture_note and str(MAX_CAPTURE_ARRAY_BYTES) in info.capture_note
    assert info.shares_tensor_memory
    assert info.stats is not None and not info.stats.exact and info.stats.min == info.stats.max == 3
    assert isinstance(info.fingerprint, int)
    assert record.outputs[0].data is not None  # the small output is still captured
    assert trace.recorder.captured_bytes == record.outputs[0].nbytes


# -- hypothesis: shapes, dtypes and strides round-tripping through the recorder -------------------

NUMERIC_DTYPES = st.sampled_from([
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128,
]).map(np.dtype)


@st.composite
def strided_arrays(draw: st.DrawFn) -> np.ndarray:
    """An array of any numeric dtype and shape (0-d and zero-size included), then a view of it
    with steps of +-1 or +-2 per axis and the axes permuted."""
    dtype = draw(NUMERIC_DTYPES)
    base = draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
    steps = draw(st.lists(st.sampled_from([1, 2, -1, -2]), min_size=base.ndim, max_size=base.ndim))
    view = base[tuple(slice(None, None, step) for step in steps)]
    return view.transpose(draw(st.permutations(range(view.ndim))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(array=strided_arrays())
def test_hypothesis_arrays_round_trip_through_the_recorder(array: np.ndarray) -> None:
    tout = tf.as_dtype(array.dtype)
    with npi.trace(capture="full") as trace:
        result = npi.numpy_function(lambda x: array, [tf.constant(array)], tout)
    np.testing.assert_array_equal(result.numpy(), array)  # the user's result, unchanged (NaN == NaN)
    (record,) = assert_complete(trace, 1)
    (given_in,), (returned,) = record.inputs, record.outputs
    for info in (given_in, returned):
        assert (info.shape, info.dtype, info.nbytes) == (array.shape, str(array.dtype), array.nbytes)
        np.testing.assert_array_equal(info.data, array)
        assert_stats_match(info, array)
    assert given_in.c_contiguous  # TF hands over a contiguous copy
    assert returned.c_contiguous == array.flags.c_contiguous
    assert returned.fingerprint == given_in.fingerprint == plain_fingerprint(array)
