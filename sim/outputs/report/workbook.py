"""results.xlsx: the report's summary table first (the Summary sheet, the same text as the report's), then the
run's tables and the report's comparison, assumptions and provenance, one sheet each, with real dates, frozen
headers and readable column widths. summary.csv is the `statistics` sheet (Excel's sheet names ignore case, so it
cannot also be called summary).

Every string of every sheet, the headers included, is written through sim.outputs.safe_text: characters a
worksheet cannot hold are dropped (XML 1.0 has no place for them), text is cut at the characters a cell holds,
and each text cell is written as a string, with Excel's quote prefix where it starts like a formula, so a title
such as =HYPERLINK(...) is shown as written and never runs."""
from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.outputs.report.providers import median_by_week
from sim.outputs.run_folder import (
    FINANCE_BY_YEAR_CSV,
    FINANCE_MONTHLY_CSV,
    PARAMETERS_CSV,
    REPLICATIONS_CSV,
    SUMMARY_CSV,
    WEEKLY_BY_SITE_CSV,
    WEEKLY_CSV,
)
from sim.outputs.run_reader import RunFolder
from sim.outputs.safe_text import cell_text, starts_like_formula

EXCEL_MAX_ROWS = 1_048_576          # rows of an Excel sheet, the header row included
EXCEL_MAX_COLUMNS = 16_384


