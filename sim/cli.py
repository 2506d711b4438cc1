"""Command line: `run`, `validate`. Thin over config -> experiment -> analysis -> results.

Exit codes: 0 success, 2 bad scenario or bad output folder (one line per problem, no traceback),
130 interrupted (no folder that looks complete is left behind).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from sim.analysis import headline, replication_kpis, summarise
from sim.config import ScenarioError, load_scenario
from sim.experiment import run_replications
from sim.results import (PROJECT_ROOT, OutputError, atomic_run_dir, check_out_dir, default_run_dir, write_manifest,
                         write_resolved_scenario)

DEFAULT_SCENARIO = PROJECT_ROOT / "scenarios" / "baseline.yaml"
RESULTS_ROOT = PROJECT_ROOT / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_sim.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a scenario and write results/<scenario>/<timestamp>/")
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--replications", type=int, help="number of replications (overrides run.replications)")
    run.add_argument("--seed", type=int, help="experiment seed (overrides run.seed)")
    run.add_argument("--out", type=Path, help="write exactly here (must not already hold a run)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                     help="override a scenario value, e.g. --set sites.imperial.elective_beds=120")
    run.add_argument("--quiet", action="store_true", help="print only the headline")

    val = sub.add_parser("validate", help="check a scenario file and report every problem")
    val.add_argument("scenario", type=Path)
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        args = _parser().parse_args(["run", str(DEFAULT_SCENARIO)])
    try:
        if args.command == "validate":
            return _validate(args)
        return _run(args)
    except ScenarioError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no results written", file=sys.stderr)
        return 130


def _validate(args: argparse.Namespace) -> int:
    scenario, _ = load_scenario(args.scenario, args.overrides)
    print(f"OK: {args.scenario} — {scenario.title}: {len(scenario.specialties)} specialties, "
          f"{len(scenario.sites)} sites, {len(scenario.boroughs)} boroughs, {scenario.horizon_weeks} weeks "
          f"from {scenario.start_date.isoformat()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.replications is not None:
        overrides.append(f"run.replications={args.replications}")
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    scenario, raw = load_scenario(args.scenario, overrides)
    if args.out is not None:
        check_out_dir(args.out)
        final = args.out
    else:
        final = default_run_dir(RESULTS_ROOT, scenario.name)

    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()

    def progress(res, n: int) -> None:
        if not args.quiet:
            print(f"  replication {res.replication + 1}/{n}: {res.pathways_simulated:,} pathways "
                  f"in {res.wall_seconds:.1f} s", file=sys.stderr)

    if not args.quiet:
        print(f"Running {scenario.name} ({scenario.run.replications} replications, seed {scenario.run.seed})",
              file=sys.stderr)
    result = run_replications(scenario, on_done=progress)
    kpis = replication_kpis(result.weekly)
    summary = summarise(kpis)
    with atomic_run_dir(final) as folder:
        write_resolved_scenario(folder, raw)
        result.weekly.to_csv(folder / "weekly.csv", index=False)
        kpis.to_csv(folder / "replications.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)
        result.waits_by_priority.to_csv(folder / "waits_by_priority.csv", index=False)
        write_manifest(folder, scenario=scenario.name, scenario_file=str(args.scenario), overrides=args.overrides,
                       seed=result.seed, replications=result.replications,
                       pathways_simulated=result.pathways_simulated,
                       wall_time_seconds=round(time.perf_counter() - t0, 2),
                       started_at=started.isoformat(timespec="seconds"),
                       finished_at=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    for line in headline(summary, scenario.title, scenario.name, scenario.start_date, result.replications,
                         scenario.horizon_weeks):
        print(line)
    print(f"Results: {final}")
    return 0
