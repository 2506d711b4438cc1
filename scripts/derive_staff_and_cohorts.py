"""Derive the baseline's staff establishments and vaccination cohorts from stated rules; prints YAML.

Run: python scripts/derive_staff_and_cohorts.py scenarios/baseline.yaml
- Theatre staff: each weekday's sessions need 1 surgeon, 1 anaesthetist and 3 theatre nurses, one person
  covering 2 sessions a day; establishment = need / (1 - expected absence 0.17) x 1.05 cover margin [E].
- Outpatient clinicians and vaccinators per site: planning estimates [E] scaled by the site's referral share.
- Cohorts: borough population x age-band share (18-29 17%, 30-39 18%, 40-49 15%, 50+ 30%) [E, London-like];
  willing shares = the borough's adult uptake on 7 Aug 2021 (reference facts, ITV London) x an age-band
  factor (50+ 1.25 capped at 0.95, 40-49 1.05, 30-39 0.95, 18-29 0.85) [E]; doses before 7 June 2021 as
  shares of the willing by band [E]. These are residents' doses (about 1.3 million); the seed's "over two
  million vaccinations" counts every dose given at North West London sites.
"""
from __future__ import annotations

import math
import sys

from sim.scenario.yaml_files import load_raw

UPTAKE = {"brent": (0.601, 0.476), "ealing": (0.648, 0.506), "hammersmith_fulham": (0.584, 0.449),
          "harrow": (0.699, 0.593), "hillingdon": (0.722, 0.585), "hounslow": (0.675, 0.537),
          "kensington_chelsea": (0.574, 0.465), "westminster": (0.567, 0.458)}
BANDS = {"18-29": (0.17, 0.85, "2021-06-15", 0.15, 0.0), "30-39": (0.18, 0.95, "2021-05-26", 0.55, 0.10),
         "40-49": (0.15, 1.05, "2021-04-30", 0.90, 0.50), "50+": (0.30, 1.25, "2021-02-15", 1.0, 0.90)}
ABSENCE, MARGIN = 0.17, 1.05


def main(path: str) -> None:
    raw = load_raw(path)
    print("staff establishment:")
    for site, s in raw["sites"].items():
        per_day = max(s["theatres"]["sessions_by_weekday"].values())
        people = per_day / 2
        est = lambda k: math.ceil(people * k / (1 - ABSENCE) * MARGIN)  # noqa: E731
        slots = sum(s["outpatient_first_slots_per_week"].values())
        print(f"  {site}: {{surgeons: {est(1)}, anaesthetists: {est(1)}, theatre_nurses: {est(3)}, "
              f"outpatient_clinicians: {math.ceil(slots / 40)}, vaccinators: 12}}")
    print("cohorts:")
    total1 = total2 = 0
    for b, v in raw["boroughs"].items():
        u1, u2 = UPTAKE[b]
        for band, (share, factor, eligible, done1, done2) in BANDS.items():
            pop = round(v["population"] * share)
            w1, w2 = min(0.95, u1 * factor), min(0.95, u2 * factor * 1.1, u1 * factor)
            d1 = round(pop * w1 * done1)
            d2 = round(pop * w2 * done2)
            total1, total2 = total1 + d1, total2 + d2
            print(f"    - {{borough: {b}, age_band: \"{band}\", population: {pop}, eligible_from: {eligible}, "
                  f"uptake_first_dose: {w1:.3f}, uptake_second_dose: {w2:.3f}, first_doses_before_start: {d1}, "
                  f"second_doses_before_start: {d2}}}")
    print(f"# doses before start: {total1 + total2:,} ({total1:,} first, {total2:,} second)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "scenarios/baseline.yaml")
