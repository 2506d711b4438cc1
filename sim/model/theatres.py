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

A suite's day of sessions is the compiled loop `book_sessions` (sim.core.compiled), which books from the lists' array
heaps (sim.model.waiting_list) and admits into the beds' (sim.model.beds) directly. One service, `TheatreDays`, runs
the days of all the suites that have sessions at a theatre slot in one compiled call, `run_theatre_day`: staffing,
cancellations, booking and clock stops, suite after suite in the order a SimPy process per suite would have acted.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import simpy

from sim.core.apportionment import apportion
from sim.core.compiled import grown, grown_rows, njit
from sim.core.heaps import pop_min, push_to
from sim.core.rng import Streams
from sim.core.sessions import fits
from sim.model.beds import ElectiveBeds, admit
from sim.model.day import HUB_THEATRES, MAIN_THEATRES, ServiceProcess, Slot, slot_time, wait_until
from sim.model.delivery import delivered_share_by_day
from sim.model.follow_ups import FollowUpClinics
from sim.model.patients import STOPPED_ADMITTED
from sim.model.returns import ReturnSchedule
from sim.model.staff import StaffRoster, take_staffed_sessions
from sim.model.state import SharedState
from sim.model.waiting_list import ID_MASK, next_heap_of, stop_clocks
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
        draws = np.empty(sessions)
        self.draw_into(day, draws)
        return (draws < self.rate).tolist()

    def draw_into(self, day: int, draws: np.ndarray) -> None:
        """The day's draws, one per session (in timetable order), into `draws`: a session whose draw is below the
        rate is cancelled. Days are asked in order."""
        sessions = len(draws)
        if sessions > DRAWS_PER_DAY or day * DRAWS_PER_DAY < self.drawn_to:
            raise ValueError(f"day {day} asked out of order, or with more than {DRAWS_PER_DAY} sessions")
        self.bits.advance(day * DRAWS_PER_DAY - self.drawn_to)
        self.drawn_to = day * DRAWS_PER_DAY + sessions
        self.rng.random(out=draws)


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
        # a hub books hub-eligible patients only; a main theatre the better head of both lists (-1: none)
        pool = state.admitted_pool(site_index)
        n_specialties = len(scenario.specialty_names)
        self.eligible_heaps = np.array([state.admitted_queues.heap_index(pool, s, 1) for s in range(n_specialties)],
                                       dtype=np.int64)
        self.other_heaps = (np.full(n_specialties, -1, dtype=np.int64) if hub
                            else np.array([state.admitted_queues.heap_index(pool, s, 0) for s in range(n_specialties)],
                                          dtype=np.int64))
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

    def run_sessions(self, specialties: list[int], now: float) -> np.ndarray:
        """Fill the day's sessions (one per item, the specialty's), one after another, each from the head of its
        specialty's list by the session rule (sim.core.sessions), in the compiled loop `book_sessions`; add their
        tallies to the week and file those taken off the list for now. Returns the ids of the patients treated, for
        the day's clock stops; those cancelled on the day or without a bed keep their place on the list."""
        if not specialties:
            return np.empty(0, dtype=np.int64)
        state, week = self.state, self.week
        p, queues = state.patients, state.admitted_queues
        scarce = self.scarce
        day = int(now)
        if scarce is not None:
            scarce.has_room(self.site_index, day)       # a new week starts the count of complex cases again
        tallies = np.zeros(N_TALLIES, dtype=np.int64)
        float_tallies = np.array([week.elective_bed_days, week.sessions_lost_no_bed, week.theatre_minutes_booked,
                                  week.theatre_minutes_available], dtype=np.float64)
        scarce_used = np.array(scarce.used if scarce is not None else [0], dtype=np.int64)
        treated, returning = book_sessions(
            np.array(specialties, dtype=np.int64), self.eligible_heaps, self.other_heaps, queues.heaps, queues.sizes,
            p.status, queues.stage_status, p.theatre_minutes, p.inpatient, p.los_days, p.cancellations_remaining,
            p.referred_site, p.operation_deferral_days, p.needs_scarce_resource, self.returns is not None,
            scarce_used, scarce.cap if scarce is not None else -1,
            self.productivity_multiplier * self.productivity_today * self.delivered_share_today, now, day,
            self.bookable_minutes, self.turnaround_minutes, self.session_minutes, self.site_index,
            self.beds.discharges, self.beds.occupancy, self.beds.capacity, tallies, float_tallies)
        if scarce is not None:
            scarce.used = scarce_used.tolist()
        if self.returns is not None:
            for return_day, heap_index, key in returning.tolist():
                self.returns.file_admitted(return_day, heap_index, key)
        (run, idle, cases, inpatients, cancelled, no_bed, other_site, deferred, complex_cases,
         parked) = tallies.tolist()
        (week.elective_bed_days, week.sessions_lost_no_bed, week.theatre_minutes_booked,
         week.theatre_minutes_available) = float_tallies.tolist()
        week.theatre_sessions_run += run
        week.theatre_sessions_idle += idle
        week.theatre_cases += cases
        week.theatre_cases_inpatient += inpatients
        week.theatre_cancellations_on_day += cancelled
        week.theatre_slots_lost_no_bed += no_bed
        week.treated_at_other_site += other_site
        if self.independent_sector:
            week.independent_sector_sessions_run += run
            week.independent_sector_cases += cases
        if self.is_hub:
            week.hub_sessions_run += run
            week.hub_cases += cases
        if self.returns is not None:
            week.deferrals_operation += deferred
        if scarce is not None:
            week.scarce_resource_cases += complex_cases
            week.scarce_resource_cases_parked += parked
        return treated

    def run_session(self, specialty: int, now: float, treated_today: list[int]) -> None:
        """One session of `specialty` (see `run_sessions`); its treated patients are appended to `treated_today`."""
        treated_today.extend(self.run_sessions([specialty], now).tolist())


