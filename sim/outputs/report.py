"""The report for a finished run folder: charts, report.md, a self-contained report.html and results.xlsx.

Reads only the saved files of the folder (scenario.yaml, manifest.json, weekly.csv, replications.csv,
summary.csv), never the model, so every chart and table can be made again from results/:

    python -m sim.outputs.report results/baseline/20210629-120000

Public entry point: `build_report(run_dir) -> list[Path]` (the files written). Everything is first written
into a hidden staging folder inside the run folder and then renamed into place, report.html last, so a
failure half way leaves no report.html that looks complete (and no half-updated charts).

Clearance weeks. `weeks_to_clear` w (replications.csv) means the count of long waiters is zero at the end of
week w-1 (weeks numbered 0, 1, ... from the start date, Monday to Sunday) and at the end of every later week,
so the last long waiter leaves the list during week w-1, whose Monday is start_date + 7 (w-1) days: "the week
of" that Monday. NaN means not cleared within the horizon.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from sim.outputs import charts
from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.analysis import paired_comparison, percentile
from sim.outputs.run_folder import (CHARTS_DIR, FINANCE_BY_YEAR_CSV, FINANCE_MONTHLY_CSV, MANIFEST_JSON, PARAMETERS_CSV,
                                    REPORT_HTML, REPORT_MD, RESULTS_XLSX, SCENARIO_YAML, WEEKLY_CSV, RunFolder, ScenarioInfo,
                                    load_run)

EXCEL_MAX_ROWS = 1_048_576

# ---------------------------------------------------------------------------------------------------------------
# Formatting for a board paper
# ---------------------------------------------------------------------------------------------------------------


def fmt_date(d: dt.date | None) -> str:
    """17 October 2022."""
    return "" if d is None else f"{d.day} {d:%B %Y}"


def fmt_int(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:,.0f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    """Thousands separators; up to `digits` decimals, trailing zeros dropped."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    text = f"{x:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return fmt_num(100 * x, digits) + "%"


def fmt_weeks(x: float) -> str:
    v = fmt_num(abs(x), 1)
    return f"{v} week" + ("" if v == "1" else "s")


def fmt_difference(x: float) -> str:
    """A paired difference in weeks: negative is sooner."""
    if round(x, 1) == 0:
        return "in the same week"
    return f"{fmt_weeks(x)} {'sooner' if x < 0 else 'later'}"


def _plural_noun(word: str, n: int) -> str:
    if n == 1:
        return word
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        return word[:-1] + "ies"
    return word + "s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _md_escape(text: Any) -> str:
    """Escape text for Markdown (the HTML renderer undoes these escapes)."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", str(text))


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _humanise(key: str) -> str:
    return str(key).replace("_", " ").strip().capitalize()


def _count_of(n: Any, plural_key: str) -> str:
    """"7 surgeons", "1 surgeon" from a plural key such as theatre_nurses."""
    word = _humanise(plural_key).lower()
    if isinstance(n, (int, float)) and n == 1 and word.endswith("s"):
        word = word[:-1]
    return f"{fmt_num(n, 2)} {word}"


def _specialty_label(key: str) -> str:
    return str(key).upper() if len(str(key)) <= 3 else _humanise(key)


def _site_label(key: str, cfg: Mapping) -> str:
    name = cfg.get("name") if isinstance(cfg, Mapping) else None
    label = str(name).split(" (")[0].strip() if name else str(key).replace("_", " ").title()
    code = cfg.get("trust_code") if isinstance(cfg, Mapping) else None
    return f"{label} ({code})" if code else label


# ---------------------------------------------------------------------------------------------------------------
# Clearance, paired differences, baseline
# ---------------------------------------------------------------------------------------------------------------


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


def _week_of(info: ScenarioInfo, weeks: float, how: str) -> dt.date | None:
    """Monday of the week in which the last long waiter leaves, for a (possibly interpolated) weeks_to_clear.
    Rounded outwards: the 5th percentile down, the 95th up, the median to the nearest week."""
    if weeks is None or math.isnan(weeks):
        return None
    w = {"floor": math.floor, "ceil": math.ceil, "round": lambda x: math.floor(x + 0.5)}[how](weeks + 0.0)
    return info.week_monday(max(int(w) - 1, 0))


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
                                 _week_of(info, p05, "floor"), _week_of(info, p50, "round"),
                                 _week_of(info, p95, "ceil"), bool(len(v) and np.all(v == 0)),
                                 _week_of(info, float(done.min()), "floor") if len(done) else None,
                                 _week_of(info, float(done.max()), "ceil") if len(done) else None))
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


# ---------------------------------------------------------------------------------------------------------------
# Plain-English headlines
# ---------------------------------------------------------------------------------------------------------------


def clearance_sentence(info: ScenarioInfo, c: Clearance) -> str:
    t, n = c.threshold, c.n
    who = f"Under *{_md_escape(info.title)}*"
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
    who = f"Compared with *{_md_escape(ref.title)}*, *{_md_escape(s.title)}*"
    if d.n_pairs == 0:
        return (f"{who}: no replication in which both cleared the {d.threshold}-week backlog within the run, so "
                "no paired difference can be given.")
    text = (f"{who} clears the {d.threshold}-week backlog {fmt_difference(d.p50)} (median of the paired "
            f"differences over {_plural(d.n_pairs, 'replication')}")
    if d.n_pairs > 1 and fmt_difference(d.p05) == fmt_difference(d.p95):
        text += "; the same in 90% of replications"
    elif d.n_pairs > 1:
        text += f"; 90% of replications between {fmt_difference(d.p05)} and {fmt_difference(d.p95)}"
    text += ")"
    if d.n_excluded:
        text += (f"; {_plural(d.n_excluded, 'replication')} in which one or both did not clear within the run "
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
            text = (f"The waiting list for *{_md_escape(info.title)}* stands at {fmt_int(percentile(v, 50))} "
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
                lines.append(f"On average over the run, *{_md_escape(info.title)}* delivers "
                             + " and ".join(parts) + " (median replication).")
    for d in diffs:
        lines.append(comparison_sentence(run, d))
    ranged = _intervals_in(run.manifest)
    if ranged:
        lines.append("The ranges include uncertainty in the inputs given as 80% ranges ("
                     + "; ".join(f"*{_md_escape(run.scenarios[n].title if n in run.scenarios else n)}*: "
                                 f"{len(keys)} input{'s' if len(keys) != 1 else ''}" for n, keys in ranged.items())
                     + "), drawn once per replication, as well as run-to-run variation"
                     + ("; other scenarios' ranges show run-to-run variation only" if len(ranged) < len(run.scenarios)
                        else "") + " (see the method note).")
    else:
        lines.append("The ranges show run-to-run variation only: every input is fixed at the value the scenario "
                     "states (see the method note).")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Assumptions and provenance
# ---------------------------------------------------------------------------------------------------------------

POLICIES = {"fifo": "First in, first out (by decision-to-treat date)",
            "longest_wait_first": "Longest wait first (by clock start)",
            "priority_then_longest_wait": "Clinical priority (P1-P4), then longest wait"}
POOLING = {"ics": "One ICS-wide list per specialty (any site may treat)",
           "site": "A separate list at each site"}
KNOWN_SECTIONS = {"name", "title", "description", "start_date", "horizon_weeks", "booking_policy", "pooling",
                  "bank_holidays", "extra_bank_holidays", "run", "specialties", "sites", "boroughs", "referrals",
                  "outpatients", "theatre_rules", "removals", "start_list", "extends"}


def _sessions_per_week(site: Mapping) -> float:
    by_day = (site.get("theatres") or {}).get("sessions_by_weekday") or {}
    return float(sum(v for v in by_day.values() if isinstance(v, (int, float))))


_SHARE_WORDS = ("share", "rate", "fraction", "uptake", "cap", "probability")


def _scalar_text(key: str, v: Any) -> str:
    """A scenario value for a board paper: shares and rates as percentages, dates in words."""
    k = str(key).lower()
    if (isinstance(v, float) and 0 <= v <= 1 and any(w in k for w in _SHARE_WORDS)
            and not re.search(r"per_\d", k)):
        return fmt_pct(v, 2)
    return _value_text(v)


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (Mapping, list))


def _mapping_text(node: Mapping, limit: int = 240) -> str:
    """"key value; key value" for the scalar (and scalar-list) entries of a mapping."""
    parts = []
    for k, v in node.items():
        if _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)):
            parts.append(f"{_humanise(k).lower()} {_scalar_text(k, v)}")
        elif isinstance(v, Mapping):
            parts.append(f"{_humanise(k).lower()}: {len(v)} entries")
        elif isinstance(v, list):
            parts.append(f"{_humanise(k).lower()}: {len(v)} entries")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _generic_section(section: str, node: Any) -> list[tuple[str, str]]:
    """Rows for a scenario section the report does not know: scalars one a row, small mappings on one row,
    collections by count and names. Nothing is left out silently: long entries are summarised."""
    label = _humanise(section)
    if _is_scalar(node):
        return [(label, _scalar_text(section, node))]
    if isinstance(node, list):
        if all(_is_scalar(x) for x in node):
            return [(label, _value_text(node))]
        return [(label, f"{len(node)} entries")]
    rows: list[tuple[str, str]] = []
    for key, v in node.items():
        name = f"{label}: {_humanise(key).lower()}"
        if _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)):
            rows.append((name, _scalar_text(key, v)))
        elif isinstance(v, list):
            rows.append((name, f"{len(v)} entries" if v else "none"))
        elif v and all(isinstance(x, Mapping) for x in v.values()):
            if len(v) <= 6:
                for child, sub in v.items():
                    rows.append((f"{name}: {_humanise(child).lower()}", _mapping_text(sub)))
            else:
                rows.append((name, f"{len(v)}: " + ", ".join(_humanise(c).lower() for c in v)))
        else:
            rows.append((name, _mapping_text(v) if v else "none"))
    return rows


def _covid_rows(cfg: Mapping) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    waves = [w for w in cfg.get("waves") or [] if isinstance(w, Mapping)]
    if not waves and not cfg.get("inpatients_series") and not cfg.get("inpatients_csv"):
        rows.append(("COVID-19 waves", "none"))
    for i, w in enumerate(waves, start=1):
        name = w.get("name") or f"wave {i}"
        rows.append((f"COVID-19 wave: {name}",
                     f"{fmt_date(_as_date(w.get('start')))} to {fmt_date(_as_date(w.get('end')))}, peak "
                     f"{fmt_int(w.get('peak_inpatients'))} inpatients around {fmt_date(_as_date(w.get('peak')))}"
                     + (f" ({w['shape']})" if w.get("shape") else "")))
    series = [p for p in cfg.get("inpatients_series") or [] if isinstance(p, Mapping)]
    if series:
        peak = max(series, key=lambda p: p.get("inpatients", 0))
        first, last = (fmt_date(_as_date(series[i].get("date"))) for i in (0, -1))
        rows.append(("COVID-19 inpatients series", f"{len(series)} points from {first} "
                     f"to {last}; peak {fmt_int(peak.get('inpatients'))} on "
                     f"{fmt_date(_as_date(peak.get('date')))}"))
    rest = {k: v for k, v in cfg.items() if k not in ("waves", "inpatients_series")}
    rows += [(name.replace("Covid:", "COVID-19:", 1), value) for name, value in _generic_section("covid", rest)]
    return rows


def _hub_rows(cfg: Mapping, sites: Mapping) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, hub in (cfg.get("hubs") or {}).items():
        if not isinstance(hub, Mapping):
            continue
        host = hub.get("host_site")
        parts = []
        if host:
            parts.append(f"at {_site_label(host, sites.get(host) or {})}")
        if hub.get("opens"):
            parts.append(f"opens {fmt_date(_as_date(hub['opens']))}")
        n = _sessions_per_week(hub)
        if n:
            parts.append(f"{fmt_num(n)} theatre sessions a week")
        if "elective_beds" in hub:
            parts.append(f"{fmt_int(hub['elective_beds'])} elective beds")
        if hub.get("productivity_multiplier") not in (None, 1, 1.0):
            parts.append(f"productivity ×{fmt_num(hub['productivity_multiplier'], 2)}")
        team = hub.get("staff_establishment")
        if isinstance(team, Mapping) and team:
            parts.append("own team: " + ", ".join(_count_of(v, k) for k, v in team.items()))
        elif "staff_establishment" in hub:
            parts.append("staffed from the host site")
        rows.append((f"Surgical hub: {str(key).replace('_', ' ').title()}", "; ".join(parts)))
    if not rows:
        rows.append(("Surgical hubs", "none"))
    rest = {k: v for k, v in cfg.items() if k != "hubs"}
    return rows + _generic_section("surgical_hubs", rest)


def _staff_rows(cfg: Mapping, sites: Mapping) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    groups = cfg.get("groups") or {}
    per_session = [_count_of(g.get("per_theatre_session"), k) for k, g in groups.items()
                   if isinstance(g, Mapping) and g.get("per_theatre_session")]
    if per_session:
        rows.append(("Staff per theatre session", ", ".join(per_session)))
    for site, groups_n in (cfg.get("establishment") or {}).items():
        if isinstance(groups_n, Mapping):
            rows.append((f"Staff establishment: {_site_label(site, sites.get(site) or {})}",
                         ", ".join(_count_of(v, k) for k, v in groups_n.items())))
    leave = cfg.get("annual_leave_rate_by_month")
    if isinstance(leave, Mapping) and leave:
        hi = max(leave, key=lambda m: leave[m])
        rows.append(("Staff annual leave by month", f"{fmt_pct(min(leave.values()))} to {fmt_pct(max(leave.values()))} "
                                                    f"(highest in {str(hi).capitalize()})"))
    rest = {k: v for k, v in cfg.items() if k not in ("groups", "establishment", "annual_leave_rate_by_month")}
    return rows + _generic_section("staff", rest)


def _vaccination_rows(cfg: Mapping) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    centres = {k: c for k, c in (cfg.get("centres") or {}).items() if isinstance(c, Mapping)}
    if centres:
        kinds: dict[str, int] = {}
        for c in centres.values():
            kind = str(c.get("kind", "centre")).replace("_", " ").replace("pcn", "PCN")
            kinds[kind] = kinds.get(kind, 0) + 1
        stations = sum(c.get("stations", 0) or 0 for c in centres.values())
        surge = sum(c.get("surge_stations", 0) or 0 for c in centres.values())
        rows.append(("Vaccination centres", f"{len(centres)}: " + ", ".join(f"{n} {_plural_noun(k, n)}"
                                                                             for k, n in kinds.items())
                     + f"; {fmt_int(stations)} stations" + (f" (+{fmt_int(surge)} in a surge)" if surge else "")))
    cohorts = [c for c in cfg.get("cohorts") or [] if isinstance(c, Mapping)]
    if cohorts:
        pop = sum(c.get("population", 0) or 0 for c in cohorts)
        text = f"{len(cohorts)} cohorts, population {fmt_int(pop)}"
        if pop:
            for dose in ("first", "second"):
                key = f"uptake_{dose}_dose"
                if all(key in c for c in cohorts):
                    u = sum((c.get("population", 0) or 0) * c[key] for c in cohorts) / pop
                    text += f"; {dose}-dose uptake {fmt_pct(u)}"
        rows.append(("Vaccination cohorts", text))
    surge = cfg.get("surge")
    if isinstance(surge, Mapping):
        text = (f"from {fmt_date(_as_date(surge.get('start')))} for {surge.get('weeks', '?')} weeks, target "
                f"{fmt_int(surge.get('target_doses_per_week'))} doses a week")
        if surge.get("redeploy_from"):
            text += (f"; staff redeployed from {', '.join(map(str, surge['redeploy_from']))} (up to "
                     f"{fmt_pct(surge.get('max_share_redeployed', 0))})")
        rows.append(("Vaccination surge", text))
    rest = {k: v for k, v in cfg.items() if k not in ("centres", "cohorts", "surge")}
    return rows + _generic_section("vaccination", rest)


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (dt.date, dt.datetime)):
        return fmt_date(_as_date(v))
    if isinstance(v, float):
        return fmt_num(v, 4)
    if isinstance(v, int):
        return fmt_int(v)
    if isinstance(v, list):
        return ", ".join(_value_text(x) for x in v) if v else "(none)"
    if v is None:
        return ""
    return str(v)


def _add_stated(add: Callable[[tuple[str, str]], None], section: Mapping, key: str, label: str,
                fmt: Callable[[Any], str]) -> None:
    """One assumptions row, only when the scenario states the key."""
    if key in section:
        add((label, fmt(section[key])))


def scenario_assumptions(info: ScenarioInfo) -> list[tuple[str, str]]:
    """(assumption, value) rows for one scenario, in a fixed order, from its resolved scenario.yaml."""
    cfg = info.config
    rows: list[tuple[str, str]] = [("Title", info.title)]
    if not cfg:
        return rows + [("Scenario file", "not recorded in the run folder"),
                       ("Start date", fmt_date(info.start)),
                       ("Horizon", f"{info.horizon_weeks} weeks, to {fmt_date(info.horizon_end)}")]
    add = rows.append
    if cfg.get("description"):
        add(("Description", str(cfg["description"]).strip()))
    add(("Start date", fmt_date(_as_date(cfg.get("start_date")) or info.start)))
    add(("Horizon", f"{cfg.get('horizon_weeks', info.horizon_weeks)} weeks, to {fmt_date(info.horizon_end)}"))
    if "booking_policy" in cfg:
        add(("Booking policy", POLICIES.get(cfg["booking_policy"], str(cfg["booking_policy"]))))
    if "pooling" in cfg:
        add(("Pooling", POOLING.get(cfg["pooling"], str(cfg["pooling"]))))
    if "bank_holidays" in cfg:
        extra = cfg.get("extra_bank_holidays") or []
        add(("Bank holidays", str(cfg["bank_holidays"]).capitalize()
             + (f" plus {len(extra)} extra closure days" if extra else "")))
    run_cfg = cfg.get("run") or {}
    if run_cfg:
        add(("Replications and seed", f"{run_cfg.get('replications', '')}; seed "
                                                         f"{run_cfg.get('seed', '')}"))
    ref = cfg.get("referrals") or {}
    _add_stated(add, ref, "referrals_per_week", "Referrals a week (before advice and guidance)", fmt_int)
    _add_stated(add, ref, "advice_and_guidance_share", "Advice and guidance share (diverted)", fmt_pct)
    _add_stated(add, ref, "demand_growth_per_year", "Demand growth a year", fmt_pct)
    if "seasonality_amplitude" in ref:
        peak = ref.get("seasonality_peak_day_of_year")
        when = ""
        if isinstance(peak, (int, float)):
            d = dt.date(2021, 1, 1) + dt.timedelta(days=int(peak) - 1)
            when = f", peaking around {d.day} {d:%B}"
        add(("Seasonality", f"±{fmt_pct(ref['seasonality_amplitude'])}{when}"))
    specs = cfg.get("specialties") or {}
    if specs:
        add(("Specialties", f"{len(specs)}: " + ", ".join(_specialty_label(k) for k in specs)))
    boroughs = cfg.get("boroughs") or {}
    if boroughs:
        pop = sum(b.get("population", 0) for b in boroughs.values() if isinstance(b, Mapping))
        add(("Boroughs", f"{len(boroughs)}, population {fmt_int(pop)}"))
    sites = cfg.get("sites") or {}
    total_sessions = total_beds = total_slots = 0.0
    for key, site in sites.items():
        if not isinstance(site, Mapping):
            continue
        th = site.get("theatres") or {}
        n = _sessions_per_week(site)
        total_sessions += n
        detail = []
        if "session_minutes" in th:
            detail.append(f"{fmt_num(th['session_minutes'])} min")
        if "utilisation_cap" in th:
            detail.append(f"{fmt_pct(th['utilisation_cap'])} utilisation cap")
        add((f"Theatre sessions a week: {_site_label(key, site)}",
             fmt_num(n) + (f" ({', '.join(detail)})" if detail else "")))
    if len(sites) > 1:
        add(("Theatre sessions a week: all sites", fmt_num(total_sessions)))
    for key, site in sites.items():
        if isinstance(site, Mapping) and "elective_beds" in site:
            total_beds += site["elective_beds"]
            add((f"Elective beds: {_site_label(key, site)}", fmt_int(site["elective_beds"])))
    if len(sites) > 1 and total_beds:
        add(("Elective beds: all sites", fmt_int(total_beds)))
    for key, site in sites.items():
        slots = site.get("outpatient_first_slots_per_week") if isinstance(site, Mapping) else None
        if isinstance(slots, Mapping):
            total_slots += sum(v for v in slots.values() if isinstance(v, (int, float)))
    if total_slots:
        add(("First outpatient slots a week: all sites", fmt_int(total_slots)))
    op = cfg.get("outpatients") or {}
    _add_stated(add, op, "virtual_share", "Virtual outpatient share", fmt_pct)
    if "dna_rate_face_to_face" in op or "dna_rate_virtual" in op:
        add(("Did-not-attend rate (face to face; virtual)",
             f"{fmt_pct(op.get('dna_rate_face_to_face'))}; {fmt_pct(op.get('dna_rate_virtual'))}"))
    tr = cfg.get("theatre_rules") or {}
    _add_stated(add, tr, "session_cancellation_rate", "Whole theatre sessions cancelled", fmt_pct)
    _add_stated(add, tr, "on_the_day_cancellation_rate", "Cases cancelled on the day", fmt_pct)
    sl = cfg.get("start_list") or {}
    bands = [b for b in sl.get("bands") or [] if isinstance(b, Mapping)]
    if bands:
        total = sum(b.get("count", 0) for b in bands)
        add(("Start list: pathways waiting", fmt_int(total)))
        for t in THRESHOLDS:
            n = sum(b.get("count", 0) for b in bands if b.get("from_weeks", 0) >= t)
            add((f"Start list: waiting {t}+ weeks", fmt_int(n)))
    rem = cfg.get("removals") or {}
    rates = [r for r in rem.get("weekly_rate_by_weeks_waited") or [] if isinstance(r, Mapping)]
    if rates:
        add(("Removals (other than treatment), a week",
             "; ".join(f"{fmt_pct(r.get('weekly_rate'), 2)} from {fmt_int(r.get('from_weeks'))} weeks waited"
                       for r in rates)))
    rounds = [r for r in rem.get("validation_rounds") or [] if isinstance(r, Mapping)]
    add(("Validation rounds", "; ".join(
        f"{fmt_date(_as_date(r.get('date')))}: {fmt_pct(r.get('share_removed'))} of those waiting "
        f"{fmt_int(r.get('min_weeks_waited'))}+ weeks removed" for r in rounds) or "none"))
    special = {"covid": lambda node: _covid_rows(node),
               "surgical_hubs": lambda node: _hub_rows(node, sites),
               "staff": lambda node: _staff_rows(node, sites),
               "vaccination": lambda node: _vaccination_rows(node)}
    for section, node in cfg.items():
        if section in KNOWN_SECTIONS:
            continue
        if section in special and isinstance(node, Mapping):
            rows.extend(special[section](node))
        else:
            rows.extend(_generic_section(section, node))
    how = "fixed at its midpoint by --fix-parameters" if info.ranges_fixed else "drawn each replication"
    for key, (low, high) in info.ranges.items():
        rows.append((f"80% range, {how}: {key}", f"{low:,.6g} to {high:,.6g} (midpoint shown above)"))
    return rows


def assumptions_frame(run: RunFolder) -> pd.DataFrame:
    per = {name: scenario_assumptions(info) for name, info in run.scenarios.items()}
    order: list[str] = []
    for rows in per.values():
        for k, _ in rows:
            if k not in order:
                order.append(k)
    if len(per) == 1:
        (name, rows), = per.items()
        return pd.DataFrame(rows, columns=["Assumption", "Value"])
    table = {"Assumption": order}
    for name, rows in per.items():
        d = dict(rows)
        table[run.scenarios[name].title] = [d.get(k, "") for k in order]
    return pd.DataFrame(table)


def _timestamp_text(value: Any) -> str:
    """2021-06-29T11:13:05+01:00 -> 29 June 2021, 11:13:05 (UTC+01:00)."""
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    zone = f" ({t.tzname()})" if t.tzinfo else ""
    return f"{fmt_date(t.date())}, {t:%H:%M:%S}{zone}"


def provenance_rows(run: RunFolder) -> list[tuple[str, str]]:
    m = run.manifest
    rows: list[tuple[str, str]] = [("Run folder", run.label or run.path.name)]
    if not m:
        return rows + [("Manifest", f"{MANIFEST_JSON} not found in the run folder")]
    commit = str(m.get("git_commit", ""))
    rows += [("Model version", str(m.get("version", ""))),
             ("Git commit", commit + (" (working tree had uncommitted changes)" if commit.endswith("-dirty") else "")),
             ("Experiment seed", str(m.get("seed", ""))),
             ("Replications", str(m.get("replications", "")))]
    for key, label in (("scenario_file", "Scenario file"), ("command", "Command"),
                       ("pathways_simulated", "Pathways simulated"), ("started_at", "Started"),
                       ("finished_at", "Finished")):
        if key in m:
            v = m[key]
            rows.append((label, fmt_int(v) if isinstance(v, (int, float)) else _timestamp_text(v)
                         if key.endswith("_at") else str(v)))
    if m.get("overrides"):
        rows.append(("Overrides (--set)", ", ".join(map(str, m["overrides"]))))
    if "wall_time_seconds" in m:
        rows.append(("Wall time", f"{fmt_num(float(m['wall_time_seconds']), 1)} s"))
    for lib, ver in (m.get("library_versions") or {}).items():
        rows.append((f"Library: {lib}", str(ver)))
    mach = m.get("machine") or {}
    if mach:
        parts = [str(mach.get("platform", ""))]
        if mach.get("cpus"):
            parts.append(f"{mach['cpus']} CPUs")
        if mach.get("memory_gib"):
            parts.append(f"{fmt_num(float(mach['memory_gib']), 1)} GiB memory")
        rows.append(("Machine", ", ".join(p for p in parts if p)))
    for key, v in m.items():
        if key not in {"version", "git_commit", "seed", "replications", "scenario_file", "command",
                       "pathways_simulated", "started_at", "finished_at", "overrides", "wall_time_seconds",
                       "library_versions", "machine", "scenario"} and not isinstance(v, (dict, list)):
            rows.append((_humanise(key), str(v)))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Tables for the report and the workbook
# ---------------------------------------------------------------------------------------------------------------


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
        rows.append(([_md_escape(info.title)] if multi else []) +
                    [f"over {c.threshold} weeks", f"{c.n_cleared} of {c.n} replications", med, rng])
    return header, rows


def difference_report_table(run: RunFolder, diffs: list[PairedDifference]) -> tuple[list[str], list[list[str]]]:
    header = ["Scenario", "Long wait", "Median difference", "90% of replications", "Replications compared"]
    rows = []
    for d in diffs:
        rows.append([_md_escape(run.scenarios[d.scenario].title), f"over {d.threshold} weeks",
                     fmt_difference(d.p50) if d.n_pairs else "",
                     (f"{fmt_difference(d.p05)} to {fmt_difference(d.p95)}"
                      if fmt_difference(d.p05) != fmt_difference(d.p95) else fmt_difference(d.p05))
                     if d.n_pairs > 1 else "",
                     f"{d.n_pairs} of {d.n_pairs + d.n_excluded}"])
    return header, rows


# ---------------------------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ChartOut:
    stem: str
    title: str
    caption: str
    files: list[Path]


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
    titles = {n: i.title for n, i in run.scenarios.items()}
    series = charts.scenario_series(run.names, titles)
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
    if clearances:
        multi = len(run.scenarios) > 1
        rows = []
        for t in THRESHOLDS:
            for i, (name, info) in enumerate(run.scenarios.items()):
                c = next((c for c in clearances if c.scenario == name and c.threshold == t), None)
                if c is None:
                    continue
                colour = series[i].colour if multi else charts.THRESHOLD_COLOURS[t]
                label = f"Over {t} weeks" + (f" — {info.title}" if multi else "")
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


# ---------------------------------------------------------------------------------------------------------------
# Documents: a small block model rendered to Markdown and to self-contained HTML
# ---------------------------------------------------------------------------------------------------------------

_INLINE = re.compile(r"\\(.)|\*\*(.+?)\*\*|\*((?:\\.|[^*\\])+)\*|`([^`]+)`")


def _inline_html(text: str) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(html.escape(m.group(1)))
        elif m.group(2) is not None:
            out.append(f"<strong>{_inline_html(m.group(2))}</strong>")
        elif m.group(3) is not None:
            out.append(f"<em>{_inline_html(m.group(3))}</em>")
        else:
            out.append(f"<code>{html.escape(m.group(4))}</code>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


@dataclass
class Block:
    kind: str                   # h1 subtitle h2 p ul table img
    text: str = ""
    items: list = field(default_factory=list)
    header: list = field(default_factory=list)
    image: Path | None = None
    rel: str = ""


FINANCE_ROWS = [("net_position", "Elective net position", "money"),
                ("net_position_vs_reference", "Net position against the first scenario", "money"),
                ("income_erf", "Elective Recovery Fund income", "money"),
                ("cost_total", "Total cost", "money"),
                ("cost_per_elective_case", "Cost per elective case", "pounds"),
                ("cases_per_session", "Cases per theatre session", "number"),
                ("activity_pct_of_2019_20", "Activity, % of 2019/20 (at tariff)", "number")]


def _money(value: float, kind: str) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    sign = "−" if value < 0 and kind != "number" else ""
    if kind == "money":
        return f"{sign}£{abs(value) / 1e6:,.1f}m"
    if kind == "pounds":
        return f"{sign}£{round(abs(value), -1):,.0f}"
    return f"{value:,.1f}"


def _finance_blocks(run: RunFolder) -> list[Block]:
    """Finance by NHS financial year from finance_by_year.csv: medians, with the range holding 90% of
    replications in brackets (money in £ million to one decimal, cost per case to the nearest £10)."""
    path = run.file(FINANCE_BY_YEAR_CSV)
    if path is None:
        return []
    table = pd.read_csv(path)
    years = [c for c in table.columns if re.fullmatch(r"\d{4}/\d{2}", str(c))]
    blocks = [Block("h2", "Finance"),
              Block("p", f"Priced from the same simulated activity ({FINANCE_MONTHLY_CSV}). Median of the "
                         "replications, with the range holding 90% of them in brackets; NHS financial years April "
                         "to March (the first and last are part years). Theatre teams are paid for every planned "
                         "session, so sessions lost cost money without activity.")]
    for scenario in dict.fromkeys(table["scenario"]):
        info = run.scenarios.get(str(scenario))
        rows = []
        for metric, label, kind in FINANCE_ROWS:
            sub = table[(table["scenario"] == scenario) & (table["metric"] == metric)].set_index("statistic")
            if sub.empty or ("p50" not in sub.index):
                continue
            cells = []
            for y in years:
                mid, lo, hi = (sub.loc[s, y] if s in sub.index else np.nan for s in ("p50", "p05", "p95"))
                text = _money(mid, kind)
                low, high = _money(lo, kind), _money(hi, kind)
                if low != high:
                    text += f" ({low} to {high})"
                cells.append(text)
            rows.append([label, *cells])
        if rows:
            blocks.append(Block("p", f"*{_md_escape(info.title if info else scenario)}*"))
            blocks.append(Block("table", header=["", *years], items=rows))
    return blocks


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}\n")
        elif b.kind == "h2":
            out.append(f"## {b.text}\n")
        elif b.kind in ("p", "subtitle"):
            out.append(b.text + "\n")
        elif b.kind == "ul":
            out.append("\n".join(f"- {x}" for x in b.items) + "\n")
        elif b.kind == "table":
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            for row in b.items:
                out.append("| " + " | ".join(str(c).replace("\n", " ") for c in row) + " |")
            out.append("")
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.rel})\n")
            if b.items:
                out.append(f"*{b.items[0]}*  \nVector version: [{Path(b.rel).with_suffix('.svg').name}]"
                           f"({Path(b.rel).with_suffix('.svg').as_posix()})\n")
    return "\n".join(out).rstrip() + "\n"


CSS = """
body{font-family:Arial,Helvetica,"Liberation Sans",sans-serif;color:#212b32;background:#f0f4f5;margin:0;line-height:1.5}
header{background:#005EB8;color:#fff;padding:24px 32px}
header h1{margin:0;font-size:1.7em}
header p{margin:6px 0 0;color:#E8EDEE}
main{max-width:1040px;margin:0 auto;padding:8px 32px 40px;background:#fff}
h2{color:#003087;border-bottom:3px solid #005EB8;padding-bottom:4px;margin-top:36px}
ul.headlines li{margin:8px 0;font-size:1.05em}
figure{margin:16px 0 24px}
figure img{max-width:100%;height:auto;border:1px solid #E8EDEE}
figcaption{color:#425563;font-size:.92em;margin-top:6px}
table{border-collapse:collapse;width:100%;margin:12px 0 20px;font-size:.93em}
th{background:#005EB8;color:#fff;text-align:left;padding:6px 8px;font-weight:bold}
td{border-bottom:1px solid #E8EDEE;padding:5px 8px;vertical-align:top}
tr:nth-child(even) td{background:#f7f9fa}
td.key{color:#425563;width:40%}
.note{color:#425563;font-size:.92em}
code{font-family:Consolas,"Courier New",monospace;font-size:.95em;background:#f0f4f5;padding:0 3px}
footer{max-width:1040px;margin:0 auto;padding:12px 32px;color:#768692;font-size:.85em}
@media print{body{background:#fff}main{padding:0}header{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
""".strip()


def render_html(blocks: list[Block], title: str, subtitle: str) -> str:
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "subtitle"):
            continue                     # the page header carries the title and subtitle
        if b.kind == "h2":
            body.append(f"<h2>{_inline_html(b.text)}</h2>")
        elif b.kind == "p":
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "ul":
            cls = ' class="headlines"' if b.text == "headlines" else ""
            body.append(f"<ul{cls}>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            rows = []
            key_cls = ' class="key"'
            for row in b.items:
                cells = "".join(f"<td{key_cls if i == 0 and b.text == 'kv' else ''}>{_inline_html(str(c))}</td>"
                                for i, c in enumerate(row))
                rows.append(f"<tr>{cells}</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        elif b.kind == "img":
            data = base64.b64encode(b.image.read_bytes()).decode("ascii")
            cap = f"<figcaption>{_inline_html(b.items[0])}</figcaption>" if b.items else ""
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.text)}">{cap}</figure>')
    return ("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
            f"<header><h1>{html.escape(title)}</h1><p>{_inline_html(subtitle)}</p></header>\n<main>\n"
            + "\n".join(body) +
            "\n</main>\n<footer>Generated by sim.outputs.report from the saved files of the run folder; the model was not "
            "re-run. Charts are also saved as PNG and SVG in the charts/ folder; the tables are in results.xlsx."
            "</footer>\n</body>\n</html>\n")


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
        "**What the ranges mean.** Lines are the median replication. Shaded bands and interval lines show the "
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
                     f"first scenario (*{_md_escape(run.scenarios[run.names[0]].title)}*) in the same replication "
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
        + ("The intervals show chance variation only." if not _intervals_in(m) else
           "The intervals show chance variation and the stated input ranges, not other input uncertainty."))
    return paras


def _intervals_in(manifest: dict) -> dict[str, dict[str, list[float]]]:
    """Per scenario, the inputs given as 80% intervals and drawn per replication (empty when none or fixed)."""
    if manifest.get("parameters_fixed_at_midpoints"):
        return {}
    return {name: keys for name, keys in (manifest.get("parameter_intervals") or {}).items() if keys}


def _uncertainty_text(manifest: dict) -> str:
    """Which kind of uncertainty the ranges show: run-to-run only, or run-to-run plus stated input ranges."""
    intervals = _intervals_in(manifest)
    if not intervals:
        fixed = (" Inputs given as [low, high] ranges were fixed at their midpoints for this run."
                 if manifest.get("parameters_fixed_at_midpoints") else "")
        return ("That is run-to-run variability of the outcome under the scenario's assumptions: it is **not** a "
                "confidence interval of the mean, and it does not include uncertainty in the assumptions themselves "
                "(demand, capacity, productivity), which is usually larger." + fixed)
    listed = "; ".join(f"*{_md_escape(name)}*: " + ", ".join(f"`{k}` {lo:g} to {hi:g}" for k, (lo, hi) in keys.items())
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
                    baselines: dict[str, dict], baseline_notes: list[str], chart_list: list[ChartOut],
                    assumptions: pd.DataFrame, provenance: list[tuple[str, str]]) -> tuple[list[Block], str, str]:
    infos = list(run.scenarios.values())
    if len(infos) == 1:
        title = f"{infos[0].title}: elective recovery simulation"
    else:
        title = f"Elective recovery simulation: {len(infos)} scenarios compared"
    first = infos[0]
    n_reps = max(i.replications for i in infos)
    subtitle = (f"North West London capacity simulator · {fmt_date(first.start)} to "
                f"{fmt_date(max(i.horizon_end for i in infos))} · {_plural(n_reps, 'replication')} · run "
                f"{_md_escape(run.label or run.path.name)}")
    blocks = [Block("h1", title), Block("subtitle", f"*{subtitle}*"), Block("h2", "Headlines"),
              Block("ul", "headlines", items=headlines(run, clearances, diffs, baselines))]
    for name, info in run.scenarios.items():
        desc = info.config.get("description")
        if desc:
            blocks.append(Block("p", f"*{_md_escape(info.title)}*: {_md_escape(str(desc).strip())}"))
    by_stem = {c.stem: c for c in chart_list}

    def chart(stem: str) -> None:
        c = by_stem.get(stem)
        if c:
            png = next(f for f in c.files if f.suffix == ".png")
            blocks.append(Block("img", c.title, items=[c.caption], image=png, rel=f"{CHARTS_DIR}/{png.name}"))

    blocks.append(Block("h2", "Long waits"))
    chart("waiting_over_52w")
    chart("clearance_dates")
    if clearances:
        header, rows = clearance_report_table(run, clearances)
        blocks.append(Block("table", header=header, items=rows))
    if diffs:
        blocks.append(Block("h2", "Scenarios compared"))
        blocks.append(Block("p", "Paired differences in the week of clearance from "
                                 f"*{_md_escape(run.scenarios[run.names[0]].title)}*, replication by replication "
                                 "(negative = sooner)."))
        header, rows = difference_report_table(run, diffs)
        blocks.append(Block("table", header=header, items=rows))
    blocks.append(Block("h2", "Waiting list"))
    chart("waiting_list")
    blocks.append(Block("h2", "Activity and capacity"))
    chart("activity")
    for note in baseline_notes:
        blocks.append(Block("p", note))
    lost = _sessions_lost_sentence(run)
    if lost:
        blocks.append(Block("p", lost))
    chart("sessions_lost")
    if "vaccinations" in by_stem or "covid_inpatients" in by_stem:
        blocks.append(Block("h2", "COVID-19 and vaccination"))
        chart("vaccinations")
        chart("covid_inpatients")
    blocks.extend(_finance_blocks(run))
    blocks.append(Block("h2", "Assumptions"))
    blocks.append(Block("p", f"From the resolved scenario ({SCENARIO_YAML} in the run folder: inheritance and "
                             "`--set` overrides applied)."))
    blocks.append(Block("table", "kv", header=[_md_escape(c) for c in assumptions.columns],
                        items=[[_md_escape(v) for v in row] for row in assumptions.itertuples(index=False)]))
    blocks.append(Block("h2", "Method"))
    for p in method_paragraphs(run):
        blocks.append(Block("p", p))
    blocks.append(Block("h2", "Provenance"))
    blocks.append(Block("table", "kv", header=["Item", "Value"],
                        items=[[_md_escape(k), _md_escape(v)] for k, v in provenance]))
    return blocks, title, subtitle


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
            parts.append(f"*{_md_escape(info.title)}* loses {fmt_num(lost, 0)} theatre sessions a week on average "
                         f"({fmt_pct(lost / planned)} of {fmt_int(planned)} planned)")
    return ("; ".join(parts) + ".") if parts else None


# ---------------------------------------------------------------------------------------------------------------
# Workbook
# ---------------------------------------------------------------------------------------------------------------


def _to_excel_dates(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    df = df.copy()
    for c in columns:
        if c in df:
            df[c] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else pd.Timestamp(v).to_pydatetime()
                     for v in df[c]]
            df[c] = df[c].astype(object)
    return df


def write_workbook(path: Path, run: RunFolder, comparison: pd.DataFrame, assumptions: pd.DataFrame,
                   provenance: list[tuple[str, str]]) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    weekly = _to_excel_dates(run.weekly, ["week_start"])
    if len(weekly) >= EXCEL_MAX_ROWS:           # more than a sheet holds: say so rather than cut rows silently
        weekly = pd.DataFrame({"note": [f"{WEEKLY_CSV} has {len(weekly):,} rows, more than an Excel sheet holds "
                                        f"({EXCEL_MAX_ROWS - 1:,}); use {WEEKLY_CSV} in the run folder."]})
    date_cols = [c for c in comparison.columns if "_week_p" in c or c in ("start_date", "end_of_run")]
    comparison = _to_excel_dates(comparison, date_cols)
    sheets: list[tuple[str, pd.DataFrame, str]] = [
        ("summary", run.summary, "A2"),
        ("weekly", weekly, "E2"),
        ("comparison", comparison, "C2"),
        ("replications", run.replications, "C2"),
        ("assumptions", assumptions, "B2"),
        ("provenance", pd.DataFrame(provenance, columns=["Item", "Value"]), "B2"),
    ]
    finance_path = run.file(FINANCE_BY_YEAR_CSV)
    if finance_path:                            # financial years as columns, the way NHS finance reports
        sheets.append(("finance", pd.read_csv(finance_path), "D2"))
    finance_months = run.file(FINANCE_MONTHLY_CSV)
    if finance_months:
        sheets.append(("finance_monthly", pd.read_csv(finance_months), "E2"))
    parameters_path = run.file(PARAMETERS_CSV)
    if parameters_path:                         # the value each replication drew for each [low, high] input
        sheets.append(("parameters", pd.read_csv(parameters_path), "D2"))
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df, freeze in sheets:
            df.to_excel(xw, sheet_name=name, index=False)
            ws = xw.sheets[name]
            ws.freeze_panes = freeze
            ws.auto_filter.ref = ws.dimensions if name in ("weekly", "summary", "replications") else None
            sample = df.head(300)
            for j, col in enumerate(df.columns, start=1):
                lengths = [len(str(col))] + [len(_cell_text(v)) for v in sample[col]]
                width = min(max(lengths) + 2, 60 if name in ("assumptions", "provenance") else 28)
                ws.column_dimensions[get_column_letter(j)].width = max(width, 8)
                fmt = None
                if name == "weekly" and col == "week_start":
                    fmt = "yyyy-mm-dd"
                elif name == "comparison" and col in date_cols:
                    fmt = "d mmmm yyyy"
                    ws.column_dimensions[get_column_letter(j)].width = 18
                elif df[col].dtype.kind == "f":
                    fmt = "#,##0.00" if name != "weekly" else "#,##0.###"
                elif df[col].dtype.kind in "iu":
                    fmt = "#,##0" if col not in ("replication", "week") else "0"
                if fmt:
                    for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j, max_row=len(df) + 1):
                        cell.number_format = fmt
            for cell in ws[1]:
                cell.font = Font(bold=True)
            if name in ("assumptions", "provenance"):
                for row in ws.iter_rows(min_row=2):
                    for cell in row:
                        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _cell_text(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:,.2f}"
    if isinstance(v, (dt.date, dt.datetime)):
        return "2021-06-07"
    return str(v)


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def build_report(run_dir: Path, label: str | None = None) -> list[Path]:
    """Write charts/ (PNG and SVG), results.xlsx, report.md and report.html into `run_dir`; return the paths.
    `label` names the run in the report when `run_dir` is a temporary folder not yet renamed into place.

    Reads only the saved files of the folder. All outputs are written into a hidden staging folder first and
    moved into place when every one of them is complete, report.html last.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    run.label = label or run_dir.name
    staging = run_dir / f".report.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        clearances = clearance_table(run)
        diffs = paired_differences(run)
        baselines: dict[str, dict] = {}
        notes: list[str] = []
        for name, info in run.scenarios.items():
            parsed, path = activity_baseline(info.config)
            if parsed:
                baselines[name] = parsed
            elif path:
                notes.append(f"*{_md_escape(info.title)}* has `{path}` without day cases or inpatients, so no "
                             "baseline is drawn.")
        chart_list = make_charts(run, clearances, baselines, staging / CHARTS_DIR)
        assumptions = assumptions_frame(run)
        provenance = provenance_rows(run)
        comparison = comparison_frame(run, clearances, diffs)
        write_workbook(staging / RESULTS_XLSX, run, comparison, assumptions, provenance)
        blocks, title, subtitle = build_documents(run, clearances, diffs, baselines, notes, chart_list, assumptions,
                                                  provenance)
        (staging / REPORT_MD).write_text(render_markdown(blocks), encoding="utf-8")
        (staging / REPORT_HTML).write_text(render_html(blocks, title, subtitle), encoding="utf-8")

        written: list[Path] = []
        (run_dir / CHARTS_DIR).mkdir(exist_ok=True)
        for c in chart_list:
            for f in c.files:
                final = run_dir / CHARTS_DIR / f.name
                os.replace(f, final)
                written.append(final)
        for name in (RESULTS_XLSX, REPORT_MD, REPORT_HTML):      # report.html last
            final = run_dir / name
            os.replace(staging / name, final)
            written.append(final)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.outputs.report",
                                     description="Build charts, report.md, report.html and results.xlsx for a run "
                                                 "folder from its saved files.")
    parser.add_argument("run_dir", type=Path, help=f"a finished run folder (holding {WEEKLY_CSV})")
    args = parser.parse_args(argv)
    try:
        written = build_report(args.run_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
