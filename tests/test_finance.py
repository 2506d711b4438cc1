"""Finance: line items add up, zero prices cost nothing, productivity and redeployment move cost per case
the right way, months fall in the right financial year, and the ERF threshold is the one in force."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from helpers import scaled_baseline_raw
from sim.model.replication import run_single
from sim.outputs import finance
from sim.outputs.analysis import weeks_to_clear
from sim.scenario.validate import validate

SITES = ("imperial", "chelsea_westminster", "lnwh", "hillingdon")


@pytest.fixture(scope="module")
def run_and_finance():
    sc = validate(scaled_baseline_raw(0.05, horizon_weeks=60), "fin")
    weekly = run_single(sc, 0).weekly
    return sc, weekly, finance.monthly(weekly, {sc.name: sc.finance})


@pytest.mark.unit
def test_line_items_add_up_to_totals_exactly(run_and_finance):
    _, _, m = run_and_finance
    lines = m[finance.COST_LINES].sum(axis=1)
    assert np.allclose(lines, m["cost_total"], atol=0.011), "cost lines must add to cost_total (to the penny)"
    assert np.allclose(m["income_block"] + m["income_erf"], m["income_total"], atol=0.011)
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
    expected = {"2021-06": 0.80, "2021-07": 0.95, "2021-09": 0.95, "2021-10": 0.89, "2022-03": 0.89}
    for month, share in expected.items():
        assert finance.erf_threshold(month, sc.finance) == share, f"{month}: expected threshold {share}"
    assert np.isnan(finance.erf_threshold("2022-04", sc.finance)), "no ERF scheme is modelled from April 2022"
    after = m[m["month"] >= "2022-04"]
    assert len(after) and (after["income_erf"] == 0).all()
    row = m[m["month"] == "2021-10"].iloc[0]
    expected_erf = max(0.0, row["activity_value"] - 0.89 * row["baseline_value"]) * 1.2
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
    import subprocess
    import sys

    from helpers import BASELINE, ROOT
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "run_sim.py"), "run", str(BASELINE), "--replications", "2",
                           "--set", "horizon_weeks=50", "--set", "referrals.referrals_per_week=2000", "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Finance" in text and "| 2021/22 | 2022/23 |" in text, "finance table with financial years as columns"
    assert "Elective net position" in text and "Cost per elective case" in text
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
