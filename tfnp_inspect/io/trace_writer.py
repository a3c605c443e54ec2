"""Writing trace files (``Trace.export``); the format is described in :mod:`.trace_file`."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..model import records
from ..model.jsonable import json_safe
from ..model.options import Options
from ..model.records import Invocation, RawArray
from ..recording.trace import Trace
from . import trace_schema as schema
from .trace_file import FLAGS, FORMAT_NAME, FORMAT_VERSION, ITEM_BYTES, ITEM_STR, JSON_MEMBER, SAMPLES_MEMBER, PathArg

SITE_FIELDS = schema.field_names(schema.SiteEntry)
VIOLATION_FIELDS = schema.field_names(schema.ViolationEntry)
HINT_FIELDS = schema.field_names(schema.HintEntry)
ERROR_FIELDS = schema.field_names(schema.ErrorEntry)
PROCESS_FIELDS = schema.field_names(schema.ProcessEntry)
#: The fields an array entry copies from its RawArray as they are.
ARRAY_FIELDS = ("nbytes", "fingerprint", "aliases_input", "will_be_copied", "capture_note")
INVOCATION_FIELDS = ("seq", "thread_id", "thread_name", "start_ns", "duration_ns")


def package_version() -> str:
    """``tfnp_inspect.__version__``, read from the loaded package (io must not import it)."""
    package = sys.modules.get(__name__.partition(".")[0])
    return str(getattr(package, "__version__", "unknown"))


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
                "stats": [json_safe(s.to_dict()) for s in trace.stats().values()],
                "violations": [_record_json(v, VIOLATION_FIELDS) for v in trace.violations],
                "sites": [_site_json(site) for site in sites],
                "invocations": invocations,
            }
            writer.finish()
            archive.writestr(
                JSON_MEMBER, json.dumps(document, allow_nan=False), zipfile.ZIP_DEFLATED
            )
        os.replace(temporary, target)
    except OSError as exc:
        # The temporary file is ours; the caller knows only the path it gave.
        if exc.filename is not None and os.fspath(exc.filename) == os.fspath(temporary):
            raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from None
        raise
    finally:
        if temporary.exists():
            temporary.unlink()


def _record_json(record: Any, layout: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in layout}


class _ArrayWriter:
    """Puts captured arrays into ``arrays/<n>.npy`` and samples into one shared buffer.

    An array object met twice (calls of a loaded trace that shared one) is stored once.
    """

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.samples: list[bytes] = []
        self.sample_bytes = 0
        self.count = 0
        self.stored: dict[int, tuple[np.ndarray, dict[str, Any]]] = {}

    def sample(self, sample: bytes | None) -> list[int] | None:
        if sample is None:
            return None
        span = [self.sample_bytes, len(sample)]
        self.samples.append(bytes(sample))
        self.sample_bytes += len(sample)
        return span

    def data(self, array: np.ndarray) -> dict[str, Any]:
        """Store one captured array; TypeError for object arrays that would need pickle."""
        known = self.stored.get(id(array))
        if known is not None and known[0] is array:
            return dict(known[1])
        member = f"arrays/{self.count}.npy"
        if array.dtype.hasobject:
            ref = {"member": member, "encoding": "items", "shape": list(array.shape)}
            stored = _encode_items(array)
        else:
            ref = {"member": member, "encoding": "npy"}
            stored = array if _npy_names(array.dtype) else array.view(np.dtype((np.void, array.dtype.itemsize)))
        self._write(member, stored)
        self.count += 1
        self.stored[id(array)] = (array, ref)  # the array is kept alive: its id stays unique
        return dict(ref)

    def finish(self) -> None:
        self._write(SAMPLES_MEMBER, np.frombuffer(b"".join(self.samples), dtype=np.uint8))

    def _write(self, member: str, array: np.ndarray) -> None:
        with self.archive.open(member, "w", force_zip64=True) as stream:
            np.lib.format.write_array(stream, array, allow_pickle=False)


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


def _array_json(raw: RawArray, writer: _ArrayWriter) -> dict[str, Any]:
    entry = _record_json(raw, ARRAY_FIELDS)
    entry["shape"] = list(raw.shape)
    entry["dtype"] = records.dtype_name(raw.dtype)
    entry["flags"] = [name for name, bit in FLAGS.items() if raw.flags & bit]
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
