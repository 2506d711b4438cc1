"""`solve`: what would it take? The smallest lever value at which enough replications meet a target by a date.

    python run_sim.py solve FILE.yaml --target max_wait_weeks=52 --by 2022-03-31 --confidence 0.8
                            --lever theatre_sessions_per_week [--site NAME] [--specialty NAME] [--min A --max B]
                            [--replications N] [--jobs N] [--steady-state] [--out DIR] [--set key=value ...]

The search and the levers are sim.experiment.solver. Every option is checked, the scenario built at both ends of
the range and its draws checked, and the destination probed and reserved, before anything runs, so bad input
writes nothing (exit 2, one line naming the option). `--steady-state` without `--target` prints the fluid steady
state alone and writes nothing. The folder: solve.csv, solved_scenario.yaml, solve.png/.svg, solve_finance.csv
(with a finance section), solve.md, solve.xlsx and manifest.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import sys
import time
from pathlib import Path

from sim.cli.options import (
    add_executor_options,
    add_fix_parameters_option,
    add_output_options,
    executor_for,
    positive_int,
    progress_reporter,
    reserve_output,
)
from sim.experiment.solver import (
    LEVERS,
    Lever,
    LeverSetting,
    SolveProblem,
    SteadyState,
    parse_target,
    solve,
    steady_state,
)
from sim.outputs.run_folder import (
    SOLVE_CHART,
    SOLVE_CSV,
    SOLVE_FINANCE_CSV,
    SOLVE_MD,
    SOLVE_XLSX,
    SOLVED_SCENARIO_YAML,
    write_manifest,
    write_resolved_scenario,
)
from sim.outputs.safe_text import terminal_text
from sim.outputs.solve_report import (
    answer_sentence,
    cost_of_change,
    solve_markdown,
    steady_sentence,
    write_solve_workbook,
)
from sim.scenario.build import check_draws, load_scenario
from sim.scenario.schema import Scenario, ScenarioError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `solve` on the command line's subparsers."""
    p = sub.add_parser("solve", help="the smallest lever value that meets a target by a date with a confidence")
    p.add_argument("scenario", type=Path)
    p.add_argument("--target", metavar="KIND=VALUE",
                   help="max_wait_weeks=52|78|104 (nobody over N weeks), list_at_most=X, within_18_weeks=0.92")
    p.add_argument("--by", metavar="YYYY-MM-DD", help="the date the target must hold at")
    p.add_argument("--confidence", default="0.8", help="share of replications that must meet it (default 0.8)")
    p.add_argument("--lever", metavar="LEVER", help="one of: " + ", ".join(LEVERS))
    p.add_argument("--site", help="put the lever's capacity at this site only")
    p.add_argument("--specialty", help="put the lever's capacity in this specialty only")
    p.add_argument("--min", dest="low", metavar="A", help="start of the search range (default: the lever's own)")
    p.add_argument("--max", dest="high", metavar="B", help="end of the search range (default: the lever's own)")
    p.add_argument("--step", metavar="S", help="precision of the answer (default: the lever's own)")
    p.add_argument("--replications", type=positive_int,
                   help="replications of every evaluation (default: run.replications)")
    p.add_argument("--seed", type=int, help="experiment seed (overrides run.seed)")
    p.add_argument("--steady-state", action="store_true",
                   help="also give the lever value at which the list stops growing (fluid balance, no simulation); "
                        "alone, without --target, only that")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                   help="override a scenario value before solving, e.g. --set covid.wave_peak_multiplier=1.5")
    add_output_options(p)
    add_executor_options(p)
    add_fix_parameters_option(p)
    p.add_argument("--quiet", action="store_true", help="print only the headline")
    p.set_defaults(handler=run_solve)


