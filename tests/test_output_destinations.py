"""Output destinations: a bad one is refused before any replication runs, two runs never share a folder, a
failure while writing loses no finished replication, SIGTERM stops like Ctrl-C, killed runs' leftovers are
cleaned, and option values that make no sense are refused (issue 12, patterns 1, 2 and 5 on the writing side).

Everything runs in-process on a one-site, four-week scenario, except the SIGTERM test, which must signal a
real process with real workers.
"""
from __future__ import annotations

import datetime as dt
import errno
import gc
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import types
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sim.cli.backtest
import sim.cli.calibrate
import sim.cli.options
import sim.cli.report
import sim.cli.run
import sim.cli.sweep
import sim.cli.validate
import sim.outputs.report
import sim.scenario.build
import sim.scenario.resources
from helpers import ROOT, processes_left, simple_raw, stop_run_after_first_replication
from sim.cli import main as cli
from sim.experiment.executors import InProcess
from sim.outputs import destination, run_folder, work_files
from sim.outputs.destination import reserve_destination, reserve_new_run_dir
from sim.outputs.run_folder import (
    MANIFEST_JSON,
    REPLICATIONS_CSV,
    SUMMARY_CSV,
    WEEKLY_CSV,
    OutputError,
)
from sim.outputs.work_files import clean_stale_work
from sim.scenario.schema import ScenarioError

pytestmark = pytest.mark.integration

DEAD_PID = 4_194_399            # above the largest PID Linux hands out (2**22): never a live process
QUIET = ["--replications", "1", "--set", "horizon_weeks=4", "--quiet", "--no-report"]


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """The one-site test model as a scenario file (four weeks by default: a run takes a fraction of a second)."""
    path = tmp_path / "simple.yaml"
    path.write_text(yaml.safe_dump(simple_raw(horizon_weeks=4), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def no_replications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any replication starts: a refused destination must be refused before that."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a replication ran before the destination was refused")
    for module in (sim.cli.run, sim.cli.sweep, sim.cli.backtest):
        monkeypatch.setattr(module, "run_replications", refuse)


@pytest.fixture
def jobs_started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """On a machine of 3 cores, the worker counts executors are started with (each runs in this process)."""
    started: list[int] = []

    def executor(jobs: int, executor: str = "local", scheduler: str | None = None) -> InProcess:
        started.append(jobs)
        return InProcess()
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    monkeypatch.setattr(sim.cli.options, "make_executor", executor)
    return started


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden work (locks, probes, partial folders) left in a folder tree."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


# ---------------------------------------------------------------------------------------------------------------
# 1. Destinations that can never work are refused before anything runs
# ---------------------------------------------------------------------------------------------------------------

def _under_a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file" / "run"


def _a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


def _dangling(tmp: Path) -> Path:
    (tmp / "link").symlink_to(tmp / "gone")
    return tmp / "link"


def _under_dangling(tmp: Path) -> Path:
    (tmp / "link").symlink_to(tmp / "gone")
    return tmp / "link" / "run"


def _not_empty(tmp: Path) -> Path:
    (tmp / "full").mkdir()
    (tmp / "full" / "notes.txt").write_text("mine")
    return tmp / "full"


def _holds_a_run(tmp: Path) -> Path:
    (tmp / "done").mkdir()
    (tmp / "done" / MANIFEST_JSON).write_text("{}")
    return tmp / "done"


REFUSED = {
    "under a file": (_under_a_file, "a_file is a file, not a folder"),
    "is a file": (_a_file, "exists and is not a folder"),
    "in /proc": (lambda tmp: Path("/proc/self/results"), "inside /proc, a system pseudo-filesystem"),
    "in /sys": (lambda tmp: Path("/sys/results"), "inside /sys, a system pseudo-filesystem"),
    "in /dev": (lambda tmp: Path("/dev/results"), "inside /dev, a system pseudo-filesystem"),
    "dangling symlink": (_dangling, "is a symbolic link to"),
    "under a dangling symlink": (_under_dangling, "link is a symbolic link to"),
    "not empty": (_not_empty, "folder is not empty"),
    "holds a run": (_holds_a_run, "already holds a run"),
    # a finished run so named would be removed by the next clean_stale_work beside it, or refused by `report`
    "named as a partial folder": (lambda tmp: tmp / ".a.nwlsim-partial-99999999", "named like the simulator's "
                                  "unfinished work"),
    "named as an older partial folder": (lambda tmp: tmp / ".a.partial-123", "named like the simulator's "
                                         "unfinished work"),
    "inside a folder named as a probe": (lambda tmp: tmp / f".a.nwlsim-probe-{DEAD_PID}" / "run",
                                         "named like the simulator's unfinished work"),
    "named as a lock": (lambda tmp: tmp / ".a.nwlsim-lock", "named like the simulator's unfinished work"),
    "last name over NAME_MAX": (lambda tmp: tmp / ("a" * 301), "File name too long"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_a_destination_that_cannot_work_is_refused_before_any_replication(case, scenario, tmp_path, capsys,
                                                                          no_replications):
    """Each gets exit 2 and one line naming --out, the path and why; nothing is created or left behind."""
    make, why = REFUSED[case]
    out = make(tmp_path)
    before = sorted(os.listdir(tmp_path))
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: --out {out}: ") and why in line, line
    assert sorted(os.listdir(tmp_path)) == before, "a refused destination must leave nothing behind"


@pytest.mark.parametrize("command", ["run", "compare", "sweep", "backtest"])
def test_every_command_that_writes_a_folder_probes_it_first(command, scenario, tmp_path, capsys, no_replications):
    """run, compare, sweep and backtest share the probe: a folder under a file is refused before anything runs."""
    out = _under_a_file(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**simple_raw(horizon_weeks=4), "name": "other"}), encoding="utf-8")
    monthly = ["--set", "horizon_weeks=9", "--monthly", str(ROOT / "data" / "observed" / "nwl_monthly.csv")]
    args = {"run": ["run", str(scenario), *QUIET],
            "compare": ["compare", str(scenario), str(other), *QUIET],
            "sweep": ["sweep", str(scenario), "--set", "horizon_weeks=3,4", "--replications", "1", "--quiet"],
            "backtest": ["backtest", str(scenario), "--replications", "1", "--quiet", *monthly]}[command]
    assert cli.main([*args, "--out", str(out)]) == 2
    assert "a_file is a file, not a folder" in one_error_line(capsys)


@pytest.mark.parametrize("option", ["--out", "--report-dir"])
def test_calibrate_probes_its_scenario_file_and_report_folder_first(option, scenario, tmp_path, capsys, monkeypatch):
    """calibrate writes a scenario file (--out FILE.yaml) and a fit report folder: both refused before the fit."""
    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fit ran before the destination was refused")
    monkeypatch.setattr(sim.cli.calibrate, "fit", no_fit)
    bad = _under_a_file(tmp_path)
    out = bad.with_suffix(".yaml") if option == "--out" else tmp_path / "calibrated.yaml"
    report = bad if option == "--report-dir" else tmp_path / "report"
    code = cli.main(["calibrate", str(scenario), "--observed", str(ROOT / "data" / "observed" / "nwl_monthly.csv"),
                     "--admitted-share-from", str(ROOT / "data" / "observed" / "england_monthly.csv"),
                     "--window", "2021-07:2021-08", "--out", str(out), "--report-dir", str(report), "--quiet"])
    assert code == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {option} ") and "a_file is a file, not a folder" in line, line
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_mount_point_as_out_is_refused(scenario, tmp_path, capsys, monkeypatch, no_replications):
    """The finished folder is renamed into place from beside --out, which cannot cross onto another filesystem."""
    mount = tmp_path / "mounted"
    mount.mkdir()
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real_ismount(p))
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(mount)]) == 2
    assert "is a mount point" in one_error_line(capsys)


