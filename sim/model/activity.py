"""The week's activity counters: one long-lived object the services count into and the monitor resets each Sunday.

Every field is a column of weekly.csv with the same name, in field order, so a new counted measure is one field here
plus the code that counts it. A field's metadata can round its value (`decimals`), give its value another form
(`as_column`), spread an array over one column per label (`labels`, named by the monitor), keep it out of the
table (`column=False`: a numerator of a derived column, or counts the monitor reports elsewhere), or show it only in
scenarios that have a mechanism (`only_with`, a scenario section: a scenario without it writes the table it wrote
before the mechanism existed).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


def _counter(default: float = 0, *, decimals: int | None = None,
             as_column: Callable[[Any], Any] | None = None) -> Any:
    """A counter shown as its own column of weekly.csv."""
    return dataclasses.field(default=default, metadata={"column": True, "decimals": decimals, "as_column": as_column})


def _counter_with(section: str) -> Any:
    """A counter shown as a column only when the scenario has the section `section` (see `activity_columns`)."""
    return dataclasses.field(default=0, metadata={"column": True, "decimals": None, "as_column": None,
                                                  "only_with": section})


def _internal(default: float = 0) -> Any:
    """A counter the monitor uses but does not show as a column of its own."""
    return dataclasses.field(default=default, metadata={"column": False})


def _by_label(labels: str, prefix: str, as_column: Callable[[Any], Any] | None = None) -> Any:
    """An array of counters shown as one column per label, `<prefix>_<label>` (`labels` names the monitor's list)."""
    return dataclasses.field(default=None, metadata={"column": True, "labels": labels, "prefix": prefix,
                                                     "as_column": as_column})


def _by_label_internal() -> Any:
    return dataclasses.field(default=None, metadata={"column": False})


def _target_column(value: float) -> float:
    """A weekly target is shown to the whole dose, and as missing in weeks without one."""
    return round(value) if value else math.nan


def _per_day(value: float) -> float:
    """Person-days in the week shown as people present on an average day."""
    return round(float(value) / 7, 1)


@dataclasses.dataclass(eq=False)
class WeeklyActivity:
    """Service activity counted during one week. Reset in place each week, never replaced: a service may keep it."""

    n_staff_groups: int = dataclasses.field(default=0, metadata={"column": False, "size": True})
    n_cohorts: int = dataclasses.field(default=0, metadata={"column": False, "size": True})
    n_centre_kinds: int = dataclasses.field(default=0, metadata={"column": False, "size": True})
    outpatient_attendances: int = _counter()
    outpatient_dna: int = _counter()
    outpatient_virtual: int = _counter()
    theatre_sessions_planned: int = _counter()
    theatre_sessions_run: int = _counter()
    theatre_sessions_idle: int = _counter()
    sessions_lost_covid: int = _counter()
    sessions_lost_staff: int = _counter()
    sessions_lost_cancelled: int = _counter()
    sessions_lost_no_bed: float = _counter(0.0, decimals=3)    # session-equivalents of minutes lost for want of a bed
    theatre_cases: int = _counter()
    theatre_cases_inpatient: int = _counter()
    theatre_cancellations_on_day: int = _counter()
    theatre_slots_lost_no_bed: int = _counter()
    treated_at_other_site: int = _counter()
    theatre_minutes_booked: float = _internal(0.0)
    theatre_minutes_available: float = _internal(0.0)
    hub_sessions_run: int = _counter()
    hub_cases: int = _counter()
    theatre_sessions_weekend_planned: int = _counter()
    independent_sector_sessions_planned: int = _counter()
    independent_sector_sessions_run: int = _counter()
    independent_sector_cases: int = _counter()
    elective_bed_days: float = _counter(0.0, decimals=1)
    staff_redeployed_to_vaccination: int = _counter()
    vaccinations: int = _counter()
    vaccinations_first_dose: int = _counter()
    vaccinations_second_dose: int = _counter()
    vaccinations_by_kind: list[int] = _by_label("centre_kinds", prefix="vaccinations")
    vaccination_dna: int = _counter()
    vaccination_capacity: int = _counter()
    vaccination_target: float = _counter(0.0, as_column=_target_column)
    vaccination_wait_minutes_total: float = _internal(0.0)    # Erlang C wait x doses, at centre-days below saturation
    vaccination_wait_doses: int = _internal()                  # the doses that wait total is over
    vaccination_saturated_centre_days: int = _counter_with("vaccination_queue_waits")   # attendees >= capacity
    vaccination_station_hours: float = _counter(0.0, decimals=1)
    staff_present: np.ndarray = _by_label("staff_groups", prefix="staff_present",
                                                    as_column=_per_day)       # person-days by staff group
    vaccinations_by_cohort_first: np.ndarray = _by_label_internal()
    vaccinations_by_cohort_second: np.ndarray = _by_label_internal()
    deferrals_outpatient: int = _counter_with("patient_choice")       # declined their first outpatient date
    deferrals_operation: int = _counter_with("patient_choice")        # declined their first operation date
    outpatient_further_visits_needed: int = _counter_with("further_outpatient_visits")  # attended, not decided
    scarce_resource_cases: int = _counter_with("scarce_resource")     # complex cases treated
    scarce_resource_cases_parked: int = _counter_with("scarce_resource")  # complex cases parked to next week
    outpatient_first_slots_offered: int = _counter_with("outpatient_follow_ups")   # whole slots given to firsts
    outpatient_followup_attendances: int = _counter_with("outpatient_follow_ups")  # attended, virtual included
    outpatient_followup_virtual: int = _counter_with("outpatient_follow_ups")
    outpatient_followup_dna: int = _counter_with("outpatient_follow_ups")          # slot used, booked again
    pifu_followups_offered: int = _counter_with("outpatient_follow_ups")   # follow-ups moved to PIFU this week
    pifu_followups_requested: int = _counter_with("outpatient_follow_ups")  # of those, the ones patients will ask for

    def __post_init__(self) -> None:
        self.staff_present = np.zeros(self.n_staff_groups, dtype=np.int64)
        self.vaccinations_by_kind = [0] * self.n_centre_kinds       # a list: counted one centre at a time
        self.vaccinations_by_cohort_first = np.zeros(self.n_cohorts, dtype=np.int64)
        self.vaccinations_by_cohort_second = np.zeros(self.n_cohorts, dtype=np.int64)

    def add_counts(self, names: tuple[str, ...], counts: list[int]) -> None:
        """Add each of `counts` to the integer counter of the same place in `names` (a compiled service's tallies,
        which come back as one array in a fixed order)."""
        for name, count in zip(names, counts, strict=True):
            if count:
                setattr(self, name, getattr(self, name) + count)

    def reset(self) -> None:
        """Zero every counter in place, arrays included, for the next week."""
        for name, default in _resettable_fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value[:] = 0
            elif isinstance(value, list):
                value[:] = [0] * len(value)
            else:
                setattr(self, name, default)


def activity_columns(week: WeeklyActivity, labels: dict[str, list[str]],
                     sections: frozenset[str] = frozenset()) -> Iterator[tuple[str, str, Any]]:
    """(counter, column, value) for every column the week's counters make, in field order; a counter `only_with` a
    scenario section only when that section is among `sections`."""
    for name, meta in _shown_fields(type(week), sections):
        value = getattr(week, name)
        show = meta.get("as_column")
        if "labels" in meta:
            for label, v in zip(labels[meta["labels"]], value, strict=True):
                yield name, f"{meta['prefix']}_{label}", show(v) if show else v
            continue
        if meta.get("decimals") is not None:
            value = round(value, meta["decimals"])
        yield name, name, show(value) if show else value


# The fields and their metadata are the class's, so they are worked out once per class (a test adds a field in a
# subclass), not every week of every replication.
_SHOWN_FIELDS: dict[tuple[type, frozenset[str]], tuple[tuple[str, Mapping[str, Any]], ...]] = {}
_RESETTABLE_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _shown_fields(week_type: type, sections: frozenset[str]) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """(name, metadata) of the counters shown as columns with these scenario sections, in field order."""
    key = (week_type, sections)
    if key not in _SHOWN_FIELDS:
        _SHOWN_FIELDS[key] = tuple((f.name, f.metadata) for f in dataclasses.fields(week_type)
                                   if f.metadata.get("column") and f.metadata.get("only_with", "") in sections | {""})
    return _SHOWN_FIELDS[key]


def _resettable_fields(week_type: type) -> tuple[tuple[str, Any], ...]:
    """(name, default) of the fields `reset` zeroes: all but the sizes."""
    if week_type not in _RESETTABLE_FIELDS:
        _RESETTABLE_FIELDS[week_type] = tuple((f.name, f.default) for f in dataclasses.fields(week_type)
                                              if not f.metadata.get("size"))
    return _RESETTABLE_FIELDS[week_type]
