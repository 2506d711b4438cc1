"""The admitted list a theatre session books from: order by booking policy, the two heads, leavers, set-asides."""
from __future__ import annotations

import numpy as np
import pytest

from sim.model.patients import REMOVED_OTHER, WAITING_ADMITTED, PatientTable
from sim.model.waiting_list import BookingQueues

pytestmark = pytest.mark.unit


def waiting_patients(clock_start: list[int], priority: list[int] | None = None,
                     hub_eligible: list[int] | None = None) -> PatientTable:
    """Patients on the admitted list with the given clock starts (and priorities 0..3, hub eligibility)."""
    n = len(clock_start)
    table = PatientTable()
    zeros = np.zeros(n, dtype=np.uint8)
    table.append(WAITING_ADMITTED, clock_start_day=np.array(clock_start, dtype=np.int32), specialty=zeros,
                 priority=np.array(priority or [3] * n, dtype=np.uint8), borough=zeros, referred_site=zeros,
                 needs_operation=zeros + 1, inpatient=zeros, virtual=zeros, dna_remaining=zeros,
                 cancellations_remaining=zeros, hub_eligible=np.array(hub_eligible or [0] * n, dtype=np.uint8),
                 theatre_minutes=np.full(n, 60.0, dtype=np.float32), los_days=np.zeros(n, dtype=np.float32))
    return table


def booking_order(queues: BookingQueues, hub_only: bool = False) -> list[int]:
    """Everyone the list gives, in order, taking each."""
    head = queues.head(0, 0, hub_only=hub_only)
    order = []
    while (pid := head.peek()) >= 0:
        head.take()
        order.append(pid)
    return order


def on_list(table: PatientTable, policy: str, entry_day: list[int]) -> BookingQueues:
    """Every patient of `table` on one (pool, specialty) list, each entering on their entry day."""
    queues = BookingQueues(1, 1, policy, table, WAITING_ADMITTED)
    for pid, day in enumerate(entry_day):
        queues.push_batch(0, 0, np.array([pid]), day)
    return queues


@pytest.mark.parametrize("policy, expected", [
    ("fifo", [2, 0, 1, 3]),                             # by the day the decision to treat put them on the list
    ("longest_wait_first", [1, 3, 0, 2]),               # by clock start
    ("priority_then_longest_wait", [3, 1, 0, 2]),       # P1 first, then by clock start
])
def test_patients_come_off_the_list_in_the_policys_order(policy, expected):
    table = waiting_patients(clock_start=[-50, -90, -10, -60], priority=[3, 3, 3, 0])
    queues = on_list(table, policy, entry_day=[5, 8, 1, 9])
    assert booking_order(queues) == expected


def test_ties_in_the_policy_go_to_the_lower_patient_id():
    table = waiting_patients(clock_start=[-20, -20, -20])
    queues = on_list(table, "longest_wait_first", entry_day=[3, 2, 1])
    assert booking_order(queues) == [0, 1, 2]


def test_main_theatres_book_the_better_of_both_heads_and_hubs_only_eligible_patients():
    table = waiting_patients(clock_start=[-40, -30, -20, -10], hub_eligible=[0, 1, 0, 1])
    queues = on_list(table, "longest_wait_first", entry_day=[0, 0, 0, 0])
    assert booking_order(queues, hub_only=True) == [1, 3]
    queues = on_list(table, "longest_wait_first", entry_day=[0, 0, 0, 0])
    assert booking_order(queues) == [0, 1, 2, 3]


def test_peek_leaves_the_patient_on_the_list_and_take_removes_them():
    table = waiting_patients(clock_start=[-30, -20])
    head = on_list(table, "longest_wait_first", entry_day=[0, 0]).head(0, 0, hub_only=False)
    assert head.peek() == 0
    assert head.peek() == 0
    head.take()
    assert head.peek() == 1
    head.take()
    assert head.peek() == -1


def test_patients_who_left_by_another_route_are_dropped_from_the_head():
    table = waiting_patients(clock_start=[-30, -20, -10])
    queues = on_list(table, "longest_wait_first", entry_day=[0, 0, 0])
    table.status[0] = REMOVED_OTHER
    table.status[2] = REMOVED_OTHER
    assert booking_order(queues) == [1]


def test_set_aside_patients_are_not_offered_again_until_put_back_then_keep_their_places():
    table = waiting_patients(clock_start=[-30, -20, -10])
    queues = on_list(table, "longest_wait_first", entry_day=[0, 0, 0])
    head = queues.head(0, 0, hub_only=False)
    given = []
    for _ in range(2):
        given.append(head.peek())
        head.take()
        head.set_aside()                      # e.g. cancelled on the day
    assert given == [0, 1]
    assert head.peek() == 2
    head.put_back()
    assert booking_order(queues) == [0, 1, 2]


def test_a_kept_head_serves_session_after_session():
    table = waiting_patients(clock_start=[-30, -20, -10])
    queues = on_list(table, "longest_wait_first", entry_day=[0, 0, 0])
    head = queues.head(0, 0, hub_only=False)
    head.peek()
    head.take()
    head.set_aside()
    head.put_back()                           # session one: its only case cancelled
    assert head.peek() == 0                   # session two starts from the same place
    assert booking_order(queues) == [0, 1, 2]


def test_start_list_keys_pushed_in_groups_land_on_their_own_lists():
    table = waiting_patients(clock_start=[-30, -20, -10, -5], hub_eligible=[0, 1, 1, 0])
    queues = BookingQueues(2, 1, "longest_wait_first", table, WAITING_ADMITTED)
    ids = np.arange(4)
    keys = queues.keys_for_batch(ids, np.zeros(4, dtype=np.int64), np.array([-30, -20, -10, -5]), np.zeros(4))
    queues.push_grouped(np.array([0, 1, 0, 1]), np.zeros(4, dtype=np.int64), np.array([0, 1, 1, 0]), keys)
    pool_0 = queues.head(0, 0, hub_only=False)
    pool_1_hub = queues.head(1, 0, hub_only=True)
    assert pool_0.peek() == 0
    assert pool_1_hub.peek() == 1
