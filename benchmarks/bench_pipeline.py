"""End-to-end throughput of a ``tf.data`` image-augmentation pipeline, instrumented vs bare.

224x224x3 uint8 images go through ``map(augment, num_parallel_calls=4)``, where ``augment`` is a
typical numpy augmentation (random crop, flip and brightness from a Generator seeded by the
image, then ``astype(float32) / 255``), then ``batch(32)``. Both datasets are built while
tracing is off; each repetition iterates the instrumented one under ``install()`` (default
options) and then the bare one after ``uninstall()``; the ratio is time instrumented / time bare
for the same images (bare throughput / instrumented throughput).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench_common import DEFAULT_OPTIONS, Row, Timing, interleaved, timed_run

SECTION = "tf.data pipeline"
GOAL = 1.03  # issue 14
IMAGE_SHAPE = (224, 224, 3)
CROP = 200
PARALLEL_CALLS = 4
BATCH = 32
DISTINCT_IMAGES = 64


def augment(image: np.ndarray) -> np.ndarray:
    """Random crop, horizontal flip and brightness, reproducible per image."""
    rng = np.random.default_rng(image[0, :16, 0])
    top, left = rng.integers(0, IMAGE_SHAPE[0] - CROP + 1, size=2)
    out = image[top:top + CROP, left:left + CROP]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = out.astype(np.float32) / 255
    out *= rng.uniform(0.8, 1.2)
    return np.clip(out, 0.0, 1.0, out=out)


def _dataset(numpy_function: Any, images: Any, count: int) -> Any:
    import tensorflow as tf

    def map_one(image: Any) -> Any:
        out = numpy_function(augment, [image], tf.float32)
        out.set_shape((CROP, CROP, IMAGE_SHAPE[2]))
        return out

    return (
        tf.data.Dataset.from_tensor_slices(images)
        .repeat()
        .take(count)
        .map(map_one, num_parallel_calls=PARALLEL_CALLS)
        .batch(BATCH)
    )


def _consume(dataset: Any) -> None:
    for _ in dataset:
        pass


def measure(quick: bool) -> list[Row]:
    import tensorflow as tf

    import tfnp_inspect as npi

    count = 1000 if quick else 2000
    repetitions = 4 if quick else 10
    pixels = np.random.default_rng(0).integers(0, 256, (DISTINCT_IMAGES, *IMAGE_SHAPE), dtype=np.uint8)
    images = tf.constant(pixels)
    bare = _dataset(tf.numpy_function, images, count)
    instrumented = _dataset(npi.numpy_function, images, count)
    recorded = []

    def run_instrumented() -> Timing:
        rec = npi.install(**DEFAULT_OPTIONS)
        rec.clear()
        try:
            return timed_run(lambda: _consume(instrumented))
        finally:
            npi.uninstall()
            recorded.append(rec.total)

    def run_bare() -> Timing:
        return timed_run(lambda: _consume(bare))

    run_bare()  # warm both pipelines (thread pools, first-call costs) before timing
    run_instrumented()
    pair = interleaved({"pipeline": (run_instrumented, run_bare)}, repetitions)["pipeline"]
    note = f"{count} images x {repetitions}, batch {BATCH}"
    if recorded[-1] != count:
        note += f"; recorded {recorded[-1]} of {count} calls"
    return [Row(
        SECTION, f"224x224x3 uint8 augmentation, {PARALLEL_CALLS} parallel calls",
        f"{count / pair.instrumented.wall:.0f} images/s", f"{count / pair.bare.wall:.0f} images/s",
        pair.ratio, pair.cpu_ratio, goal=f"<= {GOAL:.2f}", met=pair.ratio <= GOAL, note=note,
        data={"images": count, "instrumented_s": pair.instrumented.wall, "bare_s": pair.bare.wall,
              "instrumented_cpu_s": pair.instrumented.cpu, "bare_cpu_s": pair.bare.cpu,
              "repetitions": repetitions, "recorded": recorded[-1]},
    )]