def _number(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError([f"{option} {text!r}: not a number"]) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ScenarioError([f"{option} {text!r}: not a finite number"])
    return value


def _date(text: str | None) -> dt.date:
    if text is None:
        raise ScenarioError(["--by: give the date the target must hold at, as YYYY-MM-DD"])
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ScenarioError([f"--by {text!r}: not a date; expected YYYY-MM-DD"]) from None


def _lever(name: str | None) -> Lever:
    if name is None:
        raise ScenarioError(["--lever: give one of " + ", ".join(LEVERS)])
    if name not in LEVERS:
        raise ScenarioError([f"--lever {name!r}: unknown lever; choose one of {', '.join(LEVERS)}"])
    return LEVERS[name]


def _check_place(lever: Lever, scenario: Scenario, site: str | None, specialty: str | None) -> None:
    if site is not None:
        if not lever.uses_site:
            raise ScenarioError([f"--site {site}: {lever.name} acts on the whole scenario; --site applies to "
                                 "theatre_sessions_per_week, outpatient_first_slots_per_week and "
                                 "independent_sector_sessions_per_week"])
        if site not in scenario.sites:
            raise ScenarioError([f"--site {site!r}: no such site; the scenario's sites are "
                                 f"{', '.join(scenario.sites)}"])
    if specialty is not None:
        if not lever.uses_specialty:
            raise ScenarioError([f"--specialty {specialty}: {lever.name} acts on every specialty; --specialty "
                                 "applies to the session and slot levers"])
        if specialty not in scenario.specialties:
            raise ScenarioError([f"--specialty {specialty!r}: no such specialty; the scenario's specialties are "
                                 f"{', '.join(scenario.specialties)}"])


def _problem(args: argparse.Namespace, lever: Lever, by: dt.date | None) -> SolveProblem:
    """The problem, every option checked against the scenario (ScenarioError naming the option). Without a date
    (--steady-state alone) the fluid balance is taken a year from the start."""
    base = load_scenario(args.scenario, args.overrides)
    sc = base.scenario
    if by is None:
        by = sc.start_date + dt.timedelta(weeks=52)
    _check_place(lever, sc, args.site, args.specialty)
    setting = LeverSetting(sc, base.raw, args.site, args.specialty)
    lever.check(setting)
    step = _number(args.step, "--step")
    if step is not None:
        if step <= 0:
            raise ScenarioError([f"--step {args.step}: must be above 0"])
        lever = dataclasses.replace(lever, step=step)
    low_default, high_default = lever.bounds(setting)
    low_limit, high_limit = lever.limits(setting)
    low = _number(args.low, "--min")
    high = _number(args.high, "--max")
    low = low_default if low is None else low
    high = high_default if high is None else high
    if not low_limit <= low <= high_limit:
        raise ScenarioError([f"--min {low:g}: {lever.name} must lie within [{low_limit:g}, {high_limit:g}]"])
    if not low_limit <= high <= high_limit:
        raise ScenarioError([f"--max {high:g}: {lever.name} must lie within [{low_limit:g}, {high_limit:g}]"])
    if high - low < lever.step:
        raise ScenarioError([f"--max {high:g}: must be at least one step ({lever.step:g}) above --min {low:g}"])
    high = lever.grid_value(low, int(math.floor((high - low) / lever.step + 1e-9)))   # the last value searched
    confidence = _number(args.confidence, "--confidence")
    if confidence is None or not 0 < confidence <= 1:
        raise ScenarioError([f"--confidence {args.confidence}: a share above 0 and at most 1 (e.g. 0.8)"])
    if by <= sc.start_date:
        raise ScenarioError([f"--by {by.isoformat()}: not after the scenario's start date {sc.start_date.isoformat()}"])
    if isinstance(sc.run.replications, int):
        replications = args.replications or sc.run.replications
    else:
        replications = args.replications or sc.run.min_replications
    target = parse_target(args.target, by) if args.target is not None else parse_target("max_wait_weeks=52", by)
    return SolveProblem(args.scenario, list(args.overrides), lever, target, confidence, replications,
                        args.seed if args.seed is not None else sc.run.seed, low, high, args.site, args.specialty,
                        bool(args.fix_parameters))


def _check_ends(problem: SolveProblem, args: argparse.Namespace) -> None:
    """Build the scenario at both ends of the range (a value the schema refuses names --min or --max) and check
    every replication's draws and the memory, before anything runs."""
    for option, value in (("--min", problem.low), ("--max", problem.high)):
        try:
            built = problem.built(value)
        except ScenarioError as exc:
            raise ScenarioError([f"{option} {value:g}: {problem.lever.name} makes a scenario that is refused: {line}"
                                 for line in exc.problems]) from None
        check_draws(problem.scenario_at(value), problem.seed, problem.replications, source=args.scenario,
                    workers=args.jobs)
        del built


def _command(args: argparse.Namespace, problem: SolveProblem) -> str:
    """The command that reproduces this solve, for solve.md."""
    parts = ["python run_sim.py solve", str(args.scenario), f"--target {args.target}",
             f"--by {problem.target.by.isoformat()}", f"--confidence {problem.confidence:g}",
             f"--lever {problem.lever.name}", f"--min {problem.low:g}", f"--max {problem.high:g}",
             f"--step {problem.lever.step:g}", f"--replications {problem.replications}", f"--seed {problem.seed}"]
    parts += [f"--{k} {v}" for k, v in (("site", args.site), ("specialty", args.specialty)) if v]
    parts += [f"--set {o}" for o in args.overrides]
    return " ".join(parts + (["--fix-parameters"] if args.fix_parameters else []))


def run_solve(args: argparse.Namespace) -> int:
    """Solve for the lever value (sim.experiment.solver.solve) and write the folder; print the answer."""
    lever = _lever(args.lever)
    if args.target is None and not args.steady_state:
        raise ScenarioError(["--target: give KIND=VALUE (max_wait_weeks=52, list_at_most=X, within_18_weeks=0.92), "
                             "or --steady-state alone"])
    by = _date(args.by) if args.target is not None or args.by is not None else None
    if args.target is not None and by is not None:
        parse_target(args.target, by)          # a bad target is named before the scenario is loaded
    problem = _problem(args, lever, by)
    title = terminal_text(problem.scenario.title)
    steady: SteadyState | None = steady_state(problem) if args.steady_state else None
    if args.target is None:
        assert steady is not None
        print(f"{title}: {steady_sentence(steady, lever.unit, problem.low, problem.high)}")
        return 0
    _check_ends(problem, args)
    with reserve_output(args, f"solve-{problem.scenario.name}") as destination:
        t0 = time.perf_counter()
        if not args.quiet:
            print(f"Solving {lever.name} for {problem.target.describe()}, {problem.confidence:.0%} of "
                  f"{problem.replications} replications (seed {problem.seed})", file=sys.stderr)
        with executor_for(args) as runner:
            result = solve(problem, runner,
                           lambda label: progress_reporter(args, label, problem.replications))
        table = result.table()
        cost = None
        prices = problem.scenario.finance
        if result.answer is not None and prices is not None:
            solved = result.evaluation_at(result.answer)
            assert solved is not None
            cost = cost_of_change(result.starting.weekly, solved.weekly, prices)
        headline = answer_sentence(result, cost, title)
        tables = {SOLVE_CSV: table} | ({SOLVE_FINANCE_CSV: cost} if cost is not None else {})
        command = _command(args, problem)
        with destination.writing(tables) as out:
            if result.answer is not None:
                solved_raw = problem.built(result.answer, whole_horizon=True).raw
                solved_raw = {**solved_raw, "name": f"{problem.scenario.name}_solved",
                              "title": f"{problem.scenario.title} + {lever.name} = {result.answer:g} (solved)"}
                write_resolved_scenario(out.path, solved_raw, SOLVED_SCENARIO_YAML, header=(
                    f"The scenario solved by `run_sim.py solve`: {lever.name} = {result.answer:g} ({lever.unit}) "
                    f"for {problem.target.describe()},\nin {problem.confidence:.0%} of {problem.replications} "
                    f"replications. Inheritance, --set overrides and the lever's overrides applied:\n"
                    + "\n".join(f"  --set {o}" for o in problem.lever_overrides(result.answer))))
            (out.path / SOLVE_MD).write_text(solve_markdown(result, cost, problem.scenario.title, steady, command),
                                             encoding="utf-8")
            write_solve_workbook(out.path / SOLVE_XLSX, result, table, cost, problem.scenario.title, steady, command)
            write_manifest(out.path, scenario=problem.scenario.name, overrides=args.overrides, lever=lever.name,
                           lever_unit=lever.unit, step=lever.step, search_range=[problem.low, problem.high],
                           site=args.site, specialty=args.specialty, target=problem.target.describe(),
                           by=problem.target.by, confidence=problem.confidence, seed=problem.seed,
                           replications=problem.replications, answer=result.answer,
                           fluid_estimate=result.fluid_value, monotone=result.monotone,
                           lever_overrides=problem.lever_overrides(result.answer) if result.answer is not None else [],
                           steady_state=None if steady is None else steady.value, jobs=args.jobs,
                           executor=args.executor, parameters_fixed_at_midpoints=bool(args.fix_parameters),
                           evaluations=len(result.evaluations), wall_time_seconds=round(time.perf_counter() - t0, 2))
            from sim.outputs.charts import save_figure, solve_chart  # matplotlib: loaded only by the commands that draw
            out.report(lambda folder: save_figure(solve_chart(
                table, lever_unit=lever.unit, confidence=problem.confidence, answer=result.answer,
                fluid=result.fluid_value, title=f"What would it take? {problem.scenario.title}",
                target=problem.target.describe()), folder, SOLVE_CHART), what="chart", retry=False)
    print(headline)
    if not result.monotone:
        print("  Not monotone: " + "; ".join(f"{a:g} gave {sa:.0%} but {b:g} gave {sb:.0%}"
                                             for a, sa, b, sb in result.drops))
    if steady is not None:
        print("  " + steady_sentence(steady, lever.unit, problem.low, problem.high))
    print(f"Results: {destination.final}")
    return 0
