"""Trace files (round trip, hostile files), Chrome trace events and DataFrames, with real TF."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.io import TraceFileError, dataframe
from tfnp_inspect.io import trace_file as file_format
from tfnp_inspect.model.records import dtype_name

from core_helpers import forget_declarations

pytestmark = pytest.mark.timeout(120)

STRINGS = [b"a\x00", b"", b"\xff\xfe binary", "é".encode()]


# -- a real workload covering every kind of field ------------------------------------------------


def double(x):
    return x * 2


def mutate(x):
    x += 1
    return x * 2


def echo(s):
    return s


def tag(s):
    return s + b"!"


def transposed(x):
    return x.T


def overflow(x):
    return x * np.float32(np.inf)


def fails(x):
    raise ValueError("bad <input> é")


def record(capture: str, capacity: int = 9):
    """Run graph-mode, eager, string, failing and pre-built calls; the oldest get evicted."""
    prebuilt = tf.function(lambda x: tf.numpy_function(double, [x], tf.float32))
    prebuilt(tf.constant([1.0, 2.0]))
    forget_declarations("double")  # as if built before import: seen through the registry only

    @tf.function
    def pipeline(x, s, t):
        a = tf.numpy_function(mutate, [x], tf.float32)
        b = tf.numpy_function(echo, [s], tf.string)
        c = tf.numpy_function(tag, [t], tf.string)
        d = tf.numpy_function(transposed, [tf.reshape(x, [2, 2])], tf.float32)
        return a, b, c, d

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", npi.ViolationWarning)
        with npi.trace(capture=capture, capacity=capacity) as trace:
            for _ in range(2):
                pipeline(tf.constant([1.0, 2.0, 3.0, 4.0]), tf.constant(STRINGS), tf.constant(b"i"))
            prebuilt(tf.constant([3.0, 4.0]))
            npi.numpy_function(mutate, [np.arange(3, dtype=np.int64)], tf.int64)
            npi.numpy_function(overflow, [np.float32([1.0, 2.0])], tf.float32)
            with pytest.raises(ValueError, match="bad <input>"):
                npi.numpy_function(fails, [np.float32([1.0])], tf.float32)
    return trace


@pytest.fixture(scope="module", params=["none", "summary", "full"])
def recorded(request):
    return record(request.param)


@pytest.fixture(scope="module")
def full_trace():
    return record("full")


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory, full_trace):
    path = tmp_path_factory.mktemp("trace") / "base.npftrace"
    full_trace.export(path)
    return path


# -- comparing ----------------------------------------------------------------------------


def same_array(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.hasobject:
        pairs = zip(a.flat, b.flat, strict=True)
        return a.tolist() == b.tolist() and all(type(x) is type(y) for x, y in pairs)
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def assert_same_raw(original, loaded):
    assert len(original) == len(loaded)
    for a, b in zip(original, loaded, strict=True):
        assert dtype_name(a.dtype) == dtype_name(b.dtype)
        for field in a._fields:
            if field == "dtype":
                continue
            if field == "data":
                assert same_array(a.data, b.data), field
            else:
                assert getattr(a, field) == getattr(b, field), field


#: Everything about an op except the handle to the live function (a loaded trace has none).
SITE_FIELDS = (
    "func_name", "module", "mode", "stateful", "op_name", "token", "call_site", "tout",
    "tout_is_list", "origin",
)
INVOCATION_FIELDS = (
    "seq", "thread_id", "thread_name", "start_ns", "duration_ns", "error", "violations",
    "static_hints", "process", "bytes_in", "bytes_out", "func_name", "op_name", "stateful", "mode",
    "call_site", "host", "pid", "task", "hints", "captured", "captured_bytes",
)


def assert_same_trace(original, loaded):
    assert loaded.total == original.total
    assert loaded.dropped == original.dropped
    assert loaded.recorder.options == original.recorder.options
    assert loaded.violations == original.violations
    assert loaded.hints == original.hints
    assert {k: v.to_dict() for k, v in loaded.stats().items()} == {
        k: v.to_dict() for k, v in original.stats().items()
    }
    assert len(loaded.invocations) == len(original.invocations)
    for a, b in zip(original.invocations, loaded.invocations, strict=True):
        for field in INVOCATION_FIELDS:
            assert getattr(a, field) == getattr(b, field), (a.seq, field)
        for field in SITE_FIELDS:
            assert getattr(a.site, field) == getattr(b.site, field), (a.seq, field)
        assert b.site.func is None
        assert_same_raw(a.raw_inputs, b.raw_inputs)
        assert_same_raw(a.raw_outputs, b.raw_outputs)
        # The derived, public view (stats from samples, flags) is the same too.
        assert [repr(x) for x in a.inputs + a.outputs] == [repr(x) for x in b.inputs + b.outputs]


# -- round trip ---------------------------------------------------------------------------


def test_workload_covers_what_the_round_trip_must_keep(recorded):
    invocations = recorded.invocations
    kept = {inv.seq for inv in invocations}
    assert recorded.dropped > 0
    assert any(v.seq not in kept for v in recorded.violations), "a violation of an evicted call"
    assert any(inv.violations for inv in invocations)
    assert any(inv.error is not None for inv in invocations)
    assert {inv.mode for inv in invocations} == {"graph", "eager"}
    assert any(inv.site.origin == "registry" for inv in invocations)
    assert any(raw.dtype == object for inv in invocations for raw in inv.raw_inputs)
    assert any(raw.will_be_copied for inv in invocations for raw in inv.raw_outputs)
    capture = recorded.recorder.options.capture
    assert any(inv.captured for inv in invocations) == (capture == "full")
    if capture != "none":
        assert any(h.kind == "nonfinite" for h in recorded.hints)


def test_round_trip_keeps_every_field(recorded, tmp_path):
    path = tmp_path / "trace.npftrace"
    recorded.export(path)
    loaded = npi.load(path)
    assert_same_trace(recorded, loaded)
    assert loaded.read_only
    assert loaded.source == str(path)
    assert loaded.find(recorded.invocations[-1].seq).error == recorded.invocations[-1].error


def test_string_tensors_come_back_byte_for_byte(full_trace, trace_file):
    loaded = npi.load(trace_file)
    echoed = [inv for inv in loaded.invocations if inv.func_name == "echo"]
    assert echoed
    for inv in echoed:
        assert inv.raw_inputs[0].data.tolist() == STRINGS
        assert inv.raw_outputs[0].data.tolist() == STRINGS
    scalar = next(inv for inv in loaded.invocations if inv.func_name == "tag")
    assert scalar.raw_inputs[0].data.shape == ()
    assert scalar.raw_inputs[0].data.item() == b"i"


def test_file_is_self_describing_and_an_npz_without_pickle(full_trace, trace_file):
    with zipfile.ZipFile(trace_file) as archive:
        document = json.loads(archive.read("trace.json"))
    assert document["format"] == "tfnp-inspect-trace"
    assert document["version"] == file_format.FORMAT_VERSION
    assert document["options"]["capture"] == "full"
    assert document["total"] == full_trace.total
    first = document["invocations"][0]
    assert set(first["process"]) == {"host", "pid", "task"}
    assert all(isinstance(flag, str) for flag in first["inputs"][0]["flags"])
    with np.load(trace_file, allow_pickle=False) as arrays:
        assert "samples" in arrays.files
        for name in arrays.files:
            if name != "trace.json":
                assert arrays[name].dtype != object


def test_loaded_trace_is_read_only(trace_file):
    loaded = npi.load(trace_file)
    with pytest.raises(RuntimeError, match="read-only"):
        loaded.recorder.clear()


def test_object_arrays_that_need_pickle_are_left_out_with_a_note(tmp_path):
    def mixed(x):
        return np.array([1, "two"], dtype=object)

    with npi.trace(capture="full") as trace, pytest.raises(ValueError, match="convert"):
        npi.numpy_function(mixed, [np.float32([1.0])], tf.string)
    assert trace.invocations[0].raw_outputs[0].data is not None
    trace.export(tmp_path / "mixed.npftrace")
    loaded = npi.load(tmp_path / "mixed.npftrace")
    output = loaded.invocations[0].outputs[0]
    assert output.data is None
    assert "without pickle" in output.capture_note
    assert same_array(loaded.invocations[0].inputs[0].data, np.float32([1.0]))


def test_export_replaces_a_file_only_when_complete(tmp_path, full_trace):
    path = tmp_path / "trace.npftrace"
    path.write_bytes(b"old")
    full_trace.export(path)
    assert npi.load(path).total == full_trace.total
    assert [p.name for p in tmp_path.iterdir()] == ["trace.npftrace"]


def test_load_rejects_bad_arguments(trace_file):
    with pytest.raises(TypeError, match="path"):
        npi.load(42)
    with pytest.raises(ValueError, match="at least one"):
        npi.load([])


# -- bad and hostile files -----------------------------------------------------------------------


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def with_document(trace_file: Path, target: Path, change) -> Path:
    contents = members(trace_file)
    document = json.loads(contents["trace.json"])
    change(document)
    contents["trace.json"] = json.dumps(document).encode()
    return write_members(target, contents)


def assert_refused(path: Path, *fragments: str) -> TraceFileError:
    with pytest.raises(TraceFileError) as caught:
        npi.load(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_truncated_archive(trace_file, tmp_path):
    data = trace_file.read_bytes()
    truncated = tmp_path / "truncated.npftrace"
    truncated.write_bytes(data[: len(data) // 2])
    assert_refused(truncated, "zip archive")


def test_truncated_json(trace_file, tmp_path):
    contents = members(trace_file)
    contents["trace.json"] = contents["trace.json"][:-40]
    bad = write_members(tmp_path / "bad.npftrace", contents)
    assert_refused(bad, "trace.json", "not valid JSON")


def test_foreign_files(trace_file, full_trace, tmp_path):
    chrome = tmp_path / "chrome.json"
    full_trace.to_chrome_trace(chrome)
    assert_refused(chrome, "zip archive")
    other_zip = write_members(tmp_path / "other.zip", {"trace.json": b'{"hello": 1}'})
    assert_refused(other_zip, "not a tfnp-inspect trace")
    plain_npz = tmp_path / "plain.npz"
    np.savez(plain_npz, a=np.arange(3))
    assert_refused(plain_npz, "no trace.json")


def test_newer_format_version(trace_file, tmp_path):
    def bump(document):
        document["version"] = file_format.FORMAT_VERSION + 1

    newer = with_document(trace_file, tmp_path / "new.npftrace", bump)
    error = assert_refused(newer, "newer", "upgrade")
    assert error.path == str(tmp_path / "new.npftrace")


def first_input(document):
    return document["invocations"][0]["inputs"][0]


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda d: d.update(version="1"), ["trace.version must be a non-negative integer"]),
        (lambda d: d.update(invocations={}), ["trace.invocations must be a list, not an object"]),
        (
            lambda d: d["invocations"][0].update(seq="7"),
            ["trace.invocations[0].seq must be an integer, not a string"],
        ),
        (
            lambda d: d["invocations"][1].pop("thread_name"),
            ["trace.invocations[1].thread_name is missing"],
        ),
        (
            lambda d: first_input(d).update(shape=[2.5]),
            ["trace.invocations[0].inputs[0].shape[0] must be a non-negative integer, not a"],
        ),
        (lambda d: first_input(d).update(flags=["evil"]), ["unknown flag 'evil'"]),
        (lambda d: d["invocations"][0].update(site=10**6), ["site is 1000000"]),
        (lambda d: d["options"].update(capacity="many"), ["trace.options", "capacity"]),
        (lambda d: d["stats"][0].update(calls=-1), ["calls must be a non-negative integer"]),
        (lambda d: d["violations"].append([]), ["must be an object, not a list"]),
        (lambda d: d["sites"][0].update(mode="lazy"), ["mode must be 'eager' or 'graph'"]),
    ],
)
def test_wrong_types_are_named(trace_file, tmp_path, change, fragments):
    assert_refused(with_document(trace_file, tmp_path / "typed.npftrace", change), *fragments)


def first_data_member(document) -> tuple[dict, str]:
    for inv in document["invocations"]:
        for array in inv["inputs"]:
            if array["data"] is not None and array["data"]["encoding"] == "npy":
                return array, array["data"]["member"]
    raise AssertionError("no captured numeric array")


class Payload:
    """Unpickling this would create a directory: the loader must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickled_object_array_is_refused_unopened(trace_file, tmp_path):
    marker = tmp_path / "unpickled"
    contents = members(trace_file)
    _, member = first_data_member(json.loads(contents["trace.json"]))
    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    contents[member] = buffer.getvalue()
    assert_refused(write_members(tmp_path / "pickled.npftrace", contents), member, "pickle")
    assert not marker.exists()


