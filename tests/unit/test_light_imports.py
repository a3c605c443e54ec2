"""What importing the package pulls in: the core, file formats and panel state stay light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "IPython", "ipywidgets", "anywidget", "pandas")


def test_core_io_and_panel_state_import_no_framework():
    code = (
        "import sys, tfnp_inspect, tfnp_inspect.io, tfnp_inspect.views.render, "
        "tfnp_inspect.views.panel.state, tfnp_inspect.views.panel.feed; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
