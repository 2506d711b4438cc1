"""The state the model's services share: the patients, their lists, the RTT ledger and the week's counters.

Built once per replication by the composition root (`sim.model.replication.Services`) and handed to the services
that need it, each with its named collaborators (a theatre suite's staff roster, the suites Covid acts on). Frozen:
no field is ever replaced, so a service may keep any of them for the whole run (the week's counters are reset in
place each Sunday, see `WeeklyActivity.reset`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sim.model.activity import WeeklyActivity
from sim.model.patients import PatientTable
from sim.model.waiting_list import BookingQueues, OutpatientQueues, RttLedger


@dataclass(frozen=True, eq=False)
class SharedState:
    """What more than one service reads or changes during a replication."""

    patients: PatientTable
    ledger: RttLedger                   # every change of a pathway's status, and the week's flows
    outpatient_queues: OutpatientQueues  # first appointments, by referred site and specialty
    admitted_queues: BookingQueues      # decisions to treat, by pool and specialty
    week: WeeklyActivity                # the week's activity counters
    pool_by_site: bool                  # admitted lists per site (`site` pooling) or one for the ICS

    def admitted_pool(self, site_index: int) -> int:
        """The admitted list a site's clinics add to and its theatres book from."""
        return site_index if self.pool_by_site else 0
