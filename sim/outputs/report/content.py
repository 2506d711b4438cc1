"""What the report says: clearance weeks, paired differences, headlines, finance, the method note, and the
document (`build_documents`) that puts them in order with the charts and tables.

Clearance weeks. `weeks_to_clear` w (replications.csv) means the count of long waiters is zero at the end of
week w-1 (weeks numbered 0, 1, ... from the start date, Monday to Sunday) and at the end of every later week,
so the last long waiter leaves the list during week w-1, whose Monday is start_date + 7 (w-1) days: "the week
of" that Monday. NaN means not cleared within the horizon.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.analysis import paired_comparison, percentile
from sim.outputs.report.assumptions import SOURCE_TAGS, key_assumptions
from sim.outputs.report.documents import Block, Bullets, Document, Figure, Heading, Paragraph, Table
from sim.outputs.report.format import fmt_date, fmt_difference, fmt_int, fmt_num, fmt_pct, money, plural
from sim.outputs.report.providers import provider_blocks
from sim.outputs.report.published import PublishedFit, published_blocks
from sim.outputs.report.summary import (
    board_headlines,
    summary_facts,
    summary_note,
    summary_table,
    target_chances,
)
from sim.outputs.run_folder import FINANCE_BY_YEAR_CSV, FINANCE_MONTHLY_CSV, PARAMETERS_CSV, SCENARIO_YAML
from sim.outputs.run_reader import RunFolder, ScenarioInfo
from sim.outputs.safe_text import md_code, md_emphasis, md_text


@dataclass
class Clearance:
    scenario: str
    threshold: int
    n: int
    n_cleared: int
    p05: float           # weeks to clear (NaN: beyond the horizon)
    p50: float
    p95: float
    low: dt.date | None  # Monday of the week of clearance; None: not cleared within the horizon
    median: dt.date | None
    high: dt.date | None
    never_over: bool     # no long waiter at the end of any week, in every replication
    earliest: dt.date | None = None   # the earliest and latest week of clearance among replications that cleared
    latest: dt.date | None = None


def clearance_table(run: RunFolder) -> list[Clearance]:
    out = []
    for name, info in run.scenarios.items():
        reps = run.replications[run.replications["scenario"] == name]
        for t in THRESHOLDS:
            col = f"weeks_to_clear_{t}w"
            if col not in reps:
                continue
            v = reps[col].to_numpy(dtype=float)
            p05, p50, p95 = (percentile(v, q) for q in (5, 50, 95))
            done = v[~np.isnan(v)]
            out.append(Clearance(name, t, len(v), len(done), p05, p50, p95,
                                 info.clearance_week(p05, "floor"), info.clearance_week(p50, "round"),
                                 info.clearance_week(p95, "ceil"), bool(len(v) and np.all(v == 0)),
                                 info.clearance_week(float(done.min()), "floor") if len(done) else None,
                                 info.clearance_week(float(done.max()), "ceil") if len(done) else None))
    return out


@dataclass
class PairedDifference:
    scenario: str
    reference: str
    threshold: int
    n_pairs: int          # replications in which both scenarios cleared
    n_excluded: int       # replications in which one or both did not clear
    mean: float
    p05: float
    p50: float
    p95: float


def paired_differences(run: RunFolder) -> list[PairedDifference]:
    """Per replication: weeks to clear in the scenario minus in the first scenario (the same replication
    number, so the same patients under common random numbers), then summarised (sim.outputs.analysis)."""
    names = run.names
    if len(names) < 2:
        return []
    table = paired_comparison(run.replications, names[0])
    out = []
    for name in names[1:]:
        for t in THRESHOLDS:
            row = table[(table["scenario"] == name) & (table["metric"] == f"weeks_to_clear_{t}w_difference")]
            if row.empty:
                continue
            r = row.iloc[0]
            out.append(PairedDifference(name, names[0], t, int(r["pairs"]), int(r["pairs_not_cleared"]),
                                        float(r["mean"]), float(r["p05"]), float(r["p50"]), float(r["p95"])))
    return out


def activity_baseline(cfg: Mapping) -> tuple[dict | None, str | None]:
    """The 2019/20 weekly admitted activity (day cases + elective inpatients) from the scenario's finance
    section, which is where the model keeps it; (None, None) when the scenario has none."""
    path = "finance.activity_2019_20_per_week"
    finance = cfg.get("finance") if isinstance(cfg, Mapping) else None
    base = finance.get("activity_2019_20_per_week") if isinstance(finance, Mapping) else None
    if not isinstance(base, Mapping):
        return None, None
    admitted = sum(float(base.get(k, 0) or 0) for k in ("day_case", "elective_inpatient"))
    if admitted <= 0:
        return None, path
    return {"admitted": admitted, "label": "2019/20 baseline", "path": path}, path


def activity_baselines(run: RunFolder) -> tuple[dict[str, dict], list[str]]:
    """The 2019/20 baseline of each scenario that has one, and a note for each that states one unusable."""
    baselines: dict[str, dict] = {}
    notes: list[str] = []
    for name, info in run.scenarios.items():
        parsed, path = activity_baseline(info.config)
        if parsed:
            baselines[name] = parsed
        elif path:
            notes.append(f"{md_emphasis(info.title)} has `{path}` without day cases or inpatients, so no "
                         "baseline is drawn.")
    return baselines, notes


# ---------------------------------------------------------------------------------------------------------------
# Plain-English headlines
# ---------------------------------------------------------------------------------------------------------------


def clearance_sentence(info: ScenarioInfo, c: Clearance) -> str:
    t, n = c.threshold, c.n
    who = f"Under {md_emphasis(info.title)}"
    end = fmt_date(info.horizon_end)
    not_cleared = n - c.n_cleared
    if c.never_over:
        return f"{who}, nobody is waiting over {t} weeks at the end of any week of the run."
    if c.median is None:
        text = (f"{who}, the {t}-week backlog had not cleared by {end} (the end of the run) in "
                f"{not_cleared} of {n} replications")
        if c.n_cleared == 0 or c.earliest is None:
            return text + "."
        if c.n_cleared == 1 or c.earliest == c.latest:
            return text + f"; in the other {c.n_cleared} it cleared in the week of {fmt_date(c.earliest)}."
        return (text + f"; in the other {c.n_cleared} it cleared between the weeks of {fmt_date(c.earliest)} and "
                f"{fmt_date(c.latest)}.")
    text = (f"{who}, the last patient waiting over {t} weeks is treated in the week of {fmt_date(c.median)} "
            f"(median of {n} replication{'s' if n != 1 else ''})")
    if n == 1:
        return text + "; a single replication, so no spread is shown."
    if c.high is not None and c.low == c.high:
        return text + "; in 90% of replications that same week."
    if c.high is not None:
        return text + f"; in 90% of replications between {fmt_date(c.low)} and {fmt_date(c.high)}."
    return (text + f"; in 90% of replications no earlier than {fmt_date(c.low)}, and in {not_cleared} of {n} "
            f"replications the {t}-week backlog had not cleared by {end}, the end of the run.")


def comparison_sentence(run: RunFolder, d: PairedDifference) -> str:
    ref, s = run.scenarios[d.reference], run.scenarios[d.scenario]
    who = f"Compared with {md_emphasis(ref.title)}, {md_emphasis(s.title)}"
    if d.n_pairs == 0:
        return (f"{who}: no replication in which both cleared the {d.threshold}-week backlog within the run, so "
                "no paired difference can be given.")
    text = (f"{who} clears the {d.threshold}-week backlog {fmt_difference(d.p50)} (median of the paired "
            f"differences over {plural(d.n_pairs, 'replication')}")
    if d.n_pairs > 1 and fmt_difference(d.p05) == fmt_difference(d.p95):
        text += "; the same in 90% of replications"
    elif d.n_pairs > 1:
        text += f"; 90% of replications between {fmt_difference(d.p05)} and {fmt_difference(d.p95)}"
    text += ")"
    if d.n_excluded:
        text += (f"; {plural(d.n_excluded, 'replication')} in which one or both did not clear within the run "
                 "are left out")
    return text + "."


def headlines(run: RunFolder, clearances: list[Clearance], diffs: list[PairedDifference],
              baselines: dict[str, dict]) -> list[str]:
    lines = []
    for name, info in run.scenarios.items():
        for c in clearances:
            if c.scenario == name:
                lines.append(clearance_sentence(info, c))
        end = run.replications[run.replications["scenario"] == name]
        if "waiting_total_end" in end and end["waiting_total_end"].notna().any():
            v = end["waiting_total_end"].to_numpy(dtype=float)
            w0 = run.weekly[(run.weekly["scenario"] == name) & (run.weekly["week"] == run.weekly["week"].min())]
            start_list = w0["waiting_total_start"].median() if "waiting_total_start" in w0 else float("nan")
            text = (f"The waiting list for {md_emphasis(info.title)} stands at {fmt_int(percentile(v, 50))} "
                    f"pathways at the end of the run ({fmt_date(info.horizon_end)}, median")
            if len(v) > 1:
                text += f"; 90% of replications {fmt_int(percentile(v, 5))} to {fmt_int(percentile(v, 95))}"
            text += ")"
            if not math.isnan(start_list):
                text += f", against {fmt_int(start_list)} at the start"
            lines.append(text + ".")
        base = baselines.get(name)
        if base:
            w = run.weekly[run.weekly["scenario"] == name]
            per_rep = w.groupby("replication")[["clock_stops_admitted", "clock_stops_non_admitted"]].mean()
            parts = []
            for key, col, label in (("admitted", "clock_stops_admitted", "admitted"),
                                    ("non_admitted", "clock_stops_non_admitted", "non-admitted")):
                if base.get(key):
                    m = float(np.median(per_rep[col]))
                    parts.append(f"{fmt_int(m)} {label} clock stops a week ({fmt_pct(m / base[key], 0)} of the "
                                 f"2019/20 baseline of {fmt_int(base[key])})")
            if not parts and base.get("total"):
                m = float(np.median(per_rep.sum(axis=1)))
                parts.append(f"{fmt_int(m)} clock stops a week ({fmt_pct(m / base['total'], 0)} of the 2019/20 "
                             f"baseline of {fmt_int(base['total'])})")
            if parts:
                lines.append(f"On average over the run, {md_emphasis(info.title)} delivers "
                             + " and ".join(parts) + " (median replication).")
    for d in diffs:
        lines.append(comparison_sentence(run, d))
    ranged = intervals_in(run.manifest)
    if ranged:
        lines.append("The ranges include uncertainty in the inputs given as 80% ranges ("
                     + "; ".join(f"{md_emphasis(run.scenarios[n].title if n in run.scenarios else n)}: "
                                 f"{len(keys)} input{'s' if len(keys) != 1 else ''}" for n, keys in ranged.items())
                     + "), drawn once per replication, as well as run-to-run variation"
                     + ("; other scenarios' ranges show run-to-run variation only" if len(ranged) < len(run.scenarios)
                        else "") + " (see the method note).")
    else:
        lines.append("The ranges show run-to-run variation only: every input is fixed at the value the scenario "
                     "states (see the method note).")
    return lines


def comparison_frame(run: RunFolder, clearances: list[Clearance], diffs: list[PairedDifference]) -> pd.DataFrame:
    """One row per scenario: clearance weeks (median, p05, p95 as dates; blank = not cleared within the run),
    and the paired difference in weeks from the first scenario (blank for the first or a single scenario)."""
    rows = []
    for name, info in run.scenarios.items():
        row: dict[str, Any] = {"scenario": name, "title": info.title, "replications": info.replications,
                               "start_date": info.start, "end_of_run": info.horizon_end}
        for t in THRESHOLDS:
            c = next((c for c in clearances if c.scenario == name and c.threshold == t), None)
            d = next((d for d in diffs if d.scenario == name and d.threshold == t), None)
            row[f"cleared_{t}w_replications"] = c.n_cleared if c else None
            row[f"clear_{t}w_week_p50"] = c.median if c else None
            row[f"clear_{t}w_week_p05"] = c.low if c else None
            row[f"clear_{t}w_week_p95"] = c.high if c else None
            row[f"weeks_to_clear_{t}w_p50"] = c.p50 if c else None
            row[f"diff_{t}w_weeks_p50"] = d.p50 if d else None
            row[f"diff_{t}w_weeks_p05"] = d.p05 if d else None
            row[f"diff_{t}w_weeks_p95"] = d.p95 if d else None
            row[f"diff_{t}w_weeks_mean"] = d.mean if d else None
            row[f"diff_{t}w_pairs"] = d.n_pairs if d else None
        rows.append(row)
    return pd.DataFrame(rows)


def clearance_report_table(run: RunFolder, clearances: list[Clearance]) -> tuple[list[str], list[list[str]]]:
    multi = len(run.scenarios) > 1
    header = (["Scenario"] if multi else []) + ["Long wait", "Cleared within the run", "Week of clearance (median)",
                                                "90% of replications"]
    rows = []
    for c in clearances:
        info = run.scenarios[c.scenario]
        if c.never_over:
            med, rng = "none at any week's end", ""
        else:
            med = fmt_date(c.median) if c.median else f"not by {fmt_date(info.horizon_end)}"
            if c.n == 1:
                rng = "single replication"
            elif c.low is None:
                rng = f"not by {fmt_date(info.horizon_end)}"
            elif c.low == c.high:
                rng = f"{fmt_date(c.low)} (same week)"
            else:
                rng = f"{fmt_date(c.low)} to " + (fmt_date(c.high) if c.high
                                                  else f"beyond {fmt_date(info.horizon_end)}")
        rows.append(([md_text(info.title)] if multi else []) +
                    [f"over {c.threshold} weeks", f"{c.n_cleared} of {c.n} replications", med, rng])
    return header, rows


def difference_report_table(run: RunFolder, diffs: list[PairedDifference]) -> tuple[list[str], list[list[str]]]:
    header = ["Scenario", "Long wait", "Median difference", "90% of replications", "Replications compared"]
    rows = []
    for d in diffs:
        rows.append([md_text(run.scenarios[d.scenario].title), f"over {d.threshold} weeks",
                     fmt_difference(d.p50) if d.n_pairs else "",
                     (f"{fmt_difference(d.p05)} to {fmt_difference(d.p95)}"
                      if fmt_difference(d.p05) != fmt_difference(d.p95) else fmt_difference(d.p05))
                     if d.n_pairs > 1 else "",
                     f"{d.n_pairs} of {d.n_pairs + d.n_excluded}"])
    return header, rows


FINANCE_ROWS = [("net_position", "Elective net position", "money"),
                ("net_position_vs_reference", "Net position against the first scenario", "money"),
                ("income_erf", "Elective Recovery Fund income (the year's funding rule)", "money"),
                ("cost_total", "Total cost", "money"),
                ("cost_outpatient_followups", "Cost of outpatient follow-ups", "money"),
                ("cost_per_elective_case", "Cost per elective case", "pounds"),
                ("cases_per_session", "Cases per theatre session", "number"),
                ("activity_pct_of_2019_20", "Activity, % of 2019/20 (at tariff)", "number"),
                ("vwa_pct_of_2019_20", "Value-weighted activity, % of 2019/20 (what the year's rule counts)",
                 "number"),
                ("vwa_threshold_pct", "The year's funding threshold, % of 2019/20", "number"),
                ("cost_weighted_activity_growth_pct", "Cost-weighted activity growth on the year before, %", "change"),
                ("input_cost_growth_pct", "Input (cost) growth on the year before, %", "change"),
                ("productivity_growth_pct", "Productivity growth (activity growth less input growth), points",
                 "change")]


def _weeks_covered_row(table: pd.DataFrame, scenario: object, years: list[str]) -> list[str] | None:
    """"43 of 53 (part year)", "52 of 52": the weeks of each year the run covers, from the weeks_covered and
    weeks_in_financial_year metrics (the same in every replication); None for a table without them (older runs)."""
    def values(metric: str) -> pd.Series | None:
        hit = table[(table["scenario"] == scenario) & (table["metric"] == metric) & (table["statistic"] == "p50")]
        return None if hit.empty else hit.iloc[0]
    covered, whole = values("weeks_covered"), values("weeks_in_financial_year")
    if covered is None or whole is None:
        return None
    cells = []
    for y in years:
        n, of = covered[y], whole[y]
        if not (np.isfinite(n) and np.isfinite(of)):
            cells.append("–")
            continue
        cells.append(f"{n:,.0f} of {of:,.0f}" + (" (part year)" if n < of else ""))
    return ["Weeks covered", *cells]


LINE_NAMES = {"outpatient_first": "first attendances", "outpatient_followup": "follow-ups", "day_case": "day cases",
              "elective_inpatient": "inpatients"}
FUNDING_RULE_HEADER = ["Year", "Threshold, % of 2019/20", "Paid above it", "Recovered below it", "Paid up front",
                       "Activity counted"]


def _share(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def funding_rule_rows(cfg: Mapping) -> list[list[str]]:
    """One row per financial year of the scenario's `finance.funding_rules` (as the saved scenario states them):
    the threshold and how it is judged, what is paid above it and recovered below it, what is paid up front and which
    activity lines count (a part weight shown as ×0.5). [] without rules."""
    finance = cfg.get("finance") if isinstance(cfg, Mapping) else None
    rules = finance.get("funding_rules") if isinstance(finance, Mapping) else None
    if not isinstance(rules, Mapping):
        return []
    rows = []
    for year, rule in rules.items():
        if not isinstance(rule, Mapping):
            continue
        monthly = [_share(t.get("share_of_2019_20")) for t in rule.get("monthly_thresholds") or []
                   if isinstance(t, Mapping)]
        shares = [x for x in monthly if x is not None]
        if shares:
            low, high = min(shares), max(shares)
            threshold = (fmt_pct(low, 0) if low == high else f"{fmt_pct(low, 0)} to {fmt_pct(high, 0)}") + ", by month"
        else:
            threshold = (fmt_pct(_share(rule.get("threshold_share_of_2019_20")), 0) or "–") + ", on the year"
        above = f"{fmt_pct(_share(rule.get('rate_above_threshold')), 0)} of tariff"
        below_rate = _share(rule.get("rate_below_threshold")) or 0.0
        cap = _share(rule.get("max_clawback_share_of_allocation"))
        below = "nothing" if below_rate == 0 else (f"{fmt_pct(below_rate, 0)} of tariff"
                                                   + (f", at most {fmt_pct(cap, 0)} of the up-front" if cap else ""))
        upfront = _share(rule.get("allocation_share_of_2019_20")) or 0.0
        stated = rule.get("activity_weights")
        weights: Mapping = stated if isinstance(stated, Mapping) else {}
        counted = []
        for line, name in LINE_NAMES.items():
            w = _share(weights.get(line)) or 0.0
            if w > 0:
                counted.append(name if w == 1 else f"{name} ×{fmt_num(w, 2)}")
        rows.append([md_text(str(year)), threshold, above, below,
                     "nothing" if upfront == 0 else f"{fmt_pct(upfront, 0)} of 2019/20", ", ".join(counted) or "none"])
    return rows


def finance_blocks(run: RunFolder) -> list[Block]:
    """Finance by NHS financial year from finance_by_year.csv: medians, with the range holding 90% of
    replications in brackets (money in £ million to one decimal, cost per case to the nearest £10), the weeks of
    each year the run covers, value-weighted activity against each year's funding threshold, and productivity."""
    table = run.table(FINANCE_BY_YEAR_CSV)          # read and checked by load_run
    if table is None:
        return []
    years = [c for c in table.columns if re.fullmatch(r"\d{4}/\d{2}", str(c))]
    blocks: list[Block] = [
        Heading("Finance"),
        Paragraph(f"Priced from the same simulated activity ({FINANCE_MONTHLY_CSV}). Median of the "
                         "replications, with the range holding 90% of them in brackets; NHS financial years April "
                         "to March, the weeks of each that the run covers stated (a part year is not scaled up). "
                         "Theatre teams are paid for every planned session, so sessions lost cost money without "
                         "activity."),
        Paragraph(f"Elective funding follows each year's rule in the scenario ({md_code('finance.funding_rules')}): "
                  "value-weighted activity (the activity lines the rule counts, at tariff) against the threshold "
                  "share of the same lines' 2019/20 value, judged month by month in 2021/22 and on the year after. "
                  "Productivity is measured as NHS England does: growth in cost-weighted activity less growth in "
                  "inputs (costs at constant prices), per week covered, against the year before.")]
    for scenario in dict.fromkeys(table["scenario"]):
        info = run.scenarios.get(str(scenario))
        rows = []
        weeks = _weeks_covered_row(table, scenario, years)
        if weeks is not None:
            rows.append(weeks)
        for metric, label, kind in FINANCE_ROWS:
            sub = table[(table["scenario"] == scenario) & (table["metric"] == metric)].set_index("statistic")
            if sub.empty or ("p50" not in sub.index):
                continue
            cells = []
            for y in years:
                mid, lo, hi = (sub.loc[s, y] if s in sub.index else np.nan for s in ("p50", "p05", "p95"))
                text = money(mid, kind)
                low, high = money(lo, kind), money(hi, kind)
                if low != high:
                    text += f" ({low} to {high})"
                cells.append(text)
            rows.append([label, *cells])
        if rows:
            blocks.append(Paragraph(md_emphasis(info.title if info else scenario)))
            blocks.append(Table(["", *years], rows))
    rule_sets: dict[str, tuple[list[str], list[list[str]]]] = {}       # one table per distinct set of rules
    for scenario in dict.fromkeys(table["scenario"]):
        info = run.scenarios.get(str(scenario))
        rules = funding_rule_rows(info.config) if info else []
        if rules:
            titles, _ = rule_sets.setdefault(repr(rules), ([], rules))
            titles.append(md_emphasis(info.title if info else str(scenario)))
    for titles, rules in rule_sets.values():
        blocks.append(Paragraph(f"Funding rules of {', '.join(titles)}, from the scenario (each rule's source is "
                                "beside it in the scenario file):"))
        blocks.append(Table(FUNDING_RULE_HEADER, rules))
    return blocks


