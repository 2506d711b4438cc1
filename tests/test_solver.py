"""`solve` (issue 14): levers, targets, the search, and the command.

The one-site scenario of tests/helpers.simple_raw treats exactly one patient a session, so its capacity is
sessions a week. Here its backlog is 2,000 P4 pathways waiting 40-52 weeks and every new referral is P1 (booked
first): for nobody to wait over 52 weeks 20 weeks on, the theatres must treat the backlog plus the new demand in
those 20 weeks, so the fluid formula (backlog / weeks + demand - capacity) holds exactly but for Poisson arrivals.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import BASELINE, simple_raw
from sim.cli.main import main
from sim.experiment.solver import (
    LEVERS,
    Evaluation,
    LeverSetting,
    SolveProblem,
    evaluate,
    fluid_estimate,
    monotone_drops,
    parse_target,
    solve,
    steady_state,
)
from sim.scenario.build import load_scenario
from sim.scenario.schema import ScenarioError

START = dt.date(2021, 6, 7)
WEEKS_TO_DATE = 20
BY = START + dt.timedelta(days=7 * WEEKS_TO_DATE - 1)      # the end of week 19
BACKLOG = 2000
DEMAND_PER_WEEK = 100.0
SESSIONS_PER_DAY = 14                                      # 98 a week, one patient each


def write_scenario(folder: Path, demand: float = DEMAND_PER_WEEK) -> Path:
    raw = simple_raw(referrals_per_week=demand, sessions_per_day=SESSIONS_PER_DAY, horizon_weeks=30,
                     policy="priority_then_longest_wait", priority_mix={"P1": 1.0, "P2": 0.0, "P3": 0.0, "P4": 0.0},
                     start_bands=[{"from_weeks": 40, "to_weeks": 52, "count": BACKLOG, "admitted_share": 1.0}])
    raw["start_list"]["priority_mix"] = {"P1": 0.0, "P2": 0.0, "P3": 0.0, "P4": 1.0}
    path = folder / f"backlog_{demand:g}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def problem(path: Path, low: float = 0, high: float = 200, replications: int = 3, target: str = "max_wait_weeks=52",
            lever: str = "theatre_sessions_per_week") -> SolveProblem:
    return SolveProblem(path, [], LEVERS[lever], parse_target(target, BY), 0.8, replications, 12345, low, high)


@pytest.mark.verification
@pytest.mark.slow
def test_solved_sessions_match_the_fluid_formula(tmp_path):
    """Backlog / weeks + demand - capacity = 2,000 / 20 + 100 - 98 = 102 extra sessions a week; the fluid estimate
    gives exactly that, and the simulated answer (3 replications, all of them meeting it) is within 5% of it."""
    by_hand = BACKLOG / WEEKS_TO_DATE + DEMAND_PER_WEEK - 7 * SESSIONS_PER_DAY
    p = problem(write_scenario(tmp_path))
    assert fluid_estimate(p) == math.ceil(by_hand)
    result = solve(p)
    assert result.answer is not None and abs(result.answer - by_hand) <= 0.05 * by_hand, result.table()
    assert result.monotone, result.drops
    at_answer = result.evaluation_at(result.answer)
    below = result.evaluation_at(result.answer - 1)
    assert at_answer is not None and at_answer.share >= 0.8
    assert below is not None and below.share < 0.8, "the answer must be the smallest value meeting the confidence"
    assert result.starting.value == 0 and result.starting.share == 0.0


@pytest.mark.verification
def test_the_same_value_evaluated_twice_gives_identical_results(tmp_path):
    """Common random numbers: the same lever value, the same replications and seed, the same outcome."""
    p = problem(write_scenario(tmp_path))
    first, second = evaluate(p, 100), evaluate(p, 100)
    assert first.met == second.met and first.share == second.share
    np.testing.assert_array_equal(first.kpi_weeks, second.kpi_weeks)
    pd.testing.assert_frame_equal(first.weekly, second.weekly)


@pytest.mark.behaviour
@pytest.mark.slow
def test_more_demand_never_needs_less_capacity(tmp_path):
    answers = {}
    for demand in (DEMAND_PER_WEEK, DEMAND_PER_WEEK + 15):
        answers[demand] = solve(problem(write_scenario(tmp_path, demand), low=80, high=160, replications=2)).answer
    assert None not in answers.values(), answers
    assert answers[DEMAND_PER_WEEK + 15] >= answers[DEMAND_PER_WEEK] + 10, answers


@pytest.mark.unit
def test_steady_state_is_demand_less_capacity(tmp_path):
    """100 a week arrive, 98 sessions treat one each, no removals: the list stops growing at 2 more."""
    steady = steady_state(problem(write_scenario(tmp_path)))
    assert steady.value == 2 and steady.growth_at_start == pytest.approx(2.0) and steady.growth_at_max == 0


@pytest.mark.unit
def test_a_drop_in_share_with_more_lever_is_reported():
    def ev(order, value, met):
        return Evaluation(order, value, met, [0.0] * len(met), 0.0, START, pd.DataFrame())
    rising = [ev(1, 0, [False, False]), ev(2, 10, [True, False]), ev(3, 20, [True, True])]
    assert monotone_drops(rising, +1) == []
    falling = [*rising, ev(4, 30, [False, True])]
    assert monotone_drops(falling, +1) == [(20, 1.0, 30, 0.5)]


@pytest.mark.unit
def test_extra_sessions_for_one_specialty_at_one_site_go_exactly_there():
    """10 sessions a week at Imperial for ophthalmology: its ophthalmology sessions rise by 10, every other
    specialty's stay, other sites are untouched, and the theatre teams grow with the busiest day."""
    base = load_scenario(BASELINE)
    setting = LeverSetting(base.scenario, base.raw, "imperial", "ophthalmology")
    sets = LEVERS["theatre_sessions_per_week"].overrides(setting, 10)
    after = load_scenario(BASELINE, sets).scenario
    names = base.scenario.specialty_names

    def by_specialty(sc, site):
        from sim.model.theatres import weekly_timetable
        t = sc.sites[site].theatres
        days = weekly_timetable(dict(t.sessions_by_weekday), [t.specialty_session_shares.get(s, 0) for s in names])
        return {s: sum(day.count(i) for day in days) for i, s in enumerate(names)}

    before_counts, after_counts = by_specialty(base.scenario, "imperial"), by_specialty(after, "imperial")
    assert after_counts["ophthalmology"] == before_counts["ophthalmology"] + 10
    assert {s: n for s, n in after_counts.items() if s != "ophthalmology"} == {
        s: n for s, n in before_counts.items() if s != "ophthalmology"}
    assert after.sites["lnwh"] == base.scenario.sites["lnwh"]
    assert after.staff.establishment["imperial"]["surgeons"] > base.scenario.staff.establishment["imperial"]["surgeons"]
    assert after.staff.establishment["imperial"]["outpatient_clinicians"] == \
        base.scenario.staff.establishment["imperial"]["outpatient_clinicians"]


