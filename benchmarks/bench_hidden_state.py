"""Cost of the hidden-state watch: stateful=False functions that only read a large global array.

    python benchmarks/bench_hidden_state.py [CALLS] [ROUNDS]     # defaults: 2000 5

Each measurement: one tf.function running CALLS calls of the op in a tf.while_loop (per-call
time = total / CALLS); plain (tf.numpy_function, no tracing) and traced (npi.trace(), default
options) alternate, best of ROUNDS each. "watch alone" times StateWatch.snapshot + changes.
The control row (a function that reads no global) shows what tracing costs without the watch.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.checks.hidden_state import StateWatch

BIG = np.arange(64 << 20, dtype=np.float32).reshape(8192, 8192).T   # 256 MiB transposed view
MID = np.arange(4 << 20, dtype=np.float32).reshape(2048, 2048)       # 16 MiB


def reads_big(x):
    return x + BIG[0, 0]


def reads_mid(x):
    return x + MID[1, 1]


def reads_nothing(x):
    return x + np.float32(1)


x = np.ones(16, np.float32)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
R = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def make(fn, numpy_function):
    @tf.function
    def loop(v):
        total = tf.constant(0.0)
        for i in tf.range(N):
            y = numpy_function(fn, [v + tf.cast(i, tf.float32)], tf.float32, stateful=False)
            total += tf.reduce_sum(y)
        return total
    return loop


def per_call(loop):
    start = time.perf_counter()
    loop(x)
    return (time.perf_counter() - start) / N


for name, fn in (("no global (control)", reads_nothing), ("256 MiB transposed", reads_big), ("16 MiB", reads_mid)):
    plain_loop = make(fn, tf.numpy_function)
    plain_loop(x)
    plain, traced = [], []
    for _ in range(R):
        plain.append(per_call(plain_loop))
        with npi.trace() as t:
            traced_loop = make(fn, npi.numpy_function)
            traced.append(per_call(traced_loop))
        assert t.total == N and not t.violations, (t.total, t.violations)
    watch = StateWatch(fn)
    start = time.perf_counter()
    for _ in range(N):
        watch.changes(watch.snapshot())
    cost = (time.perf_counter() - start) / N
    p, q = min(plain), min(traced)
    print(f"{name:22s} plain {p*1e6:7.1f} us/call  traced {q*1e6:7.1f} us/call  ratio {q/p:5.2f}x  "
          f"(watch alone: {cost*1e6:5.1f} us/call, {len(watch.probes)} probes, complete={watch.complete})")
