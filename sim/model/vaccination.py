"""Covid vaccination centres competing with elective care for staff.

Doses are batched by centre and day (millions of doses, never one process each). Each day, at its slot (sim.model.day):
1. Demand: people in each cohort (borough x age band) who are eligible and willing book at a daily rate;
   second doses fall due `min_dose_interval_days` after the first, for the share who take both.
2. Capacity: each open centre's stations, staffed from its site's vaccinators (centres run by PCNs and
   pharmacies bring their own staff); during a surge, extra stations open and, if vaccinators run short,
   staff are redeployed from elective groups in the stated order, up to the stated share of each — so the
   surge visibly costs theatre sessions and clinic slots. Doses a day never exceed
   stations x open minutes / minutes per dose (nor observation chairs x open minutes / observation minutes).
3. Allocation: local centres serve their borough, second doses first; ICS-wide centres (mass sites and
   events, borough `all`) then serve what is left in proportion to bookings. A share of appointments are
   not attended; those people stay in the pool and book again.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import simpy

from sim.core.compiled import njit
from sim.core.numpy_sums import numpy_sum
from sim.core.rng import Streams
from sim.model.activity import WeeklyActivity
from sim.model.day import VACCINATION, ServiceProcess, wait_until
from sim.model.staff import StaffRoster
from sim.scenario.schema import WEEKDAYS, Scenario, Vaccination, VaccinationCentre, VaccinationSurge

CENTRE_KINDS = ("mass_vaccination_site", "hospital_hub", "pcn_site", "pharmacy", "mass_event")


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability an arrival waits in an M/M/c queue, C(c, a) with a = lambda / mu (formula 3).

    By the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), then C = c B / (c - a (1 - B)): every step stays
    between 0 and 1, where the textbook sum of a^k / k! overflows for a few hundred stations."""
    c, a = servers, offered_load
    if a >= c:
        return 1.0
    blocking = 1.0
    for k in range(1, c + 1):
        blocking = a * blocking / (k + a * blocking)
    return c * blocking / (c - a * (1 - blocking))


def erlang_c_mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean wait in queue Wq = C(c, a) / (c mu - lambda); infinite when the queue is unstable."""
    if arrival_rate >= servers * service_rate:
        return math.inf
    return erlang_c(servers, arrival_rate / service_rate) / (servers * service_rate - arrival_rate)


def centre_day_mean_wait_minutes(attended_doses: int, capacity_doses: int, stations: int, open_minutes: float,
                                 minutes_per_dose: float) -> float:
    """Erlang C mean wait at one centre on one day, over the people who came.

    Arrivals are the attendees only: people who do not attend never join the queue, so counting them (doses /
    (1 - DNA rate)) would overstate the load. `stations` are those staffed that day. A day whose
    attendees reach that capacity (its whole doses) is saturated: it has no steady-state wait, and the result is
    infinite.
    """
    if attended_doses >= capacity_doses:
        return math.inf
    return erlang_c_mean_wait(stations, attended_doses / open_minutes, 1 / minutes_per_dose)


def simulate_centre_queue(arrival_rate: float, mean_service: float, stations: int, duration: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Waits of everyone arriving in [0, duration) at a first-come-first-served centre with Poisson arrivals
    and exponential service (used to check the Erlang C figures the model reports)."""
    n = rng.poisson(arrival_rate * duration)
    arrivals = np.sort(rng.uniform(0, duration, n))
    service = rng.exponential(mean_service, n)
    free_at = [0.0] * stations
    import heapq
    heapq.heapify(free_at)
    waits = np.empty(n)
    for i, (t, s) in enumerate(zip(arrivals.tolist(), service.tolist(), strict=True)):
        start = max(t, heapq.heappop(free_at))
        waits[i] = start - t
        heapq.heappush(free_at, start + s)
    return waits


