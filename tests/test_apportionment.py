"""Whole sessions split by shares (sim.core.apportionment): exact totals, and never fewer for more."""
from __future__ import annotations

import pytest

from sim.core.apportionment import apportion

pytestmark = pytest.mark.unit


def test_the_counts_add_up_and_follow_the_shares():
    assert apportion(10, [0.5, 0.3, 0.2]) == [5, 3, 2]
    assert sum(apportion(7, [0.45, 0.35, 0.2])) == 7
    assert apportion(0, [0.5, 0.5]) == [0, 0]


def test_ties_go_to_the_first():
    assert apportion(5, [0.2] * 5) == [1, 1, 1, 1, 1]
    assert apportion(3, [0.5, 0.5]) == [2, 1]


def test_adding_a_session_never_takes_one_away():
    shares = [0.41, 0.33, 0.17, 0.09]
    previous = apportion(0, shares)
    for total in range(1, 60):
        counts = apportion(total, shares)
        assert all(now >= before for now, before in zip(counts, previous, strict=True)), total
        previous = counts
