"""Numbers a scenario may not hold: infinite or NaN values, absurd sizes, low/high pairs the wrong way round, and
runs too large for the model or for this machine's memory. Each is refused by `validate` and by `run` before
anything runs: exit 2, one line naming the key (and the value and limit), no traceback, nothing written."""
from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, simple
from sim.cli.main import main
from sim.model.replication import run_single
from sim.model.waiting_list import MAX_PATIENTS
from sim.scenario import resources, yaml_files
from sim.scenario.build import check_draws, load_scenario
from sim.scenario.resources import (
    GIB,
    MAX_PATHWAYS_PER_REPLICATION,
    MIB,
    at_most_pathways,
    check_memory,
    estimate_replication,
)
from sim.scenario.schema import ScenarioError, StartBand

pytestmark = pytest.mark.unit

BASELINE = ROOT / "scenarios" / "baseline.yaml"
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "scenarios" / "core").glob("*.yaml"))
FINITE = "expected a finite number"
_PARSED: dict[Path, Any] = {}


@pytest.fixture(autouse=True)
def _parse_each_shipped_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed only: the shipped files every case extends are parsed once for the whole file (pure-Python YAML is
    most of a validation's time) and handed out as fresh copies; the tiny files the cases write are read as ever.
    If the loader's reader is renamed this does nothing and the tests are just slower."""
    read = getattr(yaml_files, "_read_yaml", None)
    if read is None:
        return

    def read_once(path: Path, *args: Any, **kwargs: Any) -> Any:
        key = Path(path).resolve()
        if not (key.is_relative_to(ROOT / "scenarios") and key.suffix == ".yaml"):
            return read(path, *args, **kwargs)
        if key not in _PARSED:
            _PARSED[key] = read(path, *args, **kwargs)
        return copy.deepcopy(_PARSED[key])
    monkeypatch.setattr(yaml_files, "_read_yaml", read_once)


@dataclasses.dataclass(frozen=True)
class Case:
    """A bad value: written into a tiny scenario that extends the baseline (`how` = "yaml"), or given with --set."""

    how: str
    key: str
    value: str
    expected: str
    names: str = ""              # what the line names, when not the key itself (a rule on two keys)

    @property
    def id(self) -> str:
        return f"{self.how}:{self.key}={self.value}"


CASES = [
    # not finite: in a plain number, an int, a mapping of numbers, a list of sections, a range, text
    Case("yaml", "sites.imperial.theatres.session_minutes", ".inf", FINITE),
    Case("yaml", "specialties.ent.los_days_mean", ".inf", FINITE),
    Case("yaml", "finance.underlying_deficit_per_year", ".nan", FINITE),
    Case("yaml", "referrals.referrals_per_week", ".inf", FINITE),
    Case("yaml", "referrals.referrals_per_week", "1.0e+400", FINITE),      # YAML reads it as inf
    Case("yaml", "referrals.referrals_per_week", "'inf'", FINITE),          # text pydantic could read as inf
    Case("yaml", "sites.imperial.outpatient_first_slots_per_week.ent", ".inf", FINITE),
    Case("yaml", "referrals.weekday_weights.mon", ".nan", FINITE),
    Case("yaml", "referrals.monthly_multipliers.2021-07", ".inf", FINITE),
    Case("yaml", "covid.inpatients_series", "[{date: 2021-06-07, inpatients: .inf}]", FINITE),
    Case("yaml", "referrals.referrals_per_week", "[1000, .inf]", "interval [1000, inf]: expected finite numbers"),
    Case("yaml", "theatre_rules.on_the_day_cancellation_rate", "[.nan, 0.1]",
         "interval [nan, 0.1]: expected finite numbers"),
    Case("set", "horizon_weeks", ".inf", FINITE),
    Case("set", "run.replications", ".nan", FINITE),
    Case("set", "referrals.referrals_per_week", "inf", FINITE),
    Case("set", "finance.costs.elective_bed_day", "-.inf", FINITE),
    Case("set", "referrals.referrals_per_week", "[1000,.inf]", "expected finite numbers"),
    # above the limits that keep a run a run
    Case("set", "sites.imperial.theatres.sessions_by_weekday.mon", "1000000000", "less than or equal to 1000 "),
    Case("set", "start_list.bands.0.count", "1000000000000", "less than or equal to 10000000 "),
    Case("set", "referrals.referrals_per_week", "1000000000", "less than or equal to 1000000 "),
    Case("set", "horizon_weeks", "2000", "less than or equal to 1040 "),
    Case("set", "run.replications", "100000", "less than or equal to 10000 "),
    Case("set", "sites.imperial.elective_beds", "10000000", "less than or equal to 100000 "),
    Case("set", "staff.establishment.imperial.surgeons", "10000000", "less than or equal to 100000 "),
    Case("set", "vaccination.centres.mass_site_north.stations", "1000000000", "less than or equal to 10000 "),
    Case("set", "specialties.ent.theatre_minutes_day_case.mean", "100000", "less than or equal to 1440 "),
    Case("set", "boroughs.brent.population", "10000000000", "less than or equal to 100000000 "),
    Case("set", "sites.imperial.outpatient_first_slots_per_week.ent", "100000000", "less than or equal to 1000000"),
    # low/high pairs and totals
    Case("set", "run.min_replications", "60", "max_replications (50) must be at least min_replications (60)",
         names="run: "),
    Case("set", "covid.referral_suppression.return_delay_weeks_min", "30",
         "return_delay_weeks_max (26) must be at least return_delay_weeks_min (30)",
         names="covid.referral_suppression: "),
    Case("set", "vaccination.cohorts.0.first_doses_before_start", "1000000",
         "first_doses_before_start (1,000,000) is more than the population", names="vaccination.cohorts.0: "),
    # within every field's limit, but more pathways than the model can number
    Case("set", "referrals.referrals_per_week", "900000", "the model holds at most 67,108,864 pathways",
         names="(referrals.referrals_per_week 900,000 over horizon_weeks 199)"),
]


def _nested_yaml(key: str, value: str) -> str:
    lines = []
    for depth, part in enumerate(key.split(".")[:-1]):
        lines.append("  " * depth + f"{part}:")
    lines.append("  " * (key.count(".")) + f"{key.split('.')[-1]}: {value}")
    return "\n".join(lines) + "\n"


def _command(case: Case, command: str, tmp_path: Path) -> list[str]:
    if case.how == "yaml":
        path = tmp_path / "bad.yaml"
        path.write_text(f"extends: {BASELINE}\n" + _nested_yaml(case.key, case.value), encoding="utf-8")
        args = [command, str(path)]
    else:
        args = [command, str(BASELINE), "--set", f"{case.key}={case.value}"]
    if command == "run":
        args += ["--results-root", str(tmp_path / "results"), "--replications", "1", "--quiet"]
    return args


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_number_is_one_line_naming_its_key_and_nothing_runs(case: Case, command: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The promise for bad input: exit 2, one line that names the key and says what is wrong, no traceback,
    nothing under the results root (the run is refused before any replication)."""
    code = main(_command(case, command, tmp_path))
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"expected exit 2, got {code}: {err or out}"
    assert len(lines) == 1, f"expected one line, got {lines}"
    names = case.names or f": {case.key}"
    assert names in lines[0] and case.expected in lines[0], f"expected {names!r} and {case.expected!r} in {lines[0]!r}"
    assert "Traceback" not in err + out
    assert not (tmp_path / "results").exists(), "nothing may be written for a refused scenario"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_scenario_validates_and_fits_two_workers_in_two_gib(path: Path) -> None:
    """The bounds are above every real value the project ships, and its scenarios are far from the memory
    limit: two workers (the project's machines have two cores) fit in 2 GiB."""
    scenario = load_scenario(path).scenario          # what `validate` runs
    estimate = estimate_replication(at_most_pathways(scenario))
    assert estimate.bytes < GIB, f"expected under 1 GiB for one replication of {path.name}, got {estimate.bytes:,}"
    check_memory([scenario], path, workers=2, available=2 * GIB)


def test_the_pathway_limit_is_the_models() -> None:
    """The estimate refuses what the model could not number (pathway ids are 26 bits of its heap keys)."""
    assert MAX_PATHWAYS_PER_REPLICATION == MAX_PATIENTS


def test_the_estimate_is_close_to_the_pathways_a_replication_makes() -> None:
    """Expected clock starts over the horizon plus the start list: a little above what the model drew
    (Poisson noise only here: no seasonality, no bank holidays), never far below."""
    scenario = simple(referrals_per_week=2000.0, horizon_weeks=10,
                      start_bands=[{"from_weeks": 0, "to_weeks": 10, "count": 3000, "admitted_share": 1.0}])
    estimate = estimate_replication(scenario)
    made = run_single(scenario, 0).pathways_simulated
    assert estimate.start_list == 3000 and estimate.pathways == pytest.approx(3000 + 20_000, rel=1e-6)
    assert made == pytest.approx(estimate.pathways, rel=0.03), f"estimated {estimate.pathways:,}, made {made:,}"


def _huge(referrals_per_week: float = 0.0, start_list: int = 0):
    """The plan with sizes no file could give (model_copy skips validation): what the estimate alone must stop."""
    scenario = load_scenario(ROOT / "scenarios" / "core" / "nwl_june_2021_plan.yaml").scenario
    referrals = scenario.referrals.model_copy(update={"referrals_per_week": referrals_per_week})
    bands = [StartBand.model_construct(from_weeks=0.0, to_weeks=18.0, count=start_list, admitted_share=0.5)]
    return scenario.model_copy(update={"referrals": referrals,
                                       "start_list": scenario.start_list.model_copy(update={"bands": bands})})


@pytest.mark.parametrize("sizes, expected", [
    ({"referrals_per_week": 1e9}, "200,935 million referred (referrals.referrals_per_week 1,000,000,000 over"),
    ({"start_list": 10**12}, "1,000,000 million on the start list"),
])
def test_the_estimate_refuses_a_billion_referrals_or_a_trillion_on_the_list_at_once(sizes: dict,
                                                                                     expected: str) -> None:
    """Arithmetic, not allocation: a replication of 10^11 pathways is refused in well under two seconds."""
    scenario = _huge(**sizes)
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError) as refused:
        check_memory([scenario], "huge.yaml", available=64 * GIB)
    assert time.perf_counter() - t0 < 2.0
    line, = refused.value.problems
    assert line.startswith("huge.yaml: one replication would create about") and expected in line, line


def test_a_run_that_does_not_fit_the_memory_available_says_how_much_it_needs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Within the model's limit but not this machine's memory: refused with the estimate and what is available."""
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: GIB)
    code = main(["run", str(BASELINE), "--set", "referrals.referrals_per_week=100000",
                 "--results-root", str(tmp_path / "results"), "--quiet"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert "would need about 2.4 GiB for one replication, about 20 million pathways" in lines[0], lines[0]
    assert "this machine has 1.0 GiB available" in lines[0], lines[0]
    assert not (tmp_path / "results").exists()


def test_parallel_workers_multiply_the_memory_needed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--jobs N runs N replications at once, each in its own process: N times one replication must fit."""
    scenario = load_scenario(BASELINE).scenario
    one = estimate_replication(scenario).bytes
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: int(2.5 * one))
    check_draws(scenario, 1, 10, workers=2)          # two at once fit
    check_draws(scenario, 1, 2, workers=8)           # two replications never run more than two at once
    with pytest.raises(ScenarioError) as refused:
        check_draws(scenario, 1, 10, source="s.yaml", workers=3)
    assert "3 replications at once" in refused.value.problems[0], refused.value.problems
    # from the command line (--jobs is first cut to the cores, and CI has two)
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: int(1.5 * one))
    code = main(["run", str(BASELINE), "--jobs", "2", "--replications", "2",
                 "--results-root", str(tmp_path / "results"), "--quiet"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "(fewer --jobs" in lines[0], lines
    assert not (tmp_path / "results").exists()


def test_a_range_on_referrals_is_estimated_at_its_far_end() -> None:
    """Before the draws are known, a [low, high] input that adds pathways counts at its 99th percentile, so a
    range whose upper tail would not fit is refused up front; each replication's own draws are checked later."""
    mid = load_scenario(BASELINE, ["referrals.referrals_per_week=[10000,20000]"]).scenario
    assert mid.referrals.referrals_per_week == 15000
    far = at_most_pathways(mid)
    assert far.referrals.referrals_per_week > 20000, "expected the 99th percentile, above the 90th (high end)"
    assert estimate_replication(far).pathways > estimate_replication(mid).pathways


def test_free_memory_is_checked_once_before_a_command_runs_not_when_validating_or_between_scenarios(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` does not depend on the memory free now, and run_replications does not check it again: in a
    compare, the second scenario would otherwise see memory the first one's idle workers still hold, and be
    refused after the first had run."""
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 1)
    assert main(["validate", str(BASELINE)]) == 0, capsys.readouterr().err
    from helpers import simple_raw
    from sim.experiment.replications import run_replications
    from sim.scenario.validate import validate
    result = run_replications(validate(simple_raw(horizon_weeks=2), "tiny"), replications=1)
    assert result.replications == 1


def _cgroup(folder: Path, limit: str, usage: str, stat: str | None, version: int = 2
            ) -> tuple[resources.CgroupMemoryFiles, ...]:
    """A cgroup's memory files, v2's or v1's names, written into `folder` (memory.stat left out when None)."""
    names = (("memory.max", "memory.current", "inactive_file") if version == 2
             else ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
    (folder / names[0]).write_text(limit + "\n")
    (folder / names[1]).write_text(usage + "\n")
    if stat is not None:
        (folder / "memory.stat").write_text(stat)
    return (resources.CgroupMemoryFiles(str(folder / names[0]), str(folder / names[1]), str(folder / "memory.stat"),
                                        names[2]),)


@pytest.mark.parametrize(("limit", "usage", "expected"), [
    ("max", "123", None),                      # cgroup v2 without a limit
    ("1000000000", "400000000", 600000000),    # a 1 GB container using 400 MB
    ("1000", "5000", 0),                       # over its limit already
    (str(1 << 62), "10", None),                # cgroup v1's "unlimited"
    ("garbage", "1", None),
])
def test_a_container_memory_limit_bounds_what_is_available(tmp_path: Path, limit: str, usage: str,
                                                           expected: int | None) -> None:
    files = _cgroup(tmp_path, limit, usage, stat=None)
    assert resources.cgroup_memory_headroom(files) == expected
    none = tmp_path / "none"
    assert resources.cgroup_memory_headroom((resources.CgroupMemoryFiles(*[str(none)] * 3, "inactive_file"),)) is None


STAT_V2 = f"anon {100 * MIB}\nfile {850 * MIB}\nactive_file {250 * MIB}\ninactive_file {600 * MIB}\n"
STAT_V1 = (f"cache {850 * MIB}\ninactive_file 1\ntotal_cache {850 * MIB}\n"
           f"total_active_file {250 * MIB}\ntotal_inactive_file {600 * MIB}\n")


@pytest.mark.parametrize(("version", "stat"), [(2, STAT_V2), (1, STAT_V1)])
def test_file_cache_the_kernel_can_drop_is_not_counted_as_used(tmp_path: Path, version: int, stat: str) -> None:
    """A container that has read and written files sits near its limit, its memory mostly page cache: counted
    as used, that cache would leave no headroom and refuse every run. Inactive file cache is subtracted from the
    usage, as `docker stats` does (v2 `inactive_file`, v1 `total_inactive_file`, not v1's own-cgroup line)."""
    limit, usage = 1000 * MIB, 950 * MIB                  # 950 MiB "used", 600 MiB of it inactive file cache
    files = _cgroup(tmp_path, str(limit), str(usage), stat, version)
    assert resources.cgroup_memory_headroom(files) == limit - (usage - 600 * MIB)
    assert resources.cgroup_memory_limit(files) == limit


def test_the_headroom_is_never_more_than_the_limit_nor_below_zero(tmp_path: Path) -> None:
    """More inactive cache than usage (the files read at different moments) counts as nothing used; a
    memory.stat that cannot be read or lacks the key subtracts nothing."""
    assert resources.cgroup_memory_headroom(_cgroup(tmp_path, "1000", "100", "inactive_file 500\n")) == 1000
    assert resources.cgroup_memory_headroom(_cgroup(tmp_path, "1000", "5000", "inactive_file 500\n")) == 0
    assert resources.cgroup_memory_headroom(_cgroup(tmp_path, "1000", "400", "anon 400\n")) == 600
    assert resources.cgroup_memory_headroom(_cgroup(tmp_path, "1000", "400", "inactive_file lots\n")) == 600


def test_the_machine_memory_is_the_lower_of_the_machine_and_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "_meminfo", lambda key: {"MemAvailable": 8 * GIB, "MemTotal": 16 * GIB}[key])
    monkeypatch.setattr(resources, "cgroup_memory_headroom", lambda: 2 * GIB)
    monkeypatch.setattr(resources, "cgroup_memory_limit", lambda: 4 * GIB)
    assert resources.available_memory_bytes() == 2 * GIB
    assert resources.total_memory_bytes() == 4 * GIB
    monkeypatch.setattr(resources, "cgroup_memory_headroom", lambda: None)
    monkeypatch.setattr(resources, "cgroup_memory_limit", lambda: None)
    assert resources.available_memory_bytes() == 8 * GIB
    assert resources.total_memory_bytes() == 16 * GIB


def test_the_machine_total_memory_is_known_here() -> None:
    """What `report` compares a file with: all of this machine's memory (or its container's limit), at least
    what is available now."""
    total, available = resources.total_memory_bytes(), resources.available_memory_bytes()
    if total is None or available is None:
        pytest.skip("this machine does not say how much memory it has")
    assert total >= available > 0
