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
from sim.core.rng import Streams
from sim.model.activity import WeeklyActivity
from sim.model.covid import CovidPressure, ics_covid_inpatients
from sim.model.day import Service
from sim.model.intake import PathwayIntake
from sim.model.long_waits import LongWaitRule
from sim.model.monitor import WeeklyMonitor
from sim.model.outpatients import OutpatientClinics
from sim.model.patients import STOPPED_ADMITTED, WAITING_ADMITTED, PatientTable
from sim.model.referrals import PathwayParameters, ReferralSource
from sim.model.removals import RemovalSchedule, ValidationRounds
from sim.model.returns import ReturnSchedule
from sim.model.staff import StaffRoster
from sim.model.start_list import draw_start_list, start_list_history_days
from sim.model.state import SharedState
from sim.model.theatres import TheatreDays, build_suites
from sim.model.vaccination import CENTRE_KINDS, VaccinationProgramme
from sim.model.waiting_list import BookingQueues, OutpatientQueues, RttLedger
from sim.scenario.intervals import scenario_for_replication
from sim.scenario.schema import PRIORITIES, Scenario


class Services:
    """The composition root: builds the shared state, puts the start list on it, and wires every service to the
    state and the collaborators it needs. Nothing else in the model knows this class."""

    def __init__(self, scenario: Scenario, streams: Streams) -> None:
        sc = scenario
        self.scenario = sc
        n_sites, n_specs = len(sc.sites), len(sc.specialties)
        pool_by_site = sc.pooling == "site"
        # room for the start list and the horizon's referrals, a tenth spare for growth and seasonality
        patients = PatientTable(int(sum(band.count for band in sc.start_list.bands or [])
                                    + 1.1 * sc.referrals.referrals_per_week * sc.horizon_weeks))
        cohorts = sc.vaccination.cohorts if sc.vaccination else []
        self.state = SharedState(
            patients=patients,
            ledger=RttLedger(patients, start_list_history_days(sc), sc.horizon_days, n_specs, n_sites),
            outpatient_queues=OutpatientQueues(n_sites, n_specs, sc.booking_policy, patients),
            admitted_queues=BookingQueues(n_sites if pool_by_site else 1, n_specs, sc.booking_policy, patients,
                                          WAITING_ADMITTED),
            week=WeeklyActivity(n_staff_groups=len(sc.staff.groups) if sc.staff else 0, n_cohorts=len(cohorts),
                                n_centre_kinds=len(CENTRE_KINDS)),
            pool_by_site=pool_by_site)
        state = self.state
        holidays = bank_holiday_days(sc.start_date, sc.horizon_days, tuple(sc.extra_bank_holidays),
                                     statutory=sc.bank_holidays == "england")
        self.params = PathwayParameters.from_scenario(sc)
        self.removals = RemovalSchedule(sc.horizon_weeks, state.ledger)
        self.intake = PathwayIntake(state, self.removals)
        covid_inpatients = ics_covid_inpatients(sc)
        self.staff = StaffRoster(sc, streams, covid_inpatients, state.week)
        self.vaccination = (VaccinationProgramme(sc, sc.vaccination, streams, self.staff, state.week)
                            if sc.vaccination is not None else None)
        # patients who leave a list for a while and come back (deferrals, further visits, a scarce resource)
        self.waiting_list_sections = frozenset(
            name for name in ("patient_choice", "further_outpatient_visits", "scarce_resource")
            if getattr(sc, name) is not None)
        # the vaccination queue's saturated centre-days are a column only where the Erlang C waits are asked for
        shown_sections = self.waiting_list_sections | (
            {"outpatient_follow_ups"} if sc.outpatient_follow_ups is not None else set()) | (
            {"vaccination_queue_waits"} if sc.vaccination is not None and sc.vaccination.report_queue_waits else set())
        self.returns = ReturnSchedule(sc.horizon_days, state.admitted_queues) if self.waiting_list_sections else None
        # routine long waiters booked ahead of other routine patients, from each step's date (with the section only)
        self.long_waits = (LongWaitRule(sc.long_wait_booking, sc.start_date, sc.horizon_days, state.admitted_queues)
                           if sc.long_wait_booking is not None else None)
        self.clinics = OutpatientClinics(sc, holidays, state, self.staff, self.returns, streams)
        self.theatres = build_suites(sc, streams, holidays, state, self.staff, self.returns, self.clinics.follow_ups)
        self.theatre_days = TheatreDays(self.theatres)      # the suites' sessions, day by day, as one service
        self.covid = CovidPressure(sc, covid_inpatients, self.theatres)
        self.referral_source = ReferralSource(sc, streams, holidays, self.params, self.covid.suppression,
                                              state.ledger, self.intake)
        self.validation = ValidationRounds(sc, streams, patients, state.ledger)
        attrs, status = draw_start_list(sc, streams, self.params)
        if len(status):
            self.intake.add_start_list(attrs, status)
        self.monitor = WeeklyMonitor(
            sc.horizon_weeks, sc.specialty_names, self.staff.groups, [(c.borough, c.age_band) for c in cohorts],
            np.array([c.population for c in cohorts]), np.array([c.first_doses_before_start for c in cohorts]),
            np.array([c.second_doses_before_start for c in cohorts]), week=state.week, ledger=state.ledger,
            suites=self.theatres, covid_inpatients=covid_inpatients, opening_list=state.ledger.waiting_total,
            site_names=sc.site_names, sections=shown_sections, follow_ups=self.clinics.follow_ups)

    def processes(self) -> list[Service]:
        """Every service with a process, in the order they are registered: the order services sharing a time slot
        act in on the first day (sim.model.day holds the order within a day). Covid pressure has a process only
        while there are Covid inpatients, vaccination only in a scenario with a vaccination section, the long-wait
        rule only with a long_wait_booking section."""
        in_order: list[Service] = [self.referral_source]
        if self.returns is not None:
            in_order.append(self.returns)
        if self.long_waits is not None:
            in_order.append(self.long_waits)
        if self.covid.active:
            in_order.append(self.covid)
        in_order.append(self.staff)
        if self.vaccination is not None:
            in_order.append(self.vaccination)
        in_order += [self.clinics, self.theatre_days, self.removals, self.validation, self.monitor]
        return in_order