RANGES_LEAD = "**What the ranges mean.**"      # the method paragraph that is the board paper's uncertainty


def method_paragraphs(run: RunFolder) -> list[str]:
    m = run.manifest
    n = sorted({i.replications for i in run.scenarios.values()})
    n_text = " or ".join(str(x) for x in n)
    seed = m.get("seed", next(iter(run.scenarios.values())).config.get("run", {}).get("seed", "not recorded"))
    paras = [
        f"**Replications and seeds.** Each scenario was run {n_text} times (replications) with experiment seed "
        f"{seed}. Every random input has its own stream, keyed by the seed, the replication number and the input, "
        "and every attribute of a referral is drawn when the referral is made. So replication *r* of every scenario "
        "sees the same referrals and the same patients (common random numbers): differences between scenarios "
        "within a replication come from the change made, not from chance in who was referred.",
        f"{RANGES_LEAD} Lines are the median replication. Shaded bands and interval lines show the "
        "range holding 90% of replications (5th to 95th percentile across replications, linear interpolation). "
        + _uncertainty_text(m)
        + (f" With only {n_text} replications the 5th and 95th percentiles are close to the extremes and rough."
           if max(n) < 20 else ""),
        "**Week of clearance.** `weeks_to_clear` *w* means the number waiting over the threshold is zero at the "
        "end of week *w*−1 (weeks numbered from 0, Monday to Sunday, from the start date) and at the end of every "
        "later week. The last long waiter therefore leaves the list during week *w*−1, whose Monday is "
        "start date + 7 × (*w*−1) days; \"the week of\" gives that Monday. \"Treated\" in the headlines means "
        "leaving the list, which also includes removal after validation. A replication in which long waiters remain "
        "at the end of the last week has no clearance date: it is reported as not cleared by the end of the run, "
        "and percentiles treat it as later than any date. Where a percentile falls between two replications it is "
        "rounded to a whole week: the median to the nearest week, the 5th percentile down and the 95th up, so "
        "the dates never narrow the interval.",
    ]
    if len(run.scenarios) > 1:
        paras.append("**Paired differences.** For each replication, the scenario's weeks to clear minus those of the "
                     f"first scenario ({md_emphasis(run.scenarios[run.names[0]].title)}) in the same replication "
                     "— the same patients, under common random numbers — then the median and the 5th and 95th "
                     "percentiles of these differences. Negative means sooner. Replications are matched by number, "
                     "which pairs the same patients only when every scenario was run with the same seed. "
                     "Replications in which either scenario did not clear within the run are left out and counted.")
    paras.append(
        "**Limits.** The results are what the model implies under the stated assumptions, not a forecast. The "
        "decision to treat is made at the first outpatient appointment (follow-ups and diagnostics in between are "
        "not modelled); a did-not-attend keeps the patient's place and clock; theatre lists book strictly in list "
        "order; start-list patients already on the admitted list take their clock start as their decision-to-treat "
        "date; emergency pressures act only through the scenario's capacity and cancellation inputs. "
        + ("The intervals show chance variation only." if not intervals_in(m) else
           "The intervals show chance variation and the stated input ranges, not other input uncertainty."))
    return paras


