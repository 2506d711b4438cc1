"""Calibrations from the RTT file a start list is read from: referral demand, theatre sessions and clinic slots.

Referrals (`start_list.calibrate_referrals_from_rtt`): referrals_per_week = the month's clock starts (Part_3)
x 12 / 52, grossed up for the share of requests advice and guidance diverts (the model's clock starts are
requests x (1 - share)), to 0.1.

Treatment (`start_list.calibrate_treatment_from_rtt`): a scenario that starts from NHS England's RTT Full CSV
treats patients at the rate each provider completed pathways in the file's month, not at a timetable written for
another place or year. Only the sites that an RTT provider of the selection is put at change
(sim.scenario.rtt_start_list maps providers to sites and treatment functions to specialties, as for the list);
other sites, surgical hubs, beds and staff keep the scenario's values.

Rules, for each calibrated site and specialty s:
- Admitted operations a week A_s = Part_1A_s x 12 / 52. Surgical hubs hosted at the site and open on the start
  date do H_s = min(their capacity for s, A_s x the share of s's cases a hub may take); the main theatres need
  (A_s - H_s) / c_s sessions a week, where c_s, the cases a planned session treats, is the cases the model's
  booking rule fits in a session (`booked_cases_per_session`) x (1 - on_the_day_cancellation_rate)
  x (1 - session_cancellation_rate). `sessions_by_weekday`: the sum rounded to the nearest whole session (halves
  up; at least 1 when any is needed), spread over the weekdays in proportion to the site's existing pattern by
  sim.core.apportionment.apportion (Monday to Friday if it had none). `specialty_session_shares`: each specialty's
  sessions over the sum, i.e. in proportion to the theatre minutes its cases need with their turnarounds and packing
  (4 decimals, the largest share taking the rounding).
- First outpatient slots a week = (Part_1A_s + Part_1B_s) x 12 / 52 x slots used per attended appointment,
  rounded to 0.1. In the model every pathway gets its decision to treat or its clock stop at a first
  appointment, so each completion used one attended slot; a did-not-attend also uses a slot and is rebooked
  (sim.model.outpatients), so slots are grossed up by the mean of 1 / (1 - DNA rate) over virtual and face-to-face
  appointments.
- Each specialty's `admitted_share` (the share of pathways that end in a decision to treat) = Part_1A_s /
  (Part_1A_s + Part_1B_s) over every calibrated site, to 3 decimals: the file's share of completed pathways
  that were admitted, which equals the share of referrals admitted when the list is steady (removals, which
  RTT completions leave out, are ignored). It is a specialty-wide input, so under the scenario it applies to
  every site's referrals; a specialty with no completions keeps the scenario's share. Without it the clinics
  would send the scenario's share to the theatres calibrated for the file's.
- Specialties with no completions in the file get no sessions and no slots. The file holds all of a provider's
  RTT activity (unmapped treatment functions go to other_specialty), so a specialty without completions had no
  treatment capacity there that month; keeping the scenario's figure would add another place's capacity to the
  provider's. Patients waiting in such a specialty are then not treated in the run: the notes name them.

Approximations: losses that depend on the state of the run are not grossed up (staff absence, beds, Covid,
bank holidays); the notes warn when the site's staff establishment or beds look too small for the calibrated
sessions. Hub capacity counts each hub's sessions for s as serving this site only; under `ics` pooling every
site's theatres and hubs book from one list, so sites share work the calibration sizes separately. The file's
month is taken as an average month (12 / 52 weeks).
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np

from sim.core.apportionment import apportion
from sim.core.sessions import mean_cases_per_session
from sim.scenario.rtt_start_list import RttStartList
from sim.scenario.schema import WEEKDAYS, Scenario, ScenarioError, Specialty, TheatreTemplate, Weekday

WEEKS_PER_MONTH = 52 / 12
SHARE_DECIMALS = 4
SLOT_DECIMALS = 1
PACKING_CASES = 100_000
PACKING_SEED = 6  # fixed: a calibration must not depend on the run's seed
WEEKDAYS_WHEN_NONE = ("mon", "tue", "wed", "thu", "fri")


@dataclass(frozen=True)
class SiteCalibration:
    """One site's capacity before and after calibrate_treatment_from_rtt, and the figures it came from."""

    site: str
    period: str                                   # e.g. "November 2024"
    admitted_per_month: dict[str, int]            # Part_1A by specialty
    non_admitted_per_month: dict[str, int]        # Part_1B by specialty
    hub_cases_per_week: dict[str, float]          # operations a week left to hubs hosted at the site
    hubs_open: tuple[str, ...]                    # hubs hosted at the site, open on the start date
    hubs_later: tuple[str, ...]                   # hubs hosted at the site that open later (on top)
    sessions_needed_per_week: float               # main-theatre sessions before rounding
    sessions_by_weekday: dict[Weekday, int]
    specialty_session_shares: dict[str, float]
    outpatient_first_slots_per_week: dict[str, float]
    slots_per_attendance: float                   # DNA gross-up
    sessions_before: dict[Weekday, int]
    shares_before: dict[str, float]
    slots_before: dict[str, float]
    warnings: tuple[str, ...]

    @property
    def admitted_per_week(self) -> float:
        return sum(self.admitted_per_month.values()) / WEEKS_PER_MONTH

    @property
    def sessions_per_week(self) -> int:
        return sum(self.sessions_by_weekday.values())

    @property
    def slots_per_week(self) -> float:
        return sum(self.outpatient_first_slots_per_week.values())


