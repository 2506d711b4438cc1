"""A run's weekly results as the monthly series NHS England publishes, and their error against an observed series.

Why monthly: the published RTT figures (sim.scenario.observed) are calendar months, flows counted over the month
and the list counted on its last day. The weekly table is turned into the same form with two rules, each a
choice:
- Flows (clock starts, completed pathways, admitted completions): each week's count is spread evenly over its
  seven days and the days are summed by calendar month. A month is compared only when every one of its days was
  simulated, so a run that starts on 7 June 2021 is first compared in July.
- Stocks (the list and the counts over 18/52/78/104 weeks) at the census, the end of the month's last day:
  linear between the counts at the ends of the two weeks around it (the week's opening count for the first
  week's total, which the table keeps). A census after the last simulated day is not compared.
Each month's simulated value is the median over replications, with the 5th and 95th percentiles beside it.

Errors: percent error = (median − observed) / observed × 100; MAPE per series = the mean of its absolute value
over the months used, and the mean error over the same months; a month whose observed value is 0 or blank is
left out of both and counted. Months from
`holdout_from` on are reported separately ("held_out") from the months before ("window"): a calibration fitted to
the window never sees them.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.outputs.analysis import last_day_simulated
from sim.scenario.observed import ObservedSeries, parse_month

# observed series name -> how it is made from the weekly table: ("flow", weekly columns summed) or
# ("stock", the weekly column counted at a week's end)
SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "clock_starts": ("flow", ("clock_starts",)),
    "completed_pathways": ("flow", ("clock_stops_admitted", "clock_stops_non_admitted")),
    "completed_admitted": ("flow", ("clock_stops_admitted",)),
    "waiting_list": ("stock", ("waiting_total",)),
    "waiting_admitted": ("stock", ("waiting_admitted",)),
    "over_18w": ("stock", ("waiting_over_18w",)),
    "over_52w": ("stock", ("waiting_over_52w",)),
    "over_78w": ("stock", ("waiting_over_78w",)),
    "over_104w": ("stock", ("waiting_over_104w",)),
}
SERIES_TITLES = {"clock_starts": "Clock starts a month", "completed_pathways": "Completed pathways a month",
                 "completed_admitted": "Admitted completions a month", "waiting_list": "Waiting list",
                 "waiting_admitted": "Admitted list (decisions to admit)",
                 "over_18w": "Over 18 weeks", "over_52w": "Over 52 weeks", "over_78w": "Over 78 weeks",
                 "over_104w": "Over 104 weeks"}
WINDOW, HELD_OUT = "window", "held_out"
MONTHLY_COLUMNS = ["month", "series", "period", "observed", "simulated_median", "simulated_p05", "simulated_p95",
                   "error", "percent_error"]
ERROR_COLUMNS = ["series", "period", "mape_percent", "months_used", "months_skipped", "mean_error"]


def simulated_monthly(weekly: pd.DataFrame, start_date: dt.date) -> pd.DataFrame:
    """One row per replication × calendar month fully inside the run, one column per series in SERIES (those the
    weekly table can make), by the module's rules."""
    rows = []
    for replication, table in weekly.groupby("replication", sort=True):
        table = table.sort_values("week")
        n_weeks = int(table["week"].max()) + 1
        if len(table) != n_weeks:
            raise ValueError(f"replication {replication}: weeks missing from the weekly table")
        last_day = last_day_simulated(start_date, n_weeks)
        for month in months_covered(start_date, last_day):
            row: dict[str, object] = {"replication": int(replication), "month": month}
            first, last = month.start_time.date(), month.end_time.date()
            for name, (kind, columns) in SERIES.items():
                if not all(c in table for c in columns):
                    continue
                if kind == "flow":
                    weekly_counts = table[list(columns)].to_numpy(dtype=float).sum(axis=1)
                    row[name] = flow_between(weekly_counts, start_date, first, last)
                else:
                    opening = (table["waiting_total_start"].iloc[0] if columns[0] == "waiting_total"
                               and "waiting_total_start" in table else None)
                    row[name] = stock_at(table[columns[0]].to_numpy(dtype=float), opening, start_date, last)
            rows.append(row)
    return pd.DataFrame(rows)


