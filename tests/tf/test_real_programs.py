"""Acceptance tests on real programs (issue 12): verdicts that match TensorFlow, no false alarms.

Every case runs a real TensorFlow / Keras program twice, untraced and under ``npi.trace()``,
and compares what it computed bit for bit; then it checks what the inspector said about it.
Each buggy program has a correct twin that must get no verdict. Nothing is mocked.

Self-contained on purpose: small helpers are defined here (no ``core_helpers``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi

pytestmark = pytest.mark.timeout(240)

#: Names of TensorFlow's own functions behind ``Dataset.from_generator``: never the user's code.
TF_INTERNAL_NAMES = ("generator_py_func", "get_next_id", "finalize_py_func", "_from_generator")

STEPS = 4  # batches per epoch
BATCH = 8
FEATURES = 16  # 16 float32 = 64 bytes: every row of an aligned matrix is aligned too


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _tracing_left_off() -> Iterator[None]:
    """Every test must leave tracing off, whatever it did."""
    assert not npi.is_active(), "tracing was already on when the test started"
    yield
    active, installed = npi.is_active(), npi.is_installed()
    if installed:
        npi.uninstall()
    assert not active and not installed, f"test left tracing on (active={active}, installed={installed})"


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A C-contiguous array whose data starts on a 64-byte boundary, so that graph-mode
    TensorFlow wraps it WITHOUT copying when a numpy_function returns it."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    offset = (-raw.ctypes.data) % 64
    out = raw[offset:offset + nbytes].view(dtype).reshape(shape)
    assert out.ctypes.data % 64 == 0 and out.flags.c_contiguous
    return out


def report(t: Any) -> str:
    """Everything the trace said, for failure messages."""
    lines = [f"{len(t.invocations)} invocations of {sorted({i.func_name for i in t.invocations})}"]
    lines += [f"  violation [{v.kind}] {v.func_name} (seq {v.seq}, {v.argument}, at {v.call_site}): {v.message}"
              for v in t.violations[:12]]
    if len(t.violations) > 12:
        lines.append(f"  ... {len(t.violations) - 12} more violations")
    lines += [f"  hint [{h.kind}] {h.func_name}: {h.message}" for h in t.hints[:12]]
    return "\n".join(lines)


def names_tf_internals(name: str) -> bool:
    return any(token in name for token in TF_INTERNAL_NAMES)


def assert_same_results(plain: Any, traced: Any, what: str = "results") -> None:
    """Bit-for-bit equality of two (nested) results, dtypes included."""
    if isinstance(plain, (list, tuple)):
        assert isinstance(traced, (list, tuple)) and len(plain) == len(traced), \
            f"{what}: structure differs: {len(plain)} vs {len(traced) if isinstance(traced, (list, tuple)) else traced!r}"
        for k, (a, b) in enumerate(zip(plain, traced, strict=True)):
            assert_same_results(a, b, f"{what}[{k}]")
        return
    a, b = np.asarray(plain), np.asarray(traced)
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} untraced vs {b.dtype} traced"
    np.testing.assert_array_equal(a, b, err_msg=f"{what} differ traced vs untraced")


def to_numpy(value: Any) -> Any:
    """Tensors (nested in lists/tuples) as owned numpy copies."""
    if isinstance(value, (list, tuple)):
        return [to_numpy(v) for v in value]
    return np.array(value.numpy() if hasattr(value, "numpy") else value, copy=True)


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(4, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="sgd", loss="mse")
    return model


def fit_result(data_factory: Callable[[], Any], **fit_kwargs: Any) -> list[np.ndarray]:
    """Losses and final weights of a fresh tiny model fitted on ``data_factory()``."""
    model = tiny_model()
    history = model.fit(data_factory(), verbose=0, **fit_kwargs)
    losses = np.asarray(history.history["loss"], dtype=np.float64)
    return [losses] + [np.array(w, copy=True) for w in model.get_weights()]


def first_line(error_message: str) -> str:
    """Key text of a TF error message: no ``{{function_node ...}}`` prefix, node list or traceback."""
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", error_message.strip())
    line = text.splitlines()[0] if text else ""
    return line.split("\t [[")[0].strip()


def normalise_token(text: str) -> str:
    """The op token and tf.data's dataset ids differ from run to run."""
    return re.sub(r"Dataset:\d+", "Dataset:N", re.sub(r"pyfunc_(\d+|N)", "pyfunc_N", text))


