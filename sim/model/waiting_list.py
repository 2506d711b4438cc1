"""Waiting lists held as data: binary heaps of packed integer keys, plus the RTT ledger of who waits how long.

A heap key packs (policy rank, day, patient id) into one integer, so heap comparisons are single integer
comparisons. Under `priority_then_longest_wait` the admitted list's ranks are P1..P4 two apart (`PRIORITY_RANKS`),
so that a routine patient past a long-wait step's weeks (sim.model.long_waits) can be put between P2 and P3 by
lowering their key's rank; without such a step the order is that of ranks 0..3. Patients who leave a list by
another route (removal, validation) are not searched for: their status changes and the heap drops them when they
reach the top (lazy deletion).

The heaps and the first-appointment queues are numpy arrays (sim.core.heaps), so the compiled loops of the clinics
and theatres (sim.core.compiled) book from them directly; `ListHead` is the same booking step for Python callers.

The ledger counts waiting patients by referred site, specialty and clock-start day. Weekly counts over
18/52/78/104 weeks are then prefix sums over days, independent of list size, and the stock-and-flow identity holds
by construction of the counters, for the ICS and for each site, which the tests check rather than assume.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from sim.core.compiled import int64_arrays, item_of, njit, slice_of
from sim.core.heaps import pop_from, pop_min, push_many, push_to
from sim.model.patients import (
    REMOVED_OTHER,
    STOPPED_ADMITTED,
    STOPPED_NON_ADMITTED,
    WAITING_ADMITTED,
    WAITING_OUTPATIENT,
    PatientTable,
)

BookingPolicy = Literal["fifo", "longest_wait_first", "priority_then_longest_wait"]

ID_BITS = 26                      # up to 67 million pathways per replication
DAY_BITS = 16
DAY_OFFSET = 1 << 15              # days from -32768 to 32767 around the start date
ID_MASK = (1 << ID_BITS) - 1
RANK_SHIFT = ID_BITS + DAY_BITS
GROUP_SHIFT = ID_BITS + DAY_BITS      # an outpatient list's (site, specialty, rank) above the day and id
MAX_PATIENTS = 1 << ID_BITS

THRESHOLDS_WEEKS = (18, 52, 78, 104)

# Admitted-list ranks under `priority_then_longest_wait`, by priority (P1..P4): two apart, order-preserving, leaving
# LONG_WAIT_RANK between P2 and P3 for routine patients (P3 and P4, rank ROUTINE_RANK and above) booked ahead of the
# other routine patients by a long-wait step (sim.model.long_waits).
PRIORITY_RANKS = np.array([0, 2, 4, 6], dtype=np.int64)
LONG_WAIT_RANK = 3
ROUTINE_RANK = 4
DAY_MASK = (1 << DAY_BITS) - 1
DAY_AND_ID_MASK = (1 << RANK_SHIFT) - 1


def pack_keys(rank: np.ndarray, day: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Heap keys (int64): lower sorts first. Rank dominates, then day, then id (a stable tie-break)."""
    return ((rank.astype(np.int64) << RANK_SHIFT) | ((day.astype(np.int64) + DAY_OFFSET) << ID_BITS)
            | ids.astype(np.int64))


@njit
def as_long_waiter(key: int, cutoff_day: int) -> int:
    """An admitted key at the long-wait rank if it is a routine patient's (P3, P4) whose clock started on or before
    `cutoff_day`; any other key unchanged. The key only ever gets smaller, so a heap stays a heap after a sift-up."""
    if (key >> RANK_SHIFT) >= ROUTINE_RANK and ((key >> ID_BITS) & DAY_MASK) - DAY_OFFSET <= cutoff_day:
        return (key & DAY_AND_ID_MASK) | (LONG_WAIT_RANK << RANK_SHIFT)
    return key


@njit
def next_heap_of(eligible_keys: np.ndarray, other_keys: np.ndarray, sizes: np.ndarray, status: np.ndarray,
                 waiting: int, eligible: int, other: int) -> int:
    """`next_heap` given the two heaps' arrays (`heaps[eligible]`, and `heaps[other]` or anything when `other` is
    -1), for a caller that books many patients while the arrays stay where they are (a typed list's item costs a
    reference count each time it is read)."""
    while sizes[eligible] and status[eligible_keys[0] & ID_MASK] != waiting:
        size = sizes[eligible]
        sizes[eligible] = size - 1
        pop_min(eligible_keys, size)
    if other < 0:
        return eligible if sizes[eligible] else -1
    while sizes[other] and status[other_keys[0] & ID_MASK] != waiting:
        size = sizes[other]
        sizes[other] = size - 1
        pop_min(other_keys, size)
    if sizes[other] and (not sizes[eligible] or other_keys[0] < eligible_keys[0]):
        return other
    return eligible if sizes[eligible] else -1


