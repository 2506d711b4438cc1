"""Theatre sessions: each site's weekly timetable and its surgical hubs, filled from the admitted list.

A session books the next patients of its specialty (from the ICS-wide list under `ics` pooling, from its own
site's list under `site`) by the session rule of sim.core.sessions over the bookable minutes (session minutes x
utilisation cap): the first case always, then each next case while its minutes fit, each booked case costing its
minutes plus turnaround. Expected minutes are divided by the suite's productivity (a hub's multiplier, times the
infection-control factor on Covid days, times the delivered share of sim.model.delivery). Cases can be cancelled
on the day (the slot is lost, the patient keeps their place); an inpatient case needs an elective bed at the suite
for its stay: no bed, and the slot is lost.

Before sessions run, each day's planned sessions can be lost, and are counted by cause: Covid closure
(critical-care pressure, main theatres only), staff (no full team present), and unplanned cancellation.
Surgical hubs take only hub-eligible patients (day cases, and inpatients up to the low-complexity length of
stay), have ring-fenced beds, open on a date, and run before the main theatres so they staff first (sim.model.day).

With patients who defer their operation (sim.scenario.schema.PatientChoice) or complex cases needing a scarce
resource (ScarceResource), a session meeting such a patient at the head takes them off the list without using any
minutes: a deferrer until their deferral ends, a complex case until next week when the site's weekly cap is used.
They come back to their place through the ReturnSchedule (sim.model.returns).
"""
from __future__ import annotations

import numpy as np
import simpy

from sim.core.apportionment import apportion
from sim.core.rng import Streams
from sim.core.sessions import SessionBooking
from sim.model.beds import ElectiveBeds
from sim.model.day import HUB_THEATRES, MAIN_THEATRES, ServiceProcess, slot_time, wait_until
from sim.model.delivery import delivered_share_by_day
from sim.model.follow_ups import FollowUpClinics
from sim.model.returns import ReturnSchedule
from sim.model.staff import StaffRoster
from sim.model.state import SharedState
from sim.model.waiting_list import ListHead
from sim.scenario.schema import WEEKDAYS, Scenario, TheatreTemplate, Weekday

DRAWS_PER_DAY = 1 << 16   # room in a suite's cancellation stream for each day's sessions (a site runs at most 1,000)


def weekly_timetable(sessions_by_weekday: dict[Weekday, int], specialty_shares: list[float]) -> list[list[int]]:
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


class SessionCancellations:
    """Which of a suite's sessions are cancelled on the day: session i of day d takes draw d x DRAWS_PER_DAY + i of
    the suite's stream, whatever happens to the session.

    A scenario with more sessions a day, a hub opening earlier, or a shorter horizon leaves every other session's
    draw where it was, so scenarios that differ in capacity see the same cancellations where they have the same
    sessions (common random numbers: the solver's search moves only because its lever moved), and a run cut short
    sees the same days as the full run."""

    def __init__(self, rng: np.random.Generator, rate: float) -> None:
        bits = rng.bit_generator
        if not isinstance(bits, np.random.PCG64):
            raise TypeError("jumping to a day's draws needs PCG64's advance")
        self.rng, self.bits, self.rate = rng, bits, rate
        self.drawn_to = 0                    # draws used or skipped so far

    def on(self, day: int, sessions: int) -> list[bool]:
        """Whether each of the day's sessions (in timetable order) is cancelled; days are asked in order."""
        if sessions > DRAWS_PER_DAY or day * DRAWS_PER_DAY < self.drawn_to:
            raise ValueError(f"day {day} asked out of order, or with more than {DRAWS_PER_DAY} sessions")
        self.bits.advance(day * DRAWS_PER_DAY - self.drawn_to)
        self.drawn_to = day * DRAWS_PER_DAY + sessions
        return (self.rng.random(sessions) < self.rate).tolist()


class ScarceResourceCaps:
    """Complex cases booked this week at each site against the weekly cap (sim.scenario.schema.ScarceResource),
    shared by a site's main theatres and its hubs."""

    def __init__(self, n_sites: int, cases_per_week_per_site: int) -> None:
        self.cap = cases_per_week_per_site
        self.week = -1
        self.used = [0] * n_sites

    def has_room(self, site: int, day: int) -> bool:
        if day // 7 != self.week:
            self.week = day // 7
            self.used = [0] * len(self.used)
        return self.used[site] < self.cap


