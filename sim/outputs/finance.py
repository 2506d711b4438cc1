"""Finance from the same simulated activity planners see: costs, income, funding rules and productivity.

Model-free: it prices the weekly table a run saved, so it can be recomputed from results/ and changing a
price never needs a new simulation. Conventions, stated once:
- A week belongs to the month of its Thursday (so every week is in exactly one month); NHS financial years
  run April to March. A financial year has 52 or 53 weeks (its Thursdays); a run that starts or ends inside one
  covers only part of it: `weeks_covered` says how much, `part_year` flags it, and nothing is scaled up to a
  whole year. A part year's 2019/20 baseline is the weekly baseline times the weeks covered.
- Activity lines: first outpatient attendances, follow-up attendances (attended, face to face and virtual, PIFU
  requests included), day cases and elective inpatients. A scenario's weekly table without follow-ups (no
  follow-up columns, as in a run made before the model had them, or columns that are 0 throughout: follow-ups not
  modelled) counts them 0, and leaves them out of the 2019/20 baseline and the block too
  (`block_income_followups_per_year`), so activity and income are compared like with like. PIFU follow-ups
  offered and requested are counted, not priced: a requested one is an attendance, priced as a follow-up.
- Theatre staff are paid for every planned NHS session, whether it runs or is lost (to Covid, staff
  shortage or cancellation): lost sessions cost money without activity. Weekend sessions carry a premium
  (waiting-list initiatives). The session's fixed cost is incurred only when it runs.
- Independent-sector cases are bought at a price per case; their share of day cases, inpatients and bed
  days is taken pro rata (the weekly table does not split them).
- Income is a fixed block plus elective funding under the financial year's rule (`Finance.funding_rules`, in the
  scenario): value-weighted activity (VWA: each activity line at tariff times the rule's weight for it) against the
  threshold share of the same lines' 2019/20 value. Monthly thresholds are judged month by month (the 2021/22
  Elective Recovery Fund); one threshold is judged on the year's total over the weeks covered, and the year's
  payment or recovery is spread over its months by their weeks. Income from the rule = allocation paid up front
  (its share of the 2019/20 value) + `rate_above_threshold` x tariff value above the threshold - `rate_below_threshold`
  x the shortfall below it (at most `max_clawback_share_of_allocation` of the allocation). A year without a rule
  has no scheme; its VWA counts every line at weight 1.
- Productivity as NHS England measures it: growth in cost-weighted activity (each line times its national unit
  cost, `cost_weights`) less growth in inputs (the elective cost, vaccination left out, at constant prices: every
  cost here is in one price year, so no deflator is needed). Growth is against the previous financial year of the
  same replication, per week covered (so a part year compares at its weekly rate), in percentage points; the
  first year of a run has none. Seasonality is not removed: a part year's rate is that of the months it covers.
- Net position = income - costs - underlying deficit + recurrent savings (all per week, summed).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sim.core.nhs_calendar import nhs_financial_year
from sim.outputs.analysis import percentile
from sim.scenario.schema import ACTIVITY_LINES, Finance, FundingRule

COST_LINES = ["cost_outpatients", "cost_outpatient_followups", "cost_theatre_staff", "cost_theatre_fixed",
              "cost_cases_non_theatre", "cost_bed_days", "cost_independent_sector", "cost_vaccination"]
INCOME_LINES = ["income_block", "income_erf"]
ERF_PARTS = ["income_erf_allocation", "income_erf_above_threshold", "income_erf_below_threshold"]  # add to income_erf

# Follow-up columns of the weekly table (absent from runs made before the model had follow-ups: 0 then).
FOLLOWUP_ATTENDED = "outpatient_followup_attendances"       # attended, face to face and virtual
FOLLOWUP_COLUMNS = (FOLLOWUP_ATTENDED, "outpatient_followup_virtual", "outpatient_followup_dna",
                    "pifu_followups_offered", "pifu_followups_requested")

# Each activity line's count in finance_monthly.csv, as the sum of its columns there.
LINE_COLUMNS = {"outpatient_first": ("outpatient_first_face_to_face", "outpatient_first_virtual"),
                "outpatient_followup": ("outpatient_followup_face_to_face", "outpatient_followup_virtual"),
                "day_case": ("day_cases",), "elective_inpatient": ("elective_inpatients",)}


def followups_modelled(weekly: pd.DataFrame) -> bool:
    """Whether a scenario's weekly table has follow-ups: the attended column is there and not 0 throughout."""
    return FOLLOWUP_ATTENDED in weekly and bool((weekly[FOLLOWUP_ATTENDED] != 0).any())


