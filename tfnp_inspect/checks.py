"""The contract checks: what each violation kind means, how it is detected, what it says.

Detection of mutation and retained references happens inline in the probe (it needs the
arrays before and after the call); this module holds the parts that are not array plumbing:
messages, the ``Tout`` rules of graph mode, the determinism memory and the switches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from .records import VIOLATION_KINDS
from .arrays import as_array

# -- switches -------------------------------------------------------------------------------


class CheckSwitches:
    """Kinds switched off globally or for one function (by name), process-wide."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change; probes re-read the switches when it moves
        self.off_globally: frozenset[str] = frozenset()
        self.off_per_function: dict[str, frozenset[str]] = {}

    def disable(self, kinds: Iterable[str], func: Any = None) -> None:
        self._update(kinds, func, add=True)

    def enable(self, kinds: Iterable[str], func: Any = None) -> None:
        self._update(kinds, func, add=False)

    def _update(self, kinds: Iterable[str], func: Any, add: bool) -> None:
        kinds = frozenset(_validate_kinds(kinds))
        with self._lock:
            if func is None:
                current = self.off_globally
                self.off_globally = current | kinds if add else current - kinds
            else:
                name = func if isinstance(func, str) else function_name(func)
                current = self.off_per_function.get(name, frozenset())
                updated = current | kinds if add else current - kinds
                per_function = {**self.off_per_function, name: updated}
                if not updated:
                    del per_function[name]
                self.off_per_function = per_function
            self.version += 1

    def active(self, requested: frozenset[str], func_name: str) -> frozenset[str]:
        return requested - self.off_globally - self.off_per_function.get(func_name, frozenset())

    def reset(self) -> None:
        with self._lock:
            self.off_globally = frozenset()
            self.off_per_function = {}
            self.version += 1


def _validate_kinds(kinds: Iterable[str] | str) -> list[str]:
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(kinds)
    for kind in kinds:
        if kind not in VIOLATION_KINDS:
            raise ValueError(f"unknown check kind {kind!r}; known kinds: {', '.join(VIOLATION_KINDS)}")
    return kinds


switches = CheckSwitches()


_AUTOGRAPH_PREFIX = "outer_factory.<locals>.inner_factory.<locals>."


def function_name(func: Any) -> str:
    """Qualified name of a callable; the type's name for callables without ``__name__``.

    Functions defined inside code that autograph rewrote carry its factory in their qualified
    name; that part is noise to the user and is dropped.
    """
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(name, str):
        return name.replace(_AUTOGRAPH_PREFIX, "")
    inner = getattr(func, "func", None)  # functools.partial
    if inner is not None and callable(inner):
        return f"partial({function_name(inner)})"
    return type(func).__qualname__


def defined_at(func: Any) -> str | None:
    """file:line where a Python function (or the one it wraps) is defined."""
    for _ in range(8):
        code = getattr(func, "__code__", None)
        if code is not None:
            return f"{code.co_filename}:{code.co_firstlineno}"
        func = getattr(func, "__wrapped__", None) or getattr(func, "__func__", None) or getattr(func, "func", None)
        if func is None:
            return None
    return None


# -- messages -------------------------------------------------------------------------------


def mutated_input_message(func_name: str, index: int, mode: str, shares_tensor: bool) -> str:
    if shares_tensor or mode == "graph":
        effect = (
            "In graph mode (tf.function, tf.data) this array is a zero-copy view of the input "
            "tensor's buffer, so the write changed that tensor for every other consumer, "
            "including a captured tf.constant on later runs."
        )
    else:
        effect = (
            "In eager mode inputs are copies, so nothing else saw the write; once this code runs "
            "inside tf.function or tf.data the same write corrupts the input tensor for every "
            "other consumer, so the program behaves differently there."
        )
    return (
        f"{func_name} wrote into input {index} in place. {effect} "
        f"Fix: work on a copy (x = x.copy()) or write into a new array (np.add(x, 1) instead of x += 1)."
    )


def retained_input_message(func_name: str, index: int) -> str:
    return (
        f"{func_name} kept a reference to input {index} (or a view of it) after returning. "
        "In graph mode that array is a zero-copy view of a tensor buffer which TensorFlow reuses "
        "or frees after the call, so reading or writing it later sees another step's data or "
        "corrupts a live tensor, nondeterministically. Fix: store a copy (np.array(x, copy=True))."
    )


def retained_output_message(func_name: str, index: int) -> str:
    return (
        f"{func_name} returned output {index} and still holds a reference to it (for example a "
        "reused module-level or attribute buffer). In graph mode TensorFlow wraps an aligned "
        "returned array without copying, so a later write to that buffer silently changes tensors "
        "already returned. Fix: return a fresh array (buf.copy()), or mark a constant read-only "
        "(arr.flags.writeable = False)."
    )


def nondeterministic_message(func_name: str, first_seq: int) -> str:
    return (
        f"{func_name} is declared stateful=False but its outputs differ from those of call "
        f"#{first_seq} on the same input contents. In graph mode (tf.function, tf.data) TensorFlow "
        "may fold a stateless op with constant inputs into a constant, run it once for several "
        "consumers, or skip it when its output is unused, so a nondeterministic function is called "
        "fewer times than written (eager mode runs every call, which hides this). "
        "Fix: declare stateful=True, or make the function pure (seed a Generator from the inputs)."
    )


