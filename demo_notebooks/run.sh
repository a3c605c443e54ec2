#!/usr/bin/env bash
# The README's "main job": sets everything up, then opens the demo notebooks in JupyterLab.
#   bash demo_notebooks/run.sh             # JupyterLab on the quickstart notebook (prints the URL to open)
#   bash demo_notebooks/run.sh --port 9000 # extra arguments go to `jupyter lab`
#   bash demo_notebooks/run.sh --execute   # run every demo headless, write HTML copies to demo_notebooks/_executed/
# JupyterLab listens on 127.0.0.1 only and opens no browser; as root (most TF containers) it is
# started with --allow-root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/bootstrap
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if [ "${1:-}" = "--execute" ]; then
    exec .venv/bin/python demo_notebooks/execute_all.py
fi

lab_args=(
    --no-browser
    --ServerApp.ip=127.0.0.1
    # the notebooks' folder is the file browser's root; the printed URL opens the quickstart itself
    --ServerApp.root_dir="$PWD/demo_notebooks"
    --LabApp.default_url=/lab/tree/01_quickstart.ipynb
)
if [ "$(id -u)" = "0" ]; then
    lab_args+=(--allow-root)
fi
exec .venv/bin/jupyter lab "${lab_args[@]}" "$@"
