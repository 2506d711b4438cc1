"""Reader for NHS England's Referral to Treatment (RTT) waiting-times "Full CSV" files.

Why: the simulator's starting waiting list (patients by whole weeks waited), its completed pathways and its clock
starts per provider and treatment function come from the monthly RTT publication. This module turns one Full CSV
into per-part tables the model can use, and refuses files it cannot read faithfully rather than guessing.

Format (see tests/data/rtt/README.md): one row per provider x commissioner x part type x treatment function;
13 descriptive columns, week bands found by name (`Gt 00 To 01 Weeks SUM 1` ... and one open top band such as
`Gt 52 Weeks SUM 1` before April 2021 or `Gt 104 Weeks SUM 1` later), then `Total`,
`Patients with unknown clock start date` and `Total All`. Blank cells are zero.

Treatment function codes are kept without the publication's `C_` prefix (`C_110` -> `110`; `X02` stays `X02`),
so they match the NHS Data Dictionary codes used in specialty mappings.
"""
from __future__ import annotations

import calendar
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from sim.scenario.input_files import MAX_RTT_CSV_BYTES, InputFileError, read_bytes

DESCRIPTIVE_COLUMNS: tuple[str, ...] = (
    "Period",
    "Provider Parent Org Code",
    "Provider Parent Name",
    "Provider Org Code",
    "Provider Org Name",
    "Commissioner Parent Org Code",
    "Commissioner Parent Name",
    "Commissioner Org Code",
    "Commissioner Org Name",
    "RTT Part Type",
    "RTT Part Description",
    "Treatment Function Code",
    "Treatment Function Name",
)
TOTAL_COLUMN = "Total"
UNKNOWN_CLOCK_START_COLUMN = "Patients with unknown clock start date"
TOTAL_ALL_COLUMN = "Total All"

PART_TYPES: tuple[str, ...] = ("Part_1A", "Part_1B", "Part_2", "Part_2A", "Part_3")
CLOCK_START_PART = "Part_3"
BANDED_PARTS: tuple[str, ...] = tuple(p for p in PART_TYPES if p != CLOCK_START_PART)
PROVIDER_TOTAL_TFC = "C_999"  # the file's own provider-total row: dropped, used only as a check

UNKNOWN_CLOCK_START = "unknown_clock_start"
TOTAL_ALL = "total_all"
TOTAL_LABEL = "Total"  # row/entry label for sums in totals() and counts_over()
INDEX_NAMES: tuple[str, str] = ("provider_code", "treatment_function_code")

# Open top band rule: weekly weights halve every (spread / OPEN_BAND_HALF_LIVES) weeks.
OPEN_BAND_HALF_LIVES = 4

_CLOSED_BAND = re.compile(r"^Gt (\d+) To (\d+) Weeks SUM 1$")
_OPEN_BAND = re.compile(r"^Gt (\d+) Weeks SUM 1$")
_PERIOD = re.compile(r"^RTT-([A-Za-z]+)-(\d{4})$")
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MAX_PROBLEMS = 50  # a bad national file can have thousands of bad cells; the first ones are enough
_MAX_CODES_LISTED = 40


class RttDataError(Exception):
    """An RTT file that cannot be read faithfully; `problems` holds one line per problem, each naming the file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


def normalise_tfc(code: str) -> str:
    """Treatment function code without the publication's `C_` prefix, so `C_110` and `110` are the same key."""
    code = str(code).strip().upper()
    return code[2:] if code.startswith("C_") else code


def parse_period(text: str) -> date:
    """First day of the month named by an RTT `Period` value (`RTT-November-2024`, `RTT-APRIL-2022`)."""
    m = _PERIOD.match(str(text).strip())
    if not m or m.group(1).lower() not in _MONTHS:
        raise ValueError(f"not an RTT period (expected e.g. 'RTT-November-2024'): {text!r}")
    return date(int(m.group(2)), _MONTHS[m.group(1).lower()], 1)


