"""Trace files that must come back as they went out: ml_dtypes arrays, odd strings, shared
arrays, export errors, and the cost of loading many records."""

from __future__ import annotations

import gc
import io
import json
import time
import zipfile

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.io import export_trace

import fabricate

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_ml_dtypes_arrays_come_back_with_their_dtype(tmp_path, name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = np.dtype(getattr(ml_dtypes, name))
    values = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=dtype)
    trace = fabricate.trace_of([fabricate.invocation([values], outputs=[values.T], capture="full")],
                               capture="full")
    export_trace(trace, tmp_path / "ml.npftrace")
    loaded = npi.load(tmp_path / "ml.npftrace").invocations[0]
    for info, expected in zip(loaded.inputs + loaded.outputs, (values, values.T), strict=True):
        assert info.data.dtype == dtype and info.dtype == name
        assert np.array_equal(info.data.astype(np.float32), expected.astype(np.float32))


def test_export_into_a_missing_folder_names_the_path_given(tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "t.npftrace"
    with pytest.raises(FileNotFoundError) as caught:
        fabricate.trace_of([fabricate.invocation()]).export(target)
    assert caught.value.filename == str(target)
    assert str(target) in str(caught.value) and ".tmp" not in str(caught.value)


def test_strings_with_unpaired_surrogates_load(tmp_path):
    """json writes a lone surrogate as ``\\udcff``: valid JSON that msgspec refuses to decode."""
    message = "cannot open b'\\xff': " + b"\xff".decode("utf-8", "surrogateescape")
    call = fabricate.invocation(error=npi.ErrorInfo("OSError", message, "Traceback ..."))
    path = tmp_path / "surrogates.npftrace"
    export_trace(fabricate.trace_of([call]), path)
    with zipfile.ZipFile(path) as archive:
        assert b"\\udcff" in archive.read("trace.json")
    assert npi.load(path).invocations[0].error.message == message


def test_arrays_shared_by_loaded_calls_are_stored_once_again(tmp_path):
    values = np.arange(1000.0)
    first = fabricate.invocation([values], capture="full")
    trace = fabricate.trace_of([first, first.replace(seq=first.seq + 1)], capture="full")
    export_trace(trace, tmp_path / "a.npftrace")
    loaded = npi.load(tmp_path / "a.npftrace")
    export_trace(loaded, tmp_path / "b.npftrace")
    with zipfile.ZipFile(tmp_path / "a.npftrace") as a, zipfile.ZipFile(tmp_path / "b.npftrace") as b:
        assert len(b.namelist()) <= len(a.namelist())
    again = npi.load(tmp_path / "b.npftrace").invocations
    assert [np.array_equal(inv.inputs[0].data, values) for inv in again] == [True, True]


def test_older_layouts_load(tmp_path):
    """Keys in any order, options left to their defaults, unknown keys: as files in the wild."""
    path = tmp_path / "t.npftrace"
    export_trace(fabricate.trace_of([fabricate.invocation()]), path)
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(contents["trace.json"])
    document["options"] = {}
    document["comment"] = {"written": "by hand"}
    contents["trace.json"] = json.dumps(dict(reversed(list(document.items())))).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    loaded = npi.load(path)
    assert loaded.total == 1 and loaded.recorder.options.capture == "summary"


def test_loading_many_records_costs_about_what_parsing_their_json_does(tmp_path):
    """The 1,000,000-record figures come from benchmarks/bench_load.py; this is its small twin."""
    calls = [fabricate.invocation([np.arange(4.0)], seq=n) for n in range(20_000)]
    path = tmp_path / "many.npftrace"
    export_trace(fabricate.trace_of(calls, capacity=len(calls)), path)
    with zipfile.ZipFile(path) as archive:
        text = archive.read("trace.json")

    def best(action) -> float:
        times = []
        for _ in range(3):
            gc.collect()
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
        return min(times)

    parse = best(lambda: json.loads(text))
    load = best(lambda: npi.load(path))
    assert load < 4 * parse + 0.2, f"load {load:.3f} s, json.loads {parse:.3f} s"


def test_float8_e5m2_arrays_written_by_earlier_exporters_load(tmp_path):
    """Exporters before this one stored float8_e5m2 under numpy's own descriptor ``<f1``,
    which numpy cannot read back: the array's dtype name in trace.json says what it is."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    values = np.array([1.5, -2.0, 0.25], dtype=ml_dtypes.float8_e5m2)
    trace = fabricate.trace_of([fabricate.invocation([values], capture="full")], capture="full")
    path = tmp_path / "old.npftrace"
    export_trace(trace, path)
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    member = json.loads(contents["trace.json"])["invocations"][0]["inputs"][0]["data"]["member"]
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, values)  # what the earlier exporter wrote
    assert b"'<f1'" in buffer.getvalue()[:128]
    contents[member] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    data = npi.load(path).invocations[0].inputs[0].data
    assert data.dtype == values.dtype and np.array_equal(data.astype(np.float32), values.astype(np.float32))


def test_stats_keep_their_minimum_and_exact_durations(tmp_path):
    calls = [fabricate.invocation(duration_ns=d, seq=n) for n, d in enumerate((900, 1_000, 50_000))]
    trace = fabricate.trace_of(calls)
    export_trace(trace, tmp_path / "s.npftrace")
    loaded = npi.load(tmp_path / "s.npftrace").stats()["double"]
    assert loaded.to_dict() == trace.stats()["double"].to_dict()
    assert loaded.min_ns == 900 and loaded.durations_ns == [900, 1_000, 50_000]
