"""Removals from the list other than treatment: a weekly rate by weeks waited, and validation rounds.

Each pathway's removal time is drawn when it is created (`sim.model.referrals._removal_weeks`) and
filed in a weekly bucket; the weekly process removes those still waiting. Validation rounds, on dates
in the scenario, remove a share of everyone waiting longer than a threshold at that date.
"""
from __future__ import annotations

import datetime as dt
from array import array

import numpy as np
import simpy

from sim.core.compiled import njit
from sim.core.rng import Streams
from sim.model.day import REMOVALS, SUNDAY_OF_WEEK, VALIDATION, ServiceProcess, wait_until
from sim.model.patients import WAITING_ADMITTED, WAITING_OUTPATIENT, PatientTable
from sim.model.waiting_list import RttLedger
from sim.scenario.schema import Scenario


class RemovalSchedule:
    """Weekly buckets of patient ids due for removal (if still waiting then), swept on Sunday evenings."""

    def __init__(self, horizon_weeks: int, ledger: RttLedger) -> None:
        self.buckets = [array("i") for _ in range(horizon_weeks)]
        self.ledger = ledger

    def add(self, ids: np.ndarray, removal_day: np.ndarray) -> None:
        """File pathways `ids` under the week of their removal day (those due before the horizon), in id order
        within a week."""
        filed, week_starts = _grouped_by_week(ids, removal_day, len(self.buckets))
        for week in np.flatnonzero(np.diff(week_starts)).tolist():
            self.buckets[week].frombytes(filed[week_starts[week]:week_starts[week + 1]].tobytes())

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each Sunday: remove the week's due patients who are still waiting."""
        for week, bucket in enumerate(self.buckets):
            sunday = 7 * week + SUNDAY_OF_WEEK
            yield from wait_until(env, sunday, REMOVALS)
            due = np.frombuffer(bucket.tobytes(), dtype=np.int32).astype(np.int64)
            self.ledger.remove_batch(due, sunday, validation=False)
            self.buckets[week] = array("i")       # free memory as we go


class ValidationRounds:
    """Clinical validation of the list on given dates."""

    def __init__(self, scenario: Scenario, streams: Streams, patients: PatientTable, ledger: RttLedger) -> None:
        self.rounds = scenario.removals.validation_rounds
        self.start: dt.date = scenario.start_date
        self.horizon_days = scenario.horizon_days
        self.streams = streams
        self.patients = patients
        self.ledger = ledger

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """On each round's date: remove a share of those waiting longer than the round's threshold."""
        for k, rnd in enumerate(sorted(self.rounds, key=lambda r: r.date)):
            day = (rnd.date - self.start).days
            if day >= self.horizon_days:
                return                                  # after the horizon: not reached
            yield from wait_until(env, day, VALIDATION)
            p = self.patients
            status = p.status.copy()
            clock_start = p.clock_start_day
            waiting = (status == WAITING_OUTPATIENT) | (status == WAITING_ADMITTED)
            long_wait = waiting & (day - clock_start > 7 * rnd.min_weeks_waited)
            candidates = np.flatnonzero(long_wait)
            # One uniform per patient id (not per candidate): a patient validated in one scenario is
            # validated in every scenario where they are still waiting (common random numbers).
            u = self.streams.for_unit("validation", f"round-{k}").random(len(status))
            chosen = candidates[u[candidates] < rnd.share_removed]
            self.ledger.remove_batch(chosen.astype(np.int64), day, validation=True)


@njit
def _grouped_by_week(ids: np.ndarray, removal_day: np.ndarray, n_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids due before week `n_weeks` (a finite removal day below 7 x n_weeks) as int32, grouped by week in one
    counting pass (a stable sort: in their order within a week), and where each week's start (n_weeks + 1 bounds).

    Removal days are whole days (drawn by `sim.model.referrals.draw_pathways`), so the integer division gives the
    week exactly; a day before day 0 counts in week 0."""
    n = len(ids)
    week_of = np.empty(n, dtype=np.int64)
    week_starts = np.zeros(n_weeks + 1, dtype=np.int64)
    for i in range(n):
        day = removal_day[i]
        if np.isfinite(day) and day < 7 * n_weeks:
            week = int(day) // 7
            week = week if week > 0 else 0
            week_of[i] = week
            week_starts[week + 1] += 1
        else:
            week_of[i] = -1
    for week in range(n_weeks):
        week_starts[week + 1] += week_starts[week]
    filed = np.empty(week_starts[n_weeks], dtype=np.int32)
    next_slot = week_starts[:n_weeks].copy()
    for i in range(n):
        week = week_of[i]
        if week >= 0:
            filed[next_slot[week]] = ids[i]
            next_slot[week] += 1
    return filed, week_starts
