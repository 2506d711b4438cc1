"""The table every report opens with, a row per scenario, and the at most three headline sentences under it.

The table (`summary_table`): the weeks from which nobody waits over 52, 78 and 104 weeks (median and the range
holding 90% of replications), the chance of meeting each target date the scenario sets, the list at the 52-week
target date and at the end of the run, the net financial position by NHS financial year, and, when scenarios are
compared, the median paired difference from the first (reference) scenario. Every number comes from the run
folder's files: clearance weeks and the list at the end as summary.csv gives them (the same percentiles,
sim.outputs.analysis), target chances from summary.csv's `probability_*` rows, the list at the target date from
weekly.csv, and money from finance_by_year.csv. Each cell is text formatted once (sim.outputs.report.format), and
the same text is what report.md, report.html, report.docx and results.xlsx's Summary sheet show.

The headlines (`board_headlines`) are chosen by what differs most between the scenarios, each difference measured
against the size of the thing that differs (weeks of clearance against the reference's weeks to clear, a chance in
points, the list against the reference's list, money against the year's cost); a difference that the table's
rounding does not show is not a headline. With one scenario: its 52-week date, its chance of meeting the target
and its list.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.analysis import percentile
from sim.outputs.report.documents import Table, plain_text
from sim.outputs.report.format import fmt_date, fmt_date_range, fmt_difference, fmt_int, fmt_millions, fmt_pct
from sim.outputs.report.providers import target_week
from sim.outputs.report.published import published_list_on
from sim.outputs.run_folder import FINANCE_BY_YEAR_CSV
from sim.outputs.run_reader import RunFolder, ScenarioInfo
from sim.outputs.safe_text import md_emphasis, md_text

if TYPE_CHECKING:
    from sim.outputs.report.content import Clearance, PairedDifference

_TARGET_METRIC = re.compile(r"probability_no_(\d+)w_waiters_by_(\d{4}-\d{2}-\d{2})")
REFERENCE = "reference"


def clearance_cell(c: Clearance | None, info: ScenarioInfo) -> str:
    """"1 Aug 2022 (11 Jul to 29 Aug 2022)": the week from which nobody waits over the threshold, median and
    the range holding 90% of replications; "not by <end>" when the median replication does not clear."""
    end = fmt_date(info.horizon_end)
    if c is None:
        return "–"
    if c.never_over:
        return "none at any week's end"
    if c.median is None:
        return f"not by {end}" + (f" ({c.n_cleared} of {c.n} cleared)" if c.n_cleared else "")
    if c.n == 1:
        return fmt_date(c.median)
    if c.high is None:
        return f"{fmt_date(c.median)} ({fmt_date(c.low)} to after {end})"
    return f"{fmt_date(c.median)} ({fmt_date_range(c.low, c.high)})"


def target_chances(run: RunFolder) -> dict[tuple[str, int], tuple[dt.date, float]]:
    """(scenario, threshold) -> (target date, share of replications meeting it) from summary.csv (NaN: the run
    ends before the date)."""
    out: dict[tuple[str, int], tuple[dt.date, float]] = {}
    s = run.summary
    if s is None or "metric" not in s:
        return out
    for row in s.itertuples(index=False):
        m = _TARGET_METRIC.fullmatch(str(row.metric))
        if m:
            out[(str(row.scenario), int(m.group(1)))] = (dt.date.fromisoformat(m.group(2)), float(row.mean))
    return out


def _summary_value(run: RunFolder, scenario: str, metric: str, statistic: str) -> float:
    s = run.summary
    if s is None or "metric" not in s or statistic not in s:
        return math.nan
    hit = s[(s["scenario"] == scenario) & (s["metric"] == metric)]
    return float(hit[statistic].iloc[0]) if len(hit) else math.nan


def list_at_end(run: RunFolder, scenario: str) -> float:
    """The list at the end of the run, median of replications: summary.csv's waiting_total_end p50."""
    value = _summary_value(run, scenario, "waiting_total_end", "p50")
    if math.isnan(value) and "waiting_total_end" in run.replications:
        reps = run.replications[run.replications["scenario"] == scenario]
        value = percentile(reps["waiting_total_end"].to_numpy(dtype=float), 50)
    return value


