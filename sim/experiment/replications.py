"""Replications: run the model N times with streams keyed by (seed, replication) and gather tidy tables.

Replication r of every scenario uses the same streams (common random numbers), so scenarios compared with
the same seed are paired replication by replication. Replications run on an executor (sim.experiment.executors:
in this process, local processes or Dask); results are identical on all of them because each replication's
streams depend only on (seed, r).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from sim.experiment.clearance import weeks_to_clear
from sim.experiment.executors import ReplicationExecutor, make_executor, stop
from sim.model.replication import ReplicationResult
from sim.scenario.build import check_draws
from sim.scenario.schema import Scenario


@dataclasses.dataclass
class ExperimentResult:
    scenario: Scenario
    seed: int
    replications: int
    weekly: pd.DataFrame
    by_specialty: pd.DataFrame
    by_site: pd.DataFrame                 # the list and its flows by site (provider trust)
    vaccination_by_cohort: pd.DataFrame
    waits_by_priority: pd.DataFrame
    pathways_simulated: int
    wall_seconds: float
    clearance_half_width_weeks: float     # 95% CI half-width of the mean 52-week clearance (the `auto` rule's measure)
    parameters: pd.DataFrame              # drawn values of inputs given as [low, high]: one row per replication x key


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


def run_replications(scenario: Scenario, replications: int | Literal["auto"] | None = None, seed: int | None = None,
                     on_done: Callable[[ReplicationResult, int], None] | None = None,
                     jobs: int = 1, executor: ReplicationExecutor | None = None) -> ExperimentResult:
    """Run replications 0..N-1 on `executor` (or, without one, sequentially / in `jobs` local processes: `jobs`
    is ignored when an executor is given). `auto` applies the stopping rule in RunSettings, a batch of one
    replication per worker at a time, and keeps the smallest N that meets it (the same N on every executor).
    Results are in replication order whatever order they finished in. Every replication's drawn [low, high]
    inputs are validated before any runs (sim.scenario.build.check_draws)."""
    n = scenario.run.replications if replications is None else replications
    s = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    check_draws(scenario, s, n, memory=False)    # the machine's memory: once, before the command runs anything
    own = executor is None
    runner = make_executor(jobs) if executor is None else executor
    results: list[ReplicationResult] = []
    interrupted = True
    try:
        if n == "auto":
            rule = scenario.run
            while len(results) < rule.max_replications:
                batch = range(len(results), min(len(results) + max(runner.workers, 1), rule.max_replications))
                checked = len(results)
                results += _run_batch(runner, scenario, list(batch), s, on_done, rule.max_replications)
                # the smallest N that meets the rule, whatever the batch size: every executor stops at the same N
                enough = next((k for k in range(max(checked + 1, rule.min_replications), len(results) + 1)
                               if clearance_half_width(results[:k], scenario.horizon_weeks)
                               <= rule.target_half_width_weeks), None)
                if enough is not None:
                    results = results[:enough]
                    break
        else:
            results = _run_batch(runner, scenario, list(range(n)), s, on_done, n)
        interrupted = False
    finally:
        if own:
            stop(runner, interrupted)
    return ExperimentResult(
        scenario=scenario, seed=s, replications=len(results),
        weekly=pd.concat([r.weekly for r in results], ignore_index=True),
        by_specialty=pd.concat([r.by_specialty for r in results], ignore_index=True),
        by_site=pd.concat([r.by_site for r in results], ignore_index=True),
        vaccination_by_cohort=pd.concat([r.vaccination_by_cohort for r in results], ignore_index=True),
        waits_by_priority=pd.concat([r.waits_by_priority for r in results], ignore_index=True),
        pathways_simulated=sum(r.pathways_simulated for r in results),
        wall_seconds=time.perf_counter() - t0,
        clearance_half_width_weeks=clearance_half_width(results, scenario.horizon_weeks),
        parameters=parameter_table(scenario, results),
    )


def _run_batch(runner: ReplicationExecutor, scenario: Scenario, reps: list[int], seed: int,
               on_done: Callable[[ReplicationResult, int], None] | None, of: int) -> list[ReplicationResult]:
    """Replications `reps` on the runner, reported as they finish, returned in replication order."""
    out: list[ReplicationResult] = []
    for result in runner.run(scenario, reps, seed):
        out.append(result)
        if on_done:
            on_done(result, of)
    return sorted(out, key=lambda r: r.replication)


def parameter_table(scenario: Scenario, results: list[ReplicationResult]) -> pd.DataFrame:
    """The value each replication drew for each input given as an 80% interval (empty when there are none)."""
    rows = [{"scenario": scenario.name, "replication": r.replication, "parameter": p.key, "low": p.low,
             "high": p.high, "value": r.parameters[p.key]}
            for r in results for p in scenario.parameter_intervals]
    return pd.DataFrame(rows, columns=["scenario", "replication", "parameter", "low", "high", "value"])
