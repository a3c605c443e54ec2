"""Contract checks: every violation kind beside a clean twin that must stay silent, eagerly,
in ``tf.function`` and in ``tf.data`` with parallel calls; hints; live delivery (warnings,
listeners, counts, strict mode) and switching checks off."""

from __future__ import annotations

import logging
import os
import random
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.recording.arrays import COPY_HINT_MIN_BYTES

from core_helpers import MODES, TF_NUMPY_FUNCTION, by_function, error_core, kinds_of, run_in_mode, source_line

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

HERE = os.path.abspath(__file__)
LOGGER = logging.getLogger("tfnp_inspect.tests.checks")

# module state that the functions below touch
KEPT: list[Any] = []
LOG: list[int] = []
COUNTER = 0


def aligned_zeros(count: int, dtype: Any = np.float32, offset: int = 0) -> np.ndarray:
    """Zeros whose data starts ``offset`` bytes past a 64-byte boundary (TF wraps 64-aligned
    returned buffers without copying, and copies the others)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(count * itemsize + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    return raw[start:start + count * itemsize].view(dtype)


BUFFER = aligned_zeros(4)
UNALIGNED_BUFFER = aligned_zeros(4, offset=16)
SCALE = np.float32(3)
WEIGHTS = np.arange(4, dtype=np.float32)
GLOBAL_RNG = np.random.default_rng(0)
RUNNING_TOTAL = np.zeros(1)


@pytest.fixture(autouse=True)
def _empty_module_state() -> Iterator[None]:
    yield
    KEPT.clear()
    LOG.clear()


def fresh_input() -> np.ndarray:
    return np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)


# -- mutated-input ------------------------------------------------------------------------------


def writes_element(x: np.ndarray) -> np.ndarray:
    x[0] = 99
    return x * 2


def adds_in_place(x: np.ndarray) -> np.ndarray:
    x += 1
    return x.copy()


def mutates_a_copy(x: np.ndarray) -> np.ndarray:
    y = x.copy()
    y[0] = 99
    y += 1
    return y


# -- retained-reference --------------------------------------------------------------------------


def keeps_input(x: np.ndarray) -> np.ndarray:
    KEPT.append(x)
    return x * 2


def keeps_view(x: np.ndarray) -> np.ndarray:
    KEPT.append(x[1:])
    return x * 2


def reuses_buffer(x: np.ndarray) -> np.ndarray:
    BUFFER[:] = x
    return BUFFER


def reuses_unaligned_buffer(x: np.ndarray) -> np.ndarray:
    UNALIGNED_BUFFER[:] = x  # TF copies a buffer that is not 64-byte aligned: nothing aliases it
    return UNALIGNED_BUFFER


def keeps_a_copy(x: np.ndarray) -> np.ndarray:
    KEPT.append(x.copy())
    return x * 2


def returns_input(x: np.ndarray) -> np.ndarray:
    return x


def returns_view(x: np.ndarray) -> np.ndarray:
    return x[1:]


def returns_fresh(x: np.ndarray) -> np.ndarray:
    return x * 2


# -- nondeterministic / hidden-state --------------------------------------------------------------


def fresh_noise(x: np.ndarray) -> np.ndarray:
    return x + np.random.default_rng().random(x.shape).astype(np.float32)


def pure_math(x: np.ndarray) -> np.ndarray:
    return np.sin(x) * np.float32(2)


def global_numpy_random(x: np.ndarray) -> np.ndarray:
    return x + np.float32(np.random.rand())


def global_generator(x: np.ndarray) -> np.ndarray:
    return x + GLOBAL_RNG.random(x.shape).astype(np.float32)


def make_closure_generator() -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(1)

    def closure_generator(x: np.ndarray) -> np.ndarray:
        return x + rng.random(x.shape).astype(np.float32)

    return closure_generator


def python_random(x: np.ndarray) -> np.ndarray:
    random.random()
    return x * 2


def counts_calls(x: np.ndarray) -> np.ndarray:
    global COUNTER
    COUNTER += 1
    return x * 2


def appends_to_global(x: np.ndarray) -> np.ndarray:
    LOG.append(1)
    return x * 2


def make_closure_cache() -> Callable[[np.ndarray], np.ndarray]:
    cache: dict[int, float] = {}

    def closure_cache(x: np.ndarray) -> np.ndarray:
        cache[len(cache)] = float(x[0])
        return x * 2

    return closure_cache


def make_nonlocal_counter() -> Callable[[np.ndarray], np.ndarray]:
    calls = 0

    def nonlocal_counter(x: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return x * 2

    return nonlocal_counter


def accumulates_in_global_array(x: np.ndarray) -> np.ndarray:
    RUNNING_TOTAL[0] += 1
    return x * 2


def make_closure_set() -> Callable[[np.ndarray], np.ndarray]:
    seen: set[int] = set()

    def closure_set(x: np.ndarray) -> np.ndarray:
        seen.add(len(seen))
        return x * 2

    return closure_set


class CallCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x * 2

    def method(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x * 2


class BufferedScaler:
    """Returns the same attribute buffer every time (TF may wrap it without copying)."""

    def __init__(self) -> None:
        self.out = aligned_zeros(4)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        np.multiply(x, 2, out=self.out)
        return self.out


def seeded_inside(x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(42)
    return x + rng.random(x.shape).astype(np.float32)


def reads_constants(x: np.ndarray) -> np.ndarray:
    return x * SCALE + WEIGHTS


def logs(x: np.ndarray) -> np.ndarray:
    LOGGER.info("called with %s", x.shape)
    return x * 2


# -- tout-mismatch ---------------------------------------------------------------------------------


def float64_result(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def python_float(x: np.ndarray) -> float:
    return 1.5


def python_list(x: np.ndarray) -> list[float]:
    return [1.0, 2.0]


def one_array(x: np.ndarray) -> np.ndarray:
    return x * 2


def a_dict(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"a": x}


def two_arrays(x: np.ndarray) -> list[np.ndarray]:
    return [x, x * 2]


def python_int(x: np.ndarray) -> int:
    return 7


def python_float_for_float64(x: np.ndarray) -> float:
    return 2.5


def some_bytes(x: np.ndarray) -> bytes:
    return b"ok"


@dataclass
class Case:
    """A function, how it is declared, and the violation kinds it must (exactly) produce."""

    name: str
    make: Callable[[], Any]
    kinds: set[str]
    stateful: bool = True
    tout: Any = tf.float32
    graph_error: type | None = None  # what TF raises in graph mode, if anything


def _module(func: Any) -> Callable[[], Any]:
    return lambda: func


CASES = [
    # mutated-input
    Case("x[0]=99", _module(writes_element), {"mutated-input"}),
    Case("x+=1", _module(adds_in_place), {"mutated-input"}),
    Case("x[0]=99-stateless", _module(writes_element), {"mutated-input"}, stateful=False),
    Case("copy-then-mutate", _module(mutates_a_copy), set()),
    # retained-reference
    Case("keeps-input", _module(keeps_input), {"retained-reference"}),
    Case("keeps-view", _module(keeps_view), {"retained-reference"}),
    Case("reused-module-buffer", _module(reuses_buffer), {"retained-reference"}),
    Case("reused-unaligned-buffer", _module(reuses_unaligned_buffer), set()),
    Case("keeps-a-copy", _module(keeps_a_copy), set()),
    Case("returns-input", _module(returns_input), set()),
    Case("returns-view", _module(returns_view), set()),
    Case("returns-fresh", _module(returns_fresh), set()),
    Case("returns-input-stateless", _module(returns_input), set(), stateful=False),
    Case("reused-attribute-buffer", BufferedScaler, {"retained-reference"}),
    # nondeterministic
    Case("fresh-noise", _module(fresh_noise), {"nondeterministic"}, stateful=False),
    Case("pure-math", _module(pure_math), set(), stateful=False),
    # hidden-state
    Case("np.random-global", _module(global_numpy_random), {"hidden-state", "nondeterministic"}, stateful=False),
    Case("global-Generator", _module(global_generator), {"hidden-state", "nondeterministic"}, stateful=False),
    Case("closure-Generator", make_closure_generator, {"hidden-state", "nondeterministic"}, stateful=False),
    Case("Python-random", _module(python_random), {"hidden-state"}, stateful=False),
    Case("global-counter", _module(counts_calls), {"hidden-state"}, stateful=False),
    Case("global-list", _module(appends_to_global), {"hidden-state"}, stateful=False),
    Case("closure-dict", make_closure_cache, {"hidden-state"}, stateful=False),
    Case("nonlocal-rebound", make_nonlocal_counter, {"hidden-state"}, stateful=False),
    Case("global-array", _module(accumulates_in_global_array), {"hidden-state"}, stateful=False),
    Case("closure-set", make_closure_set, {"hidden-state"}, stateful=False),
    Case("object-attribute", CallCounter, {"hidden-state"}, stateful=False),
    Case("bound-method-attribute", lambda: CallCounter().method, {"hidden-state"}, stateful=False),
    Case("seeded-Generator-inside", _module(seeded_inside), set(), stateful=False),
    Case("module-constants", _module(reads_constants), set(), stateful=False),
    # anything declared stateful=True may use randomness, counters, logs
    Case("np.random-stateful", _module(global_numpy_random), set()),
    Case("global-Generator-stateful", _module(global_generator), set()),
    Case("Python-random-stateful", _module(python_random), set()),
    Case("global-counter-stateful", _module(counts_calls), set()),
    Case("global-list-stateful", _module(appends_to_global), set()),
    Case("object-attribute-stateful", CallCounter, set()),
    Case("logs-stateful", _module(logs), set()),
    # tout-mismatch
    Case("float64-for-float32", _module(float64_result), {"tout-mismatch"}, graph_error=tf.errors.InvalidArgumentError),
    Case("Python-float-for-float32", _module(python_float), {"tout-mismatch"}, graph_error=tf.errors.InvalidArgumentError),
    Case("list-for-one-Tout", _module(python_list), {"tout-mismatch"}, graph_error=tf.errors.InvalidArgumentError),
    Case("one-for-two-Touts", _module(one_array), {"tout-mismatch"}, tout=[tf.float32, tf.float32], graph_error=tf.errors.InvalidArgumentError),
    Case("dict", _module(a_dict), {"tout-mismatch"}, graph_error=tf.errors.InternalError),
    Case("two-for-two-Touts", _module(two_arrays), set(), tout=[tf.float32, tf.float32]),
    Case("Python-int-for-int64", _module(python_int), set(), tout=tf.int64),
    Case("Python-float-for-float64", _module(python_float_for_float64), set(), tout=tf.float64),
    Case("bytes-for-string", _module(some_bytes), set(), tout=tf.string),
]


def run_case(case: Case, mode: str, func: Any, repeat: int = 3) -> list[Any]:
    call = lambda v: npi.numpy_function(func, [v], case.tout, stateful=case.stateful)  # noqa: E731
    if case.graph_error is not None and mode != "eager":
        with pytest.raises(case.graph_error):
            run_in_mode(mode, call, [fresh_input()], repeat=repeat)
        return []
    return run_in_mode(mode, call, [fresh_input()], repeat=repeat)


def violation_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, npi.ViolationWarning)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_violation_kinds_and_clean_twins(case: Case, mode: str) -> None:
    func = case.make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with npi.trace() as t:
            run_case(case, mode, func)
    assert len(t.invocations) >= (1 if case.graph_error and mode != "eager" else 3)  # graph errors stop the run
    assert kinds_of(t) == case.kinds
    warned = sorted(str(w.message).split("]")[0].strip("[") for w in violation_warnings(caught))
    assert warned == sorted(case.kinds)  # once per function and kind
    if not case.kinds:  # clean twins get no hints either, but for the shapes their graph ops leave unknown
        assert [h for h in t.hints if h.kind != "unknown-shape"] == []


def test_tout_mismatch_is_recorded_although_eager_accepts_it() -> None:
    with npi.trace() as t:
        result = npi.numpy_function(float64_result, [fresh_input()], tf.float32)
    assert result.dtype == tf.float64  # TF's eager quirk is kept
    (violation,) = t.violations
    assert "float64" in violation.message and "float32" in violation.message
    assert "eager" in violation.message.lower() and "tf.function" in violation.message


@pytest.mark.parametrize("mode", ["function", "dataset"])
def test_tout_mismatch_explains_the_graph_error(mode: str) -> None:
    with npi.trace() as t:
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            run_in_mode(mode, lambda v: npi.numpy_function(python_list, [v], tf.float32), [fresh_input()])
    assert "returns 2 values, but expects to see 1 values" in str(caught.value)
    (violation,) = t.violations
    assert violation.func_name == "python_list"
    assert "2" in violation.message and "InvalidArgumentError" in violation.message


def test_determinism_memory_is_bounded_without_false_alarms() -> None:
    with npi.trace() as t:
        for n in range(1500):  # more distinct inputs than the per-function memory keeps
            npi.numpy_function(pure_math, [np.full(2, n, np.float32)], tf.float32, stateful=False)
        for _ in range(2):
            npi.numpy_function(fresh_noise, [fresh_input()], tf.float32, stateful=False)
    assert [v.kind for v in t.violations] == ["nondeterministic"]
    assert t.violations[0].func_name == "fresh_noise"


@pytest.mark.parametrize(
    "checks, expected",
    [("all", {"mutated-input", "tout-mismatch"}), ("none", set()), ("tout-mismatch", {"tout-mismatch"})],
)
def test_checks_option_selects_the_kinds(checks: str, expected: set[str]) -> None:
    with npi.trace(checks=checks) as t:
        npi.numpy_function(writes_and_widens, [fresh_input()], tf.float32)
    assert kinds_of(t) == expected


# -- violation fields ------------------------------------------------------------------------------


def mixed_outputs(x: np.ndarray) -> list[np.ndarray]:
    return [x * 2, x.astype(np.float64)]


FIELD_CASES = {
    "mutated-input": (writes_element, True, tf.float32, "input 0"),
    "retained-reference": (keeps_input, True, tf.float32, "input 0"),
    "nondeterministic": (fresh_noise, False, tf.float32, "outputs"),
    "hidden-state": (counts_calls, False, tf.float32, "'COUNTER'"),
    "tout-mismatch": (mixed_outputs, True, [tf.float32, tf.float32], "output 1"),
}


def tf_graph_error(func: Any, tout: Any) -> str:
    """The core of the error TF's own numpy_function raises for ``func`` in graph mode."""
    with pytest.raises(tf.errors.OpError) as caught:
        tf.function(lambda v: TF_NUMPY_FUNCTION(func, [v], tout))(fresh_input())
    return error_core(caught.value)


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("kind", list(FIELD_CASES))
def test_violation_fields(kind: str, mode: str) -> None:
    func, stateful, tout, argument = FIELD_CASES[kind]
    with npi.trace() as t:
        try:
            run_in_mode(mode, lambda v: npi.numpy_function(func, [v], tout, stateful=stateful), [fresh_input()], repeat=2)  # site: fields
        except tf.errors.InvalidArgumentError:
            assert kind == "tout-mismatch"
    violations = [v for v in t.violations if v.kind == kind]
    assert violations
    for violation in violations:
        (record,) = [r for r in t.invocations if r.seq == violation.seq]
        assert violation in record.violations
        assert violation.func_name == func.__qualname__ == record.func_name
        assert violation.call_site == source_line(HERE, "fields") == record.call_site
        assert argument in violation.argument and argument in violation.message
        assert "Fix:" in violation.message
        assert "graph" in violation.message or "tf.function" in violation.message
        if kind == "mutated-input":
            assert ("eager" in violation.message.lower()) is (mode == "eager")
        if kind == "tout-mismatch":  # quotes the error TF raises (or will raise) in graph mode
            assert tf_graph_error(func, tout) in re.sub(r"pyfunc_\d+", "pyfunc_N", violation.message)