@njit
def next_heap(heaps: Any, sizes: np.ndarray, status: np.ndarray, waiting: int, eligible: int, other: int) -> int:
    """Which heap holds the next patient of a list: the hub-eligible heap `eligible` or the other heap `other` (-1
    for a hub, which books eligible patients only), whichever head sorts first; -1 if both are empty. Patients at a
    top whose status is no longer `waiting` have left by another route and are dropped here (lazy deletion)."""
    eligible_keys = heaps[eligible]
    return next_heap_of(eligible_keys, heaps[other] if other >= 0 else eligible_keys, sizes, status, waiting,
                        eligible, other)


class BookingQueues:
    """A family of heaps, two per (pool, specialty) -- not hub-eligible, hub-eligible -- ordered by the policy.

    Main theatres book the better of the two heads; surgical hubs book only from the eligible heap. Heap
    `heap_index(pool, specialty, eligible)` is `heaps[i]`'s first `sizes[i]` keys.

    `stage_status` is the status a patient must still have to be served from these heaps; anyone
    else found at the top has left by another route and is discarded.
    """

    def __init__(self, n_pools: int, n_specialties: int, policy: BookingPolicy, patients: PatientTable,
                 stage_status: int) -> None:
        self.policy = policy
        self.patients = patients
        self.stage_status = stage_status
        self.n_specialties = n_specialties
        n_heaps = n_pools * n_specialties * 2
        self.heaps = int64_arrays(n_heaps)
        self.sizes = np.zeros(n_heaps, dtype=np.int64)
        # Routine patients whose clocks started on or before this day are booked ahead of the other routine patients
        # (set each week by sim.model.long_waits; None: no long-wait rule in force). Keys made or pushed back while
        # it is set are ranked by it; the weekly pass re-ranks the keys already on the heaps.
        self.long_wait_cutoff_day: int | None = None

    def heap_index(self, pool: int, specialty: int, eligible: int) -> int:
        return (pool * self.n_specialties + specialty) * 2 + eligible

    def head(self, pool: int, specialty: int, hub_only: bool) -> ListHead:
        """The head of one (pool, specialty) list as a session books from it: hub-eligible patients only, or all."""
        eligible = self.heap_index(pool, specialty, 1)
        return ListHead(self, eligible, -1 if hub_only else eligible - 1)

    def keys_for_batch(self, ids: np.ndarray, entry_day: np.ndarray, clock_start: np.ndarray,
                       priority: np.ndarray) -> np.ndarray:
        """Each patient's heap key under the list's policy and the long-wait cut-off in force (`_key_of`)."""
        cutoff = self.long_wait_cutoff_day
        return _keys_of(np.asarray(ids, dtype=np.int64), np.asarray(entry_day, dtype=np.int64),
                        np.asarray(clock_start, dtype=np.int64), np.asarray(priority, dtype=np.int64),
                        _POLICY_CODES[self.policy], cutoff is not None, 0 if cutoff is None else cutoff)

    def push_batch(self, pool: int, specialty: int, ids: np.ndarray, entry_day: int) -> None:
        """Put patients of one specialty on one pool's list, all entering on the same day."""
        n = len(ids)
        self._push_on_day(ids, entry_day, np.full(n, pool, dtype=np.int64), np.full(n, specialty, dtype=np.int64))

    def push_decided(self, ids: np.ndarray, entry_day: int, by_site: bool) -> None:
        """Put a clinic day's decisions to treat on the lists, each on their specialty's, all entering on one day:
        on their referred site's list under `site` pooling (`by_site`), else on the ICS's."""
        p = self.patients
        cutoff = self.long_wait_cutoff_day
        _push_decided_keys(self.heaps, self.sizes, np.asarray(ids, dtype=np.int64), p.specialty, p.referred_site,
                           p.clock_start_day, p.priority, p.hub_eligible, entry_day, _POLICY_CODES[self.policy],
                           by_site, cutoff is not None, 0 if cutoff is None else cutoff, self.n_specialties)

    def _push_on_day(self, ids: np.ndarray, entry_day: int, pool: np.ndarray, specialty: np.ndarray) -> None:
        """Each patient onto their (pool, specialty) list and the heap their hub eligibility says."""
        p = self.patients
        clock_start = p.clock_start_day[ids]
        priority = p.priority[ids]
        eligible = p.hub_eligible[ids].astype(np.int64)
        keys = self.keys_for_batch(ids, np.full(len(ids), entry_day), clock_start, priority)
        self.push_grouped(pool, specialty, eligible, keys)

    def push_grouped(self, pool: np.ndarray, specialty: np.ndarray, eligible: np.ndarray, keys: np.ndarray) -> None:
        """Put keys of many lists on at once (the start list, a clinic day's decisions)."""
        heap = (pool.astype(np.int64) * self.n_specialties + specialty) * 2 + eligible
        order = np.argsort(heap, kind="stable")
        _push_groups(self.heaps, self.sizes, heap[order], np.ascontiguousarray(keys[order], dtype=np.int64))

    def push_key(self, heap_index: int, key: int) -> None:
        """One key back onto its heap (a patient returning to their place, sim.model.returns), ranked by the
        long-wait rule in force now (a patient away at the weekly pass is re-ranked as they come back)."""
        if self.long_wait_cutoff_day is not None:
            key = as_long_waiter(key, self.long_wait_cutoff_day)
        push_to(self.heaps, self.sizes, heap_index, key)

    def keys(self, heap_index: int) -> np.ndarray:
        """A copy of one heap's keys, in heap order (for checks and counts, not for booking)."""
        return slice_of(self.heaps, heap_index, 0, int(self.sizes[heap_index]))


