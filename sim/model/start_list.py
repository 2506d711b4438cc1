"""The waiting list on the start date as patients: each one's weeks waited, specialty, priority, site and stage.

Two forms (exactly one per scenario, see `sim.scenario.schema.StartList`):
- `bands`: hand-written counts per weeks-waited band, with specialty, site and stage drawn from shares.
- `rtt_csv`: the exact counts per site x specialty x stage x week that sim.scenario.rtt_start_list read from an
  NHS England RTT Full CSV when the scenario was built; days waited are drawn within each week. Priorities, which
  RTT data lacks, come from `priority_mix`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sim.core.rng import Streams
from sim.model.patients import WAITING_ADMITTED, WAITING_OUTPATIENT
from sim.model.referrals import PathwayParameters, _categorical, _cumulative, draw_pathways
from sim.scenario.rtt_start_list import RttStartList
from sim.scenario.schema import PRIORITIES, Scenario


def start_list_history_days(scenario: Scenario) -> int:
    """How far back the oldest starting clock can be, in days."""
    rtt = scenario.start_list.rtt
    if rtt is not None:
        return 7 * rtt.n_weeks + 8
    bands = scenario.start_list.bands or []
    return int(7 * max((b.to_weeks for b in bands), default=0)) + 8


def draw_start_list(scenario: Scenario, streams: Streams, params: PathwayParameters) -> tuple[dict, np.ndarray]:
    """Attributes of every pathway on the list at day 0, and each one's status (stage).

    Counts per weeks-waited band are exact; within a band the days waited are uniform. Specialty,
    site and priority follow the shares stated in the scenario; by default (`referral_shares`) patients
    awaiting outpatients split like referrals and those on the admitted list like referrals that need an
    operation (referral share x admitted share).
    """
    sl = scenario.start_list
    if sl.rtt is not None:
        return _draw_rtt_start_list(scenario, streams, params, sl.rtt)
    rng = streams["start_list"]
    specs = scenario.specialty_names
    bands = sl.bands or []
    n_total = sum(b.count for b in bands)
    if n_total == 0:
        return {}, np.zeros(0, dtype=np.uint8)

    waited_days = np.concatenate([rng.integers(int(7 * b.from_weeks) + 1, int(7 * b.to_weeks) + 1, b.count)
                                  for b in bands])
    admitted_share = np.concatenate([np.full(b.count, b.admitted_share) for b in bands])

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

    return _finish_start_list(streams, params, rng, sl.priority_mix, specialty, borough, site, waited_days,
                              on_admitted_list)


def _finish_start_list(streams: Streams, params: PathwayParameters, rng: np.random.Generator, priority_mix: Any,
                       specialty: np.ndarray, borough: np.ndarray, site: np.ndarray, waited_days: np.ndarray,
                       on_admitted_list: np.ndarray) -> tuple[dict, np.ndarray]:
    """Shared by both kinds of start list: priorities (a stated mix, or each specialty's), the stage, and
    every other attribute drawn as for a new referral (removal time conditional on the weeks waited)."""
    n_total = len(specialty)
    if priority_mix == "specialty":
        priority = _categorical(rng.random(n_total), params.priority_cum[specialty])
    else:
        mix = np.array([priority_mix.get(p, 0.0) for p in PRIORITIES])
        priority = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(mix), (n_total, 4)))
    # Those still awaiting outpatients get the usual chance of needing an operation.
    needs_operation = on_admitted_list | (rng.random(n_total) < params.admitted_share[specialty])
    attrs = draw_pathways(streams, params, specialty, borough, -waited_days.astype(np.int64),
                          waited_weeks=waited_days / 7.0, site=site, priority=priority,
                          needs_operation=needs_operation)
    status = np.where(on_admitted_list, WAITING_ADMITTED, WAITING_OUTPATIENT).astype(np.uint8)
    return attrs, status


def _draw_rtt_start_list(scenario: Scenario, streams: Streams, params: PathwayParameters,
                         rtt: RttStartList) -> tuple[dict, np.ndarray]:
    """Exact counts per site x specialty x stage x week; days waited uniform inside each week band
    (band k: 7k+1 .. 7k+7 days); borough by population x the borough's share of referrals to that site."""
    sl = scenario.start_list
    rng = streams["start_list"]
    spec_index = {s: i for i, s in enumerate(scenario.specialty_names)}
    site_index = {s: i for i, s in enumerate(scenario.site_names)}
    unknown = sorted({site for site, _, _, _ in rtt.cells if site not in site_index}
                     | {spec for _, spec, _, _ in rtt.cells if spec not in spec_index})
    if unknown:
        raise ValueError(f"start list from {rtt.source}: sites/specialties {', '.join(unknown)} are not in the "
                         "scenario")
    week_idx = np.arange(rtt.n_weeks)
    weeks, site, spec, admitted = [], [], [], []
    for site_name, spec_name, op, adm in rtt.cells:
        for stage, counts in ((False, op), (True, adm)):
            w = np.repeat(week_idx, counts)
            weeks.append(w)
            site.append(np.full(len(w), site_index[site_name], dtype=np.int64))
            spec.append(np.full(len(w), spec_index[spec_name], dtype=np.int64))
            admitted.append(np.full(len(w), stage, dtype=bool))
    weeks_arr = np.concatenate(weeks) if weeks else np.zeros(0, dtype=np.int64)
    n_total = len(weeks_arr)
    if n_total == 0:
        return {}, np.zeros(0, dtype=np.uint8)
    site_arr, specialty, on_admitted_list = np.concatenate(site), np.concatenate(spec), np.concatenate(admitted)
    waited_days = 7 * weeks_arr + rng.integers(1, 8, n_total)

    pops = np.array([b.population for b in scenario.boroughs.values()], dtype=float)
    share = np.array([[b.referred_site_shares.get(s, 0.0) for s in scenario.site_names]
                      for b in scenario.boroughs.values()])
    weight = pops[:, None] * share                       # borough x site
    col = weight.sum(axis=0)
    weight = np.where(col[None, :] > 0, weight / np.where(col > 0, col, 1)[None, :], (pops / pops.sum())[:, None])
    cum_by_site = _cumulative(weight.T)                  # site x borough
    borough = _categorical(rng.random(n_total), cum_by_site[site_arr])

    return _finish_start_list(streams, params, rng, sl.priority_mix, specialty, borough, site_arr, waited_days,
                              on_admitted_list)
