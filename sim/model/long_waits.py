"""Long waiters booked in turn: from each step's date, routine patients (P3, P4) on the admitted lists who have
waited more than the step's weeks are booked ahead of the other routine patients, still after P1 and P2.

What trusts did from 2022 against NHS England's long-wait targets (sim.scenario.schema.LongWaitBooking): clinical
priority first, then the patients who would breach the next target, in turn. On each pass day (every Monday and
each step's date, at the `long_waits` slot: after returners are back, before clinics and theatres book) the
admitted lists' cut-off day moves to the pass day less the step's weeks, and one compiled pass over every admitted
heap lowers the rank of each routine key whose clock started on or before it (to `LONG_WAIT_RANK`, between P2 and
P3) and sifts it up. Keys made or pushed back between passes (decisions to treat, patients back from a deferral)
are ranked by the same cut-off as they join (BookingQueues.keys_for_batch, push_key), so between two passes the
order is exact: a routine patient past the cut-off is booked before every routine patient not past it. The
granularity is the week: a patient who passes the step's weeks on a Tuesday is booked ahead from the next Monday.

Only the admitted lists are re-ranked: the first-appointment lists keep priority, then clock start.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import simpy

from sim.core.compiled import njit
from sim.core.heaps import sift_up
from sim.model.day import LONG_WAITS, ServiceProcess, wait_until
from sim.model.waiting_list import BookingQueues, as_long_waiter
from sim.scenario.schema import LongWaitBooking


@njit
def rank_long_waiters(heaps: Any, sizes: np.ndarray, cutoff_day: int) -> int:
    """Every admitted heap's routine keys with a clock start on or before `cutoff_day` moved to the long-wait rank,
    each sifted up as it changes; returns how many moved.

    One scan from the front of each heap: a sift-up only moves the key and its ancestors, all at positions already
    scanned, so every key is seen exactly once, and as keys only get smaller each heap stays a heap."""
    moved = 0
    for h in range(len(sizes)):
        heap = heaps[h]
        for position in range(sizes[h]):
            key = heap[position]
            ranked = as_long_waiter(key, cutoff_day)
            if ranked != key:
                heap[position] = ranked
                sift_up(heap, position)
                moved += 1
    return moved


class LongWaitRule:
    """The weekly re-ranking of the admitted lists by the long-wait step in force (a service of its own, registered
    only when the scenario has a `long_wait_booking` section)."""

    def __init__(self, section: LongWaitBooking, start_date: dt.date, horizon_days: int,
                 queues: BookingQueues) -> None:
        self.queues = queues
        self.horizon_days = horizon_days
        # (first day, weeks waited) of each step, in date order (the schema checks the order)
        self.steps = [((step.from_date - start_date).days, step.weeks_waited) for step in section.steps]
        self.moved_total = 0               # keys moved up by the passes so far (for tests and checks)

    def cutoff_day(self, day: int) -> int | None:
        """The last clock-start day of a patient booked ahead on `day`: waited more than the step's weeks means a
        clock start before `day` - 7 x weeks; None before the first step."""
        in_force = [weeks for first_day, weeks in self.steps if first_day <= day]
        if not in_force:
            return None
        return day - 7 * in_force[-1] - 1

    def pass_days(self) -> list[int]:
        """Every Monday from the first step's date on, and each step's date, within the run."""
        first = max(0, self.steps[0][0])
        mondays = range(-(-first // 7) * 7, self.horizon_days, 7)
        step_days = (d for d, _ in self.steps if 0 <= d < self.horizon_days)
        return sorted({*mondays, *step_days})

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """On each pass day: move the cut-off and re-rank the keys already on the lists."""
        queues = self.queues
        for day in self.pass_days():
            yield from wait_until(env, day, LONG_WAITS)
            cutoff = self.cutoff_day(day)
            if cutoff is None:
                continue
            queues.long_wait_cutoff_day = cutoff
            self.moved_total += int(rank_long_waiters(queues.heaps, queues.sizes, cutoff))
