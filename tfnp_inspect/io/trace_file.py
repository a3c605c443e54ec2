"""The trace file format: what :func:`export_trace` writes and :func:`load` reads.

This module is the format's one description, with its constants and limits. The code is split
by role: :mod:`.trace_schema` (the typed layout of ``trace.json`` and the range of every number),
:mod:`.trace_writer` (``Trace.export``) and :mod:`.trace_reader` (``tfnp_inspect.load``).

Trace file format ``tfnp-inspect-trace``, version 2
----------------------------------------------------

One zip archive (conventionally ``*.npftrace``); it is also a valid ``.npz``, so
``np.load(path, allow_pickle=False)`` opens its arrays::

    trace.json        UTF-8 JSON (deflated): everything except array contents
    samples.npy       uint8: the raw bytes of every stats sample, concatenated
    arrays/<n>.npy    one captured array (capture='full'), stored uncompressed

Members are stored or deflated, never encrypted, and each name appears once.

``trace.json``::

    {"format": "tfnp-inspect-trace", "version": 2, "producer": "tfnp_inspect <version>",
     "options": {"capacity", "capture", "max_capture_bytes", "checks": [kind, ...], "strict"},
     "total": int, "dropped": int,          # calls ever recorded / evicted from the ring buffer
     "stats": [FunctionStats.to_dict(), ...],
     "violations": [violation, ...],        # Recorder.violations(): also evicted calls' ones
     "sites": [{"func_name", "module", "mode", "stateful", "op_name", "token", "call_site",
                "tout", "tout_is_list", "origin", "static_shapes"}, ...],   # one per op
     "invocations": [{"seq", "site": index into "sites", "thread_id", "thread_name",
                      "start_ns", "duration_ns", "inputs": [array], "outputs": [array],
                      "error": null | {"type", "message", "traceback"},
                      "violations": [violation], "hints": [{"kind", "func_name", "seq", "message"}],
                      "process": {"host", "pid", "task"}}, ...],
     "shapes": [SiteShapes.to_dict(), ...],      # per op: observed shapes, every call counted
     "pipeline": [Concurrency.to_dict(), ...],   # per function: how its calls overlapped
     "builds": [{"func_name", "call_site", "ops", "functions": [tf.function name, ...]}, ...],
     "registry_size": null | int}               # TF's PyFunc registry when exported
    violation = {"kind", "func_name", "seq", "call_site", "message", "argument"}
    static_shapes = null | [null | [null | int, ...], ...]   # per output (null: unknown rank)
    array = {"shape", "dtype" (str), "nbytes", "fingerprint", "flags": [flag name, ...],
             "aliases_input", "will_be_copied", "capture_note",
             "sample": null | [offset, length] into samples.npy,
             "data": null | {"member": "arrays/<n>.npy", "encoding": "npy"}
                          | {"member": ..., "encoding": "items", "shape": [...]}}

``total`` is ``dropped`` plus the number of ``invocations``. Numbers stay within what a recorder
produces: counts, sizes and durations (ns) are non-negative int64 values, ``seq`` and
``start_ns`` int64, fingerprints uint64, ``capacity`` at most 2**40, histogram buckets (the
keys of ``stats[].histogram``) at most the bucket of the longest int64 duration; the exact
ranges are in :mod:`.trace_schema`. Keys the reader does not know are ignored (``producer``,
``stats[].mean_ns`` ...).

Version 2 added ``sites[].static_shapes``, ``shapes``, ``pipeline``, ``builds`` and
``registry_size`` (:mod:`tfnp_inspect.model.shapes`, :mod:`tfnp_inspect.model.pipeline`); the
hints derived from them (``unknown-shape``, ``serialized``, ``retraced``) are derived again on
load. Version 1 files still load: their static shapes are unknown, their shapes and overlaps are
derived from the calls they kept, and they carry no build counts.

Flag names are the ``FLAG_*`` constants of :mod:`tfnp_inspect.model.records`, lower-cased
without the prefix. ``hints`` are the hints found while the call ran; the 'nonfinite' hint is
derived from the samples again on load. Object arrays (``tf.string``) cannot go into ``.npy``
without pickle, so their ``items`` encoding is a uint8 array: per element in C order one kind
byte (0: bytes, 1: str as UTF-8), an 8-byte little-endian length and the payload. Object
arrays holding other Python objects are not exported (their ``capture_note`` says so). The
``.npy`` format has no names for ml_dtypes' types (bfloat16, float8_*, int4 ...): those arrays
are stored as raw ``|V<n>`` records and the array's ``dtype`` names the type to view them as.
Several arrays may refer to one member (a re-exported trace whose calls shared an array).

Reading
-------

``load([path, ...])`` merges the traces of several processes into one view ordered by start
time. Loading never unpickles or evaluates anything: ``trace.json`` is decoded by msgspec into
the typed records of :mod:`.trace_schema` (type and range errors stop the parse where they
are), and ``.npy`` members are read by their header alone, with ``allow_pickle`` never set.
Only regular files are opened (no directories, FIFOs or devices). Every member is
decompressed at most once, whatever refers to it, and streamed into a buffer of its declared
size only after that size was checked against the zip's own sizes and against ``max_bytes``
(default :data:`DEFAULT_MAX_BYTES`, counting all the decompressed bytes of all the files
loaded together, plus :data:`MEMBER_COST` per zip member for its directory entry and 48 bytes
per element of an ``items`` array for its Python object).
``trace.json`` may not exceed :data:`MAX_JSON_BYTES`. Any problem raises
:class:`TraceFileError` naming the file and the problem.
"""

from __future__ import annotations

import os
from typing import Any

from ..model import records

FORMAT_NAME = "tfnp-inspect-trace"
FORMAT_VERSION = 2
#: trace.json is refused above this size (a zip member may declare anything).
MAX_JSON_BYTES = 1 << 30
#: Bound on ``.npy`` header size, as numpy's own loader uses.
MAX_NPY_HEADER_BYTES = 10_000
#: ``load(max_bytes=...)`` default: decompressed bytes read from the files of one ``load``
#: call. Fixed rather than a share of this machine's memory, so that a file that loads on
#: one machine loads on every other; a trace of 1,000,000 calls with 'summary' capture needs
#: under 1 GiB. Pass a larger value, or None for no limit, to open bigger files you trust.
DEFAULT_MAX_BYTES = 4 << 30
#: What each zip member counts against ``max_bytes`` before anything is read: its entry in
#: the zip directory becomes a Python object of about this size.
MEMBER_COST = 1024

JSON_MEMBER = "trace.json"
SAMPLES_MEMBER = "samples.npy"
#: Flag name in the file -> ``RawArray.flags`` bit.
FLAGS: dict[str, int] = {
    name[len("FLAG_"):].lower(): value
    for name, value in vars(records).items()
    if name.startswith("FLAG_") and isinstance(value, int)
}
ITEM_BYTES, ITEM_STR = 0, 1
ITEM_HEADER = 9  # kind byte + 8-byte length

PathArg = str | os.PathLike


class TraceFileError(ValueError):
    """A trace file that cannot be loaded: corrupt, truncated, foreign, too new or hostile."""

    def __init__(self, path: Any, problem: str) -> None:
        self.path = _printable(path)
        self.problem = problem
        super().__init__(f"cannot load trace file {self.path!r}: {problem}")


def _printable(path: Any) -> str:
    try:
        return os.fsdecode(path)
    except TypeError:
        return repr(path)
