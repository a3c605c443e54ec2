"""Running cells in a real IPython ``InteractiveShell`` and capturing what they printed and showed.

The ``ipython`` and ``shell`` fixtures live in this tier's ``conftest.py``; a test module that uses
``shell`` defines ``DEFINITIONS``, the code its cells rely on (run once the extension is loaded).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output


class Ran(NamedTuple):
    result: ExecutionResult
    stdout: str
    stderr: str
    outputs: list[dict[str, Any]]  # MIME bundles shown with display()

    @property
    def text(self) -> str:
        return "\n".join(o.get("text/plain", "") for o in self.outputs)

    @property
    def html(self) -> str:
        return "\n".join(o.get("text/html", "") for o in self.outputs)


def run(shell: InteractiveShell, cell: str) -> Ran:
    with capture_output() as captured:
        result = shell.run_cell(cell, store_history=True)
    return Ran(result, captured.stdout, captured.stderr, [o.data for o in captured.outputs])
