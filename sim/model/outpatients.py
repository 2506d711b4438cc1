"""Outpatient clinics: first appointments per site and specialty, did-not-attend with rebooking.

Each clinic day a site's clinics take the next patients from their (site, specialty) list in booking
order, up to the day's share of the weekly slots. A patient who does not attend uses the slot and is
rebooked, keeping their place (the clock keeps running). An attended appointment either stops the clock
(non-admitted pathway) or makes a decision to treat, which puts the patient on the admitted list.

With patients who defer or need a further visit (sim.scenario.schema.PatientChoice, FurtherOutpatientVisits) the
clinics book through `_book_with_returns`: a deferrer met at the head for the first time leaves the list
without using a slot, and a first attendance that decides nothing sends the patient away for their diagnostic
wait; both come back through the ReturnSchedule to a heap beside the rank's deque. Without those mechanisms the
plain loop runs, unchanged.

With outpatient follow-ups (sim.model.follow_ups) the day's whole first slots are worked out first, then the
follow-ups book theirs (ring-fenced slots, or first from a common pool, which leaves fewer first slots), and then
the first appointments run; each clock stop at clinic files its follow-ups.
"""
from __future__ import annotations

import heapq

import numpy as np
import simpy

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
        self._carry = [[0.0] * len(scenario.specialty_names) for _ in scenario.sites]
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
        self._sent_away: list[int] = []      # attended today, but need a further visit (counted as attendances)

    def is_clinic_day(self, day: int) -> bool:
        return (self.start_weekday + day) % 7 in self.clinic_weekdays and day not in self.bank_holidays

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each clinic day: every site books the day's slots of every specialty; then the day's decisions to treat
        and clock stops are recorded together (array operations once a day rather than once a clinic)."""
        for day in range(self.horizon_days):
            if not self.is_clinic_day(day):
                continue
            yield from wait_until(env, day, CLINICS)
            to_treat: list[int] = []
            stopped: list[int] = []
            delivered = self.delivered_share_by_day[day]
            staffed_shares = [self.staff.clinic_capacity_factor(site) * delivered
                              for site in range(len(self.slots_per_clinic_day))]
            first_slots = [self._whole_slots(site, share) for site, share in enumerate(staffed_shares)]
            if self.follow_ups is not None:
                first_slots = self.follow_ups.book_clinic_day(day, first_slots, staffed_shares)
            for site, slots_by_specialty in enumerate(first_slots):
                for specialty, whole in enumerate(slots_by_specialty):
                    if whole:
                        self.run_clinic(site, specialty, whole, day, to_treat, stopped)
            self.close_clinic_day(day, to_treat, stopped)

    def _whole_slots(self, site: int, staffed_share: float) -> list[int]:
        """The whole first slots each specialty's clinic at `site` has today; the fractions carry to the next day."""
        whole_slots = []
        carry = self._carry[site]
        for specialty, slots in enumerate(self.slots_per_clinic_day[site]):
            available = slots * staffed_share + carry[specialty]
            whole = int(available)
            carry[specialty] = available - whole
            whole_slots.append(whole)
        return whole_slots

    def run_clinic(self, site: int, specialty: int, slots: int, day: int, to_treat: list[int],
                   stopped: list[int]) -> None:
        """Book up to `slots` first appointments from the (site, specialty) list, most urgent rank first.

        Patients seen who need an operation are appended to `to_treat`, the others to `stopped`; the day's
        decisions to treat and clock stops are recorded together by `close_clinic_day`. Nothing outside the
        outpatient lists reads them in between, so this is the same as recording each clinic's at once.
        """
        if self.returns is not None:
            self._book_with_returns(site, specialty, slots, day, to_treat, stopped)
            return
        p = self.state.patients
        status, dna_remaining, needs_operation = p.status, p.dna_remaining, p.needs_operation
        dna = 0
        waiting = WAITING_OUTPATIENT
        for queue in self.state.outpatient_queues.buckets[site][specialty]:
            rebook: list[int] = []
            pop, treat, stop = queue.popleft, to_treat.append, stopped.append
            while slots and queue:
                pid = pop()
                if status[pid] != waiting:
                    continue                       # left the list another way; no slot used
                slots -= 1
                if dna_remaining[pid]:
                    dna_remaining[pid] -= 1
                    dna += 1
                    rebook.append(pid)
                elif needs_operation[pid]:
                    treat(pid)
                else:
                    stop(pid)
            queue.extendleft(reversed(rebook))     # did-not-attends keep their place at the front
            if not slots:
                break
        self.state.week.outpatient_dna += dna

    def close_clinic_day(self, day: int, to_treat: list[int], stopped: list[int]) -> None:
        """The day's attendances, decisions to treat (onto the admitted list of each patient's site, or the ICS's)
        and clock stops."""
        state = self.state
        seen_ids = np.array(to_treat + stopped + self._sent_away, dtype=np.int64)
        self._sent_away.clear()
        if to_treat:
            decided = state.ledger.decide_to_treat_batch(seen_ids[:len(to_treat)])
            state.admitted_queues.push_decided(decided, day, by_site=state.pool_by_site)
        discharged = seen_ids[len(to_treat):len(to_treat) + len(stopped)]
        state.ledger.stop_non_admitted_batch(discharged, day)
        if self.follow_ups is not None:
            self.follow_ups.after_non_admitted_stops(discharged, day)
        stats = state.week
        stats.outpatient_attendances += len(seen_ids)
        if len(seen_ids):
            stats.outpatient_virtual += int(np.count_nonzero(
                np.frombuffer(state.patients.virtual, dtype=np.uint8)[seen_ids]))

    def _book_with_returns(self, site: int, specialty: int, slots: int, day: int, to_treat: list[int],
                           stopped: list[int]) -> None:
        """`run_clinic`'s booking when patients can leave the list and come back: each rank books the earlier of
        its deque's head and its returners' heap head (clock start, then id: the deque's own order).

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
        for queue, heap in zip(queues.buckets[site][specialty], queues.returning[site][specialty], strict=True):
            rebook: list[int] = []
            while slots and (queue or heap):
                if heap and (not queue or heap[0] < key_of(queue[0])):
                    pid = heappop(heap) & ID_MASK
                else:
                    pid = queue.popleft()
                if status[pid] != waiting:
                    continue                       # left the list another way; no slot used
                if defer_days[pid]:
                    returns.file(day + defer_days[pid], heap, key_of(pid))
                    defer_days[pid] = 0            # defers once; back with their place kept
                    deferred += 1
                    continue
                slots -= 1
                if dna_remaining[pid]:
                    dna_remaining[pid] -= 1
                    dna += 1
                    rebook.append(pid)
                elif visit_days[pid]:
                    returns.file(day + visit_days[pid], heap, key_of(pid))
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