# The integer tallies `book_sessions` adds to, in this order (the floating-point ones are added to the week's own
# running totals session by session, so that they round exactly as they would one session at a time).
N_TALLIES = 10


@njit
def book_sessions(specialties: np.ndarray, eligible_heaps: np.ndarray, other_heaps: np.ndarray, heaps: Any,
                  sizes: np.ndarray, status: np.ndarray, waiting: int, minutes: np.ndarray, inpatient: np.ndarray,
                  los_days: np.ndarray, cancellations: np.ndarray, referred_site: np.ndarray,
                  deferral_days: np.ndarray, needs_scarce: np.ndarray, can_take_off: bool, scarce_used: np.ndarray,
                  scarce_cap: int, speed: float, now: float, day: int, bookable_minutes: float,
                  turnaround_minutes: float, session_minutes: float, site: int, discharges: np.ndarray,
                  occupancy: np.ndarray, beds: int, tallies: np.ndarray,
                  float_tallies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A suite's day of sessions, each filled by the session rule from its specialty's list (`next_heap` picks the
    better head), with its patients' cancellations on the day, bed checks and, where the scenario has them
    (`can_take_off`), deferrals and the scarce resource's weekly cap (`scarce_cap` < 0: none).

    Returns the ids treated, in order, and the (day, heap, key) of each patient taken off the list to come back later
    (sim.model.returns). Adds the sessions' counts to `tallies` (sessions run, idle, cases, inpatient cases, cancelled
    on the day, lost for want of a bed, treated away from their referred site, deferrals, complex cases, complex
    cases parked) and, in session order, to the week's running totals in `float_tallies` (bed days, sessions lost
    for want of a bed, minutes booked, minutes available)."""
    treated = np.empty(64, dtype=np.int64)
    n_treated = 0
    returning = np.empty((8, 3), dtype=np.int64)
    n_returning = 0
    aside_heap = np.empty(64, dtype=np.int64)
    aside_key = np.empty(64, dtype=np.int64)
    for session in range(len(specialties)):
        specialty = specialties[session]
        eligible, other = eligible_heaps[specialty], other_heaps[specialty]
        cases = 0
        minutes_used = 0.0
        treated_here = inpatients = cancelled = no_bed = other_site = n_aside = 0
        bed_days = minutes_lost_no_bed = 0.0
        # the two heaps' arrays, read once a session: nothing in the loop below moves them (a push that could grow
        # one is followed by the end of the loop)
        eligible_keys = heaps[eligible]
        other_keys = heaps[other] if other >= 0 else eligible_keys
        while True:
            heap = next_heap_of(eligible_keys, other_keys, sizes, status, waiting, eligible, other)
            if heap < 0:
                break
            size = sizes[heap]
            sizes[heap] = size - 1
            key = pop_min(eligible_keys if heap == eligible else other_keys, size)
            pid = key & ID_MASK
            if can_take_off:
                back_on = -1
                if deferral_days[pid]:
                    back_on = day + int(deferral_days[pid])    # defers once, and keeps their place
                    deferral_days[pid] = 0
                    tallies[7] += 1
                elif scarce_cap >= 0 and needs_scarce[pid] and scarce_used[site] >= scarce_cap:
                    back_on = 7 * (day // 7 + 1)           # next Monday, when the cap starts again
                    tallies[9] += 1
                if back_on >= 0:
                    if n_returning == len(returning):
                        returning = grown_rows(returning)
                    returning[n_returning, 0] = back_on
                    returning[n_returning, 1] = heap
                    returning[n_returning, 2] = key
                    n_returning += 1
                    continue                           # off the list for now: no minutes used
            need = float(minutes[pid]) / speed   # in double precision, as from the float32 column in numba
            if not fits(cases, minutes_used, need, bookable_minutes):
                push_to(heaps, sizes, heap, key)      # stays first on the list, for the next session
                break
            cases += 1
            minutes_used += need + turnaround_minutes
            set_aside = False
            if cancellations[pid]:
                cancellations[pid] -= 1
                cancelled += 1
                set_aside = True
            elif inpatient[pid]:
                los = float(los_days[pid])
                if admit(discharges, occupancy, beds, now, los):
                    inpatients += 1
                    bed_days += los
                else:
                    no_bed += 1
                    minutes_lost_no_bed += need + turnaround_minutes
                    set_aside = True
            if set_aside:                              # keeps their place: back on the list when the session ends
                if n_aside == len(aside_heap):
                    aside_heap, aside_key = grown(aside_heap), grown(aside_key)
                aside_heap[n_aside] = heap
                aside_key[n_aside] = key
                n_aside += 1
                continue
            if n_treated == len(treated):
                treated = grown(treated)
            treated[n_treated] = pid
            n_treated += 1
            treated_here += 1
            if referred_site[pid] != site:
                other_site += 1
            if scarce_cap >= 0 and needs_scarce[pid]:
                scarce_used[site] += 1
                tallies[8] += 1
        for k in range(n_aside):
            push_to(heaps, sizes, aside_heap[k], aside_key[k])
        tallies[0] += 1
        if cases == 0:
            tallies[1] += 1
        tallies[2] += treated_here
        tallies[3] += inpatients
        tallies[4] += cancelled
        tallies[5] += no_bed
        tallies[6] += other_site
        float_tallies[0] += bed_days
        float_tallies[1] += min(minutes_lost_no_bed, session_minutes) / session_minutes
        float_tallies[2] += min(minutes_used, session_minutes)
        float_tallies[3] += session_minutes
    return treated[:n_treated].copy(), returning[:n_returning].copy()


# What a theatre day adds to the week's counters, in the order of `run_theatre_day`'s counts: the first six before
# any booking, then `book_sessions`' tallies (N_TALLIES), then the independent sector's and the hubs' own.
DAY_COUNTERS = ("theatre_sessions_planned", "independent_sector_sessions_planned", "theatre_sessions_weekend_planned",
                "sessions_lost_covid", "sessions_lost_staff", "sessions_lost_cancelled",
                "theatre_sessions_run", "theatre_sessions_idle", "theatre_cases", "theatre_cases_inpatient",
                "theatre_cancellations_on_day", "theatre_slots_lost_no_bed", "treated_at_other_site",
                "deferrals_operation", "scarce_resource_cases", "scarce_resource_cases_parked",
                "independent_sector_sessions_run", "independent_sector_cases", "hub_sessions_run", "hub_cases")
_FIRST_TALLY = 6


class TheatreDays:
    """Every theatre suite's days as one service: at each theatre slot (hubs, then main theatres), the suites with
    sessions that day lose their closed, unstaffed and cancelled sessions, run the rest and stop their treated
    patients' clocks, suite after suite, in one call of the compiled loop `run_theatre_day`.

    The suites act in the order their own processes would have under SimPy (a process per suite, as the model had):
    by the time each would wake, then by the order each went to sleep (registration order on the first day). The
    order matters: suites share lists, roster rows, the scarce resource's caps and the week's running totals.
    """

    def __init__(self, suites: list[TheatreSuite]) -> None:
        self.suites = suites
        n = len(suites)
        first = suites[0] if suites else None
        self.horizon_days = first.horizon_days if first else 0
        self.start_weekday = first.start_weekday if first else 0
        # each suite's sessions by weekday, padded: the specialty of session i on weekday w, and how many there are
        longest = max([len(day) for suite in suites for day in suite.timetable] + [1])
        self.timetables = np.zeros((n, 7, longest), dtype=np.int64)
        self.sessions_by_weekday = np.zeros((n, 7), dtype=np.int64)
        for k, suite in enumerate(suites):
            for weekday, sessions in enumerate(suite.timetable):
                self.timetables[k, weekday, :len(sessions)] = sessions
                self.sessions_by_weekday[k, weekday] = len(sessions)
        n_specialties = len(first.eligible_heaps) if first else 0
        self.eligible_heaps = np.array([s.eligible_heaps for s in suites], dtype=np.int64).reshape(n, n_specialties)
        self.other_heaps = np.array([s.other_heaps for s in suites], dtype=np.int64).reshape(n, n_specialties)
        self.bookable_minutes = np.array([s.bookable_minutes for s in suites], dtype=np.float64)
        self.turnaround_minutes = np.array([s.turnaround_minutes for s in suites], dtype=np.float64)
        self.session_minutes = np.array([s.session_minutes for s in suites], dtype=np.float64)
        self.sites = np.array([s.site_index for s in suites], dtype=np.int64)
        self.staff_rows = np.array([s.staff_row for s in suites], dtype=np.int64)
        self.is_hub = np.array([s.is_hub for s in suites], dtype=np.bool_)
        self.independent_sector = np.array([s.independent_sector for s in suites], dtype=np.bool_)
        # the suites' beds in rows of two arrays, so that one compiled call admits into any suite's (each suite's
        # ElectiveBeds reads and writes its own row)
        width = max([len(s.beds.discharges) for s in suites] + [1])
        self.discharges = np.zeros((n, width), dtype=np.float64)
        self.occupancy = np.zeros((n, 1), dtype=np.int64)
        for k, suite in enumerate(suites):
            if suite.beds.occupancy[0]:
                raise ValueError(f"suite {suite.name}: beds already in use when the theatre days are set up")
            suite.beds.discharges = self.discharges[k]
            suite.beds.occupancy = self.occupancy[k]
        # set before each call, for the suites running that day
        self.draws = np.zeros((n, longest), dtype=np.float64)
        self.closed = np.zeros(n, dtype=np.int64)
        self.speed = np.ones(n, dtype=np.float64)
        self.beds_capacity = np.zeros(n, dtype=np.int64)
        # what each call gives back besides the ids treated
        self.counts = np.zeros(len(DAY_COUNTERS), dtype=np.int64)
        self.treated_by_suite = np.zeros(n, dtype=np.int64)
        self.no_cover = (np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1))   # the roster's cover, without a roster
        self.stops_by_site = np.zeros(first.state.ledger.n_sites if first else 1, dtype=np.int64)

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each theatre slot of each day with sessions: run the day of every suite with sessions then, in order."""
        cancellations = [SessionCancellations(s.streams.for_unit("session_cancellation", s.name),
                                              s.session_cancellation_rate) for s in self.suites]
        session_days = [[day for day in range(self.horizon_days) if suite.sessions_on(day)] for suite in self.suites]
        for day, slot, in_order in days_in_simpy_order(session_days, [s.slot for s in self.suites], env.now):
            yield from wait_until(env, day, slot)
            self.run_day(day, slot, in_order, cancellations)

    def run_day(self, day: int, slot: Slot, in_order: list[int], cancellations: list[SessionCancellations]) -> None:
        """The sessions of suites `in_order` (each with sessions on `day` at `slot`), one suite after another."""
        suites = self.suites
        weekday = (self.start_weekday + day) % 7
        for k in in_order:
            suite = suites[k]
            n = int(self.sessions_by_weekday[k, weekday])
            suite.delivered_share_today = suite.delivered_share_by_day[day]
            cancellations[k].draw_into(day, self.draws[k, :n])
            self.closed[k] = 0 if suite.ring_fenced else int(round(suite.closed_share_today * n))
            self.speed[k] = suite.productivity_multiplier * suite.productivity_today * suite.delivered_share_today
            self.beds_capacity[k] = suite.beds.capacity
        first = suites[in_order[0]]
        state, week, staff, scarce, returns = first.state, first.week, first.staff, first.scarce, first.returns
        p, queues = state.patients, state.admitted_queues
        if scarce is not None:
            scarce.has_room(0, day)       # a new week starts the count of complex cases again
        if staff.enabled:
            cover_left, cover_used, per_session, theatre_groups = staff.session_cover()
        else:                             # no staff section: no theatre groups, every session staffed
            cover_left, cover_used, per_session = self.no_cover
            theatre_groups = np.zeros(0, dtype=np.int64)
        float_tallies = np.array([week.elective_bed_days, week.sessions_lost_no_bed, week.theatre_minutes_booked,
                                  week.theatre_minutes_available], dtype=np.float64)
        scarce_used = np.array(scarce.used if scarce is not None else [0], dtype=np.int64)
        treated, returning = run_theatre_day(
            np.array(in_order, dtype=np.int64), weekday, self.timetables, self.sessions_by_weekday, self.draws,
            first.session_cancellation_rate, self.closed, weekday >= 5, self.independent_sector, self.is_hub,
            self.staff_rows, cover_left, cover_used, per_session, theatre_groups,
            self.eligible_heaps, self.other_heaps, queues.heaps, queues.sizes, p.status, queues.stage_status,
            p.theatre_minutes, p.inpatient, p.los_days, p.cancellations_remaining, p.referred_site,
            p.operation_deferral_days, p.needs_scarce_resource, returns is not None, scarce_used,
            scarce.cap if scarce is not None else -1, self.speed, slot_time(day, slot), day, self.bookable_minutes,
            self.turnaround_minutes, self.session_minutes, self.sites, self.discharges, self.occupancy,
            self.beds_capacity, p.stop_day, p.treated_site, self.counts, float_tallies, self.treated_by_suite,
            self.stops_by_site)
        if scarce is not None:
            scarce.used = scarce_used.tolist()
        if returns is not None:
            for return_day, heap_index, key in returning.tolist():
                returns.file_admitted(return_day, heap_index, key)
        week.add_counts(DAY_COUNTERS, self.counts.tolist())
        (week.elective_bed_days, week.sessions_lost_no_bed, week.theatre_minutes_booked,
         week.theatre_minutes_available) = float_tallies.tolist()
        # Treated patients have left the lists, so their clock stops are counted together.
        state.ledger.count_admitted_stops(treated, day, self.stops_by_site)
        follow_ups = first.follow_ups
        if follow_ups is not None and len(treated):
            order = np.array(in_order, dtype=np.int64)
            follow_ups.after_treatments(treated, day, np.repeat(self.sites[order], self.treated_by_suite[order]))


