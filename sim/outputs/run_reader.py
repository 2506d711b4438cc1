"""Reading a run folder back (`load_run`): the saved files alone, never the model, so the report can be made again
from results/.

`report` reads folders it did not write: tampered with, foreign, half written or left by a killed run. load_run
checks every file the report uses before anything is drawn, and refuses with RunFolderError (exit 2 at the command
line): one line naming the folder, the file and what is wrong. An optional file (replications.csv, summary.csv,
weekly_by_site.csv, the finance tables, parameters.csv, manifest.json, the scenario YAML) is used when it is absent
by deriving or leaving out what it gives; when it is PRESENT but malformed the folder is refused, never reported
on with the file quietly replaced: a file that is there and wrong means the folder is not what a run wrote.

What is checked is what the report needs (types and shapes, the weeks and dates it draws), never this version's
bounds or rules for a scenario: a folder a run wrote must report, also after a bound has changed. Files are read
as sim.scenario.input_files reads any input (regular files only: a FIFO, a device or a folder named like one of
the files is refused without being opened), and the scenario YAML by the project's one safe YAML loader
(sim.scenario.yaml_files.parse_yaml). The folder's file names are sim.outputs.run_folder's.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim.outputs.analysis import clearance_monday, last_day_simulated, replication_kpis, summarise
from sim.outputs.run_folder import (
    FINANCE_BY_YEAR_CSV,
    FINANCE_MONTHLY_CSV,
    MANIFEST_JSON,
    PARAMETERS_CSV,
    REPLICATIONS_CSV,
    SCENARIO_YAML,
    SCENARIOS_DIR,
    SUMMARY_CSV,
    WEEKLY_BY_SITE_CSV,
    WEEKLY_CSV,
    OutputError,
)
from sim.outputs.work_files import is_unfinished_name
from sim.scenario.input_files import InputFileError, check_regular_file, decode_utf8, describe_size, read_bytes
from sim.scenario.resources import total_memory_bytes
from sim.scenario.yaml_files import MAX_EXTENDS_DEPTH, MAX_NESTING, MAX_VALUES, parse_yaml, shown, yaml_problem

# --- how much is read ---------------------------------------------------------------------------------------------
#
# No cap may refuse a folder a run wrote, so each is derived from what a run can write (sim.scenario.schema bounds
# a run). Tables: a scenario may have up to 10,000 replications (RunSettings) of up to MAX_WEEKS (1,040) weeks, so
# weekly.csv holds up to 10.4 million rows a scenario (about 4 GB at ~400 bytes a row), weekly_by_site.csv that
# for each of up to MAX_NAMED (250) sites (about 250 GB at ~100 bytes a row), and `compare` takes any number of
# scenarios: a fixed byte cap would be either below that or above what any machine can read. So the cap is this
# machine's memory: `report DIR` reads a file when this machine's memory in all (MemTotal, or a container's limit
# when lower: sim.scenario.resources.total_memory_bytes) holds it as the report reads it, its size times
# MEMORY_PER_BYTE for its kind; a larger one is refused with both figures, without being opened (the run that
# wrote it held its tables in memory too: it is a folder from a larger machine, or not a run's). All the memory,
# not what is free at that moment: free memory moves with the page cache and other programs, and a folder this
# machine wrote must not be refused because something else was running. The run's own report (sim.cli.run, on
# the folder it has just written) is not checked at all (load_run's check_memory). Factors: peak resident memory
# over the file's size, reading through this module (Python 3.11, pandas 2, one fresh process each), rounded up
# a little:
#   weekly.csv, 66 MB (the golden baseline's replications copied 3,500 times)  3.2x (issue 12's review: 2.95x)
#   weekly_by_site.csv, 70 MB, read beside that weekly.csv                     2.5x (review: 2.6x)   -> csv 4
#   scenario.yaml, 4.5 MB: the baseline with a 100,000-point Covid series      116x (review: 76x)    -> yaml 125
#     (the pure-Python loader keeps a node, its marks and its key path for each value; then pydantic checks it)
#   manifest.json, 1.4 MB of --set texts and [low, high] ranges                5.2x;
#     a list of 2 million empty lists or objects, the most a byte of JSON makes 22x                 -> json 25
MEMORY_PER_BYTE = {"csv": 4, "yaml": 125, "json": 25}
#
# A saved scenario (scenario.yaml, scenarios/NAME.yaml) is the resolved scenario as yaml.safe_dump wrote it: the
# scenario file and up to MAX_EXTENDS_DEPTH files it extends (each nested at most MAX_NESTING levels and holding
# at most MAX_VALUES values with its aliases expanded), merged, with the run's --set values (each read by the same
# loader, so within the same caps) and the Covid series of covid.inpatients_csv (up to 5 MB of CSV, so up to
# ~450,000 points: ~27 MB of YAML) put in.
#  - Nesting: a --set value (up to MAX_NESTING deep) set under a key path of the files (up to MAX_NESTING deep).
SAVED_SCENARIO_MAX_NESTING = 2 * MAX_NESTING + 1
#  - Values: safe_dump writes every value with at least one byte of text (the Covid series counts here), except
#    an object the mapping holds twice, which it writes once and refers to with an alias: only an alias in a
#    scenario file or in a --set value makes one, and each of those holds at most MAX_VALUES values with its
#    aliases expanded. So a saved scenario holds at most (its bytes) + (MAX_EXTENDS_DEPTH + the run's --set
#    values with an alias) x MAX_VALUES values (_saved_scenario_values); more is an alias bomb, not a run's file.
#    The --set values are counted from the manifest's `overrides`, in the same folder as the file they excuse: a
#    tampered manifest claiming a thousand would let a 50-million-value bomb through. So at most
#    MAX_SET_VALUES_WITH_ALIASES of them count, whatever the manifest says: with the files' allowance, two million
#    values beyond the file's bytes, where the largest shipped scenario has 2,215. (A run given more --set values
#    that each expand aliases to tens of thousands of values would write a saved scenario its report refuses; no
#    scenario needs one, and `run` itself reads each such value within MAX_VALUES.)
MAX_SET_VALUES_WITH_ALIASES = 20
MAX_SCENARIO_FILES = 200           # scenarios/*.yaml and scenario_*.yaml, or one per scenario of weekly.csv if more

# What each table must have for the report to use it, and which of its columns are text (read as written: a
# scenario or site named None, NA, nan or 007 stays that name; every other column must hold numbers: finite ones,
# or empty where a value may be missing).
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
SHEET_ONLY_TEXT = ("scenario", "metric", "statistic", "month", "financial_year", "parameter")
# pandas' own missing-value strings, applied to number columns only (a text column keeps every value as written)
NUMBER_MISSING = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                  "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


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
        return last_day_simulated(self.start, self.horizon_weeks)

    def clearance_week(self, weeks: float, rounding: str) -> dt.date | None:
        """Monday of the week in which the last long waiter leaves, for a (possibly interpolated) weeks_to_clear
        (None: not cleared). Rounded outwards: the 5th percentile "floor", the 95th "ceil", the median "round"
        to the nearest week."""
        if weeks is None or math.isnan(weeks):
            return None
        return clearance_monday(self.start, weeks, rounding)


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
        """The path of one of the folder's files (a constant of sim.outputs.run_folder), or None when the run has
        none."""
        path = self.path / name
        return path if path.is_file() else None

    def table(self, name: str) -> pd.DataFrame | None:
        """One of SHEET_ONLY_TABLES as load_run read and checked it, or None when the run has none."""
        return self.tables.get(name)


def is_partial_folder(path: Path) -> bool:
    """A hidden work folder of the simulator (sim.outputs.work_files, or an older version's `.NAME.partial-PID`):
    a run (or a report) still being written, or left by one that was killed. Never a finished run. The name is
    the folder's own after following symbolic links as far as they go (a link that loops is left as it is)."""
    name = Path(os.path.realpath(path)).name
    return is_unfinished_name(name)


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


# --- reading one file: regular files only, within the memory, text -----------------------------------------------


def _refuse(run_dir: Path, name: str, what: str) -> RunFolderError:
    return RunFolderError(f"{run_dir}: {name}: {what}")


_WHAT = {"csv": "a run folder's table (CSV)", "yaml": "a run folder's scenario (YAML)",
         "json": "a run folder's manifest (JSON)"}
# The memory load_run may read its files into (bytes; None: not checked), for the one call that sets it
_READ_MEMORY: ContextVar[int | None] = ContextVar("_READ_MEMORY", default=None)


@contextmanager
def _reading_within(memory: int | None) -> Iterator[None]:
    token = _READ_MEMORY.set(memory)
    try:
        yield
    finally:
        _READ_MEMORY.reset(token)


def _read_file(run_dir: Path, name: str, kind: str) -> bytes | None:
    """The bytes of one of the folder's files (None when it has no such file), read by sim.scenario.input_files:
    only a regular file (a symbolic link followed to see what it is; a FIFO, device, socket or folder refused
    without being opened, so nothing blocks or streams for ever), and, when load_run checks the memory, only
    when this machine's memory holds it as the report reads it (MEMORY_PER_BYTE). Text: no NUL bytes."""
    path = run_dir / name
    if not os.path.lexists(path):
        return None
    what, per_byte = _WHAT[kind], MEMORY_PER_BYTE[kind]
    memory = _READ_MEMORY.get()
    try:
        size = check_regular_file(path, sys.maxsize, what).st_size
        if memory is not None and size * per_byte > memory:
            raise _refuse(run_dir, name, f"is {_about(size)}; reading it needs about {_about(size * per_byte)} of "
                                         f"memory and this machine has {_about(memory)} in all; not read")
        data = read_bytes(path, sys.maxsize if memory is None else memory // per_byte, what)
    except InputFileError as exc:
        if exc.reason.startswith("no such file") and path.is_symlink():
            raise _refuse(run_dir, name, "is a symbolic link to a file that does not exist") from None
        raise _refuse(run_dir, name, exc.reason) from None
    if b"\x00" in data:
        raise _refuse(run_dir, name, "holds binary data (NUL bytes), not text")
    return data


def _about(n_bytes: int) -> str:
    """A size to two significant figures, as people say it: 3,234,567,890 -> '3.2 GB'."""
    return describe_size(int(float(f"{n_bytes:.2g}")))


def _text(run_dir: Path, name: str, kind: str, data: bytes) -> str:
    try:
        return decode_utf8(data, _WHAT[kind])
    except InputFileError as exc:
        raise _refuse(run_dir, name, exc.reason) from None


def _parse_csv(run_dir: Path, name: str, data: bytes, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """The table in `data`: `text_columns` read as written (no value is taken for missing but an empty cell or a
    line cut short), every other column as pandas reads numbers."""
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise _refuse(run_dir, name, "is empty")
    try:
        header = pd.read_csv(io.BytesIO(data), nrows=0, encoding="utf-8-sig").columns
        text = [c for c in header if c in text_columns]
        return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype={c: str for c in text},
                           keep_default_na=False,
                           na_values={c: list(NUMBER_MISSING) for c in header if c not in text_columns})
    except UnicodeDecodeError:
        _text(run_dir, name, "csv", data)       # names the line of the first byte that is not UTF-8
        raise _refuse(run_dir, name, "is not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(run_dir, name, f"is not a readable CSV table ({first})") from None


def _read_csv(run_dir: Path, name: str, required: tuple[str, ...], text_columns: tuple[str, ...],
              needed: tuple[str, ...] = (), finite: Callable[[str], bool] = lambda column: True
              ) -> pd.DataFrame | None:
    """A table of the folder (None when absent): a regular file, UTF-8, parsed, with its `required` columns and
    at least one row. Every column but `text_columns` must hold numbers, not empty in `needed` columns, and
    finite in the columns `finite` picks."""
    data = _read_file(run_dir, name, "csv")
    if data is None:
        return None
    table = _parse_csv(run_dir, name, data, text_columns)
    del data
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
            empty = (values.isna() | (values == "")).to_numpy()
            if col in needed and empty.any():
                raise _refuse(run_dir, name, f"column {col}: empty on line {int(empty.argmax()) + 2}")
            table[col] = values.mask(empty) if empty.any() else values.astype(str)
            continue
        if values.dtype.kind == "b":
            raise _refuse(run_dir, name, f"column {col}: true/false values where numbers are expected")
        if values.dtype.kind not in "iuf":
            numbers = pd.to_numeric(values, errors="coerce")
            bad = (values.notna() & numbers.isna()).to_numpy()
            if bad.any():
                i = int(bad.argmax())
                raise _refuse(run_dir, name, f"column {col}: {shown(values.iloc[i], 40)} on line {i + 2} is not "
                                             "a number")
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
        raise _refuse(run_dir, name, f"column {column}: {shown(bad[0], 40)} on line {i + 2} is not a date "
                                     "(YYYY-MM-DD)")
    table[column] = table[column].map({text: day.isoformat() for text, day in parsed.items() if day})
    return table[column].map({day.isoformat(): day.toordinal() for day in parsed.values() if day}).astype("int64")


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
    first = (weekly["week"] == 0).to_numpy()
    start = pd.DataFrame({"scenario": weekly["scenario"].to_numpy()[first], "day": days.to_numpy()[first]}
                         ).groupby("scenario")["day"].agg(["min", "max"])
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
    return _read_csv(run_dir, SUMMARY_CSV, SUMMARY_COLUMNS, SUMMARY_TEXT, needed=("scenario", "metric"))


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
        table = _read_csv(run_dir, name, FINANCE_BY_YEAR_COLUMNS, FINANCE_BY_YEAR_COLUMNS,
                          needed=FINANCE_BY_YEAR_COLUMNS)
        if table is not None:
            others = [c for c in table.columns if c not in FINANCE_BY_YEAR_COLUMNS and not re.fullmatch(
                r"\d{4}/\d{2}", c)]
            if others:
                raise _refuse(run_dir, name, f"column {others[0]}: not a financial year (YYYY/YY)")
            twice = table[list(FINANCE_BY_YEAR_COLUMNS)].duplicated().to_numpy()
            if twice.any():
                i = int(twice.argmax())
                raise _refuse(run_dir, name, f"line {i + 2}: the same scenario, metric and statistic twice")
        return table
    data = _read_file(run_dir, name, "csv")
    if data is None:
        return None
    table = _parse_csv(run_dir, name, data, SHEET_ONLY_TEXT)
    if table.empty:
        raise _refuse(run_dir, name, "has a header but no rows")
    return table


# --- manifest and scenario files ------------------------------------------------------------------------------


def _read_manifest(run_dir: Path) -> dict:
    """manifest.json as a mapping ({} when the folder has none); the keys the report formats must have the types
    a run writes."""
    data = _read_file(run_dir, MANIFEST_JSON, "json")
    if data is None:
        return {}
    text = _text(run_dir, MANIFEST_JSON, "json", data)
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
                                                      f"[low, high], found {shown(ends, 40)}")
    return manifest


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _saved_scenario_values(size_bytes: int, overrides: int) -> int:
    """The most values (aliases expanded) a saved scenario of `size_bytes` bytes from a run given `overrides`
    --set values with an alias can hold (see SAVED_SCENARIO_MAX_NESTING above): at most
    MAX_SET_VALUES_WITH_ALIASES of them count, since the number comes from the folder being checked."""
    return size_bytes + (MAX_EXTENDS_DEPTH + min(max(overrides, 0), MAX_SET_VALUES_WITH_ALIASES)) * MAX_VALUES


def _set_values_with_aliases(manifest: dict) -> int:
    """The manifest's --set texts that could hold an alias (a `*`): the only ones that can add values beyond
    their bytes to a saved scenario."""
    return sum(1 for text in manifest.get("overrides") or [] if isinstance(text, str) and "*" in text)


def _yaml_documents(run_dir: Path, name: str, overrides: int) -> list[Any]:
    """The documents of one of the folder's YAML files, read by the one safe loader within the caps a run's
    saved scenario cannot exceed."""
    data = _read_file(run_dir, name, "yaml")
    if data is None:
        return []
    text = _text(run_dir, name, "yaml", data)
    try:
        found = parse_yaml(text, max_bytes=len(data), max_nesting=SAVED_SCENARIO_MAX_NESTING,
                           max_values=_saved_scenario_values(len(data), overrides), documents=True)
    except yaml.YAMLError as exc:
        raise _refuse(run_dir, name, f"is not valid YAML ({yaml_problem(exc, text)})") from None
    except RecursionError:
        raise _refuse(run_dir, name, "is nested too deeply to read") from None
    return list(found)


# pydantic's error types that state a bound or a rule of this version of the schema rather than a type or shape
# the report needs. A saved scenario is not checked against them: a folder written before a bound or a rule
# changed (a new maximum, a share that must now add to one, a choice renamed) must still report.
_BOUNDS_AND_RULES = frozenset({
    "missing", "extra_forbidden",                                   # keys added or retired since
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of", "finite_number",
    "too_short", "too_long", "string_too_short", "string_too_long", "string_pattern_mismatch",
    "int_from_float",                                               # a whole number with a fraction is a number
    "literal_error", "enum",                                        # a choice this version does not offer
    "value_error", "assertion_error",                               # the schema's validators: rules across keys
})


def _scenario_problems(cfg: dict) -> list[str]:
    """Where a saved scenario's values do not have the types and shapes the schema gives them (a mapping where
    a mapping is, a number where a number is, a date where a date is): what the report needs to read it. Not
    checked: the schema's bounds and rules (_BOUNDS_AND_RULES), missing keys (a foreign folder's scenario may
    give only a name, title and start date) and keys this version does not know (an older run's)."""
    from pydantic import ValidationError

    from sim.scenario.intervals import find_intervals
    from sim.scenario.schema import Scenario
    try:
        mid, _, _ = find_intervals(Scenario, cfg)
        Scenario.model_validate(mid)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            if err["type"] in _BOUNDS_AND_RULES:
                continue
            loc = [str(p) for p in err["loc"]
                   if not str(p).startswith(("function-", "literal[", "dict[", "constrained-"))]
            lines.append(f"{'.'.join(loc) or '(top level)'}: {str(err['msg']).removeprefix('Value error, ')}")
        return list(dict.fromkeys(lines))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError, RecursionError) as exc:
        return [f"not a scenario this version can read ({type(exc).__name__}: {exc})"]
    return []


def _read_scenario_configs(run_dir: Path, scenarios: int, overrides: int) -> dict[str, dict]:
    """Scenario mappings by name from scenario.yaml (one document, several documents, or a mapping of
    scenarios) and from any scenarios/*.yaml or scenario_*.yaml beside it (at most MAX_SCENARIO_FILES, or one
    for each of weekly.csv's `scenarios`). Each document must be a mapping whose values have the types the
    schema gives them (_scenario_problems). `overrides`: how many --set values with an alias the manifest says
    the run had."""
    files = [SCENARIO_YAML]
    if (run_dir / SCENARIOS_DIR).is_dir():
        files += sorted(f"{SCENARIOS_DIR}/{p.name}" for p in (run_dir / SCENARIOS_DIR).glob("*.yaml"))
    files += sorted(p.name for p in run_dir.glob("scenario_*.yaml"))
    most = max(MAX_SCENARIO_FILES, scenarios)
    if len(files) > most + 1:
        raise RunFolderError(f"{run_dir}: {len(files) - 1:,} scenario files ({SCENARIOS_DIR}/*.yaml, "
                             f"scenario_*.yaml), more than the {most:,} this run folder may have")
    configs: dict[str, dict] = {}
    for name in files:
        path = run_dir / name
        if not os.path.lexists(path):
            continue
        docs = _yaml_documents(run_dir, name, overrides)
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
        type(value), f"a single value ({shown(value, 40)})")


