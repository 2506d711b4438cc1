"""The observed monthly series: the tidy format's checks, the shipped files, and the same form from RTT Full CSVs."""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from sim.scenario.observed import ObservedDataError, load_observed, observed_from_rtt_extracts
from sim.scenario.rtt_extract import load_rtt

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
NWL = ROOT / "data" / "observed" / "nwl_monthly.csv"
ENGLAND = ROOT / "data" / "observed" / "england_monthly.csv"
RBD = ROOT / "tests" / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"

HEADER = "month,clock_starts,completed_pathways,waiting_list"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "observed.csv"
    path.write_text(text)
    return path


def test_shipped_nwl_series_has_the_published_figures() -> None:
    series = load_observed(NWL)
    june, march = series.table.loc[pd.Period("2021-06")], series.table.loc[pd.Period("2022-03")]
    assert (june["clock_starts"], june["completed_pathways"], june["waiting_list"]) == (66303, 51735, 184005), (
        f"June 2021 should be the published 66,303 starts, 51,735 completions, list 184,005; got {dict(june)}")
    assert march["waiting_list"] == 217978, f"March 2022 list should be 217,978, got {march['waiting_list']}"
    removals = series.window("2021-07", "2022-03").other_removals().iloc[1:]
    assert 4000 < removals.mean() < 10000, (
        f"other removals Aug 2021-Mar 2022 should average about 7,000 a month, got {removals.mean():,.0f}")


def test_shipped_england_series_blanks_what_was_not_published() -> None:
    table = load_observed(ENGLAND).table
    assert math.isnan(table.loc[pd.Period("2019-04"), "over_78w"]), "78-week counts were not published in 2019"
    assert math.isnan(table.loc[pd.Period("2021-02"), "p92_wait_weeks"]), "a '52+' percentile is unknown: blank"
    june = table.loc[pd.Period("2021-06")]
    assert june["over_52w"] == 304823 and june["waiting_list"] == 5453486, (
        f"England June 2021 as published: {dict(june)}")
    assert june["completed_pathways"] == 275835 + 1063055, "completions = admitted + non-admitted"


def test_shipped_tidy_files_match_the_published_files() -> None:
    spec = importlib.util.spec_from_file_location("tidy_observed", ROOT / "scripts" / "tidy_observed.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--check"]) == 0, "data/observed/*_monthly.csv differ from scripts/tidy_observed.py's output"


def test_window_and_month_order() -> None:
    series = load_observed(NWL).window("2021-06", "2022-03")
    assert [str(m) for m in (series.months[0], series.months[-1])] == ["2021-06", "2022-03"]
    assert len(series.months) == 10
    with pytest.raises(ValueError, match="2019-01"):
        load_observed(NWL).window("2019-01", "2021-03")


@pytest.mark.parametrize("text, expected", [
    ("", "empty"),
    ("month,clock_starts,completed_pathways\n2021-06,1,1\n", "missing column(s) waiting_list"),
    (HEADER + ",colour\n2021-06,1,1,1,red\n", "unknown column(s) 'colour'"),
    (HEADER + ",waiting_list\n2021-06,1,1,1,1\n", "given twice: waiting_list"),
    (HEADER + "\n", "no months"),
    (HEADER + "\n2021-13,1,1,1\n", "row 2, column month: expected a month as YYYY-MM"),
    (HEADER + "\nJune 2021,1,1,1\n", "row 2, column month"),
    (HEADER + "\n2021-06,1,1,-5\n", "row 2, column waiting_list: expected a finite number of at least 0"),
    (HEADER + "\n2021-06,1,nan,5\n", "row 2, column completed_pathways: expected a finite number"),
    (HEADER + "\n2021-06,1,inf,5\n", "row 2, column completed_pathways: expected a finite number"),
    (HEADER + "\n2021-06,1,lots,5\n", "row 2, column completed_pathways: expected a number, got 'lots'"),
    (HEADER + "\n2021-06,1,,5\n", "row 2, column completed_pathways: blank; completed_pathways is required"),
    (HEADER + "\n2021-06,1,1\n", "row 2: 3 cells, the header has 4"),
    (HEADER + "\n2021-06,1,1,1\n2021-06,1,1,1\n", "month 2021-06 appears twice"),
    (HEADER + "\n2021-07,1,1,1\n2021-06,1,1,1\n", "month 2021-06 comes after 2021-07"),
    (HEADER + "\n2021-06,1,1,1\n2021-09,1,1,1\n", "months missing between 2021-06 and 2021-09 (2021-07, 2021-08)"),
    (HEADER + ",over_18w,over_52w\n2021-06,1,1,100,50,60\n", "row 2, column over_52w: 60 is more than over_18w"),
    (HEADER + ",completed_admitted\n2021-06,1,10,100,11\n", "column completed_admitted: 11 is more than"),
])
def test_bad_file_names_row_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ObservedDataError) as caught:
        load_observed(path)
    message = str(caught.value)
    assert str(path) in message, f"the message should name the file {path}; got {message!r}"
    assert expected in message, f"expected {expected!r} in the message; got {message!r}"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n2021-06,x,1,1\n2021-07,1,y,1\n")
    with pytest.raises(ObservedDataError) as caught:
        load_observed(path)
    assert len(caught.value.problems) == 2, f"two bad cells, two problems; got {caught.value.problems}"


def test_not_a_file_and_not_text(tmp_path: Path) -> None:
    with pytest.raises(ObservedDataError, match="no such file"):
        load_observed(tmp_path / "absent.csv")
    with pytest.raises(ObservedDataError, match="not a regular file"):
        load_observed(tmp_path)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00month")
    with pytest.raises(ObservedDataError, match="not UTF-8"):
        load_observed(binary)


def test_round_trip_keeps_blanks_and_whole_numbers(tmp_path: Path) -> None:
    series = load_observed(ENGLAND)
    copy = tmp_path / "copy.csv"
    series.to_csv(copy)
    assert copy.read_bytes() == ENGLAND.read_bytes(), "writing a loaded series should give the same file back"


def test_rtt_full_csv_gives_the_same_form() -> None:
    series = observed_from_rtt_extracts([RBD])
    extract = load_rtt(RBD)
    row = series.table.loc[pd.Period("2024-11")]
    part2 = extract.part("Part_2")["total_all"].sum()
    admitted = extract.part("Part_1A")["total_all"].sum()
    non_admitted = extract.part("Part_1B")["total_all"].sum()
    starts = extract.part("Part_3")["total_all"].sum()
    assert row["waiting_list"] == part2, f"list = Part_2 total {part2}, got {row['waiting_list']}"
    assert row["completed_pathways"] == admitted + non_admitted, "completions = Part_1A + Part_1B"
    assert row["completed_admitted"] == admitted and row["clock_starts"] == starts
    assert row["waiting_list"] >= row["over_18w"] >= row["over_52w"] >= row["over_78w"] >= row["over_104w"]
    assert row["over_18w"] == extract.counts_over("Part_2", 18)["Total"]


def test_rtt_files_must_be_consecutive_months(tmp_path: Path) -> None:
    with pytest.raises(ObservedDataError, match="appears twice"):
        observed_from_rtt_extracts([RBD, RBD])


def test_unreadable_file_is_refused_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, HEADER + "\n2021-06,1,1,1\n")

    real_open = os.open

    def refuse(name: str | Path, *args: int) -> int:
        if Path(name) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args)

    monkeypatch.setattr(os, "open", refuse)   # sim.scenario.input_files opens with os.open
    with pytest.raises(ObservedDataError, match="cannot be opened"):
        load_observed(path)
