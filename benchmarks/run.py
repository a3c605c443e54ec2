"""Run every tfnp_inspect benchmark and print one table of ratios (instrumented vs baseline).

    python benchmarks/run.py            # full run (about 19 minutes on 2 cores)
    python benchmarks/run.py --quick    # fewer rounds (a few minutes)

Every ratio is measured side by side in this one run; the absolute figures are printed next
to it. The table is also written to ``benchmarks/results.md`` (to paste into the README) and
``benchmarks/results.json``. What each row measures: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_common import Row, interval_verdict, skipped  # noqa: E402

COLUMNS = ("Benchmark", "Case", "Instrumented", "Baseline", "Ratio", "CPU ratio", "Goal", "Met", "Notes")
PANEL_GOAL = 1.02  # issue 14


#: What bench_panel.measure prints per clock (it returns nothing).
PANEL_LINE = re.compile(
    r"^\s*(?P<clock>\w+) time:\s*(?P<bare>[\d.]+) us/call without panel,\s*(?P<panel>[\d.]+) with;"
    r".*?median of paired runs (?P<paired>[\d.]+).*?95% interval (?P<low>[\d.]+)-(?P<high>[\d.]+)",
    re.MULTILINE,
)


def panel_rows(quick: bool) -> list[Row]:
    """The panel engineer's measurement (bench_panel.py), if present, read from what it prints."""
    section, case = "panel", "busy tf.while_loop, panel open vs closed"
    try:
        bench_panel = importlib.import_module("bench_panel")
    except ImportError as exc:
        return [skipped(section, case, f"benchmarks/bench_panel.py not importable ({exc})")]
    iterations, rounds = (3000, 4) if quick else (10_000, 32)  # one-second runs: a refresh or so each
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        bench_panel.measure(iterations, rounds, 0.25)
    text = printed.getvalue()
    clocks = {found["clock"].lower(): found for found in PANEL_LINE.finditer(text)}
    if "wall" not in clocks:
        return [skipped(section, case, "bench_panel.measure printed no figures this runner understands")]
    wall, cpu = clocks["wall"], clocks.get("cpu")
    refreshes = re.search(r"([\d.]+) refreshes/s", text)
    ratio = float(wall["paired"])
    return [Row(
        section, case, f"{wall['panel']} us/call", f"{wall['bare']} us/call", ratio,
        float(cpu["paired"]) if cpu else None,
        goal=f"<= {PANEL_GOAL:.2f}", met=interval_verdict((float(wall["low"]), float(wall["high"])), PANEL_GOAL),
        note=f"{iterations} calls x {rounds}, tracing on in both"
        + (f", {refreshes[1]} refreshes/s" if refreshes else "")
        + f"; ratios: median of paired runs, 95% interval of the median {wall['low']}-{wall['high']}",
        data={"with_panel_us": float(wall["panel"]), "without_panel_us": float(wall["bare"]),
              "iterations": iterations, "rounds": rounds, "printed": text},
    )]


def run_sections(quick: bool) -> list[Row]:
    import bench_memory
    import bench_overhead
    import bench_pipeline
    import bench_recorder

    rows: list[Row] = []

    def section(name: str, measure: Callable[[], list[Row]]) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows.extend(measure())
        print(f"    done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    context: dict[str, float] = {}

    def overhead() -> list[Row]:
        overhead_rows, figures = bench_overhead.measure(quick)
        context.update(figures)
        return overhead_rows

    section("per-call overhead and fingerprinting", overhead)
    section("tf.data pipeline", lambda: bench_pipeline.measure(quick))
    section("recorder append", lambda: bench_recorder.measure(quick, context["bare_call_s"]))
    section("memory (one subprocess per capture level)", lambda: bench_memory.measure(quick))
    section("panel", lambda: panel_rows(quick))
    return rows


def cells(row: Row) -> tuple[str, ...]:
    met = row.met or ""
    ratio = "" if row.ratio is None else f"{row.ratio:.3f}"
    cpu_ratio = "" if row.cpu_ratio is None else f"{row.cpu_ratio:.3f}"
    return (row.section, row.case, row.measured, row.baseline, ratio, cpu_ratio, row.goal, met, row.note)


def text_table(rows: list[Row]) -> str:
    table = [COLUMNS, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    def line(values: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(COLUMNS), line(tuple("---" for _ in COLUMNS)), *(line(cells(r)) for r in rows)])


def environment(quick: bool) -> dict[str, str]:
    import numpy
    import tensorflow

    from tfnp_inspect.recording.probe import CORE, CORE_HASHES_DIRECTLY

    return {
        "command": "python benchmarks/run.py" + (" --quick" if quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        # TFNP_INSPECT_CORE=python measures the pure-Python one
        "per-call core": CORE + (", XXH3 called directly" if CORE_HASHES_DIRECTLY else ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions (for development)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run_sections(args.quick)
    env = environment(args.quick)
    env["duration"] = f"{time.perf_counter() - started:.0f} s"
    header = ", ".join(f"{key}: {value}" for key, value in env.items() if key != "command")
    print(f"\n{env['command']} ({header})")
    print(text_table(rows))
    ratio_note = (
        "Ratio: instrumented / baseline in wall time (per call or per MiB; for the pipeline, bare "
        "throughput / instrumented throughput; for memory, RSS growth in the second half of the "
        "calls / in the first half); for the per-call and pipeline rows, the median over paired "
        "rounds (instrumented, bare, bare, instrumented), whose 95% interval and middle half the "
        "notes give, and "
        "the instrumented and baseline figures are median runs. CPU ratio: the same in this "
        "process's CPU time. Goals are judged on the wall-time ratio: by its 95% interval where it "
        "has rounds (yes / NO / within noise, see benchmarks/README.md)."
    )
    (HERE / "results.md").write_text(
        f"`{env['command']}` ({header})\n\n{markdown_table(rows)}\n\n{ratio_note}\n", encoding="utf-8",
    )
    (HERE / "results.json").write_text(
        json.dumps({"environment": env, "rows": [r.as_dict() for r in rows]}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"\n{ratio_note}\nwritten: {HERE / 'results.md'}, {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