def compare_monthly(simulated: pd.DataFrame, observed: ObservedSeries,
                    holdout_from: pd.Period | None = None) -> pd.DataFrame:
    """Rows of the monthly comparison: every month and series that both the run and the observed file have."""
    rows = []
    months = [m for m in observed.months if m in set(simulated["month"])]
    for name in SERIES:
        if name not in observed.columns or name not in simulated:
            continue
        for month in months:
            values = simulated.loc[simulated["month"] == month, name].to_numpy(dtype=float)
            seen = float(observed.table.loc[month, name])
            median = float(np.median(values))
            usable = np.isfinite(seen) and seen != 0
            rows.append({
                "month": str(month), "series": name,
                "period": HELD_OUT if holdout_from is not None and month >= holdout_from else WINDOW,
                "observed": seen, "simulated_median": median,
                "simulated_p05": float(np.percentile(values, 5)), "simulated_p95": float(np.percentile(values, 95)),
                "error": median - seen if np.isfinite(seen) else float("nan"),
                "percent_error": (median - seen) / seen * 100 if usable else float("nan")})
    return pd.DataFrame(rows, columns=MONTHLY_COLUMNS)


def monthly_errors(table: pd.DataFrame) -> pd.DataFrame:
    """MAPE and mean error per series, separately for the window and the held-out months."""
    rows = []
    for (series, period), part in table.groupby(["series", "period"], sort=False):
        used = part["percent_error"].notna()
        rows.append({"series": series, "period": period,
                     "mape_percent": float(part.loc[used, "percent_error"].abs().mean()) if used.any()
                     else float("nan"),
                     "months_used": int(used.sum()), "months_skipped": int((~used).sum()),
                     "mean_error": float(part.loc[used, "error"].mean()) if used.any() else float("nan")})
    return pd.DataFrame(rows, columns=ERROR_COLUMNS)


def parse_month_window(text: str) -> tuple[pd.Period, pd.Period]:
    """`YYYY-MM:YYYY-MM` → (first, last) months; ValueError naming what was expected."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"expected FIRST:LAST as YYYY-MM:YYYY-MM (e.g. 2021-06:2022-03), got {text!r}")
    first, last = (parse_month(p) for p in parts)
    if first > last:
        raise ValueError(f"{text!r}: the first month is after the last")
    return first, last


def months_covered(first_day: dt.date, last_day: dt.date) -> list[pd.Period]:
    """Calendar months every day of which lies in [first_day, last_day]."""
    months = pd.period_range(pd.Period(first_day, freq="M"), pd.Period(last_day, freq="M"), freq="M")
    return [m for m in months if m.start_time.date() >= first_day and m.end_time.date() <= last_day]


def flow_between(weekly_counts: Sequence[float] | np.ndarray, start_date: dt.date, first: dt.date,
             last: dt.date) -> float:
    """The weekly counts spread evenly over their days, summed over the days first..last (inclusive)."""
    counts = np.asarray(weekly_counts, dtype=float)
    first_index, last_index = (first - start_date).days, (last - start_date).days
    days = np.arange(first_index, last_index + 1)
    return float(counts[days // 7].sum() / 7)


def stock_at(week_end_counts: np.ndarray, opening: float | None, start_date: dt.date, day: dt.date) -> float:
    """A stock at the end of `day`: linear between the ends of the week before and the week holding `day`."""
    index = (day - start_date).days
    week, into = divmod(index, 7)
    end = float(week_end_counts[week])
    if week == 0:
        if opening is None:
            return end
        before = float(opening)
    else:
        before = float(week_end_counts[week - 1])
    return before + (end - before) * (into + 1) / 7
