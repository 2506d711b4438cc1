"""Direction of change, booking policies, pooling and reproducibility."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import scaled_baseline, scaled_baseline_raw, simple
from sim.model.replication import run_single
from sim.outputs.analysis import weeks_to_clear
from sim.scenario.validate import validate

pytestmark = pytest.mark.behaviour


def clear_weeks(sc, rep, threshold=52):
    return weeks_to_clear(run_single(sc, rep).weekly[f"waiting_over_{threshold}w"].to_numpy())


@pytest.mark.slow
def test_more_theatre_sessions_never_delay_clearance():
    """50% more sessions on every weekday at every site (so no specialty loses a session, by the
    house-monotone apportionment) never clears the 52-week backlog later, replication by replication.

    Beds and staff are made non-binding: the claim is about theatre time. (With beds binding, extra
    sessions in one specialty can take the beds another specialty's inpatients need -- a real effect.)
    78 weeks: the baseline clears in 53-65 weeks, more sessions in 27-30, so both clear inside the run.
    """
    sites = ("imperial", "chelsea_westminster", "lnwh", "hillingdon")
    fixed = ["theatre_rules.session_cancellation_rate=0", "staff=null",
             *[f"sites.{s}.elective_beds=1000" for s in sites]]
    base_raw = scaled_baseline_raw(0.1, horizon_weeks=78, overrides=fixed)
    more_raw = scaled_baseline_raw(0.1, horizon_weeks=78, overrides=fixed)
    for site in more_raw["sites"].values():
        theatres = site["theatres"]
        theatres["sessions_by_weekday"] = {d: round(n * 1.5) for d, n in theatres["sessions_by_weekday"].items()}
    base, more = validate(base_raw, "base"), validate(more_raw, "more")
    for rep in range(3):
        base_weekly, more_weekly = run_single(base, rep).weekly, run_single(more, rep).weekly
        b, m = (weeks_to_clear(w["waiting_over_52w"].to_numpy()) for w in (base_weekly, more_weekly))
        assert not np.isnan(m), f"replication {rep}: more sessions never cleared"
        assert np.isnan(b) or m <= b, f"replication {rep}: more sessions cleared in {m} weeks, baseline {b}"
        treated_more, treated_base = (w["clock_stops_admitted"].sum() for w in (more_weekly, base_weekly))
        assert treated_more > treated_base, \
            f"replication {rep}: expected more sessions to treat more than {treated_base}, saw {treated_more}"


def test_priority_policy_treats_p1_sooner_than_fifo():
    mix = {"P1": 0.1, "P2": 0.2, "P3": 0.3, "P4": 0.4}
    kwargs = dict(referrals_per_week=140.0, sessions_per_day=21, horizon_weeks=60, priority_mix=mix,
                  start_bands=[{"from_weeks": 0, "to_weeks": 30, "count": 1500, "admitted_share": 1.0}])
    waits = {}
    for policy in ("fifo", "priority_then_longest_wait", "longest_wait_first"):
        w = run_single(simple(policy=policy, **kwargs), 0).waits_by_priority.set_index("priority")
        waits[policy] = w["mean_wait_weeks"]
    assert waits["priority_then_longest_wait"]["P1"] < 0.5 * waits["fifo"]["P1"], waits
    assert waits["priority_then_longest_wait"]["P4"] > waits["fifo"]["P4"], "P4 must wait longer when P1-P3 go first"
    p = waits["priority_then_longest_wait"]
    assert p["P1"] <= p["P2"] <= p["P3"] <= p["P4"], f"waits must rise with priority number: {p.to_dict()}"


def test_longest_wait_first_clears_long_waiters_before_fifo_by_decision_date():
    # Under fifo the admitted list is ordered by decision-to-treat date; longest-wait-first by clock start.
    kwargs = dict(referrals_per_week=100.0, sessions_per_day=16, horizon_weeks=80,
                  start_bands=[{"from_weeks": 0, "to_weeks": 70, "count": 4000, "admitted_share": 0.5}],
                  clinic_slots_per_week=120.0)
    lw = clear_weeks(simple(policy="longest_wait_first", **kwargs), 0)
    ff = clear_weeks(simple(policy="fifo", **kwargs), 0)
    assert lw <= ff, f"longest_wait_first cleared 52w in {lw} weeks, fifo in {ff}"


def test_ics_pooling_evens_out_waits_across_sites():
    spreads = {}
    for pooling in ("ics", "site"):
        sc = scaled_baseline(0.05, horizon_weeks=40, overrides=[f"pooling={pooling}",
                                                                "sites.hillingdon.theatres.sessions_by_weekday.mon=0",
                                                                "sites.hillingdon.theatres.sessions_by_weekday.tue=0"])
        w = run_single(sc, 0).weekly
        spreads[pooling] = w
    assert spreads["ics"]["treated_at_other_site"].sum() > 0
    assert spreads["site"]["treated_at_other_site"].sum() == 0, "site pooling must treat patients where referred"
    assert spreads["ics"]["waiting_over_52w"].iloc[-1] <= spreads["site"]["waiting_over_52w"].iloc[-1]


def test_same_seed_identical_different_seed_different():
    sc = scaled_baseline(0.03, horizon_weeks=12)
    a, b = run_single(sc, 0, seed=1).weekly, run_single(sc, 0, seed=1).weekly
    pd.testing.assert_frame_equal(a, b)
    c = run_single(sc, 0, seed=2).weekly
    assert not a["clock_starts"].equals(c["clock_starts"])
    d = run_single(sc, 1, seed=1).weekly
    assert not a["clock_starts"].equals(d["clock_starts"]), "replications must differ"


def test_capacity_change_leaves_referrals_identical():
    """Common random numbers: the same replication sees the same referrals whatever the capacity."""
    base = scaled_baseline(0.03, horizon_weeks=12)
    more = scaled_baseline(0.03, horizon_weeks=12, overrides=["sites.lnwh.theatres.sessions_by_weekday.sat=3",
                                                              "sites.lnwh.elective_beds=50"])
    a, b = run_single(base, 0).weekly, run_single(more, 0).weekly
    assert a["clock_starts"].equals(b["clock_starts"]) and a["referrals_diverted_ag"].equals(b["referrals_diverted_ag"])
    assert not a["theatre_sessions_planned"].equals(b["theatre_sessions_planned"])


def test_a_runs_first_weeks_do_not_depend_on_its_horizon():
    """Every stream is drawn in day order or jumps to its day (theatre cancellations), so a run cut short (the
    solver's and calibrate's evaluations, a backtest window) sees exactly the first weeks of the full run."""
    short = run_single(scaled_baseline(0.03, horizon_weeks=10), 0).weekly
    long = run_single(scaled_baseline(0.03, horizon_weeks=14), 0).weekly
    pd.testing.assert_frame_equal(short, long.iloc[:len(short)])


def test_bank_holidays_close_referrals_and_sessions():
    sc = scaled_baseline(0.03, horizon_weeks=14)   # 7 June 2021 + 12 weeks includes 30 August 2021
    w = run_single(sc, 0).weekly.set_index("week_start")
    normal, holiday = w.loc["2021-08-23"], w.loc["2021-08-30"]
    assert holiday["theatre_sessions_planned"] < normal["theatre_sessions_planned"]
    assert holiday["clock_starts"] < normal["clock_starts"]


def test_no_bed_loses_the_slot_and_counts_it():
    sc = scaled_baseline(0.05, horizon_weeks=6, overrides=[f"sites.{s}.elective_beds=0" for s in
                                                          ("imperial", "chelsea_westminster", "lnwh", "hillingdon")])
    w = run_single(sc, 0).weekly
    assert w["theatre_slots_lost_no_bed"].sum() > 0
    assert w["theatre_cases_inpatient"].sum() == 0, "no beds: no inpatient can be treated"
    assert w["theatre_cases_day_case"].sum() > 0, "day cases need no bed"


def test_local_processes_give_identical_results():
    """--jobs 2 and sequential give the same tables (each replication's streams depend only on seed and r)."""
    from sim.experiment.replications import run_replications
    sc = scaled_baseline(0.03, horizon_weeks=8)
    a = run_replications(sc, replications=2, jobs=1)
    b = run_replications(sc, replications=2, jobs=2)
    pd.testing.assert_frame_equal(a.weekly, b.weekly)
    pd.testing.assert_frame_equal(a.by_specialty, b.by_specialty)
    pd.testing.assert_frame_equal(a.by_site, b.by_site)


def test_auto_replications_stop_at_the_target_or_the_cap():
    from helpers import simple_raw
    from sim.experiment.replications import run_replications
    from sim.scenario.validate import validate

    def scenario(**run):
        # the fluid-clearance regime (reference formula 6, ~120 weeks), whose clearance varies run to run
        raw = simple_raw(referrals_per_week=50.0, sessions_per_day=10, horizon_weeks=190,
                         start_bands=[{"from_weeks": 52, "to_weeks": 60, "count": 5000, "admitted_share": 1.0}])
        raw["run"] = {"seed": 1, "replications": "auto", **run}
        return validate(raw, "auto")
    loose = run_replications(scenario(min_replications=3, target_half_width_weeks=1000))
    assert loose.replications == 3, f"a target any spread meets stops at the minimum, ran {loose.replications}"
    tight = run_replications(scenario(min_replications=2, max_replications=4, target_half_width_weeks=1e-9))
    assert tight.replications == 4, f"an unreachable target stops at the cap, ran {tight.replications}"
    in_pairs = run_replications(scenario(min_replications=3, target_half_width_weeks=1000), jobs=2)
    assert in_pairs.replications == 3, "batches of two must still stop at the smallest N that meets the rule"
    pd.testing.assert_frame_equal(in_pairs.weekly, loose.weekly)
    never = scaled_baseline(0.03, horizon_weeks=6, overrides=["run.replications=auto", "run.min_replications=2",
                                                              "run.max_replications=3",
                                                              "run.target_half_width_weeks=1000"])
    res = run_replications(never)
    assert res.replications == 3 and res.clearance_half_width_weeks == float("inf"), \
        "while replications do not clear, the mean is unknown: run to the cap, report no precision"
