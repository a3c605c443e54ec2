"""Shape contracts, pipeline diagnosis and retracing on real TensorFlow and Keras programs.

Each finding fires on a program that has the trouble and stays silent on its corrected twin:
``unknown-shape`` (a Keras ``model.fit`` fed by a numpy_function whose output lost its shape),
``shape-mismatch`` (a wrong ``set_shape`` inside ``tf.function``), ``serialized`` (a parallel
tf.data map whose function holds the GIL; not one that releases it) and ``retraced`` (a
``tf.function`` retraced per Python scalar; not one given a tensor).
"""

from __future__ import annotations

import json
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.checks.pipeline import SERIALIZED_IN_FLIGHT
from tfnp_inspect.checks.retracing import RETRACED_OPS

pytestmark = pytest.mark.usefixtures("no_leaks")

IMAGE = (8, 8, 3)


def hints_of(trace: npi.Trace, kind: str) -> list[npi.Hint]:
    return [h for h in trace.hints if h.kind == kind]


# -- shapes -----------------------------------------------------------------------------------------

_rng = np.random.default_rng(0)


def make_example(index):
    image = _rng.random(IMAGE, dtype=np.float32)
    return image, np.float32(image.mean() > 0.5)


def example_pipeline(declare) -> tf.data.Dataset:
    """Images and labels from a numpy_function; ``declare(image, label)`` may set their shapes."""

    def load(index):
        image, label = tf.numpy_function(make_example, [index], (tf.float32, tf.float32))
        declare(image, label)
        return image, label

    return tf.data.Dataset.range(32).map(load).batch(8)


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input(IMAGE), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    return model


def fit(dataset: tf.data.Dataset) -> npi.Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras: shuffle is ignored for datasets
        with npi.trace() as t:
            small_model().fit(dataset, epochs=1, verbose=0)
    return t


def partly(image, label):
    image.set_shape([None, None, 3])  # what a user writes to get past "as_list() is not defined"
    label.set_shape([])


def fully(image, label):
    image.set_shape(IMAGE)
    label.set_shape([])


def test_model_fit_on_a_partly_declared_shape_gets_the_set_shape_line_and_its_twin_none():
    t = fit(example_pipeline(partly))
    assert len(t.invocations) == 32 and not t.violations
    (hint,) = hints_of(t, "unknown-shape")
    assert hint.func_name == "make_example" and hint.seq == t.invocations[2].seq  # the third agreeing call
    assert "output 0 returned float32[8,8,3] on all 32 calls" in hint.message
    assert "knows it only as [None, None, 3]" in hint.message
    assert "`y0.set_shape([8, 8, 3])`" in hint.message and "`y0 = tf.ensure_shape(y0, [8, 8, 3])`" in hint.message
    assert "y1.set_shape" not in hint.message  # the label was declared already
    (site,) = t.diagnosis().shapes
    assert site.static_shapes == ((None, None, 3), ())

    twin = fit(example_pipeline(fully))
    assert len(twin.invocations) == 32 and not twin.violations and not hints_of(twin, "unknown-shape")
    assert twin.diagnosis().signatures() == ["make_example(int64[]) -> float32[8,8,3], float32[]  (32 calls)"]


def test_model_fit_fails_on_a_lost_shape_and_the_hint_names_a_line_per_output():
    dataset = example_pipeline(lambda image, label: None)
    with pytest.raises(ValueError, match=r"as_list|unknown rank"):  # Keras needs the shapes before any call
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            small_model().fit(dataset, epochs=1, verbose=0)
    with npi.trace() as t:
        next(iter(dataset))  # one batch: 8 calls tell what the outputs really are
    (hint,) = hints_of(t, "unknown-shape")
    assert "TensorFlow knows it only as an unknown shape" in hint.message
    assert "`y0.set_shape([8, 8, 3])`; `y1.set_shape([])`" in hint.message


def crop(n):
    return np.zeros((int(n), 4), np.float32)


