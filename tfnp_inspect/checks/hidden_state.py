"""Hidden-state detection: what a function can change besides its arguments.

A :class:`StateWatch` is built once per traced op from the function's code: the globals and
closure variables it names, its mutable default arguments, the object it is bound to, and the
random number generators it can reach. Each call takes a snapshot of cheap tokens before and
after and names what changed. It looks one level deep (helpers that the function calls are not
followed); what it reaches but cannot look into is listed in :attr:`StateWatch.unseen`, and
:attr:`StateWatch.complete` says whether that list is empty.

Every token costs a bounded amount of work, whatever the size of the state behind it:

- arrays up to :data:`ARRAY_FULL_HASH_LIMIT` bytes are hashed whole on every call;
- larger ones are read in their own memory order (no copy of the array): every call hashes
  :data:`ARRAY_BLOCKS` blocks of :data:`ARRAY_BLOCK_BYTES` spread evenly from the first byte to
  the last, plus one window of :data:`ARRAY_WINDOW_BYTES` that moves along the array from call
  to call. A write that touches every element (``G += 1``, ``G[:] = x``) is seen on the call
  that makes it; a write into the first or last 256 bytes (``G[0] += 1``), or into any other
  sampled block, too; any other write repeated on every call is seen once the window reaches
  it, within ``nbytes / ARRAY_WINDOW_BYTES`` calls (1,024 calls for 16 MiB);
- arrays that are neither C- nor Fortran-contiguous (rare for globals) are compared on a
  strided grid of at most :data:`GRID_ITEMS` elements whose offset moves from call to call;
- containers longer than :data:`ITEM_COMPARE_LIMIT` are compared by length and end items.
"""

from __future__ import annotations

import builtins
import ctypes
import dis
import functools
import inspect
import itertools
import math
import random as py_random
import sys
import types
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash
from numpy.lib.stride_tricks import as_strided

from ..model.fingerprints import fingerprint

#: Containers up to this length are compared item by item (identity), longer ones by length
#: and their first and last items.
ITEM_COMPARE_LIMIT = 64
#: Arrays (and bytearrays) up to this size are hashed whole on every call (about 2 us).
ARRAY_FULL_HASH_LIMIT = 64 << 10
#: Larger arrays: this many blocks, spread evenly over the array's memory, first and last
#: included, are hashed on every call ...
ARRAY_BLOCKS = 16
ARRAY_BLOCK_BYTES = 256
#: ... plus one window that moves along the array by this many bytes per call (a before and
#: after snapshot of a large array costs about 5 us in all).
ARRAY_WINDOW_BYTES = 16 << 10
#: Non-contiguous arrays and object arrays: elements compared per call on a strided grid.
GRID_ITEMS = 4096
OBJECT_GRID_ITEMS = 256
#: A watch with more probes than this stops adding them (and is then incomplete).
MAX_PROBES = 512

#: Modules whose functions keep no state a call could depend on (numpy's global random state
#: is watched separately). Calls into any other module are not followed: the watch is then
#: incomplete.
UNDERSTOOD_MODULES = frozenset({
    "numpy", "math", "cmath", "operator", "itertools", "functools", "builtins", "struct", "re",
    "string", "numbers", "typing", "collections", "dataclasses", "enum", "abc", "bisect",
    "heapq", "statistics", "fractions", "decimal", "copy", "base64", "binascii", "zlib",
    "hashlib", "unicodedata", "textwrap", "json", "_operator", "_functools", "_collections",
    "_struct", "_bisect", "_heapq", "_json", "_statistics", "_decimal", "_pydecimal", "array",
})
#: Builtins that reach state by name, around the names the code shows.
_OPAQUE_BUILTINS = frozenset({"globals", "vars", "exec", "eval", "setattr", "delattr", "__import__"})
#: Values that cannot change in place.
_IMMUTABLE = (
    type(None), bool, int, float, complex, str, bytes, range, slice, type(Ellipsis),
    np.generic, np.dtype,
)
_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME"})

Token = Any
Probe = tuple[str, Callable[[], Token]]
_MISSING = object()
_MT19937_STATE_BYTES = 624 * 4 + 4  # uint32 key[624]; int pos
_xxh3: Callable[[Any], int] = xxhash.xxh3_64_intdigest  # arrays go in through the buffer protocol