def _to_excel_dates(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The date columns as Python datetimes, None where there is no date (a blank cell). Built as an object column
    outright: a list of dates and Nones given to pandas becomes a datetime column, whose NaT a sheet cannot write
    (a compare in which one scenario clears a threshold and another does not)."""
    df = df.copy()
    for c in columns:
        if c in df:
            df[c] = pd.Series([None if pd.isna(v) else pd.Timestamp(v).to_pydatetime() for v in df[c]],
                              index=df.index, dtype=object)
    return df


def _fits(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """`table`, or a note naming the run folder's file `source` (the table, or what it was made from) when the
    table has more rows or columns than a sheet holds (a run may write more: 10,000 replications of a 20-year
    finance_monthly.csv), rather than a sheet with rows cut silently."""
    if len(table) < EXCEL_MAX_ROWS and table.shape[1] <= EXCEL_MAX_COLUMNS:
        return table
    return pd.DataFrame({"note": [f"This table has {len(table):,} rows and {table.shape[1]:,} columns, more than "
                                  f"an Excel sheet holds ({EXCEL_MAX_ROWS - 1:,} rows below its header, "
                                  f"{EXCEL_MAX_COLUMNS:,} columns); use {source} in the run folder."]})


SUMMARY_SHEET = "Summary"
STATISTICS_SHEET = "statistics"


def write_workbook(path: Path, run: RunFolder, comparison: pd.DataFrame, assumptions: pd.DataFrame,
                   provenance: list[tuple[str, str]], summary: pd.DataFrame,
                   against_published: pd.DataFrame | None = None) -> None:
    """`summary`: the report's summary table as text (sim.outputs.report.summary.summary_frame);
    `against_published`: the months the run shares with NHS England's published figures
    (sim.outputs.report.published.published_sheet), None when it shares none."""
    weekly = _to_excel_dates(_fits(run.weekly, WEEKLY_CSV), ["week_start"])
    date_cols = [c for c in comparison.columns if "_week_p" in c or c in ("start_date", "end_of_run")]
    comparison = _to_excel_dates(comparison, date_cols)
    sheets: list[tuple[str, pd.DataFrame, str]] = [
        (SUMMARY_SHEET, summary, "B2"),
        (STATISTICS_SHEET, _fits(run.summary, SUMMARY_CSV), "A2"),
        ("weekly", weekly, "E2"),
        ("comparison", comparison, "C2"),
        ("replications", _fits(run.replications, REPLICATIONS_CSV), "C2"),
        ("assumptions", assumptions, "B2"),
        ("provenance", pd.DataFrame(provenance, columns=["Item", "Value"]), "B2"),
    ]
    by_provider = median_by_week(run)
    if len(by_provider):                        # each trust's weekly line: medians across replications
        sheets.append(("by_provider", _to_excel_dates(_fits(by_provider, WEEKLY_BY_SITE_CSV), ["week_start"]), "F2"))
    finance = run.table(FINANCE_BY_YEAR_CSV)    # the tables as load_run read and checked them
    if finance is not None:                     # financial years as columns, the way NHS finance reports
        sheets.append(("finance", _fits(finance, FINANCE_BY_YEAR_CSV), "D2"))
    finance_months = run.table(FINANCE_MONTHLY_CSV)
    if finance_months is not None:
        sheets.append(("finance_monthly", _fits(finance_months, FINANCE_MONTHLY_CSV), "E2"))
    parameters = run.table(PARAMETERS_CSV)
    if parameters is not None:                  # the value each replication drew for each [low, high] input
        sheets.append(("parameters", _fits(parameters, PARAMETERS_CSV), "D2"))
    if against_published is not None:
        sheets.append(("published", against_published, "D2"))
    write_sheets(path, sheets, date_cols)


def write_sheets(path: Path, sheets: list[tuple[str, pd.DataFrame, str]], date_cols: Iterable[str] = ()) -> None:
    """Write (sheet name, table, cell to freeze panes at) as one workbook, every string as text
    (sim.outputs.safe_text); `date_cols` are the comparison sheet's long dates.

    Written with XlsxWriter, a column at a time, with one format object per kind of cell: pandas' to_excel with
    openpyxl built, styled and serialised each cell as an object and took a second for the default run's
    22,000 cells, a sixth of the whole report."""
    import xlsxwriter

    date_cols = list(date_cols)
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                           "strings_to_numbers": False})
    formats: dict[tuple[str | None, bool, bool, bool], Any] = {}

    def cell_format(number: str | None, wrap: bool = False, quote: bool = False, bold: bool = False) -> Any:
        """One shared format per combination (a workbook holds a limited number of them)."""
        key = (number, wrap, quote, bold)
        if key not in formats:
            props: dict[str, Any] = {}
            if number:
                props["num_format"] = number
            if wrap:
                props |= {"text_wrap": True, "valign": "top"}
            if quote:
                props["quote_prefix"] = True
            if bold:
                props["bold"] = True
            formats[key] = book.add_format(props) if props else None
        return formats[key]

    for name, df, freeze in sheets:
        header_style = functools.partial(cell_format, bold=True, wrap=name == SUMMARY_SHEET)
        df = _text_as_written(df)
        ws = book.add_worksheet(name, worksheet_class=_worksheet_class())
        wrap = name in ("assumptions", "provenance", SUMMARY_SHEET)
        body_style = functools.partial(cell_format, wrap=wrap)
        for j, col in enumerate(df.columns):
            _write_value(ws, 0, j, col, None, header_style)
        for j, col in enumerate(df.columns):
            values = df.iloc[:, j]          # by position: two columns may share a name
            lengths = [len(str(col))] + [len(_text_for_column_width(v)) for v in values.iloc[:300]]
            width = max(min(max(lengths) + 2, 60 if wrap else 28), 8)
            if name == SUMMARY_SHEET:               # headers are sentences: wrap them rather than widen
                width = max(min(max(lengths[1:] or [0]) + 2, 40), 14)
            fmt = None
            if name in ("weekly", "by_provider") and col == "week_start":
                fmt = "yyyy-mm-dd"
            elif name == "comparison" and col in date_cols:
                fmt = "d mmmm yyyy"
                width = 18
            elif values.dtype.kind == "f":
                fmt = "#,##0.00" if name != "weekly" else "#,##0.###"
            elif values.dtype.kind in "iu":
                fmt = "#,##0" if col not in ("replication", "week") else "0"
            ws.set_column(j, j, width)
            if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":     # not pandas' nullable kinds
                _write_numbers(ws, j, values.to_numpy(), body_style(fmt))
            else:
                for i, v in enumerate(values.tolist(), start=1):
                    _write_value(ws, i, j, v, fmt, body_style)
        ws.freeze_panes(freeze)
        if name in ("weekly", STATISTICS_SHEET, "replications", "by_provider"):
            ws.autofilter(0, 0, len(df), max(df.shape[1] - 1, 0))
    book.close()                        # the file is written here, complete; not at all on a failure above


def _write_numbers(ws: Any, col: int, values: np.ndarray, style: Any) -> None:
    """A column of integers or floats from row 1, as `_write_value` writes each (missing values blank, infinities
    as the text inf / -inf, all in the column's one format) without asking each value what it is: the weekly sheet
    holds about 16,000 cells a replication. The finite values are stored as XlsxWriter's write_number stores them,
    the sheet's bounds checked once for the column rather than once a cell (_store_numbers)."""
    rows = np.arange(1, len(values) + 1)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        for i in np.flatnonzero(~finite).tolist():
            value = values[i]
            if math.isnan(value):
                ws.write_blank(i + 1, col, None, style)
            else:
                ws.write_string(i + 1, col, "inf" if value > 0 else "-inf", style)
        if not finite.all():
            rows, values = rows[finite], values[finite]
    _store_numbers(ws, rows.tolist(), col, values.tolist(), style)


def _store_numbers(ws: Any, rows: list[int], col: int, numbers: list[int | float], style: Any) -> None:
    """`ws.write_number(row, col, number, style)` for each row and (finite) number, rows ascending.

    XlsxWriter's write_number checks the sheet's bounds and widens its used range a cell at a time, then stores
    the cell in the sheet's table: a third of the workbook's time for ten replications' weekly rows. On a sheet
    of _worksheet_class, the first and last rows are checked (which widens the range as every row between would)
    and each cell stored as write_number stores it; on any other sheet each number goes through write_number."""
    number_cell = getattr(ws, "number_cell", None)
    if number_cell is None or ws.constant_memory or not rows:
        for row, number in zip(rows, numbers, strict=True):
            ws.write_number(row, col, number, style)
        return
    if ws._check_dimensions(rows[0], col) or ws._check_dimensions(rows[-1], col):
        raise ValueError(f"row {rows[-1]} or column {col} is outside an Excel sheet")   # _fits keeps to the sheet
    table = ws.table
    for row, number in zip(rows, numbers, strict=True):
        table[row][col] = number_cell(number, style)


@functools.cache
def _worksheet_class() -> type:
    """XlsxWriter's Worksheet, writing each formatted number cell's XML in one step, and with `number_cell`, the
    type XlsxWriter stores a number cell as (_store_numbers); XlsxWriter's own Worksheet if it has no such type.

    XlsxWriter writes a cell's XML through a general path (the cell's attributes as a list, each escaped, the
    type found by name): over half the workbook's time for ten replications' weekly rows. A number cell with a
    format is written here as that path writes it, `<c r="A2" s="3"><v>1234.5</v></c>` (its reference and the
    format's index need no escaping); every other cell by XlsxWriter itself."""
    from xlsxwriter.utility import xl_rowcol_to_cell_fast
    from xlsxwriter.worksheet import Worksheet
    try:
        from xlsxwriter.worksheet import CellNumberTuple
    except ImportError:                 # an XlsxWriter that stores cells otherwise: its own path for every cell
        return Worksheet

    class NumbersWorksheet(Worksheet):
        number_cell = CellNumberTuple

        def _write_cell(self, row: int, col: int, cell: Any) -> None:
            if cell.__class__ is CellNumberTuple and cell.format is not None:
                self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}" s="{cell.format._get_xf_index()}">'
                              f'<v>{cell.number:.16G}</v></c>')
            else:
                super()._write_cell(row, col, cell)

    return NumbersWorksheet