@dataclasses.dataclass
class ReplicationResult:
    """Plain records from one replication."""

    replication: int
    weekly: pd.DataFrame
    by_specialty: pd.DataFrame
    by_site: pd.DataFrame              # the list and its flows by site (WeeklyMonitor._record_sites)
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
    for service in services.processes():
        env.process(service.process(env))
    env.run(until=scenario.horizon_days)

    weekly = pd.DataFrame(services.monitor.columns)
    week_starts = _week_starts(scenario)
    weekly.insert(0, "week_start", [week_starts[w] for w in weekly["week"].tolist()])
    weekly.insert(0, "replication", replication)
    weekly.insert(0, "scenario", scenario.name)
    return ReplicationResult(
        replication=replication,
        weekly=weekly,
        by_specialty=_labelled(services.monitor.specialty_rows, scenario, replication),
        by_site=_labelled(services.monitor.site_columns, scenario, replication),
        vaccination_by_cohort=_labelled(services.monitor.cohort_table, scenario, replication),
        waits_by_priority=_waits_by_priority(services.state.patients, replication),
        pathways_simulated=services.state.patients.n,
        wall_seconds=time.perf_counter() - t0,
        patient_bytes=services.state.patients.nbytes(),
        parameters=parameters,
    )


def _labelled(rows: list[dict] | dict[str, list], scenario: Scenario, replication: int) -> pd.DataFrame:
    """Weekly long-format rows (a list of rows, or columns) with scenario, replication and week_start in front."""
    frame = pd.DataFrame(rows)
    if len(frame):
        week_starts = _week_starts(scenario)      # one date text a week, not one a row
        frame.insert(0, "week_start", [week_starts[w] for w in frame["week"].tolist()])
        frame.insert(0, "replication", replication)
        frame.insert(0, "scenario", scenario.name)
    return frame


def _week_starts(scenario: Scenario) -> list[str]:
    """The ISO date each week of the horizon starts."""
    return [(scenario.start_date + dt.timedelta(weeks=w)).isoformat() for w in range(scenario.horizon_weeks + 1)]


def _waits_by_priority(patients: PatientTable, replication: int) -> pd.DataFrame:
    """Waits (weeks, clock start to treatment) of patients treated during the run, by priority."""
    treated = patients.status == STOPPED_ADMITTED           # views of the table's columns: read, not copied
    waits = (patients.stop_day[treated] - patients.clock_start_day[treated]) / 7.0
    prio = patients.priority[treated]
    rows = []
    for i, name in enumerate(PRIORITIES):
        w = waits[prio == i]
        rows.append({"replication": replication, "priority": name, "treated": int(len(w)),
                     "mean_wait_weeks": float(w.mean()) if len(w) else float("nan"),
                     "p90_wait_weeks": float(np.percentile(w, 90)) if len(w) else float("nan")})
    return pd.DataFrame(rows)
