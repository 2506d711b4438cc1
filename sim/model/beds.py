"""Elective beds per site: an inpatient case occupies one bed for its length of stay."""
from __future__ import annotations

import numpy as np

from sim.core.compiled import njit
from sim.core.heaps import pop_min, sift_up


class ElectiveBeds:
    """A site's elective bed base, held as a heap of discharge times (days) in an array, so the compiled session loop
    (sim.model.theatres) admits into it directly. `capacity` may fall below the base (Covid takes beds), never above."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.discharges = np.empty(max(capacity, 1), dtype=np.float64)   # the heap: its first `occupancy[0]` items
        self.occupancy = np.zeros(1, dtype=np.int64)

    def try_admit(self, now: float, los_days: float) -> bool:
        """Take a bed from now for los_days if one is free; False means the slot is lost."""
        return bool(admit(self.discharges, self.occupancy, self.capacity, now, los_days))

    def occupied(self, now: float) -> int:
        return int(release_until(self.discharges, self.occupancy, now))


@njit
def release_until(discharges: np.ndarray, occupancy: np.ndarray, now: float) -> int:
    """Free the beds of everyone discharged by `now`; returns how many beds are still occupied."""
    n = occupancy[0]
    while n and discharges[0] <= now:
        pop_min(discharges, n)
        n -= 1
    occupancy[0] = n
    return n


@njit
def admit(discharges: np.ndarray, occupancy: np.ndarray, capacity: int, now: float, los_days: float) -> bool:
    """Take a bed from `now` for `los_days` if one of `capacity` is free."""
    n = release_until(discharges, occupancy, now)
    if n >= capacity:
        return False
    discharges[n] = now + los_days
    sift_up(discharges, n)
    occupancy[0] = n + 1
    return True
