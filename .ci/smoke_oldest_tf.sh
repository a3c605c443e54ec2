#!/usr/bin/env bash
# Smoke run on the oldest TensorFlow the README claims: a separate virtual environment
# .venv-oldest-tf with tensorflow-cpu 2.16 (the newest 2.16 patch; 2.16 needs numpy<2), the package
# installed from this checkout without its dependency resolution, then .ci/smoke_oldest_tf.py
# (public API only, no benchmarks). Not part of .ci/run.
#   bash .ci/smoke_oldest_tf.sh           # first run downloads TensorFlow (a few minutes), later runs take seconds
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-oldest-tf
TENSORFLOW="tensorflow-cpu==2.16.2"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[smoke-oldest-tf] creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
    echo "*" > "$VENV/.gitignore"  # keep the environment out of git status (Python < 3.13 does not write this)
fi

stamp=$VENV/.installed
want="$TENSORFLOW $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[smoke-oldest-tf] installing $TENSORFLOW and the package into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "$TENSORFLOW" "numpy<2" "xxhash>=3.0" pytest pytest-timeout hypothesis
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    echo "$want" > "$stamp"
fi

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec "$VENV/bin/python" .ci/smoke_oldest_tf.py
