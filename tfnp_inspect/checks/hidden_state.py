"""Hidden-state detection: what a function can change besides its arguments.

A :class:`StateWatch` is built once per traced op from the function's code: the globals and
closure variables it names, the object it is bound to, and the random number generators it
can reach. Each call takes a snapshot of cheap tokens before and after and names what changed.
It looks one level deep (helpers that the function calls are not followed); see the README.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import random as py_random
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from ..model.fingerprints import fingerprint

#: Containers up to this length are compared item by item (identity), longer ones by length
#: and their first and last items.
ITEM_COMPARE_LIMIT = 64
#: Arrays reached through globals above this size are compared on a strided 1 MiB sample.
ARRAY_FULL_HASH_LIMIT = 16 << 20

Token = Any
Probe = tuple[str, Callable[[], Token]]
_MISSING = object()
_MT19937_STATE_BYTES = 624 * 4 + 4  # uint32 key[624]; int pos


class StateWatch:
    """Before/after snapshots of the state reachable from one function."""

    __slots__ = ("probes",)

    def __init__(self, func: Any) -> None:
        self.probes: list[Probe] = []
        _collect(func, self.probes, set())

    def snapshot(self) -> list[Token]:
        tokens = []
        for _, read in self.probes:
            try:
                tokens.append(read())
            except Exception:  # state we cannot read now (deleted attribute ...) compares unequal
                tokens.append(_MISSING)
        return tokens

    def changes(self, before: list[Token]) -> list[str]:
        after = self.snapshot()
        return [
            what for (what, _), old, new in zip(self.probes, before, after)
            if old is _MISSING or old != new
        ]

    def __bool__(self) -> bool:
        return bool(self.probes)


def _collect(func: Any, probes: list[Probe], seen: set[int]) -> None:
    if id(func) in seen:
        return
    seen.add(id(func))
    if isinstance(func, functools.partial):
        for i, arg in enumerate(func.args):
            _value_probes(f"argument {i} bound by functools.partial", arg, probes)
        for key, arg in (func.keywords or {}).items():
            _value_probes(f"keyword {key!r} bound by functools.partial", arg, probes)
        _collect(func.func, probes, seen)
        return
    if isinstance(func, types.MethodType):
        _object_probes(func.__self__, probes)
        _collect(func.__func__, probes, seen)
        return
    if isinstance(func, types.FunctionType):
        _function_probes(func, probes)
        return
    if isinstance(func, types.BuiltinMethodType) and _rng_probe(func.__self__) is not None:
        probes.append(_rng_probe(func.__self__))
        return
    call = inspect.getattr_static(type(func), "__call__", None)
    if isinstance(call, types.FunctionType):  # a callable object defined in Python
        _object_probes(func, probes)
        _function_probes(call, probes)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _function_probes(func: types.FunctionType, probes: list[Probe]) -> None:
    code = func.__code__
    names = _code_names(code)
    module_globals = func.__globals__
    for name in sorted(names):
        if name not in module_globals:
            continue
        value = module_globals[name]
        if isinstance(value, types.ModuleType):
            _module_probes(value, names, probes)
            continue
        if callable(value) and not _is_rng(value) and not isinstance(value, types.BuiltinMethodType):
            continue  # functions and classes: rebinding them is not state the call relies on
        probes.append((f"global {name!r} was rebound", _global_identity(module_globals, name)))
        _value_probes(f"global {name!r}", value, probes)
    for name, cell in zip(code.co_freevars, func.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # not yet assigned
            value = _MISSING
        if callable(value) and not _is_rng(value) and not isinstance(value, types.BuiltinMethodType):
            continue
        probes.append((f"nonlocal {name!r} was rebound", _cell_identity(cell)))
        if value is not _MISSING:
            _value_probes(f"nonlocal {name!r}", value, probes)


def _module_probes(module: types.ModuleType, names: set[str], probes: list[Probe]) -> None:
    if module is py_random:
        probes.append(("Python's random module state advanced", py_random.getstate))
    elif module is np.random or (module is np and "random" in names):
        probe = _rng_probe(np.random.mtrand._rand)
        if probe is not None:
            probes.append(("numpy's global RandomState (np.random.*) advanced", probe[1]))


def _object_probes(obj: Any, probes: list[Probe]) -> None:
    attributes = getattr(obj, "__dict__", None)
    if not isinstance(attributes, dict):
        return
    label = type(obj).__name__
    probes.append((f"an attribute of the {label} object was rebound", lambda: _identities(attributes)))
    for key, value in list(attributes.items()):
        _value_probes(f"attribute {key!r} of the {label} object", value, probes)


def _value_probes(label: str, value: Any, probes: list[Probe]) -> None:
    rng = _rng_probe(value)
    if rng is not None:
        probes.append((f"{rng[0]} in {label} advanced", rng[1]))
        return
    if isinstance(value, np.ndarray):
        probes.append((f"the array in {label} changed", lambda: _array_token(value)))
    elif isinstance(value, (list, dict, set, bytearray)) or _is_deque(value):
        probes.append((f"the {type(value).__name__} in {label} changed", lambda: _container_token(value)))


def _is_deque(value: Any) -> bool:
    from collections import deque

    return isinstance(value, deque)


def _is_rng(value: Any) -> bool:
    return _rng_probe(value) is not None


def _rng_probe(value: Any) -> Probe | None:
    """(description, reader) for random number generators, None for anything else."""
    if isinstance(value, types.BuiltinMethodType) and not isinstance(value.__self__, types.ModuleType):
        value = value.__self__
    if isinstance(value, np.random.Generator):
        return "a np.random.Generator", _bit_generator_reader(value.bit_generator)
    if isinstance(value, np.random.RandomState):
        return "a np.random.RandomState", _bit_generator_reader(value._bit_generator)
    if isinstance(value, np.random.BitGenerator):
        return "a numpy BitGenerator", _bit_generator_reader(value)
    if isinstance(value, py_random.Random):
        return "a random.Random", value.getstate
    return None


def _bit_generator_reader(bit_generator: Any) -> Callable[[], Token]:
    """MT19937's 2.5 kB state hashes in ~80 ns through ctypes; ``.state`` dicts take ~30 us."""
    if isinstance(bit_generator, np.random.MT19937):
        address = bit_generator.ctypes.state_address
        view = memoryview((ctypes.c_char * _MT19937_STATE_BYTES).from_address(address))
        # keep the generator alive as long as the view that points into it
        return lambda generator=bit_generator: fingerprint(view.tobytes()) if generator else None
    return lambda: bit_generator.state


