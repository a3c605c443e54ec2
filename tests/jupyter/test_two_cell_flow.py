"""The headline notebook flow (issue 12), in a real Jupyter kernel driven by nbclient.

Dataset and model are defined in one cell; the next cell wraps ``model.fit`` in ``%%npfunc``.
The graph of the dataset is built BEFORE recording starts, so the summary can only report
the bug if every PyFunc op keeps its declaration from ``%load_ext tfnp_inspect`` on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.timeout(300)

KERNEL_NAME = "python3"  # the ipykernel of the interpreter running the tests (this venv)
CELL_TIMEOUT_S = 120
TF_ERROR = "is double, but expects float"

DEFINE = """
import numpy as np
import tensorflow as tf
import keras


def load_features(i):
    rng = np.random.default_rng(int(i))
    return rng.random(4){cast}


def to_example(i):
    x = tf.numpy_function(load_features, [i], tf.float32)
    x.set_shape([4])
    return x, tf.reduce_sum(x, keepdims=True)


ds = tf.data.Dataset.range(16).map(to_example).batch(4).repeat()
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
"""

FIT = """%%npfunc
history = model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
"""

AFTER = """print("losses:", len(history.history["loss"]))"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def build_notebook(path: Path, cast: str, fit_fails: bool) -> None:
    fit_cell = nbformat.v4.new_code_cell(FIT)
    if fit_fails:
        fit_cell.metadata["tags"] = ["raises-exception"]
    cells = [
        nbformat.v4.new_code_cell("%load_ext tfnp_inspect"),
        nbformat.v4.new_code_cell(DEFINE.replace("{cast}", cast)),
        fit_cell,
        nbformat.v4.new_code_cell("%npfunc violations"),
    ]
    if not fit_fails:
        cells.append(nbformat.v4.new_code_cell(AFTER))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def execute(path: Path) -> Any:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return notebook


def texts(cell: Any) -> tuple[str, str]:
    """(what the cell displayed or printed, the text of its error if any)."""
    shown, error = [], []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            shown.append(output.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            data = output.get("data", {})
            shown.extend(str(data[mime]) for mime in ("text/plain", "text/html") if mime in data)
        elif kind == "error":
            error.append(f"{output.get('ename')}: {output.get('evalue')}")
            error.extend(_ANSI.sub("", line) for line in output.get("traceback", []))
    return "\n".join(shown), "\n".join(error)


def test_npfunc_around_fit_reports_the_tout_mismatch_tf_fails_on(tmp_path: Path) -> None:
    """Real program: the notebook user defines a dataset whose loader returns float64 for
    ``Tout=tf.float32`` in one cell and runs ``%%npfunc`` around ``model.fit`` in the next."""
    path = tmp_path / "two_cells_buggy.ipynb"
    build_notebook(path, cast="", fit_fails=True)
    cells = execute(path).cells
    shown, error = texts(cells[2])
    assert TF_ERROR in error, f"the fit cell did not fail with TF's error:\nerror: {error[-3000:]}\nshown: {shown[-3000:]}"
    assert "tout-mismatch" in shown, f"the %%npfunc summary does not report a tout-mismatch:\n{shown[-4000:]}"
    assert "No violations" not in shown, f"the summary says 'No violations' above a failed cell:\n{shown[-4000:]}"
    listed, listed_error = texts(cells[3])
    assert not listed_error, listed_error
    assert "tout-mismatch" in listed and "load_features" in listed, \
        f"%npfunc violations does not list the tout-mismatch of load_features:\n{listed[-4000:]}"


def test_npfunc_around_fit_of_correct_twin_is_clean(tmp_path: Path) -> None:
    """Real program: the same two-cell notebook with a loader that returns float32."""
    path = tmp_path / "two_cells_correct.ipynb"
    build_notebook(path, cast=".astype(np.float32)", fit_fails=False)
    cells = execute(path).cells  # raises CellExecutionError if any cell fails
    shown, error = texts(cells[2])
    assert not error, error
    assert "tout-mismatch" not in shown, f"a correct loader got a tout-mismatch:\n{shown[-4000:]}"
    listed, _ = texts(cells[3])
    assert "No violations" in listed, f"%npfunc violations is not empty:\n{listed[-4000:]}"
    after, _ = texts(cells[4])
    assert "losses: 1" in after, after
