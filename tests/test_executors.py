"""Executors: sequential, local processes and Dask give the same tables byte for byte; Ctrl-C stops cleanly."""
from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from helpers import BASELINE, processes_left, run_cli, scaled_baseline_raw, stop_run_after_first_replication
from sim.cli.options import progress_reporter

SMALL = ["--set", "theatre_rules.on_the_day_cancellation_rate=[0.03,0.09]",   # parameter draws must match too
         "--replications", "3", "--seed", "11", "--no-report", "--quiet"]
TABLES = ["weekly.csv", "replications.csv", "summary.csv", "weekly_by_specialty.csv", "weekly_by_site.csv",
          "waits_by_priority.csv", "parameters.csv", "scenario.yaml"]


def small_scenario(folder: Path) -> Path:
    """The plan at a tenth of its size for six weeks, as a file: every mechanism, a third of a second a replication."""
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(scaled_baseline_raw(0.1, horizon_weeks=6), sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.integration
# the command's cluster is the second in this process: its scheduler's web server moves to a free port, and says so
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_sequential_local_processes_and_dask_give_identical_tables(tmp_path):
    distributed = pytest.importorskip("distributed")
    scenario = small_scenario(tmp_path)
    runs = {"sequential": ["--jobs", "1"], "jobs2": ["--jobs", "2"],
            "dask_local": ["--executor", "dask", "--jobs", "2"]}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        runs["dask_scheduler"] = ["--executor", "dask", "--scheduler", c.scheduler_address]
        for name, options in runs.items():
            proc = run_cli("run", str(scenario), *SMALL, *options, "--out", str(tmp_path / name))
            assert proc.returncode == 0, f"{name}: {proc.stderr}"
    reference = {t: (tmp_path / "sequential" / t).read_bytes() for t in TABLES}
    assert all(reference.values())
    for name in runs:
        for t in TABLES:
            assert (tmp_path / name / t).read_bytes() == reference[t], f"{name}/{t} differs from the sequential run"
        assert json.loads((tmp_path / name / "manifest.json").read_text())["executor"] == (
            "dask" if name.startswith("dask") else "local")


@pytest.mark.integration
def test_executor_options_that_cannot_work_exit_2():
    proc = run_cli("run", str(BASELINE), "--scheduler", "tcp://127.0.0.1:9")
    assert proc.returncode == 2 and "--scheduler is only used with --executor dask" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("run", str(BASELINE), "--jobs", "0")
    assert proc.returncode == 2 and "--jobs" in proc.stderr


@pytest.mark.integration
def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    """A refused connection is retried until the client's timeout (the command's 10 s), then refused with exit 2.
    The connection here is refused at once every time, so the test gives up after one second, not ten."""
    distributed = pytest.importorskip("distributed")
    real_client = distributed.Client

    def client_giving_up_after_a_second(*args, **kwargs):
        return real_client(*args, **{**kwargs, "timeout": "1s"})
    monkeypatch.setattr(distributed, "Client", client_giving_up_after_a_second)
    proc = run_cli("run", str(small_scenario(tmp_path)), *SMALL, "--executor", "dask", "--scheduler",
                   "tcp://127.0.0.1:9", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot connect to the Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.integration
@pytest.mark.parametrize("executor", [["--jobs", "1"], ["--jobs", "2"], ["--executor", "dask", "--jobs", "2"]],
                         ids=["sequential", "jobs2", "dask"])
def test_ctrl_c_stops_at_once_and_writes_nothing(tmp_path, executor):
    """SIGINT after the first replication finishes: exit 130 within seconds, no traceback, no folder (not even
    a hidden partial one), and no worker left running. A year's horizon: replications of a second or so, forty of
    them still far more than can finish between the first one's progress line and the signal."""
    if "dask" in executor:
        pytest.importorskip("distributed")
    out = tmp_path / "run"
    # SIGINT to the whole process group, as a terminal sends it
    pid, code, err, stopped_after = stop_run_after_first_replication(
        ["run", str(BASELINE), "--replications", "40", "--set", "horizon_weeks=52", "--no-report", *executor,
         "--out", str(out)], 40,
        lambda proc: os.killpg(proc.pid, signal.SIGINT))
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    assert not out.exists() and list(tmp_path.iterdir()) == []
    leftover = processes_left("-g", pid)
    assert leftover == [], f"worker processes still running 10 s after: {leftover}"   # (exited, unreaped: fine)


@pytest.mark.unit
def test_progress_bar_on_a_terminal_and_lines_in_a_log(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    result = SimpleNamespace(replication=0, pathways_simulated=1234, wall_seconds=1.5)
    args = SimpleNamespace(quiet=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    tick = progress_reporter(args, "baseline", 3)
    for _ in range(3):
        tick(result, 3)
    assert "3/3" in terminal.getvalue() and "baseline" in terminal.getvalue()
    # and no tqdm monitor thread left running, which would stop the report that follows from forking its workers
    assert [t.name for t in threading.enumerate() if "tqdm" in t.name] == []
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    progress_reporter(args, "baseline", 3)(result, 3)
    assert log.getvalue() == "  baseline: 1/3 done (replication 0: 1,234 pathways in 1.5 s)\n"
    assert progress_reporter(SimpleNamespace(quiet=True), "baseline", 3) is None


class RecordingRunner:
    """A stand-in executor that records when each run is asked for and when its results are read."""

    workers = 2

    def __init__(self) -> None:
        self.events: list[str] = []

    def run(self, scenario, replications, seed):
        self.events.append(f"ask {scenario.name} {replications} {seed}")

        def results():
            for r in replications:
                self.events.append(f"read {scenario.name} {r}")
                yield (scenario.name, r, seed)
        return results()


@pytest.mark.unit
def test_runs_asked_together_are_all_asked_before_any_is_read_and_read_in_the_callers_order():
    from sim.experiment.executors import AskedTogether
    a, b = SimpleNamespace(name="a"), SimpleNamespace(name="b")
    inner = RecordingRunner()
    runner = AskedTogether(inner, [(a, [0, 1], 7), (b, [0, 1], 7)])
    assert inner.events == ["ask a [0, 1] 7", "ask b [0, 1] 7"] and runner.workers == 2
    assert list(runner.run(a, [0, 1], 7)) == [("a", 0, 7), ("a", 1, 7)]
    assert list(runner.run(b, [0, 1], 7)) == [("b", 0, 7), ("b", 1, 7)]
    # a run that was not asked for at the start (another seed) is asked for then, not given another's results
    assert list(runner.run(a, [0, 1], 8)) == [("a", 0, 8), ("a", 1, 8)]
    assert inner.events[2:] == ["read a 0", "read a 1", "read b 0", "read b 1", "ask a [0, 1] 8", "read a 0",
                                "read a 1"]


@pytest.mark.integration
def test_a_compare_on_two_processes_writes_what_it_writes_one_replication_after_another(tmp_path):
    """compare queues every scenario's replications on the workers at once (AskedTogether): the same tables."""
    from sim.cli.main import main
    first = small_scenario(tmp_path)
    raw = scaled_baseline_raw(0.1, horizon_weeks=6)
    raw["name"] = "more_referrals"
    raw["referrals"]["referrals_per_week"] *= 1.2
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    for name, jobs in (("one", "1"), ("two", "2")):
        assert main(["compare", str(first), str(second), *SMALL, "--jobs", jobs, "--out", str(tmp_path / name)]) == 0
    for table in ("weekly.csv", "replications.csv", "summary.csv", "comparison.csv"):
        assert (tmp_path / "one" / table).read_bytes() == (tmp_path / "two" / table).read_bytes(), table


@pytest.mark.integration
def test_a_run_on_two_processes_loads_the_report_meanwhile_and_writes_the_whole_report(tmp_path, monkeypatch):
    """With workers, run imports the report's modules in a thread while the replications run (_import_report_modules),
    joined before anything is written or forked: the report is whole and the tables are those of --jobs 1."""
    from sim.cli import run as run_command
    from sim.cli.main import main
    imported: list[bool] = []
    original = run_command._import_report_modules

    def recording() -> None:
        imported.append(True)
        original()
    monkeypatch.setattr(run_command, "_import_report_modules", recording)
    scenario = small_scenario(tmp_path)
    options = ["--replications", "2", "--seed", "11", "--quiet"]
    for name, jobs in (("one", "1"), ("two", "2")):
        assert main(["run", str(scenario), *options, "--jobs", jobs, "--out", str(tmp_path / name)]) == 0
    assert imported == [True]                      # only with workers
    for folder in ("one", "two"):
        assert (tmp_path / folder / "report.html").stat().st_size > 0 and (tmp_path / folder / "results.xlsx").exists()
    assert sorted(p.name for p in (tmp_path / "two" / "charts").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "charts").iterdir())
    assert (tmp_path / "one" / "weekly.csv").read_bytes() == (tmp_path / "two" / "weekly.csv").read_bytes()
