"""The report layer: built from a run folder's saved files alone, self-contained, honest about spread."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

import sim.experiment.replications
import sim.model.replication
from helpers import BASELINE, ROOT, run_cli
from sim.outputs import charts, forking, report, run_reader
from sim.outputs.report import figures
from sim.outputs.safe_text import md_text

pytestmark = pytest.mark.integration

# the uncalibrated plan (helpers.BASELINE), run under the name and title the report's sentences are checked against;
# 30 weeks: its 52-week backlog clears in weeks 17-18 (19-20 with fewer sessions), so every replication clears
FAST = ["--replications", "3", "--set", "horizon_weeks=30", "--set", "referrals.referrals_per_week=3000",
        "--set", "name=baseline", "--set", 'title="Baseline: June 2021 plan"']
# A second scenario with fewer theatre sessions at one site: same seed, so replications are paired.
FEWER = ["--set", "name=fewer_sessions", "--set", "title=Fewer sessions at LNWH",
         "--set", "sites.lnwh.theatres.sessions_by_weekday.mon=20",
         "--set", "sites.lnwh.theatres.sessions_by_weekday.tue=20"]
EXPECTED_CHARTS = ("waiting_over_52w", "waiting_list", "activity", "sessions_lost", "clearance_dates")
RUN_FILES = ("scenario.yaml", "manifest.json", "weekly.csv", "replications.csv", "summary.csv",
             "waits_by_priority.csv", "weekly_by_site.csv")


def run(out: Path, *extra: str) -> None:
    """A run's folder, without its own report: every test here builds the report from the saved files."""
    proc = run_cli("run", str(BASELINE), *FAST, *extra, "--no-report", "--quiet", "--out", str(out))
    assert proc.returncode == 0, f"expected run_sim.py to exit 0, saw {proc.returncode}: {proc.stderr}"


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy2(src / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real runs (baseline and fewer sessions), made once for the module."""
    base = tmp_path_factory.mktemp("report")
    run(base / "baseline")
    run(base / "fewer", *FEWER)
    return base


@pytest.fixture
def no_model(monkeypatch):
    """The report must never call the model."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the report called the model; it must read only the saved files")
    monkeypatch.setattr(sim.model.replication, "run_single", forbidden)
    monkeypatch.setattr(sim.experiment.replications, "run_replications", forbidden)


@pytest.fixture(scope="module")
def single(runs, tmp_path_factory):
    """The baseline run's report, its charts drawn one after another in this process (no worker processes): the
    reference the charts drawn in worker processes are compared with. Tests only read this folder."""
    folder = copy_run(runs / "baseline", tmp_path_factory.mktemp("single") / "run")
    mp = pytest.MonkeyPatch()
    try:
        def forbidden(*args, **kwargs):
            raise AssertionError("the report called the model; it must read only the saved files")
        mp.setattr(sim.model.replication, "run_single", forbidden)
        mp.setattr(sim.experiment.replications, "run_replications", forbidden)
        mp.setattr(figures, "chart_workers", lambda: 1)
        written = report.build_report(folder)
    finally:
        mp.undo()
    return folder, written