def test_huge_sizes_declared_in_json_are_refused(trace_file, tmp_path):
    def huge_sample(document):
        for inv in document["invocations"]:
            for array in inv["inputs"]:
                array["sample"] = [0, 8 * 10**15]
                array["dtype"] = "float64"

    bad_sample = with_document(trace_file, tmp_path / "a.npftrace", huge_sample)
    assert_refused(bad_sample, "declares", "samples.npy")

    def huge_items(document):
        for inv in document["invocations"]:
            for array in inv["inputs"]:
                if array["data"] is not None and array["data"]["encoding"] == "items":
                    array["data"]["shape"] = [10**12]

    bad_items = with_document(trace_file, tmp_path / "b.npftrace", huge_items)
    assert_refused(bad_items, "declares 1000000000000 items")


def test_huge_size_declared_in_npy_header_is_refused(trace_file, tmp_path):
    contents = members(trace_file)
    _, member = first_data_member(json.loads(contents["trace.json"]))
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(b"\0" * 64)
    contents[member] = buffer.getvalue()
    huge = write_members(tmp_path / "huge.npftrace", contents)
    assert_refused(huge, member, "declares 8000000000000 bytes")


def test_oversized_json_is_refused_before_reading(trace_file, monkeypatch):
    monkeypatch.setattr(file_format, "MAX_JSON_BYTES", 64)
    assert_refused(trace_file, "trace.json declares", "limit 64")


