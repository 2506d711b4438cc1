"""Covid waves, surgical hubs, staff and vaccination: what each pressure must (and must not) do to
elective care, and the vaccination formulas (reference formulas 3 and 7).

Scaled scenarios: the shipped baseline at a tenth (or a twentieth) of its size. A Covid wave is scaled
with it (peak inpatients and the per-site / ICS thresholds it is compared with), so the wave presses on a
scaled ICS as it would on the real one. Where a test needs the 52-week backlog to clear inside the
horizon, `clearing_baseline_raw` adds theatre sessions and staff: the scaled baseline as shipped has too
few (rounding a tenth of each site's sessions and teams loses capacity) and its list grows.
"""
from __future__ import annotations

import copy
import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from helpers import ALL_DAYS, ROOT, scaled_baseline_raw, simple_raw
from sim.core.nhs_calendar import bank_holiday_days
from sim.core.rng import Streams
from sim.model.replication import Services, run_single
from sim.model.vaccination import (
    CENTRE_KINDS,
    centre_day_mean_wait_minutes,
    erlang_c,
    erlang_c_mean_wait,
    simulate_centre_queue,
)
from sim.outputs.analysis import weeks_to_clear
from sim.scenario.schema import WEEKDAYS
from sim.scenario.validate import validate
from sim.scenario.yaml_files import load_raw

SCENARIOS = ROOT / "scenarios"
ELECTIVE_COLUMNS = ["waiting_total", "waiting_over_52w", "clock_stops_admitted", "clock_stops_non_admitted",
                    "theatre_cases", "outpatient_attendances"]
SITES = ("imperial", "chelsea_westminster", "lnwh", "hillingdon")


# --------------------------------------------------------------------------------------------------
# Scenario builders
# --------------------------------------------------------------------------------------------------

def clearing_baseline_raw(scale: float = 0.1, horizon_weeks: int = 104) -> dict:
    """Scaled baseline with 40% more sessions on every weekday and 60% more staff at every site, so that
    its 52-week backlog clears in 35-55 weeks (the plain scaled baseline never clears)."""
    raw = scaled_baseline_raw(scale, horizon_weeks)
    for site in raw["sites"].values():
        t = site["theatres"]
        t["sessions_by_weekday"] = {d: round(n * 1.4) for d, n in t["sessions_by_weekday"].items()}
    raw["staff"]["establishment"] = {site: {g: round(n * 1.6) for g, n in groups.items()}
                                     for site, groups in raw["staff"]["establishment"].items()}
    return raw


def mild_wave(scale: float) -> dict:
    """The third_wave_mild wave, its peak scaled with the model."""
    wave = copy.deepcopy(load_raw(SCENARIOS / "third_wave_mild.yaml")["covid"]["waves"][0])
    wave["peak_inpatients"] = wave["peak_inpatients"] * scale
    return wave


def add_scaled_wave(raw: dict, scale: float, multiplier: float) -> dict:
    """The baseline's Covid effect parameters with the mild wave, scaled: the wave's peak, the critical-care
    closure threshold (patients per site), the infection-control threshold and the suppression reference
    (ICS inpatients) are all multiplied by `scale`; beds lost per Covid inpatient is a ratio and stays."""
    raw = copy.deepcopy(raw)
    covid = raw["covid"]
    covid["waves"] = [mild_wave(scale)]
    covid["wave_peak_multiplier"] = multiplier
    covid["critical_care"]["closure_threshold_patients_per_site"] *= scale
    covid["infection_control"]["threshold_inpatients"] *= scale
    covid["referral_suppression"]["reference_inpatients"] *= scale
    return raw


def clearance(weekly: pd.DataFrame, threshold: int) -> float:
    return weeks_to_clear(weekly[f"waiting_over_{threshold}w"].to_numpy())


def not_sooner(bigger: float, smaller: float) -> bool:
    """bigger >= smaller, where NaN (never cleared) is later than any week."""
    if np.isnan(bigger):
        return True
    return not np.isnan(smaller) and bigger >= smaller


def week_of(sc_start: dt.date, date: dt.date) -> int:
    return (date - sc_start).days // 7


# --------------------------------------------------------------------------------------------------
# 1. Switched-on sections that do nothing leave elective results untouched
# --------------------------------------------------------------------------------------------------