@pytest.mark.parametrize("failure, words", [(errno.EROFS, "Read-only file system"),
                                            (errno.EACCES, "Permission denied"),
                                            (errno.ENOSPC, "No space left on device")])
def test_a_destination_that_cannot_be_written_is_found_by_trying(failure, words, scenario, tmp_path, capsys,
                                                                 monkeypatch, no_replications):
    """The probe really creates a folder and a file beside --out; the filesystem's refusal is the message (made
    to refuse here by patching, since chmod does not bind root)."""
    real_mkdir = os.mkdir

    def refusing_mkdir(path, *args, **kwargs):
        if Path(path).parent == tmp_path / "ro":
            raise OSError(failure, os.strerror(failure), str(path))
        return real_mkdir(path, *args, **kwargs)
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "mkdir", refusing_mkdir)
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(tmp_path / "ro" / "run")]) == 2
    line = one_error_line(capsys)
    assert f"cannot write in {tmp_path / 'ro'} ({words})" in line, line
    assert os.listdir(tmp_path / "ro") == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="chmod does not stop root")
def test_a_folder_without_write_permission_is_refused(scenario, tmp_path, capsys, no_replications):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        assert cli.main(["run", str(scenario), *QUIET, "--out", str(locked / "run")]) == 2
    finally:
        locked.chmod(0o755)
    assert "Permission denied" in one_error_line(capsys)


def test_missing_parent_folders_are_created_and_removed_again_when_nothing_is_written(scenario, tmp_path,
                                                                                       monkeypatch):
    """Interrupted after the destination was reserved: the folders made for it go again, with its lock."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sim.cli.run, "run_replications", interrupted)
    out = tmp_path / "a" / "b" / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 130
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------------------------------------------
# 2. Two runs cannot collide
# ---------------------------------------------------------------------------------------------------------------

def test_two_runs_of_one_scenario_in_the_same_second_get_different_folders(scenario, tmp_path, capsys, monkeypatch):
    """A run that has reserved this second's folder but not written it yet (still running) keeps it: the next run
    started in the same second takes `-2`, and both end up complete."""
    frozen = dt.datetime(2024, 5, 6, 7, 8, 9)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return frozen if tz is None else frozen.replace(tzinfo=tz)
    monkeypatch.setattr(destination, "dt", types.SimpleNamespace(datetime=Clock, date=dt.date, timedelta=dt.timedelta))
    root = tmp_path / "results"
    first = reserve_new_run_dir(root, "simple")
    assert first.final == root / "simple" / "20240506-070809"
    with first:
        assert cli.main(["run", str(scenario), *QUIET, "--results-root", str(root)]) == 0
        second = root / "simple" / "20240506-070809-2"
        assert (second / WEEKLY_CSV).is_file(), capsys.readouterr().err
        with first.writing({WEEKLY_CSV: pd.DataFrame({"week": [0]})}) as out:
            run_folder.write_manifest(out.path, scenario="simple")
    assert (first.final / MANIFEST_JSON).is_file() and (second / MANIFEST_JSON).is_file()
    assert leftovers(root) == []


def test_a_second_run_into_the_same_out_is_refused_before_it_runs(scenario, tmp_path, capsys, no_replications):
    """While one run holds --out (its lock), another is refused at once, naming the first's PID; the lock dies
    with its holder, so once released the folder is free."""
    out = tmp_path / "shared"
    with reserve_destination(out, "--out"):
        assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
        line = one_error_line(capsys)
        assert f"another run (PID {os.getpid()}) is writing to it" in line, line
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_folder_filled_behind_the_runs_back_keeps_the_finished_run(scenario, tmp_path, capsys, monkeypatch):
    """Something that ignores the lock writes into --out while the run computes: the rename is refused (it never
    replaces a folder that holds anything), and the finished run is kept beside it, complete."""
    out = tmp_path / "out"
    real = sim.cli.run.run_replications

    def intruder(*args, **kwargs):
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
        return real(*args, **kwargs)
    monkeypatch.setattr(sim.cli.run, "run_replications", intruder)
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "moving the finished folder into place failed" in line, line
    kept = Path(line.split("what was written is kept in ")[1])
    assert kept.parent == tmp_path and kept.name.startswith("out.incomplete-")
    assert (kept / MANIFEST_JSON).is_file() and len(pd.read_csv(kept / WEEKLY_CSV)) == 4
    assert os.listdir(out) == ["theirs.txt"]


# ---------------------------------------------------------------------------------------------------------------
# 3. A failure while writing keeps the finished replications, and says where
# ---------------------------------------------------------------------------------------------------------------

def _kept_in(line: str) -> list[Path]:
    """The folders an error line names as holding what was kept."""
    return [Path(part.split(" in ", 1)[1].split(" (")[0]) for part in line.split("; ")[1:] if " in " in part]


def test_a_full_disk_after_the_first_table_keeps_every_table_and_names_where(scenario, tmp_path, capsys,
                                                                            monkeypatch):
    """ENOSPC on the destination's disk after weekly.csv: what was written stays beside --out as
    NAME.incomplete-<stamp>, and the tables that did not fit are written to the system's temporary folder."""
    disk, elsewhere = tmp_path / "disk", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    real = pd.DataFrame.to_csv

    def full_disk(self, path=None, *args, **kwargs):
        if path is not None and disk in Path(path).parents and Path(path).name != WEEKLY_CSV:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, path, *args, **kwargs)
    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    out = disk / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: --out {out}: writing the run folder failed (No space left on device)"), line
    holder, spill = _kept_in(line)
    assert holder.parent == disk and holder.name.startswith("run.incomplete-") and spill.parent == elsewhere
    assert len(pd.read_csv(holder / WEEKLY_CSV)) == 4
    for name in (run_folder.WEEKLY_BY_SITE_CSV, run_folder.WAITS_BY_PRIORITY_CSV):
        assert (spill / name).is_file() and not (holder / name).exists(), name
    assert not out.exists() and leftovers(disk) == []