@njit
def _push_groups(heaps: Any, sizes: np.ndarray, heap_of_key: np.ndarray, keys: np.ndarray) -> None:
    """Push runs of keys (sorted by heap) each onto its heap."""
    n = len(keys)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and heap_of_key[stop] == heap_of_key[start]:
            stop += 1
        push_many(heaps, sizes, heap_of_key[start], keys[start:stop])
        start = stop


_POLICY_CODES = {"fifo": 0, "longest_wait_first": 1, "priority_then_longest_wait": 2}


@njit
def _key_of(policy_code: int, entry_day: int, clock_start: int, priority: int, has_cutoff: bool, cutoff_day: int,
            pid: int) -> int:
    """A patient's heap key (`pack_keys`' layout) under the policy (`policy_code` indexes `_POLICY_CODES`): fifo by
    the day they joined, else by clock start; priority first, routine patients whose clock started by the long-wait
    cut-off (if one is in force) at the long-wait rank."""
    rank = 0
    if policy_code == 0:
        day = entry_day
    else:
        day = clock_start
        if policy_code == 2:
            rank = int(PRIORITY_RANKS[priority])
            if has_cutoff and rank >= ROUTINE_RANK and day <= cutoff_day:
                rank = LONG_WAIT_RANK
    return (rank << RANK_SHIFT) | ((day + DAY_OFFSET) << ID_BITS) | pid


@njit
def _keys_of(ids: np.ndarray, entry_day: np.ndarray, clock_start: np.ndarray, priority: np.ndarray,
             policy_code: int, has_cutoff: bool, cutoff_day: int) -> np.ndarray:
    """`_key_of` for a batch (the start list, a day's pushes)."""
    keys = np.empty(len(ids), dtype=np.int64)
    for i in range(len(ids)):
        keys[i] = _key_of(policy_code, entry_day[i], clock_start[i], priority[i], has_cutoff, cutoff_day, ids[i])
    return keys


@njit
def _push_decided_keys(heaps: Any, sizes: np.ndarray, ids: np.ndarray, specialty: np.ndarray,
                       referred_site: np.ndarray, clock_start_day: np.ndarray, priority: np.ndarray,
                       hub_eligible: np.ndarray, entry_day: int, policy_code: int, by_site: bool, has_cutoff: bool,
                       cutoff_day: int, n_specialties: int) -> None:
    """`push_decided` in one pass: each patient's heap and key as `_push_on_day` and `keys_for_batch` make them
    (`policy_code` indexes `_POLICY_CODES`), grouped by heap in their given order (a stable counting sort, the order
    of `push_grouped`'s stable argsort) and each heap's run pushed at once, as `_push_groups` does."""
    n = len(ids)
    n_heaps = len(sizes)
    heap_of = np.empty(n, dtype=np.int64)
    key_of = np.empty(n, dtype=np.int64)
    starts = np.zeros(n_heaps + 1, dtype=np.int64)
    for i in range(n):
        pid = ids[i]
        pool = int(referred_site[pid]) if by_site else 0
        heap = (pool * n_specialties + int(specialty[pid])) * 2 + int(hub_eligible[pid])
        heap_of[i] = heap
        key_of[i] = _key_of(policy_code, entry_day, int(clock_start_day[pid]), int(priority[pid]), has_cutoff,
                            cutoff_day, pid)
        starts[heap + 1] += 1
    for heap in range(n_heaps):
        starts[heap + 1] += starts[heap]
    filled = starts[:n_heaps].copy()
    grouped = np.empty(n, dtype=np.int64)
    for i in range(n):
        heap = heap_of[i]
        grouped[filled[heap]] = key_of[i]
        filled[heap] += 1
    for heap in range(n_heaps):
        if starts[heap + 1] > starts[heap]:
            push_many(heaps, sizes, heap, grouped[starts[heap]:starts[heap + 1]])


