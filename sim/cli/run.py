"""`run` and `compare`: run scenario files with the same seed and replications and write one results folder.

    python run_sim.py run FILE.yaml [options]
    python run_sim.py compare REFERENCE.yaml OTHER.yaml ... [options]

Every scenario is loaded and its draws checked, and the destination probed and reserved, before any replication
runs, so bad input writes nothing. The replications' tables are written first and the report last: a report that
fails leaves a complete folder without it (exit 2, with the `report` command that makes it again), and any other
failure or an interruption while writing keeps the tables and names where (sim.outputs.destination.Destination.
writing). The headline is printed once the folder is in place, outside the writing, so that a failure to print
(`run ... | head` closing the pipe) cannot count as a failure to write.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sim.cli.options import add_run_options, executor_for, progress_reporter, reserve_output
from sim.experiment.executors import AskedTogether
from sim.experiment.replications import ExperimentResult, run_replications
from sim.outputs import finance
from sim.outputs.analysis import (
    comparison_lines,
    headline,
    paired_comparison,
    replication_kpis,
    summarise,
    target_probabilities,
)
from sim.outputs.destination import Destination
from sim.outputs.run_folder import (
    COMPARISON_CSV,
    FINANCE_BY_YEAR_CSV,
    FINANCE_MONTHLY_CSV,
    PARAMETERS_CSV,
    REPLICATIONS_CSV,
    REPORT_HTML,
    SCENARIOS_DIR,
    SUMMARY_CSV,
    VACCINATION_BY_COHORT_CSV,
    WAITS_BY_PRIORITY_CSV,
    WEEKLY_BY_SITE_CSV,
    WEEKLY_BY_SPECIALTY_CSV,
    WEEKLY_CSV,
    OutputError,
    write_manifest,
    write_resolved_scenario,
)
from sim.scenario.build import check_draws, load_scenario
from sim.scenario.input_files import InputFileError
from sim.scenario.intervals import describe_uncertainty, intervals_show, without_parameter_uncertainty
from sim.scenario.schema import Scenario, ScenarioError
from sim.scenario.sources import stated_sources, without_overridden


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `run` and `compare` on the command line's subparsers."""
    run = sub.add_parser("run", help="run a scenario and write results/<scenario>/<timestamp>/")
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    add_run_options(run)
    run.set_defaults(handler=lambda args: run_scenarios(args, [args.scenario]))

    compare = sub.add_parser("compare", help="run scenarios with the same seeds and compare them with the first")
    compare.add_argument("scenarios", type=Path, nargs="+", help="scenario YAML files; the first is the reference")
    add_run_options(compare)
    compare.set_defaults(handler=lambda args: run_scenarios(args, args.scenarios))


def run_scenarios(args: argparse.Namespace, files: list[Path]) -> int:
    """Run one scenario (run) or several with the same seed and replications (compare)."""
    overrides = list(args.overrides)
    first = load_scenario(files[0], overrides).scenario
    replications = args.replications if args.replications is not None else first.run.replications
    seed = args.seed if args.seed is not None else first.run.seed
    common = [f"run.replications={replications}", f"run.seed={seed}"]
    built = [load_scenario(f, overrides + common) for f in files]
    notes = {b.scenario.name: b.notes for b in built}
    loaded = [(b.scenario, b.raw) for b in built]
    if args.fix_parameters:
        loaded = [(without_parameter_uncertainty(sc), raw) for sc, raw in loaded]
    names = [sc.name for sc, _ in loaded]
    if len(set(names)) != len(names):
        raise ScenarioError([f"compare: scenario names must differ (got {', '.join(names)})"])
    for (scenario, _), file in zip(loaded, files, strict=True):   # every scenario's draws before anything runs
        check_draws(scenario, seed, replications, source=file, workers=args.jobs)
    comparing = len(loaded) > 1
    said: list[str] = []
    with reserve_output(args, "compare" if comparing else first.name) as destination:
        try:
            _run_and_write(args, files, first, loaded, notes, names, replications, seed, destination, said)
        except OutputError:
            if destination.written:     # in place without its report: the headline is still true, then the error
                _print(said)
            raise
    _print(said)
    print(f"Results: {destination.final}"
          + ("" if args.no_report else f"  (report: {destination.final / REPORT_HTML})"))
    return 0


