"""The demo notebooks run top to bottom in a real kernel and show what their stories promise.

Each notebook is executed with nbclient in a fresh ``python3`` kernel of this interpreter (the
runner of ``demo_notebooks/execute_all.py``): a failing cell fails the test unless it is tagged
``raises-exception``, and a tagged cell must really raise. The story checks read the outputs:
the inspector's findings, and the TensorFlow behaviour each notebook claims to show.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "demo_notebooks"
RAISES = "raises-exception"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_execute_all", NOTEBOOK_DIR / "execute_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


# -- reading executed notebooks -------------------------------------------------------------------


def output_text(output: nbformat.NotebookNode) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    return output.get("data", {}).get("text/plain", "")


def cell_text(cell: nbformat.NotebookNode) -> str:
    return "\n".join(output_text(o) for o in cell.get("outputs", []))


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell_text(c) for c in notebook.cells if c.cell_type == "code")


def cell_with(notebook: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """The one code cell whose source contains ``source``."""
    found = [c for c in notebook.cells if c.cell_type == "code" and source in c.source]
    assert len(found) == 1, f"{len(found)} cells contain {source!r}"
    return found[0]


def errors(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def tagged_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if RAISES in c.get("metadata", {}).get("tags", [])]


# -- the stories ------------------------------------------------------------------------------------


def quickstart(nb: nbformat.NotebookNode) -> None:
    summary = cell_text(cell_with(nb, "%%npfunc -o trace"))
    assert "5 calls of 1 function" in summary and "No violations." in summary
    shown = cell_text(cell_with(nb, "%npfunc show 3"))
    assert shown.count("robust_scale") == 3 and "graph" in shown
    panel = cell_with(nb, "TracePanel(trace)")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in panel.outputs)
    session = cell_text(cell_with(nb, "%npfunc on"))
    assert "process-wide recording: on" in session and "2 of 2 calls kept" in session


def aliasing_trap(nb: nbformat.NotebookNode) -> None:
    eager = cell_text(cell_with(nb, "for run in range(3):\n    scaled = tf.numpy_function"))
    assert eager.count("pixels = [  0.  51. 255.]") == 3  # eager mode worked on copies
    graph = cell_text(cell_with(nb, "    scaled = scale_pixels()"))
    assert "run 2" in graph and "255." not in graph  # the captured constant drifted
    assert "mutated-input" in cell_text(cell_with(nb, "%%npfunc\npixels = tf.constant"))
    reuse = cell_text(cell_with(nb, "def to_unit_range_reusing"))
    assert "first image, after the next call:  [0. 0. 0. 0.]" in reuse  # rewritten after the fact
    assert "retained-reference" in cell_text(cell_with(nb, "%%npfunc -o reuse_trace"))
    fixed = cell_text(cell_with(nb, "%%npfunc -o fixed"))
    assert "0 violations" in fixed and "first image, after the next call: [1. 1. 1. 1.]" in fixed


def stateless_trap(nb: nbformat.NotebookNode) -> None:
    folded = cell_text(cell_with(nb, "%%npfunc -o folded"))
    assert "1 call of 1 function" in folded and "hidden-state" in folded  # 8 images, 1 call
    (factors,) = [line for line in folded.splitlines() if line.startswith("[") and line.endswith("]")]
    assert len(factors.strip("[]").split(", ")) == 8  # one factor per image ...
    assert len(set(factors.strip("[]").split(", "))) == 1, factors  # ... all the same "random" one
    noisy = cell_text(cell_with(nb, "%%npfunc -o noisy"))
    assert "16 calls of 1 function" in noisy and "nondeterministic" in noisy
    assert "8 calls of 1 function" in cell_text(cell_with(nb, "%%npfunc -o honest"))
    assert "0 violations" in cell_text(cell_with(nb, "%%npfunc -o pure"))


def tout_trap(nb: nbformat.NotebookNode) -> None:
    eager = cell_text(cell_with(nb, 'print("Tout=tf.float32, got"'))
    assert "got float64" in eager and "got a list of 2 tensors" in eager
    failing = tagged_cells(nb)
    assert len(failing) == 2
    for cell in failing:
        (error,) = errors(cell)
        assert error.ename == "InvalidArgumentError" and "pyfunc_" in error.evalue
    explained = cell_text(failing[1])
    assert "[tout-mismatch] class_weights" in explained and "float64 where Tout declares float32" in explained
    found = cell_text(cell_with(nb, "for violation in eager_trace.violations"))
    assert "class_weights: tout-mismatch" in found and "mean_and_std: tout-mismatch" in found
    assert "0 violations" in cell_text(cell_with(nb, "%%npfunc -o fixed"))


def tfdata_pipeline(nb: nbformat.NotebookNode) -> None:
    slow = cell_text(cell_with(nb, "%%npfunc -o slow"))
    assert "192 calls of 3 functions" in slow
    for name in ("random_crop", "color_jitter", "gamma_correct"):
        assert name in slow
    assert "Dummy-" in cell_text(cell_with(nb, "Counter(call.thread_name"))  # TF's own threads
    assert "gamma_lookup" in cell_text(cell_with(nb, "%%npfunc -o fast"))
    overhead = cell_text(cell_with(nb, "def epoch(options)"))
    for label in ("not recorded", "recorded (defaults)", "recorded (lean)"):
        assert label in overhead
    assert overhead.count("(192 calls recorded per epoch)") == 2  # both recordings saw every call


def post_mortem(nb: nbformat.NotebookNode) -> None:
    assert "[nonfinite] standardize" in cell_text(cell_with(nb, "%%npfunc --capture full -o run"))
    assert "still defined: []" in cell_text(cell_with(nb, 'print("still defined:"'))
    assert "loaded from" in cell_text(cell_with(nb, "loaded = tfnp_inspect.load("))
    (failing,) = tagged_cells(nb)
    assert [e.ename for e in errors(failing)] == ["ReplayError"]
    reproduced = cell_text(cell_with(nb, "replay(bad, func=standardize)"))
    assert "replay of #" in reproduced and "matches the recorded call" in reproduced
    noise = cell_text(cell_with(nb, 'print("matches:", noise_replay.matches)'))
    assert "matches: False" in noise and "values differ" in noise
    assert "all finite now: True" in cell_text(cell_with(nb, "standardize_guarded"))


def slow_and_shapeless(nb: nbformat.NotebookNode) -> None:
    (failing,) = tagged_cells(nb)
    (error,) = errors(failing)
    assert error.ename == "ValueError" and "unknown" in error.evalue  # Keras needs the shapes first
    assert "shape=<unknown>" in cell_text(failing)
    peek = cell_text(cell_with(nb, "%%npfunc -o peek"))
    assert "[unknown-shape] normalize" in peek
    assert "`y0.set_shape([32, 32, 3])`; `y1.set_shape([])`" in peek
    assert "normalize(int64[]) -> float32[32,32,3], int64[]" in peek
    shapes = cell_text(cell_with(nb, "%npfunc shapes"))
    assert "set_shape([32, 32, 3])" in shapes and "set_shape([])" in shapes
    slow = cell_text(cell_with(nb, "%%npfunc -o slow"))
    assert "one epoch in" in slow and "[serialized] normalize" in slow and "[unknown-shape]" not in slow
    assert "in flight (mean)" in slow and "(256 calls)" in slow
    panel = cell_with(nb, "TracePanel(slow)")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in panel.outputs)
    fast = cell_text(cell_with(nb, "%%npfunc -o fast"))
    assert "normalize_batch" in fast and "[serialized]" not in fast and "[unknown-shape]" not in fast
    assert "in 16 calls after" in cell_text(cell_with(nb, "%npfunc stats"))
    assert "[retraced] jitter" in cell_text(cell_with(nb, "%%npfunc -o retraced"))
    verdict = cell_text(cell_with(nb, 'for name, trace in [("python floats"'))
    assert "python floats: jitter built into 16 op(s); hints: ['retraced']" in verdict
    assert "tensors      : jitter built into 1 op(s); hints: []" in verdict


STORIES: dict[str, Callable[[nbformat.NotebookNode], None]] = {
    "01_quickstart.ipynb": quickstart,
    "02_aliasing_trap.ipynb": aliasing_trap,
    "03_stateless_trap.ipynb": stateless_trap,
    "04_tout_trap.ipynb": tout_trap,
    "05_tfdata_pipeline.ipynb": tfdata_pipeline,
    "06_post_mortem.ipynb": post_mortem,
    "07_slow_and_shapeless.ipynb": slow_and_shapeless,
}


def test_every_demo_notebook_has_a_story() -> None:
    assert [p.name for p in runner.demo_notebooks()] == sorted(STORIES)


@pytest.mark.parametrize("name", sorted(STORIES))
def test_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(STORIES))
def test_notebook_runs_and_tells_its_story(name: str) -> None:
    executed = runner.execute_notebook(NOTEBOOK_DIR / name)  # raises on an untagged failing cell
    for cell in tagged_cells(executed):
        assert errors(cell), f"cell tagged {RAISES!r} did not raise:\n{cell.source}"
    STORIES[name](executed)
