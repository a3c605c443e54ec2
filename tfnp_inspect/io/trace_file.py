"""Trace files, Chrome trace events and pandas tables: the post-mortem layer over the core.

Trace file format ``tfnp-inspect-trace``, version 1
----------------------------------------------------

One zip archive (conventionally ``*.npftrace``); it is also a valid ``.npz``, so
``np.load(path, allow_pickle=False)`` opens its arrays::

    trace.json        UTF-8 JSON (deflated): everything except array contents
    samples.npy       uint8: the raw bytes of every stats sample, concatenated
    arrays/<n>.npy    one captured array (capture='full'), stored uncompressed

``trace.json``::

    {"format": "tfnp-inspect-trace", "version": 1, "producer": "tfnp_inspect <version>",
     "options": {"capacity", "capture", "max_capture_bytes", "checks": [kind, ...], "strict"},
     "total": int, "dropped": int,          # calls ever recorded / evicted from the ring buffer
     "stats": [FunctionStats.to_dict(), ...],
     "violations": [violation, ...],        # Recorder.violations(): also evicted calls' ones
     "sites": [{"func_name", "module", "mode", "stateful", "op_name", "token", "call_site",
                "tout", "tout_is_list", "origin"}, ...],          # one per op
     "invocations": [{"seq", "site": index into "sites", "thread_id", "thread_name",
                      "start_ns", "duration_ns", "inputs": [array], "outputs": [array],
                      "error": null | {"type", "message", "traceback"},
                      "violations": [violation], "hints": [{"kind", "func_name", "seq", "message"}],
                      "process": {"host", "pid", "task"}}, ...]}
    violation = {"kind", "func_name", "seq", "call_site", "message", "argument"}
    array = {"shape", "dtype" (str), "nbytes", "fingerprint", "flags": [flag name, ...],
             "aliases_input", "will_be_copied", "capture_note",
             "sample": null | [offset, length] into samples.npy,
             "data": null | {"member": "arrays/<n>.npy", "encoding": "npy"}
                          | {"member": ..., "encoding": "items", "shape": [...]}}

Flag names are the ``FLAG_*`` constants of :mod:`tfnp_inspect.records`, lower-cased without the
prefix. ``hints`` are the hints found while the call ran; the 'nonfinite' hint is derived from
the samples again on load. Object arrays (``tf.string``) cannot go into ``.npy`` without pickle,
so their ``items`` encoding is a uint8 array: per element in C order one kind byte (0: bytes,
1: str as UTF-8), an 8-byte little-endian length and the payload. Object arrays holding other
Python objects are not exported (their ``capture_note`` says so).

``load([path, ...])`` merges the traces of several processes into one view ordered by start
time. Loading never unpickles or evaluates anything (``json`` and ``np.lib.format`` with
``allow_pickle=False`` only) and checks every type and size before using it; any problem
raises :class:`TraceFileError` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..model import records
from ..model.options import CAPTURE_LEVELS, Options
from ..model.records import CallSite, ErrorInfo, Hint, Invocation, ProcessInfo, RawArray, Violation
from ..model.stats import FunctionStats
from ..recording.recorder import Recorder
from ..recording.trace import Trace

FORMAT_NAME = "tfnp-inspect-trace"
FORMAT_VERSION = 1
#: trace.json is refused above this size (a zip member may declare anything).
MAX_JSON_BYTES = 1 << 30
#: Bound on ``.npy`` header size, as numpy's own loader uses.
MAX_NPY_HEADER_BYTES = 10_000

PathArg = str | os.PathLike

_JSON_MEMBER = "trace.json"
_SAMPLES_MEMBER = "samples.npy"
_FLAGS: dict[str, int] = {
    name[len("FLAG_"):].lower(): value
    for name, value in vars(records).items()
    if name.startswith("FLAG_") and isinstance(value, int)
}
_ITEM_BYTES, _ITEM_STR = 0, 1
_ITEM_HEADER = 9  # kind byte + 8-byte length


class TraceFileError(ValueError):
    """A trace file that cannot be loaded: corrupt, truncated, foreign, too new or hostile."""

    def __init__(self, path: PathArg, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"cannot load trace file {self.path!r}: {problem}")


class _Corrupt(Exception):
    """A problem found deep in a file; :func:`load` adds the file name."""


# ---------------------------------------------------------------------------------------------
# Record layouts: fixed here, so that the file format does not drift with the core's classes
# ---------------------------------------------------------------------------------------------


class _Kind:
    """A JSON value type the reader accepts, with the words used when it is wrong."""

    def __init__(self, description: str, accepts: Callable[[Any], bool]) -> None:
        self.description = description
        self.accepts = accepts

    def __or__(self, other: _Kind) -> _Kind:
        return _Kind(
            f"{self.description} or {other.description}",
            lambda v: self.accepts(v) or other.accepts(v),
        )


_NULL = _Kind("null", lambda v: v is None)
_BOOL = _Kind("a boolean", lambda v: isinstance(v, bool))
_INT = _Kind("an integer", lambda v: type(v) is int)
_NATURAL = _Kind("a non-negative integer", lambda v: type(v) is int and v >= 0)
_STR = _Kind("a string", lambda v: isinstance(v, str))
_LIST = _Kind("a list", lambda v: isinstance(v, list))
_OBJECT = _Kind("an object", lambda v: isinstance(v, dict))

SITE_FIELDS: dict[str, _Kind] = {
    "func_name": _STR, "module": _STR | _NULL, "mode": _STR, "stateful": _BOOL | _NULL,
    "op_name": _STR | _NULL, "token": _STR | _NULL, "call_site": _STR | _NULL,
    "tout": _LIST | _NULL, "tout_is_list": _BOOL, "origin": _STR,
}
INVOCATION_FIELDS: dict[str, _Kind] = {
    "seq": _INT, "thread_id": _INT, "thread_name": _STR, "start_ns": _INT, "duration_ns": _NATURAL,
}
ARRAY_FIELDS: dict[str, _Kind] = {
    "nbytes": _NATURAL, "fingerprint": _NATURAL | _NULL, "aliases_input": _NATURAL | _NULL,
    "will_be_copied": _BOOL | _NULL, "capture_note": _STR | _NULL,
}
VIOLATION_FIELDS: dict[str, _Kind] = {
    "kind": _STR, "func_name": _STR, "seq": _INT, "call_site": _STR | _NULL, "message": _STR,
    "argument": _STR | _NULL,
}
HINT_FIELDS: dict[str, _Kind] = {"kind": _STR, "func_name": _STR, "seq": _INT, "message": _STR}
ERROR_FIELDS: dict[str, _Kind] = {"type": _STR, "message": _STR, "traceback": _STR}
PROCESS_FIELDS: dict[str, _Kind] = {"host": _STR, "pid": _NATURAL, "task": _STR | _NULL}
STATS_COUNTS = ("calls", "errors", "total_ns", "max_ns", "bytes_in", "bytes_out")


def _record_json(record: Any, layout: dict[str, _Kind]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in layout}


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def export_trace(trace: Trace, path: PathArg) -> None:
    """Write ``trace`` to ``path`` (atomically: a half-written file never replaces a good one)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            writer = _ArrayWriter(archive)
            sites: dict[tuple, int] = {}  # one entry per op, shared by its calls
            invocations = []
            for inv in trace.invocations:
                site = tuple(getattr(inv.site, name) for name in SITE_FIELDS)
                index = sites.setdefault(site, len(sites))
                invocations.append(_invocation_json(inv, index, writer))
            document = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "producer": f"tfnp_inspect {package_version()}",
                "options": _options_json(trace.recorder.options),
                "total": trace.total,
                "dropped": trace.dropped,
                "stats": [_finite(s.to_dict()) for s in trace.stats().values()],
                "violations": [_record_json(v, VIOLATION_FIELDS) for v in trace.violations],
                "sites": [_site_json(site) for site in sites],
                "invocations": invocations,
            }
            writer.finish()
            archive.writestr(
                _JSON_MEMBER, json.dumps(document, allow_nan=False), zipfile.ZIP_DEFLATED
            )
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


