"""The assumptions table (what the scenario stated) and the provenance table (how the run was made).

Read from the run folder's resolved scenario and manifest, never from the model.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.report.format import fmt_date, fmt_int, fmt_num, fmt_pct, humanise, plural_noun
from sim.outputs.run_folder import MANIFEST_JSON, RunFolder, ScenarioInfo, as_date


def _count_of(n: Any, plural_key: str) -> str:
    """"7 surgeons", "1 surgeon" from a plural key such as theatre_nurses."""
    word = humanise(plural_key).lower()
    if isinstance(n, (int, float)) and n == 1 and word.endswith("s"):
        word = word[:-1]
    return f"{fmt_num(n, 2)} {word}"


def _specialty_label(key: str) -> str:
    return str(key).upper() if len(str(key)) <= 3 else humanise(key)


def _site_label(key: str, cfg: Mapping) -> str:
    name = cfg.get("name") if isinstance(cfg, Mapping) else None
    label = str(name).split(" (")[0].strip() if name else str(key).replace("_", " ").title()
    code = cfg.get("trust_code") if isinstance(cfg, Mapping) else None
    return f"{label} ({code})" if code else label


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
            parts.append(f"{humanise(k).lower()} {_scalar_text(k, v)}")
        elif isinstance(v, Mapping):
            parts.append(f"{humanise(k).lower()}: {len(v)} entries")
        elif isinstance(v, list):
            parts.append(f"{humanise(k).lower()}: {len(v)} entries")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _generic_section(section: str, node: Any) -> list[tuple[str, str]]:
    """Rows for a scenario section the report does not know: scalars one a row, small mappings on one row,
    collections by count and names. Nothing is left out silently: long entries are summarised."""
    label = humanise(section)
    if _is_scalar(node):
        return [(label, _scalar_text(section, node))]
    if isinstance(node, list):
        if all(_is_scalar(x) for x in node):
            return [(label, _value_text(node))]
        return [(label, f"{len(node)} entries")]
    rows: list[tuple[str, str]] = []
    for key, v in node.items():
        name = f"{label}: {humanise(key).lower()}"
        if _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)):
            rows.append((name, _scalar_text(key, v)))
        elif isinstance(v, list):
            rows.append((name, f"{len(v)} entries" if v else "none"))
        elif v and all(isinstance(x, Mapping) for x in v.values()):
            if len(v) <= 6:
                for child, sub in v.items():
                    rows.append((f"{name}: {humanise(child).lower()}", _mapping_text(sub)))
            else:
                rows.append((name, f"{len(v)}: " + ", ".join(humanise(c).lower() for c in v)))
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
                     f"{fmt_date(as_date(w.get('start')))} to {fmt_date(as_date(w.get('end')))}, peak "
                     f"{fmt_int(w.get('peak_inpatients'))} inpatients around {fmt_date(as_date(w.get('peak')))}"
                     + (f" ({w['shape']})" if w.get("shape") else "")))
    series = [p for p in cfg.get("inpatients_series") or [] if isinstance(p, Mapping)]
    if series:
        peak = max(series, key=lambda p: p.get("inpatients", 0))
        first, last = (fmt_date(as_date(series[i].get("date"))) for i in (0, -1))
        rows.append(("COVID-19 inpatients series", f"{len(series)} points from {first} "
                     f"to {last}; peak {fmt_int(peak.get('inpatients'))} on "
                     f"{fmt_date(as_date(peak.get('date')))}"))
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
            parts.append(f"opens {fmt_date(as_date(hub['opens']))}")
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
        rows.append(("Vaccination centres", f"{len(centres)}: " + ", ".join(f"{n} {plural_noun(k, n)}"
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
        text = (f"from {fmt_date(as_date(surge.get('start')))} for {surge.get('weeks', '?')} weeks, target "
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
        return fmt_date(as_date(v))
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
    add(("Start date", fmt_date(as_date(cfg.get("start_date")) or info.start)))
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
        f"{fmt_date(as_date(r.get('date')))}: {fmt_pct(r.get('share_removed'))} of those waiting "
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
            rows.append((humanise(key), str(v)))
    return rows