def days_in_simpy_order(session_days: list[list[int]], slots: list[Slot],
                        start: float = 0.0) -> Iterator[tuple[int, Slot, list[int]]]:
    """(day, slot, suites) for every theatre slot of a day when some suite has sessions, in time order, with the
    suites (indices into `session_days`: each suite's days with sessions, ascending) in the order their own SimPy
    processes would act if each suite had one that slept from each of its days to the next, all started at `start`
    in index order: by the time each would wake (`now + (at - now)` in floating point, as SimPy adds a timeout's
    delay), then by the order they went to sleep (first in index order, then in the order they acted)."""
    due: dict[tuple[int, float], list[int]] = {}
    for k, days in enumerate(session_days):
        for day in days:
            due.setdefault((day, slots[k].day_fraction), []).append(k)
    next_day = [dict(zip(days, days[1:], strict=False)) for days in session_days]
    wakes = {k: (start + (slot_time(days[0], slots[k]) - start), k) for k, days in enumerate(session_days) if days}
    sleeps = len(session_days)
    for (day, _), suites in sorted(due.items()):
        in_order = sorted(suites, key=wakes.__getitem__)
        yield day, slots[in_order[0]], in_order
        for k in in_order:
            upcoming = next_day[k].get(day)
            if upcoming is not None:
                awake = wakes[k][0]
                wakes[k] = (awake + (slot_time(upcoming, slots[k]) - awake), sleeps)
                sleeps += 1


