"""Smoke run of the public API on the oldest TensorFlow the README claims (run by smoke_oldest_tf.sh).

No benchmarks: one small workload (a tf.function around a numpy_function that writes into its
input, its clean twin, a tf.data map, eager calls) runs once with plain TensorFlow and once
inside ``npi.trace()``. The recording must find the in-place write, stay silent about the clean
functions, and leave every result as plain TensorFlow computed it. Exits 1 on the first failed check.
"""

from __future__ import annotations

import sys
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfnp_inspect as npi  # noqa: E402

TF_IMPORTED = time.perf_counter()


def add_one_in_place(x):
    x += 1  # in graph mode x is a view of the input tensor's buffer: this rewrites the tensor
    return x


def add_one(x):
    return x + 1  # a new array: the clean twin


def double(x):
    return (x * 2).astype(np.float32)


def graph_step(func):
    @tf.function
    def step(x):
        return tf.numpy_function(func, [x], tf.float32)

    return step


DATA_ITEMS = 6
EXPECTED_CALLS = 2 + DATA_ITEMS + 2  # graph (mutating, clean), tf.data map, eager (mutating, clean)


def workload() -> dict[str, np.ndarray]:
    """Every kind of call once; fresh tensors and freshly traced functions on each run."""
    results = {
        "graph, writes its input": graph_step(add_one_in_place)(tf.range(8, dtype=tf.float32)).numpy(),
        "graph, clean twin": graph_step(add_one)(tf.range(8, dtype=tf.float32)).numpy(),
    }
    dataset = tf.data.Dataset.range(DATA_ITEMS).map(
        lambda i: tf.numpy_function(double, [tf.cast(i, tf.float32)], tf.float32),
        num_parallel_calls=2,
        deterministic=True,
    )
    results["tf.data map"] = np.array([item.numpy() for item in dataset])
    results["eager, writes its input"] = tf.numpy_function(
        add_one_in_place, [tf.constant([1.0, 2.0])], tf.float32
    ).numpy()
    results["eager, clean twin"] = tf.numpy_function(add_one, [tf.constant([1.0, 2.0])], tf.float32).numpy()
    return results


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


def main() -> None:
    print(f"TensorFlow {tf.__version__}, numpy {np.__version__}, tfnp_inspect {npi.__version__}, "
          f"Python {sys.version.split()[0]}")
    plain = workload()
    with npi.trace() as t:
        traced = workload()

    for name, expected in plain.items():
        check(np.array_equal(traced[name], expected), f"{name}: {traced[name].tolist()} as with plain TensorFlow")
    check(len(t.invocations) == EXPECTED_CALLS, f"{len(t.invocations)} of {EXPECTED_CALLS} calls recorded")
    recorded = {call.func_name for call in t.invocations}
    check(recorded == {"add_one_in_place", "add_one", "double"}, f"functions recorded: {sorted(recorded)}")
    kinds = {}
    for violation in t.violations:
        kinds.setdefault(violation.func_name, set()).add(violation.kind)
    check("mutated-input" in kinds.get("add_one_in_place", ()),
          f"the in-place write is found: add_one_in_place -> {sorted(kinds.get('add_one_in_place', ()))}")
    writes = [v for v in t.violations if v.kind == "mutated-input"]
    check(len(writes) == 2, f"{len(writes)} mutated-input violations, one per call (graph and eager)")
    check(not kinds.get("add_one") and not kinds.get("double"),
          f"the clean functions are silent: {({k: sorted(v) for k, v in kinds.items() if k != 'add_one_in_place'})}")

    done = time.perf_counter()
    print(f"smoke run passed: imports {TF_IMPORTED - START:.1f} s, workload {done - TF_IMPORTED:.1f} s")


if __name__ == "__main__":
    main()
