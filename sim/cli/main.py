"""Command line of the capacity simulator: run, compare, sweep, solve, validate, report and backtest.

Each command is a module of sim.cli with its parser and what it does; options several commands share are in
sim.cli.options. This module builds the parser and turns expected failures into exit codes.

Exit codes: 0 success; 2 bad scenario, bad option or bad output destination (one line per problem, no
traceback), a failure while writing (the line says where the finished results were kept), or output closed early
(`run ... | head`: the line says where the results were written); 130 interrupted by Ctrl-C (SIGINT), 143 stopped
by SIGTERM (`kill`, a scheduler's or container's stop). SIGTERM takes Ctrl-C's path: pending replications are
cancelled and worker processes ended without tracebacks. The line printed then says what is left, for the
command that was stopped: nothing (stopped while the replications ran, or `validate`), the tables already written
kept as NAME.incomplete-<stamp> and where (stopped while writing; never a folder that looks complete, nor a hidden
partial one), the results in place without their report (stopped while the report was made), what had already
been written, or for `report` that the run's own files are unchanged.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from sim.experiment.errors import ExecutorError
from sim.outputs.destination import recording_writes
from sim.outputs.run_folder import PROJECT_ROOT, OutputError
from sim.scenario.schema import ScenarioError

DEFAULT_SCENARIO = PROJECT_ROOT / "scenarios" / "baseline.yaml"
# Each command and the module of sim.cli that registers and runs it, in the order `--help` lists them.
COMMAND_MODULES = {"run": "run", "compare": "run", "sweep": "sweep", "solve": "solve", "validate": "validate",
                   "report": "report", "backtest": "backtest", "calibrate": "calibrate"}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it takes Ctrl-C's path (workers stopped, nothing half written)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)      # a second SIGTERM does not interrupt the clean-up
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises Terminated (a KeyboardInterrupt); the previous handler after."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:                  # not the main thread (main() called from a thread): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """The command line's parser. When `argv` names a command, only that command's module is imported and
    registered: each imports what its command needs (`report` matplotlib but not the model, `run` the model but
    not the solver), which is most of a short command's time. Otherwise (`--help`, no command, a mistyped one)
    every command is registered, so the help and the error list them all."""
    parser = argparse.ArgumentParser(prog="run_sim.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    named = argv[0] if argv and argv[0] in COMMAND_MODULES else None
    modules = [COMMAND_MODULES[named]] if named else list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in modules:
        module = importlib.import_module(f"sim.cli.{name}")
        register = module.add_parsers if name == "run" else module.add_parser   # `run` registers run and compare
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the command, and turn expected failures into an exit code and one line each."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv).parse_args(argv)
    if args.command is None:   # `python run_sim.py` / `make run`: the baseline, on every core
        argv = ["run", str(DEFAULT_SCENARIO), "--jobs", str(os.cpu_count() or 1)]
        args = _parser(argv).parse_args(argv)
    if hasattr(args, "jobs"):  # before the memory check, which multiplies by the replications running at once
        from sim.cli.options import limit_jobs  # the commands that run replications import it anyway
        limit_jobs(args)
    with recording_writes() as written:
        try:
            with _sigterm_as_interrupt():
                return args.handler(args)
        except ScenarioError as exc:
            for line in exc.problems:
                print(f"error: {line}", file=sys.stderr)
            return 2
        except (OutputError, ExecutorError) as exc:
            print(f"error: {'; '.join([str(exc), *getattr(exc, '__notes__', [])])}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            _stdout_to_devnull()
            with contextlib.suppress(OSError):
                print("error: a pipe closed before the command finished (Broken pipe; its output piped into `head`?)"
                      + (f"; the results were written to {', '.join(map(str, written))}" if written else ""),
                      file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            print(f"\n{how}: {_what_is_left(args.command, exc, written)}", file=sys.stderr)
            return 143 if isinstance(exc, Terminated) else 130


def _what_is_left(command: str, stop: KeyboardInterrupt, written: list[Path]) -> str:
    """What a stopped command leaves, true for each command: what the writing said (kept where, or in place
    without its report), what had already been written, else what stopping at that point means."""
    said = list(getattr(stop, "__notes__", []))
    earlier = [str(path) for path in written if not any(str(path) in note for note in said)]
    if earlier:
        said.append(f"already written: {', '.join(earlier)}")
    if said:
        return "; ".join(said)
    if command == "report":
        return ("stopped before the report was finished; the run's own files (tables, manifest, scenario) are "
                "unchanged")
    if command == "validate":
        return "stopped; validate writes nothing"
    return "stopped the replications; no results written"


def _stdout_to_devnull() -> None:
    """After a broken pipe: send what is left of standard output nowhere, so that Python's flush at exit does
    not fail again with a traceback."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
