"""TracePanel's synced state (the traitlets the front-end draws), built from real TF calls."""

from __future__ import annotations

import gc
import json
import os
import threading
import weakref

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
import traitlets

import tfnp_inspect as npi
from tfnp_inspect.io import export_trace
from tfnp_inspect.views.panel import TracePanel

pytestmark = [
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
    pytest.mark.timeout(120),
]

XSS = "<script>window.__xss = 1</script>"


def add_one_in_place(x):
    x += 1  # writes into TF's tensor buffer inside tf.function: a mutated-input violation
    return x * 2


def label_lengths(labels):
    return np.array([len(item) for item in labels.ravel()], dtype=np.int64)


def ratio_with_nan(x):
    return np.array([np.nan, 1.0], dtype=np.float32) * x[:2]


def failing(x):
    raise ValueError("bad value <b>not bold</b>")


def named(name):
    """A function whose name holds markup: the panel must hand it over as raw text."""

    def func(x):
        return x + 1

    func.__name__ = func.__qualname__ = name
    return func


@pytest.fixture(scope="module")
def small_trace():
    with npi.trace(capture="full") as trace:
        @tf.function
        def mutate(x):
            return tf.numpy_function(add_one_in_place, [x], tf.float32)

        for _ in range(3):
            mutate(tf.constant([1.0, 2.0, 3.0, 4.0]))
        tf.numpy_function(label_lengths, [tf.constant([XSS, "ok"])], tf.int64)
        tf.numpy_function(ratio_with_nan, [tf.constant([2.0, 3.0, 4.0])], tf.float32)
        with pytest.raises(ValueError):
            tf.numpy_function(failing, [tf.constant(1.0)], tf.float32)
        tf.numpy_function(named("<img src=x onerror=alert(1)>"), [tf.constant(1.0)], tf.float32)
    return trace


@pytest.fixture(scope="module")
def full_trace():
    """More calls than the ring buffer holds, from a real tf.while_loop."""
    with npi.trace(capacity=10_000) as trace:
        @tf.function
        def loop(n):
            def body(i, acc):
                out = tf.numpy_function(lambda a: a + np.float32(1), [acc], tf.float32)
                out.set_shape(acc.shape)
                return i + 1, out

            return tf.while_loop(lambda i, _: i < n, body, (0, tf.zeros([4])))

        loop(tf.constant(10_300))
    assert trace.total == 10_300
    return trace


@pytest.fixture
def panel_factory():
    panels = []

    def make(source, **kwargs):
        panel = TracePanel(source, **kwargs)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.close()


def by_function(trace, name):
    return [inv for inv in trace.invocations if inv.func_name == name]


def test_synced_state_reflects_a_recorded_trace(small_trace, panel_factory):
    panel = panel_factory(small_trace)
    invocations = small_trace.invocations
    assert panel.row_count == panel.stored == len(invocations) == 7
    assert panel.total == small_trace.total and panel.dropped == 0
    assert [row["seq"] for row in panel.rows] == sorted((inv.seq for inv in invocations), reverse=True)

    mutated = by_function(small_trace, "add_one_in_place")
    rows = {row["seq"]: row for row in panel.rows}
    for inv in mutated:
        row = rows[inv.seq]
        assert row["mode"] == "graph"
        assert row["violations"] == ["mutated-input"]
        assert row["inputs"] == ["float32[4]"] and row["outputs"] == ["float32[4]"]
        assert {"kind": "view", "text": "in0 view"}.items() <= row["badges"][0].items()
        assert row["thread"] == inv.thread_name and row["duration_ns"] == inv.duration_ns
    failed = by_function(small_trace, "failing")[0]
    assert rows[failed.seq]["error"] == "ValueError: bad value <b>not bold</b>"

    stats = small_trace.stats()
    assert panel.functions == sorted(stats)
    summary = {entry["function"]: entry for entry in panel.summary}
    assert summary["add_one_in_place"]["calls"] == 3
    assert summary["add_one_in_place"]["violations"] == {"mutated-input": 3}
    assert summary["failing"]["errors"] == 1
    assert sum(summary["add_one_in_place"]["histogram"]["counts"]) == 3
    assert summary["add_one_in_place"]["max_ns"] == stats["add_one_in_place"].max_ns


