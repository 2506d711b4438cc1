"""Scenario builders for tests: a minimal single-site model whose behaviour has closed forms, and the
shipped baseline scaled down so that full-pathway tests run in seconds."""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import simpy

from sim.core.rng import Streams
from sim.model.replication import Services
from sim.scenario.schema import Scenario
from sim.scenario.validate import validate
from sim.scenario.yaml_files import apply_overrides, load_raw

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "core" / "nwl_june_2021_plan.yaml"   # the plan's plain, uncalibrated capacity
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def simple_raw(*, referrals_per_week: float = 100.0, sessions_per_day: int = 20, case_minutes: float = 200.0,
               session_minutes: float = 240.0, horizon_weeks: int = 52, clinic_slots_per_week: float = 1e7,
               start_bands: list[dict] | None = None, policy: str = "fifo",
               priority_mix: dict | None = None) -> dict:
    """One borough, one site, one specialty; every referral needs a day-case operation of fixed length.

    Clinics run every day with (by default) unlimited slots, so a referral gets its decision to treat on
    the day it arrives. With case_minutes 200, turnaround 0 and a 240-minute session at 100% cap, each
    session treats exactly one patient, so capacity is sessions_per_day x 7 a week. No seasonality, no
    growth, no DNAs, no cancellations, no removals.
    """
    return {
        "name": "simple", "title": "Simple test model", "start_date": dt.date(2021, 6, 7),
        "horizon_weeks": horizon_weeks, "booking_policy": policy, "pooling": "ics",
        "run": {"seed": 12345, "replications": 1},
        "bank_holidays": "none", "extra_bank_holidays": [],   # closed forms assume every day is the same
        "specialties": {"general": {
            "treatment_function_code": "100", "referral_share": 1.0, "admitted_share": 1.0, "day_case_share": 1.0,
            "priority_mix": priority_mix or {"P1": 0.0, "P2": 0.0, "P3": 0.0, "P4": 1.0},
            "theatre_minutes_day_case": {"mean": case_minutes, "cv": 0.0},
            "theatre_minutes_inpatient": {"mean": case_minutes, "cv": 0.0}, "los_days_mean": 1.0}},
        "sites": {"site_a": {
            "trust_code": "XXX", "name": "Site A", "elective_beds": 1000,
            "theatres": {"sessions_by_weekday": {d: sessions_per_day for d in ALL_DAYS},
                         "session_minutes": session_minutes, "turnaround_minutes": 0.0, "utilisation_cap": 1.0,
                         "specialty_session_shares": {"general": 1.0}},
            "outpatient_first_slots_per_week": {"general": clinic_slots_per_week}}},
        "boroughs": {"borough_a": {"population": 1000, "referred_site_shares": {"site_a": 1.0}}},
        "referrals": {"referrals_per_week": referrals_per_week, "advice_and_guidance_share": 0.0,
                      "weekday_weights": {d: 1.0 for d in ALL_DAYS}, "seasonality_amplitude": 0.0,
                      "seasonality_peak_day_of_year": 1, "demand_growth_per_year": 0.0},
        "outpatients": {"clinic_weekdays": ALL_DAYS, "virtual_share": 0.0, "dna_rate_face_to_face": 0.0,
                        "dna_rate_virtual": 0.0},
        "theatre_rules": {"on_the_day_cancellation_rate": 0.0, "session_cancellation_rate": 0.0},
        "removals": {"weekly_rate_by_weeks_waited": [{"from_weeks": 0, "weekly_rate": 0.0}], "validation_rounds": []},
        "start_list": {"bands": start_bands or [], "specialty_shares": "referral_shares",
                       "site_shares": "referral_shares", "priority_mix": "specialty"},
    }


def simple(**kwargs) -> Scenario:
    return validate(simple_raw(**kwargs), "simple-test-scenario")


def scaled_baseline_raw(scale: float = 0.1, horizon_weeks: int = 78, overrides: list[str] | None = None) -> dict:
    """The shipped baseline with demand, capacity, hubs, staff and the start list multiplied by `scale`
    (vaccination left out: without a surge it never touches elective care, and it is slow to scale)."""
    raw = copy.deepcopy(load_raw(BASELINE))
    raw["name"] = "baseline"           # the tests key results by the name the plan had when it was the baseline
    raw["horizon_weeks"] = horizon_weeks
    raw["referrals"]["referrals_per_week"] *= scale
    for site in raw["sites"].values():
        site["elective_beds"] = max(1, round(site["elective_beds"] * scale))
        theatres = site["theatres"]
        theatres["sessions_by_weekday"] = {d: round(n * scale) for d, n in theatres["sessions_by_weekday"].items()}
        slots = site["outpatient_first_slots_per_week"]
        site["outpatient_first_slots_per_week"] = {k: v * scale for k, v in slots.items()}
    for band in raw["start_list"]["bands"]:
        band["count"] = round(band["count"] * scale)
    for hub in (raw.get("surgical_hubs") or {}).get("hubs", {}).values():
        hub["elective_beds"] = max(1, round(hub["elective_beds"] * scale))
        theatres = hub["theatres"]
        theatres["sessions_by_weekday"] = {d: round(n * scale) for d, n in theatres["sessions_by_weekday"].items()}
        if hub.get("staff_establishment"):
            hub["staff_establishment"] = {g: max(1, round(n * scale)) for g, n in hub["staff_establishment"].items()}
    if raw.get("staff"):
        raw["staff"]["establishment"] = {site: {g: max(1, round(n * scale)) for g, n in groups.items()}
                                         for site, groups in raw["staff"]["establishment"].items()}
    raw["vaccination"] = None          # no surge in the baseline: vaccination does not touch elective care
    if overrides:
        raw = apply_overrides(raw, overrides)
    return raw