class StateWatch:
    """Before/after snapshots of the state reachable from one function.

    ``probes`` are ``(description, reader)`` pairs. ``unseen`` lists what the function reaches
    but the watch cannot look into (helpers it calls, other modules, objects of unknown
    classes, callable objects, C extension objects ...): a change there goes unnoticed.
    """

    __slots__ = ("probes", "unseen")

    def __init__(self, func: Any) -> None:
        self.probes: list[Probe] = []
        self.unseen: list[str] = []
        _Collector(self.probes, self.unseen).callable(func, "the function", top=True)

    @property
    def complete(self) -> bool:
        """True only when everything the function reaches was understood and is watched.

        Large arrays are watched by sampling (see the module's docstring) and still count as
        understood. Advice that a function is pure should wait for a complete watch.
        """
        return not self.unseen

    def snapshot(self) -> list[Token]:
        tokens = []
        for _, read in self.probes:
            try:
                tokens.append(read())
            except Exception:  # noqa: BLE001 - state we cannot read now (deleted attribute ...) compares unequal
                tokens.append(_MISSING)
        return tokens

    def changes(self, before: list[Token]) -> list[str]:
        changed = []
        for (what, read), old in zip(self.probes, before, strict=False):
            if old is _MISSING:
                changed.append(what)
                continue
            try:
                # sampled probes read the same part of the state as before the call
                new = read.again(old) if type(read) is _Sampled else read()
            except Exception:  # noqa: BLE001 - as in snapshot()
                changed.append(what)
                continue
            if old != new:
                changed.append(what)
        return changed

    def __bool__(self) -> bool:
        return bool(self.probes)