class ListHead:
    """One booking list as a session books from it, for Python callers (the compiled session loop of
    sim.model.theatres does the same steps with the same `next_heap`): the next patient, taking them off the list,
    and keeping the places of those taken but not treated (cancelled on the day, or no bed), who go back when the
    session is done. A head may be kept and reused from session to session.
    """

    __slots__ = ("_queues", "eligible", "other", "_heap", "_taken", "_set_aside")

    def __init__(self, queues: BookingQueues, eligible: int, other: int) -> None:
        self._queues = queues
        self.eligible = eligible             # the hub-eligible heap's index
        self.other = other                   # the other heap's, or -1 for a hub (eligible patients only)
        self._heap = eligible                # the heap `peek` found the next patient in
        self._taken = 0                      # the key of the patient `take` took last
        self._set_aside: list[tuple[int, int]] = []

    def peek(self) -> int:
        """The next patient's id (the better of the two heads when both lists are booked from), or -1 if none."""
        q = self._queues
        heap = next_heap(q.heaps, q.sizes, q.patients.status, q.stage_status, self.eligible, self.other)
        if heap < 0:
            return -1
        self._heap = heap
        return int(item_of(q.heaps, heap, 0)) & ID_MASK

    def take(self) -> None:
        """Take the patient `peek` gave off the list."""
        q = self._queues
        self._taken = int(pop_from(q.heaps, q.sizes, self._heap))

    def take_next(self) -> int:
        """Take the next patient (as `peek` gives) off the list and return their id, or -1 if none."""
        pid = self.peek()
        if pid >= 0:
            self.take()
        return pid

    def give_back(self) -> None:
        """Return the patient taken last to their place at once (the session closed before them)."""
        self._queues.push_key(self._heap, self._taken)

    def last_taken(self) -> tuple[int, int]:
        """The heap index and key of the patient taken last."""
        return self._heap, self._taken

    def set_aside(self) -> None:
        """The patient taken last keeps their place: they go back on the list at `put_back`."""
        self._set_aside.append((self._heap, self._taken))

    def put_back(self) -> None:
        """Return everyone set aside to their places; the session is done with the list."""
        for heap, key in self._set_aside:
            self._queues.push_key(heap, key)
        self._set_aside.clear()


class OutpatientQueues:
    """First-appointment lists per (site, specialty): one first-in-first-out queue per policy rank, of patient ids.

    Exact, not an approximation: within a rank the booking key is the clock-start day (fifo and
    longest-wait are the same thing before the decision to treat), and referrals join in clock-start
    order, so append order is key order. The start list is sorted as it is added; a patient who did not
    attend goes back to the front. Queue `list_index(site, specialty, rank)` is `fifos[i][heads[i]:tails[i]]`: each
    booking is O(1) where a heap costs O(log n), and this stage sees every referral.
    """

    def __init__(self, n_sites: int, n_specialties: int, policy: BookingPolicy, patients: PatientTable) -> None:
        self.n_ranks = 4 if policy == "priority_then_longest_wait" else 1
        self.n_specialties = n_specialties
        self.patients = patients
        n_lists = n_sites * n_specialties * self.n_ranks
        self.fifos = int64_arrays(n_lists)
        self.heads = np.zeros(n_lists, dtype=np.int64)
        self.tails = np.zeros(n_lists, dtype=np.int64)
        # Patients coming back to a list they left with their clock running (a deferral, a diagnostic wait): they
        # join in any clock-start order, so each rank has a heap of `returning_key`s beside its queue, and a clinic
        # books the earlier of the two heads. Empty unless the scenario has deferrals or further visits.
        self.returning: list[list[list[list[int]]]] = [
            [[[] for _ in range(self.n_ranks)] for _ in range(n_specialties)] for _ in range(n_sites)]

    def list_index(self, site: int, specialty: int, rank: int) -> int:
        return (site * self.n_specialties + specialty) * self.n_ranks + rank

    def queued(self, site: int, specialty: int, rank: int) -> np.ndarray:
        """A copy of one rank's queue, first in line first."""
        i = self.list_index(site, specialty, rank)
        return slice_of(self.fifos, i, int(self.heads[i]), int(self.tails[i]))

    def first(self, list_index: int) -> int:
        """The id at the front of a queue, or -1 if it is empty."""
        head = self.heads[list_index]
        return int(item_of(self.fifos, list_index, int(head))) if head < self.tails[list_index] else -1

    def pop_first(self, list_index: int) -> int:
        """Take the id at the front of a (non-empty) queue."""
        pid = self.first(list_index)
        self.heads[list_index] += 1
        return pid

    def returning_key(self, pid: int) -> int:
        """A returning patient's heap key: their clock start, then their id (the order of the queues)."""
        return ((int(self.patients.clock_start_day[pid]) + DAY_OFFSET) << ID_BITS) | pid

    def add_batch(self, ids: np.ndarray, site: np.ndarray, specialty: np.ndarray, priority: np.ndarray,
                  clock_start: np.ndarray) -> None:
        """Append new pathways; within each list they must not start their clocks before those already there."""
        if not len(ids):
            return
        keys = _list_keys(ids.astype(np.int64), site.astype(np.int64), specialty.astype(np.int64),
                          priority.astype(np.int64), clock_start.astype(np.int64), self.n_specialties, self.n_ranks)
        keys.sort()                       # numpy's sort: several times faster than numba's on a day's few thousand
        _append_runs(self.fifos, self.heads, self.tails, keys >> GROUP_SHIFT, keys & ID_MASK)