def month_of_week(week_start: str) -> str:
    """YYYY-MM of the Thursday of the week starting on this Monday."""
    return (dt.date.fromisoformat(week_start) + dt.timedelta(days=3)).strftime("%Y-%m")


def financial_year_of_month(month: str) -> str:
    return nhs_financial_year(dt.date.fromisoformat(month + "-01"))


def thursdays_in_month(month: str) -> int:
    """The weeks a whole month has (weeks belong to the month of their Thursday): 4 or 5."""
    first = dt.date.fromisoformat(month + "-01")
    nxt = dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return (nxt - first_thursday).days // 7 + ((nxt - first_thursday).days % 7 > 0)


def weeks_in_financial_year(year: str) -> int:
    """The weeks a whole NHS financial year has ("2022/23": the Thursdays of April 2022 to March 2023): 52 or 53."""
    start = int(year[:4])
    months = [f"{start + (m < 4)}-{m:02d}" for m in (*range(4, 13), 1, 2, 3)]
    return sum(thursdays_in_month(m) for m in months)


def funding_rule(year: str, finance: Finance) -> FundingRule | None:
    """The funding rule of a financial year, None when the scenario gives none (no scheme that year)."""
    return finance.funding_rules.get(year)


def monthly_threshold(month: str, rule: FundingRule) -> float:
    """The threshold in force in a month under a rule judged month by month (share of 2019/20 value); NaN before
    the first one or where it is null (no scheme)."""
    share = float("nan")
    for t in rule.monthly_thresholds or []:
        if t.from_month <= month:
            share = float("nan") if t.share_of_2019_20 is None else t.share_of_2019_20
    return share


def erf_threshold(month: str, finance: Finance) -> float:
    """The threshold share of 2019/20 value-weighted activity that judges a month; NaN when no scheme applies."""
    rule = funding_rule(financial_year_of_month(month), finance)
    if rule is None:
        return float("nan")
    if rule.threshold_share_of_2019_20 is not None:
        return rule.threshold_share_of_2019_20
    return monthly_threshold(month, rule)


def activity_weights(rule: FundingRule | None) -> dict[str, float]:
    """The weight each activity line counts at under a rule; every line 1 without one."""
    if rule is None:
        return dict.fromkeys(ACTIVITY_LINES, 1.0)
    return {line: rule.activity_weights.get(line, 0.0) for line in ACTIVITY_LINES}


def erf_income(vwa_value: float, baseline_value: float, threshold: float, rule: FundingRule) -> tuple[float, float]:
    """(paid above the threshold, recovered below it as a negative amount) for activity judged as one block (a
    month under monthly thresholds, the year's weeks covered under one threshold). The recovery is limited to
    `max_clawback_share_of_allocation` of the allocation the block's baseline earns."""
    if not np.isfinite(threshold):
        return 0.0, 0.0
    target = threshold * baseline_value
    above = max(vwa_value - target, 0.0) * rule.rate_above_threshold
    below = max(target - vwa_value, 0.0) * rule.rate_below_threshold
    if rule.max_clawback_share_of_allocation is not None:
        below = min(below, rule.max_clawback_share_of_allocation * rule.allocation_share_of_2019_20 * baseline_value)
    return above, 0.0 - below           # 0.0, not -0.0, when nothing is recovered


