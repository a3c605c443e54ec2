"""Loading trace files (``tfnp_inspect.load``); the format is described in :mod:`.trace_file`.

Every file is treated as hostile until proven otherwise: it is opened only if it is a regular
file, its zip directory is checked (names unique, stored or deflated, not encrypted, a bounded
number of members) before any member is read, ``trace.json`` is decoded straight into typed
records with every number range-checked (:mod:`.trace_schema`), and each array member is
decompressed once, into a buffer of its declared size that was checked first.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import io
import json
import math
import os
import re
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO, Any

import msgspec
import numpy as np

from ..model.options import CAPTURE_LEVELS, Options
from ..model.pipeline import Concurrency
from ..model.records import CallRow, CallSite, ErrorInfo, Invocation, RawArray, Violation
from ..model.shapes import SiteShapes
from ..model.stats import FunctionStats
from ..recording.recorder import Recorder
from ..recording.trace import Trace
from ..recording.wrapper import BuildCount
from . import trace_file
from . import trace_schema as schema
from .trace_file import (
    FLAGS,
    FORMAT_NAME,
    FORMAT_VERSION,
    ITEM_BYTES,
    ITEM_HEADER,
    ITEM_STR,
    JSON_MEMBER,
    MAX_NPY_HEADER_BYTES,
    MEMBER_COST,
    SAMPLES_MEMBER,
    PathArg,
    TraceFileError,
)

#: Members are decompressed in pieces of this size into their preallocated buffer.
CHUNK_BYTES = 1 << 20
#: Stored (0) and deflated (8): what ``export_trace`` writes and ``np.savez`` reads.
COMPRESSION_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
#: What each element of an 'items' member counts against ``max_bytes`` besides its bytes: it
#: becomes a Python bytes or str object and a pointer.
ITEM_OBJECT_COST = 48
#: Memory the standard library's JSON parser may take per byte of text: it is used only for
#: files the fast decoder refuses to read (unpaired UTF-16 surrogates), within ``max_bytes``.
FALLBACK_JSON_FACTOR = 32
_DTYPE_NAME = re.compile(r"[<>|=]?[A-Za-z][A-Za-z0-9_]{0,40}")

#: ``_Contents`` builds rows as plain tuples in these orders (checked here, once).
_RAW_ARRAY_FIELDS = (
    "shape", "dtype", "nbytes", "fingerprint", "flags", "aliases_input", "will_be_copied",
    "sample", "data", "capture_note",
)
_CALL_ROW_FIELDS = (
    "seq", "site", "thread_id", "thread_name", "start_ns", "duration_ns", "raw_inputs",
    "raw_outputs", "error", "violations", "static_hints", "process", "bytes_in", "bytes_out",
)
if RawArray._fields != _RAW_ARRAY_FIELDS or CallRow._fields != _CALL_ROW_FIELDS:  # pragma: no cover
    raise ImportError("trace_reader builds RawArray and CallRow rows by position: update it")

_decode_header = msgspec.json.Decoder(schema.Header).decode
_decode_document = msgspec.json.Decoder(schema.Document).decode


class _Corrupt(Exception):
    """A problem found deep in a file; :func:`load` adds the file name."""


class _Budget:
    """The bytes one ``load`` call may still decompress (``max_bytes``)."""

    def __init__(self, max_bytes: int | None) -> None:
        self.limit = max_bytes
        self.left = math.inf if max_bytes is None else max_bytes

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise _Corrupt(
                f"{what} needs {nbytes:,} bytes, more than the {self.left:,} left of "
                f"max_bytes={self.limit:,} ({_gib(self.limit)}); if you trust this file, "
                "load it with a larger limit: tfnp_inspect.load(path, max_bytes=...) "
                "(max_bytes=None for none)"
            )
        self.left -= nbytes


def _gib(nbytes: int | None) -> str:
    return "no limit" if nbytes is None else f"{nbytes / (1 << 30):.3g} GiB"


def load(
    path: PathArg | Sequence[PathArg], *, max_bytes: int | None = trace_file.DEFAULT_MAX_BYTES
) -> Trace:
    """Open an exported trace, or merge several (one per process) into one view ordered by time.

    The result is read-only; ``source`` names the file(s). ``max_bytes`` bounds what the files
    may decompress in all (``trace.json``, samples and captured arrays, plus 1 KiB per zip
    member; default 4 GiB; None for no limit): a file that would take more is refused before
    the memory is taken. Raises :class:`TraceFileError`, naming the file and the problem, for
    anything that is not a readable ``tfnp-inspect-trace`` of a version this package
    understands; TypeError or ValueError for bad arguments.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)):
        raise TypeError(f"max_bytes must be an int or None, not {type(max_bytes).__name__}")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    budget = _Budget(max_bytes)
    if isinstance(path, (str, os.PathLike)):
        return _load_one(path, budget)
    if isinstance(path, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"load() takes a path (str or os.PathLike) or a list of paths, not "
            f"{type(path).__name__}; decode a bytes path with os.fsdecode() first"
        )
    if not isinstance(path, Sequence):
        raise TypeError(f"load() takes a path or a list of paths, not {type(path).__name__}")
    paths = list(path)
    if not paths:
        raise ValueError("load() needs at least one path")
    for item in paths:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"load() takes paths (str or os.PathLike), not {type(item).__name__}")
    if len(paths) == 1:
        return _load_one(paths[0], budget)
    return _merge([_load_one(p, budget) for p in paths])


