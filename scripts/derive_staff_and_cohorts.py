"""Derive the baseline's staff establishments and vaccination cohorts from stated rules; prints YAML.

Run: python scripts/derive_staff_and_cohorts.py [scenarios/core/nwl_june_2021_plan.yaml]
- Theatre staff: each weekday's sessions need the team the scenario's staff groups state (per_theatre_session: in
  the baseline 1 surgeon, 1 anaesthetist and 3 theatre nurses), one person covering theatre_sessions_per_day
  sessions (2); establishment = need / (1 - expected absence 0.17) x 1.05 cover margin [E].
- Outpatient clinicians: one per 40 first slots a week; vaccinators: 12 per site [E].
- Cohorts: borough population x age-band share (18-29 17%, 30-39 18%, 40-49 15%, 50+ 30%) [E, London-like];
  willing shares = the borough's adult uptake on 7 Aug 2021 (reference facts, ITV London) x an age-band
  factor (50+ 1.25 capped at 0.95, 40-49 1.05, 30-39 0.95, 18-29 0.85) [E]; doses before 7 June 2021 as
  shares of the willing by band [E]. These are residents' doses (about 1.3 million); the seed's "over two
  million vaccinations" counts every dose given at North West London sites.
The printed figures are what the plan (scenarios/core/nwl_june_2021_plan.yaml) holds;
tests/test_derivations.py re-derives them and checks.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from sim.scenario.schema import Scenario
from sim.scenario.validate import validate
from sim.scenario.yaml_files import load_raw

UPTAKE = {"brent": (0.601, 0.476), "ealing": (0.648, 0.506), "hammersmith_fulham": (0.584, 0.449),
          "harrow": (0.699, 0.593), "hillingdon": (0.722, 0.585), "hounslow": (0.675, 0.537),
          "kensington_chelsea": (0.574, 0.465), "westminster": (0.567, 0.458)}
BANDS = {"18-29": (0.17, 0.85, "2021-06-15", 0.15, 0.0), "30-39": (0.18, 0.95, "2021-05-26", 0.55, 0.10),
         "40-49": (0.15, 1.05, "2021-04-30", 0.90, 0.50), "50+": (0.30, 1.25, "2021-02-15", 1.0, 0.90)}
ABSENCE, MARGIN = 0.17, 1.05
FIRST_SLOTS_PER_CLINICIAN = 40
VACCINATORS_PER_SITE = 12


def staff_establishment(scenario: Scenario) -> dict[str, dict[str, int]]:
    """Each site's establishment by staff group, from its busiest theatre day and its clinic slots."""
    out = {}
    for site_name, site in scenario.sites.items():
        busiest_day_sessions = max(site.theatres.sessions_by_weekday.values())
        slots = sum(site.outpatient_first_slots_per_week.values())
        groups = {}
        for name, group in scenario.staff.groups.items():
            if group.per_theatre_session > 0:
                people = busiest_day_sessions / group.theatre_sessions_per_day
                groups[name] = math.ceil(people * group.per_theatre_session / (1 - ABSENCE) * MARGIN)
            elif group.runs_clinics:
                groups[name] = math.ceil(slots / FIRST_SLOTS_PER_CLINICIAN)
            elif group.vaccinates:
                groups[name] = VACCINATORS_PER_SITE
        out[site_name] = groups
    return out


def cohorts(scenario: Scenario) -> list[dict]:
    """Vaccination cohorts (borough x age band) with uptake and doses before the start, as the plan lists them."""
    out = []
    for borough, b in scenario.boroughs.items():
        u1, u2 = UPTAKE[borough]
        for band, (share, factor, eligible, done1, done2) in BANDS.items():
            pop = round(b.population * share)
            w1, w2 = min(0.95, u1 * factor), min(0.95, u2 * factor * 1.1, u1 * factor)
            out.append({"borough": borough, "age_band": band, "population": pop, "eligible_from": eligible,
                        "uptake_first_dose": round(w1, 3), "uptake_second_dose": round(w2, 3),
                        "first_doses_before_start": round(pop * w1 * done1),
                        "second_doses_before_start": round(pop * w2 * done2)})
    return out


def main(argv: list[str]) -> None:
    path = Path(argv[0] if argv else "scenarios/core/nwl_june_2021_plan.yaml")
    scenario = validate(load_raw(path), path)
    print("staff establishment:")
    for site, groups in staff_establishment(scenario).items():
        print(f"  {site}: {{" + ", ".join(f"{g}: {n}" for g, n in groups.items()) + "}")
    print("cohorts:")
    total1 = total2 = 0
    for c in cohorts(scenario):
        total1, total2 = total1 + c["first_doses_before_start"], total2 + c["second_doses_before_start"]
        print(f"    - {{borough: {c['borough']}, age_band: \"{c['age_band']}\", population: {c['population']}, "
              f"eligible_from: {c['eligible_from']}, uptake_first_dose: {c['uptake_first_dose']:.3f}, "
              f"uptake_second_dose: {c['uptake_second_dose']:.3f}, "
              f"first_doses_before_start: {c['first_doses_before_start']}, "
              f"second_doses_before_start: {c['second_doses_before_start']}}}")
    print(f"# doses before start: {total1 + total2:,} ({total1:,} first, {total2:,} second)")


if __name__ == "__main__":
    main(sys.argv[1:])
