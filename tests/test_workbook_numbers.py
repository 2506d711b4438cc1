"""results.xlsx's number columns are stored and written by the report's own fast path (sim.outputs.report.workbook:
_store_numbers and _worksheet_class); the workbook must be the one XlsxWriter's own write_number and cell writer
make, part for part, whatever the column holds (integers, floats, missing values, infinities, large and tiny
numbers, dates and text beside them)."""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.outputs.report import workbook

pytestmark = pytest.mark.unit


def _table() -> pd.DataFrame:
    rows = 40
    floats = np.linspace(-1e6, 1e6, rows) / 3.0
    floats[[3, 17]] = np.nan
    floats[5], floats[6] = np.inf, -np.inf
    return pd.DataFrame({
        "replication": np.arange(rows),
        "week_start": [dt.datetime(2021, 6, 7) + dt.timedelta(weeks=i) for i in range(rows)],
        "waiting_total": np.arange(rows, dtype=np.int64) * 1_234_567,
        "mean_wait": floats,
        "tiny": np.full(rows, 1e-300) * np.arange(rows),
        "all_finite": np.arange(rows) / 7.0,
        "site": [f"=site {i}" if i % 5 == 0 else f"site {i}" for i in range(rows)],
    })


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:       # docProps/core.xml holds the time the workbook was written
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


def test_number_columns_written_as_xlsxwriter_writes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sheets = [("weekly", _table(), "E2"), ("statistics", _table().iloc[::-1].reset_index(drop=True), "A2")]
    fast = tmp_path / "fast.xlsx"
    workbook.write_sheets(fast, sheets)
    assert workbook._worksheet_class().__name__ == "NumbersWorksheet"     # the fast path was the one taken

    from xlsxwriter.worksheet import Worksheet
    monkeypatch.setattr(workbook, "_worksheet_class", lambda: Worksheet)   # XlsxWriter's write_number, cell writer
    plain = tmp_path / "plain.xlsx"
    workbook.write_sheets(plain, sheets)

    fast_parts, plain_parts = _parts(fast), _parts(plain)
    assert fast_parts.keys() == plain_parts.keys()
    assert [n for n in fast_parts if fast_parts[n] != plain_parts[n]] == []
    sheet = fast_parts["xl/worksheets/sheet1.xml"].decode()
    assert '<v>-333333.3333333333</v>' in sheet and "<v>1E-300</v>" in sheet     # numbers at full precision


def test_a_date_column_with_gaps_is_written_blank_where_there_is_no_date(tmp_path: Path) -> None:
    """A compare in which one scenario clears a threshold and another does not has dates and Nones in one column of
    the comparison sheet: pandas made them a datetime column whose NaT the sheet could not write, and the report
    failed ("NaTType does not support strftime")."""
    import openpyxl

    columns = ["clear_78w_week_p50"]
    frame = pd.DataFrame({"scenario": ["a", "b"], "clear_78w_week_p50": [None, dt.date(2022, 1, 17)]}, dtype=object)
    path = tmp_path / "dates.xlsx"
    workbook.write_sheets(path, [("comparison", workbook._to_excel_dates(frame, columns), "B2")], columns)
    sheet = openpyxl.load_workbook(path)["comparison"]
    assert sheet["B2"].value is None and sheet["B3"].value == dt.datetime(2022, 1, 17)
