"""Finance: line items add up, zero prices cost nothing, productivity and redeployment move cost per case
the right way, months fall in the right financial year, each year's funding rule reproduces a hand-worked example,
productivity of an unchanged table is zero growth, part years are flagged, follow-ups are priced when the table has
them (and are zero when it does not), and bad funding rules are refused with the file and key."""
from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import BASELINE, scaled_baseline_raw
from sim.cli.main import main
from sim.model.replication import run_single
from sim.outputs import finance
from sim.outputs.analysis import weeks_to_clear
from sim.scenario.build import load_scenario
from sim.scenario.schema import Finance
from sim.scenario.validate import validate

SITES = ("imperial", "chelsea_westminster", "lnwh", "hillingdon")


@pytest.fixture(scope="module")
def run_and_finance():
    """A run of the kind from before follow-ups were modelled (the section taken out): the follow-up tests add their
    columns by hand, so that the lines they add are known exactly."""
    raw = scaled_baseline_raw(0.05, horizon_weeks=60)
    raw.pop("outpatient_follow_ups")
    sc = validate(raw, "fin")
    weekly = run_single(sc, 0).weekly
    return sc, weekly, finance.monthly(weekly, {sc.name: sc.finance})


@pytest.mark.unit
def test_line_items_add_up_to_totals_exactly(run_and_finance):
    _, _, m = run_and_finance
    lines = m[finance.COST_LINES].sum(axis=1)
    assert np.allclose(lines, m["cost_total"], atol=0.011), "cost lines must add to cost_total (to the penny)"
    assert np.allclose(m["income_block"] + m["income_erf"], m["income_total"], atol=0.011)
    assert np.allclose(m[finance.ERF_PARTS].sum(axis=1), m["income_erf"], atol=0.011), \
        "allocation + paid above - recovered below must add to the ERF income"
    net = m["income_total"] - m["cost_total"] - m["underlying_deficit"] + m["recurrent_savings"]
    assert np.allclose(net, m["net_position"], atol=0.02)
    yearly = finance.by_financial_year(m)
    total = yearly[(yearly.metric == "cost_total") & (yearly.statistic == "mean")]
    assert total["2021/22"].iloc[0] == pytest.approx(m.loc[m.financial_year == "2021/22", "cost_total"].sum(), abs=1)


@pytest.mark.unit
def test_zero_prices_give_zero_cost(run_and_finance):
    sc, weekly, _ = run_and_finance
    costs = sc.finance.costs.model_copy(update={k: 0.0 for k in type(sc.finance.costs).model_fields})
    free = sc.finance.model_copy(update={"costs": costs})
    m = finance.monthly(weekly, {sc.name: free})
    assert (m[finance.COST_LINES + ["cost_total"]] == 0).all().all(), "every cost line must be zero"
    assert (m["income_total"] > 0).all(), "income does not depend on prices of costs"


@pytest.mark.unit
def test_months_fall_in_the_right_financial_year_and_erf_threshold_in_force(run_and_finance):
    sc, _, m = run_and_finance
    assert finance.financial_year_of_month("2022-03") == "2021/22"
    assert finance.financial_year_of_month("2022-04") == "2022/23"
    assert finance.month_of_week("2021-08-30") == "2021-09", "a week belongs to the month of its Thursday"
    assert finance.month_of_week("2021-09-27") == "2021-09"
    expected = {"2021-06": 0.80, "2021-07": 0.95, "2021-09": 0.95, "2021-10": 0.89, "2022-03": 0.89,
                "2022-04": 1.04, "2023-03": 1.04, "2023-04": 1.03, "2024-04": 1.07}
    for month, share in expected.items():
        assert finance.erf_threshold(month, sc.finance) == share, f"{month}: expected threshold {share}"
    assert np.isnan(finance.erf_threshold("2025-04", sc.finance)), "no rule for 2025/26 in the scenario: no scheme"
    row = m[m["month"] == "2021-10"].iloc[0]
    expected_erf = max(0.0, row["vwa_value"] - 0.89 * row["vwa_baseline_value"]) * 1.2
    assert row["income_erf"] == pytest.approx(expected_erf, abs=0.01)