@njit
def _list_keys(ids: np.ndarray, site: np.ndarray, specialty: np.ndarray, priority: np.ndarray,
               clock_start: np.ndarray, n_specialties: int, n_ranks: int) -> np.ndarray:
    """The batch's packed keys (list, then clock start, then id): sorted, one sort of integers puts the batch in
    the lists' order, cheaper than a sort on five columns (every key is distinct: it holds the id)."""
    keys = np.empty(len(ids), dtype=np.int64)
    for i in range(len(ids)):
        rank = priority[i] if n_ranks > 1 else 0
        group = (site[i] * n_specialties + specialty[i]) * n_ranks + rank
        keys[i] = (group << GROUP_SHIFT) | ((clock_start[i] + DAY_OFFSET) << ID_BITS) | ids[i]
    return keys


@njit
def _append_runs(fifos: Any, heads: np.ndarray, tails: np.ndarray, list_of_id: np.ndarray, ids: np.ndarray) -> None:
    """Append runs of ids (sorted by list) each to the back of its queue, moving a queue to a new array twice the
    size of what it then holds when it has no room at the back."""
    n = len(ids)
    start = 0
    while start < n:
        i = list_of_id[start]
        stop = start + 1
        while stop < n and list_of_id[stop] == i:
            stop += 1
        queue = fifos[i]
        head, tail, count = heads[i], tails[i], stop - start
        if tail + count > len(queue):
            held = tail - head
            moved = np.empty(max(16, 2 * (held + count)), dtype=queue.dtype)
            moved[:held] = queue[head:tail]
            fifos[i] = moved
            queue = moved
            head, tail = 0, held
            heads[i] = 0
        queue[tail:tail + count] = ids[start:stop]
        tails[i] = tail + count
        start = stop


@njit
def stop_clocks(patient_ids: np.ndarray, status: np.ndarray, stop_day: np.ndarray, treated_site: np.ndarray,
                from_status: int, to_status: int, day: int, site: int) -> None:
    """A batch's clock stops on the patients' columns, as `RttLedger._stop_batch` makes them (status, stop day,
    treating site), for compiled callers; the ledger counts them afterwards (`RttLedger.count_admitted_stops`)."""
    for pid in patient_ids:
        if status[pid] != from_status:
            raise ValueError("clock stop for a patient whose status is not the list's")
    for pid in patient_ids:
        status[pid] = to_status
        stop_day[pid] = day
        treated_site[pid] = site


@njit
def _count_starts(waiting_cells: np.ndarray, admitted_cells: np.ndarray, site: np.ndarray, specialty: np.ndarray,
                  day_index: np.ndarray, status: np.ndarray, n_specialties: int, width: int) -> int:
    """Count new pathways in the ledger's (site, specialty, clock-start day) cells, and those on the admitted list
    also in its admitted cells; returns how many are on the admitted list."""
    admitted = 0
    for i in range(len(site)):
        cell = (site[i] * n_specialties + specialty[i]) * width + day_index[i]
        waiting_cells[cell] += 1
        if status[i] == WAITING_ADMITTED:
            admitted_cells[cell] += 1
            admitted += 1
    return admitted


