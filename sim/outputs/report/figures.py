"""The report's charts: which are drawn, from which columns, with which titles and captions (the drawing
itself is sim.outputs.charts), and drawing them on every core.

`plan_charts` decides the charts without drawing any: each is a Chart with its title, caption, files and a
`build` that makes the figure. The report is written from the plan while the charts are drawn (`drawing`), in
worker processes forked from this one where that is safe (sim.outputs.forking), since the charts are most
of a report's time and each one is drawn by one core alone."""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure as MplFigure

from sim.core.fork_signals import interrupts_held, worker_signals
from sim.outputs import charts
from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.forking import can_fork
from sim.outputs.report.content import Clearance
from sim.outputs.report.documents import Figure
from sim.outputs.report.providers import CHART_STEM as PROVIDER_CHART_STEM
from sim.outputs.report.providers import median_by_week, provider_names
from sim.outputs.report.published import published_lists
from sim.outputs.run_folder import CHARTS_DIR
from sim.outputs.run_reader import RunFolder
from sim.outputs.safe_text import md_emphasis

# Drawn first when the charts are shared between processes: the slowest (many bars, several panels, many lines), so
# that no process is left drawing a slow chart alone at the end.
SLOWEST_FIRST = ("sessions_lost", PROVIDER_CHART_STEM, "activity")


@dataclass(frozen=True)
class Chart:
    """One chart of the report: its title and caption, the folder its PNG and SVG go to, and how it is built."""

    stem: str
    title: str
    caption: str
    folder: Path
    build: Callable[[], MplFigure]

    @property
    def files(self) -> list[Path]:
        """The PNG and SVG that drawing writes (charts.save_figure)."""
        return [self.folder / f"{self.stem}.png", self.folder / f"{self.stem}.svg"]

    def figure(self) -> Figure:
        """The report block showing this chart, with the PNG's path as it will be once moved into place."""
        png = self.files[0]
        return Figure(self.title, self.caption, png, f"{CHARTS_DIR}/{png.name}")

    def draw(self) -> list[Path]:
        """Build the figure and write its PNG and SVG; the files written."""
        return charts.save_figure(self.build(), self.folder, self.stem)


def _session_loss_columns(weekly: pd.DataFrame) -> tuple[list[str], str | None]:
    """Causes to stack (sessions) and the slots-lost-for-want-of-a-bed column (cases), as present."""
    causes = [c for c in weekly.columns if c.startswith("sessions_lost_")]
    if not causes and "theatre_sessions_lost" in weekly:
        causes = ["theatre_sessions_lost"]
    elif causes and "theatre_sessions_lost" in weekly:
        rest = weekly["theatre_sessions_lost"] - weekly[causes].sum(axis=1)
        if (rest > 0.5).any():
            weekly["sessions_lost_unattributed"] = rest.clip(lower=0)
            causes.append("sessions_lost_unattributed")
    slots = None
    if "theatre_slots_lost_no_bed" in weekly and "sessions_lost_no_bed" not in weekly:
        slots = "theatre_slots_lost_no_bed"
    return causes, slots


def _has_data(weekly: pd.DataFrame, column: str, nonzero: bool = False) -> bool:
    if column not in weekly:
        return False
    v = pd.to_numeric(weekly[column], errors="coerce")
    return bool(v.notna().any() and (not nonzero or (v.fillna(0) != 0).any()))


def _fan(weekly: pd.DataFrame, column: str, series: list[charts.Series], start_column: str | None = None,
         **kwargs) -> MplFigure:
    return charts.fan_chart(charts.weekly_percentiles(weekly, column, start_column=start_column), series, **kwargs)