@pytest.mark.unit
def test_extra_slots_add_exactly_the_value_spread_by_current_share():
    base = load_scenario(BASELINE)
    setting = LeverSetting(base.scenario, base.raw)
    after = load_scenario(BASELINE, LEVERS["outpatient_first_slots_per_week"].overrides(setting, 1000)).scenario

    def total(sc):
        return sum(sum(site.outpatient_first_slots_per_week.values()) for site in sc.sites.values())
    assert total(after) - total(base.scenario) == pytest.approx(1000, abs=0.05)
    share = (base.scenario.sites["lnwh"].outpatient_first_slots_per_week["other"] / total(base.scenario))
    added = (after.sites["lnwh"].outpatient_first_slots_per_week["other"]
             - base.scenario.sites["lnwh"].outpatient_first_slots_per_week["other"])
    assert added == pytest.approx(1000 * share, abs=0.01)


@pytest.mark.unit
def test_percent_more_of_both_stages_adds_that_percent_of_each():
    base = load_scenario(BASELINE)
    after = load_scenario(BASELINE, LEVERS["clinic_and_theatre_capacity_percent"].overrides(
        LeverSetting(base.scenario, base.raw), 10)).scenario

    def sessions(sc):
        return sum(sum(site.theatres.sessions_by_weekday.values()) for site in sc.sites.values())

    def slots(sc):
        return sum(sum(site.outpatient_first_slots_per_week.values()) for site in sc.sites.values())
    assert sessions(after) - sessions(base.scenario) == round(0.1 * sessions(base.scenario))
    assert slots(after) == pytest.approx(1.1 * slots(base.scenario), abs=0.05)


def _solve_args(path: Path, out: Path, *extra: str) -> list[str]:
    return ["solve", str(path), "--target", "max_wait_weeks=52", "--by", BY.isoformat(), "--lever",
            "theatre_sessions_per_week", "--replications", "2", "--out", str(out), "--quiet", *extra]