def list_at_target(run: RunFolder, scenario: str) -> tuple[dt.date | None, float]:
    """The list at the end of the last week ending on or before the 52-week target date (the week the target
    chance is judged at), median of replications, from weekly.csv; (None, NaN) without a target in the run."""
    info = run.scenarios[scenario]
    date, week = target_week(info)
    if date is None or week is None or "waiting_total" not in run.weekly:
        return date, math.nan
    w = run.weekly
    values = w[(w["scenario"] == scenario) & (w["week"] == week)]["waiting_total"].to_numpy(dtype=float)
    return date, percentile(values, 50) if len(values) else math.nan


def net_positions(run: RunFolder) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Financial years, and per scenario the median net position (£) of each, from finance_by_year.csv."""
    table = run.table(FINANCE_BY_YEAR_CSV)
    if table is None:
        return [], {}
    years = [c for c in table.columns if re.fullmatch(r"\d{4}/\d{2}", str(c))]
    rows = table[(table["metric"] == "net_position") & (table["statistic"] == "p50")]
    out = {str(r["scenario"]): {str(y): float(r[y]) for y in years} for _, r in rows.iterrows()}
    return [str(y) for y in years], out


def _year_costs(run: RunFolder, scenario: str) -> dict[str, float]:
    table = run.table(FINANCE_BY_YEAR_CSV)
    if table is None:
        return {}
    hit = table[(table["scenario"] == scenario) & (table["metric"] == "cost_total") & (table["statistic"] == "p50")]
    if hit.empty:
        return {}
    return {str(c): float(hit[c].iloc[0]) for c in table.columns if re.fullmatch(r"\d{4}/\d{2}", str(c))}


def paired_list_difference(run: RunFolder, scenario: str, reference: str) -> float:
    """Median over replications of (list at the end in `scenario` − in `reference`), matched by replication."""
    reps = run.replications
    if "waiting_total_end" not in reps:
        return math.nan
    a = reps[reps["scenario"] == scenario].set_index("replication")["waiting_total_end"]
    b = reps[reps["scenario"] == reference].set_index("replication")["waiting_total_end"]
    d = (a - b).dropna()
    return float(np.median(d)) if len(d) else math.nan


def fmt_signed_int(x: float) -> str:
    """+1,234 / −1,234 / 0: a difference in a count."""
    if math.isnan(x):
        return "–"
    text = fmt_int(abs(x))
    return "0" if text == "0" else ("+" if x > 0 else "−") + text


def _common(values: list[dt.date | None]) -> dt.date | None:
    known = set(values)
    return values[0] if len(known) == 1 else None


@dataclass
class SummaryFacts:
    """What the summary table and the headlines are made from, per scenario (medians unless said)."""

    clearances: dict[tuple[str, int], Clearance]
    chances: dict[tuple[str, int], tuple[dt.date, float]]
    at_target: dict[str, tuple[dt.date | None, float]]
    at_end: dict[str, float]
    years: list[str]
    net: dict[str, dict[str, float]]
    diffs: dict[tuple[str, int], PairedDifference]
    list_diffs: dict[str, float]


def summary_facts(run: RunFolder, clearances: list[Clearance], diffs: list[PairedDifference]) -> SummaryFacts:
    years, net = net_positions(run)
    reference = run.names[0]
    return SummaryFacts(
        clearances={(c.scenario, c.threshold): c for c in clearances},
        chances=target_chances(run),
        at_target={name: list_at_target(run, name) for name in run.names},
        at_end={name: list_at_end(run, name) for name in run.names},
        years=years, net=net,
        diffs={(d.scenario, d.threshold): d for d in diffs},
        list_diffs={name: paired_list_difference(run, name, reference) for name in run.names[1:]})


def summary_table(run: RunFolder, facts: SummaryFacts) -> Table:
    """The report's first table: a row per scenario (see the module's docstring)."""
    names = run.names
    infos = [run.scenarios[n] for n in names]
    thresholds = [t for t in THRESHOLDS if any((n, t) in facts.clearances for n in names)]
    header = ["Scenario"] + [f"Nobody over {t} weeks from" for t in thresholds]
    targets = [t for t in THRESHOLDS if any((n, t) in facts.chances for n in names)]
    target_dates = {t: _common([facts.chances.get((n, t), (None, 0.0))[0] for n in names]) for t in targets}
    for t in targets:
        date = target_dates[t]
        header.append(f"Chance of no {t}-week waits by {fmt_date(date)}" if date
                      else f"Chance of no {t}-week waits by the target date")
    with_target = any(facts.at_target[n][0] is not None for n in names)
    target_date = _common([facts.at_target[n][0] for n in names])
    if with_target:
        header.append(f"List on {fmt_date(target_date)}" if target_date else "List at the 52-week target date")
    end_date = _common([i.horizon_end for i in infos])
    header.append(f"List at the end, {fmt_date(end_date)}" if end_date else "List at the end")
    header += [f"Net position {y}" for y in facts.years]
    compared = len(names) > 1
    if compared:
        header += ["52-week waits clear, against the reference", "List at the end, against the reference"]
    rows = []
    for name, info in zip(names, infos, strict=True):
        row = [md_text(info.title)]
        row += [clearance_cell(facts.clearances.get((name, t)), info) for t in thresholds]
        for t in targets:
            found = facts.chances.get((name, t))
            if found is None:
                row.append("no target")
                continue
            date, chance = found
            text = "after the end of the run" if math.isnan(chance) else fmt_pct(chance, 0)
            row.append(text if target_dates[t] else f"{text} by {fmt_date(date)}")
        if with_target:
            date, value = facts.at_target[name]
            text = fmt_int(value) or "–"
            row.append(text if target_date or date is None else f"{text} ({fmt_date(date)})")
        end = fmt_int(facts.at_end[name]) or "–"
        row.append(end if end_date else f"{end} ({fmt_date(info.horizon_end)})")
        row += [fmt_millions(facts.net.get(name, {}).get(y)) for y in facts.years]
        if compared and name == names[0]:
            row += [REFERENCE, REFERENCE]
        elif compared:
            d = facts.diffs.get((name, 52))
            if d is None:
                row.append("–")
            elif d.n_pairs == 0:
                row.append("not cleared in any pair")
            else:
                row.append(fmt_difference(d.p50))
            row.append(fmt_signed_int(facts.list_diffs.get(name, math.nan)))
        rows.append(row)
    return Table(header, rows, style="summary", role="summary")


def summary_note(run: RunFolder, facts: SummaryFacts) -> str:
    """What the table's cells are, under it."""
    n = max(i.replications for i in run.scenarios.values())
    text = (f"Medians of {n} replication{'s' if n != 1 else ''}. A date is the week from which nobody waits over "
            "the number of weeks (the week the last such patient leaves the list)"
            + (", with the range holding 90% of replications in brackets" if n > 1 else "") + ". ")
    if facts.chances:
        text += ("A chance is the share of replications in which nobody waits that long at the end of the last "
                 "week before the target date or at any week's end after it. ")
    if any(date is not None for date, _ in facts.at_target.values()):
        text += ("The list on a date is the list at the end of the last week ending on or before it (weeks end on "
                 "Sundays). ")
        target_date = _common([date for date, _ in facts.at_target.values()])
        published = published_list_on(target_date)
        if target_date is not None and published is not None:
            text += f"NHS England's published list on {fmt_date(target_date)}: {fmt_int(published)}. "
    if facts.years:
        text += ("Net position: elective income less cost, NHS financial years April to March (the first and "
                 "last part years). ")
    if len(run.names) > 1:
        text += (f"Against the reference ({md_emphasis(run.scenarios[run.names[0]].title)}): the median of the "
                 "differences replication by replication, the same patients in each (negative: sooner, or fewer).")
    return text.strip()