def test_losing_permission_before_the_manifest_keeps_every_table_beside_out(scenario, tmp_path, capsys,
                                                                            monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(sim.cli.run, "write_manifest", denied)
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "writing the run folder failed (Permission denied)" in line
    [holder] = _kept_in(line)
    for name in (WEEKLY_CSV, REPLICATIONS_CSV, SUMMARY_CSV, run_folder.WEEKLY_BY_SITE_CSV):
        assert (holder / name).is_file(), name
    assert not out.exists()


def test_a_refused_rename_keeps_the_tables_in_the_temporary_folder(scenario, tmp_path, capsys, monkeypatch):
    """The partial folder can be neither moved into place nor renamed as incomplete (it would be cleaned later as
    a killed run's): every table is written again to the system's temporary folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    real = os.rename

    def refuse(src, dst, *args, **kwargs):
        if ".nwlsim-partial-" in Path(src).name:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "rename", refuse)
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "moving the finished folder into place failed (Invalid cross-device link)" in line, line
    [spill] = _kept_in(line)
    assert spill.parent == elsewhere and len(pd.read_csv(spill / WEEKLY_CSV)) == 4
    assert (spill / MANIFEST_JSON).is_file() and (spill / run_folder.SCENARIO_YAML).is_file()
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "simple.yaml"], "no hidden copy left behind"


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                     ValueError("\n$\\foo{$\n^\nParseException: Unknown symbol")],
                         ids=["disk full", "matplotlib text"])
def test_a_report_that_fails_leaves_a_complete_run_folder_and_says_how_to_retry(failure, scenario, tmp_path, capsys,
                                                                               monkeypatch):
    """The tables and manifest are in place, the half-made report is not, the headline was printed, and the
    one line says what failed, where the tables are and the command that makes the report again."""
    def broken_report(folder: Path, label: str | None = None) -> None:
        (folder / "charts").mkdir()
        (folder / "charts" / "half.png").write_bytes(b"half")
        raise failure
    monkeypatch.setattr(sim.cli.run, "build_report", broken_report)
    out = tmp_path / "run"
    code = cli.main(["run", str(scenario), "--replications", "1", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and "Nobody over 52 weeks" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    reason = "No space left on device" if isinstance(failure, OSError) else "ValueError: $\\foo{$ ^ ParseException"
    assert lines[0].startswith(f"error: --out {out}: report failed ({reason}")
    assert lines[0].endswith(f"the tables are kept in {out}; `python run_sim.py report {out}` to retry")
    assert (out / MANIFEST_JSON).is_file() and (out / WEEKLY_CSV).is_file() and not (out / "charts").exists()


def test_a_sweep_heat_map_that_fails_keeps_the_sweep_table(scenario, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no display")
    monkeypatch.setattr(sim.cli.sweep, "sweep_heatmap", broken)
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(scenario), "--set", "horizon_weeks=3,4", "--replications", "1", "--quiet",
                     "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "heat map failed (RuntimeError: no display)" in line and "report" not in line.split(str(out))[-1]
    assert len(pd.read_csv(out / "sweep.csv")) and (out / MANIFEST_JSON).is_file()


def test_a_scenario_file_that_cannot_be_put_in_place_is_kept_elsewhere(tmp_path, monkeypatch):
    """calibrate's --out FILE.yaml: the fitted scenario's text is not lost when the last step fails."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    out = tmp_path / "fitted.yaml"
    def broken_replace(*args: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    with reserve_destination(out, "--out", kind="file") as dest:
        monkeypatch.setattr(os, "replace", broken_replace)
        with pytest.raises(OutputError) as refused, dest.staged_file("name: fitted\n") as staged:
            assert staged.read_text() == "name: fitted\n" and staged.parent == tmp_path
    kept = Path(str(refused.value).split("its text is kept in ")[1])
    assert "moving it into place failed (Input/output error)" in str(refused.value)
    assert kept.read_text() == "name: fitted\n" and not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("stop, code, word", [(KeyboardInterrupt, 130, "interrupted"),
                                              (cli.Terminated, 143, "terminated (SIGTERM)")],
                         ids=["ctrl-c", "sigterm"])
def test_an_interruption_while_writing_keeps_the_tables_and_says_where(stop, code, word, scenario, tmp_path, capsys,
                                                                       monkeypatch):
    """`docker stop` during the write used to delete every table: what was written is kept beside --out as
    NAME.incomplete-<stamp> (no manifest, so it never looks finished), with the tables not yet written added."""
    def stopped(*args, **kwargs):
        raise stop
    monkeypatch.setattr(sim.cli.run, "write_manifest", stopped)
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert f"{word}: --out {out}: writing the run folder was interrupted; what was written is kept in " in err, err
    [kept] = _kept_in(err.strip())
    assert kept.parent == tmp_path and kept.name.startswith("run.incomplete-")
    for name in (WEEKLY_CSV, REPLICATIONS_CSV, SUMMARY_CSV, run_folder.WEEKLY_BY_SITE_CSV):
        assert (kept / name).is_file(), name
    assert not (kept / MANIFEST_JSON).exists() and not out.exists() and leftovers(tmp_path) == []


def test_an_interruption_while_the_report_is_made_puts_the_complete_folder_in_place(scenario, tmp_path, capsys,
                                                                                    monkeypatch):
    """The tables and manifest are complete once the report starts: Ctrl-C then leaves the run in place without
    its half-made report, and says how to make it."""
    def interrupted_report(folder: Path, label: str | None = None) -> None:
        (folder / "charts").mkdir()
        (folder / "charts" / "half.png").write_bytes(b"half")
        raise KeyboardInterrupt
    monkeypatch.setattr(sim.cli.run, "build_report", interrupted_report)
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), "--replications", "1", "--quiet", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert (f"interrupted: --out {out}: stopped while making the report; the results are in {out} without it "
            f"(`python run_sim.py report {out}` makes it)") in err, err
    assert (out / MANIFEST_JSON).is_file() and (out / WEEKLY_CSV).is_file() and not (out / "charts").exists()
    assert sorted(os.listdir(tmp_path)) == ["run", "simple.yaml"]


class ClosedPipe:
    """Standard output whose reader has gone (`run ... | head` after head exits)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def flush(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def test_a_closed_standard_output_does_not_misfile_a_complete_run(scenario, tmp_path, capsys, monkeypatch):
    """The headline is printed after the folder is in place: a broken pipe then is an exit 2 that says where the
    results are, never a complete folder renamed NAME.incomplete-<stamp>."""
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), "--replications", "1", "--quiet", "--no-report", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "Broken pipe" in line and line.endswith(f"the results were written to {out}"), line
    assert (out / MANIFEST_JSON).is_file() and sorted(os.listdir(tmp_path)) == ["run", "simple.yaml"]


def test_a_closed_standard_output_still_gets_the_report_drawn_here(scenario, tmp_path, capsys, monkeypatch):
    """multiprocessing flushes standard output before it forks, and raises on a closed pipe: the report's forked
    work (reading the folder, the workbook, the charts) is then done in this process, and the folder is complete."""
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), "--replications", "1", "--quiet", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "Broken pipe" in line and line.endswith(f"the results were written to {out}"), line
    assert (out / "report.html").is_file() and (out / "results.xlsx").is_file() and (out / "charts").is_dir()


@pytest.mark.parametrize("failure", [ScenarioError(["fitted.yaml: clinic_slots: must be finite"]),
                                     RuntimeError("a replication failed"), KeyboardInterrupt()],
                         ids=["scenario error", "unexpected error", "interrupted"])
def test_a_fitted_scenario_whose_check_fails_is_kept_and_named(failure, tmp_path, monkeypatch):
    """calibrate reads and simulates its staged --out file before putting it in place: whatever stops that, the
    fitted text (the result of the whole fit) is kept in the temporary folder and the error names where."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    out = tmp_path / "fitted.yaml"
    with pytest.raises(type(failure)) as stopped, reserve_destination(out, "--out", kind="file") as dest:
        with dest.staged_file("name: fitted\n") as staged:
            assert staged.read_text() == "name: fitted\n"
            raise failure
    said = (stopped.value.problems if isinstance(failure, ScenarioError)
            else getattr(stopped.value, "__notes__", []))
    assert said[-1].startswith(f"--out {out}: not put in place; its text is kept in "), said
    kept = Path(said[-1].split("its text is kept in ")[1])
    assert kept.parent.parent == elsewhere and kept.read_text() == "name: fitted\n"
    assert not out.exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# 4. SIGTERM is handled like Ctrl-C
# ---------------------------------------------------------------------------------------------------------------

def test_sigterm_in_process_stops_like_ctrl_c_and_restores_the_handler(scenario, tmp_path, capsys, monkeypatch):
    before = signal.getsignal(signal.SIGTERM)

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)                   # the handler raises in here
        raise AssertionError("SIGTERM did not stop the run")
    monkeypatch.setattr(sim.cli.run, "run_replications", terminated)
    assert cli.main(["run", str(scenario), *QUIET, "--results-root", str(tmp_path / "results")]) == 143
    err = capsys.readouterr().err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_during_a_two_worker_run_stops_everything_quietly(tmp_path):
    """SIGTERM to the command (as `kill` or a scheduler sends it) once replications are running on two workers:
    exit 143 within seconds, no traceback from anyone, no worker left, no folder (not even a hidden one)."""
    scenario = tmp_path / "slow.yaml"           # about a second a replication: the run is still going when signalled
    scenario.write_text(yaml.safe_dump(simple_raw(horizon_weeks=52, referrals_per_week=300)), encoding="utf-8")
    out = tmp_path / "run"
    pid, code, err, stopped_after = stop_run_after_first_replication(
        ["run", str(scenario), "--replications", "60", "--jobs", "2", "--no-report", "--out", str(out)], 60,
        lambda proc: proc.send_signal(signal.SIGTERM),              # the command alone, not its process group
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert code == 143, err
    assert "Traceback" not in err and "terminated (SIGTERM)" in err, err
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    assert sorted(os.listdir(tmp_path)) == ["slow.yaml"], "no folder, partial folder or lock may be left"
    alive = processes_left("-s", pid)
    assert alive == [], f"worker processes still running: {alive}"


def _stopped_in_validate(monkeypatch: pytest.MonkeyPatch, tmp: Path, scenario: Path) -> list[str]:
    monkeypatch.setattr(sim.cli.validate, "load_scenario", _raise(KeyboardInterrupt))
    return ["validate", str(scenario)]


def _stopped_in_report(monkeypatch: pytest.MonkeyPatch, tmp: Path, scenario: Path) -> list[str]:
    monkeypatch.setattr(sim.cli.report, "build_report", _raise(cli.Terminated))
    (tmp / "done").mkdir()
    return ["report", str(tmp / "done")]


def _stopped_in_replications(monkeypatch: pytest.MonkeyPatch, tmp: Path, scenario: Path) -> list[str]:
    monkeypatch.setattr(sim.cli.run, "run_replications", _raise(KeyboardInterrupt))
    return ["run", str(scenario), *QUIET, "--out", str(tmp / "run")]


def _stopped_after_writing(monkeypatch: pytest.MonkeyPatch, tmp: Path, scenario: Path) -> list[str]:
    monkeypatch.setattr(sim.cli.run, "_print", _raise(cli.Terminated))
    return ["run", str(scenario), *QUIET, "--out", str(tmp / "run")]


def _raise(stop: type[BaseException]):
    def stopped(*args: object, **kwargs: object) -> None:
        raise stop
    return stopped


STOPPED = {
    "validate": (_stopped_in_validate, "interrupted: stopped; validate writes nothing"),
    "report": (_stopped_in_report, "terminated (SIGTERM): stopped before the report was finished; the run's own "
                                   "files (tables, manifest, scenario) are unchanged"),
    "run, replicating": (_stopped_in_replications, "interrupted: stopped the replications; no results written"),
    "run, written": (_stopped_after_writing, "terminated (SIGTERM): already written: {tmp}/run"),
}


@pytest.mark.parametrize("case", list(STOPPED), ids=list(STOPPED))
def test_the_stop_message_is_true_for_each_command(case, scenario, tmp_path, capsys, monkeypatch):
    """It used to say "stopped the replications; no results written" for `report` and `validate`, and after the
    results were in place."""
    arrange, message = STOPPED[case]
    code = cli.main(arrange(monkeypatch, tmp_path, scenario))
    err = capsys.readouterr().err
    assert code in (130, 143) and "Traceback" not in err
    assert err.strip() == message.format(tmp=tmp_path), err
    if case == "run, written":
        assert (tmp_path / "run" / MANIFEST_JSON).is_file()


# ---------------------------------------------------------------------------------------------------------------
# 5. What killed runs left is cleaned when safe
# ---------------------------------------------------------------------------------------------------------------

def _work(folder: Path, name: str, age_hours: float = 0.0) -> Path:
    path = folder / name
    path.mkdir(parents=True)
    (path / WEEKLY_CSV).write_text("scenario,replication,week\n")
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def test_stale_partial_folders_and_locks_are_cleaned_when_a_run_writes_beside_them(scenario, tmp_path, capsys):
    """A dead PID's partial folder, a live PID's older than STALE_PARTIAL_HOURS, an unheld lock and a dead PID's
    partial calibrated file go; a live PID's recent partial, a partial whose run still holds its lock, and
    anything not named as our work stay."""
    beside = tmp_path / "results" / "simple"
    beside.mkdir(parents=True)
    holding = reserve_destination(beside / "20210101-000005", "--out")     # a live run's, still writing
    alive = os.getppid()
    gone = [_work(beside, f".20210101-000000.nwlsim-partial-{DEAD_PID}"),
            _work(beside, f".20210101-000001.nwlsim-partial-{alive}", age_hours=work_files.STALE_PARTIAL_HOURS + 1),
            _work(beside, f".20210101-000002.nwlsim-probe-{DEAD_PID}")]
    (beside / ".20210101-000003.nwlsim-lock").write_text(f"{DEAD_PID} elsewhere\n")
    (beside / f".fitted.yaml.nwlsim-partial-{DEAD_PID}.yaml").write_text("name: x\n")
    gone += [beside / ".20210101-000003.nwlsim-lock", beside / f".fitted.yaml.nwlsim-partial-{DEAD_PID}.yaml"]
    kept = [_work(beside, f".20210101-000004.nwlsim-partial-{alive}"),
            _work(beside, f".20210101-000005.nwlsim-partial-{DEAD_PID}"),
            _work(beside, ".keepme"), _work(beside, "20210101-000006")]
    with holding:
        assert cli.main(["run", str(scenario), *QUIET, "--results-root", str(tmp_path / "results")]) == 0
    assert [p for p in gone if os.path.lexists(p)] == []
    assert [p for p in kept if not p.exists()] == []


def test_cleaning_never_touches_this_process_or_unrelated_names(tmp_path):
    mine = _work(tmp_path, f".x.nwlsim-partial-{os.getpid()}")
    odd = [_work(tmp_path, f".x.nwlsim-partial-{DEAD_PID}-extra"), _work(tmp_path, f"x.nwlsim-partial-{DEAD_PID}"),
           _work(tmp_path, f".x.partial-{DEAD_PID}"), _work(tmp_path, f".x.probe-{DEAD_PID}")]
    assert clean_stale_work(tmp_path) == []
    assert mine.exists() and all(p.exists() for p in odd)


def test_other_programs_hidden_files_beside_a_destination_survive_a_run(scenario, tmp_path):
    """Cleaning used to remove any hidden `.X.lock` nobody flocked and any `.X.partial-N` whose PID was dead, in
    the parent of --out (so `--out ~/newres` scanned $HOME). Only the simulator's own names are touched, and a
    lock only when its text is the simulator's `PID HOST`."""
    parent = tmp_path / "rvx"
    parent.mkdir()
    (parent / ".sync.lock").write_text(f"{DEAD_PID} elsewhere\n")
    folders = [_work(parent, ".cache.partial-999999"), _work(parent, f".cache.partial-{DEAD_PID}"),
               _work(parent, f".run.probe-{DEAD_PID}")]
    files = [parent / ".notes.partial-999999.txt", parent / f".run.partial-{DEAD_PID}.yaml",
             parent / ".theirs.nwlsim-lock"]          # our lock's name, not our lock's text
    for path in files:
        path.write_text("not ours\n")
    foreign = [parent / ".sync.lock", *folders, *files]
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(parent / "run")]) == 0
    assert [p.name for p in foreign if not p.exists()] == []
    assert (parent / "run" / MANIFEST_JSON).is_file() and not (parent / ".run.nwlsim-lock").exists()


