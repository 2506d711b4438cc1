"""Outpatient follow-ups and patient-initiated follow-up (sim.model.follow_ups, scenario section
outpatient_follow_ups): follow-ups are conserved, add to clinic demand exactly, leave ring-fenced first capacity
alone, and PIFU never lowers first-appointment capacity."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers import BASELINE, run_services, scaled_baseline_raw, simple_raw
from sim.cli.main import main
from sim.core.compiled import njit
from sim.model.follow_ups import _still_due_by_interval, numpy_poisson

FIRST_FLOW_COLUMNS = ("clock_stops_non_admitted", "clock_stops_admitted", "outpatient_attendances", "waiting_total",
                      "waiting_over_52w", "decisions_to_treat")


def clinic_raw(*, rule: str = "common_pool", pifu_share: float = 0.0, request_rate: float = 1.0,
               freed_to_firsts: float = 0.0, horizon_weeks: int = 30, dna_rate: float = 0.0) -> dict:
    """The simple model with clinics that are the bottleneck: 100 referrals a week, 70 first slots a week (10 a
    day, every day: whole slots, so no fractions carry), 2 follow-up slots per first slot, every referral needing
    no operation (so each seen patient is a clock stop with follow-ups), two follow-ups each on average."""
    raw = simple_raw(referrals_per_week=100, clinic_slots_per_week=70, horizon_weeks=horizon_weeks)
    raw["specialties"]["general"]["admitted_share"] = 0.0
    raw["outpatient_follow_ups"] = {
        "after_non_admitted_stop": 2.0, "after_treatment": 1.0, "weeks_between": 2, "slot_rule": rule,
        "slots_per_first_slot": 2.0, "dna_rate": dna_rate, "pifu_share": pifu_share,
        "pifu_request_rate": request_rate, "pifu_freed_slots_to_firsts": freed_to_firsts}
    return raw


@njit
def _poisson_draws(rng: np.random.Generator, means: np.ndarray) -> np.ndarray:
    draws = np.empty(len(means), dtype=np.int64)
    for i in range(len(means)):
        draws[i] = numpy_poisson(rng, means[i])
    return draws


@pytest.mark.unit
@pytest.mark.parametrize("mean", [0.0, 0.4, 2.29, 9.99, 10.0, 10.5, 15.0, 60.0])
def test_the_kernels_poisson_draws_are_numpys_array_draws_and_leave_the_generator_where_numpy_did(mean):
    # from a mean of 10 numba's own Poisson parts from numpy's (at mean 10, seed 5: after some 42,000 draws)
    means = np.full(300_000, mean)
    expected_rng, rng = np.random.default_rng(5), np.random.default_rng(5)
    expected = expected_rng.poisson(means)
    assert np.array_equal(_poisson_draws(rng, means), expected)
    assert rng.random() == expected_rng.random()


@pytest.mark.unit
def test_the_kernels_poisson_draws_are_numpys_for_a_mix_of_means():
    means = np.random.default_rng(1).uniform(0.0, 30.0, 300_000)
    assert np.array_equal(_poisson_draws(np.random.default_rng(9), means), np.random.default_rng(9).poisson(means))


@pytest.mark.unit
def test_follow_ups_still_due_from_before_the_start_match_the_poisson_sums():
    # interval 0: every follow-up of a steady stream is still to come (the mean); the sum over intervals is
    # sum_k k P(K >= k) = E[K (K + 1) / 2] = (m^2 + 2m) / 2 for a Poisson count
    for mean in (0.5, 2.29, 6.0):
        still = _still_due_by_interval(mean, 200)
        assert still[0] == pytest.approx(mean)
        assert still.sum() == pytest.approx((mean ** 2 + 2 * mean) / 2, rel=1e-9)
        assert (np.diff(still) <= 1e-15).all() and still.min() >= -1e-12
        # interval 1: the orders k >= 2, i.e. the mean less P(K >= 1)
        assert still[1] == pytest.approx(mean - (1 - math.exp(-mean)))


@pytest.mark.verification
@pytest.mark.parametrize("rule", ["common_pool", "ring_fenced"])
def test_follow_ups_are_conserved_filed_seen_waiting_or_not_yet_due(rule):
    services, weekly = run_services(clinic_raw(rule=rule, pifu_share=0.3, request_rate=0.5, dna_rate=0.1))
    fu = services.clinics.follow_ups
    assert fu is not None
    filed = int(fu.due.sum())              # every follow-up ever in the calendar, before the start or after
    seen = int(weekly["outpatient_followup_attendances"].sum())
    not_yet_due = int(fu.due[fu._filed_through_day + 1:].sum())
    assert seen > 1000 and weekly["outpatient_followup_dna"].sum() > 0
    assert filed == seen + fu.waiting_total + not_yet_due
    assert weekly["outpatient_followups_waiting"].iloc[-1] == fu.waiting_total


@pytest.mark.verification
def test_in_a_common_pool_follow_ups_and_first_appointments_share_the_slots_exactly():
    # 10 first slots and 20 follow-up slots every day: first slots offered plus follow-ups booked (attended or
    # not) is the whole pool, 30 a day, every week; follow-ups take their share and the firsts the rest
    services, weekly = run_services(clinic_raw(rule="common_pool", dna_rate=0.1))
    booked = (weekly["outpatient_first_slots_offered"] + weekly["outpatient_followup_attendances"]
              + weekly["outpatient_followup_dna"])
    assert (booked == 30 * 7).all()
    # follow-ups seen in a week never exceed those due (the backlog never goes negative) and take slots from firsts
    assert (weekly["outpatient_first_slots_offered"] < 70).any()
    assert (weekly["outpatient_followups_waiting"] >= 0).all()


@pytest.mark.verification
def test_ring_fenced_follow_ups_leave_first_appointments_exactly_as_without_them():
    base = scaled_baseline_raw(0.05, horizon_weeks=26)
    without = dict(base)
    without.pop("outpatient_follow_ups")
    _, weekly_without = run_services(without)
    _, weekly_with = run_services(base)
    assert weekly_with["outpatient_followup_attendances"].sum() > 0
    for column in FIRST_FLOW_COLUMNS:
        pd.testing.assert_series_equal(weekly_with[column], weekly_without[column])
    assert "outpatient_followup_attendances" not in weekly_without   # a scenario without the section: no columns


@pytest.mark.verification
def test_pifu_never_lowers_first_appointment_capacity_ring_fenced():
    # ring-fenced: first slots are an input plus the share of freed follow-up slots, so every week's first slots
    # with PIFU are at least those without, whatever the draws; with no slots handed over they are equal
    _, none = run_services(clinic_raw(rule="ring_fenced"))
    _, kept = run_services(clinic_raw(rule="ring_fenced", pifu_share=0.5, request_rate=0.5, freed_to_firsts=0.0))
    _, given = run_services(clinic_raw(rule="ring_fenced", pifu_share=0.5, request_rate=0.5, freed_to_firsts=1.0))
    assert (kept["outpatient_first_slots_offered"] == none["outpatient_first_slots_offered"]).all()
    assert (given["outpatient_first_slots_offered"] >= none["outpatient_first_slots_offered"]).all()
    # 20 follow-up slots a day, a quarter of follow-ups avoided: 5 a day move to first appointments
    assert given["outpatient_first_slots_offered"].eq(7 * 15).all()


@pytest.mark.verification
@pytest.mark.parametrize("share", [0.2, 0.6])
def test_pifu_gives_a_common_pool_more_first_appointments_and_a_shorter_list(share):
    _, none = run_services(clinic_raw(rule="common_pool"))
    _, pifu = run_services(clinic_raw(rule="common_pool", pifu_share=share, request_rate=0.3))
    assert pifu["outpatient_first_slots_offered"].sum() > none["outpatient_first_slots_offered"].sum()
    assert pifu["waiting_total"].iloc[-1] < none["waiting_total"].iloc[-1]
    assert pifu["outpatient_followup_attendances"].sum() < none["outpatient_followup_attendances"].sum()


@pytest.mark.verification
def test_pifu_shares_and_requests_come_out_at_their_rates():
    _, weekly = run_services(clinic_raw(rule="ring_fenced", pifu_share=0.25, request_rate=0.4, horizon_weeks=40))
    offered, requested = weekly["pifu_followups_offered"].sum(), weekly["pifu_followups_requested"].sum()
    # follow-ups filed after the start: two a clock stop on average
    filed = 2.0 * weekly["clock_stops_non_admitted"].sum()
    assert offered / filed == pytest.approx(0.25, abs=0.02)
    assert requested / offered == pytest.approx(0.4, abs=0.03)


@pytest.mark.behaviour
def test_the_plan_has_about_two_follow_ups_to_each_first_attendance_and_a_steady_backlog():
    # the plan's means are set from London's 2019/20 ratio, 2.05 follow-ups per first attendance (HES)
    _, weekly = run_services(scaled_baseline_raw(0.1, horizon_weeks=52))
    steady = weekly.iloc[20:]
    ratio = steady["outpatient_followup_attendances"].sum() / steady["outpatient_attendances"].sum()
    assert ratio == pytest.approx(2.05, abs=0.15)
    # slots have a margin over demand: the backlog stays under two weeks of follow-ups
    assert steady["outpatient_followups_waiting"].max() < 2 * steady["outpatient_followup_attendances"].mean()


@pytest.mark.unit
def test_bad_follow_up_keys_are_refused_with_the_key(tmp_path, capsys):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(f"extends: {BASELINE.as_posix()}\nname: bad\noutpatient_follow_ups:\n"
                        "  specialty_multipliers: {orthopaedics: 1.5}\n  slot_rule: common_pool\n"
                        "  pifu_freed_slots_to_firsts: 0.5\n")
    assert main(["validate", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert "outpatient_follow_ups.specialty_multipliers.orthopaedics" in err
    assert "pifu_freed_slots_to_firsts" in err and "bad.yaml" in err
    assert "Traceback" not in err


@pytest.mark.unit
def test_the_report_sentence_gives_weekly_follow_ups_per_first_and_what_pifu_avoided():
    from types import SimpleNamespace

    from sim.outputs.report.content import _follow_ups_sentence

    weekly = pd.DataFrame({
        "scenario": ["a"] * 4 + ["b"] * 4, "replication": [0, 0, 1, 1] * 2, "week": [0, 1] * 4,
        "outpatient_attendances": [100] * 8, "outpatient_followup_attendances": [200] * 4 + [150] * 4,
        "outpatient_followups_waiting": [5, 7, 5, 9, 1, 2, 3, 4],
        "pifu_followups_offered": [0] * 4 + [10] * 4, "pifu_followups_requested": [0] * 4 + [4] * 4})
    run = SimpleNamespace(weekly=weekly, scenarios={"a": SimpleNamespace(title="Plain"),
                                                    "b": SimpleNamespace(title="With PIFU")})
    text = _follow_ups_sentence(run)
    assert text is not None
    assert "*Plain* sees 100 first appointments and 200 follow-ups a week on average (2 a first)" in text
    assert "150 follow-ups a week on average (1.5 a first)" in text
    assert "8 follow-ups are overdue at the end" in text          # median of the replications' last weeks (7, 9)
    assert "takes 20 follow-ups off the books, of which 12 never happen" in text   # per replication: 40/2, 24/2
    assert _follow_ups_sentence(SimpleNamespace(weekly=weekly.drop(columns="outpatient_followups_waiting"),
                                                scenarios={})) is None