# ---------------------------------------------------------------------------------------------------------------
# Headlines: at most three, by what differs most
# ---------------------------------------------------------------------------------------------------------------

MAX_HEADLINES = 3


@dataclass
class _Candidate:
    score: float            # how large the difference is against the size of what differs (0: none shown)
    text: str


def _clearance_candidates(run: RunFolder, facts: SummaryFacts) -> list[_Candidate]:
    names, ref = run.names, run.names[0]
    ref_info = run.scenarios[ref]
    out = []
    known = {n: c for n in names if (c := facts.clearances.get((n, 52))) is not None}
    cleared = {n: c for n, c in known.items() if c.median is not None}
    if known and not cleared:
        end = fmt_date(max(run.scenarios[n].horizon_end for n in known))
        who = "In no scenario" if len(names) > 1 else f"Under {md_emphasis(ref_info.title)}"
        verb = "does the 52-week backlog clear" if len(names) > 1 else "the 52-week backlog does not clear"
        out.append(_Candidate(1.0, f"{who} {verb} by {end} (median replication)."))
    elif 0 < len(cleared) < len(known):
        first, c = next(iter(cleared.items()))
        stuck = [n for n in known if n not in cleared]
        out.append(_Candidate(1.0, f"Under {md_emphasis(run.scenarios[first].title)} nobody waits over 52 "
                                   f"weeks from the week of {fmt_date(c.median)} (median); under "
                                   + ", ".join(md_emphasis(run.scenarios[n].title) for n in stuck)
                                   + " the 52-week backlog does not clear within the run."))
    elif len(names) == 1 and ref in cleared:
        c = cleared[ref]
        spread = ""
        if c.n > 1:
            spread = "; 90% of replications " + (fmt_date_range(c.low, c.high) if c.high else
                                                 f"{fmt_date(c.low)} to after {fmt_date(ref_info.horizon_end)}")
        out.append(_Candidate(1.0, f"Nobody waits over 52 weeks from the week of {fmt_date(c.median)} (median"
                                   f"{spread})."))
    ref_weeks = known[ref].p50 if ref in known else math.nan
    scale = ref_weeks if ref_weeks and not math.isnan(ref_weeks) else ref_info.horizon_weeks
    best = None
    for n in names[1:]:
        d = facts.diffs.get((n, 52))
        if d is None or d.n_pairs == 0 or fmt_difference(d.p50) == fmt_difference(0.0):
            continue
        if best is None or abs(d.p50) > abs(best.p50):
            best = d
    if best is not None:
        out.append(_Candidate(min(abs(best.p50) / max(scale, 1.0), 1.0),
                              f"{md_emphasis(run.scenarios[best.scenario].title)} clears the 52-week backlog "
                              f"{fmt_difference(best.p50)} than {md_emphasis(ref_info.title)} (median of the "
                              "paired replications)."))
    return out


