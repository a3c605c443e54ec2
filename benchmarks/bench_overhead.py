"""Per-call overhead of the instrumented ``numpy_function`` and the cost of fingerprinting.

Per-call overhead: one ``tf.function`` runs a ``tf.range`` loop whose body calls
``numpy_function(scale, [x], tf.float32)`` on the loop-carried ``x`` (so TensorFlow can neither
fold nor prune the calls, even when ``stateful=False``). The instrumented loop is built with
``tfnp_inspect.numpy_function``; the bare loop with TensorFlow's own ``tf.numpy_function``,
traced while nothing is installed (once tracing is on, ``tf.numpy_function`` itself is patched
and TF's PyFunc registry is observed, so a bare loop must also be *timed* with tracing off).
Every loop is traced before anything is timed; then, for each variant in turn, round after
round: ``install(**mode)`` -> time the instrumented loop -> ``uninstall()`` -> time the bare
loop. The best of each is kept.

Fingerprinting: ``tfnp_inspect.model.fingerprints.fingerprint`` (xxh3) of a 64 MiB float32 array against
``np.copy`` of it, timed in the same rounds; the 64 MiB loops' extra time per MiB of input and
output is compared with the same copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench_common import (
    DEFAULT_OPTIONS,
    MIB,
    Pair,
    Row,
    Timing,
    duration,
    interleaved,
    size_label,
    timed_run,
)

SECTION = "per-call overhead"
# the goals of issue 14, default mode
DEFAULT_GOAL = 1.10
SMALL_LOOP_GOAL = 1.05  # 16 elements, loop-carried
PER_MIB_GOAL = 0.35  # extra time per MiB of input+output, over np.copy's


@dataclass(frozen=True, eq=False)
class Mode:
    """One way of running the instrumented loop."""

    label: str
    options: dict[str, Any]
    stateful: bool
    goal: float | None = None

    def goal_for(self, size: Size) -> float | None:
        return SMALL_LOOP_GOAL if self.goal is not None and size.elements == 16 else self.goal


MODES = (
    Mode("checks off", {"checks": "none"}, True),
    Mode("default", {}, True, DEFAULT_GOAL),
    Mode("stateful=False, every check", {"checks": "all"}, False),
    Mode("capture 'full'", {"capture": "full"}, True),
    Mode("byte_checks='every-call'", {"byte_checks": "every-call"}, True),
)


@dataclass(frozen=True)
class Size:
    elements: int
    iterations: int  # calls per timed run (full run; --quick uses fewer)
    quick_iterations: int

    def calls(self, quick: bool) -> int:
        return self.quick_iterations if quick else self.iterations

    @property
    def nbytes(self) -> int:
        return self.elements * 4

    @property
    def label(self) -> str:
        return "16 elements" if self.elements == 16 else size_label(self.nbytes)


#: About 0.1 s per timed run (full mode): short runs, many rounds (see ``interleaved``). Large
#: arrays are hashed whole on one call in FULL_CHECK_EVERY (16): every run makes a multiple of
#: 16 calls, so that each pays its share of them.
SIZES = (
    Size(16, 2000, 1000),
    Size(16 << 10, 1504, 608),  # 64 KiB
    Size(1 << 20, 64, 32),  # 4 MiB
    Size(16 << 20, 16, 16),  # 64 MiB
)


def scale(x: np.ndarray) -> np.ndarray:
    """The loop's function: one pass over the input into a fresh output, like most real ones."""
    return x * np.float32(1.0001)


def _loop(numpy_function: Any, stateful: bool) -> Any:
    import tensorflow as tf

    @tf.function
    def loop(x: Any, n: Any) -> Any:
        for _ in tf.range(n):
            y = numpy_function(scale, [x], tf.float32, stateful=stateful)
            y.set_shape(x.shape)
            x = y
        return x

    return loop


