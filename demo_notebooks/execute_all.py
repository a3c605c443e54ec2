"""Run every demo notebook headless and write HTML copies to ``demo_notebooks/_executed/``.

``bash demo_notebooks/run.sh --execute`` calls this; the tests import :func:`execute_notebook`.
Each notebook runs in a fresh ``python3`` kernel of the interpreter running this script (the
project's virtual environment), with ``demo_notebooks/`` as its working directory. A cell that
fails stops its notebook, except cells tagged ``raises-exception``, which demonstrate an error.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

NOTEBOOK_DIR = Path(__file__).resolve().parent
OUTPUT_DIR = NOTEBOOK_DIR / "_executed"
KERNEL_NAME = "python3"
#: Seconds one cell may take; every notebook is meant to finish in well under a minute.
CELL_TIMEOUT_S = 120
#: How a notebook run fails: a cell raised, ran too long, or the kernel died.
RUN_FAILURES = (CellExecutionError, CellTimeoutError, DeadKernelError)


def demo_notebooks() -> list[Path]:
    """The demo notebooks, in reading order."""
    return sorted(NOTEBOOK_DIR.glob("0*.ipynb"))


def execute_notebook(path: Path, timeout: int = CELL_TIMEOUT_S) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` in a fresh kernel and return it with its outputs.

    Raises :class:`nbclient.exceptions.CellExecutionError` when a cell without the
    ``raises-exception`` tag fails (``CellTimeoutError`` when one runs past ``timeout``
    seconds, ``DeadKernelError`` when the kernel dies). The file on disk is left untouched.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env={"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ})  # quieter TF unless told otherwise
    return notebook


def write_html(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """Save an executed notebook as ``OUTPUT_DIR/<name>.html``."""
    body, _ = HTMLExporter().from_notebook_node(notebook)
    OUTPUT_DIR.mkdir(exist_ok=True)
    target = OUTPUT_DIR / f"{path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return target


def main() -> int:
    notebooks = demo_notebooks()
    if not notebooks:
        print(f"no demo notebooks found in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    failed = []
    for path in notebooks:
        start = time.perf_counter()
        try:
            executed = execute_notebook(path)
        except RUN_FAILURES as error:
            failed.append(path.name)
            print(f"FAILED {path.name} after {time.perf_counter() - start:.1f} s\n{error}", file=sys.stderr)
            continue
        target = write_html(executed, path)
        print(f"ok     {path.name} in {time.perf_counter() - start:.1f} s -> {target.relative_to(NOTEBOOK_DIR.parent)}")
    if failed:
        print(f"{len(failed)} of {len(notebooks)} notebooks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(notebooks)} notebooks ran; HTML copies in {OUTPUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