class _ArrayWriter:
    """Puts captured arrays into ``arrays/<n>.npy`` and samples into one shared buffer."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.samples: list[bytes] = []
        self.sample_bytes = 0
        self.count = 0

    def sample(self, sample: bytes | None) -> list[int] | None:
        if sample is None:
            return None
        span = [self.sample_bytes, len(sample)]
        self.samples.append(bytes(sample))
        self.sample_bytes += len(sample)
        return span

    def data(self, array: np.ndarray) -> dict[str, Any]:
        """Store one captured array; TypeError for object arrays that would need pickle."""
        member = f"arrays/{self.count}.npy"
        if array.dtype.hasobject:
            ref = {"member": member, "encoding": "items", "shape": list(array.shape)}
            array = _encode_items(array)
        else:
            ref = {"member": member, "encoding": "npy"}
        self._write(member, array)
        self.count += 1
        return ref

    def finish(self) -> None:
        self._write(_SAMPLES_MEMBER, np.frombuffer(b"".join(self.samples), dtype=np.uint8))

    def _write(self, member: str, array: np.ndarray) -> None:
        with self.archive.open(member, "w", force_zip64=True) as stream:
            np.lib.format.write_array(stream, array, allow_pickle=False)


def _encode_items(array: np.ndarray) -> np.ndarray:
    """Length-prefixed items of an object array of bytes/str (TypeError for other items)."""
    parts = []
    for item in array.ravel(order="C"):
        if isinstance(item, bytes):
            kind, payload = _ITEM_BYTES, item
        elif isinstance(item, str):
            kind, payload = _ITEM_STR, item.encode("utf-8", "surrogatepass")
        else:
            raise TypeError(type(item).__name__)
        parts += [bytes([kind]), len(payload).to_bytes(8, "little"), payload]
    return np.frombuffer(b"".join(parts), dtype=np.uint8)


def _array_json(raw: RawArray, writer: _ArrayWriter) -> dict[str, Any]:
    entry = _record_json(raw, ARRAY_FIELDS)
    entry["shape"] = list(raw.shape)
    entry["dtype"] = records.dtype_name(raw.dtype)
    entry["flags"] = [name for name, bit in _FLAGS.items() if raw.flags & bit]
    entry["sample"] = writer.sample(raw.sample)
    entry["data"] = None
    if raw.data is not None:
        try:
            entry["data"] = writer.data(raw.data)
        except TypeError as exc:
            entry["capture_note"] = (
                f"not exported: an object array holding {exc} cannot be stored without pickle"
            )
    return entry


def _invocation_json(inv: Invocation, site_index: int, writer: _ArrayWriter) -> dict[str, Any]:
    entry = _record_json(inv, INVOCATION_FIELDS)
    entry.update(
        site=site_index,
        inputs=[_array_json(raw, writer) for raw in inv.raw_inputs],
        outputs=[_array_json(raw, writer) for raw in inv.raw_outputs],
        error=None if inv.error is None else _record_json(inv.error, ERROR_FIELDS),
        violations=[_record_json(v, VIOLATION_FIELDS) for v in inv.violations],
        hints=[_record_json(h, HINT_FIELDS) for h in inv.static_hints],
        process=_record_json(inv.process, PROCESS_FIELDS),
    )
    return entry


def _site_json(values: tuple) -> dict[str, Any]:
    site = dict(zip(SITE_FIELDS, values, strict=True))
    if site["tout"] is not None:
        site["tout"] = list(site["tout"])
    return site


def _options_json(options: Options) -> dict[str, Any]:
    values = {f.name: getattr(options, f.name) for f in fields(options)}
    values["checks"] = sorted(values["checks"])
    return values


def _finite(value: Any) -> Any:
    """NaN (the mean of no calls) is not JSON: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def package_version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load(path: PathArg | Sequence[PathArg]) -> Trace:
    """Open an exported trace, or merge several (one per process) into one view ordered by time.

    The result is read-only; ``source`` names the file(s). Raises :class:`TraceFileError` for a
    file that is not a readable ``tfnp-inspect-trace`` of a version this package understands.
    """
    if isinstance(path, (str, os.PathLike)):
        return _load_one(path)
    if not isinstance(path, Sequence):
        raise TypeError(f"load() takes a path or a list of paths, not {type(path).__name__}")
    paths = list(path)
    if not paths:
        raise ValueError("load() needs at least one path")
    for item in paths:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"load() takes paths (str or os.PathLike), not {type(item).__name__}")
    if len(paths) == 1:
        return _load_one(paths[0])
    return _merge([_load_one(p) for p in paths])


