"""``%load_ext tfnp_inspect``, ``%%npfunc`` and ``%npfunc``, driven through a real IPython shell."""

from __future__ import annotations

import html
import io
import re
import sys

import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.recording.trace import Trace

from shell_helpers import run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

# What "earlier cells" of a notebook define: the functions exist before any magic runs.
DEFINITIONS = """
import numpy as np
import tensorflow as tf

def scale(x):
    return x * 2

def mutate(x):
    x[0] = 100.0
    return x + 0

def noisy(x):
    return x + np.random.default_rng().normal(size=x.shape).astype(np.float32)

def load_rows(x):
    return x + 1

@tf.function
def pipeline(x):
    y = tf.numpy_function(mutate, [x], tf.float32)
    return tf.numpy_function(scale, [y], tf.float32)

@tf.function
def loader(x):
    return tf.numpy_function(noisy, [tf.numpy_function(load_rows, [x], tf.float32)], tf.float32)

def data():
    return tf.constant([1.0, 2.0, 3.0])  # a fresh buffer: mutate() changes it every time
"""


def test_cell_magic_shows_a_summary_in_text_and_html(shell):
    ran = run(shell, "%%npfunc -o t\npipeline(data())\npipeline(data())")
    recorded = shell.user_ns["t"]

    assert ran.result.success
    (summary,) = ran.outputs
    assert set(summary) == {"text/plain", "text/html"}
    text, page = summary["text/plain"], summary["text/html"]
    assert text.startswith("tfnp_inspect: 4 calls of 2 functions · 2 violations")
    assert re.search(r"^mutate\s+2\s+0\s", text, re.MULTILINE)
    assert re.search(r"^scale\s+2\s+0\s", text, re.MULTILINE)
    violation = recorded.violations[0]
    assert violation.kind == "mutated-input" and violation.call_site.startswith("<ipython-input-")
    assert f"[mutated-input] mutate, calls #{violation.seq}" in text and violation.call_site in text
    assert '<span class="tag warn">mutated-input ×2</span>' in page
    assert f"<td>{html.escape(violation.call_site)}</td>" in page
    assert not npi.is_active()


def test_cell_keeps_ipython_behaviour(shell):
    ran = run(shell, "%%npfunc --quiet\nvalue = pipeline(data()).numpy().tolist()\nvalue")

    assert ran.result.result == [200.0, 4.0, 6.0]
    assert shell.user_ns["_"] == [200.0, 4.0, 6.0]
    assert f"Out[{ran.result.execution_count}]: [200.0, 4.0, 6.0]" in ran.stdout
    assert shell.user_ns["value"] == [200.0, 4.0, 6.0]


def test_error_in_the_cell_propagates_once_and_the_summary_still_shows(shell):
    failing = "pipeline(data())\nraise ValueError('boom')"
    without = run(shell, failing)
    ran = run(shell, "%%npfunc\n" + failing)

    assert type(ran.result.error_in_exec) is type(without.result.error_in_exec) is ValueError
    assert str(ran.result.error_in_exec) == "boom"
    assert ran.stdout.count("Traceback") == without.stdout.count("Traceback") == 1
    assert "ValueError: boom" in ran.stdout
    assert ran.text.startswith("tfnp_inspect: 2 calls of 2 functions · 1 violation")
    assert not npi.is_active()


def test_error_inside_numpy_function_propagates_as_tensorflow_raises_it(shell):
    run(shell, "def broken(x):\n    raise KeyError('gone')")
    ran = run(shell, "%%npfunc\ntf.function(lambda x: tf.numpy_function(broken, [x], tf.float32))(data())")

    assert isinstance(ran.result.error_in_exec, tf.errors.UnknownError)
    assert re.search(r"^broken\s+1\s+1\s", ran.text, re.MULTILINE)  # one call, one error


def test_keyboard_interrupt_stops_the_cell_with_tracing_off(shell):
    ran = run(shell, "%%npfunc\npipeline(data())\nraise KeyboardInterrupt\nreached = True")

    assert isinstance(ran.result.error_in_exec, KeyboardInterrupt)
    assert "reached" not in shell.user_ns
    assert not npi.is_active() and not npi.is_installed()
    assert ran.text.startswith("tfnp_inspect: 2 calls")


def test_strict_mode_fails_the_cell_at_the_violation(shell):
    ran = run(shell, "%%npfunc --strict\npipeline(data())")

    assert isinstance(ran.result.error_in_exec, tf.errors.UnknownError)
    assert "ViolationError" in str(ran.result.error_in_exec)
    assert "[mutated-input] mutate" in ran.text


def test_quiet_shows_only_violations_and_nothing_when_there_are_none(shell):
    noisy = run(shell, "%%npfunc --quiet\npipeline(data())")
    assert noisy.text.startswith("1 violation:") and "bytes in" not in noisy.text

    silent = run(shell, "%%npfunc --quiet\nloader(data())")
    assert silent.result.success and silent.outputs == []


