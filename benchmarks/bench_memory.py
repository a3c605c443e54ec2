"""Resident-set growth over a million recorded calls: it must level off once the buffer is full.

Each capture level runs in a fresh subprocess (``python bench_memory.py CAPTURE CALLS``) so
that nothing else in the process moves its RSS. The calls are real graph-mode calls: one
``tf.function`` with a ``tf.range`` loop of ``tfnp_inspect.numpy_function`` on 16 float32
elements, run in ten equal chunks under ``install()`` (default capacity and byte budget).
That is the path users take (TF's threads, zero-copy inputs, the full probe), at about
40 us a call; an eager loop would cost a tf.constant per call and drive a different path.
RSS is read after 10%, 50% and 100% of the calls; once the ring buffer is full (10,000
records, 1% of the calls) every new record evicts an old one, so the second half must add
next to nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np

from bench_common import DEFAULT_OPTIONS, MIB, Row, mebibytes, rss_bytes, verdict

SECTION = "memory"
CAPTURES = ("summary", "full")
CHUNKS = 10
#: Second-half growth as a fraction of first-half growth that still counts as flat.
FLAT_GOAL = 0.10


def negate(x: np.ndarray) -> np.ndarray:
    """A fresh output each call whose values stay bounded over a million iterations."""
    return np.negative(x)


def record_size(row: Any, shared: set[int]) -> int:
    """Bytes one stored row holds on its own (the call site and process tuples are shared; a
    PackedRow holds its fields and samples in its own memory, what ``sys.getsizeof`` gives)."""
    if id(row) in shared:
        return 0
    if isinstance(row, np.ndarray):
        return sys.getsizeof(row) + (row.nbytes if row.base is None else 0)
    if isinstance(row, tuple):
        return sys.getsizeof(row) + sum(record_size(item, shared) for item in row)
    if isinstance(row, np.dtype) or row is None or isinstance(row, bool):
        return 0  # shared singletons
    return sys.getsizeof(row)


def child(capture: str, calls: int) -> dict[str, Any]:
    """Run in the subprocess: make ``calls`` recorded calls, report RSS along the way."""
    import tensorflow as tf

    import tfnp_inspect as npi

    @tf.function
    def loop(x: Any, n: Any) -> Any:
        for _ in tf.range(n):
            y = npi.numpy_function(negate, [x], tf.float32)
            y.set_shape(x.shape)
            x = y
        return x

    x = tf.ones([16])
    chunk = tf.constant(calls // CHUNKS)
    loop(x, chunk)  # trace and warm TensorFlow's allocator with tracing off
    rec = npi.install(**{**DEFAULT_OPTIONS, "capture": capture})
    try:
        rss = {"0%": rss_bytes()}
        for index in range(1, CHUNKS + 1):
            loop(x, chunk)
            if index in (1, 5, 10):
                rss[f"{index * 100 // CHUNKS}%"] = rss_bytes()
    finally:
        npi.uninstall()
    stored, _, _ = rec.rows_since(rec.total - 1, rec.clears)
    row = stored[-1]  # as the recorder keeps it: a CallRow tuple, or the compiled core's PackedRow
    shared = {id(row[1]), id(row[11])}
    return {
        "capture": capture, "calls": rec.total, "kept": len(rec), "rss": rss,
        "record_bytes": record_size(row, shared), "captured_bytes": rec.captured_bytes,
    }


def measure(quick: bool) -> list[Row]:
    calls = 100_000 if quick else 1_000_000
    rows = []
    for capture in CAPTURES:
        completed = subprocess.run(
            [sys.executable, __file__, capture, str(calls)],
            capture_output=True, text=True, check=True,
        )
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        rss = result["rss"]
        first_half = rss["50%"] - rss["0%"]
        second_half = rss["100%"] - rss["50%"]
        ratio = second_half / first_half if first_half > 0 else float("inf")
        capacity = DEFAULT_OPTIONS["capacity"]
        bound = capacity * result["record_bytes"] + (DEFAULT_OPTIONS["max_capture_bytes"] if capture == "full" else 0)
        rows.append(Row(
            SECTION, f"{result['calls']:,} calls, capture {capture!r}",
            "RSS " + " / ".join(f"{mebibytes(rss[p] - rss['0%'])}" for p in ("10%", "50%", "100%"))
            + " at 10/50/100%",
            f"first half {mebibytes(first_half)}, second {mebibytes(second_half)}", ratio,
            goal=f"second/first <= {FLAT_GOAL}", met=verdict(ratio <= FLAT_GOAL),
            note=f"RSS before {rss['0%'] / MIB:.0f} MiB; buffer holds {result['kept']:,}; "
            f"~{result['record_bytes']} B/record, "
            f"bound capacity x record{' + budget' if capture == 'full' else ''} = {bound / MIB:.0f} MiB",
            data=result,
        ))
    return rows


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