def intervals_in(manifest: dict) -> dict[str, dict[str, list[float]]]:
    """Per scenario, the inputs given as 80% intervals and drawn per replication (empty when none or fixed)."""
    if manifest.get("parameters_fixed_at_midpoints"):
        return {}
    return {name: keys for name, keys in (manifest.get("parameter_intervals") or {}).items() if keys}


def _uncertainty_text(manifest: dict) -> str:
    """Which kind of uncertainty the ranges show: run-to-run only, or run-to-run plus stated input ranges."""
    intervals = intervals_in(manifest)
    if not intervals:
        fixed = (" Inputs given as [low, high] ranges were fixed at their midpoints for this run."
                 if manifest.get("parameters_fixed_at_midpoints") else "")
        return ("That is run-to-run variability of the outcome under the scenario's assumptions: it is **not** a "
                "confidence interval of the mean, and it does not include uncertainty in the assumptions themselves "
                "(demand, capacity, productivity), which is usually larger." + fixed)
    listed = "; ".join(f"{md_emphasis(name)}: "
                       + ", ".join(f"{md_code(k)} {lo:g} to {hi:g}" for k, (lo, hi) in keys.items())
                       for name, keys in intervals.items())
    return ("That is run-to-run variability **and** uncertainty in the inputs the scenario gives as 80% ranges "
            f"({listed}). Each such input is drawn once per replication from a normal distribution whose 10th and "
            "90th percentiles are the range's ends (cut to the input's allowed values, which moves the "
            "percentiles slightly where a range nears a limit such as 0 or 1), with a random stream "
            "of its own, so replication *r* of every scenario uses the same percentile of each range. The values "
            f"drawn are in {PARAMETERS_CSV}. The ranges are **not** confidence intervals of the mean, and they leave "
            "out uncertainty in every input stated as a single value. Run with `--fix-parameters` to see the "
            "run-to-run part alone.")


