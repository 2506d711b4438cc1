"""The assumptions table (what the scenario stated) and the provenance table (how the run was made).

Read from the run folder's resolved scenario and manifest, never from the model. Labels, units and the meaning
of choices come from the scenario schema (sim.scenario.schema): a field's `title` is its label (else its key,
humanised), its unit (`json_schema_extra`, usually carried by its type, e.g. `Share`) says how a number reads,
and `value_labels` say what each value of a choice means. Some sections have a summary a board paper needs
(totals across sites, the start list by long wait, waves and hubs one a row); every other section, a new one
included, is shown key by key from the schema.
"""
from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.report.format import fmt_date, fmt_int, fmt_num, fmt_pct, fmt_pounds, humanise, plural_noun
from sim.outputs.run_folder import MANIFEST_JSON
from sim.outputs.run_reader import RunFolder, ScenarioInfo, as_date
from sim.scenario.schema import Scenario

Row = tuple[str, str]


# ---------------------------------------------------------------------------------------------------------------
# Labels and units, read from the schema
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """How one key of a scenario is shown: its label, unit and value labels from its schema field, and how to
    read what it holds (a section model's fields, or the entries of a mapping or list)."""

    label: str
    unit: str | None = None
    value_labels: Mapping[str, str] = field(default_factory=dict)
    model: type[BaseModel] | None = None
    entry: Shown | None = None

    def child(self, key: Any) -> Shown:
        """The key `key` inside this one: a field of the section, else an entry named by the scenario."""
        name = str(key)
        if self.model is not None and name in self.model.model_fields:
            info = self.model.model_fields[name]
            return _shown(name, info.annotation, [info])
        if self.entry is not None:
            return replace(self.entry, label=humanise(name))
        return Shown(humanise(name))


def _is_section_or_collection(annotation: Any) -> bool:
    return ((isinstance(annotation, type) and issubclass(annotation, BaseModel))
            or typing.get_origin(annotation) in (dict, list))


def _shown(key: str, annotation: Any, infos: list[FieldInfo]) -> Shown:
    """Read a field's annotation (Optional, Annotated and unions unwrapped) and its FieldInfos, the field's own
    first: those win over the ones its type carries."""
    infos = list(infos)
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *metadata = typing.get_args(annotation)
            infos += [m for m in metadata if isinstance(m, FieldInfo)]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = next((a for a in options if _is_section_or_collection(a)), options[0])
        else:
            break
    extra: dict[str, Any] = {}
    for info in reversed(infos):
        if isinstance(info.json_schema_extra, dict):
            extra.update(info.json_schema_extra)
    title = next((info.title for info in infos if info.title), None)
    entry = None
    if typing.get_origin(annotation) is dict:
        entry = _shown(key, typing.get_args(annotation)[1], [])
    elif typing.get_origin(annotation) is list:
        entry = _shown(key, typing.get_args(annotation)[0], [])
    model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return Shown(title or humanise(key), extra.get("unit"), dict(extra.get("value_labels") or {}), model, entry)


