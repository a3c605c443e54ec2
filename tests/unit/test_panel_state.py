"""The panel's pure state projection and its live feed, without IPython, anywidget or TensorFlow."""

from __future__ import annotations

import json
import threading

import numpy as np

import tfnp_inspect as npi
from tfnp_inspect.model.records import ProcessInfo
from tfnp_inspect.views.panel import feed, state

import fabricate


def entries_of(invocations):
    return list(state.entries_from_rows([inv.row() for inv in invocations]))


def test_rows_are_read_from_the_compact_arrays():
    inv = fabricate.invocation([np.zeros((2, 3), np.float32)], outputs=[np.zeros(2, np.int64)], seq=5)
    inv = inv.replace(raw_inputs=[fabricate.raw_array(np.zeros((2, 3), np.float32), shares_tensor=True)])
    row = state.row(inv)
    assert (row["seq"], row["function"], row["inputs"], row["outputs"]) == (5, "double", ["float32[2, 3]"], ["int64[2]"])
    assert row["badges"][0]["text"] == "in0 view" and row["error"] is None and row["violations"] == []
    assert row["process"] == inv.process.label


def test_filters_order_and_pages():
    calls = [fabricate.invocation(func="a" if i % 2 else "b", duration_ns=i, seq=i + 1) for i in range(10)]
    calls[3] = calls[3].replace(violations=[fabricate.violation(calls[3])])
    entries = entries_of(calls)
    newest = state.page_of(entries, state.Query(page_size=4))
    assert [r["seq"] for r in newest.rows] == [10, 9, 8, 7] and (newest.page_count, newest.row_count) == (3, 10)
    only_a = state.select(entries, state.Query(function="a", sort_by="duration", sort_desc=False))
    assert [state.view(e).duration_ns for e in only_a] == [1, 3, 5, 7, 9]
    flagged = state.page_of(entries, state.Query(violations_only=True))
    assert [r["seq"] for r in flagged.rows] == [4]
    beyond = state.page_of(entries, state.Query(page=99, page_size=4))
    assert beyond.page == 2 and [r["seq"] for r in beyond.rows] == [2, 1]
    assert state.page_of([], state.Query()) == state.Page([], 0, 1, 0)


def test_process_choices_only_for_several_processes():
    here = fabricate.invocation(process=ProcessInfo("h", 1))
    there = fabricate.invocation(process=ProcessInfo("h", 2, "worker-2"))
    assert state.process_choices(entries_of([here])) == []
    assert state.process_choices(entries_of([here, there])) == ["h:1", "worker-2 (h:2)"]
    picked = state.select(entries_of([here, there]), state.Query(process="worker-2 (h:2)"))
    assert [state.view(e) for e in picked] == [there]


def test_summary_and_detail_are_strict_json():
    inv = fabricate.invocation([np.array([np.nan, 1.0])], outputs=[np.array([np.inf, 2.0])], capture="full")
    trace = fabricate.trace_of([inv], capture="full")
    summary = state.summary(trace.stats()["double"])
    detail = state.invocation_detail(trace.invocations[0])
    json.dumps([summary, detail], allow_nan=False)
    assert summary["p50_ns"] <= summary["max_ns"] and summary["histogram"]["counts"] == [1]
    assert detail["inputs"][0]["stats"]["min"] == 1.0 and detail["outputs"][0]["stats"]["max"] == 2.0
    assert detail["inputs"][0]["preview"] == "[nan  1.]" and detail["inputs"][0]["aliasing"] == ["own copy"]
    assert detail["replayable"] is False  # fabricated by name: no function to call again
    assert state.summary(npi.FunctionStats("idle"))["mean_ns"] is None
    assert state.missing_detail(3)["missing"].startswith("this call is no longer")


def test_sparkline_has_at_most_32_bins():
    stats = npi.FunctionStats("f")
    for value in (10, 10**3, 10**6, 10**9):
        stats.add(value, 0, 0, False, ())
    line = state.sparkline(stats.histogram)
    assert len(line["counts"]) <= state.SPARKLINE_BINS and sum(line["counts"]) == 4
    assert line["low_ns"] <= 10 and line["high_ns"] > 10**9


def double(x):
    return x * 2


def test_replay_outcome():
    assert "cannot be replayed" in state.replay_outcome(fabricate.invocation(func=double))["error"]
    assert "no longer known" in state.replay_outcome(fabricate.invocation(capture="full"))["error"]
    outcome = state.replay_outcome(fabricate.invocation(func=double, capture="full", seq=4))
    assert outcome == {"seq": 4, "matches": True, "differences": [], "error": None}


def test_mirror_follows_appends_clears_and_resizes():
    recorder = npi.Recorder(capacity=5)
    recorder.append(fabricate.invocation(seq=1))
    mirror = feed.Mirror(recorder)
    assert mirror.changed
    assert [e[state.E_SEQ] for e in mirror.entries()] == [1] and not mirror.changed
    for seq in range(2, 9):
        recorder.append(fabricate.invocation(seq=seq))
    assert mirror.changed
    assert [e[state.E_SEQ] for e in mirror.entries()] == [4, 5, 6, 7, 8]
    assert mirror.find(6).seq == 6 and mirror.find(1) is None
    recorder.append(fabricate.invocation(seq=9))
    assert [e[state.E_SEQ] for e in mirror.entries()] == [5, 6, 7, 8, 9]
    recorder.clear()
    assert mirror.changed and mirror.entries() == []
    for seq in range(10, 20):  # more calls than before the clear: still seen as a fresh start
        recorder.append(fabricate.invocation(seq=seq))
    assert [e[state.E_SEQ] for e in mirror.entries()] == [15, 16, 17, 18, 19]
    recorder.configure(capacity=3)
    assert mirror.changed
    assert [e[state.E_SEQ] for e in mirror.entries()] == [17, 18, 19] and not mirror.changed
    recorder.configure(capacity=6)
    recorder.append(fabricate.invocation(seq=20))
    assert [e[state.E_SEQ] for e in mirror.entries()] == [17, 18, 19, 20]


def test_mirror_reads_rows_the_fast_path_stored():
    """The panel costs the appending threads nothing: the recorder keeps its fast path (no
    listener), and the mirror still sees every row, from any number of threads."""
    recorder = npi.Recorder(capacity=10_000)
    mirror = feed.Mirror(recorder)
    assert recorder._hot is not None
    calls = [fabricate.invocation(seq=seq).row() for seq in range(1, 4001)]

    def store(part):
        for row in part:
            recorder.store(row)

    threads = [threading.Thread(target=store, args=(calls[k::4],)) for k in range(4)]
    seen = []
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        seen = mirror.entries()
    for thread in threads:
        thread.join()
    seen = mirror.entries()
    assert sorted(e[state.E_SEQ] for e in seen) == list(range(1, 4001))
    assert recorder._hot is not None


class Counting:
    def __init__(self) -> None:
        self.refresh_cpu_s = 0.0
        self.calls = threading.Event()

    def refresh_if_changed(self) -> None:
        self.calls.set()


def test_refresher_drives_the_panel_and_stops():
    panel = Counting()
    refresher = feed.Refresher(panel, interval=0.01, name="tfnp-test-refresher")
    assert panel.calls.wait(5)
    refresher.stop()
    assert not any(t.name == "tfnp-test-refresher" for t in threading.enumerate())
