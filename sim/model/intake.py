"""New pathways onto the lists: the patient table, the ledger, the removal schedule and the right queue.

The one way in, so that every pathway is counted by the ledger and filed for removal the same way whichever route it
came by: the start list at time 0 (`add_start_list`), and referrals, filed ahead in blocks of days (`file_ahead`)
and joining the lists on their day (`referrals_arrive`).
"""
from __future__ import annotations

import numpy as np

from sim.model.patients import NOT_ON_LIST, WAITING_ADMITTED, WAITING_OUTPATIENT
from sim.model.removals import RemovalSchedule
from sim.model.state import SharedState
from sim.model.waiting_list import MAX_PATIENTS


class PathwayIntake:
    """Puts batches of new pathways on the lists (outpatient or admitted stage by status)."""

    def __init__(self, state: SharedState, removals: RemovalSchedule) -> None:
        self.state = state
        self.removals = removals

    def _register(self, attrs: dict[str, np.ndarray], status: int | np.ndarray) -> tuple[np.ndarray, dict]:
        """Append a batch drawn by `sim.model.referrals.draw_pathways` to the patient table and file its removal
        dates; returns the new ids and the columns without the removal dates."""
        attrs = dict(attrs)
        removal_day = attrs.pop("removal_day")
        n = len(attrs["clock_start_day"])
        if self.state.patients.n + n > MAX_PATIENTS:
            raise OverflowError(f"more than {MAX_PATIENTS:,} pathways in one replication")
        ids = self.state.patients.append(status, **attrs)
        self.removals.add(ids, removal_day)
        return ids, attrs

    def add_start_list(self, attrs: dict[str, np.ndarray], status: np.ndarray) -> None:
        """The start list: pathways already waiting at time 0, at the stage `status` gives (not clock starts)."""
        state = self.state
        ids, attrs = self._register(attrs, status)
        state.ledger.start_clocks(attrs["clock_start_day"], attrs["specialty"], status, attrs["referred_site"])
        site, spec = attrs["referred_site"].astype(np.int64), attrs["specialty"].astype(np.int64)
        cs, priority = attrs["clock_start_day"], attrs["priority"]
        waiting_op = status == WAITING_OUTPATIENT
        if waiting_op.any():
            state.outpatient_queues.add_batch(ids[waiting_op], site[waiting_op], spec[waiting_op],
                                              priority[waiting_op], cs[waiting_op])
        on_admitted = status == WAITING_ADMITTED
        if on_admitted.any():
            # Start-list patients: their decision-to-treat date is unknown, so it is taken as the clock start.
            pools = site if state.pool_by_site else np.zeros(len(ids), dtype=np.int64)
            queues = state.admitted_queues
            keys = queues.keys_for_batch(ids[on_admitted], cs[on_admitted], cs[on_admitted], priority[on_admitted])
            queues.push_grouped(pools[on_admitted], spec[on_admitted],
                                attrs["hub_eligible"][on_admitted].astype(np.int64), keys)

    def file_ahead(self, attrs: dict[str, np.ndarray]) -> np.ndarray:
        """Put a block of referrals still to come in the patient table (on no list yet) and file their removal dates;
        returns their ids. Each day's join the lists on their day through `referrals_arrive`.

        The same ids, columns and removal buckets as adding each day's on its day: ids are given in the order the
        days come, a removal is never due before its clock start, and until their day they are on no list, so no
        service sees them (each reads only patients waiting at a stage)."""
        return self._register(attrs, NOT_ON_LIST)[0]

    def referrals_arrive(self, ids: np.ndarray, attrs: dict[str, np.ndarray]) -> None:
        """A day's referrals filed by `file_ahead` (ids in one run, their columns in `attrs`) join the outpatient
        lists and count as clock starts."""
        state = self.state
        first, stop = int(ids[0]), int(ids[-1]) + 1
        state.patients.status[first:stop] = WAITING_OUTPATIENT
        site, spec = attrs["referred_site"], attrs["specialty"]
        state.ledger.start_clocks(attrs["clock_start_day"], spec, np.full(len(ids), WAITING_OUTPATIENT), site)
        state.ledger.count_clock_starts(site)
        state.outpatient_queues.add_batch(ids, site.astype(np.int64), spec.astype(np.int64), attrs["priority"],
                                          attrs["clock_start_day"])