def _load_one(path: PathArg, budget: _Budget) -> Trace:
    try:
        with _open_regular(path) as stream, _collector_paused():
            _check_member_count(stream, budget)
            with zipfile.ZipFile(stream) as archive:
                _check_directory(archive)
                reader = _ArrayReader(archive, budget)
                contents = _Contents(_read_document(archive, budget), reader)
    except _Corrupt as exc:
        raise TraceFileError(path, str(exc)) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        problem = f"not a readable zip archive (truncated or corrupt: {exc})"
        raise TraceFileError(path, problem) from None
    except MemoryError:
        raise TraceFileError(path, "ran out of memory while reading it") from None
    except OSError as exc:
        raise TraceFileError(path, f"cannot read it: {exc.strerror or exc}") from None
    except Exception as exc:  # a hostile file must never escape as anything else
        problem = f"unreadable ({type(exc).__name__}: {exc})"
        raise TraceFileError(path, problem) from exc
    recorder = Recorder(contents.options)
    recorder.load_records(
        contents.invocations, contents.violations, contents.stats, contents.total, contents.dropped
    )
    if contents.diagnosis is not None:  # version 2 on; older files keep what the calls say
        recorder.load_diagnosis(*contents.diagnosis)
    return Trace(recorder, source=os.fspath(path))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Build millions of rows without the cyclic collector scanning them again and again.

    Rows hold no cycles (the collector stops tracking them at its first look anyway); pausing
    it saves about a third of the time of a large load. It runs again right after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- the file and its zip directory -------------------------------------------------------------


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse_unless_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((words for test, words in _KINDS if test(mode)), "not a regular file")
    raise _Corrupt(f"it is {kind}; only regular files are read")


def _open_regular(path: PathArg) -> IO[bytes]:
    """Open a regular file for reading; anything else is refused before it is opened.

    ``O_NONBLOCK`` keeps a FIFO swapped in between the check and the open from blocking.
    """
    _refuse_unless_regular(os.stat(path).st_mode)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        _refuse_unless_regular(os.fstat(descriptor).st_mode)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _check_member_count(stream: IO[bytes], budget: _Budget) -> None:
    """Charge :data:`MEMBER_COST` per member the zip declares, before ZipFile reads them all.

    Reads the end-of-central-directory record (and its zip64 form); a file without one is
    left for :class:`zipfile.ZipFile` to refuse.
    """
    size = stream.seek(0, os.SEEK_END)
    tail_size = min(size, 22 + 0xFFFF)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return
    members = int.from_bytes(tail[at + 10:at + 12], "little")
    if members == 0xFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
        record_at = int.from_bytes(tail[at - 12:at - 4], "little")
        if record_at < size:
            stream.seek(record_at)
            record = stream.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                members = int.from_bytes(record[32:40], "little")
    stream.seek(0)
    budget.take(members * MEMBER_COST, f"the zip directory ({members:,} members)")


