"""The compiled per-call core against its reference, CallProbe.call, call by call.

Each case runs one sequence of calls through two identical probes, one per core, and compares
what they stored: every field of every row (arrays, verdicts, hints, bytes), with only the
call numbers, times and threads left out, and what the calls returned or raised. Cases cover
the common path the C core does itself and every branch it hands to the Python checks.

The TensorFlow tiers run whole with each core as well (tests/run.sh).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import pickle
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from tfnp_inspect.checks.tout import ToutSpec
from tfnp_inspect.model.fingerprints import XXH3_SYMBOLS, xxh3_function_address
from tfnp_inspect.model.records import (
    A_WILL_BE_COPIED,
    C_DURATION_NS,
    C_ERROR,
    C_RAW_OUTPUTS,
    C_SEQ,
    C_START_NS,
    C_STATIC_HINTS,
    C_THREAD_ID,
    C_THREAD_NAME,
    C_VIOLATIONS,
)
from tfnp_inspect.recording import active
from tfnp_inspect.recording import probe as probe_module
from tfnp_inspect.recording.probe import ORIGIN_DECLARED, ORIGIN_GENERATOR, CallProbe
from tfnp_inspect.recording.recorder import Recorder
from tfnp_inspect.recording.wrapper import _site

compiled = probe_module._compiled_call
if compiled is None and os.environ.get("TFNP_INSPECT_CORE") == "compiled":
    pytest.fail("TFNP_INSPECT_CORE=compiled but the compiled core did not load", pytrace=False)
pytestmark = [
    pytest.mark.skipif(compiled is None, reason="the compiled core is not built here"),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),  # both cores warn alike
]

# positions in a comparable row (the skipped fields are gone)
SITE, INPUTS, OUTPUTS, ERROR, VIOLATIONS = range(5)
FLOAT32 = ToutSpec(("float32",), (np.dtype(np.float32),), False)
_CALL_NUMBER = re.compile(r"#\d+")


def _probe(func: Any, tout: ToutSpec | None, stateful: bool, static_shapes: Any, origin: str) -> CallProbe:
    site = _site(func, "graph", stateful, tout, False, "op", "pyfunc_1", "case.py:1", origin)
    return CallProbe(site._replace(static_shapes=static_shapes), tout)


def _comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A stored row without what differs from run to run (call numbers, times, threads, where the
    allocator put an output) or between the cores by design (the frames in a failed call's
    traceback). The copy hint says whether an output's address is 64-byte aligned: each core
    returns its own array, so only whether it was judged is compared here (its truth is checked
    by test_copy_hints_tell_the_truth_about_the_returned_arrays)."""
    skipped = {C_SEQ, C_START_NS, C_DURATION_NS, C_THREAD_ID, C_THREAD_NAME}
    row = list(row)
    row[C_RAW_OUTPUTS] = tuple(
        (*raw[:A_WILL_BE_COPIED], raw[A_WILL_BE_COPIED] is not None, *raw[A_WILL_BE_COPIED + 1:])
        for raw in row[C_RAW_OUTPUTS]
    )
    if row[C_ERROR] is not None:  # its traceback has the reference core's frames
        row[C_ERROR] = str(row[C_ERROR])
    for findings in (C_VIOLATIONS, C_STATIC_HINTS):  # (kind, function, call number, ...) each
        row[findings] = tuple((*finding[:2], None, *finding[3:]) for finding in row[findings])
    kept = [value for index, value in enumerate(row) if index not in skipped]
    return tuple(_CALL_NUMBER.sub("#", repr(value)) for value in kept)


def _outcome(run: Callable[[], Any]) -> tuple[str, str]:
    try:
        return "returned", repr(run())
    except BaseException as exc:  # noqa: BLE001 - the exception is part of what is compared
        return "raised", f"{type(exc).__name__}: {exc}"


