"""Options and helpers shared by the commands that run the model (run, compare, sweep, backtest).

Where replications run (the executor), how progress is shown, and where results go: `--out` exactly, or a new
timestamped folder under the results root (`results/` in the project; the hidden `--results-root` moves it,
which is how the tests keep their runs out of the project). The destination is probed and reserved before any
replication runs (sim.outputs.destination.reserve_destination).

Limits: `--replications` and `--jobs` are whole numbers of 1 or more (argparse error, exit 2, otherwise);
`--jobs` above this machine's cores is cut to the number of cores with a one-line note (more processes than
cores only share them, and every executor gives the same tables whatever the number).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from sim.experiment.executors import EXECUTORS, ReplicationExecutor, make_executor, stop
from sim.outputs.destination import Destination, reserve_destination, reserve_new_run_dir
from sim.outputs.monthly_fit import parse_month_window
from sim.outputs.run_folder import PROJECT_ROOT
from sim.scenario.observed import ObservedDataError, ObservedSeries, load_observed, parse_month
from sim.scenario.schema import ScenarioError

DEFAULT_RESULTS_ROOT = PROJECT_ROOT / "results"


def _replications(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, or 'auto', got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return n


def add_run_options(p: argparse.ArgumentParser, report: bool = True) -> None:
    """The options every command that runs a scenario file shares (run, compare, backtest)."""
    p.add_argument("--replications", type=_replications,
                   help="number of replications, or 'auto' (until the 95%% CI of the mean 52-week clearance is "
                        "within +/- run.target_half_width_weeks; overrides run.replications)")
    p.add_argument("--seed", type=int, help="experiment seed (overrides run.seed)")
    add_output_options(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                   help="override a scenario value, e.g. --set sites.imperial.elective_beds=120")
    add_executor_options(p)
    add_fix_parameters_option(p)
    if report:
        p.add_argument("--no-report", action="store_true", help="skip charts, report and workbook (faster)")
    p.add_argument("--quiet", action="store_true", help="print only the headline")


def add_output_options(p: argparse.ArgumentParser) -> None:
    """--out, and the hidden --results-root under which a run without --out gets a new folder."""
    p.add_argument("--out", type=Path, help="write exactly here (must be new or empty)")
    p.add_argument("--results-root", type=Path, default=DEFAULT_RESULTS_ROOT, help=argparse.SUPPRESS)


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """Where replications run (sim.experiment.executors): every executor gives identical tables for the same seed."""
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="run replications in this many local processes (or local Dask workers)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this process or --jobs local processes; dask: a Dask distributed cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: the scheduler to use, e.g. tcp://10.0.0.5:8786 "
                        "(default: start a local cluster of --jobs workers)")


def add_fix_parameters_option(p: argparse.ArgumentParser) -> None:
    """--fix-parameters: run every [low, high] input at its midpoint (sim.scenario.intervals)."""
    p.add_argument("--fix-parameters", action="store_true",
                   help="use the midpoint of every [low, high] input instead of drawing it per replication "
                        "(intervals then show run-to-run variation only)")


def reserve_output(args: argparse.Namespace, name: str) -> Destination:
    """Where the command writes, probed and reserved before anything runs: --out, or a new timestamped folder
    `name/...` under the results root. Use it with `with`, which lets go of the reservation at the end."""
    if args.out is not None:
        return reserve_destination(Path(args.out), "--out")
    return reserve_new_run_dir(args.results_root, name)


def limit_jobs(args: argparse.Namespace) -> None:
    """Cut `--jobs` to this machine's cores (with a one-line note) when the workers would run here: local
    processes, or a local Dask cluster. A Dask scheduler's own workers are not counted. Called once, by
    sim.cli.main, before the command runs."""
    if getattr(args, "scheduler", None):
        return
    cores = os.cpu_count() or 1
    if args.jobs > cores:
        print(f"note: --jobs {args.jobs} is more than this machine's {cores} cores; using {cores}", file=sys.stderr)
        args.jobs = cores


@contextlib.contextmanager
def executor_for(args: argparse.Namespace) -> Iterator[ReplicationExecutor]:
    """The executor the options ask for, shared by every scenario of the command; after Ctrl-C or an error
    its workers are terminated at once instead of finishing their replications. `--jobs` is as sim.cli.main left
    it (cut to the cores by `limit_jobs`, once, before the memory check that counts it)."""
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


def progress_reporter(args: argparse.Namespace, label: str,
                      total: int | Literal["auto"]) -> Callable[[Any, int], None] | None:
    """Replications done: a progress bar on a terminal, one line per replication in a log, nothing if --quiet.
    `total` is the number of replications, or `auto` when it is not known yet (the first report sets it).
    A caller that runs a command in-process may put its own report on the arguments as `progress`, a function of
    (label, total) giving the callback (the web app's progress bar, sim.app); it is used even with --quiet."""
    own = getattr(args, "progress", None)
    if own is not None:
        return own(label, total)
    if getattr(args, "quiet", False):
        return None
    if sys.stderr.isatty():
        from tqdm import tqdm
        # no monitor thread: it would outlive the bar, and a process with another thread running must not fork, so
        # the report that follows a run would draw its charts on one core (sim.outputs.forking)
        tqdm.monitor_interval = 0
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


def month_window(text: str) -> tuple[pd.Period, pd.Period]:
    """An argparse type: `YYYY-MM:YYYY-MM` (sim.outputs.monthly_fit.parse_month_window)."""
    try:
        return parse_month_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def month(text: str) -> pd.Period:
    """An argparse type: `YYYY-MM`."""
    try:
        return parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def read_observed(path: Path, option: str) -> ObservedSeries:
    """A tidy monthly series given with `option`; a bad file is a ScenarioError (exit 2) naming the option."""
    try:
        return load_observed(path)
    except ObservedDataError as exc:
        raise ScenarioError([f"{option} {line}" for line in exc.problems]) from None
