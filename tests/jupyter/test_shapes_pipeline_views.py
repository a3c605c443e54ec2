"""Shapes, pipeline figures and retracing in the magics (``%%npfunc``, ``%npfunc stats``,
``%npfunc shapes``) and in the panel (summary columns, hints, the timeline and its zoom)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from IPython.core.interactiveshell import InteractiveShell

import tfnp_inspect as npi
from tfnp_inspect.views.panel import TracePanel, state

from shell_helpers import Ran
from shell_helpers import run as run_cell

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

DEFINITIONS = """
import numpy as np
import tensorflow as tf

def sp_load_image(index):
    return np.zeros((8, 8, 3), np.uint8), np.int64(index)

def sp_images():
    return tf.data.Dataset.range(12).map(
        lambda i: tf.numpy_function(sp_load_image, [i], (tf.uint8, tf.int64)), num_parallel_calls=2)

def sp_scale(x, k):
    return (x * k).astype(np.float32)

@tf.function
def sp_step(x, k):
    return tf.numpy_function(sp_scale, [x, k], tf.float32)
"""


def run(shell: InteractiveShell, cell: str) -> Ran:
    ran = run_cell(shell, cell)
    assert ran.result.success, ran.stdout + ran.stderr
    return ran


CELL = "%%npfunc -o t\nfor element in sp_images(): pass\nfor k in range(11): sp_step(tf.ones([3]), k)"


def test_cell_summary_shows_signatures_pipeline_retracing_and_the_new_hints(shell):
    ran = run(shell, CELL)
    text = ran.text
    assert "sp_load_image(int64[]) -> uint8[8,8,3], int64[]  (12 calls)" in text
    assert "sp_scale(float32[3], int32[]) -> float32[3]  (11 calls)" in text
    assert "pipeline (calls running at once" in text and "in flight (mean)" in text
    assert "sp_scale at <ipython-input-" in text and "11 ops, built in sp_step" in text
    assert "[unknown-shape] sp_load_image" in text and "`y0.set_shape([8, 8, 3])`; `y1.set_shape([])`" in text
    assert "[retraced] sp_scale" in text and "input_signature" in text
    html = ran.html
    assert "sp_load_image(int64[]) -&gt; uint8[8,8,3], int64[]  (12 calls)" in html and "time share" in html


def test_npfunc_stats_is_the_table_then_shapes_pipeline_and_builds(shell):
    run(shell, CELL)
    ran = run(shell, "%npfunc stats")
    text = ran.text
    table, _, rest = text.partition("\n\nshapes (per op")
    assert table.startswith("function") and "sp_load_image" in table and "violations" in table
    assert "sp_load_image(int64[]) -> uint8[8,8,3], int64[]  (12 calls)" in rest
    assert "threads" in rest and "time share" in rest and "11 ops, built in sp_step" in rest
    assert "PyFunc registry holds" in rest
    assert "<table>" in ran.html


def test_npfunc_shapes_lists_each_output_with_what_to_declare(shell):
    run(shell, CELL)
    text = run(shell, "%npfunc shapes").text
    rows = [line for line in text.splitlines() if line.startswith("sp_load_image ")]
    assert len(rows) == 2
    assert "uint8[8,8,3]" in rows[0] and "[8,8,3] ×12" in rows[0] and "unknown" in rows[0]
    assert rows[0].rstrip().endswith("set_shape([8, 8, 3])") and rows[1].rstrip().endswith("set_shape([])")


def test_npfunc_shapes_without_calls(shell):
    npi.recorder().clear()
    assert "(no numpy_function calls recorded)" in run(shell, "%npfunc shapes").text


# -- the panel ----------------------------------------------------------------------------------------


def add_one_in_place(x):
    x += 1  # a mutated-input violation inside tf.function
    return x * 2


def slow_identity(i):
    return np.float32(i)


@pytest.fixture(scope="module")
def pipeline_trace():
    step = tf.function(lambda x: tf.numpy_function(add_one_in_place, [x], tf.float32))
    with npi.trace() as trace:
        for _ in range(3):
            step(tf.zeros([4]))
        for _ in tf.data.Dataset.range(20).map(
            lambda i: tf.numpy_function(slow_identity, [i], tf.float32), num_parallel_calls=2,
        ):
            pass
    return trace


def test_panel_summary_carries_signatures_overlaps_and_hints(pipeline_trace):
    panel = TracePanel(pipeline_trace)
    try:
        by_name = {line["function"]: line for line in panel.summary}
        line = by_name["slow_identity"]
        assert line["signatures"] == ["slow_identity(int64[]) -> float32[]  (20 calls)"]
        assert line["pipeline"]["max_in_flight"] >= 1 and 0 < line["pipeline"]["time_share"] <= 1
        assert "unknown-shape" in line["hints"]
        kinds = {(h["kind"], h["function"]) for h in panel.findings["hints"]}
        assert ("unknown-shape", "slow_identity") in kinds
        json.dumps([panel.summary, panel.findings, panel.timeline], allow_nan=False)  # strict JSON
    finally:
        panel.close()


def test_panel_timeline_has_a_lane_per_thread_a_bar_per_call_and_zooms(pipeline_trace):
    panel = TracePanel(pipeline_trace)
    try:
        timeline = panel.timeline
        threads = {(inv.process, inv.thread_id) for inv in pipeline_trace.invocations}
        assert len(timeline["lanes"]) == len(threads)
        assert sum(bar[state.BAR_CALLS] for bar in timeline["bars"]) == 23
        flagged = {bar[state.BAR_SEQ] for bar in timeline["bars"] if bar[state.BAR_FLAGS] & state.BAR_VIOLATION}
        assert flagged == {v.seq for v in pipeline_trace.violations}
        first, last = timeline["start"], timeline["end"]
        assert first == 0 and last > 0 and timeline["window"] == [first, last]

        middle = (first + last) / 2
        panel.timeline_window = [middle, last]  # what a drag or "+" in the front-end sets
        zoomed = panel.timeline
        assert zoomed["window"] == [middle, last]
        assert 0 < len(zoomed["bars"]) < len(timeline["bars"])
        assert all(bar[state.BAR_END] >= middle for bar in zoomed["bars"])
        panel.timeline_window = []  # "all"
        assert len(panel.timeline["bars"]) == len(timeline["bars"])
    finally:
        panel.close()