class TheatreSuite:
    """A site's main theatres, or one surgical hub: timetable, bed base, staff roster row and its admitted lists."""

    def __init__(self, scenario: Scenario, site_index: int, streams: Streams, bank_holidays: set[int],
                 template: TheatreTemplate, beds: int, name: str, state: SharedState, staff: StaffRoster,
                 hub: bool = False, opens_day: int = 0, productivity_multiplier: float = 1.0,
                 returns: ReturnSchedule | None = None, scarce: ScarceResourceCaps | None = None,
                 follow_ups: FollowUpClinics | None = None) -> None:
        self.name = name
        self.follow_ups = follow_ups         # set only when the scenario models outpatient follow-ups
        self.returns = returns               # set only when patients can leave the list and come back
        self.scarce = scarce                 # set only when some operations need a capped resource
        self.site_index = site_index
        self.streams = streams
        self.bank_holidays = bank_holidays
        self.state = state
        self.week = state.week
        self.staff = staff
        self.horizon_days = scenario.horizon_days
        self.start_weekday = scenario.start_date.weekday()
        shares = [template.specialty_session_shares.get(s, 0.0) for s in scenario.specialty_names]
        self.timetable = weekly_timetable(dict(template.sessions_by_weekday), shares)
        self.bookable_minutes = template.session_minutes * template.utilisation_cap
        self.session_minutes = template.session_minutes
        self.turnaround_minutes = template.turnaround_minutes
        self.booking = SessionBooking(self.bookable_minutes, self.turnaround_minutes)    # reopened for each session
        self.session_cancellation_rate = scenario.theatre_rules.session_cancellation_rate
        self.base_beds = beds
        self.beds = ElectiveBeds(beds)
        self.is_hub = hub
        self.ring_fenced = hub
        self.slot = HUB_THEATRES if hub else MAIN_THEATRES
        self.opens_day = opens_day
        self.productivity_multiplier = productivity_multiplier
        self.independent_sector = ((not hub)
                                   and scenario.sites[scenario.site_names[site_index]].provider == "independent_sector")
        self.staff_row = staff.row_for(name, scenario.site_names[site_index])
        # a hub books hub-eligible patients only; a main theatre the better head of both lists
        pool = state.admitted_pool(site_index)
        self.lists: list[ListHead] = [state.admitted_queues.head(pool, s, hub_only=hub)
                                      for s in range(len(scenario.specialty_names))]
        # set each day by the Covid process (defaults: no pressure)
        self.productivity_today = 1.0
        self.closed_share_today = 0.0
        # what the trusts delivered of planned throughput (scenario `delivery`), by day; 1.0 without it
        self.delivered_share_by_day = delivered_share_by_day(scenario, "theatres")
        self.delivered_share_today = 1.0

    def sessions_on(self, day: int) -> list[int]:
        if day in self.bank_holidays or day < self.opens_day:
            return []
        return self.timetable[(self.start_weekday + day) % 7]

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each day with sessions: lose those closed, unstaffed or cancelled, run the rest, stop treated clocks."""
        cancellations = SessionCancellations(self.streams.for_unit("session_cancellation", self.name),
                                             self.session_cancellation_rate)
        week = self.week
        for day in range(self.horizon_days):
            sessions = self.sessions_on(day)
            if not sessions:
                continue
            yield from wait_until(env, day, self.slot)
            now = slot_time(day, self.slot)
            self.delivered_share_today = self.delivered_share_by_day[day]
            n = len(sessions)
            cancelled = cancellations.on(day, n)
            closed = 0 if self.ring_fenced else int(round(self.closed_share_today * n))
            staffed = self.staff.take_sessions(self.staff_row, n - closed)
            treated_today: list[int] = []
            week.theatre_sessions_planned += n
            if self.independent_sector:
                week.independent_sector_sessions_planned += n
            elif (self.start_weekday + day) % 7 >= 5:
                week.theatre_sessions_weekend_planned += n
            week.sessions_lost_covid += closed
            week.sessions_lost_staff += n - closed - staffed
            for i in range(staffed):
                if cancelled[i]:
                    week.sessions_lost_cancelled += 1
                    continue
                self.run_session(sessions[i], now, treated_today)
            # Treated patients have left the lists, so their clock stops can be recorded together.
            self.state.ledger.stop_admitted_batch(treated_today, day, self.site_index)
            if self.follow_ups is not None:
                self.follow_ups.after_treatments(treated_today, day, self.site_index)

    def run_session(self, specialty: int, now: float, treated_today: list[int]) -> None:
        """Fill one session from the head of the specialty's list by the session rule (sim.core.sessions), then add
        its tallies to the week.

        Treated patients are appended to `treated_today` (their clock stops are recorded for the suite's whole day);
        those cancelled on the day or without a bed keep their place on the list.
        """
        patients = self.state.patients
        minutes, inpatient, los = patients.theatre_minutes, patients.inpatient, patients.los_days
        cancellations, referred_site = patients.cancellations_remaining, patients.referred_site
        speed = self.productivity_multiplier * self.productivity_today * self.delivered_share_today
        turnaround, beds, site = self.turnaround_minutes, self.beds, self.site_index
        booking = self.booking
        booking.open()
        head = self.lists[specialty]
        treated = inpatients = cancelled = no_bed = other_site = 0
        bed_days = minutes_lost_no_bed = 0.0
        returns, scarce = self.returns, self.scarce
        day = int(now)
        while True:
            pid = head.take_next()
            if pid < 0:
                break
            if returns is not None and self._takes_off(pid, head, day, returns, scarce):
                continue                           # off the list for now: no minutes used
            need = minutes[pid] / speed
            if not booking.books(need):
                head.give_back()                   # stays first on the list, for the next session
                break
            if cancellations[pid]:
                cancellations[pid] -= 1
                cancelled += 1
                head.set_aside()
                continue
            if inpatient[pid]:
                if not beds.try_admit(now, los[pid]):
                    no_bed += 1
                    minutes_lost_no_bed += need + turnaround
                    head.set_aside()
                    continue
                inpatients += 1
                bed_days += los[pid]
            treated_today.append(pid)
            treated += 1
            other_site += referred_site[pid] != site
            if scarce is not None and patients.needs_scarce_resource[pid]:
                scarce.used[site] += 1
                self.week.scarce_resource_cases += 1
        head.put_back()
        self.count_session(booking, treated, inpatients, bed_days, cancelled, no_bed, minutes_lost_no_bed, other_site)

    def _takes_off(self, pid: int, head: ListHead, day: int, returns: ReturnSchedule,
                   scarce: ScarceResourceCaps | None) -> bool:
        """Whether the patient just taken from the head leaves the list for now: a deferrer offered a date for the
        first time (back after their deferral), or a complex case when the site's weekly cap is used (back next
        Monday). Otherwise they are still the session's to book."""
        patients = self.state.patients
        defer_days = patients.operation_deferral_days[pid]
        if defer_days:
            patients.operation_deferral_days[pid] = 0    # defers once
            returns.file(day + defer_days, *head.last_taken())
            self.week.deferrals_operation += 1
            return True
        if scarce is not None and patients.needs_scarce_resource[pid] and not scarce.has_room(self.site_index, day):
            returns.file(7 * (day // 7 + 1), *head.last_taken())
            self.week.scarce_resource_cases_parked += 1
            return True
        return False

    def count_session(self, booking: SessionBooking, treated: int, inpatients: int, bed_days: float,
                      cancelled_on_day: int, no_bed: int, minutes_lost_no_bed: float,
                      treated_at_other_site: int) -> None:
        """Add one session's tallies to the week's counters, once the session is over (plain arguments rather than a
        tally object: this runs for every session, and building an object each time costs about 1% of a run)."""
        week = self.week
        session_minutes = self.session_minutes
        week.theatre_sessions_run += 1
        week.theatre_sessions_idle += booking.cases == 0
        week.theatre_cases += treated
        week.theatre_cases_inpatient += inpatients
        week.elective_bed_days += bed_days
        if self.independent_sector:
            week.independent_sector_sessions_run += 1
            week.independent_sector_cases += treated
        week.theatre_cancellations_on_day += cancelled_on_day
        week.theatre_slots_lost_no_bed += no_bed
        week.sessions_lost_no_bed += min(minutes_lost_no_bed, session_minutes) / session_minutes
        week.treated_at_other_site += treated_at_other_site
        week.theatre_minutes_booked += min(booking.minutes_used, session_minutes)
        week.theatre_minutes_available += session_minutes
        if self.is_hub:
            week.hub_sessions_run += 1
            week.hub_cases += treated


def build_suites(scenario: Scenario, streams: Streams, bank_holidays: set[int], state: SharedState,
                 staff: StaffRoster, returns: ReturnSchedule | None = None,
                 follow_ups: FollowUpClinics | None = None) -> list[TheatreSuite]:
    """Main theatres of every site, then every surgical hub, each staffed from its roster row."""
    scarce = (ScarceResourceCaps(len(scenario.sites), scenario.scarce_resource.cases_per_week_per_site)
              if scenario.scarce_resource is not None else None)
    suites = [TheatreSuite(scenario, i, streams, bank_holidays, site.theatres, site.elective_beds, name, state, staff,
                           returns=returns, scarce=scarce, follow_ups=follow_ups)
              for i, (name, site) in enumerate(scenario.sites.items())]
    if scenario.surgical_hubs:
        for name, hub in scenario.surgical_hubs.hubs.items():
            suites.append(TheatreSuite(
                scenario, scenario.site_names.index(hub.host_site), streams, bank_holidays, hub.theatres,
                hub.elective_beds, name, state, staff, hub=True,
                opens_day=max(0, (hub.opens - scenario.start_date).days),
                productivity_multiplier=hub.productivity_multiplier, returns=returns, scarce=scarce,
                follow_ups=follow_ups))
    return suites