def _identities(attributes: dict) -> tuple:
    return tuple((key, id(value)) for key, value in attributes.items())


def _global_identity(module_globals: dict, name: str) -> Callable[[], Token]:
    return lambda: id(module_globals.get(name, _MISSING))


def _cell_identity(cell: types.CellType) -> Callable[[], Token]:
    def read() -> Token:
        try:
            return id(cell.cell_contents)
        except ValueError:
            return None

    return read


def _container_token(value: Any) -> Token:
    size = len(value)
    if isinstance(value, bytearray):
        return fingerprint(bytes(value))
    if isinstance(value, dict):
        items = value.items()
        if size <= ITEM_COMPARE_LIMIT:
            return tuple((id(k), id(v)) for k, v in items)
        return size
    if isinstance(value, set):
        return frozenset(map(id, value)) if size <= ITEM_COMPARE_LIMIT else size
    if size <= ITEM_COMPARE_LIMIT:
        return tuple(map(id, value))
    return size, id(value[0]), id(value[-1])


def _array_token(array: np.ndarray) -> Token:
    if array.nbytes <= ARRAY_FULL_HASH_LIMIT:
        return array.shape, array.dtype, fingerprint(array)
    flat = array.reshape(-1)
    step = -(-flat.size // ((1 << 20) // max(array.itemsize, 1)))
    return array.shape, array.dtype, fingerprint(flat[::step])
