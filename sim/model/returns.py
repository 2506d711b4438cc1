"""Patients off a list for a while with their clock running, and the day each comes back to their place.

A patient who defers a date (sim.scenario.schema.PatientChoice), goes for a diagnostic test before a further
outpatient visit (FurtherOutpatientVisits), or whose complex operation waits for next week's scarce resource
(ScarceResource) leaves the heap they were booked from without using a slot, and their key is filed here under the
day they return. On that day, before clinics and theatres book, the key goes back into the same heap, so they keep
their place by the booking rule and nobody is scanned again while away. Their status never changes while away, so
the ledger keeps counting them as waiting and removals still find them (a removed patient's key is dropped when it
reaches the top of its heap, as for any patient who left by another route).
"""
from __future__ import annotations

import heapq

import simpy

from sim.model.day import RETURNS, ServiceProcess, wait_until
from sim.model.waiting_list import BookingQueues


class ReturnSchedule:
    """Keys to push back into their heaps, by day; registered as a service only when a scenario has a mechanism.

    A first-appointment returner goes back to a heap held as a Python list (OutpatientQueues.returning); an admitted
    returner to heap `heap_index` of the admitted lists (BookingQueues)."""

    def __init__(self, horizon_days: int, admitted_queues: BookingQueues) -> None:
        self.horizon_days = horizon_days
        self.admitted_queues = admitted_queues
        self.due: dict[int, list[tuple[list[int], int]]] = {}
        self.due_admitted: dict[int, list[tuple[int, int]]] = {}
        self.away = 0                      # patients off their list right now

    def file(self, day: int, heap: list[int], key: int) -> None:
        """`key` goes back into `heap` on `day` (after the horizon: never, but they stay on the list)."""
        self.due.setdefault(day, []).append((heap, key))
        self.away += 1

    def file_admitted(self, day: int, heap_index: int, key: int) -> None:
        """`key` goes back into admitted heap `heap_index` on `day`."""
        self.due_admitted.setdefault(day, []).append((heap_index, key))
        self.away += 1

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each day, before any booking: the day's returners rejoin their heaps."""
        push = heapq.heappush
        for day in range(self.horizon_days):
            yield from wait_until(env, day, RETURNS)
            returning = self.due.pop(day, None)
            if returning:
                for heap, key in returning:
                    push(heap, key)
                self.away -= len(returning)
            returning_admitted = self.due_admitted.pop(day, None)
            if returning_admitted:
                for heap_index, key in returning_admitted:
                    self.admitted_queues.push_key(heap_index, key)
                self.away -= len(returning_admitted)