def plan_charts(run: RunFolder, clearances: list[Clearance], baselines: dict[str, dict],
                folder: Path) -> list[Chart]:
    """The report's charts, in reading order, to be drawn into `folder`: none is drawn here."""
    weekly = run.weekly.copy()
    weekly["week_start"] = pd.to_datetime(weekly["week_start"])
    series = charts.scenario_series(run.names, {n: i.title for n, i in run.scenarios.items()})
    titles = {s.name: s.title for s in series}        # as the charts show them (sim.outputs.safe_text.chart_label)
    n_reps = max(i.replications for i in run.scenarios.values())
    out: list[Chart] = []
    rep_text = f"{n_reps} replications" if n_reps != 1 else "one replication"

    def save(build: Callable[[], MplFigure], stem: str, title: str, caption: str) -> None:
        out.append(Chart(stem, title, caption, folder, build))

    if "waiting_over_52w" in weekly:
        save(functools.partial(_fan, weekly, "waiting_over_52w", series, title="Patients waiting over 52 weeks",
                               ylabel="Patients waiting over 52 weeks", n_replications=n_reps,
                               legend_loc="upper right"),
             "waiting_over_52w", "Patients waiting over 52 weeks",
             f"Number of patients waiting over 52 weeks at the end of each week: the line is the median of {rep_text}, "
             "the shaded band the range holding 90% of them (5th to 95th percentile).")
    if "waiting_total" in weekly:
        first = next(iter(run.scenarios.values()))
        published = published_lists(first.start, max(i.horizon_end for i in run.scenarios.values()))
        save(functools.partial(_fan, weekly, "waiting_total", series, start_column="waiting_total_start",
                               title="Waiting list size (incomplete RTT pathways)", ylabel="Pathways waiting",
                               n_replications=n_reps, published=published,
                               published_label="Published, NHS England (month ends)"),
             "waiting_list", "Waiting list size",
             f"Incomplete referral-to-treatment pathways at the end of each week: median of {rep_text} and the "
             "range holding 90% of them"
             + ("; dots: the list NHS England published for the North West London providers at each month's end "
                "(to March 2022)." if published is not None else "."))
    if {"clock_stops_admitted", "clock_stops_non_admitted"} <= set(weekly.columns):
        has_base = any(baselines.values())
        save(functools.partial(charts.activity_chart, weekly, series, baselines, n_replications=n_reps), "activity",
             "Weekly activity",
             "Clock stops each week — admitted (treated in theatre) and non-admitted — median and 90% band of "
             f"{rep_text}" + (", with the 2019/20 baseline dashed." if has_base else
                              ". No 2019/20 baseline is recorded in the scenario, so none is drawn."))
    causes, slots = _session_loss_columns(weekly)
    shown = [c for c in causes if _has_data(weekly, c, nonzero=True)] or causes[:1]
    none_lost = [charts._cause_label(c) for c in causes if c not in shown]
    if causes or slots:
        save(functools.partial(charts.sessions_lost_chart, weekly, series, shown, slots), "sessions_lost",
             "Theatre capacity lost",
             "Theatre sessions lost each week, by cause (mean over replications)"
             + ("; and operating slots lost because no elective bed was free (cases, not sessions)" if slots else "")
             + (f". No sessions were lost to: {', '.join(none_lost)}." if none_lost else "."))
    if _has_data(weekly, "vaccinations"):
        target = next((c for c in ("vaccinations_target", "vaccination_target") if _has_data(weekly, c)), None)
        has_target = target is not None
        if has_target and target != "vaccinations_target":
            weekly["vaccinations_target"] = weekly[target]
        save(functools.partial(charts.vaccination_chart, weekly, series, n_replications=n_reps,
                               has_target=has_target),
             "vaccinations", "Vaccinations" + (" against target" if has_target else ""),
             f"Vaccinations given each week (median and 90% band of {rep_text})"
             + (" against the weekly target (dashed)." if has_target else "."))
    if _has_data(weekly, "covid_inpatients", nonzero=True):
        save(functools.partial(_fan, weekly, "covid_inpatients", series, title="COVID-19 inpatients",
                               ylabel="Patients in hospital beds", n_replications=n_reps),
             "covid_inpatients", "COVID-19 inpatients",
             f"COVID-19 inpatients at the end of each week: median and 90% band of {rep_text}.")
    medians = median_by_week(run)
    if len(medians):
        reference, reference_info = next(iter(run.scenarios.items()))
        multi = len(run.scenarios) > 1
        save(functools.partial(charts.provider_lines_chart, medians[medians["scenario"] == reference],
                               provider_names(reference_info), "waiting_over_52w",
                               title="Patients waiting over 52 weeks, by provider"
                               + (f" — {titles[reference]}" if multi else ""),
                               ylabel="Patients waiting over 52 weeks", n_replications=n_reps),
             PROVIDER_CHART_STEM, "Patients waiting over 52 weeks, by provider",
             f"Patients waiting over 52 weeks at the end of each week by the provider the pathway was referred to: "
             f"the median of {rep_text}, one line per trust"
             + (f", for {md_emphasis(reference_info.title)} (the first scenario; the others are in the workbook)."
                if multi else "."))
    if clearances:
        multi = len(run.scenarios) > 1
        rows = []
        for t in THRESHOLDS:
            for i, (name, info) in enumerate(run.scenarios.items()):
                c = next((c for c in clearances if c.scenario == name and c.threshold == t), None)
                if c is None:
                    continue
                colour = series[i].colour if multi else charts.THRESHOLD_COLOURS[t]
                label = f"Over {t} weeks" + (f" — {titles[name]}" if multi else "")
                if c.never_over:
                    rows.append(charts.ClearanceRow(label, t, colour, info.start, info.start, info.start,
                                                    c.n_cleared, c.n))
                else:
                    rows.append(charts.ClearanceRow(label, t, colour, c.median, c.low, c.high, c.n_cleared, c.n))
        first = next(iter(run.scenarios.values()))
        end = max(i.horizon_end for i in run.scenarios.values())
        save(functools.partial(charts.clearance_chart, rows, start=first.start, horizon_end=end), "clearance_dates",
             "When long waits clear",
             "Week in which the last patient waiting over 52, 78 and 104 weeks leaves the list: dot at the median "
             "replication, line across the range holding 90% of replications; a red arrow marks replications that "
             "had not cleared by the end of the run.")
    return out


