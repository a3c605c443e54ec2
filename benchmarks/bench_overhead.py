"""Per-call overhead of the instrumented ``numpy_function`` and the cost of fingerprinting.

Per-call overhead: one ``tf.function`` runs a ``tf.range`` loop whose body calls
``numpy_function(scale, [x], tf.float32)`` on the loop-carried ``x`` (so TensorFlow can neither
fold nor prune the calls, even when ``stateful=False``). The instrumented loop is built with
``tfnp_inspect.numpy_function``; the bare loop with TensorFlow's own ``tf.numpy_function``,
traced while nothing is installed (once tracing is on, ``tf.numpy_function`` itself is patched
and TF's PyFunc registry is observed, so a bare loop must also be *timed* with tracing off).
Every loop is traced before anything is timed; then each variant is timed in paired rounds
(``bench_common.Paired``), each variant with a recorder of its own whose ring buffer is full
(every call evicts a record of its kind, as in a long-running program): activate it -> time the
instrumented loop -> deactivate it -> time the bare loop twice -> the instrumented loop again;
the ratio is the median over rounds.

Floors and a control, 16 elements: the bare loop against itself (A/A: what the method reads
when nothing differs), and the instrumented loop with the registry hook alone (what any
instrument sitting in TF's PyFunc registry costs before it records anything), for the
loop-carried and the independent loop; and recording alone (checks and capture off) for the
independent one.

Fingerprinting: ``tfnp_inspect.model.fingerprints.fingerprint`` (xxh3) of a 64 MiB float32 array against
``np.copy`` of it, timed in the same rounds; the 64 MiB loops' extra time per MiB of input and
output is compared with the same copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfnp_inspect.recording import session
from tfnp_inspect.recording.recorder import EVICTION_BATCH, Recorder

from bench_common import (
    DEFAULT_OPTIONS,
    MIB,
    Paired,
    Row,
    Timing,
    duration,
    interleaved,
    size_label,
    timed_run,
    verdict,
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
    calls: int  # calls per timed run (a multiple of 16: see below)
    rounds: int  # paired rounds (full run; --quick uses a third, at least 4)

    def rounds_for(self, quick: bool) -> int:
        return max(4, self.rounds // 3) if quick else self.rounds

    @property
    def nbytes(self) -> int:
        return self.elements * 4

    @property
    def label(self) -> str:
        return "16 elements" if self.elements == 16 else size_label(self.nbytes)


#: Every run is made with the ring buffer full, as in a long-running program: each call evicts one
#: record, and the recorder folds evicted records into its aggregates EVICTION_BATCH (1024) at a
#: time. The small sizes make 1024 calls per run, so that each run pays for one such batch (about
#: 1.4 us a record, some 2% of a 16-element call); for the large ones it is under 0.2% of a call.
#: Large arrays are hashed whole on one call in FULL_CHECK_EVERY (16): every run makes a multiple
#: of 16 calls, so that each pays its share of them.
SIZES = (
    Size(16, EVICTION_BATCH, 60),
    Size(16 << 10, EVICTION_BATCH, 60),  # 64 KiB
    Size(1 << 20, 32, 50),  # 4 MiB
    Size(16 << 20, 16, 20),  # 64 MiB
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
    overlap the surrounding ops with it): a bare call costs less than in the loop-carried loop,
    so the same instrumentation cost is a larger ratio."""
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


@contextlib.contextmanager
def _hook_only() -> Iterator[None]:
    """The floor of any instrument that sits in TF's PyFunc registry, as tfnp_inspect's does:
    its registry hook runs (finds the op's probe and the active plan, converts the result as TF
    does) but calls the function straight, recording nothing."""
    import tfnp_inspect as npi
    from tfnp_inspect.recording import wrapper

    def straight(probe: Any, func: Any, args: Any, plan: Any, *eager_inputs: Any) -> Any:
        return func(*args)

    recording_core = wrapper.call_probe
    wrapper.call_probe = straight
    npi.install(**DEFAULT_OPTIONS)
    try:
        yield
    finally:
        npi.uninstall()
        wrapper.call_probe = recording_core


FINGERPRINT = "fingerprint vs np.copy"
CONTROL = "16 elements, A/A control: the bare loop against itself"
HOOK_FLOOR = "16 elements, registry hook alone, nothing recorded (floor)"
INDEPENDENT = "16 elements, default, independent iterations"
INDEPENDENT_RECORDING = "16 elements, recording alone (checks and capture off), independent iterations"
INDEPENDENT_HOOK_FLOOR = "16 elements, registry hook alone (floor), independent iterations"


