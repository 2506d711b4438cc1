"""One replication of the model: build the SimPy environment from a Scenario, run it, return plain records.

The model does no I/O. `run_single` is the only entry point the experiment layer needs.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

import numpy as np
import pandas as pd
import simpy

from sim.core.nhs_calendar import bank_holiday_days
from sim.scenario.schema import PRIORITIES, Scenario
from sim.model.covid import CovidPressure
from sim.model.activity import WeeklyActivity
from sim.model.monitor import WeeklyMonitor
from sim.model.outpatients import OutpatientClinics
from sim.model.patients import STOPPED_ADMITTED, WAITING_ADMITTED, WAITING_OUTPATIENT, PatientTable
from sim.model.referrals import PathwayParameters, ReferralSource
from sim.model.removals import RemovalSchedule, ValidationRounds
from sim.core.rng import Streams
from sim.model.start_list import draw_start_list, start_list_history_days
from sim.model.staff import StaffRoster
from sim.model.theatres import build_suites
from sim.scenario.intervals import scenario_for_replication
from sim.model.vaccination import CENTRE_KINDS, VaccinationProgramme
from sim.model.waiting_list import MAX_PATIENTS, BookingQueues, OutpatientQueues, RttLedger


class Services:
    """The model's shared state (patients, lists, ledger) and its service processes."""

    def __init__(self, scenario: Scenario, streams: Streams) -> None:
        sc = scenario
        self.scenario = sc
        self.streams = streams
        self.params = PathwayParameters.from_scenario(sc)
        self.patients = PatientTable()
        self.ledger = RttLedger(self.patients, start_list_history_days(sc), sc.horizon_days, len(sc.specialties))
        self.pool_by_site = sc.pooling == "site"
        n_sites, n_specs = len(sc.sites), len(sc.specialties)
        self.n_specialties = n_specs
        self.outpatient_queues = OutpatientQueues(n_sites, n_specs, sc.booking_policy, self.patients)
        self.admitted_queues = BookingQueues(n_sites if self.pool_by_site else 1, n_specs, sc.booking_policy,
                                             self.patients, WAITING_ADMITTED)
        self.removals = RemovalSchedule(sc.horizon_weeks)
        holidays = bank_holiday_days(sc.start_date, sc.horizon_days, tuple(sc.extra_bank_holidays),
                                     statutory=sc.bank_holidays == "england")
        self.covid = CovidPressure(sc)
        self.staff = StaffRoster(sc, streams, self.covid.ics_inpatients)
        self.vaccination = VaccinationProgramme(sc, streams, self.staff)
        self.referral_source = ReferralSource(sc, streams, holidays)
        self.clinics = [OutpatientClinics(sc, i, holidays) for i in range(n_sites)]
        self.theatres = build_suites(sc, streams, holidays, self.staff)
        self.validation = ValidationRounds(sc, streams)
        cohorts = sc.vaccination.cohorts if sc.vaccination else []
        self.monitor = WeeklyMonitor(
            sc.horizon_weeks, sc.specialty_names, self.staff.groups, [(c.borough, c.age_band) for c in cohorts],
            np.array([c.population for c in cohorts]), np.array([c.first_doses_before_start for c in cohorts]),
            np.array([c.second_doses_before_start for c in cohorts]))
        # one object for the whole run: the monitor resets it in place each Sunday
        self.week = WeeklyActivity(n_staff_groups=len(self.staff.groups), n_cohorts=len(cohorts),
                                   n_centre_kinds=len(CENTRE_KINDS))

    def processes(self) -> list:
        """Every service with a process, in the order they are registered: the order services sharing a time slot
        act in on the first day (sim.model.day holds the order within a day)."""
        in_order = [self.referral_source]
        if self.covid.active:
            in_order.append(self.covid)
        in_order += [self.staff, self.vaccination, *self.clinics, *self.theatres, self.removals, self.validation]
        return in_order

    def add_pathways(self, attrs: dict[str, np.ndarray], status: int | np.ndarray, count_as_clock_starts: bool) -> None:
        """Put a batch of new pathways on the lists (outpatient or admitted stage by status)."""
        attrs = dict(attrs)
        removal_day = attrs.pop("removal_day")
        n = len(attrs["clock_start_day"])
        if self.patients.n + n > MAX_PATIENTS:
            raise OverflowError(f"more than {MAX_PATIENTS:,} pathways in one replication")
        status_arr = np.full(n, status, dtype=np.uint8) if np.isscalar(status) else status
        ids = self.patients.append(status_arr, **attrs)
        self.ledger.start_clocks(attrs["clock_start_day"], attrs["specialty"], status_arr)
        if count_as_clock_starts:
            self.ledger.count_clock_starts(n)
        self.removals.add(ids, removal_day)
        site, spec = attrs["referred_site"].astype(np.int64), attrs["specialty"].astype(np.int64)
        cs, priority = attrs["clock_start_day"], attrs["priority"]
        waiting_op = status_arr == WAITING_OUTPATIENT
        if waiting_op.any():
            self.outpatient_queues.add_batch(ids[waiting_op], site[waiting_op], spec[waiting_op],
                                             priority[waiting_op], cs[waiting_op])
        on_admitted = status_arr == WAITING_ADMITTED
        if on_admitted.any():
            # Start-list patients: their decision-to-treat date is unknown, so it is taken as the clock start.
            pools = site if self.pool_by_site else np.zeros(n, dtype=np.int64)
            keys = self.admitted_queues.keys_for_batch(ids[on_admitted], cs[on_admitted], cs[on_admitted],
                                                       priority[on_admitted])
            _push_grouped(self.admitted_queues, pools[on_admitted], spec[on_admitted],
                          attrs["hub_eligible"][on_admitted].astype(np.int64), keys, self.n_specialties)


