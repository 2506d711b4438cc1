"""`calibrate`: fit a scenario's demand, delivered capacity and removals to a published monthly series.

    python run_sim.py calibrate FILE.yaml --observed CSV --window YYYY-MM:YYYY-MM --out CALIBRATED.yaml
        [--admitted-share-from CSV] [--replications N] [--seed N] [--max-steps N] [--report-dir DIR] [--force]

Writes CALIBRATED.yaml (a scenario that `extends:` FILE.yaml, every fitted value commented with the figure it came
from; what is fitted and how: sim.outputs.calibration_fit) and a fit report folder: calibration_fit.csv (observed
against simulated, month by month, for the calibrated scenario as written), calibration_errors.csv (MAPE per
series), calibration_steps.csv (each simulation of the fit), calibration_fit.png, the resolved scenario and a
manifest. Months after the window are never read. Same seed and replications → the same file, byte for byte.
Nothing is written until the fit is done, and a bad input exits 2 with nothing written. Both destinations are
probed and reserved before the fit runs (sim.outputs.destination.reserve_destination); the calibrated scenario is
put in place before the fit report is written, and a failure writing either keeps what was computed and says where
(the calibrated scenario's text is kept in the system's temporary folder if anything stops it being put in place).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from sim.cli.options import add_executor_options, executor_for, month_window, positive_int, read_observed
from sim.experiment.replications import run_replications
from sim.outputs.calibration_fit import (
    TOLERANCE,
    FitStep,
    FitTargets,
    FittedInputs,
    admitted_share_of_completions,
    fit,
    fit_targets,
    scaled_start_bands,
    scenario_text,
    steps_table,
)
from sim.outputs.destination import reserve_destination, reserve_new_run_dir
from sim.outputs.monthly_fit import compare_monthly, monthly_errors, simulated_monthly
from sim.outputs.run_folder import PROJECT_ROOT, OutputError, write_manifest, write_resolved_scenario
from sim.scenario.build import build_scenario, check_draws, load_scenario, load_scenario_mapping
from sim.scenario.intervals import without_parameter_uncertainty
from sim.scenario.observed import ObservedSeries
from sim.scenario.schema import Scenario, ScenarioError

CALIBRATION_FIT_CSV = "calibration_fit.csv"
CALIBRATION_ERRORS_CSV = "calibration_errors.csv"
CALIBRATION_STEPS_CSV = "calibration_steps.csv"
CALIBRATION_PNG = "calibration_fit.png"
DEFAULT_REPLICATIONS = 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `calibrate` on the command line's subparsers."""
    p = sub.add_parser("calibrate", help="fit demand, delivered capacity and removals to a published monthly "
                                         "series; writes a calibrated scenario")
    p.add_argument("scenario", type=Path, help="the scenario to calibrate (the written one extends it)")
    p.add_argument("--observed", type=Path, required=True, metavar="CSV",
                   help="tidy monthly series to fit (e.g. data/observed/nwl_monthly.csv)")
    p.add_argument("--window", type=month_window, required=True, metavar="YYYY-MM:YYYY-MM",
                   help="the months to fit; later months are never read")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.yaml", help="the calibrated scenario to write")
    p.add_argument("--admitted-share-from", type=Path, metavar="CSV",
                   help="a tidy series with completed_admitted to split completions by stage when --observed has "
                        "none (e.g. data/observed/england_monthly.csv)")
    p.add_argument("--replications", type=positive_int, default=DEFAULT_REPLICATIONS,
                   help=f"replications per simulation of the fit (default {DEFAULT_REPLICATIONS})")
    p.add_argument("--seed", type=int, help="seed (default: the scenario's run.seed)")
    p.add_argument("--max-steps", type=positive_int, default=6, help="simulations at most (default 6)")
    p.add_argument("--name", help="the calibrated scenario's name (default: the input's name + _calibrated)")
    p.add_argument("--report-dir", type=Path, help="fit report folder (default: a new folder under results/)")
    p.add_argument("--results-root", type=Path, default=PROJECT_ROOT / "results", help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    add_executor_options(p)
    p.set_defaults(handler=run_calibrate)


def _cut(series: ObservedSeries, path: Path, first: pd.Period, last: pd.Period) -> ObservedSeries:
    try:
        return series.window(first, last)
    except ValueError as exc:
        raise ScenarioError([f"--observed {path}: {exc}"]) from None


def largest_fit_step(raw: dict, targets: FitTargets, horizon_weeks: int, source: Path) -> Scenario:
    """The scenario of the biggest simulation the fit may run, for the memory check before it starts: every step
    runs the fit window's horizon (`horizon_weeks`, not the scenario's) with the opening list scaled to the
    published one, and moves demand until the simulated clock starts meet the published ones. So: demand at the
    higher of the scenario's (at its busiest month) and the referrals that give the busiest fitted month's
    published clock starts a week, in every month."""
    inputs = FittedInputs.from_raw(raw, targets.months)
    bands = (raw.get("start_list") or {}).get("bands")
    if targets.opening_list is not None and bands:
        inputs.start_bands, inputs.start_bands_scale = scaled_start_bands(bands, targets.opening_list)
    given = without_parameter_uncertainty(build_scenario({**raw, "horizon_weeks": horizon_weeks}, source).scenario)
    referred = 1.0 - given.referrals.advice_and_guidance_share       # clock starts per referral
    published = [targets.clock_starts[m] / (targets.covered_share[m] * m.days_in_month / 7)
                 for m in targets.months if targets.covered_share[m] > 0]
    demand = given.referrals.referrals_per_week * max([1.0, *given.referrals.monthly_multipliers.values()])
    if referred > 0 and published:
        demand = max(demand, max(published) / referred)
    mapping = replace(inputs, referrals_per_week=demand).applied_to(raw)
    mapping["referrals"]["monthly_multipliers"] = {}
    mapping["horizon_weeks"] = horizon_weeks
    return without_parameter_uncertainty(build_scenario(mapping, source).scenario)


def run_calibrate(args: argparse.Namespace) -> int:
    """The `calibrate` command. Bad scenario, series or destination: exit 2 before anything runs."""
    if args.out.suffix not in (".yaml", ".yml"):
        raise ScenarioError([f"--out {args.out}: expected a .yaml file name"])
    with contextlib.ExitStack() as reservations:
        out = reservations.enter_context(reserve_destination(args.out, "--out", kind="file", replace=args.force))
        # never read after the window; the months before it give the opening list and the list before the first
        observed = read_observed(args.observed, "--observed")
        observed = _cut(observed, args.observed, observed.months[0], args.window[1])
        overrides = [] if args.seed is None else [f"run.seed={args.seed}"]
        raw = load_scenario_mapping(args.scenario, overrides)
        built = build_scenario(raw, args.scenario)
        scenario = without_parameter_uncertainty(built.scenario)
        share = share_source = None
        if args.admitted_share_from is not None:
            try:
                share = admitted_share_of_completions(read_observed(args.admitted_share_from,
                                                                    "--admitted-share-from"))
            except ValueError as exc:
                raise ScenarioError([f"--admitted-share-from {args.admitted_share_from}: {exc}"]) from None
            share_source = f"{args.admitted_share_from.name} (completed_admitted / completed_pathways)"
        try:
            targets = fit_targets(observed, args.window[0], scenario.start_date, share, share_source or "")
        except ValueError as exc:
            raise ScenarioError([f"--observed {args.observed}: {exc}"]) from None
        last_month = targets.months[-1]
        horizon_weeks = -(-((last_month.end_time.date() - scenario.start_date).days + 1) // 7)
        name = args.name or f"{scenario.name}_calibrated"
        report = reservations.enter_context(
            reserve_destination(args.report_dir, "--report-dir") if args.report_dir is not None
            else reserve_new_run_dir(args.results_root, f"{name}-calibrate"))
        seed, reps = scenario.run.seed, args.replications
        # memory, once, before the fit: for the simulations it runs (the window's horizon, fitted demand)
        check_draws(largest_fit_step(raw, targets, horizon_weeks, args.scenario), seed, reps, source=args.scenario,
                    workers=args.jobs)
        t0, started = time.perf_counter(), dt.datetime.now().astimezone()
        if not args.quiet:
            print(f"Calibrating {scenario.name} to {args.observed.name}, {targets.months[0]} to {last_month}: "
                  f"{reps} replications a step, seed {seed}, {horizon_weeks} weeks", file=sys.stderr)

        with executor_for(args) as runner:
            def simulate_mapping(mapping: dict, source: Path = args.scenario) -> pd.DataFrame:
                short = {**mapping, "horizon_weeks": horizon_weeks}
                candidate = without_parameter_uncertainty(build_scenario(short, source).scenario)
                return run_replications(candidate, replications=reps, seed=seed, executor=runner).weekly

            def report_step(step: FitStep) -> None:
                if not args.quiet:
                    print(f"  step: demand {step.inputs.referrals_per_week:,.1f} a week, clinics x"
                          f"{step.inputs.clinic_slots_scale:.4f}, theatres x"
                          f"{step.inputs.theatre_productivity_scale:.4f}, removals x"
                          f"{step.inputs.removal_rate_multiplier:.4f}, decisions to treat x"
                          f"{step.inputs.admitted_share_multiplier:.4f}: worst flow off by "
                          f"{step.worst_ratio_error:.2%}, list MAPE {step.list_mape_percent:.2f}%", file=sys.stderr)

            result = fit(raw, targets, simulate_mapping, scenario.start_date, max_steps=args.max_steps,
                         on_step=report_step)
            extends = os.path.relpath(args.scenario.resolve(), os.path.realpath(out.final.parent))
            command = (f"python run_sim.py calibrate {args.scenario} --observed {args.observed} "
                       f"--window {targets.months[0]}:{last_month} --out {args.out}"
                       + (f" --admitted-share-from {args.admitted_share_from}" if args.admitted_share_from else "")
                       + f" --replications {reps} --seed {seed}")
            header = [f"{name}: {scenario.name} calibrated to {args.observed.name}, {targets.months[0]} to "
                      f"{last_month}.",
                      f"Written by: {command}",
                      "Fitted (sim.outputs.calibration_fit): demand and its monthly profile from clock starts; "
                      "delivered",
                      "clinic and theatre capacity from non-admitted and admitted completions; the removal rate from",
                      "starts - completions - change in the list; decisions to treat (and the opening admitted list)",
                      "from the published admitted list, where the series has it. Everything else is as the scenario",
                      "it extends says.",
                      f"{len(result.steps)} simulation(s) of {reps} replication(s), seed {seed}; "
                      + (f"converged: every fitted flow within {TOLERANCE:.0%} of its target." if result.converged
                         else f"NOT converged in {args.max_steps} simulations: see the fit report.")]
            body = scenario_text(result, targets, extends=extends, name=name,
                                 title=f"{scenario.title}, calibrated to {targets.months[0]} to {last_month}",
                                 header=header)
            # the fit report is from the file as written, so the file reproduces it; the file is put in place first
            with out.staged_file(body) as staged:
                written = load_scenario(staged)
                weekly = simulate_mapping(written.raw, staged)
                monthly = simulated_monthly(weekly, scenario.start_date)
                table = compare_monthly(monthly, _cut(observed, args.observed, *args.window))
                errors = monthly_errors(table)
        try:
            with report.writing({CALIBRATION_FIT_CSV: table, CALIBRATION_ERRORS_CSV: errors,
                                 CALIBRATION_STEPS_CSV: steps_table(result)}) as folder:
                write_resolved_scenario(folder.path, written.raw)
                write_manifest(folder.path, kind="calibration", scenario=name, scenario_files=[str(args.scenario)],
                               calibrated_scenario=str(args.out), observed_files=[str(args.observed)],
                               window=[str(targets.months[0]), str(last_month)], seed=seed, replications=reps,
                               steps=len(result.steps), converged=result.converged,
                               mape_percent={r.series: None if math.isnan(r.mape_percent) else round(r.mape_percent, 2)
                                             for r in errors.itertuples()},
                               wall_time_seconds=round(time.perf_counter() - t0, 2),
                               started_at=started.isoformat(timespec="seconds"),
                               finished_at=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
                from sim.outputs.charts import monthly_backtest_chart  # matplotlib: loaded only to draw
                folder.report(lambda path: monthly_backtest_chart(table, None, f"{scenario.title}, calibrated",
                                                                  args.observed.name).savefig(path / CALIBRATION_PNG,
                                                                                              dpi=110),
                              what="chart", retry=False)
        except OutputError as exc:
            raise OutputError(f"{exc}; the calibrated scenario itself was written to {args.out}") from None
    print(f"Calibrated {scenario.name} to {args.observed.name}, {targets.months[0]} to {last_month}, in "
          f"{len(result.steps)} simulation(s) ({'converged' if result.converged else 'NOT converged'}, "
          f"{time.perf_counter() - t0:.0f} s). MAPE of the median, calibrated scenario as written:")
    for r in errors.itertuples():
        shown = "n/a" if math.isnan(r.mape_percent) else f"{r.mape_percent:.1f}%"
        print(f"  {r.series:<20} {shown:>7}  ({r.months_used} month(s); mean error {r.mean_error:+,.0f})")
    print(f"Scenario: {args.out}\nFit report: {report.final}")
    return 0
