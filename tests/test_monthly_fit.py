"""The monthly back-test: weekly results turned into published-style months, and their error against a series."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import ROOT, run_cli, simple_raw
from sim.outputs.monthly_fit import (
    HELD_OUT,
    WINDOW,
    compare_monthly,
    monthly_errors,
    months_covered,
    parse_month_window,
    simulated_monthly,
)
from sim.scenario.observed import ObservedSeries

START = dt.date(2021, 6, 7)   # a Monday


def weekly_table(n_weeks: int, starts_per_week: float, list_ends: list[float], opening: float,
                 replications: int = 1) -> pd.DataFrame:
    rows = []
    for rep in range(replications):
        for week in range(n_weeks):
            rows.append({"replication": rep, "week": week, "clock_starts": starts_per_week + rep,
                         "clock_stops_admitted": 10.0, "clock_stops_non_admitted": 4.0,
                         "waiting_total_start": opening if week == 0 else list_ends[week - 1],
                         "waiting_total": list_ends[week], "waiting_over_52w": 0.0})
    return pd.DataFrame(rows)


@pytest.mark.unit
def test_only_whole_months_are_compared():
    months = [str(m) for m in months_covered(START, START + dt.timedelta(days=7 * 12 - 1))]
    assert months == ["2021-07"], f"a run of 7 June - 29 August 2021 covers only July whole: {months}"
    months = [str(m) for m in months_covered(START, START + dt.timedelta(days=7 * 13 - 1))]
    assert months == ["2021-07", "2021-08"], f"a run to 5 September covers July and August whole: {months}"


@pytest.mark.unit
def test_flows_are_spread_over_days_and_summed_by_calendar_month():
    monthly = simulated_monthly(weekly_table(12, 70.0, [100.0] * 12, 100.0), START)
    july = monthly[monthly["month"] == pd.Period("2021-07")].iloc[0]
    assert july["clock_starts"] == pytest.approx(310.0), f"70 a week is 10 a day: 310 in July, got {july}"
    assert july["completed_pathways"] == pytest.approx(14 * 31 / 7), "admitted + non-admitted, by day"
    assert july["completed_admitted"] == pytest.approx(10 * 31 / 7)


@pytest.mark.unit
def test_the_list_at_a_census_is_linear_between_week_ends():
    ends = [100.0 + 7 * (w + 1) for w in range(12)]          # the list grows by one a day
    monthly = simulated_monthly(weekly_table(12, 70.0, ends, 100.0), START)
    july = monthly[monthly["month"] == pd.Period("2021-07")].iloc[0]
    days_to_census = (dt.date(2021, 7, 31) - START).days + 1   # end of 31 July
    assert july["waiting_list"] == pytest.approx(100.0 + days_to_census), (
        f"a list growing one a day from 100 should be {100 + days_to_census} at the end of July, got "
        f"{july['waiting_list']}")


@pytest.mark.unit
def test_window_and_held_out_months_are_scored_apart():
    monthly = simulated_monthly(weekly_table(30, 70.0, [100.0] * 30, 100.0, replications=3), START)
    months = pd.period_range("2021-07", "2021-12", freq="M")
    observed = ObservedSeries("test", pd.DataFrame({
        "clock_starts": [310.0, 310.0, 300.0 * 1.25, 310.0, 0.0, 310.0 * 2],
        "completed_pathways": [62.0] * 6, "waiting_list": [100.0] * 6}, index=pd.PeriodIndex(months, name="month")))
    table = compare_monthly(monthly, observed, pd.Period("2021-10", freq="M"))
    starts = table[table["series"] == "clock_starts"].set_index("month")
    assert list(starts["period"]) == [WINDOW] * 3 + [HELD_OUT] * 3
    assert starts.loc["2021-07", "simulated_median"] == pytest.approx(310 + 31 / 7), "median of 3 replications"
    errors = monthly_errors(table).set_index(["series", "period"])
    assert errors.loc[("clock_starts", HELD_OUT), "months_skipped"] == 1, "an observed 0 is left out"
    assert errors.loc[("clock_starts", HELD_OUT), "months_used"] == 2
    september = starts.loc["2021-09"]
    expected = abs(september["simulated_median"] - 375.0) / 375.0 * 100
    assert september["percent_error"] == pytest.approx(-expected)
    window = errors.loc[("clock_starts", WINDOW), "mape_percent"]
    by_hand = np.mean([abs(starts.loc[m, "percent_error"]) for m in ("2021-07", "2021-08", "2021-09")])
    assert window == pytest.approx(by_hand), "MAPE = mean absolute percent error over the window's months"


@pytest.mark.unit
def test_month_windows_are_parsed_or_refused():
    assert [str(m) for m in parse_month_window("2021-06:2022-03")] == ["2021-06", "2022-03"]
    for bad in ("2021-06", "2022-03:2021-06", "2021-13:2022-01", "June:July"):
        with pytest.raises(ValueError):
            parse_month_window(bad)


def _short_scenario(tmp_path: Path) -> Path:
    raw = simple_raw(referrals_per_week=200.0, sessions_per_day=30, horizon_weeks=13)
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.integration
def test_monthly_backtest_writes_the_comparison(tmp_path):
    observed = tmp_path / "observed.csv"
    observed.write_text("month,clock_starts,completed_pathways,waiting_list\n"
                        "2021-06,800,700,50\n2021-07,885,880,50\n2021-08,885,880,60\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("backtest", str(_short_scenario(tmp_path)), "--monthly", str(observed), "--holdout-from",
                   "2021-08", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "backtest_monthly.csv")
    assert sorted(set(table["month"])) == ["2021-07", "2021-08"], "June is not whole in a run from 7 June"
    assert set(table.loc[table["month"] == "2021-08", "period"]) == {HELD_OUT}
    errors = pd.read_csv(out / "backtest_errors.csv")
    assert set(errors["series"]) == {"clock_starts", "completed_pathways", "waiting_list"}
    starts = table[(table["series"] == "clock_starts") & (table["month"] == "2021-07")].iloc[0]
    assert starts["simulated_median"] == pytest.approx(200 * 31 / 7, rel=0.15), (
        f"200 referrals a week is about {200 * 31 / 7:.0f} clock starts in July; got {starts['simulated_median']}")
    assert (out / "backtest.png").is_file() and (out / "weekly.csv").is_file()
    by_site = pd.read_csv(out / "weekly_by_site.csv")
    weekly = pd.read_csv(out / "weekly.csv")
    assert (by_site.groupby(["replication", "week"])["waiting_total"].sum().to_numpy()
            == weekly.sort_values(["replication", "week"])["waiting_total"].to_numpy()).all()


@pytest.mark.integration
@pytest.mark.parametrize("content, expected", [
    ("month,clock_starts,completed_pathways,waiting_list\n2021-07,1,x,1\n", "row 2, column completed_pathways"),
    ("month,clock_starts\n2021-07,1\n", "missing column(s)"),
])
def test_bad_monthly_file_exits_2_naming_file_row_and_column_and_writes_nothing(tmp_path, content, expected):
    observed = tmp_path / "observed.csv"
    observed.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("backtest", str(_short_scenario(tmp_path)), "--monthly", str(observed), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert str(observed) in proc.stderr and expected in proc.stderr, proc.stderr
    assert not out.exists(), "nothing may be written for a bad observed file"


@pytest.mark.integration
def test_monthly_options_without_a_monthly_series_are_refused(tmp_path):
    rtt = ROOT / "tests" / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"
    proc = run_cli("backtest", str(_short_scenario(tmp_path)), "--observed", str(rtt), "--holdout-from", "2022-01")
    assert proc.returncode == 2 and "--monthly" in proc.stderr, proc.stderr


@pytest.mark.integration
def test_a_run_covering_no_observed_month_is_refused_before_it_runs(tmp_path):
    observed = tmp_path / "observed.csv"
    observed.write_text("month,clock_starts,completed_pathways,waiting_list\n2019-01,1,1,1\n", encoding="utf-8")
    proc = run_cli("backtest", str(_short_scenario(tmp_path)), "--monthly", str(observed), "--out",
                   str(tmp_path / "out"))
    assert proc.returncode == 2 and "covers no whole month" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
