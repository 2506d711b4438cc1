"""Validation: a merged scenario mapping becomes a frozen Scenario, or a ScenarioError listing every problem.

Field rules live on the models (sim.scenario.schema); the checks here tie sections together (names that must exist
elsewhere, dates inside the run) and turn pydantic's errors into one line each naming the file and the dotted key
path. Validation is strict: unknown keys (with a did-you-mean), wrong types, negative capacities, infinite or NaN
numbers ("expected a finite number", also in a [low, high] range or from `--set`), numbers above their limits
(sim.scenario.schema's MAX_* bounds), low/high pairs the wrong way round, shares that do not sum to 1 and
impossible dates are all errors. It reads no file: input files are read when the scenario is
built (sim.scenario.build), after these checks pass.
"""
from __future__ import annotations

import datetime as dt
import difflib
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.scenario.intervals import find_intervals, with_ends
from sim.scenario.schema import SHARE_TOLERANCE, Scenario, ScenarioError


def cross_reference_problems(raw: dict) -> list[str]:
    """Checks across sections (names that must exist elsewhere, dates inside the run), on the raw mapping.

    Run beside field validation so that every problem is reported in one pass; defensive about types
    because the raw mapping may itself be invalid (those errors are reported by field validation).
    """
    def mapping(value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    problems: list[str] = []
    specs = set(mapping(raw.get("specialties")))
    sites = set(mapping(raw.get("sites")))
    if "specialties" in raw and not specs:
        problems.append("specialties: at least one specialty is needed")
    if "sites" in raw and not sites:
        problems.append("sites: at least one site is needed")
    shares = [mapping(v).get("referral_share") for v in mapping(raw.get("specialties")).values()]
    numbers = [x for x in shares if isinstance(x, (int, float)) and math.isfinite(x)]   # else a field error
    if shares and len(numbers) == len(shares) and not math.isclose(sum(numbers), 1.0, abs_tol=SHARE_TOLERANCE):
        problems.append(f"specialties.*.referral_share: referral shares must sum to 1 (they sum to {sum(numbers):.6g})")

    def check(section: Any, path: str, known: set[str], kind: str) -> None:
        for key in mapping(section):
            if known and key not in known:
                problems.append(_unknown_ref(f"{path}.{key}", key, known, kind))

    for site_name, site in mapping(raw.get("sites")).items():
        site = mapping(site)
        check(mapping(site.get("theatres")).get("specialty_session_shares"),
              f"sites.{site_name}.theatres.specialty_session_shares", specs, "specialty")
        check(site.get("outpatient_first_slots_per_week"), f"sites.{site_name}.outpatient_first_slots_per_week",
              specs, "specialty")
    for name, borough in mapping(raw.get("boroughs")).items():
        check(mapping(borough).get("referred_site_shares"), f"boroughs.{name}.referred_site_shares", sites, "site")
    start_list = mapping(raw.get("start_list"))
    check(start_list.get("specialty_shares"), "start_list.specialty_shares", specs, "specialty")
    check(start_list.get("site_shares"), "start_list.site_shares", sites, "site")
    if isinstance(start_list.get("rtt_csv"), str):
        problems += _rtt_settings_problems(start_list, mapping(raw.get("sites")), specs)
    check(mapping(raw.get("outpatient_follow_ups")).get("specialty_multipliers"),
          "outpatient_follow_ups.specialty_multipliers", specs, "specialty")
    boroughs = mapping(raw.get("boroughs"))
    pops = [mapping(b).get("population") for b in boroughs.values()]
    counts = [p for p in pops if isinstance(p, int)]
    if boroughs and len(counts) == len(pops) and sum(counts) <= 0:
        problems.append("boroughs: total population must be positive")
    covid = mapping(raw.get("covid"))
    check(covid.get("site_shares"), "covid.site_shares", sites, "site")
    for name, hub in mapping(mapping(raw.get("surgical_hubs")).get("hubs")).items():
        hub = mapping(hub)
        host = hub.get("host_site")
        if isinstance(host, str) and sites and host not in sites:
            problems.append(_unknown_ref(f"surgical_hubs.hubs.{name}.host_site", host, sites, "site"))
        check(mapping(hub.get("theatres")).get("specialty_session_shares"),
              f"surgical_hubs.hubs.{name}.theatres.specialty_session_shares", specs, "specialty")
    staff = mapping(raw.get("staff"))
    groups = set(mapping(staff.get("groups")))
    check(staff.get("establishment"), "staff.establishment", sites, "site")
    if staff and isinstance(staff.get("establishment"), dict):
        for site_name in sorted(sites - set(staff["establishment"])):
            problems.append(f"staff.establishment.{site_name}: missing: a site without staff runs no sessions "
                            f"or clinics (give its establishment, or zeros if that is meant)")
    for site_name, counts in mapping(staff.get("establishment")).items():
        check(counts, f"staff.establishment.{site_name}", groups, "staff group")
    vacc = mapping(raw.get("vaccination"))
    boroughs_known = set(mapping(raw.get("boroughs")))
    for name, centre in mapping(vacc.get("centres")).items():
        centre = mapping(centre)
        b, src = centre.get("borough"), centre.get("staffed_from", "own")
        if isinstance(b, str) and b != "all" and boroughs_known and b not in boroughs_known:
            problems.append(_unknown_ref(f"vaccination.centres.{name}.borough", b, boroughs_known | {"all"}, "borough"))
        if isinstance(src, str) and src != "own" and sites and src not in sites:
            problems.append(_unknown_ref(f"vaccination.centres.{name}.staffed_from", src, sites | {"own"}, "site"))
        if isinstance(src, str) and src != "own" and not staff:
            problems.append(f"vaccination.centres.{name}.staffed_from: "
                            "a centre staffed from a site needs a staff section")
    cohorts = vacc.get("cohorts")
    for i, cohort in enumerate(cohorts if isinstance(cohorts, list) else []):
        b = mapping(cohort).get("borough")
        if isinstance(b, str) and boroughs_known and b not in boroughs_known:
            problems.append(_unknown_ref(f"vaccination.cohorts.{i}.borough", b, boroughs_known, "borough"))
    surge = mapping(vacc.get("surge"))
    for g in surge.get("redeploy_from", []) if isinstance(surge.get("redeploy_from"), list) else []:
        if g not in groups:
            problems.append(_unknown_ref("vaccination.surge.redeploy_from", str(g), groups, "staff group"))
    policy = raw.get("booking_policy")
    if (raw.get("long_wait_booking") is not None and isinstance(policy, str)
            and policy != "priority_then_longest_wait"):
        problems.append(f"long_wait_booking: applies with booking_policy priority_then_longest_wait only (got "
                        f"{policy!r}): it books routine patients ahead of other routine patients; leave it out "
                        "(long_wait_booking: null) with another policy")
    start = raw.get("start_date")
    if isinstance(start, dt.date):
        # A round after the horizon is simply not reached; one before the start cannot happen.
        rounds = mapping(raw.get("removals")).get("validation_rounds")
        for i, rnd in enumerate(rounds if isinstance(rounds, list) else []):
            d = mapping(rnd).get("date")
            if isinstance(d, dt.date) and d < start:
                problems.append(f"removals.validation_rounds.{i}.date: {d} is before the start date {start}")
    return problems


def _rtt_settings_problems(start_list: dict, sites: dict, specialties: set[str]) -> list[str]:
    """An RTT start list's mappings must name sites and specialties that exist; without provider_sites each site's
    trust_code is its provider code, so those must differ. The file itself is read when the scenario is built."""
    problems: list[str] = []
    provider_sites = start_list.get("provider_sites")
    if isinstance(provider_sites, dict):
        if not provider_sites:
            problems.append("start_list.provider_sites: required with rtt_csv (which model site each RTT provider "
                            "code is)")
        for code, site in provider_sites.items():
            if isinstance(site, str) and sites and site not in sites:
                problems.append(_unknown_ref(f"start_list.provider_sites.{code}", site, set(sites), "site"))
    elif provider_sites is None:
        codes = [str(site.get("trust_code", "")).strip().upper() for site in sites.values() if isinstance(site, dict)]
        shared = sorted({c for c in codes if codes.count(c) > 1})
        if shared:
            problems.append(f"start_list.provider_sites: required here: sites share trust_code {', '.join(shared)}")
    specialty_for = start_list.get("specialty_for_treatment_function")
    for code, specialty in (specialty_for.items() if isinstance(specialty_for, dict) else []):
        if isinstance(specialty, str) and specialties and specialty not in specialties:
            problems.append(_unknown_ref(f"start_list.specialty_for_treatment_function.{code}", specialty,
                                         specialties, "specialty"))
    return problems


def _unknown_ref(path: str, key: str, known: set[str], kind: str) -> str:
    hint = difflib.get_close_matches(key, sorted(known), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(sorted(known))})"
    return f"{path}: unknown {kind} {key!r}{extra}"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the pydantic model found by walking loc (used for did-you-mean)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:
            args = getattr(current, "__args__", ())
            # dict[str, X] or list[X]: step into X.
            inner = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not inner:
                return []
            current = inner[-1]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [name for name, field in current.model_fields.items() if not field.exclude]   # not derived fields
    return []