def test_a_killed_reports_staging_folder_is_cleaned_by_the_next_report(scenario, tmp_path, capsys, monkeypatch):
    """`report` stages in `.report.nwlsim-partial-PID` inside the run folder; a killed report's (its PID gone)
    goes at the next report of that folder, a live one's stays."""
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 0
    killed = _work(out, f".report.nwlsim-partial-{DEAD_PID}")
    live = _work(out, f".report.nwlsim-partial-{os.getppid()}")
    monkeypatch.setattr(sim.outputs.report, "plan_charts", lambda *args, **kwargs: [])     # charts take seconds
    assert cli.main(["report", str(out)]) == 0, capsys.readouterr().err
    assert not killed.exists() and live.exists() and (out / run_folder.REPORT_HTML).is_file()


# ---------------------------------------------------------------------------------------------------------------
# 6. Option limits
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command, value", [
    ("run", ["--replications", "0"]), ("run", ["--replications", "-3"]), ("run", ["--replications", "two"]),
    ("compare", ["--replications", "0"]), ("sweep", ["--replications", "0"]), ("sweep", ["--replications", "-1"]),
    ("backtest", ["--replications", "0"]), ("calibrate", ["--replications", "0"]),
    ("run", ["--jobs", "0"]), ("sweep", ["--jobs", "-2"]), ("calibrate", ["--jobs", "0"]),
])
def test_option_values_that_make_no_sense_are_refused_naming_the_option(command, value, scenario, capsys):
    """`sweep --replications 0` used to run the scenario's default (10) silently."""
    extra = {"sweep": ["--set", "horizon_weeks=3,4"], "backtest": ["--monthly", "x.csv"],
             "calibrate": ["--observed", "x.csv", "--window", "2021-07:2021-08", "--out", "x.yaml"]}.get(command, [])
    with pytest.raises(SystemExit) as exited:
        cli.main([command, str(scenario), *extra, *value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {value[0]}: expected a whole number of 1 or more" in err and "Traceback" not in err


def test_jobs_above_the_machines_cores_are_cut_to_them_with_a_note(scenario, tmp_path, capsys, jobs_started):
    """`--jobs 1000` used to start 1,000 processes; the tables are the same whatever the number."""
    started = jobs_started
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--jobs", "1000", "--out", str(out)]) == 0
    assert started == [3]
    assert "note: --jobs 1000 is more than this machine's 3 cores; using 3" in capsys.readouterr().err
    assert json.loads((out / MANIFEST_JSON).read_text())["jobs"] == 3


# ---------------------------------------------------------------------------------------------------------------
# 7. Where the filesystem refuses flock (some CIFS and sshfs mounts), the lock is an exclusive file with a PID
# ---------------------------------------------------------------------------------------------------------------

def _open_descriptors() -> set[tuple[str, str]]:
    """This process's open descriptors and what each is open on, once garbage is collected. Compared as sets: a
    leak is a descriptor open after that was not open before; one closed meanwhile is not (an earlier test's
    leftover, freed mid-test: a fresh clone's run once counted one fewer after than before)."""
    gc.collect()
    open_now = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            open_now.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:         # the descriptor listdir itself used, closed by now
            continue
    return open_now


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
@pytest.mark.parametrize("refusal", [errno.ENOLCK, errno.EOPNOTSUPP], ids=["ENOLCK", "EOPNOTSUPP"])
def test_without_flock_a_destination_is_reserved_by_an_exclusive_lock_file(refusal, scenario, tmp_path, capsys,
                                                                          monkeypatch):
    """flock raising ENOLCK/EOPNOTSUPP used to leak a descriptor and refuse every destination on that filesystem.
    Now: the lock file is created exclusively with `PID HOST`; a second run is refused while that PID lives; a
    dead PID's lock on this machine is taken over; another machine's is respected; nothing leaks."""
    import fcntl

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(refusal, os.strerror(refusal))
    monkeypatch.setattr(fcntl, "flock", no_flock)
    host = socket.gethostname()
    before = _open_descriptors()
    out = tmp_path / "out"
    lock = tmp_path / ".out.nwlsim-lock"
    with reserve_destination(out, "--out"):
        assert lock.read_text() == f"{os.getpid()} {host}\n"
        with pytest.raises(OutputError, match=f"another run \\(PID {os.getpid()}\\) is writing to it"):
            reserve_destination(out, "--out")
    assert not lock.exists() and not _open_descriptors() - before

    lock.write_text(f"{os.getppid()} {host}\n")                    # a live process's lock
    with pytest.raises(OutputError, match=f"another run \\(PID {os.getppid()}\\)"):
        reserve_destination(out, "--out")
    lock.write_text(f"{DEAD_PID} another-machine\n")                # cannot be checked from here
    with pytest.raises(OutputError, match=f"another run \\(PID {DEAD_PID} on another-machine\\)"):
        reserve_destination(out, "--out")
    lock.write_text(f"{DEAD_PID} {host}\n")                         # a killed run's: taken over
    fd = work_files.take_lock(lock)
    assert fd is not None and lock.read_text() == f"{os.getpid()} {host}\n"
    work_files.release_lock(fd, lock)
    lock.write_text(f"{DEAD_PID} {host}\n")                         # and cleaned before a run reserves
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / MANIFEST_JSON).is_file() and not lock.exists()
    assert not _open_descriptors() - before, _open_descriptors() - before


# ---------------------------------------------------------------------------------------------------------------
# 8. The second review: the memory checked for what really runs, names that fit, paths that cannot be looked at,
#    /dev/shm, and a run recorded as written the moment it is in place
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def counted_replications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The replication runs `run` starts (each call appends 1), the real ones still running."""
    calls: list[int] = []
    real = sim.cli.run.run_replications

    def counting(*args: object, **kwargs: object):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(sim.cli.run, "run_replications", counting)
    return calls


def test_backtest_from_rtt_files_checks_memory_before_anything_runs(tmp_path, capsys, monkeypatch, no_replications):
    """`backtest --observed` used to check only the pathway limit: on a machine without the memory it ran until
    the kernel killed it. Now it is refused like `run`, with one line, before a destination is reserved."""
    rtt = ROOT / "tests" / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"
    later = tmp_path / "december.csv"
    later.write_text(rtt.read_text(encoding="utf-8").replace("RTT-November-2024", "RTT-December-2024"),
                     encoding="utf-8")
    monkeypatch.setattr(sim.scenario.resources, "available_memory_bytes", lambda: 1)
    out = tmp_path / "bt"
    assert cli.main(["backtest", str(ROOT / "scenarios" / "from_rtt_example.yaml"), "--observed", str(rtt),
                     str(later), "--replications", "1", "--quiet", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "from_rtt_example.yaml: would need about" in line and "available" in line, line
    assert not out.exists() and leftovers(tmp_path) == []


def test_calibrate_checks_memory_for_the_simulations_the_fit_runs(scenario, tmp_path, capsys, monkeypatch):
    """Each fit step runs the window's horizon with demand moved to the published clock starts, not the
    scenario's horizon_weeks and demand: the memory check is made for that run (and before the fit)."""
    checked: list[object] = []

    def record(scenarios, source, workers=1, available=None):
        checked.extend(scenarios)
        raise ScenarioError([f"{source}: checked"])
    monkeypatch.setattr(sim.scenario.build, "check_memory", record)
    monkeypatch.setattr(sim.cli.calibrate, "fit", _raise(AssertionError))
    monthly = ROOT / "data" / "observed" / "nwl_monthly.csv"
    code = cli.main(["calibrate", str(scenario), "--observed", str(monthly), "--admitted-share-from",
                     str(ROOT / "data" / "observed" / "england_monthly.csv"), "--window", "2021-07:2021-08",
                     "--out", str(tmp_path / "fitted.yaml"), "--report-dir", str(tmp_path / "report"), "--quiet"])
    assert code == 2 and one_error_line(capsys).endswith("simple.yaml: checked")
    [fit_step] = checked
    starts = pd.read_csv(monthly).set_index("month")["clock_starts"]
    published_per_week = max(starts["2021-07"] / (31 / 7), starts["2021-08"] / (31 / 7))
    # the scenario starts Monday 7 June 2021 and is 4 weeks long; the fit runs to 31 August: 86 days, 13 weeks
    assert fit_step.horizon_weeks == 13
    assert fit_step.referrals.referrals_per_week >= published_per_week > 100     # the scenario's own is 100
    assert not (tmp_path / "fitted.yaml").exists() and leftovers(tmp_path) == []


def _outcome(code: int, out: Path, err: str, calls: list[int]) -> str:
    """"refused" (exit 2, one line saying it is too long, before any replication), "written" (exit 0, complete),
    or what else happened (a failure the check should have prevented)."""
    lines = [line for line in err.splitlines() if line.strip()]
    if code == 2 and not calls and len(lines) == 1 and "too long" in lines[0] and "Traceback" not in err:
        return "refused"
    if code == 0 and (out / MANIFEST_JSON).is_file():
        return "written"
    return f"exit {code} after {len(calls)} replication run(s): {err}"


def test_a_name_near_name_max_is_refused_before_the_run_or_written(scenario, tmp_path, capsys, monkeypatch,
                                                                  counted_replications):
    """The probe used a shorter name than the partial folder and NAME.incomplete-<stamp>: a last name of 235
    bytes was reserved, then mkdir of the partial folder failed after every replication had run. Now every
    length is either refused before anything runs or written whole; and a write that fails at the longest
    accepted length still keeps the tables beside --out, under the longer incomplete name."""
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    outcomes = {}
    for length in (name_max - 40, name_max - 36, name_max - 35, 235, 236, name_max - 1, name_max):
        out = tmp_path / ("r" * length)
        counted_replications.clear()
        code = cli.main(["run", str(scenario), *QUIET, "--out", str(out)])
        outcomes[length] = _outcome(code, out, capsys.readouterr().err, counted_replications)
    assert set(outcomes.values()) <= {"refused", "written"}, outcomes
    accepted = [length for length, outcome in outcomes.items() if outcome == "written"]
    assert accepted and max(accepted) >= name_max - 40, f"a name of {name_max - 40} bytes must be usable: {outcomes}"
    assert outcomes[name_max] == "refused"

    monkeypatch.setattr(sim.cli.run, "write_manifest", _raise(OSError))
    out = tmp_path / ("k" * max(accepted))
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 2
    [kept] = _kept_in(one_error_line(capsys))
    assert kept.parent == tmp_path and (kept / WEEKLY_CSV).is_file()


def test_a_calibrated_file_name_too_long_for_its_work_names_is_refused(tmp_path):
    """calibrate's --out FILE.yaml is staged as `.FILE.yaml.nwlsim-partial-PID.yaml`, 29 or so bytes longer."""
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(OutputError, match="the name is too long"):
        reserve_destination(tmp_path / ("f" * (name_max - 10) + ".yaml"), "--out", kind="file")
    with pytest.raises(OutputError, match="named like the simulator's unfinished work"):
        reserve_destination(tmp_path / f".f.yaml.nwlsim-partial-{DEAD_PID}.yaml", "--out", kind="file")
    assert os.listdir(tmp_path) == []


def test_a_path_near_path_max_is_refused_before_the_run(scenario, tmp_path, capsys, counted_replications):
    """Every name fits but the files inside the folder would pass PATH_MAX: refused before anything runs, and
    the folders made for it are removed again."""
    path_max = os.pathconf(tmp_path, "PC_PATH_MAX")
    out = tmp_path
    while len(os.fsencode(str(out))) < path_max - 300:
        out = out / ("d" * 200)
    out = out / ("r" * (path_max - 30 - len(os.fsencode(str(out))) - 1))
    code = cli.main(["run", str(scenario), *QUIET, "--out", str(out)])
    assert _outcome(code, out, capsys.readouterr().err, counted_replications) == "refused"
    assert sorted(os.listdir(tmp_path)) == ["simple.yaml"]


def _denied(monkeypatch: pytest.MonkeyPatch, calls: str, inside: Path) -> None:
    """Each os call named in `calls` raises PermissionError for paths inside `inside` (what a non-root user meets
    at /root/x): root passes every permission check, so the refusal is simulated."""
    for call in calls.split("+"):
        real = getattr(os, call)

        def refusing(path, *args, real=real, **kwargs):
            if isinstance(path, (str, os.PathLike)) and inside in Path(os.fspath(path)).parents:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
            return real(path, *args, **kwargs)
        monkeypatch.setattr(os, call, refusing)


@pytest.mark.parametrize("calls, option", [("stat+lstat", "--out"), ("listdir", "--out"),
                                           ("stat+lstat", "--results-root")])
def test_a_destination_the_system_will_not_look_at_is_refused_with_one_line(calls, option, scenario, tmp_path,
                                                                           capsys, monkeypatch, no_replications):
    """`--out /root/x` as a user raised PermissionError with a traceback (Path.is_symlink re-raises it), as did a
    folder that cannot be listed: now exit 2 and one line with the system's words, before anything runs."""
    private = tmp_path / "private"
    (private / "x").mkdir(parents=True)
    _denied(monkeypatch, calls, private)
    target = ["--out", str(private / "x")] if option == "--out" else ["--results-root", str(private / "results")]
    assert cli.main(["run", str(scenario), *QUIET, *target]) == 2
    line = one_error_line(capsys)
    assert "Permission denied" in line and str(private) in line, line


def test_a_memory_folder_under_dev_is_a_destination(scenario, capsys):
    """/dev/shm is a tmpfs (an ordinary folder, in memory) and was refused as a pseudo-filesystem."""
    if not destination._in_memory_folder(Path("/dev/shm")) or not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable tmpfs at /dev/shm here")
    top = Path(tempfile.mkdtemp(prefix="nwlsim-test-", dir="/dev/shm"))
    try:
        assert cli.main(["run", str(scenario), *QUIET, "--out", str(top / "run")]) == 0, capsys.readouterr().err
        assert (top / "run" / MANIFEST_JSON).is_file() and leftovers(top) == []
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_ctrl_c_just_after_the_rename_says_the_results_are_in_place(scenario, tmp_path, capsys, monkeypatch):
    """Ctrl-C landing after the finished folder was renamed into place, before it was recorded as written, made
    main say "no results written" of a complete run. Now it is recorded in the same step as the rename."""
    real = destination.Destination._placed
    interrupted: list[bool] = []

    def ctrl_c_first(self: destination.Destination) -> None:
        if not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        real(self)
    monkeypatch.setattr(destination.Destination, "_placed", ctrl_c_first)
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), *QUIET, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == f"interrupted: --out {out}: the results were written to {out}", err
    assert (out / MANIFEST_JSON).is_file()

    interrupted.clear()
    fitted = tmp_path / "fitted.yaml"
    with destination.recording_writes() as written, pytest.raises(KeyboardInterrupt):
        with reserve_destination(fitted, "--out", kind="file") as dest, dest.staged_file("name: fitted\n"):
            pass
    assert written == [fitted] and fitted.read_text() == "name: fitted\n"