class _Collector:
    """Walks what a function reaches once, adding probes and noting what it cannot see."""

    def __init__(self, probes: list[Probe], unseen: list[str]) -> None:
        self.probes = probes
        self.unseen = unseen
        self.seen: set[int] = set()

    def add(self, what: str, read: Callable[[], Token]) -> None:
        if len(self.probes) >= MAX_PROBES:
            self.miss(f"more than {MAX_PROBES} things to watch ({what} and others are not)")
            return
        self.probes.append((what, read))

    def miss(self, what: str) -> None:
        if what not in self.unseen:
            self.unseen.append(what)

    # -- callables ----------------------------------------------------------------------------
    def callable(self, func: Any, label: str, top: bool = False) -> None:
        """The traced function itself (``top``), or a callable it reaches."""
        if id(func) in self.seen:
            return
        self.seen.add(id(func))
        if isinstance(func, functools.partial):
            for i, arg in enumerate(func.args):
                self.value(f"argument {i} bound by functools.partial", arg)
            for key, arg in (func.keywords or {}).items():
                self.value(f"keyword {key!r} bound by functools.partial", arg)
            self.callable(func.func, label, top)
            return
        rng = _rng_probe(func)
        if rng is not None:
            self.add(f"{rng[0]} in {label} advanced" if not top else f"{rng[0]} advanced", rng[1])
            return
        if isinstance(func, types.MethodType):
            if not top:
                self.miss(f"{label}: a method of a {type(func.__self__).__name__} object (not followed)")
                return
            self.object(func.__self__)
            self.function(func.__func__, bound=func.__self__)
            return
        if isinstance(func, types.FunctionType):
            if top:
                self.function(func)
            elif not _understood_callable(func):
                self.miss(f"{label}: the function {func.__qualname__!r} (functions it calls are not followed)")
            return
        if isinstance(func, types.BuiltinMethodType):  # C functions and methods
            owner = func.__self__
            if owner is None or isinstance(owner, types.ModuleType):
                module = owner.__name__ if owner is not None else func.__module__
                if not _understood_module(module):
                    self.miss(f"{label}: {func.__name__!r} from the module {module!r} (not followed)")
            else:
                self.value(f"the object {func.__name__!r} is bound to ({label})", owner)
            return
        if isinstance(func, np.ufunc):
            return
        if isinstance(func, type):
            if not (_understood_callable(func) or issubclass(func, BaseException)):
                self.miss(f"{label}: the class {func.__qualname__!r} (its code is not followed)")
            return
        call = inspect.getattr_static(type(func), "__call__", None)
        if isinstance(call, types.FunctionType):  # a callable object defined in Python
            if top:
                self.object(func)
                self.function(call, bound=func)
            else:
                self.miss(f"{label}: a callable {type(func).__name__} object (its __call__ is not followed)")
            return
        if not _understood_callable(func):  # numpy's dispatchers, Cython functions ...
            self.miss(f"{label}: a callable {type(func).__name__} object (its state is not visible)")

    def function(self, func: types.FunctionType, bound: Any = None) -> None:
        code = func.__code__
        names, global_names, imports = _code_names(code)
        module_globals = func.__globals__
        for name in sorted(global_names):
            if name in module_globals:
                self.global_value(module_globals, name, module_globals[name], names)
            elif hasattr(builtins, name):
                if name in _OPAQUE_BUILTINS:
                    self.miss(f"the builtin {name}() (reaches state by name)")
            else:  # a global the call may create
                self.add(f"global {name!r} was rebound", _global_identity(module_globals, name))
        for module_name in sorted(imports):
            module = sys.modules.get(module_name)
            if module is None:
                self.miss(f"the module {module_name!r} imported inside the function (not followed)")
            else:
                self.module(module, names)
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # not yet assigned
                value = _MISSING
            if callable(value) and _rng_probe(value) is None and not isinstance(value, types.BuiltinMethodType):
                self.callable(value, f"nonlocal {name!r}")
                continue
            self.add(f"nonlocal {name!r} was rebound", _cell_identity(cell))
            if value is not _MISSING:
                self.value(f"nonlocal {name!r}", value)
        self.defaults(func, code)
        if bound is not None:
            self.methods_called(bound, func, names)

    def global_value(self, module_globals: dict, name: str, value: Any, names: set[str]) -> None:
        if isinstance(value, types.ModuleType):
            self.module(value, names)
            return
        if callable(value) and _rng_probe(value) is None and not isinstance(value, types.BuiltinMethodType):
            # functions and classes: rebinding them is not state the call relies on
            self.callable(value, f"global {name!r}")
            return
        self.add(f"global {name!r} was rebound", _global_identity(module_globals, name))
        self.value(f"global {name!r}", value)

    def module(self, module: types.ModuleType, names: set[str]) -> None:
        if module is py_random:
            self.add("Python's random module state advanced", py_random.getstate)
        elif module is np.random or (module is np and "random" in names):
            probe = _rng_probe(np.random.mtrand._rand)
            if probe is not None:
                self.add("numpy's global RandomState (np.random.*) advanced", probe[1])
        elif not _understood_module(module.__name__):
            self.miss(f"the module {module.__name__!r} (calls into it are not followed)")

    def defaults(self, func: types.FunctionType, code: types.CodeType) -> None:
        """Mutable default arguments: state kept between calls (``def f(x, cache={})``)."""
        positional = code.co_varnames[:code.co_argcount]
        defaults = func.__defaults__ or ()
        for name, value in zip(positional[len(positional) - len(defaults):], defaults, strict=True):
            if not isinstance(value, _IMMUTABLE):
                self.value(f"the default of parameter {name!r}", value)
        for name, value in (func.__kwdefaults__ or {}).items():
            if not isinstance(value, _IMMUTABLE):
                self.value(f"the default of parameter {name!r}", value)

    def methods_called(self, obj: Any, func: types.FunctionType, names: set[str]) -> None:
        """Other methods of the bound object that the code names are not followed."""
        for name in sorted(names):
            attribute = inspect.getattr_static(type(obj), name, None)
            if isinstance(attribute, (staticmethod, classmethod)):
                attribute = attribute.__func__
            if isinstance(attribute, types.FunctionType) and attribute is not func:
                self.miss(f"the method {type(obj).__name__}.{name} (not followed)")
            elif isinstance(attribute, property):
                self.miss(f"the property {type(obj).__name__}.{name} (not followed)")

    # -- values -------------------------------------------------------------------------------
    def object(self, obj: Any) -> None:
        attributes = getattr(obj, "__dict__", None)
        label = type(obj).__name__
        if not isinstance(attributes, dict):
            if getattr(type(obj), "__slots__", None):
                self.miss(f"the attributes of the {label} object (__slots__ are not watched)")
            return
        self.add(f"an attribute of the {label} object was rebound", lambda: _identities(attributes))
        for key, value in list(attributes.items()):
            self.value(f"attribute {key!r} of the {label} object", value)

    def value(self, label: str, value: Any, depth: int = 0) -> None:
        if isinstance(value, _IMMUTABLE) or value is _MISSING:
            return
        if id(value) in self.seen:
            return
        self.seen.add(id(value))
        rng = _rng_probe(value)
        if rng is not None:
            self.add(f"{rng[0]} in {label} advanced", rng[1])
            return
        if isinstance(value, np.ndarray):
            self.add(f"the array in {label} changed", _array_reader(value))
            return
        if isinstance(value, bytearray):
            self.add(f"the bytearray in {label} changed", _bytearray_reader(value))
            return
        if isinstance(value, (list, dict, set, deque)):
            self.add(f"the {type(value).__name__} in {label} changed", lambda: _container_token(value))
            self.items(label, value, depth)
            return
        if isinstance(value, (tuple, frozenset)):
            self.items(label, value, depth)
            return
        if isinstance(value, types.SimpleNamespace):
            self.object(value)
            return
        if callable(value):
            self.callable(value, label)
            return
        if isinstance(value, types.ModuleType):
            self.module(value, set())
            return
        self.miss(f"{label}: a {type(value).__module__}.{type(value).__qualname__} object (its state is not visible)")

    def items(self, label: str, container: Any, depth: int) -> None:
        """What a container holds: watched one more level down while it stays small.

        Items that cannot change in place need nothing more; a large container is judged on
        its first items (reading them all could take long), like its token.
        """
        values = container.values() if isinstance(container, dict) else container
        if isinstance(container, dict) and not _all_immutable(container):
            self.miss(f"the keys of the dict in {label} (objects, compared by identity only)")
        if _all_immutable(values):
            return
        if len(container) > ITEM_COMPARE_LIMIT or depth >= 2:
            self.miss(f"the items of the {type(container).__name__} in {label} (only its length and ends are compared)")
            return
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        for key, item in zip(keys, values, strict=False):
            self.value(f"item {key!r} of {label}", item, depth + 1)