# -- hints -----------------------------------------------------------------------------------------


def _pure_function() -> Callable[[np.ndarray], np.ndarray]:
    def pure(x: np.ndarray) -> np.ndarray:
        return x * 2

    return pure


def _impure_function() -> Callable[[np.ndarray], np.ndarray]:
    def impure(x: np.ndarray) -> np.ndarray:
        return x + np.float32(np.random.rand())

    return impure


def run_many(mode: str, func: Any, calls: int, stateful: bool) -> None:
    """``calls`` calls of one op (one tf.function loop, one tf.data map)."""
    x = fresh_input()
    if mode == "eager":
        for _ in range(calls):
            npi.numpy_function(func, [x], tf.float32, stateful=stateful)
    elif mode == "function":

        @tf.function
        def loop(v: tf.Tensor) -> tf.Tensor:
            total = tf.constant(0.0)
            for _ in tf.range(calls):
                total += tf.reduce_sum(npi.numpy_function(func, [v], tf.float32, stateful=stateful))
            return total

        loop(tf.constant(x))
    else:
        dataset = tf.data.Dataset.from_tensors(x).repeat(calls)
        list(dataset.map(lambda v: npi.numpy_function(func, [v], tf.float32, stateful=stateful), num_parallel_calls=4))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "make, stateful, calls, expected",
    [
        (_pure_function, True, 120, 1),
        (_pure_function, True, 60, 0),
        (_pure_function, False, 120, 0),
        (_impure_function, True, 120, 0),
    ],
    ids=["pure-stateful", "too-few-calls", "already-stateless", "impure-stateful"],
)
def test_could_be_stateless_hint(mode: str, make: Any, stateful: bool, calls: int, expected: int) -> None:
    func = make()
    with npi.trace() as t:
        run_many(mode, func, calls, stateful)
    assert t.total == calls
    hints = [h for h in t.hints if h.kind == "could-be-stateless"]
    assert len(hints) == expected
    for hint in hints:
        assert hint.func_name == func.__qualname__ and "stateful=False" in hint.message
    assert t.violations == []  # hints are not violations


