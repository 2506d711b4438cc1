"""The yardstick: the plainest idiomatic SimPy model of the same pathway, one process per patient.

referral -> outpatient clinic (a simpy.Resource) -> if an operation is needed, theatre (a simpy.Resource)
-> done. Volumes and capacities are taken from the same scenario as the engine's benchmark run: the same
referrals a week after advice and guidance, the same admitted share, the same start list size, clinic
throughput equal to the scenario's first-appointment slots and theatre throughput equal to its sessions
times cases per session. It keeps no weekly statistics beyond counting completions, so it is a generous
yardstick: the engine does more per patient than this does.
"""
from __future__ import annotations

import numpy as np
import simpy

from sim.scenario.schema import Scenario

SERVERS = 100   # parallel clinic rooms / theatres; service times are scaled so throughput matches


def yardstick_parameters(sc: Scenario) -> dict[str, float]:
    ref = sc.referrals
    shares = np.array([s.referral_share for s in sc.specialties.values()])
    admitted = float(np.dot(shares, [s.admitted_share for s in sc.specialties.values()]))
    clinic_slots = sum(sum(site.outpatient_first_slots_per_week.values()) for site in sc.sites.values())
    cases_per_week = 0.0
    for site in sc.sites.values():
        t = site.theatres
        sessions = sum(t.sessions_by_weekday.values())
        for spec_name, share in t.specialty_session_shares.items():
            s = sc.specialties[spec_name]
            minutes = (s.day_case_share * s.theatre_minutes_day_case.mean
                       + (1 - s.day_case_share) * s.theatre_minutes_inpatient.mean)
            cases_per_week += (sessions * share * t.session_minutes * t.utilisation_cap
                               / (minutes + t.turnaround_minutes))
    return {
        "referrals_per_day": ref.referrals_per_week * (1 - ref.advice_and_guidance_share) / 7,
        "admitted_share": admitted,
        "clinic_service_days": 7 * SERVERS / clinic_slots,
        "theatre_service_days": 7 * SERVERS / cases_per_week,
        "start_list": sum(b.count for b in sc.start_list.bands),
        "start_admitted": sum(b.count * b.admitted_share for b in sc.start_list.bands),
        "horizon_days": sc.horizon_days,
    }


def run_yardstick(sc: Scenario, seed: int = 1) -> dict[str, float]:
    """Run the yardstick once; returns pathways created and completed."""
    p = yardstick_parameters(sc)
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    clinic = simpy.Resource(env, capacity=SERVERS)
    theatre = simpy.Resource(env, capacity=SERVERS)
    counts = {"created": 0, "completed": 0}

    def patient(needs_outpatients: bool, needs_operation: bool):
        if needs_outpatients:
            with clinic.request() as req:
                yield req
                yield env.timeout(rng.exponential(p["clinic_service_days"]))
        if needs_operation:
            with theatre.request() as req:
                yield req
                yield env.timeout(rng.exponential(p["theatre_service_days"]))
        counts["completed"] += 1

    def referrals():
        while True:
            yield env.timeout(rng.exponential(1 / p["referrals_per_day"]))
            counts["created"] += 1
            env.process(patient(True, rng.random() < p["admitted_share"]))

    n_start = int(p["start_list"])
    admitted_share = p["start_admitted"] / max(n_start, 1)
    for _ in range(n_start):
        counts["created"] += 1
        on_admitted = rng.random() < admitted_share
        env.process(patient(not on_admitted, on_admitted or rng.random() < p["admitted_share"]))
    env.process(referrals())
    env.run(until=p["horizon_days"])
    return counts