def test_filter_limits_the_summary_to_matching_functions(shell):
    wildcard = run(shell, "%%npfunc --filter 'load_*'\nloader(data())\npipeline(data())")
    assert "1 call of 1 function" in wildcard.text
    assert re.search(r"^load_rows\s+1", wildcard.text, re.MULTILINE)
    assert "mutate" not in wildcard.text and "noisy" not in wildcard.text

    regex = run(shell, "%%npfunc --filter 're:^(mutate|noisy)$'\nloader(data())\npipeline(data())")
    assert "2 of 4 functions match the filter" in regex.text
    assert "[mutated-input] mutate" in regex.text and "load_rows" not in regex.text


def test_output_variable_holds_the_trace_and_options_reach_the_recorder(shell):
    ran = run(shell, "%%npfunc -o recorded --capture full --capacity 3 --no-checks\npipeline(data())\npipeline(data())")
    recorded = shell.user_ns["recorded"]

    assert ran.result.success
    assert isinstance(recorded, Trace)
    assert recorded.total == 4 and len(recorded) == 3 and recorded.violations == []
    assert recorded.recorder.options.capture == "full"
    assert all(inv.captured for inv in recorded.invocations)


def test_cell_magic_documents_its_options(shell):
    ran = run(shell, "%%npfunc?")
    for option in ("--capacity N", "--capture", "--checks KINDS", "--no-checks", "--strict", "--quiet",
                   "--panel", "--filter PATTERN", "-o VAR"):
        assert option in ran.stdout
    assert "%%npfunc [--capacity N]" in ran.stdout

    line = run(shell, "%npfunc?")
    assert "replay SEQ" in line.stdout and "debug SEQ" in line.stdout and "export PATH" in line.stdout


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%npfunc --bogus\nran = True", "unrecognized arguments: --bogus"),
        ("%%npfunc --capture everything\nran = True", "argument --capture: invalid choice: 'everything'"),
        ("%%npfunc --checks nonsense\nran = True", "option 'checks' has unknown kind 'nonsense'"),
        ("%%npfunc --checks mutated-input --no-checks\nran = True", "give --checks or --no-checks, not both"),
        ("%%npfunc --capacity 0\nran = True", "option 'capacity' must be >= 1"),
        ("%%npfunc --capacity many\nran = True", "argument --capacity: invalid int value: 'many'"),
        ("%%npfunc -o 1x\nran = True", "-o needs a variable name, not '1x'"),
        ("%%npfunc --filter 're:('\nran = True", "--filter: bad regular expression '('"),
        ("%npfunc", "%npfunc needs a subcommand, one of: on [options], off, status, show [N]"),
        ("%npfunc bogus", "argument command: invalid choice: 'bogus'"),
        ("%npfunc show many", "N must be a whole number, not 'many'"),
        ("%npfunc show 0", "N must be at least 1, got 0"),
        ("%npfunc replay", "'replay' takes one argument, got 0"),
        ("%npfunc status now", "'status' takes no arguments, got 1"),
        ("%npfunc show --capture full", "recording options apply to '%npfunc on' only"),
        ("%npfunc export 'unbalanced", "No closing quotation"),
    ],
)
def test_bad_usage_prints_a_short_message_and_runs_nothing(shell, cell, message):
    ran = run(shell, cell)

    assert ran.result.success, ran.result.error_in_exec
    assert f"UsageError: {message}" in ran.stderr
    magic = "%%npfunc" if cell.startswith("%%") else "%npfunc"
    assert f"usage: {magic} [--capacity N]" in ran.stderr and f"(see {magic}? for details)" in ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "ran" not in shell.user_ns and not npi.is_active()


def test_replay_matches_a_pure_function_and_differs_for_a_noisy_one(shell):
    run(shell, "%%npfunc --capture full -o t\nloader(data())\npipeline(data())")
    seq = {inv.func_name: inv.seq for inv in shell.user_ns["t"].invocations}

    pure = run(shell, f"%npfunc replay {seq['scale']}")
    assert pure.text.startswith(f"replay of #{seq['scale']} scale: matches the recorded call")
    assert "matches the recorded call" in pure.outputs[0]["text/html"]

    noisy = run(shell, f"%npfunc replay #{seq['noisy']}")
    assert noisy.text.startswith(f"replay of #{seq['noisy']} noisy: differs from the recorded call")
    assert "output 0: 3 of 3 values differ (max abs difference" in noisy.text


def test_replay_problems_are_reported_without_traceback(shell):
    run(shell, "%%npfunc -o t\npipeline(data())")
    seq = shell.user_ns["t"].invocations[0].seq

    not_captured = run(shell, f"%npfunc replay {seq}")
    assert "input 0 was not captured" in not_captured.stderr and "capture='full'" in not_captured.stderr
    unknown = run(shell, "%npfunc replay 999999")
    assert "no invocation #999999" in unknown.stderr
    assert "Traceback" not in not_captured.stdout + unknown.stdout