def _run(core: Callable[..., Any], func: Any, calls: Sequence[list[Any]], options: dict[str, Any],
         tout: ToutSpec | None, stateful: bool, static_shapes: Any, origin: str) -> tuple[list[Any], list[Any]]:
    recorder = Recorder(**options)
    plan = active.Plan.of((recorder,))
    probe = _probe(func, tout, stateful, static_shapes, origin)
    outcomes = [_outcome(lambda args=args: core(probe, func, args, plan)) for args in calls]
    return outcomes, [_comparable(row) for row in recorder._buffer]


def _same(func: Any, calls: Callable[[], Sequence[list[Any]]], tout: ToutSpec | None = FLOAT32,
          stateful: bool = True, static_shapes: Any = None, origin: str = ORIGIN_DECLARED, **options: Any) -> list[Any]:
    """Both cores, same calls (built afresh for each: a case may rewrite its inputs); their rows."""
    reference = _run(CallProbe.call, func, calls(), options, tout, stateful, static_shapes, origin)
    twin = _run(compiled, func, calls(), options, tout, stateful, static_shapes, origin)
    assert twin == reference
    return reference[1]


def _views(count: int, size: int = 16, dtype: Any = np.float32) -> list[list[Any]]:
    """Inputs as graph mode passes them: views of a buffer owned elsewhere."""
    return [[np.arange(size, dtype=dtype)[:] + i] for i in range(count)]


def scale(x: np.ndarray) -> np.ndarray:
    return x * np.float32(2)


def test_common_calls_after_the_first_hundred_store_equal_rows() -> None:
    rows = _same(scale, lambda: _views(140))
    assert len(rows) == 140


@pytest.mark.parametrize("capture", ["none", "summary", "full"])
def test_capture_levels(capture: str) -> None:
    _same(scale, lambda: _views(110, size=300), capture=capture)


def test_every_byte_and_large_sampled_arrays() -> None:
    _same(scale, lambda: _views(120, size=100_000))
    _same(scale, lambda: _views(120, size=16_384 + 3))  # just over the sampling threshold
    _same(scale, lambda: _views(120, size=100_000), byte_checks="every-call")


def test_the_compiled_core_hashes_array_memory_with_xxhash_itself() -> None:
    """It calls python-xxhash's own XXH3 on the arrays' memory (found and checked at import),
    and gets the reference core's fingerprints at every size, around XXH3's size classes and
    the sampling threshold, whole and sampled."""
    assert probe_module.CORE_HASHES_DIRECTLY
    for size in (1, 4, 60, 61, 64, 1_000, 16_383, 16_384, 16_385, 300_000):
        _same(scale, lambda size=size: _views(110, size=size))
        _same(scale, lambda size=size: _views(20, size=size), byte_checks="every-call")


@pytest.mark.parametrize("core", ["python", "compiled"])
def test_copy_hints_tell_the_truth_about_the_returned_arrays(core: str) -> None:
    """In graph mode an output of 1 MiB or more gets a copy hint: TF copies an array whose
    address is not 64-byte aligned. Each core's hint is what the array it returned shows."""
    recorder = Recorder()
    plan = active.Plan.of((recorder,))
    probe = _probe(scale, FLOAT32, True, None, ORIGIN_DECLARED)
    call = CallProbe.call if core == "python" else compiled
    returned = [call(probe, scale, args, plan) for args in _views(40, size=300_000)]
    hints = [row[C_RAW_OUTPUTS][0][A_WILL_BE_COPIED] for row in recorder._buffer]
    assert hints == [bool(array.ctypes.data % 64) for array in returned]


def test_the_compiled_core_takes_the_cpu_dispatched_xxh3() -> None:
    """python-xxhash exports XXH3_64bits_dispatch (the widest vector unit the CPU has) beside its
    SSE2 baseline, 2.6x slower on an array in cache: the core must take the dispatched one."""
    library = ctypes.CDLL(importlib.import_module("xxhash._xxhash").__file__)
    dispatched = getattr(library, XXH3_SYMBOLS[0], None)
    if dispatched is None:
        pytest.skip(f"this python-xxhash build does not export {XXH3_SYMBOLS[0]}")
    assert xxh3_function_address() == ctypes.cast(dispatched, ctypes.c_void_p).value


