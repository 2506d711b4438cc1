"""Replications: run the model N times with streams keyed by (seed, replication) and gather tidy tables.

Replication r of every scenario uses the same streams (common random numbers), so scenarios compared with
the same seed are paired replication by replication. `jobs` > 1 runs replications in local processes;
results are identical to a sequential run because each replication's streams depend only on (seed, r).
"""
from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor
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
    by_specialty: pd.DataFrame
    vaccination_by_cohort: pd.DataFrame
    waits_by_priority: pd.DataFrame
    pathways_simulated: int
    wall_seconds: float


def run_replications(scenario: Scenario, replications: int | None = None, seed: int | None = None,
                     on_done: Callable[[ReplicationResult, int], None] | None = None,
                     jobs: int = 1) -> ExperimentResult:
    """Run replications 0..N-1, sequentially or in `jobs` local processes."""
    n = scenario.run.replications if replications is None else replications
    s = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    results: list[ReplicationResult] = []
    if jobs > 1 and n > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, n)) as pool:
            futures = [pool.submit(run_single, scenario, r, s) for r in range(n)]
            for fut in futures:                       # in replication order
                res = fut.result()
                results.append(res)
                if on_done:
                    on_done(res, n)
    else:
        for r in range(n):
            res = run_single(scenario, r, seed=s)
            results.append(res)
            if on_done:
                on_done(res, n)
    return ExperimentResult(
        scenario=scenario, seed=s, replications=n,
        weekly=pd.concat([r.weekly for r in results], ignore_index=True),
        by_specialty=pd.concat([r.by_specialty for r in results], ignore_index=True),
        vaccination_by_cohort=pd.concat([r.vaccination_by_cohort for r in results], ignore_index=True),
        waits_by_priority=pd.concat([r.waits_by_priority for r in results], ignore_index=True),
        pathways_simulated=sum(r.pathways_simulated for r in results),
        wall_seconds=time.perf_counter() - t0,
    )
