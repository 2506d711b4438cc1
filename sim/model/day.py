"""The order of a model day: one table of named time slots, earliest first, and the wait every service starts with.

A service acts at its slot's time (model days; 0.5 is noon) and nowhere else, so this table, not the order the
processes are registered in, decides who acts before whom within a day: returners are back on their lists before
the long waiters are re-ranked, and both before any booking; Covid sets beds and closed sessions
before the staff roster is drawn, vaccination centres take their staff before clinics and theatres, surgical hubs
staff their sessions before the main theatres, and the monitor records the week after everything else.

Services that share a slot act in the order their waits were scheduled: on the first day, the order of
`Services.processes()`; afterwards, whichever went to sleep first wakes first. Validation rounds and the Sunday
removal sweep share 0.9: on a Sunday with a validation round either can go first.

The times are part of reproducibility: a case's bed is taken at its session's time, and the order of services
decides who gets a list's head and a roster's cover. Moving a slot moves results.
"""
from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import simpy


@dataclass(frozen=True)
class Slot:
    """A named time of day at which one kind of service acts."""

    name: str
    day_fraction: float          # time within the day, in days (0 = midnight)
    acts: str                    # what happens then


REFERRALS = Slot("referrals", 0.0, "the day's referrals arrive and join the outpatient lists")
RETURNS = Slot("returns", 0.02, "patients back from a deferral or a diagnostic wait rejoin their lists")
LONG_WAITS = Slot("long_waits", 0.03, "Mondays and a long-wait step's date: routine patients past the step's "
                                     "weeks move ahead of the other routine patients on the admitted lists")
COVID = Slot("covid", 0.05, "Covid pressure sets each suite's beds, closed sessions and productivity")
STAFF = Slot("staff", 0.1, "the staff present today are drawn by roster row and group")
VACCINATION = Slot("vaccination", 0.2, "vaccination centres take their staff and give the day's doses")
CLINICS = Slot("clinics", 0.3, "first outpatient clinics book from the outpatient lists")
HUB_THEATRES = Slot("hub_theatres", 0.45, "surgical hubs run their sessions, staffing before the main theatres")
MAIN_THEATRES = Slot("main_theatres", 0.5, "main theatres run their sessions")
VALIDATION = Slot("validation", 0.9, "on a round's date, validation removes a share of the long waiters")
REMOVALS = Slot("removals", 0.9, "Sundays: the week's removals other than treatment")
MONITOR = Slot("monitor", 0.999, "Sundays: the week's row is recorded and its counters reset")

DAY_ORDER: tuple[Slot, ...] = (REFERRALS, RETURNS, LONG_WAITS, COVID, STAFF, VACCINATION, CLINICS, HUB_THEATRES,
                               MAIN_THEATRES, VALIDATION, REMOVALS, MONITOR)

SUNDAY_OF_WEEK = 6               # weekly services act on the last day of each model week

ServiceProcess = Generator[simpy.Event, Any, None]   # a service's process: the generator SimPy runs


class Service(Protocol):
    """A service with a process: registered once per replication, it acts at its slot each day (or week)."""

    def process(self, env: simpy.Environment) -> ServiceProcess: ...


def slot_time(day: int, slot: Slot) -> float:
    """The model time at which `slot` falls on `day`."""
    return day + slot.day_fraction


def wait_until(env: simpy.Environment, day: int, slot: Slot) -> Iterator[simpy.Event]:
    """Sleep until `slot` on `day` (use with `yield from`); no wait if that time has come already."""
    at = slot_time(day, slot)
    if env.now < at:
        yield env.timeout(at - env.now)