def build_documents(run: RunFolder, clearances: list[Clearance], diffs: list[PairedDifference],
                    baselines: dict[str, dict], baseline_notes: list[str], figures: Mapping[str, Figure],
                    assumptions: pd.DataFrame, provenance: list[tuple[str, str]],
                    against_published: list[PublishedFit]) -> Document:
    """The whole report in reading order; `figures` are the charts drawn, by stem (a missing one is left out);
    `against_published` the run's months beside the published ones (sim.outputs.report.published)."""
    infos = list(run.scenarios.values())
    if len(infos) == 1:
        title = f"{infos[0].title}: elective recovery simulation"
    else:
        title = f"Elective recovery simulation: {len(infos)} scenarios compared"
    first = infos[0]
    n_reps = max(i.replications for i in infos)
    subtitle = (f"North West London capacity simulator · {fmt_date(first.start)} to "
                f"{fmt_date(max(i.horizon_end for i in infos))} · {plural(n_reps, 'replication')} · run "
                f"{md_text(run.label or run.path.name)}")
    facts = summary_facts(run, clearances, diffs)
    blocks: list[Block] = [Heading("Summary", role="summary"), summary_table(run, facts),
                           Paragraph(summary_note(run, facts), role="summary"),
                           Bullets(board_headlines(run, facts), style="headlines", role="headlines")]
    for info in run.scenarios.values():
        desc = info.config.get("description")
        if desc:
            blocks.append(Paragraph(f"{md_emphasis(info.title)}: {md_text(str(desc).strip())}", role="scenarios"))
    blocks += [Heading("Findings in detail"), Bullets(headlines(run, clearances, diffs, baselines))]

    def chart(stem: str) -> None:
        if stem in figures:
            blocks.append(figures[stem])

    blocks.append(Heading("Long waits"))
    chart("waiting_over_52w")
    chart("clearance_dates")
    if clearances:
        blocks.append(Table(*clearance_report_table(run, clearances)))
    if diffs:
        blocks.append(Heading("Scenarios compared"))
        blocks.append(Paragraph("Paired differences in the week of clearance from "
                                f"{md_emphasis(run.scenarios[run.names[0]].title)}, replication by replication "
                                "(negative = sooner)."))
        blocks.append(Table(*difference_report_table(run, diffs)))
    blocks.append(Heading("Waiting list"))
    chart("waiting_list")
    blocks.extend(published_blocks(run, against_published))
    blocks.append(Heading("Activity and capacity"))
    chart("activity")
    for note in baseline_notes:
        blocks.append(Paragraph(note))
    lost = _sessions_lost_sentence(run)
    if lost:
        blocks.append(Paragraph(lost))
    follow_ups = _follow_ups_sentence(run)
    if follow_ups:
        blocks.append(Paragraph(follow_ups))
    chart("sessions_lost")
    if "vaccinations" in figures or "covid_inpatients" in figures:
        blocks.append(Heading("COVID-19 and vaccination"))
        chart("vaccinations")
        chart("covid_inpatients")
    blocks.extend(provider_blocks(run, dict(figures)))
    blocks.extend(finance_blocks(run))
    blocks.append(Heading("Assumptions"))
    key_header, key_rows = key_assumptions(run)
    if key_rows:
        blocks.append(Paragraph("Key assumptions, with where each number comes from as the scenario files say "
                                f"({SOURCE_TAGS}).", role="key_assumptions"))
        blocks.append(Table([md_text(h) for h in key_header], [[md_text(c) for c in row] for row in key_rows],
                            style="kv", role="key_assumptions"))
    blocks.append(Paragraph(f"From the resolved scenario ({SCENARIO_YAML} in the run folder: inheritance and "
                            "`--set` overrides applied)."))
    blocks.append(Table([md_text(c) for c in assumptions.columns],
                        [[md_text(v) for v in row] for row in assumptions.itertuples(index=False)], style="kv"))
    blocks.append(Heading("Method"))
    for p in method_paragraphs(run):
        blocks.append(Paragraph(p, role="uncertainty" if p.startswith(RANGES_LEAD) else "method"))
    blocks.append(Heading("Provenance"))
    blocks.append(Table(["Item", "Value"], [[md_text(k), md_text(v)] for k, v in provenance], style="kv"))
    return Document(title, subtitle, blocks, purpose=purpose_text(run))