@dataclass(frozen=True)
class RttExtract:
    """One RTT Full CSV, filtered and summed over commissioners.

    `parts[part]` is a DataFrame indexed by (provider_code, treatment_function_code) with integer counts of
    patients. Banded parts (`Part_1A`, `Part_1B`, `Part_2`, `Part_2A`) have one column per whole week waited
    (column `k` = band "Gt k To k+1 Weeks"; the open top band spread as described in `load_rtt`), then
    `unknown_clock_start` and `total_all`; for every row `total_all` = sum of week columns + `unknown_clock_start`.
    `Part_3` (clock starts) has no week bands in the file, so its frame has only `unknown_clock_start` and
    `total_all` (the count of clock starts). The provider-total rows (`C_999`) are not in the frames.
    """

    source: Path
    period_label: str  # as written in the file, e.g. "RTT-November-2024"
    period: date  # first day of the reporting month
    parts: dict[str, pd.DataFrame]
    providers: tuple[str, ...]  # provider org codes in the extract, sorted
    provider_names: dict[str, str]
    treatment_function_names: dict[str, str]  # normalised code -> name as published
    open_band_lower_weeks: int | None  # lower bound of the file's open top band (52 or 104), None if it had none
    open_band_spread_weeks: int
    week_columns: tuple[int, ...] = field(default=())  # whole weeks waited, 0 .. n-1, as column labels

    @property
    def census_date(self) -> date:
        """Last day of the reporting month: the date the waiting list (Part_2) was counted."""
        return date(self.period.year, self.period.month, calendar.monthrange(self.period.year, self.period.month)[1])

    def part(self, part: str) -> pd.DataFrame:
        """The frame for one part type, with a clear error for a misspelt part name."""
        if part not in self.parts:
            raise KeyError(f"unknown RTT part type {part!r}; expected one of {', '.join(PART_TYPES)}")
        return self.parts[part]

    def counts_over(self, part: str, weeks: int) -> pd.Series:
        """Patients who had waited more than `weeks` weeks, per provider plus a final `Total` entry.

        "More than N weeks" is the sum of the week columns k >= N, i.e. of the file's bands with lower bound
        >= N: NHS England's "over 18 weeks" is the sum of bands from "Gt 18 To 19 Weeks" upward, so
        `counts_over("Part_2", 18)` reproduces it. Patients with an unknown clock start are not counted.
        For N above the open band's lower bound the result depends on the spreading rule (an estimate);
        for N at or below it, it is exact.
        """
        if part == CLOCK_START_PART:
            raise ValueError(f"{CLOCK_START_PART} (clock starts) has no weeks-waited bands")
        if int(weeks) != weeks or weeks < 0:
            raise ValueError(f"weeks must be a whole number >= 0, got {weeks!r}")
        frame = self.part(part)
        cols = [k for k in self.week_columns if k >= weeks]
        per_row = frame[cols].sum(axis=1) if cols else pd.Series(0, index=frame.index, dtype="int64")
        per_provider = per_row.groupby(level=INDEX_NAMES[0]).sum().reindex(list(self.providers), fill_value=0)
        out = pd.concat([per_provider, pd.Series({TOTAL_LABEL: per_provider.sum()})]).astype("int64")
        out.name = f"over_{int(weeks)}_weeks"
        return out

    def totals(self, part: str) -> pd.DataFrame:
        """`total_all` per treatment function (rows) and provider (columns), with a final `Total` row.

        The `Total` row is the provider total (equal to the file's `C_999` row, which load_rtt checks).
        """
        frame = self.part(part)
        table = frame[TOTAL_ALL].unstack(level=INDEX_NAMES[0], fill_value=0)
        table = table.reindex(columns=list(self.providers), fill_value=0).fillna(0).astype("int64")
        table.loc[TOTAL_LABEL] = table.sum(axis=0)
        table.index.name = INDEX_NAMES[1]
        table.columns.name = INDEX_NAMES[0]
        return table.astype("int64")


