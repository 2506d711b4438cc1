"""A run's folder: its file names, and what says how it was made (the manifest, the resolved scenario).

Where a run folder goes and how it is written whole (probed and reserved before anything runs, written beside the
target and renamed into place, kept somewhere named when that fails): sim.outputs.destination. The simulator's
hidden work files beside it (partial folders, probes, locks) and cleaning up after killed runs:
sim.outputs.work_files. Reading a folder back and checking what it holds: sim.outputs.run_reader.

This module is the one place that spells the folder's file names; writers and readers use the constants below.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import yaml

import sim

# The files of a run folder. weekly.csv is the one every run has; the rest are written when they apply.
WEEKLY_CSV = "weekly.csv"                       # scenario x replication x week: the model's weekly measures
REPLICATIONS_CSV = "replications.csv"           # scenario x replication: clearance weeks and other KPIs
SUMMARY_CSV = "summary.csv"                     # scenario x metric: percentiles across replications
COMPARISON_CSV = "comparison.csv"               # paired differences from the first scenario (`compare`)
PARAMETERS_CSV = "parameters.csv"               # the value each replication drew for each [low, high] input
WEEKLY_BY_SPECIALTY_CSV = "weekly_by_specialty.csv"
WEEKLY_BY_SITE_CSV = "weekly_by_site.csv"       # scenario x replication x week x site (provider trust)
VACCINATION_BY_COHORT_CSV = "vaccination_by_cohort.csv"
WAITS_BY_PRIORITY_CSV = "waits_by_priority.csv"
FINANCE_MONTHLY_CSV = "finance_monthly.csv"     # priced activity, one row per scenario x replication x month
FINANCE_BY_YEAR_CSV = "finance_by_year.csv"     # the same by NHS financial year, percentiles as rows
SWEEP_CSV = "sweep.csv"                         # `sweep`: one row per combination of factors
SWEEP_HEATMAP_PNG = "sweep_heatmap.png"
SOLVE_CSV = "solve.csv"                         # `solve`: one row per lever value evaluated
SOLVED_SCENARIO_YAML = "solved_scenario.yaml"   # `solve`: the scenario with the answer applied
SOLVE_CHART = "solve"                           # `solve`: solve.png and solve.svg
SOLVE_FINANCE_CSV = "solve_finance.csv"         # `solve`: solved against starting, by financial year
SOLVE_MD = "solve.md"                           # `solve`: "What it would take"
SOLVE_XLSX = "solve.xlsx"                       # `solve`: the same, the evaluations and the cost, as a workbook
BACKTEST_CSV = "backtest.csv"                   # `backtest`: simulated against observed, month by month
BACKTEST_ERRORS_CSV = "backtest_errors.csv"
BACKTEST_MONTHLY_CSV = "backtest_monthly.csv"     # `backtest --monthly`: simulated against a monthly series
BACKTEST_PNG = "backtest.png"
SCENARIO_YAML = "scenario.yaml"                 # the resolved scenario (one scenario)
SCENARIOS_DIR = "scenarios"                     # the resolved scenarios, one NAME.yaml each (`compare`)
MANIFEST_JSON = "manifest.json"                 # versions, seed, command, timings: how the run was made
# The report's files, made from the ones above (sim.outputs.report).
CHARTS_DIR = "charts"
RESULTS_XLSX = "results.xlsx"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPORT_DOCX = "report.docx"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("simpy", "numpy", "pandas", "pyyaml", "pydantic", "matplotlib", "tqdm", "distributed")


class OutputError(Exception):
    """The destination cannot be used (refused before anything runs), or writing to it failed (the message says
    where the finished results were kept)."""


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


# The command a manifest records when it is not this process's own command line (the web app runs commands inside
# Streamlit's process, whose sys.argv is Streamlit's).
_COMMAND_LINE: contextvars.ContextVar[str | None] = contextvars.ContextVar("command_line", default=None)


@contextlib.contextmanager
def recording_command(command_line: str) -> Iterator[None]:
    """Manifests written inside record `command_line` (as a user would type it) as the command that made them."""
    token = _COMMAND_LINE.set(command_line)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def write_manifest(folder: Path, **fields: object) -> None:
    command = _COMMAND_LINE.get() or " ".join([Path(sys.argv[0]).name] + sys.argv[1:])
    manifest = {"version": sim.__version__, "git_commit": git_commit(), "library_versions": library_versions(),
                "machine": machine(), "command": command, **fields}
    (folder / MANIFEST_JSON).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")


# libyaml's emitter (in PyYAML's wheels) writes what the pure-Python one writes, byte for byte on every shipped
# scenario, 4-6x faster (~0.1 s a scenario); the pure one where PyYAML was built without libyaml.
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_resolved_scenario(folder: Path, raw: dict, filename: str = SCENARIO_YAML,
                            header: str = "The scenario exactly as run: inheritance and --set overrides applied."
                            ) -> None:
    text = "".join(f"# {line}\n" for line in header.splitlines())
    text += yaml.dump(raw, Dumper=_SAFE_DUMPER, sort_keys=False, allow_unicode=True, width=120)
    (folder / filename).write_text(text, encoding="utf-8")
