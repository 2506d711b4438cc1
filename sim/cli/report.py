"""`report`: make the charts, report and workbook again from a saved results folder (the model is not run).

    python run_sim.py report RESULTS_DIR [--format docx|html|md|all]

`--format all` (the default) writes the charts, results.xlsx, report.md, report.html and report.docx; one format
writes the charts and that document only (no workbook), which is quicker.

The folder may not be one a run wrote (tampered with, foreign, half written, left by a killed run): it is checked
before anything is drawn (sim.outputs.run_reader.load_run) and refused with one line, exit 2, writing nothing into
it: also a folder that cannot be read (a symbolic link that loops, no permission), with the system's reason, and
a file larger than this machine's memory can hold as the report reads it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sim.outputs.report import FORMATS, build_report
from sim.outputs.run_folder import REPORT_DOCX, REPORT_HTML, REPORT_MD
from sim.outputs.run_reader import RunFolderError, is_partial_folder
from sim.outputs.safe_text import one_line


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `report` on the command line's subparsers."""
    p = sub.add_parser("report", help="make charts, report and workbook again from a saved results folder")
    p.add_argument("results_dir", type=Path)
    p.add_argument("--format", choices=[*FORMATS, "all"], default="all", dest="report_format",
                   help="which document to write: docx (Word board paper), html, md, or all (default: all, with "
                        "results.xlsx)")
    p.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Rebuild the report of a finished results folder (one that holds weekly.csv)."""
    folder = args.results_dir
    if is_partial_folder(folder):
        raise RunFolderError(f"{folder}: an unfinished run (partial folder); nothing to report")
    try:
        chosen = getattr(args, "report_format", "all")
        written = build_report(folder, formats=None if chosen == "all" else (chosen,))
    except RunFolderError:
        raise
    except OSError as exc:                      # the folder's files were read; writing the report failed
        raise RunFolderError(f"{folder}: could not write the report ({exc.strerror or one_line(exc)[:200]})"
                             ) from None
    except Exception as exc:                    # a foreign folder that passed the checks, yet the report fails
        raise RunFolderError(f"{folder}: the report could not be made from this folder's files "
                             f"({type(exc).__name__}: {one_line(exc)[:200]})") from None
    main_file = {"docx": REPORT_DOCX, "md": REPORT_MD}.get(chosen, REPORT_HTML)
    print(f"Report: {folder / main_file} ({len(written)} files)")
    return 0