class RttLedger:
    """Counts of waiting pathways by referred site, specialty and clock-start day, and this week's flows.

    Every change of a pathway's status goes through here, so stocks and flows cannot drift apart. The list, clock
    starts, clock stops and removals are also kept by the pathway's referred site (the provider that holds the
    pathway, as RTT reporting counts it), and admitted clock stops by the site that treated them as well (a surgical
    hub counts under its host site), so mutual aid under `ics` pooling shows.
    """

    def __init__(self, patients: PatientTable, history_days: int, horizon_days: int, n_specialties: int,
                 n_sites: int = 1) -> None:
        self.patients = patients
        self.history_days = history_days
        self.n_sites = n_sites
        # Waiting pathways by referred site x specialty x clock-start day, all stages and admitted stage only.
        # Every change of status arrives in a batch (a day's referrals, a clinic day, a suite's day, a removal sweep).
        self.width = history_days + horizon_days + 1
        self._waiting = np.zeros((n_sites, n_specialties, self.width), dtype=np.int64)
        self._admitted = np.zeros_like(self._waiting)
        self.n_specialties = n_specialties
        self.waiting_outpatient = 0
        self.waiting_admitted = 0
        # Changes of status not yet in the counts by clock-start day and the flows that need each pathway's columns:
        # a status changes at once (the lists read it), the counts when they are next read (`_settle`), so the array
        # work is done once a week for all of a week's batches rather than once a batch. Sums do not depend on order.
        self._unsettled_stops: list[tuple[np.ndarray, int, int, int]] = []   # (ids, day, from status, to status)
        self._unsettled_decisions: list[np.ndarray] = []                     # ids decided to treat
        self.reset_week()

    # -- flows -------------------------------------------------------------------------------------
    def reset_week(self) -> None:
        self._settle()
        self.referrals_diverted = 0
        self.referrals_suppressed = 0
        self.referrals_deferred_returned = 0
        self.removals_weekly_rate = 0
        self.removals_validation = 0
        self.decisions_to_treat = 0
        self._stop_wait_days_admitted = 0
        self._stop_wait_days_non_admitted = 0
        # flows by site: the referred site, and admitted stops by the site that treated them too (the ICS totals
        # are their sums: clock_starts, stops_admitted, stops_non_admitted)
        n_sites = self.n_sites
        self.clock_starts_by_site = np.zeros(n_sites, dtype=np.int64)
        self._stops_admitted_by_site = np.zeros(n_sites, dtype=np.int64)
        self.stops_admitted_by_treating_site = np.zeros(n_sites, dtype=np.int64)
        self._stops_non_admitted_by_site = np.zeros(n_sites, dtype=np.int64)
        self._removals_by_site = np.zeros(n_sites, dtype=np.int64)

    # the flows that need each stopped pathway's columns, settled when read
    @property
    def stops_admitted_by_site(self) -> np.ndarray:
        self._settle()
        return self._stops_admitted_by_site

    @property
    def stops_non_admitted_by_site(self) -> np.ndarray:
        self._settle()
        return self._stops_non_admitted_by_site

    @property
    def removals_by_site(self) -> np.ndarray:
        self._settle()
        return self._removals_by_site

    @property
    def stop_wait_days_admitted(self) -> int:
        self._settle()
        return self._stop_wait_days_admitted

    @property
    def stop_wait_days_non_admitted(self) -> int:
        self._settle()
        return self._stop_wait_days_non_admitted

    @property
    def waiting_total(self) -> int:
        return self.waiting_outpatient + self.waiting_admitted

    @property
    def clock_starts(self) -> int:
        return int(self.clock_starts_by_site.sum())

    @property
    def stops_admitted(self) -> int:
        return int(self.stops_admitted_by_site.sum())

    @property
    def stops_non_admitted(self) -> int:
        return int(self.stops_non_admitted_by_site.sum())

    def start_clocks(self, clock_start_days: np.ndarray, specialty: np.ndarray, status: np.ndarray,
                     referred_site: np.ndarray) -> None:
        """New pathways (a batch of referrals, or the start list) join the list."""
        idx = clock_start_days.astype(np.int64) + self.history_days
        if len(idx) and (idx.min() < 0 or idx.max() >= self.width):
            raise ValueError("clock start outside the ledger's range; increase history_days")
        n_adm = _count_starts(self._waiting.reshape(-1), self._admitted.reshape(-1), referred_site.astype(np.int64),
                              specialty.astype(np.int64), idx, np.asarray(status, dtype=np.int64),
                              self.n_specialties, self.width)
        self.waiting_admitted += n_adm
        self.waiting_outpatient += len(idx) - n_adm

    def count_clock_starts(self, referred_site: np.ndarray) -> None:
        """A batch of referrals counted as clock starts, by the site each was referred to."""
        self.clock_starts_by_site += np.bincount(referred_site, minlength=self.n_sites)

    def decide_to_treat_batch(self, patient_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Decisions to treat for a batch of patients seen at outpatients; returns their ids as an array."""
        idx = np.asarray(patient_ids, dtype=np.int64)
        self.patients.status[idx] = WAITING_ADMITTED
        self._unsettled_decisions.append(idx)
        n = len(idx)
        self.waiting_outpatient -= n
        self.waiting_admitted += n
        self.decisions_to_treat += n
        return idx

    def stop_admitted_batch(self, patient_ids: Sequence[int] | np.ndarray, day: int, site: int) -> None:
        """Clock stops by treatment for patients on the admitted list, treated at `site` (a suite's day; a hub's
        site is its host)."""
        n = self._stop_batch(patient_ids, day, WAITING_ADMITTED, STOPPED_ADMITTED, site)
        self.waiting_admitted -= n
        self.stops_admitted_by_treating_site[site] += n

    def count_admitted_stops(self, patient_ids: np.ndarray, day: int, stops_by_treating_site: np.ndarray) -> None:
        """Clock stops by treatment on `day` whose status, stop day and treating site the theatres' compiled day has
        already changed, suite by suite (`stop_clocks`): the counts follow as for `stop_admitted_batch`, once for all
        the suites that ran at one time of day. `stops_by_treating_site`: how many each site treated (a hub's under
        its host)."""
        n = len(patient_ids)
        if n == 0:
            return
        self._unsettled_stops.append((patient_ids, day, WAITING_ADMITTED, STOPPED_ADMITTED))
        self.waiting_admitted -= n
        self.stops_admitted_by_treating_site += stops_by_treating_site

    def stop_non_admitted_batch(self, patient_ids: Sequence[int] | np.ndarray, day: int) -> None:
        """Clock stops at outpatients for patients waiting for a first appointment (a site's clinic day):
        the most common event in the model, about four in five pathways end here."""
        self.waiting_outpatient -= self._stop_batch(patient_ids, day, WAITING_OUTPATIENT, STOPPED_NON_ADMITTED)

    def _stop_batch(self, patient_ids: Sequence[int] | np.ndarray, day: int, from_status: int, to_status: int,
                    site: int | None = None) -> int:
        """Stop the clocks of a batch: their status, stop day and treating site change now, the counts when next
        read (`_settle`). Returns how many."""
        if len(patient_ids) == 0:
            return 0
        p = self.patients
        idx = np.asarray(patient_ids, dtype=np.int64)
        status = p.status
        if (status[idx] != from_status).any():
            raise ValueError(f"clock stop for a patient whose status is not {from_status}")
        status[idx] = to_status
        p.stop_day[idx] = day
        if site is not None:
            p.treated_site[idx] = site
        self._unsettled_stops.append((idx, day, from_status, to_status))
        return len(idx)

    def _settle(self) -> None:
        """Bring the counts by clock-start day, the days waited and the flows by site up to date with every decision
        to treat and clock stop since the last read, in one compiled pass (`_settle_batches`)."""
        p = self.patients
        if self._unsettled_decisions:
            decided = np.concatenate(self._unsettled_decisions)
            self._unsettled_decisions = []
            _count_decisions(decided, p.clock_start_day, p.specialty, p.referred_site, self._admitted.reshape(-1),
                             self.n_specialties, self.width, self.history_days)
        if not self._unsettled_stops:
            return
        stops = self._unsettled_stops
        self._unsettled_stops = []
        wait_days = _settle_batches(
            np.concatenate([ids for ids, _, _, _ in stops]).astype(np.int64),
            np.array([len(ids) for ids, _, _, _ in stops], dtype=np.int64),
            np.array([d for _, d, _, _ in stops], dtype=np.int64),
            np.array([f for _, _, f, _ in stops], dtype=np.int64),
            np.array([t for _, _, _, t in stops], dtype=np.int64),
            p.clock_start_day, p.specialty, p.referred_site, self._waiting.reshape(-1), self._admitted.reshape(-1),
            self.n_specialties, self.width, self.history_days,
            self._stops_admitted_by_site, self._stops_non_admitted_by_site, self._removals_by_site)
        self._stop_wait_days_admitted += int(wait_days[0])
        self._stop_wait_days_non_admitted += int(wait_days[1])

    def remove_batch(self, patient_ids: np.ndarray, day: int, validation: bool) -> None:
        """Removals other than treatment (validation, or the weekly rate) of those among `patient_ids` still
        waiting at either stage; the others have already left and are ignored."""
        status = self.patients.status[patient_ids]
        removed = 0
        for stage in (WAITING_OUTPATIENT, WAITING_ADMITTED):
            n = self._stop_batch(patient_ids[status == stage], day, stage, REMOVED_OTHER)
            if stage == WAITING_OUTPATIENT:
                self.waiting_outpatient -= n
            else:
                self.waiting_admitted -= n
            removed += n
        if validation:
            self.removals_validation += removed
        else:
            self.removals_weekly_rate += removed

    # -- stocks ------------------------------------------------------------------------------------
    def counts_over(self, now_day: float, thresholds_weeks: tuple[int, ...] = THRESHOLDS_WEEKS,
                    admitted_only: bool = False, counts: np.ndarray | None = None) -> dict[int, np.ndarray]:
        """Pathways waiting more than T weeks at time now_day, by specialty, for each threshold T
        (admitted stage only if asked). Sum for the whole list. Pass `counts` to reuse a snapshot: counts by
        clock-start day on the last axis (specialty x day, or site x specialty x day), and the result keeps the
        other axes."""
        if counts is None:
            counts = self.admitted_by_start_day() if admitted_only else self.waiting_by_start_day()
        cum = np.cumsum(counts, axis=-1)
        out: dict[int, np.ndarray] = {}
        for weeks in thresholds_weeks:
            # waiting more than 7T days  <=>  clock_start < now - 7T
            limit = int(np.ceil(now_day - 7 * weeks)) - 1 + self.history_days
            out[weeks] = cum[..., limit] if limit >= 0 else np.zeros(counts.shape[:-1], dtype=np.int64)
        return out

    def waiting_by_start_day(self) -> np.ndarray:
        """Waiting pathways by specialty x clock-start day (index = day + history_days), all sites."""
        self._settle()
        return self._waiting.sum(axis=0)

    def admitted_by_start_day(self) -> np.ndarray:
        self._settle()
        return self._admitted.sum(axis=0)

    def waiting_by_site_and_start_day(self) -> np.ndarray:
        """Waiting pathways by referred site x specialty x clock-start day (a copy: a snapshot)."""
        self._settle()
        return self._waiting.copy()

    def admitted_by_site_and_start_day(self) -> np.ndarray:
        self._settle()
        return self._admitted.copy()


@njit
def _count_decisions(ids: np.ndarray, clock_start_day: np.ndarray, specialty: np.ndarray, referred_site: np.ndarray,
                     admitted: np.ndarray, n_specialties: int, width: int, history_days: int) -> None:
    """Add decisions to treat to the admitted counts (flat: referred site x specialty x clock-start day)."""
    for pid in ids:     # int(): the columns are small unsigned types, which the pure-Python path would overflow
        admitted[(int(referred_site[pid]) * n_specialties + int(specialty[pid])) * width + int(clock_start_day[pid])
                 + history_days] += 1


@njit
def _settle_batches(ids: np.ndarray, batch_sizes: np.ndarray, batch_day: np.ndarray, batch_from: np.ndarray,
                    batch_to: np.ndarray, clock_start_day: np.ndarray, specialty: np.ndarray,
                    referred_site: np.ndarray, waiting: np.ndarray, admitted: np.ndarray, n_specialties: int,
                    width: int, history_days: int, stops_admitted_by_site: np.ndarray,
                    stops_non_admitted_by_site: np.ndarray, removals_by_site: np.ndarray) -> np.ndarray:
    """Take batches of clock stops (ids one batch after another, each batch's size, day, status left and status
    reached) off the counts by clock-start day (flat, as `_count_decisions`), count them by referred site, and
    return the days they waited: [admitted stops', non-admitted stops']."""
    wait_days = np.zeros(2, dtype=np.int64)
    at = 0
    for b in range(len(batch_sizes)):
        day, reached = batch_day[b], batch_to[b]
        from_admitted = batch_from[b] == WAITING_ADMITTED
        for i in range(at, at + batch_sizes[b]):
            pid = ids[i]
            site = int(referred_site[pid])          # int(): as in _count_decisions
            start = int(clock_start_day[pid])
            cell = (site * n_specialties + int(specialty[pid])) * width + start + history_days
            waiting[cell] -= 1
            if from_admitted:
                admitted[cell] -= 1
            if reached == STOPPED_ADMITTED:
                stops_admitted_by_site[site] += 1
                wait_days[0] += day - start
            elif reached == STOPPED_NON_ADMITTED:
                stops_non_admitted_by_site[site] += 1
                wait_days[1] += day - start
            elif reached == REMOVED_OTHER:
                removals_by_site[site] += 1
        at += batch_sizes[b]
    return wait_days
