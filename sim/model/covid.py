"""Covid waves: daily Covid inpatients (ICS-wide and by site) and their effects on elective care.

The inpatient curve is an input (waves with a start, peak and end, or a daily series), so it is computed
once; the SimPy process applies each day's pressure to the theatre suites at its slot (sim.model.day), before
clinics and theatres run:
- elective beds taken: `elective_beds_lost_per_covid_inpatient` x the site's Covid inpatients (main sites
  only: surgical hubs' beds are ring-fenced);
- critical care: when a site's Covid critical-care census exceeds the threshold, a share of its (non-hub)
  theatre sessions close because theatres and theatre staff are redeployed;
- infection control: while ICS Covid inpatients are at or above a threshold, cases per session fall by
  the productivity factor (hubs included);
- referral suppression: a share of the day's referrals is not made, rising with inpatients up to the
  reference level; a share of those return later as deferred demand (see `sim.model.referrals`).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import simpy

from sim.model.day import COVID, ServiceProcess, wait_until
from sim.model.theatres import TheatreSuite
from sim.scenario.schema import CovidWave, Scenario


def wave_curve(wave: CovidWave, start: dt.date, n_days: int) -> np.ndarray:
    """Daily inpatients of one wave over model days 0..n_days-1."""
    day = np.arange(n_days, dtype=float)
    s, p, e = ((d - start).days for d in (wave.start, wave.peak, wave.end))
    rise = np.clip((day - s) / max(p - s, 1e-9), 0, 1)
    fall = np.clip((e - day) / max(e - p, 1e-9), 0, 1)
    x = np.where(day <= p, rise, fall)
    x = np.where((day < s) | (day > e), 0.0, x)
    if wave.shape == "cosine":
        x = (1 - np.cos(np.pi * x)) / 2
    return wave.peak_inpatients * x


def ics_covid_inpatients(sc: Scenario) -> np.ndarray:
    """ICS-wide Covid inpatients for each model day: the waves (times the peak multiplier) plus any series."""
    n = sc.horizon_days
    total = np.zeros(n)
    if sc.covid is None:
        return total
    for wave in sc.covid.waves:
        total += wave_curve(wave, sc.start_date, n) * sc.covid.wave_peak_multiplier
    if sc.covid.inpatients_series:
        pts = sorted(sc.covid.inpatients_series, key=lambda q: q.date)
        xs = np.array([(q.date - sc.start_date).days for q in pts], dtype=float)
        ys = np.array([q.inpatients for q in pts])
        total += np.interp(np.arange(n), xs, ys, left=0.0, right=0.0) * sc.covid.wave_peak_multiplier
    return total


class CovidPressure:
    """Daily Covid pressure by site, precomputed from the scenario; the process applies it to the suites day by day.

    `ics_inpatients` is `ics_covid_inpatients(sc)`, computed once by the caller because the staff roster (Covid
    isolation) reads it too.
    """

    def __init__(self, sc: Scenario, ics_inpatients: np.ndarray, suites: list[TheatreSuite]) -> None:
        self.sc = sc
        self.suites = suites
        sites = sc.site_names
        self.ics_inpatients = ics_inpatients
        covid = sc.covid
        if covid is None or covid.site_shares == "elective_beds":
            beds = np.array([sc.sites[s].elective_beds for s in sites], dtype=float)
            shares = beds / beds.sum() if beds.sum() > 0 else np.full(len(sites), 1 / len(sites))
        else:
            shares = np.array([covid.site_shares.get(s, 0.0) for s in sites])
        self.site_inpatients = np.outer(shares, self.ics_inpatients)            # site x day
        per = covid.elective_beds_lost_per_covid_inpatient if covid else 0.0
        self.beds_lost = np.rint(per * self.site_inpatients).astype(np.int64)
        self.closed_share = np.zeros_like(self.site_inpatients)
        if covid and covid.critical_care:
            cc = covid.critical_care
            census = self.site_inpatients * cc.share_of_covid_inpatients
            self.closed_share = np.where(census > cc.closure_threshold_patients_per_site,
                                         cc.share_of_sessions_closed, 0.0)
        self.productivity = np.ones(sc.horizon_days)
        if covid and covid.infection_control:
            ic = covid.infection_control
            self.productivity = np.where(self.ics_inpatients >= ic.threshold_inpatients, ic.productivity_factor, 1.0)
        self.suppression = np.zeros(sc.horizon_days)
        if covid and covid.referral_suppression:
            rs = covid.referral_suppression
            self.suppression = rs.share_suppressed_at_reference * np.minimum(
                1.0, self.ics_inpatients / rs.reference_inpatients)

    @property
    def active(self) -> bool:
        return bool(self.ics_inpatients.any())

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each day: set beds available, sessions closed and productivity on every theatre suite."""
        for day in range(self.sc.horizon_days):
            yield from wait_until(env, day, COVID)
            for suite in self.suites:
                suite.productivity_today = self.productivity[day]
                if suite.ring_fenced:
                    continue
                i = suite.site_index
                suite.beds.capacity = max(0, suite.base_beds - int(self.beds_lost[i, day]))
                suite.closed_share_today = float(self.closed_share[i, day])
