"""The command line: exit codes, one line per problem and no traceback, nothing half written."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import sim.cli.run
from helpers import BASELINE, run_cli
from sim.cli import main as cli
from sim.outputs import destination

pytestmark = pytest.mark.integration

FAST = ["--set", "horizon_weeks=3", "--set", "referrals.referrals_per_week=500", "--replications", "2"]


def test_bad_scenario_exits_2_with_one_line_per_problem_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {BASELINE}\nbookng_policy: fifo\nhorizon_weeks: -1\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("run", str(bad), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 2 and all(str(bad) in x for x in lines), lines
    assert not out.exists(), "nothing may be written for a bad scenario"


def test_validate_command():
    proc = run_cli("validate", str(BASELINE))
    assert proc.returncode == 0 and proc.stdout.startswith("OK:"), proc.stdout + proc.stderr


def test_the_script_keeps_its_output_exit_code_and_exit_handlers_when_it_skips_the_teardown(tmp_path):
    """run_sim.py leaves by os._exit once the exit handlers have run (no module teardown): what it printed into a
    pipe still arrives, its exit code is the command's, and handlers registered while it ran still run."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    script = ROOT / "run_sim.py"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}     # a pipe's output is held until flushed
    ok = subprocess.run([sys.executable, str(script), "validate", str(BASELINE)], capture_output=True, text=True,
                        env=env)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:") and not ok.stderr, ok
    missing = tmp_path / "missing.yaml"
    refused = subprocess.run([sys.executable, str(script), "validate", str(missing)], capture_output=True, text=True,
                             env=env)
    assert refused.returncode == 2 and refused.stderr == f"error: {missing}: no such file\n", refused
    handler = ("import atexit, runpy, sys\n"
               "import sim.cli.main as cli\n"
               "command = cli.main\n"
               "def main(argv=None):\n"
               "    atexit.register(lambda: print('a handler registered while the command ran', flush=True))\n"
               "    return command(argv)\n"
               "cli.main = main\n"
               f"sys.argv = ['run_sim.py', 'validate', {str(BASELINE)!r}]\n"
               f"runpy.run_path({str(script)!r}, run_name='__main__')\n")
    ran = subprocess.run([sys.executable, "-c", handler], capture_output=True, text=True, cwd=ROOT, env=env)
    assert ran.returncode == 0 and ran.stdout.splitlines()[-1] == "a handler registered while the command ran", ran
    assert ran.stdout.startswith("OK:"), ran