def purpose_text(run: RunFolder) -> str:
    """What the paper is for: the board paper's first section (recommendations are the author's to write)."""
    n = len(run.scenarios)
    targets = sorted({t for (_, t) in target_chances(run)})
    what = ("the chance of meeting the " + " and ".join(f"{t}-week" for t in targets) + " target date"
            + ("s" if len(targets) > 1 else "") + ", ") if targets else ""
    return (f"To show, for {'one scenario' if n == 1 else f'{n} scenarios'}, when nobody will be waiting over 52, 78 "
            f"and 104 weeks for planned care in North West London, {what}the size of the waiting list and the "
            "elective financial position, as simulated from the assumptions stated below. The figures are what "
            "the model implies under those assumptions, not a forecast.")


def _sessions_lost_sentence(run: RunFolder) -> str | None:
    w = run.weekly
    if "theatre_sessions_lost" not in w or "theatre_sessions_planned" not in w:
        return None
    parts = []
    for name, info in run.scenarios.items():
        g = w[w["scenario"] == name]
        lost = g.groupby("replication")["theatre_sessions_lost"].mean().mean()
        planned = g.groupby("replication")["theatre_sessions_planned"].mean().mean()
        if planned > 0:
            parts.append(f"{md_emphasis(info.title)} loses {fmt_num(lost, 0)} theatre sessions a week on average "
                         f"({fmt_pct(lost / planned)} of {fmt_int(planned)} planned)")
    return ("; ".join(parts) + ".") if parts else None


