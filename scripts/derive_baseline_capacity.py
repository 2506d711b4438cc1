"""Derive the baseline scenario's clinic slots, theatre sessions and beds from its demand assumptions.

Run: python scripts/derive_baseline_capacity.py [scenarios/core/nwl_june_2021_plan.yaml] [--model-rules]
Prints, per site, the weekly first-outpatient slots by specialty and the theatre sessions a week with
specialty shares, sized as (steady weekly demand routed to the site) x margin, after allowing for DNAs,
cancellations and imperfect packing of sessions. The printed figures are what the plan holds
(scenarios/core/nwl_june_2021_plan.yaml; tests/test_derivations.py re-derives them and checks); the margins are
planning estimates [E], stated in that file's header.

Two rules here are not the model's own, and are kept because the plan was sized with them: re-deriving with the
model's rules would move the plan, and every result and the golden snapshot with it. `--model-rules` prints
what the model's rules give instead.
- Session packing: a flat PACKING_EFFICIENCY of the bookable minutes is taken to hold whole cases. The model books
  sessions by the rule in sim.core.sessions, which the RTT calibration sizes with too
  (sim.scenario.calibration.booked_cases_per_session): by specialty it books from 0.93 (trauma and orthopaedics:
  long, variable cases) to 1.13 (ophthalmology: short ones) times the cases this packing assumes, which would move
  the specialty shares by up to 0.018 (the session totals happen to hold).
- DNAs: slots are grossed up by 1 / (1 - the mean DNA rate). Each attendance in the model uses on average the mean of
  1 / (1 - rate) over virtual and face-to-face appointments (sim.scenario.calibration.slots_per_attendance), 0.02%
  more, which would add one slot to imperial's and lnwh's trauma and orthopaedics and to lnwh's other.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from sim.core.apportionment import apportion
from sim.scenario.calibration import booked_cases_per_session, slots_per_attendance
from sim.scenario.schema import WEEKDAYS, Scenario
from sim.scenario.validate import validate
from sim.scenario.yaml_files import load_raw

OUTPATIENT_MARGIN = 1.06
THEATRE_MARGIN = 1.08
BED_HEADROOM = 1.3
# share of bookable minutes filled with whole cases (measured: 0.73 of 0.85 in a baseline run)
PACKING_EFFICIENCY = 0.86
SHARE_DECIMALS = 3
THEATRE_WEEKDAYS = WEEKDAYS[:5]


@dataclass(frozen=True)
class SiteCapacity:
    """One site's derived capacity, in the form the plan holds it."""

    referral_share: float
    outpatient_first_slots_per_week: dict[str, int]
    sessions_per_week: int
    specialty_session_shares: dict[str, float]
    sessions_by_weekday: dict[str, int]            # Monday to Friday
    elective_beds: int


def site_referral_shares(scenario: Scenario) -> dict[str, float]:
    """Share of all referrals each site receives: boroughs weighted by population."""
    total_population = sum(b.population for b in scenario.boroughs.values())
    return {site: sum(b.population / total_population * b.referred_site_shares.get(site, 0)
                      for b in scenario.boroughs.values())
            for site in scenario.sites}


def first_slots_needed(scenario: Scenario, attendances: float, model_rules: bool) -> float:
    """First-appointment slots that many attendances use, DNAs (who are rebooked) included."""
    if model_rules:
        return attendances * slots_per_attendance(scenario)
    op = scenario.outpatients
    dna = op.virtual_share * op.dna_rate_virtual + (1 - op.virtual_share) * op.dna_rate_face_to_face
    return attendances / (1 - dna)


def cases_per_session(scenario: Scenario, site: str, specialty: str, model_rules: bool) -> float:
    """Cases a session of the site's main theatres books for the specialty."""
    spec, template = scenario.specialties[specialty], scenario.sites[site].theatres
    bookable = template.session_minutes * template.utilisation_cap
    day_case, inpatient = spec.theatre_minutes_day_case, spec.theatre_minutes_inpatient
    if model_rules:
        return booked_cases_per_session(round(1 - spec.day_case_share, 12), (day_case.mean, day_case.cv),
                                        (inpatient.mean, inpatient.cv), bookable, template.turnaround_minutes)
    mean_minutes = spec.day_case_share * day_case.mean + (1 - spec.day_case_share) * inpatient.mean
    return bookable * PACKING_EFFICIENCY / (mean_minutes + template.turnaround_minutes)


def derive_capacity(scenario: Scenario, model_rules: bool = False) -> dict[str, SiteCapacity]:
    """Every site's slots, sessions, shares and beds; with `model_rules`, sized by the model's packing and DNA rules
    (see the module docstring) rather than those the plan was sized with."""
    ref = scenario.referrals
    clock_starts = ref.referrals_per_week * (1 - ref.advice_and_guidance_share)
    rules = scenario.theatre_rules
    out = {}
    for site, share in site_referral_shares(scenario).items():
        slots, sessions = {}, {}
        bed_days = 0.0
        for name, spec in scenario.specialties.items():
            demand = clock_starts * share * spec.referral_share
            slots[name] = round(first_slots_needed(scenario, demand, model_rules) * OUTPATIENT_MARGIN)
            decisions_to_treat = demand * spec.admitted_share
            treated_per_session = (cases_per_session(scenario, site, name, model_rules)
                                   * (1 - rules.on_the_day_cancellation_rate) * (1 - rules.session_cancellation_rate))
            sessions[name] = decisions_to_treat / treated_per_session * THEATRE_MARGIN
            bed_days += (decisions_to_treat * (1 - spec.day_case_share) * max(spec.los_days_mean, 1.0)
                         * THEATRE_MARGIN)
        total_sessions = math.ceil(sum(sessions.values()))
        shares = {k: round(v / sum(sessions.values()), SHARE_DECIMALS) for k, v in sessions.items()}
        biggest = max(shares, key=lambda k: shares[k])
        shares[biggest] = round(shares[biggest] + round(1 - sum(shares.values()), SHARE_DECIMALS), SHARE_DECIMALS)
        weekdays = apportion(total_sessions, [1 / len(THEATRE_WEEKDAYS)] * len(THEATRE_WEEKDAYS))
        # Operating on weekdays concentrates occupancy: 7/5 of the weekly average, plus headroom (hubs and extra
        # capacity take day cases, so main theatres do more inpatients).
        beds = math.ceil(bed_days / 7 * 7 / 5 * BED_HEADROOM)
        by_weekday = dict(zip(THEATRE_WEEKDAYS, weekdays, strict=True))
        out[site] = SiteCapacity(share, slots, total_sessions, shares, by_weekday, beds)
    return out


def main(argv: list[str]) -> None:
    model_rules = "--model-rules" in argv
    paths = [a for a in argv if not a.startswith("--")]
    path = Path(paths[0] if paths else "scenarios/core/nwl_june_2021_plan.yaml")
    scenario = validate(load_raw(path), path)
    if model_rules:
        print("Sized by the model's own session-packing and DNA rules (NOT what the plan holds):")
    for site, cap in derive_capacity(scenario, model_rules).items():
        print(f"{site}: referral share {cap.referral_share:.3f}; theatre sessions a week {cap.sessions_per_week}")
        print("  outpatient_first_slots_per_week:", cap.outpatient_first_slots_per_week)
        print("  specialty_session_shares:", cap.specialty_session_shares)
        print("  sessions mon-fri:", list(cap.sessions_by_weekday.values()))
        print("  elective_beds:", cap.elective_beds)


if __name__ == "__main__":
    main(sys.argv[1:])