def spread_open_band(counts: np.ndarray, spread_weeks: int) -> np.ndarray:
    """Split each open-band count over `spread_weeks` whole weeks, keeping each count exactly.

    Why: the model needs a week waited for every patient, but the top band ("Gt 52 Weeks", "Gt 104 Weeks") has
    no upper bound. Rule (deterministic, no random numbers): week j (j = 0 .. spread_weeks-1 beyond the band's
    lower bound) gets weight 2 ** (-OPEN_BAND_HALF_LIVES * j / spread_weeks) -- a geometric decline that halves
    every spread_weeks/4 weeks, so the last week holds about 1/16 of the first, as waiting-list tails thin out.
    Each count is split by these weights with the largest-remainder method: floor of each share, then the
    leftover patients go one each to the weeks with the largest fractional parts (ties to the earlier week).
    Returns an int64 array of shape (len(counts), spread_weeks).
    """
    if spread_weeks < 1:
        raise ValueError(f"open_band_spread_weeks must be >= 1, got {spread_weeks}")
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    weights = np.power(2.0, -OPEN_BAND_HALF_LIVES * np.arange(spread_weeks) / spread_weeks)
    weights /= weights.sum()
    exact = counts[:, None].astype(np.float64) * weights[None, :]
    base = np.floor(exact).astype(np.int64)
    leftover = counts - base.sum(axis=1)
    order = np.argsort(-(exact - base), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(spread_weeks)[None, :].repeat(len(counts), axis=0), axis=1)
    return base + (rank < leftover[:, None]).astype(np.int64)