def _lognormal(mean: float, cv: float, z: np.ndarray) -> np.ndarray:
    """Lognormal draws with this mean and coefficient of variation, as sim.model.referrals parameterises cases."""
    sigma = math.sqrt(math.log1p(cv * cv))
    return np.exp(math.log(mean) - sigma * sigma / 2 + sigma * z)


@functools.lru_cache(maxsize=512)
def booked_cases_per_session(inpatient_share: float, day_case_minutes: tuple[float, float],
                             inpatient_minutes: tuple[float, float], bookable_minutes: float,
                             turnaround_minutes: float, productivity: float = 1.0) -> float:
    """Mean cases a session books under the model's rule (sim.core.sessions, which the theatres run).

    Why not bookable / (mean minutes + turnaround): a session takes cases while their minutes fit, always takes its
    first, and the first case that does not fit opens the next session, so whole cases fill fewer minutes than the
    mean suggests: 80% of that figure for the baseline's trauma and orthopaedics (long, variable cases), 97% for
    ophthalmology. The rule is run over one fixed stream of PACKING_CASES cases (minutes lognormal with the
    specialty's mean and cv, inpatient with `inpatient_share`; fixed seed, so the calibration is the same every
    time); the last, possibly cut-short session is left out. Minutes are divided by `productivity` (a hub's
    multiplier) as the model does; turnarounds are not.
    """
    minutes = packing_stream(inpatient_share, day_case_minutes, inpatient_minutes, productivity)
    booked = mean_cases_per_session(minutes.tolist(), bookable_minutes, turnaround_minutes)
    return booked if booked is not None else bookable_minutes / (float(minutes.mean()) + turnaround_minutes)


def packing_stream(inpatient_share: float, day_case_minutes: tuple[float, float],
                   inpatient_minutes: tuple[float, float], productivity: float = 1.0) -> np.ndarray:
    """The fixed stream of case minutes `booked_cases_per_session` books sessions from (fixed seed)."""
    rng = np.random.default_rng(PACKING_SEED)
    inpatient = rng.random(PACKING_CASES) < inpatient_share
    z = rng.standard_normal(PACKING_CASES)
    return np.where(inpatient, _lognormal(*inpatient_minutes, z), _lognormal(*day_case_minutes, z)) / productivity


def slots_per_attendance(scenario: Scenario) -> float:
    """First-appointment slots used per attended appointment: each DNA uses a slot and the patient is rebooked
    (geometric number of DNAs, so 1 / (1 - rate) slots), weighted by the virtual share."""
    op = scenario.outpatients
    return op.virtual_share / (1 - op.dna_rate_virtual) + (1 - op.virtual_share) / (1 - op.dna_rate_face_to_face)


