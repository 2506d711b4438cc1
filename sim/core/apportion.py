"""Whole numbers in proportion to shares: the one rounding rule for splitting a count of sessions.

Used where a timetable is built (sim.model.theatres) and where one is calibrated (sim.scenario.calibration), so
both split sessions the same way.
"""
from __future__ import annotations


def apportion(total: int, shares: list[float]) -> list[int]:
    """Split a whole number of sessions by shares with Webster's (Sainte-Lague) divisor method.

    A divisor method, not largest remainders: it is house-monotone, so adding sessions to a timetable
    never takes one away from any specialty (largest remainders can: the Alabama paradox), which keeps
    "more capacity never delays clearance" true of the timetable itself.
    """
    counts = [0] * len(shares)
    for _ in range(total):
        best = max(range(len(shares)), key=lambda i: (shares[i] / (2 * counts[i] + 1), -i))
        counts[best] += 1
    return counts
