"""The data model: what one ``numpy_function`` call leaves behind.

Records are built on the hot path, so an :class:`Invocation` keeps compact per-array tuples
(:data:`RawArray`) and turns them into :class:`ArrayInfo` objects only when somebody looks.
Nothing here holds a TF tensor or one of the user's arrays: samples and payloads are copies.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from . import seams

VIOLATION_KINDS: tuple[str, ...] = (
    "mutated-input",
    "retained-reference",
    "nondeterministic",
    "hidden-state",
    "tout-mismatch",
    "shape-mismatch",
)
HINT_KINDS: tuple[str, ...] = (
    "could-be-stateless", "output-copied", "nonfinite", "eager-conversion",
    "unknown-shape", "serialized", "retraced",
)


@dataclass(frozen=True)
class Violation:
    """A broken ``numpy_function`` contract, found while the call ran."""

    kind: str
    func_name: str
    seq: int
    call_site: str | None
    message: str
    argument: str | None = None  # "input 0", "output 1", "global 'cache'", ...

    def row(self) -> tuple[Any, ...]:
        """The plain tuple a stored invocation holds (see :class:`CallSite` on why)."""
        return (self.kind, self.func_name, self.seq, self.call_site, self.message, self.argument)

    def _repr_html_(self) -> str:
        return seams.layer("views").violation_html(self)


@dataclass(frozen=True)
class Hint:
    """Advice that is not a bug (kept apart from violations so that strict mode ignores it)."""

    kind: str
    func_name: str
    seq: int
    message: str

    def row(self) -> tuple[Any, ...]:
        """The plain tuple a stored invocation holds (see :class:`CallSite` on why)."""
        return (self.kind, self.func_name, self.seq, self.message)

    def _repr_html_(self) -> str:
        return seams.layer("views").hint_html(self)


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised by the user's function, kept as text so that no frame stays alive."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class ArrayStats:
    """Summary statistics of a numeric array, computed from a copy when somebody asks.

    ``exact`` is False when they come from an evenly strided sample of a large array.
    """

    min: float
    max: float
    mean: float
    nan_count: int
    inf_count: int
    exact: bool
    elements: int  # how many elements the figures are based on

    @property
    def nonfinite(self) -> bool:
        return self.nan_count > 0 or self.inf_count > 0


@dataclass(frozen=True)
class ArrayInfo:
    """One input or output of a call."""

    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    fingerprint: int | None  # xxh3_64 of the contents (None: not computed)
    shares_tensor_memory: bool  # zero-copy view of a TF tensor buffer
    writeable: bool
    c_contiguous: bool
    aliases_input: int | None  # outputs: index of the input whose memory it shares
    will_be_copied: bool | None  # outputs in graph mode: TF must copy it (None: not known)
    stats: ArrayStats | None
    data: np.ndarray | None = field(default=None, repr=False, compare=False)
    capture_note: str | None = None  # why ``data`` is missing although capture was 'full'

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def _repr_html_(self) -> str:
        return seams.layer("views").array_html(self)


class RawArray(NamedTuple):
    """What the hot path stores per array; :class:`ArrayInfo` is derived from it on demand."""

    shape: tuple[int, ...]
    dtype: Any  # np.dtype, or a str for records loaded from disk
    nbytes: int
    fingerprint: int | None
    flags: int  # FLAG_* bits
    aliases_input: int | None
    will_be_copied: bool | None
    sample: bytes | None  # raw bytes of a small (strided) copy, for lazy stats ('summary')
    data: np.ndarray | None  # full copy ('full' capture)
    capture_note: str | None


# Named positions in a RawArray row, for code that reads the plain tuples (the hot path stores
# them untyped: an exact tuple of atomic values is not tracked by the garbage collector).
A_SHAPE = RawArray._fields.index("shape")
A_DTYPE = RawArray._fields.index("dtype")
A_NBYTES = RawArray._fields.index("nbytes")
A_FINGERPRINT = RawArray._fields.index("fingerprint")
A_FLAGS = RawArray._fields.index("flags")
A_ALIASES_INPUT = RawArray._fields.index("aliases_input")
A_WILL_BE_COPIED = RawArray._fields.index("will_be_copied")
A_SAMPLE = RawArray._fields.index("sample")
A_DATA = RawArray._fields.index("data")
A_CAPTURE_NOTE = RawArray._fields.index("capture_note")

# RawArray.flags keeps numpy's own flag bits (``ndarray.flags.num``) plus two of ours.
FLAG_C_CONTIGUOUS = 0x1  # NPY_ARRAY_C_CONTIGUOUS
FLAG_WRITEABLE = 0x400  # NPY_ARRAY_WRITEABLE
FLAG_SHARES_TENSOR = 1 << 16
FLAG_STATS_EXACT = 1 << 17  # the sample is the whole array
FLAG_BUFFER_HASH = 1 << 18  # the fingerprint is xxh3 of the raw buffer (rehash the same way)
FLAG_SAMPLED = 1 << 19  # the fingerprint covers sampled bytes only (a call not fully checked)


class CallSite(NamedTuple):
    """What is known about one ``numpy_function`` op; shared by all its invocations.

    ``origin`` is ``'wrapper'`` for ops whose declaration was kept when they were built (every op
    built after ``import tfnp_inspect``), ``'generator'`` for ``Dataset.from_generator`` (named
    after the user's generator), and ``'registry'`` for ops built before the import: those lack
    ``stateful``, ``tout`` and ``call_site`` (TensorFlow keeps none of them at call time).
    ``static_shapes`` holds what TF knows statically about each output, read when the op first
    runs (so a ``set_shape`` after the op was built counts): a tuple of dimensions (None where
    unknown) per output, or None for an unknown rank; None as a whole where nothing is known.

    Records, sites and process infos hold only atomic values (str, int, tuples of them), so
    the garbage collector stops tracking them: a full ring buffer then costs nothing at each
    collection. The user's function is therefore kept aside, weakly, under ``key``.
    """

    func_name: str
    module: str | None
    mode: str  # 'eager' or 'graph'
    stateful: bool | None
    op_name: str | None
    token: str | None
    call_site: str | None
    tout: tuple[str, ...] | None
    tout_is_list: bool
    origin: str = "wrapper"
    key: int = 0  # 0: no function kept (loaded from disk, or not weakly referenceable)
    defined_at: str | None = None  # file:line of the function's definition
    static_shapes: tuple[tuple[int | None, ...] | None, ...] | None = None

    @property
    def func(self) -> Any:
        """The user's function, for replay; None once it is gone or for loaded traces."""
        ref = _site_functions.get(self.key)
        return ref() if ref is not None else None


_site_functions: dict[int, weakref.ref[Any]] = {}
_site_keys = itertools.count(1)


#: One key per live function, however many ops are built from it (a tf.function retraced
#: thousands of times must not leave thousands of entries behind).
_keys_by_function: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def remember_function(func: Any) -> int:
    """Keep a weak reference to ``func`` for replay; the key to put in its CallSite."""
    if not isinstance(func, types.MethodType):  # bound methods are made anew at each access
        try:
            known = _keys_by_function.get(func)
        except TypeError:  # not weakly referenceable (or unhashable)
            known = None
        if known is not None:
            return known
    key = next(_site_keys)

    def forget(_: object) -> None:
        _site_functions.pop(key, None)

    try:
        # a bound method object dies at once: WeakMethod follows its object and function
        reference = weakref.WeakMethod if isinstance(func, types.MethodType) else weakref.ref
        _site_functions[key] = reference(func, forget)
    except TypeError:  # not weakly referenceable: replay needs the function passed explicitly
        return 0
    if not isinstance(func, types.MethodType):
        try:
            _keys_by_function[func] = key
        except TypeError:  # weakly referenceable but unhashable
            pass
    return key


class ProcessInfo(NamedTuple):
    """Where a record was made; lets traces from several processes be merged."""

    host: str
    pid: int
    task: str | None = None

    @property
    def label(self) -> str:
        """``host:pid``, or ``task (host:pid)`` when labelled: how every view and file names a process."""
        where = f"{self.host}:{self.pid}"
        return f"{self.task} ({where})" if self.task else where


_process = (socket.gethostname(), os.getpid(), None)  # a plain tuple: stored in every row


def current_process() -> ProcessInfo:
    return _new_tuple(ProcessInfo, _process)


def set_task_label(label: str | None) -> None:
    """Label this process's records (a tf.data service worker, a tf.distribute task ...)."""
    global _process
    if label is not None and not isinstance(label, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"task label must be a str or None, not {type(label).__name__}")
    _process = (socket.gethostname(), os.getpid(), label)


class CallRow(NamedTuple):
    """The per-call row: what a recorder stores for one call, as a plain tuple in this order.

    Only the declaration: rows are built as exact tuples (GC-untracked, see :class:`CallSite`)
    and read through :class:`Invocation` or the ``C_*`` positions below, never as CallRow.
    """

    seq: int
    site: tuple[Any, ...]  # CallSite's values
    thread_id: int
    thread_name: str
    start_ns: int  # wall clock
    duration_ns: int
    raw_inputs: tuple[tuple[Any, ...], ...]  # RawArray rows
    raw_outputs: tuple[tuple[Any, ...], ...]
    error: ErrorInfo | None
    violations: tuple[tuple[Any, ...], ...]  # Violation.row() tuples
    static_hints: tuple[tuple[Any, ...], ...]  # Hint.row() tuples
    process: tuple[Any, ...]  # ProcessInfo's values
    bytes_in: int
    bytes_out: int


# Named positions in a call row (CallRow), in a CallSite, a ProcessInfo and a Violation row.
C_SEQ = CallRow._fields.index("seq")
C_SITE = CallRow._fields.index("site")
C_THREAD_ID = CallRow._fields.index("thread_id")
C_THREAD_NAME = CallRow._fields.index("thread_name")
C_START_NS = CallRow._fields.index("start_ns")
C_DURATION_NS = CallRow._fields.index("duration_ns")
C_RAW_INPUTS = CallRow._fields.index("raw_inputs")
C_RAW_OUTPUTS = CallRow._fields.index("raw_outputs")
C_ERROR = CallRow._fields.index("error")
C_VIOLATIONS = CallRow._fields.index("violations")
C_STATIC_HINTS = CallRow._fields.index("static_hints")
C_PROCESS = CallRow._fields.index("process")
C_BYTES_IN = CallRow._fields.index("bytes_in")
C_BYTES_OUT = CallRow._fields.index("bytes_out")
S_FUNC_NAME = CallSite._fields.index("func_name")
S_MODE = CallSite._fields.index("mode")
S_STATEFUL = CallSite._fields.index("stateful")
S_OP_NAME = CallSite._fields.index("op_name")
S_CALL_SITE = CallSite._fields.index("call_site")
P_HOST = ProcessInfo._fields.index("host")
P_PID = ProcessInfo._fields.index("pid")
P_TASK = ProcessInfo._fields.index("task")
V_KIND = [f.name for f in fields(Violation)].index("kind")


#: ``tuple.__new__``: a view over a stored tuple without copying it into a NamedTuple's __init__.
_new_tuple: Callable[..., Any] = tuple[Any, ...].__new__


def _field(position: int, inner: int | None = None) -> Any:
    """A read-only attribute of an :class:`Invocation`: the row's field at ``position`` (or the
    field at ``inner`` of the tuple there)."""
    if inner is None:
        return property(itemgetter(position))
    return property(lambda self: self[position][inner])


class Invocation(tuple[Any, ...]):
    """One call of a traced function (immutable).

    Recorders store each call as a plain tuple of plain tuples laid out as :class:`CallRow` (see
    :class:`CallSite`: the garbage collector stops tracking those); an Invocation is a view over
    such a row, made when somebody reads it, and :meth:`create` is the readable constructor.

    Two invocations are equal when they are the same call: the same ``seq`` in the same process
    (what the hash covers too); their arrays are never compared.
    """

    __slots__ = ()

    @classmethod
    def create(
        cls,
        seq: int,
        site: CallSite | tuple[Any, ...],
        thread_id: int,
        thread_name: str,
        start_ns: int,
        duration_ns: int,
        raw_inputs: Iterable[Iterable[Any]],
        raw_outputs: Iterable[Iterable[Any]],
        error: ErrorInfo | None = None,
        violations: Iterable[Any] = (),
        static_hints: Iterable[Any] = (),
        process: ProcessInfo | tuple[Any, ...] | None = None,
    ) -> Invocation:
        inputs = tuple(map(tuple, raw_inputs))
        outputs = tuple(map(tuple, raw_outputs))
        row = CallRow(
            seq=seq,
            site=tuple(site),
            thread_id=thread_id,
            thread_name=thread_name,
            start_ns=start_ns,
            duration_ns=duration_ns,
            raw_inputs=inputs,
            raw_outputs=outputs,
            error=error,
            violations=tuple(_as_row(v) for v in violations),
            static_hints=tuple(_as_row(h) for h in static_hints),
            process=tuple(process or current_process()),
            bytes_in=sum(r[A_NBYTES] for r in inputs),
            bytes_out=sum(r[A_NBYTES] for r in outputs),
        )
        return _new_tuple(cls, row)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Invocation:
        return _new_tuple(cls, row)

    def row(self) -> tuple[Any, ...]:
        """The plain tuple a recorder stores."""
        return tuple(self)

    seq: int = _field(C_SEQ)
    thread_id: int = _field(C_THREAD_ID)
    thread_name: str = _field(C_THREAD_NAME)
    start_ns: int = _field(C_START_NS)
    duration_ns: int = _field(C_DURATION_NS)
    error: ErrorInfo | None = _field(C_ERROR)
    bytes_in: int = _field(C_BYTES_IN)
    bytes_out: int = _field(C_BYTES_OUT)
    # Metadata of the op and of the process, shared by every call.
    func_name: str = _field(C_SITE, S_FUNC_NAME)
    op_name: str | None = _field(C_SITE, S_OP_NAME)
    stateful: bool | None = _field(C_SITE, S_STATEFUL)
    mode: str = _field(C_SITE, S_MODE)
    call_site: str | None = _field(C_SITE, S_CALL_SITE)
    host: str = _field(C_PROCESS, P_HOST)
    pid: int = _field(C_PROCESS, P_PID)
    task: str | None = _field(C_PROCESS, P_TASK)

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(Violation(*v) for v in self[C_VIOLATIONS])

    @property
    def static_hints(self) -> tuple[Hint, ...]:
        """Hints found during the call (``hints`` adds those derived from the stats)."""
        return tuple(Hint(*h) for h in self[C_STATIC_HINTS])

    @property
    def site(self) -> CallSite:
        return _new_tuple(CallSite, self[C_SITE])

    @property
    def process(self) -> ProcessInfo:
        return _new_tuple(ProcessInfo, self[C_PROCESS])

    @property
    def raw_inputs(self) -> tuple[RawArray, ...]:
        return tuple(_new_tuple(RawArray, r) for r in self[C_RAW_INPUTS])

    @property
    def raw_outputs(self) -> tuple[RawArray, ...]:
        return tuple(_new_tuple(RawArray, r) for r in self[C_RAW_OUTPUTS])

    @property
    def inputs(self) -> tuple[ArrayInfo, ...]:
        return tuple(map(array_info, self.raw_inputs))

    @property
    def outputs(self) -> tuple[ArrayInfo, ...]:
        return tuple(map(array_info, self.raw_outputs))

    @property
    def hints(self) -> tuple[Hint, ...]:
        return self.static_hints + _nonfinite_hints(self)

    @property
    def captured(self) -> bool:
        """True when every input was captured, so the call can be replayed."""
        return all(r[A_DATA] is not None for r in self[C_RAW_INPUTS])

    @property
    def fully_checked(self) -> bool:
        """False when a large array of this call was fingerprinted by sampling (byte_checks
        'sampled'): a sparse write could have escaped the mutation check on this call."""
        return not any(r[A_FLAGS] & FLAG_SAMPLED for r in self[C_RAW_INPUTS] + self[C_RAW_OUTPUTS])

    @property
    def captured_bytes(self) -> int:
        return captured_bytes(self)

    def replace(self, **changes: Any) -> Invocation:
        """A copy with some fields changed (gives one recorder a view fitted to its options)."""
        values: dict[str, Any] = dict(zip(CallRow._fields, self, strict=True))
        del values["bytes_in"], values["bytes_out"]  # derived from the arrays again
        values.update(changes)
        return Invocation.create(**values)

    def _key(self) -> tuple[Any, ...]:
        return (self[C_SEQ], self[C_PROCESS])

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Invocation):
            return self._key() == other._key()
        # a bare row is not a call: answered here, before tuple's own comparison of the arrays
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:
        ins = ", ".join(_short(a) for a in self[C_RAW_INPUTS])
        outs = ", ".join(_short(a) for a in self[C_RAW_OUTPUTS])
        status = f" error={self.error}" if self.error else ""
        kinds = ",".join(v[V_KIND] for v in self[C_VIOLATIONS])
        flagged = f" violations=[{kinds}]" if kinds else ""
        return (
            f"<Invocation #{self.seq} {self.func_name} {self.mode} "
            f"{self.duration_ns / 1000:.1f}us ({ins}) -> ({outs}){status}{flagged}>"
        )

    def _repr_html_(self) -> str:
        return seams.layer("views").invocation_html(self)