def _within(label: str) -> str:
    """A label inside a longer one: "Baseline sickness rate" -> "baseline sickness rate" (ERF, COVID-19 stay)."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _value_text(v: Any, shown: Shown | None = None, digits: int = 2) -> str:
    """A scenario value for a board paper, by the unit its schema field gives: shares as percentages, money in
    pounds, multipliers as ×; a choice by its label; dates in words."""
    unit = shown.unit if shown else None
    if _is_number(v) and unit == "share":
        return fmt_pct(v, digits)
    if _is_number(v) and unit == "pounds":
        return fmt_pounds(v)
    if _is_number(v) and unit == "multiplier":
        return f"×{fmt_num(v, 2)}"
    if isinstance(v, str) and shown and v in shown.value_labels:
        return shown.value_labels[v]
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (dt.date, dt.datetime)):
        return fmt_date(as_date(v))
    if isinstance(v, float):
        return fmt_num(v, 4)
    if isinstance(v, int):
        return fmt_int(v)
    if isinstance(v, list):
        return ", ".join(_value_text(x, shown.entry if shown else None, digits) for x in v) if v else "(none)"
    if v is None:
        return ""
    return str(v)


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (Mapping, list))


def _is_flat(v: Any) -> bool:
    return _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v))


_CELL = 240      # characters: a longer "key value; ..." summary is cut (an entry) or split into rows (a section)


def _mapping_text(node: Mapping, shown: Shown, limit: int | None = _CELL) -> str:
    """"key value; key value" for the scalar (and scalar-list) entries of a mapping, cut at `limit` characters."""
    parts = []
    for k, v in node.items():
        child = shown.child(k)
        if _is_flat(v):
            parts.append(f"{_within(child.label)} {_value_text(v, child)}")
        else:
            parts.append(f"{_within(child.label)}: {len(v)} entries")
    text = "; ".join(parts)
    return text if limit is None or len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _key_by_key(shown: Shown, node: Any) -> list[Row]:
    """Rows for a section shown from the schema alone: scalars one a row, small mappings on one row,
    collections by count and names. Nothing is left out silently: long entries are summarised."""
    label = shown.label
    if _is_flat(node):
        return [(label, _value_text(node, shown))]
    if isinstance(node, list):
        return [(label, f"{len(node)} entries")]
    rows: list[Row] = []
    for key, v in node.items():
        child = shown.child(key)
        name = f"{label}: {_within(child.label)}"
        if _is_flat(v):
            rows.append((name, _value_text(v, child)))
        elif isinstance(v, list):
            rows.append((name, f"{len(v)} entries" if v else "none"))
        elif v and all(isinstance(x, Mapping) for x in v.values()):
            if len(v) <= 6:
                for entry, sub in v.items():
                    rows.append((f"{name}: {humanise(entry).lower()}", _mapping_text(sub, child.child(entry))))
            else:
                rows.append((name, f"{len(v)}: " + ", ".join(humanise(c).lower() for c in v)))
        else:
            text = _mapping_text(v, child, limit=None)
            if len(text) > _CELL:
                rows += _key_by_key(replace(child, label=name), v)
            else:
                rows.append((name, text or "none"))
    return rows


def _stated(shown: Shown, node: Mapping, key: str, fmt: Callable[[Any], str] | None = None) -> list[Row]:
    """One row for a key the scenario states, labelled by the schema; a share with one decimal of a percent."""
    if key not in node:
        return []
    child = shown.child(key)
    return [(child.label, fmt(node[key]) if fmt else _value_text(node[key], child, digits=1))]


# ---------------------------------------------------------------------------------------------------------------
# Summaries of sections for a board paper
# ---------------------------------------------------------------------------------------------------------------


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


def _sessions_per_week(site: Mapping) -> float:
    by_day = (site.get("theatres") or {}).get("sessions_by_weekday") or {}
    return float(sum(v for v in by_day.values() if isinstance(v, (int, float))))


def _sites_of(cfg: Mapping) -> Mapping:
    sites = cfg.get("sites")
    return sites if isinstance(sites, Mapping) else {}


def _bank_holiday_rows(node: Any, shown: Shown, cfg: Mapping) -> list[Row]:
    extra = cfg.get("extra_bank_holidays") or []
    return [(shown.label, _value_text(node, shown) + (f" plus {len(extra)} extra closure days" if extra else ""))]


def _run_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    return [("Replications and seed", f"{node.get('replications', '')}; seed {node.get('seed', '')}")] if node else []


def _referral_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows = (_stated(shown, node, "referrals_per_week", fmt_int) + _stated(shown, node, "advice_and_guidance_share")
            + _stated(shown, node, "demand_growth_per_year"))
    if "seasonality_amplitude" in node:
        peak = node.get("seasonality_peak_day_of_year")
        when = ""
        if isinstance(peak, (int, float)):
            d = dt.date(2021, 1, 1) + dt.timedelta(days=int(peak) - 1)
            when = f", peaking around {d.day} {d:%B}"
        rows.append(("Seasonality", f"±{fmt_pct(node['seasonality_amplitude'])}{when}"))
    return rows


def _specialty_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    return [(shown.label, f"{len(node)}: " + ", ".join(_specialty_label(k) for k in node))] if node else []


def _borough_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    if not node:
        return []
    pop = sum(b.get("population", 0) for b in node.values() if isinstance(b, Mapping))
    return [(shown.label, f"{len(node)}, population {fmt_int(pop)}")]


def _site_rows(sites: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    """Theatre sessions, elective beds and first outpatient slots a week, by site and in total."""
    rows: list[Row] = []
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
        rows.append((f"Theatre sessions a week: {_site_label(key, site)}",
                     fmt_num(n) + (f" ({', '.join(detail)})" if detail else "")))
    if len(sites) > 1:
        rows.append(("Theatre sessions a week: all sites", fmt_num(total_sessions)))
    for key, site in sites.items():
        if isinstance(site, Mapping) and "elective_beds" in site:
            total_beds += site["elective_beds"]
            rows.append((f"Elective beds: {_site_label(key, site)}", fmt_int(site["elective_beds"])))
    if len(sites) > 1 and total_beds:
        rows.append(("Elective beds: all sites", fmt_int(total_beds)))
    for site in sites.values():
        slots = site.get("outpatient_first_slots_per_week") if isinstance(site, Mapping) else None
        if isinstance(slots, Mapping):
            total_slots += sum(v for v in slots.values() if isinstance(v, (int, float)))
    if total_slots:
        rows.append(("First outpatient slots a week: all sites", fmt_int(total_slots)))
    return rows


def _outpatient_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows = _stated(shown, node, "virtual_share")
    if "dna_rate_face_to_face" in node or "dna_rate_virtual" in node:
        rows.append(("Did-not-attend rate (face to face; virtual)",
                     f"{fmt_pct(node.get('dna_rate_face_to_face'))}; {fmt_pct(node.get('dna_rate_virtual'))}"))
    return rows


def _theatre_rule_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    return _stated(shown, node, "session_cancellation_rate") + _stated(shown, node, "on_the_day_cancellation_rate")


def _start_list_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    """Pathways waiting at the start and how many past each long-wait threshold (bands), or the RTT file."""
    rows: list[Row] = []
    bands = [b for b in node.get("bands") or [] if isinstance(b, Mapping)]
    if bands:
        rows.append(("Start list: pathways waiting", fmt_int(sum(b.get("count", 0) for b in bands))))
        for t in THRESHOLDS:
            n = sum(b.get("count", 0) for b in bands if b.get("from_weeks", 0) >= t)
            rows.append((f"Start list: waiting {t}+ weeks", fmt_int(n)))
    if node.get("rtt_csv"):
        sites = _sites_of(cfg)
        at = node.get("provider_sites") or {}
        providers = node.get("providers") or list(at)
        text = Path(str(node["rtt_csv"])).name
        if providers:
            text += "; providers " + ", ".join(
                str(p) + (f" (at {_site_label(at[p], sites.get(at[p]) or {})})" if p in at else "") for p in providers)
        rows.append(("Start list: RTT Full CSV", text))
        for key in ("calibrate_referrals_from_rtt", "calibrate_treatment_from_rtt"):
            if node.get(key):
                rows.append((f"Start list: {_within(shown.child(key).label)}", "yes"))
    return rows


def _removal_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows: list[Row] = []
    rates = [r for r in node.get("weekly_rate_by_weeks_waited") or [] if isinstance(r, Mapping)]
    if rates:
        rows.append(("Removals (other than treatment), a week",
                     "; ".join(f"{fmt_pct(r.get('weekly_rate'), 2)} from {fmt_int(r.get('from_weeks'))} weeks waited"
                               for r in rates)))
    rounds = [r for r in node.get("validation_rounds") or [] if isinstance(r, Mapping)]
    rows.append(("Validation rounds", "; ".join(
        f"{fmt_date(as_date(r.get('date')))}: {fmt_pct(r.get('share_removed'))} of those waiting "
        f"{fmt_int(r.get('min_weeks_waited'))}+ weeks removed" for r in rounds) or "none"))
    return rows


def _covid_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows: list[Row] = []
    label = shown.label
    waves = [w for w in node.get("waves") or [] if isinstance(w, Mapping)]
    if not waves and not node.get("inpatients_series") and not node.get("inpatients_csv"):
        rows.append((f"{label} waves", "none"))
    for i, w in enumerate(waves, start=1):
        name = w.get("name") or f"wave {i}"
        rows.append((f"{label} wave: {name}",
                     f"{fmt_date(as_date(w.get('start')))} to {fmt_date(as_date(w.get('end')))}, peak "
                     f"{fmt_int(w.get('peak_inpatients'))} inpatients around {fmt_date(as_date(w.get('peak')))}"
                     + (f" ({w['shape']})" if w.get("shape") else "")))
    series = [p for p in node.get("inpatients_series") or [] if isinstance(p, Mapping)]
    if series:
        peak = max(series, key=lambda p: p.get("inpatients", 0))
        first, last = (fmt_date(as_date(series[i].get("date"))) for i in (0, -1))
        rows.append((f"{label} inpatients series", f"{len(series)} points from {first} "
                     f"to {last}; peak {fmt_int(peak.get('inpatients'))} on "
                     f"{fmt_date(as_date(peak.get('date')))}"))
    rest = {k: v for k, v in node.items() if k not in ("waves", "inpatients_series")}
    return rows + _key_by_key(shown, rest)


def _hub_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows: list[Row] = []
    sites = _sites_of(cfg)
    for key, hub in (node.get("hubs") or {}).items():
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
        rows.append((shown.label, "none"))
    rest = {k: v for k, v in node.items() if k != "hubs"}
    return rows + _key_by_key(shown, rest)


def _staff_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows: list[Row] = []
    sites = _sites_of(cfg)
    groups = node.get("groups") or {}
    per_session = [_count_of(g.get("per_theatre_session"), k) for k, g in groups.items()
                   if isinstance(g, Mapping) and g.get("per_theatre_session")]
    if per_session:
        rows.append(("Staff per theatre session", ", ".join(per_session)))
    for site, groups_n in (node.get("establishment") or {}).items():
        if isinstance(groups_n, Mapping):
            rows.append((f"Staff establishment: {_site_label(site, sites.get(site) or {})}",
                         ", ".join(_count_of(v, k) for k, v in groups_n.items())))
    leave = node.get("annual_leave_rate_by_month")
    if isinstance(leave, Mapping) and leave:
        hi = max(leave, key=lambda m: leave[m])
        rows.append(("Staff annual leave by month", f"{fmt_pct(min(leave.values()))} to {fmt_pct(max(leave.values()))} "
                                                    f"(highest in {str(hi).capitalize()})"))
    rest = {k: v for k, v in node.items() if k not in ("groups", "establishment", "annual_leave_rate_by_month")}
    return rows + _key_by_key(shown, rest)


def _vaccination_rows(node: Mapping, shown: Shown, cfg: Mapping) -> list[Row]:
    rows: list[Row] = []
    centres = {k: c for k, c in (node.get("centres") or {}).items() if isinstance(c, Mapping)}
    if centres:
        kind = (shown.child("centres").entry or Shown("Centre")).child("kind")
        kinds: dict[str, int] = {}
        for c in centres.values():
            text = _value_text(c.get("kind", "centre"), kind).replace("_", " ")
            kinds[text] = kinds.get(text, 0) + 1
        stations = sum(c.get("stations", 0) or 0 for c in centres.values())
        surge = sum(c.get("surge_stations", 0) or 0 for c in centres.values())
        rows.append(("Vaccination centres", f"{len(centres)}: " + ", ".join(f"{n} {plural_noun(k, n)}"
                                                                             for k, n in kinds.items())
                     + f"; {fmt_int(stations)} stations" + (f" (+{fmt_int(surge)} in a surge)" if surge else "")))
    cohorts = [c for c in node.get("cohorts") or [] if isinstance(c, Mapping)]
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
    surge = node.get("surge")
    if isinstance(surge, Mapping):
        text = (f"from {fmt_date(as_date(surge.get('start')))} for {surge.get('weeks', '?')} weeks, target "
                f"{fmt_int(surge.get('target_doses_per_week'))} doses a week")
        if surge.get("redeploy_from"):
            text += (f"; staff redeployed from {', '.join(map(str, surge['redeploy_from']))} (up to "
                     f"{fmt_pct(surge.get('max_share_redeployed', 0))})")
        rows.append(("Vaccination surge", text))
    rest = {k: v for k, v in node.items() if k not in ("centres", "cohorts", "surge")}
    return rows + _key_by_key(shown, rest)


Summary = Callable[[Any, Shown, Mapping], list[Row]]     # (the section's value, its schema, the whole scenario)

# Sections with a summary of their own. The first group opens the table in this order; the second is shown where
# the scenario puts it. A section with no summary (booking_policy, targets, finance, any new section) is shown
# key by key from the schema, in the scenario's order after the first group.
_OPENING: dict[str, Summary | None] = {
    "booking_policy": None, "pooling": None, "bank_holidays": _bank_holiday_rows, "run": _run_rows,
    "referrals": _referral_rows, "specialties": _specialty_rows, "boroughs": _borough_rows, "sites": _site_rows,
    "outpatients": _outpatient_rows, "theatre_rules": _theatre_rule_rows, "start_list": _start_list_rows,
    "removals": _removal_rows,
}
_IN_PLACE: dict[str, Summary] = {
    "covid": _covid_rows, "surgical_hubs": _hub_rows, "staff": _staff_rows, "vaccination": _vaccination_rows,
}
# Keys described by the first rows (name is the run's key; the title names the scenario) or with another section.
_SHOWN_ELSEWHERE = {"name", "title", "description", "start_date", "horizon_weeks", "extra_bank_holidays"}


def _section_rows(scenario: Shown, section: str, node: Any, cfg: Mapping) -> list[Row]:
    """One section's rows: its summary (the saved scenario was validated, so a section has its schema's type;
    an optional one may be null), else key by key."""
    shown = scenario.child(section)
    summary = _OPENING.get(section) or _IN_PLACE.get(section)
    if summary is not None and node is not None:
        return summary(node, shown, cfg)
    return _key_by_key(shown, node)


def scenario_assumptions(info: ScenarioInfo, schema: type[BaseModel] = Scenario) -> list[Row]:
    """(assumption, value) rows for one scenario, in a fixed order, from its resolved scenario.yaml; labels and
    units from `schema`."""
    cfg = info.config
    scenario = Shown("Scenario", model=schema)
    rows: list[Row] = [("Title", info.title)]
    if not cfg:
        return rows + [("Scenario file", "not recorded in the run folder"),
                       ("Start date", fmt_date(info.start)),
                       ("Horizon", f"{info.horizon_weeks} weeks, to {fmt_date(info.horizon_end)}")]
    if cfg.get("description"):
        rows.append(("Description", str(cfg["description"]).strip()))
    rows.append(("Start date", fmt_date(as_date(cfg.get("start_date")) or info.start)))
    rows.append(("Horizon", f"{cfg.get('horizon_weeks', info.horizon_weeks)} weeks, to {fmt_date(info.horizon_end)}"))
    for section in _OPENING:
        if section in cfg:
            rows += _section_rows(scenario, section, cfg[section], cfg)
    for section, node in cfg.items():
        if section not in _OPENING and section not in _SHOWN_ELSEWHERE:
            rows += _section_rows(scenario, section, node, cfg)
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
        title = run.scenarios[name].title
        if title in table:          # two scenarios with one title: both columns kept, told apart by name
            title = f"{title} ({name})"
        table[title] = [d.get(k, "") for k in order]
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


# ---------------------------------------------------------------------------------------------------------------
# Key assumptions with their sources (the board paper's short list)
# ---------------------------------------------------------------------------------------------------------------

# The inputs a board asks about first: demand, delivered capacity, removals, the start list, the target, Covid,
# hubs, staff absence and the money. Shown when at least one scenario of the run states them.
KEY_ASSUMPTIONS = ("referrals.referrals_per_week", "referrals.demand_growth_per_year", "delivery.clinic_slots_scale",
                   "delivery.theatre_productivity_scale", "removals.rate_multiplier", "start_list",
                   "targets.no_52w_waiters_by", "covid.waves", "surgical_hubs.hubs", "staff.baseline_sickness_rate",
                   "finance.block_income_per_year", "finance.costs.theatre_session_staff",
                   "finance.costs.independent_sector_per_case")
SOURCE_TAGS = "[S] sourced, [D] derived, [E] estimate"
_KEY_LABELS = {"start_list": "Waiting list at the start", "covid.waves": "Covid-19 waves",
               "surgical_hubs.hubs": "Surgical hubs", "finance.costs.theatre_session_staff": "Theatre team, a session",
               "finance.costs.independent_sector_per_case": "Independent sector, a case"}
_NONE_WHEN_ABSENT = ("covid.waves", "surgical_hubs.hubs")     # no section: none of them


def _at(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _key_value_text(key: str, value: Any, shown: Shown) -> str:
    """A key assumption's value in a few words (a list or section by what it holds)."""
    if key == "start_list" and isinstance(value, Mapping):
        bands = [b for b in value.get("bands") or [] if isinstance(b, Mapping)]
        if bands:
            return f"{fmt_int(sum(float(b.get('count') or 0) for b in bands))} pathways in {len(bands)} bands"
        return "read from an RTT file" if value.get("rtt_csv") else "as stated"
    if key == "covid.waves" and isinstance(value, list):
        peaks = [fmt_int(w.get("peak_inpatients")) for w in value if isinstance(w, Mapping)]
        return "none" if not peaks else f"{len(peaks)}, peak " + " and ".join(peaks) + " inpatients"
    if key == "surgical_hubs.hubs" and isinstance(value, Mapping):
        return "none" if not value else ", ".join(
            str(hub.get("name") or k.replace("_", " ").title()) if isinstance(hub, Mapping) else str(k)
            for k, hub in value.items())
    return _value_text(value, shown)


