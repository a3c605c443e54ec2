"""Trace files, Chrome trace events and DataFrames of fabricated records (the io layer)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.io import TraceFileError, chrome_trace, export_trace, to_dataframe
from tfnp_inspect.model.records import ProcessInfo

import fabricate

STRINGS = np.array([b"a", "é".encode(), b""], dtype=object)


@pytest.fixture
def trace():
    calls = [
        fabricate.invocation([np.arange(6, dtype=np.float32).reshape(2, 3)], capture="full"),
        fabricate.invocation([STRINGS], outputs=[np.array([1, 2, 0])], func="lengths", capture="full"),
        fabricate.invocation([np.array(2.5)], func="explode", capture="full",
                             error=npi.ErrorInfo("ValueError", "bad", "Traceback ...")),
    ]
    calls.append(calls[0].replace(seq=calls[0].seq + 10, violations=[fabricate.violation(calls[0])]))
    return fabricate.trace_of(calls, capture="full")


def test_round_trip_keeps_every_field(trace, tmp_path):
    export_trace(trace, tmp_path / "t.npftrace")
    loaded = npi.load(tmp_path / "t.npftrace")
    assert loaded.read_only and loaded.source == str(tmp_path / "t.npftrace")
    assert (loaded.total, loaded.dropped) == (trace.total, trace.dropped)
    for before, after in zip(trace.invocations, loaded.invocations, strict=True):
        assert after == before  # the same call (seq and process) ...
        for name in ("func_name", "mode", "duration_ns", "start_ns", "thread_name", "bytes_in", "error",
                     "violations", "static_hints", "captured"):
            assert getattr(after, name) == getattr(before, name), name
        for old, new in zip(before.inputs + before.outputs, after.inputs + after.outputs, strict=True):
            assert (new.shape, new.dtype, new.fingerprint, new.stats) == (old.shape, old.dtype, old.fingerprint, old.stats)
            assert new.data.tolist() == old.data.tolist()
    assert loaded.stats()["double"].to_dict() == trace.stats()["double"].to_dict()
    assert [v.kind for v in loaded.violations] == ["mutated-input"]


def test_the_file_is_an_npz_without_pickle(trace, tmp_path):
    path = tmp_path / "t.npftrace"
    export_trace(trace, path)
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read("trace.json"))
    assert (document["format"], document["version"]) == ("tfnp-inspect-trace", 2)
    with np.load(path, allow_pickle=False) as arrays:
        assert "samples" in arrays.files


def test_loading_garbage_names_the_file(tmp_path):
    path = tmp_path / "garbage.npftrace"
    path.write_bytes(b"not a zip")
    with pytest.raises(TraceFileError, match=r"garbage\.npftrace"):
        npi.load(path)


def test_merging_processes_orders_by_start_time(tmp_path):
    paths = []
    for index, start in enumerate((300, 100)):
        inv = fabricate.invocation(process=ProcessInfo("host", 10 + index, f"worker-{index}"), start_ns=start, seq=index + 1)
        path = tmp_path / f"{index}.npftrace"
        export_trace(fabricate.trace_of([inv]), path)
        paths.append(path)
    merged = npi.load(paths)
    assert [inv.task for inv in merged.invocations] == ["worker-1", "worker-0"]
    assert merged.total == 2 and merged.stats()["double"].calls == 2


def test_chrome_trace_has_a_slice_per_call_and_an_instant_per_violation(trace):
    events = chrome_trace(trace)["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert [e["name"] for e in slices] == [inv.func_name for inv in trace.invocations]
    assert [e["name"] for e in events if e["ph"] == "i"] == ["mutated-input: double"]
    assert min(e["ts"] for e in slices) == 0


def test_dataframe_has_one_row_per_invocation(trace):
    pytest.importorskip("pandas")
    frame = to_dataframe(trace)
    assert len(frame) == 4 and frame["func_name"].tolist()[:2] == ["double", "lengths"]
    assert frame["input_shapes"][0] == [(2, 3)] and frame["error"][2] == "ValueError: bad"