def run_script(tmp_path: Path, files: dict[str, str], main: str) -> dict[str, Any]:
    """Run ``main`` in a fresh interpreter (cwd ``tmp_path`` holding ``files``); it prints
    ``RESULT:`` followed by JSON, which is returned."""
    for name, source in files.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    script = tmp_path / "main_program.py"
    script.write_text(textwrap.dedent(main))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, \
        f"subprocess failed (rc={proc.returncode})\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"
    return json.loads(lines[-1][len("RESULT:"):])


# -- programs --------------------------------------------------------------------------------

SIGNATURE = (tf.TensorSpec([None, FEATURES], tf.float32), tf.TensorSpec([None, 1], tf.float32))


def make_batch(rng: np.random.Generator) -> np.ndarray:
    """A fresh batch in freshly allocated memory (aligned, so TF aliases it: the hard case)."""
    x = aligned_empty((BATCH, FEATURES), np.float32)
    x[:] = rng.random((BATCH, FEATURES), dtype=np.float32)
    return x


def fresh_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The way most generators are written: ``x = make(); yield x, y`` with fresh arrays."""
    rng = np.random.default_rng(7)
    for _ in range(STEPS):
        x = make_batch(rng)
        y = x.sum(axis=1, keepdims=True)
        yield x, y


#: The buggy generator's single buffer, rewritten for every batch.
SHARED_BATCH = aligned_empty((BATCH, FEATURES), np.float32)


def reused_buffer_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Bug: re-yields ONE module-level buffer that it rewrites at each step."""
    rng = np.random.default_rng(7)
    for _ in range(STEPS):
        SHARED_BATCH[:] = rng.random((BATCH, FEATURES), dtype=np.float32)
        yield SHARED_BATCH, SHARED_BATCH.sum(axis=1, keepdims=True)


#: Arrays loaded once and never written afterwards (rows are 64 bytes: aligned views).
ROWS_X = aligned_empty((STEPS * BATCH, FEATURES), np.float32)
ROWS_X[:] = np.random.default_rng(3).random(ROWS_X.shape, dtype=np.float32)
ROWS_Y = ROWS_X.sum(axis=1, keepdims=True)


