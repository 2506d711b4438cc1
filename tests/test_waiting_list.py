"""Waiting lists on their own: the order in which patients come off them under each booking policy.

- admitted list (BookingQueues): `fifo` by decision-to-treat day, `longest_wait_first` by clock-start day,
  `priority_then_longest_wait` by priority then clock-start day; equal keys by patient id. A main theatre books
  from both the hub-eligible and the other list, a surgical hub only from the hub-eligible one.
- first-appointment list (OutpatientQueues): by clock-start day, most urgent priority first under
  `priority_then_longest_wait`; each (site, specialty) its own list.

The expected orders are built here with `sorted` on plain tuples, not with the module's keys.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim.model.patients import WAITING_ADMITTED, WAITING_OUTPATIENT, PatientTable
from sim.model.waiting_list import BookingQueues, OutpatientQueues

pytestmark = pytest.mark.unit

POLICIES = ("fifo", "longest_wait_first", "priority_then_longest_wait")


def patients(clock_start, priority, hub_eligible=None, status=WAITING_ADMITTED) -> PatientTable:
    """A table of patients with the given clock-start days and priorities (0..3 for P1..P4), ids 0, 1, 2, ..."""
    n = len(clock_start)
    table = PatientTable()
    zeros = np.zeros(n, dtype=np.uint8)
    table.append(status, clock_start_day=np.asarray(clock_start, dtype=np.int32),
                 priority=np.asarray(priority, dtype=np.uint8),
                 hub_eligible=np.asarray(hub_eligible if hub_eligible is not None else zeros, dtype=np.uint8),
                 specialty=zeros, borough=zeros, referred_site=zeros, needs_operation=zeros + 1, inpatient=zeros,
                 virtual=zeros, dna_remaining=zeros, cancellations_remaining=zeros,
                 theatre_minutes=np.full(n, 60.0, dtype=np.float32), los_days=np.zeros(n, dtype=np.float32))
    return table


def booking_order(queues: BookingQueues, pool: int = 0, specialty: int = 0, hub: bool = False) -> list[int]:
    """Patient ids in the order sessions would book them, through the list's own head: a hub from the hub-eligible
    list only, a main theatre the better head of both. Everyone is set aside and put back, so the lists are left
    as they were."""
    head = queues.head(pool, specialty, hub_only=hub)
    order = []
    while (patient := head.peek()) >= 0:
        order.append(patient)
        head.take()
        head.set_aside()
    head.put_back()
    return order


def outpatient_order(queues: OutpatientQueues, site: int = 0, specialty: int = 0) -> list[int]:
    """Patient ids in the order clinics would see them: most urgent rank first, each rank front to back."""
    return [int(pid) for rank in range(queues.n_ranks) for pid in queues.queued(site, specialty, rank)]


# Five patients on the admitted list (id: clock-start day, priority, day of the decision to treat):
#   0: -300, P4, day 5    1: -100, P2, day 1    2: -200, P1, day 3    3: -400, P3, day 2    4: -250, P2, day 1
CLOCK_START = [-300, -100, -200, -400, -250]
PRIORITY = [3, 1, 0, 2, 1]
DECIDED = {5: [0], 1: [1, 4], 3: [2], 2: [3]}     # decision day -> patients pushed that day (pushed in this order)
EXPECTED = {
    "fifo": [1, 4, 3, 2, 0],                          # day 1 (ids 1, 4), day 2, day 3, day 5
    "longest_wait_first": [3, 0, 4, 2, 1],            # clock starts -400, -300, -250, -200, -100
    "priority_then_longest_wait": [2, 4, 1, 3, 0],    # P1; P2 at -250 before P2 at -100; P3; P4
}


@pytest.mark.parametrize("policy", POLICIES)
def test_admitted_list_order_under_each_policy(policy):
    queues = BookingQueues(1, 1, policy, patients(CLOCK_START, PRIORITY), WAITING_ADMITTED)
    for day, ids in DECIDED.items():
        queues.push_batch(0, 0, np.array(ids, dtype=np.int64), day)
    seen = booking_order(queues)
    assert seen == EXPECTED[policy], f"{policy}: expected patients booked in the order {EXPECTED[policy]}, saw {seen}"


@pytest.mark.parametrize("policy", POLICIES)
def test_main_theatre_books_across_both_lists_and_a_hub_only_from_the_eligible_one(policy):
    eligible = [1, 0, 1, 0, 1]                        # patients 0, 2, 4 may be treated at a hub
    queues = BookingQueues(1, 1, policy, patients(CLOCK_START, PRIORITY, eligible), WAITING_ADMITTED)
    for day, ids in DECIDED.items():
        queues.push_batch(0, 0, np.array(ids, dtype=np.int64), day)
    main = booking_order(queues)
    assert main == EXPECTED[policy], f"{policy}: main theatre expected {EXPECTED[policy]}, saw {main}"
    hub_expected = [pid for pid in EXPECTED[policy] if eligible[pid]]
    hub = booking_order(queues, hub=True)
    assert hub == hub_expected, f"{policy}: hub expected only the eligible, in order {hub_expected}, saw {hub}"


@pytest.mark.parametrize("policy", POLICIES)
def test_admitted_list_order_holds_for_many_batches_of_any_size(policy):
    """600 patients, clock starts up to four years back, pushed on 40 days in batches of random size (small ones go
    in one by one, large ones are merged in bulk): the order is still the policy's, across pools and specialties."""
    rng = np.random.default_rng(20240607)
    n = 600
    clock_start = rng.integers(-1500, 300, n)
    priority = rng.integers(0, 4, n)
    eligible = rng.integers(0, 2, n)
    queues = BookingQueues(2, 3, policy, patients(clock_start, priority, eligible), WAITING_ADMITTED)
    place = {}                                        # id -> (pool, specialty)
    decided = {}                                      # id -> decision day
    cuts = np.sort(rng.choice(np.arange(1, n), 39, replace=False))
    for day, ids in enumerate(np.split(rng.permutation(n), cuts)):
        pool, specialty = int(rng.integers(0, 2)), int(rng.integers(0, 3))
        queues.push_batch(pool, specialty, ids.astype(np.int64), day)
        place.update({int(i): (pool, specialty) for i in ids})
        decided.update({int(i): day for i in ids})
    key = {
        "fifo": lambda i: (decided[i], i),
        "longest_wait_first": lambda i: (clock_start[i], i),
        "priority_then_longest_wait": lambda i: (priority[i], clock_start[i], i),
    }[policy]
    for pool in range(2):
        for specialty in range(3):
            members = [i for i, where in place.items() if where == (pool, specialty)]
            expected = sorted(members, key=key)
            seen = booking_order(queues, pool, specialty)
            assert seen == expected, (f"{policy}, pool {pool}, specialty {specialty}: expected {len(expected)} "
                                      f"patients in policy order starting {expected[:8]}, saw {seen[:8]}")
            hub_expected = [i for i in expected if eligible[i]]
            hub = booking_order(queues, pool, specialty, hub=True)
            assert hub == hub_expected, (f"{policy}, pool {pool}, specialty {specialty}: hub expected the eligible "
                                         f"in order starting {hub_expected[:8]}, saw {hub[:8]}")


