#!/usr/bin/env bash
# The README's "main job": sets everything up, then opens the demo notebooks in JupyterLab.
#   bash demo_notebooks/run.sh            # JupyterLab on the quickstart (prints the URL to open)
#   bash demo_notebooks/run.sh --execute  # run every demo headless, write HTML copies to demo_notebooks/_executed/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/bootstrap
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if [ "${1:-}" = "--execute" ]; then
    exec .venv/bin/python demo_notebooks/execute_all.py
fi
exec .venv/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 demo_notebooks/01_quickstart.ipynb
