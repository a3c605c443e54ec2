"""Chrome trace events: a recorded trace on a timeline in Perfetto UI or chrome://tracing."""

from __future__ import annotations

import json
import os
from typing import Any

from ..model.jsonable import json_safe
from ..model.records import Invocation, RawArray, dtype_name
from ..recording.trace import Trace
from .trace_writer import package_version

PathArg = str | os.PathLike


def chrome_trace(trace: Trace) -> dict[str, Any]:
    """Trace events: a complete event per call, violations as instants, names as metadata.

    Each call is a slice on its thread's track, with its violations as instants on that track.
    Timestamps count from the earliest call (``otherData.origin_ns``, wall clock): absolute
    epoch microseconds do not fit a double to better than 0.25 us, and calls can be shorter.
    Perfetto reads ``tid`` as a 32-bit number while Python's thread idents are pointer-sized,
    so each process's threads are numbered 1, 2, ... in order of appearance (``args.thread_id``
    keeps the ident). A counter track per function (``<name> in flight``) shows how many of its
    calls ran at once; ``otherData.diagnosis`` holds the signatures, overlaps, build counts and
    the hints derived from every call (``Trace.diagnosis()``).
    """
    invocations = trace.invocations
    origin = min((inv.start_ns for inv in invocations), default=0)
    events: list[dict[str, Any]] = []
    threads: dict[tuple[int, int], int] = {}
    processes: set[int] = set()
    for inv in invocations:
        pid = inv.pid
        if pid not in processes:
            processes.add(pid)
            events.append(_metadata("process_name", pid, 0, inv.process.label))
        tid = threads.get((pid, inv.thread_id))
        if tid is None:
            tid = threads[(pid, inv.thread_id)] = 1 + sum(1 for p, _ in threads if p == pid)
            events.append(_metadata("thread_name", pid, tid, inv.thread_name))
        start = inv.start_ns - origin
        events.append({
            "name": inv.func_name,
            "cat": "numpy_function",
            "ph": "X",
            "ts": start / 1000,
            "dur": inv.duration_ns / 1000,
            "pid": pid,
            "tid": tid,
            "args": _chrome_args(inv),
        })
        for violation in inv.violations:
            events.append({
                "name": f"{violation.kind}: {violation.func_name}",
                "cat": "violation",
                "ph": "i",
                "s": "t",
                "ts": (start + inv.duration_ns) / 1000,
                "pid": pid,
                "tid": tid,
                "args": {"seq": violation.seq, "argument": violation.argument,
                         "message": violation.message, "call_site": violation.call_site},
            })
    events += _in_flight_counters(invocations, origin)
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "producer": f"tfnp_inspect {package_version()}", "origin_ns": origin,
            "diagnosis": _diagnosis(trace),
        },
    }


def _in_flight_counters(invocations: list[Invocation], origin: int) -> list[dict[str, Any]]:
    """Counter events: per process and function, the calls running after each start and end."""
    steps: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for inv in invocations:
        changes = steps.setdefault((inv.pid, inv.func_name), [])
        start = inv.start_ns - origin
        changes += [(start, 1), (start + inv.duration_ns, -1)]
    events = []
    for (pid, name), changes in steps.items():
        running = 0
        for time_ns, step in sorted(changes):  # at one instant, ends (-1) before starts (+1)
            running += step
            events.append({
                "name": f"{name} in flight", "cat": "numpy_function", "ph": "C", "ts": time_ns / 1000,
                "pid": pid, "args": {"calls": running},
            })
    return events


def _diagnosis(trace: Trace) -> dict[str, Any]:
    diagnosis = trace.diagnosis()
    return json_safe({
        "signatures": diagnosis.signatures(),
        "shapes": [site.to_dict() for site in diagnosis.shapes],
        "pipeline": [
            {**figures.to_dict(), "mean_in_flight": figures.mean_in_flight,
             "time_share": diagnosis.time_share(figures), "parallel_work": diagnosis.parallel_work(figures)}
            for figures in diagnosis.pipeline
        ],
        "builds": [
            {"func_name": b.func_name, "call_site": b.call_site, "ops": b.ops, "functions": list(b.functions)}
            for b in diagnosis.builds
        ],
        "registry_size": diagnosis.registry_size,
        "hints": [
            {"kind": h.kind, "func_name": h.func_name, "seq": h.seq, "message": h.message} for h in diagnosis.hints
        ],
    })


def _metadata(name: str, pid: int, tid: int, label: str) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}}


def _chrome_args(inv: Invocation) -> dict[str, Any]:
    def arrays(raws: tuple[RawArray, ...]) -> list[dict[str, Any]]:
        # Fingerprints as hex: JSON numbers above 2**53 lose digits in JavaScript viewers.
        return [
            {"shape": list(raw.shape), "dtype": dtype_name(raw.dtype),
             "fingerprint": None if raw.fingerprint is None else f"{raw.fingerprint:016x}"}
            for raw in raws
        ]

    args: dict[str, Any] = {
        "seq": inv.seq,
        "mode": inv.mode,
        "op": inv.op_name,
        "stateful": inv.stateful,
        "call_site": inv.call_site,
        "thread_id": inv.thread_id,
        "task": inv.task,
        "inputs": arrays(inv.raw_inputs),
        "outputs": arrays(inv.raw_outputs),
    }
    static = inv.site.static_shapes
    if static is not None:
        args["static_shapes"] = [None if dims is None else list(dims) for dims in static]
    if inv.error is not None:
        args["error"] = str(inv.error)
    if inv.violations:
        args["violations"] = [v.kind for v in inv.violations]
    return args


def write_chrome_trace(trace: Trace, path: PathArg) -> None:
    """Write :func:`chrome_trace` as JSON, for Perfetto UI or chrome://tracing."""
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(chrome_trace(trace), stream)
