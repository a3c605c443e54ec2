"""Calling a recorded function again on its captured inputs, to see whether the call reproduces.

A replay runs the function eagerly, in this thread, on copies of what it received (so it can be
stepped through in a debugger and cannot damage the record), then compares what comes back with
what the recorded call returned: count, dtype, shape and contents (fingerprints always; values
too when the outputs were captured). Core-level: the magics and the panel use :func:`replay`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks.tout import returned_items
from ..model import seams
from ..model.fingerprints import as_array, fingerprint
from ..model.records import ArrayInfo, ErrorInfo, Invocation

#: How the function is called: ``runner(func, *args)``; a debugger's ``runcall`` fits.
Runner = Callable[..., Any]


class ReplayError(ValueError):
    """The invocation cannot be replayed: its inputs were not captured, or its function is gone."""


@dataclass(frozen=True)
class ReplayResult:
    """What a replay returned (or raised), and how that differs from the recorded call."""

    invocation: Invocation
    outputs: tuple[np.ndarray, ...]
    error: BaseException | None
    differences: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return not self.differences

    def __repr__(self) -> str:
        return seams.layer("views").replay_text(self)

    def _repr_html_(self) -> str:
        return seams.layer("views").replay_html(self)


def replay(
    invocation: Invocation, func: Callable[..., Any] | None = None, runner: Runner | None = None,
) -> ReplayResult:
    """Call ``func`` (by default the recorded function) on copies of the captured inputs.

    Raises :class:`ReplayError` when the inputs were not captured (record with
    ``capture='full'``) or when the function is no longer known (pass ``func=``).
    An exception raised by the function itself is not raised: it is part of the result.
    """
    if not isinstance(invocation, Invocation):
        raise TypeError(f"replay() needs an Invocation, not {type(invocation).__name__}")
    target = func if func is not None else invocation.site.func
    if target is None:
        raise ReplayError(
            f"the function of call #{invocation.seq} ({invocation.func_name}) is no longer known "
            "(it was garbage-collected, or the trace was loaded from disk); pass it explicitly: "
            "replay(invocation, func=...)"
        )
    if not callable(target):
        raise TypeError(f"func must be callable, not {type(target).__name__}")
    args = replay_arguments(invocation)
    try:
        result = (runner or _call)(target, *args)
    except Exception as exc:  # noqa: BLE001 - the function's own failure is a finding, not an error of replay
        return ReplayResult(invocation, (), exc, tuple(_compare_errors(invocation.error, exc)))
    returned = tuple(returned_items(result))
    if invocation.error is not None:
        differences = _compare_errors(invocation.error, None)
    else:
        differences = _compare_outputs(invocation.outputs, returned)
    return ReplayResult(invocation, tuple(as_array(item) for item in returned), None, tuple(differences))


def replay_arguments(invocation: Invocation) -> list[Any]:
    """Fresh copies of the captured inputs, in the form TensorFlow passed them."""
    inputs = invocation.inputs
    missing = [i for i, a in enumerate(inputs) if a.data is None]
    if missing:
        notes = sorted({note for i in missing if (note := inputs[i].capture_note)})
        why = f" ({'; '.join(notes)})" if notes else ""
        raise ReplayError(
            f"call #{invocation.seq} of {invocation.func_name} cannot be replayed: "
            f"{_listing('input', missing)} not captured{why}. Record with capture='full' "
            "(trace(capture='full'), or %%npfunc --capture full)."
        )
    args = []
    for info in inputs:
        assert info.data is not None  # checked above
        copy = info.data.copy()
        # Graph mode hands 0-d inputs over as numpy scalars (and tf.string ones as bytes).
        args.append(copy[()] if invocation.mode == "graph" and copy.ndim == 0 else copy)
    return args


def _listing(noun: str, indices: list[int]) -> str:
    if len(indices) == 1:
        return f"{noun} {indices[0]} was"
    return f"{noun}s {', '.join(map(str, indices))} were"


def _call(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


def _compare_errors(recorded: ErrorInfo | None, raised: BaseException | None) -> list[str]:
    if raised is None:
        return [f"the recorded call raised {recorded}; the replay returned normally"]
    replayed = ErrorInfo(type(raised).__name__, str(raised))
    if recorded is None:
        return [f"the replay raised {replayed}; the recorded call returned normally"]
    if recorded.type != replayed.type:
        return [f"the replay raised {replayed}; the recorded call raised {recorded}"]
    if recorded.message != replayed.message:
        return [f"the replay raised {replayed.type} with another message: {replayed.message!r} "
                f"(recorded: {recorded.message!r})"]
    return []


def _compare_outputs(recorded: tuple[ArrayInfo, ...], returned: tuple[Any, ...]) -> list[str]:
    differences = []
    if len(returned) != len(recorded):
        differences.append(
            f"the replay returned {len(returned)} value(s); the recorded call returned {len(recorded)}"
        )
    for index, (old, value) in enumerate(zip(recorded, returned, strict=False)):  # counts differ: said above
        new = as_array(value)
        label = f"output {index}"
        if str(new.dtype) != old.dtype:
            differences.append(f"{label}: dtype {new.dtype}, recorded {old.dtype}")
        elif tuple(new.shape) != tuple(old.shape):
            differences.append(f"{label}: shape {list(new.shape)}, recorded {list(old.shape)}")
        elif old.data is not None:
            difference = _value_difference(old.data, new)
            if difference:
                differences.append(f"{label}: {difference}")
        elif old.fingerprint is not None and fingerprint(value) != old.fingerprint:
            differences.append(
                f"{label}: contents differ (fingerprints differ; record with capture='full' to compare values)"
            )
    return differences


def _value_difference(recorded: np.ndarray, replayed: np.ndarray) -> str | None:
    """None when equal (NaN equal to NaN); else how many elements differ, and by how much."""
    numeric = recorded.dtype.kind in "biufc"
    if np.array_equal(recorded, replayed, equal_nan=recorded.dtype.kind in "fc"):
        return None
    if not numeric:
        differing = int(np.count_nonzero(recorded != replayed))
        return f"{differing} of {recorded.size} {'element differs' if differing == 1 else 'elements differ'}"
    wide = np.complex128 if recorded.dtype.kind == "c" else np.float64
    old, new = recorded.astype(wide), replayed.astype(wide)
    both_nan = np.isnan(old) & np.isnan(new)
    differing = ~((old == new) | both_nan)
    gap = np.abs(new[differing] - old[differing])
    largest = float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")
    count = int(differing.sum())
    return (
        f"{count} of {recorded.size} {'value differs' if count == 1 else 'values differ'} "
        f"(max abs difference {largest:.6g})"
    )
