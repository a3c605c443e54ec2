"""Issue 13 §3: the panel's drill-down on extreme values, and a panel collected at shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.views.panel import TracePanel

pytestmark = pytest.mark.timeout(180)

EXTREMES = {
    "equal-int64-timestamps": np.full(8, 1_700_000_000_123_456_789, np.int64),
    "neighbouring-int64": np.array([1_700_000_000_000_000_000, 1_700_000_000_000_000_512], np.int64),
    "uint64-max": np.array([0, np.iinfo(np.uint64).max, np.iinfo(np.uint64).max], np.uint64),
    "float64-extremes": np.array([-1.7e308, 0.0, 1.7e308, np.inf, np.nan]),
    "one-value": np.array([3.5]),
}


def identity(x: np.ndarray) -> np.ndarray:
    return x


@pytest.mark.parametrize("name", list(EXTREMES))
def test_drill_down_on_extreme_values_shows_a_histogram(name: str) -> None:
    values = EXTREMES[name]
    with npi.trace(capture="full") as t:
        npi.numpy_function(identity, [values], tf.as_dtype(values.dtype))
    panel = TracePanel(t)
    try:
        panel.selected_seq = t.invocations[0].seq  # raised ValueError: Too many bins
        histogram = panel.detail["inputs"][0]["histogram"]
    finally:
        panel.close()
    finite = values[np.isfinite(values.astype(np.float64))].astype(np.float64)
    assert sum(histogram["counts"]) == finite.size
    assert histogram["low"] == finite.min() and histogram["high"] == finite.max()
    if finite.min() == finite.max():
        assert histogram["counts"] == [finite.size]
    else:
        assert histogram["counts"][0] >= 1 and histogram["counts"][-1] >= 1


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=150,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_a_panel_collected_while_modules_are_torn_down_prints_nothing() -> None:
    """At shutdown the modules' globals become None before the widgets are collected; ipywidgets'
    ``__del__`` then closed the panel, which printed 'Exception ignored in: Widget.__del__'."""
    done = run_python("""
        import gc
        import comm
        import numpy as np, tensorflow as tf
        import ipywidgets.widgets.widget as widgets
        import tfnp_inspect as npi
        from tfnp_inspect.views.panel import feed

        npi.install()
        npi.numpy_function(lambda x: x * 2, [np.ones(3, np.float32)], tf.float32)
        panel = npi.TracePanel(npi.recorder())
        feed.threading = None  # what finalization does to a module's globals
        widgets._instances.pop(panel.model_id)  # what held the panel: ipywidgets and the comm
        comm.get_comm_manager().comms.pop(panel.comm.comm_id)
        del panel
        gc.collect()
        print("end")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "end", done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_panels_left_open_at_exit_print_nothing() -> None:
    done = run_python("""
        import numpy as np, tensorflow as tf
        import tfnp_inspect as npi

        npi.install(capture="full")
        for _ in range(3):
            npi.numpy_function(lambda x: x * 2, [np.ones(3, np.float32)], tf.float32)
        with npi.trace(capture="full") as t:
            npi.numpy_function(lambda x: x + 1, [np.ones(3, np.float32)], tf.float32)
        live = npi.TracePanel(npi.recorder(), interval=0.01)
        done = npi.TracePanel(t)
        done.selected_seq = t.invocations[0].seq
        closed = npi.TracePanel(t)
        closed.close()

        class Cycle:
            pass

        cycle = Cycle()
        cycle.self, cycle.panel = cycle, npi.TracePanel(npi.recorder())
        del cycle
        try:
            npi.TracePanel(t, interval=-1)
        except ValueError:
            pass
        print("end")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "end", done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
