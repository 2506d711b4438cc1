"""Verification against what is known to be true under simple settings (reference formulas 1, 2 and 6)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import scaled_baseline, simple
from sim.model.replication import run_single
from sim.outputs.analysis import weeks_to_clear


def assert_stock_and_flow(weekly, initial_list: int | None = None) -> None:
    """list(t+1) = list(t) + clock starts - clock stops (admitted, non-admitted) - other removals, exactly."""
    for rep, g in weekly.groupby("replication"):
        g = g.sort_values("week")
        expected = (g["waiting_total_start"] + g["clock_starts"] - g["clock_stops_admitted"]
                    - g["clock_stops_non_admitted"] - g["removals_other"])
        bad = g.loc[expected != g["waiting_total"], "week"].tolist()
        assert not bad, f"replication {rep}: stock-and-flow identity fails in weeks {bad[:5]}"
        carried = g["waiting_total_start"].to_numpy()[1:]
        previous = g["waiting_total"].to_numpy()[:-1]
        assert (carried == previous).all(), f"replication {rep}: a week does not start where the last ended"
        stages = g["waiting_outpatient"] + g["waiting_admitted"]
        assert (stages == g["waiting_total"]).all(), "outpatient + admitted stages must equal the total list"
        if initial_list is not None:
            assert g["waiting_total_start"].iloc[0] == initial_list, (
                f"first week starts with {g['waiting_total_start'].iloc[0]}, expected the start list {initial_list}")


@pytest.mark.verification
def test_stock_and_flow_identity_every_week_of_every_replication():
    # The scaled baseline exercises every flow: DNAs, cancellations, bed losses, weekly removals and a
    # validation round, bank holidays, seasonality and growth.
    sc = scaled_baseline(0.05, horizon_weeks=30)
    for rep in range(3):
        result = run_single(sc, rep)
        start_count = sum(b.count for b in sc.start_list.bands)
        assert_stock_and_flow(result.weekly, initial_list=start_count)
        w = result.weekly
        assert w["removals_validation"].sum() > 0, "the validation round in September 2021 removed nobody"
        assert w["removals_other"].sum() > w["removals_validation"].sum(), "no weekly-rate removals happened"
        assert w["outpatient_dna"].sum() > 0 and w["theatre_cancellations_on_day"].sum() > 0


@pytest.mark.verification
def test_conservation_of_patients():
    """Every pathway created is still waiting, treated, stopped at outpatients or removed: none lost."""
    sc = scaled_baseline(0.05, horizon_weeks=20)
    w = run_single(sc, 0).weekly
    start = w["waiting_total_start"].iloc[0]
    created = start + w["clock_starts"].sum()
    accounted = (w["waiting_total"].iloc[-1] + w["clock_stops_admitted"].sum()
                 + w["clock_stops_non_admitted"].sum() + w["removals_other"].sum())
    assert created == accounted, f"{created} pathways created but {accounted} accounted for"


@pytest.mark.verification
@pytest.mark.parametrize("replication", [0, 1])
def test_littles_law_in_steady_state(replication):
    """Time-average list = arrival rate x mean wait (formula 2), after a year's warm-up, within 5%.

    Utilisation 144/147 keeps a queue of a few weeks' demand, so the day-level granularity of the
    model's times is small against the waits being measured.
    """
    sc = simple(referrals_per_week=144.0, sessions_per_day=21, horizon_weeks=520)
    w = run_single(sc, replication).weekly
    steady = w[w["week"] >= 52]
    arrivals_per_week = steady["clock_starts"].mean()
    stops = steady["clock_stops_admitted"]
    mean_wait_weeks = (steady["mean_wait_weeks_admitted_stops"] * stops).sum() / stops.sum()
    # the list is served daily between weekly snapshots: average each week's opening and closing list
    mean_list = ((steady["waiting_total_start"] + steady["waiting_total"]) / 2).mean()
    predicted = arrivals_per_week * mean_wait_weeks
    assert mean_list > 10, f"the test needs a real queue; mean list was {mean_list:.1f}"
    assert mean_list == pytest.approx(predicted, rel=0.05), (
        f"Little's law: mean list {mean_list:.1f} vs arrival rate x mean wait {predicted:.1f}")


@pytest.mark.verification
@pytest.mark.parametrize("backlog, arrivals_per_week, capacity_per_day", [
    (2000, 50.0, 10),    # B0 <= 52 mu: clears at B0 / mu = 28.6 weeks
    (5000, 50.0, 10),    # B0 > 52 mu: clears at (B0 - 52 lambda) / (mu - lambda) = 120 weeks
])
@pytest.mark.slow
def test_fluid_clearance_time_of_a_long_wait_backlog_under_fifo(backlog, arrivals_per_week, capacity_per_day):
    """Formula 6: median clearance over replications within 10% of the fluid prediction."""
    mu, lam = 7.0 * capacity_per_day, arrivals_per_week
    predicted = backlog / mu if backlog <= 52 * mu else (backlog - 52 * lam) / (mu - lam)
    sc = simple(referrals_per_week=lam, sessions_per_day=capacity_per_day, horizon_weeks=int(predicted * 1.5) + 10,
                start_bands=[{"from_weeks": 52, "to_weeks": 60, "count": backlog, "admitted_share": 1.0}])
    cleared = [weeks_to_clear(run_single(sc, rep).weekly["waiting_over_52w"].to_numpy()) for rep in range(9)]
    assert not np.isnan(cleared).any(), f"some replications never cleared: {cleared}"
    median = float(np.median(cleared))
    assert median == pytest.approx(predicted, rel=0.10), (
        f"fluid clearance predicted {predicted:.1f} weeks; median simulated {median} ({cleared})")


@pytest.mark.behaviour
def test_unlimited_capacity_gives_zero_waits():
    # one session a day as long as a day (the longest the schema allows): 1,440 one-minute cases, ~20x the ~70
    # referrals a day
    sc = simple(referrals_per_week=500.0, sessions_per_day=1, case_minutes=1.0, session_minutes=1440.0,
                horizon_weeks=20)
    w = run_single(sc, 0).weekly
    assert w["clock_starts"].sum() > 9000
    assert (w["waiting_total"] == 0).all(), f"list should be empty at every week's end: {w['waiting_total'].max()}"
    assert (w["mean_wait_weeks_admitted_stops"].fillna(0) == 0).all(), "every patient should be treated on referral day"
    assert w["clock_stops_admitted"].sum() == w["clock_starts"].sum()


@pytest.mark.behaviour
def test_zero_sessions_treat_nobody():
    sc = simple(referrals_per_week=100.0, sessions_per_day=0, horizon_weeks=10,
                start_bands=[{"from_weeks": 10, "to_weeks": 40, "count": 300, "admitted_share": 1.0}])
    w = run_single(sc, 0).weekly
    assert w["clock_stops_admitted"].sum() == 0
    assert w["theatre_sessions_run"].sum() == 0
    assert w["waiting_total"].iloc[-1] == 300 + w["clock_starts"].sum(), "everyone referred should still be waiting"


@pytest.mark.behaviour
def test_zero_clinic_slots_see_nobody():
    sc = simple(referrals_per_week=100.0, clinic_slots_per_week=0.0, horizon_weeks=6)
    w = run_single(sc, 0).weekly
    assert w["outpatient_attendances"].sum() == 0 and w["decisions_to_treat"].sum() == 0
    assert w["waiting_outpatient"].iloc[-1] == w["clock_starts"].sum()


@pytest.mark.behaviour
def test_no_referrals_and_no_list_is_quiet():
    sc = simple(referrals_per_week=0.0, horizon_weeks=5)
    w = run_single(sc, 0).weekly
    assert (w[["clock_starts", "waiting_total", "clock_stops_admitted"]] == 0).all().all()


@pytest.mark.behaviour
def test_theatre_utilisation_never_exceeds_one_under_overload():
    sc = simple(referrals_per_week=1000.0, sessions_per_day=5, case_minutes=50.0, horizon_weeks=8)
    w = run_single(sc, 0).weekly
    assert (w["theatre_utilisation"] <= 1.0 + 1e-9).all(), w["theatre_utilisation"].max()
    # 240-minute sessions of 50-minute cases at 100% cap: exactly 4 cases each
    assert (w["theatre_cases"] == 4 * w["theatre_sessions_run"]).all()
