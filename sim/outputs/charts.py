"""Charts drawn from a run's saved tables (never from the model): the report's, the backtest's and the sweep's.

Each function takes plain data frames and returns a matplotlib Figure; `save_figure` writes it as PNG and SVG.
Figures are built with the object-oriented API on the Agg canvas, so no screen and no global pyplot state are
needed. Colours are the NHS identity palette.

Names a scenario gives (titles, providers, keys, files) are drawn as written: every chart is built and saved with
matplotlib's mathematics and LaTeX off and every text of the finished figure set the same way
(sim.outputs.safe_text), so `$x^2$` or a stray `\\` is shown as typed and never stops a chart; names go through
`chart_label` (one line, at most 100 characters) and legends are given their entries, so a name starting with `_`
is not dropped.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from sim.outputs.analysis import clearance_monday
from sim.outputs.safe_text import CHART_RC, chart_label, draw_as_written
from sim.outputs.work_files import work_name

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # names of rc settings; only recent matplotlib has it

NHS = {
    "blue": "#005EB8", "dark_blue": "#003087", "bright_blue": "#0072CE", "light_blue": "#41B6E6",
    "aqua_green": "#00A499", "warm_yellow": "#FFB81C", "red": "#DA291C", "dark_grey": "#425563",
    "mid_grey": "#768692", "pale_grey": "#E8EDEE",
}
# One colour per scenario, in order (the first scenario is usually the reference).
SCENARIO_COLOURS = [NHS["blue"], NHS["warm_yellow"], NHS["aqua_green"], NHS["red"], NHS["dark_blue"],
                    NHS["light_blue"], NHS["dark_grey"], NHS["bright_blue"], NHS["mid_grey"]]
THRESHOLD_COLOURS = {52: NHS["blue"], 78: NHS["aqua_green"], 104: NHS["dark_blue"]}
# Known causes of lost theatre sessions; anything else gets the next free colour.
CAUSE_COLOURS = {"staff": NHS["dark_blue"], "covid": NHS["red"], "no_bed": NHS["warm_yellow"],
                 "cancelled": NHS["blue"], "other": NHS["mid_grey"], "unattributed": NHS["mid_grey"]}
BAND_LABEL = "90% of replications"
PNG_DPI = 150

STYLE: dict[RcKeyType, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["Arial", "Helvetica", "Liberation Sans", "DejaVu Sans"],
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.edgecolor": NHS["mid_grey"],
    "axes.labelcolor": NHS["dark_grey"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": NHS["pale_grey"],
    "grid.linewidth": 0.8,
    "xtick.color": NHS["dark_grey"],
    "ytick.color": NHS["dark_grey"],
    "legend.frameon": False,
    "legend.fontsize": 9,
    "axes.axisbelow": True,
    "svg.hashsalt": "nwl-capacity-sim",      # stable SVG ids, so a rebuilt chart is byte-identical
    "svg.fonttype": "path",
    **CHART_RC,                               # text as written: no $...$ mathematics, no LaTeX
}


@dataclass(frozen=True)
class Series:
    """One scenario's line: its key in the data, its display title and its colour."""
    name: str
    title: str
    colour: str


def scenario_series(names: Sequence[str], titles: dict[str, str]) -> list[Series]:
    """One series a scenario, in order, titled as a chart shows a name (`chart_label`)."""
    return [Series(n, chart_label(titles.get(n, n)), SCENARIO_COLOURS[i % len(SCENARIO_COLOURS)])
            for i, n in enumerate(names)]


_P = ParamSpec("_P")


def _as_written(build: Callable[_P, Figure]) -> Callable[_P, Figure]:
    """A chart function whose figure is built with text as written (CHART_RC) and has every text set so."""
    @functools.wraps(build)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Figure:
        with matplotlib.rc_context(CHART_RC):
            return draw_as_written(build(*args, **kwargs))
    return wrapper


# ---------------------------------------------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------------------------------------------