def indexed_rows() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``yield X[i], Y[i]``: views of arrays that are never written."""
    for i in range(len(ROWS_X)):
        yield ROWS_X[i], ROWS_Y[i]


def generator_dataset(generator: Callable[[], Iterator[Any]]) -> tf.data.Dataset:
    return tf.data.Dataset.from_generator(generator, output_signature=SIGNATURE)


# -- 1-3: Dataset.from_generator under model.fit ---------------------------------------------


def test_fit_on_fresh_array_generator_is_silent_and_names_the_generator() -> None:
    """Real program: ``model.fit(tf.data.Dataset.from_generator(gen))`` with a correct generator
    that keeps its fresh batch in a local before yielding it (how most generators are written)."""
    plain = fit_result(lambda: generator_dataset(fresh_batches), epochs=2)
    with npi.trace() as t:
        traced = fit_result(lambda: generator_dataset(fresh_batches), epochs=2)
    assert_same_results(plain, traced, "losses and weights")

    assert not t.violations, f"a correct generator got violations:\n{report(t)}"
    internal = sorted(
        {i.func_name for i in t.invocations if names_tf_internals(i.func_name)}
        | {v.func_name for v in t.violations if names_tf_internals(v.func_name)}
        | {h.func_name for h in t.hints if names_tf_internals(h.func_name)}
    )
    assert not internal, f"records name TensorFlow's own functions {internal}:\n{report(t)}"
    gen_names = [name for name in t.stats() if fresh_batches.__name__ in name]
    assert gen_names, f"no record names the user's generator {fresh_batches.__name__!r}:\n{report(t)}"
    stats = t.stats()
    errors = {name: stats[name].errors for name in stats}
    assert all(n == 0 for n in errors.values()), \
        f"reaching the end of the generator was counted as an error: {errors}\n{report(t)}"
    assert sum(stats[name].calls for name in gen_names) >= 2 * STEPS, \
        f"expected at least {2 * STEPS} generator calls in 2 epochs: {[(n, stats[n].calls) for n in gen_names]}"


def test_fit_on_reused_buffer_generator_is_caught_and_strict_passes_correct_fit() -> None:
    """Real bug: a generator that re-yields one module-level buffer it rewrites each step
    (every batch TF already holds changes); its correct twin must survive ``strict=True``."""
    def read_all() -> list[np.ndarray]:
        tensors = [x for x, _ in generator_dataset(reused_buffer_batches)]  # read after the last one
        return [to_numpy(x) for x in tensors]

    # The bug is real: every batch TF returned has turned into the last one.
    plain = read_all()
    assert all(np.array_equal(x, plain[-1]) for x in plain), "TF copied the buffer: the test no longer shows the bug"
    with npi.trace() as listed:
        traced = read_all()
    assert_same_results(plain, traced, "batches of the buggy generator")

    # Under fit, what the model sees depends on timing (that is the bug), so only the verdict
    # is compared there.
    with npi.trace() as t:
        fit_result(lambda: generator_dataset(reused_buffer_batches), epochs=2)
    for trace in (listed, t):
        found = [v for v in trace.violations
                 if v.kind == "retained-reference" and reused_buffer_batches.__name__ in v.func_name]
        assert found, f"no retained-reference naming {reused_buffer_batches.__name__!r}:\n{report(trace)}"

    plain = fit_result(lambda: generator_dataset(fresh_batches), epochs=2)
    try:
        with npi.trace(strict=True) as strict:
            traced = fit_result(lambda: generator_dataset(fresh_batches), epochs=2)
    except Exception as error:  # noqa: BLE001 - the failure message shows what strict mode raised
        pytest.fail(f"strict=True broke a correct fit: {type(error).__name__}: {str(error)[:1500]}")
    assert_same_results(plain, traced, "losses and weights (strict)")
    assert not strict.violations, report(strict)


def test_fit_on_views_of_arrays_never_written_is_silent() -> None:
    """Real program: a generator over in-memory arrays, ``yield X[i], Y[i]`` (views of arrays
    that are never written), batched by tf.data and fed to ``model.fit``."""
    def dataset() -> tf.data.Dataset:
        spec = (tf.TensorSpec([FEATURES], tf.float32), tf.TensorSpec([1], tf.float32))
        return tf.data.Dataset.from_generator(indexed_rows, output_signature=spec).batch(BATCH)

    plain = fit_result(dataset, epochs=2)
    with npi.trace() as t:
        traced = fit_result(dataset, epochs=2)
    assert_same_results(plain, traced, "losses and weights")
    assert t.invocations, "nothing was recorded"
    assert not t.violations, f"views of never-written arrays got violations:\n{report(t)}"


# -- 4: keras.utils.PyDataset with worker threads --------------------------------------------


class RandomBatches(keras.utils.PyDataset):
    """A Keras ``PyDataset`` that builds each batch freshly from its index."""

    def __len__(self) -> int:
        return STEPS

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(100 + index)
        x = make_batch(rng)
        return x, x.sum(axis=1, keepdims=True)


def test_fit_on_pydataset_with_two_workers_is_silent() -> None:
    """Real program: ``model.fit(PyDataset(workers=2))``; Keras's enqueuer threads still hold
    the batches they produced while TF consumes them."""
    def data() -> RandomBatches:
        return RandomBatches(workers=2, use_multiprocessing=False)

    plain = fit_result(data, epochs=2)
    with npi.trace() as t:
        traced = fit_result(data, epochs=2)
    assert_same_results(plain, traced, "losses and weights")
    assert t.invocations, "nothing was recorded"
    assert not t.violations, f"a correct PyDataset got violations:\n{report(t)}"


# -- 5-6: declarations of ops built from names bound, or graphs built, before the import -----

NOISE_LIBRARY = """
    # A small third-party library: binds numpy_function at its own import time, and its
    # maps default to stateful=False.
    import numpy as np
    import tensorflow as tf
    from tensorflow import numpy_function


    def jitter(x):
        # Bug: hidden global RNG state in a function declared stateless.
        return (x + np.random.random(x.shape)).astype(np.float32)


    def rescale(x):
        return (x * 0.5).astype(np.float32)


    def _pipeline(func, n, stateful=False):
        def apply(i):
            x = tf.fill([4], tf.cast(i, tf.float32))
            y = numpy_function(func, [x], tf.float32, stateful=stateful)
            y.set_shape([4])
            return y
        return tf.data.Dataset.range(n).map(apply)


    def jitter_dataset(n):
        return _pipeline(jitter, n)


    def rescale_dataset(n):
        return _pipeline(rescale, n)
