"""Outpatient clinics: first appointments per site and specialty, did-not-attend with rebooking.

Each clinic day a site's clinics take the next patients from their (site, specialty) list in booking
order, up to the day's share of the weekly slots. A patient who does not attend uses the slot and is
rebooked, keeping their place (the clock keeps running). An attended appointment either stops the clock
(non-admitted pathway) or makes a decision to treat, which puts the patient on the admitted list.

With patients who defer or need a further visit (sim.scenario.schema.PatientChoice, FurtherOutpatientVisits) the
clinics book through `_book_with_returns`: a deferrer met at the head for the first time leaves the list
without using a slot, and a first attendance that decides nothing sends the patient away for their diagnostic
wait; both come back through the ReturnSchedule to a heap beside the rank's queue. Without those mechanisms a
clinic day is one call of the compiled loop `book_first_appointments` (sim.core.compiled).

With outpatient follow-ups (sim.model.follow_ups) the day's whole first slots are worked out first, then the
follow-ups book theirs (ring-fenced slots, or first from a common pool, which leaves fewer first slots), and then
the first appointments run; each clock stop at clinic files its follow-ups.
"""
from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import simpy

from sim.core.compiled import grown, njit
from sim.core.rng import Streams
from sim.model.day import CLINICS, ServiceProcess, wait_until
from sim.model.delivery import delivered_share_by_day
from sim.model.follow_ups import FollowUpClinics
from sim.model.patients import WAITING_OUTPATIENT
from sim.model.returns import ReturnSchedule
from sim.model.staff import StaffRoster
from sim.model.state import SharedState
from sim.model.waiting_list import ID_MASK
from sim.scenario.schema import WEEKDAYS, Scenario


