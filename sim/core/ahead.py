"""Work done one step ahead in a background thread, for inputs that do not depend on what the model does.

A replication runs on one core, yet some of its work is known in advance: a block of referrals is drawn from
streams no other service touches, from rates fixed before the run (sim.model.referrals.ReferralSource.draw_days).
`computed_ahead` computes the next block in a thread while the model works through the current one. The drawing
is mostly compiled code and numpy array loops, which let go of the interpreter's lock, so it runs on the second
core while the day loop runs on the first.

The results are the same values in the same order as computing each in turn: each is computed by one call, one at
a time, and handed over only when finished; only the caller's work overlaps with it. The caller must give the
function state that nothing else uses while the computation runs (its own random streams, read-only parameters).
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Computation(Generic[Result]):
    """One call running in a thread of its own; `result` waits for it and returns its value or raises its error."""

    def __init__(self, compute: Callable[[], Result]) -> None:
        self._compute = compute
        self._value: Result | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="computed-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._compute()
        except BaseException as exc:    # handed to the caller, which raises it as if it had made the call
            self._error = exc

    def result(self) -> Result:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def wait(self) -> None:
        self._thread.join()


def computed_ahead(compute: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """`compute(item)` for each item in order, each next item's computed in a background thread while the caller
    works with the one before. Closing the iterator early waits for the computation under way (so no thread is
    left using the caller's state) and starts no other."""
    remaining = iter(items)
    try:
        first = next(remaining)
    except StopIteration:
        return
    running = _Computation(functools.partial(compute, first))
    try:
        for item in remaining:
            done = running.result()
            running = _Computation(functools.partial(compute, item))
            yield done
        done = running.result()
        yield done
    finally:
        running.wait()