def _treated_per_session(spec: Specialty, inpatient_share: float, template: TheatreTemplate, scenario: Scenario,
                         productivity: float = 1.0) -> float:
    """Cases a planned session treats: booked cases less on-the-day and whole-session cancellations."""
    rules = scenario.theatre_rules
    booked = booked_cases_per_session(
        round(float(inpatient_share), 12),
        (spec.theatre_minutes_day_case.mean, spec.theatre_minutes_day_case.cv),
        (spec.theatre_minutes_inpatient.mean, spec.theatre_minutes_inpatient.cv),
        template.session_minutes * template.utilisation_cap, template.turnaround_minutes, productivity)
    return booked * (1 - rules.on_the_day_cancellation_rate) * (1 - rules.session_cancellation_rate)


def _short_stay_share(spec: Specialty, max_los_days: float) -> float:
    """Share of the specialty's inpatients a hub may take: stay max(exponential(mean), 1 day) <= max_los_days."""
    if max_los_days < 1:
        return 0.0
    return 1.0 if spec.los_days_mean <= 0 else 1 - math.exp(-max_los_days / spec.los_days_mean)


def _bed_days_per_inpatient(spec: Specialty) -> float:
    """Mean of max(exponential(mean), 1): the model's length of stay of an inpatient."""
    m = spec.los_days_mean
    return 1.0 + m * math.exp(-1 / m) if m > 0 else 1.0


def _weekday_sessions(total: int, before: dict[Weekday, int]) -> dict[Weekday, int]:
    """`total` sessions spread like the existing weekday pattern (Monday to Friday if it had none)."""
    weights = [float(before.get(d, 0)) for d in WEEKDAYS]
    if sum(weights) <= 0:
        weights = [1.0 if d in WEEKDAYS_WHEN_NONE else 0.0 for d in WEEKDAYS]
    counts = apportion(total, weights)
    return {d: n for d, n in zip(WEEKDAYS, counts, strict=True) if d in before or n}


def _round_shares(sessions: dict[str, float]) -> dict[str, float]:
    total = sum(sessions.values())
    shares = {s: round(n / total, SHARE_DECIMALS) for s, n in sessions.items()}
    biggest = max(shares, key=lambda s: shares[s])
    shares[biggest] = round(shares[biggest] + 1 - sum(shares.values()), SHARE_DECIMALS)
    return shares


def _rtt_of(scenario: Scenario) -> RttStartList:
    """The start list's RTT counts: the calibrations apply only to a list read from rtt_csv."""
    rtt = scenario.start_list.rtt
    if rtt is None:
        raise ValueError(f"{scenario.name}: the RTT calibrations need the start list read from rtt_csv "
                         "(sim.scenario.build.build_start_list)")
    return rtt


