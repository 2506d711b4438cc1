"""Referral sources (borough x specialty): daily Poisson batches, and each pathway's attributes at creation.

One SimPy process draws every source's arrivals for a day at once. Attributes are drawn from uniforms
and normals of their own named streams and only then transformed by the scenario's parameters, so the
same replication sees the same patients whatever the capacity, and nearly the same when shares change.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from sim.core.ahead import computed_ahead
from sim.core.compiled import njit
from sim.core.nhs_calendar import multipliers_by_day
from sim.core.rng import Streams
from sim.model.day import REFERRALS, ServiceProcess, wait_until
from sim.model.intake import PathwayIntake
from sim.model.waiting_list import RttLedger
from sim.scenario.schema import PRIORITIES, WEEKDAYS, Scenario


@dataclass(frozen=True)
class PathwayParameters:
    """Scenario parameters as arrays indexed by specialty/site/borough number."""

    admitted_share: np.ndarray            # by specialty
    day_case_share: np.ndarray
    priority_cum: np.ndarray              # specialty x 4, cumulative
    dc_log_mu: np.ndarray
    dc_log_sigma: np.ndarray
    ip_log_mu: np.ndarray
    ip_log_sigma: np.ndarray
    los_mean: np.ndarray
    site_cum_by_borough: np.ndarray       # borough x site, cumulative
    virtual_share: float
    dna_face_to_face: float
    dna_virtual: float
    cancellation_rate: float
    hub_max_los_days: float               # inpatients up to this stay are hub-eligible; -1 = no hubs
    removal_band_starts_weeks: np.ndarray
    removal_hazard_per_week: np.ndarray
    # patients who defer (sim.scenario.schema.PatientChoice); None when the scenario has none
    outpatient_deferral_share: float | None = None
    operation_deferral_share: float = 0.0
    deferral_days_range: tuple[float, float] = (0.0, 0.0)
    # pathways needing a further outpatient visit (FurtherOutpatientVisits); None when the scenario has none
    further_visit_share_non_admitted: float | None = None
    further_visit_share_admitted: float = 0.0
    further_visit_days_range: tuple[float, float] = (0.0, 0.0)
    # operations needing a scarce resource (ScarceResource); None when the scenario has none
    scarce_resource_share: float | None = None

    @classmethod
    def from_scenario(cls, sc: Scenario) -> PathwayParameters:
        specs = list(sc.specialties.values())
        sites = sc.site_names

        def log_params(mins: list) -> tuple[np.ndarray, np.ndarray]:
            mean = np.array([m.mean for m in mins], dtype=float)
            cv = np.array([m.cv for m in mins], dtype=float)
            sigma = np.sqrt(np.log1p(cv**2))
            return np.log(mean) - sigma**2 / 2, sigma

        dc_mu, dc_sigma = log_params([s.theatre_minutes_day_case for s in specs])
        ip_mu, ip_sigma = log_params([s.theatre_minutes_inpatient for s in specs])
        prio = np.array([[s.priority_mix.get(p, 0.0) for p in PRIORITIES] for s in specs])
        site_shares = np.array([[b.referred_site_shares.get(site, 0.0) for site in sites]
                                for b in sc.boroughs.values()])
        bands = sc.removals.weekly_rate_by_weeks_waited
        choice, visits, scarce = sc.patient_choice, sc.further_outpatient_visits, sc.scarce_resource
        return cls(
            admitted_share=np.minimum(1.0, np.array([s.admitted_share for s in specs])
                                      * sc.referrals.admitted_share_multiplier),
            day_case_share=np.array([s.day_case_share for s in specs]),
            priority_cum=_cumulative(prio),
            dc_log_mu=dc_mu, dc_log_sigma=dc_sigma, ip_log_mu=ip_mu, ip_log_sigma=ip_sigma,
            los_mean=np.array([s.los_days_mean for s in specs]),
            site_cum_by_borough=_cumulative(site_shares),
            virtual_share=sc.outpatients.virtual_share,
            dna_face_to_face=sc.outpatients.dna_rate_face_to_face,
            dna_virtual=sc.outpatients.dna_rate_virtual,
            cancellation_rate=sc.theatre_rules.on_the_day_cancellation_rate,
            hub_max_los_days=(sc.surgical_hubs.inpatient_max_los_days if sc.surgical_hubs and sc.surgical_hubs.hubs
                              else -1.0),
            removal_band_starts_weeks=np.array([b.from_weeks for b in bands] or [0.0]),
            removal_hazard_per_week=sc.removals.rate_multiplier * np.array(
                [-math.log1p(-b.weekly_rate) if b.weekly_rate < 1 else np.inf for b in bands] or [0.0]),
            outpatient_deferral_share=choice.outpatient_deferral_share if choice else None,
            operation_deferral_share=choice.operation_deferral_share if choice else 0.0,
            deferral_days_range=(7 * choice.deferral_weeks_min, 7 * choice.deferral_weeks_max) if choice else (0, 0),
            further_visit_share_non_admitted=visits.non_admitted_share if visits else None,
            further_visit_share_admitted=visits.admitted_share if visits else 0.0,
            further_visit_days_range=(7 * visits.wait_weeks_min, 7 * visits.wait_weeks_max) if visits else (0, 0),
            scarce_resource_share=scarce.admitted_share if scarce else None,
        )


def _cumulative(shares: np.ndarray) -> np.ndarray:
    cum = np.cumsum(shares, axis=-1)
    cum[..., -1] = 1.0 + 1e-12            # guard against rounding: every uniform lands in a category
    return cum


def _categorical(u: np.ndarray, cum_rows: np.ndarray) -> np.ndarray:
    """Category index for each uniform u[i] given its own cumulative row cum_rows[i]."""
    return np.count_nonzero(u[:, None] >= cum_rows, axis=1)


def draw_pathways(streams: Streams, params: PathwayParameters, specialty: np.ndarray, borough: np.ndarray,
                  clock_start_day: np.ndarray, waited_weeks: np.ndarray | None = None,
                  site: np.ndarray | None = None, priority: np.ndarray | None = None,
                  needs_operation: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Draw every attribute of a batch of new pathways.

    Start-list patients pass their site, priority and stage; their removal time is drawn conditional
    on the weeks already waited.
    """
    n = len(specialty)
    given = np.zeros(0, dtype=np.int64)
    columns = _draw_columns(
        streams["referral_attributes"], streams["priority_mix"], streams["case_duration"],
        streams["length_of_stay"], streams["outpatient_dna"], streams["cancellation"], streams["removal"],
        specialty.astype(np.int64), borough.astype(np.int64), clock_start_day.astype(np.float64),
        np.zeros(n) if waited_weeks is None else waited_weeks.astype(np.float64),
        given if site is None else np.asarray(site).astype(np.int64),
        given if priority is None else np.asarray(priority).astype(np.int64),
        given if needs_operation is None else np.asarray(needs_operation).astype(np.int64),
        params.site_cum_by_borough, params.priority_cum, params.admitted_share, params.day_case_share,
        float(params.virtual_share), params.ip_log_mu, params.dc_log_mu, params.ip_log_sigma, params.dc_log_sigma,
        params.los_mean, float(params.hub_max_los_days), params.removal_band_starts_weeks,
        params.removal_hazard_per_week)
    (site_drawn, priority_drawn, needs_op, inpatient, virtual, log_minutes, los, u_dna, u_cancel, hub_eligible,
     removal_day) = columns
    # the transcendental functions stay numpy's array loops (the compiled loop would call the C library's, which
    # can differ from numpy's vectorised ones in the last bit on some processors)
    minutes = np.exp(log_minutes)
    dna_remaining = _geometric_failures(u_dna, np.array([params.dna_face_to_face, params.dna_virtual]),
                                        virtual.astype(np.int64))
    cancellations = _geometric_failures(u_cancel, np.array([params.cancellation_rate]), np.zeros(n, dtype=np.int64))
    delays = _draw_delays(streams, params, needs_op.astype(bool), n)
    return {
        "clock_start_day": clock_start_day.astype(np.int32),
        "specialty": specialty.astype(np.uint8),
        "priority": priority_drawn,
        "borough": borough.astype(np.uint8),
        "referred_site": site_drawn,
        "needs_operation": needs_op,
        "inpatient": inpatient,
        "virtual": virtual,
        "dna_remaining": dna_remaining,
        "cancellations_remaining": cancellations,
        "hub_eligible": hub_eligible,
        "theatre_minutes": minutes.astype(np.float32),
        "los_days": los,
        **delays,
        "removal_day": removal_day,
    }


