"""`backtest`: the simulation beside published figures, in one of two forms.

    python run_sim.py backtest FILE.yaml --observed RTT_CSV [RTT_CSV ...] [--replications N] [--out DIR]
    python run_sim.py backtest FILE.yaml --monthly CSV [--window YYYY-MM:YYYY-MM] [--holdout-from YYYY-MM] ...

`--observed`: start from the earliest RTT Full CSV's waiting list and compare with the later months (rules in
sim.outputs.backtest). `--monthly`: run the scenario as written and compare its monthly clock starts, completions,
list and long waits with a tidy monthly series (sim.scenario.observed), with the error over the window and over
held-out months reported apart (rules in sim.outputs.monthly_fit).
Writes (atomically, to a destination probed and reserved before anything runs): backtest.csv (RTT form) or
backtest_monthly.csv (monthly form), backtest_errors.csv, backtest.png, weekly.csv, weekly_by_site.csv,
scenario.yaml, manifest.json. The replications' tables are written first; a chart that fails leaves the rest
complete (exit 2, saying so), and any other failure while writing keeps the tables and names where.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path

import pandas as pd

from sim.cli.options import (
    add_run_options,
    executor_for,
    month,
    month_window,
    progress_reporter,
    read_observed,
    reserve_output,
)
from sim.experiment.replications import ExperimentResult, run_replications
from sim.outputs.analysis import last_day_simulated
from sim.outputs.backtest import build_backtest_scenario, compare, errors_table, later_months, observed_metrics
from sim.outputs.monthly_fit import (
    HELD_OUT,
    compare_monthly,
    monthly_errors,
    months_covered,
    simulated_monthly,
)
from sim.outputs.run_folder import (
    BACKTEST_CSV,
    BACKTEST_ERRORS_CSV,
    BACKTEST_MONTHLY_CSV,
    BACKTEST_PNG,
    PARAMETERS_CSV,
    WEEKLY_BY_SITE_CSV,
    WEEKLY_CSV,
    write_manifest,
    write_resolved_scenario,
)
from sim.scenario.build import check_draws, load_scenario
from sim.scenario.intervals import describe_uncertainty, without_parameter_uncertainty
from sim.scenario.schema import Scenario, ScenarioError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `backtest` on the command line's subparsers."""
    p = sub.add_parser("backtest", help="start from an observed RTT month and compare the simulation with later "
                                        "months")
    p.add_argument("scenario", type=Path, help="scenario YAML file (its start_list gives providers and mapping)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--observed", type=Path, nargs="+", metavar="RTT_CSV",
                        help="RTT Full CSV files, one per month; the earliest is the start list")
    source.add_argument("--monthly", type=Path, metavar="CSV",
                        help="a tidy monthly series (e.g. data/observed/nwl_monthly.csv); the scenario runs as "
                             "written and its months are compared")
    p.add_argument("--window", type=month_window, metavar="YYYY-MM:YYYY-MM",
                   help="with --monthly: the months to compare (default: every month both have)")
    p.add_argument("--holdout-from", type=month, metavar="YYYY-MM",
                   help="with --monthly: months from this one on are reported apart, as held out")
    add_run_options(p, report=False)
    p.set_defaults(handler=run_backtest)