def _check_directory(archive: zipfile.ZipFile) -> None:
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.filename
        if name in seen:
            raise _Corrupt(f"it holds two members named {name!r}; a trace file names each once")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise _Corrupt(f"member {name!r} is encrypted; trace files are never encrypted")
        if info.compress_type not in COMPRESSION_METHODS:
            raise _Corrupt(
                f"member {name!r} uses compression method {info.compress_type}; trace files "
                "use only stored (0) or deflated (8) members"
            )


def _where(place: tuple) -> str:
    """Where an array entry is, from the (invocation index, role, position) kept for errors."""
    index, role, position = place
    return f"trace.invocations[{index}].{role}[{position}]"


def _member(archive: zipfile.ZipFile, name: str, place: tuple, field: str) -> zipfile.ZipInfo:
    try:
        return archive.getinfo(name)
    except KeyError:
        raise _Corrupt(f"{_where(place)}{field} refers to {name!r}, which the archive lacks") from None


def _read_into(stream: IO[bytes], buffer: memoryview, what: str) -> None:
    """Fill ``buffer`` from ``stream`` piece by piece; the stream must hold exactly that much."""
    position, size = 0, len(buffer)
    while position < size:
        piece = stream.read(min(CHUNK_BYTES, size - position))
        if not piece:
            raise _Corrupt(f"{what} ends after {position:,} of its {size:,} bytes")
        buffer[position:position + len(piece)] = piece
        position += len(piece)
    if stream.read(1):
        raise _Corrupt(f"{what} holds more than its declared {size:,} bytes")


# -- trace.json ------------------------------------------------------------------------------


