"""Command line: `run`, `compare`, `validate`, `report`. Thin over config -> experiment -> analysis -> results.

Exit codes: 0 success, 2 bad scenario or bad output folder (one line per problem, no traceback),
130 interrupted (no folder that looks complete is left behind).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from sim.outputs.analysis import (comparison_lines, headline, paired_comparison, replication_kpis, summarise,
                          target_probabilities)
from sim.scenario.build import check_draws, load_scenario
from sim.scenario.schema import ScenarioError
from sim.experiment.executors import EXECUTORS, ExecutorError, ReplicationExecutor, make_executor, stop
from sim.experiment.replications import run_replications
from sim.outputs import finance
from sim.outputs.report import build_report
from sim.scenario.intervals import describe_uncertainty, intervals_show, without_parameter_uncertainty
from sim.outputs.run_folder import (PROJECT_ROOT, OutputError, atomic_run_dir, check_out_dir, default_run_dir, write_manifest,
                         write_resolved_scenario)

DEFAULT_SCENARIO = PROJECT_ROOT / "scenarios" / "baseline.yaml"
RESULTS_ROOT = PROJECT_ROOT / "results"


def _replications(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'auto', got {text!r}") from None


def add_run_options(p: argparse.ArgumentParser, report: bool = True) -> None:
    """The options every command that runs the model shares (run, compare, backtest)."""
    p.add_argument("--replications", type=_replications,
                   help="number of replications, or 'auto' (until the 95%% CI of the mean 52-week clearance is "
                        "within +/- run.target_half_width_weeks; overrides run.replications)")
    p.add_argument("--seed", type=int, help="experiment seed (overrides run.seed)")
    p.add_argument("--out", type=Path, help="write exactly here (must be new or empty)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                   help="override a scenario value, e.g. --set sites.imperial.elective_beds=120")
    add_executor_options(p)
    add_fix_parameters_option(p)
    if report:
        p.add_argument("--no-report", action="store_true", help="skip charts, report and workbook (faster)")
    p.add_argument("--quiet", action="store_true", help="print only the headline")


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return n


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """Where replications run (sim.experiment.executors): every executor gives identical tables for the same seed."""
    p.add_argument("--jobs", type=_jobs, default=1,
                   help="run replications in this many local processes (or local Dask workers)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this process or --jobs local processes; dask: a Dask distributed cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: the scheduler to use, e.g. tcp://10.0.0.5:8786 "
                        "(default: start a local cluster of --jobs workers)")


def add_fix_parameters_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fix-parameters", action="store_true",
                   help="use the midpoint of every [low, high] input instead of drawing it per replication "
                        "(intervals then show run-to-run variation only)")


@contextlib.contextmanager
def executor_for(args: argparse.Namespace) -> Iterator[ReplicationExecutor]:
    """The executor the options ask for, shared by every scenario of the command; after Ctrl-C or an error
    its workers are terminated at once instead of finishing their replications."""
    runner: ReplicationExecutor | None = None
    finished = False
    try:
        runner = make_executor(args.jobs, getattr(args, "executor", "local"), getattr(args, "scheduler", None))
        if not getattr(args, "quiet", False) and runner.workers > 1:
            print(f"Running replications on {runner.describe()}", file=sys.stderr)
        yield runner
        finished = True
    finally:
        if runner is not None:
            stop(runner, interrupted=not finished)


def progress_reporter(args: argparse.Namespace, label: str, total: int) -> Callable[[Any, int], None] | None:
    """Replications done: a progress bar on a terminal, one line per replication in a log, nothing if --quiet."""
    if getattr(args, "quiet", False):
        return None
    if sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=total if isinstance(total, int) else None, desc=label, unit="replication",
                   file=sys.stderr, leave=True, dynamic_ncols=True)

        def tick(res: Any, of: int) -> None:
            if bar.total != of:
                bar.total = of
                bar.refresh()
            bar.update(1)
            if bar.n >= bar.total:
                bar.close()             # prints the finished bar and its line stays
        return tick

    done = 0

    def line(res: Any, of: int) -> None:
        nonlocal done
        done += 1
        print(f"  {label}: {done}/{of} done (replication {res.replication}: {res.pathways_simulated:,} pathways "
              f"in {res.wall_seconds:.1f} s)", file=sys.stderr)
    return line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_sim.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a scenario and write results/<scenario>/<timestamp>/")
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    add_run_options(run)

    compare = sub.add_parser("compare", help="run scenarios with the same seeds and compare them with the first")
    compare.add_argument("scenarios", type=Path, nargs="+", help="scenario YAML files; the first is the reference")
    add_run_options(compare)

    sweep = sub.add_parser("sweep", help="run the full factorial of --set key=v1,v2,... with the same seeds")
    sweep.add_argument("scenario", type=Path)
    sweep.add_argument("--set", dest="factors", action="append", default=[], metavar="dotted.key=v1,v2,...",
                       help="a factor and its levels (repeat for more factors)")
    sweep.add_argument("--replications", type=int)
    sweep.add_argument("--seed", type=int)
    sweep.add_argument("--out", type=Path)
    add_executor_options(sweep)
    add_fix_parameters_option(sweep)
    sweep.add_argument("--quiet", action="store_true")

    val = sub.add_parser("validate", help="check a scenario file and report every problem")
    val.add_argument("scenario", type=Path)
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value")

    rep = sub.add_parser("report", help="make charts, report and workbook again from a saved results folder")
    rep.add_argument("results_dir", type=Path)
    from sim.outputs.backtest import add_backtest_parser  # issue 6: `backtest` lives in sim/backtest.py
    add_backtest_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:   # `python run_sim.py` / `make run`: the baseline, on every core
        args = _parser().parse_args(["run", str(DEFAULT_SCENARIO), "--jobs", str(os.cpu_count() or 1)])
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "report":
            return _report(args)
        if args.command == "backtest":
            from sim.outputs.backtest import run_backtest
            return run_backtest(args)
        if args.command == "compare":
            return _run(args, args.scenarios)
        if args.command == "sweep":
            return _sweep(args)
        return _run(args, [args.scenario])
    except ScenarioError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (OutputError, ExecutorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: stopped the replications; no results written", file=sys.stderr)
        return 130


def _validate(args: argparse.Namespace) -> int:
    built = load_scenario(args.scenario, args.overrides)
    scenario = built.scenario
    print(f"OK: {args.scenario} — {scenario.title}: {len(scenario.specialties)} specialties, "
          f"{len(scenario.sites)} sites, {len(scenario.boroughs)} boroughs, {scenario.horizon_weeks} weeks "
          f"from {scenario.start_date.isoformat()}")
    for line in built.notes:
        print(f"  {line}")
    if scenario.parameter_intervals:
        print(f"  {describe_uncertainty(scenario.parameter_intervals)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    folder = args.results_dir
    if not (folder / "weekly.csv").is_file():
        raise OutputError(f"{folder}: not a finished results folder (no weekly.csv)")
    written = build_report(folder)
    print(f"Report: {folder / 'report.html'} ({len(written)} files)")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    """Full factorial over the given factors; one tidy table (sweep.csv) and a heat map of the median
    52-week clearance. Every combination uses the same seed and replications (common random numbers)."""
    import itertools

    factors: list[tuple[str, list[str]]] = []
    for text in args.factors:
        if "=" not in text or not text.split("=", 1)[1]:
            raise ScenarioError([f"--set {text!r}: expected dotted.key=v1,v2,..."])
        key, levels = text.split("=", 1)
        factors.append((key.strip(), [v.strip() for v in levels.split(",")]))
    if not factors:
        raise ScenarioError(["sweep: give at least one --set key=v1,v2,..."])
    base = load_scenario(args.scenario).scenario
    replications = args.replications or base.run.replications
    seed = args.seed if args.seed is not None else base.run.seed
    combos = list(itertools.product(*[levels for _, levels in factors]))
    # validate every combination before running any (bad input loses nothing)
    variants = []
    for combo in combos:
        sets = [f"{k}={v}" for (k, _), v in zip(factors, combo)]
        label = ", ".join(sets)
        variant = load_scenario(args.scenario, sets + [f"run.replications={replications}", f"run.seed={seed}"])
        sc, raw = variant.scenario, variant.raw
        if args.fix_parameters:
            sc = without_parameter_uncertainty(sc)
        variants.append((combo, label, sc, raw))
    for _, _, sc, _ in variants:
        check_draws(sc, seed, replications, source=args.scenario)
    final = args.out if args.out is not None else default_run_dir(RESULTS_ROOT, f"sweep-{base.name}")
    if args.out is not None:
        check_out_dir(args.out)
    t0 = time.perf_counter()
    rows = []
    with executor_for(args) as runner:
        for i, (combo, label, sc, _) in enumerate(variants):
            res = run_replications(sc, executor=runner,
                                   on_done=progress_reporter(args, f"[{i + 1}/{len(variants)}] {label}", replications))
            summary = summarise(replication_kpis(res.weekly))
            shows = intervals_show(sc.parameter_intervals)
            for _, r in summary.iterrows():
                rows.append({**{k: v for (k, _), v in zip(factors, combo)}, "metric": r["metric"],
                             "mean": r["mean"], "p05": r["p05"], "p50": r["p50"], "p95": r["p95"],
                             "intervals_show": shows})
    table = pd.DataFrame(rows)
    with atomic_run_dir(final) as folder:
        write_resolved_scenario(folder, variants[0][3])
        table.to_csv(folder / "sweep.csv", index=False)
        _sweep_heatmap(table, [k for k, _ in factors], folder / "sweep_heatmap.png", base.start_date)
        write_manifest(folder, scenario=base.name, factors=dict(factors), seed=seed, replications=replications,
                       jobs=args.jobs, executor=args.executor, parameters_fixed_at_midpoints=bool(args.fix_parameters),
                       uncertainty=describe_uncertainty(variants[0][2].parameter_intervals),
                       wall_time_seconds=round(time.perf_counter() - t0, 2))
    clear = table[table["metric"] == "weeks_to_clear_52w"]
    for _, r in clear.iterrows():
        when = ("not reached within the horizon" if np.isnan(r["p50"])
                else f"from {(base.start_date + dt.timedelta(weeks=int(r['p50']))).isoformat()} (median)")
        print(f"  {', '.join(f'{k}={r[k]}' for k, _ in factors)}: nobody over 52 weeks {when}")
    print(f"Results: {final}")
    return 0


def _sweep_heatmap(table: pd.DataFrame, keys: list[str], path: Path, start: dt.date) -> None:
    """Median weeks to clear 52-week waits for each combination of the first two factors (others: first level)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table[table["metric"] == "weeks_to_clear_52w"].copy()
    for k in keys[2:]:
        t = t[t[k] == t[k].iloc[0]]
    rows_key, cols_key = keys[0], (keys[1] if len(keys) > 1 else None)
    grid = (t.pivot_table(index=rows_key, columns=cols_key, values="p50", sort=False, dropna=False)
            if cols_key else t.set_index(rows_key)[["p50"]])
    values = grid.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(max(6.5, 2.5 + 1.6 * grid.shape[1]), max(3.8, 1.8 + 0.7 * grid.shape[0])))
    cmap = matplotlib.colormaps["Blues_r"].copy()
    cmap.set_bad("#E8EDEE")                                # pale grey: not cleared within the horizon
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns] if cols_key else ["all"])
    ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index])
    ax.set_xlabel(cols_key.split(".")[-1] if cols_key else "")
    ax.set_ylabel(rows_key.split(".")[-1])
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if len(finite) else 0
    for (i, j), v in np.ndenumerate(values):
        text = "not cleared" if np.isnan(v) else (start + dt.timedelta(weeks=int(v))).strftime("%b %Y")
        ax.text(j, i, text, ha="center", va="center", fontsize=9,
                color="white" if np.isfinite(v) and v < middle else "#231f20")
    ax.set_title("Nobody waiting over 52 weeks from (median of replications)\n"
                 f"rows: {rows_key}" + (f"; columns: {cols_key}" if cols_key else ""), fontsize=9, color="#003087")
    fig.colorbar(im, ax=ax, label="weeks from the start")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run(args: argparse.Namespace, files: list[Path]) -> int:
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
    comparing = len(loaded) > 1
    if args.out is not None:
        check_out_dir(args.out)
        final = args.out
    else:
        final = default_run_dir(RESULTS_ROOT, "compare" if comparing else first.name)

    for (scenario, _), file in zip(loaded, files):   # every scenario's draws before anything runs
        check_draws(scenario, seed, replications, source=file)
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    results = []
    with executor_for(args) as runner:
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
    replications = results[0].replications
    weekly = pd.concat([r.weekly for r in results], ignore_index=True)
    kpis = replication_kpis(weekly)
    summary = pd.concat([summarise(kpis)] + [
        target_probabilities(kpis, sc.name, sc.start_date, {52: sc.targets.no_52w_waiters_by,
                                                            78: sc.targets.no_78w_waiters_by,
                                                            104: sc.targets.no_104w_waiters_by}, sc.horizon_weeks)
        for sc, _ in loaded if sc.targets], ignore_index=True)
    # which kind of uncertainty each scenario's percentiles show (a board paper must say)
    summary["intervals_show"] = summary["scenario"].map(
        {sc.name: intervals_show(sc.parameter_intervals) for sc, _ in loaded})
    comparison = paired_comparison(kpis, names[0]) if comparing else None
    with atomic_run_dir(final) as folder:
        if comparing:
            (folder / "scenarios").mkdir()
            for (scenario, raw) in loaded:
                write_resolved_scenario(folder / "scenarios", raw, f"{scenario.name}.yaml")
        else:
            write_resolved_scenario(folder, loaded[0][1])
        weekly.to_csv(folder / "weekly.csv", index=False)
        kpis.to_csv(folder / "replications.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)
        if comparison is not None:
            comparison.to_csv(folder / "comparison.csv", index=False)
        parameters = pd.concat([r.parameters for r in results], ignore_index=True)
        if len(parameters):
            parameters.to_csv(folder / "parameters.csv", index=False)
        pd.concat([r.by_specialty for r in results]).to_csv(folder / "weekly_by_specialty.csv", index=False)
        cohorts = pd.concat([r.vaccination_by_cohort for r in results])
        if len(cohorts):
            cohorts.to_csv(folder / "vaccination_by_cohort.csv", index=False)
        pd.concat([r.waits_by_priority.assign(scenario=r.scenario.name) for r in results]).to_csv(
            folder / "waits_by_priority.csv", index=False)
        finances = {sc.name: sc.finance for sc, _ in loaded if sc.finance is not None}
        if finances:
            months = finance.monthly(weekly, finances)
            months.to_csv(folder / "finance_monthly.csv", index=False)
            finance.by_financial_year(months, names[0] if comparing else None).to_csv(
                folder / "finance_by_year.csv", index=False)
        write_manifest(folder, scenario=names if comparing else names[0],
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
                       start_list_notes={name: lines for name, lines in notes.items() if lines},
                       pathways_simulated=sum(r.pathways_simulated for r in results),
                       wall_time_seconds=round(time.perf_counter() - t0, 2),
                       started_at=started.isoformat(timespec="seconds"),
                       finished_at=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
        if not args.no_report:
            build_report(folder, label=final.name)
    for scenario, _ in loaded:
        for line in headline(summary, scenario.title, scenario.name, scenario.start_date, replications,
                             scenario.horizon_weeks):
            print(line)
        print(f"  {describe_uncertainty(scenario.parameter_intervals)}"
              + (" ([low, high] inputs fixed at their midpoints by --fix-parameters.)" if args.fix_parameters else ""))
    if comparison is not None:
        for line in comparison_lines(comparison, names[0]):
            print(line)
    hw = results[0].clearance_half_width_weeks
    if np.isfinite(hw):
        print(f"  The mean 52-week clearance is known to within +/- {hw:.1f} weeks (95% confidence interval, "
              f"{replications} replications; `--replications auto` runs until +/- "
              f"{first.run.target_half_width_weeks:g}).")
    elif replications > 1:
        print("  The mean 52-week clearance cannot be pinned down: some replications did not clear within the "
              "horizon (lengthen horizon_weeks).")
    print(f"Results: {final}" + ("" if args.no_report else f"  (report: {final / 'report.html'})"))
    return 0