def measure(quick: bool) -> tuple[list[Row], dict[str, float]]:
    """Rows for every size and mode, the floor and control rows, and fingerprinting, plus the
    bare call time (for the recorder section)."""
    import tensorflow as tf

    import tfnp_inspect as npi
    from tfnp_inspect.model.fingerprints import fingerprint
    from tfnp_inspect.recording.probe import FULL_CHECK_CALLS

    # one tf.function per size and variant, built from one code object: TF counts their first
    # traces as retracing and warns; that is expected here
    tf.get_logger().setLevel("ERROR")
    bare = {(size, stateful): _loop(tf.numpy_function, stateful) for size in SIZES for stateful in (True, False)}
    instrumented = {key: _loop(npi.numpy_function, key[1]) for key in bare}
    independent_bare, independent = _independent_loop(tf.numpy_function), _independent_loop(npi.numpy_function)
    assert not npi.is_active(), "the bare loops must be traced with tracing off"
    inputs = {size: tf.ones([size.elements], tf.float32) for size in SIZES}
    small = inputs[SIZES[0]]
    for (size, _), loop in (*bare.items(), *instrumented.items()):  # trace and warm them all first
        loop(inputs[size], tf.constant(1))
    independent_bare(small, tf.constant(1))
    independent(small, tf.constant(1))
    # each op's first FULL_CHECK_CALLS calls hash large arrays whole, once per op; each variant's
    # ring buffer is filled when it is made (see under()): the timed runs measure the steady state
    # of a long-running program
    npi.install(**DEFAULT_OPTIONS)
    try:
        for (size, _), loop in instrumented.items():
            loop(inputs[size], tf.constant(FULL_CHECK_CALLS))
        independent(small, tf.constant(FULL_CHECK_CALLS))
    finally:
        npi.uninstall()
    fill = instrumented[(SIZES[0], True)]

    recorded: dict[tuple[Size, Mode], tuple[int, int]] = {}

    def timed(loop: Any, size: Size) -> Callable[[], Timing]:
        x, count = inputs[size], tf.constant(size.calls)
        return lambda: timed_run(lambda: loop(x, count))

    def under(options: dict[str, Any], run: Callable[[], Timing], key: Any = None) -> Callable[[], Timing]:
        """Each variant records into a ring buffer of its own, filled before timing (with the
        16-element op's calls) and never cleared (what ``trace()`` does, with the recorder kept
        across rounds): so its calls evict rows of its own mode, as in a program that runs in one
        mode. One buffer shared by every variant made the default runs evict, and fold, rows of
        'full' capture (their payloads given back one by one) and of other ops (grouped row by
        row), which no such program pays. The 16-element and 64 KiB runs replace the filler rows
        with their own within a few rounds; for the large sizes eviction is under 0.2% of a call."""
        own = Recorder(**{**DEFAULT_OPTIONS, **options})
        session.activate(own)
        try:
            fill(small, tf.constant(own.capacity + EVICTION_BATCH))
        finally:
            session.deactivate(own)

        def run_instrumented() -> Timing:
            total, dropped = own.total, own.payloads_dropped
            session.activate(own)
            try:
                timing = run()
            finally:
                session.deactivate(own)
            if key is not None:
                recorded[key] = (own.total - total, own.payloads_dropped - dropped)
            return timing

        return run_instrumented

    def hook_only(run: Callable[[], Timing]) -> Callable[[], Timing]:
        def run_hooked() -> Timing:
            with _hook_only():
                return run()

        return run_hooked

    rows: list[Row] = []
    per_call: dict[tuple[str, str], tuple[float, float]] = {}
    big = np.random.default_rng(0).random(SIZES[-1].elements, dtype=np.float32)
    for size in SIZES:
        runs: dict[Any, tuple[Callable[[], Timing], Callable[[], Timing]]] = {}
        for mode in MODES:
            loop_bare = timed(bare[(size, mode.stateful)], size)
            runs[(size, mode)] = (under(mode.options, timed(instrumented[(size, mode.stateful)], size), (size, mode)),
                                  loop_bare)
        if size is SIZES[0]:
            loop_bare, loop_instrumented = timed(bare[(size, True)], size), timed(instrumented[(size, True)], size)
            independent_runs = timed(independent, size), timed(independent_bare, size)
            runs[CONTROL] = (loop_bare, loop_bare)
            runs[HOOK_FLOOR] = (hook_only(loop_instrumented), loop_bare)
            runs[INDEPENDENT] = (under({}, independent_runs[0]), independent_runs[1])
            runs[INDEPENDENT_RECORDING] = (under({"checks": "none", "capture": "none"}, independent_runs[0]),
                                           independent_runs[1])
            runs[INDEPENDENT_HOOK_FLOOR] = (hook_only(independent_runs[0]), independent_runs[1])
        if size is SIZES[-1]:
            runs[FINGERPRINT] = (lambda: timed_run(lambda: fingerprint(big)), lambda: timed_run(lambda: np.copy(big)))
        rounds = size.rounds_for(quick)
        paired = interleaved(runs, rounds)
        for key, pair in paired.items():
            if isinstance(key, str):
                continue
            _, mode = key
            per_call[(size.label, mode.label)] = (
                pair.typical_instrumented.wall / size.calls, pair.typical_bare.wall / size.calls)
            rows.append(_mode_row(size, mode, pair, rounds, recorded[key]))
        if size is SIZES[0]:
            rows += [_floor_row(case, paired[case], size) for case in
                     (CONTROL, HOOK_FLOOR, INDEPENDENT, INDEPENDENT_RECORDING, INDEPENDENT_HOOK_FLOOR)]
        if size is SIZES[-1]:
            rows += _fingerprint_rows(paired[FINGERPRINT], big.nbytes, per_call)
    return rows, {"bare_call_s": per_call[(SIZES[0].label, "default")][1]}


