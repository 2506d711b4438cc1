"""Finance from the same simulated activity planners see: costs, income, productivity and the net position.

Model-free: it prices the weekly table a run saved, so it can be recomputed from results/ and changing a
price never needs a new simulation. Conventions, stated once:
- A week belongs to the month of its Thursday (so every week is in exactly one month); NHS financial years
  run April to March.
- Theatre staff are paid for every planned NHS session, whether it runs or is lost (to Covid, staff
  shortage or cancellation): lost sessions cost money without activity. Weekend sessions carry a premium
  (waiting-list initiatives). The session's fixed cost is incurred only when it runs.
- Independent-sector cases are bought at a price per case; their share of day cases, inpatients and bed
  days is taken pro rata (the weekly table does not split them).
- Income is a fixed block plus the Elective Recovery Fund: each month, activity valued at tariff above the
  threshold share of the 2019/20 baseline (the threshold in force that month) is paid at `erf_rate_of_tariff`.
- Net position = income - costs - underlying deficit + recurrent savings (all per week, summed).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sim.core.nhs_calendar import nhs_financial_year
from sim.outputs.analysis import percentile
from sim.scenario.schema import Finance

COST_LINES = ["cost_outpatients", "cost_theatre_staff", "cost_theatre_fixed", "cost_cases_non_theatre",
              "cost_bed_days", "cost_independent_sector", "cost_vaccination"]
INCOME_LINES = ["income_block", "income_erf"]


def month_of_week(week_start: str) -> str:
    """YYYY-MM of the Thursday of the week starting on this Monday."""
    return (dt.date.fromisoformat(week_start) + dt.timedelta(days=3)).strftime("%Y-%m")


def financial_year_of_month(month: str) -> str:
    return nhs_financial_year(dt.date.fromisoformat(month + "-01"))


def erf_threshold(month: str, finance: Finance) -> float:
    """The ERF threshold in force in a month (share of 2019/20 activity value); NaN when no scheme applies."""
    share = float("nan")
    for t in sorted(finance.erf_thresholds, key=lambda x: x.from_month):
        if t.from_month <= month:
            share = float("nan") if t.share_of_2019_20 is None else t.share_of_2019_20
    return share


def weekly_lines(weekly: pd.DataFrame, finance: Finance) -> pd.DataFrame:
    """Activity and cost lines for every row of a weekly table (one scenario's finance)."""
    w = weekly
    c, t = finance.costs, finance.tariff
    out = pd.DataFrame({"scenario": w["scenario"], "replication": w["replication"], "week_start": w["week_start"]})
    out["month"] = [month_of_week(x) for x in w["week_start"]]
    virtual = w["outpatient_virtual"]
    out["outpatient_first_face_to_face"] = w["outpatient_attendances"] - virtual
    out["outpatient_first_virtual"] = virtual
    cases = w["theatre_cases"]
    is_cases = w.get("independent_sector_cases", 0 * cases)
    nhs_share = np.where(cases > 0, (cases - is_cases) / cases.where(cases > 0, 1), 1.0)
    out["day_cases"] = w["theatre_cases_day_case"]
    out["elective_inpatients"] = w["theatre_cases_inpatient"]
    out["theatre_cases"] = cases
    out["independent_sector_cases"] = is_cases
    # independent-sector sessions are bought per case: no NHS team or session cost, run or lost
    nhs_planned = w["theatre_sessions_planned"] - w.get("independent_sector_sessions_planned", 0 * cases)
    nhs_run = w["theatre_sessions_run"] - w.get("independent_sector_sessions_run", 0 * cases)
    weekend = w.get("theatre_sessions_weekend_planned", 0 * cases)
    out["theatre_sessions_planned"] = w["theatre_sessions_planned"]
    out["theatre_sessions_run"] = w["theatre_sessions_run"]

    out["cost_outpatients"] = (out["outpatient_first_face_to_face"] * c.outpatient_first_face_to_face
                               + out["outpatient_first_virtual"] * c.outpatient_first_virtual)
    out["cost_theatre_staff"] = (nhs_planned + weekend * c.premium_rate_weekend_sessions) * c.theatre_session_staff
    out["cost_theatre_fixed"] = nhs_run * c.theatre_session_fixed
    out["cost_cases_non_theatre"] = nhs_share * (out["day_cases"] * c.day_case_non_theatre
                                                 + out["elective_inpatients"] * c.inpatient_non_theatre)
    out["cost_bed_days"] = nhs_share * w["elective_bed_days"] * c.elective_bed_day
    out["cost_independent_sector"] = is_cases * c.independent_sector_per_case
    out["cost_vaccination"] = (w["vaccinations"] * c.vaccination_per_dose
                               + w.get("vaccination_station_hours", 0 * cases) * c.vaccination_per_station_hour)
    base = finance.activity_2019_20_per_week
    out["activity_value"] = (w["outpatient_attendances"] * t.outpatient_first + out["day_cases"] * t.day_case
                             + out["elective_inpatients"] * t.elective_inpatient)
    out["baseline_value"] = (base.get("outpatient_first", 0) * t.outpatient_first + base.get("day_case", 0) * t.day_case
                             + base.get("elective_inpatient", 0) * t.elective_inpatient)
    out["income_block"] = finance.block_income_per_year / 52
    out["underlying_deficit"] = finance.underlying_deficit_per_year / 52
    out["recurrent_savings"] = finance.recurrent_savings_per_year / 52
    return out


def monthly(weekly: pd.DataFrame, finances: dict[str, Finance]) -> pd.DataFrame:
    """finance_monthly.csv: one row per scenario x replication x month, line items adding to totals."""
    frames = []
    for scenario, w in weekly.groupby("scenario", sort=False):
        fin = finances.get(scenario)
        if fin is None:
            continue
        lines = weekly_lines(w, fin)
        sums = lines.drop(columns=["week_start"]).groupby(["scenario", "replication", "month"], sort=False).sum()
        sums = sums.reset_index()
        sums["financial_year"] = [financial_year_of_month(m) for m in sums["month"]]
        sums["erf_threshold"] = [erf_threshold(m, fin) for m in sums["month"]]
        above = sums["activity_value"] - sums["erf_threshold"] * sums["baseline_value"]
        sums["income_erf"] = np.where(np.isnan(sums["erf_threshold"]), 0.0,
                                      np.maximum(above, 0.0) * fin.erf_rate_of_tariff)
        sums["day_case_equivalents"] = sums["activity_value"] / fin.tariff.day_case if fin.tariff.day_case else np.nan
        frames.append(sums)
    if not frames:
        return pd.DataFrame()
    m = pd.concat(frames, ignore_index=True)
    m["cost_total"] = m[COST_LINES].sum(axis=1)
    m["cost_elective"] = m["cost_total"] - m["cost_vaccination"]
    m["income_total"] = m[INCOME_LINES].sum(axis=1)
    m["net_position"] = m["income_total"] - m["cost_total"] - m["underlying_deficit"] + m["recurrent_savings"]
    # productivity
    m["cases_per_session"] = m["theatre_cases"] / m["theatre_sessions_run"].where(m["theatre_sessions_run"] > 0)
    m["cost_per_elective_case"] = ((m["cost_elective"] - m["cost_outpatients"])
                                   / m["theatre_cases"].where(m["theatre_cases"] > 0))
    m["cost_per_weighted_activity_unit"] = (m["cost_elective"]
                                            / m["day_case_equivalents"].where(m["day_case_equivalents"] > 0))
    m["activity_pct_of_2019_20"] = 100 * m["activity_value"] / m["baseline_value"].where(m["baseline_value"] > 0)
    money = [*COST_LINES, "cost_total", "cost_elective", *INCOME_LINES, "income_total", "underlying_deficit",
             "recurrent_savings", "net_position", "activity_value", "baseline_value"]
    m[money] = m[money].round(2)
    first = ["scenario", "replication", "month", "financial_year"]
    return m[first + [c for c in m.columns if c not in first]]


YEARLY_METRICS = ["cost_total", "cost_elective", "income_total", "income_erf", "net_position", "cost_per_elective_case",
                  "cases_per_session", "activity_pct_of_2019_20"]


def by_financial_year(month_table: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per scenario, metric and statistic (mean, p05, p50, p95 across replications), financial years as
    columns the way NHS finance reports. With a reference scenario, adds the paired difference in net
    position (same replications, same patients)."""
    if month_table.empty:
        return pd.DataFrame()
    ratios = ["erf_threshold", "cases_per_session", "cost_per_elective_case", "cost_per_weighted_activity_unit",
              "activity_pct_of_2019_20"]            # recomputed below from the year's sums, never summed
    sums = (month_table.drop(columns=[c for c in ratios if c in month_table])
            .groupby(["scenario", "replication", "financial_year"], sort=False).sum(numeric_only=True).reset_index())
    sums["cost_per_elective_case"] = ((sums["cost_elective"] - sums["cost_outpatients"])
                                      / sums["theatre_cases"].where(sums["theatre_cases"] > 0))
    sums["cases_per_session"] = (sums["theatre_cases"]
                                 / sums["theatre_sessions_run"].where(sums["theatre_sessions_run"] > 0))
    sums["activity_pct_of_2019_20"] = (100 * sums["activity_value"]
                                       / sums["baseline_value"].where(sums["baseline_value"] > 0))
    metrics = list(YEARLY_METRICS)
    if reference is not None and reference in set(sums["scenario"]):
        ref = sums[sums["scenario"] == reference].set_index(["replication", "financial_year"])["net_position"]
        sums["net_position_vs_reference"] = [row.net_position - ref.get((row.replication, row.financial_year), np.nan)
                                             for row in sums.itertuples()]
        metrics.append("net_position_vs_reference")
    rows = []
    for (scenario, fy), g in sums.groupby(["scenario", "financial_year"], sort=False):
        for metric in metrics:
            v = g[metric].to_numpy(dtype=float)
            v = v[np.isfinite(v)]                   # a year missing from the reference is left out, not "latest"
            stats = {"mean": float(v.mean()) if len(v) else np.nan,
                     **{f"p{q:02d}": percentile(v, q) for q in (5, 50, 95)}}
            for stat, value in stats.items():
                rows.append({"scenario": scenario, "metric": metric, "statistic": stat, "financial_year": fy,
                             "value": round(value, 2) if np.isfinite(value) else np.nan})
    long = pd.DataFrame(rows)
    wide = long.pivot_table(index=["scenario", "metric", "statistic"], columns="financial_year", values="value",
                            sort=False).reset_index()
    wide.columns.name = None
    return wide
