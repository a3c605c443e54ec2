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
from dataclasses import dataclass, field
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
)
HINT_KINDS: tuple[str, ...] = ("could-be-stateless", "output-copied", "nonfinite")


@dataclass(frozen=True)
class Violation:
    """A broken ``numpy_function`` contract, found while the call ran."""

    kind: str
    func_name: str
    seq: int
    call_site: str | None
    message: str
    argument: str | None = None  # "input 0", "output 1", "global 'cache'", ...

    def row(self) -> tuple:
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

    def row(self) -> tuple:
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


# RawArray.flags keeps numpy's own flag bits (``ndarray.flags.num``) plus two of ours.
FLAG_C_CONTIGUOUS = 0x1  # NPY_ARRAY_C_CONTIGUOUS
FLAG_WRITEABLE = 0x400  # NPY_ARRAY_WRITEABLE
FLAG_SHARES_TENSOR = 1 << 16
FLAG_STATS_EXACT = 1 << 17  # the sample is the whole array
FLAG_BUFFER_HASH = 1 << 18  # the fingerprint is xxh3 of the raw buffer (rehash the same way)


class CallSite(NamedTuple):
    """What is known about one ``numpy_function`` op; shared by all its invocations.

    ``origin`` is ``'wrapper'`` for calls made through our ``numpy_function``, ``'registry'``
    for calls through graphs built before tracing was on: those lack ``stateful``, ``tout``
    and ``call_site`` (TensorFlow does not keep them anywhere we can read at call time).

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

    @property
    def func(self) -> Any:
        """The user's function, for replay; None once it is gone or for loaded traces."""
        ref = _site_functions.get(self.key)
        return ref() if ref is not None else None


_site_functions: dict[int, weakref.ref] = {}
_site_keys = itertools.count(1)


def remember_function(func: Any) -> int:
    """Keep a weak reference to ``func`` for replay; the key to put in its CallSite."""
    key = next(_site_keys)
    forget = lambda _, key=key: _site_functions.pop(key, None)  # noqa: E731
    try:
        # a bound method object dies at once: WeakMethod follows its object and function
        reference = weakref.WeakMethod if isinstance(func, types.MethodType) else weakref.ref
        _site_functions[key] = reference(func, forget)
    except TypeError:  # not weakly referenceable: replay needs the function passed explicitly
        return 0
    return key


class ProcessInfo(NamedTuple):
    """Where a record was made; lets traces from several processes be merged."""

    host: str
    pid: int
    task: str | None = None


_process = (socket.gethostname(), os.getpid(), None)  # a plain tuple: stored in every row


def current_process() -> ProcessInfo:
    return _new_tuple(ProcessInfo, _process)


def set_task_label(label: str | None) -> None:
    """Label this process's records (a tf.data service worker, a tf.distribute task ...)."""
    global _process
    if label is not None and not isinstance(label, str):
        raise TypeError(f"task label must be a str or None, not {type(label).__name__}")
    _process = (socket.gethostname(), os.getpid(), label)


_FIELDS = (
    "seq", "site", "thread_id", "thread_name", "start_ns", "duration_ns", "raw_inputs",
    "raw_outputs", "error", "violations", "static_hints", "process", "bytes_in", "bytes_out",
)


_new_tuple = tuple.__new__


