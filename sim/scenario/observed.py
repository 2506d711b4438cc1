"""Observed monthly RTT series: the published figures a calibration fits and a back-test scores against.

Why one tidy form: NHS England publishes the same quantities in several shapes (the monthly Full CSV per
provider, the national time-series workbook, analysts' sums by ICS). The model compares against one: a CSV with
one row per month, the census at the month's last day.

| column | required | meaning |
|---|---|---|
| `month` | yes | `YYYY-MM`; months strictly increasing, none missing |
| `clock_starts` | yes | new RTT periods in the month |
| `completed_pathways` | yes | clock stops for treatment or a decision not to treat (admitted + non-admitted) |
| `waiting_list` | yes | incomplete pathways at the month's end |
| `completed_admitted` | no | the admitted part of `completed_pathways` |
| `waiting_admitted` | no | the admitted part of `waiting_list`: pathways with a decision to admit at the month's end |
| `over_18w`, `over_52w`, `over_78w`, `over_104w` | no | incomplete pathways waiting more than N weeks |
| `median_wait_weeks`, `p92_wait_weeks` | no | the list's median and 92nd-percentile wait |

A blank cell in an optional column means "not published that month" (England's 78- and 104-week counts start in
2021). Counts are non-negative and finite; the waits-over counts must nest (104 ≤ 78 ≤ 52 ≤ 18 ≤ list) and
admitted completions cannot exceed all completions. Every problem is reported with the file, the row (as a
spreadsheet shows it: the header is row 1) and the column, and nothing is read from a file with any problem.

`observed_from_rtt_extracts` turns a run of monthly RTT Full CSVs (one month each) into the same form, so a
back-test can use either.
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.scenario.input_files import MAX_SERIES_CSV_BYTES, InputFileError, read_text
from sim.scenario.rtt_extract import CLOCK_START_PART, TOTAL_LABEL, load_rtt

REQUIRED_COLUMNS: tuple[str, ...] = ("month", "clock_starts", "completed_pathways", "waiting_list")
COUNT_COLUMNS: tuple[str, ...] = ("clock_starts", "completed_pathways", "waiting_list", "completed_admitted",
                                  "waiting_admitted",
                                  "over_18w", "over_52w", "over_78w", "over_104w")
WAIT_COLUMNS: tuple[str, ...] = ("median_wait_weeks", "p92_wait_weeks")
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c for c in COUNT_COLUMNS + WAIT_COLUMNS if c not in REQUIRED_COLUMNS)
ALL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Waits-over columns from the shortest threshold to the longest: each count is at most the one before it.
NESTED_COUNTS: tuple[str, ...] = ("waiting_list", "over_18w", "over_52w", "over_78w", "over_104w")
MAX_MONTHS = 1_200           # a century of months

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ObservedDataError(Exception):
    """An observed series that cannot be used; `problems` lists every one, each naming file, row and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class ObservedSeries:
    """A validated monthly series: `table` is indexed by month (pandas Period, freq M), one column per quantity
    present in the source, counts as floats with NaN where an optional column was left blank."""

    source: str
    table: pd.DataFrame

    @property
    def months(self) -> list[pd.Period]:
        return list(self.table.index)

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns)

    def window(self, first: str | pd.Period, last: str | pd.Period) -> ObservedSeries:
        """The months from `first` to `last` inclusive (`YYYY-MM`); an error if the series does not cover both."""
        first_p, last_p = pd.Period(first, freq="M"), pd.Period(last, freq="M")
        if first_p > last_p:
            raise ValueError(f"window {first_p}..{last_p}: the first month is after the last")
        have = self.table.index
        missing = [str(p) for p in (first_p, last_p) if p not in have]
        if missing:
            raise ValueError(f"{self.source}: no observed figures for {', '.join(missing)} "
                             f"(the series runs {have[0]} to {have[-1]})")
        return ObservedSeries(self.source, self.table.loc[first_p:last_p].copy())

    def other_removals(self) -> pd.Series:
        """Pathways that left the list without a clock stop for treatment, month by month: starts − completions −
        change in the list (validation, no longer needed, transfers). NaN for the first month, which has no
        previous list."""
        t = self.table
        return t["clock_starts"] - t["completed_pathways"] - t["waiting_list"].diff()

    def to_csv(self, path: str | Path) -> None:
        """Write the tidy form (months as `YYYY-MM`, whole counts without a decimal point, blanks kept blank)."""
        out = self.table.copy()
        for column in out.columns:
            if column in COUNT_COLUMNS and out[column].dropna().eq(out[column].dropna().round()).all():
                out[column] = out[column].astype("Int64")
        out.index = out.index.astype(str)
        out.index.name = "month"
        out.to_csv(path, lineterminator="\n")