def test_state_is_strict_json_even_with_nan_values(small_trace, panel_factory):
    panel = panel_factory(small_trace)
    panel.selected_seq = by_function(small_trace, "ratio_with_nan")[0].seq
    output = panel.detail["outputs"][0]
    assert output["stats"]["nan_count"] == 1
    json.dumps(panel.get_state(), allow_nan=False)  # the browser rejects NaN in JSON


def test_markup_is_passed_as_raw_text(small_trace, panel_factory):
    panel = panel_factory(small_trace)
    names = [row["function"] for row in panel.rows]
    assert "<img src=x onerror=alert(1)>" in names
    assert not any("&lt;" in name or "&amp;" in name for name in names)
    panel.selected_seq = by_function(small_trace, "label_lengths")[0].seq
    preview = panel.detail["inputs"][0]["preview"]
    assert XSS in preview and "&lt;" not in preview


def test_drill_down_describes_each_array(small_trace, panel_factory):
    panel = panel_factory(small_trace)
    inv = by_function(small_trace, "add_one_in_place")[-1]
    panel.selected_seq = inv.seq
    detail = panel.detail
    assert detail["seq"] == inv.seq and detail["call_site"] == inv.call_site
    assert detail["mode"] == "graph" and detail["stateful"] is True
    assert [v["kind"] for v in detail["violations"]] == ["mutated-input"]
    assert detail["violations"][0]["message"] == inv.violations[0].message
    (given,), (returned,) = detail["inputs"], detail["outputs"]
    recorded = inv.inputs[0]
    assert given["shape"] == [4] and given["dtype"] == "float32" and given["nbytes"] == 16
    assert given["fingerprint"] == f"{recorded.fingerprint:016x}"
    assert "zero-copy view of a TensorFlow tensor" in given["aliasing"][0]
    assert given["stats"]["min"] == recorded.stats.min
    assert given["preview"] == np.array2string(recorded.data)
    assert sum(given["histogram"]["counts"]) == 4
    assert returned["preview"] == np.array2string(inv.outputs[0].data)
    assert detail["replayable"] is True

    failed = by_function(small_trace, "failing")[0]
    panel.selected_seq = failed.seq
    assert panel.detail["error"]["type"] == "ValueError"
    assert "bad value" in panel.detail["error"]["message"]

    panel.selected_seq = None
    assert panel.detail == {}


def test_replay_message_from_the_front_end(small_trace, panel_factory):
    panel = panel_factory(small_trace)
    inv = by_function(small_trace, "add_one_in_place")[0]
    panel.selected_seq = inv.seq
    # What ipywidgets delivers when panel.js calls model.send({type: "replay"}).
    panel._handle_msg({
        "content": {"data": {"method": "custom", "content": {"type": "replay", "seq": inv.seq}}},
        "buffers": [],
    })
    # The recorded input is the value before the in-place write, so the replay reproduces it.
    assert panel.replay_result == {"seq": inv.seq, "matches": True, "differences": [], "error": None}


def test_replay_of_a_call_whose_inputs_were_not_captured(panel_factory):
    with npi.trace(capture="summary") as trace:
        tf.numpy_function(label_lengths, [tf.constant(["a"])], tf.int64)
    panel = panel_factory(trace)
    panel.selected_seq = panel.rows[0]["seq"]
    assert panel.detail["replayable"] is False
    result = panel.replay_selected()
    assert result["seq"] == panel.selected_seq and "capture" in result["error"]


