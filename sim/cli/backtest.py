"""`backtest`: start from an observed month's RTT waiting list, simulate forward, compare with later months.

    python run_sim.py backtest FILE.yaml --observed RTT_CSV [RTT_CSV ...] [--replications N] [--out DIR]

The rules (which month starts, the start date and horizon, the metrics, MAPE) are in sim.outputs.backtest.
Writes (atomically): backtest.csv, backtest_errors.csv, backtest.png, weekly.csv, scenario.yaml, manifest.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path

from sim.cli.options import add_run_options, executor_for, output_folder, progress_reporter
from sim.experiment.replications import run_replications
from sim.outputs.backtest import build_backtest_scenario, compare, errors_table, later_months, observed_metrics
from sim.outputs.charts import backtest_chart
from sim.outputs.run_folder import (
    BACKTEST_CSV,
    BACKTEST_ERRORS_CSV,
    BACKTEST_PNG,
    PARAMETERS_CSV,
    WEEKLY_CSV,
    atomic_run_dir,
    check_out_dir,
    write_manifest,
    write_resolved_scenario,
)
from sim.scenario.intervals import describe_uncertainty, without_parameter_uncertainty


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `backtest` on the command line's subparsers."""
    p = sub.add_parser("backtest", help="start from an observed RTT month and compare the simulation with later "
                                        "months")
    p.add_argument("scenario", type=Path, help="scenario YAML file (its start_list gives providers and mapping)")
    p.add_argument("--observed", type=Path, nargs="+", required=True, metavar="RTT_CSV",
                   help="RTT Full CSV files, one per month; the earliest is the start list")
    add_run_options(p, report=False)
    p.set_defaults(handler=run_backtest)


def run_backtest(args: argparse.Namespace) -> int:
    """The `backtest` command. Bad scenario or data: ScenarioError (exit 2 in sim.cli.main), nothing written."""
    if args.out is not None:
        check_out_dir(args.out)
    built, extracts, notes = build_backtest_scenario(args.scenario, list(args.observed), list(args.overrides),
                                                    args.replications, args.seed)
    scenario, raw = built.scenario, built.raw
    if args.fix_parameters:
        scenario = without_parameter_uncertainty(scenario)
    if not args.quiet:
        print(describe_uncertainty(scenario.parameter_intervals), file=sys.stderr)
    final = output_folder(args, f"{scenario.name}-backtest")
    if not args.quiet:
        for line in notes:
            print(line, file=sys.stderr)
        print(f"Backtesting {scenario.name}: {scenario.run.replications} replications, seed {scenario.run.seed}, "
              f"{scenario.horizon_weeks} weeks", file=sys.stderr)
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    with executor_for(args) as runner:
        result = run_replications(scenario, executor=runner,
                                  on_done=progress_reporter(args, scenario.name, scenario.run.replications))
    months = later_months(extracts, scenario.start_date)
    table = compare(result.weekly, months)
    errors = errors_table(table)
    first = extracts[0]
    with atomic_run_dir(final) as folder:
        write_resolved_scenario(folder, raw)
        result.weekly.to_csv(folder / WEEKLY_CSV, index=False)
        if len(result.parameters):
            result.parameters.to_csv(folder / PARAMETERS_CSV, index=False)
        table.to_csv(folder / BACKTEST_CSV, index=False)
        errors.to_csv(folder / BACKTEST_ERRORS_CSV, index=False)
        fig = backtest_chart(table, first.period_label, first.census_date, observed_metrics(first), scenario.title)
        fig.savefig(folder / BACKTEST_PNG, dpi=110)
        write_manifest(folder, scenario=scenario.name, scenario_files=[str(args.scenario)], kind="backtest",
                       observed_files=[str(e.source) for e in extracts], start_date=scenario.start_date,
                       overrides=args.overrides, seed=scenario.run.seed, replications=result.replications,
                       jobs=args.jobs, executor=args.executor, pathways_simulated=result.pathways_simulated,
                       notes=notes, uncertainty=describe_uncertainty(scenario.parameter_intervals),
                       parameters_fixed_at_midpoints=bool(args.fix_parameters),
                       mape_percent={r.metric: (None if math.isnan(r.mape_percent) else round(r.mape_percent, 2))
                                     for r in errors.itertuples()},
                       wall_time_seconds=round(time.perf_counter() - t0, 2),
                       started_at=started.isoformat(timespec="seconds"),
                       finished_at=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    print(f"Backtest of {scenario.title} from {first.period_label} over {len(months)} later month(s), "
          f"{scenario.run.replications} replications:")
    for r in errors.itertuples():
        shown = "n/a (observed 0 every month)" if math.isnan(r.mape_percent) else f"{r.mape_percent:.1f}%"
        extra = f" ({r.months_skipped} month(s) with observed 0 left out)" if r.months_skipped else ""
        print(f"  MAPE {r.metric}: {shown}{extra}")
    print(f"Results: {final}")
    return 0
