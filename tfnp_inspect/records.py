"""The data model: what one ``numpy_function`` call leaves behind.

Records are built on the hot path, so an :class:`Invocation` keeps compact per-array tuples
(:data:`RawArray`) and turns them into :class:`ArrayInfo` objects only when somebody looks.
Nothing here holds a TF tensor or one of the user's arrays: samples and payloads are copies.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

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


@dataclass(frozen=True)
class Hint:
    """Advice that is not a bug (kept apart from violations so that strict mode ignores it)."""

    kind: str
    func_name: str
    seq: int
    message: str


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


class RawArray(NamedTuple):
    """What the hot path stores per array; :class:`ArrayInfo` is derived from it on demand."""

    shape: tuple[int, ...]
    dtype: Any  # np.dtype, or a str for records loaded from disk
    nbytes: int
    fingerprint: int | None
    flags: int  # FLAG_* bits
    aliases_input: int | None
    will_be_copied: bool | None
    sample: np.ndarray | None  # small copy for lazy stats ('summary' capture)
    data: np.ndarray | None  # full copy ('full' capture)
    capture_note: str | None


FLAG_SHARES_TENSOR = 1
FLAG_WRITEABLE = 2
FLAG_C_CONTIGUOUS = 4
FLAG_STATS_EXACT = 8  # the sample is the whole array


@dataclass
class CallSite:
    """What is known about one ``numpy_function`` op; shared by all its invocations.

    ``origin`` is ``'wrapper'`` for calls made through our ``numpy_function``, ``'registry'``
    for calls through graphs built before tracing was on: those lack ``stateful``, ``tout``
    and ``call_site`` (TensorFlow does not keep them anywhere we can read at call time).
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


@dataclass(frozen=True)
class ProcessInfo:
    """Where a record was made; lets traces from several processes be merged."""

    host: str
    pid: int
    task: str | None = None


_process = ProcessInfo(socket.gethostname(), os.getpid())


def current_process() -> ProcessInfo:
    return _process


def set_task_label(label: str | None) -> None:
    """Label this process's records (a tf.data service worker, a tf.distribute task ...)."""
    global _process
    if label is not None and not isinstance(label, str):
        raise TypeError(f"task label must be a str or None, not {type(label).__name__}")
    _process = ProcessInfo(socket.gethostname(), os.getpid(), label)


class Invocation:
    """One call of a traced function. Read-only by convention; built by the recorder only."""

    __slots__ = (
        "seq", "site", "thread_id", "thread_name", "start_ns", "duration_ns", "raw_inputs",
        "raw_outputs", "error", "violations", "static_hints", "process", "_inputs", "_outputs",
        "_hints",
    )

    def __init__(
        self,
        seq: int,
        site: CallSite,
        thread_id: int,
        thread_name: str,
        start_ns: int,
        duration_ns: int,
        raw_inputs: tuple[RawArray, ...],
        raw_outputs: tuple[RawArray, ...],
        error: ErrorInfo | None,
        violations: tuple[Violation, ...],
        static_hints: tuple[Hint, ...],
        process: ProcessInfo,
    ) -> None:
        self.seq = seq
        self.site = site
        self.thread_id = thread_id
        self.thread_name = thread_name
        self.start_ns = start_ns
        self.duration_ns = duration_ns
        self.raw_inputs = raw_inputs
        self.raw_outputs = raw_outputs
        self.error = error
        self.violations = violations
        self.static_hints = static_hints
        self.process = process
        self._inputs: tuple[ArrayInfo, ...] | None = None
        self._outputs: tuple[ArrayInfo, ...] | None = None
        self._hints: tuple[Hint, ...] | None = None

    # Metadata of the op, shared by every call.
    func_name = property(lambda self: self.site.func_name)
    op_name = property(lambda self: self.site.op_name)
    stateful = property(lambda self: self.site.stateful)
    mode = property(lambda self: self.site.mode)
    call_site = property(lambda self: self.site.call_site)
    host = property(lambda self: self.process.host)
    pid = property(lambda self: self.process.pid)
    task = property(lambda self: self.process.task)

    @property
    def inputs(self) -> tuple[ArrayInfo, ...]:
        if self._inputs is None:
            self._inputs = tuple(map(array_info, self.raw_inputs))
        return self._inputs

    @property
    def outputs(self) -> tuple[ArrayInfo, ...]:
        if self._outputs is None:
            self._outputs = tuple(map(array_info, self.raw_outputs))
        return self._outputs

    @property
    def hints(self) -> tuple[Hint, ...]:
        if self._hints is None:
            self._hints = self.static_hints + _nonfinite_hints(self)
        return self._hints

    @property
    def bytes_in(self) -> int:
        return sum(a.nbytes for a in self.raw_inputs)

    @property
    def bytes_out(self) -> int:
        return sum(a.nbytes for a in self.raw_outputs)

    @property
    def captured(self) -> bool:
        """True when every input was captured, so the call can be replayed."""
        return all(a.data is not None for a in self.raw_inputs)

    @property
    def captured_bytes(self) -> int:
        return sum(a.data.nbytes for a in self.raw_inputs + self.raw_outputs if a.data is not None)

    def replace(self, **changes: Any) -> Invocation:
        """A copy with some fields changed (used to give one sink a view filtered to its options)."""
        fields = {name: getattr(self, name) for name in _INIT_FIELDS}
        fields.update(changes)
        return Invocation(**fields)

    def __repr__(self) -> str:
        ins = ", ".join(_short(a) for a in self.raw_inputs)
        outs = ", ".join(_short(a) for a in self.raw_outputs)
        status = f" error={self.error}" if self.error else ""
        kinds = ",".join(v.kind for v in self.violations)
        flagged = f" violations=[{kinds}]" if kinds else ""
        return (
            f"<Invocation #{self.seq} {self.func_name} {self.mode} "
            f"{self.duration_ns / 1000:.1f}us ({ins}) -> ({outs}){status}{flagged}>"
        )


_INIT_FIELDS = (
    "seq", "site", "thread_id", "thread_name", "start_ns", "duration_ns", "raw_inputs",
    "raw_outputs", "error", "violations", "static_hints", "process",
)

_dtype_names: dict[Any, str] = {}


def dtype_name(dtype: Any) -> str:
    """``str(np.dtype)`` costs microseconds; dtypes are few, so remember each name."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = dtype if isinstance(dtype, str) else str(dtype)
        _dtype_names[dtype] = name
    return name


def _short(raw: RawArray) -> str:
    return f"{dtype_name(raw.dtype)}{list(raw.shape)}"


def array_info(raw: RawArray) -> ArrayInfo:
    """Expand the hot path's compact tuple into the public record."""
    source = raw.data if raw.data is not None else raw.sample
    exact = raw.data is not None or bool(raw.flags & FLAG_STATS_EXACT)
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