@njit
def run_theatre_day(order: np.ndarray, weekday: int, timetables: np.ndarray, sessions_by_weekday: np.ndarray,
                    draws: np.ndarray, cancellation_rate: float, closed: np.ndarray, weekend: bool,
                    independent_sector: np.ndarray, is_hub: np.ndarray, staff_rows: np.ndarray,
                    cover_left: np.ndarray, cover_used: np.ndarray, per_session: np.ndarray,
                    theatre_groups: np.ndarray, eligible_heaps: np.ndarray, other_heaps: np.ndarray, heaps: Any,
                    sizes: np.ndarray, status: np.ndarray, waiting: int, minutes: np.ndarray, inpatient: np.ndarray,
                    los_days: np.ndarray, cancellations: np.ndarray, referred_site: np.ndarray,
                    deferral_days: np.ndarray, needs_scarce: np.ndarray, can_take_off: bool,
                    scarce_used: np.ndarray, scarce_cap: int, speed: np.ndarray, now: float, day: int,
                    bookable_minutes: np.ndarray, turnaround_minutes: np.ndarray, session_minutes: np.ndarray,
                    sites: np.ndarray, discharges: np.ndarray, occupancy: np.ndarray, beds: np.ndarray,
                    stop_day: np.ndarray, treated_site: np.ndarray, counts: np.ndarray, float_tallies: np.ndarray,
                    treated_by_suite: np.ndarray, stops_by_site: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The day of suites `order` (indices into the per-suite arrays), one after another, as each suite's day was
    run on its own: of its planned sessions, `closed` are lost to Covid, then sessions are taken from its roster row
    while every theatre group has cover (`take_staffed_sessions`; no groups: all staffed), those whose draw is below
    `cancellation_rate` are cancelled, and the rest are filled by `book_sessions`; then the clocks of its treated
    patients stop (`stop_clocks`), before the next suite books.

    Returns the ids treated (suite by suite, `treated_by_suite` of each) and the (day, heap, key) of those taken off
    the list to come back. Sets `counts` (DAY_COUNTERS) and `stops_by_site`; adds to `float_tallies` in order."""
    counts[:] = 0
    stops_by_site[:] = 0
    tallies = np.zeros(N_TALLIES, dtype=np.int64)
    treated = np.empty(256, dtype=np.int64)
    n_treated = 0
    returning = np.empty((8, 3), dtype=np.int64)
    n_returning = 0
    for k in order:
        planned = sessions_by_weekday[k, weekday]
        counts[0] += planned
        if independent_sector[k]:
            counts[1] += planned
        elif weekend:
            counts[2] += planned
        staffed = take_staffed_sessions(cover_left, cover_used, per_session, theatre_groups, staff_rows[k],
                                        planned - closed[k])
        counts[3] += closed[k]
        counts[4] += planned - closed[k] - staffed
        running = np.empty(max(staffed, 0), dtype=np.int64)
        n_running = 0
        for i in range(staffed):
            if not draws[k, i] < cancellation_rate:
                running[n_running] = timetables[k, weekday, i]
                n_running += 1
        counts[5] += staffed - n_running
        treated_by_suite[k] = 0
        if n_running == 0:
            continue
        tallies[:] = 0
        suite_treated, suite_returning = book_sessions(
            running[:n_running], eligible_heaps[k], other_heaps[k], heaps, sizes, status, waiting, minutes,
            inpatient, los_days, cancellations, referred_site, deferral_days, needs_scarce, can_take_off,
            scarce_used, scarce_cap, speed[k], now, day, bookable_minutes[k], turnaround_minutes[k],
            session_minutes[k], sites[k], discharges[k], occupancy[k], beds[k], tallies, float_tallies)
        stop_clocks(suite_treated, status, stop_day, treated_site, waiting, STOPPED_ADMITTED, day, sites[k])
        for t in range(N_TALLIES):
            counts[_FIRST_TALLY + t] += tallies[t]
        if independent_sector[k]:
            counts[_FIRST_TALLY + N_TALLIES] += tallies[0]
            counts[_FIRST_TALLY + N_TALLIES + 1] += tallies[2]
        if is_hub[k]:
            counts[_FIRST_TALLY + N_TALLIES + 2] += tallies[0]
            counts[_FIRST_TALLY + N_TALLIES + 3] += tallies[2]
        n_suite = len(suite_treated)
        treated_by_suite[k] = n_suite
        stops_by_site[sites[k]] += n_suite
        while n_treated + n_suite > len(treated):
            treated = grown(treated)
        treated[n_treated:n_treated + n_suite] = suite_treated
        n_treated += n_suite
        for r in range(len(suite_returning)):
            if n_returning == len(returning):
                returning = grown_rows(returning)
            returning[n_returning] = suite_returning[r]
            n_returning += 1
    return treated[:n_treated].copy(), returning[:n_returning].copy()


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