def _midpoints(cfg: dict) -> tuple[dict, dict[str, tuple[float, float]]]:
    """The saved scenario with every [low, high] input at its midpoint (so the tables can add and format it),
    and the ranges themselves by dotted key. Reads the schema only; the model is never run."""
    if not cfg:
        return cfg, {}
    from sim.scenario.intervals import find_intervals
    from sim.scenario.schema import Scenario
    resolved, intervals, _ = find_intervals(Scenario, cfg)
    return resolved, {p.key: (p.low, p.high) for p in intervals}


def load_run(run_dir: Path, *, check_memory: bool = True, shown: Path | None = None) -> RunFolder:
    """Read a run folder's saved files, checking each before it is used (RunFolderError: one line naming the
    folder, the file and what is wrong). weekly.csv is required; the rest are used when present and refused when
    present but malformed.

    `check_memory`: refuse a file this machine's memory cannot hold as the report reads it (MEMORY_PER_BYTE);
    False for the folder a run has just written, whose tables it held in memory moments ago. `shown`: the path
    the messages name (default `run_dir`), for a work folder that is about to be renamed into place."""
    run_dir = Path(run_dir)
    try:
        with _reading_within(total_memory_bytes() if check_memory else None):
            return _load_run(run_dir)
    except RunFolderError as exc:
        text = str(exc)
        if shown is None or not text.startswith(f"{run_dir}: "):
            raise
        raise RunFolderError(f"{shown}{text[len(str(run_dir)):]}") from None
    except OSError as exc:           # the folder or a file went away or became unreadable while being read
        raise RunFolderError(f"{shown or run_dir}: {_which_file(exc, run_dir)}could not be read "
                             f"({exc.strerror or exc})") from None


def _which_file(exc: OSError, run_dir: Path) -> str:
    """'NAME: ' for the file of the folder an OSError is about ('' for the folder itself, or none)."""
    try:
        name = Path(exc.filename).relative_to(run_dir)
    except (TypeError, ValueError):
        return ""
    return "" if name == Path(".") else f"{name}: "


def _load_run(run_dir: Path) -> RunFolder:
    try:
        found = os.stat(run_dir)
    except (FileNotFoundError, NotADirectoryError):
        raise RunFolderError(f"{run_dir}: no such folder") from None
    except OSError as exc:           # a symbolic link that loops, a folder this user may not enter
        raise RunFolderError(f"{run_dir}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(found.st_mode):
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

    configs = _read_scenario_configs(run_dir, len(names), _set_values_with_aliases(manifest))
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
