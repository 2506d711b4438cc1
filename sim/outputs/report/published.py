"""The report's "Against the published figures" section: each scenario's months beside NHS England's published
monthly RTT figures for North West London, where the run covers any of them.

Why in the report: a board paper quotes the model's numbers beside NHS England's, so the paper should say how
far apart they were over the months both cover, before anyone reads the model's later months as a forecast.

What is compared (sim.outputs.monthly_fit's rules, the same as `backtest`): clock starts and completed pathways
summed over each calendar month, the waiting list and the admitted list at each month's end, the median of the
replications with their 5th to 95th percentiles. The published series are the project's copies in
data/observed/ (Open Government Licence; data/observed/README.md): North West London's provider-basis figures to
March 2022, with the admitted list derived (the source counts decisions to admit twice; removed at England's
rate). North West London's counts by weeks waited are not published for these months, so the counts over 52, 78
and 104 weeks are compared by their change over the same months against England's (england_monthly.csv), not by
their level.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.outputs.monthly_fit import SERIES_TITLES, compare_monthly, monthly_errors, simulated_monthly
from sim.outputs.report.documents import Block, Heading, Paragraph, Table
from sim.outputs.report.format import MONTHS, fmt_int, fmt_num, plural
from sim.outputs.run_folder import PROJECT_ROOT
from sim.outputs.run_reader import RunFolder
from sim.outputs.safe_text import md_emphasis
from sim.scenario.observed import ObservedDataError, ObservedSeries, load_observed

OBSERVED_DIR = PROJECT_ROOT / "data" / "observed"
NWL_MONTHLY = OBSERVED_DIR / "nwl_monthly.csv"
ENGLAND_MONTHLY = OBSERVED_DIR / "england_monthly.csv"
# the published series set beside the model's, in the table's order
COMPARED = ("clock_starts", "completed_pathways", "waiting_list", "waiting_admitted")
# the counts over 52, 78 and 104 weeks: compared by their change against England's (NWL's are not published)
LONG_WAITS = {"over_52w": 52, "over_78w": 78, "over_104w": 104}


@dataclass(frozen=True)
class PublishedFit:
    """One scenario's months beside the published ones: `monthly` as sim.outputs.monthly_fit.compare_monthly
    gives it (the COMPARED series), `errors` its mean absolute percentage error per series, and for each count in
    LONG_WAITS its change from the first month compared to the last: England's, and the model's per replication."""

    scenario: str
    monthly: pd.DataFrame
    errors: pd.DataFrame
    first_month: pd.Period
    last_month: pd.Period
    england_counts: dict[str, tuple[float, float]]  # per count: England's at the first and the last month's end
    model_counts: dict[str, pd.DataFrame]           # per count: per replication, "first" and "last"
    long_waits: pd.DataFrame                        # per count and month: the model's median, 5th, 95th; England's

    @property
    def months(self) -> int:
        return self.last_month.ordinal - self.first_month.ordinal + 1

    def england_change(self, count: str = "over_52w") -> float:
        """England's count at the last month's end ÷ at the first's."""
        return _ratio(*self.england_counts[count])

    def model_change(self, count: str = "over_52w") -> float:
        """The model's count at the last month's end ÷ at the first's: the median over replications of each
        replication's ratio (NaN where none started above 0)."""
        model = self.model_counts[count]
        ratios = [_ratio(f, t) for f, t in zip(model["first"], model["last"], strict=True)]
        finite = [r for r in ratios if not math.isnan(r)]
        return float(np.median(finite)) if finite else math.nan


def _published(path: Path) -> ObservedSeries | None:
    """The project's copy of a published series; None where it is not there (a copy of the package without
    data/), so that the report leaves the section out rather than fail."""
    try:
        return load_observed(path)
    except (OSError, ObservedDataError):
        return None


def published_list_on(day: dt.date | None, nwl_path: Path = NWL_MONTHLY) -> float | None:
    """North West London's published waiting list on `day` when it is the last day of a published month (the
    census), else None."""
    lists = None if day is None else published_lists(day, day, nwl_path)
    return None if lists is None or lists.empty else float(lists.iloc[0])