def calibrate_site(scenario: Scenario, site_name: str) -> SiteCalibration:
    """The site's calibrated theatre timetable and clinic slots from its RTT completions (module rules)."""
    rtt = _rtt_of(scenario)
    site = scenario.sites[site_name]
    theatres = site.theatres
    specs = scenario.specialties
    admitted, non_admitted = rtt.completions_at(site_name)
    target = {s: admitted.get(s, 0) / WEEKS_PER_MONTH for s in specs}

    # Surgical hubs hosted here: those open on the start date take their share first; later ones add on top.
    hubs = scenario.surgical_hubs.hubs if scenario.surgical_hubs else {}
    hosted = {name: hub for name, hub in hubs.items() if hub.host_site == site_name}
    open_now = {name: hub for name, hub in hosted.items() if hub.opens <= scenario.start_date}
    max_los = scenario.surgical_hubs.inpatient_max_los_days if scenario.surgical_hubs else 0.0
    hub_cases: dict[str, float] = {}
    main_inpatient_share: dict[str, float] = {}
    for s, spec in specs.items():
        day_case = spec.day_case_share
        eligible = day_case + (1 - day_case) * _short_stay_share(spec, max_los)
        hub_inpatient = (1 - day_case) * _short_stay_share(spec, max_los) / eligible if eligible > 0 else 0.0
        capacity = sum(sum(hub.theatres.sessions_by_weekday.values())
                       * hub.theatres.specialty_session_shares.get(s, 0.0)
                       * _treated_per_session(spec, hub_inpatient, hub.theatres, scenario, hub.productivity_multiplier)
                       for hub in open_now.values())
        hub_cases[s] = min(capacity, target[s] * eligible)
        main = target[s] - hub_cases[s]
        main_inpatient_share[s] = (min(1.0, max(0.0, (target[s] * (1 - day_case) - hub_cases[s] * hub_inpatient)
                                                / main)) if main > 0 else 1 - day_case)

    per_session = {s: _treated_per_session(specs[s], main_inpatient_share[s], theatres, scenario) for s in specs}
    if any(per_session[s] <= 0 and target[s] > hub_cases[s] for s in specs):
        raise ScenarioError([f"{scenario.name}: start_list.calibrate_treatment_from_rtt: a planned session treats "
                             "nobody (theatre_rules.session_cancellation_rate is 1), so no timetable reproduces "
                             "the file's admitted completions"])
    needed = {s: (target[s] - hub_cases[s]) / per_session[s] if target[s] - hub_cases[s] > 0 else 0.0
              for s in specs}
    sessions_needed = sum(needed.values())
    total = max(1, math.floor(sessions_needed + 0.5)) if sessions_needed > 0 else 0
    by_weekday = _weekday_sessions(total, dict(theatres.sessions_by_weekday))
    shares = _round_shares(needed) if sessions_needed > 0 else dict(theatres.specialty_session_shares)

    per_attendance = slots_per_attendance(scenario)
    slots = {s: round((admitted.get(s, 0) + non_admitted.get(s, 0)) / WEEKS_PER_MONTH * per_attendance,
                      SLOT_DECIMALS) for s in specs}

    warnings = _warnings(scenario, site_name, by_weekday, open_now, target, main_inpatient_share, hub_cases,
                         admitted, non_admitted)
    return SiteCalibration(
        site=site_name, period=f"{rtt.census_date:%B %Y}", admitted_per_month=admitted,
        non_admitted_per_month=non_admitted, hub_cases_per_week=hub_cases, hubs_open=tuple(open_now),
        hubs_later=tuple(n for n in hosted if n not in open_now), sessions_needed_per_week=sessions_needed,
        sessions_by_weekday=by_weekday, specialty_session_shares=shares, outpatient_first_slots_per_week=slots,
        slots_per_attendance=per_attendance, sessions_before=dict(theatres.sessions_by_weekday),
        shares_before=dict(theatres.specialty_session_shares), slots_before=dict(site.outpatient_first_slots_per_week),
        warnings=tuple(warnings))


def _warnings(scenario: Scenario, site_name: str, by_weekday: dict[Weekday, int], open_hubs: dict, target: dict,
              main_inpatient_share: dict, hub_cases: dict, admitted: dict, non_admitted: dict) -> list[str]:
    """What the calibration leaves alone but may stop the site delivering its completions."""
    out = []
    rtt = _rtt_of(scenario)
    waiting: dict[str, int] = {}
    waiting_admitted: dict[str, int] = {}
    for site, spec, op, adm in rtt.cells:
        if site == site_name:
            waiting[spec] = waiting.get(spec, 0) + int(op.sum() + adm.sum())
            waiting_admitted[spec] = waiting_admitted.get(spec, 0) + int(adm.sum())
    idle = {s: waiting.get(s, 0) for s in scenario.specialties if s not in admitted and s not in non_admitted}
    if idle:
        out.append("no completions in the file, so no sessions or slots, for: "
                   + ", ".join(f"{s} ({n:,} waiting)" for s, n in sorted(idle.items())))
    no_theatre = {s: n for s, n in waiting_admitted.items() if n and s not in admitted and s not in idle}
    if no_theatre:
        out.append("no admitted completions (Part_1A), so no theatre sessions, for specialties with patients on the "
                   "admitted list: " + ", ".join(f"{s} ({n:,})" for s, n in sorted(no_theatre.items())))
    staff = scenario.staff
    if staff is not None:
        groups = {g: grp for g, grp in staff.groups.items() if grp.per_theatre_session > 0}
        establishment = staff.establishment.get(site_name, {})
        if groups:
            cover = min(establishment.get(g, 0) * grp.theatre_sessions_per_day / grp.per_theatre_session
                        for g, grp in groups.items())
            shared = [hub.theatres.sessions_by_weekday for hub in open_hubs.values()
                      if hub.staff_establishment is None]
            busiest = max(by_weekday.get(d, 0) + sum(h.get(d, 0) for h in shared) for d in WEEKDAYS)
            if busiest > cover:
                out.append(f"staff: the busiest day's {busiest} sessions need more theatre teams than the "
                           f"establishment covers with nobody absent ({math.floor(cover)}); staff.establishment is "
                           "not calibrated")
    specs = scenario.specialties
    bed_days = sum((target[s] - hub_cases[s]) * main_inpatient_share[s] * _bed_days_per_inpatient(specs[s])
                   for s in specs)
    beds = scenario.sites[site_name].elective_beds
    if bed_days > 7 * beds:
        out.append(f"beds: the main theatres' inpatients need about {bed_days:,.0f} bed-days a week, more than "
                   f"{beds} elective beds hold ({7 * beds:,}); elective_beds is not calibrated")
    return out


