"""KPIs per replication, then summaries across replications (mean and percentiles, labelled as such).

Clearance is computed in each replication first: the first week from which the count is zero at every
week's end to the horizon. A replication that never clears has no date; percentiles treat it as later
than any date (so a 95th percentile is empty when more than 5% of replications did not clear), and the
mean is empty if any replication did not clear.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from sim.experiment.clearance import weeks_to_clear
from sim.outputs.safe_text import terminal_text

CLEARANCE_THRESHOLDS = (52, 78, 104)
SUMMARY_COLUMNS = ["scenario", "metric", "mean", "p05", "p50", "p95"]


def replication_kpis(weekly: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, replication) with the clearance weeks and list measures (those the weekly
    table has columns for, so a partial table from elsewhere still summarises)."""
    rows = []
    for (scenario, rep), g in weekly.groupby(["scenario", "replication"], sort=False):
        g = g.sort_values("week")
        row = {"scenario": scenario, "replication": rep}
        for t in CLEARANCE_THRESHOLDS:
            if f"waiting_over_{t}w" in g:
                row[f"weeks_to_clear_{t}w"] = weeks_to_clear(g[f"waiting_over_{t}w"].to_numpy())
        if "waiting_total" in g:
            opening = g["waiting_total_start"].iloc[0] if "waiting_total_start" in g else g["waiting_total"].iloc[0]
            row["peak_waiting_total"] = float(max(g["waiting_total"].max(), opening))
            row["waiting_total_end"] = float(g["waiting_total"].iloc[-1])
        for col in ("waiting_over_18w", "waiting_over_52w"):
            if col in g:
                row[f"{col}_end"] = float(g[col].iloc[-1])
        for col in ("clock_stops_admitted", "clock_stops_non_admitted"):
            if col in g:
                row[f"{col}_per_week"] = float(g[col].sum() / len(g))
        if "theatre_sessions_lost" in g:
            row["theatre_sessions_lost_total"] = float(g["theatre_sessions_lost"].sum())
        if "theatre_utilisation" in g:
            row["theatre_utilisation_mean"] = float(g["theatre_utilisation"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def percentile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation percentile where NaN (not cleared) counts as later than any value.

    Written out because numpy interpolates inf x 0 to NaN: the median of [25, 25, not cleared] is 25.
    Returns NaN when the percentile itself falls on or beyond a replication that did not clear.
    """
    values = np.asarray(list(values), dtype=float)
    if len(values) == 0:
        return float("nan")
    v = np.sort(np.where(np.isnan(values), np.inf, values))
    position = (len(v) - 1) * q / 100.0
    lo = int(np.floor(position))
    weight = position - lo
    if weight == 0.0:
        result = v[lo]
    else:
        hi = v[lo + 1]
        result = np.inf if np.isinf(hi) else v[lo] + weight * (hi - v[lo])
    return float(result) if np.isfinite(result) else float("nan")


def summarise(kpis: pd.DataFrame) -> pd.DataFrame:
    """Long table: scenario, metric, mean, p05, p50, p95 (percentiles across replications)."""
    rows = []
    metrics = [c for c in kpis.columns if c not in ("scenario", "replication")]
    for scenario, g in kpis.groupby("scenario", sort=False):
        for m in metrics:
            v = g[m].to_numpy(dtype=float)
            rows.append({"scenario": scenario, "metric": m,
                         "mean": float(np.mean(v)) if not np.isnan(v).any() else float("nan"),
                         "p05": percentile(v, 5), "p50": percentile(v, 50),
                         "p95": percentile(v, 95)})
        for t in CLEARANCE_THRESHOLDS:
            if f"weeks_to_clear_{t}w" not in g:
                continue
            v = g[f"weeks_to_clear_{t}w"].to_numpy(dtype=float)
            share = float(np.mean(~np.isnan(v)))
            rows.append({"scenario": scenario, "metric": f"share_of_replications_cleared_{t}w",
                         "mean": share, "p05": np.nan, "p50": np.nan, "p95": np.nan})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def target_probabilities(kpis: pd.DataFrame, scenario_name: str, start: dt.date,
                         targets: dict[int, dt.date | None], horizon_weeks: int) -> pd.DataFrame:
    """Share of replications in which nobody waits over T weeks from the target date on.

    Met means the count was zero at the end of the last week ending on or before the target date and at
    every week's end after it: start + weeks_to_clear weeks <= target + 1 day. A target without a date is skipped.
    """
    rows = []
    g = kpis[kpis["scenario"] == scenario_name]
    for t, date in targets.items():
        col = f"weeks_to_clear_{t}w"
        if date is None or col not in g:
            continue
        limit_weeks = ((date - start).days + 1) / 7.0
        v = g[col].to_numpy(dtype=float)
        met = np.where(np.isnan(v), False, v <= limit_weeks)
        beyond = limit_weeks > horizon_weeks          # the run ends before the date: not knowable from it
        rows.append({"scenario": scenario_name, "metric": f"probability_no_{t}w_waiters_by_{date.isoformat()}",
                     "mean": float(met.mean()) if len(met) and not beyond else float("nan"),
                     "p05": np.nan, "p50": np.nan, "p95": np.nan})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# How a (possibly interpolated) number of weeks to clear becomes a whole week: the 5th percentile rounded down, the
# 95th up (outwards), the median to the nearest week.
WEEK_ROUNDING = {"floor": math.floor, "ceil": math.ceil, "round": lambda weeks: math.floor(weeks + 0.5)}


def clearance_monday(start: dt.date, weeks: float, rounding: str = "round") -> dt.date:
    """The Monday of the week in which a count cleared (the week its last long waiter leaves the list), for a
    number of weeks to clear (weeks_to_clear: the count is zero at the end of week `weeks`, counting from 1),
    made whole by `rounding` (WEEK_ROUNDING). Every output gives this date: the console headline, the report's
    summary table and text, the web app, the sweep; it is a week before the first Monday with nobody over.
    `weeks` 0 (never anyone over) gives the start. A count that never cleared (NaN) has no date, and the caller
    words it ("not by ...") instead."""
    whole = int(WEEK_ROUNDING[rounding](weeks + 0.0))
    return start + dt.timedelta(weeks=max(whole - 1, 0))


def last_day_simulated(start: dt.date, horizon_weeks: int) -> dt.date:
    """The last day of a run of `horizon_weeks` weeks from `start` (a Sunday when the run starts on a Monday)."""
    return start + dt.timedelta(days=7 * horizon_weeks - 1)


def headline(summary: pd.DataFrame, scenario_title: str, scenario_name: str, start: dt.date,
             replications: int, horizon_weeks: int) -> list[str]:
    """Plain-English lines for the console and the report (the title on one line, without control characters,
    so it cannot send the terminal an escape sequence)."""
    s = summary[summary["scenario"] == scenario_name].set_index("metric")
    end = last_day_simulated(start, horizon_weeks)     # as the report gives it
    lines = [f"{terminal_text(scenario_title)} — {replications} replication{'s' if replications != 1 else ''}, "
             f"{start.isoformat()} to {end.isoformat()}"]
    for t in CLEARANCE_THRESHOLDS:
        med, lo, hi = (s.loc[f"weeks_to_clear_{t}w", k] for k in ("p50", "p05", "p95"))
        share = s.loc[f"share_of_replications_cleared_{t}w", "mean"]
        if np.isnan(med):
            still = (f"; {s.loc[f'waiting_over_{t}w_end', 'p50']:,.0f} still over {t} weeks at the end (median)"
                     if f"waiting_over_{t}w_end" in s.index else "")
            lines.append(f"  Nobody over {t} weeks: not reached by {end.isoformat()} in most replications "
                         f"(cleared in {share:.0%} of them){still}.")
            continue
        # interpolated percentiles are rounded outwards (p05 down, p95 up) and the median to the nearest week
        # the week the last such patient leaves (clearance_monday), as the report and the web app give it
        text = f"  Nobody over {t} weeks from the week of {clearance_monday(start, med).isoformat()} (median)"
        if replications > 1:
            hi_text = (clearance_monday(start, hi, "ceil").isoformat() if not np.isnan(hi)
                       else f"not by {end.isoformat()}")
            text += (f"; 90% of replications between the weeks of "
                     f"{clearance_monday(start, lo, 'floor').isoformat()} and {hi_text}")
        lines.append(text + ".")
    for metric in s.index:
        if metric.startswith("probability_no_"):
            t, date = metric.removeprefix("probability_no_").split("w_waiters_by_")
            when = dt.date.fromisoformat(date)
            share = s.loc[metric, "mean"]
            lines.append(f"  Chance that nobody waits over {t} weeks by {when.day} {when:%B %Y}: "
                         + ("beyond the end of the run." if np.isnan(share) else f"{share:.0%} of replications."))
    peak = s.loc["peak_waiting_total"]
    lines.append(f"  Peak waiting list: {peak['p50']:,.0f} pathways (median; 90% of replications "
                 f"{peak['p05']:,.0f} to {peak['p95']:,.0f}).")
    return lines


def paired_comparison(kpis: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Each scenario's clearance weeks minus the reference's, replication by replication (same seeds, so
    the same patients), summarised. Positive = later than the reference. A replication where either did
    not clear is left out and counted."""
    rows = []
    ref = kpis[kpis["scenario"] == reference].set_index("replication")
    for scenario, g in kpis.groupby("scenario", sort=False):
        g = g.set_index("replication")
        for t in CLEARANCE_THRESHOLDS:
            col = f"weeks_to_clear_{t}w"
            if col not in g or col not in ref:
                continue
            diff = (g[col] - ref[col]).dropna()
            rows.append({"scenario": scenario, "reference": reference, "metric": f"{col}_difference",
                         "mean": float(diff.mean()) if len(diff) else float("nan"),
                         "p05": percentile(diff.to_numpy(), 5), "p50": percentile(diff.to_numpy(), 50),
                         "p95": percentile(diff.to_numpy(), 95),
                         "pairs": int(len(diff)), "pairs_not_cleared": int(len(g) - len(diff))})
    return pd.DataFrame(rows)


def comparison_lines(comparison: pd.DataFrame, reference: str) -> list[str]:
    """Plain-English paired differences in the 52-week clearance against the reference."""
    lines = [f"Compared with {reference} (same patients in each replication):"]
    for _, r in comparison[comparison["metric"] == "weeks_to_clear_52w_difference"].iterrows():
        if r["scenario"] == reference:
            continue
        if np.isnan(r["p50"]):
            lines.append(f"  {r['scenario']}: no paired replications cleared 52 weeks in both")
            continue
        lines.append(f"  {r['scenario']}: 52-week clearance {r['p50']:+.0f} weeks (median; 90% of pairs "
                     f"{r['p05']:+.0f} to {r['p95']:+.0f}; {r['pairs']} pairs, {r['pairs_not_cleared']} not cleared)")
    return lines
