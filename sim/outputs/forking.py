"""Output work done in a process forked from this one, while this one goes on.

A forked process starts with a copy of this one: the imported modules and the data, at the cost of a few
milliseconds, where a fresh interpreter would import pandas and matplotlib again (a second or more). The report
forks to read the run folder while it imports matplotlib (`forked`), to write the workbook, and to draw its charts
on every core (sim.outputs.report.figures.drawing); a run writes its largest table that way while it writes the
others (sim.outputs.destination).

Forking is used only where it is safe: on Linux, from a process with no other thread running (a fork copies only
the calling thread, so another thread's lock could be copied held; the web app reports from a background
thread), and whose standard output and error can be flushed (multiprocessing flushes them before it forks, and
raises if one is a closed pipe). Elsewhere the same work is done in this process, one step after another.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from sim.core.fork_signals import interrupts_held, worker_signals

T = TypeVar("T")


def can_fork() -> bool:
    """Whether this process may fork workers (module docstring), its standard streams flushed as multiprocessing
    flushes them before it forks."""
    return sys.platform.startswith("linux") and threading.active_count() == 1 and _flushed_std_streams()


def _flushed_std_streams() -> bool:
    """Flush standard output and error, as multiprocessing does before it forks; False if one cannot be (a closed
    pipe: `run ... | head -1`), where multiprocessing would raise, so the work is done in this process instead."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):     # none, or closed: multiprocessing passes these over too
            pass
        except OSError:
            return False
    return True


def _answer(sending: Connection, work: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> None:
    worker_signals()
    try:
        answer: tuple[bool, Any] = (True, work(*args, **kwargs))
    except Exception as exc:            # the caller raises it as if the work had been done in its process
        answer = (False, exc)
    try:
        sending.send(answer)
    except Exception as exc:            # an answer that cannot be pickled: said as a RuntimeError
        sending.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


@contextlib.contextmanager
def forked(work: Callable[..., T], *args: Any, **kwargs: Any) -> Iterator[Callable[[], T]]:
    """`work(*args, **kwargs)` in a process forked from this one while the caller goes on; yields `result()`,
    which waits for it and returns what it returned or raises what it raised. Leaving the block ends the process
    if it is still working. Where forking is not safe (can_fork), or if the process ends without answering, `result()`
    does the work in this process instead."""
    if not can_fork():
        yield lambda: work(*args, **kwargs)
        return
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_answer, args=(sending, work, args, kwargs), daemon=True)
    with interrupts_held():             # until the process has set its own handlers (sim.core.fork_signals)
        process.start()
    sending.close()

    def result() -> T:
        try:
            ok, value = receiving.recv()
        except EOFError:                # the process died without answering (killed): do the work here
            return work(*args, **kwargs)
        if not ok:
            raise value
        return value

    try:
        yield result
    finally:
        receiving.close()
        if process.is_alive():
            process.terminate()
        process.join()