def _read_document(archive: zipfile.ZipFile, budget: _Budget) -> schema.Document:
    try:
        info = archive.getinfo(JSON_MEMBER)
    except KeyError:
        raise _Corrupt(f"no {JSON_MEMBER} inside: not a tfnp-inspect trace") from None
    limit = trace_file.MAX_JSON_BYTES
    if info.file_size > limit:
        raise _Corrupt(f"{JSON_MEMBER} declares {info.file_size:,} bytes (limit {limit})")
    budget.take(info.file_size, JSON_MEMBER)
    text = bytearray(info.file_size)
    with archive.open(info) as stream:
        _read_into(stream, memoryview(text), JSON_MEMBER)
    # The typed decode checks everything in one pass. Only when it fails is the header read on
    # its own, so that a foreign or newer file is named as such rather than by its first
    # unexpected field.
    try:
        document = _decode_document(text)
    except msgspec.ValidationError as exc:
        _check_header(text)
        raise _Corrupt(schema.explain(exc)) from None
    except UnicodeDecodeError as exc:
        raise _Corrupt(f"{JSON_MEMBER} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except msgspec.DecodeError as exc:
        if "surrogate" not in str(exc):
            raise _Corrupt(f"{JSON_MEMBER} is not valid JSON ({exc})") from None
        document = _decode_with_surrogates(text, budget)
    _check_version(document.format, document.version)
    return document


_NOT_A_STRING = object()


def _check_header(text: bytearray) -> None:
    """Is it a trace, and one this version reads? (Skips the rest without building it.)"""
    try:
        header = _decode_header(text)
    except UnicodeDecodeError as exc:
        raise _Corrupt(f"{JSON_MEMBER} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except msgspec.ValidationError:
        raise _Corrupt(f"not a tfnp-inspect trace ({JSON_MEMBER} is not a JSON object)") from None
    except msgspec.DecodeError as exc:
        raise _Corrupt(f"{JSON_MEMBER} is not valid JSON ({exc})") from None
    try:  # only a string is built: any other value may be as large as the file
        found: Any = msgspec.json.decode(header.format, type=str | None)
    except msgspec.ValidationError:
        found = _NOT_A_STRING
    try:
        version = msgspec.json.decode(header.version, type=schema.Natural)
    except msgspec.ValidationError as exc:
        if found == FORMAT_NAME:
            raise _Corrupt(schema.explain(exc, schema.Natural, "trace.version")) from None
        version = None
    _check_version(found, version)


def _check_version(found: Any, version: int | None) -> None:
    if found != FORMAT_NAME:
        shown = "a value that is not a string" if found is _NOT_A_STRING else f"{found!r:.100}"
        raise _Corrupt(
            f"not a tfnp-inspect trace ({JSON_MEMBER} has format {shown}, "
            f"expected {FORMAT_NAME!r})"
        )
    if version is None:
        return
    if version > FORMAT_VERSION:
        raise _Corrupt(
            f"written by a newer tfnp_inspect (format version {version}; this version reads up "
            f"to {FORMAT_VERSION}): upgrade tfnp-inspect to open it"
        )
    if version < 1:
        raise _Corrupt(f"unknown format version {version}")


def _decode_with_surrogates(text: bytearray, budget: _Budget) -> schema.Document:
    """Files whose strings hold unpaired UTF-16 surrogates (``"\\udcff"``: undecodable bytes in
    an error message, say) are valid JSON that msgspec refuses; the standard library parses
    them, at several times the memory, so this path is bounded by ``max_bytes`` too.
    """
    budget.take(
        len(text) * (FALLBACK_JSON_FACTOR - 1),
        f"{JSON_MEMBER} (unpaired surrogates: read by the slower parser, "
        f"{FALLBACK_JSON_FACTOR}x its size)",
    )
    try:
        document = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _Corrupt(f"{JSON_MEMBER} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _Corrupt(f"not a tfnp-inspect trace ({JSON_MEMBER} is not a JSON object)")
    found, version = document.get("format"), document.get("version")
    _check_version(
        found if found is None or isinstance(found, str) else _NOT_A_STRING,
        version if type(version) is int else None,
    )
    try:
        if isinstance(document.get("stats"), list):
            for entry in document["stats"]:  # JSON object keys are strings; the schema's are ints
                if isinstance(entry, dict) and isinstance(entry.get("histogram"), dict):
                    entry["histogram"] = {
                        int(k) if k.isascii() and k.isdigit() else k: v
                        for k, v in entry["histogram"].items()
                    }
        return msgspec.convert(document, schema.Document)
    except msgspec.ValidationError as exc:
        raise _Corrupt(schema.explain(exc)) from None


# -- arrays ------------------------------------------------------------------------------------

_NPY_HEADER_READERS = {
    (1, 0): (np.lib.format.read_array_header_1_0, 2),
    (2, 0): (np.lib.format.read_array_header_2_0, 4),
}
_DESCR_SIZE = re.compile(r"[<>|=]?[A-Za-z](\d{1,4})")


def _read_npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, order and dtype of a ``.npy`` stream, leaving it at the first data byte.

    numpy reads the header. One it refuses for its descriptor alone is read here, with the
    type taken as raw records of the size the descriptor names: ``<f1``, which exporters
    before this one wrote for ml_dtypes' float8_e5m2 (the array's dtype name says the rest).
    """
    version = np.lib.format.read_magic(stream)
    reader = _NPY_HEADER_READERS.get(version)
    if reader is None:
        raise ValueError(f"unsupported .npy version {version}")
    read_header, length_bytes = reader
    prefix = stream.read(length_bytes)
    length = int.from_bytes(prefix, "little")
    if len(prefix) < length_bytes or length > MAX_NPY_HEADER_BYTES:
        raise ValueError(f"header of {length} bytes (limit {MAX_NPY_HEADER_BYTES})")
    header = stream.read(length)
    try:
        return read_header(io.BytesIO(prefix + header), max_header_size=MAX_NPY_HEADER_BYTES)
    except ValueError as exc:
        if "descr" not in str(exc):
            raise
        refused = exc
    try:
        fields = ast.literal_eval(header.decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise refused from None
    if not isinstance(fields, dict) or not isinstance(fields.get("descr"), str):
        raise refused
    size = _DESCR_SIZE.fullmatch(fields["descr"])
    shape, order = fields.get("shape"), fields.get("fortran_order")
    if (
        size is None or int(size[1]) == 0
        or not isinstance(shape, tuple) or not isinstance(order, bool)
        or not all(type(n) is int and n >= 0 for n in shape)
    ):
        raise refused
    return shape, order, np.dtype((np.void, int(size[1])))


def _resolve_dtype(name: str) -> np.dtype | None:
    """The dtype a name stands for, ml_dtypes' types included; None when unknown.

    Only short plain names are parsed: numpy builds a structured dtype from any comma list.
    """
    if not _DTYPE_NAME.fullmatch(name):
        return None
    try:
        return np.dtype(name)
    except (TypeError, ValueError):
        pass
    try:  # bfloat16, float8_*, int4 ...: registered with numpy once ml_dtypes is imported
        import ml_dtypes
    except ImportError:
        return None
    kind = getattr(ml_dtypes, name, None)
    try:
        return np.dtype(kind) if isinstance(kind, type) else None
    except (TypeError, ValueError):
        return None


def _sample_itemsize(dtype_name: str, place: tuple) -> int:
    """Samples are kept for bool, integer and float arrays: the size of one of their values."""
    dtype = _resolve_dtype(dtype_name)
    if dtype is None:
        raise _Corrupt(f"{_where(place)}.sample belongs to an array of unknown dtype {dtype_name!r:.80}")
    if dtype.kind not in "biuf":
        raise _Corrupt(f"{_where(place)}.sample is not a whole number of {dtype_name!r} values")
    return dtype.itemsize


class _ArrayReader:
    """Reads ``.npy`` members, each once, after checking their headers and sizes."""

    def __init__(self, archive: zipfile.ZipFile, budget: _Budget) -> None:
        self.archive = archive
        self.budget = budget
        self._arrays: dict[str, np.ndarray] = {}  # member -> array, read once
        self._items: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
        self._samples: memoryview | None = None
        self._sample_itemsize: dict[str, int] = {}
        self._views: dict[tuple[str, str], np.ndarray] = {}

    def sample(self, span: tuple[int, int], dtype_name: str, place: tuple) -> bytes:
        offset, length = span
        itemsize = self._sample_itemsize.get(dtype_name)
        if itemsize is None:
            itemsize = self._sample_itemsize[dtype_name] = _sample_itemsize(dtype_name, place)
        samples = self._samples
        if samples is None:  # read once, not kept as an array: only these slices are
            info = _member(self.archive, SAMPLES_MEMBER, place, ".sample")
            samples = self._samples = _data_bytes(self._read(info))
        if length % itemsize or offset + length > len(samples):
            if length % itemsize:
                raise _Corrupt(f"{_where(place)}.sample is not a whole number of {dtype_name!r} values")
            raise _Corrupt(
                f"{_where(place)}.sample declares bytes {offset}..{offset + length} but "
                f"{SAMPLES_MEMBER} holds {len(samples)}"
            )
        return samples[offset:offset + length].tobytes()

    def data(self, ref: schema.DataEntry, dtype_name: str, place: tuple) -> np.ndarray:
        if ref.encoding == "items":
            if ref.shape is None:
                raise _Corrupt(f"{_where(place)}.data.shape is missing (the 'items' encoding needs it)")
            key = (ref.member, ref.shape)
            array = self._items.get(key)
            if array is None:
                raw = self.read(ref.member, place)
                count = math.prod(ref.shape)
                if count * ITEM_HEADER <= raw.size:  # else _decode_items says what is wrong
                    self.budget.take(count * ITEM_OBJECT_COST, f"{ref.member} ({count:,} items)")
                array = _decode_items(raw, ref.shape, f"{_where(place)}.data ({ref.member})")
                array.flags.writeable = False
                self._items[key] = array
            return array
        array = self.read(ref.member, place)
        if array.dtype.kind == "V" and array.dtype.names is None and array.dtype.subdtype is None:
            return self._view(ref.member, array, dtype_name)
        return array

    def _view(self, member: str, array: np.ndarray, dtype_name: str) -> np.ndarray:
        """Raw ``|V<n>`` records seen as the type the array had (bfloat16, float8 ...)."""
        key = (member, dtype_name)
        view = self._views.get(key)
        if view is None:
            dtype = _resolve_dtype(dtype_name)
            view = array
            if dtype is not None and not dtype.hasobject and dtype.itemsize == array.dtype.itemsize:
                view = array.view(dtype)
            self._views[key] = view
        return view

    def read(self, member: str, place: tuple) -> np.ndarray:
        array = self._arrays.get(member)
        if array is None:
            info = _member(self.archive, member, place, ".data")
            array = self._arrays[member] = self._read(info)
        return array

    def _read(self, info: zipfile.ZipInfo) -> np.ndarray:
        member = info.filename
        with self.archive.open(info) as stream:
            try:
                shape, fortran_order, dtype = _read_npy_header(stream)
            except ValueError as exc:
                raise _Corrupt(f"{member} is not a valid .npy array ({exc})") from None
            if dtype.hasobject:
                raise _Corrupt(
                    f"{member} holds a pickled object array; trace files never contain pickle"
                )
            count = math.prod(shape)
            declared = count * dtype.itemsize
            present = info.file_size - stream.tell()
            if declared != present:
                raise _Corrupt(
                    f"{member} declares {declared} bytes of data for shape {shape} "
                    f"but holds {present}"
                )
            if dtype.itemsize == 0 and count:
                raise _Corrupt(f"{member} declares {count} elements of the empty dtype {dtype}")
            self.budget.take(info.file_size, member)
            buffer = np.empty(declared, dtype=np.uint8)
            _read_into(stream, buffer.data, member)
        values = buffer.view(dtype)
        array = values.reshape(shape[::-1]).transpose() if fortran_order else values.reshape(shape)
        array.flags.writeable = False  # may be shared by several calls
        return array


def _data_bytes(array: np.ndarray) -> memoryview:
    """The bytes of an array read from a member (C order), without a copy when it is one."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return (flat.view(np.uint8) if flat.dtype.itemsize else flat.astype(np.uint8)).data


def _decode_items(buffer: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    if buffer.dtype != np.uint8 or buffer.ndim != 1:
        raise _Corrupt(f"{where} must be a flat uint8 array of items")
    raw = buffer.tobytes()
    count = math.prod(shape)
    if count * ITEM_HEADER > len(raw):
        raise _Corrupt(f"{where} declares {count} items but holds only {len(raw)} bytes")
    items: list[bytes | str] = []
    position = 0
    for index in range(count):
        kind = raw[position]
        length = int.from_bytes(raw[position + 1:position + ITEM_HEADER], "little")
        start, position = position + ITEM_HEADER, position + ITEM_HEADER + length
        if position > len(raw) or kind not in (ITEM_BYTES, ITEM_STR):
            raise _Corrupt(f"{where} has a malformed item {index}")
        payload = raw[start:position]
        if kind == ITEM_BYTES:
            items.append(payload)
        else:
            try:
                items.append(payload.decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError as exc:
                raise _Corrupt(
                    f"{where}: item {index} is a str that is not valid UTF-8 ({exc.reason})"
                ) from None
        if index + 1 < count and position + ITEM_HEADER > len(raw):
            raise _Corrupt(f"{where} ends after item {index} of {count}")
    if position != len(raw):
        raise _Corrupt(f"{where} has {len(raw) - position} bytes after its {count} items")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


# -- records --------------------------------------------------------------------------------


class _Contents:
    """The validated contents of one trace file, ready for ``Recorder.load_records``.

    Rows are built as the plain tuples a recorder stores (laid out as CallRow, RawArray,
    CallSite, ProcessInfo), with one object per distinct name, site and process, and each
    decoded entry is let go as soon as its row exists: the peak is about one copy of the data.
    """

    def __init__(self, document: schema.Document, arrays: _ArrayReader) -> None:
        self.arrays = arrays
        self._strings: dict[Any, Any] = {None: None}  # str -> the same str, None -> None
        self._processes: dict[tuple, tuple] = {}
        self._flags: dict[tuple[str, ...], int] = {}
        self.options = _read_options(document.options)
        self.total, self.dropped = document.total, document.dropped
        kept = len(document.invocations)
        if self.total != self.dropped + kept:
            raise _Corrupt(
                f"trace.total is {self.total} but trace.dropped ({self.dropped}) plus the "
                f"{kept} invocations kept make {self.dropped + kept}: the counts are inconsistent"
            )
        self.stats: dict[str, FunctionStats] = {}
        for entry in document.stats:
            self.stats[entry.func_name] = _read_stats(entry)
        self.violations = [Violation(*self._violation(v)) for v in document.violations]
        self.sites = [self._site(s) for s in document.sites]
        self.diagnosis = _read_diagnosis(document)
        entries = document.invocations
        from_row = Invocation.from_row
        invocations: list[Any] = [None] * kept
        self.invocations: list[Invocation] = invocations
        for index in range(kept):
            invocations[index] = from_row(self._row(entries[index], index))
            entries[index] = None  # type: ignore[call-overload]  # free each entry once read

    def _violation(self, v: schema.ViolationEntry) -> tuple:
        name = self._strings.setdefault
        return (
            name(v.kind, v.kind), name(v.func_name, v.func_name), v.seq,
            name(v.call_site, v.call_site), v.message, name(v.argument, v.argument),
        )

    def _site(self, s: schema.SiteEntry) -> tuple:
        """A plain tuple laid out as CallSite (no function kept): every call shares it."""
        return tuple(CallSite(
            s.func_name, s.module, s.mode, s.stateful, s.op_name, s.token, s.call_site, s.tout,
            s.tout_is_list, s.origin, key=0, defined_at=None, static_shapes=s.static_shapes,
        ))

    def _row(self, entry: schema.InvocationEntry, index: int) -> tuple:
        """One call as the plain tuple a recorder stores (laid out as CallRow)."""
        if entry.site >= len(self.sites):
            raise _Corrupt(
                f"trace.invocations[{index}].site is {entry.site} but there are "
                f"{len(self.sites)} sites"
            )
        if entry.thread_id > schema.UINT64_MAX:
            raise _Corrupt(
                f"trace.invocations[{index}].thread_id must be an integer up to {schema.UINT64_MAX}"
            )
        process = entry.process
        key = (process.host, process.pid, process.task)
        process_row = self._processes.setdefault(key, key)
        error = entry.error
        name = self._strings.setdefault
        array = self._array
        inputs = tuple([array(a, (index, "inputs", i)) for i, a in enumerate(entry.inputs)])
        outputs = tuple([array(a, (index, "outputs", i)) for i, a in enumerate(entry.outputs)])
        violations = entry.violations
        hints = entry.hints
        return (
            entry.seq,
            self.sites[entry.site],
            entry.thread_id,
            name(entry.thread_name, entry.thread_name),
            entry.start_ns,
            entry.duration_ns,
            inputs,
            outputs,
            None if error is None else ErrorInfo(error.type, error.message, error.traceback),
            tuple([self._violation(v) for v in violations]) if violations else (),
            tuple([
                (name(h.kind, h.kind), name(h.func_name, h.func_name), h.seq, h.message)
                for h in hints
            ]) if hints else (),
            process_row,
            sum([r[2] for r in inputs]),
            sum([r[2] for r in outputs]),
        )

    def _array(self, a: schema.ArrayEntry, place: tuple) -> tuple:
        """A RawArray laid out as a plain tuple (the row a recorder stores)."""
        flags = self._flags.get(a.flags)
        if flags is None:
            flags = self._flags[a.flags] = sum({FLAGS[name] for name in a.flags})
        fingerprint = a.fingerprint
        if fingerprint is not None and fingerprint > schema.UINT64_MAX:
            raise _Corrupt(
                f"{_where(place)}.fingerprint must be a non-negative integer up to "
                f"{schema.UINT64_MAX}"
            )
        name = self._strings.setdefault
        dtype = name(a.dtype, a.dtype)
        sample = a.sample
        if sample is not None:
            sample = self.arrays.sample(sample, dtype, place)
        data = a.data
        if data is not None:
            data = self.arrays.data(data, dtype, place)
        return (
            a.shape, dtype, a.nbytes, fingerprint, flags, a.aliases_input, a.will_be_copied,
            sample, data, name(a.capture_note, a.capture_note),
        )


def _read_options(entry: schema.OptionsEntry) -> Options:
    try:
        return Options.from_kwargs(
            capacity=entry.capacity, capture=entry.capture,
            max_capture_bytes=entry.max_capture_bytes, checks=entry.checks, strict=entry.strict,
            byte_checks=entry.byte_checks,
        )
    except (TypeError, ValueError) as exc:
        raise _Corrupt(f"trace.options: {exc}") from None


def _read_stats(entry: schema.StatsEntry) -> FunctionStats:
    stats = FunctionStats(
        entry.func_name, entry.calls, entry.errors, entry.total_ns, entry.max_ns,
        entry.bytes_in, entry.bytes_out, Counter(entry.violations),
    )
    stats.histogram.counts = dict(entry.histogram)
    stats.histogram.count = sum(entry.histogram.values())
    if entry.min_ns is not None:
        stats.min_ns = entry.min_ns
    if entry.durations_ns is not None:  # used only when it holds every call (see FunctionStats)
        stats.durations_ns = list(entry.durations_ns)
    return stats


def _read_diagnosis(
    document: schema.Document,
) -> tuple[list[SiteShapes], list[Concurrency], list[BuildCount], int | None] | None:
    """Shapes, overlaps and build counts as a version 2 file keeps them (None for older ones)."""
    if document.shapes is None and document.pipeline is None:
        return None
    shapes = [SiteShapes.from_dict(msgspec.to_builtins(entry)) for entry in document.shapes or ()]
    pipeline = []
    for index, entry in enumerate(document.pipeline or ()):
        for ident, _ in entry.threads:
            if ident > schema.UINT64_MAX:
                raise _Corrupt(
                    f"trace.pipeline[{index}].threads holds a thread id above {schema.UINT64_MAX}"
                )
        pipeline.append(Concurrency.from_dict(msgspec.to_builtins(entry)))
    builds = [BuildCount(b.func_name, b.call_site, b.ops, b.functions) for b in document.builds or ()]
    return shapes, pipeline, builds, document.registry_size


def _merge(traces: list[Trace]) -> Trace:
    """One read-only view of traces recorded by several processes, ordered by start time."""
    invocations = sorted(
        (inv for t in traces for inv in t.invocations),
        key=lambda inv: (inv.start_ns, inv.host, inv.pid, inv.seq),
    )
    stats: dict[str, FunctionStats] = {}
    for t in traces:
        for name, function_stats in t.stats().items():
            if name in stats:
                stats[name].merge(function_stats)
            else:
                stats[name] = function_stats.snapshot()
    all_options = [t.recorder.options for t in traces]
    options = Options.from_kwargs(
        capacity=sum(o.capacity for o in all_options),
        capture=CAPTURE_LEVELS[max(o.capture_level for o in all_options)],
        max_capture_bytes=sum(o.max_capture_bytes for o in all_options),
        checks=frozenset().union(*(o.checks for o in all_options)),
        strict=any(o.strict for o in all_options),
    )
    recorder = Recorder(options)
    recorder.load_records(
        invocations,
        [v for t in traces for v in t.violations],
        stats,
        sum(t.total for t in traces),
        sum(t.dropped for t in traces),
    )
    sizes = [t.recorder.loaded_registry_size for t in traces if t.recorder.loaded_registry_size is not None]
    recorder.load_diagnosis(  # each file's exact figures (one registry per process: the sizes add up)
        [s for t in traces for s in t.recorder.shapes()],
        [p for t in traces for p in t.recorder.pipeline()],
        [b for t in traces for b in t.recorder.loaded_builds],
        sum(sizes) if sizes else None,
    )
    return Trace(recorder, source=", ".join(str(t.source) for t in traces))