def _mode_row(size: Size, mode: Mode, pair: Paired, rounds: int, recorded: tuple[int, int]) -> Row:
    recorded_calls, dropped = recorded
    notes = []
    if recorded_calls != size.calls:
        notes.append(f"recorded {recorded_calls} of {size.calls} calls")
    if mode.options.get("capture") == "full" and dropped:
        notes.append(f"payloads of {dropped}/{recorded_calls} calls over the 64 MiB budget")
    case = f"{size.label}, {mode.label}" + ("" if mode.stateful else " (vs bare stateful=False)")
    return _row(case, pair, size.calls, mode.goal_for(size), notes, {
        "elements": size.elements, "mode": mode.label, "stateful": mode.stateful, "rounds": rounds,
        "recorded": recorded_calls, "payloads_dropped": dropped,
    })


def _floor_row(case: str, pair: Paired, size: Size) -> Row:
    """The control, the floors and the independent-iterations rows (16 elements)."""
    return _row(case, pair, size.calls, DEFAULT_GOAL if case == INDEPENDENT else None, [], {})


def _row(case: str, pair: Paired, calls: int, goal: float | None, notes: list[str], data: dict[str, Any]) -> Row:
    """A per-call row: median runs per call, the median ratio and its spread."""
    instrumented, bare = pair.typical_instrumented, pair.typical_bare
    return Row(
        SECTION, case, f"{duration(instrumented.wall / calls)}/call", f"{duration(bare.wall / calls)}/call",
        pair.ratio, pair.cpu_ratio,
        goal=f"<= {goal:.2f}" if goal else "", met=pair.verdict(goal) if goal else None,
        note="; ".join([f"{calls} calls per run; {pair.spread_note()}", *notes]),
        data={**data, "calls": calls, "ratios": pair.ratios,
              "instrumented_s_per_call": instrumented.wall / calls, "bare_s_per_call": bare.wall / calls,
              "instrumented_cpu_s_per_call": instrumented.cpu / calls, "bare_cpu_s_per_call": bare.cpu / calls},
    )


def _fingerprint_rows(
    fingerprint_vs_copy: Paired, nbytes: int, per_call: dict[tuple[str, str], tuple[float, float]],
) -> list[Row]:
    """xxh3 vs ``np.copy`` of the 64 MiB array, and the 64 MiB loops' extra time, per MiB."""
    mib = nbytes / MIB
    fp_mib = fingerprint_vs_copy.typical_instrumented.wall / mib
    copy_mib = fingerprint_vs_copy.typical_bare.wall / mib
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
            met=verdict(extra_mib / copy_mib <= PER_MIB_GOAL) if goal else None,
            note="hashes before and after the call, and of the output" if goal
            else "recording alone: fingerprints of input and output, no re-hash",
            data={"extra_s_per_mib": extra_mib, "copy_s_per_mib": copy_mib},
        ))
    return rows
