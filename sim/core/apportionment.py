"""Whole numbers split by shares: the divisor method every timetable in the project is apportioned with.

Here, below the scenario layer, because both the model (a suite's weekly timetable) and the scenario build
(the RTT calibration's weekday spread) need the same rule.
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
