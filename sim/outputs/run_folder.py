"""A run's folder: its file names, writing it atomically, and reading it back.

Writing: everything goes into a hidden temporary folder beside the target, which is renamed into place only
when complete, so a folder that exists under results/ is a finished run. Reading (`load_run`): the saved files
alone, never the model, so the report can be made again from results/.

This module is the one place that spells the folder's file names; writers and readers use the constants below.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

import sim
from sim.outputs.analysis import replication_kpis, summarise

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
        if (out / MANIFEST_JSON).exists():
            raise OutputError(f"--out {out}: already holds a run ({MANIFEST_JSON}); choose a new folder")
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
    (folder / MANIFEST_JSON).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")


def write_resolved_scenario(folder: Path, raw: dict, filename: str = SCENARIO_YAML) -> None:
    text = "# The scenario exactly as run: inheritance and --set overrides applied.\n"
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=120)
    (folder / filename).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Reading a run folder back
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ScenarioInfo:
    """One scenario of a run folder, as the saved files describe it."""

    name: str
    title: str
    start: dt.date
    horizon_weeks: int
    replications: int
    config: dict = field(default_factory=dict)     # the resolved scenario, [low, high] inputs at their midpoints
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)   # inputs given as 80% intervals
    ranges_fixed: bool = False          # run with --fix-parameters: the ranges were held at their midpoints

    @property
    def horizon_end(self) -> dt.date:
        """The last day simulated (a Sunday)."""
        return self.start + dt.timedelta(days=7 * self.horizon_weeks - 1)

    def week_monday(self, week_index: int) -> dt.date:
        return self.start + dt.timedelta(days=7 * week_index)

    def clearance_week(self, weeks: float, rounding: str) -> dt.date | None:
        """Monday of the week in which the last long waiter leaves, for a (possibly interpolated) weeks_to_clear
        (None: not cleared). Rounded outwards: the 5th percentile "floor", the 95th "ceil", the median "round"
        to the nearest week."""
        if weeks is None or math.isnan(weeks):
            return None
        w = {"floor": math.floor, "ceil": math.ceil, "round": lambda x: math.floor(x + 0.5)}[rounding](weeks + 0.0)
        return self.week_monday(max(int(w) - 1, 0))


@dataclass
class RunFolder:
    """A finished run folder's tables and manifest, read from disk."""

    path: Path
    weekly: pd.DataFrame
    replications: pd.DataFrame
    summary: pd.DataFrame
    manifest: dict
    scenarios: dict[str, ScenarioInfo]          # in the order the scenarios appear in weekly.csv
    label: str = ""                             # the run folder's name (when built before it is renamed into place)
    by_site: pd.DataFrame | None = None         # weekly_by_site.csv, when the run has one (older runs do not)

    @property
    def names(self) -> list[str]:
        return list(self.scenarios)

    def file(self, name: str) -> Path | None:
        """The path of one of the folder's files (a constant of this module), or None when the run has none."""
        path = self.path / name
        return path if path.is_file() else None


def as_date(value: Any) -> dt.date | None:
    """A date from a value read from a saved file: a date, a datetime or ISO text (None when it is none)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _read_scenario_configs(run_dir: Path) -> dict[str, dict]:
    """Scenario mappings by name from scenario.yaml (one document, several documents, or a mapping of
    scenarios) and from any scenarios/*.yaml or scenario_*.yaml beside it."""
    files = [run_dir / SCENARIO_YAML, *sorted((run_dir / SCENARIOS_DIR).glob("*.yaml")),
             *sorted(run_dir.glob("scenario_*.yaml"))]
    configs: dict[str, dict] = {}
    for path in files:
        if not path.is_file():
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(doc, dict):
                continue
            if "start_date" in doc or "name" in doc:
                configs.setdefault(str(doc.get("name", path.stem)), doc)
            else:
                for key, sub in doc.items():
                    if isinstance(sub, dict) and "start_date" in sub:
                        configs.setdefault(str(sub.get("name", key)), sub)
    return configs


def _midpoints(cfg: dict) -> tuple[dict, dict[str, tuple[float, float]]]:
    """The saved scenario with every [low, high] input at its midpoint (so the tables can add and format it),
    and the ranges themselves by dotted key. Reads the schema only; the model is never run."""
    if not cfg:
        return cfg, {}
    from sim.scenario.intervals import find_intervals
    from sim.scenario.schema import Scenario
    resolved, intervals, _ = find_intervals(Scenario, cfg)
    return resolved, {p.key: (p.low, p.high) for p in intervals}


def load_run(run_dir: Path) -> RunFolder:
    """Read a run folder's saved files. weekly.csv is required; the rest are used when present."""
    run_dir = Path(run_dir)
    weekly_path = run_dir / WEEKLY_CSV
    if not weekly_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {WEEKLY_CSV} — not a finished run folder")
    weekly = pd.read_csv(weekly_path)
    weekly["scenario"] = weekly["scenario"].astype(str)
    manifest_path = run_dir / MANIFEST_JSON
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}

    reps_path = run_dir / REPLICATIONS_CSV
    derived = replication_kpis(weekly)
    if reps_path.is_file():
        reps = pd.read_csv(reps_path)
        reps["scenario"] = reps["scenario"].astype(str)
        missing = [c for c in derived.columns if c not in reps.columns]
        if missing:
            reps = reps.merge(derived[["scenario", "replication", *missing]], on=["scenario", "replication"],
                              how="left")
    else:
        reps = derived
    summary_path = run_dir / SUMMARY_CSV
    if summary_path.is_file():
        summary = pd.read_csv(summary_path)
        summary["scenario"] = summary["scenario"].astype(str)
    else:
        summary = summarise(reps)

    configs = _read_scenario_configs(run_dir)
    scenarios: dict[str, ScenarioInfo] = {}
    names = list(dict.fromkeys(weekly["scenario"]))
    for name in names:
        w = weekly[weekly["scenario"] == name]
        cfg = configs.get(name)
        if cfg is None and len(configs) == 1 and len(names) == 1:
            cfg = next(iter(configs.values()))
        cfg = cfg or {}
        week0 = w.loc[w["week"] == w["week"].min(), "week_start"].iloc[0]
        data_start = as_date(week0)
        start = data_start or as_date(cfg.get("start_date"))      # the data are what was simulated
        if start is None:
            raise ValueError(f"{run_dir}: scenario {name!r} has no readable week_start in {WEEKLY_CSV} and no "
                             f"start_date in its scenario file")
        cfg, ranges = _midpoints(cfg)
        scenarios[name] = ScenarioInfo(name=name, title=str(cfg.get("title") or name), start=start,
                                       horizon_weeks=int(w["week"].max()) + 1,
                                       replications=int(w["replication"].nunique()), config=cfg, ranges=ranges,
                                       ranges_fixed=bool(manifest.get("parameters_fixed_at_midpoints")))
    by_site_path = run_dir / WEEKLY_BY_SITE_CSV
    by_site = None
    if by_site_path.is_file():
        by_site = pd.read_csv(by_site_path)
        by_site["scenario"] = by_site["scenario"].astype(str)
        by_site["site"] = by_site["site"].astype(str)
    return RunFolder(run_dir, weekly, reps, summary, manifest, scenarios, by_site=by_site)