@njit
def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split a whole number in proportion to (float) weights by the largest-remainder rule (sums exactly; ties
    to the earlier weight)."""
    n = len(weights)
    out = np.zeros(n, dtype=np.int64)
    weight_sum = numpy_sum(weights)
    if total <= 0 or weight_sum <= 0:
        return out
    scale = total / weight_sum
    remainder_first = np.empty(n)                   # minus each remainder: a stable sort puts the largest first
    for i in range(n):
        raw = weights[i] * scale
        out[i] = math.floor(raw)
        remainder_first[i] = -(raw - out[i])
    short = total - out.sum()
    if short != 0:
        for i in np.argsort(remainder_first, kind="mergesort")[:short]:
            out[i] += 1
    return out


@njit
def _allocate_grouped(capacity: np.ndarray, queued: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Serve many disjoint groups at once: group g serves up to capacity[g] of its items' queues, in
    proportion to queue size, with the largest-remainder rule inside each group (exact integers; ties to the
    earlier item)."""
    n_groups, n = len(capacity), len(queued)
    total = np.zeros(n_groups, dtype=np.int64)
    for i in range(n):
        total[group[i]] += queued[i]
    cap = np.minimum(capacity, total)
    raw = np.zeros(n)
    served = np.empty(n, dtype=np.int64)
    short = cap.copy()
    for i in range(n):
        g = group[i]
        if total[g] > 0:
            raw[i] = queued[i] * (cap[g] / max(total[g], 1))
        served[i] = math.floor(raw[i] + 1e-9)
        short[g] -= served[i]
    for g in range(n_groups):
        if short[g] <= 0:
            continue
        members = np.flatnonzero(group == g)       # in item order: the sort below keeps it among equal remainders
        remainder_first = np.empty(len(members))
        for m in range(len(members)):
            remainder_first[m] = -(raw[members[m]] - served[members[m]])
        for m in np.argsort(remainder_first, kind="mergesort")[:short[g]]:
            served[members[m]] += 1
    return np.minimum(served, queued)


