"""Patients who defer, further outpatient visits and the scarce resource (sim.model.returns and the sections
patient_choice, further_outpatient_visits, scarce_resource): exact values in the simple model, conservation with
all of them on, and no change at all when a section is there with zero shares."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import run_services, scaled_baseline_raw, simple_raw, with_every_booking_mechanism
from sim.model.patients import REMOVED_OTHER, STOPPED_ADMITTED, STOPPED_NON_ADMITTED, WAITING_OUTPATIENT
from sim.model.replication import Services, run_single
from sim.scenario.validate import validate
from test_verification import assert_stock_and_flow

pytestmark = pytest.mark.verification

NEW_COLUMNS = ("deferrals_outpatient", "deferrals_operation", "outpatient_further_visits_needed",
               "scarce_resource_cases", "scarce_resource_cases_parked")


def waits_days(services: Services, status: int) -> np.ndarray:
    p = services.state.patients
    chosen = p.column("status") == status
    return (p.column("stop_day") - p.column("clock_start_day"))[chosen]


def test_outpatient_deferrers_leave_for_their_weeks_keep_their_clock_and_are_all_seen():
    # Unlimited clinics every day: a referral is seen the day it arrives, unless it defers (exactly 4 weeks)
    raw = simple_raw(referrals_per_week=100, sessions_per_day=30, horizon_weeks=20)
    raw["patient_choice"] = {"outpatient_deferral_share": 0.5, "deferral_weeks_min": 4, "deferral_weeks_max": 4}
    services, weekly = run_services(raw)
    assert_stock_and_flow(weekly.assign(replication=0))
    waits = waits_days(services, STOPPED_ADMITTED)
    deferred = waits >= 28
    # those who did not defer are treated within days; those who did, 28 days after the date they declined
    assert set(np.unique(waits[~deferred])) <= {0, 1, 2}, "non-deferrers should be seen at once"
    assert waits[deferred].min() == 28 and waits[deferred].max() <= 30
    p = services.state.patients
    early = p.column("clock_start_day")[p.column("status") == STOPPED_ADMITTED] < 7 * 20 - 35
    assert deferred[early].mean() == pytest.approx(0.5, abs=0.03)
    assert weekly["deferrals_outpatient"].iloc[:4].sum() == pytest.approx(0.5 * weekly["clock_starts"].iloc[:4].sum(),
                                                                       rel=0.1)
    # nobody who deferred before the last four weeks is still waiting: none lost, all came back
    still_waiting = p.column("status") == WAITING_OUTPATIENT
    assert (p.column("clock_start_day")[still_waiting] >= 7 * 20 - 28).all()
    assert weekly["clock_stops_admitted"].iloc[4:].sum() > 0


def test_operation_deferrers_wait_exactly_their_deferral_longer():
    raw = simple_raw(referrals_per_week=100, sessions_per_day=30, horizon_weeks=16)
    raw["patient_choice"] = {"operation_deferral_share": 1.0, "deferral_weeks_min": 2, "deferral_weeks_max": 2}
    services, weekly = run_services(raw)
    assert_stock_and_flow(weekly.assign(replication=0))
    waits = waits_days(services, STOPPED_ADMITTED)
    assert len(waits) and waits.min() == 14 and waits.max() <= 16
    assert weekly["clock_stops_admitted"].iloc[:2].sum() == 0, "everyone declined their first date"
    # theatres run daily with room to spare: every decision to treat is offered a date at once, and declines it once
    assert weekly["deferrals_operation"].sum() == weekly["decisions_to_treat"].sum() > 0
    assert (services.state.patients.column("operation_deferral_days") == 0).all(), "each defers once only"


def test_removals_find_patients_while_they_are_away():
    raw = simple_raw(referrals_per_week=100, sessions_per_day=30, horizon_weeks=20)
    raw["removals"]["weekly_rate_by_weeks_waited"] = [{"from_weeks": 0, "weekly_rate": 0.3}]
    raw["patient_choice"] = {"outpatient_deferral_share": 1.0, "deferral_weeks_min": 8, "deferral_weeks_max": 8}
    services, weekly = run_services(raw)
    assert_stock_and_flow(weekly.assign(replication=0))     # a removed patient coming back is never served
    status = services.state.patients.column("status")
    assert weekly["removals_other"].sum() == int((status == REMOVED_OTHER).sum()) > 0
    created = weekly["clock_starts"].sum()
    assert created == weekly["waiting_total"].iloc[-1] + weekly["clock_stops_admitted"].sum() + weekly[
        "removals_other"].sum()
    # away for 8 weeks at 30% a week: about 1 - 0.7^8 = 94% of those who came back in time were removed first
    back = services.state.patients.column("clock_start_day") < 7 * 20 - 56
    assert (status[back] == REMOVED_OTHER).mean() == pytest.approx(1 - 0.7**8, abs=0.04)


def test_further_visits_use_one_more_slot_each_and_delay_the_stop_by_the_diagnostic_wait():
    raw = simple_raw(referrals_per_week=200, sessions_per_day=30, horizon_weeks=30)
    raw["specialties"]["general"]["admitted_share"] = 0.0          # every pathway ends at outpatients
    raw["further_outpatient_visits"] = {"non_admitted_share": 0.3, "wait_weeks_min": 2, "wait_weeks_max": 2}
    services, weekly = run_services(raw)
    assert_stock_and_flow(weekly.assign(replication=0))
    # every attendance either stops the clock or sends the patient away for a further visit: exactly
    assert (weekly["outpatient_attendances"]
            == weekly["clock_stops_non_admitted"] + weekly["outpatient_further_visits_needed"]).all()
    completed = weekly["clock_stops_non_admitted"].sum()
    slots_per_completed = weekly["outpatient_attendances"].sum() / completed
    assert slots_per_completed == pytest.approx(1.3, abs=0.02)
    waits = waits_days(services, STOPPED_NON_ADMITTED)
    assert set(np.unique(waits)) <= {0, 1, 14, 15}
    assert (waits >= 14).mean() == pytest.approx(0.3, abs=0.02)


def test_scarce_resource_caps_complex_cases_a_week_and_keeps_the_rest_waiting():
    raw = simple_raw(referrals_per_week=100, sessions_per_day=30, horizon_weeks=12)
    raw["scarce_resource"] = {"admitted_share": 0.2, "cases_per_week_per_site": 12}
    services, weekly = run_services(raw)
    assert_stock_and_flow(weekly.assign(replication=0))
    assert weekly["scarce_resource_cases"].max() == 12, "the cap binds: about 20 complex cases arrive a week"
    assert (weekly["scarce_resource_cases_parked"].iloc[2:] > 0).all()
    p = services.state.patients
    complex_cases = p.column("needs_scarce_resource") == 1
    assert complex_cases.mean() == pytest.approx(0.2, abs=0.02)
    treated = p.column("status") == STOPPED_ADMITTED
    assert (treated & complex_cases).sum() == weekly["scarce_resource_cases"].sum()
    assert (treated & ~complex_cases).sum() == (~complex_cases).sum(), "other cases are not held up"


def test_sections_with_zero_shares_change_nothing():
    """The mechanisms' code paths (the returners' heaps, the merged booking) book exactly as the plain loops do."""
    raw = scaled_baseline_raw(0.05, horizon_weeks=20)
    plain = run_single(validate(raw, "plain"), 0).weekly
    raw["patient_choice"] = {"outpatient_deferral_share": 0.0, "operation_deferral_share": 0.0}
    raw["further_outpatient_visits"] = {"non_admitted_share": 0.0, "admitted_share": 0.0}
    raw["scarce_resource"] = {"admitted_share": 0.0, "cases_per_week_per_site": 0}
    zero = run_single(validate(raw, "zero"), 0).weekly
    assert [c for c in zero.columns if c not in NEW_COLUMNS] == list(plain.columns)
    assert set(zero.columns) - set(plain.columns) == set(NEW_COLUMNS)
    assert (zero[list(NEW_COLUMNS)] == 0).all().all()
    pd.testing.assert_frame_equal(zero[plain.columns], plain)


def test_every_pathway_is_counted_once_with_all_mechanisms_on():
    raw = with_every_booking_mechanism(scaled_baseline_raw(0.05, horizon_weeks=30))
    services, weekly = run_services(raw)
    assert_stock_and_flow(weekly.assign(replication=0), initial_list=sum(b["count"] for b in raw["start_list"][
        "bands"]))
    assert min(weekly[c].sum() for c in NEW_COLUMNS) > 0, "every mechanism should have acted"
    status = services.state.patients.column("status")
    assert int(np.isin(status, (1, 2)).sum()) == weekly["waiting_total"].iloc[-1]
    assert services.returns is not None and services.returns.away >= 0
