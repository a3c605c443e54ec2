"""What recording would cost inside TF if a call made no Python object: the floor of a compact record.

    python benchmarks/core_floor.py              # about 10 minutes
    python benchmarks/core_floor.py --quick      # about 1 minute, fewer rounds

Inside TF the cost of a recorded call follows the objects it makes, keeps and frees
(``core_segments.py``). A row of Python objects (a CallRow tuple, with the tuples of its inputs and
outputs, their descriptions, fingerprints, samples and numbers: some thirteen objects) was the
last big lever; this script measured what a record without them could reach at best, before the
compiled core got its PackedRow (one object per call, its fields as C values), and it compares the
two now:

It builds a copy of ``_probe_core.c`` with ``core_floor.c`` added (into a temporary directory;
the installed core is not touched) and loads it in place of the installed one. Its
``compact_call`` records a call as the compiled core's common case does: inputs and outputs
described (shape, dtype, flags), fingerprinted (sampled or whole, by the same turns), their stats
samples copied, the mutation and retained-reference checks and the aliasing of outputs, thread
ident and name, timing. It writes all that into a preallocated arena of 10,000 records and
releases the oldest record's references when its slot comes round again, keeping running totals
of the durations as a fold would. It makes no Python object and calls no Python code per call.
It leaves out what a real design would need on top: the per-op aggregates beyond those totals
(shapes, overlaps, per-function stats), the readers that turn records back into rows, the panel's
feed. So its cost is a lower bound of that design's.

Below it: the byte checks alone (``bytes_call``: the inputs hashed before and after the call and
the outputs hashed, by the same turns, nothing else described, nothing kept), what the default
checks must read whatever the record looks like.

Between the compact record and today's core: today's core with its rows made but not kept (the
recorder's store appends them to a deque of no length, which frees them at once). It tells what
making a call's row costs apart from keeping, folding and freeing it later.

Timed like ``run.py``'s rows, in paired ABBA rounds against the bare call in one process: the
16-element loop-carried loop of the overhead benchmark and the ``tf.data`` pipeline of
``bench_pipeline.py``, each under the five variants (the hook alone is the floor of any instrument
in TF's PyFunc registry).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from core_segments import MODULE, SOURCE, build

FLOOR_SOURCE = Path(__file__).resolve().with_name("core_floor.c")
METHOD_TABLE = "static PyMethodDef core_methods[] = {"
FLOOR_METHODS = (
    '\n    {"compact_call", (PyCFunction)(void (*)(void))floor_call, METH_FASTCALL, NULL},'
    '\n    {"bytes_call", (PyCFunction)(void (*)(void))bytes_call, METH_FASTCALL, NULL},'
    '\n    {"floor_stats", floor_stats, METH_NOARGS, NULL},'
)
TODAY, DROPPED = "today's core", "today's rows, not kept"
COMPACT, BYTES, HOOK = "compact record (floor)", "byte checks alone", "registry hook alone"


def floor_source() -> str:
    """The core's source with ``core_floor.c`` before its method table, and its two functions in it."""
    source = SOURCE.read_text()
    if source.count(METHOD_TABLE) != 1:
        raise SystemExit("core_floor.py: the core's method table moved; update this script")
    return source.replace(METHOD_TABLE, f"{FLOOR_SOURCE.read_text()}\n{METHOD_TABLE}{FLOOR_METHODS}")


