"""The golden snapshot: short fixed-seed runs whose output tables are kept under tests/golden/ byte for byte.

Regenerate (only when a change is meant to move the outputs, and say why in the commit):

    .venv/bin/python tests/golden/make_golden.py

Each case runs `run_sim.py run` exactly as a user would (a fresh process, so nothing cached in the test session can
leak in), with the scenario's own seed, 2 replications and a 26-week horizon: long enough for every service to act
(referrals, clinics, theatres, hubs, the Delta wave, the validation round, vaccination, removals), short enough to
run in seconds. The kept files are every table a run writes plus the resolved scenario; the manifest is left out
because it records times, the machine and the git commit.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent

# case name -> arguments after `run_sim.py run`
CASES: dict[str, list[str]] = {
    "baseline": ["scenarios/baseline.yaml"],
    "from_rtt_example": ["scenarios/from_rtt_example.yaml"],
    "from_rtt_calibrated": ["scenarios/from_rtt_example.yaml",
                            "--set", "start_list.calibrate_treatment_from_rtt=true",
                            "--set", "start_list.calibrate_referrals_from_rtt=true"],
}
COMMON_ARGS = ["--replications", "2", "--set", "horizon_weeks=26", "--no-report", "--quiet"]
SKIPPED_FILES = {"manifest.json"}


def run_case(case: str, out_dir: Path) -> Path:
    """Run one case into `out_dir` (which must not exist yet) and return it."""
    command = [sys.executable, "run_sim.py", "run", *CASES[case], *COMMON_ARGS, "--out", str(out_dir)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"golden case {case!r} failed (exit {completed.returncode}):\n{completed.stderr}")
    return out_dir


def kept_files(run_dir: Path) -> list[str]:
    """The file names of a run folder that the snapshot keeps, sorted."""
    return sorted(p.name for p in run_dir.iterdir() if p.is_file() and p.name not in SKIPPED_FILES)


def snapshot_bytes(path: Path) -> bytes:
    """A kept file's bytes with this checkout's absolute path replaced, so a clone anywhere compares equal (the
    resolved scenario names the RTT extract it read by absolute path)."""
    return path.read_bytes().replace(str(ROOT).encode(), b"<project>")


def regenerate() -> None:
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = run_case(case, Path(tmp) / case)
            target = GOLDEN_DIR / case
            if target.exists():
                shutil.rmtree(target)
            target.mkdir()
            for name in kept_files(run_dir):
                (target / name).write_bytes(snapshot_bytes(run_dir / name))
            print(f"{case}: {len(kept_files(target))} files -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    regenerate()
