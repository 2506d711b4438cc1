"""`solve`'s outputs besides its table and chart: the cost of the solved capacity and the short report.

The cost is the finance of the solved scenario against the starting one (sim.outputs.finance), replication by
replication (the same replications, so the same patients), by NHS financial year over the weeks the evaluations
ran: from the start to the target's date. The difference in cost is what the extra capacity costs, with the
activity it does (more cases also cost their non-theatre care and bed days); the difference in income and net
position is shown beside it.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiment.solver import SolveResult, SteadyState
from sim.outputs import finance
from sim.outputs.analysis import percentile
from sim.outputs.report.workbook import write_sheets
from sim.outputs.safe_text import md_code, md_text
from sim.scenario.schema import Finance

FINANCE_METRICS = ["cost_total", "cost_theatre_staff", "cost_theatre_fixed", "cost_outpatients",
                   "cost_outpatient_followups", "cost_cases_non_theatre", "cost_bed_days", "cost_independent_sector",
                   "income_total", "net_position", "theatre_sessions_planned", "theatre_cases",
                   "outpatient_first_face_to_face", "outpatient_first_virtual", "outpatient_followup_face_to_face",
                   "outpatient_followup_virtual"]


def cost_of_change(starting: pd.DataFrame, solved: pd.DataFrame, prices: Finance) -> pd.DataFrame:
    """solve_finance.csv: per financial year (and `all` for the whole period) and metric, the starting and solved
    scenarios' means over replications and the paired difference (solved - starting: mean, 5th and 95th
    percentiles across replications)."""
    weekly = pd.concat([starting.assign(scenario="starting"), solved.assign(scenario="solved")], ignore_index=True)
    months = finance.monthly(weekly, {"starting": prices, "solved": prices})
    metrics = [m for m in FINANCE_METRICS if m in months]
    by_year = months.groupby(["scenario", "replication", "financial_year"], sort=False)[metrics].sum().reset_index()
    whole = months.groupby(["scenario", "replication"], sort=False)[metrics].sum().reset_index()
    whole["financial_year"] = "all"
    sums = pd.concat([by_year, whole], ignore_index=True)
    rows = []
    for year, g in sums.groupby("financial_year", sort=False):
        a = g[g["scenario"] == "starting"].set_index("replication")
        b = g[g["scenario"] == "solved"].set_index("replication")
        for m in metrics:
            diff = (b[m] - a[m]).dropna().to_numpy(dtype=float)
            rows.append({"financial_year": year, "metric": m, "starting_mean": round(float(a[m].mean()), 2),
                         "solved_mean": round(float(b[m].mean()), 2),
                         "difference_mean": round(float(diff.mean()), 2) if len(diff) else np.nan,
                         "difference_p05": round(percentile(diff, 5), 2),
                         "difference_p95": round(percentile(diff, 95), 2),
                         "replications": int(len(diff))})
    return pd.DataFrame(rows)


def _pounds(x: float) -> str:
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 1e6:
        return f"{sign}£{x / 1e6:,.1f} million"
    return f"{sign}£{x:,.0f}"


def amount(value: float, unit: str) -> str:
    """A lever value with its unit: "19% more ..." for a percent, "105 extra ..." otherwise."""
    return f"{value:,.6g}{unit}" if unit.startswith("%") else f"{value:,.6g} {unit}"


def _date(d: dt.date) -> str:
    return f"{d.day} {d:%B %Y}"


def cost_phrase(cost: pd.DataFrame | None) -> str:
    """", costing £X more over ... (£a in 2021/22, ...)" from solve_finance.csv, or "" without finance."""
    if cost is None or cost.empty:
        return ""
    total = cost[(cost["metric"] == "cost_total")]
    whole = float(total[total["financial_year"] == "all"]["difference_mean"].iloc[0])
    years = total[total["financial_year"] != "all"]
    parts = ", ".join(f"{_pounds(r.difference_mean)} in {r.financial_year}" for r in years.itertuples())
    more = "more" if whole >= 0 else "less"
    return f", costing {_pounds(abs(whole))} {more} to the date" + (f" ({parts})" if len(years) > 1 else "")


def answer_sentence(result: SolveResult, cost: pd.DataFrame | None, title: str) -> str:
    """The one-sentence answer: what it would take and what it costs; or that it is not reachable."""
    p, lever = result.problem, result.problem.lever
    target = p.target.describe()
    confidence = f"in at least {p.confidence:.0%} of {p.replications} replications"
    where = "".join(f" at {x}" for x in (p.site, p.specialty) if x)
    if result.answer is None:
        best = result.best
        return (f"Not reachable within [{p.low:,.6g}, {p.high:,.6g}] {lever.unit}{where}: for {title}, at most "
                f"{best.share:.0%} of {p.replications} replications had {target} (at {best.value:,.6g}), short of "
                f"{p.confidence:.0%}.")
    if result.answer == p.neutral:
        return f"{title} already has {target} {confidence}: no change to {lever.name} is needed."
    precision = f"to within {lever.step:g}"
    if lever.name in ("hub_productivity", "advice_and_guidance_share"):
        what = f"{lever.name} = {result.answer:,.6g} ({lever.unit}; now {p.neutral:,.6g}, {precision})"
    else:
        what = f"{amount(result.answer, lever.unit)} ({precision})"
    return f"To have {target} {confidence}, {title} would need {what}{where}{cost_phrase(cost)}."


def solve_markdown(result: SolveResult, cost: pd.DataFrame | None, title: str, steady: SteadyState | None,
                   command: str) -> str:
    """solve.md: the answer, how it was found, and what the lever does."""
    p, lever = result.problem, result.problem.lever
    lines = [f"# What would it take? {md_text(title)}", "", "## What it would take", "",
             md_text(answer_sentence(result, cost, title)), ""]
    start = result.starting
    lines.append(md_text(f"As the scenario stands ({lever.name} = {p.neutral:,.6g}), {start.share:.0%} of "
                         f"replications meet it."))
    lines.append("")
    if not result.monotone:
        drops = "; ".join(f"{a:,.6g} gave {sa:.0%} but {b:,.6g} gave {sb:.0%}" for a, sa, b, sb in result.drops)
        lines += [md_text(f"Not monotone: more of the lever gave fewer replications meeting the target ({drops}). "
                          "With the same replications at every value this is the model's doing, not noise; the "
                          "answer is the value the bisection settled on, and a smaller one may also meet it."), ""]
    lines += ["## How it was found", ""]
    fluid = ("could not place it within the range" if result.fluid_value is None
             else f"put it at {result.fluid_value:,.6g}")
    lines.append(md_text(
        f"Lever {lever.name}: {lever.description}. Searched over [{p.low:,.6g}, {p.high:,.6g}] in steps of "
        f"{lever.step:g}. Target: {p.target.describe()} (at the end of the last model week ending on or before "
        f"{p.target.by.isoformat()}). Each evaluation ran the same {p.replications} replications from seed {p.seed} "
        f"(common random numbers) to that week. The fluid estimate (backlog over the threshold / weeks to the date "
        f"+ demand - capacity) {fluid}; the search then doubled from it to bracket the answer and bisected to one "
        f"step. {len(result.evaluations)} evaluations."))
    lines.append("")
    if steady is not None:
        lines.append(md_text(steady_sentence(steady, p.lever.unit, p.low, p.high)))
        lines.append("")
    lines += ["| evaluation | value | replications meeting the target | median date the target held from |",
              "|---:|---:|---:|---|"]
    for e in result.evaluations:
        date = e.median_kpi_date
        lines.append(f"| {e.order} | {e.value:,.6g} | {sum(e.met)} of {e.replications} ({e.share:.0%}) | "
                     f"{date.isoformat() if date else 'not by ' + p.target.by.isoformat()} |")
    lines += ["", "## Files", "",
              "- `solve.csv`: every evaluation (lever value, share meeting the target, median date, replications).",
              "- `solved_scenario.yaml`: the scenario with the answer applied, for `python run_sim.py run`.",
              "- `solve.png`, `solve.svg`: share meeting the target against the lever.",
              "- `solve_finance.csv`: finance by financial year, solved against starting, to the target's date.",
              "", f"Command: {md_code(command)}", ""]
    return "\n".join(lines)


def steady_sentence(steady: SteadyState, unit: str, low: float, high: float) -> str:
    """The steady state in one sentence (fluid balance, no simulation)."""
    if steady.value is None:
        return (f"Steady state (fluid balance): the list still grows by {steady.growth_at_max:,.0f} pathways a week "
                f"at {amount(high, unit)}: not reachable within [{low:,.6g}, {high:,.6g}].")
    return (f"Steady state (fluid balance, no simulation): the list stops growing at {amount(steady.value, unit)}; "
            f"as the scenario stands it grows by {steady.growth_at_start:,.0f} pathways a week.")


def what_it_would_take(result: SolveResult, cost: pd.DataFrame | None, title: str, steady: SteadyState | None,
                       command: str) -> list[str]:
    """The "What it would take" section as plain sentences: the answer with its cost, where the scenario stands,
    a drop in share if there was one, the steady state, and the command that reproduces it."""
    p, lever = result.problem, result.problem.lever
    lines = [answer_sentence(result, cost, title),
             f"As the scenario stands ({lever.name} = {p.neutral:,.6g}), {result.starting.share:.0%} of the "
             f"{p.replications} replications meet it."]
    if not result.monotone:
        lines.append("Not monotone: " + "; ".join(f"{a:,.6g} gave {sa:.0%} but {b:,.6g} gave {sb:.0%}"
                                                   for a, sa, b, sb in result.drops))
    if steady is not None:
        lines.append(steady_sentence(steady, lever.unit, p.low, p.high))
    n = len(result.evaluations)
    lines.append(f"Found by {n} evaluation{'' if n == 1 else 's'} of the same replications (seed {p.seed}); "
                 f"the lever: {lever.description}.")
    lines.append(f"Command: {command}")
    return lines


def write_solve_workbook(path: Path, result: SolveResult, table: pd.DataFrame, cost: pd.DataFrame | None,
                         title: str, steady: SteadyState | None, command: str) -> None:
    """solve.xlsx: "What it would take" first (the same sentences as solve.md), then every evaluation (solve.csv)
    and, with a finance section, the cost by financial year (solve_finance.csv); every string written as text."""
    section = pd.DataFrame({"What it would take": what_it_would_take(result, cost, title, steady, command)})
    sheets = [("what_it_would_take", section, "A2"), ("evaluations", table, "B2")]
    if cost is not None:
        sheets.append(("cost", cost, "C2"))
    write_sheets(path, sheets)
