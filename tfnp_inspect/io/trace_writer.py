"""Writing trace files (``Trace.export``); the format is described in :mod:`.trace_file`."""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np

from ..model import records
from ..model.jsonable import json_safe
from ..model.options import Options
from ..model.records import (
    A_ALIASES_INPUT,
    A_CAPTURE_NOTE,
    A_DATA,
    A_DTYPE,
    A_FINGERPRINT,
    A_FLAGS,
    A_NBYTES,
    A_SAMPLE,
    A_SHAPE,
    A_WILL_BE_COPIED,
    C_DURATION_NS,
    C_ERROR,
    C_PROCESS,
    C_RAW_INPUTS,
    C_RAW_OUTPUTS,
    C_SEQ,
    C_SITE,
    C_START_NS,
    C_STATIC_HINTS,
    C_THREAD_ID,
    C_THREAD_NAME,
    C_VIOLATIONS,
    CallSite,
    ErrorInfo,
    Hint,
    Invocation,
    ProcessInfo,
    Violation,
)
from ..recording.trace import Trace
from . import trace_schema as schema
from .trace_file import FLAGS, FORMAT_NAME, FORMAT_VERSION, ITEM_BYTES, ITEM_STR, JSON_MEMBER, SAMPLES_MEMBER, PathArg

SITE_FIELDS = schema.field_names(schema.SiteEntry)
VIOLATION_FIELDS = schema.field_names(schema.ViolationEntry)
#: A site entry is the CallSite's leading fields, then its static shapes.
_LEADING_SITE_FIELDS = len(SITE_FIELDS) - 1
_S_STATIC_SHAPES = CallSite._fields.index("static_shapes")
# Entries are built positionally from the recorder's rows: the layouts must agree.
if (
    CallSite._fields[:_LEADING_SITE_FIELDS] != SITE_FIELDS[:-1]
    or SITE_FIELDS[-1] != "static_shapes"
    or tuple(f.name for f in fields(Violation)) != VIOLATION_FIELDS
    or tuple(f.name for f in fields(Hint)) != schema.field_names(schema.HintEntry)
    or tuple(f.name for f in fields(ErrorInfo)) != schema.field_names(schema.ErrorEntry)
    or ProcessInfo._fields != schema.field_names(schema.ProcessEntry)
):  # pragma: no cover - a guard for whoever edits the records
    raise ImportError("trace_writer builds file entries from record rows by position: update it")
#: Encoded calls go to the deflate stream in pieces of about this size.
WRITE_CHUNK_BYTES = 1 << 20
#: zlib level for trace.json: 1 compresses this repetitive JSON almost as well as the default
#: 6 (about 10% larger), several times faster.
JSON_COMPRESSLEVEL = 1


def package_version() -> str:
    """``tfnp_inspect.__version__``, read from the loaded package (io must not import it)."""
    package = sys.modules.get(__name__.partition(".")[0])
    return str(getattr(package, "__version__", "unknown"))


