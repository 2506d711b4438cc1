"""What the web app does, apart from drawing the page (sim.app.page): scenarios to choose from, an uploaded file
checked, the levers a planner moves turned into `--set` overrides, a run in a background thread, past runs read
back from the results folder.

A run is the command line's own `run` (sim.cli.run.run_scenarios, with the arguments its parser makes), so the app
writes the same results/<scenario>/<timestamp>/ folder, with the same checks before anything runs and the same
messages. An uploaded scenario is checked by the command line's loader (sim.scenario.build.load_scenario): it is
saved under results/uploads/ (the only place the app writes, besides the run folders), never executed (the loader
is the project's safe YAML loader), removed again when it is refused, and kept only among the newest KEEP_UPLOADS.
"""
from __future__ import annotations

import abc
import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from sim.cli import run as run_command
from sim.cli import solve as solve_command
from sim.cli.options import DEFAULT_RESULTS_ROOT, limit_jobs
from sim.experiment.executors import ExecutorError
from sim.experiment.solver import LEVERS, MAX_WAIT_THRESHOLDS
from sim.outputs.analysis import comparison_lines, headline, paired_comparison
from sim.outputs.destination import recording_writes
from sim.outputs.report.documents import Paragraph, Table
from sim.outputs.report.published import published_blocks, published_fits
from sim.outputs.run_folder import (
    CHARTS_DIR,
    FINANCE_BY_YEAR_CSV,
    MANIFEST_JSON,
    PROJECT_ROOT,
    REPORT_HTML,
    RESULTS_XLSX,
    SCENARIO_YAML,
    SOLVE_CHART,
    SOLVE_CSV,
    SOLVE_FINANCE_CSV,
    SOLVE_MD,
    SOLVE_XLSX,
    SOLVED_SCENARIO_YAML,
    OutputError,
    recording_command,
)
from sim.outputs.run_reader import RunFolder, load_run
from sim.scenario.build import load_scenario
from sim.scenario.input_files import MAX_SCENARIO_BYTES
from sim.scenario.schema import (
    Covid,
    Delivery,
    OutpatientFollowUps,
    Referrals,
    Removals,
    Scenario,
    ScenarioError,
    SurgicalHub,
    TheatreRules,
    TheatreTemplate,
    VaccinationSurge,
    ValidationRound,
    Weekday,
)
from sim.scenario.yaml_files import parse_yaml

SCENARIOS_DIR = PROJECT_ROOT / "scenarios"
UPLOADS_DIR = "uploads"                     # under the results root: uploaded scenario files
MAX_UPLOAD_BYTES = MAX_SCENARIO_BYTES       # the loader's own limit for a scenario file
KEEP_UPLOADS = 20                           # uploaded files kept: the newest (at most 20 x 256 kB), see prune_uploads
WEEKDAYS_OPEN: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
CHART_52_WEEKS = "waiting_over_52w.png"     # the 52-week fan chart the run draws
CHART_LIST = "waiting_list.png"             # the waiting list's fan chart
WAVES_WEEKS_LATER = "covid.waves:weeks_later"   # a lever of its own: every wave's dates, not one scenario key
CHART_BY_PROVIDER = "waiting_over_52w_by_provider.png"   # the 52-week median by provider (trust), when drawn
FINANCE_SHOWN = {"income_total": "Elective income", "cost_total": "Cost", "net_position": "Net position"}
NOT_A_RUN_KEYS = ("lever", "factors", "kind")   # in the manifests of solve, sweep, and backtest or calibrate
SOLVE_PREFIX = "solve-"                     # results/solve-<scenario>/<timestamp>/: the command line's solve folders
MAX_WAIT_CHOICES = MAX_WAIT_THRESHOLDS      # the waits the model counts (waiting_over_{N}w): a target's N
TARGET_CHOICES = {"max_wait_weeks": "Nobody waiting over N weeks", "list_at_most": "The waiting list at most",
                  "within_18_weeks": "At least this share waiting under 18 weeks"}


def results_root() -> Path:
    """Where runs go: results/ in the project, or NWL_RESULTS_ROOT (the tests keep their runs out of the project)."""
    return Path(os.environ.get("NWL_RESULTS_ROOT") or DEFAULT_RESULTS_ROOT)


def app_jobs() -> int:
    """Processes a run uses: every core, as `make run` does, or NWL_APP_JOBS (the tests use one)."""
    return int(os.environ.get("NWL_APP_JOBS") or os.cpu_count() or 1)


def shipped_scenarios() -> dict[str, Path]:
    """The scenario files shipped in scenarios/ (not the shared parts in scenarios/core/), by file stem."""
    return {p.stem: p for p in sorted(SCENARIOS_DIR.glob("*.yaml"))}


