"""Weekly monitor: at the end of each week, record stocks and the week's flows as one row.

Rows are kept column-wise (a list per column) and become a DataFrame once, after the run.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Iterator

from sim.waiting_list import THRESHOLDS_WEEKS

if TYPE_CHECKING:
    import simpy

    from sim.model import Services

END_OF_WEEK_OFFSET = 0.001    # the monitor runs just before the next Monday 00:00


@dataclasses.dataclass
class WeeklyActivity:
    """Service activity counted during one week (reset by the monitor)."""

    outpatient_attendances: int = 0
    outpatient_dna: int = 0
    outpatient_virtual: int = 0
    theatre_sessions_planned: int = 0
    theatre_sessions_run: int = 0
    theatre_sessions_lost: int = 0
    theatre_sessions_idle: int = 0
    theatre_cases: int = 0
    theatre_cases_inpatient: int = 0
    theatre_cancellations_on_day: int = 0
    theatre_slots_lost_no_bed: int = 0
    treated_at_other_site: int = 0
    theatre_minutes_booked: float = 0.0
    theatre_minutes_available: float = 0.0


WEEKLY_COLUMNS = [
    "week", "waiting_total_start", "clock_starts", "clock_stops_admitted", "clock_stops_non_admitted",
    "removals_other", "removals_validation", "waiting_total", "waiting_outpatient", "waiting_admitted",
    "waiting_over_18w", "waiting_over_52w", "waiting_over_78w", "waiting_over_104w",
    "referrals_received", "referrals_diverted_ag", "decisions_to_treat",
    "outpatient_attendances", "outpatient_dna", "outpatient_virtual",
    "theatre_sessions_planned", "theatre_sessions_run", "theatre_sessions_lost", "theatre_sessions_idle",
    "theatre_cases", "theatre_cases_day_case", "theatre_cases_inpatient", "theatre_cancellations_on_day",
    "theatre_slots_lost_no_bed", "treated_at_other_site", "theatre_utilisation", "elective_beds_occupied",
    "mean_wait_weeks_admitted_stops", "mean_wait_weeks_non_admitted_stops",
]


class WeeklyMonitor:
    """Takes the weekly snapshot and resets the weekly flow counters."""

    def __init__(self, horizon_weeks: int) -> None:
        self.horizon_weeks = horizon_weeks
        self.columns: dict[str, list] = {c: [] for c in WEEKLY_COLUMNS}

    def process(self, env: "simpy.Environment", services: "Services", opening_list: int) -> Iterator:
        """`opening_list` is the list at time 0, read before any process has run."""
        ledger = services.ledger
        start_total = opening_list
        for week in range(self.horizon_weeks):
            end = 7 * (week + 1)
            yield env.timeout(end - END_OF_WEEK_OFFSET - env.now)
            act = services.week
            over = ledger.counts_over(end, THRESHOLDS_WEEKS)
            removals = ledger.removals_weekly_rate + ledger.removals_validation
            stops_adm, stops_non = ledger.stops_admitted, ledger.stops_non_admitted
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
                "waiting_over_18w": over[18],
                "waiting_over_52w": over[52],
                "waiting_over_78w": over[78],
                "waiting_over_104w": over[104],
                "referrals_received": ledger.clock_starts + ledger.referrals_diverted,
                "referrals_diverted_ag": ledger.referrals_diverted,
                "decisions_to_treat": ledger.decisions_to_treat,
                "outpatient_attendances": act.outpatient_attendances,
                "outpatient_dna": act.outpatient_dna,
                "outpatient_virtual": act.outpatient_virtual,
                "theatre_sessions_planned": act.theatre_sessions_planned,
                "theatre_sessions_run": act.theatre_sessions_run,
                "theatre_sessions_lost": act.theatre_sessions_lost,
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
            }
            for name, value in row.items():
                self.columns[name].append(value)
            start_total = ledger.waiting_total
            ledger.reset_week()
            services.week = WeeklyActivity()