def test_paging_sends_only_the_visible_page(full_trace, panel_factory):
    panel = panel_factory(full_trace, page_size=100)
    assert panel.stored == panel.row_count == 10_000 and panel.dropped == 300
    assert len(panel.rows) == 100 and panel.page_count == 100
    newest = sorted((inv.seq for inv in full_trace.invocations), reverse=True)
    assert [row["seq"] for row in panel.rows] == newest[:100]
    panel.page = 3
    assert [row["seq"] for row in panel.rows] == newest[300:400]
    panel.page = 10_000  # past the end: the last page
    assert panel.page == 99 and [row["seq"] for row in panel.rows] == newest[9_900:]
    panel.page_size = 1000
    assert panel.page == 0 and len(panel.rows) == 1000 and panel.page_count == 10
    with pytest.raises(traitlets.TraitError):
        panel.page_size = 0


def test_sorting(full_trace, panel_factory):
    panel = panel_factory(full_trace, page_size=20)
    durations = sorted((inv.duration_ns for inv in full_trace.invocations), reverse=True)
    panel.sort_by = "duration"
    assert [row["duration_ns"] for row in panel.rows] == durations[:20]
    panel.sort_desc = False
    assert [row["duration_ns"] for row in panel.rows] == durations[::-1][:20]
    panel.sort_by = "seq"
    assert panel.rows[0]["seq"] == min(inv.seq for inv in full_trace.invocations)
    with pytest.raises(traitlets.TraitError):
        panel.sort_by = "name"


def test_filters(small_trace, panel_factory):
    panel = panel_factory(small_trace, page_size=2)
    panel.page = 1
    panel.violations_only = True
    assert panel.page == 0  # a new filter starts at the top
    assert panel.row_count == 3 and all(row["violations"] for row in panel.rows)
    panel.violations_only = False
    panel.errors_only = True
    assert panel.row_count == 1 and panel.rows[0]["function"] == "failing"
    panel.errors_only = False
    panel.function_filter = "label_lengths"
    assert [row["function"] for row in panel.rows] == ["label_lengths"]
    panel.function_filter = "no such function"
    assert panel.row_count == 0 and panel.rows == [] and panel.page_count == 1
    panel.function_filter = ""
    assert panel.row_count == 7


def test_process_filter_on_a_merged_multi_process_trace(tmp_path, panel_factory):
    paths = []
    try:
        for task in ("worker-0", "worker-1"):
            npi.set_task_label(task)
            with npi.trace() as trace:
                for _ in range(2 if task == "worker-0" else 3):
                    tf.numpy_function(lambda x: x * 2, [tf.constant([1.0])], tf.float32)
            paths.append(tmp_path / f"{task}.npftrace")
            export_trace(trace, paths[-1])
    finally:
        npi.set_task_label(None)
    merged = npi.load(paths)
    panel = panel_factory(merged)
    assert panel.live is False and panel.row_count == 5
    assert len(panel.processes) == 2 and all("worker-" in label for label in panel.processes)
    worker_1 = next(label for label in panel.processes if "worker-1" in label)
    panel.process_filter = worker_1
    assert panel.row_count == 3 and {row["process"] for row in panel.rows} == {worker_1}


