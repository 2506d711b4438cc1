"""Weekly monitor: at the end of each week, record stocks and the week's flows as one row of weekly.csv.

A row is the list and its flows from the ledger, then a column per counter of the week (sim.model.activity, in
field order) with the few derived columns placed among them (DERIVED_AFTER). Rows are kept column-wise (a list per
column) and become a DataFrame once, after the run. At the same moment the monitor records the list and its flows
by specialty and by site (weekly_by_specialty.csv, weekly_by_site.csv).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from sim.model.activity import WeeklyActivity, activity_columns
from sim.model.day import MONITOR, SUNDAY_OF_WEEK, ServiceProcess, wait_until
from sim.model.follow_ups import FollowUpClinics
from sim.model.theatres import TheatreSuite
from sim.model.vaccination import CENTRE_KINDS
from sim.model.waiting_list import THRESHOLDS_WEEKS, RttLedger

# Columns not counted in WeeklyActivity but worked out at the week's end (WeeklyMonitor._derived_columns): each
# group follows, in weekly.csv, the counter column named.
DERIVED_AFTER: dict[str, tuple[str, ...]] = {
    "theatre_sessions_run": ("theatre_sessions_lost",),
    "theatre_cases": ("theatre_cases_day_case",),
    "treated_at_other_site": ("theatre_utilisation", "elective_beds_occupied", "mean_wait_weeks_admitted_stops",
                              "mean_wait_weeks_non_admitted_stops"),
    "elective_bed_days": ("covid_inpatients", "elective_beds_available", "referrals_suppressed_covid",
                          "referrals_deferred_returned"),
    "vaccination_target": ("vaccination_mean_wait_minutes",),
    "outpatient_followup_dna": ("outpatient_followups_waiting",),
}


class WeeklyMonitor:
    """Takes the weekly snapshot and resets the weekly flow counters."""

    def __init__(self, horizon_weeks: int, specialty_names: list[str], staff_groups: list[str],
                 cohort_labels: list[tuple[str, str]], cohort_population: np.ndarray, base_first: np.ndarray,
                 base_second: np.ndarray, *, week: WeeklyActivity, ledger: RttLedger, suites: list[TheatreSuite],
                 covid_inpatients: np.ndarray, opening_list: int, site_names: list[str] | None = None,
                 sections: frozenset[str] = frozenset(), follow_ups: FollowUpClinics | None = None) -> None:
        self.horizon_weeks = horizon_weeks
        self.specialty_names = specialty_names
        self.specialty_rows: list[dict] = []
        self.staff_groups = staff_groups
        self.columns: dict[str, list] = {}
        self.cohort_labels = cohort_labels
        self.cohort_population = cohort_population
        self.base_first, self.base_second = base_first, base_second     # doses given before the start
        # vaccination_by_cohort.csv, column-wise: a value per cohort a week (np.round is what round() of a numpy
        # float does, so the whole week is rounded at once)
        self.cohort_columns: dict[str, list] = {name: [] for name in (
            "week", "borough", "age_band", "first_doses", "second_doses", "coverage_first_dose",
            "coverage_second_dose")}
        self._cumulative_first = np.zeros(len(cohort_labels), dtype=np.int64)
        self._cumulative_second = np.zeros(len(cohort_labels), dtype=np.int64)
        self.week = week
        self.ledger = ledger
        self.suites = suites
        self.covid_inpatients = covid_inpatients
        self.opening_list = opening_list        # the list at time 0, before any process has run
        self.site_names = site_names or [f"site_{i}" for i in range(ledger.n_sites)]
        self.site_columns: dict[str, list] = {}     # weekly_by_site.csv, column-wise: n_sites values a week
        self.opening_by_site = ledger.waiting_by_site_and_start_day().sum(axis=(1, 2))   # as opening_list
        self.sections = sections                # scenario sections whose counters are shown (activity_columns)
        self.follow_ups = follow_ups
        self.labels = {"centre_kinds": list(CENTRE_KINDS), "staff_groups": staff_groups}

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each Sunday, after every other service: record the week's row, then reset the week's counters."""
        ledger, act = self.ledger, self.week
        start_total = self.opening_list
        start_by_site = self.opening_by_site
        for week in range(self.horizon_weeks):
            end = 7 * (week + 1)
            yield from wait_until(env, 7 * week + SUNDAY_OF_WEEK, MONITOR)
            waiting_now = ledger.waiting_by_site_and_start_day()      # site x specialty x clock-start day
            over_by_site_specialty = ledger.counts_over(end, THRESHOLDS_WEEKS, counts=waiting_now)
            over = {t: counts.sum(axis=0) for t, counts in over_by_site_specialty.items()}
            row = self._list_columns(week, start_total, end, over)
            derived = self._derived_columns(act, end)
            for counter, column, value in activity_columns(act, self.labels, self.sections):
                row[column] = value
                if column == counter:
                    row.update((name, derived[name]) for name in DERIVED_AFTER.get(column, ()))
            for name, value in row.items():
                self.columns.setdefault(name, []).append(value)
            self._record_cohorts(week, act)
            self._record_specialties(week, waiting_now.sum(axis=(0, 2)), over)
            start_by_site = self._record_sites(week, start_by_site, waiting_now, over_by_site_specialty)
            start_total = ledger.waiting_total
            ledger.reset_week()
            act.reset()

    def _list_columns(self, week: int, start_total: int, end: int, over: dict[int, np.ndarray]) -> dict[str, Any]:
        """The week's first columns: the list and its flows, from the ledger."""
        ledger = self.ledger
        return {
            "week": week,
            "waiting_total_start": start_total,
            "clock_starts": ledger.clock_starts,
            "clock_stops_admitted": ledger.stops_admitted,
            "clock_stops_non_admitted": ledger.stops_non_admitted,
            "removals_other": ledger.removals_weekly_rate + ledger.removals_validation,
            "removals_validation": ledger.removals_validation,
            "waiting_total": ledger.waiting_total,
            "waiting_outpatient": ledger.waiting_outpatient,
            "waiting_admitted": ledger.waiting_admitted,
            **{f"waiting_over_{t}w": int(over[t].sum()) for t in THRESHOLDS_WEEKS},
            "admitted_over_52w": int(ledger.counts_over(end, (52,), admitted_only=True)[52].sum()),
            "referrals_received": ledger.clock_starts + ledger.referrals_diverted,
            "referrals_diverted_ag": ledger.referrals_diverted,
            "decisions_to_treat": ledger.decisions_to_treat,
        }

    @property
    def cohort_table(self) -> dict[str, list]:
        """vaccination_by_cohort.csv's columns; none at all without cohorts (a table of no rows and no columns)."""
        return self.cohort_columns if self.cohort_columns["week"] else {}

    def _derived_columns(self, act: WeeklyActivity, end: int) -> dict[str, Any]:
        """The columns of DERIVED_AFTER, from the week's counters, the ledger, the suites and the Covid curve."""
        ledger = self.ledger
        stops_adm, stops_non = ledger.stops_admitted, ledger.stops_non_admitted
        return {
            "theatre_sessions_lost": act.sessions_lost_covid + act.sessions_lost_staff + act.sessions_lost_cancelled,
            "theatre_cases_day_case": act.theatre_cases - act.theatre_cases_inpatient,
            "theatre_utilisation": (act.theatre_minutes_booked / act.theatre_minutes_available
                                    if act.theatre_minutes_available else float("nan")),
            "elective_beds_occupied": sum(s.beds.occupied(end) for s in self.suites),
            "mean_wait_weeks_admitted_stops": (ledger.stop_wait_days_admitted / 7 / stops_adm
                                               if stops_adm else float("nan")),
            "mean_wait_weeks_non_admitted_stops": (ledger.stop_wait_days_non_admitted / 7 / stops_non
                                                   if stops_non else float("nan")),
            "covid_inpatients": round(float(self.covid_inpatients[end - 7:end].mean()), 1),
            "elective_beds_available": sum(s.beds.capacity for s in self.suites),
            "referrals_suppressed_covid": ledger.referrals_suppressed,
            "referrals_deferred_returned": ledger.referrals_deferred_returned,
            # over the doses given at centre-days below saturation; saturated ones are counted in their own column
            "vaccination_mean_wait_minutes": (act.vaccination_wait_minutes_total / act.vaccination_wait_doses
                                              if act.vaccination_wait_doses else float("nan")),
            "outpatient_followups_waiting": self.follow_ups.waiting_total if self.follow_ups is not None else 0,
        }

    def _record_specialties(self, week: int, total: np.ndarray, over: dict) -> None:
        """The list and its long waiters by specialty: shows which specialty holds the tail."""
        for i, name in enumerate(self.specialty_names):
            self.specialty_rows.append({"week": week, "specialty": name, "waiting_total": int(total[i]),
                                        **{f"waiting_over_{t}w": int(over[t][i]) for t in THRESHOLDS_WEEKS}})

    def _record_sites(self, week: int, start_by_site: np.ndarray, waiting_now: np.ndarray,
                      over_by_site_specialty: dict[int, np.ndarray]) -> np.ndarray:
        """The list and its flows by site, for the trust boards; returns the list by site, next week's start.

        Attribution: the list, clock starts, clock stops and removals count against the pathway's referred site
        (the provider that holds the pathway, as RTT reporting counts it), wherever it is treated;
        `clock_stops_admitted_treated_here` counts admitted stops by the site that treated them (a surgical hub's
        under its host site), so treatment of other trusts' patients under `ics` pooling shows. Every column
        except the treated-here one sums over sites to the ICS-wide weekly.csv column; the treated-here one sums
        to `clock_stops_admitted`. Arrays over sites from the ledger's counts, no loop over patients.
        """
        ledger = self.ledger
        waiting_total = waiting_now.sum(axis=(1, 2))
        admitted = ledger.admitted_by_site_and_start_day()
        columns = {
            "week": np.full(len(self.site_names), week),
            "site": self.site_names,
            "waiting_total_start": start_by_site,
            "clock_starts": ledger.clock_starts_by_site,
            "clock_stops_admitted": ledger.stops_admitted_by_site,
            "clock_stops_non_admitted": ledger.stops_non_admitted_by_site,
            "removals_other": ledger.removals_by_site,
            "waiting_total": waiting_total,
            "waiting_admitted": admitted.sum(axis=(1, 2)),
            **{f"waiting_over_{t}w": over_by_site_specialty[t].sum(axis=1) for t in THRESHOLDS_WEEKS},
            "clock_stops_admitted_treated_here": ledger.stops_admitted_by_treating_site,
        }
        for name, values in columns.items():
            self.site_columns.setdefault(name, []).extend(np.asarray(values).tolist())
        return waiting_total

    def _record_cohorts(self, week: int, act: WeeklyActivity) -> None:
        """Vaccinations and coverage by cohort (borough x age band) for the week."""
        if not self.cohort_labels:
            return
        self._cumulative_first += act.vaccinations_by_cohort_first
        self._cumulative_second += act.vaccinations_by_cohort_second
        pop = self.cohort_population
        columns = self.cohort_columns
        columns["week"] += [week] * len(self.cohort_labels)
        columns["borough"] += [borough for borough, _ in self.cohort_labels]
        columns["age_band"] += [band for _, band in self.cohort_labels]
        columns["first_doses"] += act.vaccinations_by_cohort_first.tolist()
        columns["second_doses"] += act.vaccinations_by_cohort_second.tolist()
        with np.errstate(divide="ignore", invalid="ignore"):        # a cohort of no one has no coverage
            for column, given in (("coverage_first_dose", self.base_first + self._cumulative_first),
                                  ("coverage_second_dose", self.base_second + self._cumulative_second)):
                columns[column] += np.where(pop != 0, np.round(given / pop, 4), np.nan).tolist()