def _run_and_write(args: argparse.Namespace, files: list[Path], first: Scenario,
                   loaded: list[tuple[Scenario, dict]], notes: dict[str, list[str]], names: list[str],
                   replications: int | Literal["auto"], seed: int, destination: Destination,
                   said: list[str]) -> None:
    """Run every scenario's replications, then write the folder: the replications' tables first, then what is
    derived from them, the manifest and the report. The headline's lines are put in `said`, for the caller
    to print once the folder is in place."""
    comparing = len(loaded) > 1
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    results: list[ExperimentResult] = []
    report_modules: threading.Thread | None = None
    with executor_for(args) as runner:
        if comparing and replications != "auto":      # every scenario's replications queued at once
            runner = AskedTogether(runner, [(scenario, list(range(replications)), scenario.run.seed)
                                            for scenario, _ in loaded])
        if not args.no_report and runner.workers > 1:
            report_modules = threading.Thread(target=_import_report_modules, daemon=True)
            report_modules.start()
        for i, (scenario, _) in enumerate(loaded):
            # with `auto`, the first scenario settles the number and the others use it (paired replications)
            reps = replications if i == 0 else results[0].replications
            if not args.quiet:
                print(f"Running {scenario.name} ({reps} replications, seed {seed})", file=sys.stderr)
                for line in notes[scenario.name]:
                    print(f"  {line}", file=sys.stderr)
            total = reps if reps != "auto" else scenario.run.max_replications
            results.append(run_replications(scenario, replications=reps, executor=runner,
                                            on_done=progress_reporter(args, scenario.name, total)))
    if report_modules is not None:
        report_modules.join()        # before the writing, which may fork: no import may be half done then
    replications = results[0].replications
    weekly = pd.concat([r.weekly for r in results], ignore_index=True)
    raw: dict[str, pd.DataFrame] = {WEEKLY_CSV: weekly}     # the replications' own tables, written first
    parameters = pd.concat([r.parameters for r in results], ignore_index=True)
    if len(parameters):
        raw[PARAMETERS_CSV] = parameters
    raw[WEEKLY_BY_SPECIALTY_CSV] = pd.concat([r.by_specialty for r in results])
    raw[WEEKLY_BY_SITE_CSV] = pd.concat([r.by_site for r in results])
    cohorts = pd.concat([r.vaccination_by_cohort for r in results])
    if len(cohorts):
        raw[VACCINATION_BY_COHORT_CSV] = cohorts
    raw[WAITS_BY_PRIORITY_CSV] = pd.concat([r.waits_by_priority.assign(scenario=r.scenario.name) for r in results])
    final = destination.final
    with destination.writing(raw) as out:
        kpis = replication_kpis(weekly)
        summary = pd.concat([summarise(kpis)] + [
            target_probabilities(kpis, sc.name, sc.start_date, {52: sc.targets.no_52w_waiters_by,
                                                                78: sc.targets.no_78w_waiters_by,
                                                                104: sc.targets.no_104w_waiters_by}, sc.horizon_weeks)
            for sc, _ in loaded if sc.targets], ignore_index=True)
        # which kind of uncertainty each scenario's percentiles show (a board paper must say)
        summary["intervals_show"] = summary["scenario"].map(
            {sc.name: intervals_show(sc.parameter_intervals) for sc, _ in loaded})
        out.write_table(REPLICATIONS_CSV, kpis)
        out.write_table(SUMMARY_CSV, summary)
        comparison = paired_comparison(kpis, names[0]) if comparing else None
        if comparison is not None:
            out.write_table(COMPARISON_CSV, comparison)
        finances = {sc.name: sc.finance for sc, _ in loaded if sc.finance is not None}
        if finances:
            months = finance.monthly(weekly, finances)
            out.write_table(FINANCE_MONTHLY_CSV, months)
            out.write_table(FINANCE_BY_YEAR_CSV, finance.by_financial_year(months, names[0] if comparing else None))
        if comparing:
            (out.path / SCENARIOS_DIR).mkdir()
            for (scenario, raw_mapping) in loaded:
                write_resolved_scenario(out.path / SCENARIOS_DIR, raw_mapping, f"{scenario.name}.yaml")
        else:
            write_resolved_scenario(out.path, loaded[0][1])
        write_manifest(out.path, scenario=names if comparing else names[0],
                       scenario_files=[str(f) for f in files], overrides=args.overrides, seed=seed,
                       replications=replications, jobs=args.jobs, executor=args.executor,
                       replications_rule=("auto: until the 95% confidence interval of the mean 52-week clearance "
                                          f"is within +/- {first.run.target_half_width_weeks} weeks, "
                                          f"{first.run.min_replications} to {first.run.max_replications}"
                                          if args.replications == "auto" or first.run.replications == "auto"
                                          else "fixed"),
                       clearance_half_width_weeks={r.scenario.name: round(r.clearance_half_width_weeks, 2)
                                                   for r in results},
                       uncertainty={sc.name: describe_uncertainty(sc.parameter_intervals) for sc, _ in loaded},
                       parameter_intervals={sc.name: {p.key: [p.low, p.high] for p in sc.parameter_intervals}
                                            for sc, _ in loaded},
                       parameters_fixed_at_midpoints=bool(args.fix_parameters),
                       assumption_sources=_assumption_sources(files, loaded, list(args.overrides)),
                       start_list_notes={name: lines for name, lines in notes.items() if lines},
                       pathways_simulated=sum(r.pathways_simulated for r in results),
                       wall_time_seconds=round(time.perf_counter() - t0, 2),
                       started_at=started.isoformat(timespec="seconds"),
                       finished_at=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
        said.extend(_headline(args, first, loaded, summary, comparison, names, replications,
                              results[0].clearance_half_width_weeks))
        if not args.no_report:
            out.report(lambda folder: build_report(folder, label=final.name))


def _import_report_modules() -> None:
    """Import the report's modules (matplotlib, python-docx, XlsxWriter: about a second and a half here) while the
    replications run in worker processes and this process only waits for them, instead of after them; the report
    imports them again, finding them loaded. An import that fails here fails there too, with its message."""
    with contextlib.suppress(Exception):
        import xlsxwriter  # noqa: F401

        import sim.outputs.report
        import sim.outputs.report.figures
        import sim.outputs.report.word  # noqa: F401


def build_report(folder: Path, label: str) -> list[Path]:
    """sim.outputs.report.build_report, imported when a report is made: the report's modules (its content,
    assumptions, workbook, Word writer) need not load for `run --no-report`."""
    from sim.outputs.report import build_report as build
    return build(folder, label=label)


def _assumption_sources(files: list[Path], loaded: list[tuple[Scenario, dict]],
                        overrides: list[str]) -> dict[str, dict[str, str]]:
    """Per scenario, the [S]/[D]/[E] comments of its files (sim.scenario.sources) less the keys --set changed, for
    the report's key assumptions. The files were read moments ago; one that cannot be read again has none."""
    out: dict[str, dict[str, str]] = {}
    for (scenario, _), file in zip(loaded, files, strict=True):
        try:
            out[scenario.name] = without_overridden(stated_sources(file), overrides)
        except (OSError, ValueError, InputFileError):
            out[scenario.name] = {}
    return out


def _headline(args: argparse.Namespace, first: Scenario, loaded: list[tuple[Scenario, dict]],
              summary: pd.DataFrame, comparison: pd.DataFrame | None, names: list[str], replications: int,
              hw: float) -> list[str]:
    """The console headline: each scenario's clearance dates and peak list, the comparison, the precision."""
    lines: list[str] = []
    for scenario, _ in loaded:
        lines += headline(summary, scenario.title, scenario.name, scenario.start_date, replications,
                          scenario.horizon_weeks)
        lines.append(f"  {describe_uncertainty(scenario.parameter_intervals)}"
                     + (" ([low, high] inputs fixed at their midpoints by --fix-parameters.)" if args.fix_parameters
                        else ""))
    if comparison is not None:
        lines += comparison_lines(comparison, names[0])
    if np.isfinite(hw):
        lines.append(f"  The mean 52-week clearance is known to within +/- {hw:.1f} weeks (95% confidence interval, "
                     f"{replications} replications; `--replications auto` runs until +/- "
                     f"{first.run.target_half_width_weeks:g}).")
    elif replications > 1:
        lines.append("  The mean 52-week clearance cannot be pinned down: some replications did not clear within "
                     "the horizon (lengthen horizon_weeks).")
    return lines


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)