@pytest.mark.behaviour
@pytest.mark.slow
def test_productivity_gain_lowers_cost_per_case_without_delaying_clearance():
    """More cases per session at the same cost: a higher utilisation cap on every main theatre."""
    fixed = ["staff=null", *[f"sites.{s}.elective_beds=1000" for s in SITES]]
    base_raw = scaled_baseline_raw(0.1, horizon_weeks=80, overrides=fixed)
    more_raw = copy.deepcopy(base_raw)
    for site in more_raw["sites"].values():
        site["theatres"]["utilisation_cap"] = 0.95
    base, more = validate(base_raw, "base"), validate(more_raw, "more")
    for rep in range(2):
        wb, wm = run_single(base, rep).weekly, run_single(more, rep).weekly
        mb = finance.monthly(wb, {"baseline": base.finance})
        mm = finance.monthly(wm, {"baseline": more.finance})
        cost_b = (mb["cost_elective"] - mb["cost_outpatients"]).sum() / mb["theatre_cases"].sum()
        cost_m = (mm["cost_elective"] - mm["cost_outpatients"]).sum() / mm["theatre_cases"].sum()
        assert mm["cases_per_session"].mean() > mb["cases_per_session"].mean()
        assert cost_m < cost_b, f"replication {rep}: cost per case {cost_m:.0f} should be below {cost_b:.0f}"
        cb, cm = weeks_to_clear(wb.waiting_over_52w.to_numpy()), weeks_to_clear(wm.waiting_over_52w.to_numpy())
        assert np.isnan(cb) or cm <= cb, f"replication {rep}: productivity delayed clearance ({cm} vs {cb})"


@pytest.mark.behaviour
def test_redeploying_theatre_staff_to_vaccination_raises_cost_per_elective_case():
    raw = scaled_baseline_raw(0.1, horizon_weeks=12)
    raw["vaccination"] = {
        "min_dose_interval_days": 56, "booking_rate_per_day": 0.5, "did_not_attend_rate": 0.0,
        "centres": {"hub": {"kind": "hospital_hub", "borough": "brent", "staffed_from": "lnwh", "stations": 2,
                            "surge_stations": 40, "open_minutes_per_day": 480, "minutes_per_dose": 6}},
        "cohorts": [{"borough": "brent", "age_band": "18+", "population": 500000,
                     "eligible_from": raw["start_date"], "uptake_first_dose": 0.9, "uptake_second_dose": 0.9}]}
    quiet = validate(raw, "no-surge")
    raw["vaccination"]["surge"] = {"start": raw["start_date"], "weeks": 8, "target_doses_per_week": 100000,
                                   "redeploy_from": ["theatre_nurses"], "max_share_redeployed": 0.6}
    surge = validate(raw, "surge")
    wq, ws = run_single(quiet, 0).weekly, run_single(surge, 0).weekly
    assert ws["staff_redeployed_to_vaccination"].sum() > 0
    assert ws["sessions_lost_staff"].sum() > wq["sessions_lost_staff"].sum()
    mq = finance.monthly(wq, {"baseline": quiet.finance})
    ms = finance.monthly(ws, {"baseline": surge.finance})
    per_case = lambda m: (m["cost_elective"] - m["cost_outpatients"]).sum() / m["theatre_cases"].sum()  # noqa: E731
    assert per_case(ms) > per_case(mq), (f"staff paid for sessions they could not run: cost per case with the "
                                         f"surge {per_case(ms):.0f} should exceed {per_case(mq):.0f}")