@pytest.mark.behaviour
def test_inactive_pressures_give_the_engine_alone_exactly():
    """No wave, no hubs, no absence, no surge: elective results equal those of the engine without the
    covid, surgical_hubs, staff and vaccination sections, week by week, for the same seed."""
    base = scaled_baseline_raw(0.05, horizon_weeks=40)
    a_raw = copy.deepcopy(base)
    for section in ("covid", "surgical_hubs", "staff", "vaccination"):
        a_raw[section] = None

    b_raw = copy.deepcopy(a_raw)
    b_raw["covid"] = copy.deepcopy(base["covid"])          # baseline effect parameters, no waves
    b_raw["covid"]["waves"] = []
    assert b_raw["covid"]["critical_care"] and b_raw["covid"]["referral_suppression"]
    b_raw["surgical_hubs"] = {"inpatient_max_los_days": 2, "hubs": {}}
    staff = copy.deepcopy(base["staff"])
    staff["baseline_sickness_rate"] = 0.0
    staff["annual_leave_rate_by_month"] = {m: 0.0 for m in staff["annual_leave_rate_by_month"]}
    staff["covid_isolation_rate_per_1000_inpatients"] = 0.0
    staff["rostered_absence_rate"] = 0.0
    staff["fatigue"] = None
    staff["establishment"] = {site: {g: 10_000 for g in staff["groups"]} for site in SITES}
    b_raw["staff"] = staff
    b_raw["vaccination"] = {
        "min_dose_interval_days": 21, "booking_rate_per_day": 0.05, "did_not_attend_rate": 0.05,
        "centres": {
            "mass": {"kind": "mass_vaccination_site", "borough": "all", "stations": 4,
                     "open_minutes_per_day": 600, "minutes_per_dose": 6, "staffed_from": "own"},
            "pcn": {"kind": "pcn_site", "borough": "brent", "stations": 2, "open_minutes_per_day": 480,
                    "minutes_per_dose": 7, "staffed_from": "own"}},
        "cohorts": [
            {"borough": "brent", "age_band": "18-29", "population": 50_000, "eligible_from": dt.date(2021, 6, 1),
             "uptake_first_dose": 0.6, "uptake_second_dose": 0.5},
            {"borough": "ealing", "age_band": "30-39", "population": 60_000, "eligible_from": dt.date(2021, 6, 1),
             "uptake_first_dose": 0.7, "uptake_second_dose": 0.6}],
    }
    a, b = validate(a_raw, "engine-alone"), validate(b_raw, "inactive-pressures")
    wa, wb = run_single(a, 0).weekly, run_single(b, 0).weekly
    for col in ELECTIVE_COLUMNS:
        diff = np.flatnonzero(wa[col].to_numpy() != wb[col].to_numpy())
        assert len(diff) == 0, (f"{col}: expected identical weekly values, first differing week {diff[0]}: "
                                f"engine alone {wa[col].iloc[diff[0]]}, "
                                f"with inactive pressures {wb[col].iloc[diff[0]]}")
    assert wb["vaccinations"].sum() > 0 and (wb["vaccinations"] > 0).all(), (
        f"expected vaccinations every week in B, saw {wb['vaccinations'].tolist()}")
    assert wb["sessions_lost_staff"].sum() == 0 and wb["staff_redeployed_to_vaccination"].sum() == 0
    assert wa["vaccinations"].sum() == 0


# --------------------------------------------------------------------------------------------------
# 2. A bigger wave never clears the backlog sooner
# --------------------------------------------------------------------------------------------------

@pytest.mark.behaviour
@pytest.mark.slow
def test_bigger_wave_never_clears_sooner():
    scale, multipliers = 0.1, (1.0, 3.0, 6.0)
    base = clearing_baseline_raw(scale, horizon_weeks=104)
    scenarios = {m: validate(add_scaled_wave(base, scale, m), f"wave-x{m:g}") for m in multipliers}
    peaks = {}
    for rep in range(3):
        weekly = {m: run_single(sc, rep).weekly for m, sc in scenarios.items()}
        for small, big in itertools.pairwise(multipliers):
            for t in (52, 78):
                cs, cb = clearance(weekly[small], t), clearance(weekly[big], t)
                assert not_sooner(cb, cs), (f"replication {rep}: wave x{big:g} cleared {t}w in {cb} weeks, "
                                            f"expected no sooner than wave x{small:g} ({cs} weeks)")
            for col in ("sessions_lost_covid", "referrals_suppressed_covid"):
                s, b = weekly[small][col].sum(), weekly[big][col].sum()
                assert b >= s, f"replication {rep}: {col} total {b} at x{big:g}, expected >= {s} at x{small:g}"
        assert weekly[6.0]["sessions_lost_covid"].sum() > 0, "the x6 wave closed no sessions: test is vacuous"
        assert weekly[1.0]["referrals_suppressed_covid"].sum() > 0
        peaks = {m: weekly[m]["covid_inpatients"].max() for m in multipliers}
    expected_peak_1 = 220 * scale
    assert peaks[1.0] == pytest.approx(expected_peak_1, rel=0.05), (
        f"peak weekly mean {peaks[1.0]}, expected ~{expected_peak_1}")
    for m in multipliers:
        assert peaks[m] == pytest.approx(m * peaks[1.0], abs=0.1 * m), (
            f"peak Covid inpatients at x{m:g}: expected {m:g} x {peaks[1.0]}, saw {peaks[m]}")


# --------------------------------------------------------------------------------------------------
# 3. Opening hubs never clears later
# --------------------------------------------------------------------------------------------------

def hub_model(opens: dt.date | None, bottleneck: str) -> dict:
    """One site, one specialty. `theatres`: all day cases, main theatres 15 sessions a day against demand
    of 100 a week (capacity 105); `beds`: all inpatients (stays of 1 day or more, most under 2 days), the
    main site's beds bind; a hub adds theatre time and ring-fenced beds for what binds."""
    start_band = [{"from_weeks": 40, "to_weeks": 60, "count": 1200, "admitted_share": 1.0}]
    raw = simple_raw(referrals_per_week=100.0, sessions_per_day=15, horizon_weeks=104, start_bands=start_band)
    spec = raw["specialties"]["general"]
    if bottleneck == "beds":
        spec["day_case_share"] = 0.0
        spec["los_days_mean"] = 1.0
        raw["sites"]["site_a"]["elective_beds"] = 21
        raw["sites"]["site_a"]["theatres"]["sessions_by_weekday"] = {d: 30 for d in ALL_DAYS}
    if opens is None:
        raw["surgical_hubs"] = None
        return raw
    raw["surgical_hubs"] = {"inpatient_max_los_days": 2.0, "hubs": {"hub": {
        "host_site": "site_a", "opens": opens, "elective_beds": 6, "productivity_multiplier": 1.0,
        "theatres": {"sessions_by_weekday": {d: 3 for d in ALL_DAYS}, "session_minutes": 240,
                     "turnaround_minutes": 0.0, "utilisation_cap": 1.0,
                     "specialty_session_shares": {"general": 1.0}}}}}
    return raw


