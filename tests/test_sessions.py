"""The session-filling rule (sim.core.sessions), and the theatres and the RTT calibration booking by it alike."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import simple_raw
from sim.core.rng import Streams
from sim.core.sessions import SessionBooking, cases_per_session, mean_cases_per_session
from sim.model.activity import WeeklyActivity
from sim.model.patients import WAITING_ADMITTED, PatientTable
from sim.model.staff import StaffRoster
from sim.model.state import SharedState
from sim.model.theatres import SessionCancellations, TheatreSuite
from sim.model.waiting_list import BookingQueues, OutpatientQueues, RttLedger
from sim.scenario.calibration import booked_cases_per_session, packing_stream
from sim.scenario.validate import validate

pytestmark = pytest.mark.unit


def test_the_first_case_is_always_booked_even_if_it_overruns():
    session = SessionBooking(bookable_minutes=100.0, turnaround_minutes=10.0)
    assert session.books(150.0)
    assert not session.books(1.0)
    assert (session.cases, session.minutes_used) == (1, 160.0)


def test_cases_are_booked_while_their_minutes_fit_each_costing_a_turnaround():
    session = SessionBooking(bookable_minutes=100.0, turnaround_minutes=10.0)
    assert session.books(40.0)            # used 50
    assert session.books(50.0)            # 50 + 50 = 100 fits exactly; used 110
    assert not session.books(0.5)         # nothing fits any more
    assert (session.cases, session.minutes_used) == (2, 110.0)
    session.open()
    assert (session.cases, session.minutes_used) == (0, 0.0)
    assert session.books(100.0)


def test_sessions_fill_one_after_another_and_the_cut_short_last_one_is_left_out():
    minutes = [60.0, 30.0, 50.0, 120.0, 10.0, 10.0, 95.0, 20.0]
    # bookable 100, turnaround 5: [60, 30] (65 + 30 fits, 100 + 50 does not), [50] (55 + 120 no), [120] (a first
    # case overruns), [10, 10] (15 + 10 fits, 30 + 95 no), [95] (100 + 20 no), then [20] is cut short by the end
    assert cases_per_session(minutes, 100.0, 5.0) == [2, 1, 1, 2, 1]
    assert mean_cases_per_session(minutes, 100.0, 5.0) == pytest.approx(7 / 5)
    assert mean_cases_per_session([10.0], 100.0, 5.0) is None


def a_suite_with_the_list(case_minutes: np.ndarray, productivity_multiplier: float) -> TheatreSuite:
    """One theatre suite (bookable 204 of 240 minutes, 15-minute turnarounds) whose specialty's list holds day cases
    of these minutes, in this order, none cancelled on the day."""
    raw = simple_raw(horizon_weeks=1)
    raw["sites"]["site_a"]["theatres"].update(turnaround_minutes=15.0, utilisation_cap=0.85)
    scenario = validate(raw, "one-suite")
    streams = Streams(1, 0)
    n = len(case_minutes)
    patients = PatientTable()
    zeros = np.zeros(n, dtype=np.uint8)
    patients.append(WAITING_ADMITTED, clock_start_day=np.arange(-n, 0, dtype=np.int32), specialty=zeros,
                    priority=zeros, borough=zeros, referred_site=zeros, needs_operation=zeros + 1, inpatient=zeros,
                    virtual=zeros, dna_remaining=zeros, cancellations_remaining=zeros, hub_eligible=zeros,
                    theatre_minutes=case_minutes.astype(np.float32), los_days=np.zeros(n, dtype=np.float32))
    week = WeeklyActivity()
    queues = BookingQueues(1, 1, "longest_wait_first", patients, WAITING_ADMITTED)
    queues.push_batch(0, 0, np.arange(n), 0)
    state = SharedState(patients=patients, ledger=RttLedger(patients, n, 7, 1),
                        outpatient_queues=OutpatientQueues(1, 1, "longest_wait_first", patients),
                        admitted_queues=queues, week=week, pool_by_site=False)
    staff = StaffRoster(scenario, streams, np.zeros(7), week)
    site = scenario.sites["site_a"]
    return TheatreSuite(scenario, 0, streams, set(), site.theatres, site.elective_beds, "site_a", state, staff,
                        productivity_multiplier=productivity_multiplier)


@pytest.mark.parametrize("productivity", [1.0, 1.25])
def test_the_theatres_and_the_calibration_book_the_same_cases_from_one_stream(productivity):
    # minutes as the model keeps them
    stream = packing_stream(0.3, (60.0, 0.35), (110.0, 0.30))[:3000].astype(np.float32)
    suite = a_suite_with_the_list(stream, productivity)
    booked_by_theatres = []
    treated: list[int] = []
    while len(treated) < len(stream):
        before = len(treated)
        suite.run_session(0, 0.5, treated)
        booked_by_theatres.append(len(treated) - before)
    assert treated == list(range(len(stream))), "the list gave its patients out of order"
    by_calibration_rule = cases_per_session((stream.astype(float) / productivity).tolist(),
                                            suite.bookable_minutes, suite.turnaround_minutes)
    # the theatres' last session ran out of cases, which the calibration leaves out
    assert booked_by_theatres[:-1] == by_calibration_rule
    assert booked_by_theatres[-1] <= max(by_calibration_rule)


def test_the_calibration_sizes_sessions_by_the_core_rule_over_its_fixed_stream():
    args = (0.3, (60.0, 0.35), (110.0, 0.30))
    stream = packing_stream(*args, 1.25)
    assert booked_cases_per_session(*args, 204.0, 15.0, 1.25) == mean_cases_per_session(stream.tolist(), 204.0, 15.0)


def test_a_sessions_cancellation_draw_depends_on_its_day_and_place_only():
    """Common random numbers for capacity: more sessions on one day, or days skipped, move no other session's draw."""
    def draws(sessions_by_day: dict[int, int]) -> dict[int, list[bool]]:
        cancellations = SessionCancellations(Streams(7, 0).for_unit("session_cancellation", "site_a"), 0.3)
        return {day: cancellations.on(day, n) for day, n in sorted(sessions_by_day.items())}

    plain = draws({0: 5, 1: 5, 2: 5, 9: 5})
    more = draws({0: 8, 1: 5, 2: 5, 9: 5})          # three more sessions on day 0
    fewer_days = draws({2: 5, 9: 5})                 # days 0 and 1 without sessions (a hub not yet open)
    assert more[0][:5] == plain[0] and more[1] == plain[1] and more[9] == plain[9]
    assert fewer_days[2] == plain[2] and fewer_days[9] == plain[9]
    every = plain[0] + plain[1] + plain[2] + plain[9]
    assert any(every) and not all(every), "a 0.3 rate gives some of each"
    with pytest.raises(ValueError, match="out of order"):
        c = SessionCancellations(Streams(7, 0).for_unit("session_cancellation", "site_a"), 0.3)
        c.on(3, 1)
        c.on(2, 1)
