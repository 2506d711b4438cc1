"""The week's counters: one object for the whole run, reset in place each Sunday; a column of weekly.csv per field."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import simpy

from sim.model.activity import WeeklyActivity, activity_columns
from sim.model.monitor import DERIVED_AFTER, WeeklyMonitor
from sim.model.patients import PatientTable
from sim.model.state import SharedState
from sim.model.vaccination import CENTRE_KINDS
from sim.model.waiting_list import RttLedger

pytestmark = pytest.mark.unit

STAFF_GROUPS = ["surgeons", "nurses"]


def a_week() -> WeeklyActivity:
    return WeeklyActivity(n_staff_groups=len(STAFF_GROUPS), n_cohorts=3, n_centre_kinds=len(CENTRE_KINDS))


def monitor_for(week: WeeklyActivity, weeks: int) -> WeeklyMonitor:
    ledger = RttLedger(PatientTable(), history_days=0, horizon_days=7 * weeks, n_specialties=1)
    return WeeklyMonitor(weeks, ["general"], STAFF_GROUPS, [], np.zeros(0), np.zeros(0), np.zeros(0), week=week,
                         ledger=ledger, suites=[], covid_inpatients=np.zeros(7 * weeks), opening_list=0)


def test_reset_zeroes_every_counter_in_place():
    week = a_week()
    arrays = {f.name: getattr(week, f.name) for f in dataclasses.fields(week)
              if isinstance(getattr(week, f.name), (np.ndarray, list))}
    for field in dataclasses.fields(week):
        value = getattr(week, field.name)
        if isinstance(value, np.ndarray):
            value += 5
        elif isinstance(value, list):
            value[0] += 5
        elif not field.name.startswith("n_"):
            setattr(week, field.name, value + 5)
    week.reset()
    fresh = a_week()
    for field in dataclasses.fields(week):
        assert np.array_equal(getattr(week, field.name), getattr(fresh, field.name)), field.name
    for name, array in arrays.items():
        assert getattr(week, name) is array, f"{name} was replaced, not zeroed in place"
    assert (week.n_staff_groups, week.n_cohorts) == (len(STAFF_GROUPS), 3)


def test_a_service_keeping_the_week_counts_into_every_weeks_row():
    """Fails if the monitor ever replaces the week's counters instead of resetting them: a service that keeps the
    object it was built with would then count into a dead one, and the weeks after the first would show nothing."""
    week = a_week()
    monitor = monitor_for(week, weeks=3)

    def clinic(env: simpy.Environment, kept: WeeklyActivity):
        for day in range(21):
            yield env.timeout(day + 0.3 - env.now)
            kept.outpatient_attendances += 1
            kept.staff_present += 2

    env = simpy.Environment()
    env.process(clinic(env, week))
    env.process(monitor.process(env))
    env.run(until=21)
    assert monitor.columns["outpatient_attendances"] == [7, 7, 7]
    assert monitor.columns["staff_present_surgeons"] == [2.0, 2.0, 2.0]     # person-days / 7
    assert monitor.week is week


def test_the_shared_week_cannot_be_swapped_for_another():
    patients = PatientTable()
    state = SharedState(patients=patients, ledger=RttLedger(patients, 0, 7, 1), outpatient_queues=None,
                        admitted_queues=None, week=a_week(), pool_by_site=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.week = a_week()


def test_every_shown_counter_is_a_column_named_after_it_in_field_order():
    week = a_week()
    labels = {"centre_kinds": list(CENTRE_KINDS), "staff_groups": STAFF_GROUPS}
    sections = frozenset(f.metadata["only_with"] for f in dataclasses.fields(week) if "only_with" in f.metadata)
    every_column = [column for _, column, _ in activity_columns(week, labels, sections)]
    shown = [f.name for f in dataclasses.fields(week) if f.metadata.get("column") and "labels" not in f.metadata]
    assert [c for c in every_column if c in shown] == shown
    columns = [column for _, column, _ in activity_columns(week, labels)]
    assert [c for c in columns if c in shown] == [
        f.name for f in dataclasses.fields(week) if f.name in shown and "only_with" not in f.metadata], (
        "a counter of a scenario section must not be a column in a scenario without that section")
    assert [f"vaccinations_{k}" for k in CENTRE_KINDS] == [c for c in columns if c.startswith("vaccinations_")
                                                            and c[len("vaccinations_"):] in CENTRE_KINDS]
    assert columns[-len(STAFF_GROUPS):] == [f"staff_present_{g}" for g in STAFF_GROUPS]
    assert set(DERIVED_AFTER) <= set(every_column), "a derived column is placed after a counter that is not a column"
    section_counters = {f.name for f in dataclasses.fields(week) if "only_with" in f.metadata}
    assert set(DERIVED_AFTER) - set(columns) <= section_counters, (
        "only a scenario section's counter may be missing, taking its derived columns with it")


def test_a_sections_counters_are_columns_only_with_that_section():
    week = a_week()
    week.deferrals_outpatient += 2
    labels = {"centre_kinds": list(CENTRE_KINDS), "staff_groups": STAFF_GROUPS}
    with_choice = {c: v for _, c, v in activity_columns(week, labels, frozenset({"patient_choice"}))}
    assert with_choice["deferrals_outpatient"] == 2 and with_choice["deferrals_operation"] == 0
    assert "scarce_resource_cases" not in with_choice and "outpatient_further_visits_needed" not in with_choice
    assert "deferrals_outpatient" not in {c for _, c, _ in activity_columns(week, labels)}


def test_a_new_counter_field_becomes_a_column_where_it_is_declared():
    @dataclasses.dataclass(eq=False)
    class WithOneMore(WeeklyActivity):
        hub_patients_transferred: int = dataclasses.field(default=0, metadata={"column": True})

    week = WithOneMore(n_centre_kinds=len(CENTRE_KINDS))
    week.hub_patients_transferred += 3
    row = {column: value for _, column, value in activity_columns(week, {"centre_kinds": list(CENTRE_KINDS),
                                                                          "staff_groups": []})}
    assert row["hub_patients_transferred"] == 3
    week.reset()
    assert week.hub_patients_transferred == 0


def test_weekly_rows_keep_their_column_order():
    monitor = monitor_for(a_week(), weeks=1)
    env = simpy.Environment()
    env.process(monitor.process(env))
    env.run(until=7)
    columns = list(monitor.columns)
    assert columns[:3] == ["week", "waiting_total_start", "clock_starts"]
    for anchor, derived in DERIVED_AFTER.items():
        if anchor not in columns:              # a section's counter: neither it nor its derived columns are shown
            assert not set(derived) & set(columns)
            continue
        start = columns.index(anchor) + 1
        assert columns[start:start + len(derived)] == list(derived)
    assert columns[-len(STAFF_GROUPS):] == [f"staff_present_{g}" for g in STAFF_GROUPS]
