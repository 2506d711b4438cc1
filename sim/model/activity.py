"""The week's activity counters: one long-lived object the services count into and the monitor resets each Sunday."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(eq=False)
class WeeklyActivity:
    """Service activity counted during one week. Reset in place each week, never replaced: a service may keep it."""

    n_staff_groups: int = dataclasses.field(default=0, metadata={"size": True})
    n_cohorts: int = dataclasses.field(default=0, metadata={"size": True})
    n_centre_kinds: int = dataclasses.field(default=0, metadata={"size": True})
    outpatient_attendances: int = 0
    outpatient_dna: int = 0
    outpatient_virtual: int = 0
    theatre_sessions_planned: int = 0
    theatre_sessions_run: int = 0
    theatre_sessions_idle: int = 0
    sessions_lost_covid: int = 0
    sessions_lost_staff: int = 0
    sessions_lost_cancelled: int = 0
    sessions_lost_no_bed: float = 0.0          # session-equivalents of minutes lost for want of a bed
    theatre_cases: int = 0
    theatre_cases_inpatient: int = 0
    theatre_cancellations_on_day: int = 0
    theatre_slots_lost_no_bed: int = 0
    treated_at_other_site: int = 0
    theatre_minutes_booked: float = 0.0
    theatre_minutes_available: float = 0.0
    hub_sessions_run: int = 0
    hub_cases: int = 0
    theatre_sessions_weekend_planned: int = 0
    independent_sector_sessions_planned: int = 0
    independent_sector_sessions_run: int = 0
    independent_sector_cases: int = 0
    elective_bed_days: float = 0.0
    vaccination_station_hours: float = 0.0
    staff_redeployed_to_vaccination: int = 0
    vaccinations: int = 0
    vaccinations_first: int = 0
    vaccinations_second: int = 0
    vaccination_dna: int = 0
    vaccination_capacity: int = 0
    vaccination_target: float = 0.0
    vaccination_wait_minutes_total: float = 0.0
    staff_present: np.ndarray = dataclasses.field(default=None)        # person-days by staff group
    vaccinations_by_kind: list[int] = dataclasses.field(default=None)
    vaccinations_by_cohort_first: np.ndarray = dataclasses.field(default=None)
    vaccinations_by_cohort_second: np.ndarray = dataclasses.field(default=None)

    def __post_init__(self) -> None:
        self.staff_present = np.zeros(self.n_staff_groups, dtype=np.int64)
        self.vaccinations_by_kind = [0] * self.n_centre_kinds
        self.vaccinations_by_cohort_first = np.zeros(self.n_cohorts, dtype=np.int64)
        self.vaccinations_by_cohort_second = np.zeros(self.n_cohorts, dtype=np.int64)

    def reset(self) -> None:
        """Zero every counter in place, arrays and lists included, for the next week."""
        for field in dataclasses.fields(self):
            if field.metadata.get("size"):
                continue
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value[:] = 0
            elif isinstance(value, list):
                value[:] = [0] * len(value)
            else:
                setattr(self, field.name, field.default)