def load(directory: Path) -> Any:
    """Build the copy and import it under the installed core's name (before tfnp_inspect does)."""
    built = build(directory, floor_source())
    spec = importlib.util.spec_from_file_location(MODULE, built)
    assert spec is not None and spec.loader is not None
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    sys.modules[MODULE] = core
    return core


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as directory:
        core = load(Path(directory))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import tensorflow as tf

        import tfnp_inspect as npi
        from tfnp_inspect.recording import session, wrapper
        from tfnp_inspect.recording.probe import CORE
        from tfnp_inspect.recording.recorder import EVICTION_BATCH, Recorder

        from bench_common import DEFAULT_OPTIONS, Paired, interleaved, timed_run
        from bench_overhead import _loop
        from bench_pipeline import DISTINCT_IMAGES, IMAGE_SHAPE, _consume, _dataset

        if CORE != "compiled":
            raise SystemExit("core_floor.py: the copy of the core did not load")
        tf.get_logger().setLevel("ERROR")
        today_call = wrapper.call_probe

        @contextlib.contextmanager
        def recording(call: Callable[..., Any]) -> Iterator[Recorder]:
            recorder = Recorder(**DEFAULT_OPTIONS)
            session.activate(recorder)
            wrapper.call_probe = call
            try:
                yield recorder
            finally:
                wrapper.call_probe = today_call
                session.deactivate(recorder)

        def straight(probe: Any, func: Any, args: Any, plan: Any, *eager_inputs: Any) -> Any:
            return func(*args)

        def variants(run: Callable[[], Any], fill: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
            """Each variant's timed run, its ring buffer (or arena) filled first: the steady state."""
            timed = {}
            for case, call in ((TODAY, today_call), (DROPPED, today_call), (COMPACT, core.compact_call),
                               (BYTES, core.bytes_call), (HOOK, straight)):
                with recording(call) as recorder:
                    fill()
                if case == DROPPED:  # the core's own store appends to a deque that keeps nothing
                    discard = deque(maxlen=0)
                    recorder._hot = (discard.append, discard, *recorder._hot[2:])

                def timed_variant(call: Callable[..., Any] = call, recorder: Recorder = recorder) -> Any:
                    session.activate(recorder)
                    wrapper.call_probe = call
                    try:
                        return timed_run(run)
                    finally:
                        wrapper.call_probe = today_call
                        session.deactivate(recorder)

                timed[case] = timed_variant
            return timed

        x, calls = tf.ones([16]), tf.constant(EVICTION_BATCH)
        bare_loop, loop = _loop(tf.numpy_function, True), _loop(npi.numpy_function, True)
        bare_loop(x, calls)
        loop(x, calls)
        fill_count = tf.constant(10_000 + EVICTION_BATCH)
        loop_variants = variants(lambda: loop(x, calls), lambda: loop(x, fill_count))
        loop_bare = lambda: timed_run(lambda: bare_loop(x, calls))  # noqa: E731

        pixels = np.random.default_rng(0).integers(0, 256, (DISTINCT_IMAGES, *IMAGE_SHAPE), dtype=np.uint8)
        images = tf.constant(pixels)
        bare_pipeline, pipeline = _dataset(tf.numpy_function, images, 512), _dataset(npi.numpy_function, images, 512)
        _consume(bare_pipeline)
        pipeline_variants = variants(lambda: _consume(pipeline), lambda: _consume(pipeline))
        pipeline_bare = lambda: timed_run(lambda: _consume(bare_pipeline))  # noqa: E731

        results: dict[tuple[str, str], Paired] = {}
        for title, timed, bare, rounds in (
            ("16 elements, loop-carried (1024 calls a run)", loop_variants, loop_bare, 10 if quick else 60),
            ("tf.data pipeline, 4 parallel calls (512 images a run)", pipeline_variants, pipeline_bare,
             4 if quick else 90),
        ):
            paired = interleaved({case: (run, bare) for case, run in timed.items()}, rounds)
            results.update({(title, case): pair for case, pair in paired.items()})
        stats = core.floor_stats()
    print(f"compact records stored {stats['stored']}, skipped {stats['skipped']}, evicted {stats['folded']}")
    for (title, case), pair in results.items():
        low, high = pair.interval
        bare_s = pair.typical_bare.wall
        extra_us = (pair.ratio - 1) * bare_s * 1e6 / (EVICTION_BATCH if title.startswith("16") else 512)
        print(f"{title:55s} {case:24s} {pair.ratio:.3f} ({low:.3f}-{high:.3f}), "
              f"about {extra_us:5.2f} us a call over bare")


if __name__ == "__main__":
    main()