def _push_grouped(queues: BookingQueues, pool: np.ndarray, spec: np.ndarray, eligible: np.ndarray, keys: np.ndarray,
                  n_specs: int) -> None:
    group = (pool * n_specs + spec) * 2 + eligible
    order = np.argsort(group, kind="stable")
    group, keys = group[order], keys[order]
    bounds = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), len(keys)]
    key_list = keys.tolist()
    for start, stop in zip(bounds[:-1], bounds[1:]):
        g = int(group[start])
        queues.push_keys((g // 2) // n_specs, (g // 2) % n_specs, g % 2, key_list[start:stop])


@dataclasses.dataclass
class ReplicationResult:
    """Plain records from one replication."""

    replication: int
    weekly: pd.DataFrame
    by_specialty: pd.DataFrame
    vaccination_by_cohort: pd.DataFrame
    waits_by_priority: pd.DataFrame
    pathways_simulated: int
    wall_seconds: float
    patient_bytes: int
    parameters: dict[str, float] = dataclasses.field(default_factory=dict)   # drawn values of [low, high] inputs


def run_single(scenario: Scenario, replication: int, seed: int | None = None) -> ReplicationResult:
    """Run one replication; `seed` defaults to the scenario's run.seed."""
    t0 = time.perf_counter()
    seed = scenario.run.seed if seed is None else seed
    # parameter uncertainty: each [low, high] input drawn once for this replication (sim.scenario.intervals)
    scenario, parameters = scenario_for_replication(scenario, seed, replication)
    streams = Streams(seed, replication)
    env = simpy.Environment()
    services = Services(scenario, streams)
    attrs, status = draw_start_list(scenario, streams, services.params)
    if len(status):
        services.add_pathways(attrs, status, count_as_clock_starts=False)
    opening_list = services.ledger.waiting_total
    for service in services.processes():
        env.process(service.process(env, services))
    env.process(services.monitor.process(env, services, opening_list))
    env.run(until=scenario.horizon_days)

    weekly = pd.DataFrame(services.monitor.columns)
    weekly.insert(0, "week_start", [(scenario.start_date + dt.timedelta(weeks=w)).isoformat() for w in weekly["week"]])
    weekly.insert(0, "replication", replication)
    weekly.insert(0, "scenario", scenario.name)
    return ReplicationResult(
        replication=replication,
        weekly=weekly,
        by_specialty=_labelled(services.monitor.specialty_rows, scenario, replication),
        vaccination_by_cohort=_labelled(services.monitor.cohort_rows, scenario, replication),
        waits_by_priority=_waits_by_priority(services.patients, replication),
        pathways_simulated=services.patients.n,
        wall_seconds=time.perf_counter() - t0,
        patient_bytes=services.patients.nbytes(),
        parameters=parameters,
    )


def _labelled(rows: list[dict], scenario: Scenario, replication: int) -> pd.DataFrame:
    """Weekly long-format rows with scenario, replication and week_start in front."""
    frame = pd.DataFrame(rows)
    if len(frame):
        frame.insert(0, "week_start", [(scenario.start_date + dt.timedelta(weeks=int(w))).isoformat()
                                       for w in frame["week"]])
        frame.insert(0, "replication", replication)
        frame.insert(0, "scenario", scenario.name)
    return frame


def _waits_by_priority(patients: PatientTable, replication: int) -> pd.DataFrame:
    """Waits (weeks, clock start to treatment) of patients treated during the run, by priority."""
    status = patients.column("status")
    treated = status == STOPPED_ADMITTED
    waits = (patients.column("stop_day")[treated] - patients.column("clock_start_day")[treated]) / 7.0
    prio = patients.column("priority")[treated]
    rows = []
    for i, name in enumerate(PRIORITIES):
        w = waits[prio == i]
        rows.append({"replication": replication, "priority": name, "treated": int(len(w)),
                     "mean_wait_weeks": float(w.mean()) if len(w) else float("nan"),
                     "p90_wait_weeks": float(np.percentile(w, 90)) if len(w) else float("nan")})
    return pd.DataFrame(rows)