# pydantic's error types for a value that is not a number of the type wanted
_NOT_A_NUMBER = {"float_type", "int_type", "float_parsing", "int_parsing", "int_from_float"}


def _as_number(value: Any) -> float | None:
    """A number given, or text that reads as one (`--set key=inf` gives the string 'inf'); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _non_finite(err: Any) -> bool:
    """An error about `.inf`, `.nan`, or text reading as one where a number is wanted."""
    number = _as_number(err.get("input"))
    if number is None or math.isfinite(number):
        return False
    return err["type"] == "finite_number" or err["type"] in _NOT_A_NUMBER or not isinstance(err.get("input"), str)


def format_validation_errors(path: Path | str, exc: ValidationError) -> list[str]:
    """One line per problem pydantic found: file, dotted key path, and what was expected (with a did-you-mean
    for unknown keys). An infinite or NaN value is "expected a finite number", whatever the key's type; a number
    refused where a number or a keyword may stand (`replications: 10000000` vs `auto`) is not also told the
    keyword."""
    found: list[tuple[str, bool, str]] = []           # (dotted key, a keyword offered for a number, line)
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        # pydantic puts the tried union member into the location; drop those markers.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("dict[", "constrained-"))))
        loc = tuple(p for p in loc if p != "[key]")      # a mapping's key: the key itself is named just before
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        keyword_for_number = err["type"] == "literal_error" and _as_number(err.get("input")) is not None
        found.append((dotted, keyword_for_number, _error_line(path, loc, dotted, err)))
    other = {dotted for dotted, keyword_for_number, _ in found if not keyword_for_number}
    lines = [line for dotted, keyword_for_number, line in found if not (keyword_for_number and dotted in other)]
    # One line per problem, no repeats (union branches can report the same thing twice).
    return list(dict.fromkeys(lines))


def _error_line(path: Path | str, loc: tuple[Any, ...], dotted: str, err: Any) -> str:
    kind, got = err["type"], err.get("input")
    if kind == "finite_number" or _non_finite(err):
        return f"{path}: {dotted}: expected a finite number (got {got!r})"
    if kind == "extra_forbidden":
        known = _fields_at(Scenario, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"{path}: {dotted}: unknown key{extra}"
    if kind == "missing":
        return f"{path}: {dotted}: required key is missing"
    if kind == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{path}: {dotted}: {msg}"
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    return f"{path}: {dotted}: {err['msg']} (got {shown})"


def validate(raw: dict, source: Path | str) -> Scenario:
    """Turn a merged mapping into a Scenario or raise ScenarioError listing every problem.

    Numbers given as 80% intervals [low, high] (sim.scenario.intervals) are validated at their midpoint, and then
    with every interval at its low end and at its high end together, so a range that breaks a rule tying keys
    together (shares summing to one) is refused here; each replication's own draws are checked again before
    the run (sim.scenario.build.check_draws)."""
    mid_raw, intervals, interval_problems = find_intervals(Scenario, raw)
    # an end that is .inf or .nan: one line for the range (not its bounds, nor its midpoint, reported again)
    non_finite = {p.key: f"{p.key}: interval [{p.low:g}, {p.high:g}]: expected finite numbers"
                  for p in intervals if not (math.isfinite(p.low) and math.isfinite(p.high))}
    interval_problems = list(non_finite.values()) + [
        line for line in interval_problems if line.split(": ", 1)[0] not in non_finite]
    problems = [f"{source}: {p}" for p in interval_problems + cross_reference_problems(mid_raw)]
    scenario = None
    try:
        scenario = Scenario.model_validate(mid_raw)
    except ValidationError as exc:
        problems = [line for line in format_validation_errors(Path(source), exc)
                    if not any(f": {key}: " in line for key in non_finite)] + problems
    if scenario is not None and intervals and not problems:
        for end in ("low", "high"):
            end_raw = with_ends(mid_raw, intervals, end)
            prefix = f"{source}: with every [low, high] interval at its {end} end: "
            problems += [prefix + p for p in cross_reference_problems(end_raw)]
            try:
                Scenario.model_validate(end_raw)
            except ValidationError as exc:
                problems += [line.replace(f"{source}: ", prefix, 1)
                             for line in format_validation_errors(Path(source), exc)]
    if problems or scenario is None:
        raise ScenarioError(list(dict.fromkeys(problems)))
    return scenario.model_copy(update={"parameter_intervals": tuple(intervals)})
