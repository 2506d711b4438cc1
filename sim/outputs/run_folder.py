"""A run's folder: its file names, what says how it was made (the manifest, the resolved scenario), and reading
it back.

Where a run folder goes and how it is written whole (probed and reserved before anything runs, written beside the
target and renamed into place, kept somewhere named when that fails): sim.outputs.destination. The simulator's
hidden work files beside it (partial folders, probes, locks) and cleaning up after killed runs:
sim.outputs.work_files. Reading (`load_run`): the saved files alone, never the model, so the report can be made
again from results/.

This module is the one place that spells the folder's file names; writers and readers use the constants below.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import platform
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
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
#
# `report` reads folders it did not write: tampered with, foreign, half written or left by a killed run. load_run
# checks every file the report uses before anything is drawn, and refuses with RunFolderError (exit 2 at the
# command line): one line naming the folder, the file and what is wrong. An optional file (replications.csv,
# summary.csv, weekly_by_site.csv, the finance tables, parameters.csv, manifest.json, the scenario YAML) is used
# when it is absent by deriving or leaving out what it gives; when it is PRESENT but malformed the folder is
# refused, never reported on with the file quietly replaced: a file that is there and wrong means the folder is
# not what a run wrote. Only regular files are read (a FIFO, a device or a folder named like one of the files is
# refused without being opened), each up to a cap.

CSV_MAX_BYTES = 400 * 2**20        # per CSV file; a large compare's weekly_by_site.csv is well under this
TEXT_MAX_BYTES = 2**20             # manifest.json and each scenario YAML file
YAML_MAX_DEPTH = 50                # nesting of a scenario file (a real one is under 10 deep)
YAML_MAX_TOKENS = 100_000          # YAML tokens in a scenario file (a real one has about 5,000)
YAML_MAX_VALUES = 100_000          # values in a scenario file with every alias expanded (a real one: about 3,000)
MAX_SCENARIO_FILES = 200           # scenarios/*.yaml and scenario_*.yaml
SHEET_MAX_ROWS = 1_048_575         # data rows of a spreadsheet sheet (results.xlsx); weekly.csv is handled there
SHEET_MAX_COLUMNS = 16_384

# What each table must have for the report to use it, and which of its columns are text (every other column must
# hold numbers: finite ones, or empty where a value may be missing).
WEEKLY_COLUMNS = ("scenario", "replication", "week", "week_start")
WEEKLY_TEXT = ("scenario", "week_start")
WEEKLY_COUNTS = ("waiting_total_start", "waiting_total", "waiting_over_18w", "waiting_over_52w", "waiting_over_78w",
                 "waiting_over_104w")          # never empty in a run's weekly.csv: the clearance dates come from them
WEEKLY_DRAWN = ("replication", "week", "theatre_sessions_lost", "theatre_sessions_planned", "theatre_slots_lost_no_bed",
                "theatre_utilisation", "vaccinations", "vaccinations_target", "vaccination_target", "covid_inpatients")
REPLICATIONS_COLUMNS = ("scenario", "replication")
SUMMARY_COLUMNS = ("scenario", "metric", "mean", "p05", "p50", "p95")
SUMMARY_TEXT = ("scenario", "metric", "intervals_show")
BY_SITE_COLUMNS = ("scenario", "replication", "week", "week_start", "site", "waiting_total", "waiting_over_52w")
BY_SITE_TEXT = ("scenario", "week_start", "site")
FINANCE_BY_YEAR_COLUMNS = ("scenario", "metric", "statistic")
SHEET_ONLY_TABLES = (FINANCE_BY_YEAR_CSV, FINANCE_MONTHLY_CSV, PARAMETERS_CSV)   # copied into results.xlsx
PARTIAL_FOLDER = re.compile(r"^\..+\.partial(-.*)?$")     # atomic_run_dir's `.NAME.partial-PID`, the report's own


class RunFolderError(OutputError):
    """A folder `report` cannot read: not a finished run folder, or one of its files is missing or malformed.
    The message is one line: the folder, the file and what is wrong."""


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
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)   # SHEET_ONLY_TABLES the run has, by file name

    @property
    def names(self) -> list[str]:
        return list(self.scenarios)

    def file(self, name: str) -> Path | None:
        """The path of one of the folder's files (a constant of this module), or None when the run has none."""
        path = self.path / name
        return path if path.is_file() else None

    def table(self, name: str) -> pd.DataFrame | None:
        """One of SHEET_ONLY_TABLES as load_run read and checked it, or None when the run has none."""
        return self.tables.get(name)