# ---------------------------------------------------------------------------------------------------------------
# Labels from the schema


def field_label(model: type[BaseModel], key: str) -> tuple[str, str, str]:
    """(label, unit, description) of a schema field: its title (else its key, humanised), the unit its metadata
    names ("share", "multiplier", "pounds" or ""), and its description."""
    info = model.model_fields[key]
    label = info.title or key.replace("_", " ").capitalize()
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    meta_unit = str(extra.get("unit", ""))
    for meta in info.metadata:      # bounds and units written on an Annotated type sit in the metadata
        inner = getattr(meta, "json_schema_extra", None)
        if isinstance(inner, dict) and "unit" in inner:
            meta_unit = str(inner["unit"])
    return label, meta_unit, info.description or ""


def unit_suffix(meta_unit: str) -> str:
    """How a unit reads after a label."""
    return {"share": " (a fraction: 0.1 is 10%)", "multiplier": " (×)", "pounds": " (£)"}.get(meta_unit, "")


# ---------------------------------------------------------------------------------------------------------------
# Levers


@dataclasses.dataclass(frozen=True)
class Lever:
    """One form control: the `--set` key it changes, its label and unit from the schema, the scenario's value."""

    key: str
    label: str
    unit: str
    help: str
    value: Any
    kind: Literal["number", "date", "int"] = "number"
    low: float | None = None
    high: float | None = None


def levers_for(scenario: Scenario) -> list[Lever]:
    """The levers a planner moves most, for this scenario: those that apply to it, at its own values."""
    levers: list[Lever] = []
    if scenario.covid is not None:
        label, u, desc = field_label(Covid, "wave_peak_multiplier")
        waves = len(scenario.covid.waves)
        levers.append(Lever("covid.wave_peak_multiplier", f"Covid wave height: {label.lower()}", u,
                            desc or f"multiplies the peak of each of the scenario's {waves} wave(s)"
                            + ("" if waves else " (this scenario has no wave: no effect)"),
                            scenario.covid.wave_peak_multiplier, low=0.0, high=10.0))
    if scenario.covid is not None and scenario.covid.waves:
        levers.append(Lever(WAVES_WEEKS_LATER, "Covid waves: weeks later (earlier if negative)", "weeks",
                            "moves the start, peak and end of every wave by this many weeks", 0, kind="int",
                            low=-52, high=52))
    if scenario.surgical_hubs is not None:
        for name, hub in scenario.surgical_hubs.hubs.items():
            opens_label, _, opens_help = field_label(SurgicalHub, "opens")
            prod_label, u, prod_help = field_label(SurgicalHub, "productivity_multiplier")
            levers.append(Lever(f"surgical_hubs.hubs.{name}.opens", f"Hub {name}: {opens_label.lower()}", "",
                                opens_help or "the first day the hub operates", hub.opens, kind="date"))
            levers.append(Lever(f"surgical_hubs.hubs.{name}.productivity_multiplier",
                                f"Hub {name}: {prod_label.lower()}", u, prod_help, hub.productivity_multiplier,
                                low=0.1, high=10.0))
    delivery = scenario.delivery or Delivery()
    label, u, desc = field_label(Delivery, "clinic_slots_scale")
    levers.append(Lever("delivery.clinic_slots_scale", label, u, desc or "multiplies every first outpatient slot",
                        delivery.clinic_slots_scale, low=0.1, high=10.0))
    for key, low, high in (("advice_and_guidance_share", 0.0, 1.0), ("demand_growth_per_year", -0.5, 1.0)):
        label, u, desc = field_label(Referrals, key)
        levers.append(Lever(f"referrals.{key}", label, u, desc, getattr(scenario.referrals, key), low=low, high=high))
    label, u, desc = field_label(TheatreRules, "on_the_day_cancellation_rate")
    levers.append(Lever("theatre_rules.on_the_day_cancellation_rate", label, u, desc,
                        scenario.theatre_rules.on_the_day_cancellation_rate, low=0.0, high=0.95))
    label, u, desc = field_label(Removals, "rate_multiplier")
    levers.append(Lever("removals.rate_multiplier", label, u, desc or "scales every band's weekly removal rate",
                        scenario.removals.rate_multiplier, low=0.0, high=50.0))
    for i, round_ in enumerate(scenario.removals.validation_rounds):
        who = f"Validation round {i + 1} ({round_.min_weeks_waited:g}+ weeks waited)"
        label, u, desc = field_label(ValidationRound, "share_removed")
        levers.append(Lever(f"removals.validation_rounds.{i}.share_removed", f"{who}: {label.lower()}", u,
                            desc or f"the share of those waiting longer than {round_.min_weeks_waited:g} weeks on its "
                            "date that the validation round takes off the list (found no longer to need treatment)",
                            round_.share_removed, low=0.0, high=1.0))
        label, _, desc = field_label(ValidationRound, "date")
        levers.append(Lever(f"removals.validation_rounds.{i}.date", f"{who}: {label.lower()}", "",
                            desc or "the day the validation round takes them off", round_.date, kind="date"))
    follow_ups = scenario.outpatient_follow_ups
    if follow_ups is not None:
        keys = ["pifu_share", "pifu_request_rate"]
        if follow_ups.slot_rule == "ring_fenced":
            keys.append("pifu_freed_slots_to_firsts")
        for key in keys:
            label, u, desc = field_label(OutpatientFollowUps, key)
            levers.append(Lever(f"outpatient_follow_ups.{key}", f"Outpatients: {label[0].lower()}{label[1:]}", u,
                                desc, getattr(follow_ups, key), low=0.0, high=1.0))
    surge = scenario.vaccination.surge if scenario.vaccination is not None else None
    if surge is not None:
        levers.append(Lever("vaccination.surge.start", "Vaccination surge: first day", "",
                            "the day the surge campaign starts (extra stations, staff redeployed by its rule)",
                            surge.start, kind="date"))
        label, u, desc = field_label(VaccinationSurge, "target_doses_per_week")
        levers.append(Lever("vaccination.surge.target_doses_per_week", f"Vaccination surge: {label.lower()}", u,
                            desc or "the doses a week the surge campaign aims for", surge.target_doses_per_week,
                            low=0.0, high=2_000_000.0))
    return levers