def scaled_baseline(scale: float = 0.1, horizon_weeks: int = 78, overrides: list[str] | None = None) -> Scenario:
    return validate(scaled_baseline_raw(scale, horizon_weeks, overrides), "scaled-baseline")


def with_every_booking_mechanism(raw: dict) -> dict:
    """`raw` with patients who defer, further outpatient visits and a scarce resource, all at modest shares."""
    raw["patient_choice"] = {"outpatient_deferral_share": 0.1, "operation_deferral_share": 0.1,
                             "deferral_weeks_min": 2, "deferral_weeks_max": 10}
    raw["further_outpatient_visits"] = {"non_admitted_share": 0.2, "admitted_share": 0.2,
                                        "wait_weeks_min": 1, "wait_weeks_max": 4}
    raw["scarce_resource"] = {"admitted_share": 0.05, "cases_per_week_per_site": 2}
    return raw


def run_services(raw: dict, replication: int = 0) -> tuple[Services, pd.DataFrame]:
    """One replication of a scenario mapping, keeping the services so that a test can read every pathway's columns
    and the services' own state at the end; with the weekly table."""
    sc = validate(raw, "services-test")
    env = simpy.Environment()
    services = Services(sc, Streams(sc.run.seed, replication))
    for service in services.processes():
        env.process(service.process(env))
    env.run(until=sc.horizon_days)
    return services, pd.DataFrame(services.monitor.columns)


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`run_sim.py ARGS` from the folder `cwd`, run in this process by the command line's own `main`: its exit code
    and what it printed, as a subprocess would give them, without starting Python and importing numpy, pandas and
    SimPy again (1.5-2 s a call). An exception `main` does not turn into an exit code fails the test outright."""
    from sim.cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as exc:                    # argparse refusing the arguments: exit 2 and its usage lines
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess([sys.executable, str(ROOT / "run_sim.py"), *args], code, stdout.getvalue(),
                                       stderr.getvalue())


def stop_run_after_first_replication(args: list[str], replications: int, stop: Callable[[subprocess.Popen], None],
                                     env: dict[str, str] | None = None) -> tuple[int, int, str, float]:
    """Start `run_sim.py ARGS` in a session of its own, wait for its first "1/N done" progress line, then `stop`
    it (send a signal); returns (its pid, exit code, stderr, seconds from the signal to the exit). A watchdog kills
    the whole group after three minutes, so a command that ignores the signal fails the test instead of hanging
    the suite. The command starts with Ctrl-C's default action, as from a terminal: a test suite started in the
    background by a shell without job control (`make test &` in a script) would otherwise hand it SIGINT ignored."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_sim.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    watchdog = threading.Timer(180, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        lines = []
        assert proc.stderr is not None
        for line in proc.stderr:                     # not a terminal: one progress line per replication
            lines.append(line)
            if f"1/{replications} done" in line:
                break
        else:
            raise AssertionError("no progress line: " + "".join(lines))
        sent = time.perf_counter()
        stop(proc)
        _, err = proc.communicate(timeout=60)
        return proc.pid, proc.returncode, err, time.perf_counter() - sent
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def processes_left(ps_selector: str, pid: int, wait_seconds: float = 10) -> list[str]:
    """Processes of a stopped command still running (`ps -g PID` for its process group, `-s PID` for its
    session), after waiting up to `wait_seconds` for them to go: a Dask nanny kills its worker a moment after
    the command exits, later when other tests load the machine. Exited ones awaiting reaping do not count."""
    deadline = time.perf_counter() + wait_seconds
    while True:
        listed = subprocess.run(["ps", "-o", "pid=,stat=", ps_selector, str(pid)], capture_output=True,
                                text=True).stdout
        left = [line for line in listed.splitlines() if line.split() and not line.split()[1].startswith("Z")]
        if not left or time.perf_counter() > deadline:
            return left
        time.sleep(0.2)
