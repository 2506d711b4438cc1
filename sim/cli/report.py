"""`report`: make the charts, report and workbook again from a saved results folder (the model is not run).

    python run_sim.py report RESULTS_DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sim.outputs.report import build_report
from sim.outputs.run_folder import REPORT_HTML, WEEKLY_CSV, OutputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `report` on the command line's subparsers."""
    p = sub.add_parser("report", help="make charts, report and workbook again from a saved results folder")
    p.add_argument("results_dir", type=Path)
    p.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Rebuild the report of a finished results folder (one that holds weekly.csv)."""
    folder = args.results_dir
    if not (folder / WEEKLY_CSV).is_file():
        raise OutputError(f"{folder}: not a finished results folder (no weekly.csv)")
    written = build_report(folder)
    print(f"Report: {folder / REPORT_HTML} ({len(written)} files)")
    return 0