@pytest.mark.parametrize("policy, expected", [
    ("fifo", [3, 0, 4, 2, 1]),                        # by clock start: before the decision to treat, fifo is
    ("longest_wait_first", [3, 0, 4, 2, 1]),          # longest wait
    ("priority_then_longest_wait", [2, 4, 1, 3, 0]),
])
def test_outpatient_list_order_under_each_policy(policy, expected):
    table = patients(CLOCK_START, PRIORITY, status=WAITING_OUTPATIENT)
    queues = OutpatientQueues(1, 1, policy, table)
    ids = np.arange(5, dtype=np.int64)
    zeros = np.zeros(5, dtype=np.int64)
    queues.add_batch(ids, zeros, zeros, np.array(PRIORITY), np.array(CLOCK_START))
    seen = outpatient_order(queues)
    assert seen == expected, f"{policy}: expected first appointments in the order {expected}, saw {seen}"


@pytest.mark.parametrize("policy", POLICIES)
def test_outpatient_referrals_join_behind_the_list_and_each_site_and_specialty_keeps_its_own(policy):
    """The start list (clock starts in the past) is added first, then a day's referrals (clock start today)."""
    start_list = {"clock_start": [-30, -90, -60, -10], "priority": [3, 3, 0, 1], "site": [0, 1, 0, 0],
                  "specialty": [1, 1, 1, 0]}
    referrals = {"clock_start": [0, 0, 0], "priority": [0, 3, 1], "site": [0, 0, 1], "specialty": [1, 1, 1]}
    table = patients(start_list["clock_start"] + referrals["clock_start"],
                     start_list["priority"] + referrals["priority"], status=WAITING_OUTPATIENT)
    queues = OutpatientQueues(2, 2, policy, table)
    for first, batch in ((0, start_list), (4, referrals)):
        n = len(batch["clock_start"])
        queues.add_batch(np.arange(first, first + n, dtype=np.int64), np.array(batch["site"]),
                         np.array(batch["specialty"]), np.array(batch["priority"]), np.array(batch["clock_start"]))
    by_priority = policy == "priority_then_longest_wait"
    expected = {
        (0, 1): [2, 4, 0, 5] if by_priority else [2, 0, 4, 5],   # site 0, specialty 1: ids 0, 2, then 4, 5 today
        (1, 1): [6, 1] if by_priority else [1, 6],               # site 1, specialty 1: id 1 (P4), id 6 (P2) today
        (0, 0): [3],
        (1, 0): [],
    }
    for (site, specialty), want in expected.items():
        seen = outpatient_order(queues, site, specialty)
        assert seen == want, f"{policy}, site {site}, specialty {specialty}: expected {want}, saw {seen}"