def _as_row(record: Any) -> tuple[Any, ...]:
    return record.row() if isinstance(record, (Violation, Hint)) else tuple(record)


def captured_bytes(row: tuple[Any, ...]) -> int:
    """Bytes of full-capture payloads in a stored row (or an Invocation)."""
    arrays = row[C_RAW_INPUTS] + row[C_RAW_OUTPUTS]
    return sum(r[A_DATA].nbytes for r in arrays if r[A_DATA] is not None)


_dtype_names: dict[Any, str] = {}


def dtype_name(dtype: Any) -> str:
    """``str(np.dtype)`` costs microseconds; dtypes are few, so remember each name."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = dtype if isinstance(dtype, str) else str(dtype)
        _dtype_names[dtype] = name
    return name


def type_label(dtype: Any, shape: Iterable[int]) -> str:
    """``float32[2, 3]``: an array's dtype and shape, as every view and message names them."""
    return f"{dtype_name(dtype)}{list(shape)}"


def _short(raw: tuple[Any, ...]) -> str:
    return type_label(raw[A_DTYPE], raw[A_SHAPE])


def array_info(raw: RawArray) -> ArrayInfo:
    """Expand the hot path's compact tuple into the public record."""
    if raw.data is not None:
        source, exact = raw.data, True
    elif raw.sample is not None:
        source, exact = np.frombuffer(raw.sample, dtype=raw.dtype), bool(raw.flags & FLAG_STATS_EXACT)
    else:
        source, exact = None, False
    return ArrayInfo(
        shape=tuple(raw.shape),
        dtype=dtype_name(raw.dtype),
        nbytes=raw.nbytes,
        fingerprint=raw.fingerprint,
        shares_tensor_memory=bool(raw.flags & FLAG_SHARES_TENSOR),
        writeable=bool(raw.flags & FLAG_WRITEABLE),
        c_contiguous=bool(raw.flags & FLAG_C_CONTIGUOUS),
        aliases_input=raw.aliases_input,
        will_be_copied=raw.will_be_copied,
        stats=compute_stats(source, exact) if source is not None else None,
        data=raw.data,
        capture_note=raw.capture_note,
    )


