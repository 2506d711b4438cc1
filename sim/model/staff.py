"""Staff availability: who is present each day by site and staff group, and what that lets run.

Each day, at its slot (sim.model.day), each site's establishment of each group is thinned by absence: baseline
sickness, annual leave by month, Covid isolation that follows the ICS's Covid inpatients, and fatigue (extra sickness
while the site's theatre staff have been working above a threshold over recent weeks). Vaccination centres
then take vaccinators and, during a surge, redeploy staff from elective groups. A theatre session runs only
when its whole team is present: `take_sessions` hands out sessions while every group still has cover.
Clinic slots scale with outpatient clinicians present against what the rota allows for.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import numpy as np
import simpy

from sim.core.compiled import njit
from sim.core.numpy_sums import numpy_sum
from sim.core.rng import Streams
from sim.model.activity import WeeklyActivity
from sim.model.day import STAFF, ServiceProcess, wait_until
from sim.scenario.schema import MONTHS, Scenario


class StaffRoster:
    """Who is present each day by roster row (site, or hub with its own teams) and staff group."""

    def __init__(self, sc: Scenario, streams: Streams, covid_inpatients: np.ndarray, week: WeeklyActivity) -> None:
        self.sc = sc
        self.streams = streams
        self.week = week
        self.enabled = sc.staff is not None
        self.covid_inpatients = covid_inpatients
        st = sc.staff
        self.groups = list(st.groups) if st else []
        # One roster row per site, then one per surgical hub with ring-fenced teams of its own.
        self.rows = list(sc.site_names)
        counts = [st.establishment.get(site, {}) if st else {} for site in sc.site_names]
        if sc.surgical_hubs:
            for name, hub in sc.surgical_hubs.hubs.items():
                if hub.staff_establishment is not None:
                    self.rows.append(name)
                    counts.append(hub.staff_establishment)
        n_sites, n_groups = len(self.rows), len(self.groups)
        self.establishment = np.zeros((n_sites, n_groups), dtype=np.int64)
        if st:
            for i, row in enumerate(counts):
                for j, g in enumerate(self.groups):
                    self.establishment[i, j] = row.get(g, 0)
            self.per_session = np.array([st.groups[g].per_theatre_session for g in self.groups])
            self.sessions_per_person = np.array([st.groups[g].theatre_sessions_per_day for g in self.groups])
            self.theatre_groups = np.flatnonzero(self.per_session > 0)
            self.clinic_groups = [j for j, g in enumerate(self.groups) if st.groups[g].runs_clinics]
            self.vaccinator_groups = [j for j, g in enumerate(self.groups) if st.groups[g].vaccinates]
            self.leave = np.array([st.annual_leave_rate_by_month[m] for m in MONTHS])
            # outpatient clinicians a site plans on, for its share of clinic slots that can run each day
            self._planned_clinic_staff = np.array([self.establishment[site, self.clinic_groups].sum()
                                                   * (1 - st.rostered_absence_rate) for site in range(n_sites)],
                                                  dtype=np.float64)
            self._clinic_group_array = np.array(self.clinic_groups, dtype=np.int64)   # for the compiled loop
        start = sc.start_date.toordinal()
        self.month_of_day = np.array([dt.date.fromordinal(start + d).month - 1 for d in range(sc.horizon_days)])
        self.available = self.establishment.copy()               # present today, before redeployment
        self.redeployed = np.zeros_like(self.establishment)       # sent to vaccination today
        self.surge_redeployed = np.zeros_like(self.establishment)  # of whom taken under the surge rule
        # today's theatre sessions each row and group can still cover (people present x sessions a person)
        self.session_cover_left = np.zeros((n_sites, n_groups), dtype=np.result_type(
            self.establishment, getattr(self, "sessions_per_person", np.zeros(0))))
        self.fatigue_extra = np.zeros(n_sites)
        window = st.fatigue.window_weeks * 7 if st and st.fatigue else 1
        # each row's theatre workload over the fatigue window, oldest day first (one row per roster row)
        self.workload_history = np.zeros((n_sites, window))
        self._cover_used = np.zeros((n_sites, n_groups))

    # -- daily roster ------------------------------------------------------------------------------
    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each day: record yesterday's theatre workload (fatigue), draw who is present, and hand out the day's
        theatre cover afresh. The days are a compiled generator (`_roster_days`) that updates the roster's arrays in
        place; the services read them each day."""
        st = self.sc.staff
        if st is None:
            return
        # each day's absence before fatigue: sickness, the month's leave and Covid isolation, as one site at a time
        # added them
        covid_inpatients = self.covid_inpatients[:len(self.month_of_day)]
        base_rate_by_day = ((st.baseline_sickness_rate + self.leave[self.month_of_day])
                            + st.covid_isolation_rate_per_1000_inpatients * covid_inpatients / 1000.0)
        fatigue = st.fatigue if st.fatigue and len(self.theatre_groups) else None
        days = _roster_days(
            tuple(self.streams.for_unit("staff_absence", row) for row in self.rows), base_rate_by_day,
            self.establishment, self.sessions_per_person, self.theatre_groups, fatigue is not None,
            fatigue.workload_threshold if fatigue else 0.0, fatigue.extra_sickness_rate if fatigue else 0.0,
            self.available, self.redeployed, self.surge_redeployed, self.session_cover_left, self._cover_used,
            self.fatigue_extra, self.workload_history, self.week.staff_present)
        for day in range(self.sc.horizon_days):
            yield from wait_until(env, day, STAFF)
            next(days)

    # -- used by the services ----------------------------------------------------------------------
    def row_for(self, name: str, host_site: str) -> int:
        """Roster row of a theatre suite: its own (a hub with ring-fenced teams) or its host site's."""
        return self.rows.index(name) if name in self.rows else self.rows.index(host_site)

    def take_sessions(self, site: int, wanted: int) -> int:
        """Sessions (of `wanted`) whose full team is present; their cover is used up."""
        if not self.enabled:
            return wanted
        return int(take_staffed_sessions(*self.session_cover(), site, wanted))

    def session_cover(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Today's theatre cover as `take_staffed_sessions` reads it (for the compiled theatre day, which takes its
        suites' sessions there in suite order): cover by row and group, cover used so far today (updated in place),
        cover one session needs by group, and the groups a session needs. Read afresh each day (the roster replaces
        the first array each morning); only with a staff section."""
        return self.session_cover_left, self._cover_used, self.per_session, self.theatre_groups

    def clinic_capacity_factors(self) -> np.ndarray:
        """Share of planned clinic slots that the outpatient clinicians present can run today, by roster row (the
        sites first, then any hub with its own team), all at once: whole numbers of people summed, then one
        division a row, as one site at a time did."""
        n_sites = len(self.available)
        if self.sc.staff is None or not self.clinic_groups:
            return np.ones(n_sites)
        return _clinic_capacity_factors(self.available, self.redeployed, self._clinic_group_array,
                                        self._planned_clinic_staff)

    def take_vaccinators(self, site: int, wanted: float, redeploy_from: list[str],
                         max_share: float) -> tuple[float, int]:
        """Staff a vaccination centre from a site: vaccinators first, then (surge only) redeployed groups in
        order, each up to `max_share` of those present. Returns (people found, of whom redeployed)."""
        found, redeployed = 0.0, 0
        for j in self.vaccinator_groups:
            free = self.available[site, j] - self.redeployed[site, j]
            take = max(0, min(free, math.ceil(wanted - found)))
            self._take_from_elective(site, j, take)
            found += take
        for name in redeploy_from:
            if found >= wanted:
                break
            j = self.groups.index(name)
            # the cap is per site and day, across all the centres the site staffs
            cap_left = math.floor(self.available[site, j] * max_share) - self.surge_redeployed[site, j]
            free = min(cap_left, self.available[site, j] - self.redeployed[site, j])
            take = max(0, min(free, math.ceil(wanted - found)))
            self.surge_redeployed[site, j] += take
            self._take_from_elective(site, j, take)
            found += take
            redeployed += take
        return found, redeployed

    def _take_from_elective(self, site: int, group: int, people: int) -> None:
        """People sent to vaccination today no longer cover theatre sessions or clinics."""
        self.redeployed[site, group] += people
        self.session_cover_left[site, group] = max(
            0.0, self.session_cover_left[site, group] - people * self.sessions_per_person[group])


@njit
def take_staffed_sessions(cover_left: np.ndarray, cover_used: np.ndarray, per_session: np.ndarray,
                          theatre_groups: np.ndarray, row: int, wanted: int) -> int:
    """Sessions (of `wanted`) of roster row `row` whose full team is present, by what each theatre group has left of
    today's cover; their cover is added to `cover_used`. Compiled, so the theatre day (sim.model.theatres) takes its
    suites' sessions in the same loop that books them, by the same arithmetic as `StaffRoster.take_sessions`."""
    if wanted <= 0 or len(theatre_groups) == 0:
        return wanted
    fewest = np.inf                       # the sessions the scarcest group can still cover
    for j in theatre_groups:
        sessions = (cover_left[row, j] - cover_used[row, j]) / per_session[j]
        if sessions < fewest:
            fewest = sessions
    staffed = max(min(wanted, math.floor(fewest + 1e-9)), 0)
    for j in theatre_groups:
        cover_used[row, j] += staffed * per_session[j]
    return staffed


@njit
def _clinic_capacity_factors(available: np.ndarray, redeployed: np.ndarray, clinic_groups: np.ndarray,
                             planned: np.ndarray) -> np.ndarray:
    """`StaffRoster.clinic_capacity_factors` compiled: by row, the clinic groups' people present and not redeployed
    (whole numbers, summed), over the clinicians the row plans on, at most 1; 0 where it plans on nobody."""
    n_rows = available.shape[0]
    factors = np.empty(n_rows, dtype=np.float64)
    for row in range(n_rows):
        present = 0
        for j in clinic_groups:
            present += available[row, j] - redeployed[row, j]
        factors[row] = min(1.0, present / planned[row]) if planned[row] > 0 else 0.0
    return factors


@njit
def _roster_days(absence_streams: tuple, base_rate_by_day: np.ndarray, establishment: np.ndarray,
                 sessions_per_person: np.ndarray, theatre_groups: np.ndarray, fatigue_on: bool,
                 workload_threshold: float, extra_sickness_rate: float, available: np.ndarray,
                 redeployed: np.ndarray, surge_redeployed: np.ndarray, session_cover_left: np.ndarray,
                 cover_used: np.ndarray, fatigue_extra: np.ndarray, workload_history: np.ndarray,
                 staff_present: np.ndarray) -> Iterator[int]:
    """The roster's days, one a `next()`, updating the roster's arrays in place. A generator, so the rows' random
    streams (numpy Generators: numba runs numpy's binomial on them, the same draws) are handed to compiled code
    once a run rather than once a day.

    Each day: first yesterday's theatre workload and fatigue (`_record_workload`), then each row's people present,
    group by group from the row's own stream, with the row's absence (the day's base rate plus its fatigue, within
    0..1); then nobody redeployed yet, each group's session cover afresh and the week's people present."""
    n_rows, n_groups = establishment.shape
    workload_days = 0
    for day in range(len(base_rate_by_day)):
        if day > 0 and fatigue_on:
            workload_days = _record_workload(available, sessions_per_person, theatre_groups, cover_used,
                                             workload_history, workload_days, workload_threshold,
                                             extra_sickness_rate, fatigue_extra)
        for row in range(n_rows):
            absence = min(max(base_rate_by_day[day] + fatigue_extra[row], 0.0), 1.0)
            present_share = 1.0 - absence
            stream = absence_streams[row]
            for j in range(n_groups):
                available[row, j] = stream.binomial(establishment[row, j], present_share)
        for row in range(n_rows):
            for j in range(n_groups):
                redeployed[row, j] = 0
                surge_redeployed[row, j] = 0
                session_cover_left[row, j] = available[row, j] * sessions_per_person[j]
                cover_used[row, j] = 0.0
                staff_present[j] += available[row, j]
        yield day


@njit
def _record_workload(available: np.ndarray, sessions_per_person: np.ndarray, theatre_groups: np.ndarray,
                     cover_used: np.ndarray, workload_history: np.ndarray, workload_days: int,
                     workload_threshold: float, extra_sickness_rate: float, fatigue_extra: np.ndarray) -> int:
    """Yesterday's theatre workload of each row (its busiest theatre group's share of cover used) joins the fatigue
    window; once a whole window has passed, a row whose mean workload over it reaches the threshold gets the extra
    sickness rate. Returns the days recorded so far (up to the window)."""
    n_rows, window = workload_history.shape
    for row in range(n_rows):
        load = 0.0
        for k in range(len(theatre_groups)):
            j = theatre_groups[k]
            cover = available[row, j] * sessions_per_person[j]
            share = cover_used[row, j] / cover if cover > 0 else 0.0
            if k == 0 or share > load:
                load = share
        for d in range(window - 1):                      # the window moves on a day
            workload_history[row, d] = workload_history[row, d + 1]
        workload_history[row, window - 1] = load
    workload_days = min(workload_days + 1, window)
    for row in range(n_rows):
        if workload_days < window:
            fatigue_extra[row] = 0.0                      # no sustained workload before a whole window has passed
        else:
            sustained = numpy_sum(workload_history[row]) / window >= workload_threshold
            fatigue_extra[row] = extra_sickness_rate if sustained else 0.0
    return workload_days