def weekly_percentiles(weekly: pd.DataFrame, column: str, start_column: str | None = None) -> pd.DataFrame:
    """Per scenario and week: p05, p50, p95 and mean of `column` across replications (linear interpolation).

    `date` is the Sunday that ends the week (stocks in weekly.csv are counted at the week's end). With
    `start_column` (e.g. waiting_total_start), the first week's opening value is added as week -1, dated the
    day before the start, so the line starts at the start state.
    """
    if start_column and start_column in weekly:
        first = weekly["week"] == weekly.groupby("scenario")["week"].transform("min")
        opening = weekly.loc[first].copy()
        opening[column] = opening[start_column]
        opening["week"] = opening["week"] - 1
        opening["week_start"] = pd.to_datetime(opening["week_start"]) - pd.Timedelta(days=7)
        weekly = pd.concat([opening, weekly.assign(week_start=pd.to_datetime(weekly["week_start"]))],
                           ignore_index=True).sort_values(["week"], kind="stable")
    g = weekly.groupby(["scenario", "week"], sort=False)[column]
    out = g.quantile([0.05, 0.5, 0.95]).unstack()
    out.columns = ["p05", "p50", "p95"]
    out["mean"] = g.mean()
    starts = weekly.groupby(["scenario", "week"], sort=False)["week_start"].first()
    out["week_start"] = pd.to_datetime(starts)
    out["date"] = out["week_start"] + pd.Timedelta(days=6)
    out = out.reset_index()
    # Interpolated quantiles are ordered in exact arithmetic; guard against rounding noise.
    out["p50"] = np.maximum(out["p50"], out["p05"])
    out["p95"] = np.maximum(out["p95"], out["p50"])
    return out


def _thousands(x: float, _pos: int | None = None) -> str:
    if abs(x) >= 1 or x == 0:
        return f"{x:,.0f}"
    return f"{x:g}"


def _date_axis(ax) -> None:
    """Month ticks labelled "Jan 2022", spaced by the span shown (call after plotting)."""
    lo, hi = ax.get_xlim()
    months = (hi - lo) / 30.44
    if months <= 8:
        step = 1
    elif months <= 16:
        step = 2
    elif months <= 24:
        step = 3
    elif months <= 66:              # a three-year run: half-yearly labels, which do not run together
        step = 6
    else:
        step = 12
    ax.xaxis.set_major_locator(FixedLocator(_month_starts(lo, hi, range(1, 13, step) if step <= 6 else [1])))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y" if step < 12 else "%Y"))
    if step <= 3:
        ax.xaxis.set_minor_locator(FixedLocator(_month_starts(lo, hi, range(1, 13))))


