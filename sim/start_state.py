"""The waiting list on the start date, by weeks waited, specialty, priority, site and stage."""
from __future__ import annotations

import numpy as np

from sim.config import PRIORITIES, Scenario
from sim.patients import WAITING_ADMITTED, WAITING_OUTPATIENT
from sim.referrals import PathwayParameters, _categorical, _cumulative, draw_pathways
from sim.rng import Streams


def start_list_history_days(scenario: Scenario) -> int:
    """How far back the oldest starting clock can be, in days."""
    bands = scenario.start_list.bands
    return int(7 * max((b.to_weeks for b in bands), default=0)) + 8


def draw_start_list(scenario: Scenario, streams: Streams, params: PathwayParameters) -> tuple[dict, np.ndarray]:
    """Attributes of every pathway on the list at day 0, and each one's status (stage).

    Counts per weeks-waited band are exact; within a band the days waited are uniform. Specialty,
    site and priority follow the shares stated in the scenario; by default (`referral_shares`) patients
    awaiting outpatients split like referrals and those on the admitted list like referrals that need an
    operation (referral share x admitted share).
    """
    sl = scenario.start_list
    rng = streams["start_list"]
    specs = scenario.specialty_names
    n_total = sum(b.count for b in sl.bands)
    if n_total == 0:
        return {}, np.zeros(0, dtype=np.uint8)

    waited_days = np.concatenate([rng.integers(int(7 * b.from_weeks) + 1, int(7 * b.to_weeks) + 1, b.count)
                                  for b in sl.bands])
    admitted_share = np.concatenate([np.full(b.count, b.admitted_share) for b in sl.bands])

    on_admitted_list = rng.random(n_total) < admitted_share
    u_specialty = rng.random(n_total)
    if sl.specialty_shares == "referral_shares":
        # Awaiting outpatients: like referrals. On the admitted list: like referrals that need an operation.
        referral = np.array([scenario.specialties[s].referral_share for s in specs])
        surgical = referral * params.admitted_share
        cum_outpatient = _cumulative(referral)
        cum_admitted = _cumulative(surgical / surgical.sum()) if surgical.sum() > 0 else cum_outpatient
        rows = np.where(on_admitted_list[:, None], cum_admitted[None, :], cum_outpatient[None, :])
    else:
        given = np.array([sl.specialty_shares.get(s, 0.0) for s in specs])
        rows = np.broadcast_to(_cumulative(given), (n_total, len(specs)))
    specialty = _categorical(u_specialty, rows)

    pops = np.array([b.population for b in scenario.boroughs.values()], dtype=float)
    borough = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(pops / pops.sum()), (n_total, len(pops))))
    if sl.site_shares == "referral_shares":
        site = _categorical(rng.random(n_total), params.site_cum_by_borough[borough])
    else:
        shares = np.array([sl.site_shares.get(s, 0.0) for s in scenario.site_names])
        site = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(shares), (n_total, len(shares))))

    if sl.priority_mix == "specialty":
        priority = _categorical(rng.random(n_total), params.priority_cum[specialty])
    else:
        mix = np.array([sl.priority_mix.get(p, 0.0) for p in PRIORITIES])
        priority = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(mix), (n_total, 4)))

    # Those still awaiting outpatients get the usual chance of needing an operation.
    needs_operation = on_admitted_list | (rng.random(n_total) < params.admitted_share[specialty])
    attrs = draw_pathways(streams, params, specialty, borough, -waited_days.astype(np.int64),
                          waited_weeks=waited_days / 7.0, site=site, priority=priority,
                          needs_operation=needs_operation)
    status = np.where(on_admitted_list, WAITING_ADMITTED, WAITING_OUTPATIENT).astype(np.uint8)
    return attrs, status