def sessions_label() -> str:
    """The label of the extra-sessions lever, from the schema's theatre timetable field."""
    label, _, _ = field_label(TheatreTemplate, "sessions_by_weekday")
    return f"Extra theatre sessions a weekday ({label.lower()}, Monday to Friday)"


def lever_overrides(scenario: Scenario, values: dict[str, Any], extra_sessions_site: str | None = None,
                    extra_sessions_per_weekday: int = 0) -> list[str]:
    """`--set` lines for the levers moved away from the scenario's own values (none for those left alone), and
    the extra theatre sessions at one site on each weekday it operates Monday to Friday."""
    overrides: list[str] = []
    own = {lever.key: lever.value for lever in levers_for(scenario)}
    for key, value in values.items():
        if key not in own or _same(own[key], value):
            continue
        if key == WAVES_WEEKS_LATER:
            overrides += _waves_moved(scenario, int(round(value)))
            continue
        overrides.append(f"{key}={value.isoformat() if isinstance(value, dt.date) else _number(value)}")
    if extra_sessions_site and extra_sessions_per_weekday:
        sessions = scenario.sites[extra_sessions_site].theatres.sessions_by_weekday
        for day in WEEKDAYS_OPEN:
            now = sessions.get(day, 0)
            if now > 0:
                overrides.append(f"sites.{extra_sessions_site}.theatres.sessions_by_weekday.{day}="
                                 f"{max(now + extra_sessions_per_weekday, 0)}")
    return overrides


def _waves_moved(scenario: Scenario, weeks: int) -> list[str]:
    """`--set` lines moving every Covid wave's start, peak and end by `weeks` (the wave's shape kept)."""
    assert scenario.covid is not None
    shift = dt.timedelta(weeks=weeks)
    return [f"covid.waves.{i}.{when}={(getattr(wave, when) + shift).isoformat()}"
            for i, wave in enumerate(scenario.covid.waves) for when in ("start", "peak", "end")]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dt.date) or isinstance(b, dt.date):
        return a == b
    return abs(float(a) - float(b)) < 1e-9


def _number(value: Any) -> str:
    return repr(round(float(value), 10)) if isinstance(value, float) else str(value)


def parse_set_lines(text: str) -> list[str]:
    """The free-form changes: one `dotted.key=value` a line, as `--set` takes them (blank lines and # comments
    left out)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


# ---------------------------------------------------------------------------------------------------------------
# Loading and uploads


def check_scenario(path: Path, overrides: list[str]) -> tuple[Scenario | None, list[str]]:
    """The scenario as the command line would load it with these overrides, or the command line's error lines."""
    try:
        return load_scenario(path, overrides).scenario, []
    except ScenarioError as exc:
        return None, [f"error: {line}" for line in exc.problems]