@pytest.mark.behaviour
@pytest.mark.parametrize("bottleneck", ["theatres", "beds"])
def test_opening_a_hub_never_clears_later(bottleneck):
    start = simple_raw()["start_date"]
    without = validate(hub_model(None, bottleneck), "no-hub")
    with_hub = validate(hub_model(start - dt.timedelta(days=7), bottleneck), "hub")
    late_hub = validate(hub_model(start + dt.timedelta(weeks=200), bottleneck), "hub-after-horizon")
    for rep in range(3):
        w0, w1, wl = (run_single(sc, rep).weekly for sc in (without, with_hub, late_hub))
        c0, c1 = clearance(w0, 52), clearance(w1, 52)
        assert not np.isnan(c1), f"replication {rep}: with the hub the 52-week backlog never cleared"
        assert not_sooner(c0, c1), f"replication {rep}: with hub cleared in {c1} weeks, without in {c0}"
        assert w1["hub_cases"].sum() > 0, "the hub treated nobody"
        assert w1["clock_stops_admitted"].sum() > w0["clock_stops_admitted"].sum()
        # a hub that opens after the horizon is no hub at all
        for col in ELECTIVE_COLUMNS:
            assert w0[col].equals(wl[col]), f"replication {rep}: {col} differs with a hub opening after the horizon"
        assert wl["hub_cases"].sum() == 0
    if bottleneck == "beds":
        assert w0["theatre_slots_lost_no_bed"].sum() > 0, "beds were meant to bind without the hub"


# --------------------------------------------------------------------------------------------------
# 4. A surge that redeploys staff never clears sooner
# --------------------------------------------------------------------------------------------------

SURGE_START = dt.date(2021, 6, 21)
SURGE_WEEKS = 6


def surge_vaccination(surge: bool, max_share: float = 0.5) -> dict:
    section = {
        "min_dose_interval_days": 56, "booking_rate_per_day": 0.02, "did_not_attend_rate": 0.05,
        "centres": {"lnwh_hub": {"kind": "hospital_hub", "borough": "brent", "staffed_from": "lnwh",
                                 "stations": 2, "surge_stations": 10, "open_minutes_per_day": 480,
                                 "minutes_per_dose": 6}},
        "cohorts": [{"borough": "brent", "age_band": "18+", "population": 200_000,
                     "eligible_from": dt.date(2021, 6, 1), "uptake_first_dose": 0.7, "uptake_second_dose": 0.6}],
        "surge": None,
    }
    if surge:
        section["surge"] = {"start": SURGE_START, "weeks": SURGE_WEEKS, "target_doses_per_week": 20_000,
                            "booking_rate_per_day": 0.1, "redeploy_from": ["theatre_nurses"],
                            "max_share_redeployed": max_share}
    return section


@pytest.mark.behaviour
@pytest.mark.slow
def test_surge_that_redeploys_staff_never_clears_sooner():
    # 70 weeks: without the surge the backlogs clear in 29-44 weeks, with it in 34-50, inside the run either way
    base = clearing_baseline_raw(0.1, horizon_weeks=70)
    quiet_raw, surge_raw = copy.deepcopy(base), copy.deepcopy(base)
    quiet_raw["vaccination"], surge_raw["vaccination"] = surge_vaccination(False), surge_vaccination(True)
    quiet, surge = validate(quiet_raw, "no-surge"), validate(surge_raw, "surge")
    first = week_of(quiet.start_date, SURGE_START)
    weeks = slice(first, first + SURGE_WEEKS)
    for rep in range(3):
        wq, ws = run_single(quiet, rep).weekly, run_single(surge, rep).weekly
        assert wq["staff_redeployed_to_vaccination"].sum() == 0
        redeployed = ws["staff_redeployed_to_vaccination"]
        assert (redeployed.iloc[weeks] > 0).all(), \
            f"expected redeployment every surge week, saw {redeployed.iloc[weeks].tolist()}"
        assert redeployed.drop(redeployed.index[weeks]).sum() == 0, "staff redeployed outside the surge"
        # before the surge, the two runs are the same run
        for col in ELECTIVE_COLUMNS + ["sessions_lost_staff"]:
            assert wq[col].iloc[:first].equals(ws[col].iloc[:first]), f"{col} differs before the surge"
        lost_q, lost_s = wq["sessions_lost_staff"].iloc[weeks], ws["sessions_lost_staff"].iloc[weeks]
        assert lost_s.sum() > lost_q.sum(), (f"replication {rep}: sessions lost to staff in the surge weeks "
                                             f"{lost_s.sum()} with surge, expected more than {lost_q.sum()}")
        assert (lost_s.to_numpy() >= lost_q.to_numpy()).all(), (
            f"replication {rep}: a surge week lost fewer sessions to staff: {lost_s.tolist()} vs {lost_q.tolist()}")
        for t in (52, 78):
            cq, cs = clearance(wq, t), clearance(ws, t)
            assert not_sooner(cs, cq), f"replication {rep}: {t}w cleared in {cs} weeks with surge, {cq} without"