def treatment_calibration(scenario: Scenario) -> tuple[SiteCalibration, ...]:
    """calibrate_site for every site an RTT provider of the start list is put at."""
    rtt = _rtt_of(scenario)
    return tuple(calibrate_site(scenario, site) for site in rtt.calibrated_sites)


ADMITTED_SHARE_DECIMALS = 3


def calibrated_admitted_shares(records: tuple[SiteCalibration, ...]) -> dict[str, tuple[float, int, int]]:
    """Per specialty with completions: (admitted share, Part_1A, Part_1B) summed over the calibrated sites."""
    totals: dict[str, list[int]] = {}
    for rec in records:
        for s, n in rec.admitted_per_month.items():
            totals.setdefault(s, [0, 0])[0] += n
        for s, n in rec.non_admitted_per_month.items():
            totals.setdefault(s, [0, 0])[1] += n
    return {s: (round(a / (a + b), ADMITTED_SHARE_DECIMALS), a, b) for s, (a, b) in totals.items() if a + b > 0}


def apply_treatment_calibration(scenario: Scenario, records: tuple[SiteCalibration, ...], raw: dict
                                ) -> tuple[Scenario, dict]:
    """The scenario and its plain mapping (so the resolved scenario saved with a run carries the values) with each
    calibrated site's sessions_by_weekday, specialty_session_shares and outpatient_first_slots_per_week replaced by
    its record (`treatment_calibration`), and each specialty's admitted_share from the completions."""
    sites = dict(scenario.sites)
    raw = copy.deepcopy(raw)
    for rec in records:
        site = sites[rec.site]
        theatres = site.theatres.model_copy(update={"sessions_by_weekday": dict(rec.sessions_by_weekday),
                                                    "specialty_session_shares": dict(rec.specialty_session_shares)})
        sites[rec.site] = site.model_copy(update={"theatres": theatres, "outpatient_first_slots_per_week":
                                                  dict(rec.outpatient_first_slots_per_week)})
        raw_site = raw["sites"][rec.site]
        raw_site.setdefault("theatres", {})["sessions_by_weekday"] = dict(rec.sessions_by_weekday)
        raw_site["theatres"]["specialty_session_shares"] = dict(rec.specialty_session_shares)
        raw_site["outpatient_first_slots_per_week"] = dict(rec.outpatient_first_slots_per_week)
    specialties = dict(scenario.specialties)
    for s, (share, _, _) in calibrated_admitted_shares(records).items():
        if s in specialties:
            specialties[s] = specialties[s].model_copy(update={"admitted_share": share})
            raw.setdefault("specialties", {}).setdefault(s, {})["admitted_share"] = share
    return scenario.model_copy(update={"sites": sites, "specialties": specialties}), raw


