#!/usr/bin/env bash
# Smoke run of an install where no C compiler is: builds the wheel with CC=/bin/false (the
# compiled per-call core fails to build, which setup.py allows), installs it into a fresh
# virtual environment and checks that the package runs its pure-Python core, and that
# TFNP_INSPECT_CORE=compiled then says what is missing. Not part of .ci/run (it builds and installs
# the package once more).
#   bash .ci/smoke_no_compiler.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CC=/bin/false "$PYTHON" -m pip wheel --quiet --no-deps . -w "$work/wheel"
if unzip -l "$work"/wheel/*.whl | grep -q '_probe_core.*\.so'; then
    echo "[smoke-no-compiler] the wheel has a compiled core although no compiler could run" >&2
    exit 1
fi
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$work"/wheel/*.whl
cd "$work"  # not the checkout: its in-place build must not be imported
core=$("$work/venv/bin/python" -c 'from tfnp_inspect.recording.probe import CORE; print(CORE)')
[ "$core" = python ] || { echo "[smoke-no-compiler] expected the pure-Python core, got $core" >&2; exit 1; }
if TFNP_INSPECT_CORE=compiled "$work/venv/bin/python" -c 'import tfnp_inspect.recording.probe' 2>"$work/err"; then
    echo "[smoke-no-compiler] TFNP_INSPECT_CORE=compiled should fail without a compiled core" >&2
    exit 1
fi
grep -q "compiled per-call core cannot be used" "$work/err"
echo "smoke run passed: installed without a compiler, the pure-Python core runs"
