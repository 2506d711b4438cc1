"""Weekly monitor: at the end of each week, record stocks and the week's flows as one row.

Rows are kept column-wise (a list per column) and become a DataFrame once, after the run.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np

from sim.model.activity import WeeklyActivity
from sim.model.day import MONITOR, SUNDAY_OF_WEEK, wait_until
from sim.model.vaccination import CENTRE_KINDS
from sim.model.waiting_list import THRESHOLDS_WEEKS

if TYPE_CHECKING:
    import simpy

    from sim.model.replication import Services


WEEKLY_COLUMNS = [
    "week", "waiting_total_start", "clock_starts", "clock_stops_admitted", "clock_stops_non_admitted",
    "removals_other", "removals_validation", "waiting_total", "waiting_outpatient", "waiting_admitted",
    "waiting_over_18w", "waiting_over_52w", "waiting_over_78w", "waiting_over_104w", "admitted_over_52w",
    "referrals_received", "referrals_diverted_ag", "decisions_to_treat",
    "outpatient_attendances", "outpatient_dna", "outpatient_virtual",
    "theatre_sessions_planned", "theatre_sessions_run", "theatre_sessions_lost", "theatre_sessions_idle",
    "sessions_lost_covid", "sessions_lost_staff", "sessions_lost_cancelled", "sessions_lost_no_bed",
    "theatre_cases", "theatre_cases_day_case", "theatre_cases_inpatient", "theatre_cancellations_on_day",
    "theatre_slots_lost_no_bed", "treated_at_other_site", "theatre_utilisation", "elective_beds_occupied",
    "mean_wait_weeks_admitted_stops", "mean_wait_weeks_non_admitted_stops",
    "hub_sessions_run", "hub_cases", "theatre_sessions_weekend_planned", "independent_sector_sessions_planned",
    "independent_sector_sessions_run",
    "independent_sector_cases",
    "elective_bed_days", "covid_inpatients", "elective_beds_available",
    "referrals_suppressed_covid", "referrals_deferred_returned",
    "staff_redeployed_to_vaccination", "vaccinations", "vaccinations_first_dose", "vaccinations_second_dose",
    *[f"vaccinations_{k}" for k in CENTRE_KINDS], "vaccination_dna", "vaccination_capacity", "vaccination_target",
    "vaccination_mean_wait_minutes", "vaccination_station_hours",
]


class WeeklyMonitor:
    """Takes the weekly snapshot and resets the weekly flow counters."""

    def __init__(self, horizon_weeks: int, specialty_names: list[str], staff_groups: list[str],
                 cohort_labels: list[tuple[str, str]], cohort_population: np.ndarray, base_first: np.ndarray,
                 base_second: np.ndarray) -> None:
        self.horizon_weeks = horizon_weeks
        self.specialty_names = specialty_names
        self.specialty_rows: list[dict] = []
        self.staff_groups = staff_groups
        self.columns: dict[str, list] = {c: [] for c in WEEKLY_COLUMNS + [f"staff_present_{g}" for g in staff_groups]}
        self.cohort_labels = cohort_labels
        self.cohort_population = cohort_population
        self.base_first, self.base_second = base_first, base_second     # doses given before the start
        self.cohort_rows: list[dict] = []
        self._cumulative_first = np.zeros(len(cohort_labels), dtype=np.int64)
        self._cumulative_second = np.zeros(len(cohort_labels), dtype=np.int64)

    def process(self, env: "simpy.Environment", services: "Services", opening_list: int) -> Iterator:
        """`opening_list` is the list at time 0, read before any process has run."""
        ledger = services.ledger
        start_total = opening_list
        for week in range(self.horizon_weeks):
            end = 7 * (week + 1)
            yield from wait_until(env, 7 * week + SUNDAY_OF_WEEK, MONITOR)
            act = services.week
            waiting_now = ledger.waiting_by_start_day()
            over = ledger.counts_over(end, THRESHOLDS_WEEKS, counts=waiting_now)
            removals = ledger.removals_weekly_rate + ledger.removals_validation
            stops_adm, stops_non = ledger.stops_admitted, ledger.stops_non_admitted
            lost = act.sessions_lost_covid + act.sessions_lost_staff + act.sessions_lost_cancelled
            row = {
                "week": week,
                "waiting_total_start": start_total,
                "clock_starts": ledger.clock_starts,
                "clock_stops_admitted": stops_adm,
                "clock_stops_non_admitted": stops_non,
                "removals_other": removals,
                "removals_validation": ledger.removals_validation,
                "waiting_total": ledger.waiting_total,
                "waiting_outpatient": ledger.waiting_outpatient,
                "waiting_admitted": ledger.waiting_admitted,
                "waiting_over_18w": int(over[18].sum()),
                "waiting_over_52w": int(over[52].sum()),
                "waiting_over_78w": int(over[78].sum()),
                "waiting_over_104w": int(over[104].sum()),
                "admitted_over_52w": int(ledger.counts_over(end, (52,), admitted_only=True)[52].sum()),
                "referrals_received": ledger.clock_starts + ledger.referrals_diverted,
                "referrals_diverted_ag": ledger.referrals_diverted,
                "decisions_to_treat": ledger.decisions_to_treat,
                "outpatient_attendances": act.outpatient_attendances,
                "outpatient_dna": act.outpatient_dna,
                "outpatient_virtual": act.outpatient_virtual,
                "theatre_sessions_planned": act.theatre_sessions_planned,
                "theatre_sessions_run": act.theatre_sessions_run,
                "theatre_sessions_lost": lost,
                "sessions_lost_covid": act.sessions_lost_covid,
                "sessions_lost_staff": act.sessions_lost_staff,
                "sessions_lost_cancelled": act.sessions_lost_cancelled,
                "sessions_lost_no_bed": round(act.sessions_lost_no_bed, 3),
                "theatre_sessions_idle": act.theatre_sessions_idle,
                "theatre_cases": act.theatre_cases,
                "theatre_cases_day_case": act.theatre_cases - act.theatre_cases_inpatient,
                "theatre_cases_inpatient": act.theatre_cases_inpatient,
                "theatre_cancellations_on_day": act.theatre_cancellations_on_day,
                "theatre_slots_lost_no_bed": act.theatre_slots_lost_no_bed,
                "treated_at_other_site": act.treated_at_other_site,
                "theatre_utilisation": (act.theatre_minutes_booked / act.theatre_minutes_available
                                        if act.theatre_minutes_available else float("nan")),
                "elective_beds_occupied": sum(s.beds.occupied(end) for s in services.theatres),
                "mean_wait_weeks_admitted_stops": (ledger.stop_wait_days_admitted / 7 / stops_adm
                                                   if stops_adm else float("nan")),
                "mean_wait_weeks_non_admitted_stops": (ledger.stop_wait_days_non_admitted / 7 / stops_non
                                                       if stops_non else float("nan")),
                "hub_sessions_run": act.hub_sessions_run,
                "hub_cases": act.hub_cases,
                "theatre_sessions_weekend_planned": act.theatre_sessions_weekend_planned,
                "independent_sector_sessions_planned": act.independent_sector_sessions_planned,
                "independent_sector_sessions_run": act.independent_sector_sessions_run,
                "independent_sector_cases": act.independent_sector_cases,
                "elective_bed_days": round(act.elective_bed_days, 1),
                "covid_inpatients": round(float(services.covid.ics_inpatients[end - 7:end].mean()), 1),
                "elective_beds_available": sum(s.beds.capacity for s in services.theatres),
                "referrals_suppressed_covid": ledger.referrals_suppressed,
                "referrals_deferred_returned": ledger.referrals_deferred_returned,
                "staff_redeployed_to_vaccination": act.staff_redeployed_to_vaccination,
                "vaccinations": act.vaccinations,
                "vaccinations_first_dose": act.vaccinations_first,
                "vaccinations_second_dose": act.vaccinations_second,
                **{f"vaccinations_{k}": n for k, n in zip(CENTRE_KINDS, act.vaccinations_by_kind)},
                "vaccination_dna": act.vaccination_dna,
                "vaccination_capacity": act.vaccination_capacity,
                "vaccination_station_hours": round(act.vaccination_station_hours, 1),
                "vaccination_target": round(act.vaccination_target) if act.vaccination_target else float("nan"),
                "vaccination_mean_wait_minutes": (act.vaccination_wait_minutes_total / act.vaccinations
                                                  if act.vaccinations and act.vaccination_wait_minutes_total else float("nan")),
                **{f"staff_present_{g}": round(float(n) / 7, 1) for g, n in zip(self.staff_groups, act.staff_present)},
            }
            for name, value in row.items():
                self.columns[name].append(value)
            self._record_cohorts(week, act)
            self._record_specialties(week, waiting_now.sum(axis=1), over)
            start_total = ledger.waiting_total
            ledger.reset_week()
            act.reset()

    def _record_specialties(self, week: int, total: np.ndarray, over: dict) -> None:
        """The list and its long waiters by specialty: shows which specialty holds the tail."""
        for i, name in enumerate(self.specialty_names):
            self.specialty_rows.append({"week": week, "specialty": name, "waiting_total": int(total[i]),
                                        **{f"waiting_over_{t}w": int(over[t][i]) for t in THRESHOLDS_WEEKS}})

    def _record_cohorts(self, week: int, act: WeeklyActivity) -> None:
        """Vaccinations and coverage by cohort (borough x age band) for the week."""
        if not self.cohort_labels:
            return
        self._cumulative_first += act.vaccinations_by_cohort_first
        self._cumulative_second += act.vaccinations_by_cohort_second
        for i, (borough, band) in enumerate(self.cohort_labels):
            pop = self.cohort_population[i]
            self.cohort_rows.append({
                "week": week, "borough": borough, "age_band": band,
                "first_doses": int(act.vaccinations_by_cohort_first[i]),
                "second_doses": int(act.vaccinations_by_cohort_second[i]),
                "coverage_first_dose": round((self.base_first[i] + self._cumulative_first[i]) / pop, 4) if pop else float("nan"),
                "coverage_second_dose": round((self.base_second[i] + self._cumulative_second[i]) / pop, 4) if pop else float("nan"),
            })