class Invocation(tuple):
    """One call of a traced function (immutable).

    Recorders store each call as a plain tuple of plain tuples (see :class:`CallSite`: the
    garbage collector stops tracking those); an Invocation is a view over such a row, made
    when somebody reads it, and :meth:`create` is the readable constructor.
    """

    __slots__ = ()

    @classmethod
    def create(
        cls,
        seq: int,
        site: CallSite,
        thread_id: int,
        thread_name: str,
        start_ns: int,
        duration_ns: int,
        raw_inputs: Any,
        raw_outputs: Any,
        error: ErrorInfo | None = None,
        violations: Any = (),
        static_hints: Any = (),
        process: ProcessInfo | None = None,
    ) -> Invocation:
        raw_inputs = tuple(map(tuple, raw_inputs))
        raw_outputs = tuple(map(tuple, raw_outputs))
        return _new_tuple(cls, (
            seq, tuple(site), thread_id, thread_name, start_ns, duration_ns, raw_inputs,
            raw_outputs, error, tuple(_as_row(v) for v in violations),
            tuple(_as_row(h) for h in static_hints),
            tuple(process or current_process()), sum(r[2] for r in raw_inputs),
            sum(r[2] for r in raw_outputs),
        ))

    @classmethod
    def from_row(cls, row: tuple) -> Invocation:
        return _new_tuple(cls, row)

    def row(self) -> tuple:
        """The plain tuple a recorder stores."""
        return tuple(self)

    seq: int = property(itemgetter(0))  # type: ignore[assignment]
    thread_id: int = property(itemgetter(2))  # type: ignore[assignment]
    thread_name: str = property(itemgetter(3))  # type: ignore[assignment]
    start_ns: int = property(itemgetter(4))  # type: ignore[assignment]
    duration_ns: int = property(itemgetter(5))  # type: ignore[assignment]
    error: ErrorInfo | None = property(itemgetter(8))  # type: ignore[assignment]
    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(Violation(*v) for v in self[9])

    @property
    def static_hints(self) -> tuple[Hint, ...]:
        """Hints found during the call (``hints`` adds those derived from the stats)."""
        return tuple(Hint(*h) for h in self[10])
    bytes_in: int = property(itemgetter(12))  # type: ignore[assignment]
    bytes_out: int = property(itemgetter(13))  # type: ignore[assignment]

    @property
    def site(self) -> CallSite:
        return _new_tuple(CallSite, self[1])

    @property
    def process(self) -> ProcessInfo:
        return _new_tuple(ProcessInfo, self[11])

    @property
    def raw_inputs(self) -> tuple[RawArray, ...]:
        return tuple(_new_tuple(RawArray, r) for r in self[6])

    @property
    def raw_outputs(self) -> tuple[RawArray, ...]:
        return tuple(_new_tuple(RawArray, r) for r in self[7])

    # Metadata of the op, shared by every call (indexes follow CallSite and ProcessInfo).
    func_name = property(lambda self: self[1][0])
    op_name = property(lambda self: self[1][4])
    stateful = property(lambda self: self[1][3])
    mode = property(lambda self: self[1][2])
    call_site = property(lambda self: self[1][6])
    host = property(lambda self: self[11][0])
    pid = property(lambda self: self[11][1])
    task = property(lambda self: self[11][2])

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
        return all(r[8] is not None for r in self[6])

    @property
    def captured_bytes(self) -> int:
        return captured_bytes(self)

    def replace(self, **changes: Any) -> Invocation:
        """A copy with some fields changed (gives one recorder a view fitted to its options)."""
        fields = {
            "seq": self.seq, "site": self[1], "thread_id": self.thread_id,
            "thread_name": self.thread_name, "start_ns": self.start_ns,
            "duration_ns": self.duration_ns, "raw_inputs": self[6], "raw_outputs": self[7],
            "error": self.error, "violations": self.violations, "static_hints": self.static_hints,
            "process": self[11],
        }
        fields.update(changes)
        return Invocation.create(**fields)

    def __hash__(self) -> int:
        return hash((self[0], self[11]))

    def __repr__(self) -> str:
        ins = ", ".join(_short(a) for a in self[6])
        outs = ", ".join(_short(a) for a in self[7])
        status = f" error={self.error}" if self.error else ""
        kinds = ",".join(v[0] for v in self[9])
        flagged = f" violations=[{kinds}]" if kinds else ""
        return (
            f"<Invocation #{self.seq} {self.func_name} {self.mode} "
            f"{self.duration_ns / 1000:.1f}us ({ins}) -> ({outs}){status}{flagged}>"
        )

    def _repr_html_(self) -> str:
        return seams.layer("views").invocation_html(self)


def _as_row(record: Any) -> tuple:
    return record.row() if isinstance(record, (Violation, Hint)) else tuple(record)


def captured_bytes(row: tuple) -> int:
    """Bytes of full-capture payloads in a stored row (or an Invocation)."""
    return sum(r[8].nbytes for r in row[6] + row[7] if r[8] is not None)


_dtype_names: dict[Any, str] = {}


def dtype_name(dtype: Any) -> str:
    """``str(np.dtype)`` costs microseconds; dtypes are few, so remember each name."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = dtype if isinstance(dtype, str) else str(dtype)
        _dtype_names[dtype] = name
    return name


def _short(raw: tuple) -> str:
    return f"{dtype_name(raw[1])}{list(raw[0])}"


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
