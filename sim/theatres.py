"""Theatre sessions: each site's weekly timetable, filled from the admitted list in booking order.

A session takes the next patients of its specialty (from the ICS-wide list under `ics` pooling, from
its own site's list under `site`) while their expected minutes plus turnaround fit the bookable minutes
(session minutes x utilisation cap); the first case is always taken, even if it overruns. Cases can be
cancelled on the day (the slot is lost, the patient keeps their place), and an inpatient case needs an
elective bed at the site for its length of stay: no bed, and the slot is lost.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Iterator

import numpy as np

from sim.beds import ElectiveBeds
from sim.config import WEEKDAYS, Scenario
from sim.rng import Streams
from sim.waiting_list import ID_MASK

if TYPE_CHECKING:
    import simpy

    from sim.model import Services

THEATRE_TIME_OF_DAY = 0.5


def apportion(total: int, shares: list[float]) -> list[int]:
    """Split a whole number by shares with the largest-remainder method (sums exactly to total)."""
    raw = [total * s for s in shares]
    counts = [int(r) for r in raw]
    order = sorted(range(len(shares)), key=lambda i: (raw[i] - counts[i], shares[i]), reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def weekly_timetable(sessions_by_weekday: dict[str, int], specialty_shares: list[float]) -> list[list[int]]:
    """Specialty index of every session, by weekday (0 = Monday), spread evenly across the week."""
    per_day = [sessions_by_weekday.get(d, 0) for d in WEEKDAYS]
    total = sum(per_day)
    counts = apportion(total, specialty_shares)
    sequence: list[int] = []
    given = [0] * len(counts)
    for k in range(total):
        # the specialty furthest behind its fair share of the first k+1 sessions goes next
        s = max(range(len(counts)), key=lambda i: (counts[i] * (k + 1) / total - given[i], -i))
        sequence.append(s)
        given[s] += 1
    out, i = [], 0
    for n in per_day:
        out.append(sequence[i:i + n])
        i += n
    return out


class TheatreSuite:
    """One site's theatres: timetable, bed base and the session-filling rule."""

    def __init__(self, scenario: Scenario, site_index: int, streams: Streams, bank_holidays: set[int]) -> None:
        name = scenario.site_names[site_index]
        site = scenario.sites[name]
        t = site.theatres
        self.name = name
        self.site_index = site_index
        self.streams = streams
        self.bank_holidays = bank_holidays
        self.horizon_days = scenario.horizon_days
        self.start_weekday = scenario.start_date.weekday()
        shares = [t.specialty_session_shares.get(s, 0.0) for s in scenario.specialty_names]
        self.timetable = weekly_timetable(dict(t.sessions_by_weekday), shares)
        self.bookable_minutes = t.session_minutes * t.utilisation_cap
        self.session_minutes = t.session_minutes
        self.turnaround_minutes = t.turnaround_minutes
        self.session_cancellation_rate = scenario.theatre_rules.session_cancellation_rate
        self.beds = ElectiveBeds(site.elective_beds)

    def sessions_on(self, day: int) -> list[int]:
        if day in self.bank_holidays:
            return []
        return self.timetable[(self.start_weekday + day) % 7]

    def process(self, env: "simpy.Environment", services: "Services") -> Iterator:
        rng = self.streams["session_cancellation"]
        for day in range(self.horizon_days):
            sessions = self.sessions_on(day)
            if not sessions:
                continue
            now = day + THEATRE_TIME_OF_DAY
            if env.now < now:
                yield env.timeout(now - env.now)
            # one draw per planned session, whatever happens in it: keeps streams aligned across scenarios
            lost = rng.random(len(sessions)) < self.session_cancellation_rate
            week = services.week
            week.theatre_sessions_planned += len(sessions)
            for specialty, is_lost in zip(sessions, lost.tolist()):
                if is_lost:
                    week.theatre_sessions_lost += 1
                    continue
                self.run_session(services, specialty, day, now)

    def run_session(self, services: "Services", specialty: int, day: int, now: float) -> int:
        """Fill one session from the admitted list; returns the number of cases treated."""
        queues = services.admitted_queues
        pool = self.site_index if services.pool_by_site else 0
        heap = queues.heaps[pool][specialty]
        p = services.patients
        status, minutes, inpatient = p.status, p.theatre_minutes, p.inpatient
        cancellations, los, referred_site = p.cancellations_remaining, p.los_days, p.referred_site
        waiting = queues.stage_status
        ledger = services.ledger
        beds = self.beds
        site = self.site_index
        bookable = self.bookable_minutes
        turnaround = self.turnaround_minutes
        pop, push = heapq.heappop, heapq.heappush
        used = 0.0
        booked = treated = cancelled = no_bed = other_site = inpatients = 0
        set_aside: list[int] = []
        while heap:
            key = heap[0]
            pid = key & ID_MASK
            if status[pid] != waiting:
                pop(heap)
                continue
            need = minutes[pid]
            if booked and used + need > bookable:
                break
            pop(heap)
            booked += 1
            used += need + turnaround
            if cancellations[pid]:
                cancellations[pid] -= 1
                cancelled += 1
                set_aside.append(key)
                continue
            if inpatient[pid]:
                if not beds.try_admit(now, los[pid]):
                    no_bed += 1
                    set_aside.append(key)
                    continue
                inpatients += 1
            ledger.stop_admitted(pid, day, site)
            treated += 1
            other_site += referred_site[pid] != site
        for key in set_aside:
            push(heap, key)
        week = services.week
        week.theatre_sessions_run += 1
        week.theatre_sessions_idle += booked == 0
        week.theatre_cases += treated
        week.theatre_cases_inpatient += inpatients
        week.theatre_cancellations_on_day += cancelled
        week.theatre_slots_lost_no_bed += no_bed
        week.treated_at_other_site += other_site
        week.theatre_minutes_booked += min(used, self.session_minutes)
        week.theatre_minutes_available += self.session_minutes
        return treated


def timetable_sessions_per_week(suites: list[TheatreSuite]) -> int:
    return int(np.sum([len(d) for s in suites for d in s.timetable]))
