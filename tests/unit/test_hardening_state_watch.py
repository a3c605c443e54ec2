"""Issue 13 §2, without TensorFlow: the hidden-state watch reads a bounded amount per call, still
sees writes into large arrays, and says whether its analysis is complete."""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import xxhash

from tfnp_inspect.checks.hidden_state import StateWatch

BIG_T = np.arange(16 << 20, dtype=np.float32).reshape(4096, 4096).T  # 64 MiB, transposed
GRID = np.zeros((1024, 2048), np.float32)[:, ::2]  # 4 MiB, neither C- nor F-contiguous
TABLE = np.arange(1000, dtype=np.float32)
VOCAB = {f"word{i}": i for i in range(5000)}
GENERATOR = np.random.default_rng(0)


class Model:
    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x + self.rng.random()


class Config:
    def __init__(self) -> None:
        self.scale = 2.0


MODEL = Model()
CONFIG = Config()
HASHER = xxhash.xxh3_64()


def changed_by(func: Callable, *args: Any) -> list[str]:
    watch = StateWatch(func)
    before = watch.snapshot()
    func(*args)
    return watch.changes(before)


def test_a_large_transposed_global_is_read_in_bounded_time() -> None:
    def reads(x: np.ndarray) -> np.ndarray:
        return x + BIG_T[1, 2]

    watch = StateWatch(reads)
    watch.changes(watch.snapshot())
    start = time.perf_counter()
    for _ in range(50):
        watch.changes(watch.snapshot())
    per_call = (time.perf_counter() - start) / 50
    assert per_call < 0.5e-3, f"{per_call * 1e6:.0f} us per call (was ~0.1 s: a contiguous copy and two hashes)"
    assert watch.complete


def _add(array: np.ndarray, where: Any) -> Callable[[], None]:
    def write() -> None:
        array[where] = -array[where] - 1  # a new value on every call (0 -> -1 -> 0, exact in float32)

    return write


@pytest.mark.parametrize("write", [
    _add(BIG_T, ...),  # every element
    _add(BIG_T, (0, 0)),  # first byte in memory
    _add(BIG_T, (-1, -1)),  # last byte in memory
    _add(BIG_T, 7),  # a column in memory: an element in every window
    _add(GRID, ...),  # non-contiguous, every element
], ids=["dense", "first", "last", "spread", "grid-dense"])
def test_writes_into_large_arrays_are_seen_on_the_call_that_makes_them(write: Callable) -> None:
    def writes(x: Any) -> Any:
        write()
        return BIG_T[0, 0] + GRID[0, 0] + x

    # ``write`` is a closure helper (not followed): the arrays are watched as globals named here
    watch = StateWatch(writes)
    for _ in range(3):
        before = watch.snapshot()
        writes(1)
        assert any("BIG_T" in what or "GRID" in what for what in watch.changes(before))


def test_a_sparse_write_elsewhere_is_seen_once_the_moving_window_reaches_it() -> None:
    data = np.zeros(1 << 20, np.float32)  # 4 MiB: the 16 KiB window covers it in 256 calls

    def counts(x: Any) -> Any:
        data[123_457] += 1
        return x

    watch = StateWatch(counts)
    seen = []
    for call in range(1, 300):
        before = watch.snapshot()
        counts(1)
        if watch.changes(before):
            seen.append(call)
    assert seen and seen[0] <= 256
    assert seen[1:2] and seen[1] - seen[0] == 256  # and again each time the window comes round


def test_concurrent_calls_compare_the_same_part_of_an_array() -> None:
    """Calls of one op overlap in tf.data: a before-token taken by one call is compared with
    the same window after it, whatever the other calls read meanwhile."""
    def reads(x: Any) -> Any:
        return BIG_T[0, 0] + x

    watch = StateWatch(reads)
    first = watch.snapshot()
    second = watch.snapshot()
    assert watch.changes(first) == [] and watch.changes(second) == []


def test_a_mutable_default_argument_is_watched() -> None:
    def memo(x: int, cache: dict = {}) -> int:  # noqa: B006 - the bug under test
        cache[x] = x
        return x

    assert changed_by(memo, 3) == ["the dict in the default of parameter 'cache' changed"]


def test_large_bytearrays_are_sampled_without_keeping_a_view() -> None:
    buffer = bytearray(1 << 20)

    def writes(x: int) -> int:
        buffer[0] = 1
        return x

    assert changed_by(writes, 1) == ["the bytearray in nonlocal 'buffer' changed"]
    buffer.extend(b"more")  # no buffer export left behind: resizing still works


def _pure(x: np.ndarray) -> np.ndarray:
    return np.sin(x) * TABLE[:4] + VOCAB["word1"] + float(np.mean(x))


def _seeded(x: np.ndarray) -> np.ndarray:
    return x + np.random.default_rng(1).random()


def _draws_from_a_global_generator(x: np.ndarray) -> np.ndarray:
    return x + GENERATOR.random()


def _uses_python_random(x: float) -> float:
    return x + random.random()


@pytest.mark.parametrize("func", [
    _pure, _seeded, _draws_from_a_global_generator, _uses_python_random,
    functools.partial(np.add, TABLE), np.sin, Model().__call__, Model(),
])
def test_complete_when_everything_reached_is_understood(func: Callable) -> None:
    watch = StateWatch(func)
    assert watch.complete and watch.unseen == [], watch.unseen


def _helper(x: np.ndarray) -> np.ndarray:
    return x * 2


def _calls_a_helper(x: np.ndarray) -> np.ndarray:
    return _helper(x)


def _calls_a_callable_object(x: np.ndarray) -> np.ndarray:
    return MODEL(x)


def _reads_an_object(x: np.ndarray) -> np.ndarray:
    return x * CONFIG.scale


def _calls_another_module(x: np.ndarray) -> np.ndarray:
    return x + os.getpid()


def _uses_a_c_extension_object(x: np.ndarray) -> np.ndarray:
    HASHER.update(x)
    return x


def _imports_inside(x: np.ndarray) -> np.ndarray:
    import tempfile

    return x + len(tempfile.gettempdir())


def _reaches_globals_by_name(x: np.ndarray) -> np.ndarray:
    return x + globals()["TABLE"][0]


class _Stateful:
    def __init__(self) -> None:
        self.count = 0

    def step(self) -> None:
        self.count += 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.step()
        return x


@pytest.mark.parametrize("func, unseen", [
    (_calls_a_helper, "_helper"),
    (_calls_a_callable_object, "MODEL"),
    (_reads_an_object, "CONFIG"),
    (_calls_another_module, "'os'"),
    (_uses_a_c_extension_object, "HASHER"),
    (_imports_inside, "tempfile"),
    (_reaches_globals_by_name, "globals"),
    (_Stateful(), "step"),
])
def test_incomplete_names_what_it_cannot_see(func: Callable, unseen: str) -> None:
    watch = StateWatch(func)
    assert not watch.complete
    assert any(unseen in what for what in watch.unseen), watch.unseen
