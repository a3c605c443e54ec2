"""A missing optional extra gives an error that names the extra to install."""

from __future__ import annotations

import subprocess
import sys


def test_panel_without_anywidget_names_the_jupyter_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules['anywidget'] = None  # as if the extra were not installed\n"
        "import tfnp_inspect as npi\n"
        "try:\n"
        "    npi.TracePanel\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'tfnp-inspect[jupyter]'" in done.stdout
    assert "anywidget" in done.stdout