def test_a_later_call_that_disagrees_revises_the_suggested_shape():
    @tf.function
    def cropped(n):
        return tf.numpy_function(crop, [n], tf.float32)

    with npi.trace() as t:
        for n in (5, 5, 5):
            cropped(tf.constant(n))
        (first,) = hints_of(t, "unknown-shape")
        assert "`y.set_shape([5, 4])`" in first.message and first.seq == t.invocations[2].seq
        cropped(tf.constant(7))
    (revised,) = hints_of(t, "unknown-shape")
    assert "`y.set_shape([None, 4])`" in revised.message and revised.seq == t.invocations[3].seq
    assert "None: the dimensions that varied" in revised.message
    assert t.diagnosis().signatures() == ["crop(int32[]) -> float32[None,4]  (4 calls)"]


def four_channels(x):
    return np.zeros((16, 16, 4), np.float32)


def three_channels(x):
    return np.zeros((16, 16, 3), np.float32)


@pytest.mark.parametrize("func", [four_channels, three_channels])
def test_a_wrong_set_shape_in_tf_function_is_a_shape_mismatch_and_a_right_one_is_silent(func):
    @tf.function
    def step(x):
        y = tf.numpy_function(func, [x], tf.float32)
        y.set_shape([16, 16, 3])
        return tf.reduce_sum(y, axis=-1)  # built for 3 channels; TF never checks at run time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", npi.ViolationWarning)
        with npi.trace() as t:
            for _ in range(3):
                step(tf.zeros([2]))
    if func is three_channels:
        assert not t.violations and not t.hints
        return
    assert [v.kind for v in t.violations] == ["shape-mismatch"] * 3
    message = t.violations[0].message
    assert "returned shape [16, 16, 4]" in message and "declares [16, 16, 3]" in message
    assert not hints_of(t, "unknown-shape")  # declared, if wrongly: the violation says it


# -- pipeline ---------------------------------------------------------------------------------------

BIG = np.random.default_rng(1).random(600_000)


def python_loop(index):
    """Pure-Python work: holds the GIL for its whole call (about 2 ms)."""
    total = 0
    for value in range(40_000):
        total += value * value
    return np.float32(total % 7)


def numpy_sort(index):
    """One large numpy call: the GIL is released while it sorts."""
    return np.sort(BIG)[:4].astype(np.float32)


def waits_for_io(index):
    time.sleep(0.004)  # reading a file, a network request: the GIL is released
    return np.float32(index)


def parallel_map(func, calls: int = 48) -> npi.Trace:
    dataset = tf.data.Dataset.range(calls).map(
        lambda i: tf.numpy_function(func, [i], tf.float32), num_parallel_calls=4,
    )
    with npi.trace() as t:
        for _ in dataset:
            pass
    return t


def test_a_parallel_map_whose_function_holds_the_gil_is_serialized():
    t = parallel_map(python_loop)
    figures = t.diagnosis().pipeline_of("python_loop")
    assert figures.calls == 48 and figures.thread_count >= 2
    assert figures.mean_in_flight < SERIALIZED_IN_FLIGHT, figures
    (hint,) = hints_of(t, "serialized")
    assert hint.func_name == "python_loop" and f"from {figures.thread_count} threads" in hint.message
    for advice in ("releases the GIL", "Python-level loops", "TensorFlow ops"):
        assert advice in hint.message


@pytest.mark.parametrize("func", [numpy_sort, waits_for_io])
def test_a_parallel_map_whose_function_releases_the_gil_is_not(func):
    t = parallel_map(func)
    figures = t.diagnosis().pipeline_of(func.__name__)
    assert figures.calls == 48 and figures.thread_count >= 2
    assert figures.mean_in_flight > SERIALIZED_IN_FLIGHT and figures.max_in_flight >= 2, figures
    assert not hints_of(t, "serialized")


# -- retracing --------------------------------------------------------------------------------------


def scale(x, factor):
    return (x * factor).astype(np.float32)


def scale_again(x, factor):
    return (x * factor).astype(np.float32)


