"""KPI definitions: clearance weeks, percentiles beside uncleared replications, targets, paired differences."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from sim.outputs.analysis import (
    headline,
    paired_comparison,
    percentile,
    summarise,
    target_probabilities,
    weeks_to_clear,
)
from sim.outputs.run_reader import ScenarioInfo

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("counts, expected", [
    ([5, 3, 0, 0], 3.0),        # zero from the end of week 1 on -> w = 3 (as documented: last nonzero + 2)
    ([0, 0, 0], 0.0),           # never any long waiter
    ([5, 0, 2, 0, 0], 4.0),     # must stay zero: the later blip counts
    ([5, 5, 5], math.nan),      # not cleared within the horizon
    ([0, 0, 1], math.nan),      # nonzero at the last week's end
])
def test_weeks_to_clear(counts, expected):
    got = weeks_to_clear(np.array(counts))
    assert (math.isnan(got) and math.isnan(expected)) or got == expected, f"{counts}: expected {expected}, got {got}"


def test_percentile_next_to_an_uncleared_replication():
    assert percentile([25, 25, np.nan], 50) == 25, "the median of 25, 25, not-cleared is 25"
    assert math.isnan(percentile([25, 26, np.nan], 95)), "p95 falls between 26 and not-cleared: not cleared"
    assert percentile([10, 20, 30, 40], 50) == 25 and percentile([10, 20, 30, 40], 5) == pytest.approx(11.5)
    v = np.random.default_rng(1).normal(size=101)
    assert percentile(v, 5) <= percentile(v, 50) <= percentile(v, 95)
    assert percentile(v, 37) == pytest.approx(np.percentile(v, 37)), "must equal numpy's linear method on finite data"


def test_target_probability_boundary():
    start = dt.date(2021, 6, 7)
    kpis = pd.DataFrame({"scenario": "s", "replication": [0, 1, 2, 3],
                         "weeks_to_clear_52w": [10.0, 11.0, np.nan, 9.0]})
    # start + 10 weeks = Monday 16 Aug 2021: met by Sunday 15 Aug (last long waiter left in week 9)
    got = target_probabilities(kpis, "s", start, {52: dt.date(2021, 8, 15)}, horizon_weeks=30)
    assert got["mean"].iloc[0] == pytest.approx(0.5), f"replications 0 and 3 meet the date: {got}"
    got = target_probabilities(kpis, "s", start, {52: dt.date(2021, 8, 14)}, horizon_weeks=30)
    assert got["mean"].iloc[0] == pytest.approx(0.25), "only replication 3 is clear by the Saturday"
    got = target_probabilities(kpis, "s", start, {52: dt.date(2022, 3, 31)}, horizon_weeks=30)
    assert math.isnan(got["mean"].iloc[0]), "a date after the end of the run is not knowable from it (not 0%)"


def test_paired_comparison_pairs_by_replication():
    kpis = pd.DataFrame({"scenario": ["a"] * 3 + ["b"] * 3, "replication": [0, 1, 2] * 2,
                         "weeks_to_clear_52w": [10, 20, 30, 12, 18, np.nan],
                         "weeks_to_clear_78w": [1, 1, 1, 1, 1, 1], "weeks_to_clear_104w": [0] * 6})
    c = paired_comparison(kpis, "a").set_index(["scenario", "metric"])
    row = c.loc[("b", "weeks_to_clear_52w_difference")]
    assert row["pairs"] == 2 and row["pairs_not_cleared"] == 1
    assert row["mean"] == pytest.approx(0.0), "differences +2 and -2 average to 0"
    assert c.loc[("a", "weeks_to_clear_52w_difference"), "mean"] == 0


def test_summary_percentiles_are_ordered_and_mean_is_empty_when_any_uncleared():
    kpis = pd.DataFrame({"scenario": "s", "replication": range(20),
                         "weeks_to_clear_52w": [float(x) for x in range(20, 39)] + [np.nan]})
    s = summarise(kpis).set_index("metric")
    row = s.loc["weeks_to_clear_52w"]
    assert math.isnan(row["mean"]) and row["p05"] <= row["p50"] and math.isnan(row["p95"])
    assert s.loc["share_of_replications_cleared_52w", "mean"] == pytest.approx(0.95)


def test_a_headline_that_never_clears_says_how_many_are_still_over_at_the_end():
    rows = [("weeks_to_clear_52w", np.nan, np.nan, np.nan, np.nan), ("share_of_replications_cleared_52w", 0.0,
                                                                       np.nan, np.nan, np.nan),
            ("waiting_over_52w_end", 16_100.0, 15_800.0, 16_136.5, 16_500.0),
            ("peak_waiting_total", 284_000.0, 283_000.0, 284_290.0, 285_000.0)]
    for t in (78, 104):
        rows += [(f"weeks_to_clear_{t}w", 30.0, 28.0, 30.0, 33.0), (f"share_of_replications_cleared_{t}w", 1.0,
                                                                       np.nan, np.nan, np.nan)]
    summary = pd.DataFrame([{"scenario": "s", "metric": m, "mean": a, "p05": b, "p50": c, "p95": d}
                            for m, a, b, c, d in rows])
    lines = headline(summary, "S", "s", dt.date(2021, 6, 7), 10, 199)
    assert ("  Nobody over 52 weeks: not reached by 2025-03-30 in most replications (cleared in 0% of them); "
            "16,136 still over 52 weeks at the end (median).") in lines
    # 30 weeks to clear: the count is zero from the end of week 30, so the last leaves in the week of Monday 27
    # December 2021, the date the report and the web app give too (sim.outputs.analysis.clearance_monday)
    assert any(line.startswith("  Nobody over 78 weeks from the week of 2021-12-27 (median); 90% of replications "
                               "between the weeks of 2021-12-13 and 2022-01-17") for line in lines), lines


def test_the_console_headline_gives_the_dates_the_report_and_the_web_app_give():
    """One date per clearance in every output: the console headline's median and 90% range are the report's and
    the web app's (ScenarioInfo.clearance_week), interpolated percentiles included. Before, the console gave the
    Monday after the week the last long waiter left, a week later than the report's summary table."""
    start = dt.date(2021, 6, 7)
    info = ScenarioInfo("s", "S", start, 199, 10)
    for p05, p50, p95 in ((28.0, 30.0, 33.0), (27.3, 30.5, 32.6), (2.0, 2.4, 3.0)):
        rows = [("peak_waiting_total", 1.0, 1.0, 1.0, 1.0)]
        for t in (52, 78, 104):
            rows += [(f"weeks_to_clear_{t}w", p50, p05, p50, p95), (f"share_of_replications_cleared_{t}w", 1.0,
                                                                      np.nan, np.nan, np.nan)]
        summary = pd.DataFrame([{"scenario": "s", "metric": m, "mean": a, "p05": b, "p50": c, "p95": d}
                                for m, a, b, c, d in rows])
        line = next(x for x in headline(summary, "S", "s", start, 10, 199) if x.startswith("  Nobody over 52"))
        median, low, high = (info.clearance_week(p50, "round"), info.clearance_week(p05, "floor"),
                             info.clearance_week(p95, "ceil"))
        assert line == (f"  Nobody over 52 weeks from the week of {median.isoformat()} (median); 90% of replications "
                        f"between the weeks of {low.isoformat()} and {high.isoformat()}."), line


def test_the_sweep_heat_map_names_the_month_of_the_week_the_headline_gives():
    """The sweep's heat map labels each cell with the month of the clearance week the console headline and the
    report give (clearance_monday, the median rounded to the nearest week): 30 weeks from 7 June 2021 is the week of
    27 December 2021, so December; 30.6 rounds to 31 weeks, the week of 3 January 2022. Before, a cell was the month
    of the Monday after, the weeks truncated (January 2022 for both)."""
    from sim.outputs.charts import sweep_heatmap

    sweep = pd.DataFrame({"metric": "weeks_to_clear_52w", "p50": [30.0, 30.6, np.nan], "level": ["a", "b", "c"]})
    fig = sweep_heatmap(sweep, ["level"], dt.date(2021, 6, 7))
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells == ["Dec 2021", "Jan 2022", "not cleared"], cells