def _month_starts(lo: float, hi: float, months: Sequence[int]) -> list[float]:
    """The first day of each of `months` (1-12) from a month before `lo` to a month after `hi` (matplotlib dates),
    as mdates.MonthLocator gives them for this view (the axis shows those inside it). Worked out once: the
    locator asks dateutil's rrule again at every layout and draw, a tenth of the time a chart took to save."""
    first = mdates.num2date(lo - 31)
    last = mdates.num2date(hi + 31)
    year, month = first.year, first.month
    starts = []
    while (year, month) <= (last.year, last.month):
        if month in months:
            day = float(mdates.date2num(dt.datetime(year, month, 1, tzinfo=dt.UTC)))
            if lo - 31 <= day <= hi + 31:
                starts.append(day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return starts


def _count_axis(ax, top: float | None = None) -> None:
    """Counts from zero with thousands separators; the top of the axis at the first tick above the data
    (call after plotting), so the highest value always has a labelled gridline above it."""
    locator = MaxNLocator(nbins=6, integer=True, steps=[1, 2, 2.5, 5, 10])
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.yaxis.set_major_locator(locator)
    ymax = float(top if top is not None else ax.dataLim.ymax)
    if not np.isfinite(ymax) or ymax <= 0:
        ax.set_ylim(0, 1)
        return
    ticks = [t for t in locator.tick_values(0, ymax * 1.03) if t >= ymax * 1.03]
    ax.set_ylim(0, ticks[0] if ticks else ymax * 1.1)


def _new_figure(width: float = 9.0, height: float = 4.8, nrows: int = 1, ncols: int = 1, **kw):
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _suptitle(fig: Figure, title: str) -> None:
    fig.suptitle(title, x=0.01, ha="left", fontsize=12.5, fontweight="bold", color=NHS["dark_blue"])


def _subtitle(ax, text: str) -> None:
    ax.set_title(text, loc="left", fontsize=9.5, color=NHS["dark_grey"], pad=8)


def save_figure(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """Write `stem`.png (150 dpi) and `stem`.svg into `folder`, each under a hidden work name (`.STEM.EXT.nwlsim-
    partial-PID.EXT`, sim.outputs.work_files) then renamed.

    The layout (constrained layout: margins fitted to the labels) is worked out once, while the PNG is drawn,
    and kept for the SVG: the same figure, without a second layout pass, which cost as much as drawing it. The
    layout is in fractions of the figure, so it holds at the SVG's resolution too."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    draw_as_written(fig)
    engine = fig.get_layout_engine()
    with matplotlib.rc_context(STYLE):
        if engine is not None:
            shown_dpi = fig.dpi
            fig.set_dpi(PNG_DPI)
            engine.execute(fig)
            fig.set_dpi(shown_dpi)
            fig.set_layout_engine(None)
        for ext, kw in (("png", {"dpi": PNG_DPI, "metadata": {"Software": None}}),
                        ("svg", {"metadata": {"Date": None, "Creator": None}})):
            final = folder / f"{stem}.{ext}"
            tmp = folder / work_name(final.name, "partial", f".{ext}")     # sim.outputs.work_files' one rule
            try:
                fig.savefig(tmp, format=ext, facecolor="white", **kw)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
            written.append(final)
    fig.set_layout_engine(engine)
    return written


# ---------------------------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------------------------

@_as_written
def fan_chart(bands: pd.DataFrame, series: list[Series], *, title: str, ylabel: str, n_replications: int,
              legend_loc: str = "best", published: pd.Series | None = None, published_label: str = "") -> Figure:
    """Median line per scenario with a shaded band from the 5th to the 95th percentile across replications;
    `published` (values indexed by date), where given, as dots labelled `published_label`."""
    fig, axes = _new_figure()
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        handles: list[Artist] = []
        for s in series:
            b = bands[bands["scenario"] == s.name]
            if b.empty:
                continue
            if n_replications > 1:
                ax.fill_between(b["date"], b["p05"], b["p95"], color=s.colour, alpha=0.22, linewidth=0)
            ax.plot(b["date"], b["p50"], color=s.colour, linewidth=2.2)
            label = s.title if len(series) > 1 else (
                f"Median of {n_replications} replications" if n_replications > 1 else "Single replication")
            handles.append(Line2D([], [], color=s.colour, linewidth=2.2, label=label))
        if n_replications > 1:
            band_colour = series[0].colour if len(series) == 1 else NHS["mid_grey"]
            handles.append(Patch(facecolor=band_colour, alpha=0.22, label=BAND_LABEL))
        if published is not None and len(published):
            ax.plot(published.index, published.to_numpy(dtype=float), linestyle="none", marker="o", markersize=4.5,
                    color=NHS["dark_grey"], zorder=3)
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=4.5, color=NHS["dark_grey"],
                                  label=published_label))
        _count_axis(ax)
        _date_axis(ax)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("Week ending (Sunday)")
        _suptitle(fig, title)
        what = (f"median and the band holding 90% of {n_replications} replications"
                if n_replications > 1 else "one replication")
        _subtitle(ax, f"Count at the end of each week; {what}")
        ax.legend(handles=handles, loc=legend_loc)
    return fig


@_as_written
def activity_chart(weekly: pd.DataFrame, series: list[Series], baselines: dict[str, dict] | None, *,
                   n_replications: int) -> Figure:
    """Weekly admitted and non-admitted clock stops (median, 90% band) with the 2019/20 baseline where known.

    `baselines` maps scenario name -> {"admitted": per week, "non_admitted": per week, "total": per week,
    "label": text}; keys may be missing. No baseline is drawn where none is given.
    """
    baselines = baselines or {}
    need_total = any(b.get("total") is not None and (b.get("admitted") is None or b.get("non_admitted") is None)
                     for b in baselines.values())
    panels = [("clock_stops_admitted", "admitted", "Admitted clock stops (operations and procedures)"),
              ("clock_stops_non_admitted", "non_admitted", "Non-admitted clock stops (treated in outpatients "
                                                           "or discharged)")]
    weekly = weekly.copy()
    if need_total:
        weekly["clock_stops_total"] = weekly["clock_stops_admitted"] + weekly["clock_stops_non_admitted"]
        panels.append(("clock_stops_total", "total", "All clock stops"))
    fig, axes = _new_figure(height=3.0 * len(panels) + 0.6, nrows=len(panels), sharex=True)
    with matplotlib.rc_context(STYLE):
        any_baseline = False
        for ax, (column, key, panel_title) in zip(axes[:, 0], panels, strict=True):
            bands = weekly_percentiles(weekly, column)
            for s in series:
                b = bands[bands["scenario"] == s.name]
                if n_replications > 1:
                    ax.fill_between(b["week_start"] + pd.Timedelta(days=3), b["p05"], b["p95"], color=s.colour,
                                    alpha=0.22, linewidth=0)
                ax.plot(b["week_start"] + pd.Timedelta(days=3), b["p50"], color=s.colour, linewidth=1.8)
                base = baselines.get(s.name, {}).get(key)
                if base is not None:
                    any_baseline = True
                    ax.axhline(base, color=s.colour if len(series) > 1 else NHS["dark_grey"], linestyle="--",
                               linewidth=1.4)
            _count_axis(ax)
            ax.set_ylabel("Patients a week")
            _subtitle(ax, panel_title)
        _date_axis(axes[-1, 0])
        axes[-1, 0].set_xlabel("Week (plotted at mid-week)")
        handles: list[Artist] = []
        for s in series:
            label = s.title if len(series) > 1 else (
                f"Median of {n_replications} replications" if n_replications > 1 else "Single replication")
            handles.append(Line2D([], [], color=s.colour, linewidth=1.8, label=label))
        if n_replications > 1:
            handles.append(Patch(facecolor=series[0].colour if len(series) == 1 else NHS["mid_grey"], alpha=0.22,
                                 label=BAND_LABEL))
        if any_baseline:
            labels = {b.get("label") for b in baselines.values() if b}
            handles.append(Line2D([], [], color=NHS["dark_grey"], linestyle="--", linewidth=1.4,
                                  label=labels.pop() if len(labels) == 1 else "2019/20 baseline"))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
        _suptitle(fig, "Weekly activity: RTT clock stops" + (" against the 2019/20 baseline" if any_baseline else ""))
    return fig


def _cause_label(column: str) -> str:
    if column == "theatre_sessions_lost":
        return "Cancelled (whole session)"
    if column == "sessions_lost_unattributed":
        return "Other / not attributed"
    cause = column.removeprefix("sessions_lost_")
    return {"staff": "Staff absence", "covid": "COVID-19", "no_bed": "No bed", "cancelled": "Cancelled (other)",
            "other": "Other"}.get(cause, cause.replace("_", " ").capitalize())


def _cause_colour(column: str, i: int) -> str:
    cause = "cancelled" if column == "theatre_sessions_lost" else column.removeprefix("sessions_lost_")
    if cause in CAUSE_COLOURS:
        return CAUSE_COLOURS[cause]
    spare = [NHS["light_blue"], NHS["bright_blue"], NHS["aqua_green"], NHS["dark_grey"]]
    return spare[i % len(spare)]


def _stacked_bars(ax, week_start: pd.Series, heights: np.ndarray, bottom: np.ndarray, *, colour: str,
                  label: str) -> None:
    """Bars six days wide from each week's start, from `bottom` up by `heights`: what ax.bar(week_start, heights,
    width=6, align="edge", bottom=bottom, linewidth=0) draws, as one collection of rectangles instead of a patch
    a bar (one patch a bar made this chart, with its 200 weeks of bars a cause, take twice the time of the others
    to build and to draw)."""
    left = mdates.date2num(week_start.to_numpy())
    right = left + 6.0
    top = bottom + heights
    rectangles = np.stack([np.column_stack([left, bottom]), np.column_stack([right, bottom]),
                           np.column_stack([right, top]), np.column_stack([left, top])], axis=1)
    bars = PolyCollection(list(rectangles), facecolors=colour, linewidths=0, label=label)
    ax.add_collection(bars, autolim=True)
    bars.sticky_edges.y.extend(np.unique(bottom).tolist())      # as ax.bar: the view does not go below a bar's base
    ax.autoscale_view()


@_as_written
def sessions_lost_chart(weekly: pd.DataFrame, series: list[Series], causes: list[str],
                        slots_column: str | None) -> Figure:
    """Stacked weekly bars of theatre sessions lost by cause (mean over replications), one panel a scenario;
    and, where recorded, operating slots lost for want of a bed (cases, not sessions) in a panel of its own."""
    n_panels = len(series) + (1 if slots_column else 0)
    fig, axes = _new_figure(height=2.6 * n_panels + 0.9, nrows=n_panels, sharex=True)
    with matplotlib.rc_context(STYLE):
        means = weekly.groupby(["scenario", "week"], sort=False).agg(
            {**{c: "mean" for c in causes}, **({slots_column: "mean"} if slots_column else {}),
             "week_start": "first"}).reset_index()
        means["week_start"] = pd.to_datetime(means["week_start"])
        ymax = 0.0
        for ax, s in zip(axes[:len(series), 0], series, strict=True):   # the slots panel, if any, is last
            m = means[means["scenario"] == s.name]
            bottom = np.zeros(len(m))
            ax.xaxis.update_units(m["week_start"])          # a date axis
            for i, c in enumerate(causes):
                _stacked_bars(ax, m["week_start"], m[c].to_numpy(), bottom, colour=_cause_colour(c, i),
                              label=_cause_label(c))
                bottom = bottom + m[c].to_numpy()
            ymax = max(ymax, float(bottom.max()) if len(bottom) else 0.0)
            _count_axis(ax)
            ax.set_ylabel("Sessions a week")
            _subtitle(ax, (f"{s.title}: theatre" if len(series) > 1 else "Theatre") + " sessions lost, by cause "
                          "(mean over replications)")
        for ax in axes[:len(series), 0]:
            _count_axis(ax, top=ymax * 1.12)
        axes[0, 0].legend(loc="upper right", ncols=min(len(causes), 4))
        if slots_column:
            ax = axes[-1, 0]
            lines = []
            for s in series:
                m = means[means["scenario"] == s.name]
                lines += ax.plot(m["week_start"] + pd.Timedelta(days=3), m[slots_column], color=s.colour,
                                 linewidth=1.6, label=s.title)
            _count_axis(ax)
            ax.set_ylabel("Cases a week")
            _subtitle(ax, "Operating slots lost because no elective bed was free (cases, mean over replications)")
            if len(series) > 1:
                ax.legend(handles=lines, loc="upper right")
        _date_axis(axes[-1, 0])
        axes[-1, 0].set_xlabel("Week starting")
        _suptitle(fig, "Theatre capacity lost")
    return fig


@_as_written
def vaccination_chart(weekly: pd.DataFrame, series: list[Series], *, n_replications: int,
                      has_target: bool) -> Figure:
    """Vaccinations given each week (median, 90% band) against the weekly target where recorded."""
    fig, axes = _new_figure()
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        bands = weekly_percentiles(weekly, "vaccinations")
        target = weekly_percentiles(weekly, "vaccinations_target") if has_target else None
        handles: list[Artist] = []
        for s in series:
            b = bands[bands["scenario"] == s.name]
            x = b["week_start"] + pd.Timedelta(days=3)
            if n_replications > 1:
                ax.fill_between(x, b["p05"], b["p95"], color=s.colour, alpha=0.22, linewidth=0)
            ax.plot(x, b["p50"], color=s.colour, linewidth=2.0)
            handles.append(Line2D([], [], color=s.colour, linewidth=2.0,
                                  label=s.title if len(series) > 1 else "Vaccinations given (median)"))
            if target is not None:
                t = target[target["scenario"] == s.name]
                ax.step(t["week_start"], t["mean"], where="post", color=NHS["red"] if len(series) == 1 else s.colour,
                        linestyle="--", linewidth=1.4)
        if n_replications > 1:
            handles.append(Patch(facecolor=series[0].colour if len(series) == 1 else NHS["mid_grey"], alpha=0.22,
                                 label=BAND_LABEL))
        if target is not None:
            handles.append(Line2D([], [], color=NHS["red"] if len(series) == 1 else NHS["dark_grey"], linestyle="--",
                                  linewidth=1.4, label="Target"))
        _count_axis(ax)
        _date_axis(ax)
        ax.set_ylabel("Vaccinations a week")
        ax.set_xlabel("Week")
        ax.legend(handles=handles, loc="best")
        _suptitle(fig, "Vaccinations against target" if target is not None else "Vaccinations given")
        _subtitle(ax, "Doses given each week")
    return fig


@_as_written
def provider_lines_chart(medians: pd.DataFrame, names: dict[str, str], column: str, *, title: str, ylabel: str,
                         n_replications: int) -> Figure:
    """One median line per provider (site) of one scenario: `medians` has site, week_start and `column`."""
    fig, axes = _new_figure()
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        lines = []
        for i, (site, g) in enumerate(medians.groupby("site", sort=False)):
            dates = pd.to_datetime(g["week_start"]) + pd.Timedelta(days=6)
            lines += ax.plot(dates, g[column], color=SCENARIO_COLOURS[i % len(SCENARIO_COLOURS)], linewidth=2.0,
                             label=chart_label(names.get(str(site), str(site))))
        _count_axis(ax)
        _date_axis(ax)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("Week ending (Sunday)")
        _suptitle(fig, title)
        what = f"median of {n_replications} replications" if n_replications > 1 else "one replication"
        _subtitle(ax, f"Count at the end of each week, by the provider the pathway was referred to; {what}")
        ax.legend(handles=lines, loc="upper right")
    return fig


@dataclass(frozen=True)
class ClearanceRow:
    """One interval on the clearance chart. Dates are the Monday of the week; None means not cleared."""
    label: str
    threshold: int
    colour: str
    median: dt.date | None
    low: dt.date | None
    high: dt.date | None
    n_cleared: int
    n: int


@_as_written
def clearance_chart(rows: list[ClearanceRow], *, start: dt.date, horizon_end: dt.date) -> Figure:
    """Dot at the median week of clearance, line from the 5th to the 95th percentile; an arrow at the horizon
    marks intervals (or medians) that reach beyond it: not cleared within the run."""
    fig, axes = _new_figure(height=max(2.8, 0.55 * len(rows) + 1.9))
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        ax.grid(False)
        ax.grid(True, axis="x", color=NHS["pale_grey"])
        n_rows = len(rows)
        beyond = horizon_end + dt.timedelta(days=10)
        any_not_cleared = False
        for i, r in enumerate(rows):
            y = n_rows - 1 - i
            lo = r.low or beyond
            hi = r.high or beyond
            if r.low is not None and hi != lo:
                ax.plot([lo, hi], [y, y], color=r.colour, linewidth=2.6, solid_capstyle="butt")
                ax.plot([lo], [y], marker="|", color=r.colour, markersize=10, markeredgewidth=2)
                if r.high is not None:
                    ax.plot([hi], [y], marker="|", color=r.colour, markersize=10, markeredgewidth=2)
            if r.high is None:
                any_not_cleared = True
                ax.plot([beyond], [y], marker=">", color=NHS["red"], markersize=9, linestyle="none")
                note = f"not cleared in {r.n - r.n_cleared} of {r.n}"
                ax.annotate(note, (beyond, y), xytext=(8, 0), textcoords="offset points", va="center",
                            fontsize=8.5, color=NHS["red"])
            if r.median is not None:
                ax.plot([r.median], [y], marker="o", color=r.colour, markersize=9, markeredgecolor="white",
                        markeredgewidth=1.2, linestyle="none", zorder=3)
            if i > 0 and r.threshold != rows[i - 1].threshold:
                ax.axhline(y + 0.5, color=NHS["pale_grey"], linewidth=1.0)
        ax.axvline(horizon_end, color=NHS["dark_grey"], linestyle=":", linewidth=1.2)
        ax.annotate("End of run", (horizon_end, n_rows - 0.45), xytext=(-4, 0), textcoords="offset points",
                    ha="right", va="bottom", fontsize=8.5, color=NHS["dark_grey"])
        ax.set_yticks(range(n_rows))
        ax.set_yticklabels([r.label for r in reversed(rows)])
        ax.set_ylim(-0.7, n_rows - 0.2)
        ax.set_xlim(start - dt.timedelta(days=14), horizon_end + dt.timedelta(days=110 if any_not_cleared else 28))
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        _date_axis(ax)
        ax.set_xlabel("Week in which the last long waiter leaves the list (Monday of the week)")
        handles = [Line2D([], [], marker="o", color=NHS["dark_grey"], linestyle="none", markersize=7,
                          label="Median replication"),
                   Line2D([], [], color=NHS["dark_grey"], linewidth=2.6, label=BAND_LABEL)]
        if any_not_cleared:
            handles.append(Line2D([], [], marker=">", color=NHS["red"], linestyle="none", markersize=8,
                                  label="Not cleared by the end of the run"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        _suptitle(fig, "When nobody waits over 52, 78 and 104 weeks")
        _subtitle(ax, "Week of clearance: median (dot) and the range holding 90% of replications (line)")
    return fig


@_as_written
def backtest_chart(table: pd.DataFrame, start_label: str, start_census: dt.date,
                   start_observed: dict[str, float], title: str) -> Figure:
    """Observed months (points) against the simulated median (line) and 5th-95th percentile band, one panel per
    metric. The start month is the common first point: the simulation starts from its list."""
    from sim.outputs.backtest import METRIC_TITLES, METRICS  # with the scenario pipeline: not for the report
    fig = Figure(figsize=(13, 7.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3, sharex=True).ravel()
    for ax, metric in zip(axes, METRICS, strict=True):
        part = table[table["metric"] == metric]
        dates = [start_census] + [dt.date.fromisoformat(d) for d in part["census_date"]]
        obs = [start_observed[metric]] + part["observed"].tolist()
        med = [start_observed[metric]] + part["simulated_median"].tolist()
        lo = [start_observed[metric]] + part["simulated_p05"].tolist()
        hi = [start_observed[metric]] + part["simulated_p95"].tolist()
        ax.fill_between(dates, lo, hi, color=NHS["light_blue"], alpha=0.35, linewidth=0,
                        label="simulated, 5th-95th percentile")
        ax.plot(dates, med, color=NHS["blue"], linewidth=2, label="simulated median")
        ax.plot(dates, obs, "o", color=NHS["dark_grey"], markersize=6, label="observed (RTT)")
        ax.set_title(METRIC_TITLES[metric], fontsize=10)
        ax.set_ylim(0, max(1.0, max(obs + hi)) * 1.08)
        ax.grid(True, color=NHS["pale_grey"])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(lambda x, _pos: f"{x:,.0f}")
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{chart_label(title)}: backtest from {chart_label(start_label)}", fontsize=12)
    fig.tight_layout()
    return fig


@_as_written
def monthly_backtest_chart(table: pd.DataFrame, holdout_from: pd.Period | None, title: str,
                           source: str) -> Figure:
    """Observed months (points) against the simulated median (line) and 5th-95th percentile band, one panel per
    series compared; held-out months shaded."""
    from sim.outputs.monthly_fit import SERIES_TITLES
    series = list(dict.fromkeys(table["series"]))
    ncols = min(3, len(series))
    nrows = -(-len(series) // ncols)
    fig = Figure(figsize=(4.4 * ncols, 3.4 * nrows + 0.8))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    for ax, name in zip(axes, series, strict=False):   # a grid may have more panels than series
        part = table[table["series"] == name]
        dates = [pd.Period(m, freq="M").end_time.date() for m in part["month"]]
        ax.fill_between(dates, part["simulated_p05"], part["simulated_p95"], color=NHS["light_blue"], alpha=0.35,
                        linewidth=0, label="simulated, 5th-95th percentile")
        ax.plot(dates, part["simulated_median"], color=NHS["blue"], linewidth=2, label="simulated median")
        ax.plot(dates, part["observed"], "o", color=NHS["dark_grey"], markersize=5, label="published")
        if holdout_from is not None:
            ax.axvspan(holdout_from.start_time.date(), max(dates) + dt.timedelta(days=15), color=NHS["pale_grey"],
                       alpha=0.6, linewidth=0, label="held out")
        ax.set_title(chart_label(SERIES_TITLES.get(name, name)), fontsize=10)
        top = np.nanmax(np.concatenate([part["observed"].to_numpy(float), part["simulated_p95"].to_numpy(float)]))
        ax.set_ylim(0, max(1.0, float(top)) * 1.08)
        ax.grid(True, color=NHS["pale_grey"])
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in axes[len(series):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{chart_label(title)}: simulated against {chart_label(source)}", fontsize=12)
    fig.tight_layout()
    return fig


@_as_written
def sweep_heatmap(table: pd.DataFrame, keys: list[str], start: dt.date) -> Figure:
    """Median weeks to clear 52-week waits for each combination of the first two factors (others: first level),
    from a sweep's summary table."""
    t = table[table["metric"] == "weeks_to_clear_52w"].copy()
    for k in keys[2:]:
        t = t[t[k] == t[k].iloc[0]]
    rows_key, cols_key = keys[0], (keys[1] if len(keys) > 1 else None)
    grid = (t.pivot_table(index=rows_key, columns=cols_key, values="p50", sort=False, dropna=False)
            if cols_key else t.set_index(rows_key)[["p50"]])
    values = grid.to_numpy(dtype=float)
    fig = Figure(figsize=(max(6.5, 2.5 + 1.6 * grid.shape[1]), max(3.8, 1.8 + 0.7 * grid.shape[0])))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    cmap = matplotlib.colormaps["Blues_r"].with_extremes(bad="#E8EDEE")   # pale grey: not cleared in the horizon
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [chart_label(c) for c in grid.columns] if cols_key else ["all"])
    ax.set_yticks(range(grid.shape[0]), [chart_label(i) for i in grid.index])
    ax.set_xlabel(chart_label(cols_key.split(".")[-1]) if cols_key else "")
    ax.set_ylabel(chart_label(rows_key.split(".")[-1]))
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if len(finite) else 0
    for (i, j), v in np.ndenumerate(values):
        text = "not cleared" if np.isnan(v) else clearance_monday(start, v).strftime("%b %Y")
        ax.text(j, i, text, ha="center", va="center", fontsize=9,
                color="white" if np.isfinite(v) and v < middle else "#231f20")
    ax.set_title("Nobody waiting over 52 weeks from (median of replications)\n"
                 f"rows: {chart_label(rows_key)}" + (f"; columns: {chart_label(cols_key)}" if cols_key else ""),
                 fontsize=9, color="#003087")
    fig.colorbar(im, ax=ax, label="weeks from the start")
    fig.tight_layout()
    return fig


