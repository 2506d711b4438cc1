"""Whole numbers split by shares: the divisor method every timetable in the project is apportioned with.

Here, below the scenario layer, because both the model (a suite's weekly timetable) and the scenario build
(the RTT calibration's weekday spread) need the same rule.
"""
from __future__ import annotations

import math


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


def largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Whole counts proportional to `weights` that add up to `total` exactly (Hamilton's largest remainders; ties to
    the earlier weight).

    For splitting counts of patients once (a start list's bands), where nothing is added later and the Alabama
    paradox that rules it out for timetables cannot arise.
    """
    exact = [total * w / sum(weights) for w in weights]
    counts = [math.floor(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))[: total - sum(counts)]:
        counts[i] += 1
    return counts
