"""Property-based tests of content fingerprints (the basis of mutation and determinism checks)
over dtypes, shapes and strides, and of arrays round-tripping through the recorder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfnp_inspect as npi
from tfnp_inspect.model.fingerprints import fingerprint

pytestmark = pytest.mark.timeout(180)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: numpy dtypes TF accepts in numpy_function (as tf.as_dtype(dtype) names them)
TF_DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128,
]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
numeric_arrays = st.sampled_from(TF_DTYPES).flatmap(lambda dtype: hnp.arrays(dtype, SHAPES))
non_empty_arrays = st.sampled_from(TF_DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5))
)


def layouts(array: np.ndarray) -> dict[str, np.ndarray]:
    """The same logical contents in different memory layouts."""
    variants = {"C": array.copy(order="C"), "F": array.copy(order="F")}
    if array.ndim:
        # every other element of a bigger array, and a reversed walk through a reversed copy
        spread = np.zeros(tuple(2 * n for n in array.shape), dtype=array.dtype)
        spread[tuple(slice(None, None, 2) for _ in array.shape)] = array
        variants["strided"] = spread[tuple(slice(None, None, 2) for _ in array.shape)]
        flipped = array[tuple(slice(None, None, -1) for _ in array.shape)].copy()
        variants["negative-strides"] = flipped[tuple(slice(None, None, -1) for _ in array.shape)]
        variants["transposed"] = array.T.copy().T
    return variants


def one_bit_flipped(array: np.ndarray, index: int) -> np.ndarray:
    """A copy whose element ``index`` (in C order) differs in its lowest bit."""
    changed = array.copy(order="C")
    raw = changed.reshape(-1).view(np.uint8)
    raw[index * changed.itemsize] ^= 1
    return changed


@SETTINGS
@given(numeric_arrays)
def test_equal_contents_give_equal_fingerprints_in_any_layout(array: np.ndarray) -> None:
    variants = layouts(array)
    for name, variant in variants.items():
        assert np.array_equal(variant, array, equal_nan=array.dtype.kind in "fc"), name
    assert len({fingerprint(v) for v in variants.values()}) == 1, {n: v.strides for n, v in variants.items()}


@SETTINGS
@given(numeric_arrays)
def test_non_native_byte_order_is_compared_consistently(array: np.ndarray) -> None:
    swapped = array.astype(array.dtype.newbyteorder())
    variants = layouts(swapped)
    assert all(v.dtype.byteorder == swapped.dtype.byteorder for v in variants.values())
    assert len({fingerprint(v) for v in variants.values()}) == 1


@SETTINGS
@given(non_empty_arrays, st.data())
def test_any_single_element_change_changes_the_fingerprint(array: np.ndarray, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, array.size - 1), label="index")
    changed = one_bit_flipped(array, index)
    original = fingerprint(array)
    for name, variant in layouts(changed).items():
        assert fingerprint(variant) != original, name


byte_strings = st.lists(st.binary(max_size=6), min_size=1, max_size=12)


@SETTINGS
@given(byte_strings, st.data())
def test_string_arrays_are_fingerprinted_by_value(items: list[bytes], data: st.DataObject) -> None:
    array = np.array(items, dtype=object)
    equal_values = np.array([bytes(bytearray(b)) for b in items], dtype=object)  # other objects
    assert fingerprint(array) == fingerprint(equal_values) == fingerprint(array[::-1][::-1])
    index = data.draw(st.integers(0, len(items) - 1), label="index")
    changed = array.copy()
    changed[index] = items[index] + b"!"
    assert fingerprint(changed) != fingerprint(array)


def test_string_item_boundaries_count() -> None:
    assert fingerprint(np.array([b"ab", b"c"], dtype=object)) != fingerprint(np.array([b"a", b"bc"], dtype=object))


def identity(x: Any) -> Any:
    return x


@SETTINGS
@given(numeric_arrays)
def test_arrays_round_trip_through_the_recorder(array: np.ndarray) -> None:
    with npi.trace(capture="full", checks="none") as t:
        result = npi.numpy_function(identity, [array], tf.as_dtype(array.dtype))
    assert result.shape == array.shape
    (record,) = t.invocations
    for info in (record.inputs[0], record.outputs[0]):
        assert info.shape == array.shape
        assert info.dtype == str(array.dtype)
        assert info.nbytes == array.nbytes
        assert info.fingerprint == fingerprint(array)
        np.testing.assert_array_equal(info.data, array)
        assert info.data.dtype == array.dtype


@SETTINGS
@given(numeric_arrays)
def test_graph_mode_inputs_keep_shape_dtype_and_contents(array: np.ndarray) -> None:
    with npi.trace(checks="none") as t:
        tf.function(lambda v: npi.numpy_function(identity, [v], tf.as_dtype(array.dtype)))(tf.constant(array))
    (record,) = t.invocations
    given_info = record.inputs[0]
    assert (given_info.shape, given_info.dtype, given_info.nbytes) == (array.shape, str(array.dtype), array.nbytes)
    assert given_info.fingerprint == fingerprint(array)