def compute_stats(values: np.ndarray, exact: bool) -> ArrayStats | None:
    """Statistics of numeric (bool, integer, float) arrays; None for strings, objects, complex."""
    if values.dtype.kind not in "biuf" or values.size == 0:
        return None
    flat = values.ravel()
    if flat.dtype.kind == "f":
        nan = np.isnan(flat)
        inf = np.isinf(flat)
        nan_count, inf_count = int(nan.sum()), int(inf.sum())
        finite = flat[~(nan | inf)] if nan_count or inf_count else flat
    else:
        nan_count = inf_count = 0
        finite = flat
    if finite.size:
        as_float = finite.astype(np.float64)
        low, high, mean = float(as_float.min()), float(as_float.max()), float(as_float.mean())
    else:
        low = high = mean = math.nan
    return ArrayStats(low, high, mean, nan_count, inf_count, exact, int(flat.size))


def _nonfinite_hints(invocation: Invocation) -> tuple[Hint, ...]:
    if invocation.error is not None:
        return ()
    if any(s is not None and s.nonfinite for s in (a.stats for a in invocation.inputs)):
        return ()
    bad = [i for i, a in enumerate(invocation.outputs) if a.stats is not None and a.stats.nonfinite]
    if not bad:
        return ()
    which = ", ".join(f"output {i}" for i in bad)
    return (
        Hint(
            "nonfinite",
            invocation.func_name,
            invocation.seq,
            f"{which} of {invocation.func_name} contains NaN or Inf although no input does "
            "(numpy only warns about this, and TensorFlow never checks; "
            "tf.debugging.check_numerics downstream would stop here).",
        ),
    )
