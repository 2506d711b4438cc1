"""results.xlsx: the run's tables and the report's comparison, assumptions and provenance, one sheet each,
with real dates, frozen headers and readable column widths.

Every string of every sheet, the headers included, is written through sim.outputs.safe_text: characters a
worksheet cannot hold are dropped (openpyxl refuses them), text is cut at the characters a cell holds, and each
text cell is typed as a string, with Excel's quote prefix where it starts like a formula, so a title such as
=HYPERLINK(...) is shown as written and never runs."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
from sim.outputs.safe_text import cell_text, keep_as_text

EXCEL_MAX_ROWS = 1_048_576          # rows of an Excel sheet, the header row included
EXCEL_MAX_COLUMNS = 16_384


def _to_excel_dates(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    df = df.copy()
    for c in columns:
        if c in df:
            df[c] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else pd.Timestamp(v).to_pydatetime()
                     for v in df[c]]
            df[c] = df[c].astype(object)
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


def write_workbook(path: Path, run: RunFolder, comparison: pd.DataFrame, assumptions: pd.DataFrame,
                   provenance: list[tuple[str, str]]) -> None:
    weekly = _to_excel_dates(_fits(run.weekly, WEEKLY_CSV), ["week_start"])
    date_cols = [c for c in comparison.columns if "_week_p" in c or c in ("start_date", "end_of_run")]
    comparison = _to_excel_dates(comparison, date_cols)
    sheets: list[tuple[str, pd.DataFrame, str]] = [
        ("summary", _fits(run.summary, SUMMARY_CSV), "A2"),
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
    write_sheets(path, sheets, date_cols)


def write_sheets(path: Path, sheets: list[tuple[str, pd.DataFrame, str]], date_cols: Iterable[str] = ()) -> None:
    """Write (sheet name, table, cell to freeze panes at) as one workbook, every string as text
    (sim.outputs.safe_text); `date_cols` are the comparison sheet's long dates."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    date_cols = list(date_cols)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df, freeze in sheets:
            df = _text_as_written(df)
            df.to_excel(xw, sheet_name=name, index=False)
            ws = xw.sheets[name]
            ws.freeze_panes = freeze
            ws.auto_filter.ref = (ws.dimensions if name in ("weekly", "summary", "replications", "by_provider")
                                  else None)
            sample = df.head(300)
            for j, col in enumerate(df.columns, start=1):
                values = df.iloc[:, j - 1]          # by position: two columns may share a name
                lengths = [len(str(col))] + [len(_text_for_column_width(v)) for v in sample.iloc[:, j - 1]]
                width = min(max(lengths) + 2, 60 if name in ("assumptions", "provenance") else 28)
                ws.column_dimensions[get_column_letter(j)].width = max(width, 8)
                fmt = None
                if name in ("weekly", "by_provider") and col == "week_start":
                    fmt = "yyyy-mm-dd"
                elif name == "comparison" and col in date_cols:
                    fmt = "d mmmm yyyy"
                    ws.column_dimensions[get_column_letter(j)].width = 18
                elif values.dtype.kind == "f":
                    fmt = "#,##0.00" if name != "weekly" else "#,##0.###"
                elif values.dtype.kind in "iu":
                    fmt = "#,##0" if col not in ("replication", "week") else "0"
                if fmt:
                    for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j, max_row=len(df) + 1):
                        cell.number_format = fmt
            _keep_text_literal(ws, df)
            for cell in ws[1]:
                cell.font = Font(bold=True)
            if name in ("assumptions", "provenance"):
                for row in ws.iter_rows(min_row=2):
                    for cell in row:
                        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _text_as_written(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every string, column names included, as a cell can hold it (safe_text.cell_text); numbers,
    dates and the frame itself untouched."""
    out = df.copy()
    out.columns = [cell_text(c) if isinstance(c, str) else c for c in df.columns]
    for j in _text_columns(df):
        out.isetitem(j, df.iloc[:, j].map(lambda v: cell_text(v) if isinstance(v, str) else v))
    return out


def _text_columns(df: pd.DataFrame) -> list[int]:
    """Positions of the columns that may hold text (neither numbers nor booleans)."""
    return [j for j in range(df.shape[1]) if df.iloc[:, j].dtype.kind not in "biufc"]


def _keep_text_literal(ws: Any, df: pd.DataFrame) -> None:
    """openpyxl stores any string that starts with "=" as a formula. Text from a scenario (a title, a
    description, a site's name, an assumption, a note) must stay text, so every string in the header and in the
    text columns is typed as a string, with the quote prefix where it starts like a formula
    (safe_text.keep_as_text): Excel shows it as written and never evaluates it."""
    cells = list(ws[1])
    for j in _text_columns(df):
        cells += [cell for (cell,) in ws.iter_rows(min_row=2, min_col=j + 1, max_col=j + 1, max_row=len(df) + 1)]
    for cell in cells:
        keep_as_text(cell)


def _text_for_column_width(v: Any) -> str:
    """A value as the sheet shows it, to size its column: floats with two decimals, dates as yyyy-mm-dd (the
    weekly sheet's format; the comparison sheet's long dates get a fixed width instead)."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:,.2f}"
    if isinstance(v, (dt.date, dt.datetime)):
        return f"{v:%Y-%m-%d}"
    return str(v)
