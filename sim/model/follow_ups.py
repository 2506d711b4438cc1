"""Outpatient follow-ups and patient-initiated follow-up (PIFU): clinic work that is not an RTT pathway.

In real clinics about two slots in three are follow-ups (London 2019/20: 2.05 subsequent attendances per first,
NHS Digital, Hospital Outpatient Activity). The outpatient levers of the June 2021 update (virtual appointments,
PIFU, advice and guidance) work by freeing that capacity for new patients, so the clinics book follow-ups beside
first appointments (sim.scenario.schema.OutpatientFollowUps says how they share the slots).

Follow-ups are counts, not patients: nothing about them is read again except when they fall due and at which
site and specialty. Each clock stop at clinic and each operation files its follow-ups in a calendar
(day x site x specialty); on a clinic day those due join the clinic's follow-up backlog, which the day's
follow-up slots (or the common pool) work through. A follow-up not attended stays in the backlog.

At the start, the follow-ups booked before it fall due as if the clinics had run steadily at their follow-up
slots (tapering as those patients' remaining follow-ups are seen); `overdue_at_start_weeks` adds a backlog. All
draws come from the stream `follow_ups`, so no other stream moves when follow-ups are switched on.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from sim.core.compiled import grown, njit
from sim.core.rng import Streams
from sim.model.activity import WeeklyActivity
from sim.model.patients import PatientTable
from sim.scenario.schema import OutpatientFollowUps, Scenario


class FollowUpClinics:
    """The follow-ups of every site and specialty: filed when clocks stop, booked on clinic days."""

    def __init__(self, scenario: Scenario, streams: Streams, week: WeeklyActivity, patients: PatientTable,
                 first_slots_per_clinic_day: list[list[float]], clinic_days_per_week: int,
                 delivered_share_at_start: float = 1.0) -> None:
        settings = scenario.outpatient_follow_ups
        assert settings is not None
        self.settings: OutpatientFollowUps = settings
        # one stream each for the calendar before the start, the follow-ups filed and the clinics' DNA and virtual
        # draws, so that more follow-ups filed never shifts the clinics' draws
        self._rng_before_start = streams.for_unit("follow_ups", "before_start")
        self._rng_filed = streams.for_unit("follow_ups", "filed")
        self._rng_booked = streams.for_unit("follow_ups", "booked")
        self.week = week
        self.patients = patients
        self.horizon_days = scenario.horizon_days
        multiplier = np.array([settings.specialty_multipliers.get(s, 1.0) for s in scenario.specialty_names])
        self.mean_after_non_admitted_stop = settings.after_non_admitted_stop * multiplier
        self.mean_after_treatment = settings.after_treatment * multiplier
        self.days_between = max(1, round(7 * settings.weeks_between))
        self.ring_fenced = settings.slot_rule == "ring_fenced"
        # follow-up slots a clinic day by site and specialty, and the fractions each carries to its next clinic day
        self.slots_per_clinic_day = np.array(first_slots_per_clinic_day, dtype=float) * settings.slots_per_first_slot
        self._carry = np.zeros_like(self.slots_per_clinic_day)
        self.has_clinics = np.any(self.slots_per_clinic_day, axis=1, keepdims=False).astype(bool)     # by site
        n_sites, n_specs = len(first_slots_per_clinic_day), len(scenario.specialty_names)
        self.due = np.zeros((self.horizon_days, n_sites, n_specs), dtype=np.int32)   # follow-ups falling due a day
        self.waiting = np.zeros((n_sites, n_specs), dtype=np.int64)                   # due, not yet seen
        self._filed_through_day = -1       # calendar days already moved into `waiting` (as `_follow_up_days` counts)
        self._seed_from_before_start(scenario, first_slots_per_clinic_day, clinic_days_per_week,
                                     delivered_share_at_start)
        # The filing and booking run in the compiled generator `_follow_up_days`, handed the streams and arrays once
        # (handing a Generator to compiled code costs tens of microseconds a call); each request goes through these
        # arrays: what to do, the events' sites and specialties, the clinic day's slots and shares, and its results.
        self._request = np.zeros(3, dtype=np.int64)                   # FILE_STOPS/FILE_TREATMENTS/BOOK, events, day
        self._event_sites = np.empty(EVENTS_A_REQUEST, dtype=np.uint8)
        self._event_specialties = np.empty(EVENTS_A_REQUEST, dtype=np.uint8)
        self._first_slots = np.zeros((n_sites, n_specs), dtype=np.int64)
        self._staffed_shares = np.zeros(n_sites, dtype=np.float64)
        self._firsts = np.zeros((n_sites, n_specs), dtype=np.int64)
        self._tallies = np.zeros(N_TALLIES, dtype=np.int64)
        self._days = _follow_up_days(
            self._rng_filed, self._rng_booked, self.due, self.waiting, self.slots_per_clinic_day, self._carry,
            self.has_clinics, self.mean_after_non_admitted_stop, self.mean_after_treatment, self.days_between,
            self.ring_fenced, float(settings.pifu_share), float(settings.pifu_request_rate), float(settings.dna_rate),
            float(settings.virtual_share), self._request, self._event_sites, self._event_specialties,
            self._first_slots, self._staffed_shares, self._firsts, self._tallies)

    @property
    def waiting_total(self) -> int:
        """Follow-ups due and not yet seen, ICS-wide (the follow-up backlog)."""
        return int(self.waiting.sum())

    def free_slots_for_firsts(self, site: int, specialty: int) -> float:
        """Ring-fenced clinics: move the follow-up slots PIFU frees (the share of follow-ups patients never ask for)
        that the plan re-templates from this clinic's follow-up slots to its first slots; returns the first slots a
        clinic day gained. Never negative, so PIFU never lowers first-appointment capacity."""
        s = self.settings
        if not self.ring_fenced:
            return 0.0
        avoided_share = s.pifu_share * (1.0 - s.pifu_request_rate)
        moved = float(self.slots_per_clinic_day[site, specialty]) * avoided_share * s.pifu_freed_slots_to_firsts
        self.slots_per_clinic_day[site, specialty] -= moved
        return moved

    def _seed_from_before_start(self, scenario: Scenario, first_slots_per_clinic_day: list[list[float]],
                                clinic_days_per_week: int, delivered_share_at_start: float) -> None:
        """Follow-ups booked before the start, as if the clinics had run steadily at the start's first-appointment
        rate: each day's expected count is what that steady stream of clock stops and operations would still have
        due (Poisson counts, k-th due k x days_between after the event); plus the overdue backlog."""
        s = self.settings
        slots_per_week = self.slots_per_clinic_day * clinic_days_per_week
        self.waiting += np.rint(slots_per_week * s.overdue_at_start_weeks).astype(np.int64)
        out = scenario.outpatients
        attended = 1.0 - (out.virtual_share * out.dna_rate_virtual
                          + (1.0 - out.virtual_share) * out.dna_rate_face_to_face)
        first_attendances_per_day = (np.array(first_slots_per_clinic_day) * clinic_days_per_week / 7.0
                                     * delivered_share_at_start * attended)              # site x specialty
        admitted = np.minimum(1.0, np.array([sp.admitted_share for sp in scenario.specialties.values()])
                              * scenario.referrals.admitted_share_multiplier)
        horizon_orders = self.horizon_days // self.days_between + 1
        expected = np.zeros((horizon_orders, *first_attendances_per_day.shape))
        for events_share, means in ((1.0 - admitted, self.mean_after_non_admitted_stop),
                                    (admitted, self.mean_after_treatment)):
            for spec, mean in enumerate(means):
                still_due = _still_due_by_interval(float(mean), horizon_orders)
                expected[:, :, spec] += np.outer(still_due, first_attendances_per_day[:, spec] * events_share[spec])
        days = min(self.horizon_days, horizon_orders * self.days_between)
        by_day = np.repeat(expected, self.days_between, axis=0)[:days]
        self.due[:days] += self._rng_before_start.poisson(by_day).astype(np.int32)

    def after_non_admitted_stops(self, patient_ids: np.ndarray, day: int) -> None:
        """Patients whose clock stopped at a first attendance today: their follow-ups are at their clinic's site.
        Filed on the next clinic day (`book_clinic_day`)."""
        p = self.patients
        self._send_events(FILE_STOPS, day, p.referred_site, np.asarray(patient_ids, dtype=np.int64), p.specialty)

    def after_treatments(self, patient_ids: np.ndarray, day: int, sites: np.ndarray) -> None:
        """Patients treated today, each at their site in `sites` (a hub's follow-ups are at its host site). A site
        without follow-up clinics (an independent-sector provider) follows up its own patients within its price."""
        self._send_events(FILE_TREATMENTS, day, sites, np.asarray(patient_ids, dtype=np.int64), self.patients.specialty)

    def _send_events(self, command: int, day: int, sites: np.ndarray, patient_ids: np.ndarray,
                     specialty: np.ndarray) -> None:
        """Hand the events (patients in order) to `_follow_up_days`, at most EVENTS_A_REQUEST a request. `sites`: the
        patients' sites by patient id (`referred_site`) for FILE_STOPS, or one a patient for FILE_TREATMENTS."""
        for start in range(0, len(patient_ids), EVENTS_A_REQUEST):
            ids = patient_ids[start:start + EVENTS_A_REQUEST]
            n = len(ids)
            if command == FILE_STOPS:
                np.take(sites, ids, out=self._event_sites[:n])
            else:
                self._event_sites[:n] = sites[start:start + n]
            np.take(specialty, ids, out=self._event_specialties[:n])
            self._request[0], self._request[1], self._request[2] = command, n, day
            next(self._days)

    def book_clinic_day(self, day: int, first_slots: np.ndarray, staffed_shares: np.ndarray) -> np.ndarray:
        """Book the day's follow-ups at every clinic and return the slots left for first appointments.

        The follow-ups of the events since the last clinic day are filed first, then those fallen due since the
        last clinic day join their clinics' backlogs. Ring-fenced: follow-ups use their own slots (staffed as the
        first slots are) and first slots are untouched. Common pool: follow-ups due are booked first from the whole
        pool. A follow-up not attended uses its slot and stays in the backlog (`_follow_up_days`).

        `first_slots` and the result are site x specialty (int64), `staffed_shares` by site."""
        self._first_slots[:] = first_slots
        self._staffed_shares[:] = staffed_shares
        self._request[0], self._request[1], self._request[2] = BOOK, 0, day
        next(self._days)
        self._filed_through_day = max(self._filed_through_day, day)
        self.week.add_counts(DAY_COUNTERS, self._tallies.tolist())
        return self._firsts.copy()


# requests to `_follow_up_days`, and the tallies a clinic day leaves
FILE_STOPS, FILE_TREATMENTS, BOOK = 0, 1, 2
EVENTS_A_REQUEST = 4096
# what a clinic day adds to the week's counters, in the order of `_file_and_book`'s tallies
DAY_COUNTERS = ("pifu_followups_offered", "pifu_followups_requested", "outpatient_followup_attendances",
                "outpatient_followup_dna", "outpatient_followup_virtual", "outpatient_first_slots_offered")
N_TALLIES = len(DAY_COUNTERS)


@njit
def _follow_up_days(rng_filed: np.random.Generator, rng_booked: np.random.Generator, due: np.ndarray,
                    waiting: np.ndarray, slots_per_clinic_day: np.ndarray, carry: np.ndarray, has_clinics: np.ndarray,
                    mean_after_non_admitted_stop: np.ndarray, mean_after_treatment: np.ndarray, days_between: int,
                    ring_fenced: bool, pifu_share: float, pifu_request_rate: float, dna_rate: float,
                    virtual_share: float, request: np.ndarray, event_sites: np.ndarray,
                    event_specialties: np.ndarray, first_slots: np.ndarray, staffed_shares: np.ndarray,
                    firsts: np.ndarray, tallies: np.ndarray) -> Iterator[int]:
    """The follow-up clinics' work, one request a `next()` (`request`: what, how many events, the day). A generator,
    so the numpy Generators and the arrays are handed to compiled code once a run. numba runs numpy's own binomial,
    Poisson and uniform draws on the Generators; one draw at a time in the order numpy's array draws take them gives
    the same numbers.

    FILE_STOPS / FILE_TREATMENTS: the first `request[1]` events (site, specialty in `event_sites`,
    `event_specialties`) wait to be filed; a treatment at a site without follow-up clinics has none.

    BOOK: first the events since the last clinic day are filed, together: how many follow-ups each has (Poisson,
    in event order), a share moved to PIFU (one uniform each, in event order then order k; then one more each, the
    PIFU ones asked for; only those asked for happen), the rest into the calendar (`_file_in_calendar`). Then the
    clinic day (`_follow_ups_seen_today`) with `first_slots` and `staffed_shares`, the follow-ups not attended
    (binomial, site x specialty in order), those attended leaving the backlog and those of them seen virtually.
    Leaves the first slots left in `firsts` and the day's counts in `tallies` (N_TALLIES)."""
    pending_day = np.empty(1024, dtype=np.int64)          # events not yet filed
    pending_site = np.empty(1024, dtype=np.int64)
    pending_specialty = np.empty(1024, dtype=np.int64)
    pending_mean = np.empty(1024, dtype=np.float64)
    n_pending = 0
    filed_through_day = -1                                # calendar days already moved into `waiting`
    while True:
        command, n_events, day = request[0], request[1], request[2]
        if command != BOOK:
            while n_pending + n_events > len(pending_day):
                pending_day, pending_site = grown(pending_day), grown(pending_site)
                pending_specialty, pending_mean = grown(pending_specialty), grown(pending_mean)
            n_pending = _add_events(
                command == FILE_TREATMENTS, day, n_events, event_sites, event_specialties, has_clinics,
                mean_after_treatment if command == FILE_TREATMENTS else mean_after_non_admitted_stop,
                pending_day, pending_site, pending_specialty, pending_mean, n_pending)
            yield 0
            continue
        _file_and_book(rng_filed, rng_booked, pending_day[:n_pending], pending_site[:n_pending],
                       pending_specialty[:n_pending], pending_mean[:n_pending], due, days_between, pifu_share,
                       pifu_request_rate, filed_through_day + 1, day, waiting, slots_per_clinic_day, staffed_shares,
                       carry, first_slots, ring_fenced, dna_rate, virtual_share, firsts, tallies)
        n_pending = 0
        filed_through_day = max(filed_through_day, day)
        yield day


@njit
def _file_and_book(rng_filed: np.random.Generator, rng_booked: np.random.Generator, pending_day: np.ndarray,
                   pending_site: np.ndarray, pending_specialty: np.ndarray, pending_mean: np.ndarray, due: np.ndarray,
                   days_between: int, pifu_share: float, pifu_request_rate: float, first_day_due: int, day: int,
                   waiting: np.ndarray, slots_per_clinic_day: np.ndarray, staffed_shares: np.ndarray,
                   carry: np.ndarray, first_slots: np.ndarray, ring_fenced: bool, dna_rate: float,
                   virtual_share: float, firsts: np.ndarray, tallies: np.ndarray) -> None:
    """A BOOK request of `_follow_up_days` (see there), the events waiting in the `pending_` arrays. (A function of
    its own: the same loops inside the generator run several times slower.)"""
    n_pending = len(pending_day)
    n_sites, n_specialties = waiting.shape
    tallies[:] = 0
    if n_pending:
        counts = np.empty(n_pending, dtype=np.int64)
        total = 0
        for event in range(n_pending):
            counts[event] = numpy_poisson(rng_filed, pending_mean[event])
            total += counts[event]
        if total:
            happen = np.ones(total, dtype=np.bool_)
            if pifu_share:
                moved = np.empty(total, dtype=np.bool_)
                for f in range(total):
                    moved[f] = rng_filed.random() < pifu_share
                for f in range(total):
                    requested = rng_filed.random() < pifu_request_rate      # drawn for every follow-up
                    asked = moved[f] and requested
                    tallies[0] += moved[f]
                    tallies[1] += asked
                    happen[f] = not moved[f] or asked
            _file_in_calendar(due, pending_day, pending_site, pending_specialty, counts, happen, days_between)
    seen, firsts_left, first_slots_offered = _follow_ups_seen_today(
        due, first_day_due, day, waiting, slots_per_clinic_day, staffed_shares, carry, first_slots, ring_fenced)
    not_attended = np.zeros((n_sites, n_specialties), dtype=np.int64)
    if dna_rate:
        for site in range(n_sites):
            for specialty in range(n_specialties):
                not_attended[site, specialty] = rng_booked.binomial(seen[site, specialty], dna_rate)
    attended, n_attended, n_not_attended = _attended_leave_backlog(seen, not_attended, waiting)
    tallies[2], tallies[3] = n_attended, n_not_attended
    if virtual_share and n_attended:
        for site in range(n_sites):
            for specialty in range(n_specialties):
                tallies[4] += rng_booked.binomial(attended[site, specialty], virtual_share)
    tallies[5] = first_slots_offered
    for site in range(n_sites):
        for specialty in range(n_specialties):
            firsts[site, specialty] = firsts_left[site, specialty]


@njit
def _add_events(treatments: bool, day: int, n_events: int, event_sites: np.ndarray, event_specialties: np.ndarray,
                has_clinics: np.ndarray, means: np.ndarray, pending_day: np.ndarray, pending_site: np.ndarray,
                pending_specialty: np.ndarray, pending_mean: np.ndarray, n_pending: int) -> int:
    """The first `n_events` events (site, specialty) of `day` wait to be filed, after the `n_pending` already waiting
    (the arrays have room), each with its specialty's mean follow-ups in `means`; a treatment at a site without
    follow-up clinics has none. Returns the events now waiting. (A function of its own: the same loop inside the
    generator `_follow_up_days` runs several times slower.)"""
    for i in range(n_events):
        site = event_sites[i]
        if treatments and not has_clinics[site]:
            continue
        specialty = event_specialties[i]
        pending_day[n_pending] = day
        pending_site[n_pending] = site
        pending_specialty[n_pending] = specialty
        pending_mean[n_pending] = means[specialty]
        n_pending += 1
    return n_pending


@njit
def _attended_leave_backlog(seen: np.ndarray, not_attended: np.ndarray,
                            waiting: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The follow-ups attended (site x specialty: booked less not attended) leave the backlog `waiting`. Returns
    them, their total and the total not attended."""
    n_sites, n_specialties = seen.shape
    attended = np.empty((n_sites, n_specialties), dtype=np.int64)
    n_attended = n_not_attended = 0
    for site in range(n_sites):
        for specialty in range(n_specialties):
            came = seen[site, specialty] - not_attended[site, specialty]
            attended[site, specialty] = came
            waiting[site, specialty] -= came
            n_attended += came
            n_not_attended += not_attended[site, specialty]
    return attended, int(n_attended), int(n_not_attended)


@njit
def _follow_ups_seen_today(due: np.ndarray, first_day_due: int, day: int, waiting: np.ndarray,
                           slots_per_clinic_day: np.ndarray, staffed_shares: np.ndarray, carry: np.ndarray,
                           first_slots: np.ndarray, ring_fenced: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """A clinic day's follow-up slot arithmetic (no draws), site x specialty: the calendar's days `first_day_due`
    through `day` join the backlog `waiting`; each clinic's follow-up slots are its slots a clinic day times its
    site's staffed share plus the fraction it carried (the new fraction back into `carry`), whole ones used. Returns
    the follow-ups booked (the backlog, up to the follow-up slots, or ahead of first appointments in the common
    pool), the first slots left (a new array; ring-fenced, the same counts as `first_slots`) and their total."""
    n_sites, n_specialties = waiting.shape
    for due_day in range(first_day_due, day + 1):
        for site in range(n_sites):
            for specialty in range(n_specialties):
                waiting[site, specialty] += due[due_day, site, specialty]
    seen = np.empty((n_sites, n_specialties), dtype=np.int64)
    firsts = first_slots.copy()
    for site in range(n_sites):
        share = staffed_shares[site]
        for specialty in range(n_specialties):
            available = slots_per_clinic_day[site, specialty] * share + carry[site, specialty]
            own_slots = math.floor(available)
            carry[site, specialty] = available - own_slots
            if ring_fenced:
                seen[site, specialty] = min(waiting[site, specialty], own_slots)
            else:
                pool = firsts[site, specialty] + own_slots
                booked = min(waiting[site, specialty], pool)
                seen[site, specialty] = booked
                firsts[site, specialty] = pool - booked
    return seen, firsts, int(firsts.sum())


@njit
def _file_in_calendar(due: np.ndarray, event_day: np.ndarray, site: np.ndarray, specialty: np.ndarray,
                      count: np.ndarray, happen: np.ndarray, days_between: int) -> None:
    """Add to the calendar `due` (day x site x specialty) the k-th follow-up of each event, k = 1..count, falling
    due k x days_between after the event, for those that happen and fall inside the horizon."""
    horizon_days = due.shape[0]
    follow_up = 0
    for event in range(len(count)):
        for k in range(1, count[event] + 1):
            day = event_day[event] + k * days_between
            if happen[follow_up] and day < horizon_days:
                due[day, site[event], specialty[event]] += 1
            follow_up += 1


def _still_due_by_interval(mean: float, intervals: int) -> np.ndarray:
    """For a steady stream of events each with Poisson(mean) follow-ups, the k-th due k intervals after the event:
    how many follow-ups a day, per event a day, still come from events before the start, in each interval j after
    it (those of order k > j), i.e. the sum over k > j of P(K >= k). Interval 0 gives the mean itself."""
    still_due = np.zeros(intervals)
    p_exactly = math.exp(-mean)              # P(K = 0)
    at_least = 1.0 - p_exactly               # P(K >= 1)
    remaining = mean                         # sum over k >= 1 of P(K >= k) = E[K]
    for j in range(intervals):
        still_due[j] = remaining
        remaining -= at_least                # drop order j + 1
        p_exactly *= mean / (j + 1)          # P(K = j + 1)
        at_least -= p_exactly                # P(K >= j + 2)
        if remaining <= 1e-12 * max(mean, 1.0):
            break
    return still_due


# numpy's Poisson draw changes algorithm at this mean (random_poisson in numpy's distributions.c)
POISSON_PTRS_FROM = 10.0
# the series numpy's random_loggam sums (its table `a`)
_LOGGAM_SERIES = (8.333333333333333e-02, -2.777777777777778e-03, 7.936507936507937e-04, -5.952380952380952e-04,
                  8.417508417508418e-04, -1.917526917526918e-03, 6.410256410256410e-03, -2.955065359477124e-02,
                  1.796443723688307e-01, -1.39243221690590e+00)


@njit
def numpy_poisson(rng: np.random.Generator, mean: float) -> int:
    """One draw of `rng.poisson(mean)`, the number and the generator's state exactly numpy's. Below a mean of 10 numba
    runs numpy's own algorithm; from 10 (the transformed rejection, PTRS) numba's copy truncates the candidate
    toward zero where numpy floors it, so that a candidate between -1 and 0 becomes 0 (sometimes accepted) instead of
    -1 (always rejected), and the draws part ways: `_poisson_ptrs` is numpy's."""
    if mean < POISSON_PTRS_FROM:
        return int(rng.poisson(mean))
    return _poisson_ptrs(rng, mean)


@njit
def _poisson_ptrs(rng: np.random.Generator, mean: float) -> int:
    """numpy's random_poisson_ptrs (Hormann's transformed rejection), operation for operation; `rng.random()` is
    numpy's next_double, and log is the C library's in numpy, numba and Python alike."""
    slam = math.sqrt(mean)
    loglam = math.log(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        # numpy's C log(0) is -inf (accepted); Python's math.log raises there, so the plain-Python path says so itself
        log_v = math.log(v) if v > 0 else -math.inf
        if log_v + math.log(invalpha) - math.log(a / (us * us) + b) <= -mean + k * loglam - _loggam(k + 1.0):
            return k


@njit
def _loggam(x: float) -> float:
    """numpy's random_loggam: log of the gamma function, by its series, in its order of operations."""
    if x == 1.0 or x == 2.0:
        return 0.0
    n = int(7 - x) if x < 7.0 else 0
    x0 = x + n
    x2 = (1.0 / x0) * (1.0 / x0)
    lg2pi = 1.8378770664093453e+00                  # log(2 pi)
    gl0 = _LOGGAM_SERIES[9]
    for k in range(8, -1, -1):
        gl0 *= x2
        gl0 += _LOGGAM_SERIES[k]
    gl = gl0 / x0 + 0.5 * lg2pi + (x0 - 0.5) * math.log(x0) - x0
    if x < 7.0:
        for _ in range(n):
            gl -= math.log(x0 - 1.0)
            x0 -= 1.0
    return gl
