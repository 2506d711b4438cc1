"""Write a run's folder atomically: everything goes into a hidden temporary folder beside the target,
which is renamed into place only when complete. A folder that exists under results/ is a finished run.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterator

import yaml

import sim

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("simpy", "numpy", "pandas", "pyyaml", "pydantic", "matplotlib", "tqdm", "distributed")


class OutputError(Exception):
    """The output folder cannot be used (it already holds a run, or is not empty)."""


def default_run_dir(results_root: Path, scenario_name: str, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = results_root / scenario_name / stamp
    candidate, k = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{stamp}-{k}")
        k += 1
    return candidate


def check_out_dir(out: Path) -> None:
    """--out DIR must not already hold a run (or anything else: nothing is overwritten)."""
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"--out {out}: exists and is not a folder")
        if (out / "manifest.json").exists():
            raise OutputError(f"--out {out}: already holds a run (manifest.json); choose a new folder")
        if any(out.iterdir()):
            raise OutputError(f"--out {out}: folder is not empty; choose a new or empty folder")


@contextlib.contextmanager
def atomic_run_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success rename it to `final`, on any failure remove it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            final.rmdir()            # only an empty folder can be here (check_out_dir)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "nwl-capacity-sim": sim.__version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, object]:
    info: dict[str, object] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                               "cpus": os.cpu_count()}
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
        info["memory_gib"] = round(kib / 2**20, 1)
    return info


def write_manifest(folder: Path, **fields: object) -> None:
    manifest = {"version": sim.__version__, "git_commit": git_commit(), "library_versions": library_versions(),
                "machine": machine(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), **fields}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")


def write_resolved_scenario(folder: Path, raw: dict, filename: str = "scenario.yaml") -> None:
    text = "# The scenario exactly as run: inheritance and --set overrides applied.\n"
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=120)
    (folder / filename).write_text(text, encoding="utf-8")