def run_backtest(args: argparse.Namespace) -> int:
    """The `backtest` command. Bad scenario or data, or a run too big for this machine's memory: ScenarioError
    (exit 2 in sim.cli.main) before anything runs, nothing written."""
    if args.monthly is not None:
        return run_monthly_backtest(args)
    if args.window is not None or args.holdout_from is not None:
        raise ScenarioError(["--window and --holdout-from go with --monthly (a tidy monthly series)"])
    built, extracts, notes = build_backtest_scenario(args.scenario, list(args.observed), list(args.overrides),
                                                    args.replications, args.seed)
    scenario, raw = built.scenario, built.raw
    if args.fix_parameters:
        scenario = without_parameter_uncertainty(scenario)
    check_draws(scenario, scenario.run.seed, scenario.run.replications, source=args.scenario,
                workers=args.jobs)              # draws and memory, once, before anything is reserved or runs
    with reserve_output(args, f"{scenario.name}-backtest") as destination:
        started, t0 = dt.datetime.now().astimezone(), time.perf_counter()
        result = _run(args, scenario, notes, f"Backtesting {scenario.name}")
        first = extracts[0]
        with destination.writing(_replication_tables(result)) as out:
            months = later_months(extracts, scenario.start_date)
            table = compare(result.weekly, months)
            errors = errors_table(table)
            out.write_table(BACKTEST_CSV, table)
            out.write_table(BACKTEST_ERRORS_CSV, errors)
            write_resolved_scenario(out.path, raw)
            write_manifest(out.path, scenario=scenario.name, scenario_files=[str(args.scenario)], kind="backtest",
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
            from sim.outputs.charts import backtest_chart  # matplotlib: loaded only by the commands that draw
            out.report(lambda folder: backtest_chart(table, first.period_label, first.census_date,
                                                     observed_metrics(first), scenario.title).savefig(
                folder / BACKTEST_PNG, dpi=110), what="chart", retry=False)
    print(f"Backtest of {scenario.title} from {first.period_label} over {len(months)} later month(s), "
          f"{result.replications} replications:")
    for r in errors.itertuples():
        shown = "n/a (observed 0 every month)" if math.isnan(r.mape_percent) else f"{r.mape_percent:.1f}%"
        extra = f" ({r.months_skipped} month(s) with observed 0 left out)" if r.months_skipped else ""
        print(f"  MAPE {r.metric}: {shown}{extra}")
    print(f"Results: {destination.final}")
    return 0


def run_monthly_backtest(args: argparse.Namespace) -> int:
    """`backtest --monthly`: the scenario as written against a tidy monthly series, window and held-out months
    apart. A bad series, scenario or destination is refused before anything runs (exit 2), and nothing is written."""
    observed = read_observed(args.monthly, "--monthly")
    if args.window is not None:
        first, last = args.window
        try:
            observed = observed.window(first, last)
        except ValueError as exc:
            raise ScenarioError([f"--window: {exc}"]) from None
    if args.holdout_from is not None and not any(m >= args.holdout_from for m in observed.months):
        raise ScenarioError([f"--holdout-from {args.holdout_from}: no observed month from then on "
                             f"(the series ends {observed.months[-1]})"])
    overrides = list(args.overrides)
    if args.replications is not None:
        overrides.append(f"run.replications={args.replications}")
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    built = load_scenario(args.scenario, overrides)
    scenario = built.scenario
    if args.fix_parameters:
        scenario = without_parameter_uncertainty(scenario)
    check_draws(scenario, scenario.run.seed, scenario.run.replications, source=args.scenario,
                workers=args.jobs)
    last_day = last_day_simulated(scenario.start_date, scenario.horizon_weeks)
    if not set(months_covered(scenario.start_date, last_day)) & set(observed.months):
        raise ScenarioError([f"{args.scenario}: the run ({scenario.start_date} to {last_day}) covers no whole month "
                             f"of {args.monthly} ({observed.months[0]} to {observed.months[-1]}); change "
                             "start_date or horizon_weeks, or the --window"])
    with reserve_output(args, f"{scenario.name}-backtest") as destination:
        started, t0 = dt.datetime.now().astimezone(), time.perf_counter()
        result = _run(args, scenario, built.notes, f"Backtesting {scenario.name} against {args.monthly}")
        with destination.writing(_replication_tables(result)) as out:
            monthly = simulated_monthly(result.weekly, scenario.start_date)
            table = compare_monthly(monthly, observed, args.holdout_from)
            errors = monthly_errors(table)
            out.write_table(BACKTEST_MONTHLY_CSV, table)
            out.write_table(BACKTEST_ERRORS_CSV, errors)
            write_resolved_scenario(out.path, built.raw)
            write_manifest(out.path, scenario=scenario.name, scenario_files=[str(args.scenario)],
                           kind="backtest_monthly", observed_files=[str(args.monthly)], start_date=scenario.start_date,
                           window=[str(observed.months[0]), str(observed.months[-1])],
                           holdout_from=None if args.holdout_from is None else str(args.holdout_from),
                           overrides=args.overrides, seed=scenario.run.seed, replications=result.replications,
                           jobs=args.jobs, executor=args.executor, pathways_simulated=result.pathways_simulated,
                           notes=built.notes, uncertainty=describe_uncertainty(scenario.parameter_intervals),
                           parameters_fixed_at_midpoints=bool(args.fix_parameters),
                           mape_percent={f"{r.series}/{r.period}": (None if math.isnan(r.mape_percent)
                                                                    else round(r.mape_percent, 2))
                                         for r in errors.itertuples()},
                           wall_time_seconds=round(time.perf_counter() - t0, 2),
                           started_at=started.isoformat(timespec="seconds"),
                           finished_at=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
            from sim.outputs.charts import monthly_backtest_chart
            out.report(lambda folder: monthly_backtest_chart(table, args.holdout_from, scenario.title,
                                                             str(args.monthly.name)).savefig(
                folder / BACKTEST_PNG, dpi=110), what="chart", retry=False)
    months = sorted(set(table["month"]))
    print(f"Backtest of {scenario.title} against {args.monthly.name}, {months[0]} to {months[-1]}, "
          f"{result.replications} replications (MAPE of the median):")
    for r in errors.itertuples():
        shown = "n/a (no usable month)" if math.isnan(r.mape_percent) else f"{r.mape_percent:.1f}%"
        where = "held out" if r.period == HELD_OUT else "window"
        print(f"  {r.series:<20} {where:<9} {shown:>8}  ({r.months_used} month(s); mean error {r.mean_error:+,.0f})")
    print(f"Results: {destination.final}")
    return 0


def _replication_tables(result: ExperimentResult) -> dict[str, pd.DataFrame]:
    """The replications' own tables, written before anything derived from them."""
    tables = {WEEKLY_CSV: result.weekly, WEEKLY_BY_SITE_CSV: result.by_site}
    if len(result.parameters):
        tables[PARAMETERS_CSV] = result.parameters
    return tables


def _run(args: argparse.Namespace, scenario: Scenario, notes: list[str], heading: str) -> ExperimentResult:
    """Say what is about to run (unless --quiet), then run the scenario's replications on the chosen executor."""
    if not args.quiet:
        print(describe_uncertainty(scenario.parameter_intervals), file=sys.stderr)
        for line in notes:
            print(line, file=sys.stderr)
        print(f"{heading}: {scenario.run.replications} replications, seed {scenario.run.seed}, "
              f"{scenario.horizon_weeks} weeks", file=sys.stderr)
    with executor_for(args) as runner:
        return run_replications(scenario, executor=runner,
                                on_done=progress_reporter(args, scenario.name, scenario.run.replications))
