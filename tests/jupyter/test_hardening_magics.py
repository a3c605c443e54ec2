"""Issue 13 §4, the newcomer's path through the magics: the panel in a terminal, plurals, a bare
``%npfunc``, and ``print(trace)`` with the violations the magic's summary lists."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.utils.capture import capture_output

import tfnp_inspect as npi

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

DEFINITIONS = """
import numpy as np
import tensorflow as tf
import tfnp_inspect as npi

def mutate(x):
    x[0] = 100.0
    return x + 0

@tf.function
def pipeline(x):
    return tf.numpy_function(mutate, [x], tf.float32)
"""


# ``shell`` (tests/jupyter/conftest.py) is a plain InteractiveShell: what terminal IPython is to the
# magics (no kernel, no widgets), with this module's DEFINITIONS run.


def run(shell: Any, cell: str) -> Any:
    with capture_output() as captured:
        shell.run_cell(cell)
    return captured


def test_panel_in_a_terminal_prints_a_text_view(shell: Any) -> None:
    run(shell, "%npfunc on")
    run(shell, "pipeline(tf.constant([1.0, 2.0]))")
    ran = run(shell, "%npfunc panel")
    shown = ran.stdout + "".join(o.data.get("text/plain", "") for o in ran.outputs)
    assert "TracePanel object at 0x" not in shown
    assert "application/vnd.jupyter.widget-view+json" not in str([o.data for o in ran.outputs])
    assert "1 call of 1 function" in ran.stdout and "[mutated-input] mutate" in ran.stdout
    assert "newest 1 invocation (of 1 kept)" in ran.stdout and "mutated-input" in ran.stdout
    assert "needs a Jupyter front-end" in ran.stdout

    cell = run(shell, "%%npfunc --panel\npipeline(tf.constant([1.0, 2.0]))")
    assert "TracePanel object at 0x" not in cell.stdout and not [
        o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.data
    ]


def test_a_panel_shown_where_widgets_cannot_be_drawn_reads_as_text(shell: Any) -> None:
    """jupyter console, or a notebook rendered as text, shows the bundle's text/plain."""
    panel_module = pytest.importorskip("tfnp_inspect.views.panel")
    with npi.trace() as trace:
        shell.run_cell("pipeline(tf.constant([1.0, 2.0]))")
    panel = panel_module.TracePanel(trace)
    try:
        bundle = panel._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        assert "application/vnd.jupyter.widget-view+json" in data
        assert data["text/plain"].startswith("tfnp_inspect: 1 call of 1 function")
        assert "[mutated-input] mutate" in data["text/plain"]
    finally:
        panel.close()


def test_counts_of_one_are_singular(shell: Any) -> None:
    run(shell, "%npfunc on")
    run(shell, "pipeline(tf.constant([1.0, 2.0]))")
    off = run(shell, "%npfunc off").stdout
    assert "1 invocation kept" in off and "1 invocations" not in off


def test_bare_npfunc_lists_the_subcommands(shell: Any) -> None:
    for line in ("%npfunc", "%npfunc --capture full"):
        ran = run(shell, line)
        assert "required" not in ran.stderr, ran.stderr
        assert "needs a subcommand" in ran.stderr
        for subcommand in ("on [options]", "off", "status", "show [N]", "export PATH", "panel", "replay SEQ"):
            assert subcommand in ran.stderr
        assert "Traceback" not in ran.stderr + ran.stdout


def test_print_trace_lists_the_violations_like_the_magic(shell: Any) -> None:
    with npi.trace() as trace:
        shell.run_cell("pipeline(tf.constant([1.0, 2.0]))")
    printed = str(trace)
    assert printed.startswith("tfnp_inspect: 1 call of 1 function · 1 violation")
    assert "1 violation:\n  [mutated-input] mutate, call #" in printed
    assert trace.violations[0].message in printed
    magic = run(shell, "%%npfunc\npipeline(tf.constant([1.0, 2.0]))")
    summary = "".join(o.data.get("text/plain", "") for o in magic.outputs)
    # the same sections in the same order as the magic's summary
    assert summary.startswith("tfnp_inspect: 1 call of 1 function · 1 violation")
    for text in (summary, printed):
        table = text.index("function  calls")
        assert table < text.index("1 violation:\n  [mutated-input] mutate, call #") < text.rindex("Fix:")