@pytest.mark.parametrize("core", ["reference", "compiled"])
def test_thread_names_are_threadings_at_every_call(core: str) -> None:
    """Each row names its thread as threading.current_thread().name does at that call: a renamed
    thread under its new name, a class's own `name` property, a thread threading never saw
    under the dummy name it gets."""
    import _thread
    import threading

    call = CallProbe.call if core == "reference" else compiled
    recorder = Recorder()
    plan = active.Plan.of((recorder,))
    probe = _probe(scale, FLOAT32, True, None, ORIGIN_DECLARED)

    def calls() -> None:
        call(probe, scale, [np.ones(4, np.float32)], plan)
        threading.current_thread().name = "renamed"
        call(probe, scale, [np.ones(4, np.float32)], plan)

    class Labelled(threading.Thread):
        @property  # type: ignore[override]
        def name(self) -> str:
            return "labelled " + self._name  # type: ignore[attr-defined]

    worker = threading.Thread(target=calls, name="worker")
    worker.start()
    worker.join()
    labelled = Labelled(target=lambda: call(probe, scale, [np.ones(4, np.float32)], plan), name="own")
    labelled.start()
    labelled.join()
    foreign_done = threading.Event()
    _thread.start_new_thread(lambda: (call(probe, scale, [np.ones(4, np.float32)], plan), foreign_done.set()), ())
    assert foreign_done.wait(30)
    names = [row[C_THREAD_NAME] for row in recorder._buffer]
    assert names[:3] == ["worker", "renamed", "labelled own"]
    assert names[3].startswith("Dummy-")
    assert [row[C_THREAD_ID] for row in recorder._buffer][:2] == [worker.ident] * 2


def double(x: np.ndarray) -> np.ndarray:
    return x + x


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64, np.complex128])
def test_stats_samples_of_every_item_size(dtype: Any) -> None:
    """Arrays over the sample's 128 elements get a strided sample, copied item by item at
    every item size (1, 2, 8 and 16 bytes here, 4 above)."""
    _same(double, lambda: _views(110, size=1_000, dtype=dtype), tout=None)
    _same(double, lambda: _views(20, size=100, dtype=dtype), tout=None)


def mutate(x: np.ndarray) -> np.ndarray:
    x[0] = -1
    return x + 1


def test_mutated_inputs() -> None:
    rows = _same(mutate, lambda: _views(120))
    assert all("mutated-input" in row[VIOLATIONS] for row in rows)


def test_mutated_large_inputs_sampled() -> None:
    rows = _same(mutate, lambda: _views(120, size=100_000))
    assert all("mutated-input" in row[VIOLATIONS] for row in rows)  # a write at the first byte: every call


KEPT: list[np.ndarray] = []


def keep_input(x: np.ndarray) -> np.ndarray:
    KEPT.append(x)
    return x * 2


def test_retained_inputs() -> None:
    rows = _same(keep_input, lambda: _views(110))
    KEPT.clear()
    assert all("retained-reference" in row[VIOLATIONS] for row in rows)


ALIGNED = np.zeros(64, np.float32)


def reuse_output(x: np.ndarray) -> np.ndarray:
    ALIGNED[:16] = x
    return ALIGNED


def test_reused_outputs() -> None:
    _same(reuse_output, lambda: _views(110))


def test_outputs_that_are_inputs_views_and_tuples() -> None:
    _same(lambda x: x, lambda: _views(110))
    _same(lambda x: (x[::2], x.reshape(4, 4).T, np.ascontiguousarray(x[::-1])), lambda: _views(110),
          tout=ToutSpec(("float32",) * 3, (np.dtype(np.float32),) * 3, True))
    _same(lambda x: [x + 1, 3.5], lambda: _views(110),
          tout=ToutSpec(("float32", "float64"), (np.dtype(np.float32), np.dtype(np.float64)), True))
    _same(lambda x: None, lambda: _views(110), tout=None)


