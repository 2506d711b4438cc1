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

import numpy as np

from sim.core.compiled import njit
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
        self._pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []   # events not yet filed
        n_sites, n_specs = len(first_slots_per_clinic_day), len(scenario.specialty_names)
        self.due = np.zeros((self.horizon_days, n_sites, n_specs), dtype=np.int32)   # follow-ups falling due a day
        self.waiting = np.zeros((n_sites, n_specs), dtype=np.int64)                   # due, not yet seen
        self._filed_through_day = -1       # calendar days already moved into `waiting`
        self._seed_from_before_start(scenario, first_slots_per_clinic_day, clinic_days_per_week,
                                     delivered_share_at_start)

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
        """Patients whose clock stopped at a first attendance today: their follow-ups are at their clinic's site."""
        if len(patient_ids):
            sites = self.patients.referred_site[patient_ids]
            specs = self.patients.specialty[patient_ids]
            self._pending.append((day, sites, specs, self.mean_after_non_admitted_stop[specs]))

    def after_treatments(self, patient_ids: np.ndarray, day: int, sites: np.ndarray) -> None:
        """Patients treated today, each at their site in `sites` (a hub's follow-ups are at its host site). A site
        without follow-up clinics (an independent-sector provider) follows up its own patients within its price."""
        followed_up = self.has_clinics[sites]
        if followed_up.any():
            ids = np.asarray(patient_ids, dtype=np.int64)[followed_up]
            specs = self.patients.specialty[ids]
            self._pending.append((day, sites[followed_up].astype(np.uint8), specs, self.mean_after_treatment[specs]))

    def _file_pending(self) -> None:
        """File the follow-ups of the events since the last clinic day, together: draw how many each patient has,
        move a share to PIFU (of which only those asked for happen), and put the rest in the calendar, the k-th
        falling due k x days_between after the event. Filing waits at most until the next clinic day, which is
        always before the first of them falls due (days_between is at least a day, and events come in day order)."""
        if not self._pending:
            return
        days = np.repeat(np.array([p[0] for p in self._pending], dtype=np.int64), [len(p[1]) for p in self._pending])
        sites = np.concatenate([p[1] for p in self._pending]).astype(np.int64)
        specs = np.concatenate([p[2] for p in self._pending]).astype(np.int64)
        means = np.concatenate([p[3] for p in self._pending])
        self._pending.clear()
        counts = self._rng_filed.poisson(means)
        total = int(counts.sum())
        if not total:
            return
        s = self.settings
        if s.pifu_share:                                # each follow-up in pathway order, then in order k
            moved = self._rng_filed.random(total) < s.pifu_share
            asked = moved & (self._rng_filed.random(total) < s.pifu_request_rate)
            self.week.pifu_followups_offered += int(moved.sum())
            self.week.pifu_followups_requested += int(asked.sum())
            happen = ~moved | asked
        else:
            happen = np.ones(total, dtype=np.bool_)
        _file_in_calendar(self.due, days, sites, specs, counts, happen, self.days_between)

    def book_clinic_day(self, day: int, first_slots: np.ndarray, staffed_shares: np.ndarray) -> np.ndarray:
        """Book the day's follow-ups at every clinic and return the slots left for first appointments.

        The follow-ups fallen due since the last clinic day join their clinics' backlogs first. Ring-fenced:
        follow-ups use their own slots (staffed as the first slots are) and first slots are untouched. Common pool:
        follow-ups due are booked first from the whole pool. A follow-up not attended uses its slot and stays in the
        backlog.

        `first_slots` and the result are site x specialty (int64), `staffed_shares` by site."""
        self._file_pending()
        seen, firsts, first_slots_offered = _follow_ups_seen_today(
            self.due, self._filed_through_day + 1, day, self.waiting, self.slots_per_clinic_day, staffed_shares,
            self._carry, first_slots, self.ring_fenced)
        self._filed_through_day = max(self._filed_through_day, day)
        s = self.settings
        not_attended = self._rng_booked.binomial(seen, s.dna_rate) if s.dna_rate else np.zeros_like(seen)
        attended, n_attended, n_not_attended = _attended_leave_backlog(seen, not_attended, self.waiting)
        week = self.week
        week.outpatient_followup_attendances += n_attended
        week.outpatient_followup_dna += n_not_attended
        if s.virtual_share and n_attended:
            week.outpatient_followup_virtual += int(self._rng_booked.binomial(attended, s.virtual_share).sum())
        week.outpatient_first_slots_offered += first_slots_offered
        return firsts


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
