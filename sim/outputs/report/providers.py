"""The report's "By provider" section and the workbook's by_provider sheet, from weekly_by_site.csv: each trust
board reads its own line.

Attribution (sim.model.monitor.WeeklyMonitor._record_sites): a pathway counts against its referred site, the
provider that holds it, wherever it is treated; `clock_stops_admitted_treated_here` counts admitted stops by the
site that treated them. Medians are taken across replications week by week, so a provider's lines need not add up
to the ICS median; the file's own rows do add up, replication by replication.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.experiment.clearance import weeks_to_clear
from sim.outputs.analysis import percentile
from sim.outputs.report.documents import Block, Figure, Heading, Paragraph, Table
from sim.outputs.report.format import fmt_date, fmt_int
from sim.outputs.run_folder import WEEKLY_BY_SITE_CSV
from sim.outputs.run_reader import RunFolder, ScenarioInfo
from sim.outputs.safe_text import md_text

# weekly_by_site.csv columns shown in the by_provider sheet, as medians across replications
MEDIAN_COLUMNS = ["waiting_total", "waiting_over_18w", "waiting_over_52w", "waiting_over_78w", "waiting_over_104w",
                  "clock_starts", "clock_stops_admitted", "clock_stops_non_admitted",
                  "clock_stops_admitted_treated_here"]
CHART_STEM = "waiting_over_52w_by_provider"


def provider_names(info: ScenarioInfo) -> dict[str, str]:
    """Site key -> the trust's name as the scenario gives it (sites.<key>.name), the key where there is none."""
    sites = info.config.get("sites") if isinstance(info.config, dict) else None
    sites = sites if isinstance(sites, dict) else {}
    return {key: str(value.get("name") or key) if isinstance(value, dict) else key for key, value in sites.items()}


def median_by_week(run: RunFolder) -> pd.DataFrame:
    """Per scenario, provider and week: the median across replications of each column (the by_provider sheet)."""
    by_site = run.by_site
    if by_site is None or by_site.empty:
        return pd.DataFrame()
    columns = [c for c in MEDIAN_COLUMNS if c in by_site]
    out = (by_site.groupby(["scenario", "site", "week", "week_start"], sort=False)[columns].median()
           .reset_index())
    names = {(s, k): v for s, info in run.scenarios.items() for k, v in provider_names(info).items()}
    out.insert(2, "provider", [names.get((s, k), k) for s, k in zip(out["scenario"], out["site"], strict=True)])
    return out


@dataclass
class ProviderLine:
    """One provider's row of the section's table (medians across replications)."""

    site: str
    name: str
    list_at_target: float          # NaN when the scenario has no 52-week target within the run
    over_52w_at_target: float
    list_at_end: float
    over_52w_at_end: float
    clear_52w: dt.date | None      # week of the last 52+ waiter's leaving, median (sim.outputs.report.content)
    never_over_52w: bool           # nobody over 52 weeks at any week's end, in every replication


def target_week(info: ScenarioInfo) -> tuple[dt.date | None, int | None]:
    """The scenario's no-52-week-waiters date and the last week ending on or before it (None when it has none, or
    the date is outside the run): the same week the summary's target probability uses."""
    targets = info.config.get("targets") if isinstance(info.config, dict) else None
    raw = targets.get("no_52w_waiters_by") if isinstance(targets, dict) else None
    if raw is None:
        return None, None
    date = raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw)[:10])
    week = ((date - info.start).days + 1) // 7 - 1
    return date, week if 0 <= week < info.horizon_weeks else None


def provider_lines(run: RunFolder, scenario: str) -> list[ProviderLine]:
    """Each provider of one scenario at its 52-week target date and at the end of the run."""
    if run.by_site is None:
        return []
    info = run.scenarios[scenario]
    data = run.by_site[run.by_site["scenario"] == scenario]
    names = provider_names(info)
    _, week = target_week(info)
    last = int(data["week"].max()) if len(data) else -1
    lines = []
    for site, g in data.groupby("site", sort=False):
        at = g.groupby("week")[["waiting_total", "waiting_over_52w"]].median()
        cleared = np.array([weeks_to_clear(r.sort_values("week")["waiting_over_52w"].to_numpy())
                            for _, r in g.groupby("replication")], dtype=float)
        median_weeks = percentile(cleared, 50)
        lines.append(ProviderLine(
            str(site), names.get(str(site), str(site)),
            float(at.loc[week, "waiting_total"]) if week is not None else math.nan,
            float(at.loc[week, "waiting_over_52w"]) if week is not None else math.nan,
            float(at.loc[last, "waiting_total"]), float(at.loc[last, "waiting_over_52w"]),
            info.clearance_week(median_weeks, "round"), bool(len(cleared) and np.all(cleared == 0))))
    return lines


def _clear_text(line: ProviderLine, info: ScenarioInfo) -> str:
    if line.never_over_52w:
        return "none at any week's end"
    return fmt_date(line.clear_52w) if line.clear_52w else f"not by {fmt_date(info.horizon_end)}"


def provider_blocks(run: RunFolder, figures: dict[str, Figure]) -> list[Block]:
    """The section: what the lines count, then for a single scenario one table (list and 52+ at the target date and
    at the end, and the median week in which each provider's last 52-week waiter leaves); when scenarios are
    compared, one combined table of the week each provider clears, a column per scenario (a trust board compares
    its own dates across scenarios; the per-week detail of every scenario is in the workbook's by_provider sheet)."""
    if run.by_site is None or run.by_site.empty:
        return []
    blocks: list[Block] = [Heading("By provider"), Paragraph(
        f"Each trust's own line ({WEEKLY_BY_SITE_CSV}; medians of the replications). As RTT reporting counts it, "
        "a pathway belongs to the provider it was referred to, wherever it is treated: under ICS-wide pooling "
        "another trust or a surgical hub may treat it. Admitted clock stops by the site that treated them "
        "(a hub under its host trust) are in the file and the workbook as `clock_stops_admitted_treated_here`.")]
    if len(run.scenarios) == 1:
        name, info = next(iter(run.scenarios.items()))
        date, week = target_week(info)
        with_target = week is not None
        header = ["Provider"]
        if with_target:
            header += [f"List, {fmt_date(date)}", "Over 52 weeks"]
        header += [f"List, {fmt_date(info.horizon_end)} (end)", "Over 52 weeks", "Week 52-week waits clear (median)"]
        rows = []
        for line in provider_lines(run, name):
            row = [md_text(line.name)]
            if with_target:
                row += [fmt_int(line.list_at_target), fmt_int(line.over_52w_at_target)]
            row += [fmt_int(line.list_at_end), fmt_int(line.over_52w_at_end), _clear_text(line, info)]
            rows.append(row)
        blocks.append(Table(header, rows))
    else:
        lines = {name: {line.site: line for line in provider_lines(run, name)} for name in run.scenarios}
        sites: dict[str, str] = {}
        for by_site in lines.values():
            for site, line in by_site.items():
                sites.setdefault(site, line.name)
        header = ["Provider", *(f"{md_text(info.title)}: week 52-week waits clear (over 52 weeks at the end)"
                                for info in run.scenarios.values())]
        rows = []
        for site, title in sites.items():
            row = [md_text(title)]
            for name, info in run.scenarios.items():
                found = lines[name].get(site)
                row.append("–" if found is None else f"{_clear_text(found, info)} ({fmt_int(found.over_52w_at_end)})")
            rows.append(row)
        blocks.append(Table(header, rows))
    if CHART_STEM in figures:
        blocks.append(figures[CHART_STEM])
    return blocks