def _load_one(path: PathArg) -> Trace:
    try:
        with zipfile.ZipFile(path) as archive:
            contents = _Contents(archive, _read_document(archive))
    except _Corrupt as exc:
        raise TraceFileError(path, str(exc)) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        problem = f"not a readable zip archive (truncated or corrupt: {exc})"
        raise TraceFileError(path, problem) from None
    recorder = Recorder(contents.options)
    recorder.load_records(
        contents.invocations, contents.violations, contents.stats, contents.total, contents.dropped
    )
    return Trace(recorder, source=os.fspath(path))


def _read_document(archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = archive.getinfo(_JSON_MEMBER)
    except KeyError:
        raise _Corrupt(f"no {_JSON_MEMBER} inside: not a tfnp-inspect trace") from None
    if info.file_size > MAX_JSON_BYTES:
        raise _Corrupt(f"{_JSON_MEMBER} declares {info.file_size} bytes (limit {MAX_JSON_BYTES})")
    with archive.open(info) as stream:
        text = stream.read(MAX_JSON_BYTES + 1)
    if len(text) > MAX_JSON_BYTES:
        raise _Corrupt(f"{_JSON_MEMBER} is larger than {MAX_JSON_BYTES} bytes")
    try:
        document = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Corrupt(f"{_JSON_MEMBER} is not valid JSON ({exc})") from None
    found = document.get("format") if isinstance(document, dict) else None
    if found != FORMAT_NAME:
        raise _Corrupt(
            f"not a tfnp-inspect trace ({_JSON_MEMBER} has format {found!r}, "
            f"expected {FORMAT_NAME!r})"
        )
    version = _take(document, "version", _NATURAL, "trace")
    if version > FORMAT_VERSION:
        raise _Corrupt(
            f"written by a newer tfnp_inspect (format version {version}; this version reads up "
            f"to {FORMAT_VERSION}): upgrade tfnp-inspect to open it"
        )
    if version < 1:
        raise _Corrupt(f"unknown format version {version}")
    return document


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _check(value: Any, kind: _Kind, where: str) -> Any:
    if not kind.accepts(value):
        raise _Corrupt(f"{where} must be {kind.description}, not {_json_type(value)}")
    return value


def _take(record: Any, key: str, kind: _Kind, where: str) -> Any:
    _check(record, _OBJECT, where)
    if key not in record:
        raise _Corrupt(f"{where}.{key} is missing")
    return _check(record[key], kind, f"{where}.{key}")


def _read_record(record: Any, layout: dict[str, _Kind], where: str) -> dict[str, Any]:
    return {name: _take(record, name, kind, where) for name, kind in layout.items()}


def _items(record: Any, key: str, where: str) -> Iterable[tuple[Any, str]]:
    """The elements of a list field, each with its path for messages."""
    values = _take(record, key, _LIST, where)
    return ((value, f"{where}.{key}[{i}]") for i, value in enumerate(values))


class _Contents:
    """The validated contents of one trace file, ready for ``Recorder.load_records``."""

    def __init__(self, archive: zipfile.ZipFile, document: dict[str, Any]) -> None:
        self.arrays = _ArrayReader(archive)
        self.options = _read_options(_take(document, "options", _OBJECT, "trace"))
        self.total = _take(document, "total", _NATURAL, "trace")
        self.dropped = _take(document, "dropped", _NATURAL, "trace")
        self.stats: dict[str, FunctionStats] = {}
        for entry, where in _items(document, "stats", "trace"):
            stats = _read_stats(entry, where)
            self.stats[stats.func_name] = stats
        self.violations = [
            _read_violation(v, where) for v, where in _items(document, "violations", "trace")
        ]
        self.sites = [_read_site(s, where) for s, where in _items(document, "sites", "trace")]
        self.invocations = [
            self._invocation(entry, where)
            for entry, where in _items(document, "invocations", "trace")
        ]

    def _invocation(self, entry: Any, where: str) -> Invocation:
        site_index = _take(entry, "site", _NATURAL, where)
        if site_index >= len(self.sites):
            raise _Corrupt(f"{where}.site is {site_index} but there are {len(self.sites)} sites")
        error = _take(entry, "error", _OBJECT | _NULL, where)
        process = _take(entry, "process", _OBJECT, where)
        process = _read_record(process, PROCESS_FIELDS, f"{where}.process")
        return Invocation.create(
            site=self.sites[site_index],
            raw_inputs=tuple(self._array(a, w) for a, w in _items(entry, "inputs", where)),
            raw_outputs=tuple(self._array(a, w) for a, w in _items(entry, "outputs", where)),
            error=None if error is None else _read_error(error, f"{where}.error"),
            violations=tuple(_read_violation(v, w) for v, w in _items(entry, "violations", where)),
            static_hints=tuple(
                Hint(**_read_record(h, HINT_FIELDS, w)) for h, w in _items(entry, "hints", where)
            ),
            process=ProcessInfo(**process),
            **_read_record(entry, INVOCATION_FIELDS, where),
        )

    def _array(self, entry: Any, where: str) -> RawArray:
        dtype = _take(entry, "dtype", _STR, where)
        flags = 0
        for name, flag_where in _items(entry, "flags", where):
            if _check(name, _STR, flag_where) not in _FLAGS:
                raise _Corrupt(f"{flag_where} is the unknown flag {name!r}")
            flags |= _FLAGS[name]
        sample = _take(entry, "sample", _LIST | _NULL, where)
        data = _take(entry, "data", _OBJECT | _NULL, where)
        return RawArray(
            shape=tuple(_check(n, _NATURAL, w) for n, w in _items(entry, "shape", where)),
            dtype=dtype,
            flags=flags,
            sample=None if sample is None else self.arrays.sample(sample, dtype, where + ".sample"),
            data=None if data is None else self.arrays.data(data, f"{where}.data"),
            **_read_record(entry, ARRAY_FIELDS, where),
        )


_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class _ArrayReader:
    """Reads ``.npy`` members after checking their headers against the zip's own sizes."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self._samples: bytes | None = None

    def sample(self, span: list[Any], dtype_name: str, where: str) -> bytes:
        if len(span) != 2:
            raise _Corrupt(f"{where} must be [offset, length]")
        offset, length = (_check(v, _NATURAL, where) for v in span)
        try:
            dtype = np.dtype(dtype_name)
        except (TypeError, ValueError):
            raise _Corrupt(f"{where} belongs to an array of unknown dtype {dtype_name!r}") from None
        if dtype.kind not in "biuf" or length % dtype.itemsize:
            raise _Corrupt(f"{where} is not a whole number of {dtype_name!r} values")
        if self._samples is None:
            self._samples = self.read(_SAMPLES_MEMBER, where).tobytes()
        if offset + length > len(self._samples):
            raise _Corrupt(
                f"{where} declares bytes {offset}..{offset + length} but {_SAMPLES_MEMBER} "
                f"holds {len(self._samples)}"
            )
        return self._samples[offset:offset + length]

    def data(self, ref: dict[str, Any], where: str) -> np.ndarray:
        member = _take(ref, "member", _STR, where)
        encoding = _take(ref, "encoding", _STR, where)
        if encoding == "npy":
            return self.read(member, where)
        if encoding == "items":
            shape = tuple(_check(n, _NATURAL, w) for n, w in _items(ref, "shape", where))
            return _decode_items(self.read(member, where), shape, f"{where} ({member})")
        raise _Corrupt(f"{where}.encoding is the unknown encoding {encoding!r}")

    def read(self, member: str, where: str) -> np.ndarray:
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise _Corrupt(f"{where} refers to {member!r}, which the archive lacks") from None
        with self.archive.open(info) as stream:
            try:
                version = np.lib.format.read_magic(stream)
                read_header = _NPY_HEADER_READERS.get(version)
                if read_header is None:
                    raise ValueError(f"unsupported .npy version {version}")
                shape, _, dtype = read_header(stream, max_header_size=MAX_NPY_HEADER_BYTES)
            except ValueError as exc:
                raise _Corrupt(f"{member} is not a valid .npy array ({exc})") from None
            if dtype.hasobject:
                raise _Corrupt(
                    f"{member} holds a pickled object array; trace files never contain pickle"
                )
            declared = math.prod(shape) * dtype.itemsize
            present = info.file_size - stream.tell()
            if declared != present:
                raise _Corrupt(
                    f"{member} declares {declared} bytes of data for shape {shape} "
                    f"but holds {present}"
                )
            stream.seek(0)
            try:
                return np.lib.format.read_array(stream, allow_pickle=False)
            except ValueError as exc:
                raise _Corrupt(f"{member} cannot be read ({exc})") from None


def _decode_items(buffer: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    if buffer.dtype != np.uint8 or buffer.ndim != 1:
        raise _Corrupt(f"{where} must be a flat uint8 array of items")
    raw = buffer.tobytes()
    count = math.prod(shape)
    if count * _ITEM_HEADER > len(raw):
        raise _Corrupt(f"{where} declares {count} items but holds only {len(raw)} bytes")
    items: list[bytes | str] = []
    position = 0
    for index in range(count):
        kind = raw[position]
        length = int.from_bytes(raw[position + 1:position + _ITEM_HEADER], "little")
        start, position = position + _ITEM_HEADER, position + _ITEM_HEADER + length
        if position > len(raw) or kind not in (_ITEM_BYTES, _ITEM_STR):
            raise _Corrupt(f"{where} has a malformed item {index}")
        payload = raw[start:position]
        items.append(payload if kind == _ITEM_BYTES else payload.decode("utf-8", "surrogatepass"))
        if index + 1 < count and position + _ITEM_HEADER > len(raw):
            raise _Corrupt(f"{where} ends after item {index} of {count}")
    if position != len(raw):
        raise _Corrupt(f"{where} has {len(raw) - position} bytes after its {count} items")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


def _read_options(entry: dict[str, Any]) -> Options:
    try:
        return Options.from_kwargs(**entry)
    except (TypeError, ValueError) as exc:
        raise _Corrupt(f"trace.options: {exc}") from None


def _read_stats(entry: Any, where: str) -> FunctionStats:
    _take(entry, "func_name", _STR, where)
    for key in STATS_COUNTS:
        _take(entry, key, _NATURAL, where)
    for key in ("violations", "histogram"):
        for name, count in _take(entry, key, _OBJECT, where).items():
            _check(count, _NATURAL, f"{where}.{key}[{name!r}]")
    for bucket in entry["histogram"]:
        if not (bucket.isascii() and bucket.isdigit()):
            raise _Corrupt(f"{where}.histogram has the non-numeric bucket {bucket!r}")
    return FunctionStats.from_dict(entry)


def _read_violation(entry: Any, where: str) -> Violation:
    return Violation(**_read_record(entry, VIOLATION_FIELDS, where))


def _read_error(entry: Any, where: str) -> ErrorInfo:
    return ErrorInfo(**_read_record(entry, ERROR_FIELDS, where))


def _read_site(entry: Any, where: str) -> CallSite:
    site = _read_record(entry, SITE_FIELDS, where)
    if site["mode"] not in ("eager", "graph"):
        raise _Corrupt(f"{where}.mode must be 'eager' or 'graph', not {site['mode']!r}")
    if site["tout"] is not None:
        site["tout"] = tuple(_check(t, _STR, f"{where}.tout") for t in site["tout"])
    return CallSite(**site)


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
    return Trace(recorder, source=", ".join(str(t.source) for t in traces))