"""


def test_library_binding_numpy_function_before_import_is_checked(tmp_path: Path) -> None:
    """Real program: a library that does ``from tensorflow import numpy_function`` at import,
    imported before ``tfnp_inspect``; its datasets are built before recording starts."""
    main = """
        import json
        import numpy as np
        import tensorflow as tf
        import noiselib                      # binds numpy_function before tfnp_inspect exists
        import tfnp_inspect as npi

        noisy = noiselib.jitter_dataset(6)   # built before recording starts
        clean = noiselib.rescale_dataset(6)
        plain = [e.numpy().tolist() for e in clean]
        with npi.trace() as t:
            list(noisy)
            traced = [e.numpy().tolist() for e in clean]
        print("RESULT:" + json.dumps({
            "violations": [[v.kind, v.func_name, v.message] for v in t.violations],
            "hints": [[h.kind, h.func_name, h.message] for h in t.hints],
            "names": sorted({i.func_name for i in t.invocations}),
            "same": plain == traced,
            "active_after": npi.is_active(),
        }))
    """
    result = run_script(tmp_path, {"noiselib.py": NOISE_LIBRARY}, main)
    shown = json.dumps(result, indent=1)[:4000]
    assert result["same"], f"results of the stateless map differ traced vs untraced:\n{shown}"
    assert not result["active_after"]
    assert any(kind == "hidden-state" and "jitter" in name for kind, name, _ in result["violations"]), \
        f"no hidden-state violation for jitter (np.random in a stateful=False map):\n{shown}"
    assert not [v for v in result["violations"] if "rescale" in v[1]], \
        f"the pure stateless twin got violations:\n{shown}"


def test_graph_built_before_import_is_reported_as_undeclared(tmp_path: Path) -> None:
    """Real program: a notebook where the ``tf.function`` was built (and run) before
    ``import tfnp_inspect``; the summary must say which calls went without a declaration."""
    main = """
        import json
        import numpy as np
        import tensorflow as tf


        def double_rows(x):
            return x * 2


        @tf.function
        def step(x):
            return tf.numpy_function(double_rows, [x], tf.float32)


        x = tf.constant([1.0, 2.0, 3.0])
        plain = step(x).numpy().tolist()         # graph built before the import
        import tfnp_inspect as npi
        with npi.trace() as t:
            traced = [step(x).numpy().tolist() for _ in range(3)]
        print("RESULT:" + json.dumps({
            "summary": str(t),
            "violations": [[v.kind, v.func_name, v.message] for v in t.violations],
            "names": [i.func_name for i in t.invocations],
            "same": all(r == plain for r in traced),
            "active_after": npi.is_active(),
        }))
    """
    result = run_script(tmp_path, {}, main)
    summary = result["summary"]
    assert result["same"], f"results differ traced vs untraced: {result}"
    assert not result["active_after"]
    assert len(result["names"]) == 3 and all("double_rows" in n for n in result["names"]), \
        f"expected 3 recorded calls of double_rows: {result['names']}"
    assert summary.strip().rstrip(".") != "No violations", f"bare 'No violations':\n{summary}"
    assert "without a declaration" in summary, \
        f"the summary does not say the calls were observed without a declaration:\n{summary}"
    assert "double_rows" in summary, f"the summary does not name the undeclared function:\n{summary}"


# -- 7: a tf.string tokenizer map -------------------------------------------------------------

VOCAB = {"the": 1, "cat": 2, "sat": 3, "on": 4, "mat": 5}
LINES = ["the cat sat on the mat", "a dog sat", "the mat", "cat"]


def word_id(word: str) -> int:
    return VOCAB.get(word, 10 + zlib.crc32(word.encode()) % 1000)


def tokenize(line: bytes) -> np.ndarray:
    """bytes in (a 0-d tf.string arrives as bytes), int32 ids out."""
    return np.array([word_id(w) for w in line.decode("utf-8").split(" ")], dtype=np.int32)


def tokenize_int64(line: bytes) -> np.ndarray:
    """Bug: numpy's default integer is int64, declared tf.int32."""
    return np.array([word_id(w) for w in line.decode("utf-8").split(" ")])


