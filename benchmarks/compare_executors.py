"""`make bench-compare`: wall time of `compare` over the six shipped scenarios, by executor.

Runs `run_sim.py compare` on the six scenarios at their default replications (run.replications of the first,
10) three ways — sequential (`--jobs 1`), local processes (`--jobs 2`), a local Dask cluster
(`--executor dask --jobs 2`) — without the report (its cost is the same for all three), checks that the
three give identical tables, and prints a table of wall times. Takes about 15 minutes on a 2-core machine.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["baseline", "third_wave_mild", "third_wave_severe", "no_surgical_hubs", "vaccination_surge",
             "extra_capacity"]
WAYS = {"sequential": ["--jobs", "1"], "local processes, --jobs 2": ["--jobs", "2"],
        "local Dask cluster, 2 workers": ["--executor", "dask", "--jobs", "2"]}
TABLES = ["weekly.csv", "replications.csv", "summary.csv", "comparison.csv", "finance_by_year.csv"]


def main() -> int:
    files = [str(ROOT / "scenarios" / f"{name}.yaml") for name in SCENARIOS]
    extra = sys.argv[1:]                  # e.g. --replications 2 for a quick look
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for way, options in WAYS.items():
            out = Path(tmp) / str(len(walls))
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(ROOT / "run_sim.py"), "compare", *files, *options,
                                   "--no-report", "--quiet", "--out", str(out), *extra],
                                  capture_output=True, text=True)
            walls[way] = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            print(f"{way}: {walls[way]:.1f} s", flush=True)
        first = Path(tmp) / "0"
        for k in range(1, len(WAYS)):
            for table in TABLES:
                if (first / table).read_bytes() != (Path(tmp) / str(k) / table).read_bytes():
                    print(f"tables differ: {table} ({list(WAYS)[k]})", file=sys.stderr)
                    return 1
    seq, local, dask = walls.values()
    print(f"\ncompare, six scenarios ({platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}); identical tables from all three")
    print("| executor | wall time | speed-up |\n|---|---|---|")
    for way, wall in walls.items():
        print(f"| {way} | {wall:.0f} s | {seq / wall:.2f}x |")
    print(f"Dask overhead against local processes: {dask - local:+.0f} s ({(dask / local - 1):+.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