def treatment_calibration_notes(scenario: Scenario, applied: tuple[SiteCalibration, ...] | None = None) -> list[str]:
    """One line per calibrated quantity per site (theatre sessions, outpatient slots), then any warnings.
    `applied`: the records apply_treatment_calibration used (their values before it); None when it has not been
    applied to this scenario, and the notes then say what it would set."""
    key = "start_list.calibrate_treatment_from_rtt"
    records = applied if applied is not None else treatment_calibration(scenario)
    notes = []
    for rec in records:
        site = scenario.sites[rec.site]
        in_use = (dict(site.theatres.sessions_by_weekday) == rec.sessions_by_weekday
                  and dict(site.theatres.specialty_session_shares) == rec.specialty_session_shares
                  and dict(site.outpatient_first_slots_per_week) == rec.outpatient_first_slots_per_week)
        admitted = sum(rec.admitted_per_month.values())
        non_admitted = sum(rec.non_admitted_per_month.values())
        hubs = sum(rec.hub_cases_per_week.values())
        theatre_how = (f"from {admitted:,} admitted completions (Part_1A) in {rec.period} x 12 / 52 = "
                       f"{rec.admitted_per_week:,.1f} a week"
                       + (f", less {hubs:,.1f} a week at hub(s) {', '.join(rec.hubs_open)}" if rec.hubs_open else "")
                       + f" ({rec.sessions_needed_per_week:,.1f} sessions needed, to the nearest whole; "
                         "specialty_session_shares by theatre minutes needed)"
                       + (f"; hub(s) {', '.join(rec.hubs_later)} open later and add to it" if rec.hubs_later else ""))
        slots_how = (f"from {admitted + non_admitted:,} completed pathways (Part_1A {admitted:,} + Part_1B "
                     f"{non_admitted:,}) in {rec.period} x 12 / 52, x {rec.slots_per_attendance:.3f} for DNAs")
        sessions_was = sum(rec.sessions_before.values())
        slots_was = sum(rec.slots_before.values())
        if in_use:
            notes.append(f"{key}: {rec.site} theatres {rec.sessions_per_week:,} sessions a week (was "
                         f"{sessions_was:,}) {theatre_how}")
            notes.append(f"{key}: {rec.site} outpatient first slots {rec.slots_per_week:,.1f} a week (was "
                         f"{slots_was:,.1f}) {slots_how}")
        else:
            notes.append(f"{key}: NOT applied by this command; {rec.site} theatres would have "
                         f"{rec.sessions_per_week:,} sessions a week (the run uses "
                         f"{sum(site.theatres.sessions_by_weekday.values()):,}) {theatre_how}")
            notes.append(f"{key}: NOT applied by this command; {rec.site} outpatient first slots would be "
                         f"{rec.slots_per_week:,.1f} a week (the run uses "
                         f"{sum(site.outpatient_first_slots_per_week.values()):,.1f}) {slots_how}")
        notes.extend(f"{key}: {rec.site}: {w}" for w in rec.warnings)
    for s, (share, a, b) in calibrated_admitted_shares(records).items():
        if s not in scenario.specialties:
            continue
        used = scenario.specialties[s].admitted_share
        how = f"from Part_1A {a:,} / (Part_1A {a:,} + Part_1B {b:,}) in the file"
        notes.append(f"{key}: specialties.{s}.admitted_share = {share:g} {how}" if applied is not None
                     else f"{key}: NOT applied by this command; specialties.{s}.admitted_share would be {share:g} "
                          f"{how} (the run uses {used:g})")
    return notes


def rtt_referrals_per_week(rtt: RttStartList, advice_and_guidance_share: float) -> float:
    """Referral requests a week implied by the month's clock starts (module rules)."""
    if advice_and_guidance_share >= 1:
        raise ValueError("referrals.advice_and_guidance_share is 1: no referral rate reproduces the clock starts")
    return round(rtt.clock_starts_in_month * 12 / 52 / (1 - advice_and_guidance_share), 1)


def apply_referral_calibration(scenario: Scenario, raw: dict) -> tuple[Scenario, dict]:
    """The scenario and its plain mapping with referrals.referrals_per_week from the RTT clock starts."""
    value = rtt_referrals_per_week(_rtt_of(scenario), scenario.referrals.advice_and_guidance_share)
    referrals = scenario.referrals.model_copy(update={"referrals_per_week": value})
    raw = copy.deepcopy(raw)
    raw.setdefault("referrals", {})["referrals_per_week"] = value
    return scenario.model_copy(update={"referrals": referrals}), raw
