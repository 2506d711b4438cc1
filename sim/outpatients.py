"""Outpatient clinics: first appointments per site and specialty, did-not-attend with rebooking.

Each clinic day a site's clinics take the next patients from their (site, specialty) list in booking
order, up to the day's share of the weekly slots. A patient who does not attend uses the slot and is
rebooked, keeping their place (the clock keeps running). An attended appointment either stops the clock
(non-admitted pathway) or makes a decision to treat, which puts the patient on the admitted list.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Iterator

from sim.config import WEEKDAYS, Scenario
from sim.waiting_list import ID_MASK

if TYPE_CHECKING:
    import simpy

    from sim.model import Services

CLINIC_TIME_OF_DAY = 0.3   # clinics run after the day's referrals arrive (00:00) and before theatres


class OutpatientClinics:
    """All first-appointment clinics of one site."""

    def __init__(self, scenario: Scenario, site_index: int, bank_holidays: set[int]) -> None:
        site = scenario.sites[scenario.site_names[site_index]]
        self.site_index = site_index
        self.horizon_days = scenario.horizon_days
        self.bank_holidays = bank_holidays
        self.clinic_weekdays = {WEEKDAYS.index(d) for d in scenario.outpatients.clinic_weekdays}
        self.start_weekday = scenario.start_date.weekday()
        days_per_week = max(len(self.clinic_weekdays), 1)
        self.slots_per_clinic_day = [site.outpatient_first_slots_per_week.get(s, 0.0) / days_per_week
                                     for s in scenario.specialty_names]
        self._carry = [0.0] * len(self.slots_per_clinic_day)   # fractional slots carried to the next day

    def is_clinic_day(self, day: int) -> bool:
        return (self.start_weekday + day) % 7 in self.clinic_weekdays and day not in self.bank_holidays

    def process(self, env: "simpy.Environment", services: "Services") -> Iterator:
        for day in range(self.horizon_days):
            if not self.is_clinic_day(day):
                continue
            at = day + CLINIC_TIME_OF_DAY
            if env.now < at:
                yield env.timeout(at - env.now)
            for specialty, slots in enumerate(self.slots_per_clinic_day):
                available = slots + self._carry[specialty]
                whole = int(available)
                self._carry[specialty] = available - whole
                if whole:
                    self.run_clinic(services, specialty, whole, day)

    def run_clinic(self, services: "Services", specialty: int, slots: int, day: int) -> None:
        """Book up to `slots` first appointments from the (site, specialty) list."""
        queues = services.outpatient_queues
        heap = queues.heaps[self.site_index][specialty]
        p = services.patients
        status, dna_remaining, needs_operation = p.status, p.dna_remaining, p.needs_operation
        waiting = queues.stage_status
        ledger = services.ledger
        admitted = services.admitted_queues
        # Outpatient lists are per referred site, so under site pooling the admitted pool is this site.
        pool = self.site_index if services.pool_by_site else 0
        virtual = p.virtual
        stats = services.week
        rebook: list[int] = []
        seen = dna = seen_virtually = 0
        pop = heapq.heappop
        while slots and heap:
            key = pop(heap)
            pid = key & ID_MASK
            if status[pid] != waiting:
                continue                       # left the list another way; no slot used
            slots -= 1
            if dna_remaining[pid]:
                dna_remaining[pid] -= 1
                dna += 1
                rebook.append(key)
                continue
            seen += 1
            seen_virtually += virtual[pid]
            if needs_operation[pid]:
                ledger.decide_to_treat(pid)
                admitted.push(pool, specialty, pid, day)
            else:
                ledger.stop_non_admitted(pid, day)
        for key in rebook:
            heapq.heappush(heap, key)
        stats.outpatient_attendances += seen
        stats.outpatient_dna += dna
        stats.outpatient_virtual += seen_virtually
