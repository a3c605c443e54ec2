"""Records made without TensorFlow, through the public factory ``Invocation.create``.

Each array is described as the probe would describe it (fingerprint, flags, stats sample, and a
copy for 'full' capture), from numpy alone. Imported by the unit tests as ``fabricate``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import tfnp_inspect as npi
from tfnp_inspect.model.fingerprints import as_array, fingerprint
from tfnp_inspect.model.records import (
    FLAG_C_CONTIGUOUS,
    FLAG_SHARES_TENSOR,
    FLAG_STATS_EXACT,
    FLAG_WRITEABLE,
    CallSite,
    ErrorInfo,
    Invocation,
    ProcessInfo,
    RawArray,
    remember_function,
)

_seq = itertools.count(1_000_000)  # far from the seqs real calls get in this process


def raw_array(
    value: Any,
    capture: str = "summary",
    *,
    shares_tensor: bool = False,
    aliases_input: int | None = None,
    will_be_copied: bool | None = None,
    capture_note: str | None = None,
) -> RawArray:
    """One input or output, described at the given capture level ('none', 'summary', 'full')."""
    array = as_array(value)
    flags = 0
    if array.flags.c_contiguous:
        flags |= FLAG_C_CONTIGUOUS
    if array.flags.writeable:
        flags |= FLAG_WRITEABLE
    if shares_tensor:
        flags |= FLAG_SHARES_TENSOR
    sample = None
    if capture == "summary" and array.dtype.kind in "biuf":
        sample = np.ascontiguousarray(array).tobytes()
        flags |= FLAG_STATS_EXACT
    return RawArray(
        shape=tuple(array.shape),
        dtype=array.dtype,
        nbytes=array.nbytes,
        fingerprint=fingerprint(value),
        flags=flags,
        aliases_input=aliases_input,
        will_be_copied=will_be_copied,
        sample=sample,
        data=array.copy() if capture == "full" else None,
        capture_note=capture_note,
    )


def site(
    func: Callable[..., Any] | str = "double",
    *,
    mode: str = "eager",
    stateful: bool | None = True,
    call_site: str | None = "model.py:12",
    op_name: str | None = None,
) -> CallSite:
    """A CallSite; a callable is remembered (weakly) so that replay finds it."""
    name = func if isinstance(func, str) else func.__qualname__
    key = 0 if isinstance(func, str) else remember_function(func)
    return CallSite(
        func_name=name, module="tests.unit", mode=mode, stateful=stateful, op_name=op_name,
        token=None, call_site=call_site, tout=("float64",), tout_is_list=False, key=key,
    )


def invocation(
    inputs: Iterable[Any] = (np.arange(4.0),),
    outputs: Iterable[Any] | None = None,
    *,
    func: Callable[..., Any] | str = "double",
    capture: str = "summary",
    seq: int | None = None,
    duration_ns: int = 1_500,
    start_ns: int = 1_700_000_000_000_000_000,
    error: ErrorInfo | None = None,
    violations: Iterable[npi.Violation] = (),
    hints: Iterable[npi.Hint] = (),
    process: ProcessInfo | None = None,
    thread: str = "MainThread",
    **site_fields: Any,
) -> Invocation:
    """One recorded call; ``outputs`` defaults to twice each input (as ``double`` returns)."""
    inputs = [np.asarray(x) for x in inputs]
    if outputs is None:
        outputs = [] if error is not None else [x * 2 for x in inputs]
    return Invocation.create(
        seq=next(_seq) if seq is None else seq,
        site=site(func, **site_fields),
        thread_id=1,
        thread_name=thread,
        start_ns=start_ns,
        duration_ns=duration_ns,
        raw_inputs=[raw_array(x, capture) for x in inputs],
        raw_outputs=[raw_array(y, capture) for y in outputs],
        error=error,
        violations=violations,
        static_hints=hints,
        process=process,
    )


def violation(inv: Invocation, kind: str = "mutated-input", message: str = "wrote into input 0") -> npi.Violation:
    return npi.Violation(kind, inv.func_name, inv.seq, inv.call_site, message, "input 0")


def trace_of(invocations: Iterable[Invocation], **options: Any) -> npi.Trace:
    """A Trace over a fresh recorder that holds ``invocations`` (appended as the probe would)."""
    recorder = npi.Recorder(**options)
    for inv in invocations:
        recorder.append(inv)
    return npi.Trace(recorder)
