"""sim.core.ahead.computed_ahead: the same results in the same order as computing each in turn, the next one under
way while the caller works, errors raised where the caller asks, and no thread left behind when closed early."""
from __future__ import annotations

import threading

import pytest

from sim.core.ahead import computed_ahead

pytestmark = pytest.mark.unit


def _ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "computed-ahead"]


def test_results_are_each_item_computed_once_in_order() -> None:
    calls: list[int] = []

    def compute(item: int) -> int:
        calls.append(item)              # one call at a time: a shared list sees them in order
        return item * item

    assert list(computed_ahead(compute, range(7))) == [i * i for i in range(7)]
    assert calls == list(range(7))
    assert list(computed_ahead(compute, [])) == []


def test_the_next_item_is_computed_while_the_caller_works_on_the_current_one() -> None:
    started = {i: threading.Event() for i in range(3)}

    def compute(item: int) -> int:
        started[item].set()
        return item

    results = computed_ahead(compute, range(3))
    assert next(results) == 0
    # the caller has not asked for item 1, yet it is being computed
    assert started[1].wait(timeout=10)
    assert not started[2].is_set()      # one ahead, not more
    assert list(results) == [1, 2]


def test_an_error_is_raised_when_the_caller_asks_for_that_item() -> None:
    def compute(item: int) -> int:
        if item == 2:
            raise ValueError("item 2 cannot be drawn")
        return item

    results = computed_ahead(compute, range(5))
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="item 2 cannot be drawn"):
        next(results)


def test_closing_early_waits_for_the_computation_under_way_and_starts_no_other() -> None:
    release = threading.Event()
    computed: list[int] = []

    def compute(item: int) -> int:
        if item == 1:
            release.wait(timeout=10)    # still running when the caller closes
        computed.append(item)
        return item

    results = computed_ahead(compute, range(5))
    assert next(results) == 0
    threading.Timer(0.05, release.set).start()
    results.close()                     # returns only once item 1's computation has finished
    assert computed == [0, 1]
    assert _ahead_threads() == []
