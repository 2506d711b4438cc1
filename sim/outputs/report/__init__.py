"""The report for a finished run folder: charts, report.md, a self-contained report.html, report.docx (a Word
board paper) and results.xlsx.

Reads only the saved files of the folder (sim.outputs.run_reader.load_run), never the model, so every chart and
table can be made again from results/ (the command line's `report`, sim.cli.report; this layer prints nothing):

    python run_sim.py report results/baseline/20210629-120000

Public entry point: `build_report(run_dir, formats=...) -> list[Path]` (the files written). `formats` picks the
documents (FORMATS: docx, html, md); all of them, the default, also writes results.xlsx. Everything is first written
into a hidden staging folder inside the run folder (`.report.nwlsim-partial-PID`, sim.outputs.work_files) and
then renamed into place, report.html last, so a failure half way leaves no report.html that looks complete (and no
half-updated charts). A staging folder left by a killed report is removed by the next report of that folder.

The package, by job: `content` (what the report says), `assumptions` (the assumptions and provenance
tables), `figures` (which charts), `documents` (blocks rendered to Markdown and HTML), `workbook`
(results.xlsx), `summary` (the summary table and headlines every report opens with), `word` (report.docx) and
`format` (numbers, dates and money).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sim.outputs.analysis import CLEARANCE_THRESHOLDS as THRESHOLDS
from sim.outputs.forking import forked
from sim.outputs.report.assumptions import assumptions_frame, provenance_rows
from sim.outputs.report.content import (
    Clearance,
    activity_baselines,
    build_documents,
    clearance_table,
    comparison_frame,
    paired_differences,
)
from sim.outputs.report.documents import Document, render_html, render_markdown
from sim.outputs.report.published import published_fits, published_sheet
from sim.outputs.report.summary import summary_frame
from sim.outputs.report.word import KEY_CHARTS as WORD_CHARTS
from sim.outputs.report.workbook import write_workbook
from sim.outputs.run_folder import CHARTS_DIR, REPORT_DOCX, REPORT_HTML, REPORT_MD, RESULTS_XLSX
from sim.outputs.run_reader import RunFolder, load_run
from sim.outputs.work_files import clean_stale_work, work_name

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from sim.outputs.report.figures import Chart, ChartsWritten

# The entry point, and what tests reach through the package (render_html is replaced there to fail half way).
__all__ = ["FORMATS", "THRESHOLDS", "build_report", "clearance_table", "render_html"]

FORMATS = ("docx", "html", "md")     # `report --format`; "all" is these and results.xlsx


def render_docx(doc: Document, path: Path) -> None:
    """sim.outputs.report.word.render_docx, imported when a Word document is written (python-docx and lxml load
    in about a tenth of a second, which commands that write no report need not pay)."""
    from sim.outputs.report.word import render_docx as write
    write(doc, path)


def import_charts() -> None:
    """Import sim.outputs.report.figures and with it matplotlib (plan_charts below says why it is not at the top)."""
    import sim.outputs.report.figures  # noqa: F401


def plan_charts(run: RunFolder, clearances: list[Clearance], baselines: dict[str, dict],
                folder: Path) -> list[Chart]:
    """sim.outputs.report.figures.plan_charts, imported when a report is drawn: matplotlib and the charts
    module take a third of a second or more to load, which `run --no-report` (and every command that draws
    nothing, since the command line imports this package) need not pay."""
    from sim.outputs.report.figures import plan_charts as plan
    return plan(run, clearances, baselines, folder)


def drawing(plan: list[Chart], first: Sequence[str] = ()) -> AbstractContextManager[ChartsWritten]:
    """sim.outputs.report.figures.drawing: the charts drawn on every core while the documents are written,
    those named in `first` first."""
    from sim.outputs.report.figures import drawing as draw
    return draw(plan, first=first)


def build_report(run_dir: Path, label: str | None = None, formats: tuple[str, ...] | None = None) -> list[Path]:
    """Write charts/ (PNG and SVG), results.xlsx, report.md, report.docx and report.html into `run_dir`; return
    the paths. `formats` (some of FORMATS): only those documents and the charts, no workbook; None: everything.

    `label`: given by a run (sim.cli.run) for the work folder it has just written, which is renamed to `label`
    beside it once complete. It names the run in the report, and the folder in any message (`run_dir`'s hidden
    work name would mean nothing once renamed), and the files are read without comparing them with this
    machine's memory: the run held these tables in memory moments ago. Without it (`report DIR`), the folder
    may be anything, and a file the machine cannot hold as the report reads it is refused (load_run).

    Reads only the saved files of the folder. All outputs are written into a hidden staging folder first and
    moved into place when every one of them is complete, report.html last.
    """
    run_dir = Path(run_dir)
    if label is None:
        reading = forked(load_run, run_dir)
    else:
        reading = forked(load_run, run_dir, check_memory=False, shown=run_dir.with_name(label))
    with reading as run_read:               # the folder is read by another process while this one imports
        import_charts()                     # matplotlib: each takes a third of a second or more
        run = run_read()
    run.label = label or run_dir.name
    clean_stale_work(run_dir)                   # a killed report's staging folder (its PID gone)
    staging = run_dir / work_name("report", "partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        clearances = clearance_table(run)
        diffs = paired_differences(run)
        baselines, notes = activity_baselines(run)
        chart_list = plan_charts(run, clearances, baselines, staging / CHARTS_DIR)
        wanted = set(FORMATS if formats is None else formats)
        names = []                              # moved into place in this order, report.html last
        assumptions = assumptions_frame(run)
        provenance = provenance_rows(run)
        against_published = published_fits(run)     # for the documents and the workbook alike
        doc = build_documents(run, clearances, diffs, baselines, notes, {c.stem: c.figure() for c in chart_list},
                              assumptions, provenance, against_published)
        # The workbook (XlsxWriter's XML, a few seconds for ten replications' weekly rows) is written by a process
        # of its own while the charts are drawn on every core and the documents written here; forked before the
        # drawing starts its pool, whose threads would make forking unsafe (sim.outputs.forking).
        workbook = (forked(write_workbook, staging / RESULTS_XLSX, run, comparison_frame(run, clearances, diffs),
                           assumptions, provenance, summary_frame(doc.summary_table()),
                           published_sheet(against_published))
                    if formats is None else contextlib.nullcontext(lambda: None))
        with workbook as workbook_written, drawing(chart_list, first=WORD_CHARTS) as charts_written:
            if formats is None:
                names.append(RESULTS_XLSX)
            if "md" in wanted:
                (staging / REPORT_MD).write_text(render_markdown(doc), encoding="utf-8")
                names.append(REPORT_MD)
            if "docx" in wanted:
                charts_written(WORD_CHARTS)     # the Word paper embeds these, drawn first
                render_docx(doc, staging / REPORT_DOCX)
                names.append(REPORT_DOCX)
            charts_written(None)                # report.html embeds every PNG
            workbook_written()
        if "html" in wanted:
            (staging / REPORT_HTML).write_text(render_html(doc), encoding="utf-8")
            names.append(REPORT_HTML)

        written: list[Path] = []
        (run_dir / CHARTS_DIR).mkdir(exist_ok=True)
        for c in chart_list:
            for f in c.files:
                final = run_dir / CHARTS_DIR / f.name
                os.replace(f, final)
                written.append(final)
        for name in names:
            final = run_dir / name
            os.replace(staging / name, final)
            written.append(final)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