# --------------------------------------------------------------------------------------------------
# 5. Vaccinations a day never exceed stations x open minutes / minutes per dose (formula 7)
# --------------------------------------------------------------------------------------------------

def unlimited_vaccination_raw(weeks: int = 6) -> dict:
    raw = simple_raw(horizon_weeks=weeks, referrals_per_week=10.0)
    start = raw["start_date"]
    raw["vaccination"] = {
        "min_dose_interval_days": 14, "booking_rate_per_day": 1.0, "did_not_attend_rate": 0.05,
        "centres": {
            "mass": {"kind": "mass_vaccination_site", "borough": "all", "stations": 12,
                     "open_minutes_per_day": 600, "minutes_per_dose": 6.5, "observation_bays": 60},
            "hospital": {"kind": "hospital_hub", "borough": "borough_a", "stations": 5,
                         "open_minutes_per_day": 480, "minutes_per_dose": 7, "open_weekdays": ["mon", "wed", "fri"]},
            "pcn": {"kind": "pcn_site", "borough": "borough_a", "stations": 3, "open_minutes_per_day": 500,
                    "minutes_per_dose": 7.5, "open_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat"]},
            "pharmacy": {"kind": "pharmacy", "borough": "borough_a", "stations": 4, "open_minutes_per_day": 540,
                         "minutes_per_dose": 8, "observation_bays": 2, "observation_minutes": 15},  # bays bind
            "event": {"kind": "mass_event", "borough": "all", "stations": 40, "open_minutes_per_day": 600,
                      "minutes_per_dose": 6.5, "event_dates": [start + dt.timedelta(days=12)]},
        },
        "cohorts": [
            {"borough": "borough_a", "age_band": "18-49", "population": 5_000_000, "eligible_from": start,
             "uptake_first_dose": 0.9, "uptake_second_dose": 0.9},
            {"borough": "borough_a", "age_band": "50+", "population": 3_000_000, "eligible_from": start,
             "uptake_first_dose": 0.95, "uptake_second_dose": 0.9, "first_doses_before_start": 1_000_000},
        ],
    }
    return raw


