"""Issue 11, item 3: with North West London's flows and England's shape, the 52+ week count can stay roughly flat
while the list grows, as England's did from June 2021 to March 2022 (305,000-318,000), and it cannot without the
mechanisms.

The scenario: the baseline (NWL's referrals, sites, specialties, priorities, removals) for 40 weeks from 7 June
2021, its start list replaced by the bands scripts/derive_start_bands.py derives for June 2021 (NWL's 184,005, the
seed's 4,500 over 52 weeks, England's shape), theatres as in the baseline and first outpatient slots at 85% of the
baseline's, so that the list grows about 3% a quarter (+9% in 39 weeks; NWL's grew 18% from June 2021 to March
2022). With further visits, each pathway needs 1.2 first-stage slots on average, so the clinics are 1.2 x 85% of the
baseline's to keep the same flows.

What the runs show (replications 0 and 1, 52+ count at the end of week 1 -> week 40; mean of weeks 28-40 / week 1):
- no mechanism: 3,922 -> 17 and 3,979 -> 97 (last quarter 0.05, 0.06): priority-then-longest-wait booking clears
  the long waiters within about 30 weeks once the thin cohort near 52 weeks has aged through;
- further visits alone (20%, 4-10 weeks): -> 0 and 58 (0.03, 0.04); scarce resource alone (5%, 35 a week a site,
  about what complex cases need, so it binds only at the busier sites): -> 14 and 84 (0.05, 0.06); both: -> 6 and
  22: neither keeps a tail, the long waiters are still booked first;
- patients who defer alone (10% at each stage, 13-52 weeks): -> 4,143 and 4,008 (0.91, 0.87): this is the
  mechanism that does the work. Deferrers offered a date after 20-40 weeks come back after 52 weeks, still waiting,
  and keep the 52+ count fed while the rest of the list is booked in order;
- all three (EXAMPLE_BLOCK): 4,171 -> 4,070 and 4,206 -> 3,960 (last quarter 0.87, 0.84; range 0.73-1.29 of the
  start); deferrals and further visits without the scarce resource: 4,171 -> 4,073 (0.87).
Not flat everywhere: the count first rises (to 1.8 x by week 12 without the mechanisms, 1.3 x with them: the 44-52
week band ageing through while P4 outpatients wait behind more urgent ones) and dips (0.73 x about week 20) before
deferrers come back. With "a few percent for 3-6 months" (5%, 13-26 weeks, with the other two) it still falls:
4,125 -> 679 by week 40 (last quarter 0.19 of the start).
"""
from __future__ import annotations

import copy

import pytest

from helpers import scaled_baseline_raw
from sim.model.replication import run_single
from sim.scenario.validate import validate
from test_derivations import script

pytestmark = [pytest.mark.verification, pytest.mark.slow]

# [E] The recommended values (README, "Waiting-list mechanisms"): a tenth of patients decline their first date at
# each stage for 3-12 months (patient choice and Covid-era reluctance to attend, 2021), a fifth of pathways need a
# diagnostic or result before the visit that decides (4-10 weeks), 5% of operations need a post-operative
# critical-care bed or specialist team, 35 a week a site (about what they need: 126 a week were booked).
EXAMPLE_BLOCK = {
    "patient_choice": {"outpatient_deferral_share": 0.10, "operation_deferral_share": 0.10,
                       "deferral_weeks_min": 13, "deferral_weeks_max": 52},
    "further_outpatient_visits": {"non_admitted_share": 0.20, "admitted_share": 0.20,
                                  "wait_weeks_min": 4, "wait_weeks_max": 10},
    "scarce_resource": {"admitted_share": 0.05, "cases_per_week_per_site": 35},
}
WEEKS = 40
CLINIC_SHARE = 0.85


def nwl_growing_list(sections: dict) -> dict:
    """The scenario of the module docstring with the given mechanism sections."""
    raw = scaled_baseline_raw(1.0, horizon_weeks=WEEKS)
    raw["start_list"]["bands"] = script("derive_start_bands").derive_bands("2021-06")
    further = sections.get("further_outpatient_visits")
    slots_per_pathway = 1.0 + (further["non_admitted_share"] if further else 0.0)   # both shares equal here
    for site in raw["sites"].values():
        site["outpatient_first_slots_per_week"] = {
            k: v * CLINIC_SHARE * slots_per_pathway for k, v in site["outpatient_first_slots_per_week"].items()}
    raw.update(copy.deepcopy(sections))
    return raw


def over_52_weeks(sections: dict, replication: int = 0) -> tuple[list[int], list[int]]:
    weekly = run_single(validate(nwl_growing_list(sections), "nwl-growing-list"), replication).weekly
    return weekly["waiting_over_52w"].tolist(), weekly["waiting_total"].tolist()


def test_52_week_count_stays_roughly_flat_while_the_list_grows_only_with_the_mechanisms():
    without, list_without = over_52_weeks({})
    with_all, list_with = over_52_weeks(EXAMPLE_BLOCK)
    others = {k: v for k, v in EXAMPLE_BLOCK.items() if k != "patient_choice"}
    without_deferrals, _ = over_52_weeks(others)

    for waiting in (list_without, list_with):
        growth = waiting[-1] / waiting[0] - 1
        assert 0.04 < growth < 0.15, f"the list should grow a few percent a quarter; it grew {growth:.1%}"

    def last_quarter(series: list[int]) -> float:
        return sum(series[-13:]) / 13 / series[0]

    assert without[-1] < 0.5 * without[0] and last_quarter(without) < 0.5, (
        f"without the mechanisms the 52+ count should fall by more than half: {without[0]} -> {without[-1]}")
    assert without_deferrals[-1] < 0.5 * without_deferrals[0], (
        "further visits and the scarce resource alone should not hold the 52+ count up: "
        f"{without_deferrals[0]} -> {without_deferrals[-1]}")
    assert 0.75 <= last_quarter(with_all) <= 1.25 and 0.75 <= with_all[-1] / with_all[0] <= 1.25, (
        f"with the mechanisms the 52+ count should stay within 25% of its start: {with_all[0]} -> {with_all[-1]} "
        f"(last quarter {last_quarter(with_all):.2f} of the start)")
    assert min(with_all) > 0.5 * with_all[0], "the dip before deferrers come back should stay above half the start"
