"""Shared formatting of every view: units, array previews, array notes, labels and badges.

The text and HTML reports (:mod:`.render`) and the live panel (:mod:`.panel.state`) describe the
same facts; each fact is worded here once. Notes come in two lengths: ``short`` for table cells,
``detailed`` (what it means for the user) for the panel's drill-down and its badges' tooltips.
Labels that the file formats use too live in the model: :attr:`ProcessInfo.label
<tfnp_inspect.model.records.ProcessInfo.label>` and :func:`~tfnp_inspect.model.records.type_label`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..model.records import (
    A_ALIASES_INPUT,
    A_FLAGS,
    A_WILL_BE_COPIED,
    FLAG_SHARES_TENSOR,
    FLAG_WRITEABLE,
    ArrayInfo,
)

# -- units ----------------------------------------------------------------------------------------


def human_duration(ns: float) -> str:
    """``1.23 ms``, ``45.6 µs``; an en dash when there is nothing to show (NaN)."""
    if math.isnan(ns):
        return "–"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{_three_digits(ns / scale)} {unit}"
    return f"{ns:.0f} ns"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(count: float) -> str:
    """``512 B``, ``1.50 KiB``, ``64.0 MiB``."""
    unit = 0
    while count >= 1024 and unit < len(_BYTE_UNITS) - 1:
        count /= 1024
        unit += 1
    return f"{count:.0f} B" if unit == 0 else f"{_three_digits(count)} {_BYTE_UNITS[unit]}"


def _three_digits(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def plural(count: int, noun: str) -> str:
    """``1 call``, ``2 calls``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# -- array previews -------------------------------------------------------------------------------

#: Arrays with more elements than this are previewed by their edges only.
PREVIEW_THRESHOLD = 24
PREVIEW_EDGE_ITEMS = 3
#: A preview keeps at most this many lines (an image's nested rows would fill the screen) ...
PREVIEW_MAX_LINES = 12
#: ... and this many characters (even a summarised preview can be long: one 1 MB string).
PREVIEW_MAX_CHARS = 600


def array_preview(data: Any) -> str:
    """numpy's own summarised printing (edges only for big arrays), bounded in length and height."""
    text = np.array2string(
        np.asarray(data), threshold=PREVIEW_THRESHOLD, edgeitems=PREVIEW_EDGE_ITEMS, precision=6,
        max_line_width=100,
    )
    lines = [line for line in text.splitlines() if line.strip()]  # drop the blank separators
    if len(lines) > PREVIEW_MAX_LINES:
        more = len(lines) - PREVIEW_MAX_LINES
        text = "\n".join(lines[:PREVIEW_MAX_LINES]) + f"\n… ({more} more {'line' if more == 1 else 'lines'})"
    else:
        text = "\n".join(lines)
    return text if len(text) <= PREVIEW_MAX_CHARS else text[:PREVIEW_MAX_CHARS] + " …"


# -- array notes ----------------------------------------------------------------------------------


def tensor_view_note(detailed: bool = False, writeable: bool = True) -> str:
    """An input that is a zero-copy view of a tensor's buffer (graph mode)."""
    if not detailed:
        return "view of a TF tensor buffer"
    access = "writeable: writing to it changes the tensor" if writeable else "read-only"
    return f"zero-copy view of a TensorFlow tensor ({access})"


def alias_note(input_index: int) -> str:
    """An output that shares memory with an input."""
    return f"shares memory with input {input_index}"


def copy_note(will_be_copied: bool | None, detailed: bool = False) -> str | None:
    """Whether TensorFlow copies a returned array (graph mode); None when nothing is to say."""
    if will_be_copied:
        if detailed:
            return "TensorFlow will copy it (not C-contiguous, not 64-byte aligned, or objects)"
        return "TF copies it"
    if will_be_copied is False and detailed:
        return "handed to TensorFlow without a copy"
    return None


def array_notes(info: ArrayInfo, detailed: bool = False, is_input: bool = False) -> list[str]:
    """What to know about an array's memory.

    Short notes (table cells) add the layout and the capture note; detailed ones (the panel's
    drill-down, which shows layout and capture note on their own) say "own copy" for an input
    that shares nothing.
    """
    notes = []
    if info.shares_tensor_memory:
        notes.append(tensor_view_note(detailed, info.writeable))
    if info.aliases_input is not None:
        notes.append(alias_note(info.aliases_input))
    copied = copy_note(info.will_be_copied, detailed)
    if copied is not None:
        notes.append(copied)
    if detailed:
        if not notes and is_input:
            notes.append("own copy")
        return notes
    if not info.writeable:
        notes.append("read-only")
    if not info.c_contiguous:
        notes.append("not C-contiguous")
    if info.capture_note:
        notes.append(info.capture_note)
    return notes


# -- badges ---------------------------------------------------------------------------------------


def array_badges(raw_inputs: Iterable[tuple[Any, ...]], raw_outputs: Iterable[tuple[Any, ...]]) -> list[dict[str, str]]:
    """The panel's per-row badges, read from the compact RawArray rows (no stats computed)."""
    badges = []
    for index, raw in enumerate(raw_inputs):
        flags = raw[A_FLAGS]
        if flags & FLAG_SHARES_TENSOR:
            note = tensor_view_note(True, bool(flags & FLAG_WRITEABLE))
            badges.append(_badge("view", f"in{index} view", f"input {index}: {note}"))
    for index, raw in enumerate(raw_outputs):
        alias = raw[A_ALIASES_INPUT]
        if alias is not None:
            badges.append(_badge("alias", f"out{index}=in{alias}", f"output {index} {alias_note(alias)}"))
        if raw[A_WILL_BE_COPIED]:
            badges.append(_badge("copy", f"out{index} copied", f"output {index}: {copy_note(True, True)}"))
    return badges


def _badge(kind: str, text: str, title: str) -> dict[str, str]:
    return {"kind": kind, "text": text, "title": title}