@pytest.mark.integration
def test_report_has_a_finance_section_by_financial_year(tmp_path):
    """The report's finance table from a real run and report: the plan at a tenth of its size (the rows checked
    depend on the dates and the funding rules, not on the size), 50 weeks from 7 June 2021 into 2022/23."""
    import yaml

    from helpers import run_cli
    scenario = tmp_path / "plan_at_a_tenth.yaml"
    scenario.write_text(yaml.safe_dump(scaled_baseline_raw(0.1, horizon_weeks=50), sort_keys=False), encoding="utf-8")
    out = tmp_path / "run"
    proc = run_cli("run", str(scenario), "--replications", "2", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Finance" in text and "| 2021/22 | 2022/23 |" in text, "finance table with financial years as columns"
    assert "Elective net position" in text and "Cost per elective case" in text
    for row in ("| Weeks covered | 43 of 53 (part year) | 7 of 52 (part year) |",
                "| Value-weighted activity, % of 2019/20",
                "| The year's funding threshold, % of 2019/20 | 90.3 | 104.0 |",
                "| Productivity growth (activity growth less input growth), points | – |"):
        assert row in text, f"expected the row {row!r} in the finance section"
    assert "£-" not in text, "negative money is written −£x, not £-x"
    import openpyxl
    assert "finance" in openpyxl.load_workbook(out / "results.xlsx", read_only=True).sheetnames


@pytest.mark.unit
def test_independent_sector_sessions_carry_no_nhs_session_costs(run_and_finance):
    sc, weekly, _ = run_and_finance
    w = weekly.head(1).copy()
    w["theatre_sessions_planned"], w["theatre_sessions_run"] = 100, 90
    w["independent_sector_sessions_planned"], w["independent_sector_sessions_run"] = 10, 8
    w["theatre_sessions_weekend_planned"] = 0
    lines = finance.weekly_lines(w, sc.finance).iloc[0]
    c = sc.finance.costs
    assert lines["cost_theatre_staff"] == pytest.approx(90 * c.theatre_session_staff), \
        "teams are paid for the 90 NHS sessions planned, not the 10 independent-sector ones (2 of them lost)"
    assert lines["cost_theatre_fixed"] == pytest.approx(82 * c.theatre_session_fixed), "82 NHS sessions ran"


# ---------------------------------------------------------------------------------------------------------------
# Funding rules by financial year, productivity, part years and follow-ups, on weekly tables made by hand
# ---------------------------------------------------------------------------------------------------------------

# The shipped scenario's prices, which these examples work by hand: tariff £160 a first attendance, £94 a
# follow-up, £800 a day case, £3,900 an inpatient; 2019/20 a week 13,500 firsts, 27,000 follow-ups, 2,250 day cases,
# 480 inpatients. So the 2019/20 week at tariff is 2,160,000 + 2,538,000 + 1,800,000 + 1,872,000 = £8,370,000 with
# follow-ups and £5,832,000 without.
BASE_WEEK = {"outpatient_first": 13_500, "outpatient_followup": 27_000, "day_case": 2_250, "elective_inpatient": 480}


@pytest.fixture(scope="module")
def prices() -> Finance:
    fin = load_scenario(BASELINE).scenario.finance
    assert fin is not None
    return fin


def mondays(first: str, last: str) -> list[str]:
    """Every Monday from `first` to `last` inclusive (both Mondays), as the weekly table's week_start."""
    day, end, out = dt.date.fromisoformat(first), dt.date.fromisoformat(last), []
    while day <= end:
        out.append(day.isoformat())
        day += dt.timedelta(weeks=1)
    return out


def weekly_table(weeks: list[str], scale: float = 1.0, followup_columns: bool = True, replication: int = 0,
                 **columns: float) -> pd.DataFrame:
    """A weekly table whose every week does `scale` times the 2019/20 week of every line (independent sector,
    vaccination, weekend sessions none), 100 sessions planned and run; `columns` set any column to a constant."""
    n = len(weeks)
    day_cases, inpatients = BASE_WEEK["day_case"] * scale, BASE_WEEK["elective_inpatient"] * scale
    table = pd.DataFrame({
        "scenario": "s", "replication": replication, "week_start": weeks,
        "outpatient_attendances": [BASE_WEEK["outpatient_first"] * scale] * n, "outpatient_virtual": 0.0,
        "theatre_cases": day_cases + inpatients, "theatre_cases_day_case": day_cases,
        "theatre_cases_inpatient": inpatients, "theatre_sessions_planned": 100.0, "theatre_sessions_run": 100.0,
        "elective_bed_days": 1_000.0, "vaccinations": 0.0})
    if followup_columns:
        table["outpatient_followup_attendances"] = BASE_WEEK["outpatient_followup"] * scale
        for column in finance.FOLLOWUP_COLUMNS[1:]:
            table[column] = 0.0
    for column, value in columns.items():
        table[column] = value
    return table


def year_row(fin: Finance, weekly: pd.DataFrame, year: str) -> pd.Series:
    months = finance.monthly(weekly, {"s": fin})
    years = finance.year_sums(months)
    return years[years["financial_year"] == year].iloc[0]


@pytest.mark.unit
def test_2021_22_rule_judges_each_month_against_its_threshold_at_120_percent(prices):
    """Monthly thresholds, follow-ups not counted. September 2021 (5 weeks, threshold 95%) at 90% of 2019/20:
    VWA 0.9 x 5,832,000 x 5 = 26,244,000 against 0.95 x 29,160,000 = 27,702,000: below, nothing paid and
    nothing recovered. October 2021 (4 weeks, threshold 89%) at 100%: VWA 23,328,000 against 0.89 x 23,328,000 =
    20,761,920: 2,566,080 above, paid at 120% = £3,079,296. Judged month by month, September's shortfall does not
    offset October."""
    weekly = pd.concat([weekly_table(mondays("2021-08-30", "2021-09-27"), scale=0.9),
                        weekly_table(mondays("2021-10-04", "2021-10-25"), scale=1.0)], ignore_index=True)
    m = finance.monthly(weekly, {"s": prices}).set_index("month")
    assert list(m["weeks_covered"]) == [5, 4]
    assert m.loc["2021-09", "vwa_value"] == pytest.approx(26_244_000)
    assert m.loc["2021-09", "vwa_threshold_pct"] == pytest.approx(95)
    assert m.loc["2021-09", "income_erf"] == 0
    assert m.loc["2021-10", "vwa_baseline_value"] == pytest.approx(23_328_000)
    assert m.loc["2021-10", "income_erf_above_threshold"] == pytest.approx(3_079_296)
    assert m["income_erf"].sum() == pytest.approx(3_079_296), "a month below its threshold gives nothing back"
    year = year_row(prices, weekly, "2021/22")
    # the year's threshold: the months' thresholds weighted by their baseline, (0.95 x 5 + 0.89 x 4) / 9
    assert year["vwa_threshold_pct"] == pytest.approx(100 * (0.95 * 5 + 0.89 * 4) / 9)


@pytest.mark.unit
def test_2022_23_rule_pays_75_percent_above_104_percent_of_value_weighted_activity(prices):
    """One threshold judged on the year, follow-ups counted. The whole year, 52 weeks (Thursdays 7 April 2022 to
    30 March 2023), at 110% of 2019/20: baseline 52 x 8,370,000 = 435,240,000, VWA 478,764,000 (110%), threshold
    1.04 x 435,240,000 = 452,649,600, above it 26,114,400 paid at 75% = 19,585,800, plus the allocation
    0.04 x 435,240,000 = 17,409,600: ERF £36,995,400."""
    weekly = weekly_table(mondays("2022-04-04", "2023-03-27"), scale=1.1)
    year = year_row(prices, weekly, "2022/23")
    assert year["weeks_covered"] == 52 and year["part_year"] == 0
    assert year["vwa_baseline_value"] == pytest.approx(435_240_000)
    assert year["vwa_pct_of_2019_20"] == pytest.approx(110)
    assert year["vwa_threshold_pct"] == pytest.approx(104)
    assert year["income_erf_above_threshold"] == pytest.approx(19_585_800, abs=0.1)
    assert year["income_erf_allocation"] == pytest.approx(17_409_600, abs=0.1)
    assert year["income_erf"] == pytest.approx(36_995_400, abs=0.1)


@pytest.mark.unit
def test_2022_23_rule_as_first_written_recovers_75_percent_of_a_shortfall_up_to_the_floor(prices):
    """The recovery below 104% was published at 75% of tariff, at most 75% of the allocation, and not applied
    (the shipped rule recovers 0). Written as first published, a year at 90%: VWA 0.9 x 435,240,000 = 391,716,000,
    shortfall 452,649,600 - 391,716,000 = 60,933,600, at 75% = 45,700,200, above the floor 0.75 x 17,409,600 =
    13,057,200: recovered £13,057,200, ERF 17,409,600 - 13,057,200 = £4,352,400. As applied: the allocation alone."""
    weekly = weekly_table(mondays("2022-04-04", "2023-03-27"), scale=0.9)
    assert year_row(prices, weekly, "2022/23")["income_erf"] == pytest.approx(17_409_600, abs=0.1)
    as_written = prices.funding_rules["2022/23"].model_copy(update={"rate_below_threshold": 0.75})
    fin = prices.model_copy(update={"funding_rules": {**prices.funding_rules, "2022/23": as_written}})
    year = year_row(fin, weekly, "2022/23")
    assert year["income_erf_below_threshold"] == pytest.approx(-13_057_200, abs=0.1)
    assert year["income_erf"] == pytest.approx(4_352_400, abs=0.1)


@pytest.mark.unit
def test_2023_24_rule_pays_tariff_above_103_percent_without_follow_ups(prices):
    """Follow-ups without a procedure out of scope (weight 0). The year (52 weeks) at 110%: baseline
    52 x 5,832,000 = 303,264,000, VWA 333,590,400, threshold 1.03 x 303,264,000 = 312,361,920, above it
    21,228,480 at 100% of tariff, allocation 0.03 x 303,264,000 = 9,097,920: ERF £30,326,400. Twice the
    follow-ups change nothing."""
    weeks = mondays("2023-04-03", "2024-03-25")
    year = year_row(prices, weekly_table(weeks, scale=1.1), "2023/24")
    assert year["weeks_covered"] == 52
    assert year["vwa_pct_of_2019_20"] == pytest.approx(110)
    assert year["income_erf_above_threshold"] == pytest.approx(21_228_480, abs=0.1)
    assert year["income_erf"] == pytest.approx(30_326_400, abs=0.1)
    doubled = weekly_table(weeks, scale=1.1, outpatient_followup_attendances=2 * 1.1 * BASE_WEEK["outpatient_followup"])
    assert year_row(prices, doubled, "2023/24")["income_erf"] == pytest.approx(30_326_400, abs=0.1)


@pytest.mark.unit
def test_2024_25_rule_judges_a_part_year_on_the_weeks_covered(prices):
    """The run ends on 3 June 2024: 2024/25 is 9 weeks (Thursdays 4 April to 30 May), flagged part year, its
    baseline 9 x 5,832,000 = 52,488,000, not a whole year's. At 110%: VWA 57,736,800, threshold 1.07 x 52,488,000
    = 56,162,160, above it 1,574,640 at 100%, allocation 0.07 x 52,488,000 = 3,674,160: ERF £5,248,800."""
    year = year_row(prices, weekly_table(mondays("2024-04-01", "2024-05-27"), scale=1.1), "2024/25")
    assert (year["weeks_covered"], year["weeks_in_financial_year"], year["part_year"]) == (9, 52, 1)
    assert year["vwa_baseline_value"] == pytest.approx(52_488_000)
    assert year["vwa_threshold_pct"] == pytest.approx(107)
    assert year["income_erf"] == pytest.approx(5_248_800, abs=0.1)


@pytest.mark.unit
def test_part_years_are_flagged_with_the_weeks_they_cover(prices):
    """A run from Monday 7 June 2021 to 3 June 2024: 2021/22 has 53 Thursdays and the run covers 43 of them
    (from 10 June), 2022/23 and 2023/24 are whole (52), 2024/25 has 9 of 52. June 2021 is 3 of its 4 weeks."""
    months = finance.monthly(weekly_table(mondays("2021-06-07", "2024-05-27")), {"s": prices})
    june = months[months["month"] == "2021-06"].iloc[0]
    assert (june["weeks_covered"], june["weeks_in_month"]) == (3, 4)
    years = finance.year_sums(months).set_index("financial_year")
    assert years["weeks_covered"].to_dict() == {"2021/22": 43, "2022/23": 52, "2023/24": 52, "2024/25": 9}
    assert years["weeks_in_financial_year"].to_dict() == {"2021/22": 53, "2022/23": 52, "2023/24": 52, "2024/25": 52}
    assert years["part_year"].to_dict() == {"2021/22": 1, "2022/23": 0, "2023/24": 0, "2024/25": 1}
    table = finance.by_financial_year(months)
    flag = table[(table["metric"] == "part_year") & (table["statistic"] == "p50")].iloc[0]
    assert [flag[y] for y in ("2021/22", "2022/23", "2023/24", "2024/25")] == [1, 0, 0, 1]


@pytest.mark.unit
def test_productivity_of_an_unchanged_table_is_zero_growth(prices):
    """The same week, every week for three years (part years at both ends): cost-weighted activity and inputs per
    week covered never change, so each year's growth, and productivity growth, is 0; the first year has none."""
    years = finance.year_sums(finance.monthly(weekly_table(mondays("2021-06-07", "2024-05-27")),
                                              {"s": prices})).set_index("financial_year")
    assert np.isnan(years.loc["2021/22", "productivity_growth_pct"]), "no year before the first"
    later = years.loc[["2022/23", "2023/24", "2024/25"]]
    for column in ("cost_weighted_activity_growth_pct", "input_cost_growth_pct", "productivity_growth_pct"):
        assert np.allclose(later[column], 0.0, atol=1e-9), f"{column}: {later[column].tolist()}"


@pytest.mark.unit
def test_productivity_is_activity_growth_less_input_growth(prices):
    """Hand-worked: only the theatre team costs (£1,100 a planned session, 100 sessions a week, so £110,000 a week
    every year); activity 10% higher in 2022/23 than in 2021/22 at the same sessions. Cost-weighted activity grows
    10%, inputs 0%: productivity +10 points. In 2023/24 the sessions rise 10% too (inputs +10%) with activity
    unchanged: productivity -10 points."""
    free = {k: 0.0 for k in type(prices.costs).model_fields}
    fin = prices.model_copy(update={"costs": prices.costs.model_copy(update={**free, "theatre_session_staff": 1100.0})})
    weekly = pd.concat([weekly_table(mondays("2021-06-07", "2022-03-28"), scale=1.0),
                        weekly_table(mondays("2022-04-04", "2023-03-27"), scale=1.1),
                        weekly_table(mondays("2023-04-03", "2024-03-25"), scale=1.1, theatre_sessions_planned=110.0)],
                       ignore_index=True)
    years = finance.year_sums(finance.monthly(weekly, {"s": fin})).set_index("financial_year")
    assert years.loc["2022/23", "cost_weighted_activity_growth_pct"] == pytest.approx(10)
    assert years.loc["2022/23", "input_cost_growth_pct"] == pytest.approx(0, abs=1e-9)
    assert years.loc["2022/23", "productivity_growth_pct"] == pytest.approx(10)
    assert years.loc["2023/24", "input_cost_growth_pct"] == pytest.approx(10)
    assert years.loc["2023/24", "productivity_growth_pct"] == pytest.approx(-10)


@pytest.mark.unit
def test_follow_up_costs_are_priced_and_cost_lines_still_add_to_the_total(run_and_finance):
    """A simulated table with follow-ups added (two for every first, a quarter of them virtual, PIFU counts):
    the follow-up line is face to face x £100 + virtual x £70, every cost line adds to cost_total to the penny,
    and the follow-ups count in cost-weighted activity at £100 each."""
    sc, weekly, before = run_and_finance
    w = weekly.copy()
    w["outpatient_followup_attendances"] = 2 * w["outpatient_attendances"]
    w["outpatient_followup_virtual"] = (w["outpatient_followup_attendances"] // 4)
    w["outpatient_followup_dna"] = 7
    w["pifu_followups_offered"], w["pifu_followups_requested"] = 30, 12
    m = finance.monthly(w, {sc.name: sc.finance})
    virtual = w.groupby(["replication", w["week_start"].map(finance.month_of_week)], sort=False)[
        "outpatient_followup_virtual"].sum().to_numpy()
    face = (w.groupby(["replication", w["week_start"].map(finance.month_of_week)], sort=False)[
        "outpatient_followup_attendances"].sum().to_numpy() - virtual)
    assert np.allclose(m["cost_outpatient_followups"], face * 100 + virtual * 70, atol=0.01)
    assert (m["cost_outpatient_followups"] > 0).all()
    assert np.allclose(m[finance.COST_LINES].sum(axis=1), m["cost_total"], atol=0.011)
    assert np.allclose(m["cost_total"] - before["cost_total"], m["cost_outpatient_followups"], atol=0.011), \
        "follow-ups add their own line and nothing else"
    assert np.allclose(m["income_block"] - before["income_block"], m["weeks_covered"] * 131_976_000 / 52), \
        "the block pays for follow-ups once the run models them"
    assert np.allclose(m["cost_weighted_activity"] - before["cost_weighted_activity"],
                       100 * (face + virtual), atol=0.011)
    assert (m["pifu_followups_offered"] == 30 * m["weeks_covered"]).all()
    assert (m["outpatient_followup_dna"] == 7 * m["weeks_covered"]).all()


@pytest.mark.unit
def test_follow_up_columns_absent_count_zero_and_leave_the_baseline_like_for_like(run_and_finance):
    """A table from before the model had follow-ups has none of their columns: no error, every follow-up line 0,
    and the 2019/20 follow-ups left out of the baseline and of the block (2022/23 counts follow-ups: its VWA
    compares firsts, day cases and inpatients with theirs). Columns that are 0 throughout mean the same (follow-ups
    not modelled); once the table has follow-ups, the baseline and the block include theirs."""
    sc, weekly, m = run_and_finance
    assert not set(finance.FOLLOWUP_COLUMNS) & set(weekly.columns), "the fixture's table is the old kind"
    for column in ("outpatient_followup_face_to_face", "outpatient_followup_virtual", "outpatient_followup_dna",
                   "pifu_followups_offered", "pifu_followups_requested", "cost_outpatient_followups"):
        assert (m[column] == 0).all(), column
    without = 13_500 * 160 + 2_250 * 800 + 480 * 3_900          # 5,832,000 a week
    assert np.allclose(m["baseline_value"], m["weeks_covered"] * without)
    assert np.allclose(m["income_block"], m["weeks_covered"] * 303_264_000 / 52)
    zeros = finance.monthly(weekly.assign(**dict.fromkeys(finance.FOLLOWUP_COLUMNS, 0)), {sc.name: sc.finance})
    assert np.allclose(zeros["baseline_value"], m["baseline_value"]), "columns of 0: follow-ups not modelled"
    some = finance.monthly(weekly.assign(**{**dict.fromkeys(finance.FOLLOWUP_COLUMNS, 0),
                                            finance.FOLLOWUP_ATTENDED: 1}), {sc.name: sc.finance})
    assert np.allclose(some["baseline_value"], some["weeks_covered"] * (without + 27_000 * 94))
    assert np.allclose(some["income_block"], some["weeks_covered"] * (303_264_000 + 131_976_000) / 52)


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], funding_rules: str) -> tuple[int, list[str], Path]:
    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: {BASELINE}\nfinance:\n  funding_rules:\n{funding_rules}", encoding="utf-8")
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()], path


