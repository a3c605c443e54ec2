"""Cost of appending one record to a :class:`~tfnp_inspect.Recorder` from 1, 4 and 8 threads.

The rows stored are real ones: the record of a graph-mode call of a 16-element function, with
start times that advance as a stream of calls would (one every 20 us, threads interleaved).
Each thread calls ``Recorder.store(row)`` (what the instrumented call does per active recorder;
the compiled core inlines its common case) in a tight loop, all released together by a barrier;
the figure is wall time over records stored, with the default capacity so that evictions, and
the aggregates they fold, are part of the cost. It is compared with a bare
``tf.numpy_function`` call measured by the overhead section in the same run.
"""

from __future__ import annotations

import threading
import time

from tfnp_inspect.model.records import C_START_NS

from bench_common import DEFAULT_OPTIONS, Row, duration, verdict
from bench_overhead import scale

SECTION = "recorder append"
CALL_SPACING_NS = 20_000
GOAL_NS = 1000
THREADS = (1, 4, 8)


def sample_row() -> tuple:
    """The stored row of one real graph-mode invocation (default options)."""
    import tensorflow as tf

    import tfnp_inspect as npi

    @tf.function
    def once(x: tf.Tensor) -> tf.Tensor:
        return npi.numpy_function(scale, [x], tf.float32)

    with npi.trace(**DEFAULT_OPTIONS) as recorded:
        once(tf.ones([16]))
    return recorded.recorder.invocations()[0].row()


def _append_seconds(row: tuple, threads: int, per_thread: int) -> float:
    from tfnp_inspect import Recorder

    recorder = Recorder(**DEFAULT_OPTIONS)
    store = recorder.store
    barrier = threading.Barrier(threads + 1)
    start = row[C_START_NS]

    def stream(thread: int) -> list[tuple]:
        return [
            (*row[:C_START_NS], start + (i * threads + thread) * CALL_SPACING_NS, *row[C_START_NS + 1:])
            for i in range(per_thread)
        ]

    def worker(rows: list[tuple]) -> None:
        barrier.wait()
        for each in rows:
            store(each)

    workers = [threading.Thread(target=worker, args=(stream(t),)) for t in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - start
    assert recorder.total == threads * per_thread
    return elapsed


def measure(quick: bool, bare_call_s: float) -> list[Row]:
    row = sample_row()
    records = 200_000 if quick else 800_000
    repetitions = 3 if quick else 5
    rows = []
    for threads in THREADS:
        per_thread = records // threads
        best = min(_append_seconds(row, threads, per_thread) for _ in range(repetitions))
        per_record = best / (per_thread * threads)
        goal = threads == max(THREADS)
        rows.append(Row(
            SECTION, f"{threads} thread{'s' if threads > 1 else ''}",
            f"{per_record * 1e9:.0f} ns/record", f"{duration(bare_call_s)}/bare call",
            per_record / bare_call_s,
            goal=f"<= {GOAL_NS} ns/record" if goal else "",
            met=verdict(per_record * 1e9 <= GOAL_NS) if goal else None,
            note=f"{per_thread * threads} records x {repetitions}, capacity {DEFAULT_OPTIONS['capacity']}",
            data={"threads": threads, "ns_per_record": per_record * 1e9, "bare_call_s": bare_call_s},
        ))
    return rows