def test_run_writes_a_complete_folder(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", str(BASELINE), *FAST, "--seed", "7", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Nobody over 52 weeks" in proc.stdout and "Peak waiting list" in proc.stdout
    for name in ("scenario.yaml", "manifest.json", "weekly.csv", "summary.csv", "replications.csv"):
        assert (out / name).exists(), f"{name} missing"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["replications"] == 2
    assert {"simpy", "numpy", "pandas"} <= set(manifest["library_versions"])
    weekly = pd.read_csv(out / "weekly.csv")
    required = ["scenario", "replication", "week_start", "waiting_total", "waiting_over_18w", "waiting_over_52w",
                "waiting_over_78w", "waiting_over_104w", "clock_starts", "clock_stops_admitted",
                "clock_stops_non_admitted", "removals_other", "theatre_sessions_run", "theatre_sessions_lost"]
    assert not set(required) - set(weekly.columns)
    assert len(weekly) == 2 * 3
    assert pd.to_datetime(weekly["week_start"]).dt.day_of_week.eq(0).all(), "week_start must be a Monday"
    by_site = pd.read_csv(out / "weekly_by_site.csv")      # each trust's lines add up to the ICS's, on disk too
    summed = by_site.groupby(["replication", "week"])[["waiting_total", "waiting_over_52w", "clock_starts"]].sum()
    assert summed.reset_index().equals(weekly[["replication", "week", "waiting_total", "waiting_over_52w",
                                               "clock_starts"]].reset_index(drop=True))
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["scenario", "metric", "mean", "p05", "p50", "p95", "intervals_show"]
    assert set(summary["intervals_show"]) == {"run-to-run variation only"}
    assert {"weeks_to_clear_52w", "weeks_to_clear_78w", "weeks_to_clear_104w",
            "peak_waiting_total"} <= set(summary["metric"])
    # the resolved scenario reproduces the run exactly (its report is not what is compared: left out)
    again = tmp_path / "again"
    assert run_cli("run", str(out / "scenario.yaml"), "--no-report", "--out", str(again)).returncode == 0
    assert pd.read_csv(again / "weekly.csv").equals(weekly)


def test_out_folder_holding_a_run_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    proc = run_cli("run", str(BASELINE), *FAST, "--out", str(out))
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert (out / "manifest.json").read_text() == "{}", "an existing run must not be touched"


def test_interrupted_run_leaves_no_folder_that_looks_complete(tmp_path, monkeypatch, capsys):
    """Ctrl-C while writing: the tables written so far are kept in a folder named as incomplete (no manifest),
    the message says where, and no folder under the results root looks like a finished run."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sim.cli.run, "write_manifest", interrupted)
    code = cli.main(["run", str(BASELINE), *FAST, "--quiet", "--results-root", str(tmp_path)])
    assert code == 130
    assert not list(tmp_path.rglob("manifest.json")), "no folder may look like a finished run"
    [folder] = [p for p in tmp_path.rglob("*") if p.is_dir() and ".incomplete-" in p.name]
    assert (folder / "weekly.csv").is_file()
    assert f"what was written is kept in {folder}" in capsys.readouterr().err


def test_default_run_dir_never_reuses_a_folder(tmp_path):
    import datetime as dt
    now = dt.datetime(2021, 6, 7, 9, 0, 0)
    first = destination.default_run_dir(tmp_path, "s", now)
    first.mkdir(parents=True)
    assert destination.default_run_dir(tmp_path, "s", now) != first


def test_sweep_names_each_combinations_clearance_week_as_run_does(tmp_path):
    """The sweep's console line for a combination gives the week `run` of that combination gives, same seed."""
    import re

    levels = ["--set", "horizon_weeks=20", "--replications", "1", "--seed", "3", "--quiet"]
    sweep = run_cli("sweep", str(BASELINE), *levels, "--set", "referrals.referrals_per_week=2000,4000",
                    "--out", str(tmp_path / "sweep"))
    run = run_cli("run", str(BASELINE), *levels, "--set", "referrals.referrals_per_week=2000", "--no-report",
                  "--out", str(tmp_path / "run"))
    assert sweep.returncode == 0 and run.returncode == 0, sweep.stderr + run.stderr
    week = re.compile(r"over 52 weeks from the week of (\d{4}-\d{2}-\d{2})")
    swept = {line.split("referrals.referrals_per_week=")[1].split(":")[0]: week.search(line)
             for line in sweep.stdout.splitlines() if "referrals_per_week=" in line}
    headline = week.search(run.stdout)
    assert headline and swept["2000"] and swept["2000"].group(1) == headline.group(1), (sweep.stdout, run.stdout)
    assert set(swept) == {"2000", "4000"}, sweep.stdout


def test_sweep_runs_the_full_factorial_and_refuses_bad_levels(tmp_path):
    out = tmp_path / "sweep"
    proc = run_cli("sweep", str(BASELINE), "--set", "horizon_weeks=3", "--set", "referrals.referrals_per_week=300,600",
                   "--set", "theatre_rules.session_cancellation_rate=0,0.5", "--replications", "1", "--out", str(out),
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "sweep.csv")
    combos = table[["referrals.referrals_per_week", "theatre_rules.session_cancellation_rate"]].drop_duplicates()
    assert len(combos) == 4, f"expected 2 x 2 combinations, got {len(combos)}"
    assert (out / "sweep_heatmap.png").exists() and (out / "manifest.json").exists()
    bad = tmp_path / "bad"
    proc = run_cli("sweep", str(BASELINE), "--set", "horizon_weeks=3,-1", "--out", str(bad), "--quiet")
    assert proc.returncode == 2 and "horizon_weeks" in proc.stderr and "Traceback" not in proc.stderr
    assert not bad.exists(), "a bad level must stop the sweep before anything is written"