def test_tout_mismatch_and_shape_mismatch() -> None:
    rows = _same(lambda x: x.astype(np.float64), lambda: _views(110))
    assert all("tout-mismatch" in row[VIOLATIONS] for row in rows)
    rows = _same(scale, lambda: [[np.ones(16 + (i % 2), np.float32)] for i in range(110)], static_shapes=((16,),))
    assert sum("shape-mismatch" in row[VIOLATIONS] for row in rows) == 55


def test_stateless_determinism() -> None:
    flip = iter(range(10**6))
    rows = _same(lambda x: x + next(flip) % 2, lambda: [[np.ones(16, np.float32)] for _ in range(110)],
                 stateful=False)
    assert any("nondeterministic" in row[VIOLATIONS] for row in rows)


def test_object_and_non_contiguous_inputs() -> None:
    _same(lambda s: s, lambda: [[np.array([b"a", b"bc"], dtype=object)] for _ in range(110)],
          tout=ToutSpec(("string",), (np.dtype(object),), False))
    _same(scale, lambda: [[np.arange(32, dtype=np.float32)[::2]] for _ in range(110)])


def fail_sometimes(x: np.ndarray) -> np.ndarray:
    if x[0] % 3 == 0:
        raise ValueError(f"bad input {x[0]}")
    return x


def test_failed_calls() -> None:
    rows = _same(fail_sometimes, lambda: _views(110))
    assert sum(row[ERROR] != repr(None) for row in rows) == 37


def test_generator_end_is_not_a_failed_call() -> None:
    def exhausted(x: np.ndarray) -> np.ndarray:
        raise StopIteration

    rows = _same(exhausted, lambda: _views(110), tout=None, origin=ORIGIN_GENERATOR)
    assert rows == []


def test_strict_mode_raises_the_same() -> None:
    _same(mutate, lambda: _views(110), strict=True)


def test_listeners_and_violations_go_through_store() -> None:
    seen: list[Any] = []
    recorder = Recorder()
    recorder.subscribe(seen.append)
    plan = active.Plan.of((recorder,))
    probe = _probe(mutate, FLOAT32, True, None, ORIGIN_DECLARED)
    for args in _views(110):
        compiled(probe, mutate, args, plan)
    assert len(seen) == 110 == len(recorder) and len(recorder.violations()) == 110


STATE = {"calls": 0}


def count_calls(x: np.ndarray) -> np.ndarray:
    STATE["calls"] += 1
    return x + 1


def test_hidden_state_and_purity_evidence_take_the_same_watch() -> None:
    rows = _same(count_calls, lambda: _views(110), stateful=False)
    assert all("hidden-state" in row[VIOLATIONS] for row in rows)
    rows = _same(scale, lambda: _views(110), stateful=False)
    assert not any(row[VIOLATIONS] != "()" for row in rows)
    rows = _same(count_calls, lambda: _views(110))  # stateful, and it changes state: no advice
    assert not any("could-be-stateless" in row[VIOLATIONS + 1] for row in rows)


class _StoreCounting(Recorder):
    """A recorder of a subclass: the compiled core must read its attributes as Python does."""

    __slots__ = ("stored",)

    def __init__(self) -> None:
        super().__init__()
        self.stored = 0

    def store(self, row: tuple[Any, ...]) -> None:
        self.stored += 1
        super().store(row)