def test_missing_and_malformed_members(trace_file, tmp_path):
    contents = members(trace_file)
    _, member = first_data_member(json.loads(contents["trace.json"]))
    del contents[member]
    assert_refused(write_members(tmp_path / "missing.npftrace", contents), "lacks")
    contents[member] = b"not an npy file"
    garbage = write_members(tmp_path / "garbage.npftrace", contents)
    assert_refused(garbage, member, "not a valid .npy")


# -- Chrome trace events ------------------------------------------------------------------


def test_chrome_trace_structure(full_trace, tmp_path):
    path = tmp_path / "trace.json"
    full_trace.to_chrome_trace(path)
    document = json.loads(path.read_text())
    assert document["displayTimeUnit"] == "ns"
    invocations = full_trace.invocations
    origin = document["otherData"]["origin_ns"]
    assert origin == min(inv.start_ns for inv in invocations)
    events = document["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    instants = [e for e in events if e["ph"] == "i"]
    meta = [e for e in events if e["ph"] == "M"]
    assert len(slices) == len(invocations)
    assert len(instants) == sum(len(inv.violations) for inv in invocations) > 0

    tid_of_thread = {}
    for event, inv in zip(slices, invocations, strict=True):
        assert event["name"] == inv.func_name
        assert event["cat"] == "numpy_function"
        assert event["ts"] == pytest.approx((inv.start_ns - origin) / 1000, abs=1e-6)
        assert event["dur"] == pytest.approx(inv.duration_ns / 1000)
        assert event["pid"] == inv.pid
        assert 0 < event["tid"] < 2**32  # Perfetto reads tids as 32-bit numbers
        assert tid_of_thread.setdefault(inv.thread_id, event["tid"]) == event["tid"]
        args = event["args"]
        assert (args["seq"], args["mode"], args["op"], args["call_site"]) == (
            inv.seq, inv.mode, inv.op_name, inv.call_site,
        )
        assert args["thread_id"] == inv.thread_id
        assert [a["shape"] for a in args["inputs"]] == [list(r.shape) for r in inv.raw_inputs]
        outputs = inv.raw_outputs
        assert [a["dtype"] for a in args["outputs"]] == [dtype_name(r.dtype) for r in outputs]
        fingerprints = [int(a["fingerprint"], 16) for a in args["inputs"]]
        assert fingerprints == [r.fingerprint for r in inv.raw_inputs]
        assert args.get("error") == (str(inv.error) if inv.error else None)
    assert len(set(tid_of_thread.values())) == len(tid_of_thread) >= 2  # TF's threads and main

    by_seq = {e["args"]["seq"]: e for e in slices}
    for instant in instants:
        owner = by_seq[instant["args"]["seq"]]
        assert instant["s"] == "t"
        assert instant["cat"] == "violation"
        assert (instant["pid"], instant["tid"]) == (owner["pid"], owner["tid"])
        assert instant["ts"] == pytest.approx(owner["ts"] + owner["dur"], abs=1e-6)
        assert instant["args"]["message"] in {v.message for v in full_trace.violations}

    thread_names = {
        (e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"
    }
    names_by_id = {inv.thread_id: inv.thread_name for inv in invocations}
    assert thread_names == {(os.getpid(), tid): names_by_id[t] for t, tid in tid_of_thread.items()}
    processes = [e for e in meta if e["name"] == "process_name"]
    assert [e["pid"] for e in processes] == [os.getpid()]
    assert str(os.getpid()) in processes[0]["args"]["name"]


# -- pandas -------------------------------------------------------------------------------


def test_dataframe_has_one_row_per_invocation(full_trace):
    frame = full_trace.to_dataframe()
    invocations = full_trace.invocations
    assert list(frame.columns) == list(dataframe.COLUMNS)
    assert len(frame) == len(invocations)
    assert frame["seq"].tolist() == [inv.seq for inv in invocations]
    assert frame["func_name"].tolist() == [inv.func_name for inv in invocations]
    assert frame["violations"].tolist() == [[v.kind for v in inv.violations] for inv in invocations]
    shapes = [[tuple(r.shape) for r in inv.raw_inputs] for inv in invocations]
    assert frame["input_shapes"].tolist() == shapes
    assert frame["pid"].tolist() == [inv.pid for inv in invocations]
    starts = [pd.Timestamp(inv.start_ns, unit="ns", tz="UTC") for inv in invocations]
    assert frame["start"].tolist() == starts
    failed = frame[frame["func_name"] == "fails"]
    assert failed["error"].str.contains("bad <input>").all()
    assert frame.groupby("mode")["duration_ns"].count().to_dict() == {
        mode: sum(inv.mode == mode for inv in invocations) for mode in ("eager", "graph")
    }


def test_dataframe_of_an_empty_trace_has_the_columns():
    frame = npi.Trace(npi.Recorder()).to_dataframe()
    assert frame.empty
    assert list(frame.columns) == list(dataframe.COLUMNS)


def test_dataframe_without_pandas_names_the_extra():
    script = (
        "import sys\n"
        "sys.modules['pandas'] = None\n"
        "import tfnp_inspect as npi\n"
        "try:\n"
        "    npi.Trace(npi.Recorder()).to_dataframe()\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "ImportError:" in result.stdout
    assert "pip install 'tfnp-inspect[pandas]'" in result.stdout
