"""`sweep`: the full factorial of `--set key=v1,v2,...` factors, every combination with the same seeds.

    python run_sim.py sweep FILE.yaml --set key=v1,v2 [--set key=v1,v2 ...] [options]

Writes one tidy table (sweep.csv) and a heat map of the median 52-week clearance. Every combination is loaded and
its draws checked, and the destination probed and reserved, before any runs, so a bad level or a bad destination
writes nothing; a heat map that fails leaves sweep.csv in a complete folder (exit 2, saying so).
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.cli.options import (
    add_executor_options,
    add_fix_parameters_option,
    add_output_options,
    executor_for,
    positive_int,
    progress_reporter,
    reserve_output,
)
from sim.experiment.replications import run_replications
from sim.outputs.analysis import clearance_monday, replication_kpis, summarise
from sim.outputs.run_folder import (
    SWEEP_CSV,
    SWEEP_HEATMAP_PNG,
    write_manifest,
    write_resolved_scenario,
)
from sim.scenario.build import check_draws, load_scenario
from sim.scenario.intervals import describe_uncertainty, intervals_show, without_parameter_uncertainty
from sim.scenario.schema import ScenarioError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def sweep_heatmap(table: pd.DataFrame, keys: list[str], start: dt.date) -> Figure:
    """sim.outputs.charts.sweep_heatmap, imported when the heat map is drawn: the command line imports this
    module for every command, and matplotlib takes a third of a second to load."""
    from sim.outputs.charts import sweep_heatmap as draw
    return draw(table, keys, start)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `sweep` on the command line's subparsers."""
    sweep = sub.add_parser("sweep", help="run the full factorial of --set key=v1,v2,... with the same seeds")
    sweep.add_argument("scenario", type=Path)
    sweep.add_argument("--set", dest="factors", action="append", default=[], metavar="dotted.key=v1,v2,...",
                       help="a factor and its levels (repeat for more factors)")
    sweep.add_argument("--replications", type=positive_int,
                       help="replications of every combination (overrides run.replications)")
    sweep.add_argument("--seed", type=int, help="experiment seed (overrides run.seed)")
    add_output_options(sweep)
    add_executor_options(sweep)
    add_fix_parameters_option(sweep)
    sweep.add_argument("--quiet", action="store_true")
    sweep.set_defaults(handler=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """Full factorial over the given factors; one tidy table (sweep.csv) and a heat map of the median
    52-week clearance. Every combination uses the same seed and replications (common random numbers)."""
    factors: list[tuple[str, list[str]]] = []
    for text in args.factors:
        if "=" not in text or not text.split("=", 1)[1]:
            raise ScenarioError([f"--set {text!r}: expected dotted.key=v1,v2,..."])
        key, levels = text.split("=", 1)
        factors.append((key.strip(), [v.strip() for v in levels.split(",")]))
    if not factors:
        raise ScenarioError(["sweep: give at least one --set key=v1,v2,..."])
    base = load_scenario(args.scenario).scenario
    replications = args.replications if args.replications is not None else base.run.replications
    seed = args.seed if args.seed is not None else base.run.seed
    combos = list(itertools.product(*[levels for _, levels in factors]))
    # validate every combination before running any (bad input loses nothing)
    variants = []
    for combo in combos:
        sets = [f"{k}={v}" for (k, _), v in zip(factors, combo, strict=True)]
        label = ", ".join(sets)
        variant = load_scenario(args.scenario, sets + [f"run.replications={replications}", f"run.seed={seed}"])
        sc, raw = variant.scenario, variant.raw
        if args.fix_parameters:
            sc = without_parameter_uncertainty(sc)
        variants.append((combo, label, sc, raw))
    for _, _, sc, _ in variants:
        check_draws(sc, seed, replications, source=args.scenario, workers=args.jobs)
    with reserve_output(args, f"sweep-{base.name}") as destination:
        t0 = time.perf_counter()
        rows = []
        with executor_for(args) as runner:
            for i, (combo, label, sc, _) in enumerate(variants):
                res = run_replications(sc, executor=runner, on_done=progress_reporter(
                    args, f"[{i + 1}/{len(variants)}] {label}", replications))
                summary = summarise(replication_kpis(res.weekly))
                shows = intervals_show(sc.parameter_intervals)
                for _, r in summary.iterrows():
                    rows.append({**{k: v for (k, _), v in zip(factors, combo, strict=True)}, "metric": r["metric"],
                                 "mean": r["mean"], "p05": r["p05"], "p50": r["p50"], "p95": r["p95"],
                                 "intervals_show": shows})
        table = pd.DataFrame(rows)
        with destination.writing({SWEEP_CSV: table}) as out:
            write_resolved_scenario(out.path, variants[0][3])
            write_manifest(out.path, scenario=base.name, factors=dict(factors), seed=seed, replications=replications,
                           jobs=args.jobs, executor=args.executor,
                           parameters_fixed_at_midpoints=bool(args.fix_parameters),
                           uncertainty=describe_uncertainty(variants[0][2].parameter_intervals),
                           wall_time_seconds=round(time.perf_counter() - t0, 2))
            out.report(lambda folder: sweep_heatmap(table, [k for k, _ in factors], base.start_date).savefig(
                folder / SWEEP_HEATMAP_PNG, dpi=120), what="heat map", retry=False)
    clear = table[table["metric"] == "weeks_to_clear_52w"]
    for _, r in clear.iterrows():
        # the week the last such patient leaves, as run's headline and the report give it
        week = None if np.isnan(r["p50"]) else clearance_monday(base.start_date, r["p50"])
        when = "not reached within the horizon" if week is None else f"from the week of {week.isoformat()} (median)"
        print(f"  {', '.join(f'{k}={r[k]}' for k, _ in factors)}: nobody over 52 weeks {when}")
    print(f"Results: {destination.final}")
    return 0