def load_rtt(
    path: str | Path,
    providers: Sequence[str] | None = None,
    commissioners: Sequence[str] | None = None,
    open_band_spread_weeks: int = 52,
) -> RttExtract:
    """Read an RTT Full CSV into per-part tables by provider and treatment function, summed over commissioners.

    Why: one call gives the model its waiting list by weeks waited (Part_2), completions (Part_1A/1B) and clock
    starts (Part_3) for the chosen providers, checked against the file's own totals.

    - `providers`: codes matched against `Provider Org Code` or `Provider Parent Org Code` (so an ICB code selects
      all providers whose parent it is). `commissioners`: matched against `Commissioner Org Code` or
      `Commissioner Parent Org Code` (so ICB `QRV` selects all of its sub-ICB locations). None means no filter.
      Every code given must match some row, or RttDataError lists what the file has.
    - Week bands are found by name, never by position. The open top band is spread over
      `open_band_spread_weeks` weeks beyond its lower bound by `spread_open_band` (geometric decline, halving
      every spread/4 weeks, largest-remainder rounding): integer counts, each row's total kept exactly.
    - Checks (all reported together as RttDataError): the descriptive columns and week bands exist and are
      contiguous one-week bands; counts are whole numbers >= 0; `Total All` = bands + unknown clock start and
      `Total` (where filled) = bands on banded rows; the specialties add up to the `C_999` row; no duplicate rows.
      Only the selected rows' counts are checked.
    """
    if int(open_band_spread_weeks) != open_band_spread_weeks or open_band_spread_weeks < 1:
        raise ValueError(f"open_band_spread_weeks must be a whole number >= 1, got {open_band_spread_weeks!r}")
    path = Path(path)
    label = str(path)
    raw = _read_csv(path, label)

    problems: list[str] = []
    missing = [c for c in DESCRIPTIVE_COLUMNS + (TOTAL_ALL_COLUMN,) if c not in raw.columns]
    if missing:
        problems.append(f"{label}: not an RTT Full CSV: missing columns {_quote(missing)}")
    closed, open_band, band_problems = _find_bands(list(raw.columns), label)
    problems += band_problems
    if not problems and raw.empty:
        problems.append(f"{label}: no data rows")
    if problems:
        raise RttDataError(problems)

    for col in DESCRIPTIVE_COLUMNS:
        raw[col] = raw[col].str.strip()
    for col in ("Provider Org Code", "Provider Parent Org Code", "Commissioner Org Code",
                "Commissioner Parent Org Code", "RTT Part Type", "Treatment Function Code"):
        raw[col] = raw[col].str.upper()
    raw["RTT Part Type"] = raw["RTT Part Type"].str.replace("PART_", "Part_", regex=False)

    period_label, period = _period_of(raw, label, problems)
    keep = _select_rows(raw, providers, commissioners, label, problems)
    if problems:
        raise RttDataError(problems)
    rows = raw.loc[keep]

    unknown_parts = sorted(set(rows["RTT Part Type"]) - set(PART_TYPES))
    if unknown_parts:
        problems.append(f"{label}: unknown RTT Part Type {_quote(unknown_parts)}; expected {_quote(PART_TYPES)}")

    band_cols = [c for c, _ in closed] + ([open_band[0]] if open_band else [])
    extra_cols = [c for c in (TOTAL_COLUMN, UNKNOWN_CLOCK_START_COLUMN) if c in rows.columns]
    values, blank = _parse_counts(rows, band_cols + extra_cols + [TOTAL_ALL_COLUMN], label, problems)
    if problems:
        raise _error(problems)

    n_closed = len(closed)
    n_bands = len(band_cols)
    bands = values[:, :n_bands]
    col_of = {c: n_bands + i for i, c in enumerate(extra_cols)}
    unknown = values[:, col_of[UNKNOWN_CLOCK_START_COLUMN]] if UNKNOWN_CLOCK_START_COLUMN in col_of else \
        np.zeros(len(rows), dtype=np.int64)
    total_all, total_all_blank = values[:, -1], blank[:, -1]
    part = rows["RTT Part Type"].to_numpy()
    is_clock_start = part == CLOCK_START_PART
    lines = rows.index.to_numpy() + 2  # header is line 1

    band_sum = bands.sum(axis=1)
    total_all = np.where(total_all_blank & ~is_clock_start, band_sum + unknown, total_all)
    _check_row_totals(label, lines, is_clock_start, band_sum, unknown, total_all, values, blank, col_of, problems)
    if TOTAL_COLUMN in col_of:  # Part_3: count is Total All, or Total when Total All is blank
        j = col_of[TOTAL_COLUMN]
        total_all = np.where(is_clock_start & total_all_blank & ~blank[:, j], values[:, j], total_all)

    tfc_raw = rows["Treatment Function Code"].to_numpy()
    is_total_row = tfc_raw == PROVIDER_TOTAL_TFC
    provider = rows["Provider Org Code"].to_numpy()
    commissioner = rows["Commissioner Org Code"].to_numpy()
    _check_duplicates(label, rows, lines, problems)
    _check_provider_totals(label, provider, commissioner, part, is_total_row, total_all, problems)
    if problems:
        raise _error(problems)

    weeks_closed = bands[:, :n_closed]
    if open_band:
        weeks = np.hstack([weeks_closed, spread_open_band(bands[:, n_closed], int(open_band_spread_weeks))])
    else:
        weeks = weeks_closed
    week_columns = tuple(range(weeks.shape[1]))
    tfc = np.array([normalise_tfc(c) for c in tfc_raw], dtype=object)

    parts: dict[str, pd.DataFrame] = {}
    for p in PART_TYPES:
        m = (part == p) & ~is_total_row
        columns: list[str | int]                # week columns are numbered, the other two named
        if p == CLOCK_START_PART:
            data, columns = np.column_stack([unknown[m], total_all[m]]), [UNKNOWN_CLOCK_START, TOTAL_ALL]
        else:
            data = np.column_stack([weeks[m], unknown[m], total_all[m]])
            columns = list(week_columns) + [UNKNOWN_CLOCK_START, TOTAL_ALL]
        parts[p] = _sum_by_provider_tfc(data, columns, provider[m], tfc[m])

    tf_names = dict(zip(tfc[~is_total_row], rows["Treatment Function Name"].to_numpy()[~is_total_row], strict=True))
    for frame in parts.values():
        frame.attrs["treatment_function_names"] = dict(tf_names)
    return RttExtract(
        source=path,
        period_label=period_label,
        period=period,
        parts=parts,
        providers=tuple(sorted(set(provider))),
        provider_names=dict(zip(provider, rows["Provider Org Name"].to_numpy(), strict=True)),
        treatment_function_names=tf_names,
        open_band_lower_weeks=open_band[1] if open_band else None,
        open_band_spread_weeks=int(open_band_spread_weeks),
        week_columns=week_columns,
    )