def save_upload(name: str, data: bytes) -> tuple[Path | None, list[str]]:
    """Keep an uploaded scenario under results/uploads/ and check it with the command line's loader. A file too
    large, or refused by the loader, is removed again and its problems returned, one line each, as the command line
    prints them (the saved path replaced by the name the file was uploaded under)."""
    shown_name = Path(name).name or "upload.yaml"
    if len(data) > MAX_UPLOAD_BYTES:
        return None, [f"error: {shown_name}: {len(data):,} bytes; a scenario file may be at most "
                      f"{MAX_UPLOAD_BYTES:,} bytes"]
    folder = results_root() / UPLOADS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_\-]", "_", Path(shown_name).stem)[:60] or "upload"
    # the time, this server and a random part: two sessions uploading files of the same name in the same second
    # each keep their own
    path = folder / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-{secrets.token_hex(4)}-{stem}.yaml"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, [f"error: {shown_name}: not UTF-8 text; a scenario file is a UTF-8 YAML file"]
    path.write_text(_with_shipped_parent(text), encoding="utf-8")
    scenario, problems = check_scenario(path, [])
    if scenario is None:
        path.unlink(missing_ok=True)
        return None, [line.replace(str(path), shown_name) for line in problems]
    prune_uploads()
    return path, []


# Uploaded files a run or solve of this server is reading (a solve reads its file again for every evaluation),
# with how many are reading each: prune_uploads leaves them.
_READING: dict[Path, int] = {}
_READING_LOCK = threading.Lock()


def _hold(path: Path) -> None:
    with _READING_LOCK:
        _READING[Path(path)] = _READING.get(Path(path), 0) + 1


def _let_go(path: Path) -> None:
    with _READING_LOCK:
        left = _READING.get(Path(path), 0) - 1
        if left > 0:
            _READING[Path(path)] = left
        else:
            _READING.pop(Path(path), None)