def _aligned_at(offset: int, nbytes: int) -> np.ndarray:
    """A float64 array of ``nbytes`` whose data pointer is ``offset`` bytes past a 64-byte boundary."""
    raw = np.zeros(nbytes + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    return raw[start:start + nbytes].view(np.float64)


BIG = COPY_HINT_MIN_BYTES  # bytes: the smallest output whose alignment is checked


def strided(x: np.ndarray) -> np.ndarray:
    return np.arange(16, dtype=np.float32)[::2]


def contiguous(x: np.ndarray) -> np.ndarray:
    return np.arange(8, dtype=np.float32)


def big_unaligned(x: np.ndarray) -> np.ndarray:
    out = _aligned_at(8, BIG)
    out[:] = 1.0
    return out


def big_aligned(x: np.ndarray) -> np.ndarray:
    out = _aligned_at(0, BIG)
    out[:] = 1.0
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "func, tout, copied, hinted",
    [
        (strided, tf.float32, True, True),
        (contiguous, tf.float32, False, False),
        # TF copies a misaligned buffer too; numpy often allocates large arrays that way, so the
        # record says so but no hint nags about it
        (big_unaligned, tf.float64, True, False),
        (big_aligned, tf.float64, False, False),
    ],
    ids=["strided", "contiguous", "big-unaligned", "big-aligned"],
)
def test_output_copied_hint(mode: str, func: Any, tout: Any, copied: bool, hinted: bool) -> None:
    with npi.trace() as t:
        run_in_mode(mode, lambda v: npi.numpy_function(func, [v], tout), [fresh_input()])
    (record,) = t.invocations
    hints = [h for h in record.hints if h.kind == "output-copied"]
    if mode == "eager":  # eager mode converts whatever it gets; the hint is about graph mode
        assert hints == []
    else:
        assert bool(record.outputs[0].will_be_copied) is copied  # None: too small to matter
        assert len(hints) == int(hinted)
        assert all("output 0" in h.message and h.func_name == func.__name__ for h in hints)