def published_lists(first_day: dt.date, last_day: dt.date, nwl_path: Path = NWL_MONTHLY) -> pd.Series | None:
    """North West London's published list at each month's end from `first_day` to `last_day` (values indexed by
    the month's last day, as timestamps), for the waiting-list chart and the summary's note; None where no
    month's end falls inside."""
    nwl = _published(nwl_path)
    if nwl is None or "waiting_list" not in nwl.table:
        return None
    ends = {m: m.end_time.normalize() for m in nwl.months}
    inside = [m for m in nwl.months if first_day <= ends[m].date() <= last_day]
    if not inside:
        return None
    values = nwl.table.loc[inside, "waiting_list"].astype(float)
    return pd.Series(values.to_numpy(), index=pd.DatetimeIndex([ends[m] for m in inside])).dropna()


def _weeks_to(start: dt.date, last_day: dt.date) -> int:
    """Weeks from `start` needed to cover every day to `last_day`."""
    return max(0, (last_day - start).days // 7 + 1)


def published_fits(run: RunFolder, nwl_path: Path = NWL_MONTHLY,
                   england_path: Path = ENGLAND_MONTHLY) -> list[PublishedFit]:
    """Each scenario that covers at least one whole published month, in the run's order (none when the published
    series are not in the project)."""
    nwl = _published(nwl_path)
    england = _published(england_path)
    if nwl is None or england is None or not len(nwl.months):
        return []
    last_published = nwl.months[-1].end_time.date()
    fits = []
    for name, info in run.scenarios.items():
        weekly = run.weekly[run.weekly["scenario"] == name]
        weeks = _weeks_to(info.start, last_published)
        weekly = weekly[weekly["week"] < weeks]          # only the weeks the published months can need
        if weekly.empty:
            continue
        simulated = simulated_monthly(weekly, info.start)
        if simulated.empty:
            continue
        monthly = compare_monthly(simulated, nwl)
        monthly = monthly[monthly["series"].isin(COMPARED)].reset_index(drop=True)
        if monthly.empty:
            continue
        months = sorted(pd.Period(m, freq="M") for m in monthly["month"].unique())
        first, last = months[0], months[-1]
        counts = [c for c in LONG_WAITS if c in simulated and c in england.table]
        if "over_52w" not in counts or first not in england.table.index or last not in england.table.index:
            continue
        by_rep = simulated.set_index(["month", "replication"])
        england_counts, model_counts, long_waits = {}, {}, []
        for count in counts:
            england_counts[count] = (float(england.table.loc[first, count]), float(england.table.loc[last, count]))
            model_counts[count] = pd.DataFrame({"first": by_rep[count].xs(first, level="month"),
                                                "last": by_rep[count].xs(last, level="month")})
            per_month = by_rep[count].groupby(level="month")
            long_waits.append(pd.DataFrame({"series": count, "simulated_median": per_month.median(),
                                            "simulated_p05": per_month.quantile(0.05),
                                            "simulated_p95": per_month.quantile(0.95),
                                            "england": [float(england.table.loc[m, count])
                                                        for m in per_month.median().index]}).loc[months])
        fits.append(PublishedFit(name, monthly, monthly_errors(monthly), first, last, england_counts, model_counts,
                                 pd.concat(long_waits)))
    return fits


def published_sheet(fits: list[PublishedFit]) -> pd.DataFrame | None:
    """The workbook's sheet: every month and series of every scenario beside the published value, then the counts
    over 52, 78 and 104 weeks month by month beside England's (`england_count`: a different basis, England's count,
    not North West London's)."""
    if not fits:
        return None
    parts = []
    for fit in fits:
        monthly = fit.monthly.drop(columns=["period"]).rename(columns={"observed": "published"})
        long_waits = fit.long_waits.rename(columns={"england": "england_count"}).reset_index(names="month")
        long_waits = long_waits.assign(month=long_waits["month"].astype(str))
        parts.append(pd.concat([monthly, long_waits], ignore_index=True).assign(scenario=fit.scenario))
    sheet = pd.concat(parts, ignore_index=True)
    return sheet[["scenario", "month", "series", "published", "simulated_median", "simulated_p05", "simulated_p95",
                  "error", "percent_error", "england_count"]]


def _month(period: pd.Period) -> str:
    return f"{MONTHS[period.month - 1]} {period.year}"


def _ratio(first: float, last: float) -> float:
    return last / first if first > 0 else math.nan


def _times(x: float) -> str:
    return "" if math.isnan(x) else f"×{x:.2f}"


def _percent(x: float | None) -> str:
    return "" if x is None or math.isnan(x) else f"{fmt_num(x, 1)}%"


def _signed_percent(x: float) -> str:
    """An error as the report writes a difference: +0.3%, −1.5% (a minus sign), 0%."""
    if math.isnan(x):
        return ""
    text = fmt_num(abs(x), 1)
    return "0%" if text == "0" else ("+" if x > 0 else "−") + text + "%"


def _range(values: np.ndarray) -> str:
    return f"{fmt_int(float(np.percentile(values, 5)))} to {fmt_int(float(np.percentile(values, 95)))}"


def fit_rows(fit: PublishedFit) -> list[list[str]]:
    """The table's rows for one scenario: each compared series at the last month, its error over the months, and
    the change in the counts over 52, 78 and 104 weeks."""
    rows = []
    last = str(fit.last_month)
    mape = dict(zip(fit.errors["series"], fit.errors["mape_percent"], strict=True))
    for series in COMPARED:
        at = fit.monthly[(fit.monthly["series"] == series) & (fit.monthly["month"] == last)]
        if at.empty:
            continue
        row = at.iloc[0]
        rows.append([SERIES_TITLES[series], fmt_int(row["observed"]),
                     f"{fmt_int(row['simulated_median'])} ({fmt_int(row['simulated_p05'])} to "
                     f"{fmt_int(row['simulated_p95'])})", _signed_percent(row["percent_error"]),
                     _percent(mape.get(series))])
    for count, model in fit.model_counts.items():
        england = fit.england_counts[count]
        rows.append([f"Over {LONG_WAITS[count]} weeks: change since {_month(fit.first_month)}",
                     f"England {_times(fit.england_change(count))} ({fmt_int(england[0])} to "
                     f"{fmt_int(england[1])})",
                     f"{_times(fit.model_change(count))} ({fmt_int(float(np.median(model['first'])))} to "
                     f"{fmt_int(float(np.median(model['last'])))}; 90% of replications "
                     f"{_range(model['last'].to_numpy(dtype=float))})", "", ""])
    return rows


def published_blocks(run: RunFolder, fits: list[PublishedFit]) -> list[Block]:
    """The section (nothing when no scenario covers a published month)."""
    if not fits:
        return []
    multi = len(fits) > 1
    first, last = min(f.first_month for f in fits), max(f.last_month for f in fits)
    n_reps = max(run.scenarios[f.scenario].replications for f in fits)
    header = ["Scenario"] * multi + ["Series", f"Published, {_month(last)}", "Model: median (90% of replications)",
                                     "Model's error", "Mean absolute error over the months"]
    rows = [[md_emphasis(run.scenarios[f.scenario].title)] * multi + r for f in fits for r in fit_rows(f)]
    months = {f.months for f in fits}
    span = (f"{plural(months.pop(), 'month')}, {_month(first)} to {_month(last)}" if len(months) == 1
            else f"the months from {_month(first)} to {_month(last)} each scenario covers")
    blocks: list[Block] = [
        Heading("Against the published figures", role="published"),
        Paragraph(f"NHS England's monthly referral-to-treatment figures for the North West London providers (to "
                  f"March 2022, Open Government Licence; `data/observed/`) beside the model's median of "
                  f"{plural(n_reps, 'replication')} over {span}: clock starts and completed pathways in the "
                  "month, the waiting list and the admitted list at its end. The admitted list is derived (the "
                  "source counts decisions to admit twice; removed at England's rate). North West London's counts "
                  "by weeks waited are not published for these months, so the counts over 52, 78 and 104 weeks are "
                  "set beside how England's changed over the same months, not beside a level. The published months "
                  "had the Delta and Omicron waves and the trusts' actual capacity: a scenario that leaves a wave "
                  "out or adds capacity should differ from them by what it changes.", role="published")]
    blocks.append(Table(header, rows, role="published"))
    for f in fits:
        model, england = f.model_change(), f.england_change()
        if math.isnan(model) or math.isnan(england) or abs(model - england) < 0.25:
            continue
        who = f"In {md_emphasis(run.scenarios[f.scenario].title)}, t" if multi else "T"
        blocks.append(Paragraph(
            f"{who}he model's count over 52 weeks changes {_times(model)} from {_month(f.first_month)} to "
            f"{_month(f.last_month)}, England's {_times(england)}: if North West London's moved as England's did, "
            "the model holds " + ("too many" if model > england else "too few")
            + " long waiters in these months, and its later counts over 52 weeks should be read with that in "
            "mind.", role="published"))
    return blocks
