"""Loading a large trace file: ``tfnp_inspect.load`` against parsing its ``trace.json`` alone.

    python benchmarks/bench_load.py                    # 1,000,000 records
    python benchmarks/bench_load.py --records 100000   # quicker

Writes one synthetic trace (summary capture: one float32 input and output per call with their
stats samples, a violation every 1,000 calls) with ``export_trace``, then measures in fresh
subprocesses, one per case, the wall time and peak RSS of

* ``json``: ``json.loads`` of the file's ``trace.json`` member (what parsing the JSON alone costs),
* ``load``: ``tfnp_inspect.load(path)``, everything validated and turned into records,
* ``earlier`` (with ``--compare SRC``): the same with the package found in another source tree.

Peak RSS is the child's high-water mark (``VmHWM``); "added" is that minus its RSS after its
imports.
Not part of ``run.py``: writing the file alone takes tens of seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Run in a child process: import, note RSS, do the case, print the figures as JSON.
CHILD = r"""
import gc, json, resource, sys, time, zipfile
import tfnp_inspect as npi
import tfnp_inspect.io
case, path = sys.argv[1], sys.argv[2]
def rss_mib(field="VmRSS"):
    # /proc (Linux): ru_maxrss would report the parent's peak, which a child inherits.
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = rss_mib()
started = time.perf_counter()
if case == "json":
    with zipfile.ZipFile(path) as archive:
        result = json.loads(archive.read("trace.json"))
    count = len(result["invocations"])
else:
    result = npi.load(path)
    count = len(result.recorder)
elapsed = time.perf_counter() - started
peak = rss_mib("VmHWM")
print(json.dumps({"case": case, "seconds": elapsed, "peak_mib": peak,
                  "added_mib": peak - before, "records": count}))
"""


def write_trace(path: Path, records: int) -> None:
    import numpy as np

    from tfnp_inspect import CallSite, Invocation, Recorder, Trace, Violation
    from tfnp_inspect.io import export_trace
    from tfnp_inspect.model.records import FLAG_C_CONTIGUOUS, FLAG_STATS_EXACT, FLAG_WRITEABLE, RawArray

    sites = [
        CallSite(f"f{k}", "bench", "graph" if k % 2 else "eager", True, f"PyFunc_{k}", f"pyfunc_{k}",
                 f"bench.py:{10 + k}", ("float32",), False)
        for k in range(8)
    ]
    sample = np.arange(16, dtype=np.float32).tobytes()
    flags = FLAG_C_CONTIGUOUS | FLAG_WRITEABLE | FLAG_STATS_EXACT
    dtype = np.dtype(np.float32)
    recorder = Recorder(capacity=records, capture="summary")
    for n in range(records):
        site = sites[n % len(sites)]
        array = RawArray((16,), dtype, 64, 0x9E3779B97F4A7C15 ^ n, flags, None, None, sample, None, None)
        output = array._replace(aliases_input=0 if n % 3 == 0 else None, will_be_copied=False)
        violations = ()
        if n % 1000 == 0:
            violations = (Violation("mutated-input", site.func_name, n, site.call_site,
                                    "input 0 was changed in place", "input 0"),)
        recorder.append(Invocation.create(
            n, site, 140000000 + n % 4, f"thread-{n % 4}", 1_700_000_000_000_000_000 + 1000 * n,
            20_000 + n % 997, (array,), (output,), violations=violations,
        ))
    export_trace(Trace(recorder), path)


def measure(case: str, path: Path, source: Path = ROOT) -> dict:
    environment = dict(os.environ, PYTHONPATH=str(source))
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(path)], capture_output=True, text=True,
        cwd=source, env=environment, check=False,
    )
    if completed.returncode:
        raise SystemExit(f"{case} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--compare", type=Path, metavar="SRC",
                        help="also time load() of the tfnp_inspect found in this source tree")
    parser.add_argument("--keep", type=Path, help="write the trace here and keep it (reused if there)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder) / "big.npftrace"
        if args.keep is None or not path.exists():
            started = time.perf_counter()
            write_trace(path, args.records)
            written = f", made and written in {time.perf_counter() - started:.1f} s"
        else:
            written = " (kept from an earlier run)"
        print(f"{args.records:,} records: file {path.stat().st_size / 2**20:.1f} MiB{written}")
        figures = {case: measure(case, path) for case in ("json", "load")}
        if args.compare is not None:  # e.g. a `git archive` of an earlier commit
            figures["earlier"] = measure("load", path, args.compare.resolve())
    for case, figure in figures.items():
        print(f"  {case:7} {figure['seconds']:7.2f} s   peak RSS {figure['peak_mib']:7.0f} MiB "
              f"(+{figure['added_mib']:.0f} MiB over imports)")
    base, full = figures["json"], figures["load"]
    print(f"  load / json: {full['seconds'] / base['seconds']:.2f}x time, "
          f"{full['added_mib'] / max(base['added_mib'], 1):.2f}x added memory")


if __name__ == "__main__":
    main()
