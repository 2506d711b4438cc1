"""Replications: run the model N times with streams keyed by (seed, replication) and gather tidy tables."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import pandas as pd

from sim.config import Scenario
from sim.model import ReplicationResult, run_single


@dataclasses.dataclass
class ExperimentResult:
    scenario: Scenario
    seed: int
    replications: int
    weekly: pd.DataFrame
    waits_by_priority: pd.DataFrame
    pathways_simulated: int
    wall_seconds: float


def run_replications(scenario: Scenario, replications: int | None = None, seed: int | None = None,
                     on_done: Callable[[ReplicationResult, int], None] | None = None) -> ExperimentResult:
    """Run replications 0..N-1 sequentially. Replication r uses the same streams in every scenario."""
    n = scenario.run.replications if replications is None else replications
    s = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    results = []
    for r in range(n):
        res = run_single(scenario, r, seed=s)
        results.append(res)
        if on_done:
            on_done(res, n)
    return ExperimentResult(
        scenario=scenario, seed=s, replications=n,
        weekly=pd.concat([r.weekly for r in results], ignore_index=True),
        waits_by_priority=pd.concat([r.waits_by_priority for r in results], ignore_index=True),
        pathways_simulated=sum(r.pathways_simulated for r in results),
        wall_seconds=time.perf_counter() - t0,
    )