def combine(folders: list[Path], out: Path) -> Path:
    """A folder holding several scenarios: the CSVs concatenated, the scenarios as YAML documents."""
    out.mkdir(parents=True)
    for name in ("weekly.csv", "replications.csv", "summary.csv", "weekly_by_site.csv"):
        pd.concat([pd.read_csv(f / name) for f in folders], ignore_index=True).to_csv(out / name, index=False)
    docs = [yaml.safe_load((f / "scenario.yaml").read_text()) for f in folders]
    (out / "scenario.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    shutil.copy2(folders[0] / "manifest.json", out / "manifest.json")
    return out


@pytest.fixture(scope="module")
def compared(runs, tmp_path_factory):
    folder = combine([runs / "baseline", runs / "fewer"], tmp_path_factory.mktemp("compared") / "run")
    return folder, report.build_report(folder)


# ---------------------------------------------------------------------------------------------------------------


def test_the_report_sets_the_run_beside_the_published_figures_in_every_output(single):
    """A run from June 2021 covers published months: the section is in report.md and the workbook has its sheet
    (its numbers: tests/test_report_published.py)."""
    folder, _ = single
    assert "## Against the published figures" in (folder / "report.md").read_text(encoding="utf-8")
    assert "published" in openpyxl.load_workbook(folder / "results.xlsx", read_only=True).sheetnames


def test_report_html_is_self_contained_with_headline_and_provenance(single):
    folder, written = single
    page = folder / "report.html"
    assert page.exists(), f"expected {page} to be written; written were {written}"
    text = page.read_text(encoding="utf-8")
    assert 'src="http' not in text and "href=\"http" not in text, "expected no external links in report.html"
    assert not re.search(r"<(script|link)\b", text), "expected no scripts or linked stylesheets in report.html"
    n_images = text.count("data:image/png;base64,")
    assert n_images >= len(EXPECTED_CHARTS), f"expected ≥{len(EXPECTED_CHARTS)} embedded PNGs, saw {n_images}"
    date = r"\d{1,2} [A-Z][a-z]+ \d{4}"
    headline = re.compile(r"Under <em>Baseline: June 2021 plan</em>, the last patient waiting over 52 weeks is "
                          rf"treated in the week of {date} \(median of 3 replications\); "
                          rf"in 90% of replications (between {date} and {date}|that same week)\.")
    assert headline.search(text), "expected the 52-week headline sentence in report.html; headlines seen: " + \
        "; ".join(re.findall(r"<li>(Under.*?)</li>", text))
    commit = json.loads((folder / "manifest.json").read_text())["git_commit"]
    assert commit in text, f"expected the git commit {commit} in the provenance block"


def test_headline_week_is_the_monday_of_week_w_minus_1(single):
    folder, _ = single
    reps = pd.read_csv(folder / "replications.csv")
    w = int(reps["weeks_to_clear_52w"].median())                 # 3 replications: the median is one of them
    start = dt.date.fromisoformat(str(yaml.safe_load((folder / "scenario.yaml").read_text())["start_date"]))
    monday = start + dt.timedelta(days=7 * (w - 1))
    text = (folder / "report.md").read_text(encoding="utf-8")
    month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[monday.month - 1]
    expected = f"over 52 weeks is treated in the week of {monday.day} {month} {monday.year}"
    assert expected in text, f"expected '{expected}' (start + 7(w-1) days, w={w}) in report.md"
    assert monday.weekday() == 0, f"expected a Monday, saw {monday:%A}"


def test_markdown_and_charts_written(single):
    folder, written = single
    md = folder / "report.md"
    assert md.exists(), "expected report.md"
    text = md.read_text(encoding="utf-8")
    for stem in EXPECTED_CHARTS:
        for ext in ("png", "svg"):
            f = folder / "charts" / f"{stem}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f"expected chart {f} (non-empty)"
            assert f in written, f"expected {f} in build_report's returned list"
        assert f"charts/{stem}.png" in text, f"expected report.md to reference charts/{stem}.png"
    weekly = pd.read_csv(folder / "weekly.csv")
    has_vaccinations = "vaccinations" in weekly and weekly["vaccinations"].notna().any()
    assert (folder / "charts" / "vaccinations.png").exists() == has_vaccinations, \
        f"expected a vaccinations chart exactly when weekly.csv has vaccinations (has: {has_vaccinations})"
    leftovers = [p.name for p in folder.rglob("*") if "partial-" in p.name]
    assert not leftovers, f"expected no temporary files left behind, saw {leftovers}"


def test_workbook_sheets_and_weekly_rows(single):
    folder, _ = single
    wb = openpyxl.load_workbook(folder / "results.xlsx")
    assert wb.sheetnames[0] == "Summary", f"expected the Summary sheet first, saw {wb.sheetnames}"
    for sheet in ("statistics", "weekly", "comparison", "assumptions", "provenance"):
        assert sheet in wb.sheetnames, f"expected sheet {sheet!r}, saw {wb.sheetnames}"
    weekly_rows = len(pd.read_csv(folder / "weekly.csv"))
    assert wb["weekly"].max_row - 1 == weekly_rows, \
        f"expected {weekly_rows} data rows in the weekly sheet (as weekly.csv), saw {wb['weekly'].max_row - 1}"
    for sheet in ("Summary", "statistics", "weekly", "comparison"):
        assert wb[sheet].freeze_panes is not None, f"expected a frozen header row on {sheet}"
    comparison = pd.read_excel(folder / "results.xlsx", sheet_name="comparison")
    assert len(comparison) == 1, f"expected one comparison row for one scenario, saw {len(comparison)}"
    assert comparison["diff_52w_weeks_p50"].isna().all(), "expected empty difference columns with one scenario"
    cell = wb["comparison"].cell(row=2, column=list(comparison.columns).index("clear_52w_week_p50") + 1)
    assert isinstance(cell.value, dt.datetime), f"expected a real Excel date for the clearance week, saw {cell.value!r}"


def test_by_provider_section_and_sheet_give_each_trust_its_line(single, compared):
    folder, _ = single
    by_site = pd.read_csv(folder / "weekly_by_site.csv")
    names = {k: v["name"] for k, v in yaml.safe_load((folder / "scenario.yaml").read_text())["sites"].items()}
    md = (folder / "report.md").read_text(encoding="utf-8")
    section = md[md.index("## By provider"):]
    section = section[:section.index("\n## ", 1)]
    table_rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Provider")]
    assert len(table_rows) == len(names), f"expected one row per trust ({len(names)}), saw {len(table_rows)}"
    end = by_site["week"].max()
    for site, name in names.items():
        row = next(r for r in table_rows if r.startswith(f"| {md_text(name)} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        last = by_site[(by_site["site"] == site) & (by_site["week"] == end)]
        assert cells[-2] == f"{last['waiting_over_52w'].median():,.0f}", f"{site}: 52+ at the end is not the median"
    assert (folder / "charts" / "waiting_over_52w_by_provider.png").is_file()
    sheet = pd.read_excel(folder / "results.xlsx", sheet_name="by_provider")
    assert len(sheet) == by_site.groupby(["site", "week"]).ngroups
    assert set(sheet["provider"]) == set(names.values())
    medians = by_site.groupby(["site", "week"])["waiting_total"].median()
    assert (sheet.set_index(["site", "week"])["waiting_total"].sort_index() == medians.sort_index()).all()
    # compared: one combined table, a row per trust and a column per scenario
    md2 = (compared[0] / "report.md").read_text(encoding="utf-8")
    section2 = md2[md2.index("## By provider"):]
    header = next(line for line in section2.splitlines() if line.startswith("| Provider"))
    assert header.count("week 52-week waits clear") == 2


def test_two_scenarios_give_a_paired_difference(compared):
    folder, _ = compared
    comparison = pd.read_excel(folder / "results.xlsx", sheet_name="comparison")
    assert list(comparison["scenario"]) == ["baseline", "fewer_sessions"], \
        f"expected one row per scenario in order, saw {list(comparison['scenario'])}"
    reps = pd.read_csv(folder / "replications.csv")
    a = reps[reps["scenario"] == "baseline"].set_index("replication")["weeks_to_clear_52w"]
    b = reps[reps["scenario"] == "fewer_sessions"].set_index("replication")["weeks_to_clear_52w"]
    d = (b - a).dropna()
    row = comparison.set_index("scenario").loc["fewer_sessions"]
    assert row["diff_52w_weeks_p50"] == pytest.approx(float(np.median(d))), \
        f"expected the median paired difference {np.median(d)}, saw {row['diff_52w_weeks_p50']}"
    assert row["diff_52w_pairs"] == len(d), f"expected {len(d)} pairs, saw {row['diff_52w_pairs']}"
    assert pd.isna(comparison.set_index("scenario").loc["baseline", "diff_52w_weeks_p50"]), \
        "expected no difference on the reference row"
    text = (folder / "report.md").read_text(encoding="utf-8")
    assert "Compared with *Baseline: June 2021 plan*, *Fewer sessions at LNWH* clears the 52-week backlog" in text, \
        "expected a comparison headline in report.md"
    for stem in EXPECTED_CHARTS:
        assert (folder / "charts" / f"{stem}.png").exists(), f"expected {stem}.png for the comparison"


def test_percentiles_are_ordered(single, compared):
    for folder, _ in (single, compared):
        run = run_reader.load_run(folder)
        weekly = run.weekly.copy()
        for col in ("waiting_over_52w", "waiting_total", "clock_stops_admitted", "clock_stops_non_admitted"):
            b = charts.weekly_percentiles(weekly, col)
            bad = b[(b["p05"] > b["p50"]) | (b["p50"] > b["p95"])]
            assert bad.empty, f"expected p05 ≤ p50 ≤ p95 in every week of {col}, saw {len(bad)} weeks out of order"
        for c in report.clearance_table(run):
            dates = [x for x in (c.low, c.median, c.high) if x is not None]
            assert dates == sorted(dates), \
                f"expected ordered clearance dates for {c.scenario} {c.threshold}w, saw {dates}"
        comparison = pd.read_excel(folder / "results.xlsx", sheet_name="comparison")
        for t in report.THRESHOLDS:
            for _, row in comparison.iterrows():
                lo, mid, hi = (row[f"clear_{t}w_week_p{q}"] for q in ("05", "50", "95"))
                blank = [pd.isna(x) for x in (lo, mid, hi)]      # blank = not cleared: later than any date
                known = [x for x in (lo, mid, hi) if not pd.isna(x)]
                assert known == sorted(known) and blank == sorted(blank), \
                    f"expected p05 ≤ p50 ≤ p95 clearance weeks in the sheet, saw {lo}, {mid}, {hi}"
                dlo, dmid, dhi = (row[f"diff_{t}w_weeks_p{q}"] for q in ("05", "50", "95"))
                if not pd.isna(dmid):
                    assert dlo <= dmid <= dhi, f"expected ordered paired differences, saw {dlo}, {dmid}, {dhi}"
        summary = pd.read_excel(folder / "results.xlsx", sheet_name="statistics").dropna(subset=["p05", "p50", "p95"])
        bad = summary[(summary["p05"] > summary["p50"] + 1e-9) | (summary["p50"] > summary["p95"] + 1e-9)]
        assert bad.empty, f"expected ordered percentiles in the summary sheet, saw {bad['metric'].tolist()}"


def test_report_module_does_not_import_the_model(single, tmp_path):
    folder = copy_run(single[0], tmp_path / "run")        # a copy: `single` stays as drawn in process
    code = ("import sys; from sim.outputs import report; report.build_report(sys.argv[1]); "
            "bad = [m for m in ('sim.model.replication', 'sim.experiment.replications') if m in sys.modules]; "
            "assert not bad, f'report imported {bad}'")
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, f"expected the report to build without importing the model: {proc.stderr}"


def test_charts_drawn_in_worker_processes_are_the_ones_drawn_in_process(single, runs, tmp_path, monkeypatch,
                                                                         no_model):
    """The report draws its charts in forked processes where it can (figures.drawing): the same files, byte for
    byte, as drawing them one after another in the report's own process (`single`), and the same documents."""
    monkeypatch.setattr(figures, "chart_workers", lambda: 2)
    folders = {1: single[0], 2: copy_run(runs / "baseline", tmp_path / "workers2" / "run")}   # the same name
    report.build_report(folders[2])
    for name in [*(f"charts/{stem}.{ext}" for stem in EXPECTED_CHARTS for ext in ("png", "svg")), "report.md",
                 "report.html"]:
        assert (folders[1] / name).read_bytes() == (folders[2] / name).read_bytes(), \
            f"expected {name} drawn by two worker processes to equal the one drawn in process"


def _pid_chart(folder: Path, stem: str, fail: bool = False) -> figures.Chart:
    """A chart whose building writes the building process's id beside it (or fails, with `fail`)."""
    def build():
        if fail:
            raise ValueError(f"{stem} cannot be drawn")
        with open(folder / f"{stem}.pid", "a", encoding="utf-8") as pid:      # a line each time it is built
            pid.write(f"{os.getpid()}\n")
        fig, axes = charts._new_figure()
        axes[0, 0].plot([0, 1], [0, 1])
        return fig
    return figures.Chart(stem, stem, "", folder, build)


def test_drawing_uses_worker_processes_and_waits_for_every_chart(tmp_path):
    plan = [_pid_chart(tmp_path, f"chart{i}") for i in range(3)]
    with figures.drawing(plan, workers=2) as wait:
        wait()
        written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted([f"chart{i}.{ext}" for i in range(3) for ext in ("pid", "png", "svg")]), \
        f"expected every chart's PNG and SVG written once wait() returned, saw {written}"
    pids = {int((tmp_path / f"chart{i}.pid").read_text()) for i in range(3)}
    assert os.getpid() not in pids, "expected the charts drawn by worker processes, not the report's own"


@pytest.mark.parametrize("workers", [1, 2])
def test_waiting_for_some_charts_returns_once_theirs_are_written(tmp_path, workers):
    """report.docx waits only for the two charts it shows (drawn first); report.html then for all of them. In
    process (one worker) only the charts waited for are drawn, each once."""
    plan = [_pid_chart(tmp_path, f"chart{i}") for i in range(4)]
    with figures.drawing(plan, workers=workers, first=["chart3", "chart1"]) as wait:
        wait(["chart3", "chart1"])
        assert (tmp_path / "chart3.png").is_file() and (tmp_path / "chart1.svg").is_file(), \
            "expected the charts waited for written when wait() returned"
        if workers == 1:
            assert not (tmp_path / "chart0.pid").exists(), "expected no other chart drawn yet in process"
        wait(None)
    builds = [len((tmp_path / f"chart{i}.pid").read_text().splitlines()) for i in range(4)]
    assert builds == [1, 1, 1, 1], f"expected every chart built once by wait(None), saw {builds} builds"


FORK_CHECK = """
import os
from pathlib import Path
from sim.outputs import run_reader
from sim.outputs import forking
assert forking.can_fork(), "a fresh interpreter should have no other thread"
with forking.forked(os.getpid) as result:
    assert result() != os.getpid(), "expected the work done by another process"
with forking.forked(run_reader.load_run, Path("/nonexistent/run")) as result:
    try:
        result()
    except run_reader.RunFolderError as exc:
        assert "/nonexistent/run: no such folder" in str(exc), exc
    else:
        raise AssertionError("expected the forked process's RunFolderError")
print("ok")
"""


def test_forked_work_answers_from_another_process_and_raises_what_it_raised():
    """The report reads the run folder in a forked process while it imports matplotlib (forking.forked). Checked in a
    fresh interpreter: a test process may have threads left by earlier tests (Dask's), and then it must not fork."""
    done = subprocess.run([sys.executable, "-c", FORK_CHECK], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_forked_work_is_done_here_while_another_thread_runs():
    """A fork copies only the calling thread, so with another thread running the work is done in this process."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not forking.can_fork()
        with forking.forked(os.getpid) as result:
            assert result() == os.getpid()
    finally:
        stop.set()
        other.join()


def test_a_chart_that_fails_in_a_worker_fails_the_drawing(tmp_path):
    plan = [_pid_chart(tmp_path, "fine"), _pid_chart(tmp_path, "broken", fail=True)]
    with pytest.raises(ValueError, match="broken cannot be drawn"):
        with figures.drawing(plan, workers=2) as wait:
            wait()
    assert not (tmp_path / "broken.png").exists(), "expected no PNG for the chart that failed"


def _svg_shapes(fig) -> list[tuple[str, str]]:
    """Every path of the figure's SVG with its style, in drawing order."""
    out = io.StringIO()
    fig.savefig(out, format="svg")
    return re.findall(r'<path d="([^"]*)"[^>]*?style="([^"]*)"', out.getvalue(), re.S)


def test_stacked_bars_draw_what_ax_bar_draws():
    """The sessions-lost chart's bars are one collection a cause (charts._stacked_bars), which builds and draws in a
    fraction of the time of ax.bar's patch a bar: the same rectangles in the same colours, in the same order."""
    weeks = pd.Series(pd.date_range("2021-06-07", periods=30, freq="7D"))
    causes = {"#003087": np.arange(30) % 4 * 1.5, "#DA291C": np.where(np.arange(30) % 3 == 0, 0.0, 2.0)}
    shapes = []
    for as_collection in (False, True):
        fig, axes = charts._new_figure()
        ax = axes[0, 0]
        bottom = np.zeros(30)
        for colour, heights in causes.items():
            if as_collection:
                ax.xaxis.update_units(weeks)
                charts._stacked_bars(ax, weeks, heights, bottom, colour=colour, label=colour)
            else:
                ax.bar(weeks, heights, width=6.0, align="edge", bottom=bottom, color=colour, label=colour, linewidth=0)
            bottom = bottom + heights
        ax.legend()
        shapes.append(_svg_shapes(fig))
    assert len(shapes[1]) > 60 and shapes[1] == shapes[0], \
        "expected the collection's SVG to hold ax.bar's rectangles and legend boxes, path for path"


def test_failure_half_way_leaves_no_complete_looking_report(runs, tmp_path, monkeypatch, no_model):
    folder = copy_run(runs / "baseline", tmp_path / "run")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(RuntimeError):
        report.build_report(folder)
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert not (folder / "report.html").exists(), f"expected no report.html after a failure, saw {left}"
    assert not (folder / "results.xlsx").exists() and not (folder / "charts").exists(), \
        f"expected nothing moved into place after a failure, saw {left}"
    assert not [p for p in left if "partial-" in p], f"expected the staging folder removed, saw {left}"


def _synthetic_folder(folder: Path, counts_by_rep: list[list[int]]) -> Path:
    """weekly.csv only: waiting_over_52w per replication, other columns constant."""
    folder.mkdir(parents=True)
    start = dt.date(2021, 6, 7)
    rows = []
    for rep, counts in enumerate(counts_by_rep):
        for w, n in enumerate(counts):
            rows.append({"scenario": "s", "replication": rep, "week_start": (start + dt.timedelta(weeks=w)).isoformat(),
                         "week": w, "waiting_total_start": 100, "waiting_total": 100, "waiting_over_52w": n,
                         "waiting_over_78w": 0, "waiting_over_104w": 0, "clock_stops_admitted": 10,
                         "clock_stops_non_admitted": 20, "theatre_sessions_lost": 1, "theatre_sessions_planned": 10})
    pd.DataFrame(rows).to_csv(folder / "weekly.csv", index=False)
    (folder / "scenario.yaml").write_text("name: s\ntitle: Synthetic\nstart_date: 2021-06-07\nhorizon_weeks: 6\n")
    return folder


def test_not_cleared_is_reported_honestly(tmp_path, no_model):
    # 4 replications; 3 never clear within the 6 weeks, one clears (zero from the end of week 2: w = 3).
    folder = _synthetic_folder(tmp_path / "run", [[5, 4, 0, 0, 0, 0], [5, 5, 5, 5, 5, 5], [5, 5, 5, 5, 5, 5],
                                                  [5, 5, 5, 5, 5, 5]])
    report.build_report(folder)
    text = (folder / "report.md").read_text(encoding="utf-8")
    end = "18 Jul 2021"                           # the Sunday ending week 5
    expected = f"the 52-week backlog had not cleared by {end} (the end of the run) in 3 of 4 replications"
    assert expected in text, f"expected '{expected}' in report.md"
    assert "in the other 1 it cleared in the week of 21 Jun 2021" in text, \
        "expected the one cleared replication's week (w = 3: the Monday of week index 2, 21 Jun 2021)"
    assert (folder / "charts" / "clearance_dates.png").exists(), "expected the clearance chart with not-cleared rows"


def test_single_late_replication_does_not_hide_the_median(tmp_path, no_model):
    # 3 replications clear (w = 2, 3, 3), 1 does not: the median clears, the 95th percentile does not.
    folder = _synthetic_folder(tmp_path / "run", [[5, 0, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0],
                                                  [5, 5, 5, 5, 5, 5]])
    report.build_report(folder)
    text = (folder / "report.md").read_text(encoding="utf-8")
    expected = ("is treated in the week of 21 Jun 2021 (median of 4 replications); in 90% of replications no "
                "earlier than 14 Jun 2021, and in 1 of 4 replications the 52-week backlog had not cleared by "
                "18 Jul 2021, the end of the run.")
    assert expected in text, (f"expected '{expected}' (median w = 3 → week index 2; p05 w = 2.15 rounded down to 2 "
                              "→ week index 1; p95 not cleared) in report.md")
