"""Named random streams: one per stochastic input, keyed by (experiment seed, replication, stream id).

A fixed registry of ids keeps streams stable when new ones are added (new names take spare ids), so
replication r of every scenario sees the same referrals: common random numbers across scenarios.
"""
from __future__ import annotations

import zlib

import numpy as np

# Never renumber: ids are part of reproducibility. Add new streams at the end.
STREAM_IDS: dict[str, int] = {
    "referral_arrivals": 1,
    "referral_attributes": 2,
    "priority_mix": 3,
    "case_duration": 4,
    "length_of_stay": 5,
    "outpatient_dna": 6,
    "cancellation": 7,
    "removal": 8,
    "validation": 9,
    "start_list": 10,
    "session_cancellation": 11,
    "advice_and_guidance": 12,
    "parameter_uncertainty": 13,
    "covid": 14,
    "staff_absence": 15,
    "vaccination": 16,
    "spare_17": 17,                       # was hub_session_cancellation; per-suite streams replaced it
    "referral_suppression": 18,
    "deferred_demand": 19,
    "patient_deferral": 20,               # sim.scenario.schema.PatientChoice: who defers, and for how long
    "further_visits": 21,                 # sim.scenario.schema.FurtherOutpatientVisits: who needs a second visit
    "scarce_resource": 22,                # sim.scenario.schema.ScarceResource: which cases need it
    "follow_ups": 23,                     # sim.scenario.schema.OutpatientFollowUps: how many, PIFU, DNAs, virtual
}


class Streams:
    """Lazily created independent generators for one replication."""

    def __init__(self, seed: int, replication: int) -> None:
        self.seed = int(seed)
        self.replication = int(replication)
        self._generators: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        gen = self._generators.get(name)
        if gen is None:
            if name not in STREAM_IDS:
                raise KeyError(f"unknown random stream {name!r}; register it in sim.core.rng.STREAM_IDS")
            seq = np.random.SeedSequence(self.seed, spawn_key=(self.replication, STREAM_IDS[name]))
            gen = self._generators[name] = np.random.Generator(np.random.PCG64(seq))
        return gen

    def for_unit(self, name: str, unit: str) -> np.random.Generator:
        """A stream of its own for one named unit (a theatre suite, a staff roster row): adding or removing
        another unit never shifts this one's draws, which keeps comparisons between scenarios paired."""
        key = f"{name}/{unit}"
        gen = self._generators.get(key)
        if gen is None:
            if name not in STREAM_IDS:
                raise KeyError(f"unknown random stream {name!r}; register it in sim.core.rng.STREAM_IDS")
            seq = np.random.SeedSequence(self.seed, spawn_key=(self.replication, STREAM_IDS[name],
                                                               zlib.crc32(unit.encode("utf-8"))))
            gen = self._generators[key] = np.random.Generator(np.random.PCG64(seq))
        return gen