@pytest.mark.integration
@pytest.mark.slow
def test_the_answer_is_the_same_on_one_and_two_jobs(tmp_path, capsys):
    path = write_scenario(tmp_path)
    tables = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        assert main(_solve_args(path, out, "--min", "90", "--max", "130", "--jobs", str(jobs))) == 0
        tables[jobs] = pd.read_csv(out / "solve.csv").drop(columns=["seconds"])
    pd.testing.assert_frame_equal(tables[1], tables[2])
    answer = tables[1].loc[tables[1]["answer"], "value"].iloc[0]
    printed = capsys.readouterr().out
    assert f"would need {answer:g} extra theatre sessions a week" in printed
    folder = tmp_path / "jobs1"
    for name in ("solve.csv", "solved_scenario.yaml", "solve.png", "solve.svg", "solve.md", "manifest.json"):
        assert (folder / name).is_file(), name
    solved = load_scenario(folder / "solved_scenario.yaml").scenario
    assert sum(solved.sites["site_a"].theatres.sessions_by_weekday.values()) == 7 * SESSIONS_PER_DAY + answer
    assert solved.horizon_weeks == 30, "the solved scenario keeps the file's horizon"
    assert "## What it would take" in (folder / "solve.md").read_text(encoding="utf-8")
    section = pd.read_excel(folder / "solve.xlsx", sheet_name=None)
    with_cost = ["cost"] if (folder / "solve_finance.csv").is_file() else []     # only with a finance section
    assert list(section) == ["what_it_would_take", "evaluations", *with_cost]
    first = section["what_it_would_take"]["What it would take"].tolist()
    assert first[0] in printed, "the workbook opens with the printed answer"
    evaluations = section["evaluations"].drop(columns=["seconds"])
    pd.testing.assert_frame_equal(evaluations, tables[1], check_dtype=False)


@pytest.mark.integration
def test_an_unreachable_target_says_so(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_solve_args(write_scenario(tmp_path), out, "--max", "20")) == 0
    printed = capsys.readouterr().out
    assert "Not reachable within [0, 20] extra theatre sessions a week" in printed
    table = pd.read_csv(out / "solve.csv")
    assert not table["meets_confidence"].any() and 20 in set(table["value"])
    assert not (out / "solved_scenario.yaml").exists()
    assert "Not reachable" in (out / "solve.md").read_text(encoding="utf-8")


@pytest.mark.integration
def test_a_target_already_met_needs_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["solve", str(write_scenario(tmp_path)), "--target", "list_at_most=1000000", "--by", BY.isoformat(),
                 "--lever", "theatre_sessions_per_week", "--replications", "2", "--out", str(out), "--quiet"]) == 0
    assert "no change to theatre_sessions_per_week is needed" in capsys.readouterr().out
    assert len(pd.read_csv(out / "solve.csv")) == 1


BAD = [
    (["--target", "fastest=1"], "--target"),
    (["--target", "max_wait_weeks=50"], "--target"),
    (["--target", "within_18_weeks=1.5"], "--target"),
    (["--lever", "more_money"], "--lever"),
    (["--by", "2021-13-01"], "--by"),
    (["--by", "2021-06-08"], "--by"),
    (["--min", "50", "--max", "10"], "--max"),
    (["--max", "1e9"], "--max"),
    (["--confidence", "1.5"], "--confidence"),
    (["--site", "nowhere"], "--site"),
    (["--specialty", "nowhere"], "--specialty"),
    (["--lever", "independent_sector_sessions_per_week"], "independent_sector_sessions_per_week"),
    (["--lever", "hub_productivity"], "--lever"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("extra", "option"), BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_input_exits_2_naming_the_option(tmp_path, capsys, extra, option):
    out = tmp_path / "out"
    args = _solve_args(write_scenario(tmp_path), out)
    for i in range(0, len(extra), 2):                      # replace an option given in the base arguments
        if extra[i] in args:
            at = args.index(extra[i])
            args[at + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and option in err[0], err
    assert not out.exists(), "nothing may be written"


@pytest.mark.unit
def test_target_parsing():
    assert parse_target("within_18_weeks=92%", BY).value == pytest.approx(0.92)
    assert parse_target("list_at_most=150000", BY).kind == "list_at_most"
    with pytest.raises(ScenarioError, match="--target"):
        parse_target("max_wait_weeks", BY)
    assert dataclasses.asdict(parse_target("max_wait_weeks=78", BY)) == {"kind": "max_wait_weeks", "value": 78.0,
                                                                          "by": BY}