def test_debug_runs_the_replay_under_the_debugger(shell, monkeypatch):
    run(shell, "%%npfunc --capture full -o t\npipeline(data())")
    seq = next(inv.seq for inv in shell.user_ns["t"].invocations if inv.func_name == "scale")

    monkeypatch.setattr(sys, "stdin", io.StringIO("p x.tolist()\nc\n"))
    ran = run(shell, f"%npfunc debug {seq}")
    assert "return x * 2" in ran.stdout  # the debugger stopped on the function's first line
    assert "ipdb> [100.0, 2.0, 3.0]" in ran.stdout  # and answered 'p x.tolist()' with the captured input
    assert ran.text.startswith(f"replay of #{seq} scale: matches the recorded call")

    monkeypatch.setattr(sys, "stdin", io.StringIO("q\n"))
    quit_early = run(shell, f"%npfunc debug {seq}")
    assert "debugger quit before the call returned" in quit_early.stdout and quit_early.outputs == []


def test_process_wide_recording_commands(shell):
    on = run(shell, "%npfunc on --capture full --checks mutated-input")
    assert npi.is_installed() and "capture=full" in on.stdout and "checks=mutated-input" in on.stdout
    run(shell, "pipeline(data())")  # no cell magic: recorded process-wide

    status = run(shell, "%npfunc status").stdout
    assert "process-wide recording: on (capture=full, capacity=10000, checks=mutated-input)" in status
    assert "recorder(): 2 of 2 calls kept, 0 dropped, 1 violation" in status
    shown = run(shell, "%npfunc show 1").text
    assert len(shown.splitlines()) == 3 and re.search(r"#\d+\s+scale\s+graph", shown)
    assert re.search(r"^mutate\s+1\s+0\s", run(shell, "%npfunc stats").text, re.MULTILINE)
    assert "[mutated-input] mutate, call #" in run(shell, "%npfunc violations").text
    seq = npi.recorder().invocations()[-1].seq
    assert "matches the recorded call" in run(shell, f"%npfunc replay {seq}").text

    off = run(shell, "%npfunc off")
    assert not npi.is_installed() and "2 invocations kept" in off.stdout
    assert "not on" in run(shell, "%npfunc off").stdout
    run(shell, "%npfunc clear")
    assert npi.recorder().invocations() == [] and "No violations." in run(shell, "%npfunc violations").text


def test_commands_read_the_last_cell_trace_while_recording_is_off(shell):
    run(shell, "%%npfunc\nloader(data())")
    assert re.search(r"^load_rows\s+1", run(shell, "%npfunc stats").text, re.MULTILINE)
    assert "last %%npfunc cell: 2 calls, 0 violations" in run(shell, "%npfunc status").stdout


def test_export_writes_a_trace_that_loads_back(shell, tmp_path):
    pytest.importorskip("tfnp_inspect.io")
    run(shell, "%%npfunc\npipeline(data())")
    path = tmp_path / "cell trace.json"

    ran = run(shell, f"%npfunc export '{path}'")
    assert f"exported 2 invocations to {path}" in ran.stdout
    loaded = npi.load(path)
    assert sorted(inv.func_name for inv in loaded.invocations) == ["mutate", "scale"]

    failed = run(shell, f"%npfunc export '{tmp_path / 'missing' / 'dir' / 'x.json'}'")
    assert "could not export" in failed.stderr and "Traceback" not in failed.stdout


def test_panel_option_displays_the_live_panel_before_the_summary(shell, monkeypatch):
    pytest.importorskip("tfnp_inspect.views.panel")
    monkeypatch.setattr(shell, "kernel", object(), raising=False)  # a Jupyter kernel draws widgets
    ran = run(shell, "%%npfunc --panel\npipeline(data())")

    assert "application/vnd.jupyter.widget-view+json" in ran.outputs[0]
    assert ran.outputs[-1]["text/plain"].startswith("tfnp_inspect: 2 calls")
    panel = run(shell, "%npfunc panel")
    assert "application/vnd.jupyter.widget-view+json" in panel.outputs[0]


def test_unload_restores_everything(shell):
    run(shell, "%npfunc on")
    assert npi.is_installed()

    shell.run_line_magic("unload_ext", "tfnp_inspect")

    assert not npi.is_installed() and not npi.is_active()
    assert shell.find_line_magic("npfunc") is None and shell.find_cell_magic("npfunc") is None
    assert "NpFuncMagics" not in dict(shell.magics_manager.registry)
    shell.run_line_magic("load_ext", "tfnp_inspect")
    assert shell.find_cell_magic("npfunc") is not None


def test_unload_leaves_recording_that_the_user_started(shell):
    npi.install()
    try:
        shell.run_line_magic("unload_ext", "tfnp_inspect")
        assert npi.is_installed()
    finally:
        npi.uninstall()