def weekly_dose_ceiling(raw: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Independent of the model: for every centre-day, floor(stations x open minutes / minutes per dose),
    or the observation chairs' limit if lower, on the days the centre is open; summed by week."""
    v, start, weeks = raw["vaccination"], raw["start_date"], raw["horizon_weeks"]
    total = np.zeros(weeks, dtype=np.int64)
    by_kind = {k: np.zeros(weeks, dtype=np.int64) for k in CENTRE_KINDS}
    for centre in v["centres"].values():
        per_day = centre["stations"] * centre["open_minutes_per_day"] / centre["minutes_per_dose"]
        if centre.get("observation_bays") is not None:
            per_day = min(per_day, centre["observation_bays"] * centre["open_minutes_per_day"]
                          / centre.get("observation_minutes", 15.0))
        for day in range(7 * weeks):
            date = start + dt.timedelta(days=day)
            if centre["kind"] == "mass_event":
                is_open = date in centre["event_dates"]
            else:
                is_open = WEEKDAYS[date.weekday()] in centre.get("open_weekdays", ALL_DAYS)
            if is_open:
                total[day // 7] += math.floor(per_day)
                by_kind[centre["kind"]][day // 7] += math.floor(per_day)
    return total, by_kind


@pytest.mark.verification
def test_vaccinations_never_exceed_station_ceiling_and_reach_it_when_demand_is_unlimited():
    raw = unlimited_vaccination_raw()
    dna = raw["vaccination"]["did_not_attend_rate"]
    ceiling, _ = weekly_dose_ceiling(raw)
    w = run_single(validate(raw, "unlimited-vaccination"), 0).weekly
    doses = w["vaccinations"].to_numpy()
    assert (w["vaccination_capacity"].to_numpy() == ceiling).all(), (
        f"reported capacity {w['vaccination_capacity'].tolist()}, expected {ceiling.tolist()}")
    assert (doses <= ceiling).all(), f"weekly doses {doses.tolist()} exceed the ceiling {ceiling.tolist()}"
    assert (doses >= 0.9 * (1 - dna) * ceiling).all(), (
        f"unlimited demand: expected at least 90% of (1 - DNA) x ceiling, "
        f"saw {doses.tolist()} against {ceiling.tolist()}")
    offered = doses + w["vaccination_dna"].to_numpy()
    assert (offered == ceiling).all(), (
        f"appointments offered {offered.tolist()}, expected every slot used {ceiling.tolist()}")
    by_kind = sum(w[f"vaccinations_{k}"] for k in CENTRE_KINDS).to_numpy()
    assert (by_kind == doses).all(), f"vaccinations by kind sum to {by_kind.tolist()}, total {doses.tolist()}"
    first_second = (w["vaccinations_first_dose"] + w["vaccinations_second_dose"]).to_numpy()
    assert (first_second == doses).all()
    event_week = 12 // 7
    mass_event = w["vaccinations_mass_event"]
    assert mass_event.iloc[event_week] > 0 and mass_event.drop(event_week).sum() == 0, (
        f"expected mass-event doses in week {event_week} only, saw {mass_event.tolist()}")


@pytest.mark.verification
def test_vaccinations_by_kind_sum_to_the_total_in_the_shipped_surge():
    raw = load_raw(SCENARIOS / "vaccination_surge.yaml")
    raw["horizon_weeks"] = 8
    raw["referrals"]["referrals_per_week"] *= 0.02
    for band in raw["start_list"]["bands"]:
        band["count"] = round(band["count"] * 0.02)
    w = run_single(validate(raw, "surge-8w"), 0).weekly
    by_kind = sum(w[f"vaccinations_{k}"] for k in CENTRE_KINDS)
    assert (by_kind == w["vaccinations"]).all(), f"by kind {by_kind.tolist()}, total {w['vaccinations'].tolist()}"
    assert (w["vaccinations"] <= w["vaccination_capacity"]).all()
    assert w["vaccinations"].sum() > 0


# --------------------------------------------------------------------------------------------------
# 6. Erlang C (formula 3)
# --------------------------------------------------------------------------------------------------

@pytest.mark.unit
def test_erlang_c_hand_computed_values():
    # C(2, 1): P(wait) = (a^c/c! * c/(c-a)) / (sum_{k<c} a^k/k! + a^c/c! * c/(c-a)) = 1 / (2 + 1) = 1/3
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12), f"C(2,1) = {erlang_c(2, 1.0)}, expected 1/3"
    # M/M/1: C(1, rho) = rho, and Wq = rho / (mu - lambda)
    assert erlang_c(1, 0.6) == pytest.approx(0.6, rel=1e-12)
    assert erlang_c_mean_wait(1, 0.6, 1.0) == pytest.approx(0.6 / 0.4, rel=1e-12)
    # C(3, 2) = (8/6 * 3) / (1 + 2 + 2 + 4) = 4/9
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12), f"C(3,2) = {erlang_c(3, 2.0)}, expected 4/9"
    assert erlang_c(3, 3.0) == 1.0 and math.isinf(erlang_c_mean_wait(3, 3.0, 1.0))


def _erlang_c_in_logs(c: int, a: float) -> float:
    """C(c, a) from the textbook sum, in logarithms so that it cannot overflow (independent of the model)."""
    log_terms = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max(log_terms + [log_top])
    below = sum(math.exp(t - peak) for t in log_terms)
    top = math.exp(log_top - peak)
    return top / (below + top)


@pytest.mark.unit
@pytest.mark.parametrize(("servers", "load"), [(2, 1.0), (20, 19.0), (200, 180.0), (1000, 900.0), (10_000, 9_990.0)])
def test_erlang_c_is_right_for_thousands_of_stations(servers: int, load: float) -> None:
    """The largest centres the schema allows (10,000 stations): the sum of a^k / k! overflows a float from a few
    hundred; the recursion the model uses must agree with the sum taken in logarithms."""
    assert erlang_c(servers, load) == pytest.approx(_erlang_c_in_logs(servers, load), rel=1e-9)
    assert math.isfinite(erlang_c_mean_wait(servers, load, 1.0))


@pytest.mark.verification
def test_simulated_centre_queue_matches_erlang_c():
    stations, mean_service, utilisation = 7, 5.5, 0.85
    arrival_rate = utilisation * stations / mean_service
    expected = erlang_c_mean_wait(stations, arrival_rate, 1 / mean_service)
    waits = simulate_centre_queue(arrival_rate, mean_service, stations, 300_000.0, np.random.default_rng(20210629))
    assert len(waits) == pytest.approx(arrival_rate * 300_000, rel=0.01)
    assert waits.mean() == pytest.approx(expected, rel=0.07), (
        f"simulated mean wait {waits.mean():.3f} min, Erlang C {expected:.3f} min (7% allowed)")
    p_wait = float((waits > 0).mean())
    assert p_wait == pytest.approx(erlang_c(stations, arrival_rate * mean_service), rel=0.05)


@pytest.mark.verification
def test_centre_day_wait_counts_only_the_people_who_come():
    """20 stations, 5 minutes a dose, 600 minutes open: 2,400 doses of capacity. Fully booked with 5% not
    attending, 2,280 people come: an M/M/20 at load 0.95, whose wait the simulated queue confirms. Counting the
    120 who stay away as arrivals (the old rule) would put the load at 1.0, a queue with no steady state."""
    stations, minutes_per_dose, open_minutes = 20, 5.0, 600.0
    capacity = int(stations * open_minutes / minutes_per_dose)
    attended = round(capacity * 0.95)
    wait = centre_day_mean_wait_minutes(attended, capacity, stations, open_minutes, minutes_per_dose)
    mmc = erlang_c_mean_wait(stations, attended / open_minutes, 1 / minutes_per_dose)
    assert wait == pytest.approx(mmc, rel=1e-12)
    # a million minutes of queue: the simulated mean is within 2-4% of Erlang C (seeds 7-9), inside the 10% asked
    simulated = simulate_centre_queue(attended / open_minutes, minutes_per_dose, stations, 1_000_000.0,
                                      np.random.default_rng(7)).mean()
    assert wait == pytest.approx(simulated, rel=0.1), f"Erlang C {wait:.1f} min, simulated queue {simulated:.1f} min"
    assert math.isinf(erlang_c_mean_wait(stations, capacity / open_minutes, 1 / minutes_per_dose)), (
        "the old rule's load (the booked, not those who came) is 1.0")
    # a day whose attendees fill the capacity is saturated: no finite wait
    assert math.isinf(centre_day_mean_wait_minutes(capacity, capacity, stations, open_minutes, minutes_per_dose))


@pytest.mark.behaviour
def test_saturated_centre_days_are_counted_not_averaged_into_the_wait():
    """Unlimited demand and no did-not-attends fill every centre every open day: each is saturated, so the
    weekly mean wait is missing (not a finite figure diluted by the saturated doses) and the saturated
    centre-days are counted; with 5% not attending, the same centres have a finite wait and none saturated."""
    raw = unlimited_vaccination_raw(weeks=2)
    raw["vaccination"]["report_queue_waits"] = True
    raw["vaccination"]["did_not_attend_rate"] = 0.0
    full = run_single(validate(raw, "saturated"), 0).weekly
    assert (full["vaccination_saturated_centre_days"] > 0).all()
    assert full["vaccination_mean_wait_minutes"].isna().all(), full["vaccination_mean_wait_minutes"].tolist()
    raw["vaccination"]["did_not_attend_rate"] = 0.05
    some_absent = run_single(validate(raw, "five-percent-dna"), 0).weekly
    assert (some_absent["vaccination_saturated_centre_days"] == 0).all()
    waits = some_absent["vaccination_mean_wait_minutes"]
    assert waits.notna().all() and (waits > 0).all() and np.isfinite(waits).all(), waits.tolist()
    # without the Erlang C figures asked for, the table has no saturation column
    raw["vaccination"]["report_queue_waits"] = False
    assert "vaccination_saturated_centre_days" not in run_single(validate(raw, "no-waits"), 0).weekly


# --------------------------------------------------------------------------------------------------
# 7. Total absence
# --------------------------------------------------------------------------------------------------

@pytest.mark.behaviour
def test_total_staff_absence_runs_no_sessions_and_no_clinics():
    sc = validate(scaled_baseline_raw(0.05, horizon_weeks=8, overrides=["staff.baseline_sickness_rate=1.0"]), "absent")
    w = run_single(sc, 0).weekly
    assert w["theatre_sessions_planned"].sum() > 0
    assert (w["theatre_sessions_run"] == 0).all(), (
        f"sessions run with nobody present: {w['theatre_sessions_run'].tolist()}")
    expected = w["theatre_sessions_planned"] - w["sessions_lost_covid"]
    assert w["sessions_lost_staff"].equals(expected), (
        f"every planned session should be lost to staff: lost {w['sessions_lost_staff'].tolist()}, "
        f"planned {expected.tolist()}")
    assert (w["outpatient_attendances"] == 0).all(), (
        f"clinics ran with nobody present: {w['outpatient_attendances'].tolist()}")
    assert (w["clock_stops_admitted"] == 0).all() and (w["hub_cases"] == 0).all()


# --------------------------------------------------------------------------------------------------
# 8. A wave bigger than the bed base
# --------------------------------------------------------------------------------------------------

@pytest.mark.behaviour
def test_wave_bigger_than_bed_base_stops_elective_inpatients_not_hub_day_cases():
    scale = 0.1
    raw = scaled_baseline_raw(scale, horizon_weeks=30, overrides=["staff=null"])
    covid = raw["covid"]
    covid["critical_care"] = None
    covid["elective_beds_lost_per_covid_inpatient"] = 5.0
    covid["waves"] = [{"name": "huge", "start": dt.date(2021, 7, 5), "peak": dt.date(2021, 8, 16),
                       "end": dt.date(2021, 10, 25), "peak_inpatients": 5000.0, "shape": "cosine"}]
    raw["surgical_hubs"]["inpatient_max_los_days"] = 0
    for hub in raw["surgical_hubs"]["hubs"].values():
        hub["opens"] = dt.date(2021, 6, 7)
        hub["theatres"]["sessions_by_weekday"] = {d: (0 if d == "sun" else 2) for d in ALL_DAYS}
    sc = validate(raw, "huge-wave")
    w = run_single(sc, 0).weekly

    # Independently: daily ICS inpatients of the cosine wave, split by elective beds, beds lost per site.
    beds = np.array([raw["sites"][s]["elective_beds"] for s in SITES], dtype=float)
    hub_beds = sum(h["elective_beds"] for h in raw["surgical_hubs"]["hubs"].values())
    wave = covid["waves"][0]
    s, p, e = ((wave[k] - sc.start_date).days for k in ("start", "peak", "end"))
    blocked_weeks = []
    for week in range(sc.horizon_weeks):
        blocked = True
        for day in range(7 * week, 7 * week + 7):
            x = (day - s) / (p - s) if day <= p else (e - day) / (e - p)
            x = min(max(x, 0.0), 1.0) if s <= day <= e else 0.0
            inpatients = wave["peak_inpatients"] * (1 - math.cos(math.pi * x)) / 2
            lost = np.rint(covid["elective_beds_lost_per_covid_inpatient"] * inpatients * beds / beds.sum())
            blocked &= bool((lost >= beds).all())
        if blocked:
            blocked_weeks.append(week)
    assert len(blocked_weeks) >= 6, f"expected a long run of weeks with no main-site beds, found {blocked_weeks}"
    wb = w.iloc[blocked_weeks]
    assert (wb["theatre_cases_inpatient"] == 0).all(), (
        f"elective inpatients treated with every main bed taken: {wb['theatre_cases_inpatient'].tolist()}")
    assert (wb["hub_cases"] > 0).all(), f"ring-fenced hubs should keep treating day cases: {wb['hub_cases'].tolist()}"
    assert (wb["elective_beds_available"] == hub_beds).all(), (
        f"beds available should be the hubs' {hub_beds} only, saw {wb['elective_beds_available'].tolist()}")
    before = w.iloc[: week_of(sc.start_date, wave["start"])]
    assert (before["theatre_cases_inpatient"] > 0).all(), "inpatients should be treated before the wave"
    assert (before["elective_beds_available"] == beds.sum() + hub_beds).all()


# --------------------------------------------------------------------------------------------------
# 9. Session accounting
# --------------------------------------------------------------------------------------------------

@pytest.mark.verification
@pytest.mark.parametrize("multiplier", [0.0, 3.5])
def test_every_planned_session_is_run_or_lost_to_one_cause(multiplier):
    scale = 0.1
    raw = add_scaled_wave(scaled_baseline_raw(scale, horizon_weeks=30), scale, multiplier)
    w = run_single(validate(raw, f"accounting-x{multiplier:g}"), 0).weekly
    accounted = (w["theatre_sessions_run"] + w["sessions_lost_covid"] + w["sessions_lost_staff"]
                 + w["sessions_lost_cancelled"])
    bad = w.loc[accounted != w["theatre_sessions_planned"], "week"].tolist()
    assert not bad, f"planned != run + lost (covid, staff, cancelled) in weeks {bad}"
    causes = w["sessions_lost_covid"] + w["sessions_lost_staff"] + w["sessions_lost_cancelled"]
    assert w["theatre_sessions_lost"].equals(causes), "theatre_sessions_lost must be the sum of its causes"
    assert w["sessions_lost_staff"].sum() > 0 and w["sessions_lost_cancelled"].sum() > 0
    if multiplier:
        assert w["sessions_lost_covid"].sum() > 0, "the severe wave closed no sessions: the identity is not exercised"
    else:
        assert w["sessions_lost_covid"].sum() == 0


# --------------------------------------------------------------------------------------------------
# 10. Referral suppression and deferred demand
# --------------------------------------------------------------------------------------------------

@pytest.mark.behaviour
def test_referral_suppression_lowers_clock_starts_and_deferred_demand_returns():
    scale = 0.1
    base = scaled_baseline_raw(scale, horizon_weeks=52)
    no_wave, wave = validate(base, "no-wave"), validate(add_scaled_wave(base, scale, 4.0), "wave-x4")
    rs = wave.covid.referral_suppression
    w_def = wave.covid.waves[0]
    first, last = week_of(wave.start_date, w_def.start), week_of(wave.start_date, w_def.end)
    last_return = week_of(wave.start_date, w_def.end + dt.timedelta(weeks=rs.return_delay_weeks_max))
    assert last_return < wave.horizon_weeks, "the horizon must cover every return"
    for rep in range(2):
        w0, w1 = run_single(no_wave, rep).weekly, run_single(wave, rep).weekly
        assert w0["clock_starts"].iloc[:first].equals(w1["clock_starts"].iloc[:first]), \
            "clock starts differ before the wave"
        during0, during1 = (w["clock_starts"].iloc[first:last + 1].sum() for w in (w0, w1))
        assert during1 < during0, \
            f"replication {rep}: {during1} clock starts during the wave, expected fewer than {during0}"
        suppressed, returned = w1["referrals_suppressed_covid"].sum(), w1["referrals_deferred_returned"].sum()
        assert suppressed > 500, f"expected substantial suppression, saw {suppressed}"
        expected = rs.share_returning * suppressed
        assert returned == pytest.approx(expected, rel=0.15), (
            f"replication {rep}: {returned} deferred referrals returned, expected ~{expected:.0f} "
            f"({rs.share_returning} x {suppressed} suppressed)")
        # returns come 4-26 weeks after suppression: none in the wave's first 4 weeks
        assert w1["referrals_deferred_returned"].iloc[: first + int(rs.return_delay_weeks_min)].sum() == 0
        assert w0["referrals_suppressed_covid"].sum() == 0 and w0["referrals_deferred_returned"].sum() == 0


@pytest.mark.unit
def test_a_block_of_plain_days_draws_the_referrals_of_its_days_one_after_another():
    sc = validate(scaled_baseline_raw(0.1, horizon_weeks=20), "blocks")
    block, day_by_day = (Services(sc, Streams(sc.run.seed, 0)).referral_source for _ in range(2))
    days = range(70, 98)                                   # four weeks around the August 2021 bank holiday (day 84)
    assert 84 in bank_holiday_days(sc.start_date, sc.horizon_days, (), statutory=True)
    drawn, expected = block._sources_of_plain_days(days), day_by_day._sources_day_by_day(days)
    for got, want in zip(drawn[:4], expected[:4], strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert drawn[4] == expected[4] and sum(c["diverted"] for c in drawn[4]) > 0
    per_day = np.diff(drawn[3])
    assert per_day[84 - 70] == 0 and per_day.sum() > 4_000, "the bank holiday has no referrals"


# --------------------------------------------------------------------------------------------------
# Regression tests for bugs found while writing these tests (fixed in the model)
# --------------------------------------------------------------------------------------------------

NO_LEAVE = {m: 0.0 for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")}


@pytest.mark.verification
def test_max_share_redeployed_caps_a_site_not_each_centre():
    raw = scaled_baseline_raw(0.1, horizon_weeks=4)
    raw["staff"]["baseline_sickness_rate"] = 0.0
    raw["staff"]["annual_leave_rate_by_month"] = dict(NO_LEAVE)
    vacc = surge_vaccination(True, max_share=0.5)
    vacc["centres"]["lnwh_hub_2"] = dict(vacc["centres"]["lnwh_hub"])     # a second hub staffed from lnwh
    raw["vaccination"] = vacc
    sc = validate(raw, "two-centres-one-site")
    nurses = sc.staff.establishment["lnwh"]["theatre_nurses"]            # all present: no absence
    cap_per_week = 7 * math.floor(0.5 * nurses)
    w = run_single(sc, 0).weekly
    surge_weeks = w.iloc[week_of(sc.start_date, SURGE_START):]
    assert (surge_weeks["staff_redeployed_to_vaccination"] > 0).all()
    assert (surge_weeks["staff_redeployed_to_vaccination"] <= cap_per_week).all(), (
        f"max_share_redeployed 0.5 of {nurses} theatre nurses allows {cap_per_week} person-days a week; "
        f"redeployed {surge_weeks['staff_redeployed_to_vaccination'].tolist()}")


@pytest.mark.verification
def test_staff_at_a_vaccination_centre_do_not_also_staff_theatres():
    raw = simple_raw(horizon_weeks=2, referrals_per_week=10.0,
                     start_bands=[{"from_weeks": 0, "to_weeks": 10, "count": 2000, "admitted_share": 1.0}])
    raw["staff"] = {"groups": {"nurses": {"per_theatre_session": 1, "theatre_sessions_per_day": 1, "vaccinates": True}},
                    "establishment": {"site_a": {"nurses": 20}}, "baseline_sickness_rate": 0.0,
                    "annual_leave_rate_by_month": dict(NO_LEAVE), "rostered_absence_rate": 0.0}
    raw["vaccination"] = {
        "min_dose_interval_days": 56, "booking_rate_per_day": 0.5, "did_not_attend_rate": 0.0,
        "centres": {"hub": {"kind": "hospital_hub", "borough": "borough_a", "staffed_from": "site_a", "stations": 10,
                            "open_minutes_per_day": 480, "minutes_per_dose": 6}},
        "cohorts": [{"borough": "borough_a", "age_band": "all", "population": 100_000,
                     "eligible_from": raw["start_date"], "uptake_first_dose": 1.0, "uptake_second_dose": 0.0}]}
    w = run_single(validate(raw, "dual-role"), 0).weekly
    assert (w["vaccination_capacity"] == 7 * 10 * 480 // 6).all(), "all 10 stations should be staffed by nurses"
    # 20 nurses, 10 of them at the centre every day: at most 10 one-nurse sessions a day can run
    assert (w["theatre_sessions_run"] <= 7 * 10).all(), (
        f"expected at most 70 sessions a week with 10 of 20 nurses vaccinating, "
        f"saw {w['theatre_sessions_run'].tolist()}")


@pytest.mark.verification
def test_ics_wide_centres_serve_what_local_centres_leave():
    raw = simple_raw(horizon_weeks=3, referrals_per_week=10.0)
    raw["boroughs"] = {b: {"population": 1000, "referred_site_shares": {"site_a": 1.0}}
                       for b in ("borough_a", "borough_b")}
    start = raw["start_date"]
    raw["vaccination"] = {
        "min_dose_interval_days": 56, "booking_rate_per_day": 0.01, "did_not_attend_rate": 0.0,
        "centres": {  # mass site: 1,000 doses a day for anyone; borough_a's own centres: 20,000 a day
            "mass": {"kind": "mass_vaccination_site", "borough": "all", "stations": 10, "open_minutes_per_day": 600,
                     "minutes_per_dose": 6},
            "local_a": {"kind": "pcn_site", "borough": "borough_a", "stations": 200, "open_minutes_per_day": 600,
                        "minutes_per_dose": 6}},
        "cohorts": [{"borough": b, "age_band": "all", "population": 1_000_000, "eligible_from": start,
                     "uptake_first_dose": 1.0, "uptake_second_dose": 0.0} for b in ("borough_a", "borough_b")]}
    r = run_single(validate(raw, "shared-capacity"), 0)
    by_cohort = r.vaccination_by_cohort
    a = by_cohort[by_cohort["borough"] == "borough_a"]["first_doses"].to_numpy()
    b = by_cohort[by_cohort["borough"] == "borough_b"]["first_doses"].to_numpy()
    # borough_a books ~10,000 a day, well inside its own 20,000; borough_b (no local centre) books ~10,000
    # a day, so every one of the mass site's 7,000 weekly slots should go to borough_b
    assert (a < 7 * 20_000).all()
    assert (b == 7 * 1000).all(), f"borough_b should get all 7,000 mass-site doses a week, got {b.tolist()}"