def test_attributes_read_at_their_slot_follow_subclasses_and_class_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled core reads a few __slots__ attributes at their offset (probe._fast,
    recorder._hot, switches.version); a subclass, or a class changed after the core bound to
    it, must still see what Python's attribute lookup gives."""
    plain, counting = Recorder(), _StoreCounting()
    plan = active.Plan.of((plain, counting))
    probe = _probe(scale, FLOAT32, True, None, ORIGIN_DECLARED)
    for args in _views(110):  # the first calls go through the reference core (and store())
        compiled(probe, scale, args, plan)
    through_store = counting.stored
    for args in _views(5):  # the subclass keeps Recorder's `_hot` slot: stored by the core itself
        compiled(probe, scale, args, plan)
    assert len(plain) == len(counting) == 115 and counting.stored == through_store
    # `_hot` made a property after the core bound its slot: every row goes through store()
    monkeypatch.setattr(Recorder, "_hot", property(lambda self: None))
    for args in _views(5):
        compiled(probe, scale, args, plan)
    assert len(plain) == len(counting) == 120 and counting.stored == through_store + 5
    monkeypatch.undo()  # the slot again
    for args in _views(5):
        compiled(probe, scale, args, plan)
    assert len(plain) == len(counting) == 125 and counting.stored == through_store + 5


def test_common_rows_are_packed_and_read_as_the_tuples_they_stand_for() -> None:
    """The compiled core stores a call that needs nothing worded as a PackedRow (no Python
    object per field): it reads, compares, hashes and pickles as its CallRow tuple, and the
    garbage collector does not track it; a call with a finding is stored as a tuple."""
    from tfnp_inspect.model.records import C_BYTES_IN, C_RAW_INPUTS, Invocation
    from tfnp_inspect.recording import core

    assert core.compiled is not None
    recorder = Recorder()
    plan = active.Plan.of((recorder,))
    common, found = _probe(scale, FLOAT32, True, None, ORIGIN_DECLARED), _probe(mutate, FLOAT32, True, None, ORIGIN_DECLARED)
    for args in _views(105):
        compiled(common, scale, args, plan)
    compiled(found, mutate, _views(1)[0], plan)
    *rows, with_finding = list(recorder._buffer)
    assert type(with_finding) is tuple
    packed = rows[-1]
    assert type(packed) is core.compiled.PackedRow
    as_tuple = tuple(packed)
    assert len(packed) == len(as_tuple) == 14
    assert packed == as_tuple and as_tuple == packed and hash(packed) == hash(as_tuple)
    assert packed != with_finding and packed != rows[-2]
    assert packed[-1] == as_tuple[-1] == packed[C_BYTES_IN] == 64 and packed[2:4] == as_tuple[2:4]
    assert packed[C_RAW_INPUTS][0][0] == (16,)
    assert pickle.loads(pickle.dumps(packed)) == as_tuple and type(pickle.loads(pickle.dumps(packed))) is tuple
    assert not gc.is_tracked(packed)
    assert Invocation.from_row(packed) == Invocation.from_row(as_tuple)
    assert repr(packed) == repr(as_tuple)
    with pytest.raises(IndexError):
        packed[14]


def test_columns_of_packed_and_tuple_rows_are_the_reference_columns() -> None:
    """The recorder's aggregates read a batch's columns in C: from PackedRows, tuples and a mix
    of both, they are what model.columns.columns_of reads from the rows as tuples."""
    from tfnp_inspect.model.columns import columns_of
    from tfnp_inspect.recording import core

    assert core.compiled is not None
    recorder = Recorder()
    plan = active.Plan.of((recorder,))
    common, found = _probe(scale, FLOAT32, True, None, ORIGIN_DECLARED), _probe(mutate, FLOAT32, True, None, ORIGIN_DECLARED)
    for index, args in enumerate(_views(130)):
        compiled(*((found, mutate) if index in (110, 120) else (common, scale)), args, plan)
    for args in _views(3, size=32):  # another shape: not uniform
        compiled(common, scale, args, plan)
    rows = list(recorder._buffer)
    for batch in (rows[100:110], rows[100:130], rows[110:130], rows[:5] + rows[101:103], rows[125:]):
        expected = columns_of([tuple(row) for row in batch])
        read = core.compiled.columns(batch)
        assert read is not None
        assert [repr(value) for value in read] == [repr(value) for value in expected]
    assert core.compiled.columns(rows[100:105])[-1] is True  # one shape and dtype per position
    assert core.compiled.columns(rows[125:])[-1] is False
