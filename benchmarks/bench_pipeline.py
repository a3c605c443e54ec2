"""End-to-end throughput of a ``tf.data`` image-augmentation pipeline, instrumented vs bare.

224x224x3 uint8 images go through ``map(augment, num_parallel_calls=4)``, where ``augment`` is a
typical numpy augmentation (random crop, flip and brightness from a Generator seeded by the
image, then ``astype(float32) / 255``), then ``batch(32)``. Both datasets are built while
tracing is off; they are timed in paired rounds (``bench_common.Paired``): the instrumented one
under ``install()`` (default options), the bare one twice after ``uninstall()``, the instrumented
one again; the ratio is time instrumented / time bare for the same images (bare throughput /
instrumented throughput), the median over rounds.

Where the cost is: the same pipeline with recording alone (checks and capture off), and with
the registry hook alone, recording nothing (the floor of any instrument in TF's PyFunc registry).

tf.data's autotuning is off (``Options().autotune.enabled = False``; the parallelism is fixed at
4 anyway): with it on, about a third of the bare runs ran at exactly 598 us an image, however
fast the others were (418-570 us), whatever the GIL's switch interval, so a run's time said more
about the autotuner's pacing than about the work (rounds' ratios spread by 0.11-0.17, standard
deviation); off, by 0.06-0.07.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench_common import DEFAULT_OPTIONS, Paired, Row, Timing, interleaved, timed_run
from bench_overhead import _hook_only

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

    fixed_pace = tf.data.Options()
    fixed_pace.autotune.enabled = False  # see the module's docstring
    return (
        tf.data.Dataset.from_tensor_slices(images)
        .repeat()
        .take(count)
        .map(map_one, num_parallel_calls=PARALLEL_CALLS)
        .batch(BATCH)
        .with_options(fixed_pace)
    )


def _consume(dataset: Any) -> None:
    for _ in dataset:
        pass


CASE = f"224x224x3 uint8 augmentation, {PARALLEL_CALLS} parallel calls"
RECORDING = "recording alone (checks and capture off)"
HOOK_FLOOR = "registry hook alone, nothing recorded (floor)"


def measure(quick: bool) -> list[Row]:
    import tensorflow as tf

    import tfnp_inspect as npi

    # a run's throughput varies with thread scheduling: runs of about a fifth of a second, many rounds
    count = 256 if quick else 512
    rounds = 8 if quick else 100
    pixels = np.random.default_rng(0).integers(0, 256, (DISTINCT_IMAGES, *IMAGE_SHAPE), dtype=np.uint8)
    images = tf.constant(pixels)
    bare = _dataset(tf.numpy_function, images, count)
    instrumented = _dataset(npi.numpy_function, images, count)
    recorded = []

    def under(options: dict[str, Any]) -> Any:
        def run_instrumented() -> Timing:
            rec = npi.install(**{**DEFAULT_OPTIONS, **options})
            rec.clear()
            try:
                return timed_run(lambda: _consume(instrumented))
            finally:
                npi.uninstall()
                recorded.append(rec.total)

        return run_instrumented

    def run_hooked() -> Timing:
        with _hook_only():
            return timed_run(lambda: _consume(instrumented))

    def run_bare() -> Timing:
        return timed_run(lambda: _consume(bare))

    run_bare()  # warm both pipelines (thread pools, first-call costs) before timing
    under({})()
    paired = interleaved({
        CASE: (under({}), run_bare),
        RECORDING: (under({"checks": "none", "capture": "none"}), run_bare),
        HOOK_FLOOR: (run_hooked, run_bare),
    }, rounds)
    return [_row(case, pair, count, rounds, recorded) for case, pair in paired.items()]


def _row(case: str, pair: Paired, count: int, rounds: int, recorded: list[int]) -> Row:
    note = f"{count} images per run, batch {BATCH}; {pair.spread_note()}"
    if case == CASE and recorded[-1] != count:
        note += f"; recorded {recorded[-1]} of {count} calls"
    goal = GOAL if case == CASE else None
    return Row(
        SECTION, case if case == CASE else f"{CASE}: {case}",
        f"{count / pair.typical_instrumented.wall:.0f} images/s", f"{count / pair.typical_bare.wall:.0f} images/s",
        pair.ratio, pair.cpu_ratio, goal=f"<= {goal:.2f}" if goal else "",
        met=pair.verdict(goal) if goal else None, note=note,
        data={"images": count, "instrumented_s": pair.typical_instrumented.wall, "bare_s": pair.typical_bare.wall,
              "instrumented_cpu_s": pair.typical_instrumented.cpu, "bare_cpu_s": pair.typical_bare.cpu,
              "rounds": rounds, "ratios": pair.ratios},
    )
