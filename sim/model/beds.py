"""Elective beds per site: an inpatient case occupies one bed for its length of stay."""
from __future__ import annotations

import heapq


class ElectiveBeds:
    """A site's elective bed base, held as a heap of discharge times (days)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._discharges: list[float] = []

    def release_until(self, now: float) -> None:
        heap = self._discharges
        while heap and heap[0] <= now:
            heapq.heappop(heap)

    def try_admit(self, now: float, los_days: float) -> bool:
        """Take a bed from now for los_days if one is free; False means the slot is lost."""
        self.release_until(now)
        if len(self._discharges) >= self.capacity:
            return False
        heapq.heappush(self._discharges, now + los_days)
        return True

    def occupied(self, now: float) -> int:
        self.release_until(now)
        return len(self._discharges)
