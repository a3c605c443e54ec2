"""What an open TracePanel costs a busy traced loop (goal: at most 5%).

A ``tf.function`` runs a ``tf.while_loop`` of ``tf.numpy_function`` calls (a pure function,
declared stateless) while ``trace()`` is recording; the same loop is timed with and without a
live panel attached to that trace, alternating in one process so that both see the same machine
state and a full ring buffer.
Both wall time and this process's CPU time (all threads) are reported: on a shared machine the
CPU time is the steadier measure of what the panel costs. Each timed run starts from a full
garbage collection, so that a run does not pay for the previous one's garbage (building a panel
reads the whole ring buffer once); what the panel makes the collector do during a run counts.

    python benchmarks/bench_panel.py                # plain Python: the widget's comm is a dummy
    python benchmarks/bench_panel.py --in-kernel    # inside a real IPython kernel (nbclient), so
                                                    # every refresh is serialised and sent on iopub
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# bench_common sits beside this file; IPython's %run (--in-kernel) does not put this folder on sys.path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import median_interval


def measure(iterations: int, rounds: int, interval: float) -> None:
    import numpy as np
    import tensorflow as tf

    import tfnp_inspect as npi
    from tfnp_inspect.views.panel import TracePanel

    def work(x):
        return x * np.float32(1.0001)

    @tf.function
    def busy_loop(n):
        def body(i, acc):
            out = tf.numpy_function(work, [acc], tf.float32, stateful=False)
            out.set_shape(acc.shape)
            return i + 1, out

        return tf.while_loop(lambda i, _: i < n, body, (0, tf.ones([16])))

    full_collections = 0

    def count_full_collections(phase: str, info: dict) -> None:
        nonlocal full_collections
        if phase == "stop" and info["generation"] == 2:
            full_collections += 1

    def timed(n: int) -> tuple[float, float, int]:
        """(wall s, CPU s of the whole process, full garbage collections) for ``n`` calls."""
        gc.collect()
        wall, cpu, full = time.perf_counter(), time.process_time(), full_collections
        busy_loop(tf.constant(n))
        return time.perf_counter() - wall, time.process_time() - cpu, full_collections - full

    gc.callbacks.append(count_full_collections)

    with npi.trace() as trace:
        timed(max(trace.capacity, iterations))  # compile, warm up and fill the ring buffer
        bare, with_panel, refresh_rates, refresh_shares = [], [], [], []
        for round_index in range(rounds):
            for attach in (round_index % 2 == 0, round_index % 2 == 1):  # alternate the order
                if not attach:
                    bare.append(timed(iterations))
                    continue
                panel = TracePanel(trace, interval=interval)
                before, spent = panel.refreshes, panel.refresh_cpu_s
                elapsed = timed(iterations)
                refresh_rates.append((panel.refreshes - before) / elapsed[0])
                refresh_shares.append((panel.refresh_cpu_s - spent) / elapsed[1])
                panel.close()
                with_panel.append(elapsed)
    gc.callbacks.remove(count_full_collections)

    print(f"busy loop: {iterations} numpy_function calls per run, {rounds} runs each, tracing on, "
          f"ring buffer full ({trace.capacity} records); panel: "
          f"{statistics.median(refresh_rates):.1f} refreshes/s (interval {interval}s)")
    print(f"full garbage collections during the runs: {sum(r[2] for r in bare)} without panel, "
          f"{sum(r[2] for r in with_panel)} with; CPU time in panel refreshes: "
          f"{100 * statistics.median(refresh_shares):.1f}% of the loop's")
    per_call = 1e6 / iterations
    for index, clock in enumerate(("wall", "CPU")):
        bare_s = statistics.median(run[index] for run in bare)
        panel_s = statistics.median(run[index] for run in with_panel)
        ratios = [p[index] / b[index] for p, b in zip(with_panel, bare, strict=True)]
        paired, (low, high) = statistics.median(ratios), median_interval(ratios)
        print(f"{clock:>4} time: {bare_s * per_call:6.2f} us/call without panel, "
              f"{panel_s * per_call:6.2f} with; ratio {panel_s / bare_s:.3f}, median of paired "
              f"runs {paired:.3f} (overhead {100 * (paired - 1):+.1f}%, 95% interval {low:.3f}-{high:.3f})")


def run_in_kernel(argv: list[str]) -> None:
    """Run this file's measurement inside a real IPython kernel and print what it printed."""
    import nbformat
    from nbclient import NotebookClient

    source = f"%run {shlex.join([__file__, *argv])}"  # %run sets sys.argv from its arguments
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(notebook, timeout=1800, kernel_name="python3").execute()
    for output in notebook.cells[0].outputs:
        if output.get("name") == "stdout":
            print(output["text"], end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10_000, help="calls per timed run")
    parser.add_argument("--rounds", type=int, default=16, help="timed runs with and without panel")
    parser.add_argument("--interval", type=float, default=0.25, help="panel refresh interval (s)")
    parser.add_argument("--in-kernel", action="store_true", help="measure inside an IPython kernel")
    args = parser.parse_args()
    if args.in_kernel:
        run_in_kernel([a for a in sys.argv[1:] if a != "--in-kernel"])
    else:
        measure(args.iterations, args.rounds, args.interval)


if __name__ == "__main__":
    main()