def chart_workers() -> int:
    """How many processes to draw the charts in: one per core this process may use where forking is safe
    (forking.can_fork), else 1 (drawn here, one after another)."""
    return len(os.sched_getaffinity(0)) if can_fork() else 1


_PLAN: list[Chart] = []     # the charts a forked drawing process was given (it has a copy of the parent's memory)


def _start_drawing_process(plan: list[Chart]) -> None:
    """In a forked drawing process: keep the plan; Ctrl-C and SIGTERM as sim.core.fork_signals says."""
    worker_signals()
    global _PLAN
    _PLAN = plan


def _draw_planned(index: int) -> list[Path]:
    return _PLAN[index].draw()


ChartsWritten = Callable[[Collection[str] | None], None]


@contextlib.contextmanager
def drawing(plan: list[Chart], workers: int | None = None, first: Sequence[str] = ()) -> Iterator[ChartsWritten]:
    """Draw the charts of `plan` while the caller goes on; yields `wait(stems=None)`, which returns once the
    files of the charts named (None: every chart) are written, and raises what drawing one of them raised.

    With more than one worker (default: chart_workers()), the charts are drawn in that many processes forked
    from this one, so they inherit the plan, the data and the imported modules, and nothing is pickled but a
    chart's number and the paths written. The charts named in `first` are drawn first (what the caller needs
    soonest), then the slowest (SLOWEST_FIRST), then the rest in the plan's order. Leaving the block stops any
    process still drawing (Ctrl-C, an error), so none writes after the caller has cleaned up. With one worker,
    `wait` draws the charts it waits for here, one after another (none twice)."""
    workers = min(chart_workers() if workers is None else workers, len(plan))
    if workers <= 1:
        drawn: set[str] = set()

        def draw_here(stems: Collection[str] | None = None) -> None:
            for chart in plan:
                if chart.stem not in drawn and (stems is None or chart.stem in stems):
                    chart.draw()
                    drawn.add(chart.stem)
        yield draw_here
        return
    ranks = [*first, *SLOWEST_FIRST]
    order = sorted(range(len(plan)), key=lambda i: ranks.index(plan[i].stem) if plan[i].stem in ranks
                   else len(ranks) + i)
    with interrupts_held():             # until each process has set its own handlers (sim.core.fork_signals)
        pool = multiprocessing.get_context("fork").Pool(workers, _start_drawing_process, (plan,))
    with pool:
        pending = {plan[i].stem: pool.apply_async(_draw_planned, (i,)) for i in order}

        def wait(stems: Collection[str] | None = None) -> None:
            for stem, result in pending.items():
                if stems is None or stem in stems:
                    result.get()
        yield wait