def token_dataset(func: Callable[[bytes], np.ndarray]) -> tf.data.Dataset:
    def apply(line: tf.Tensor) -> tf.Tensor:
        ids = tf.numpy_function(func, [line], tf.int32)
        ids.set_shape([None])
        return ids
    return tf.data.Dataset.from_tensor_slices(LINES).map(apply).padded_batch(2)


def test_string_tokenizer_map() -> None:
    """Real program: a text pipeline that tokenizes ``tf.string`` lines with a Python
    function (bytes in, int32 ids out) inside ``tf.data``; its buggy twin returns int64."""
    plain = [to_numpy(b) for b in token_dataset(tokenize)]
    with npi.trace() as t:
        traced = [to_numpy(b) for b in token_dataset(tokenize)]
    assert_same_results(plain, traced, "token ids")
    assert plain[0].dtype == np.int32 and plain[0][0, 0] == VOCAB["the"]
    assert t.invocations, "nothing was recorded"
    assert not t.violations and not t.hints, f"the correct tokenizer was not silent:\n{report(t)}"

    with pytest.raises(tf.errors.InvalidArgumentError) as plain_error:
        list(token_dataset(tokenize_int64))
    with npi.trace() as bad, pytest.raises(tf.errors.InvalidArgumentError) as traced_error:
        list(token_dataset(tokenize_int64))
    assert first_line(normalise_token(plain_error.value.message)) == \
        first_line(normalise_token(traced_error.value.message))
    assert any(v.kind == "tout-mismatch" and "tokenize_int64" in v.func_name for v in bad.violations), \
        f"int64 ids for Tout=tf.int32 were not reported:\n{report(bad)}"


# -- 8: returns TF accepts in graph mode -------------------------------------------------------

IMAGES = np.random.default_rng(5).integers(0, 255, size=(3, 6, 6, 3), dtype=np.uint8)


def aug_fn(image: np.ndarray) -> tf.Tensor:
    """Like the albumentations tutorial's ``aug_fn``: numpy work, then ``tf.cast`` inside."""
    flipped = np.ascontiguousarray(image[:, ::-1])
    return tf.cast(flipped / 255.0, tf.float32)


def split_channels(image: np.ndarray) -> list[np.ndarray]:
    """A list of arrays for a list Tout."""
    return [np.ascontiguousarray(image[..., 0]), image.mean(axis=-1, dtype=np.float32)]