def _chance_candidates(run: RunFolder, facts: SummaryFacts) -> list[_Candidate]:
    out = []
    for t in THRESHOLDS:
        found = {n: facts.chances[(n, t)] for n in run.names
                 if (n, t) in facts.chances and not math.isnan(facts.chances[(n, t)][1])}
        if not found:
            continue
        if len(run.names) == 1 or len(found) == 1:
            n, (date, chance) = next(iter(found.items()))
            who = "" if len(run.names) == 1 else f" under {md_emphasis(run.scenarios[n].title)}"
            out.append(_Candidate(0.5, f"The chance that nobody waits over {t} weeks by {fmt_date(date)} is "
                                       f"{fmt_pct(chance, 0)}{who} (share of replications)."))
            continue
        low = min(found, key=lambda n: found[n][1])
        high = max(found, key=lambda n: found[n][1])
        spread = found[high][1] - found[low][1]
        if fmt_pct(found[high][1], 0) == fmt_pct(found[low][1], 0):
            continue
        dates = {d for d, _ in found.values()}
        by = f"by {fmt_date(next(iter(dates)))}" if len(dates) == 1 else "by its target date"
        out.append(_Candidate(spread, f"The chance that nobody waits over {t} weeks {by} is "
                                      f"{fmt_pct(found[high][1], 0)} under {md_emphasis(run.scenarios[high].title)} "
                                      f"against {fmt_pct(found[low][1], 0)} under "
                                      f"{md_emphasis(run.scenarios[low].title)}."))
    return out