def _independent_loop(numpy_function: Any) -> Any:
    """16 elements again, but each iteration's call is independent of the previous one (TF can
    overlap the surrounding ops with it): a bare call costs about half as much as in the
    loop-carried loop, so the same instrumentation cost is a larger ratio."""
    import tensorflow as tf

    @tf.function
    def loop(x: Any, n: Any) -> Any:
        total = tf.zeros_like(x)
        for i in tf.range(n):
            y = numpy_function(scale, [x + tf.cast(i, tf.float32)], tf.float32)
            y.set_shape(x.shape)
            total += y
        return total

    return loop


FINGERPRINT = "fingerprint vs np.copy"
INDEPENDENT = "16 elements, default, independent iterations"


def measure(quick: bool) -> tuple[list[Row], dict[str, float]]:
    """Rows for every size and mode and for fingerprinting, plus the bare call time (for the
    recorder section)."""
    import tensorflow as tf

    import tfnp_inspect as npi
    from tfnp_inspect.model.fingerprints import fingerprint
    from tfnp_inspect.recording.probe import FULL_CHECK_CALLS

    repetitions = 5 if quick else 12
    # one tf.function per size and variant, built from one code object: TF counts their first
    # traces as retracing and warns; that is expected here
    tf.get_logger().setLevel("ERROR")
    bare = {(size, stateful): _loop(tf.numpy_function, stateful) for size in SIZES for stateful in (True, False)}
    instrumented = {key: _loop(npi.numpy_function, key[1]) for key in bare}
    assert not npi.is_active(), "the bare loops must be traced with tracing off"
    inputs = {size: tf.ones([size.elements], tf.float32) for size in SIZES}
    for (size, _), loop in (*bare.items(), *instrumented.items()):  # trace and warm them all first
        loop(inputs[size], tf.constant(1))
    # each op's first FULL_CHECK_CALLS calls hash large arrays whole, once per op: the timed runs
    # measure the steady state of a long-running program
    npi.install(**DEFAULT_OPTIONS)
    try:
        for (size, _), loop in instrumented.items():
            loop(inputs[size], tf.constant(FULL_CHECK_CALLS))
    finally:
        npi.uninstall()

    recorded: dict[tuple[Size, Mode], tuple[int, int]] = {}

    def loop_runs(size: Size, mode: Mode) -> tuple[Callable[[], Timing], Callable[[], Timing]]:
        x, count = inputs[size], tf.constant(size.calls(quick))
        instrumented_loop, bare_loop = instrumented[(size, mode.stateful)], bare[(size, mode.stateful)]

        def run_instrumented() -> Timing:
            rec = npi.install(**{**DEFAULT_OPTIONS, **mode.options})
            rec.clear()
            try:
                timing = timed_run(lambda: instrumented_loop(x, count))
            finally:
                npi.uninstall()
            recorded[(size, mode)] = (rec.total, rec.payloads_dropped)
            return timing

        return run_instrumented, lambda: timed_run(lambda: bare_loop(x, count))

    independent_bare, independent = _independent_loop(tf.numpy_function), _independent_loop(npi.numpy_function)
    small, small_count = inputs[SIZES[0]], tf.constant(SIZES[0].calls(quick))
    independent_bare(small, tf.constant(1))
    independent(small, tf.constant(1))

    def run_independent() -> Timing:
        npi.install(**DEFAULT_OPTIONS)
        try:
            return timed_run(lambda: independent(small, small_count))
        finally:
            npi.uninstall()

    big = np.random.default_rng(0).random(SIZES[-1].elements, dtype=np.float32)
    runs: dict[Any, tuple[Callable[[], Timing], Callable[[], Timing]]] = {
        (size, mode): loop_runs(size, mode) for size in SIZES for mode in MODES
    }
    runs[FINGERPRINT] = (lambda: timed_run(lambda: fingerprint(big)), lambda: timed_run(lambda: np.copy(big)))
    runs[INDEPENDENT] = (run_independent, lambda: timed_run(lambda: independent_bare(small, small_count)))
    best = interleaved(runs, repetitions)

    rows: list[Row] = []
    per_call: dict[tuple[str, str], tuple[float, float]] = {}
    for key, pair in best.items():
        if key in (FINGERPRINT, INDEPENDENT):
            continue
        size, mode = key
        n = size.calls(quick)
        per_call[(size.label, mode.label)] = (pair.instrumented.wall / n, pair.bare.wall / n)
        recorded_calls, dropped = recorded[key]
        notes = [f"{n} calls x {repetitions}"]
        if recorded_calls != n:
            notes.append(f"recorded {recorded_calls} of {n} calls")
        if mode.options.get("capture") == "full" and dropped:
            notes.append(f"payloads of {dropped}/{recorded_calls} calls over the 64 MiB budget")
        goal = mode.goal_for(size)
        rows.append(Row(
            SECTION, f"{size.label}, {mode.label}" + ("" if mode.stateful else " (vs bare stateful=False)"),
            f"{duration(pair.instrumented.wall / n)}/call", f"{duration(pair.bare.wall / n)}/call",
            pair.ratio, pair.cpu_ratio,
            goal=f"<= {goal:.2f}" if goal else "",
            met=pair.ratio <= goal if goal else None,
            note="; ".join(notes),
            data={"elements": size.elements, "mode": mode.label, "stateful": mode.stateful,
                  "instrumented_s_per_call": pair.instrumented.wall / n, "bare_s_per_call": pair.bare.wall / n,
                  "instrumented_cpu_s_per_call": pair.instrumented.cpu / n, "bare_cpu_s_per_call": pair.bare.cpu / n,
                  "calls": n, "repetitions": repetitions, "recorded": recorded_calls, "payloads_dropped": dropped},
        ))
    n = SIZES[0].calls(quick)
    pair = best[INDEPENDENT]
    rows.append(Row(
        SECTION, INDEPENDENT, f"{duration(pair.instrumented.wall / n)}/call",
        f"{duration(pair.bare.wall / n)}/call", pair.ratio, pair.cpu_ratio,
        goal=f"<= {DEFAULT_GOAL:.2f}", met=pair.ratio <= DEFAULT_GOAL,
        note=f"{n} calls x {repetitions}; x + i per iteration, results summed",
        data={"instrumented_s_per_call": pair.instrumented.wall / n, "bare_s_per_call": pair.bare.wall / n},
    ))
    rows += _fingerprint_rows(best[FINGERPRINT], big.nbytes, per_call)
    return rows, {"bare_call_s": per_call[(SIZES[0].label, "default")][1]}


