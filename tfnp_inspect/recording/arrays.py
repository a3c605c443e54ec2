"""Describing arrays cheaply: content fingerprints, aliasing roots, samples and capture copies.

Everything here runs once per input or output of every traced call, so it avoids numpy
reductions and ``str(dtype)`` (microseconds each) and reads each byte at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash

from ..checks.tout import convert_like_tf
from ..model.fingerprints import SAMPLED_MIN_BYTES, as_array, fingerprint, sampled_fingerprint
from ..model.records import (
    FLAG_BUFFER_HASH,
    FLAG_C_CONTIGUOUS,
    FLAG_SAMPLED,
    FLAG_SHARES_TENSOR,
    FLAG_STATS_EXACT,
    FLAG_WRITEABLE,
)

#: Elements copied per numeric array for the lazily computed stats ('summary' capture).
SAMPLE_ELEMENTS = 128
#: Arrays above this size are never copied for capture (the note says so).
MAX_CAPTURE_ARRAY_BYTES = 2 << 30
#: TF wraps returned buffers without copying only when their data pointer is this aligned.
TF_ALIGNMENT = 64
#: Outputs from this size on are fingerprinted only when a check or capture compares them (the
#: determinism check, replay); smaller ones always are, for less than a microsecond.
UNHASHED_FROM_BYTES = 16 << 10
#: Below this size a copy by TF costs under ~0.1 ms, less than checking alignment is worth (~1 us).
COPY_HINT_MIN_BYTES = 1 << 20

_xxh3: Callable[[Any], int] = xxhash.xxh3_64_intdigest
_ndarray = np.ndarray
_tensor_wrapper_type: type | None = None


def _is_tensor_wrapper(obj: Any) -> bool:
    """TF hands graph-mode inputs over as views whose base is a ``tensorflow_wrapper``."""
    global _tensor_wrapper_type
    kind = type(obj)
    if kind is _tensor_wrapper_type:
        return True
    if kind.__name__ == "tensorflow_wrapper":
        _tensor_wrapper_type = kind
        return True
    return False


def stats_sample(array: np.ndarray) -> tuple[bytes | None, bool]:
    """Raw bytes of a small evenly strided copy for stats; exact when the array is small."""
    if array.dtype.kind not in "biuf":
        return None, False
    size = array.size
    if size <= SAMPLE_ELEMENTS:
        return array.tobytes(), True
    step = -(-size // SAMPLE_ELEMENTS)
    return array.reshape(-1)[::step].tobytes(), False


def capture_copy(value: Any) -> np.ndarray | None:
    """A copy for 'full' capture: of the array, or of what TF makes of another value (None: nothing)."""
    if isinstance(value, _ndarray):
        return value.copy()
    array = _converted(value)
    return None if array is None else array.copy()


def _converted(value: Any) -> np.ndarray | None:
    """A returned non-array as graph mode converts it; None when TF could not convert it either."""
    if isinstance(value, (bytes, str)):
        return as_array(value)
    try:
        return convert_like_tf(value)
    except Exception:  # noqa: BLE001 - TF fails on it too; the Tout check says how
        return None


#: dtype kinds TF wraps without copying (ml_dtypes' bfloat16 and float8 are 'V' without fields)
_NUMERIC_KINDS = frozenset("biufcV")
#: What an unconvertible return value is described as (TF fails on it; the Tout check says how).
_UNCONVERTIBLE = np.empty(0, dtype=object)

#: dtype kinds whose buffer is the content (object arrays hold pointers, 'V' may hold objects)
_PLAIN_KINDS = frozenset("biufcmMSU")
_KEPT_FLAGS = FLAG_C_CONTIGUOUS | FLAG_WRITEABLE


def describe(
    value: Any,
    capture: int,
    aliases_input: int | None,
    copy_check: bool,
    payloads: Any = None,
    turn: int = -1,
    hash_large: bool = True,
) -> tuple:
    """Describe one input or output as a RawArray row (``capture``: 0 none, 1 summary, 2 full;
    ``payloads.take(value)`` gives the 'full' copy, or None and a note saying why not;
    ``turn`` >= 0: a large C-contiguous array gets a sampled fingerprint for that turn;
    ``hash_large`` False: no fingerprint from :data:`UNHASHED_FROM_BYTES` on, for outputs that no
    check or capture compares)."""
    data, note = payloads.take(value) if payloads is not None else (None, None)
    if type(value) is _ndarray:
        array = value
        bits = array.flags.num & _KEPT_FLAGS
        base = array.base
        if base is not None and (type(base) is _tensor_wrapper_type or _is_tensor_wrapper(base)):
            bits |= FLAG_SHARES_TENSOR
        dtype = array.dtype
        kind = dtype.kind
        if not hash_large and array.nbytes >= UNHASHED_FROM_BYTES:
            fp = None
        elif bits & FLAG_C_CONTIGUOUS and kind in _PLAIN_KINDS:
            if turn >= 0 and array.nbytes >= SAMPLED_MIN_BYTES:
                fp = sampled_fingerprint(array, turn)
                bits |= FLAG_SAMPLED
            else:
                fp = _xxh3(array)
                bits |= FLAG_BUFFER_HASH
        else:
            fp = fingerprint(array)
    else:
        # EagerTensors, objects with __array__, scalars, strings: described as TF converts them
        # (never through repr(), which can be slow, lossy or raise)
        converted = _converted(value)
        array = converted if converted is not None else _UNCONVERTIBLE
        dtype = array.dtype
        kind = dtype.kind
        bits = FLAG_C_CONTIGUOUS
        hashed = converted is not None and (hash_large or array.nbytes < UNHASHED_FROM_BYTES)
        fp = fingerprint(array) if hashed else None
    nbytes = array.nbytes
    small = None
    if capture and data is None and kind in "biuf":  # 'full' without a copy still gets stats
        if array.size <= SAMPLE_ELEMENTS:
            small = array.tobytes()
            bits |= FLAG_STATS_EXACT
        else:
            small = stats_sample(array)[0]
    will_be_copied = None
    if copy_check and (nbytes >= COPY_HINT_MIN_BYTES or not bits & FLAG_C_CONTIGUOUS):
        will_be_copied = tf_will_copy(array)
    # a plain tuple in RawArray's field order (exact tuples of atomic values are not tracked
    # by the garbage collector, NamedTuples are)
    return (array.shape, dtype, nbytes, fp, bits, aliases_input, will_be_copied, small, data, note)


def tf_wraps_without_copy(array: np.ndarray) -> bool:
    """Graph mode hands this returned buffer to a tensor as it is (C-contiguous, 64-byte aligned,
    a plain numeric dtype): later writes to it change that tensor."""
    return (
        array.flags.c_contiguous
        and array.dtype.kind in _NUMERIC_KINDS
        and array.__array_interface__["data"][0] % TF_ALIGNMENT == 0
    )


def tf_will_copy(array: np.ndarray) -> bool | None:
    """Graph mode: TF copies a returned array that is not C-contiguous or not 64-byte aligned.

    Alignment is only looked at for arrays big enough for the copy to matter (None otherwise).
    """
    if not array.flags.c_contiguous or array.dtype.hasobject:
        return True
    if array.nbytes < COPY_HINT_MIN_BYTES:
        return None
    # __array_interface__ costs ~1 us; ndarray.ctypes builds a ctypes helper object (~40 us)
    return array.__array_interface__["data"][0] % TF_ALIGNMENT != 0
