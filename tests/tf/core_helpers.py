"""Shared helpers for the core tests: run a ``numpy_function`` call the three ways TF runs it.

Every behaviour is checked eagerly, inside ``tf.function`` and in ``tf.data.Dataset.map`` with
parallel calls (the two graph modes run the function on TensorFlow's own threads, with
zero-copy inputs). Imported by the test modules as ``core_helpers`` (pytest puts ``tests/tf/`` on
``sys.path``); the fixtures are in ``conftest.py`` beside it, and ``tests/conftest.py`` fails any
test that leaves tracing on or checks disabled.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import xxhash
from tensorflow.python.ops import script_ops

import tfnp_inspect as npi

MODES = ("eager", "function", "dataset")
GRAPH_MODES = ("function", "dataset")
#: What ``Invocation.mode`` says for each way of running.
RECORDED_MODE = {"eager": "eager", "function": "graph", "dataset": "graph"}
PARALLEL_CALLS = 4

#: TensorFlow's own ``numpy_function`` (tracing patches the public aliases, never this one).
TF_NUMPY_FUNCTION = script_ops.numpy_function
#: The public aliases that tracing patches; each is TF_NUMPY_FUNCTION when nothing records.
ALIASES = {"tf": tf, "tf.compat.v1": tf.compat.v1, "tf.compat.v2": tf.compat.v2}
ORIGINAL_REGISTRY_CALL = script_ops.FuncRegistry.__dict__["__call__"]


def run_in_mode(mode: str, call: Callable[..., Any], inputs: Sequence[Any] = (), repeat: int = 1) -> list[Any]:
    """Run ``call(*tensors)`` (which calls a numpy_function) ``repeat`` times in ``mode``.

    'eager': called directly; 'function': through one ``tf.function`` (traced once);
    'dataset': mapped over ``repeat`` copies of the inputs with parallel calls. Returns one
    result per run (for 'dataset', the elements in order).
    """
    tensors = tuple(tf.convert_to_tensor(value) for value in inputs)
    if mode == "eager":
        return [call(*tensors) for _ in range(repeat)]
    if mode == "function":
        function = tf.function(call)
        return [function(*tensors) for _ in range(repeat)]
    if mode == "dataset":
        if tensors:
            dataset = tf.data.Dataset.from_tensors(tensors).repeat(repeat)
            mapped = dataset.map(lambda *xs: _element(call(*xs)), num_parallel_calls=PARALLEL_CALLS)
        else:
            dataset = tf.data.Dataset.range(repeat)
            mapped = dataset.map(lambda _: _element(call()), num_parallel_calls=PARALLEL_CALLS)
        return list(mapped)
    raise ValueError(f"unknown mode {mode!r}")


def _element(result: Any) -> Any:
    # tf.data stacks a returned list into one tensor; a tuple keeps the outputs apart.
    return tuple(result) if isinstance(result, list) else result


def normalize(result: Any) -> Any:
    """A comparable description of what a numpy_function call gave back (dtype, shape, values)."""
    if isinstance(result, (list, tuple)):
        return [normalize(item) for item in result]
    if result is None:
        return None
    if isinstance(result, tf.Operation):
        return "operation"
    value = result.numpy()
    return (result.dtype.name, tuple(result.shape), np.asarray(value).tolist())


def tokens_normalized(exc: BaseException) -> str:
    """An error message with TF's registry tokens (``pyfunc_17``) written as ``pyfunc_N``."""
    return re.sub(r"pyfunc_\d+", "pyfunc_N", str(exc))


def error_core(exc: BaseException) -> str:
    """The part of an error message that names the Python exception or TF's complaint, without
    what differs from one graph to the next (node and function names, counters)."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]|(?<=Dataset)(V\d)?:\d+", "", tokens_normalized(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Iteration|Warning)\b.*:", line):
            return line
    for line in lines:
        if "pyfunc_N" in line:
            return line
    return lines[0] if lines else ""


def source_line(path: str, marker: str) -> str:
    """'file:line' of the unique line of ``path`` that carries the comment ``# site: marker``."""
    with open(path, encoding="utf-8") as handle:
        hits = [n for n, line in enumerate(handle, 1) if line.rstrip().endswith(f"# site: {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times in {path}"
    return f"{path}:{hits[0]}"


def tf_is_patched() -> bool:
    return any(owner.numpy_function is not TF_NUMPY_FUNCTION for owner in ALIASES.values())


def kinds_of(trace: Any) -> set[str]:
    return {violation.kind for violation in trace.violations}


def by_function(trace: Any, func_name: str) -> list[Any]:
    return [inv for inv in trace.invocations if inv.func_name == func_name]


JOIN_TIMEOUT_S = 60  # generous: the machine is shared; a deadlock never finishes at all


# -- shared checks for stress and fault tests ------------------------------------------------------------------------------


def assert_complete(trace: Any, calls: int) -> list[Any]:
    """Every one of ``calls`` calls recorded exactly once; returns the records in seq order.

    Holds when no other ``numpy_function`` call ran in the process while ``trace`` recorded
    and its capacity holds every call.
    """
    records = sorted(trace.invocations, key=lambda inv: inv.seq)
    assert trace.total == calls
    assert trace.dropped == 0
    assert len(records) == calls
    if records:
        first = records[0].seq
        assert [inv.seq for inv in records] == list(range(first, first + calls)), "seq not contiguous"
    assert_aggregates_exact(trace, calls, records)
    return records


def assert_aggregates_exact(trace: Any, calls: int, kept: list[Any]) -> None:
    """The per-function aggregates count every call, and agree with the records when all are kept."""
    stats = trace.stats()
    assert sum(s.calls for s in stats.values()) == calls
    if len(kept) == calls:
        for name, function_stats in stats.items():
            mine = [inv for inv in kept if inv.func_name == name]
            assert function_stats.calls == len(mine)
            assert function_stats.errors == sum(inv.error is not None for inv in mine)
            assert function_stats.violations == Counter(v.kind for inv in mine for v in inv.violations)
            assert function_stats.bytes_in == sum(inv.bytes_in for inv in mine)


def assert_tracing_off() -> None:
    """Nothing records, TF's aliases and its PyFunc registry are TF's own again."""
    assert not npi.is_active()
    assert not npi.is_installed()
    assert not tf_is_patched()
    assert script_ops.FuncRegistry.__dict__["__call__"] is ORIGINAL_REGISTRY_CALL


def xxh3(array: np.ndarray) -> int:
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(array).tobytes())


def python_threads() -> set[threading.Thread]:
    """Threads started from Python (TF's own threads show up as never-ending dummies)."""
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    """Start one thread per target, join them all with a timeout; the exceptions they raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t), name=f"stress-{i}") for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {JOIN_TIMEOUT_S}s (deadlock?): {stuck}"
    return errors


def forget_declarations(func_name: str) -> None:
    """Make the ops already built for ``func_name`` look as if they were built before
    ``import tfnp_inspect`` (TF kept no declaration): their calls then have origin 'registry'.
    A subprocess test covers the real thing (tests/tf/test_real_programs.py)."""
    from tfnp_inspect.recording import wrapper

    for token, probe in list(wrapper._probes.items()):
        if probe is not None and probe.site.func_name == func_name:
            del wrapper._probes[token]
