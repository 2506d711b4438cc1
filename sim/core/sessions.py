"""How a theatre session books cases from the head of its list: the one rule the model runs and capacity is sized by.

A session always books the first case at the head of its list, even one that overruns; after that it books each
next case while that case's minutes fit in what is left of the bookable minutes, and closes at the first that does
not fit (that case stays at the head for the next session). Every booked case costs its minutes plus a turnaround,
whether it then goes ahead, is cancelled on the day or finds no bed: the slot was planned either way.

Here, below the scenario layer, so that the model's theatres (sim.model.theatres, whose compiled session loop calls
`fits`), the RTT calibration (sim.scenario.calibration) and the derivation scripts (scripts/) all use this code
rather than copies of the rule.
"""
from __future__ import annotations

from collections.abc import Iterable

from sim.core.compiled import njit


@njit
def fits(cases_booked: int, minutes_used: float, case_minutes: float, bookable_minutes: float) -> bool:
    """Whether the next case may be booked: the first always; any other only if its minutes fit in what is left."""
    return cases_booked == 0 or minutes_used + case_minutes <= bookable_minutes


class SessionBooking:
    """The cases a session has booked so far and the minutes they take, turnarounds included.

    One object serves a run of sessions of the same length: `open` starts each one empty.
    """

    __slots__ = ("bookable_minutes", "turnaround_minutes", "cases", "minutes_used")

    def __init__(self, bookable_minutes: float, turnaround_minutes: float) -> None:
        self.bookable_minutes = bookable_minutes
        self.turnaround_minutes = turnaround_minutes
        self.cases = 0
        self.minutes_used = 0.0

    def open(self) -> None:
        """Start the next session, with nothing booked."""
        self.cases = 0
        self.minutes_used = 0.0

    def books(self, case_minutes: float) -> bool:
        """Book the next case if the rule lets it in (the first always fits); False closes the session."""
        if not fits(self.cases, self.minutes_used, case_minutes, self.bookable_minutes):
            return False
        self.cases += 1
        self.minutes_used += case_minutes + self.turnaround_minutes
        return True


def cases_per_session(case_minutes: Iterable[float], bookable_minutes: float,
                      turnaround_minutes: float) -> list[int]:
    """Cases booked by each session when sessions fill one after another from one stream of cases.

    The last session, cut short by the end of the stream rather than by a case that did not fit, is left out.
    """
    counts: list[int] = []
    session = SessionBooking(bookable_minutes, turnaround_minutes)
    for minutes in case_minutes:
        if not session.books(minutes):
            counts.append(session.cases)
            session.open()
            session.books(minutes)
    return counts


def mean_cases_per_session(case_minutes: Iterable[float], bookable_minutes: float,
                           turnaround_minutes: float) -> float | None:
    """Mean cases a full session books over a stream of cases (None if the stream fills no session)."""
    counts = cases_per_session(case_minutes, bookable_minutes, turnaround_minutes)
    return sum(counts) / len(counts) if counts else None