def weekly_lines(weekly: pd.DataFrame, finance: Finance) -> pd.DataFrame:
    """Activity and cost lines for every row of a weekly table (one scenario's finance)."""
    w = weekly
    c = finance.costs
    out = pd.DataFrame({"scenario": w["scenario"], "replication": w["replication"], "week_start": w["week_start"]})
    out["month"] = [month_of_week(x) for x in w["week_start"]]
    out["weeks_covered"] = 1
    virtual = w["outpatient_virtual"]
    out["outpatient_first_face_to_face"] = w["outpatient_attendances"] - virtual
    out["outpatient_first_virtual"] = virtual
    cases = w["theatre_cases"]
    zero = 0 * cases
    followups, followups_virtual = w.get(FOLLOWUP_ATTENDED, zero), w.get("outpatient_followup_virtual", zero)
    out["outpatient_followup_face_to_face"] = followups - followups_virtual
    out["outpatient_followup_virtual"] = followups_virtual
    for column in FOLLOWUP_COLUMNS[2:]:
        out[column] = w.get(column, zero)
    is_cases = w.get("independent_sector_cases", zero)
    nhs_share = np.where(cases > 0, (cases - is_cases) / cases.where(cases > 0, 1), 1.0)
    out["day_cases"] = w["theatre_cases_day_case"]
    out["elective_inpatients"] = w["theatre_cases_inpatient"]
    out["theatre_cases"] = cases
    out["independent_sector_cases"] = is_cases
    # independent-sector sessions are bought per case: no NHS team or session cost, run or lost
    nhs_planned = w["theatre_sessions_planned"] - w.get("independent_sector_sessions_planned", zero)
    nhs_run = w["theatre_sessions_run"] - w.get("independent_sector_sessions_run", zero)
    weekend = w.get("theatre_sessions_weekend_planned", zero)
    out["theatre_sessions_planned"] = w["theatre_sessions_planned"]
    out["theatre_sessions_run"] = w["theatre_sessions_run"]

    out["cost_outpatients"] = (out["outpatient_first_face_to_face"] * c.outpatient_first_face_to_face
                               + out["outpatient_first_virtual"] * c.outpatient_first_virtual)
    out["cost_outpatient_followups"] = (out["outpatient_followup_face_to_face"] * c.outpatient_followup_face_to_face
                                        + out["outpatient_followup_virtual"] * c.outpatient_followup_virtual)
    out["cost_theatre_staff"] = (nhs_planned + weekend * c.premium_rate_weekend_sessions) * c.theatre_session_staff
    out["cost_theatre_fixed"] = nhs_run * c.theatre_session_fixed
    out["cost_cases_non_theatre"] = nhs_share * (out["day_cases"] * c.day_case_non_theatre
                                                 + out["elective_inpatients"] * c.inpatient_non_theatre)
    out["cost_bed_days"] = nhs_share * w["elective_bed_days"] * c.elective_bed_day
    out["cost_independent_sector"] = is_cases * c.independent_sector_per_case
    out["cost_vaccination"] = (w["vaccinations"] * c.vaccination_per_dose
                               + w.get("vaccination_station_hours", zero) * c.vaccination_per_station_hour)
    block = finance.block_income_per_year + (finance.block_income_followups_per_year if followups_modelled(w) else 0)
    out["income_block"] = block / 52
    out["underlying_deficit"] = finance.underlying_deficit_per_year / 52
    out["recurrent_savings"] = finance.recurrent_savings_per_year / 52
    return out


def _value(counts: dict[str, pd.Series], prices: dict[str, float], weights: dict[str, float]) -> pd.Series:
    return sum((counts[line] * prices[line] * weights[line] for line in ACTIVITY_LINES), 0 * counts["day_case"])