BAD_RULES = [
    ("    2022-23: {threshold_share_of_2019_20: 1.04, rate_above_threshold: 1, activity_weights: {day_case: 1}}\n",
     "finance.funding_rules.2022-23: not a financial year: expected YYYY/YY"),
    ("    2022/24: {threshold_share_of_2019_20: 1.04, rate_above_threshold: 1, activity_weights: {day_case: 1}}\n",
     "finance.funding_rules.2022/24: not a financial year: expected YYYY/YY"),
    ("    2022/23: {monthly_thresholds: [{from_month: 2022-05, share_of_2019_20: 0.9}]}\n",
     "finance.funding_rules.2022/23: give either monthly_thresholds (judged month by month) or "
     "threshold_share_of_2019_20"),
    ("    2021/22:\n      monthly_thresholds: [{from_month: 2022-05, share_of_2019_20: 0.9}]\n",
     "funding_rules.2021/22.monthly_thresholds.0.from_month: 2022-05 is not in financial year 2021/22"),
    ("    2022/23: {activity_weights: {outpatient_folowup: 1}}\n",
     "finance.funding_rules.2022/23.activity_weights.outpatient_folowup: Input should be 'outpatient_first'"),
    ("    2022/23: {activity_weights: {day_case: 1.5}}\n",
     "finance.funding_rules.2022/23.activity_weights.day_case: Input should be less than or equal to 1"),
    ("    2022/23: {rate_above: 0.75}\n", "finance.funding_rules.2022/23.rate_above: unknown key"),
    ("    2023/24: {threshold_share_of_2019_20: .nan}\n",
     "finance.funding_rules.2023/24.threshold_share_of_2019_20: expected a finite number"),
    ("    2023/24: {rate_below_threshold: -1}\n",
     "finance.funding_rules.2023/24.rate_below_threshold: Input should be greater than or equal to 0"),
]


@pytest.mark.integration
@pytest.mark.parametrize("rules, expected", BAD_RULES, ids=[e.split(": ")[0].split(".")[-1] + "-" + str(i)
                                                           for i, (_, e) in enumerate(BAD_RULES)])
def test_a_bad_funding_rule_is_refused_naming_the_file_and_key(rules, expected, tmp_path, capsys):
    code, lines, path = _refusal(tmp_path, capsys, rules)
    assert code == 2, f"expected exit 2, got {code}: {lines}"
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert str(path) in lines[0] and expected in lines[0], f"expected {str(path)!r} and {expected!r} in {lines[0]!r}"


@pytest.mark.integration
def test_the_retired_erf_keys_are_refused_with_what_replaces_them(tmp_path, capsys):
    path = tmp_path / "old.yaml"
    path.write_text(f"extends: {BASELINE}\nfinance:\n  erf_rate_of_tariff: 1.2\n", encoding="utf-8")
    code = main(["run", str(path), "--results-root", str(tmp_path / "results"), "--replications", "1", "--quiet"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert str(path) in lines[0] and "finance: erf_rate_of_tariff: replaced by funding_rules" in lines[0], lines[0]
    assert not (tmp_path / "results").exists(), "nothing may be written for a refused scenario"
