"""Ctrl-C and SIGTERM around forking worker processes: held back while a worker is forked, let through once the
worker has set its own handlers.

Why: a fork copies the parent's signal handlers, and the command line's SIGTERM handler (sim.cli.main) raises an
exception so that SIGTERM takes Ctrl-C's path. A signal that reaches a new worker before the worker sets its own
handlers (the parent stopping a worker it has just started, or Ctrl-C reaching the whole process group) raises in
code that is the parent's: Python's after-fork clean-up, which is left half done, or the caller's own code once
os.fork() returns, so that the copy goes on as if it were the parent. Measured: a test run hung on a forked copy
of a pytest worker waiting for its next test, and a report's workers printed tracebacks.

Every place that forks workers (sim.experiment.executors, sim.outputs.forking, the report's chart drawing) forks
inside `interrupts_held()` and starts each worker with `worker_signals()`.
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back in this thread (they wait, pending) while processes are forked in the block;
    the previous signal mask after. Threads started in the block (a pool's own, which fork any replacement worker)
    keep them held for good, so they reach the main thread only, where Python runs its handlers anyway."""
    if not hasattr(signal, "pthread_sigmask"):      # not POSIX: nothing is forked (spawned workers start clean)
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_signals() -> None:
    """First thing in a forked worker: ignore Ctrl-C (its parent stops it), die at SIGTERM without running Python
    code (the default action, not the parent's handler), then let through what was held while it was forked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)
