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

import numpy as np
import pandas as pd

from sim.analysis import weeks_to_clear
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
    clearance_half_width_weeks: float     # 95% CI half-width of the mean 52-week clearance (the `auto` rule's measure)


# two-sided 95% Student t quantiles by degrees of freedom (then 1.96 is within 1.5%)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t_975(df: int) -> float:
    """The 97.5% quantile of Student's t (conservative: the next smaller tabulated df)."""
    return _T975[max(k for k in _T975 if k <= max(df, 1))] if df < 120 else 1.96


def clearance_half_width(results: list[ReplicationResult], horizon_weeks: int) -> float:
    """Half-width (weeks) of the 95% confidence interval of the mean 52-week clearance over replications.

    Infinite when any replication has not cleared within the horizon: its date is only known to be later,
    so the mean cannot be pinned down (and `auto` runs to its cap, which the run then reports)."""
    v = np.array([weeks_to_clear(r.weekly["waiting_over_52w"].to_numpy()) for r in results], dtype=float)
    if len(v) < 2 or np.isnan(v).any():
        return float("inf")
    return float(t_975(len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def run_replications(scenario: Scenario, replications: int | str | None = None, seed: int | None = None,
                     on_done: Callable[[ReplicationResult, int], None] | None = None,
                     jobs: int = 1) -> ExperimentResult:
    """Run replications 0..N-1, sequentially or in `jobs` local processes; `auto` applies the stopping rule
    in RunSettings (batches of `jobs` replications at a time)."""
    n = scenario.run.replications if replications is None else replications
    s = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    results: list[ReplicationResult] = []
    if n == "auto":
        rule = scenario.run
        while len(results) < rule.max_replications:
            batch = range(len(results), min(len(results) + max(jobs, 1), rule.max_replications))
            results += _run_batch(scenario, list(batch), s, jobs, on_done, rule.max_replications)
            if (len(results) >= rule.min_replications
                    and clearance_half_width(results, scenario.horizon_weeks) <= rule.target_half_width_weeks):
                break
    else:
        results = _run_batch(scenario, list(range(n)), s, jobs, on_done, n)
    return ExperimentResult(
        scenario=scenario, seed=s, replications=len(results),
        weekly=pd.concat([r.weekly for r in results], ignore_index=True),
        by_specialty=pd.concat([r.by_specialty for r in results], ignore_index=True),
        vaccination_by_cohort=pd.concat([r.vaccination_by_cohort for r in results], ignore_index=True),
        waits_by_priority=pd.concat([r.waits_by_priority for r in results], ignore_index=True),
        pathways_simulated=sum(r.pathways_simulated for r in results),
        wall_seconds=time.perf_counter() - t0,
        clearance_half_width_weeks=clearance_half_width(results, scenario.horizon_weeks),
    )


def _run_batch(scenario: Scenario, reps: list[int], seed: int, jobs: int,
               on_done: Callable[[ReplicationResult, int], None] | None, of: int) -> list[ReplicationResult]:
    """Replications `reps` in order; in `jobs` local processes when more than one."""
    out: list[ReplicationResult] = []
    if jobs > 1 and len(reps) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(reps))) as pool:
            for fut in [pool.submit(run_single, scenario, r, seed) for r in reps]:
                out.append(fut.result())
                if on_done:
                    on_done(out[-1], of)
    else:
        for r in reps:
            out.append(run_single(scenario, r, seed=seed))
            if on_done:
                on_done(out[-1], of)
    return out