def load_observed(path: str | Path) -> ObservedSeries:
    """Read and check a tidy monthly series; raise ObservedDataError listing every problem found."""
    path = Path(path)
    label = str(path)
    text = _read_text(path, label)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ObservedDataError([f"{label}: the file is empty; expected a header row with the columns "
                                 f"{', '.join(REQUIRED_COLUMNS)}"])
    header = [cell.strip() for cell in rows[0]]
    problems = _check_header(label, header)
    if problems:
        raise ObservedDataError(problems)
    body = [(number, row) for number, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    if not body:
        raise ObservedDataError([f"{label}: no months below the header"])
    if len(body) > MAX_MONTHS:
        raise ObservedDataError([f"{label}: {len(body)} rows; a monthly series has at most {MAX_MONTHS}"])
    months: list[pd.Period] = []
    records: list[dict[str, float]] = []
    for number, row in body:
        if len(row) != len(header):
            problems.append(f"{label}, row {number}: {len(row)} cells, the header has {len(header)}")
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        month = _parse_month(cells["month"], f"{label}, row {number}, column month", problems)
        record = {column: _parse_value(cells[column], column, f"{label}, row {number}, column {column}", problems)
                  for column in header if column != "month"}
        if month is not None:
            months.append(month)
            records.append(record)
            _check_row(record, f"{label}, row {number}", problems)
    _check_months(label, months, problems)
    if problems:
        raise ObservedDataError(problems)
    table = pd.DataFrame.from_records(records, index=pd.PeriodIndex(months, freq="M", name="month"))
    ordered = [c for c in ALL_COLUMNS if c in table.columns]
    return ObservedSeries(label, table[ordered].astype(float))


def observed_from_rtt_extracts(paths: Sequence[str | Path],
                               providers: Sequence[str] | None = None) -> ObservedSeries:
    """The tidy series from monthly RTT Full CSVs (one month each), summed over `providers` (codes or a parent
    code such as an ICS; None for the whole file).

    clock starts = Part_3; completed pathways = Part_1A + Part_1B (admitted + non-admitted), completed_admitted =
    Part_1A; waiting list = Part_2 (all incomplete pathways, including those with an unknown clock start, as NHS
    England counts the list: Part_2A, the decision-to-admit subset, is already inside Part_2 and is not added);
    over_N = Part_2 bands from N weeks up (patients with an unknown clock start are in no band).
    """
    if not paths:
        raise ObservedDataError(["no RTT files given"])
    months: list[pd.Period] = []
    records: list[dict[str, float]] = []
    for path in paths:
        extract = load_rtt(path, providers=providers)
        months.append(pd.Period(extract.period, freq="M"))
        record = {
            "clock_starts": float(extract.totals(CLOCK_START_PART).loc[TOTAL_LABEL].sum()),
            "completed_pathways": float(extract.totals("Part_1A").loc[TOTAL_LABEL].sum()
                                        + extract.totals("Part_1B").loc[TOTAL_LABEL].sum()),
            "waiting_list": float(extract.totals("Part_2").loc[TOTAL_LABEL].sum()),
            "completed_admitted": float(extract.totals("Part_1A").loc[TOTAL_LABEL].sum()),
        }
        for weeks in (18, 52, 78, 104):
            record[f"over_{weeks}w"] = float(extract.counts_over("Part_2", weeks)[TOTAL_LABEL])
        records.append(record)
    problems: list[str] = []
    order = sorted(range(len(months)), key=lambda i: months[i])
    months = [months[i] for i in order]
    records = [records[i] for i in order]
    _check_months("the RTT files given", months, problems)
    if problems:
        raise ObservedDataError(problems)
    table = pd.DataFrame.from_records(records, index=pd.PeriodIndex(months, freq="M", name="month"))
    source = str(paths[0]) if len(paths) == 1 else f"{len(paths)} RTT files ({paths[0]} … {paths[-1]})"
    return ObservedSeries(source, table[[c for c in ALL_COLUMNS if c in table.columns]])


def _read_text(path: Path, label: str) -> str:
    """The file as text, if it is a regular UTF-8 file of at most MAX_SERIES_CSV_BYTES (sim.scenario.input_files: a
    folder, device or pipe is refused without being opened)."""
    try:
        return read_text(path, MAX_SERIES_CSV_BYTES, "a CSV file of monthly figures")
    except InputFileError as exc:
        raise ObservedDataError([f"{label}: {exc.reason}"]) from None


def _check_header(label: str, header: list[str]) -> list[str]:
    problems = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems.append(f"{label}, row 1: missing column(s) {', '.join(missing)}; "
                        f"the required columns are {', '.join(REQUIRED_COLUMNS)}")
    unknown = [c for c in header if c not in ALL_COLUMNS]
    if unknown:
        problems.append(f"{label}, row 1: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
                        f"the optional columns are {', '.join(OPTIONAL_COLUMNS)}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        problems.append(f"{label}, row 1: column(s) given twice: {', '.join(duplicated)}")
    return problems


def parse_month(text: str) -> pd.Period:
    """`YYYY-MM` → a monthly Period; ValueError saying what was expected."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"expected a month as YYYY-MM (e.g. 2021-06), got {text!r}")
    return pd.Period(text.strip(), freq="M")


def _parse_month(text: str, where: str, problems: list[str]) -> pd.Period | None:
    try:
        return parse_month(text)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _parse_value(text: str, column: str, where: str, problems: list[str]) -> float:
    if text in ("", "-"):
        if column in REQUIRED_COLUMNS:
            problems.append(f"{where}: blank; {column} is required every month")
        return math.nan
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        problems.append(f"{where}: expected a number, got {text!r}")
        return math.nan
    if not math.isfinite(value) or value < 0:
        problems.append(f"{where}: expected a finite number of at least 0, got {text!r}")
        return math.nan
    return value


def _check_row(record: dict[str, float], where: str, problems: list[str]) -> None:
    present = [c for c in NESTED_COUNTS if c in record and not math.isnan(record[c])]
    for longer_index, longer in enumerate(present[1:], start=1):
        shorter = present[longer_index - 1]
        if record[longer] > record[shorter]:
            problems.append(f"{where}, column {longer}: {record[longer]:,.0f} is more than {shorter} "
                            f"({record[shorter]:,.0f}); counts over a longer wait cannot exceed a shorter one")
    admitted, completed = record.get("completed_admitted", math.nan), record.get("completed_pathways", math.nan)
    if not math.isnan(admitted) and not math.isnan(completed) and admitted > completed:
        problems.append(f"{where}, column completed_admitted: {admitted:,.0f} is more than completed_pathways "
                        f"({completed:,.0f})")
    on_admitted, waiting = record.get("waiting_admitted", math.nan), record.get("waiting_list", math.nan)
    if not math.isnan(on_admitted) and not math.isnan(waiting) and on_admitted > waiting:
        problems.append(f"{where}, column waiting_admitted: {on_admitted:,.0f} is more than waiting_list "
                        f"({waiting:,.0f})")
    median, p92 = record.get("median_wait_weeks", math.nan), record.get("p92_wait_weeks", math.nan)
    if not math.isnan(median) and not math.isnan(p92) and median > p92:
        problems.append(f"{where}, column median_wait_weeks: {median:g} is more than p92_wait_weeks ({p92:g})")


def _check_months(label: str, months: list[pd.Period], problems: list[str]) -> None:
    for before, after in itertools.pairwise(months):
        if after == before:
            problems.append(f"{label}: month {after} appears twice")
        elif after < before:
            problems.append(f"{label}: month {after} comes after {before}; months must increase")
        elif after != before + 1:
            gap = [str(before + k) for k in range(1, min((after - before).n, 4))]
            problems.append(f"{label}: months missing between {before} and {after} ({', '.join(gap)}"
                            f"{' …' if (after - before).n > 3 else ''}); a series has every month")
