#!/usr/bin/env bash
# The README's test command: sets everything up on a fresh machine, then runs the whole suite.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k magics`); give a tier or a file to run
# only that (`bash tests/run.sh tests/unit`, `bash tests/run.sh tests/tf/test_recorder.py`).
#
# Without a path, the unit tier runs first in a process of its own, where TensorFlow cannot be
# imported (see tests/unit/conftest.py), then the TensorFlow and Jupyter tiers, then the
# TensorFlow tier again on the pure-Python per-call core (TFNP_INSPECT_CORE=python) when the
# compiled one ran first: the two cores pass the same tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/bootstrap
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
pytest=(.venv/bin/python -m pytest -q -ra)

given_path=false
for arg in "$@"; do
    if [[ $arg != -* && -e ${arg%%::*} ]]; then given_path=true; fi
done
# pytest exits 5 when no test ran: with `set -e` that fails the run, as it should.
if $given_path; then
    exec "${pytest[@]}" "$@"
fi

# One tier may select nothing (`-k magics`): the run fails when a tier fails, or when neither ran a test.
unit=0
"${pytest[@]}" tests/unit "$@" || unit=$?
if [[ $unit != 0 && $unit != 5 ]] && [[ " $* " == *" -x "* || " $* " == *" --exitfirst "* ]]; then
    exit "$unit"
fi
rest=0
"${pytest[@]}" tests --ignore=tests/unit "$@" || rest=$?
core=$(.venv/bin/python -c 'from tfnp_inspect.recording.probe import CORE; print(CORE)')
python_core=0
if [[ $core == compiled ]]; then
    echo "[tests] the TensorFlow tier again, on the pure-Python core"
    TFNP_INSPECT_CORE=python "${pytest[@]}" tests/tf "$@" || python_core=$?
fi
if [[ $unit != 0 && $unit != 5 ]]; then exit "$unit"; fi
if [[ $python_core != 0 && $python_core != 5 ]]; then exit "$python_core"; fi
if [[ $rest == 5 && $unit == 0 ]]; then exit 0; fi
exit "$rest"