def is_partial_folder(path: Path) -> bool:
    """A hidden `.NAME.partial-PID` folder: a run (or a report) still being written, or left by one that was
    killed. Never a finished run."""
    return bool(PARTIAL_FOLDER.match(Path(path).resolve().name))


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


def _iso_date(text: str) -> dt.date | None:
    """A date written as ISO text (2021-06-07, or a datetime such as 2021-06-07T00:00:00); None for anything else."""
    text = text.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        return None


# --- reading one file: regular files only, capped, text ----------------------------------------------------------


def _refuse(run_dir: Path, name: str, what: str) -> RunFolderError:
    return RunFolderError(f"{run_dir}: {name}: {what}")


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _read_capped(run_dir: Path, name: str, cap: int) -> bytes | None:
    """The bytes of one of the folder's files, or None when it has no such file. Only a regular file is read (a
    symbolic link is followed to see what it is; a FIFO, device, socket or folder is refused without being
    opened, so nothing can block or stream for ever), and at most `cap` bytes of it."""
    path = run_dir / name
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise _refuse(run_dir, name, "is a symbolic link to a file that does not exist") from None
        return None
    except OSError as exc:
        raise _refuse(run_dir, name, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(run_dir, name, f"is {_file_kind(info.st_mode)}, not a regular file; not read")
    if info.st_size > cap:
        raise _refuse(run_dir, name, f"is {info.st_size:,} bytes, more than the {cap:,} read from such a file; "
                                     "not read")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if not stat.S_ISREG(mode):          # replaced since it was looked at
                raise _refuse(run_dir, name, f"is {_file_kind(mode)}, not a regular file; not read")
            data = fh.read(cap + 1)
    except OSError as exc:
        raise _refuse(run_dir, name, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > cap:
        raise _refuse(run_dir, name, f"is more than the {cap:,} bytes read from such a file; not read")
    return data


def _as_text(run_dir: Path, name: str, data: bytes) -> str:
    if b"\x00" in data:
        raise _refuse(run_dir, name, "holds binary data (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(run_dir, name, f"is not UTF-8 text (byte {exc.start:,} cannot be read)") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_csv(run_dir: Path, name: str, required: tuple[str, ...], text_columns: tuple[str, ...],
              needed: tuple[str, ...] = (), finite: Callable[[str], bool] = lambda column: True
              ) -> pd.DataFrame | None:
    """A table of the folder (None when absent): capped, UTF-8, parsed, with its `required` columns and at least
    one row. Every column but `text_columns` must hold numbers, not empty in `needed` columns, and finite in the
    columns `finite` picks."""
    data = _read_capped(run_dir, name, CSV_MAX_BYTES)
    if data is None:
        return None
    text = _as_text(run_dir, name, data)
    if not text.strip():
        raise _refuse(run_dir, name, "is empty")
    try:
        table = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(run_dir, name, f"is not a readable CSV table ({first})") from None
    table.columns = [str(c) for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise _refuse(run_dir, name, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                                     f"(the report needs {', '.join(required)})")
    if table.empty:
        raise _refuse(run_dir, name, "has a header but no rows")
    for col in table.columns:
        values = table[col]
        if col in text_columns:
            empty = values.isna()
            if col in needed:
                if empty.any():
                    raise _refuse(run_dir, name, f"column {col}: empty on line {int(empty.to_numpy().argmax()) + 2}")
                table[col] = values.astype(str)
            continue
        if values.dtype.kind == "b":
            raise _refuse(run_dir, name, f"column {col}: true/false values where numbers are expected")
        if values.dtype.kind not in "iuf":
            numbers = pd.to_numeric(values, errors="coerce")
            bad = (values.notna() & numbers.isna()).to_numpy()
            if bad.any():
                i = int(bad.argmax())
                raise _refuse(run_dir, name, f"column {col}: {_shown(values.iloc[i])} on line {i + 2} is not a "
                                             "number")
            if numbers.dtype.kind not in "iuf":
                raise _refuse(run_dir, name, f"column {col}: values that are not plain numbers")
            table[col] = values = numbers
        if values.dtype.kind == "f" and finite(col):
            infinite = np.isinf(values.to_numpy())
            if infinite.any():
                i = int(infinite.argmax())
                raise _refuse(run_dir, name, f"column {col}: {values.iloc[i]} on line {i + 2}: numbers must be "
                                             "finite")
        if values.dtype.kind == "f" and col in needed and values.isna().any():
            i = int(values.isna().to_numpy().argmax())
            raise _refuse(run_dir, name, f"column {col}: empty on line {i + 2}, where a number is needed")
    return table


def _whole_numbers(run_dir: Path, name: str, table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Make `columns` int64, refusing values that are not whole numbers >= 0."""
    for col in columns:
        values = table[col].to_numpy(dtype=float)
        bad = (values < 0) | (values != np.floor(values)) | (values > 2**53)
        if bad.any():
            i = int(bad.argmax())
            raise _refuse(run_dir, name, f"column {col}: {table[col].iloc[i]} on line {i + 2} is not a whole "
                                         "number >= 0")
        table[col] = values.astype("int64")


def _dates(run_dir: Path, name: str, table: pd.DataFrame, column: str) -> pd.Series:
    """The column's dates as day numbers (date.toordinal); the column itself rewritten as ISO dates."""
    parsed = {text: _iso_date(text) for text in table[column].unique()}
    bad = [text for text, day in parsed.items() if day is None]
    if bad:
        i = int((table[column] == bad[0]).to_numpy().argmax())
        raise _refuse(run_dir, name, f"column {column}: {_shown(bad[0])} on line {i + 2} is not a date "
                                     "(YYYY-MM-DD)")
    table[column] = table[column].map({text: day.isoformat() for text, day in parsed.items() if day})
    return table[column].map({day.isoformat(): day.toordinal() for day in parsed.values() if day}).astype("int64")


def _sheet_size(run_dir: Path, name: str, table: pd.DataFrame) -> None:
    if len(table) > SHEET_MAX_ROWS or len(table.columns) > SHEET_MAX_COLUMNS:
        raise _refuse(run_dir, name, f"has {len(table):,} rows and {len(table.columns):,} columns, more than a "
                                     f"results.xlsx sheet holds ({SHEET_MAX_ROWS:,} by {SHEET_MAX_COLUMNS:,})")


# --- the tables ---------------------------------------------------------------------------------------------------


def _weekly_drawn(column: str) -> bool:
    """weekly.csv columns the report computes from (charts, clearance, headlines): these must be finite. The
    others are copied into results.xlsx as they are (a saturated vaccination centre's wait may be infinite)."""
    return column in WEEKLY_DRAWN or column.startswith(("waiting_", "clock_stops_", "sessions_lost_"))


def _read_weekly(run_dir: Path) -> pd.DataFrame:
    """weekly.csv: every scenario's replications each with weeks 0, 1, ... n-1 (the same n), each week's Monday
    seven days after the last; the counts the clearance dates come from never empty."""
    weekly = _read_csv(run_dir, WEEKLY_CSV, WEEKLY_COLUMNS, WEEKLY_TEXT,
                       needed=("scenario", "replication", "week", "week_start", *WEEKLY_COUNTS),
                       finite=_weekly_drawn)
    if weekly is None:
        raise RunFolderError(f"{run_dir}: no {WEEKLY_CSV} here; not a finished run folder")
    _whole_numbers(run_dir, WEEKLY_CSV, weekly, ("replication", "week"))
    for col in (c for c in WEEKLY_COUNTS if c in weekly.columns):
        negative = (weekly[col] < 0).to_numpy()
        if negative.any():
            i = int(negative.argmax())
            raise _refuse(run_dir, WEEKLY_CSV, f"column {col}: {weekly[col].iloc[i]} on line {i + 2} is negative "
                                               "(a count of patients)")
    days = _dates(run_dir, WEEKLY_CSV, weekly, "week_start")
    keys = weekly[["scenario", "replication", "week"]]
    twice = keys.duplicated().to_numpy()
    if twice.any():
        i = int(twice.argmax())
        raise _refuse(run_dir, WEEKLY_CSV, f"scenario {weekly['scenario'].iloc[i]!r} replication "
                                           f"{weekly['replication'].iloc[i]} week {weekly['week'].iloc[i]} appears "
                                           f"twice (line {i + 2})")
    weeks = weekly.groupby(["scenario", "replication"], sort=False)["week"].agg(["min", "max", "count"])
    gaps = weeks[(weeks["min"] != 0) | (weeks["count"] != weeks["max"] + 1)]
    if len(gaps):
        (scenario, rep), row = next(iter(gaps.iterrows()))
        raise _refuse(run_dir, WEEKLY_CSV, f"scenario {scenario!r} replication {rep}: weeks are not 0, 1, 2, ... "
                                           f"without gaps ({row['count']} rows, weeks {row['min']} to {row['max']}); "
                                           "a half-written or edited file?")
    lengths = weeks.groupby(level="scenario", sort=False)["max"].nunique()
    if (lengths > 1).any():
        scenario = lengths[lengths > 1].index[0]
        n = sorted(int(x) + 1 for x in weeks.loc[scenario, "max"].unique())
        raise _refuse(run_dir, WEEKLY_CSV, f"scenario {scenario!r}: replications have different numbers of weeks "
                                           f"({', '.join(map(str, n))}); a half-written or edited file?")
    start = weekly.assign(day=days).loc[weekly["week"] == 0].groupby("scenario")["day"].agg(["min", "max"])
    if (start["min"] != start["max"]).any():
        scenario = start.index[(start["min"] != start["max"]).to_numpy().argmax()]
        raise _refuse(run_dir, WEEKLY_CSV, f"scenario {scenario!r}: replications start on different dates")
    expected = weekly["scenario"].map(start["min"]).to_numpy() + 7 * weekly["week"].to_numpy()
    off = days.to_numpy() != expected
    if off.any():
        i = int(off.argmax())
        should = dt.date.fromordinal(int(expected[i])).isoformat()
        raise _refuse(run_dir, WEEKLY_CSV, f"line {i + 2}: week {weekly['week'].iloc[i]} starts "
                                           f"{weekly['week_start'].iloc[i]}, not {should} (7 days after the week "
                                           "before)")
    return weekly


def _pairs(table: pd.DataFrame) -> set[tuple[str, int]]:
    return set(zip(table["scenario"], table["replication"].astype(int), strict=True))


def _read_replications(run_dir: Path, weekly: pd.DataFrame, horizons: dict[str, int]) -> pd.DataFrame | None:
    """replications.csv: one row for each scenario and replication of weekly.csv, and no other; weeks to clear
    within the run (or empty: not cleared)."""
    reps = _read_csv(run_dir, REPLICATIONS_CSV, REPLICATIONS_COLUMNS, ("scenario",),
                     needed=("scenario", "replication"))
    if reps is None:
        return None
    _whole_numbers(run_dir, REPLICATIONS_CSV, reps, ("replication",))
    _sheet_size(run_dir, REPLICATIONS_CSV, reps)
    twice = reps[["scenario", "replication"]].duplicated().to_numpy()
    if twice.any():
        i = int(twice.argmax())
        raise _refuse(run_dir, REPLICATIONS_CSV, f"scenario {reps['scenario'].iloc[i]!r} replication "
                                                 f"{reps['replication'].iloc[i]} appears twice (line {i + 2})")
    have, want = _pairs(reps), _pairs(weekly)
    if have != want:
        extra, lacking = sorted(have - want), sorted(want - have)
        which = (f"scenario {extra[0][0]!r} replication {extra[0][1]} is not in {WEEKLY_CSV}" if extra else
                 f"scenario {lacking[0][0]!r} replication {lacking[0][1]} of {WEEKLY_CSV} is missing")
        raise _refuse(run_dir, REPLICATIONS_CSV, f"does not match {WEEKLY_CSV}: {which}")
    horizon = reps["scenario"].map(horizons).to_numpy(dtype=float)
    for col in (c for c in reps.columns if c.startswith("weeks_to_clear_")):
        v = reps[col].to_numpy(dtype=float)
        out = ~np.isnan(v) & ((v < 0) | (v > horizon))
        if out.any():
            i = int(out.argmax())
            raise _refuse(run_dir, REPLICATIONS_CSV, f"column {col}: {v[i]:g} on line {i + 2} is outside the run "
                                                     f"(0 to {horizon[i]:g} weeks)")
    return reps


def _read_summary(run_dir: Path) -> pd.DataFrame | None:
    summary = _read_csv(run_dir, SUMMARY_CSV, SUMMARY_COLUMNS, SUMMARY_TEXT, needed=("scenario", "metric"))
    if summary is not None:
        _sheet_size(run_dir, SUMMARY_CSV, summary)
    return summary


def _read_by_site(run_dir: Path, weekly: pd.DataFrame) -> pd.DataFrame | None:
    """weekly_by_site.csv: every site of a scenario with exactly that scenario's replications and weeks of
    weekly.csv, on the same dates."""
    by_site = _read_csv(run_dir, WEEKLY_BY_SITE_CSV, BY_SITE_COLUMNS, BY_SITE_TEXT,
                        needed=("scenario", "site", "replication", "week", "week_start", "waiting_total",
                                "waiting_over_52w"))
    if by_site is None:
        return None
    _whole_numbers(run_dir, WEEKLY_BY_SITE_CSV, by_site, ("replication", "week"))
    _dates(run_dir, WEEKLY_BY_SITE_CSV, by_site, "week_start")
    twice = by_site[["scenario", "site", "replication", "week"]].duplicated().to_numpy()
    if twice.any():
        i = int(twice.argmax())
        raise _refuse(run_dir, WEEKLY_BY_SITE_CSV, f"site {by_site['site'].iloc[i]!r} replication "
                                                   f"{by_site['replication'].iloc[i]} week {by_site['week'].iloc[i]} "
                                                   f"appears twice (line {i + 2})")
    keys = ["scenario", "replication", "week"]
    found = by_site[[*keys, "week_start"]].merge(weekly[[*keys, "week_start"]], on=keys, how="left",
                                                 suffixes=("", "_weekly"), indicator=True)
    stray = (found["_merge"] != "both").to_numpy()
    if stray.any():
        i = int(stray.argmax())
        raise _refuse(run_dir, WEEKLY_BY_SITE_CSV, f"line {i + 2}: scenario {by_site['scenario'].iloc[i]!r} "
                                                   f"replication {by_site['replication'].iloc[i]} week "
                                                   f"{by_site['week'].iloc[i]} is not in {WEEKLY_CSV}")
    moved = (found["week_start"] != found["week_start_weekly"]).to_numpy()
    if moved.any():
        i = int(moved.argmax())
        raise _refuse(run_dir, WEEKLY_BY_SITE_CSV, f"line {i + 2}: week {by_site['week'].iloc[i]} starts "
                                                   f"{found['week_start'].iloc[i]}, not "
                                                   f"{found['week_start_weekly'].iloc[i]} as in {WEEKLY_CSV}")
    rows = weekly.groupby("scenario").size()
    per_site = by_site.groupby(["scenario", "site"]).size()
    short = per_site[per_site.to_numpy() != rows.reindex(per_site.index.get_level_values(0)).to_numpy()]
    if len(short):
        scenario, site = short.index[0]
        raise _refuse(run_dir, WEEKLY_BY_SITE_CSV, f"site {site!r} of scenario {scenario!r} has {short.iloc[0]} "
                                                   f"rows, not one per replication and week of {WEEKLY_CSV} "
                                                   f"({rows[scenario]}); a half-written or edited file?")
    return by_site


def _read_sheet_only(run_dir: Path, name: str) -> pd.DataFrame | None:
    """finance_by_year.csv, finance_monthly.csv, parameters.csv: tables the report copies into results.xlsx
    (and finance_by_year.csv into the Finance section: its year columns must be numbers, one per statistic)."""
    if name == FINANCE_BY_YEAR_CSV:
        probe = _read_csv(run_dir, name, FINANCE_BY_YEAR_COLUMNS, tuple(FINANCE_BY_YEAR_COLUMNS),
                          needed=FINANCE_BY_YEAR_COLUMNS)
        if probe is not None:
            others = [c for c in probe.columns if c not in FINANCE_BY_YEAR_COLUMNS and not re.fullmatch(
                r"\d{4}/\d{2}", c)]
            if others:
                raise _refuse(run_dir, name, f"column {others[0]}: not a financial year (YYYY/YY)")
            twice = probe[list(FINANCE_BY_YEAR_COLUMNS)].duplicated().to_numpy()
            if twice.any():
                i = int(twice.argmax())
                raise _refuse(run_dir, name, f"line {i + 2}: the same scenario, metric and statistic twice")
        table = probe
    else:
        data = _read_capped(run_dir, name, CSV_MAX_BYTES)
        if data is None:
            return None
        text = _as_text(run_dir, name, data)
        try:
            table = pd.read_csv(io.StringIO(text))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OverflowError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _refuse(run_dir, name, f"is not a readable CSV table ({first})") from None
        if table.empty:
            raise _refuse(run_dir, name, "has a header but no rows")
    if table is not None:
        _sheet_size(run_dir, name, table)
    return table


# --- manifest and scenario files ------------------------------------------------------------------------------


def _read_manifest(run_dir: Path) -> dict:
    """manifest.json as a mapping ({} when the folder has none); the keys the report formats must have the types
    a run writes."""
    data = _read_capped(run_dir, MANIFEST_JSON, TEXT_MAX_BYTES)
    if data is None:
        return {}
    text = _as_text(run_dir, MANIFEST_JSON, data)
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refuse(run_dir, MANIFEST_JSON, f"is not JSON ({exc.msg} at line {exc.lineno}, column "
                                              f"{exc.colno})") from None
    except RecursionError:
        raise _refuse(run_dir, MANIFEST_JSON, "is nested too deeply to be a manifest") from None
    if not isinstance(manifest, dict):
        raise _refuse(run_dir, MANIFEST_JSON, f"is not a JSON object (it holds {_json_kind(manifest)})")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def bad(key: str, want: str) -> RunFolderError:
        return _refuse(run_dir, MANIFEST_JSON, f"{key}: expected {want}, found {_json_kind(manifest_value(key))}")

    def manifest_value(key: str) -> Any:
        node: Any = manifest
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    for key in ("library_versions", "machine", "parameter_intervals"):
        if manifest.get(key) and not isinstance(manifest[key], dict):
            raise bad(key, "an object")
    if manifest.get("overrides") and not isinstance(manifest["overrides"], list):
        raise bad("overrides", "a list")
    if "wall_time_seconds" in manifest and not number(manifest["wall_time_seconds"]):
        raise bad("wall_time_seconds", "a number")
    machine = manifest.get("machine") or {}
    if machine.get("memory_gib") and not number(machine["memory_gib"]):
        raise bad("machine.memory_gib", "a number")
    intervals = manifest.get("parameter_intervals") or {}
    if manifest.get("parameters_fixed_at_midpoints"):
        intervals = {}                                       # not shown: the ranges were not drawn
    for scenario, keys in intervals.items():
        if not keys:
            continue
        if not isinstance(keys, dict):
            raise bad(f"parameter_intervals.{scenario}", "an object")
        for key, ends in keys.items():
            if not (isinstance(ends, list) and len(ends) == 2 and all(number(x) for x in ends)):
                raise _refuse(run_dir, MANIFEST_JSON, f"parameter_intervals.{scenario}.{key}: expected "
                                                      f"[low, high], found {_shown(ends)}")
    return manifest


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem}{where}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _yaml_shape(root: yaml.Node) -> tuple[int, int]:
    """(values with every alias expanded, depth) of a composed YAML document, without expanding anything: each
    node is visited once. A document that contains itself (an alias inside its own anchor) raises ValueError."""
    done: dict[int, tuple[int, int]] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        return []

    while stack:
        node, finish = stack.pop()
        key = id(node)
        if key in done:
            continue
        if finish:
            below = [done[id(c)] for c in children(node)]
            done[key] = (1 + sum(n for n, _ in below), 1 + max((d for _, d in below), default=0))
            continue
        if key in entered:
            raise ValueError("refers to itself (an alias inside its own anchor)")
        entered.add(key)
        stack.append((node, True))
        for child in children(node):
            if id(child) in entered and id(child) not in done:
                raise ValueError("refers to itself (an alias inside its own anchor)")
            stack.append((child, False))
    return done[id(root)]


_YAML_OPENS = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
               yaml.FlowSequenceStartToken)
_YAML_CLOSES = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml when installed: the same rules, faster


def _yaml_documents(run_dir: Path, name: str) -> list[Any]:
    """The documents of a YAML file of the folder, read safely (the safe loader: no tags that build objects) and
    within caps: bytes, then tokens and nesting (counted from the token stream, before anything recursive reads
    the file), then values with every alias expanded (counted on the composed nodes, before they are built)."""
    data = _read_capped(run_dir, name, TEXT_MAX_BYTES)
    if data is None:
        return []
    text = _as_text(run_dir, name, data)
    try:
        depth = 0
        for count, token in enumerate(yaml.scan(text, Loader=_SAFE_LOADER), start=1):
            if count > YAML_MAX_TOKENS:
                raise _refuse(run_dir, name, f"holds more than {YAML_MAX_TOKENS:,} YAML tokens, far more than a "
                                             "scenario has")
            if isinstance(token, _YAML_OPENS):
                depth += 1
                if depth > YAML_MAX_DEPTH:
                    raise _refuse(run_dir, name, f"is nested more than {YAML_MAX_DEPTH} deep")
            elif isinstance(token, _YAML_CLOSES):
                depth -= 1
        loader = _SAFE_LOADER(text)
        try:
            documents = []
            while loader.check_node():
                node = loader.get_node()
                if node is not None:
                    values, _ = _yaml_shape(node)
                    if values > YAML_MAX_VALUES:
                        raise _refuse(run_dir, name, f"holds {values:,} values once its aliases are expanded, more "
                                                     f"than the {YAML_MAX_VALUES:,} a scenario may have")
                documents.append(None if node is None else loader.construct_document(node))
            return documents
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _refuse(run_dir, name, f"is not valid YAML ({_yaml_problem(exc)})") from None
    except ValueError as exc:
        raise _refuse(run_dir, name, str(exc)) from None
    except RecursionError:
        raise _refuse(run_dir, name, f"is nested more than {YAML_MAX_DEPTH} deep") from None


def _scenario_problems(cfg: dict) -> list[str]:
    """What the schema finds wrong with a saved scenario's values: a wrong type, a value out of range, a rule
    broken. Keys it lacks are allowed (a foreign folder's scenario may give only a name, title and start date:
    the report uses what is there), and keys this version does not know are ignored (an older run's)."""
    from pydantic import ValidationError

    from sim.scenario.intervals import find_intervals
    from sim.scenario.schema import Scenario
    try:
        mid, _, _ = find_intervals(Scenario, cfg)
        Scenario.model_validate(mid)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            if err["type"] in ("missing", "extra_forbidden"):
                continue
            loc = [str(p) for p in err["loc"]
                   if not str(p).startswith(("function-", "literal[", "dict[", "constrained-"))]
            lines.append(f"{'.'.join(loc) or '(top level)'}: {str(err['msg']).removeprefix('Value error, ')}")
        return list(dict.fromkeys(lines))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError, RecursionError) as exc:
        return [f"not a scenario this version can read ({type(exc).__name__}: {exc})"]
    return []


def _read_scenario_configs(run_dir: Path) -> dict[str, dict]:
    """Scenario mappings by name from scenario.yaml (one document, several documents, or a mapping of
    scenarios) and from any scenarios/*.yaml or scenario_*.yaml beside it. Each document must be a mapping whose
    values have the types the schema gives them (sim.scenario.schema; missing keys are allowed)."""
    files = [SCENARIO_YAML]
    if (run_dir / SCENARIOS_DIR).is_dir():
        files += sorted(f"{SCENARIOS_DIR}/{p.name}" for p in (run_dir / SCENARIOS_DIR).glob("*.yaml"))
    files += sorted(p.name for p in run_dir.glob("scenario_*.yaml"))
    if len(files) > MAX_SCENARIO_FILES + 1:
        raise RunFolderError(f"{run_dir}: {len(files) - 1:,} scenario files ({SCENARIOS_DIR}/*.yaml, "
                             f"scenario_*.yaml), more than the {MAX_SCENARIO_FILES} a run folder may have")
    configs: dict[str, dict] = {}
    for name in files:
        path = run_dir / name
        if not (path.exists() or path.is_symlink()):
            continue
        docs = _yaml_documents(run_dir, name)
        if not docs or all(doc is None for doc in docs):
            raise _refuse(run_dir, name, "holds no scenario (the file is empty)")
        for i, doc in enumerate(docs):
            which = f"document {i + 1} " if len(docs) > 1 else ""
            if not isinstance(doc, dict):
                raise _refuse(run_dir, name, f"{which}is not a mapping of keys to values (it is "
                                             f"{_yaml_kind(doc)})")
            subs = {k: v for k, v in doc.items() if isinstance(v, dict) and "start_date" in v}
            if "start_date" in doc or "name" in doc or not subs:
                found = {str(doc.get("name", path.stem)): doc}
            else:
                found = {str(sub.get("name", key)): sub for key, sub in subs.items()}
            for key, cfg in found.items():
                problems = _scenario_problems(cfg)
                if problems:
                    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                    raise _refuse(run_dir, name, f"{which}{problems[0]}{more}")
                configs.setdefault(key, cfg)
    return configs


def _yaml_kind(value: Any) -> str:
    return {list: "a list", str: "text", bool: "true/false", type(None): "empty", dt.date: "a date"}.get(
        type(value), f"a single value ({_shown(value)})")


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
    """Read a run folder's saved files, checking each before it is used (RunFolderError: one line naming the
    folder, the file and what is wrong). weekly.csv is required; the rest are used when present and refused when
    present but malformed."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunFolderError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: not a folder (give the run's results folder, which holds {WEEKLY_CSV})")
    weekly = _read_weekly(run_dir)
    manifest = _read_manifest(run_dir)
    names = list(dict.fromkeys(weekly["scenario"]))
    horizons = {name: int(w) + 1 for name, w in weekly.groupby("scenario", sort=False)["week"].max().items()}

    reps = _read_replications(run_dir, weekly, horizons)
    derived = replication_kpis(weekly)
    if reps is not None:
        missing = [c for c in derived.columns if c not in reps.columns]
        if missing:
            reps = reps.merge(derived[["scenario", "replication", *missing]], on=["scenario", "replication"],
                              how="left")
    else:
        reps = derived
    summary = _read_summary(run_dir)
    if summary is None:
        summary = summarise(reps)

    configs = _read_scenario_configs(run_dir)
    scenarios: dict[str, ScenarioInfo] = {}
    for name in names:
        w = weekly[weekly["scenario"] == name]
        cfg = configs.get(name)
        if cfg is None and len(configs) == 1 and len(names) == 1:
            cfg = next(iter(configs.values()))
        cfg = cfg or {}
        start = as_date(w.loc[w["week"] == 0, "week_start"].iloc[0])     # the data are what was simulated
        if start is None:               # not reached: _read_weekly has checked every week_start
            raise _refuse(run_dir, WEEKLY_CSV, f"scenario {name!r} has no readable week_start")
        cfg, ranges = _midpoints(cfg)
        scenarios[name] = ScenarioInfo(name=name, title=str(cfg.get("title") or name), start=start,
                                       horizon_weeks=horizons[name],
                                       replications=int(w["replication"].nunique()), config=cfg, ranges=ranges,
                                       ranges_fixed=bool(manifest.get("parameters_fixed_at_midpoints")))
    by_site = _read_by_site(run_dir, weekly)
    tables = {name: table for name in SHEET_ONLY_TABLES
              if (table := _read_sheet_only(run_dir, name)) is not None}
    return RunFolder(run_dir, weekly, reps, summary, manifest, scenarios, by_site=by_site, tables=tables)