@_as_written
def solve_chart(table: pd.DataFrame, *, lever_unit: str, confidence: float, answer: float | None,
                fluid: float | None, title: str, target: str) -> Figure:
    """`solve`: the share of replications meeting the target at each lever value evaluated (solve.csv), the
    confidence line, the answer (the smallest value at or above it) and the fluid estimate the search began from."""
    fig, axes = _new_figure(height=4.6)
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        t = table.sort_values("value")
        ax.plot(t["value"], t["share_meeting_target"], color=NHS["blue"], linewidth=1.4, zorder=2)
        meets = t["meets_confidence"].astype(bool)
        ax.plot(t.loc[meets, "value"], t.loc[meets, "share_meeting_target"], marker="o", color=NHS["blue"],
                linestyle="none", markersize=7, zorder=3)
        ax.plot(t.loc[~meets, "value"], t.loc[~meets, "share_meeting_target"], marker="o", color="white",
                markeredgecolor=NHS["blue"], markeredgewidth=1.5, linestyle="none", markersize=7, zorder=3)
        ax.axhline(confidence, color=NHS["red"], linestyle="--", linewidth=1.2)
        ax.annotate(f"Confidence {confidence:.0%}", (0.0, confidence), xycoords=("axes fraction", "data"),
                    xytext=(4, 4), textcoords="offset points", fontsize=8.5, color=NHS["red"])
        handles = [Line2D([], [], marker="o", color=NHS["blue"], linestyle="none", label="Meets the confidence"),
                   Line2D([], [], marker="o", color="white", markeredgecolor=NHS["blue"], linestyle="none",
                          label="Below it")]
        if answer is not None:
            ax.axvline(answer, color=NHS["aqua_green"], linewidth=2.0, zorder=1)
            ax.annotate(f"Answer: {answer:,.6g}", (answer, 0.03), xytext=(5, 0), textcoords="offset points",
                        fontsize=9, color=NHS["aqua_green"], fontweight="bold")
            handles.append(Line2D([], [], color=NHS["aqua_green"], linewidth=2.0, label="Answer"))
        if fluid is not None:
            ax.axvline(fluid, color=NHS["mid_grey"], linestyle=":", linewidth=1.2, zorder=1)
            handles.append(Line2D([], [], color=NHS["mid_grey"], linestyle=":", label="Fluid estimate"))
        ax.set_ylim(-0.03, 1.05)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:.0%}"))
        ax.set_xlabel(chart_label(lever_unit[:1].upper() + lever_unit[1:]))
        ax.set_ylabel("Replications meeting the target")
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        _suptitle(fig, chart_label(title))
        _subtitle(ax, chart_label(f"Share of replications with {target} (same replications at every value)", 160))
    return fig