def _follow_ups_sentence(run: RunFolder) -> str | None:
    """Outpatient follow-ups beside first appointments, a scenario at a time (scenarios modelling follow-ups):
    weekly means over the run and replications, the follow-up backlog at the end (median replication), and what
    patient-initiated follow-up moved and avoided."""
    w = run.weekly
    needed = ("outpatient_followup_attendances", "outpatient_attendances", "outpatient_followups_waiting")
    if any(c not in w for c in needed):
        return None
    parts = []
    for name, info in run.scenarios.items():
        g = w[w["scenario"] == name]
        if g.empty or g["outpatient_followup_attendances"].isna().all():
            continue
        firsts = g.groupby("replication")["outpatient_attendances"].mean().mean()
        follow = g.groupby("replication")["outpatient_followup_attendances"].mean().mean()
        backlog = g.sort_values("week").groupby("replication")["outpatient_followups_waiting"].last().median()
        text = (f"{md_emphasis(info.title)} sees {fmt_int(firsts)} first appointments and {fmt_int(follow)} "
                f"follow-ups a week on average ({fmt_num(follow / firsts, 2) if firsts else '–'} a first); "
                f"{fmt_int(backlog)} follow-ups are overdue at the end")
        offered = g["pifu_followups_offered"].sum() if "pifu_followups_offered" in g else 0
        if offered:
            reps = g["replication"].nunique()
            avoided = (offered - g["pifu_followups_requested"].sum()) / reps
            text += (f"; patient-initiated follow-up takes {fmt_int(offered / reps)} follow-ups off the books, of "
                     f"which {fmt_int(avoided)} never happen")
        parts.append(text)
    return ("Outpatients: " + "; ".join(parts) + ".") if parts else None
