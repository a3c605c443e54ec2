"""Arrays of ml_dtypes' types captured from real TensorFlow calls survive export and load."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

pytestmark = pytest.mark.timeout(120)


def identity(x):
    return x


@pytest.mark.parametrize(
    "dtype", [tf.bfloat16, tf.experimental.float8_e4m3fn, tf.experimental.float8_e5m2],
    ids=lambda d: d.name,
)
def test_captured_ml_dtypes_arrays_keep_their_dtype(tmp_path, dtype):
    values = tf.constant([1.5, -2.0, 0.25], dtype=tf.float32)
    with npi.trace(capture="full") as trace:
        npi.numpy_function(identity, [tf.cast(values, dtype)], dtype)
    captured = trace.invocations[0].inputs[0].data
    assert captured.dtype == dtype.as_numpy_dtype
    trace.export(tmp_path / "ml.npftrace")
    loaded = npi.load(tmp_path / "ml.npftrace").invocations[0]
    for info in loaded.inputs + loaded.outputs:
        assert info.data.dtype == captured.dtype and info.dtype == dtype.name
        assert np.array_equal(info.data.astype(np.float32), captured.astype(np.float32))
