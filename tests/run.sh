#!/usr/bin/env bash
# The README's test command: sets everything up on a fresh machine, then runs the whole suite.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k magics`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/bootstrap
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# pytest exits 5 when no test ran: with `set -e` that fails the run, as it should.
exec .venv/bin/python -m pytest -q -ra "$@"
