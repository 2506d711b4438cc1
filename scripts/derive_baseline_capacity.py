"""Derive the baseline scenario's clinic slots and theatre sessions from its demand assumptions.

Run: python scripts/derive_baseline_capacity.py scenarios/baseline.yaml
Prints, per site, the weekly first-outpatient slots by specialty and the theatre sessions a week with
specialty shares, sized as (steady weekly demand routed to the site) x margin, after allowing for DNAs,
cancellations and imperfect packing of sessions. The printed figures are what baseline.yaml holds; the
margins are planning estimates [E], stated in that file's header.
"""
from __future__ import annotations

import math
import sys


from sim.scenario.schema import load_raw
from sim.core.apportionment import apportion

OUTPATIENT_MARGIN = 1.06
THEATRE_MARGIN = 1.08
BED_HEADROOM = 1.3
PACKING_EFFICIENCY = 0.86     # share of bookable minutes filled with whole cases (measured: 0.73 of 0.85 in a baseline run)


def main(path: str) -> None:
    raw = load_raw(path)
    specs, sites, boroughs = raw["specialties"], raw["sites"], raw["boroughs"]
    ref = raw["referrals"]
    clock_starts = ref["referrals_per_week"] * (1 - ref["advice_and_guidance_share"])
    pops = {b: v["population"] for b, v in boroughs.items()}
    total_pop = sum(pops.values())
    site_share = {s: sum(pops[b] / total_pop * boroughs[b]["referred_site_shares"].get(s, 0) for b in boroughs)
                  for s in sites}
    op = raw["outpatients"]
    dna = op["virtual_share"] * op["dna_rate_virtual"] + (1 - op["virtual_share"]) * op["dna_rate_face_to_face"]
    rules = raw["theatre_rules"]
    for site, share in site_share.items():
        t = sites[site]["theatres"]
        bookable = t["session_minutes"] * t["utilisation_cap"] * PACKING_EFFICIENCY
        slots, sessions = {}, {}
        bed_days = 0.0
        for name, s in specs.items():
            demand = clock_starts * share * s["referral_share"]
            slots[name] = round(demand / (1 - dna) * OUTPATIENT_MARGIN)
            dtas = demand * s["admitted_share"]
            dc = s["day_case_share"]
            minutes = dc * s["theatre_minutes_day_case"]["mean"] + (1 - dc) * s["theatre_minutes_inpatient"]["mean"]
            cases_per_session = bookable / (minutes + t["turnaround_minutes"])
            effective = cases_per_session * (1 - rules["on_the_day_cancellation_rate"]) * (1 - rules["session_cancellation_rate"])
            sessions[name] = dtas / effective * THEATRE_MARGIN
            bed_days += dtas * (1 - dc) * max(s["los_days_mean"], 1.0) * THEATRE_MARGIN
        total_sessions = math.ceil(sum(sessions.values()))
        print(f"{site}: referral share {share:.3f}; theatre sessions a week {total_sessions}")
        print("  outpatient_first_slots_per_week:", slots)
        shares = {k: round(v / sum(sessions.values()), 3) for k, v in sessions.items()}
        drift = round(1 - sum(shares.values()), 3)
        biggest = max(shares, key=shares.get)
        shares[biggest] = round(shares[biggest] + drift, 3)
        print("  specialty_session_shares:", shares)
        weekdays = apportion(total_sessions, [0.2] * 5)
        print("  sessions mon-fri:", weekdays)
        # Operating on weekdays concentrates occupancy: 7/5 of the weekly average, plus 30% headroom (hubs and extra capacity take day cases, so main theatres do more inpatients).
        print("  elective_beds:", math.ceil(bed_days / 7 * 7 / 5 * BED_HEADROOM))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "scenarios/baseline.yaml")
