"""Memory a run will need, estimated before it starts: a scenario that cannot fit is refused with the figures.

A replication keeps every pathway it creates, the start list and every clock start over the horizon, in the
model's column arrays and waiting lists until it ends (sim.model.patients), so its memory grows with that count.
The count is known from the scenario before anything runs: the start list's size plus the referrals expected
over the horizon (referrals a week less advice and guidance, with seasonality at its peak, demand growth and the
monthly multipliers, day by day as sim.model.referrals draws them). Covid suppression only lowers it.

Bytes per pathway were measured with resource.getrusage (peak resident set size of a fresh process running one
replication of scenarios/baseline.yaml, one Python 3.11 process per case, 2 cores, Linux):

  case                                          pathways    peak      over the 82 MiB of a process with the model
  baseline, 156 weeks                           2,497,000   251 MiB   53 B a referred pathway
  baseline, 52 weeks, referrals x4              3,176,000   361 MiB   93 B a referred pathway
  no theatres or clinics, 52 weeks, x4          3,176,000   403 MiB   94 B (everyone still waiting, in lists)
  baseline, 104 weeks, 100,000 a week           9,946,000   957 MiB   88 B (estimated 1.3 GiB)
  start list x20 (3.6 million), 4 weeks         3,596,000   1,065 MiB 287 B a start-list pathway (drawn at once:
  start list x40 (7.1 million), 4 weeks         7,130,000   2,032 MiB   numpy temporaries for every column)

The estimate rounds each up (120 B a referred pathway, 300 B a start-list pathway, 100 MiB a process), so it is
above every measurement (by 5% for the largest start list, by three quarters for the baseline, which treats most of
its pathways): it is meant to refuse what cannot fit, not to pack a machine to the last byte.

The model also numbers pathways in 26 bits of a heap key (sim.model.waiting_list.MAX_PATIENTS): a replication
that would create more stops with an error once it reaches them, so that is refused here too, before it starts.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np

from sim.core.nhs_calendar import multipliers_by_day
from sim.scenario.intervals import UncertainParameter, apply_values
from sim.scenario.schema import WEEKDAYS, Scenario, ScenarioError

MIB = 1 << 20
GIB = 1 << 30
BYTES_PER_REFERRED_PATHWAY = 120
BYTES_PER_START_LIST_PATHWAY = 300
BYTES_PER_PROCESS = 100 * MIB            # Python, numpy, pandas and SimPy loaded, before the first pathway
MAX_PATHWAYS_PER_REPLICATION = 1 << 26   # = sim.model.waiting_list.MAX_PATIENTS (a test holds them equal)
# Where a [low, high] range moves the count, its estimate takes the 99th percentile of the draw in the direction
# that adds pathways (the 1st for advice and guidance, which diverts them); check_draws then estimates the
# values each replication actually drew.
_FEWER_WHEN_HIGHER = {"referrals.advice_and_guidance_share"}


@dataclasses.dataclass(frozen=True)
class ReplicationEstimate:
    """Pathways one replication of a scenario will hold, and the memory that takes."""

    start_list: int
    referred: float                      # clock starts expected over the horizon
    weeks: int
    referrals_per_week: float            # as the scenario states them (before advice and guidance)

    @property
    def pathways(self) -> int:
        return self.start_list + math.ceil(self.referred)

    @property
    def bytes(self) -> int:
        return (BYTES_PER_PROCESS + BYTES_PER_START_LIST_PATHWAY * self.start_list
                + math.ceil(BYTES_PER_REFERRED_PATHWAY * self.referred))

    def describe(self) -> str:
        return (f"about {_count(self.pathways)} pathways: {_count(self.start_list)} on the start list and "
                f"{_count(self.referred)} referred (referrals.referrals_per_week {self.referrals_per_week:,.0f} "
                f"over horizon_weeks {self.weeks})")


def estimate_replication(scenario: Scenario) -> ReplicationEstimate:
    """Pathways and bytes of one replication of `scenario` as it stands (a [low, high] input at the value the
    scenario holds: its midpoint, or one replication's draw). Arithmetic on the scenario, no pathway made: a
    start list of 10^12 is estimated as fast as one of 10."""
    start_list = scenario.start_list
    if start_list.rtt is not None:
        listed = start_list.rtt.total
    else:
        listed = sum(band.count for band in start_list.bands or [])
    return ReplicationEstimate(listed, _referred(scenario), scenario.horizon_weeks,
                               scenario.referrals.referrals_per_week)


def _referred(scenario: Scenario) -> float:
    """Clock starts expected over the horizon: sim.model.referrals' daily rate summed, seasonality at its peak
    and bank holidays counted as ordinary days (so a little above what the model draws)."""
    ref = scenario.referrals
    days = np.arange(scenario.horizon_days, dtype=float)
    weights = np.array([ref.weekday_weights[d] for d in WEEKDAYS], dtype=float)
    weekday_share = np.resize(np.roll(weights / weights.sum(), -scenario.start_date.weekday()), len(days))
    growth = (1.0 + ref.demand_growth_per_year) ** (days / 365.25)
    months = np.asarray(multipliers_by_day(scenario.start_date, scenario.horizon_days, ref.monthly_multipliers))
    per_day = weekday_share * growth * months
    clock_starts = ref.referrals_per_week * (1.0 - ref.advice_and_guidance_share) * (1.0 + ref.seasonality_amplitude)
    return float(clock_starts * per_day.sum())


def at_most_pathways(scenario: Scenario) -> Scenario:
    """`scenario` with every [low, high] input that changes the count of pathways at the end that adds most of
    them (its 99th percentile), for an estimate before the draws are known (sim.scenario.build)."""
    moving = [p for p in scenario.parameter_intervals if p.key.startswith("referrals.")]
    if not moving:
        return scenario
    return apply_values(scenario, moving, {p.key: _far_end(p) for p in moving})


def _far_end(p: UncertainParameter) -> float:
    return p.value_at(0.01 if p.key in _FEWER_WHEN_HIGHER else 0.99)


def available_memory_bytes() -> int | None:
    """Memory this machine can give a run now without swapping: MemAvailable from /proc/meminfo (Linux), else
    the free physical pages, and no more than a container's memory limit leaves (cgroup v2 or v1), where the
    kernel would stop the run long before the machine runs short; None where nothing is known (then nothing
    is refused)."""
    return _machine_within_container("MemAvailable", "SC_AVPHYS_PAGES", cgroup_memory_headroom())


def total_memory_bytes() -> int | None:
    """Memory this machine has in all, free or not: MemTotal from /proc/meminfo (Linux), else the physical
    pages, and no more than a container's memory limit (cgroup v2 or v1); None where nothing is known. What a
    standalone `report` compares a file with (sim.outputs.run_reader): not the memory free at that moment,
    which page cache and other programs move from one minute to the next."""
    return _machine_within_container("MemTotal", "SC_PHYS_PAGES", cgroup_memory_limit())


def _machine_within_container(meminfo_key: str, sysconf_pages: str, container: int | None) -> int | None:
    """The machine's figure (a /proc/meminfo line, else the physical pages sysconf counts), no more than the
    container's; None where neither is known."""
    machine = _meminfo(meminfo_key)
    if machine is None:
        machine = _sysconf_bytes(sysconf_pages)
    known = [m for m in (machine, container) if m is not None]
    return min(known) if known else None


def _meminfo(key: str) -> int | None:
    """One line of /proc/meminfo ("MemAvailable", "MemTotal") in bytes; None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf_bytes(pages: str) -> int | None:
    try:
        return int(os.sysconf(pages)) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclasses.dataclass(frozen=True)
class CgroupMemoryFiles:
    """Where a memory cgroup states its limit, what it uses, and (in its memory.stat) how much of that is file
    cache the kernel can drop: `inactive_file` is that key's name in memory.stat."""

    limit: str
    usage: str
    stat: str
    inactive_file: str


# This process's memory cgroup: v2 (unified), then v1
CGROUP_FILES = (
    CgroupMemoryFiles("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat",
                      "inactive_file"),
    CgroupMemoryFiles("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                      "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"),
)


def cgroup_memory_limit(files: Sequence[CgroupMemoryFiles] = CGROUP_FILES) -> int | None:
    """The container's memory limit in bytes; None without a limit ("max", or v1's huge number meaning none) or
    where the files cannot be read."""
    found = _cgroup_limit(files)
    return None if found is None else found[1]


def cgroup_memory_headroom(files: Sequence[CgroupMemoryFiles] = CGROUP_FILES) -> int | None:
    """Bytes the container's memory limit still allows: the limit less what the container uses, not counting
    the file cache the kernel drops before it stops anything (memory.stat's inactive_file; total_inactive_file
    in v1), as `docker stats` counts it: a container that has read or written a lot of files otherwise sits
    near its limit with its memory mostly page cache, and every run would be refused. Never below 0; None
    without a limit or where the files cannot be read."""
    found = _cgroup_limit(files)
    if found is None:
        return None
    where, limit = found
    try:
        with open(where.usage, encoding="ascii") as fh:
            usage = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    in_use = max(usage - _cgroup_stat(where.stat, where.inactive_file), 0)
    return max(limit - in_use, 0)


def _cgroup_limit(files: Sequence[CgroupMemoryFiles]) -> tuple[CgroupMemoryFiles, int] | None:
    """The first cgroup of `files` whose limit can be read, with that limit; None when it has none."""
    for where in files:
        try:
            with open(where.limit, encoding="ascii") as fh:
                limit_text = fh.read().strip()
            if limit_text == "max":
                return None
            limit = int(limit_text)
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:                   # cgroup v1 writes a page-rounded maximum when unlimited
            return None
        return where, limit
    return None


def _cgroup_stat(path: str, key: str) -> int:
    """One value of a cgroup's memory.stat ("key value" lines), in bytes; 0 where it cannot be read (so the
    headroom is never more than limit less usage)."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                name, _, value = line.partition(" ")
                if name == key:
                    return max(int(value), 0)
    except (OSError, ValueError):
        pass
    return 0


def check_pathway_limit(scenarios: Sequence[Scenario], source: object) -> None:
    """Refuse (ScenarioError, one line) a scenario whose replication would create more pathways than the model can
    number. It depends on the scenario alone, so `validate` and every build check it."""
    if not scenarios:
        return
    estimate = max((estimate_replication(sc) for sc in scenarios), key=lambda e: e.bytes)
    if estimate.pathways > MAX_PATHWAYS_PER_REPLICATION:
        raise ScenarioError([f"{source}: one replication would create {estimate.describe()}; the model holds at "
                             f"most {MAX_PATHWAYS_PER_REPLICATION:,} pathways in a replication (fewer referrals a "
                             "week, a smaller start list or a shorter horizon_weeks)"])


def check_memory(scenarios: Sequence[Scenario], source: object, workers: int = 1,
                 available: int | None = None) -> None:
    """Refuse (ScenarioError, one line) a run whose replication would create more pathways than the model can
    number, or whose `workers` replications at once (each in its own process) would need more memory than this
    machine has available. Checked once, before a command runs anything (sim.scenario.build.check_draws): checked
    again between the scenarios of a command, it would see memory the finished ones' workers still hold and
    could refuse a run halfway. `scenarios`: the replications' scenarios (one, or each replication's draws); the
    largest is the one that counts. `available`: bytes, default this machine's available memory now."""
    if not scenarios:
        return
    check_pathway_limit(scenarios, source)
    estimate = max((estimate_replication(sc) for sc in scenarios), key=lambda e: e.bytes)
    workers = max(int(workers), 1)
    free = available_memory_bytes() if available is None else available
    if free is None:
        return
    needed = estimate.bytes * workers
    if needed > free:
        at_once = ("one replication" if workers == 1
                   else f"{workers} replications at once ({_size(estimate.bytes)} each)")
        fewer = " (fewer --jobs" if workers > 1 else " (a smaller scenario"
        raise ScenarioError([f"{source}: would need about {_size(needed)} for {at_once}, {estimate.describe()}; "
                             f"this machine has {_size(free)} available{fewer}, a shorter horizon_weeks or fewer "
                             "referrals would fit in less)"])


def _size(n: float) -> str:
    if n >= 10 * GIB:
        return f"{n / GIB:,.0f} GiB"
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:,.0f} MiB"


def _count(n: float) -> str:
    if n >= 10_000_000:
        return f"{n / 1e6:,.0f} million"
    return f"{round(n):,}"