def _fingerprint_rows(
    fingerprint_vs_copy: Pair, nbytes: int, per_call: dict[tuple[str, str], tuple[float, float]],
) -> list[Row]:
    """xxh3 vs ``np.copy`` of the 64 MiB array, and the 64 MiB loops' extra time, per MiB."""
    mib = nbytes / MIB
    fp_mib, copy_mib = fingerprint_vs_copy.instrumented.wall / mib, fingerprint_vs_copy.bare.wall / mib
    section = "fingerprint"
    rows = [Row(
        section, f"xxh3 of a {size_label(nbytes)} float32 array, per MiB",
        f"{duration(fp_mib)}/MiB", f"{duration(copy_mib)}/MiB np.copy", fp_mib / copy_mib,
        note=f"{1 / fp_mib / 1024:.1f} GiB/s vs {1 / copy_mib / 1024:.1f} GiB/s",
        data={"fingerprint_s_per_mib": fp_mib, "copy_s_per_mib": copy_mib},
    )]
    moved_mib = 2 * mib  # one input and one output per call
    label = SIZES[-1].label
    for mode, what in (("default", "default - bare"), ("checks off", "checks off - bare")):
        inst_call, bare_call = per_call[(label, mode)]
        extra_mib = (inst_call - bare_call) / moved_mib
        goal = mode == "default"
        rows.append(Row(
            section, f"{what} per MiB of input+output ({label} rows)",
            f"{duration(extra_mib)}/MiB", f"{duration(copy_mib)}/MiB np.copy", extra_mib / copy_mib,
            goal=f"<= {PER_MIB_GOAL}" if goal else "",
            met=extra_mib / copy_mib <= PER_MIB_GOAL if goal else None,
            note="hashes before and after the call, and of the output" if goal
            else "recording alone: fingerprints of input and output, no re-hash",
            data={"extra_s_per_mib": extra_mib, "copy_s_per_mib": copy_mib},
        ))
    return rows