def test_a_tf_function_retraced_per_python_scalar_is_retraced_and_its_tensor_twin_is_not():
    @tf.function
    def step(x, factor):
        return tf.numpy_function(scale, [x, factor], tf.float32)

    with npi.trace() as t:
        for factor in range(RETRACED_OPS + 2):
            step(tf.ones([3]), factor)  # a new Python int: a new trace, a new op
    (hint,) = hints_of(t, "retraced")
    assert hint.func_name == "scale" and f"{RETRACED_OPS + 2} ops" in hint.message and "(step)" in hint.message
    for fix in ("input_signature", "tf.constant(x)", "reduce_retracing=True", "functions registered now"):
        assert fix in hint.message
    (build,) = t.diagnosis().builds
    assert build.ops == RETRACED_OPS + 2 and build.functions == ("step",)

    @tf.function
    def step_with_tensor(x, factor):
        return tf.numpy_function(scale_again, [x, factor], tf.float32)

    with npi.trace() as twin:
        for factor in range(RETRACED_OPS + 2):
            step_with_tensor(tf.ones([3]), tf.constant(factor))
    assert not hints_of(twin, "retraced")
    assert [b.ops for b in twin.diagnosis().builds] == [1]


# -- files, Chrome trace, DataFrame ----------------------------------------------------------------


def scale_once_more(x, factor):
    return (x * factor).astype(np.float32)


def test_static_shapes_build_counts_and_the_new_hints_round_trip_through_a_trace_file(tmp_path):
    @tf.function
    def step(x, factor):
        y = tf.numpy_function(scale_once_more, [x, factor], tf.float32)
        y.set_shape([None])
        return y

    with npi.trace() as t:
        for factor in range(RETRACED_OPS):
            step(tf.ones([3]), factor)
    path = tmp_path / "retraced.npftrace"
    t.export(path)
    loaded = npi.load(path)
    assert sorted(h.kind for h in loaded.hints) == ["retraced", "unknown-shape"]
    assert loaded.hints == t.hints
    original, reread = t.diagnosis(), loaded.diagnosis()
    assert [tuple(b) for b in reread.builds] == [tuple(b) for b in original.builds]
    assert reread.builds[0].ops == RETRACED_OPS and reread.builds[0].functions == ("step",)
    assert reread.registry_size == original.registry_size and reread.registry_size >= RETRACED_OPS
    assert reread.shapes == original.shapes
    assert {inv.site.static_shapes for inv in loaded.invocations} == {((None,),)}


def test_chrome_trace_and_dataframe_carry_overlaps_static_shapes_and_the_diagnosis(tmp_path):
    t = parallel_map(waits_for_io, calls=24)
    path = tmp_path / "chrome.json"
    t.to_chrome_trace(path)
    document = json.loads(path.read_text())
    counters = [e for e in document["traceEvents"] if e["ph"] == "C"]
    assert {e["name"] for e in counters} == {"waits_for_io in flight"}
    assert len(counters) == 2 * 24 and max(e["args"]["calls"] for e in counters) >= 2
    assert counters[-1]["args"]["calls"] == 0
    diagnosis = document["otherData"]["diagnosis"]
    assert diagnosis["signatures"] == ["waits_for_io(int64[]) -> float32[]  (24 calls)"]
    (figures,) = diagnosis["pipeline"]
    assert figures["calls"] == 24 and figures["max_in_flight"] >= 2 and 0 < figures["time_share"] <= 1
    assert [h["kind"] for h in diagnosis["hints"]] == ["unknown-shape"]

    frame = t.to_dataframe()
    assert frame["in_flight"].max() >= 2 and frame["in_flight"].min() >= 1
    assert frame["static_shapes"].isna().all()  # the op declared no shape

    @tf.function
    def declared(x):
        y = tf.numpy_function(scale, [x, np.float32(2)], tf.float32)
        y.set_shape([3])
        return y

    with npi.trace() as shaped:
        declared(tf.ones([3]))
    assert shaped.to_dataframe()["static_shapes"].tolist() == [[(3,)]]
    slice_args = [e["args"] for e in shaped_chrome(shaped, tmp_path)["traceEvents"] if e["ph"] == "X"]
    assert [a["static_shapes"] for a in slice_args] == [[[3]]]


def shaped_chrome(trace: npi.Trace, tmp_path) -> dict:
    path = tmp_path / "shaped.json"
    trace.to_chrome_trace(path)
    return json.loads(path.read_text())