def test_eager_tensor_and_list_returns_are_accepted() -> None:
    """Real program: the albumentations tutorial pipeline (``aug_fn`` returns an EagerTensor)
    in tf.data and in a tf.function, and a function returning a list for a list Tout."""
    def run() -> list[Any]:
        mapped = tf.data.Dataset.from_tensor_slices(IMAGES).map(
            lambda im: tf.numpy_function(aug_fn, [im], tf.float32))
        in_data = [to_numpy(e) for e in mapped]
        in_function = to_numpy(tf.function(lambda im: tf.numpy_function(aug_fn, [im], tf.float32))(IMAGES[0]))
        split = tf.function(
            lambda im: tf.numpy_function(split_channels, [im], [tf.uint8, tf.float32]))
        listed = to_numpy(split(IMAGES[1]))
        return [in_data, in_function, listed]

    plain = run()  # graph mode accepts an EagerTensor: this must not raise
    with npi.trace() as t:
        traced = run()
    assert_same_results(plain, traced)
    names = {i.func_name for i in t.invocations}
    assert any("aug_fn" in n for n in names) and any("split_channels" in n for n in names), names
    mismatches = [v for v in t.violations if v.kind == "tout-mismatch"]
    assert not mismatches, f"tout-mismatch for returns that graph mode accepts:\n{report(t)}"
    assert not t.violations, report(t)
    assert not [h for h in t.hints if "split_channels" in h.func_name], report(t)


# -- 9: Tout verdicts that match TensorFlow ---------------------------------------------------

X3 = np.array([1.0, 2.0, 3.0], np.float32)


def returns_float64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def returns_float32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def returns_record(x: np.ndarray) -> np.ndarray:
    return np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])


def returns_plain_zeros(x: np.ndarray) -> np.ndarray:
    return np.zeros(3, dtype=np.float32)


def returns_dict(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"a": x * 1}


def returns_array(x: np.ndarray) -> np.ndarray:
    return x * 1