class OutpatientClinics:
    """The first-appointment clinics of every site, each staffed from its site's outpatient clinicians.

    One service for all sites: every site holds clinics on the same days, and what one site's clinics do (its own
    outpatient lists) is not read by another's, so a day's clinics run site by site and record their decisions to
    treat and clock stops together, once a day."""

    def __init__(self, scenario: Scenario, bank_holidays: set[int], state: SharedState, staff: StaffRoster,
                 returns: ReturnSchedule | None = None, streams: Streams | None = None) -> None:
        self.state = state
        self.returns = returns               # set only when patients can leave the list and come back
        self.staff = staff
        self.horizon_days = scenario.horizon_days
        self.bank_holidays = bank_holidays
        self.clinic_weekdays = {WEEKDAYS.index(d) for d in scenario.outpatients.clinic_weekdays}
        self.start_weekday = scenario.start_date.weekday()
        days_per_week = max(len(self.clinic_weekdays), 1)
        # slots a clinic day by site and specialty, and the fractional slots each carries to its next clinic day
        self.slots_per_clinic_day = [[site.outpatient_first_slots_per_week.get(s, 0.0) / days_per_week
                                      for s in scenario.specialty_names] for site in scenario.sites.values()]
        self.delivered_share_by_day = delivered_share_by_day(scenario, "clinics")
        # follow-ups share the clinics (sim.model.follow_ups); ring-fenced, the slots PIFU frees may become first slots
        self.follow_ups: FollowUpClinics | None = None
        if scenario.outpatient_follow_ups is not None:
            assert streams is not None, "follow-ups draw from their own stream"
            self.follow_ups = FollowUpClinics(scenario, streams, state.week, state.patients,
                                              self.slots_per_clinic_day, days_per_week,
                                              self.delivered_share_by_day[0] if scenario.horizon_days else 1.0)
            self.slots_per_clinic_day = [
                [slots + self.follow_ups.free_slots_for_firsts(site, specialty)
                 for specialty, slots in enumerate(by_specialty)]
                for site, by_specialty in enumerate(self.slots_per_clinic_day)]
        # as arrays (site x specialty) for the compiled `whole_slots_today`; the same doubles as the lists
        self._slots_per_clinic_day = np.array(self.slots_per_clinic_day, dtype=np.float64).reshape(
            len(scenario.sites), len(scenario.specialty_names))
        self._carry = np.zeros_like(self._slots_per_clinic_day)
        self._sent_away: list[int] = []      # attended today, but need a further visit (counted as attendances)

    def is_clinic_day(self, day: int) -> bool:
        return (self.start_weekday + day) % 7 in self.clinic_weekdays and day not in self.bank_holidays

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each clinic day: every site books the day's slots of every specialty; then the day's decisions to treat
        and clock stops are recorded together (array operations once a day rather than once a clinic)."""
        n_sites = len(self._slots_per_clinic_day)
        for day in range(self.horizon_days):
            if not self.is_clinic_day(day):
                continue
            yield from wait_until(env, day, CLINICS)
            delivered = self.delivered_share_by_day[day]
            staffed_shares = self.staff.clinic_capacity_factors()[:n_sites] * delivered    # rows: sites, then hubs
            first_slots = whole_slots_today(self._slots_per_clinic_day, staffed_shares, self._carry)
            if self.follow_ups is not None:
                first_slots = self.follow_ups.book_clinic_day(day, first_slots, staffed_shares)
            if self.returns is not None:
                to_treat: list[int] = []
                stopped: list[int] = []
                for site, slots_by_specialty in enumerate(first_slots.tolist()):
                    for specialty, whole in enumerate(slots_by_specialty):
                        if whole:
                            self._book_with_returns(site, specialty, whole, day, to_treat, stopped)
                self.close_clinic_day(day, np.array(to_treat, dtype=np.int64), np.array(stopped, dtype=np.int64))
            else:
                self.close_clinic_day(day, *self.run_clinics(first_slots))

    def run_clinics(self, first_slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Book each (site, specialty) clinic's `first_slots` first appointments from its list, most urgent rank
        first, in the compiled loop `book_first_appointments`. Returns the ids of the patients seen who need an
        operation and of those whose clock stops at clinic, and how many of them were seen virtually, for
        `close_clinic_day`: nothing outside the outpatient lists reads them in between, so this is the same as
        recording each clinic's at once."""
        p = self.state.patients
        queues = self.state.outpatient_queues
        to_treat, stopped, dna, n_virtual = book_first_appointments(
            first_slots, queues.n_ranks, queues.fifos, queues.heads, queues.tails,
            p.status, WAITING_OUTPATIENT, p.dna_remaining,
            p.needs_operation, p.virtual)
        self.state.week.outpatient_dna += dna
        return to_treat, stopped, n_virtual

    def close_clinic_day(self, day: int, to_treat: np.ndarray, stopped: np.ndarray,
                         n_virtual: int | None = None) -> None:
        """The day's attendances, decisions to treat (onto the admitted list of each patient's site, or the ICS's)
        and clock stops. `n_virtual`: how many of `to_treat` and `stopped` were seen virtually, if already counted."""
        state = self.state
        virtual = state.patients.virtual
        if n_virtual is None:
            n_virtual = int(np.count_nonzero(virtual[to_treat])) + int(np.count_nonzero(virtual[stopped]))
        if len(to_treat):
            decided = state.ledger.decide_to_treat_batch(to_treat)
            state.admitted_queues.push_decided(decided, day, by_site=state.pool_by_site)
        if len(stopped):
            state.ledger.stop_non_admitted_batch(stopped, day)
            if self.follow_ups is not None:
                self.follow_ups.after_non_admitted_stops(stopped, day)
        n_seen = len(to_treat) + len(stopped)
        if self._sent_away:
            sent_away = np.array(self._sent_away, dtype=np.int64)
            self._sent_away.clear()
            n_virtual += int(np.count_nonzero(virtual[sent_away]))
            n_seen += len(sent_away)
        stats = state.week
        stats.outpatient_attendances += n_seen
        stats.outpatient_virtual += n_virtual

    def _book_with_returns(self, site: int, specialty: int, slots: int, day: int, to_treat: list[int],
                           stopped: list[int]) -> None:
        """A clinic's booking when patients can leave the list and come back (in Python: no shipped scenario has
        these mechanisms): each rank books the earlier of its queue's front and its returners' heap head (clock
        start, then id: the queue's own order).

        A deferrer at the head for the first time leaves without using a slot and comes back in their deferral's
        days; an attended first visit that decides nothing uses its slot and sends the patient away for their
        diagnostic wait, after which they return for the visit that decides. Did-not-attends keep their place."""
        state = self.state
        p = state.patients
        queues = state.outpatient_queues
        returns = self.returns
        assert returns is not None
        status, dna_remaining, needs_operation = p.status, p.dna_remaining, p.needs_operation
        defer_days, visit_days = p.outpatient_deferral_days, p.further_visit_days
        waiting = WAITING_OUTPATIENT
        key_of = queues.returning_key
        heappop, heappush = heapq.heappop, heapq.heappush
        dna = deferred = 0
        sent_away = self._sent_away
        sent_away_before = len(sent_away)          # the day's list: this clinic's are those added now
        for rank, heap in enumerate(queues.returning[site][specialty]):
            queue = queues.list_index(site, specialty, rank)
            rebook: list[int] = []
            while slots and (heap or queues.first(queue) >= 0):
                first = queues.first(queue)
                if heap and (first < 0 or heap[0] < key_of(first)):
                    pid = heappop(heap) & ID_MASK
                else:
                    pid = queues.pop_first(queue)
                if status[pid] != waiting:
                    continue                       # left the list another way; no slot used
                if defer_days[pid]:
                    returns.file(day + int(defer_days[pid]), heap, key_of(pid))
                    defer_days[pid] = 0            # defers once; back with their place kept
                    deferred += 1
                    continue
                slots -= 1
                if dna_remaining[pid]:
                    dna_remaining[pid] -= 1
                    dna += 1
                    rebook.append(pid)
                elif visit_days[pid]:
                    returns.file(day + int(visit_days[pid]), heap, key_of(pid))
                    visit_days[pid] = 0            # the next attendance decides
                    sent_away.append(pid)
                elif needs_operation[pid]:
                    to_treat.append(pid)
                else:
                    stopped.append(pid)
            for pid in rebook:                     # did-not-attends keep their place
                heappush(heap, key_of(pid))
            if not slots:
                break
        stats = state.week
        stats.outpatient_dna += dna
        stats.deferrals_outpatient += deferred
        stats.outpatient_further_visits_needed += len(sent_away) - sent_away_before