def _stated_sources(run: RunFolder) -> dict[str, dict[str, str]] | None:
    """The manifest's `assumption_sources` (written by run and compare), only its string entries; None when the
    run did not record them (an older run, or a folder from elsewhere)."""
    recorded = run.manifest.get("assumption_sources")
    if not isinstance(recorded, Mapping):
        return None
    return {str(name): {str(k): str(v) for k, v in keys.items() if isinstance(v, str)}
            for name, keys in recorded.items() if isinstance(keys, Mapping)}


def key_assumptions(run: RunFolder) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of plain text: each key assumption's label, its value in each scenario, and its source as
    the scenario files tag it ([S]/[D]/[E] and the comment's words), from the manifest."""
    names = list(run.scenarios)
    root = Shown("Scenario", model=Scenario)
    sources = _stated_sources(run)
    header = ["Assumption", *(run.scenarios[n].title for n in names), f"Source ({SOURCE_TAGS})"]
    if len(names) == 1:
        header[1] = "Value"
    rows = []
    for key in KEY_ASSUMPTIONS:
        values = [_at(run.scenarios[n].config, key) for n in names]
        if all(v is None for v in values):
            continue
        shown = root
        for part in key.split("."):
            shown = shown.child(part)
        absent = "none" if key in _NONE_WHEN_ABSENT else "not stated"
        cells = [_key_value_text(key, v, shown) if v is not None else absent for v in values]
        if sources is None:
            source = "not recorded in this run"
        else:
            stated = dict.fromkeys(sources.get(n, {}).get(key, "") for n in names)
            stated.pop("", None)
            source = "; ".join(stated) if stated else "not tagged in the scenario files"
        rows.append([_KEY_LABELS.get(key, shown.label), *cells, source])
    return header, rows
