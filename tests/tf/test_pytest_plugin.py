"""The pytest plugin, through real inner pytest sessions (own processes) running real TensorFlow."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.timeout(300)

INNER_TESTS = '''
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect


def mutate(x):
    x += 1
    return x * 2


def clean(x):
    return x + 1


def pipeline(fn):
    """A tf.data pipeline: graph mode, TF's own threads, zero-copy inputs."""
    dataset = tf.data.Dataset.from_tensor_slices(np.arange(6, dtype=np.float32).reshape(3, 2))
    dataset = dataset.map(lambda x: tf.numpy_function(fn, [x], tf.float32))
    return [element.numpy() for element in dataset]


@pytest.mark.npfunc_strict
def test_guarded_mutation():
    assert tfnp_inspect.is_active()
    pipeline(mutate)


@pytest.mark.npfunc_strict
def test_guarded_clean():
    assert tfnp_inspect.is_active()
    assert [list(e) for e in pipeline(clean)] == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.npfunc_strict
def test_guarded_failing_anyway():
    pipeline(mutate)
    assert False, "own failure"


def test_unguarded_mutation():
    pipeline(mutate)


def test_unguarded_runs_untraced():
    assert not tfnp_inspect.is_active()
    assert tf.numpy_function.__module__.startswith("tensorflow")  # not patched


def test_fixture(npfunc_trace):
    pipeline(clean)
    assert [inv.func_name for inv in npfunc_trace.invocations] == ["clean"] * 3
    assert npfunc_trace.violations == []
'''


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=INNER_TESTS)
    # --strict-markers: the npfunc_strict marker must be registered by the plugin.
    return pytester.runpytest_subprocess(
        "--strict-markers", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", *args,
        timeout=240,
    )


def test_marked_tests_fail_on_violations_and_only_they(pytester):
    result = run_inner(pytester)
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed")) == (4, 2), result.stdout.str()
    result.stdout.fnmatch_lines([
        "*FAILED test_inner.py::test_guarded_mutation*",
        "*FAILED test_inner.py::test_guarded_failing_anyway*",
    ])
    output = result.stdout.str()
    assert "FAILED test_inner.py::test_unguarded_mutation" not in output
    assert "FAILED test_inner.py::test_guarded_clean" not in output
    # The failure report carries the violation messages, with the kind and the function.
    result.stdout.fnmatch_lines([
        "*tf.numpy_function contract violation(s) recorded during the test:",
        "*[[]mutated-input[]] mutate at *test_inner.py:*wrote into input 0 in place*",
    ])
    # A test failing on its own still shows what was recorded, next to its own error.
    result.stdout.fnmatch_lines(["*own failure*"])
    result.stdout.fnmatch_lines(["*tf.numpy_function violations*"])


def test_command_line_flag_guards_every_test(pytester):
    result = run_inner(pytester, "--npfunc-strict", "-k", "unguarded_mutation or clean or fixture")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed")) == (2, 1), result.stdout.str()
    result.stdout.fnmatch_lines([
        "tfnp_inspect: --npfunc-strict*",
        "*[[]mutated-input[]] mutate at *test_inner.py:*",
        "*FAILED test_inner.py::test_unguarded_mutation*",
    ])
