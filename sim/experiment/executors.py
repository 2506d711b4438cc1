"""Where replications run: in this process, in local worker processes, or on a Dask distributed cluster.

Why three: a planner on a laptop wants both cores; an analyst with a cluster wants hundreds. Each replication
is a pure function of (scenario, replication, seed) — its random streams depend on nothing else — so every
executor gives the same tables byte for byte; results are put back in replication order whatever order they
finish in.

Ctrl-C: worker processes ignore SIGINT (only the command line handles it); the executor cancels what has not
started and terminates its workers, so the command stops at once and writes nothing. SIGTERM takes the same path
in the command (sim.cli.main); local workers keep SIGTERM's default action, so terminating them (or a SIGTERM
sent to the whole process group) ends them at once, without running Python code or printing tracebacks.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from typing import Protocol

from sim.core.fork_signals import interrupts_held, worker_signals
from sim.experiment.errors import ExecutorError
from sim.model.replication import ReplicationResult, run_single
from sim.scenario.schema import Scenario

EXECUTORS = ("local", "dask")


class ReplicationExecutor(Protocol):
    workers: int

    def run(self, scenario: Scenario, replications: list[int], seed: int) -> Iterator[ReplicationResult]:
        """Run the replications; yield each result as it finishes (any order)."""
        ...

    def close(self) -> None:
        """Shut down after the last replication (waits for nothing: all have finished)."""
        ...

    def terminate(self) -> None:
        """Stop now: cancel what has not started and end the workers (after Ctrl-C or an error)."""
        ...

    def describe(self) -> str: ...


class InProcess:
    """Replications one after another in this process (`--jobs 1`)."""

    workers = 1

    def run(self, scenario: Scenario, replications: list[int], seed: int) -> Iterator[ReplicationResult]:
        for r in replications:
            yield run_single(scenario, r, seed)

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass

    def describe(self) -> str:
        return "sequential, in this process"


def _run_one(task: tuple[Scenario, int, int]) -> ReplicationResult:
    scenario, replication, seed = task
    return run_single(scenario, replication, seed)


class LocalProcesses:
    """`--jobs N`: a pool of N worker processes kept for the whole command (every scenario of a compare)."""

    def __init__(self, jobs: int) -> None:
        self.workers = jobs
        # Ctrl-C and SIGTERM are held back while the workers are forked (and in the pool's own threads, which fork
        # any replacement worker) until each worker has set its own handlers (sim.core.fork_signals)
        with interrupts_held():
            self._pool = multiprocessing.get_context("fork" if os.name == "posix" else "spawn").Pool(
                processes=jobs, initializer=worker_signals)

    def run(self, scenario: Scenario, replications: list[int], seed: int) -> Iterator[ReplicationResult]:
        """The tasks join the workers' queue now, not when the first result is read: runs asked for one after
        another queue up in that order (`AskedTogether`)."""
        return self._pool.imap_unordered(_run_one, [(scenario, r, seed) for r in replications])

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def describe(self) -> str:
        return f"{self.workers} local processes"


class DaskCluster:
    """`--executor dask [--scheduler ADDRESS]`: a Dask distributed cluster; a local one (N worker processes,
    one thread each) when no address is given. Workers must be able to import this package."""

    def __init__(self, jobs: int, scheduler: str | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("--executor dask needs Dask: pip install 'dask[distributed]' "
                                "(included in this project's [dev] extra)") from None
        cluster: LocalCluster | None = None
        client: Client | None = None
        try:
            if scheduler:
                client = Client(scheduler, timeout="10s")
            else:
                # workers started while SIGINT is ignored keep ignoring it (Python installs its Ctrl-C handler
                # only where SIGINT is at its default), so Ctrl-C reaches this process alone
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    # logs only what is critical: a replication's own error reaches this process through its
                    # future, and after Ctrl-C a worker whose heartbeat meets the closing scheduler logs a
                    # traceback at ERROR, which would be printed over the command's one-line message
                    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.CRITICAL)
                finally:
                    signal.signal(signal.SIGINT, previous)
                client = Client(cluster)
        except BaseException as exc:           # Ctrl-C included: never leave a cluster running
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            if not isinstance(exc, (OSError, TimeoutError, RuntimeError, ValueError)):
                raise
            if scheduler:
                raise ExecutorError(f"--scheduler {scheduler}: cannot connect to the Dask scheduler ({exc})") from None
            raise ExecutorError(f"--executor dask: the local Dask cluster did not start ({exc})") from None
        self._cluster = cluster
        self._client = client
        self.address = cluster.scheduler_address if cluster is not None else scheduler
        self.workers = len(self._client.scheduler_info().get("workers", {})) or jobs
        self._pending: list = []

    def run(self, scenario: Scenario, replications: list[int], seed: int) -> Iterator[ReplicationResult]:
        from distributed import as_completed
        shared = self._client.scatter(scenario, broadcast=True)
        futures = [self._client.submit(run_single, shared, r, seed, pure=False) for r in replications]
        self._pending = futures
        for future in as_completed(futures):
            yield future.result()
        self._pending = []

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def terminate(self) -> None:
        if self._pending:
            self._client.cancel(self._pending)
        self.close()

    def describe(self) -> str:
        where = "a local Dask cluster" if self._cluster is not None else f"the Dask scheduler at {self.address}"
        return f"{where} ({self.workers} workers)"


class AskedTogether:
    """`runner` with several runs asked for before the first result is read (every scenario of a compare with a
    fixed number of replications). On local processes a worker done with one scenario's replications starts on the
    next scenario's at once, instead of idling while the other finishes the scenario's last one. The results are
    the same: each run's are read when it is asked for again (`run`), in the caller's order."""

    def __init__(self, runner: ReplicationExecutor, asks: list[tuple[Scenario, list[int], int]]) -> None:
        self._runner = runner
        self.workers = runner.workers
        self._started = [(scenario, replications, seed, runner.run(scenario, replications, seed))
                         for scenario, replications, seed in asks]

    def run(self, scenario: Scenario, replications: list[int], seed: int) -> Iterator[ReplicationResult]:
        """The results of a run asked for at the start, or of a new run if it was not one of them."""
        for i, (asked, asked_replications, asked_seed, results) in enumerate(self._started):
            if asked is scenario and asked_replications == replications and asked_seed == seed:
                del self._started[i]
                return results
        return self._runner.run(scenario, replications, seed)

    def close(self) -> None:
        self._runner.close()

    def terminate(self) -> None:
        self._runner.terminate()

    def describe(self) -> str:
        return self._runner.describe()


def make_executor(jobs: int = 1, executor: str = "local", scheduler: str | None = None) -> ReplicationExecutor:
    """The executor the command line asked for. `jobs` is the number of local workers (processes or local Dask
    workers); with a scheduler address the cluster's own workers are used."""
    if executor == "dask":
        return DaskCluster(max(jobs, 1), scheduler)
    if scheduler:
        raise ExecutorError("--scheduler is only used with --executor dask")
    return LocalProcesses(jobs) if jobs > 1 else InProcess()


def stop(executor: ReplicationExecutor, interrupted: bool) -> None:
    """Shut down: politely after success, at once (cancel, terminate workers) after Ctrl-C or an error."""
    if interrupted:
        executor.terminate()
    else:
        executor.close()
