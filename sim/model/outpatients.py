"""Outpatient clinics: first appointments per site and specialty, did-not-attend with rebooking.

Each clinic day a site's clinics take the next patients from their (site, specialty) list in booking
order, up to the day's share of the weekly slots. A patient who does not attend uses the slot and is
rebooked, keeping their place (the clock keeps running). An attended appointment either stops the clock
(non-admitted pathway) or makes a decision to treat, which puts the patient on the admitted list.
"""
from __future__ import annotations

import numpy as np
import simpy

from sim.model.day import CLINICS, ServiceProcess, wait_until
from sim.model.delivery import delivered_share_by_day
from sim.model.patients import WAITING_OUTPATIENT
from sim.model.staff import StaffRoster
from sim.model.state import SharedState
from sim.scenario.schema import WEEKDAYS, Scenario


class OutpatientClinics:
    """All first-appointment clinics of one site, staffed from the site's outpatient clinicians."""

    def __init__(self, scenario: Scenario, site_index: int, bank_holidays: set[int], state: SharedState,
                 staff: StaffRoster) -> None:
        site = scenario.sites[scenario.site_names[site_index]]
        self.state = state
        self.staff = staff
        self.site_index = site_index
        # Outpatient lists are per referred site, so under site pooling the admitted pool is this site.
        self.admitted_pool = state.admitted_pool(site_index)
        self.horizon_days = scenario.horizon_days
        self.bank_holidays = bank_holidays
        self.clinic_weekdays = {WEEKDAYS.index(d) for d in scenario.outpatients.clinic_weekdays}
        self.start_weekday = scenario.start_date.weekday()
        days_per_week = max(len(self.clinic_weekdays), 1)
        self.slots_per_clinic_day = [site.outpatient_first_slots_per_week.get(s, 0.0) / days_per_week
                                     for s in scenario.specialty_names]
        self._carry = [0.0] * len(self.slots_per_clinic_day)   # fractional slots carried to the next day
        self.delivered_share_by_day = delivered_share_by_day(scenario, "clinics")

    def is_clinic_day(self, day: int) -> bool:
        return (self.start_weekday + day) % 7 in self.clinic_weekdays and day not in self.bank_holidays

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each clinic day: book the day's slots of every specialty, then record the clock stops together."""
        for day in range(self.horizon_days):
            if not self.is_clinic_day(day):
                continue
            yield from wait_until(env, day, CLINICS)
            stopped: list[int] = []
            staffed_share = self.staff.clinic_capacity_factor(self.site_index) * self.delivered_share_by_day[day]
            for specialty, slots in enumerate(self.slots_per_clinic_day):
                available = slots * staffed_share + self._carry[specialty]
                whole = int(available)
                self._carry[specialty] = available - whole
                if whole:
                    self.run_clinic(specialty, whole, day, stopped)
            self.state.ledger.stop_non_admitted_batch(stopped, day)

    def run_clinic(self, specialty: int, slots: int, day: int, stopped: list[int]) -> None:
        """Book up to `slots` first appointments from the (site, specialty) list, most urgent rank first.

        Clock stops are appended to `stopped` and recorded for the whole site-day at once.
        """
        state = self.state
        p = state.patients
        status, dna_remaining, needs_operation, virtual = p.status, p.dna_remaining, p.needs_operation, p.virtual
        dna = 0
        waiting = WAITING_OUTPATIENT
        to_treat: list[int] = []
        stopped_before = len(stopped)
        for queue in state.outpatient_queues.buckets[self.site_index][specialty]:
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
        seen_ids = to_treat + stopped[stopped_before:]
        if to_treat:
            decided = state.ledger.decide_to_treat_batch(to_treat)
            state.admitted_queues.push_batch(self.admitted_pool, specialty, decided, day)
        stats = state.week
        stats.outpatient_attendances += len(seen_ids)
        stats.outpatient_dna += dna
        if seen_ids:
            stats.outpatient_virtual += int(np.frombuffer(virtual, dtype=np.uint8)[seen_ids].sum())