def _understood_module(name: str | None) -> bool:
    if not isinstance(name, str) or not name:
        return False
    return name.partition(".")[0] in UNDERSTOOD_MODULES and not name.startswith("numpy.random")


def _understood_callable(func: Any) -> bool:
    """Callables of the understood modules; in numpy.random, only what makes new generators
    (its module-level functions draw from the global RandomState, watched on its own)."""
    module = getattr(func, "__module__", None)
    if isinstance(module, str) and module.startswith("numpy.random"):
        return isinstance(func, type) or getattr(func, "__name__", None) == "default_rng"
    return _understood_module(module)


def _all_immutable(values: Any) -> bool:
    return all(isinstance(v, _IMMUTABLE) for v in itertools.islice(values, 4 * ITEM_COMPARE_LIMIT))


def _code_names(code: types.CodeType) -> tuple[set[str], set[str], set[str]]:
    """(every name the code uses, names it reads or writes as globals, modules it imports)."""
    names = set(code.co_names)
    global_names: set[str] = set()
    imports: set[str] = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in _GLOBAL_OPS:
            global_names.add(instruction.argval)
        elif instruction.opname == "IMPORT_NAME":
            imports.add(instruction.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            inner = _code_names(const)
            names |= inner[0]
            global_names |= inner[1]
            imports |= inner[2]
    return names, global_names, imports


# -- random number generators ------------------------------------------------------------------


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


# -- identities and containers -----------------------------------------------------------------


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


class _Held:
    """Keeps objects alive inside a token (so that their ids cannot be reused by new objects
    before the comparison) and always compares equal: the ids beside it decide."""

    __slots__ = ("items",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, items: tuple) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return True


def _container_token(value: Any) -> Token:
    size = len(value)
    if isinstance(value, dict):
        if size <= ITEM_COMPARE_LIMIT:
            items = tuple(value.items())
            return tuple((id(k), id(v)) for k, v in items), _Held(items)
        return size
    if isinstance(value, set):
        if size <= ITEM_COMPARE_LIMIT:
            items = tuple(value)
            return frozenset(map(id, items)), _Held(items)
        return size
    if size <= ITEM_COMPARE_LIMIT:
        items = tuple(value)
        return tuple(map(id, items)), _Held(items)
    return size, id(value[0]), id(value[-1])


# -- arrays: bounded work per call -------------------------------------------------------------


class _Sampled:
    """A reader whose token covers part of the state, chosen per call (``turn``).

    ``read()`` picks the next part; ``again(token)`` reads the part a before-token covered,
    so that concurrent calls of the same op never compare different parts.
    """

    __slots__ = ("token", "turn")

    def __init__(self, token: Callable[[int], Token]) -> None:
        self.token = token
        self.turn = 0

    def __call__(self) -> Token:
        turn = self.turn
        self.turn = turn + 1  # a lost update between threads only repeats a part
        return self.token(turn)

    def again(self, before: Token) -> Token:
        return self.token(before[0])


def _array_reader(array: np.ndarray) -> Callable[[], Token]:
    if array.dtype.hasobject:
        if array.size <= OBJECT_GRID_ITEMS:
            return lambda: _object_token(array)
        return _grid_reader(array, OBJECT_GRID_ITEMS)
    if array.nbytes <= ARRAY_FULL_HASH_LIMIT:
        return lambda: (array.shape, _bytes_hash(array))
    if array.flags.c_contiguous or array.flags.f_contiguous:
        return _blocks_reader(array)
    return _grid_reader(array, GRID_ITEMS)


def _memory_bytes(array: np.ndarray) -> np.ndarray:
    """A C- or F-contiguous array's memory as flat bytes, in memory order (a view, no copy)."""
    flat = array.reshape(-1) if array.flags.c_contiguous else array.T.reshape(-1)
    return flat.view(np.uint8)


def _bytes_hash(array: np.ndarray) -> int:
    """Hash of an array's bytes (any fixed-size dtype, datetime included)."""
    if array.nbytes == 0:
        return 0
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    return _xxh3(_memory_bytes(array))


def _object_token(array: np.ndarray) -> Token:
    items = tuple(array.ravel())
    return array.shape, tuple(map(id, items)), _Held(items)


def _blocks_reader(array: np.ndarray) -> _Sampled:
    """Fixed blocks from first to last byte, plus a window moving along the array."""
    memory = _memory_bytes(array)
    size = memory.size
    # blocks from the first byte on, evenly spaced; the last one is read apart so that it
    # ends exactly at the last byte (the spacing is rounded down)
    step = (size - ARRAY_BLOCK_BYTES) // (ARRAY_BLOCKS - 1)
    blocks = as_strided(memory, shape=(ARRAY_BLOCKS - 1, ARRAY_BLOCK_BYTES), strides=(step, 1), writeable=False)
    last = memory[size - ARRAY_BLOCK_BYTES:]
    windows = -(-size // ARRAY_WINDOW_BYTES)

    def token(turn: int) -> Token:
        start = (turn % windows) * ARRAY_WINDOW_BYTES
        return (
            turn, array.shape, _xxh3(np.ascontiguousarray(blocks)), _xxh3(last),
            _xxh3(memory[start:start + ARRAY_WINDOW_BYTES]),
        )

    return _Sampled(token)


def _grid_steps(shape: tuple[int, ...], limit: int) -> list[int]:
    steps = [1] * len(shape)
    counts = list(shape)
    while counts and math.prod(counts) > limit:
        axis = counts.index(max(counts))
        steps[axis] *= 2
        counts[axis] = -(-shape[axis] // steps[axis])
    return steps


def _grid_reader(array: np.ndarray, limit: int) -> _Sampled:
    """A strided grid of at most ``limit`` elements; its offset moves call by call, so that
    every element is compared after ``prod(steps)`` calls."""
    steps = _grid_steps(array.shape, limit)

    def token(turn: int) -> Token:
        offsets = []
        rest = turn
        for step in steps:
            offsets.append(rest % step)
            rest //= step
        sample = array[tuple(slice(o, None, s) for o, s in zip(offsets, steps, strict=True))]
        if array.dtype.hasobject:
            return (turn, *_object_token(sample))
        return turn, array.shape, _bytes_hash(sample)

    return _Sampled(token)


def _bytearray_reader(value: bytearray) -> _Sampled:
    """Whole when small; else first and last blocks and a moving window. No view is kept
    between calls (an exported buffer would stop the user's bytearray from resizing)."""

    def token(turn: int) -> Token:
        size = len(value)
        if size <= ARRAY_FULL_HASH_LIMIT:
            return turn, size, _xxh3(value)
        with memoryview(value) as memory:
            windows = -(-size // ARRAY_WINDOW_BYTES)
            start = (turn % windows) * ARRAY_WINDOW_BYTES
            parts = (
                _xxh3(memory[:ARRAY_BLOCK_BYTES]), _xxh3(memory[size - ARRAY_BLOCK_BYTES:]),
                _xxh3(memory[start:start + ARRAY_WINDOW_BYTES]),
            )
        return turn, size, parts

    return _Sampled(token)
