"""Long waiters booked in turn (sim.model.long_waits, scenario section `long_wait_booking`).

From each step's date, routine patients (P3, P4) on the admitted list who have waited more than the step's weeks are
booked ahead of the other routine patients (longest wait first among themselves), still after P1 and P2. The
granularity is the week: who counts as a long waiter is decided at each pass (every Monday from the first step, and
each step's date), so the checks below judge every day's treatments by the cut-off of that day's last pass.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import ROOT, run_services, simple_raw
from sim.cli.main import main
from sim.core import compiled
from sim.core.compiled import array_list
from sim.core.heaps import pop_from
from sim.model.long_waits import rank_long_waiters
from sim.model.patients import NOT_ON_LIST, STOPPED_ADMITTED, WAITING_ADMITTED, WAITING_OUTPATIENT
from sim.model.waiting_list import (
    ID_MASK,
    LONG_WAIT_RANK,
    PRIORITY_RANKS,
    RANK_SHIFT,
    BookingQueues,
    as_long_waiter,
    pack_keys,
)
from test_booking_list import booking_order, waiting_patients
from test_verification import assert_stock_and_flow

START = dt.date(2021, 6, 7)                     # simple_raw's start date, a Monday
# A mid-week first step (a Wednesday in week 8: its own pass, then Mondays) and a tighter one in week 17.
STEPS = [{"from_date": dt.date(2021, 8, 4), "weeks_waited": 78},
         {"from_date": dt.date(2021, 10, 4), "weeks_waited": 52}]
HORIZON_WEEKS = 36


def backlog_raw(steps: list[dict] | None = None, policy: str = "priority_then_longest_wait",
                horizon_weeks: int = HORIZON_WEEKS) -> dict:
    """The simple model (one list, one patient a session) with a two-year admitted backlog and capacity just below
    demand: 3,000 on the list at the start, 0 to 104 weeks; 100 referrals a week, all needing an operation; 98
    treated a week. P1 and P2 (a fifth) are always treated within days once the start list's are done (week 7);
    under priority then longest wait every routine P3 is treated before any P4, so old P4s wait while new P3s are
    treated -- what the rule changes."""
    raw = simple_raw(referrals_per_week=100.0, sessions_per_day=14, horizon_weeks=horizon_weeks, policy=policy,
                     priority_mix={"P1": 0.05, "P2": 0.15, "P3": 0.30, "P4": 0.50},
                     start_bands=[{"from_weeks": 0, "to_weeks": 104, "count": 3000, "admitted_share": 1.0}])
    if steps is not None:
        raw["long_wait_booking"] = {"steps": steps}
    return raw


def cutoff_by_day(steps: list[dict], horizon_days: int) -> np.ndarray:
    """Each day's cut-off clock-start day (the patients booked ahead that day started their clocks on or before it),
    worked out here from the rule as stated, not from the model's code: passes on every Monday from the first step's
    date and on each step's date, each with the step then in force; before the first pass, no cut-off (a day far
    before any clock start)."""
    step_days = [((s["from_date"] - START).days, s["weeks_waited"]) for s in steps]
    cutoff = np.full(horizon_days, -10**9, dtype=np.int64)
    current = None
    for day in range(horizon_days):
        is_pass = day >= step_days[0][0] and (day % 7 == 0 or any(day == d for d, _ in step_days))
        if is_pass:
            weeks = [w for d, w in step_days if d <= day][-1]
            current = day - 7 * weeks - 1
        if current is not None:
            cutoff[day] = current
    return cutoff


def treatment_order_breaches(services, cutoff: np.ndarray) -> dict[str, int]:
    """Days on which the booking order was broken, by rule, judged at the end of each day (the simple model's
    patients join the admitted list on their clock-start day, before the day's sessions, and leave only by
    treatment):
    - `long_wait`: a routine patient not past the cut-off was treated while a routine one past it still waited;
    - `in_turn`: a routine long waiter was treated while a longer-waiting routine long waiter still waited;
    - `urgent_first`: a routine patient was treated while a P1 or P2 patient still waited."""
    p = services.state.patients
    status, stop, start = p.column("status"), p.column("stop_day"), p.column("clock_start_day")
    priority = p.column("priority")
    assert not (status == WAITING_OUTPATIENT).any(), "unlimited clinics: nobody waits for a first appointment"
    treated = status == STOPPED_ADMITTED
    routine = priority >= 2
    breaches = {"long_wait": 0, "in_turn": 0, "urgent_first": 0}
    for day in np.unique(stop[treated]):
        day = int(day)
        today = treated & (stop == day)
        on_list_tonight = (status != NOT_ON_LIST) & (start <= day) & (~treated | (stop > day))
        long_waiter = routine & (start <= cutoff[day])
        if (today & routine & ~long_waiter).any() and (on_list_tonight & long_waiter).any():
            breaches["long_wait"] += 1
        waiting_long = on_list_tonight & long_waiter
        if (today & long_waiter).any() and waiting_long.any() and (
                start[waiting_long].min() < start[today & long_waiter].max()):
            breaches["in_turn"] += 1
        if (today & routine).any() and (on_list_tonight & ~routine).any():
            breaches["urgent_first"] += 1
    return breaches


@pytest.mark.behaviour
def test_after_the_date_no_routine_long_waiter_is_left_while_a_shorter_waiter_is_treated():
    horizon_days = 7 * HORIZON_WEEKS
    cutoff = cutoff_by_day(STEPS, horizon_days)
    with_rule, weekly = run_services(backlog_raw(STEPS))
    without, _ = run_services(backlog_raw())
    breaches = treatment_order_breaches(with_rule, cutoff)
    control = treatment_order_breaches(without, cutoff)
    # the test can fail: without the rule old P4s wait while new P3s are treated, on most days of the period
    assert control["long_wait"] > 50, control
    assert breaches == {"long_wait": 0, "in_turn": 0, "urgent_first": 0}, breaches
    assert control["urgent_first"] == 0, "P1 and P2 go first without the rule too"
    assert with_rule.long_waits is not None and with_rule.long_waits.moved_total > 500
    assert_stock_and_flow(weekly.assign(replication=0), initial_list=3000)
    # every admitted heap is still a heap (each key no smaller than its parent's)
    queues = with_rule.state.admitted_queues
    for h in range(len(queues.sizes)):
        keys = queues.keys(h)
        assert (keys[1:] >= keys[(np.arange(1, len(keys)) - 1) // 2]).all(), f"heap {h} is no longer a heap"


@pytest.mark.behaviour
def test_the_rule_treats_the_oldest_routine_waiters_sooner_and_urgent_ones_as_soon():
    """What a planner sees: the routine tail is shorter with the rule, P1 and P2 wait no longer."""
    _, with_rule = run_services(backlog_raw(STEPS))
    _, without = run_services(backlog_raw())
    last = with_rule.iloc[-1]
    assert last["waiting_over_78w"] == 0 and without.iloc[-1]["waiting_over_78w"] > 100, (last["waiting_over_78w"],
                                                                           without.iloc[-1]["waiting_over_78w"])
    assert last["waiting_over_52w"] < without.iloc[-1]["waiting_over_52w"]
    # the same patients are treated in the same numbers (one a session), only in another order
    assert with_rule["clock_stops_admitted"].sum() == without["clock_stops_admitted"].sum()


def weekly_of(raw: dict) -> pd.DataFrame:
    return run_services(raw)[1]


@pytest.mark.verification
@pytest.mark.parametrize("steps", [
    [{"from_date": START + dt.timedelta(weeks=HORIZON_WEEKS), "weeks_waited": 52}],    # on the day after the run
    [{"from_date": dt.date(2021, 1, 4), "weeks_waited": 1040}],   # in force from the start; nobody waits 20 years
], ids=["date-after-the-horizon", "in-force-selecting-nobody"])
def test_a_rule_that_moves_nobody_gives_the_weekly_table_without_the_section(steps: list[dict]):
    """The section absent is the model as it was (the golden snapshot checks the shipped scenarios against the
    outputs from before the section existed); a rule not reached, or one that selects nobody while its passes run
    every Monday, gives exactly the same table."""
    without = weekly_of(backlog_raw())
    services, with_section = run_services(backlog_raw(steps))
    assert services.long_waits is not None and services.long_waits.moved_total == 0
    pd.testing.assert_frame_equal(with_section, without, check_exact=True)


@pytest.mark.unit
def test_the_compiled_pass_ranks_routine_long_waiters_between_p2_and_p3_and_keeps_every_heap_a_heap():
    rng = np.random.default_rng(11)
    n = 5000
    ids = rng.permutation(n).astype(np.int64)
    priority = rng.integers(0, 4, n)
    clock_start = rng.integers(-900, 200, n)
    keys = pack_keys(PRIORITY_RANKS[priority], clock_start, ids)
    heap_of = rng.integers(0, 3, n)
    heaps = array_list([np.sort(keys[heap_of == h]) for h in range(3)])   # a sorted array is a heap
    sizes = np.array([np.count_nonzero(heap_of == h) for h in range(3)], dtype=np.int64)
    cutoff = -364
    moved = rank_long_waiters(heaps, sizes, cutoff)
    long_waiter = (priority >= 2) & (clock_start <= cutoff)
    assert moved == np.count_nonzero(long_waiter)
    for h in range(3):
        mine = heap_of == h
        taken = [int(pop_from(heaps, sizes, h)) & ID_MASK for _ in range(int(sizes[h]))]
        # expected: P1, P2, then routine long waiters by clock start (P3 and P4 together), then P3, then P4
        group = np.where(long_waiter, 2, np.where(priority < 2, priority, priority + 1))
        order = np.lexsort((ids[mine], clock_start[mine], group[mine]))
        assert taken == ids[mine][order].tolist()


@pytest.mark.unit
def test_a_key_is_ranked_ahead_only_if_routine_and_on_or_before_the_cutoff():
    def key(priority: int, start: int) -> int:
        return int(pack_keys(np.array([PRIORITY_RANKS[priority]]), np.array([start]), np.array([7]))[0])
    for priority in (0, 1):
        assert as_long_waiter(key(priority, -500), -10) == key(priority, -500)     # urgent: never moved
    for priority in (2, 3):
        moved = as_long_waiter(key(priority, -10), -10)
        assert moved >> RANK_SHIFT == LONG_WAIT_RANK and moved & ID_MASK == 7
        assert key(1, -10) < moved < key(2, -500)                                   # after P2, before any P3
        assert as_long_waiter(key(priority, -9), -10) == key(priority, -9)          # a day short: not moved


@pytest.mark.unit
def test_patients_joining_or_coming_back_between_passes_are_ranked_by_the_cutoff_in_force():
    """A decision to treat made after the Monday pass for a patient who waited a year at outpatients, and a patient
    back from a deferral, are booked ahead at once (not a week later), by the same cut-off as the pass."""
    # ids: 0 P3 new; 1 P4 waited 60 weeks; 2 P2 new; 3 P3 waited 80 weeks (back from a deferral); 4 P4 new
    table = waiting_patients(clock_start=[-10, -420, -5, -560, -3], priority=[2, 3, 1, 2, 3])
    queues = BookingQueues(1, 1, "priority_then_longest_wait", table, WAITING_ADMITTED)
    queues.push_batch(0, 0, np.array([0, 4]), 0)
    queues.long_wait_cutoff_day = -7 * 52 - 1            # Monday's pass: more than 52 weeks
    queues.push_batch(0, 0, np.array([1, 2]), 2)          # decided to treat on Wednesday
    returner = int(pack_keys(PRIORITY_RANKS[np.array([2])], np.array([-560]), np.array([3]))[0])
    queues.push_key(queues.heap_index(0, 0, 0), returner)  # the key they left with, made before any rule
    assert booking_order(queues) == [2, 3, 1, 0, 4]


def _write(tmp_path: Path, raw: dict, **changes) -> Path:
    raw = {**raw, **changes}
    path = tmp_path / "long_waits.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.unit
@pytest.mark.parametrize("changes, names, expected", [
    ({"booking_policy": "fifo"}, "long_wait_booking:",
     "applies with booking_policy priority_then_longest_wait only (got 'fifo')"),
    ({"booking_policy": "longest_wait_first"}, "long_wait_booking:", "(got 'longest_wait_first')"),
    ({"long_wait_booking": {"steps": [{"from_date": dt.date(2022, 2, 8), "weeks_waited": 0}]}},
     "long_wait_booking.steps.0.weeks_waited:", "greater than or equal to 1"),
    ({"long_wait_booking": {"steps": [{"from_date": dt.date(2022, 2, 8), "weeks_waited": -13}]}},
     "long_wait_booking.steps.0.weeks_waited:", "greater than or equal to 1"),
    ({"long_wait_booking": {"steps": [{"from_date": dt.date(2022, 7, 1), "weeks_waited": 65},
                                      {"from_date": dt.date(2022, 2, 8), "weeks_waited": 52}]}},
     "long_wait_booking.steps:", "steps must be in date order"),
    ({"long_wait_booking": {"steps": [{"from_date": dt.date(2022, 2, 8), "weeks_waited": 65},
                                      {"from_date": dt.date(2022, 7, 1), "weeks_waited": 78}]}},
     "long_wait_booking.steps:", "steps may only tighten"),
    ({"long_wait_booking": {"steps": []}}, "long_wait_booking.steps:", "at least 1 item"),
], ids=["fifo", "longest-wait-first", "weeks-zero", "weeks-negative", "dates-out-of-order", "weeks-loosening",
        "no-steps"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_bad_long_wait_section_exits_2_with_one_line_naming_the_key(
        command: str, changes: dict, names: str, expected: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    raw = backlog_raw(STEPS, horizon_weeks=4)
    path = _write(tmp_path, raw, **changes)
    args = [command, str(path)] + (["--results-root", str(tmp_path / "results"), "--quiet"] if command == "run"
                                   else [])
    code = main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert len(lines) == 1, lines
    assert names in lines[0] and expected in lines[0], lines[0]
    assert not (tmp_path / "results").exists(), "nothing may be written for a refused scenario"


@pytest.mark.unit
def test_a_good_long_wait_section_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_write(tmp_path, backlog_raw(STEPS, horizon_weeks=4)))]) == 0, capsys.readouterr()


PURE_RUN = """
import sys
sys.path.insert(0, {tests!r})
from sim.core import compiled
assert not compiled.COMPILED
from test_long_waits import STEPS, backlog_raw, weekly_of
weekly_of(backlog_raw(STEPS)).to_pickle({out!r})
"""


@pytest.mark.unit
def test_pure_python_path_gives_the_compiled_paths_outputs_exactly_with_the_rule(tmp_path: Path) -> None:
    """As tests/test_compiled.py does for the other loops: the pass and the key ranking, compiled and plain."""
    assert compiled.COMPILED
    compiled_weekly = weekly_of(backlog_raw(STEPS))
    out = tmp_path / "pure_weekly.pkl"
    env = {**os.environ, compiled.PURE_PYTHON_VARIABLE: "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PURE_RUN.format(tests=str(ROOT / "tests"), out=str(out))], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_pickle(out), compiled_weekly, check_exact=True)
