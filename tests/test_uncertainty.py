"""Parameter uncertainty: inputs given as 80% intervals [low, high], drawn once per replication."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import BASELINE, ROOT, run_cli, simple_raw
from sim.core.rng import Streams
from sim.experiment.replications import run_replications
from sim.model.replication import run_single
from sim.scenario.intervals import UncertainParameter, draw_values, find_intervals
from sim.scenario.schema import Scenario, ScenarioError
from sim.scenario.validate import validate


def _with(raw: dict, **paths) -> dict:
    """raw with dotted keys set (double underscores stand for dots)."""
    for dotted, value in paths.items():
        node = raw
        *head, last = dotted.split("__")
        for part in head:
            node = node[part]
        node[last] = value
    return raw


@pytest.mark.unit
def test_intervals_are_found_only_where_a_single_number_is_expected():
    raw = _with(simple_raw(), referrals__referrals_per_week=[80, 120],
                sites__site_a__elective_beds=[900, 1101],
                sites__site_a__outpatient_first_slots_per_week={"general": [1e6, 2e6]})
    mid, intervals, problems = find_intervals(Scenario, raw)
    assert problems == []
    keys = {p.key: p for p in intervals}
    assert set(keys) == {"referrals.referrals_per_week", "sites.site_a.elective_beds",
                         "sites.site_a.outpatient_first_slots_per_week.general"}
    assert mid["referrals"]["referrals_per_week"] == 100.0
    assert mid["sites"]["site_a"]["elective_beds"] == 1001 and keys["sites.site_a.elective_beds"].integer  # halves up
    # lists the schema expects stay lists: clinic weekdays, removal bands, start bands
    for section, key in (("outpatients", "clinic_weekdays"), ("removals", "weekly_rate_by_weeks_waited"),
                         ("start_list", "bands")):
        assert mid[section][key] == raw[section][key]
    scenario = validate(raw, "t.yaml")
    assert scenario.referrals.referrals_per_week == 100.0
    assert [p.key for p in scenario.parameter_intervals] == [p.key for p in intervals]


@pytest.mark.unit
@pytest.mark.parametrize("value, expected", [
    ([0.2, 0.1], "expected [low, high] with low <= high"),
    ([0.1, 1.2], "1.2 is above the allowed maximum"),
    ([-0.1, 0.1], "-0.1 is below the allowed minimum"),
    ([0.1, 0.2, 0.3], "expected a number or an 80% interval [low, high]"),
])
def test_bad_intervals_name_the_key(value, expected):
    raw = _with(simple_raw(), outpatients__virtual_share=value)
    with pytest.raises(ScenarioError) as err:
        validate(raw, "t.yaml")
    assert any(line.startswith("t.yaml: outpatients.virtual_share") and expected in line
               for line in err.value.problems), err.value.problems


@pytest.mark.unit
def test_both_ends_must_validate_together():
    """Shares that must add to one cannot move alone: the low end is checked and named."""
    raw = _with(simple_raw(priority_mix={"P1": 0.0, "P2": 0.0, "P3": 0.5, "P4": 0.5}))
    raw["specialties"]["general"]["priority_mix"]["P3"] = [0.4, 0.6]
    with pytest.raises(ScenarioError) as err:
        validate(raw, "t.yaml")
    assert any("with every [low, high] interval at its low end" in line and "priority_mix" in line
               for line in err.value.problems), err.value.problems


@pytest.mark.unit
def test_the_interval_is_the_10th_to_90th_percentile():
    p = UncertainParameter(path=("x",), low=10.0, high=30.0, integer=False)
    assert p.value_at(0.1) == pytest.approx(10.0) and p.value_at(0.9) == pytest.approx(30.0)
    assert p.value_at(0.5) == pytest.approx(20.0)
    draws = np.array([p.value_at(u) for u in np.random.default_rng(1).random(20_000)])
    inside = np.mean((draws >= 10) & (draws <= 30))
    assert 0.79 < inside < 0.81
    assert np.mean(draws) == pytest.approx(20.0, abs=0.2)


@pytest.mark.unit
def test_draws_stay_within_the_keys_range_and_whole_numbers_stay_whole():
    share = UncertainParameter(path=("s",), low=0.0, high=0.9, integer=False, minimum=0.0, maximum=1.0,
                               maximum_exclusive=True)
    count = UncertainParameter(path=("n",), low=0.0, high=3.0, integer=True, minimum=0.0)
    us = np.random.default_rng(2).random(5_000)
    shares = np.array([share.value_at(u) for u in us])
    counts = np.array([count.value_at(u) for u in us])
    assert shares.min() >= 0.0 and shares.max() < 1.0
    assert counts.min() >= 0 and np.all(counts == np.round(counts))
    assert share.value_at(0.0) >= 0.0 and share.value_at(1.0) < 1.0


@pytest.mark.unit
def test_each_key_has_its_own_stream_so_draws_are_paired_across_scenarios():
    a = UncertainParameter(path=("a",), low=0.0, high=1.0, integer=False)
    b = UncertainParameter(path=("b",), low=5.0, high=9.0, integer=False)
    b_wider = UncertainParameter(path=("b",), low=4.0, high=10.0, integer=False)

    def draw(intervals, rep):
        streams = Streams(99, rep)
        return draw_values(intervals, lambda key: float(streams.for_unit("parameter_uncertainty", key).random()))

    for rep in range(5):
        alone, together, wider = draw([b], rep), draw([a, b], rep), draw([a, b_wider], rep)
        assert alone["b"] == together["b"], "adding another uncertain key must not move this key's draw"
        # same percentile in both scenarios: the wider range's draw is the same distance from the middle, scaled
        assert (wider["b"] - 7.0) == pytest.approx((together["b"] - 7.0) * 1.5)
    assert len({draw([b], rep)["b"] for rep in range(5)}) == 5, "replications draw different values"


@pytest.mark.behaviour
def test_each_replication_runs_with_its_draw():
    """Referral demand given as a range: each replication's clock starts follow its own drawn demand, and the
    drawn values are reported per replication."""
    raw = simple_raw(referrals_per_week=100.0, horizon_weeks=8)
    raw["referrals"]["referrals_per_week"] = [50.0, 400.0]
    raw["run"]["replications"] = 6
    result = run_replications(validate(raw, "t.yaml"))
    drawn = result.parameters.set_index("replication")["value"]
    assert list(result.parameters["parameter"].unique()) == ["referrals.referrals_per_week"]
    assert drawn.nunique() == 6
    starts = result.weekly.groupby("replication")["clock_starts"].sum() / 8
    assert np.corrcoef(drawn.sort_index(), starts.sort_index())[0, 1] > 0.99
    assert np.allclose(starts.sort_index(), drawn.sort_index(), rtol=0.15)


@pytest.mark.behaviour
def test_uncertain_capacity_leaves_the_referral_stream_alone():
    """Common random numbers hold with parameter uncertainty: a range on capacity changes no referral."""
    fixed = validate(simple_raw(horizon_weeks=6, sessions_per_day=14), "fixed.yaml")
    raw = simple_raw(horizon_weeks=6, sessions_per_day=14)
    raw["sites"]["site_a"]["theatres"]["sessions_by_weekday"]["mon"] = [5, 25]
    uncertain = validate(raw, "uncertain.yaml")
    a, b = run_single(fixed, 0), run_single(uncertain, 0)
    assert b.parameters and a.parameters == {}
    assert a.weekly["clock_starts"].tolist() == b.weekly["clock_starts"].tolist()
    assert a.weekly["clock_stops_admitted"].tolist() != b.weekly["clock_stops_admitted"].tolist()


@pytest.mark.behaviour
def test_ranges_widen_the_spread_of_outcomes():
    """Direction of change: the same replications with demand uncertain spread wider than with demand fixed."""
    def spread(per_week):
        raw = simple_raw(referrals_per_week=100.0, horizon_weeks=10)
        raw["referrals"]["referrals_per_week"] = per_week
        raw["run"]["replications"] = 8
        weekly = run_replications(validate(raw, "t.yaml")).weekly
        return weekly.groupby("replication")["clock_starts"].sum().std()
    assert spread([60.0, 140.0]) > 3 * spread(100.0)


@pytest.mark.integration
def test_command_line_reports_which_uncertainty_and_can_fix_the_parameters(tmp_path):
    fast = ["--set", "name=baseline", "--set", "horizon_weeks=2", "--set", "referrals.referrals_per_week=[400,600]",
            "--set", "theatre_rules.on_the_day_cancellation_rate=[0.02,0.1]", "--replications", "2"]
    out = tmp_path / "drawn"
    proc = run_cli("run", str(BASELINE), *fast, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "uncertainty in 2 inputs given as 80% ranges" in proc.stdout
    params = pd.read_csv(out / "parameters.csv")
    assert len(params) == 4 and set(params["parameter"]) == {"referrals.referrals_per_week",
                                                             "theatre_rules.on_the_day_cancellation_rate"}
    summary = pd.read_csv(out / "summary.csv")
    assert summary["intervals_show"].str.contains("referrals.referrals_per_week").all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameter_intervals"]["baseline"]["referrals.referrals_per_week"] == [400, 600]
    saved = yaml.safe_load((out / "scenario.yaml").read_text())
    assert saved["referrals"]["referrals_per_week"] == [400, 600], "the resolved scenario keeps the range"

    report = (out / "report.md").read_text()
    assert "The ranges include uncertainty in the inputs given as 80% ranges" in report
    import openpyxl
    assert "parameters" in openpyxl.load_workbook(out / "results.xlsx", read_only=True).sheetnames
    assert "run-to-run variability **and** uncertainty in the inputs" in report
    assert ("80% range, drawn each replication: "
            "theatre\\_rules.on\\_the\\_day\\_cancellation\\_rate | 0.02 to 0.1") in report

    fixed = tmp_path / "fixed"
    proc = run_cli("run", str(BASELINE), *fast, "--fix-parameters", "--no-report", "--out", str(fixed))
    assert proc.returncode == 0, proc.stderr
    assert "run-to-run variation only" in proc.stdout and not (fixed / "parameters.csv").exists()
    weekly = pd.read_csv(fixed / "weekly.csv")
    assert json.loads((fixed / "manifest.json").read_text())["parameters_fixed_at_midpoints"] is True
    starts = weekly.groupby("replication")["clock_starts"].sum() / 2
    assert np.allclose(starts, 500 * 0.9, rtol=0.1)     # the midpoint, less advice and guidance (~10%)


@pytest.mark.integration
def test_bad_interval_on_the_command_line_exits_2(tmp_path):
    proc = run_cli("run", str(BASELINE), "--set", "outpatients.virtual_share=[0.5,0.2]", "--out",
                   str(tmp_path / "x"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "outpatients.virtual_share" in proc.stderr and "low <= high" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.unit
def test_bounds_stated_in_mapping_types_keep_draws_possible():
    """A range on one weekday's sessions or one site share is drawn within the type's bounds (never negative,
    never above 1), because those bounds are read from the schema."""
    raw = simple_raw()
    raw["sites"]["site_a"]["theatres"]["sessions_by_weekday"]["mon"] = [0, 2]
    raw["referrals"]["weekday_weights"]["sat"] = [0.0, 0.2]
    _, intervals, problems = find_intervals(Scenario, raw)
    assert problems == []
    bounds = {p.key: (p.minimum, p.maximum) for p in intervals}
    assert bounds["sites.site_a.theatres.sessions_by_weekday.mon"][0] == 0
    assert bounds["referrals.weekday_weights.sat"][0] == 0
    assert min(p.value_at(u) for p in intervals for u in np.linspace(0, 1, 101)) >= 0
    halves = UncertainParameter(path=("n",), low=2, high=3, integer=True)
    assert halves.midpoint == 3 and UncertainParameter(path=("n",), low=3, high=4, integer=True).midpoint == 4


@pytest.mark.unit
@pytest.mark.parametrize("key, value, reason", [
    ("finance.costs.theatre_session_staff", [500, 700], "finance prices the saved weekly results"),
    ("horizon_weeks", [50, 60], "the run's length is not an input"),
    ("run.seed", [1, 2], "the experiment's settings are not inputs"),
])
def test_ranges_are_refused_where_they_could_not_be_honoured(key, value, reason):
    from sim.scenario.yaml_files import apply_overrides, load_raw
    raw = apply_overrides(load_raw(BASELINE), [f"{key}={value}"])
    with pytest.raises(ScenarioError) as err:
        validate(raw, "b.yaml")
    assert any(line.startswith(f"b.yaml: {key}: a [low, high] range is not allowed here") and reason in line
               for line in err.value.problems), err.value.problems


@pytest.mark.unit
def test_shares_checked_across_sections_at_both_ends():
    """Referral shares across specialties must add to one: a range on one of them is refused at load time."""
    from sim.scenario.yaml_files import apply_overrides, load_raw
    raw = apply_overrides(load_raw(BASELINE), ["specialties.trauma_orthopaedics.referral_share=[0.09,0.15]"])
    with pytest.raises(ScenarioError) as err:
        validate(raw, "b.yaml")
    assert any("at its low end" in line and "referral" in line for line in err.value.problems), err.value.problems


@pytest.mark.unit
def test_every_replications_draws_are_validated_before_any_runs(monkeypatch):
    """Two ranges that are fine at both ends together can still be drawn out of order in one replication
    (removal bands must increase): the experiment refuses before running anything and names the replication."""
    import sim.experiment.executors
    raw = simple_raw(horizon_weeks=2)
    raw["removals"]["weekly_rate_by_weeks_waited"] = [
        {"from_weeks": 0, "weekly_rate": 0.0}, {"from_weeks": [10, 30], "weekly_rate": 0.001},
        {"from_weeks": [25, 45], "weekly_rate": 0.002}]
    raw["run"]["replications"] = 30
    scenario = validate(raw, "t.yaml")                   # both ends are in order: accepted
    ran = []
    monkeypatch.setattr(sim.experiment.executors, "run_single", lambda *a, **k: ran.append(a))
    with pytest.raises(ScenarioError) as err:
        run_replications(scenario)
    assert ran == [], "nothing may run before every draw is checked"
    assert any("replication" in line and "removals.weekly_rate_by_weeks_waited" in line and "increasing order" in line
               for line in err.value.problems), err.value.problems


@pytest.mark.unit
def test_a_range_on_a_calibrated_key_is_refused():
    from sim.scenario.build import load_scenario
    example = ROOT / "scenarios" / "from_rtt_example.yaml"
    with pytest.raises(ScenarioError) as err:
        load_scenario(example, ["start_list.calibrate_referrals_from_rtt=true",
                                "referrals.referrals_per_week=[10000,12000]"])
    assert any("referrals.referrals_per_week: a [low, high] range cannot be combined with "
               "start_list.calibrate_referrals_from_rtt" in line for line in err.value.problems), err.value.problems


@pytest.mark.unit
def test_a_range_inside_a_list_item_is_found_and_applied():
    """covid.waves.0.peak_inpatients: the path runs through a list; each replication's wave has its own peak."""
    from sim.scenario.intervals import scenario_for_replication
    from sim.scenario.yaml_files import apply_overrides, load_raw
    raw = apply_overrides(load_raw(ROOT / "scenarios" / "third_wave_mild.yaml"),
                          ["covid.waves.0.peak_inpatients=[150,300]"])
    scenario = validate(raw, "w.yaml")
    assert [p.key for p in scenario.parameter_intervals] == ["covid.waves.0.peak_inpatients"]
    assert scenario.covid.waves[0].peak_inpatients == 225
    peaks = [scenario_for_replication(scenario, 5, r)[0].covid.waves[0].peak_inpatients for r in range(4)]
    assert len(set(peaks)) == 4 and scenario.covid.waves[0].peak_inpatients == 225, "the loaded scenario is unchanged"


@pytest.mark.integration
def test_compare_checks_every_scenarios_draws_before_running_any(tmp_path):
    """The second scenario's draws break a rule in some replication: exit 2 naming its file and the replication,
    before the first scenario has run (no progress line) and with nothing written."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {BASELINE}\nname: bad_removals\nremovals:\n  weekly_rate_by_weeks_waited:\n"
                   "    - {from_weeks: 0, weekly_rate: 0.0}\n    - {from_weeks: [10, 30], weekly_rate: 0.001}\n"
                   "    - {from_weeks: [25, 45], weekly_rate: 0.002}\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("compare", str(BASELINE), str(bad), "--set", "horizon_weeks=2", "--replications", "20",
                   "--out", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {bad}: replication " in proc.stderr and "increasing order" in proc.stderr, proc.stderr
    assert "done" not in proc.stderr, "nothing may run before the draws are checked"
    assert not out.exists()