def hidden_state_message(func_name: str, what: str) -> str:
    return (
        f"{func_name} is declared stateful=False but changed state outside its arguments: {what}. "
        "In graph mode (tf.function, tf.data) TensorFlow may fold, prune or merge calls of a "
        "stateless op, so this side effect happens fewer times than written (or once, at trace "
        "time); eager mode runs every call, which hides this. "
        "Fix: declare stateful=True, or move the state into the function's inputs and outputs."
    )


def tout_message(func_name: str, mode: str, argument: str, problem: str, graph_error: str) -> str:
    if mode == "eager":
        consequence = (
            "Eager mode accepts this silently (it converts whatever comes back), but the same "
            f"code inside tf.function or tf.data fails with {graph_error}."
        )
    else:
        consequence = (
            f"In graph mode TensorFlow rejects it with a cryptic {graph_error} naming only the op token."
        )
    return f"{func_name}, {argument}: {problem}. {consequence} Fix: return exactly what Tout declares."


# -- Tout ---------------------------------------------------------------------------------------


class ToutSpec:
    """What ``Tout`` asks for, in numpy terms, and the rules graph mode applies to returns."""

    __slots__ = ("names", "dtypes", "is_list", "single")

    def __init__(self, names: tuple[str, ...], dtypes: tuple[np.dtype, ...], is_list: bool) -> None:
        self.names = names
        self.dtypes = dtypes
        self.is_list = is_list
        #: the one expected dtype, for an identity test on the hot path (None: not one array)
        self.single = dtypes[0] if len(dtypes) == 1 and not dtypes[0].hasobject else None

    def fast_match(self, result: Any) -> bool:
        """The common case in one branch: one ndarray of the declared dtype for one Tout."""
        return (
            len(self.dtypes) == 1
            and type(result) is np.ndarray
            and result.dtype == self.dtypes[0]
            and not result.dtype.hasobject
        )

    def problems(self, result: Any) -> list[tuple[str, str, str]]:
        """(argument, problem, graph-mode error) for each way ``result`` breaks the declaration."""
        items = returned_items(result)
        expected = len(self.dtypes)
        if len(items) != expected:
            kind = type(result).__name__
            return [(
                "outputs",
                f"returned {len(items)} value(s) ({kind}) but Tout declares {expected} "
                f"({', '.join(self.names) or 'none'})",
                f"InvalidArgumentError 'pyfunc_N returns {len(items)} values, but expects to see "
                f"{expected} values'",
            )]
        found = []
        for index, (item, want, name) in enumerate(zip(items, self.dtypes, self.names)):
            problem = _item_problem(item, index, want, name)
            if problem:
                found.append((f"output {index}", *problem))
        return found


def returned_items(result: Any) -> list[Any]:
    """Split a return value the way TF's graph-mode PyFunc kernel does."""
    if result is None:
        return []
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


#: TF's kernel names types the C++ way in its errors ("is double, but expects float").
_TF_KERNEL_NAMES = {"float32": "float", "float64": "double", "float16": "half", "object": "string"}


def _kernel_name(name: str) -> str:
    return _TF_KERNEL_NAMES.get(name, name)


def _item_problem(item: Any, index: int, want: np.dtype, want_name: str) -> tuple[str, str] | None:
    """(problem, TF's graph-mode error) when one returned value does not match its Tout."""
    convertible = (np.ndarray, np.generic, bytes, str, bool, int, float, complex, list, tuple)
    if not isinstance(item, convertible):
        return (
            f"returned a {type(item).__name__} where Tout declares {want_name}",
            f"InternalError 'Unsupported object type {type(item).__name__}'",
        )
    try:
        got = as_array(item).dtype
    except Exception as exc:  # ragged lists and the like
        return f"returned a value numpy cannot convert ({exc})", "InvalidArgumentError"
    if want.hasobject:  # tf.string
        if got.kind in "OSU":
            return None
        got_name = got.name
    elif got.kind in "SU" or got.hasobject:
        got_name = "string"
    elif got != want:
        got_name = got.name
    else:
        return None
    python = "" if isinstance(item, (np.ndarray, np.generic)) else f" (a Python {type(item).__name__})"
    return (
        f"returned {got_name}{python} where Tout declares {want_name}",
        f"InvalidArgumentError '{index}-th value returned by pyfunc_N is {_kernel_name(got_name)}, "
        f"but expects {_kernel_name(want_name)}'",
    )


# -- determinism ------------------------------------------------------------------------------


class DeterminismMemory:
    """Bounded map from input contents to output contents for one stateless function."""

    __slots__ = ("_seen", "_limit")

    def __init__(self, limit: int = 512) -> None:
        self._seen: dict[Any, tuple[Any, int]] = {}
        self._limit = limit

    def observe(self, input_key: Any, output_key: Any, seq: int) -> int | None:
        """Remember this pair; return the seq of an earlier call that disagreed, if any."""
        previous = self._seen.get(input_key)
        if previous is None:
            if len(self._seen) >= self._limit:
                try:
                    del self._seen[next(iter(self._seen))]
                except (StopIteration, KeyError, RuntimeError):  # raced with another thread
                    pass
            self._seen[input_key] = (output_key, seq)
            return None
        if previous[0] != output_key:
            return previous[1]
        return None
