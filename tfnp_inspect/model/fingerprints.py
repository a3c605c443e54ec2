"""Content fingerprints and memory owners: what "the same contents" and "the same memory" mean
in every record, check, replay and trace file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash

#: Anything with the buffer protocol (xxhash's stubs do not list ndarray and numpy scalars).
_xxh3: Callable[[Any], int] = xxhash.xxh3_64_intdigest
_ndarray: type[np.ndarray[Any, Any]] = np.ndarray


def fingerprint(value: Any) -> int:
    """xxh3_64 of an array's logical contents (layout-independent; object items by value)."""
    if isinstance(value, _ndarray):
        # isinstance() leaves numpy's type parameters unknown (a cast would cost a call here)
        array: np.ndarray[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        if array.dtype.hasobject:
            return _object_fingerprint(array)
        if array.flags.c_contiguous:
            return _xxh3(array)
        return _xxh3(np.ascontiguousarray(array))
    if isinstance(value, (bytes, str)):
        return _xxh3(value.encode() if isinstance(value, str) else value)
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return _xxh3(value)
    return _object_fingerprint(np.array([value], dtype=object))


#: python-xxhash's exported XXH3 entry points, best first: ``_dispatch`` picks the widest vector
#: unit the CPU has at run time (AVX-512, AVX2, else SSE2), as ``xxh3_64_intdigest`` does; the
#: plain one is the build's baseline (SSE2 on x86-64): on an AVX-512 machine, 7.7 against 3.0 us
#: for a 150 KB array in cache, 3.49 against 2.76 ms for 64 MiB from memory.
XXH3_SYMBOLS = ("XXH3_64bits_dispatch", "XXH3_64bits")


def xxh3_function_address() -> int:
    """Where python-xxhash's own XXH3 is in memory (see :data:`XXH3_SYMBOLS`), or 0 where its
    module exports neither: the compiled core hashes an array's memory with it directly (no buffer
    export and no Python call per array). The core checks it against ``xxh3_64_intdigest`` before
    use."""
    import ctypes
    import importlib

    path: str | None = getattr(importlib.import_module("xxhash._xxhash"), "__file__", None)
    if path is None:
        return 0
    try:
        library = ctypes.CDLL(path)  # the module already loaded: no second copy
    except OSError:
        return 0
    for symbol in XXH3_SYMBOLS:
        function = getattr(library, symbol, None)
        if function is not None:
            return ctypes.cast(function, ctypes.c_void_p).value or 0
    return 0


#: Arrays from this size on may be fingerprinted by sampling (see :func:`sampled_fingerprint`).
SAMPLED_MIN_BYTES = 64 << 10
SAMPLE_BLOCKS = 16
SAMPLE_BLOCK_BYTES = 128
#: The moving window: it only has to add chances between two whole hashes (one call in 16), so
#: it is small. A dense write hits any block; the sample (4 KiB) costs a sixteenth of hashing a
#: 64 KiB array whole.
SAMPLE_WINDOW_BYTES = 2 << 10


def sampled_fingerprint(array: np.ndarray[Any, Any], turn: int) -> int:
    """xxh3 of a C-contiguous array's sampled bytes: 16 blocks spread from the first byte to the
    last (within one block), plus a 2 KiB window that moves with ``turn`` (4 KiB read, whatever the size).

    A write that touches a fair share of the array (an augmentation, a normalisation) always
    changes it; a sparse write changes it when it hits a block or the window, so successive
    turns cover every byte. Compare only fingerprints taken with the same ``turn``.
    """
    flat: np.ndarray[Any, Any] = np.frombuffer(array, dtype=np.uint8)  # C-contiguous: a view, no copy
    memory = flat.data
    size = array.nbytes
    step = (size - SAMPLE_BLOCK_BYTES) // (SAMPLE_BLOCKS - 1)
    windows = -(-size // SAMPLE_WINDOW_BYTES)
    start = (turn % windows) * SAMPLE_WINDOW_BYTES
    parts = [memory[i * step:i * step + SAMPLE_BLOCK_BYTES] for i in range(SAMPLE_BLOCKS)]
    parts.append(memory[start:start + SAMPLE_WINDOW_BYTES])
    return _xxh3(b"".join(parts))


def _object_fingerprint(array: np.ndarray) -> int:
    """Object arrays (tf.string) hold pointers: hash the items themselves, length-prefixed."""
    hasher = xxhash.xxh3_64()
    hasher.update(repr(array.shape).encode())
    for item in array.ravel(order="C"):
        if isinstance(item, str):
            item = item.encode("utf-8", "surrogatepass")
        elif not isinstance(item, bytes):
            # other objects by type only: their repr() can be slow, lossy or raise
            item = f"<{type(item).__module__}.{type(item).__qualname__}>".encode()
        hasher.update(len(item).to_bytes(8, "little"))
        hasher.update(item)
    return hasher.intdigest()


def alias_root(array: np.ndarray) -> Any:
    """The object that owns an array's memory: the end of the ``.base`` chain.

    numpy shortens chains of views, but not past an array whose base is a foreign object
    (a view of a TF input has the input array as base, whose base is the TF buffer).
    """
    root: Any = array  # ends as any object with a buffer (TF's, mmap, bytes ...)
    base: Any = root.base
    while base is not None:
        root = base
        base = root.base if isinstance(root, _ndarray) else None
    return root  # pyright: ignore[reportUnknownVariableType] - isinstance() above, see fingerprint()


def as_array(value: Any) -> np.ndarray[Any, Any]:
    """Non-array values as TF would see them (bytes and str become tf.string, i.e. object)."""
    if isinstance(value, (bytes, str)):
        return np.array(value, dtype=object)
    return np.asarray(value)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