def prune_uploads(keep: int | None = None) -> list[Path]:
    """Remove all but the newest `keep` (KEEP_UPLOADS) uploaded files, never one a run or solve is reading, so
    results/uploads/ does not grow without bound. A finished run does not need its upload: its folder keeps the
    scenario exactly as run (scenario.yaml; a solve: its manifest's changes and solved_scenario.yaml). A page
    whose upload was removed saves it again when it needs it (sim.app.page). Returns the files removed."""
    keep = KEEP_UPLOADS if keep is None else keep
    folder = results_root() / UPLOADS_DIR
    try:
        files = [p for p in folder.glob("*.yaml") if p.is_file() and not p.is_symlink()]
        files.sort(key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    except OSError:             # another server removing the same files: the next upload tries again
        return []
    with _READING_LOCK:
        reading = {p.resolve() for p in _READING}
    removed = []
    for old in files[keep:]:
        if old.resolve() in reading:
            continue
        try:
            old.unlink()
        except OSError:
            continue
        removed.append(old)
    return removed


def _with_shipped_parent(text: str) -> str:
    """An uploaded file that `extends:` a shipped scenario by its bare name (as the shipped files do) made to find
    it in scenarios/: the one `extends:` line gets the shipped file's full path. Anything else is left as it is,
    for the loader to accept or refuse."""
    try:
        data = parse_yaml(text)
    except Exception:           # the loader reads it again and says what is wrong, as for any file
        return text
    parent = data.get("extends") if isinstance(data, dict) else None
    if not isinstance(parent, str) or parent not in {p.name for p in shipped_scenarios().values()}:
        return text
    return re.sub(r"(?m)^extends:[^\n#]*", f"extends: {json.dumps(str(SCENARIOS_DIR / parent))}", text, count=1)


# ---------------------------------------------------------------------------------------------------------------
# Running


def shown_path(path: Path) -> str:
    """A path as a planner reads it: relative to the project folder when it is inside it."""
    try:
        return str(Path(path).relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


# One command at a time in this server: runs and solves share the machine's cores (two at once only take twice as long
# each), and the folder a command wrote is told by sim.outputs.destination.recording_writes, which records every
# command in the process.
_ONE_RUN_AT_A_TIME = threading.Lock()


class RunCancelled(KeyboardInterrupt):
    """Cancel pressed: raised at the next finished replication, so the command stops as after Ctrl-C (workers
    stopped, nothing written)."""


@dataclasses.dataclass
class CommandJob(abc.ABC):
    """One command of the command line in a background thread, with the arguments its own parser makes: its
    progress by replication (and by stage: a solve's evaluations), and at the end its folder or its error lines.
    A subclass says which command (`argv`) and how it is run (`_execute`)."""

    scenario_file: Path
    overrides: list[str]
    replications: int
    seed: int
    jobs: int = 1
    done: int = 0                           # replications finished, over every stage
    total: int = 0                          # replications of the current stage
    stages: int = 0                         # stages started: 1 for a run, the evaluations so far for a solve
    stage_label: str = ""
    stage_done: int = 0
    state: Literal["running", "finished", "failed", "cancelled"] = "running"
    errors: list[str] = dataclasses.field(default_factory=list)
    folder: Path | None = None
    started: float = dataclasses.field(default_factory=time.perf_counter)
    first_progress_seconds: float | None = None
    finished_seconds: float | None = None
    queued: bool = True                     # waiting for another session's run or solve to finish
    _cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> CommandJob:
        self.total = self.replications
        _hold(self.scenario_file)       # an upload is read again by each of a solve's evaluations: kept to the end
        self._thread = threading.Thread(target=self._work, name=f"nwl-app-{self.argv()[0]}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        """Cancel pressed and the command not stopped yet (it stops at the next finished replication)."""
        return self._cancel.is_set() and self.state == "running"

    def wait(self, timeout_seconds: float | None = None) -> bool:
        """Wait for the command to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        return self.state != "running"

    @abc.abstractmethod
    def argv(self) -> list[str]:
        """The command line's arguments for this command, from the project folder (the scenario file as given)."""

    def command_line(self) -> str:
        """The same command at the command line (from the project folder)."""
        argv = self.argv()
        shown = [shown_path(Path(a)) if a == str(self.scenario_file) else a for a in argv]
        return "python run_sim.py " + " ".join(shlex.quote(a) for a in shown)

    def arguments(self) -> argparse.Namespace:
        """The command line's own parser, given this command: the arguments its handler gets."""
        parser = argparse.ArgumentParser(prog="run_sim.py")
        subparsers = parser.add_subparsers(dest="command")
        run_command.add_parsers(subparsers)
        solve_command.add_parser(subparsers)
        args = parser.parse_args([*self.argv(), "--results-root", str(results_root()), "--quiet"])
        args.progress = self._progress
        limit_jobs(args)
        return args

    @abc.abstractmethod
    def _execute(self, args: argparse.Namespace) -> None:
        """Run the command's handler with its parsed arguments (a run writes its folder, a solve its own)."""

    def _progress(self, label: str, total: int | Literal["auto"]) -> Callable[[Any, int], None]:
        self.stages += 1
        self.stage_label = label
        self.stage_done = 0

        def tick(result: Any, of: int) -> None:
            self.done += 1
            self.stage_done += 1
            self.total = of
            if self.first_progress_seconds is None:
                self.first_progress_seconds = time.perf_counter() - self.started
            if self._cancel.is_set():
                raise RunCancelled
        return tick

    def _work(self) -> None:
        try:
            with _ONE_RUN_AT_A_TIME:
                self.queued = False
                if self._cancel.is_set():
                    raise RunCancelled
                with recording_writes() as written, recording_command(self.command_line()):
                    self._execute(self.arguments())
            self.folder = written[-1] if written else None
            self.state = "finished"
        except RunCancelled:
            self.state = "cancelled"
        except ScenarioError as exc:
            self.errors = [f"error: {line}" for line in exc.problems]
            self.state = "failed"
        except (OutputError, ExecutorError) as exc:
            self.errors = [f"error: {'; '.join([str(exc), *getattr(exc, '__notes__', [])])}"]
            self.state = "failed"
        except Exception as exc:     # shown on the page; the server and other sessions go on
            self.errors = [f"error: {type(exc).__name__}: {exc}"]
            self.state = "failed"
        finally:
            _let_go(self.scenario_file)
            self.finished_seconds = time.perf_counter() - self.started


@dataclasses.dataclass
class RunJob(CommandJob):
    """`run`: the scenario with the levers' --set lines, written to results/<scenario>/<timestamp>/."""

    def argv(self) -> list[str]:
        return ["run", str(self.scenario_file), "--replications", str(self.replications), "--seed", str(self.seed),
                "--jobs", str(self.jobs), *[part for line in self.overrides for part in ("--set", line)]]

    def _execute(self, args: argparse.Namespace) -> None:
        run_command.run_scenarios(args, [self.scenario_file])


@dataclasses.dataclass
class SolveJob(CommandJob):
    """`solve`: the smallest lever value meeting the target by the date in `confidence` of the replications,
    written to results/solve-<scenario>/<timestamp>/. The search range and step are as typed (None: the lever's
    own), checked by the command line. Cancel stops it at the next finished replication, in the middle of an
    evaluation: the search stops as after Ctrl-C, and nothing is written."""

    target: str = "max_wait_weeks=52"
    by: dt.date = dt.date(2022, 3, 31)
    confidence: float = 0.8
    lever: str = "theatre_sessions_per_week"
    site: str | None = None
    specialty: str | None = None
    low: str | None = None
    high: str | None = None
    step: str | None = None
    steady_state: bool = False

    def argv(self) -> list[str]:
        argv = ["solve", str(self.scenario_file), "--target", self.target, "--by", self.by.isoformat(),
                "--confidence", _number(self.confidence), "--lever", self.lever,
                "--replications", str(self.replications), "--seed", str(self.seed), "--jobs", str(self.jobs)]
        for option, value in (("--site", self.site), ("--specialty", self.specialty), ("--min", self.low),
                              ("--max", self.high), ("--step", self.step)):
            if value:
                argv += [option, value]
        if self.steady_state:
            argv.append("--steady-state")
        return argv + [part for line in self.overrides for part in ("--set", line)]

    def _execute(self, args: argparse.Namespace) -> None:
        solve_command.run_solve(args)


# ---------------------------------------------------------------------------------------------------------------
# Past runs


@dataclasses.dataclass(frozen=True)
class PastRun:
    folder: Path
    scenario: str
    started_at: str
    replications: Any
    overrides: list[str]

    @property
    def label(self) -> str:
        changes = f"; {len(self.overrides)} change(s)" if self.overrides else ""
        return f"{self.scenario} / {self.folder.name} ({self.replications} replications{changes})"


def past_runs(root: Path | None = None) -> list[PastRun]:
    """Finished single-scenario run folders under the results root, newest first (a folder there with a manifest
    is a finished run: the run is renamed into place only when complete)."""
    root = root or results_root()
    runs: list[PastRun] = []
    for manifest_path in root.glob(f"*/*/{MANIFEST_JSON}"):
        folder = manifest_path.parent
        if folder.name.startswith(".") or ".incomplete-" in folder.name or folder.parent.name == UPLOADS_DIR:
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or not isinstance(manifest.get("scenario"), str):
            continue        # compare folders: not a single run
        if any(key in manifest for key in NOT_A_RUN_KEYS):
            continue        # solve, sweep, backtest and calibrate folders: their manifests name one scenario too
        runs.append(PastRun(folder, manifest["scenario"], str(manifest.get("started_at", "")),
                            manifest.get("replications", "?"), list(manifest.get("overrides") or [])))
    return sorted(runs, key=lambda r: (r.started_at, r.folder.name), reverse=True)


@dataclasses.dataclass(frozen=True)
class RunView:
    """What the results panel shows of one run folder."""

    folder: Path
    lines: list[str]                       # the command line's headline
    clearance: pd.DataFrame                # one row per threshold: median and 90% range of the clearance date
    chances: list[str]                     # the chance of meeting each target date
    charts: dict[str, Path]                # "52-week", "list" and "by provider": the PNGs the run drew
    downloads: dict[str, Path]             # report.html, results.xlsx, scenario.yaml as run
    summary: pd.DataFrame
    replications: pd.DataFrame             # one row per replication: its clearance weeks and other measures
    seed: Any                              # the run's seed (manifest)
    finance: pd.DataFrame | None = None    # income, cost and net position by NHS financial year, £m (median)
    published: pd.DataFrame | None = None  # the report's table against NHS England's published months, if any
    published_note: str = ""               # what the report says of them (its paragraphs, in its Markdown)


def view_run(folder: Path) -> RunView:
    """A finished run folder read back by the report's reader (sim.outputs.run_reader.load_run)."""
    run: RunFolder = load_run(folder)
    name = run.names[0]
    info = run.scenarios[name]
    lines = headline(run.summary, info.title, name, info.start, info.replications, info.horizon_weeks)
    s = run.summary[run.summary["scenario"] == name].set_index("metric")
    rows = []
    for weeks in (52, 78, 104):
        metric = f"weeks_to_clear_{weeks}w"
        if metric not in s.index:
            continue
        med, lo, hi = (float(s.loc[metric, k]) for k in ("p50", "p05", "p95"))
        rows.append({"nobody waiting over": f"{weeks} weeks",
                     "median date": _date_text(info.clearance_week(med, "round"), info),
                     "90% of replications from": _date_text(info.clearance_week(lo, "floor"), info),
                     "to": _date_text(info.clearance_week(hi, "ceil"), info),
                     "replications cleared": f"{float(s.loc[f'share_of_replications_cleared_{weeks}w', 'mean']):.0%}"})
    chances = [line.strip() for line in lines if line.strip().startswith("Chance that")]
    charts = {label: folder / CHARTS_DIR / png for label, png in (("52-week", CHART_52_WEEKS), ("list", CHART_LIST),
                                                                  ("by provider", CHART_BY_PROVIDER))
              if (folder / CHARTS_DIR / png).is_file()}
    downloads = {n: folder / n for n in (REPORT_HTML, RESULTS_XLSX, SCENARIO_YAML) if (folder / n).is_file()}
    published, published_note = against_published(run, name)
    return RunView(folder, lines, pd.DataFrame(rows), chances, charts, downloads,
                   run.summary[run.summary["scenario"] == name].reset_index(drop=True),
                   run.replications[run.replications["scenario"] == name].reset_index(drop=True),
                   run.manifest.get("seed"), finance_by_year(run, name), published, published_note)


def against_published(run: RunFolder, name: str) -> tuple[pd.DataFrame | None, str]:
    """The report's "Against the published figures" table for one scenario (sim.outputs.report.published) and its
    paragraphs; (None, "") when the run covers no published month."""
    blocks = published_blocks(run, [f for f in published_fits(run) if f.scenario == name])
    tables = [b for b in blocks if isinstance(b, Table)]
    if not tables:
        return None, ""
    note = "\n\n".join(b.text for b in blocks if isinstance(b, Paragraph))
    return pd.DataFrame(tables[0].rows, columns=tables[0].header), note


def finance_by_year(run: RunFolder, name: str) -> pd.DataFrame | None:
    """Elective income, cost and net position by NHS financial year in £m (the median replication), from the run's
    finance_by_year.csv as the report's reader checked it; None for a scenario without a finance section."""
    table = run.table(FINANCE_BY_YEAR_CSV)
    if table is None:
        return None
    rows = table[(table["scenario"] == name) & (table["statistic"] == "p50") & table["metric"].isin(FINANCE_SHOWN)]
    if rows.empty:
        return None
    years = [c for c in table.columns if c not in ("scenario", "metric", "statistic")]
    shown = rows.set_index("metric").loc[[m for m in FINANCE_SHOWN if m in set(rows["metric"])], years]
    shown = (shown.astype(float) / 1e6).round(1)
    shown.index = [FINANCE_SHOWN[m] for m in shown.index]
    return shown.rename_axis("£m, median replication").reset_index()


def _date_text(day: dt.date | None, info: Any) -> str:
    """A clearance date, or when it is not reached, the end of the run (its last day) as the headline and the report
    name it."""
    return day.isoformat() if day is not None else f"not by {info.horizon_end.isoformat()}"


def side_by_side(a: RunView, b: RunView) -> pd.DataFrame:
    """Two runs' summary tables side by side (median and 90% range of each metric), with the difference of the
    medians (second minus first). Runs with the same seed share their random draws, so the difference is the
    levers', not chance's, as far as the replications go."""
    def table(view: RunView) -> pd.DataFrame:
        return view.summary.set_index("metric")[["p50", "p05", "p95"]]
    ta, tb = table(a), table(b)
    both = ta.join(tb, how="inner", lsuffix=" (first)", rsuffix=" (second)")
    both["median: second minus first"] = both["p50 (second)"] - both["p50 (first)"]
    return both.reset_index()


def paired_differences(a: RunView, b: RunView) -> tuple[pd.DataFrame | None, list[str]]:
    """The second run's clearance weeks minus the first's, replication by replication, as `compare` gives them
    (sim.outputs.analysis.paired_comparison), with its plain-English line. Only for runs with the same seed: the
    same replication then has the same patients in both, so the difference is the levers'. (None, why) else."""
    if a.seed is None or a.seed != b.seed:
        return None, [f"Not paired: the runs have different seeds ({a.seed} and {b.seed}); compare their ranges."]
    kpis = pd.concat([a.replications.assign(scenario="first"), b.replications.assign(scenario="second")],
                     ignore_index=True)
    table = paired_comparison(kpis, "first")
    table = table[table["scenario"] == "second"].reset_index(drop=True)
    return table, comparison_lines(table, "first")


# ---------------------------------------------------------------------------------------------------------------
# Solve: what would it take


def default_by(scenario: Scenario) -> dt.date:
    """The date a target is first asked for: the end of the NHS financial year (31 March) at least half a year
    after the start, the planning year's end (31 March 2022 for a June 2021 start)."""
    half_year_on = scenario.start_date + dt.timedelta(weeks=26)
    end = dt.date(half_year_on.year, 3, 31)
    return end if end >= half_year_on else dt.date(half_year_on.year + 1, 3, 31)


def solve_levers() -> dict[str, tuple[str, str]]:
    """The solver's levers (sim.experiment.solver.LEVERS) by name: (what it adds, in its unit; what it does)."""
    return {name: (lever.unit, lever.description) for name, lever in LEVERS.items()}


def solve_lever_places(name: str) -> tuple[bool, bool]:
    """Whether the solver's lever can be put at one site, and in one specialty."""
    return LEVERS[name].uses_site, LEVERS[name].uses_specialty


@dataclasses.dataclass(frozen=True)
class PastSolve:
    folder: Path
    manifest: dict[str, Any]

    @property
    def label(self) -> str:
        m = self.manifest
        answer = "not reachable" if m.get("answer") is None else f"{m.get('lever')} = {m.get('answer'):g}"
        return f"{m.get('scenario')} / {self.folder.name}: {m.get('target')} ({answer})"


def past_solves(root: Path | None = None) -> list[PastSolve]:
    """Finished solve folders under the results root (results/solve-<scenario>/<timestamp>/), newest first."""
    root = root or results_root()
    solves = []
    for manifest_path in root.glob(f"{SOLVE_PREFIX}*/*/{MANIFEST_JSON}"):
        folder = manifest_path.parent
        if folder.name.startswith(".") or ".incomplete-" in folder.name or not (folder / SOLVE_CSV).is_file():
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and "lever" in manifest:
            solves.append(PastSolve(folder, manifest))
    return sorted(solves, key=lambda s: (str(s.manifest.get("started_at", "")), s.folder.name), reverse=True)


@dataclasses.dataclass(frozen=True)
class SolveView:
    """What the solve panel shows of one solve folder."""

    folder: Path
    title: str
    answer: list[str]                      # "What it would take" of solve.md: the answer sentence first (markdown)
    steady: str | None                     # the steady-state sentence, when asked for (markdown)
    manifest: dict[str, Any]
    evaluations: pd.DataFrame              # solve.csv, one row per lever value evaluated, in the order run
    cost: pd.DataFrame | None              # solve_finance.csv: cost, income and net position, solved - starting
    chart: Path | None
    downloads: dict[str, Path]             # solve.md, solve.xlsx, solved_scenario.yaml (when there is an answer)


def view_solve(folder: Path) -> SolveView:
    """A solve folder read back: the answer as the command line wrote it in solve.md (the sentence it prints),
    the evaluations (solve.csv) and the cost of the change (solve_finance.csv)."""
    manifest = json.loads((folder / MANIFEST_JSON).read_text(encoding="utf-8"))
    title, sections = _markdown_sections((folder / SOLVE_MD).read_text(encoding="utf-8"))
    found = sections.get("How it was found", [])
    steady = next((p for p in found if p.startswith("Steady state")), None)
    table = pd.read_csv(folder / SOLVE_CSV)
    unit = str(manifest.get("lever_unit", ""))
    evaluations = pd.DataFrame({
        "evaluation": table["evaluation"],
        f"value ({unit})": table["value"],
        "replications meeting the target": [f"{m} of {n} ({s:.0%})" for m, n, s in zip(
            table["replications_meeting_target"], table["replications"], table["share_meeting_target"], strict=True)],
        "meets the confidence": table["meets_confidence"].astype(bool),
        "median date it held from": table["median_kpi_date"].fillna("").astype(str).replace(
            "", f"not by {manifest.get('by', '')}"),
        "the answer": table["answer"].astype(bool),
        "seconds": table["seconds"]})
    cost = None
    if (folder / SOLVE_FINANCE_CSV).is_file():
        raw = pd.read_csv(folder / SOLVE_FINANCE_CSV, dtype={"financial_year": str})
        raw = raw[raw["metric"].isin(FINANCE_SHOWN)]
        if raw["financial_year"].nunique() == 2:        # one financial year and "all": the same figures twice
            raw = raw[raw["financial_year"] != "all"]
        cost = pd.DataFrame({
            "financial year": raw["financial_year"].replace("all", "all, to the date"),
            "what": raw["metric"].map(FINANCE_SHOWN),
            "starting (£, mean)": raw["starting_mean"].round(0),
            "solved (£, mean)": raw["solved_mean"].round(0),
            "difference (£, mean)": raw["difference_mean"].round(0),
            "difference: 90% of replications from (£)": raw["difference_p05"].round(0),
            "to (£)": raw["difference_p95"].round(0)}).reset_index(drop=True)
    chart = folder / f"{SOLVE_CHART}.png"
    downloads = {n: folder / n for n in (SOLVE_MD, SOLVE_XLSX, SOLVED_SCENARIO_YAML) if (folder / n).is_file()}
    return SolveView(folder, title, sections.get("What it would take", []), steady, manifest, evaluations, cost,
                     chart if chart.is_file() else None, downloads)


def _markdown_sections(text: str) -> tuple[str, dict[str, list[str]]]:
    """solve.md's title and its `## ` sections, each as its paragraphs (markdown as written: the page renders it,
    so the escaping the writer added shows as the plain text the command line prints)."""
    title, current = "", None
    sections: dict[str, list[str]] = {}
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if block.startswith("# "):
            title = block[2:].strip()
        elif block.startswith("## "):
            current = block[3:].strip()
            sections[current] = []
        elif block and current is not None:
            sections[current].append(block)
    return title, sections