def run_calls_from_threads(threads: int, calls: int) -> None:
    def work():
        for _ in range(calls):
            tf.numpy_function(lambda x: x + 1, [tf.constant([1.0, 2.0])], tf.float32)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def wait_until(condition, timeout_s: float = 30.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return True
        done.wait(0.02)
    return condition()


def test_appends_from_many_threads_coalesce_into_few_refreshes(panel_factory):
    with npi.trace() as trace:
        panel = panel_factory(trace, interval=0.05)
        before = panel.refreshes
        run_calls_from_threads(threads=4, calls=300)
        assert wait_until(lambda: panel.stored == 1200), "the panel never caught up"
    refreshes = panel.refreshes - before
    assert 1 <= refreshes <= 1200 // 20
    assert panel.total == 1200 and panel.rows[0]["seq"] == max(inv.seq for inv in trace.invocations)


def test_an_open_panel_leaves_the_recording_threads_on_the_fast_path(panel_factory):
    """The panel polls the recorder: no listener, so the calls keep the recorder's fast path
    (a bare append), and still every call shows, with the rows the recorder keeps."""
    with npi.trace() as trace:
        panel = panel_factory(trace, interval=0.05)
        assert trace.recorder._hot is not None
        run_calls_from_threads(threads=3, calls=200)
        assert wait_until(lambda: panel.stored == 600), "the panel never caught up"
        assert trace.recorder._hot is not None
        shown = {row["seq"] for row in panel.rows}
        assert shown <= {inv.seq for inv in trace.invocations} and len(shown) == len(panel.rows)
        assert panel.total == trace.total == 600


def test_calls_within_one_interval_wait_for_the_next_refresh(panel_factory):
    with npi.trace() as trace:
        panel = panel_factory(trace, interval=3600)
        before = panel.refreshes
        run_calls_from_threads(threads=4, calls=100)
        assert (panel.refreshes, panel.stored) == (before, 0)  # queued, not yet shown
        panel.refresh_if_changed()  # what the refresher does when the interval is over
        assert (panel.refreshes, panel.stored, panel.total) == (before + 1, 400, 400)
        panel.refresh_if_changed()  # nothing new: no refresh
        assert panel.refreshes == before + 1


def test_clearing_the_recorder_empties_the_panel(panel_factory):
    with npi.trace() as trace:
        panel = panel_factory(trace, interval=3600)
        run_calls_from_threads(threads=1, calls=5)
        panel.refresh_if_changed()
        assert panel.stored == 5
        trace.recorder.clear()
        panel.refresh_if_changed()
        assert (panel.stored, panel.rows) == (0, [])
        run_calls_from_threads(threads=1, calls=2)
        panel.refresh_if_changed()
    assert [row["seq"] for row in panel.rows] == sorted((inv.seq for inv in trace.invocations), reverse=True)
    assert panel.stored == 2


def refresher_threads(panel):
    return [t for t in threading.enumerate() if t.name == f"tfnp-panel-refresh-{panel.model_id}"]


@pytest.mark.timeout(30)
def test_close_stops_the_refresher_and_releases_the_panel():
    with npi.trace() as trace:
        panel = TracePanel(trace, interval=3600)  # close() must not wait for the interval
        assert len(refresher_threads(panel)) == 1
        threads = refresher_threads(panel)
        panel.close()
        assert not threads[0].is_alive()
        refreshes, stored = panel.refreshes, panel.stored
        run_calls_from_threads(threads=2, calls=20)
        assert trace.total == 40
    assert (panel.refreshes, panel.stored) == (refreshes, stored)
    released = weakref.ref(panel)
    del panel
    gc.collect()
    assert released() is None


def test_loaded_trace_is_shown_without_a_refresher(small_trace, tmp_path, panel_factory):
    export_trace(small_trace, tmp_path / "small.npftrace")
    loaded = npi.load(tmp_path / "small.npftrace")
    panel = panel_factory(loaded)
    assert panel.live is False and refresher_threads(panel) == []
    assert [row["seq"] for row in panel.rows] == sorted((inv.seq for inv in small_trace.invocations), reverse=True)
    panel.selected_seq = by_function(loaded, "add_one_in_place")[0].seq
    assert panel.detail["replayable"] is False  # the function does not travel in the file


def test_front_end_ships_in_the_package_and_never_parses_data_as_html(panel_factory):
    panel = panel_factory(npi.Recorder())
    assert "export default" in panel._esm and "render({ model, el })" in panel._esm
    assert ".tfnp-panel" in panel._css and "--jp-layout-color0" in panel._css
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in panel._esm


def test_recorder_source_and_bad_sources(panel_factory):
    rec = npi.Recorder()
    assert panel_factory(rec).recorder is rec
    with pytest.raises(TypeError, match=r"Recorder .*Trace.* not list"):
        TracePanel([])
    with pytest.raises(ValueError, match="interval"):
        TracePanel(rec, interval=0)