@njit
def _draw_columns(attribute_rng: Any, priority_rng: Any, duration_rng: Any, stay_rng: Any, dna_rng: Any,
                  cancel_rng: Any, removal_rng: Any, specialty: np.ndarray, borough: np.ndarray,
                  clock_start_day: np.ndarray, waited_weeks: np.ndarray, site_given: np.ndarray,
                  priority_given: np.ndarray, needs_operation_given: np.ndarray, site_cum_by_borough: np.ndarray,
                  priority_cum: np.ndarray, admitted_share: np.ndarray, day_case_share: np.ndarray,
                  virtual_share: float, ip_log_mu: np.ndarray, dc_log_mu: np.ndarray, ip_log_sigma: np.ndarray,
                  dc_log_sigma: np.ndarray, los_mean: np.ndarray, hub_max_los_days: float, band_starts: np.ndarray,
                  hazard: np.ndarray) -> tuple:
    """One pass over the batch drawing each pathway's values from the seven streams, in the order numpy's array
    draws took them (each stream in pathway order; a stream's (n, 4) array row by row), so the same values: numba
    runs numpy's own algorithms on the same generator. Arrays `*_given` are empty where the caller gives nothing.

    Returns site, priority, needs an operation, inpatient, virtual, the log of theatre minutes, length of stay, the
    uniforms of the did-not-attend and cancellation counts, hub eligibility and the removal day."""
    n = len(specialty)
    site = np.empty(n, dtype=np.uint8)
    priority = np.empty(n, dtype=np.uint8)
    needs_operation = np.empty(n, dtype=np.uint8)
    inpatient = np.empty(n, dtype=np.uint8)
    virtual = np.empty(n, dtype=np.uint8)
    log_minutes = np.empty(n)
    los_days = np.empty(n, dtype=np.float32)
    u_dna = np.empty(n)
    u_cancel = np.empty(n)
    hub_eligible = np.zeros(n, dtype=np.uint8)
    removal_day = np.empty(n)
    cum_at_start = _cumulative_hazard_at_band_starts(band_starts, hazard)
    for i in range(n):
        spec = specialty[i]
        u_site, u_stage, u_day_case, u_virtual = (attribute_rng.random(), attribute_rng.random(),
                                                  attribute_rng.random(), attribute_rng.random())
        u_priority = priority_rng.random()
        site[i] = _category(u_site, site_cum_by_borough, borough[i]) if len(site_given) == 0 else site_given[i]
        priority[i] = _category(u_priority, priority_cum, spec) if len(priority_given) == 0 else priority_given[i]
        operation = u_stage < admitted_share[spec] if len(needs_operation_given) == 0 else needs_operation_given[i] != 0
        needs_operation[i] = operation
        stays_in = u_day_case >= day_case_share[spec]
        inpatient[i] = stays_in
        virtual[i] = u_virtual < virtual_share
        z = duration_rng.standard_normal()
        if stays_in:
            log_minutes[i] = ip_log_mu[spec] + ip_log_sigma[spec] * z
        else:
            log_minutes[i] = dc_log_mu[spec] + dc_log_sigma[spec] * z
        stay = stay_rng.exponential(1.0) * los_mean[spec]
        stay = (stay if stay >= 1.0 else 1.0) if stays_in else 0.0
        los_days[i] = stay
        u_dna[i] = dna_rng.random()
        u_cancel[i] = cancel_rng.random()
        if hub_max_los_days >= 0:
            hub_eligible[i] = (not stays_in) or stay <= hub_max_los_days
        weeks = _removal_weeks(removal_rng.exponential(1.0), waited_weeks[i], band_starts, hazard, cum_at_start)
        removal_day[i] = (np.floor(clock_start_day[i] + 7 * (waited_weeks[i] + weeks)) if np.isfinite(weeks)
                          else np.inf)
    return (site, priority, needs_operation, inpatient, virtual, log_minutes, los_days, u_dna, u_cancel,
            hub_eligible, removal_day)