def makes_nan(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.log(x - 3)  # NaN for x < 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "func, given, expected",
    [
        (makes_nan, [1.0, 2.0, 4.0, 5.0], 1),
        (makes_nan, [4.0, 5.0, 6.0, 7.0], 0),
        (returns_input, [np.nan, 1.0, 2.0, 3.0], 0),  # the NaN came in: not this function's doing
        (returns_fresh, [1.0, np.inf, 2.0, 3.0], 0),
    ],
    ids=["nan-appears", "finite", "nan-passed-through", "inf-passed-through"],
)
def test_nonfinite_hint(mode: str, func: Any, given: list[float], expected: int) -> None:
    with npi.trace() as t:
        run_in_mode(mode, lambda v: npi.numpy_function(func, [v], tf.float32), [np.array(given, np.float32)])
    hints = [h for h in t.hints if h.kind == "nonfinite"]
    assert len(hints) == expected
    assert all("output 0" in h.message for h in hints)
    assert t.violations == []


# -- live delivery -----------------------------------------------------------------------------------


def writes_and_widens(x: np.ndarray) -> np.ndarray:
    x[0] = 7
    return x.astype(np.float64)


def negates_in_place(x: np.ndarray) -> np.ndarray:
    np.negative(x, out=x)
    return x * 2