def export_trace(trace: Trace, path: PathArg) -> None:
    """Write ``trace`` to ``path`` (atomically: a half-written file never replaces a good one).

    Two passes over the calls, so that nothing but one call's JSON is built at a time: the
    first stores the captured arrays and the samples (zip members are written one at a time),
    the second streams ``trace.json`` into its deflated member.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    invocations = trace.invocations
    try:
        with zipfile.ZipFile(
            temporary, "w", zipfile.ZIP_STORED, allowZip64=True, compresslevel=JSON_COMPRESSLEVEL
        ) as archive:
            arrays = _ArrayWriter(archive)
            sites: dict[tuple, int] = {}  # one entry per op, shared by its calls
            for inv in invocations:
                sites.setdefault(_site_key(inv), len(sites))
                for raw in inv[C_RAW_INPUTS] + inv[C_RAW_OUTPUTS]:
                    arrays.add(raw)
            arrays.finish()
            diagnosis = trace.diagnosis()
            head = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "producer": f"tfnp_inspect {package_version()}",
                "options": _options_json(trace.recorder.options),
                "total": trace.total,
                "dropped": trace.dropped,
                "stats": [json_safe(s.to_dict()) for s in trace.stats().values()],
                "violations": [schema.ViolationEntry(*v.row()) for v in trace.violations],
                "sites": [schema.SiteEntry(*site) for site in sites],
                "shapes": [site.to_dict() for site in diagnosis.shapes],
                "pipeline": [figures.to_dict() for figures in diagnosis.pipeline],
                "builds": [
                    schema.BuildEntry(b.func_name, b.call_site, b.ops, tuple(b.functions)) for b in diagnosis.builds
                ],
                "registry_size": diagnosis.registry_size,
            }
            member = zipfile.ZipInfo(JSON_MEMBER, date_time=time.localtime()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as stream:
                _write_document(stream, head, invocations, sites, arrays)
        os.replace(temporary, target)
    except OSError as exc:
        # The temporary file is ours; the caller knows only the path it gave.
        if exc.filename is not None and os.fspath(exc.filename) == os.fspath(temporary):
            raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from None
        raise
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_document(
    stream: IO[bytes], head: dict[str, Any], invocations: list[Invocation],
    sites: dict[tuple, int], arrays: _ArrayWriter,
) -> None:
    """``head`` with ``"invocations": [...]`` after it, one call encoded at a time."""
    stream.write(_encode(head)[:-1] + b', "invocations": [')
    arrays.rewind()
    pieces: list[bytes] = []
    size = 0
    for index, inv in enumerate(invocations):
        piece = _encode(_invocation_entry(inv, sites[_site_key(inv)], arrays))
        pieces.append(b", " + piece if index else piece)
        size += len(piece)
        if size >= WRITE_CHUNK_BYTES:
            stream.write(b"".join(pieces))
            pieces, size = [], 0
    pieces.append(b"]}")
    stream.write(b"".join(pieces))


def _encode(value: Any) -> bytes:
    """Compact JSON; the standard library where msgspec refuses (unpaired surrogates in a
    string, which it escapes as ``\\udcff``)."""
    try:
        return msgspec.json.encode(value)
    except UnicodeEncodeError:
        return json.dumps(msgspec.to_builtins(value), allow_nan=False).encode("ascii")


def _site_key(inv: Invocation) -> tuple:
    site = inv[C_SITE]
    return (*site[:_LEADING_SITE_FIELDS], site[_S_STATIC_SHAPES])


def _invocation_entry(inv: Invocation, site_index: int, arrays: _ArrayWriter) -> schema.InvocationEntry:
    """One call as the file's record, read from the recorder's row by position."""
    error = inv[C_ERROR]
    entry = arrays.entry
    return schema.InvocationEntry(
        inv[C_SEQ], site_index, inv[C_THREAD_ID], inv[C_THREAD_NAME], inv[C_START_NS],
        inv[C_DURATION_NS],
        tuple([entry(raw) for raw in inv[C_RAW_INPUTS]]),
        tuple([entry(raw) for raw in inv[C_RAW_OUTPUTS]]),
        None if error is None else schema.ErrorEntry(error.type, error.message, error.traceback),
        tuple([schema.ViolationEntry(*row) for row in inv[C_VIOLATIONS]]),
        tuple([schema.HintEntry(*row) for row in inv[C_STATIC_HINTS]]),
        schema.ProcessEntry(*inv[C_PROCESS]),
    )


class _ArrayWriter:
    """Puts captured arrays into ``arrays/<n>.npy`` and samples into one shared buffer.

    :meth:`add` sees every array once, in the order the calls are later written in; then
    :meth:`rewind`, and :meth:`entry` gives each array's JSON in that same order (sample
    offsets count up again). An array object met twice (calls of a loaded trace that shared
    one) is stored once.
    """

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.samples: list[bytes] = []
        self.sample_bytes = 0
        self.count = 0
        #: id(array) -> (the array, kept alive so that its id stays unique; its data entry or,
        #: for object arrays that would need pickle, the note that says so)
        self.stored: dict[int, tuple[np.ndarray, schema.DataEntry | str]] = {}
        self._flag_names: dict[int, Any] = {}  # flag bits -> their FLAGS names

    def add(self, raw: tuple) -> None:
        """Take one array (a RawArray row): its sample, and its captured copy if new."""
        sample, data = raw[A_SAMPLE], raw[A_DATA]
        if sample is not None:
            self.samples.append(bytes(sample))
        if data is not None and id(data) not in self.stored:
            self.stored[id(data)] = (data, self._store(data))

    def finish(self) -> None:
        self._write(SAMPLES_MEMBER, np.frombuffer(b"".join(self.samples), dtype=np.uint8))
        self.samples = []

    def rewind(self) -> None:
        self.sample_bytes = 0

    def entry(self, raw: tuple) -> schema.ArrayEntry:
        """The file's record of one array (a RawArray row), with its sample's place."""
        sample = raw[A_SAMPLE]
        if sample is not None:
            start = self.sample_bytes
            self.sample_bytes += len(sample)
            sample = (start, len(sample))
        data, note = raw[A_DATA], raw[A_CAPTURE_NOTE]
        if data is not None:
            data = self.stored[id(data)][1]
            if isinstance(data, str):  # left out: the note says why
                data, note = None, data
        bits = raw[A_FLAGS]
        flags = self._flag_names.get(bits)
        if flags is None:
            flags = self._flag_names[bits] = _flag_names(bits)
        return schema.ArrayEntry(
            raw[A_SHAPE], records.dtype_name(raw[A_DTYPE]), raw[A_NBYTES], raw[A_FINGERPRINT],
            flags, raw[A_ALIASES_INPUT], raw[A_WILL_BE_COPIED], note, sample, data,
        )

    def _store(self, array: np.ndarray) -> schema.DataEntry | str:
        """Write one captured array: its data entry, or why it was left out."""
        member = f"arrays/{self.count}.npy"
        if array.dtype.hasobject:
            try:
                stored = _encode_items(array)
            except TypeError as exc:
                return f"not exported: an object array holding {exc} cannot be stored without pickle"
            ref = schema.DataEntry(member, "items", tuple(array.shape))
        else:
            ref = schema.DataEntry(member, "npy")
            stored = array if _npy_names(array.dtype) else array.view(np.dtype((np.void, array.dtype.itemsize)))
        self._write(member, stored)
        self.count += 1
        return ref

    def _write(self, member: str, array: np.ndarray) -> None:
        with self.archive.open(member, "w", force_zip64=True) as stream:
            np.lib.format.write_array(stream, array, allow_pickle=False)


def _flag_names(bits: int) -> Any:
    """The FLAGS names of a RawArray's flag bits (a tuple of the schema's flag literals)."""
    return tuple([name for name, bit in FLAGS.items() if bits & bit])


_npy_naming: dict[np.dtype, bool] = {}


def _npy_names(dtype: np.dtype) -> bool:
    """Whether a ``.npy`` header can name ``dtype`` so that numpy reads it back as itself.

    Not so for ml_dtypes' types: bfloat16 and most float8 become ``|V<n>``, float8_e5m2 gets
    a descriptor numpy cannot read at all. Those are stored as raw records (see trace_file).
    """
    known = _npy_naming.get(dtype)
    if known is None:
        try:
            known = np.dtype(np.lib.format.dtype_to_descr(dtype)) == dtype
        except (TypeError, ValueError):
            known = False
        _npy_naming[dtype] = known
    return known


def _encode_items(array: np.ndarray) -> np.ndarray:
    """Length-prefixed items of an object array of bytes/str (TypeError for other items)."""
    parts = []
    for item in array.ravel(order="C"):
        if isinstance(item, bytes):
            kind, payload = ITEM_BYTES, item
        elif isinstance(item, str):
            kind, payload = ITEM_STR, item.encode("utf-8", "surrogatepass")
        else:
            raise TypeError(type(item).__name__)
        parts += [bytes([kind]), len(payload).to_bytes(8, "little"), payload]
    return np.frombuffer(b"".join(parts), dtype=np.uint8)


def _options_json(options: Options) -> dict[str, Any]:
    values = {f.name: getattr(options, f.name) for f in fields(options)}
    values["checks"] = sorted(values["checks"])
    return values