def test_chart_files_are_written_under_the_work_name_rule(tmp_path, monkeypatch):
    """save_figure's temporary files were `.STEM.EXT.partial-PID`, a third naming rule that no cleaning knew."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sim.outputs import charts
    moved: list[str] = []
    real = os.replace

    def recording(src, dst, *args, **kwargs):
        moved.append(Path(src).name)
        return real(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "replace", recording)
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.subplots().plot([0, 1], [0, 1])
    assert [p.name for p in charts.save_figure(fig, tmp_path, "line")] == ["line.png", "line.svg"]
    assert len(moved) == 2 and all(work_files.is_work_name(name) for name in moved), moved
    assert sorted(os.listdir(tmp_path)) == ["line.png", "line.svg"]


def test_a_report_folder_that_is_not_empty_is_refused_naming_its_own_option(tmp_path):
    """check_out_dir served --report-dir too and said --out by default; check_empty_folder takes the label."""
    full = _not_empty(tmp_path)
    with pytest.raises(OutputError, match=f"^--report-dir {full}: folder is not empty"):
        destination.check_empty_folder(full, f"--report-dir {full}")
    with pytest.raises(OutputError, match=f"^--report-dir {full}: folder is not empty"):
        reserve_destination(full, "--report-dir")


def test_jobs_are_cut_once_by_main_not_again_by_the_executor(capsys, jobs_started):
    """limit_jobs ran in main and again in executor_for; the executor now starts what the options say."""
    started = jobs_started
    with sim.cli.options.executor_for(types.SimpleNamespace(jobs=8, executor="local", scheduler=None, quiet=True)):
        pass
    assert started == [8] and capsys.readouterr().err == ""
