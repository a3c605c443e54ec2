"""Instructions per call that tfnp_inspect adds, counted by valgrind (not timed).

    python benchmarks/instructions.py            # about 20 minutes: TF imports slowly under valgrind

Wall-time ratios of a ~50 us call move by 10% from run to run on a shared machine; instruction
counts do not (valgrind's callgrind counts the same total for the same program and inputs). This
calls TensorFlow's own PyFunc registry entry (``FuncRegistry.__call__``, what TF's kernel calls
for every graph-mode call) in a Python loop, with the registered function of a real
``tf.function`` (16 float32 in, ``x * 1.0001`` out), bare and under ``install()`` with each core,
and reports the slope: instructions per call between a run of 1,000 and one of 5,000 calls.
'default' keeps every record (the call alone); 'evicting' keeps 100, so that every call also pays
for folding one evicted record into the aggregates and freeing it, as in a long-running program.
What it leaves out is TF's C++ side of the call (the executor, the kernel, the tensor
conversions), the same with and without tfnp_inspect.

Needs valgrind (Debian's ``valgrind`` package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

PROGRAM = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
from tensorflow.python.ops import script_ops
import tfnp_inspect as npi

def scale(x):
    return x * np.float32(1.0001)

seen = {}
original = script_ops.FuncRegistry.__call__
def spy(self, token, device, args):
    seen["token"], seen["args"] = token, list(args)
    return original(self, token, device, args)
script_ops.FuncRegistry.__call__ = spy
@tf.function
def once(x):
    y = tf.numpy_function(scale, [x], tf.float32)
    y.set_shape(x.shape)
    return y
once(tf.ones([16]))
script_ops.FuncRegistry.__call__ = original
registry, token, args = script_ops._py_funcs, seen["token"], seen["args"]
mode, calls = sys.argv[1], int(sys.argv[2])
if mode == "default":
    npi.install(capacity=10**6)  # nothing evicted: the call alone
elif mode == "evicting":
    npi.install(capacity=100)  # every call evicts a record (in batches): folding and freeing it counted
call = type(registry).__call__
for _ in range(300 + calls):  # 300: past each op's first calls (the hidden-state watch)
    call(registry, token, None, args)
"""

RUNS = (("bare", "auto"), ("default", "compiled"), ("default", "python"), ("evicting", "compiled"),
        ("evicting", "python"))


def instructions(mode: str, calls: int, core: str) -> int:
    env = {**os.environ, "TFNP_INSPECT_CORE": core}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", PROGRAM, mode,
         str(calls)],
        capture_output=True, text=True, env=env, check=True,
    )
    found = re.search(r"refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no instruction count:\n{done.stderr[-2000:]}")
    return int(found[1].replace(",", ""))


def main() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    per_call = {}
    for mode, core in RUNS:
        few, many = instructions(mode, 1000, core), instructions(mode, 5000, core)
        per_call[(mode, core)] = (many - few) / 4000
        print(f"{mode:8s} core={core:9s} {per_call[(mode, core)]:9.0f} instructions per call", flush=True)
    bare = per_call[("bare", "auto")]
    for mode, core in RUNS[1:]:
        extra = per_call[(mode, core)] - bare
        print(f"added by tfnp_inspect ({mode}, {core} core): {extra:.0f} instructions per call, "
              f"{extra / bare:.1%} of TF's own Python side of the call")


if __name__ == "__main__":
    main()