@njit
def _category(u: float, cumulative_shares: np.ndarray, row: int) -> int:
    """How many of row `row`'s cumulative shares `u` reaches: its category (`_categorical` for one uniform). Indexed
    in place: a row taken as an array of its own would count references on every call."""
    reached = 0
    for j in range(cumulative_shares.shape[1]):
        if u >= cumulative_shares[row, j]:
            reached += 1
    return reached


def _draw_delays(streams: Streams, params: PathwayParameters, needs_operation: np.ndarray,
                 n: int) -> dict[str, np.ndarray]:
    """Deferrals, further visits and the need for a scarce resource, each from its own stream and only when the
    scenario has the mechanism (so a scenario without them draws exactly what it drew before they existed).

    Every pathway gets the same number of uniforms whatever the shares, so raising a share adds deferrers without
    changing who the others are, and a pathway's draws do not depend on its stage."""
    def days(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        low, high = bounds
        return np.maximum(np.rint(low + u * (high - low)), 1)

    zeros = np.zeros(n, dtype=np.uint16)
    out: dict[str, np.ndarray] = {"outpatient_deferral_days": zeros, "operation_deferral_days": zeros,
                                  "further_visit_days": zeros, "needs_scarce_resource": np.zeros(n, dtype=np.uint8)}
    if params.outpatient_deferral_share is not None:
        u = streams["patient_deferral"].random((n, 4))
        outpatient = u[:, 0] < params.outpatient_deferral_share
        operation = needs_operation & (u[:, 1] < params.operation_deferral_share)
        out["outpatient_deferral_days"] = np.where(outpatient, days(u[:, 2], params.deferral_days_range),
                                                   0).astype(np.uint16)
        out["operation_deferral_days"] = np.where(operation, days(u[:, 3], params.deferral_days_range),
                                                  0).astype(np.uint16)
    if params.further_visit_share_non_admitted is not None:
        u = streams["further_visits"].random((n, 2))
        share = np.where(needs_operation, params.further_visit_share_admitted,
                         params.further_visit_share_non_admitted)
        out["further_visit_days"] = np.where(u[:, 0] < share, days(u[:, 1], params.further_visit_days_range),
                                             0).astype(np.uint16)
    if params.scarce_resource_share is not None:
        u = streams["scarce_resource"].random(n)
        out["needs_scarce_resource"] = (needs_operation & (u < params.scarce_resource_share)).astype(np.uint8)
    return out


def _geometric_failures(u: np.ndarray, rates: np.ndarray, rate_index: np.ndarray) -> np.ndarray:
    """Failures before the first success when each attempt fails with probability rates[rate_index] (capped at 255):
    floor(log1p(-u) / log(rate)).

    The logarithm is taken of the few rates, not of a rate per pathway: the same values, n times fewer logs. And
    log1p only of the uniforms that might fail at all: below (1 - rate)(1 - 1e-9) the quotient is under 1 by far more
    than the logarithm's and the division's rounding (a few parts in 1e16), so those have none. numpy's log1p is a
    function of each value alone, so the others get the values it gave when it took every uniform."""
    usable = (rates > 0) & (rates < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rate = np.log(np.where(rates > 0, rates, 0.5))
    # a zero rate never fails (threshold above every uniform); a rate of 1 or more (never given: the schema keeps
    # rates under 1) takes the formula for every uniform, as before
    threshold = np.where(usable, (1.0 - rates) * (1.0 - 1e-9), np.where(rates > 0, -np.inf, np.inf))
    maybe = _at_or_above(u, threshold, rate_index)
    failures = np.zeros(len(u), dtype=np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.log1p(-u[maybe]) / log_rate[rate_index[maybe]])
    failures[maybe] = np.clip(k, 0, 255).astype(np.uint8)
    return failures


@njit
def _at_or_above(u: np.ndarray, threshold: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Positions i where u[i] >= threshold[row[i]], ascending."""
    n = len(u)
    positions = np.empty(n, dtype=np.int64)
    found = 0
    for i in range(n):
        if u[i] >= threshold[row[i]]:
            positions[found] = i
            found += 1
    return positions[:found].copy()


@njit
def _cumulative_hazard_at_band_starts(band_starts: np.ndarray, hazard: np.ndarray) -> np.ndarray:
    """The cumulative hazard where each band starts, summed band after band."""
    cum_at_start = np.zeros(len(band_starts))
    for b in range(1, len(band_starts)):
        cum_at_start[b] = cum_at_start[b - 1] + hazard[b - 1] * (band_starts[b] - band_starts[b - 1])
    return cum_at_start


@njit
def _band_of(sorted_values: np.ndarray, x: float) -> int:
    """`np.searchsorted(sorted_values, x, side="right") - 1`: the last value not above `x` (NaN sorts last)."""
    if x != x:
        return len(sorted_values) - 1
    below_or_equal = 0
    for value in sorted_values:
        if value <= x:
            below_or_equal += 1
    return below_or_equal - 1


@njit
def _removal_weeks(e: float, waited_weeks: float, band_starts: np.ndarray, hazard: np.ndarray,
                   cum_at_start: np.ndarray) -> float:
    """Weeks from now until removal, for a piecewise-constant hazard by weeks waited (`hazard` per week from each of
    `band_starts`), after `waited_weeks` already waited.

    Solves H(w + t) - H(w) = e for t, with H the cumulative hazard and e ~ Exp(1). Returns inf where the hazard never
    accumulates enough (e.g. zero removal rates); a band with zero hazard followed by another is skipped (the search
    takes the last band start not above the target)."""
    i = _band_of(band_starts, waited_weeks)
    target = e + (cum_at_start[i] + hazard[i] * (waited_weeks - band_starts[i]))
    i = _band_of(cum_at_start, target)
    if not hazard[i] > 0:
        return np.inf
    after = band_starts[i] + (target - cum_at_start[i]) / hazard[i] - waited_weeks
    return after if (after >= 0.0 or after != after) else 0.0


DAYS_PER_DRAW = 28     # days of pathways drawn at once (about 64,000 at North West London's demand)


class ReferralSource:
    """Daily referral batches for every borough x specialty source.

    `covid_suppression` is the share of each day's referrals not made because of Covid (CovidPressure.suppression);
    new pathways go on the lists through `intake`, and referrals not made are counted by `ledger`.
    """

    def __init__(self, scenario: Scenario, streams: Streams, bank_holidays: set[int], params: PathwayParameters,
                 covid_suppression: np.ndarray, ledger: RttLedger, intake: PathwayIntake) -> None:
        self.sc = scenario
        self.streams = streams
        self.bank_holidays = bank_holidays
        self.params = params
        self.covid_suppression = covid_suppression
        # the rules of the referrals not made: the day's share comes from covid_suppression, which is 0 without them
        self.suppression_rules = scenario.covid.referral_suppression if scenario.covid else None
        self.ledger = ledger
        self.intake = intake
        ref = scenario.referrals
        pops = np.array([b.population for b in scenario.boroughs.values()], dtype=float)
        spec_shares = np.array([s.referral_share for s in scenario.specialties.values()])
        # rate per source per week, borough-major flattening
        self.weekly_rate_by_source = ref.referrals_per_week * np.outer(pops / pops.sum(), spec_shares).ravel()
        weights = np.array([ref.weekday_weights[d] for d in WEEKDAYS], dtype=float)
        self.weekday_fraction = weights / weights.sum()
        self.n_specialties = len(spec_shares)
        # each source's borough and specialty (sources borough-major)
        self.borough_of_source, self.specialty_of_source = np.divmod(np.arange(len(self.weekly_rate_by_source)),
                                                                     self.n_specialties)
        self.start_date = scenario.start_date
        # the month-by-month demand profile (referrals.monthly_multipliers), 1.0 in months not named
        self.month_multiplier_by_day = multipliers_by_day(scenario.start_date, scenario.horizon_days,
                                                          ref.monthly_multipliers)
        self.deferred: dict[int, list[int]] = {}     # day -> sources of referrals returning that day

    def rate_multiplier(self, day: int) -> float:
        """Seasonality, demand growth and the month's demand multiplier on a model day."""
        ref = self.sc.referrals
        date = self.start_date + dt.timedelta(days=day)
        doy = date.timetuple().tm_yday
        season = 1.0 + ref.seasonality_amplitude * math.cos(
            2 * math.pi * (doy - ref.seasonality_peak_day_of_year) / 365.25)
        growth = (1.0 + ref.demand_growth_per_year) ** (day / 365.25)
        return season * growth * self.month_multiplier_by_day[day]

    def expected_referrals(self, day: int) -> np.ndarray:
        """Each source's expected referrals on `day` (none on a bank holiday)."""
        return self._expected_by_day(range(day, day + 1))[0]

    def draw_day(self, day: int, suppressed_share: float = 0.0) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """(specialty, borough) of the day's clock starts, and counts of referrals diverted or deferred.

        Advice and guidance diverts a share; during a Covid wave a further share is not made that day, of
        which a share returns as deferred demand 4-26 weeks (by default) later.
        """
        lam = self.expected_referrals(day)
        counts = self.streams["referral_arrivals"].poisson(lam)
        diverted = self.streams["advice_and_guidance"].binomial(counts, self.sc.referrals.advice_and_guidance_share)
        kept = counts - diverted
        n_suppressed = n_scheduled = 0
        if suppressed_share > 0:
            rs = self.suppression_rules
            assert rs is not None, "a share of referrals is suppressed only under covid.referral_suppression"
            suppressed = self.streams["referral_suppression"].binomial(kept, suppressed_share)
            kept = kept - suppressed
            returning = self.streams["deferred_demand"].binomial(suppressed, rs.share_returning)
            sources = np.repeat(np.arange(len(returning)), returning)
            delay_days = np.rint(7 * self.streams["deferred_demand"].uniform(
                rs.return_delay_weeks_min, rs.return_delay_weeks_max, len(sources))).astype(np.int64)
            for d, src in zip((day + np.maximum(delay_days, 1)).tolist(), sources.tolist(), strict=True):
                self.deferred.setdefault(d, []).append(src)
            n_suppressed, n_scheduled = int(suppressed.sum()), len(sources)
        source = np.repeat(np.arange(len(kept)), kept)
        returned = self.deferred.pop(day, [])
        if returned:
            source = np.concatenate([source, np.array(returned, dtype=np.int64)])
        borough, specialty = np.divmod(source, self.n_specialties)
        return specialty, borough, {"diverted": int(diverted.sum()), "suppressed": n_suppressed,
                                    "deferred_returned": len(returned), "deferred_scheduled": n_scheduled}

    def draw_days(self, first_day: int, days: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[dict[str, int]]]:
        """Every pathway of `days` days from `first_day` drawn at once: (their attributes in day order, where each
        day's pathways start in them, each day's counts of referrals diverted, suppressed and returned).

        The same draws as day by day: each random stream is used by one kind of draw only, in day order, so a block of
        days takes from every stream what the days would have taken one after another (the start list, drawn before
        day 0, uses the same streams first). Nothing a day draws depends on what the model did before it: Covid's
        suppression is known in advance and deferred referrals are this source's own."""
        day_range = range(first_day, first_day + days)
        if self.covid_suppression[first_day:first_day + days].any() or any(d in self.deferred for d in day_range):
            specialty, borough, clock_start, starts, counts_by_day = self._sources_day_by_day(day_range)
        else:
            specialty, borough, clock_start, starts, counts_by_day = self._sources_of_plain_days(day_range)
        attrs = draw_pathways(self.streams, self.params, specialty, borough, clock_start)
        return attrs, starts, counts_by_day

    def _sources_day_by_day(self, day_range: range) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                list[dict[str, int]]]:
        """Specialty, borough and clock start of each day's pathways in day order, where each day's start, and each
        day's counts (`draw_day` for each day)."""
        specialties: list[np.ndarray] = []
        boroughs: list[np.ndarray] = []
        clock_starts: list[np.ndarray] = []
        counts_by_day: list[dict[str, int]] = []
        for day in day_range:
            specialty, borough, counts = self.draw_day(day, float(self.covid_suppression[day]))
            specialties.append(specialty)
            boroughs.append(borough)
            clock_starts.append(np.full(len(specialty), day, dtype=np.int64))
            counts_by_day.append(counts)
        starts = np.cumsum([0, *(len(s) for s in specialties)])
        return (np.concatenate(specialties), np.concatenate(boroughs), np.concatenate(clock_starts), starts,
                counts_by_day)

    def _sources_of_plain_days(self, day_range: range) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                   list[dict[str, int]]]:
        """As `_sources_day_by_day` for days with no referrals suppressed or returning, in two draws for the block:
        each stream gives its values one after another in the array's order, so a days x sources array draws what
        the days would have drawn one after another."""
        counts = self.streams["referral_arrivals"].poisson(self._expected_by_day(day_range))     # days x sources
        diverted = self.streams["advice_and_guidance"].binomial(counts, self.sc.referrals.advice_and_guidance_share)
        kept = counts - diverted
        n_days = len(day_range)
        per_source = kept.ravel()
        borough = np.repeat(np.tile(self.borough_of_source, n_days), per_source)
        specialty = np.repeat(np.tile(self.specialty_of_source, n_days), per_source)
        per_day = kept.sum(axis=1)
        clock_start = np.repeat(np.arange(day_range.start, day_range.stop, dtype=np.int64), per_day)
        starts = np.concatenate([[0], np.cumsum(per_day)])
        counts_by_day = [{"diverted": int(n), "suppressed": 0, "deferred_returned": 0, "deferred_scheduled": 0}
                         for n in diverted.sum(axis=1).tolist()]
        return specialty, borough, clock_start, starts, counts_by_day

    def _expected_by_day(self, day_range: range) -> np.ndarray:
        """Each day's expected referrals by source (days x sources), rate x weekday fraction x the day's multiplier,
        in three array operations; nothing on bank holidays."""
        days = list(day_range)
        weekday_fraction = self.weekday_fraction[(self.start_date.weekday() + np.array(days, dtype=np.int64)) % 7]
        multiplier = np.array([self.rate_multiplier(day) for day in days])
        expected = self.weekly_rate_by_source * weekday_fraction[:, None] * multiplier[:, None]
        expected[[k for k, day in enumerate(days) if day in self.bank_holidays]] = 0.0
        return expected

    def process(self, env: simpy.Environment) -> ServiceProcess:
        """Each day, first of all services: create the day's pathways and put them on the outpatient lists.

        Pathways are drawn `DAYS_PER_DRAW` days at a time (`draw_days`: the same draws as day by day, in fewer and
        larger array operations) and put in the patient table ahead (`PathwayIntake.file_ahead`); each day's join
        the lists on their day. Each next block is drawn in a background thread while the model works through the
        current one (sim.core.ahead): the draws use only this source's streams and rates fixed before the run, so
        they are the same whenever they are made, and the drawing runs on a second core."""
        ledger = self.ledger
        horizon = self.sc.horizon_days
        block_starts = range(0, horizon, DAYS_PER_DRAW)
        blocks = computed_ahead(lambda start: self.draw_days(start, min(DAYS_PER_DRAW, horizon - start)),
                                block_starts)
        for block_start, (attrs, starts, counts_by_day) in zip(block_starts, blocks, strict=True):
            ids = self.intake.file_ahead(attrs)
            on_list = {k: attrs[k] for k in ("referred_site", "specialty", "priority", "clock_start_day")}
            for offset, counts in enumerate(counts_by_day):
                day = block_start + offset
                yield from wait_until(env, day, REFERRALS)
                ledger.referrals_diverted += counts["diverted"]
                ledger.referrals_suppressed += counts["suppressed"]
                ledger.referrals_deferred_returned += counts["deferred_returned"]
                first, stop = int(starts[offset]), int(starts[offset + 1])
                if stop > first:
                    self.intake.referrals_arrive(ids[first:stop], {k: v[first:stop] for k, v in on_list.items()})