def _write_value(ws: Any, row: int, col: int, value: Any, number: str | None,
                 style: Callable[..., Any]) -> None:
    """One cell, typed as pandas' to_excel typed it: numbers and booleans as such, missing values blank,
    infinities as the text inf / -inf, dates as dates (pandas' date formats unless the column has its own), and
    everything else as a string (with Excel's quote prefix where it starts like a formula). `number` is the
    column's number format; `style(number, quote=...)` gives the cell's format."""
    if value is None or value is pd.NaT or value is pd.NA:
        ws.write_blank(row, col, None, style(number))
    elif isinstance(value, bool | np.bool_):
        ws.write_boolean(row, col, bool(value), style(number))
    elif isinstance(value, int | float | np.integer | np.floating):
        if math.isnan(value):
            ws.write_blank(row, col, None, style(number))
        elif math.isinf(value):
            ws.write_string(row, col, "inf" if value > 0 else "-inf", style(number))
        else:
            ws.write_number(row, col, value, style(number))
    elif isinstance(value, dt.datetime | dt.date):
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        default = "yyyy-mm-dd hh:mm:ss" if isinstance(value, dt.datetime) else "yyyy-mm-dd"
        ws.write_datetime(row, col, value, style(number or default))
    else:
        text = value if isinstance(value, str) else cell_text(value)
        ws.write_string(row, col, text, style(number, quote=starts_like_formula(text)))


def _text_as_written(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every string, column names included, as a cell can hold it (safe_text.cell_text); numbers,
    dates and the frame itself untouched."""
    out = df.copy()
    out.columns = [cell_text(c) if isinstance(c, str) else c for c in df.columns]
    for j in _text_columns(df):     # an object column stays one: Series.map would make dates and Nones datetimes
        out.isetitem(j, pd.Series([cell_text(v) if isinstance(v, str) else v for v in df.iloc[:, j]],
                                  index=df.index, dtype=object))
    return out


def _text_columns(df: pd.DataFrame) -> list[int]:
    """Positions of the columns that may hold text (neither numbers nor booleans)."""
    return [j for j in range(df.shape[1]) if df.iloc[:, j].dtype.kind not in "biufc"]


def _text_for_column_width(v: Any) -> str:
    """A value as the sheet shows it, to size its column: floats with two decimals, dates as yyyy-mm-dd (the
    weekly sheet's format; the comparison sheet's long dates get a fixed width instead)."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:,.2f}"
    if isinstance(v, (dt.date, dt.datetime)):
        return f"{v:%Y-%m-%d}"
    return str(v)