def _list_candidates(run: RunFolder, facts: SummaryFacts) -> list[_Candidate]:
    names = run.names
    ends = {n: v for n, v in facts.at_end.items() if not math.isnan(v)}
    if not ends:
        return []
    start = _start_list(run, names[0])
    if len(names) == 1:
        text = f"The waiting list stands at {fmt_int(ends[names[0]])} pathways at the end of the run (median)"
        text += f", against {fmt_int(start)} at the start." if not math.isnan(start) else "."
        return [_Candidate(0.25, text)]
    low, high = min(ends, key=ends.__getitem__), max(ends, key=ends.__getitem__)
    if fmt_int(ends[low]) == fmt_int(ends[high]):
        return []
    ref_end = ends.get(names[0]) or max(ends.values())
    text = (f"At the end of the run the list is {fmt_int(ends[low])} pathways under "
            f"{md_emphasis(run.scenarios[low].title)} and {fmt_int(ends[high])} under "
            f"{md_emphasis(run.scenarios[high].title)} (medians)")
    text += f", against {fmt_int(start)} at the start." if not math.isnan(start) else "."
    return [_Candidate((ends[high] - ends[low]) / max(abs(ref_end), 1.0), text)]


def _start_list(run: RunFolder, scenario: str) -> float:
    w = run.weekly
    if "waiting_total_start" not in w:
        return math.nan
    first = w[(w["scenario"] == scenario) & (w["week"] == w["week"].min())]["waiting_total_start"]
    return float(first.median()) if len(first) else math.nan


def _money_candidates(run: RunFolder, facts: SummaryFacts) -> list[_Candidate]:
    names = [n for n in run.names if n in facts.net]
    if len(names) < 2:
        return []
    best: _Candidate | None = None
    costs = _year_costs(run, names[0])
    for y in facts.years:
        values = {n: facts.net[n].get(y, math.nan) for n in names}
        values = {n: v for n, v in values.items() if not math.isnan(v)}
        if len(values) < 2:
            continue
        low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
        if fmt_millions(values[low]) == fmt_millions(values[high]):
            continue
        scale = abs(costs.get(y, math.nan))
        score = (values[high] - values[low]) / scale if scale and not math.isnan(scale) else 0.0
        candidate = _Candidate(score, f"In {y} the net financial position is {fmt_millions(values[high])} under "
                                      f"{md_emphasis(run.scenarios[high].title)} against "
                                      f"{fmt_millions(values[low])} under {md_emphasis(run.scenarios[low].title)} "
                                      "(medians).")
        if best is None or candidate.score > best.score:
            best = candidate
    return [best] if best is not None else []


def board_headlines(run: RunFolder, facts: SummaryFacts) -> list[str]:
    """At most three sentences: the largest differences the summary table shows, largest first."""
    candidates = (_clearance_candidates(run, facts) + _chance_candidates(run, facts) + _list_candidates(run, facts)
                  + _money_candidates(run, facts))
    chosen = sorted((c for c in candidates if c.score > 0), key=lambda c: -c.score)[:MAX_HEADLINES]
    if not chosen and len(run.names) > 1:
        return ["The scenarios do not differ in any figure of the summary table at the precision it shows."]
    return [c.text for c in chosen]


def summary_frame(table: Table) -> pd.DataFrame:
    """The summary table as the workbook's Summary sheet holds it: the same text, the dialect's escapes undone."""
    return pd.DataFrame([[plain_text(c) for c in row] for row in table.rows],
                        columns=[plain_text(h) for h in table.header])
