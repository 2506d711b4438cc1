"""The report's charts: which are drawn, from which columns, with which titles and captions (the drawing
itself is sim.outputs.charts)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.outputs import charts
from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.report.content import Clearance
from sim.outputs.report.documents import Figure
from sim.outputs.report.providers import CHART_STEM as PROVIDER_CHART_STEM
from sim.outputs.report.providers import median_by_week, provider_names
from sim.outputs.run_folder import CHARTS_DIR
from sim.outputs.run_reader import RunFolder
from sim.outputs.safe_text import md_emphasis


@dataclass
class ChartOut:
    """One chart drawn into the staging folder: its PNG and SVG files, title and caption."""

    stem: str
    title: str
    caption: str
    files: list[Path]

    def figure(self) -> Figure:
        """The report block showing this chart, with the PNG's path as it will be once moved into place."""
        png = next(f for f in self.files if f.suffix == ".png")
        return Figure(self.title, self.caption, png, f"{CHARTS_DIR}/{png.name}")


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


def make_charts(run: RunFolder, clearances: list[Clearance], baselines: dict[str, dict],
                folder: Path) -> list[ChartOut]:
    weekly = run.weekly.copy()
    weekly["week_start"] = pd.to_datetime(weekly["week_start"])
    series = charts.scenario_series(run.names, {n: i.title for n, i in run.scenarios.items()})
    titles = {s.name: s.title for s in series}        # as the charts show them (sim.outputs.safe_text.chart_label)
    n_reps = max(i.replications for i in run.scenarios.values())
    out: list[ChartOut] = []
    rep_text = f"{n_reps} replications" if n_reps != 1 else "one replication"

    def save(fig, stem: str, title: str, caption: str) -> None:
        out.append(ChartOut(stem, title, caption, charts.save_figure(fig, folder, stem)))

    if "waiting_over_52w" in weekly:
        bands = charts.weekly_percentiles(weekly, "waiting_over_52w")
        save(charts.fan_chart(bands, series, title="Patients waiting over 52 weeks",
                              ylabel="Patients waiting over 52 weeks", n_replications=n_reps,
                              legend_loc="upper right"),
             "waiting_over_52w", "Patients waiting over 52 weeks",
             f"Number of patients waiting over 52 weeks at the end of each week: the line is the median of {rep_text}, "
             "the shaded band the range holding 90% of them (5th to 95th percentile).")
    if "waiting_total" in weekly:
        bands = charts.weekly_percentiles(weekly, "waiting_total", start_column="waiting_total_start")
        save(charts.fan_chart(bands, series, title="Waiting list size (incomplete RTT pathways)",
                              ylabel="Pathways waiting", n_replications=n_reps),
             "waiting_list", "Waiting list size",
             f"Incomplete referral-to-treatment pathways at the end of each week: median of {rep_text} and the "
             "range holding 90% of them.")
    if {"clock_stops_admitted", "clock_stops_non_admitted"} <= set(weekly.columns):
        has_base = any(baselines.values())
        save(charts.activity_chart(weekly, series, baselines, n_replications=n_reps), "activity",
             "Weekly activity",
             "Clock stops each week — admitted (treated in theatre) and non-admitted — median and 90% band of "
             f"{rep_text}" + (", with the 2019/20 baseline dashed." if has_base else
                              ". No 2019/20 baseline is recorded in the scenario, so none is drawn."))
    causes, slots = _session_loss_columns(weekly)
    shown = [c for c in causes if _has_data(weekly, c, nonzero=True)] or causes[:1]
    none_lost = [charts._cause_label(c) for c in causes if c not in shown]
    if causes or slots:
        save(charts.sessions_lost_chart(weekly, series, shown, slots), "sessions_lost", "Theatre capacity lost",
             "Theatre sessions lost each week, by cause (mean over replications)"
             + ("; and operating slots lost because no elective bed was free (cases, not sessions)" if slots else "")
             + (f". No sessions were lost to: {', '.join(none_lost)}." if none_lost else "."))
    if _has_data(weekly, "vaccinations"):
        target = next((c for c in ("vaccinations_target", "vaccination_target") if _has_data(weekly, c)), None)
        has_target = target is not None
        if has_target and target != "vaccinations_target":
            weekly["vaccinations_target"] = weekly[target]
        save(charts.vaccination_chart(weekly, series, n_replications=n_reps, has_target=has_target),
             "vaccinations", "Vaccinations" + (" against target" if has_target else ""),
             f"Vaccinations given each week (median and 90% band of {rep_text})"
             + (" against the weekly target (dashed)." if has_target else "."))
    if _has_data(weekly, "covid_inpatients", nonzero=True):
        bands = charts.weekly_percentiles(weekly, "covid_inpatients")
        save(charts.fan_chart(bands, series, title="COVID-19 inpatients", ylabel="Patients in hospital beds",
                              n_replications=n_reps),
             "covid_inpatients", "COVID-19 inpatients",
             f"COVID-19 inpatients at the end of each week: median and 90% band of {rep_text}.")
    medians = median_by_week(run)
    if len(medians):
        reference, reference_info = next(iter(run.scenarios.items()))
        multi = len(run.scenarios) > 1
        save(charts.provider_lines_chart(medians[medians["scenario"] == reference],
                                         provider_names(reference_info),
                                         "waiting_over_52w", title="Patients waiting over 52 weeks, by provider"
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
        save(charts.clearance_chart(rows, start=first.start, horizon_end=end), "clearance_dates",
             "When long waits clear",
             "Week in which the last patient waiting over 52, 78 and 104 weeks leaves the list: dot at the median "
             "replication, line across the range holding 90% of replications; a red arrow marks replications that "
             "had not cleared by the end of the run.")
    return out
