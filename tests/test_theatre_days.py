"""The theatre day (sim.model.theatres.TheatreDays) runs its suites in the order their own SimPy processes would have,
takes staffed sessions by the same rule as the roster, and stops clocks as the ledger's own batches do."""
from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.model.day import HUB_THEATRES, MAIN_THEATRES, Slot, wait_until
from sim.model.patients import STOPPED_ADMITTED, WAITING_ADMITTED, PatientTable
from sim.model.staff import take_staffed_sessions
from sim.model.theatres import days_in_simpy_order
from sim.model.waiting_list import RttLedger, stop_clocks

pytestmark = pytest.mark.unit


def order_of_processes(session_days: list[list[int]], slots: list[Slot], horizon_days: int) -> list[tuple[int, int]]:
    """(day, suite) in the order one SimPy process per suite, registered in index order, acts: what the model did
    before its suites' days became one service."""
    env = simpy.Environment()
    acted: list[tuple[int, int]] = []

    def suite(k: int):
        for day in range(horizon_days):
            if day in session_days[k]:
                yield from wait_until(env, day, slots[k])
                acted.append((day, k))

    for k in range(len(session_days)):
        env.process(suite(k))
    env.run(until=horizon_days)
    return acted


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_suites_act_in_the_order_their_own_processes_would(seed):
    rng = np.random.default_rng(seed)
    horizon_days = 1500                    # long enough for the wake times' rounding to differ between suites
    slots = [MAIN_THEATRES] * 5 + [HUB_THEATRES] * 3
    # each suite works on some weekdays (and a hub opens late), so suites skip days in different patterns
    session_days = []
    for k in range(len(slots)):
        weekdays = set(rng.choice(7, size=int(rng.integers(1, 8)), replace=False).tolist())
        opens = int(rng.integers(0, 200)) if slots[k] is HUB_THEATRES else 0
        session_days.append([d for d in range(opens, horizon_days) if d % 7 in weekdays and rng.random() > 0.02])
    expected = order_of_processes(session_days, slots, horizon_days)
    got = [(day, k) for day, slot, in_order in days_in_simpy_order(session_days, slots) for k in in_order]
    assert got == expected
    # the order is not simply the suites' index order every day: the test would catch a model that assumed it
    by_day: dict[int, list[int]] = {}
    for day, k in expected:
        by_day.setdefault(day, []).append(k)
    main_orders = [[k for k in ks if slots[k] is MAIN_THEATRES] for ks in by_day.values()]
    assert any(order != sorted(order) for order in main_orders)


def test_the_slot_of_each_group_of_suites_is_theirs_and_hubs_act_first():
    slots = [MAIN_THEATRES, HUB_THEATRES]
    groups = list(days_in_simpy_order([[0, 1], [1]], slots))
    assert [(day, slot.name, ks) for day, slot, ks in groups] == [
        (0, "main_theatres", [0]), (1, "hub_theatres", [1]), (1, "main_theatres", [0])]


def roster_rule(cover_left: np.ndarray, cover_used: np.ndarray, per_session: np.ndarray, groups: np.ndarray,
                row: int, wanted: int) -> int:
    """The rule `take_staffed_sessions` implements, in array form (as `StaffRoster.take_sessions` once had it)."""
    if wanted <= 0 or not len(groups):
        return wanted
    left = cover_left[row, groups] - cover_used[row, groups]
    staffed = max(int(min(wanted, np.floor(min(left / per_session[groups]) + 1e-9))), 0)
    cover_used[row, groups] += staffed * per_session[groups]
    return staffed


def test_staffed_sessions_are_those_the_scarcest_theatre_group_covers():
    rng = np.random.default_rng(5)
    per_session = np.array([1.0, 0.0, 2.0, 0.5])
    groups = np.flatnonzero(per_session > 0)
    cover_left = rng.integers(0, 40, size=(3, 4)) * 2.0
    used_by_rule, used = np.zeros((3, 4)), np.zeros((3, 4))
    taken = []
    for _ in range(60):
        row, wanted = int(rng.integers(3)), int(rng.integers(-1, 9))
        expected = roster_rule(cover_left, used_by_rule, per_session, groups, row, wanted)
        got = take_staffed_sessions(cover_left, used, per_session, groups, row, wanted)
        assert got == expected
        taken.append(got)
        np.testing.assert_array_equal(used, used_by_rule)
    assert 0 < sum(taken) and taken.count(0) > 0, "some days are fully staffed and some rows run out of cover"
    # the group with no theatre role is never used up
    assert not used[:, 1].any()


def ledger_with_admitted_patients(n: int) -> tuple[PatientTable, RttLedger]:
    patients = PatientTable()
    zeros = np.zeros(n, dtype=np.uint8)
    clock_start = -np.arange(1, n + 1, dtype=np.int32) * 30
    referred = (np.arange(n) % 3).astype(np.uint8)
    patients.append(WAITING_ADMITTED, clock_start_day=clock_start, specialty=zeros, priority=zeros, borough=zeros,
                    referred_site=referred, needs_operation=zeros + 1, inpatient=zeros, virtual=zeros,
                    dna_remaining=zeros, cancellations_remaining=zeros, hub_eligible=zeros,
                    theatre_minutes=np.zeros(n, dtype=np.float32), los_days=np.zeros(n, dtype=np.float32))
    ledger = RttLedger(patients, history_days=400, horizon_days=7, n_specialties=1, n_sites=3)
    ledger.start_clocks(clock_start, zeros, np.full(n, WAITING_ADMITTED, dtype=np.uint8), referred)
    return patients, ledger


def test_clock_stops_made_in_the_theatre_day_count_as_the_ledgers_own_batches_do():
    """Two suites' stops (sites 0 and 2) made on the columns and counted once give what a batch per suite gives."""
    suites = [(np.array([4, 0, 7]), 0), (np.array([2, 9]), 2)]
    batches, ledger_by_batch = ledger_with_admitted_patients(10)
    for ids, site in suites:
        ledger_by_batch.stop_admitted_batch(ids, day=3, site=site)
    patients, ledger = ledger_with_admitted_patients(10)
    for ids, site in suites:
        stop_clocks(ids, patients.status, patients.stop_day, patients.treated_site, WAITING_ADMITTED,
                    STOPPED_ADMITTED, 3, site)
    ledger.count_admitted_stops(np.concatenate([ids for ids, _ in suites]), 3, np.array([3, 0, 2]))
    for column in ("status", "stop_day", "treated_site"):
        np.testing.assert_array_equal(patients.column(column), batches.column(column))
    assert ledger.stops_admitted_by_treating_site.tolist() == ledger_by_batch.stops_admitted_by_treating_site.tolist()
    assert ledger.stops_admitted_by_site.tolist() == ledger_by_batch.stops_admitted_by_site.tolist() == [2, 2, 1]
    assert ledger.stop_wait_days_admitted == ledger_by_batch.stop_wait_days_admitted > 0
    assert ledger.waiting_admitted == ledger_by_batch.waiting_admitted == 5
    np.testing.assert_array_equal(ledger.admitted_by_site_and_start_day(),
                                  ledger_by_batch.admitted_by_site_and_start_day())
    with pytest.raises(ValueError, match="status"):       # a patient already treated cannot stop again
        stop_clocks(np.array([4]), patients.status, patients.stop_day, patients.treated_site, WAITING_ADMITTED,
                    STOPPED_ADMITTED, 4, 0)