@pytest.mark.parametrize("mode", MODES)
def test_warning_once_per_function_and_kind(mode: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with npi.trace() as t:
            # each call changes its input (the graph modes reuse one input tensor for all runs)
            for func in (negates_in_place, adds_in_place):
                run_in_mode(mode, lambda v: npi.numpy_function(func, [v], tf.float32), [fresh_input()], repeat=4)  # noqa: B023  # site: warned
    found = violation_warnings(caught)
    assert len(found) == 2 and len(t.violations) == 8
    assert sorted(str(w.message).split(" ")[1] for w in found) == ["adds_in_place", "negates_in_place"]
    for warning in found:
        assert issubclass(warning.category, UserWarning)
        assert str(warning.message).startswith("[mutated-input]")
        assert f"{warning.filename}:{warning.lineno}" == source_line(HERE, "warned")


def test_each_kind_warns_once() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with npi.trace():
            for _ in range(3):
                npi.numpy_function(writes_and_widens, [fresh_input()], tf.float32)
    kinds = sorted(str(w.message).split("]")[0].strip("[") for w in violation_warnings(caught))
    assert kinds == ["mutated-input", "tout-mismatch"]


def test_each_activation_warns_again() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with npi.trace():
                npi.numpy_function(writes_element, [fresh_input()], tf.float32)
                npi.numpy_function(writes_element, [fresh_input()], tf.float32)
    assert len(violation_warnings(caught)) == 2


def test_warnings_can_be_filtered() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", npi.ViolationWarning)
        with npi.trace() as t:
            npi.numpy_function(writes_element, [fresh_input()], tf.float32)
    assert violation_warnings(caught) == []
    assert kinds_of(t) == {"mutated-input"}  # still recorded


@pytest.mark.parametrize("mode", MODES)
def test_listeners_and_counts_see_violations(mode: str) -> None:
    delivered: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", npi.ViolationWarning)
        with npi.trace() as t:
            t.subscribe(lambda inv: delivered.append(inv) if inv.violations else None)
            run_in_mode(mode, lambda v: npi.numpy_function(adds_in_place, [v], tf.float32), [fresh_input()], repeat=3)
            run_in_mode(mode, lambda v: npi.numpy_function(returns_fresh, [v], tf.float32), [fresh_input()], repeat=2)
    assert len(delivered) == 3
    assert all([v.kind for v in inv.violations] == ["mutated-input"] for inv in delivered)
    stats = t.stats()
    assert stats["adds_in_place"].violations == {"mutated-input": 3}
    assert not stats["returns_fresh"].violations
    assert stats.violations == {"mutated-input": 3}


def test_strict_mode_raises_in_eager_mode() -> None:
    with npi.trace(strict=True) as t:
        assert npi.numpy_function(returns_fresh, [fresh_input()], tf.float32).numpy()[0] == 2.0
        with pytest.raises(npi.ViolationError) as caught:
            npi.numpy_function(writes_element, [fresh_input()], tf.float32)
    assert [v.kind for v in caught.value.violations] == ["mutated-input"]
    assert "mutated-input" in str(caught.value)
    assert kinds_of(t) == {"mutated-input"}  # recorded as well


@pytest.mark.parametrize("mode", ["function", "dataset"])
def test_strict_mode_raises_through_tf_in_graph_mode(mode: str) -> None:
    with npi.trace(strict=True):
        with pytest.raises(tf.errors.OpError, match="ViolationError"):
            run_in_mode(mode, lambda v: npi.numpy_function(keeps_input, [v], tf.float32), [fresh_input()])


def test_strict_mode_lets_the_users_own_error_win() -> None:
    def writes_then_fails(x: np.ndarray) -> np.ndarray:
        x[0] = 99
        raise KeyError("mine")

    with npi.trace(strict=True) as t:
        with pytest.raises(KeyError, match="mine"):
            npi.numpy_function(writes_then_fails, [fresh_input()], tf.float32)
    assert kinds_of(t) == {"mutated-input"}


def test_strict_only_for_the_checked_kinds() -> None:
    with npi.trace(strict=True, checks="tout-mismatch") as t:
        npi.numpy_function(writes_element, [fresh_input()], tf.float32)  # not checked: no error
        with pytest.raises(npi.ViolationError):
            npi.numpy_function(float64_result, [fresh_input()], tf.float32)
    assert kinds_of(t) == {"tout-mismatch"}


@pytest.mark.parametrize("mode", MODES)
def test_disable_check_globally(mode: str) -> None:
    npi.disable_check("mutated-input")
    try:
        with npi.trace() as t:
            run_in_mode(mode, lambda v: npi.numpy_function(writes_element, [v], tf.float32), [fresh_input()])
            run_in_mode(mode, lambda v: npi.numpy_function(keeps_input, [v], tf.float32), [fresh_input()])
    finally:
        npi.enable_check("mutated-input")
    assert kinds_of(t) == {"retained-reference"}
    with npi.trace() as again:
        run_in_mode(mode, lambda v: npi.numpy_function(writes_element, [v], tf.float32), [fresh_input()])
    assert kinds_of(again) == {"mutated-input"}


@pytest.mark.parametrize("how", ["function", "name"])
@pytest.mark.parametrize("mode", MODES)
def test_disable_check_for_one_function(mode: str, how: str) -> None:
    npi.disable_check(["mutated-input"], func=writes_element if how == "function" else "writes_element")
    try:
        with npi.trace() as t:
            run_in_mode(mode, lambda v: npi.numpy_function(writes_element, [v], tf.float32), [fresh_input()])
            run_in_mode(mode, lambda v: npi.numpy_function(adds_in_place, [v], tf.float32), [fresh_input()])
    finally:
        npi.enable_check(["mutated-input"], func=writes_element)
    assert by_function(t, "writes_element")[0].violations == ()
    assert [v.kind for v in by_function(t, "adds_in_place")[0].violations] == ["mutated-input"]


def test_disable_check_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="no-such-kind"):
        npi.disable_check("no-such-kind")