def returns_two(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x * 1, x * 2


def returns_one(x: np.ndarray) -> np.ndarray:
    return x * 2


@pytest.mark.parametrize("buggy, correct", [
    (returns_float64, returns_float32),
    (returns_record, returns_plain_zeros),
    (returns_dict, returns_array),
    (returns_two, returns_one),
], ids=["float64-for-float32", "structured-dtype", "dict", "two-values-for-one"])
def test_tout_verdict_names_the_error_graph_mode_raises(buggy: Callable, correct: Callable) -> None:
    """Real program: a function tried eagerly in a notebook (TF accepts almost anything there)
    that later fails inside ``tf.function``/``tf.data``; the verdict must predict TF's error."""
    with npi.trace() as t:
        try:
            tf.numpy_function(buggy, [tf.constant(X3)], tf.float32)
        except Exception:  # noqa: BLE001 - TF's own eager error (structured dtype) is fine
            pass
    found = [v for v in t.violations if v.kind == "tout-mismatch" and buggy.__name__ in v.func_name]
    assert found, f"no tout-mismatch for {buggy.__name__}:\n{report(t)}"

    graph = tf.function(lambda x: tf.numpy_function(buggy, [x], tf.float32))
    with pytest.raises(tf.errors.OpError) as raised:
        graph(tf.constant(X3))
    error = raised.value
    expected = normalise_token(first_line(error.message)).rstrip(".")
    message = normalise_token(found[0].message)
    assert type(error).__name__ in message, \
        f"violation does not name graph mode's {type(error).__name__}:\n  {found[0].message}"
    assert expected in message, \
        f"violation does not quote graph mode's error {expected!r}:\n  {found[0].message}"

    plain = to_numpy(tf.numpy_function(correct, [tf.constant(X3)], tf.float32))
    with npi.trace() as good:
        traced = to_numpy(tf.numpy_function(correct, [tf.constant(X3)], tf.float32))
    assert_same_results(plain, traced)
    assert not [v for v in good.violations if v.kind == "tout-mismatch"], report(good)


# -- 10: eager-only conversion of Python ints -------------------------------------------------


def add_one(x: Any) -> Any:
    return x + 1


def test_python_int_input_in_eager_mode_gets_a_hint_not_a_violation() -> None:
    """Real program: ``tf.numpy_function(lambda x: x + 1, [3], tf.int32)`` tried eagerly; eager
    mode hands the function int64 where a graph hands it int32, so only eager differs."""
    graph_result = tf.function(lambda: tf.numpy_function(add_one, [3], tf.int32))()
    assert graph_result.dtype == tf.int32 and int(graph_result) == 4  # graph mode is fine

    plain = to_numpy(tf.numpy_function(add_one, [3], tf.int32))
    with npi.trace() as t:
        traced = to_numpy(tf.numpy_function(add_one, [3], tf.int32))
    assert_same_results(plain, traced)
    assert not t.violations, f"a call graph mode accepts got a violation:\n{report(t)}"
    hints = [h for h in t.hints if h.kind == "eager-conversion" and "add_one" in h.func_name]
    assert hints, f"no eager-conversion hint:\n{report(t)}"
    assert "eager" in hints[0].message.lower(), hints[0].message

    plain = to_numpy(tf.numpy_function(add_one, [tf.constant(3)], tf.int32))
    with npi.trace() as twin:
        traced = to_numpy(tf.numpy_function(add_one, [tf.constant(3)], tf.int32))
    assert_same_results(plain, traced)
    assert not twin.violations and not twin.hints, f"tf.constant(3) input was not silent:\n{report(twin)}"


# -- 11: retained outputs: what TF copies vs what it aliases ----------------------------------

KEPT_LABELS: list[np.ndarray] = []
KEPT_SCORES: list[np.ndarray] = []


def keep_labels(step: np.ndarray) -> np.ndarray:
    """Keeps the unicode array it returns, and rewrites it at the next call."""
    if KEPT_LABELS:
        KEPT_LABELS[0][:] = [f"cat{step}", f"dog{step}"]
    else:
        KEPT_LABELS.append(np.array(["cat0", "dog0"]))
    return KEPT_LABELS[0]


def keep_scores(step: np.ndarray) -> np.ndarray:
    """Bug: keeps the float32 array it returns (aligned: TF wraps it) and rewrites it."""
    if not KEPT_SCORES:
        KEPT_SCORES.append(aligned_empty((4,), np.float32))
    KEPT_SCORES[0][:] = float(step)
    return KEPT_SCORES[0]


def three_calls(func: Callable, tout: tf.DType) -> list[Any]:
    f = tf.function(lambda i: tf.numpy_function(func, [i], tout))
    results = [f(tf.constant(i)) for i in range(1, 4)]  # keep the tensors alive, then read them
    return [to_numpy(r) for r in results]


def test_kept_unicode_output_is_not_retained_but_aliased_float_buffer_is() -> None:
    """Real programs: a label function that caches its ``<U`` array (TF always converts those)
    vs a scoring function that caches and rewrites a float32 buffer TF wraps without a copy."""
    KEPT_LABELS.clear()
    plain = three_calls(keep_labels, tf.string)
    assert plain[0].tolist() == [b"cat0", b"dog0"]  # TF converted: the first tensor is intact
    KEPT_LABELS.clear()
    with npi.trace() as t:
        traced = three_calls(keep_labels, tf.string)
    assert_same_results(plain, traced, "labels")
    assert not [v for v in t.violations if v.kind == "retained-reference"], \
        f"a kept <U array (TF copies it) was reported:\n{report(t)}"

    KEPT_SCORES.clear()
    plain = three_calls(keep_scores, tf.float32)
    assert plain[0].tolist() == [3.0] * 4, f"TF copied the buffer: no harm to show ({plain[0]})"
    KEPT_SCORES.clear()
    with npi.trace() as bad:
        traced = three_calls(keep_scores, tf.float32)
    assert_same_results(plain, traced, "scores")
    assert [v for v in bad.violations if v.kind == "retained-reference" and "keep_scores" in v.func_name], \
        f"an aliased, rewritten float32 buffer was not reported:\n{report(bad)}"


# -- 12: nothing of the user's is touched ------------------------------------------------------


class NoReprArray(np.ndarray):
    """An ndarray subclass whose ``repr``/``str`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr is not available")

    def __str__(self) -> str:
        raise RuntimeError("str is not available")


class ArrayLike:
    """An object with ``__array__`` whose ``repr`` raises."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        raise RuntimeError("repr is not available")


def returns_subclass(x: np.ndarray) -> np.ndarray:
    return (x * 2).view(NoReprArray)


def returns_array_like(x: np.ndarray) -> ArrayLike:
    return ArrayLike(x * 3)


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str is not available")


RAISED = UnprintableError("boom")


def raises_unprintable(x: np.ndarray) -> np.ndarray:
    raise RAISED


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", to_numpy(call()))
    except Exception as error:  # noqa: BLE001 - the outcome is compared, whatever it is
        try:
            text = str(error)
        except Exception:  # noqa: BLE001
            text = "<str raised>"
        return ("error", type(error).__name__, normalise_token(first_line(text)))


@pytest.mark.parametrize("func", [returns_subclass, returns_array_like], ids=["ndarray-subclass", "array-like"])
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_unprintable_return_passes_through_unchanged(func: Callable, mode: str) -> None:
    """Real program: a function returning an object whose ``__repr__`` raises (a library's
    array type); the call must behave exactly as it does untraced."""
    def call() -> Any:
        if mode == "eager":
            return tf.numpy_function(func, [tf.constant(X3)], tf.float32)
        return tf.function(lambda x: tf.numpy_function(func, [x], tf.float32))(tf.constant(X3))

    plain = outcome(call)
    with npi.trace() as t:
        traced = outcome(call)
    assert plain[0] == traced[0] and plain[0] == "ok", f"untraced {plain!r}, traced {traced!r}\n{report(t)}"
    assert_same_results(plain[1], traced[1])
    assert any(func.__name__ in i.func_name for i in t.invocations), report(t)


def test_exception_with_unprintable_str_propagates_unchanged() -> None:
    """Real program: a function raising an exception whose ``__str__`` raises; eager mode must
    hand back the same exception object, graph mode TF's own error, as untraced."""
    with npi.trace() as t:
        with pytest.raises(BaseException) as eager:
            tf.numpy_function(raises_unprintable, [tf.constant(X3)], tf.float32)
    assert eager.value is RAISED, \
        f"eager mode raised {type(eager.value).__name__} instead of the user's exception\n{report(t)}"

    def graph() -> Any:
        return tf.function(lambda x: tf.numpy_function(raises_unprintable, [x], tf.float32))(tf.constant(X3))

    plain = outcome(graph)
    with npi.trace():
        traced = outcome(graph)
    assert plain[0] == "error", plain
    assert plain == traced, f"graph-mode error differs: untraced {plain!r}, traced {traced!r}"


# -- 13: could-be-stateless only from a complete analysis -------------------------------------


class Augmenter:
    """Stands for an albumentations ``Compose``: a callable whose RNG lives in an attribute."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        noise = self.rng.random(image.shape).astype(np.float32)
        return {"image": image + noise}


AUG = Augmenter(0)


def augment(x: np.ndarray) -> np.ndarray:
    return AUG(image=x)["image"]


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / 255.0).astype(np.float32)


def many_calls(func: Callable) -> list[np.ndarray]:
    ds = tf.data.Dataset.range(150).map(
        lambda i: tf.numpy_function(func, [tf.fill([4], tf.cast(i, tf.float32))], tf.float32))
    return [to_numpy(e) for e in ds]


def test_could_be_stateless_only_when_the_analysis_is_complete() -> None:
    """Real programs: an augmentation calling a global albumentations-style ``Compose`` (random
    state the inspector cannot see) vs a pure normalisation, each called 150 times in tf.data."""
    global AUG
    AUG = Augmenter(0)
    plain = many_calls(augment)
    AUG = Augmenter(0)
    with npi.trace() as t:
        traced = many_calls(augment)
    assert_same_results(plain, traced, "augmented images")
    assert not [h for h in t.hints if h.kind == "could-be-stateless"], \
        f"could-be-stateless advised for a function with hidden random state:\n{report(t)}"

    plain = many_calls(normalize)
    with npi.trace() as pure:
        traced = many_calls(normalize)
    assert_same_results(plain, traced, "normalized")
    assert [h for h in pure.hints if h.kind == "could-be-stateless" and "normalize" in h.func_name], \
        f"no could-be-stateless hint for a pure function called 150 times:\n{report(pure)}"
