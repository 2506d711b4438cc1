"""The vaccination programme's compiled allocation gives numpy's answers to the last bit: its sum is numpy's pairwise
sum, and the largest-remainder splits, the grouped service and the doses by centre match the numpy code they
replaced (kept here as the reference), on random inputs with ties, empty groups and zero weights; and its draws,
one scalar draw at a time from the numpy Generator, are numpy's array draws and leave the Generator where those did."""
from __future__ import annotations

import numpy as np
import pytest

from sim.core.numpy_sums import numpy_sum
from sim.model.vaccination import (
    _allocate_grouped,
    _apportion,
    _binomial_each,
    _book_day,
    _doses_by_centre,
    _serve_bookings,
)

pytestmark = pytest.mark.unit


def reference_apportion(total: int, weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    raw = weights * (total / weights.sum())
    out = np.floor(raw).astype(np.int64)
    short = total - int(out.sum())
    if short:
        out[np.argsort(-(raw - out), kind="stable")[:short]] += 1
    return out


def reference_allocate_grouped(capacity: np.ndarray, queued: np.ndarray, group: np.ndarray) -> np.ndarray:
    total = np.bincount(group, weights=queued, minlength=len(capacity)).astype(np.int64)
    cap = np.minimum(capacity, total)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(total[group] > 0, queued * (cap[group] / np.maximum(total[group], 1)), 0.0)
    served = np.floor(raw + 1e-9).astype(np.int64)
    short = cap - np.bincount(group, weights=served, minlength=len(capacity)).astype(np.int64)
    if short.any():
        frac = raw - served
        order = np.lexsort((-frac, group))
        sorted_group = group[order]
        first_of_group = np.searchsorted(sorted_group, sorted_group, side="left")
        rank = np.arange(len(order)) - first_of_group
        served[order[rank < short[sorted_group]]] += 1
    return np.minimum(served, queued)


@pytest.mark.parametrize("length", [*range(0, 140), 255, 256, 257, 1000, 4099])
def test_sum_is_numpys_to_the_last_bit(length: int) -> None:
    rng = np.random.default_rng(length)
    for _ in range(4):
        values = rng.random(length) * 10.0 ** rng.integers(-4, 7, length)
        assert numpy_sum(values) == values.sum()


def test_apportion_matches_the_numpy_reference_with_ties_and_zeros() -> None:
    rng = np.random.default_rng(1)
    for trial in range(400):
        n = int(rng.integers(1, 40))
        weights = rng.random(n) * rng.choice([1.0, 1e-3, 1e6])
        if trial % 3 == 0:
            weights = np.round(weights * 3) / 3            # ties
        if trial % 5 == 0:
            weights[rng.random(n) < 0.5] = 0.0
        total = int(rng.integers(-2, 5000))
        assert np.array_equal(_apportion(total, weights), reference_apportion(total, weights))
    # equal weights: the earlier ones get the remainder
    assert _apportion(5, np.ones(8)).tolist() == [1, 1, 1, 1, 1, 0, 0, 0]


def test_grouped_service_matches_the_numpy_reference() -> None:
    rng = np.random.default_rng(2)
    for _ in range(400):
        n_groups = int(rng.integers(1, 10))
        n = int(rng.integers(1, 50))
        group = rng.integers(0, n_groups, n)
        queued = rng.integers(0, 50, n) * (rng.random(n) < 0.8)
        capacity = rng.integers(0, 300, n_groups)
        assert np.array_equal(_allocate_grouped(capacity, queued, group),
                              reference_allocate_grouped(capacity, queued, group))


def test_a_days_service_and_doses_by_centre_match_the_numpy_reference() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n_boroughs, n_cohorts, n_centres = int(rng.integers(1, 9)), int(rng.integers(1, 40)), int(rng.integers(1, 30))
        cohort_borough = np.sort(rng.integers(0, n_boroughs, n_cohorts))
        is_local = rng.random(n_centres) < 0.7
        centre_borough = np.where(is_local, rng.integers(0, n_boroughs, n_centres), 0)
        caps = rng.integers(0, 2000, n_centres)
        queue_first, queue_second = rng.integers(0, 3000, n_cohorts), rng.integers(0, 1000, n_cohorts)
        # the numpy reference, as the programme computed it before
        local_cap = np.bincount(centre_borough, weights=caps * is_local, minlength=n_boroughs).astype(np.int64)
        booked = np.bincount(cohort_borough, weights=queue_first + queue_second, minlength=n_boroughs)
        unmet = np.maximum(booked - local_cap, 0)
        shared_total = int(caps[~is_local].sum())
        shared_cap = np.minimum(reference_apportion(shared_total, unmet), unmet.astype(np.int64))
        capacity = local_cap + shared_cap
        served2 = reference_allocate_grouped(capacity, queue_second, cohort_borough)
        left = capacity - np.bincount(cohort_borough, weights=served2, minlength=n_boroughs).astype(np.int64)
        served1 = reference_allocate_grouped(left, queue_first, cohort_borough)

        got_first, got_second = queue_first.copy(), queue_second.copy()
        got = _serve_bookings(caps, is_local, centre_borough, cohort_borough, got_first, got_second, n_boroughs)
        assert np.array_equal(got[0], local_cap) and np.array_equal(got[1], shared_cap) and got[2] == shared_total
        assert np.array_equal(got[3], served2) and np.array_equal(got[4], served1)
        assert np.array_equal(got_first, queue_first - served1) and np.array_equal(got_second, queue_second - served2)

        attended = rng.binomial(served1 + served2, 0.9)
        doses = int(attended.sum())
        done = np.bincount(cohort_borough, weights=attended, minlength=n_boroughs)
        borough_cap = np.maximum(local_cap + shared_cap, 1)
        local_part = np.where(is_local, caps / borough_cap[centre_borough], 0.0) * done[centre_borough]
        shared_doses = float((done * shared_cap / borough_cap).sum())
        booked_here = local_part + np.where(~is_local, shared_doses * caps / max(shared_total, 1), 0.0)
        expected = reference_apportion(doses, np.maximum(booked_here, 0))
        by_centre = _doses_by_centre(doses, attended, cohort_borough, caps, is_local, centre_borough, local_cap,
                                     shared_cap, shared_total)
        assert np.array_equal(by_centre, expected)
        assert by_centre.sum() == doses


def test_draws_one_at_a_time_are_numpys_array_draws_and_leave_the_generator_where_they_did() -> None:
    """Trial counts of none, a few (inversion) and thousands (BTPE); chances of 0, 1 and either side of a half."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        trials = rng.integers(0, 5000, n) * (rng.random(n) < 0.8) // rng.choice([1, 100], n)
        chance = rng.choice([0.0, 1.0, 0.008, 0.3, 0.5, 0.7, 0.95], n)
        ours, numpys = np.random.default_rng(int(n)), np.random.default_rng(int(n))
        assert np.array_equal(_binomial_each(ours, trials, chance), numpys.binomial(trials, chance))
        assert ours.random() == numpys.random()


def test_a_days_bookings_are_the_numpy_codes() -> None:
    rng = np.random.default_rng(5)
    for day in range(40):
        n = int(rng.integers(1, 40))
        willing_first, first_done = rng.integers(0, 20_000, n), rng.integers(0, 20_000, n)
        queue_first, queue_second, due_second = (rng.integers(0, 3000, n) for _ in range(3))
        want_second = queue_second.copy()
        second_due, eligible_day = rng.integers(0, 500, (n, 50)), rng.integers(0, 60, n)
        rate = float(rng.choice([0.008, 0.1, 1.0]))
        # the numpy reference, as the programme booked before
        numpys = np.random.default_rng(day)
        not_booked = np.maximum(willing_first - first_done - queue_first, 0) * (eligible_day <= day)
        want_first = queue_first + numpys.binomial(not_booked, rate)
        want_due = due_second + second_due[:, day]
        booked_second = numpys.binomial(want_due, rate)
        want_second += booked_second
        ours = np.random.default_rng(day)
        _book_day(ours, day, rate, eligible_day, willing_first, first_done, queue_first, second_due, due_second,
                  queue_second)
        assert np.array_equal(queue_first, want_first) and np.array_equal(due_second, want_due - booked_second)
        assert np.array_equal(queue_second, want_second)
        assert ours.random() == numpys.random()