@njit
def whole_slots_today(slots_per_clinic_day: np.ndarray, staffed_shares: np.ndarray, carry: np.ndarray) -> np.ndarray:
    """The whole first slots (site x specialty) each clinic has today: its slots a clinic day times its site's
    staffed share (`staffed_shares`, by site), plus the fraction it carried; the new fractions go back into `carry`."""
    n_sites, n_specialties = slots_per_clinic_day.shape
    whole_slots = np.empty((n_sites, n_specialties), dtype=np.int64)
    for site in range(n_sites):
        share = staffed_shares[site]
        for specialty in range(n_specialties):
            available = slots_per_clinic_day[site, specialty] * share + carry[site, specialty]
            whole = int(available)
            carry[site, specialty] = available - whole
            whole_slots[site, specialty] = whole
    return whole_slots


@njit
def book_first_appointments(first_slots: np.ndarray, n_ranks: int, fifos: Any, heads: np.ndarray,
                            tails: np.ndarray, status: np.ndarray, waiting: int, dna_remaining: np.ndarray,
                            needs_operation: np.ndarray,
                            virtual: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A clinic day of every site and specialty: each books its slots (`first_slots`, site x specialty) from the front
    of its queues, most urgent rank first (OutpatientQueues). A patient who has left the list another way is dropped
    without using a slot; one who does not attend uses it and goes back to the front, keeping their place.

    Returns the ids seen who need an operation and those whose clock stops here, each in booking order, the
    number of did-not-attends and how many of those seen (not the did-not-attends) were seen virtually."""
    to_treat = np.empty(256, dtype=np.int64)
    stopped = np.empty(1024, dtype=np.int64)
    rebook = np.empty(64, dtype=np.int64)
    n_treat = n_stopped = dna = n_virtual = 0
    n_sites, n_specialties = first_slots.shape
    for site in range(n_sites):
        for specialty in range(n_specialties):
            slots = first_slots[site, specialty]
            if slots <= 0:
                continue
            for rank in range(n_ranks):
                i = (site * n_specialties + specialty) * n_ranks + rank
                queue = fifos[i]
                head, tail = heads[i], tails[i]
                n_rebook = 0
                while slots and head < tail:
                    pid = queue[head]
                    head += 1
                    if status[pid] != waiting:
                        continue                   # left the list another way; no slot used
                    slots -= 1
                    if dna_remaining[pid]:
                        dna_remaining[pid] -= 1
                        dna += 1
                        if n_rebook == len(rebook):
                            rebook = grown(rebook)
                        rebook[n_rebook] = pid
                        n_rebook += 1
                        continue
                    if virtual[pid]:
                        n_virtual += 1
                    if needs_operation[pid]:
                        if n_treat == len(to_treat):
                            to_treat = grown(to_treat)
                        to_treat[n_treat] = pid
                        n_treat += 1
                    else:
                        if n_stopped == len(stopped):
                            stopped = grown(stopped)
                        stopped[n_stopped] = pid
                        n_stopped += 1
                # did-not-attends keep their place at the front (taken from this queue, so there is room)
                head -= n_rebook
                queue[head:head + n_rebook] = rebook[:n_rebook]
                heads[i] = head
                if not slots:
                    break
    return to_treat[:n_treat].copy(), stopped[:n_stopped].copy(), dna, n_virtual