def map_specialties(
    data: RttExtract | pd.DataFrame,
    mapping: Mapping[str, str],
    other: str = "other",
    part: str = "Part_2",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regroup treatment functions into model specialties; returns (frame, unmapped_report).

    Why: the model has its own specialty list; RTT reports NHS treatment functions. `mapping` keys are treatment
    function codes (`"110"`, `"C_110"` and `"X02"` forms all accepted), values are specialty names. `data` is an
    RttExtract (its `part` frame is used) or a frame indexed by (provider_code, treatment_function_code).
    The frame returned is indexed by (provider_code, specialty), columns unchanged, counts summed; codes not in
    `mapping` go to `other`. The report lists each unmapped code with its published name and `total_all` count
    (summed over providers), largest first, so nothing is dropped silently.
    """
    frame = data.part(part) if isinstance(data, RttExtract) else data
    names = data.treatment_function_names if isinstance(data, RttExtract) else \
        frame.attrs.get("treatment_function_names", {})
    lookup = {normalise_tfc(k): v for k, v in mapping.items()}
    codes = frame.index.get_level_values(INDEX_NAMES[1]).map(normalise_tfc)
    specialty = [lookup.get(c, other) for c in codes]
    providers = frame.index.get_level_values(INDEX_NAMES[0])
    mapped = frame.groupby([providers, pd.Index(specialty, name="specialty")], sort=True).sum()
    mapped.index.names = [INDEX_NAMES[0], "specialty"]

    unmapped = sorted(set(c for c in codes if c not in lookup))
    counts = frame[TOTAL_ALL].groupby(codes).sum() if len(frame) else pd.Series(dtype="int64")
    report = pd.DataFrame(
        {"code": unmapped, "name": [names.get(c, "") for c in unmapped],
         "count": [int(counts.get(c, 0)) for c in unmapped]},
        columns=["code", "name", "count"],
    )
    report = report.sort_values(["count", "code"], ascending=[False, True], kind="stable").reset_index(drop=True)
    report["count"] = report["count"].astype("int64")
    return mapped, report


# --- internals ---------------------------------------------------------------------------------------------


def _quote(items: Sequence[str] | set[str]) -> str:
    return ", ".join(f"'{i}'" for i in items)


def _error(problems: list[str]) -> RttDataError:
    if len(problems) > _MAX_PROBLEMS:
        extra = len(problems) - _MAX_PROBLEMS
        problems = problems[:_MAX_PROBLEMS] + [f"{problems[0].split(': ', 1)[0]}: ... and {extra} more problems"]
    return RttDataError(problems)


def _read_csv(path: Path, label: str) -> pd.DataFrame:
    """All cells as strings (blank = ""), headers stripped, so nothing is coerced before it is checked. The file
    must be a regular file of at most MAX_RTT_CSV_BYTES (sim.scenario.input_files: a folder, device or pipe is
    refused without being opened), in UTF-8 or, as some older publications are, Windows-1252."""
    try:
        data = read_bytes(path, MAX_RTT_CSV_BYTES, "an RTT Full CSV file")
    except InputFileError as exc:
        raise RttDataError([f"{label}: cannot read file: {exc.reason}"]) from None
    try:
        try:
            raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:  # some older publications are Windows-1252
            raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="cp1252")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise RttDataError([f"{label}: cannot read file: {reason}"]) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    dupes = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
    if dupes:
        raise RttDataError([f"{label}: duplicated columns {_quote(dupes)}"])
    return raw.reset_index(drop=True)


def _find_bands(columns: list[str], label: str) -> tuple[list[tuple[str, int]], tuple[str, int] | None, list[str]]:
    """Closed one-week bands (column, lower week) sorted by week, the open top band if any, and problems."""
    closed: list[tuple[str, int]] = []
    opens: list[tuple[str, int]] = []
    problems: list[str] = []
    for col in columns:
        if m := _CLOSED_BAND.match(col):
            lower, upper = int(m.group(1)), int(m.group(2))
            if upper != lower + 1:
                problems.append(f"{label}: band column '{col}' spans {upper - lower} weeks; only one-week bands "
                                "are supported")
            closed.append((col, lower))
        elif m := _OPEN_BAND.match(col):
            opens.append((col, int(m.group(1))))
    if not closed and not opens:
        problems.append(f"{label}: no week-band columns (expected names like 'Gt 00 To 01 Weeks SUM 1' and an "
                        "open top band like 'Gt 104 Weeks SUM 1')")
        return [], None, problems
    closed.sort(key=lambda cw: cw[1])
    lowers = [w for _, w in closed]
    if lowers != list(range(len(lowers))):
        gaps = sorted(set(range(max(lowers, default=0) + 1)) - set(lowers))
        dupes = sorted({w for w in lowers if lowers.count(w) > 1})
        problems.append(f"{label}: week bands are not contiguous from week 0 (missing weeks {gaps}, "
                        f"repeated weeks {dupes})")
    if len(opens) > 1:
        problems.append(f"{label}: more than one open top band: {_quote([c for c, _ in opens])}")
    open_band = opens[0] if opens else None
    if open_band and open_band[1] != len(lowers):
        problems.append(f"{label}: open band '{open_band[0]}' does not start where the one-week bands end "
                        f"(week {len(lowers)})")
    return closed, open_band, problems


def _period_of(raw: pd.DataFrame, label: str, problems: list[str]) -> tuple[str, date]:
    labels = sorted(set(raw["Period"]) - {""})
    if len(labels) != 1:
        problems.append(f"{label}: expected one Period in the file, found {_quote(labels) or 'none'}")
        return "", date(1900, 1, 1)
    try:
        return labels[0], parse_period(labels[0])
    except ValueError as exc:
        problems.append(f"{label}: column 'Period': {exc}")
        return labels[0], date(1900, 1, 1)


def _codes(arg: Sequence[str] | str, what: str) -> list[str]:
    codes = [arg] if isinstance(arg, str) else list(arg)
    if not codes:
        raise ValueError(f"{what}: empty list; pass None for no filter")
    return [str(c).strip().upper() for c in codes]


def _listing(codes: Sequence[str]) -> str:
    codes = sorted(set(codes) - {""})
    shown = _quote(codes[:_MAX_CODES_LISTED])
    return shown + (f" ... ({len(codes)} in all)" if len(codes) > _MAX_CODES_LISTED else "")


def _select_rows(raw: pd.DataFrame, providers: Sequence[str] | None, commissioners: Sequence[str] | None,
                 label: str, problems: list[str]) -> np.ndarray:
    keep = np.ones(len(raw), dtype=bool)
    for arg, org_col, parent_col, what in (
        (providers, "Provider Org Code", "Provider Parent Org Code", "provider"),
        (commissioners, "Commissioner Org Code", "Commissioner Parent Org Code", "commissioner"),
    ):
        if arg is None:
            continue
        codes = _codes(arg, f"{what}s")
        org, parent = raw[org_col], raw[parent_col]
        absent = [c for c in codes if not ((org == c) | (parent == c)).any()]
        if absent:
            problems.append(f"{label}: {what} code(s) {_quote(absent)} have no rows (matched against '{org_col}' "
                            f"and '{parent_col}'); the file has {what}s {_listing(list(org))}")
        keep &= (org.isin(codes) | parent.isin(codes)).to_numpy()
    if not problems and not keep.any():
        problems.append(f"{label}: no rows for providers {_quote(_codes(providers, 'providers'))} with "
                        f"commissioners {_quote(_codes(commissioners, 'commissioners'))}"
                        if providers is not None and commissioners is not None else f"{label}: no data rows")
    return keep


def _parse_counts(rows: pd.DataFrame, columns: list[str], label: str,
                  problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Counts as int64 (blank = 0) and a blank mask; non-numeric, fractional or negative cells are problems."""
    values = np.zeros((len(rows), len(columns)), dtype=np.int64)
    blank = np.zeros((len(rows), len(columns)), dtype=bool)
    lines = rows.index.to_numpy() + 2
    for j, col in enumerate(columns):
        text = rows[col].str.strip().str.replace(",", "", regex=False)
        is_blank = (text == "").to_numpy()
        num = pd.to_numeric(text.where(~is_blank, "0"), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(num)
        finite = np.isfinite(num)
        fractional = ~bad & ~finite
        fractional[finite] = np.mod(num[finite], 1) != 0
        negative = ~bad & (num < 0)
        raw_text = rows[col].to_numpy()
        for i in np.flatnonzero(bad | fractional | negative):
            what = "non-numeric count" if bad[i] else ("negative count" if negative[i] else "count not a whole number")
            problems.append(f"{label}: line {lines[i]}, column '{col}': {what} {raw_text[i]!r}")
        ok = ~(bad | fractional | negative)
        values[ok, j] = num[ok].astype(np.int64)
        blank[:, j] = is_blank
    return values, blank


def _check_row_totals(label: str, lines: np.ndarray, is_clock_start: np.ndarray, band_sum: np.ndarray,
                      unknown: np.ndarray, total_all: np.ndarray, values: np.ndarray, blank: np.ndarray,
                      col_of: dict[str, int], problems: list[str]) -> None:
    """Banded rows: Total All = bands + unknown, Total (if filled) = bands. Part_3: Total and Total All agree."""
    for i in np.flatnonzero(~is_clock_start & (total_all != band_sum + unknown)):
        problems.append(f"{label}: line {lines[i]}: '{TOTAL_ALL_COLUMN}' is {total_all[i]} but the week bands plus "
                        f"unknown clock starts add up to {band_sum[i] + unknown[i]}")
    if TOTAL_COLUMN in col_of:
        j = col_of[TOTAL_COLUMN]
        total = values[:, j]
        for i in np.flatnonzero(~is_clock_start & ~blank[:, j] & (total != band_sum)):
            problems.append(f"{label}: line {lines[i]}: '{TOTAL_COLUMN}' is {total[i]} but the week bands add up "
                            f"to {band_sum[i]}")
        both = is_clock_start & ~blank[:, j] & ~blank[:, -1] & (total != total_all)
        for i in np.flatnonzero(both):
            problems.append(f"{label}: line {lines[i]}: {CLOCK_START_PART} '{TOTAL_COLUMN}' ({total[i]}) and "
                            f"'{TOTAL_ALL_COLUMN}' ({total_all[i]}) differ")


def _check_duplicates(label: str, rows: pd.DataFrame, lines: np.ndarray, problems: list[str]) -> None:
    key = ["Provider Org Code", "Commissioner Org Code", "RTT Part Type", "Treatment Function Code"]
    dup = rows.duplicated(subset=key, keep="first").to_numpy()
    for i in np.flatnonzero(dup):
        problems.append(f"{label}: line {lines[i]}: repeats an earlier row for the same provider, commissioner, "
                        "part type and treatment function")


def _check_provider_totals(label: str, provider: np.ndarray, commissioner: np.ndarray, part: np.ndarray,
                           is_total_row: np.ndarray, total_all: np.ndarray, problems: list[str]) -> None:
    """Where the file gives a C_999 row, the specialties (which the model keeps) must add up to it."""
    if not is_total_row.any():
        return
    frame = pd.DataFrame({"provider": provider, "commissioner": commissioner, "part": part,
                          "is_total": is_total_row, "n": total_all})
    key = ["provider", "part"]
    stated = frame[frame.is_total].groupby(key)["n"].sum()
    with_total = frame.set_index(["provider", "commissioner", "part"]).index.isin(
        frame[frame.is_total].set_index(["provider", "commissioner", "part"]).index)
    summed = frame[~frame.is_total & with_total].groupby(key)["n"].sum().reindex(stated.index, fill_value=0)
    for (prov, p), n_stated in stated.items():
        if summed[(prov, p)] != n_stated:
            problems.append(f"{label}: provider '{prov}' {p}: treatment functions add up to {summed[(prov, p)]} "
                            f"but the '{PROVIDER_TOTAL_TFC}' total rows say {n_stated}")


def _sum_by_provider_tfc(data: np.ndarray, columns: list, provider: np.ndarray, tfc: np.ndarray) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([pd.Index(provider, dtype=object), pd.Index(tfc, dtype=object)],
                                      names=list(INDEX_NAMES))
    frame = pd.DataFrame(data.astype(np.int64).reshape(len(provider), len(columns)), index=index,
                         columns=pd.Index(columns, dtype=object))
    if len(frame):
        frame = frame.groupby(level=list(INDEX_NAMES), sort=True).sum()
    return frame.astype(np.int64)