def _priced_months(sums: pd.DataFrame, fin: Finance, followups_in_table: bool) -> pd.DataFrame:
    """Activity value, value-weighted activity against the year's rule, and elective funding, for one scenario's
    months (one row per replication and month, `weeks_covered` weeks each)."""
    t = fin.tariff
    tariff = {"outpatient_first": t.outpatient_first, "outpatient_followup": t.outpatient_followup,
              "day_case": t.day_case, "elective_inpatient": t.elective_inpatient}
    counts = {line: sum(sums[c] for c in columns) for line, columns in LINE_COLUMNS.items()}
    per_week: dict[str, float] = {line: float(fin.activity_2019_20_per_week.get(line, 0)) for line in ACTIVITY_LINES}
    if not followups_in_table:
        per_week["outpatient_followup"] = 0.0
    baseline: dict[str, pd.Series] = {line: sums["weeks_covered"] * per_week[line] for line in ACTIVITY_LINES}
    every_line = activity_weights(None)
    sums["activity_value"] = _value(counts, tariff, every_line)
    sums["baseline_value"] = _value(baseline, tariff, every_line)
    cost_weights = {str(line): weight for line, weight in fin.cost_weights.items()}
    sums["cost_weighted_activity"] = _value(counts, cost_weights, every_line)
    rules = {fy: funding_rule(fy, fin) for fy in dict.fromkeys(sums["financial_year"])}
    vwa = pd.Series(np.nan, index=sums.index)
    vwa_base = pd.Series(np.nan, index=sums.index)
    for fy, rule in rules.items():
        rows = sums["financial_year"] == fy
        weights = activity_weights(rule)
        vwa[rows] = _value({k: v[rows] for k, v in counts.items()}, tariff, weights)
        vwa_base[rows] = _value({k: v[rows] for k, v in baseline.items()}, tariff, weights)
    sums["vwa_value"], sums["vwa_baseline_value"] = vwa, vwa_base
    sums["vwa_threshold_share"] = [erf_threshold(m, fin) for m in sums["month"]]
    sums["vwa_threshold_value"] = sums["vwa_threshold_share"] * sums["vwa_baseline_value"]
    sums["vwa_pct_of_2019_20"] = 100 * sums["vwa_value"] / sums["vwa_baseline_value"].where(
        sums["vwa_baseline_value"] > 0)
    sums["vwa_threshold_pct"] = 100 * sums["vwa_threshold_share"]
    for part in ERF_PARTS:
        sums[part] = 0.0
    for fy, rule in rules.items():
        if rule is None:
            continue
        in_year = sums["financial_year"] == fy
        sums.loc[in_year, "income_erf_allocation"] = (rule.allocation_share_of_2019_20
                                                      * sums.loc[in_year, "vwa_baseline_value"])
        if rule.monthly_thresholds is not None:       # judged month by month
            for i in sums.index[in_year]:
                above, below = erf_income(sums.at[i, "vwa_value"], sums.at[i, "vwa_baseline_value"],
                                          sums.at[i, "vwa_threshold_share"], rule)
                sums.at[i, "income_erf_above_threshold"], sums.at[i, "income_erf_below_threshold"] = above, below
            continue
        for _, year in sums[in_year].groupby("replication", sort=False):     # judged on the year's weeks covered
            above, below = erf_income(year["vwa_value"].sum(), year["vwa_baseline_value"].sum(),
                                      float(rule.threshold_share_of_2019_20 or 0.0), rule)
            share = year["weeks_covered"] / year["weeks_covered"].sum()
            sums.loc[year.index, "income_erf_above_threshold"] = above * share
            sums.loc[year.index, "income_erf_below_threshold"] = below * share
    sums["income_erf"] = sums[ERF_PARTS].sum(axis=1)
    return sums.drop(columns=["vwa_threshold_share"])


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
        sums["weeks_in_month"] = [thursdays_in_month(m) for m in sums["month"]]
        sums = _priced_months(sums, fin, followups_modelled(w))
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
    m["cost_per_elective_case"] = _cost_per_elective_case(m)
    m["cost_per_weighted_activity_unit"] = (m["cost_elective"]
                                            / m["day_case_equivalents"].where(m["day_case_equivalents"] > 0))
    m["activity_pct_of_2019_20"] = 100 * m["activity_value"] / m["baseline_value"].where(m["baseline_value"] > 0)
    money = [*COST_LINES, "cost_total", "cost_elective", *INCOME_LINES, *ERF_PARTS, "income_total",
             "underlying_deficit", "recurrent_savings", "net_position", "activity_value", "baseline_value",
             "vwa_value", "vwa_baseline_value", "vwa_threshold_value", "cost_weighted_activity"]
    m[money] = m[money].round(2)
    first = ["scenario", "replication", "month", "financial_year", "weeks_covered", "weeks_in_month"]
    return m[first + [c for c in m.columns if c not in first]]


def _cost_per_elective_case(t: pd.DataFrame) -> pd.Series:
    """Elective cost less outpatient clinics (firsts and follow-ups) per theatre case."""
    return ((t["cost_elective"] - t["cost_outpatients"] - t["cost_outpatient_followups"])
            / t["theatre_cases"].where(t["theatre_cases"] > 0))


