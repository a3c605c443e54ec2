"""Where a recorded 16-element call's time goes inside TF, part by part of the compiled core.

    python benchmarks/core_segments.py            # about 2 minutes
    python benchmarks/core_segments.py 16384      # another size (float32 elements): 64 KiB

Builds a copy of ``_probe_core.c`` with a clock read (``CLOCK_MONOTONIC``) between the parts of
``call`` (into a temporary directory; the installed core is not touched), loads it in place of
the installed one, runs the 16-element loop-carried loop of the overhead benchmark under
``install()`` with a full ring buffer, and prints each part's median time per call over the
runs. Each clock read adds about 25 ns to the part it ends, so small parts read high.

Why this exists: recording costs 4-5 µs a call inside a ``tf.function`` and about 2 µs in a loop
of direct calls. Timed part by part inside TF, no single part dominates: each costs several
times its direct-loop time, spread over every object the core touches (TF's executor runs
between two calls). That is what decides where the remaining overhead can go (see README.md).
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent.parent / "tfnp_inspect" / "recording" / "_probe_core.c"
MODULE = "tfnp_inspect.recording._probe_core"
CALLS, RUNS = 4096, 12

#: (part, the source line that ends it): a mark goes before the line; in the order they run.
PARTS = (
    ("probe._fast", "    int delegate = fast == Py_None"),
    ("switches version", "    if (delegate) {\n        Py_DECREF(fast);\n        return reference"),
    ("flags and call counter", "    /* -- before the call: describe the inputs"),
    ("inputs described", "    /* -- the call itself"),
    ("the function (TF's wrapper and func)", "    seq = PyIter_Next(seq_counter);"),
    ("call number, retained references", "    /* -- mutated inputs"),
    ("inputs hashed again", "    /* -- outputs ----"),
    ("outputs described", "    if (fast_flag(fast, F_TOUT_CHECK)"),
    ("checks", "    /* -- the row: "),
    ("thread ident", "    PyObject *name = ident != NULL ? thread_name(ident) : NULL;"),
    ("thread name", "    PyObject *process = name != NULL"),
    ("the row (a PackedRow, or a tuple where something was found)", "    if (store(PyTuple_GET_ITEM(fast,"),
    ("stored (eviction and folding included)", "    ok = 1;\n"),
)
FUNCTION_PART = 4


def instrumented_source() -> str:
    source = SOURCE.read_text()
    for index, (part, anchor) in enumerate(PARTS):
        if source.count(anchor) != 1:
            raise SystemExit(f"core_segments.py: the anchor of {part!r} is not in _probe_core.c once; update PARTS")
        source = source.replace(anchor, f"    SEGMENT_MARK({index});\n{anchor}")
    entry = "    PyObject *probe = argv[0], *func = argv[1], *args = argv[2], *plan = argv[3];"
    methods = "static PyMethodDef core_methods[] = {"
    if source.count(entry) != 1 or source.count(methods) != 1:
        raise SystemExit("core_segments.py: core_call's entry or the method table moved; update this script")
    source = source.replace(entry, f"    long long segment_last = segment_now();\n{entry}")
    timing = f"""
static long long segment_ns[{len(PARTS)}], segment_calls;
static long long segment_now(void)
{{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}}
#define SEGMENT_MARK(k) do {{ long long now_ = segment_now(); segment_ns[k] += now_ - segment_last; \\
                             segment_last = now_; segment_calls += (k) == {len(PARTS) - 1}; }} while (0)
static PyObject *
segments(PyObject *module, PyObject *unused)
{{
    PyObject *times = PyList_New({len(PARTS)} + 1);
    for (int k = 0; times != NULL && k < {len(PARTS)}; k++) {{
        PyList_SET_ITEM(times, k, PyLong_FromLongLong(segment_ns[k]));
        segment_ns[k] = 0;
    }}
    if (times != NULL) {{
        PyList_SET_ITEM(times, {len(PARTS)}, PyLong_FromLongLong(segment_calls));
    }}
    segment_calls = 0;
    return times;
}}
"""
    call_comment = "/* call(probe, func, args, plan, eager_inputs=())"
    source = source.replace(call_comment, timing + call_comment, 1)
    return source.replace(methods, methods + '\n    {"segments", segments, METH_NOARGS, NULL},')


def build(directory: Path, source_text: str | None = None) -> Path:
    """Build a copy of the core (this script's instrumented one unless ``source_text`` is given)
    into ``directory``; the path of the built module."""
    import numpy
    from setuptools import Distribution, Extension

    source = directory / "_probe_core.c"
    source.write_text(instrumented_source() if source_text is None else source_text)
    extension = Extension("_probe_core", [str(source)], include_dirs=[numpy.get_include()])
    command: Any = Distribution({"ext_modules": [extension]}).get_command_obj("build_ext")
    command.build_lib = command.build_temp = str(directory)
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath("_probe_core"))


def main() -> None:
    elements = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    with tempfile.TemporaryDirectory() as directory:
        built = build(Path(directory))
        spec = importlib.util.spec_from_file_location(MODULE, built)
        assert spec is not None and spec.loader is not None
        core = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(core)
        sys.modules[MODULE] = core  # before tfnp_inspect imports its own

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import tensorflow as tf

        import tfnp_inspect as npi
        from tfnp_inspect.recording.probe import CORE

        from bench_overhead import _loop

        if CORE != "compiled":
            raise SystemExit("core_segments.py: the instrumented core did not load")
        loop, x, count = _loop(npi.numpy_function, True), tf.ones([elements]), tf.constant(CALLS)
        npi.install()
        loop(x, count)
        loop(x, count)  # the buffer full: every call evicts
        per_part: list[list[float]] = [[] for _ in PARTS]
        walls = []
        for _ in range(RUNS):
            core.segments()
            started = time.perf_counter()
            loop(x, count)
            walls.append((time.perf_counter() - started) / CALLS * 1e6)
            *times, calls = core.segments()
            for index, nanoseconds in enumerate(times):
                per_part[index].append(nanoseconds / calls / 1e3)
        npi.uninstall()
    medians = [statistics.median(values) for values in per_part]
    print(f"{elements}-element loop-carried call under install(): {statistics.median(walls):.1f} us a call "
          f"(median of {RUNS} runs of {CALLS} calls)")
    for (part, _), median in zip(PARTS, medians, strict=True):
        print(f"  {median:7.3f} us  {part}")
    recording = sum(medians) - medians[FUNCTION_PART]
    print(f"  {recording:7.3f} us  the core without the function (clock reads included)")


if __name__ == "__main__":
    main()