@njit
def _serve_bookings(caps: np.ndarray, is_local: np.ndarray, centre_borough: np.ndarray, cohort_borough: np.ndarray,
                    queue_first: np.ndarray, queue_second: np.ndarray,
                    n_boroughs: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """A day's doses served by borough: each borough's local centres first, then the ICS-wide centres' capacity
    shared in proportion to the bookings local centres cannot meet; second doses before first doses.

    Takes the served people off the booked queues (in place). Returns (local capacity by borough, shared capacity
    by borough, ICS-wide capacity in all, second doses and first doses served by cohort)."""
    local_cap = np.zeros(n_boroughs, dtype=np.int64)
    shared_total = 0
    for k in range(len(caps)):
        if is_local[k]:
            local_cap[centre_borough[k]] += caps[k]
        else:
            shared_total += caps[k]
    booked = np.zeros(n_boroughs, dtype=np.int64)
    for c in range(len(cohort_borough)):
        booked[cohort_borough[c]] += queue_first[c] + queue_second[c]
    unmet = np.zeros(n_boroughs)
    for b in range(n_boroughs):
        unmet[b] = max(booked[b] - local_cap[b], 0)
    shared_cap = np.minimum(_apportion(shared_total, unmet), np.maximum(booked - local_cap, 0))
    capacity = local_cap + shared_cap
    served2 = _allocate_grouped(capacity, queue_second, cohort_borough)
    left = capacity.copy()
    for c in range(len(cohort_borough)):
        left[cohort_borough[c]] -= served2[c]
    served1 = _allocate_grouped(left, queue_first, cohort_borough)
    queue_second -= served2
    queue_first -= served1
    return local_cap, shared_cap, shared_total, served2, served1


@njit
def _doses_by_centre(doses: int, attended: np.ndarray, cohort_borough: np.ndarray, caps: np.ndarray,
                     is_local: np.ndarray, centre_borough: np.ndarray, local_cap: np.ndarray, shared_cap: np.ndarray,
                     shared_total: int) -> np.ndarray:
    """The day's doses by centre: a borough's doses split over its local centres and its share of the ICS-wide
    ones in proportion to the capacity each brought, then apportioned exactly."""
    n_boroughs = len(local_cap)
    done = np.zeros(n_boroughs)
    for c in range(len(cohort_borough)):
        done[cohort_borough[c]] += attended[c]
    borough_cap = np.maximum(local_cap + shared_cap, 1)
    shared_by_borough = np.empty(n_boroughs)
    for b in range(n_boroughs):
        shared_by_borough[b] = done[b] * shared_cap[b] / borough_cap[b]
    shared_doses = numpy_sum(shared_by_borough)
    all_cap = max(shared_total, 1)
    booked_here = np.empty(len(caps))
    for k in range(len(caps)):
        b = centre_borough[k]
        if is_local[k]:
            booked_here[k] = max(caps[k] / borough_cap[b] * done[b], 0.0)
        else:
            booked_here[k] = max(shared_doses * caps[k] / all_cap, 0.0)
    return _apportion(doses, booked_here)


@njit
def _book_day(rng: np.random.Generator, day: int, rate: float, eligible_day: np.ndarray, willing_first: np.ndarray,
              first_done: np.ndarray, queue_first: np.ndarray, second_due: np.ndarray, due_second: np.ndarray,
              queue_second: np.ndarray) -> None:
    """Today's bookings (first doses, then second doses), one scalar draw a cohort in cohort order: the numbers
    numpy's array draws gave, from the same generator state."""
    for c in range(len(queue_first)):
        not_booked = max(willing_first[c] - first_done[c] - queue_first[c], 0) if eligible_day[c] <= day else 0
        queue_first[c] += rng.binomial(not_booked, rate)
    for c in range(len(due_second)):
        due_second[c] += second_due[c, day]
        booked = rng.binomial(due_second[c], rate)
        due_second[c] -= booked
        queue_second[c] += booked


@njit
def _binomial_each(rng: np.random.Generator, trials: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """`rng.binomial(trials, chance)` (chance one a trial count) drawn element by element, as numpy draws it."""
    out = np.empty(len(trials), dtype=np.int64)
    for i in range(len(trials)):
        out[i] = rng.binomial(trials[i], chance[i])
    return out


@njit
def _programme_days(rng: np.random.Generator, rate_by_day: np.ndarray, attend_rate: float, interval_days: int,
                    eligible_day: np.ndarray, willing_first: np.ndarray, second_dose_share: np.ndarray,
                    cohort_borough: np.ndarray, n_boroughs: int, first_done: np.ndarray, second_done: np.ndarray,
                    queue_first: np.ndarray, queue_second: np.ndarray, due_second: np.ndarray, second_due: np.ndarray,
                    open_minutes: np.ndarray, minutes_per_dose: np.ndarray, observation_ceiling: np.ndarray,
                    is_local: np.ndarray, centre_borough: np.ndarray, centre_kind: np.ndarray,
                    by_cohort_first: np.ndarray, by_cohort_second: np.ndarray, stations_open: np.ndarray,
                    station_hours: np.ndarray, counts: np.ndarray, caps: np.ndarray,
                    by_centre: np.ndarray) -> Iterator[int]:
    """The programme's days, one a `next()`: bookings, each centre's dose ceiling, allocation, attendance and the
    second doses that fall due. A generator, so the numpy Generator and the arrays are handed to compiled code once
    a run (handing a Generator over costs tens of microseconds a call), not once a day.

    Before each day the caller puts the stations it could staff in `stations_open` and the week's station hours so
    far in `station_hours[0]`. The day updates the cohort state and the week's doses by cohort in place, adds its
    station hours to `station_hours[0]` one centre at a time, and leaves in `counts` the capacity, first doses,
    second doses, did-not-attends and doses by centre kind, in `caps` each centre's dose ceiling and in `by_centre`
    its doses."""
    for day in range(len(rate_by_day)):
        _book_day(rng, day, rate_by_day[day], eligible_day, willing_first, first_done, queue_first, second_due,
                  due_second, queue_second)
        counts[:] = 0
        by_centre[:] = 0
        hours = station_hours[0]
        for k in range(len(caps)):
            caps[k] = int(min(stations_open[k] * open_minutes[k] / minutes_per_dose[k], observation_ceiling[k]))
            counts[0] += caps[k]
            hours += stations_open[k] * open_minutes[k] / 60
        station_hours[0] = hours
        if queue_first.any() or queue_second.any():          # else nobody is booked: nothing to allocate
            local_cap, shared_cap, shared_total, served2, served1 = _serve_bookings(
                caps, is_local, centre_borough, cohort_borough, queue_first, queue_second, n_boroughs)
            attended2 = _binomial_each(rng, served2, np.full(len(served2), attend_rate))
            attended1 = _binomial_each(rng, served1, np.full(len(served1), attend_rate))
            # did-not-attends leave the booked queue and stay in the pool (they book again)
            due_second += served2 - attended2
            first_done += attended1
            second_done += attended2
            second_due[:, day + interval_days] += _binomial_each(rng, attended1, second_dose_share)
            counts[1], counts[2] = attended1.sum(), attended2.sum()
            counts[3] = (served1 - attended1).sum() + (served2 - attended2).sum()
            by_cohort_first += attended1
            by_cohort_second += attended2
            by_centre[:] = _doses_by_centre(counts[1] + counts[2], attended1 + attended2, cohort_borough, caps,
                                            is_local, centre_borough, local_cap, shared_cap, shared_total)
            for k in range(len(caps)):
                counts[4 + centre_kind[k]] += by_centre[k]
        yield day


class VaccinationProgramme:
    """Every vaccination centre and cohort; staffed from the sites' rosters, counted into the week.

    Built only for a scenario with a vaccination section, which it is given as `v`.
    """

    def __init__(self, sc: Scenario, v: Vaccination, streams: Streams, staff: StaffRoster,
                 week: WeeklyActivity) -> None:
        self.sc = sc
        self.week = week
        self.v = v
        self.streams = streams
        self.staff = staff
        boroughs = sc.borough_names
        self.centres = list(v.centres.items())
        self.centre_kind = [CENTRE_KINDS.index(c.kind) for _, c in self.centres]
        cohorts = v.cohorts
        self.cohort_borough = np.array([boroughs.index(c.borough) for c in cohorts], dtype=np.int64)
        pop = np.array([c.population for c in cohorts], dtype=np.int64)
        self.population = pop
        self.willing_first = np.rint(pop * np.array([c.uptake_first_dose for c in cohorts])).astype(np.int64)
        willing_second = np.rint(pop * np.array([min(c.uptake_second_dose, c.uptake_first_dose) for c in cohorts]))
        self.second_given_first = np.where(self.willing_first > 0,
                                           willing_second / np.maximum(self.willing_first, 1), 0.0)
        self.eligible_day = np.array([(c.eligible_from - sc.start_date).days for c in cohorts])
        self.first_done = np.array([c.first_doses_before_start for c in cohorts], dtype=np.int64)
        self.second_done = np.array([c.second_doses_before_start for c in cohorts], dtype=np.int64)
        n_days = sc.horizon_days
        self.second_due = np.zeros((len(cohorts), n_days + v.min_dose_interval_days + 1), dtype=np.int64)
        # first-dosed people still to have a second dose: spread over the first interval of the run
        waiting_second = np.maximum(
            np.rint(self.first_done * self.second_given_first).astype(np.int64) - self.second_done, 0)
        spread = max(v.min_dose_interval_days, 1)
        for c, n in enumerate(waiting_second.tolist()):
            self.second_due[c, :spread] += n // spread
            self.second_due[c, : n % spread] += 1
        self.queue_first = np.zeros(len(cohorts), dtype=np.int64)    # booked, not yet vaccinated
        self.queue_second = np.zeros(len(cohorts), dtype=np.int64)
        self.due_second = np.zeros(len(cohorts), dtype=np.int64)     # due, not yet booked
        self.sites = sc.site_names
        self.is_local = np.array([c.borough != "all" for _, c in self.centres])
        self.centre_borough_local = np.array([boroughs.index(c.borough) if c.borough != "all" else 0
                                              for _, c in self.centres], dtype=np.int64)
        self.n_boroughs = len(sc.boroughs)
        self.second_dose_share = np.clip(self.second_given_first, 0, 1)
        self._plan_centre_days()

    def _plan_centre_days(self) -> None:
        """What each centre could do on each day before staffing, worked out once rather than every day.

        `stations_planned` (day x centre) holds the stations a centre opens (none when closed; its surge stations
        added while the surge runs); the per-centre constants turn stations into the day's dose ceiling."""
        centres = [c for _, c in self.centres]
        n_days = self.sc.horizon_days
        self.surge_by_day = [self.surge_on(day) for day in range(n_days)]
        self.open_by_day = np.zeros((n_days, len(centres)), dtype=bool)
        first_weekday = self.sc.start_date.weekday()
        weekday_index = (first_weekday + np.arange(n_days)) % 7
        start_ordinal = self.sc.start_date.toordinal()
        for k, centre in enumerate(centres):
            if centre.kind == "mass_event":
                for date in centre.event_dates:
                    day = date.toordinal() - start_ordinal
                    if 0 <= day < n_days:
                        self.open_by_day[day, k] = True
            else:
                open_weekday = np.array([WEEKDAYS[w] in centre.open_weekdays for w in range(7)])
                self.open_by_day[:, k] = open_weekday[weekday_index]
        base = np.array([c.stations for c in centres], dtype=np.int64)
        with_surge = np.array([c.stations + c.surge_stations for c in centres], dtype=np.int64)
        surging = np.array([s is not None for s in self.surge_by_day])
        self.stations_planned = np.where(self.open_by_day, np.where(surging[:, None], with_surge, base), 0)
        self.open_minutes = np.array([c.open_minutes_per_day for c in centres], dtype=float)
        self.minutes_per_dose = np.array([c.minutes_per_dose for c in centres], dtype=float)
        # the observation chairs' ceiling, where they bind (infinite, so never the smaller, where they do not)
        self.observation_ceiling = np.array(
            [c.observation_bays * c.open_minutes_per_day / c.observation_minutes
             if c.observation_bays is not None and c.observation_minutes > 0 else math.inf for c in centres])
        # centres staffed from a site's roster: (centre, roster row, vaccinators a station), in centre order
        self.staffed_centres = [(k, self.sites.index(c.staffed_from), c.vaccinators_per_station)
                                for k, c in enumerate(centres)
                                if c.staffed_from != "own" and c.vaccinators_per_station > 0]

    def surge_on(self, day: int) -> VaccinationSurge | None:
        """The surge campaign if it runs on `day`, else None."""
        s = self.v.surge
        if s is None:
            return None
        start = (s.start - self.sc.start_date).days
        return s if start <= day < start + 7 * s.weeks else None

    def _count_queue_wait(self, centre: VaccinationCentre, capacity_doses: int, stations: int,
                          attended_doses: int) -> None:
        """Add one centre-day to the week's Erlang C wait, or to its saturated centre-days."""
        wait_minutes = centre_day_mean_wait_minutes(attended_doses, capacity_doses, stations,
                                                    centre.open_minutes_per_day, centre.minutes_per_dose)
        if math.isfinite(wait_minutes):
            self.week.vaccination_wait_minutes_total += wait_minutes * attended_doses
            self.week.vaccination_wait_doses += attended_doses
        else:
            self.week.vaccination_saturated_centre_days += 1

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each day: each open centre's staff, then the compiled day (bookings, capacity, doses by cohort and
        centre), whose counts go into the week."""
        v = self.v
        week = self.week
        n_centres, n_kinds = len(self.centres), len(CENTRE_KINDS)
        # a surge campaign can lift the booking rate while it runs
        rate_by_day = np.array([s.booking_rate_per_day if s and s.booking_rate_per_day else v.booking_rate_per_day
                                for s in self.surge_by_day])
        stations_open = np.zeros(n_centres, dtype=np.int64)
        station_hours = np.zeros(1)
        counts = np.zeros(4 + n_kinds, dtype=np.int64)
        caps = np.zeros(n_centres, dtype=np.int64)
        by_centre = np.zeros(n_centres, dtype=np.int64)
        days = _programme_days(
            self.streams["vaccination"], rate_by_day, 1 - v.did_not_attend_rate, v.min_dose_interval_days,
            self.eligible_day, self.willing_first, self.second_dose_share, self.cohort_borough, self.n_boroughs,
            self.first_done, self.second_done, self.queue_first, self.queue_second, self.due_second, self.second_due,
            self.open_minutes, self.minutes_per_dose, self.observation_ceiling, self.is_local,
            self.centre_borough_local, np.array(self.centre_kind, dtype=np.int64), week.vaccinations_by_cohort_first,
            week.vaccinations_by_cohort_second, stations_open, station_hours, counts, caps, by_centre)
        for day in range(self.sc.horizon_days):
            yield from wait_until(env, day, VACCINATION)
            surge = self.surge_by_day[day]
            # each open centre's planned stations, as far as its site can staff them
            stations_open[:] = self.stations_planned[day]
            open_today = self.open_by_day[day]
            for k, site, per_station in self.staffed_centres:
                if not open_today[k]:
                    continue
                stations = int(stations_open[k])
                found, redeployed = self.staff.take_vaccinators(site, stations * per_station,
                                                                surge.redeploy_from if surge else [],
                                                                surge.max_share_redeployed if surge else 0.0)
                week.staff_redeployed_to_vaccination += redeployed
                stations_open[k] = min(stations, int(found // per_station))
            station_hours[0] = week.vaccination_station_hours
            next(days)
            week.vaccination_station_hours = float(station_hours[0])
            capacity, first_doses, second_doses, dna, *by_kind = counts.tolist()
            week.vaccination_capacity += capacity
            if surge:
                week.vaccination_target += surge.target_doses_per_week / 7
            week.vaccinations += first_doses + second_doses
            week.vaccinations_first_dose += first_doses
            week.vaccinations_second_dose += second_doses
            week.vaccination_dna += dna
            for kind in range(n_kinds):
                if by_kind[kind]:
                    week.vaccinations_by_kind[kind] += by_kind[kind]
            if v.report_queue_waits:
                for i in np.flatnonzero(by_centre).tolist():
                    self._count_queue_wait(self.centres[i][1], int(caps[i]), int(stations_open[i]),
                                           int(by_centre[i]))