YEARLY_METRICS = ["cost_total", "cost_elective", "cost_outpatient_followups", "income_total", "income_erf",
                  *ERF_PARTS, "net_position", "cost_per_elective_case", "cases_per_session", "activity_pct_of_2019_20",
                  "weeks_covered", "weeks_in_financial_year", "part_year", "vwa_pct_of_2019_20", "vwa_threshold_pct",
                  "outpatient_followups", "pifu_followups_offered", "pifu_followups_requested",
                  "cost_weighted_activity", "cost_weighted_activity_growth_pct", "input_cost_growth_pct",
                  "productivity_growth_pct"]
# finance_monthly.csv columns that are ratios or a month's own facts: recomputed for the year, never summed
MONTHLY_RATIOS = ["weeks_in_month", "cases_per_session", "cost_per_elective_case",
                  "cost_per_weighted_activity_unit", "activity_pct_of_2019_20", "vwa_pct_of_2019_20",
                  "vwa_threshold_pct"]


def year_sums(month_table: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario, replication and financial year: the months' sums, with the year's ratios, how much of
    the year the run covers, value-weighted activity against the year's threshold, and productivity growth
    against the previous year (see the module's conventions)."""
    sums = (month_table.drop(columns=[c for c in MONTHLY_RATIOS if c in month_table])
            .groupby(["scenario", "replication", "financial_year"], sort=False).sum(numeric_only=True).reset_index())
    sums["cost_per_elective_case"] = _cost_per_elective_case(sums)
    sums["cases_per_session"] = (sums["theatre_cases"]
                                 / sums["theatre_sessions_run"].where(sums["theatre_sessions_run"] > 0))
    sums["activity_pct_of_2019_20"] = (100 * sums["activity_value"]
                                       / sums["baseline_value"].where(sums["baseline_value"] > 0))
    sums["weeks_in_financial_year"] = [weeks_in_financial_year(y) for y in sums["financial_year"]]
    sums["part_year"] = (sums["weeks_covered"] < sums["weeks_in_financial_year"]).astype(int)
    sums["vwa_pct_of_2019_20"] = 100 * sums["vwa_value"] / sums["vwa_baseline_value"].where(
        sums["vwa_baseline_value"] > 0)
    # the threshold the year was judged against: the months' thresholds weighted by their baseline (one threshold
    # judged on the year is itself); months without a scheme are left out; NaN in a year with none
    in_scheme = month_table["vwa_threshold_value"].notna()
    judged = (month_table.assign(base_in_scheme=month_table["vwa_baseline_value"].where(in_scheme),
                                 threshold_value=month_table["vwa_threshold_value"])
              .groupby(["scenario", "replication", "financial_year"], sort=False)
              [["base_in_scheme", "threshold_value"]].sum(min_count=1))
    ratio = 100 * judged["threshold_value"] / judged["base_in_scheme"].where(judged["base_in_scheme"] > 0)
    sums["vwa_threshold_pct"] = ratio.reindex(pd.MultiIndex.from_frame(
        sums[["scenario", "replication", "financial_year"]])).to_numpy()
    sums["outpatient_followups"] = sums["outpatient_followup_face_to_face"] + sums["outpatient_followup_virtual"]
    # productivity: growth per week covered against the previous financial year of the same replication
    sums = sums.sort_values(["scenario", "replication", "financial_year"], kind="stable")
    weeks = sums["weeks_covered"].where(sums["weeks_covered"] > 0)
    rate = pd.DataFrame({"activity": sums["cost_weighted_activity"] / weeks, "inputs": sums["cost_elective"] / weeks,
                         "scenario": sums["scenario"], "replication": sums["replication"]})
    previous = rate.groupby(["scenario", "replication"], sort=False)[["activity", "inputs"]].shift(1)
    sums["cost_weighted_activity_growth_pct"] = 100 * (rate["activity"] / previous["activity"].where(
        previous["activity"] > 0) - 1)
    sums["input_cost_growth_pct"] = 100 * (rate["inputs"] / previous["inputs"].where(previous["inputs"] > 0) - 1)
    sums["productivity_growth_pct"] = sums["cost_weighted_activity_growth_pct"] - sums["input_cost_growth_pct"]
    return sums.sort_index()


def by_financial_year(month_table: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per scenario, metric and statistic (mean, p05, p50, p95 across replications), financial years as
    columns the way NHS finance reports. With a reference scenario, adds the paired difference in net
    position (same replications, same patients)."""
    if month_table.empty:
        return pd.DataFrame()
    sums = year_sums(month_table)
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
