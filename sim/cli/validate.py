"""`validate`: check a scenario file, with its --set overrides, and say what it holds or every problem.

    python run_sim.py validate FILE.yaml [--set dotted.key=value ...]

Builds the scenario exactly as `run` does (sim.scenario.build), so the RTT file and the calibrations are checked
too; nothing is run or written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sim.scenario.build import load_scenario
from sim.scenario.intervals import describe_uncertainty


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `validate` on the command line's subparsers."""
    p = sub.add_parser("validate", help="check a scenario file and report every problem")
    p.add_argument("scenario", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value")
    p.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Print what the scenario holds, the start list's notes and which inputs are ranges."""
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
