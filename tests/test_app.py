"""The web app's logic (sim.app.logic) and its page through Streamlit's own test harness (AppTest): the levers are
labelled from the schema and become --set lines only when moved, a run from the page writes the command line's
results folder with the levers applied and shows its headline, a broken scenario gets the command line's own
error lines, Cancel stops a run with nothing written; a solve from the page is the command line's `solve` (same folder,
same answer) and Cancel stops it in the middle of an evaluation. The page in a real browser:
tests/test_app_browser.py."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import ROOT
from sim.app import logic
from sim.cli.main import main
from sim.scenario.schema import (
    Delivery,
    OutpatientFollowUps,
    Referrals,
    Removals,
    TheatreRules,
    ValidationRound,
)

streamlit_testing = pytest.importorskip("streamlit.testing.v1",
                                        reason="streamlit is not installed (pip install -e '.[dev]')")

PAGE = str(ROOT / "sim" / "app" / "page.py")
BASELINE_ID = "shipped-baseline"
SHORT = "horizon_weeks=8"         # eight weeks: a replication takes under a second
# A solve that finds its answer in three evaluations of two 8-week replications: the waiting list at most 189,000 on
# 2 August 2021 (it grows by about 2,000 a week from 179,000), by diverting more referrals to advice and guidance
SOLVE_BY = dt.date(2021, 8, 2)
SOLVE_LIST_AT_MOST = 189_000
BROKEN_YAML = ("extends: {parent}\nname: broken_upload\ntitle: Broken\n"
               "referrals:\n  advice_and_guidance_share: 1.5\n")


@pytest.fixture()
def results_root(tmp_path, monkeypatch):
    """Runs and uploads go to a temporary results root, one process per run."""
    root = tmp_path / "results"
    monkeypatch.setenv("NWL_RESULTS_ROOT", str(root))
    monkeypatch.setenv("NWL_APP_JOBS", "1")
    return root


def baseline():
    scenario, problems = logic.check_scenario(logic.shipped_scenarios()["baseline"], [])
    assert scenario is not None, problems
    return scenario


@pytest.mark.unit
def test_levers_take_their_labels_and_units_from_the_schema():
    levers = {lever.key: lever for lever in logic.levers_for(baseline())}
    aag = levers["referrals.advice_and_guidance_share"]
    assert aag.label == Referrals.model_fields["advice_and_guidance_share"].title
    assert aag.unit == "share"
    slots = levers["delivery.clinic_slots_scale"]
    assert slots.label == Delivery.model_fields["clinic_slots_scale"].title and slots.unit == "multiplier"
    assert levers["surgical_hubs.hubs.central_middlesex.opens"].value == dt.date(2021, 9, 6)
    assert {"covid.wave_peak_multiplier", "referrals.demand_growth_per_year"} <= set(levers)


@pytest.mark.unit
def test_cancellations_removals_and_a_vaccination_surge_are_levers_where_the_scenario_has_them():
    levers = {lever.key: lever for lever in logic.levers_for(baseline())}
    cancelled = levers["theatre_rules.on_the_day_cancellation_rate"]
    assert cancelled.label == TheatreRules.model_fields["on_the_day_cancellation_rate"].title
    assert cancelled.value == baseline().theatre_rules.on_the_day_cancellation_rate
    assert levers["removals.rate_multiplier"].label == Removals.model_fields["rate_multiplier"].title
    assert not any(key.startswith("vaccination.surge") for key in levers), "the baseline has no surge to move"
    surge_file = logic.shipped_scenarios()["vaccination_surge"]
    surge_scenario, problems = logic.check_scenario(surge_file, [])
    assert surge_scenario is not None, problems
    start = {lever.key: lever for lever in logic.levers_for(surge_scenario)}["vaccination.surge.start"].value
    later = start + dt.timedelta(weeks=2)
    moved = logic.lever_overrides(surge_scenario, {"vaccination.surge.start": later,
                                                   "removals.rate_multiplier": 1.5})
    assert moved == [f"vaccination.surge.start={later.isoformat()}", "removals.rate_multiplier=1.5"]
    checked, problems = logic.check_scenario(surge_file, moved)
    assert checked is not None and checked.vaccination is not None and checked.vaccination.surge is not None, problems
    assert checked.vaccination.surge.start == later and checked.removals.rate_multiplier == 1.5


@pytest.mark.unit
def test_pifu_is_a_lever_with_the_schemas_labels_and_reaches_the_scenario():
    levers = {lever.key: lever for lever in logic.levers_for(baseline())}
    share = levers["outpatient_follow_ups.pifu_share"]
    assert share.value == 0.0 and share.unit == "share" and (share.low, share.high) == (0.0, 1.0)
    title = OutpatientFollowUps.model_fields["pifu_share"].title or ""
    assert share.label.lower().endswith(title.lower())
    assert "outpatient_follow_ups.pifu_freed_slots_to_firsts" in levers, "the plan's follow-ups are ring-fenced"
    moved = logic.lever_overrides(baseline(), {share.key: 0.075,
                                               "outpatient_follow_ups.pifu_freed_slots_to_firsts": 1.0})
    checked, problems = logic.check_scenario(logic.shipped_scenarios()["baseline"], moved)
    assert checked is not None and checked.outpatient_follow_ups is not None, problems
    assert checked.outpatient_follow_ups.pifu_share == 0.075
    assert checked.outpatient_follow_ups.pifu_freed_slots_to_firsts == 1.0
    pooled, problems = logic.check_scenario(logic.shipped_scenarios()["baseline"],
                                            ["outpatient_follow_ups.slot_rule=common_pool"])
    assert pooled is not None, problems
    assert "outpatient_follow_ups.pifu_freed_slots_to_firsts" not in {lv.key for lv in logic.levers_for(pooled)}


@pytest.mark.unit
def test_each_validation_round_has_its_share_and_date_as_levers_labelled_from_the_schema():
    scenario = baseline()
    rounds = scenario.removals.validation_rounds
    assert rounds, "the baseline validates its long waiters"
    levers = {lever.key: lever for lever in logic.levers_for(scenario)}
    share = levers["removals.validation_rounds.0.share_removed"]
    date = levers["removals.validation_rounds.0.date"]
    assert share.unit == "share" and (share.low, share.high) == (0.0, 1.0)
    schema_label = (ValidationRound.model_fields["share_removed"].title or "Share removed").lower()
    assert share.label.endswith(schema_label) and f"{rounds[0].min_weeks_waited:g}+ weeks" in share.label
    assert (share.value, date.value, date.kind) == (rounds[0].share_removed, rounds[0].date, "date")
    assert not any(".validation_rounds.1." in key for key in levers), "one lever pair per round the scenario has"
    later = rounds[0].date + dt.timedelta(weeks=4)
    moved = logic.lever_overrides(scenario, {share.key: 0.25, date.key: later})
    assert moved == ["removals.validation_rounds.0.share_removed=0.25",
                     f"removals.validation_rounds.0.date={later.isoformat()}"]
    checked, problems = logic.check_scenario(logic.shipped_scenarios()["baseline"], moved)
    assert checked is not None, problems
    assert (checked.removals.validation_rounds[0].share_removed, checked.removals.validation_rounds[0].date) == \
        (0.25, later)
    no_rounds, problems = logic.check_scenario(logic.shipped_scenarios()["baseline"], ["removals.validation_rounds=[]"])
    assert no_rounds is not None and not no_rounds.removals.validation_rounds, problems
    assert not any("validation_rounds" in lever.key for lever in logic.levers_for(no_rounds))


@pytest.mark.unit
def test_the_wave_timing_lever_moves_every_waves_dates_by_whole_weeks():
    path = logic.shipped_scenarios()["as_happened_2021_22"]
    scenario, problems = logic.check_scenario(path, [])
    assert scenario is not None and scenario.covid is not None and len(scenario.covid.waves) >= 2, problems
    assert logic.lever_overrides(scenario, {logic.WAVES_WEEKS_LATER: 0}) == [], "left alone, it changes nothing"
    moved = logic.lever_overrides(scenario, {logic.WAVES_WEEKS_LATER: 3})
    assert len(moved) == 3 * len(scenario.covid.waves)
    checked, problems = logic.check_scenario(path, moved)
    assert checked is not None and checked.covid is not None, problems
    for before, after in zip(scenario.covid.waves, checked.covid.waves, strict=True):
        assert (after.start - before.start, after.peak - before.peak, after.end - before.end) == \
            (dt.timedelta(weeks=3),) * 3
        assert after.peak_inpatients == before.peak_inpatients


@pytest.mark.unit
def test_only_moved_levers_become_set_lines_and_extra_sessions_add_to_each_open_weekday():
    scenario = baseline()
    values = {lever.key: lever.value for lever in logic.levers_for(scenario)}
    assert logic.lever_overrides(scenario, values) == [], "levers left alone must not change the scenario"
    values["referrals.advice_and_guidance_share"] = 0.25
    values["surgical_hubs.hubs.charing_cross.opens"] = dt.date(2021, 10, 4)
    sessions = scenario.sites["imperial"].theatres.sessions_by_weekday
    lines = logic.lever_overrides(scenario, values, "imperial", 3)
    assert lines[:2] == ["surgical_hubs.hubs.charing_cross.opens=2021-10-04",
                         "referrals.advice_and_guidance_share=0.25"]
    assert lines[2:] == [f"sites.imperial.theatres.sessions_by_weekday.{day}={sessions[day] + 3}"
                         for day in logic.WEEKDAYS_OPEN if sessions[day] > 0]
    changed, problems = logic.check_scenario(logic.shipped_scenarios()["baseline"], lines)
    assert changed is not None, problems
    assert changed.sites["imperial"].theatres.sessions_by_weekday["mon"] == sessions["mon"] + 3


# While a job runs, the page is drawn again every so often (as the browser's refresh does) and at once when it ends.
# Each drawing takes the interpreter for most of a second, from the job's thread too: every 0.3 s, the job ran at
# half its speed.
REDRAW_SECONDS = 2.0


def _run_page_until_done(at, timeout_seconds: float = 120):
    started = time.monotonic()
    job = at.session_state["job"]
    while not job.wait(REDRAW_SECONDS):
        assert time.monotonic() - started < timeout_seconds, "the run did not finish"
        at.run()
    at.run()
    return job


@pytest.mark.integration
def test_a_run_from_the_page_writes_the_command_lines_folder_with_the_lever_and_shows_its_headline(results_root):
    at = streamlit_testing.AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="shipped").value == "baseline"
    at.number_input(key=f"lever:{BASELINE_ID}:referrals.advice_and_guidance_share").set_value(0.2)
    at.text_area(key=f"set:{BASELINE_ID}").input(SHORT)
    at.number_input(key=f"reps:{BASELINE_ID}").set_value(2)
    at.button(key="run").click().run()
    job = _run_page_until_done(at)
    assert not at.exception
    assert job.state == "finished", job.errors
    assert job.done == 2 and job.total == 2
    # the folder is where the command line puts it, and holds the run as the command line would have made it
    assert job.folder is not None and job.folder.parent == results_root / "baseline"
    manifest = json.loads((job.folder / "manifest.json").read_text())
    assert manifest["overrides"] == ["referrals.advice_and_guidance_share=0.2", SHORT]
    assert manifest["replications"] == 2
    # it records the command the page ran, as typed at the command line, not the web server's own command line
    assert manifest["command"] == job.command_line() and "--set" in manifest["command"]
    as_run = yaml.safe_load((job.folder / "scenario.yaml").read_text())
    assert as_run["referrals"]["advice_and_guidance_share"] == 0.2 and as_run["horizon_weeks"] == 8
    # the page shows the folder's own headline: the median 52-week clearance, as read back from the folder
    view = logic.view_run(job.folder)
    shown = [m for m in at.metric if m.label.startswith("Nobody waiting over 52 weeks")]
    assert shown and shown[0].value == view.clearance.iloc[0]["median date"]
    assert any(view.lines[0] in code.value for code in at.code)
    assert [p.name for p in view.charts.values()] == [logic.CHART_52_WEEKS, logic.CHART_LIST, logic.CHART_BY_PROVIDER]
    # finance by financial year: the median replication's figures of finance_by_year.csv in £m, shown on the page
    saved = pd.read_csv(job.folder / "finance_by_year.csv")
    year = next(c for c in saved.columns if "/" in c)
    net = saved[(saved["metric"] == "net_position") & (saved["statistic"] == "p50")][year].iloc[0]
    assert view.finance is not None
    assert view.finance.set_index("£m, median replication").loc["Net position", year] == round(net / 1e6, 1)
    assert any(frame.value.equals(view.finance) for frame in at.dataframe), "the finance table is not on the page"
    # eight weeks from 7 June 2021 cover July 2021: the report's table against the published figures, on the page
    published = pd.read_csv(ROOT / "data" / "observed" / "nwl_monthly.csv", index_col="month")
    assert view.published is not None and view.published.columns[1] == "Published, Jul 2021"
    listed = view.published.set_index("Series").loc["Waiting list", "Published, Jul 2021"]
    assert listed == f"{published.loc['2021-07', 'waiting_list']:,}" and "England" in view.published_note
    assert any(frame.value.equals(view.published) for frame in at.dataframe), "the published table is not shown"
    assert set(view.downloads) == {"report.html", "results.xlsx", "scenario.yaml"}
    assert [r.folder for r in logic.past_runs()] == [job.folder]


@pytest.mark.integration
def test_a_broken_scenario_gets_the_command_lines_error_lines_and_nothing_is_kept(results_root, tmp_path, capsys):
    parent = json.dumps(str(ROOT / "scenarios" / "baseline.yaml"))
    text = BROKEN_YAML.format(parent=parent)
    broken = tmp_path / "pasted.yaml"
    broken.write_text(text)
    assert main(["validate", str(broken)]) == 2
    cli_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert cli_lines and "advice_and_guidance_share" in cli_lines[0]

    at = streamlit_testing.AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="source").set_value("Paste YAML").run()
    at.text_area(key="pasted").input(text)
    at.button(key="check-pasted").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["\n\n".join(line.replace(str(broken), "pasted.yaml") for line in cli_lines)]
    assert not list((results_root / logic.UPLOADS_DIR).iterdir()), "a refused upload must not be kept"
    assert "run" not in [b.key for b in at.button], "a refused scenario must offer no Run"


@pytest.mark.integration
def test_an_upload_extending_a_shipped_scenario_by_name_is_kept_under_results(results_root):
    path, problems = logic.save_upload("mine.yaml", b"extends: baseline.yaml  # as the shipped files do\n"
                                                    b"name: mine\ntitle: Mine\n")
    assert problems == [] and path is not None
    assert path.parent == results_root / logic.UPLOADS_DIR
    scenario, _ = logic.check_scenario(path, [])
    assert scenario is not None and scenario.name == "mine"
    too_big, problems = logic.save_upload("big.yaml", b"#" * (logic.MAX_UPLOAD_BYTES + 1))
    assert too_big is None and "at most" in problems[0] and problems[0].startswith("error: big.yaml:")


@pytest.mark.integration
def test_cancel_stops_the_run_at_the_next_replication_and_writes_nothing(results_root):
    job = logic.RunJob(logic.shipped_scenarios()["baseline"], [SHORT], replications=30, seed=1).start()
    started = time.monotonic()
    while job.done == 0 and job.state == "running":
        assert time.monotonic() - started < 60
        time.sleep(0.05)
    job.cancel()
    assert job.wait(60)
    assert job.state == "cancelled" and job.done < 30
    assert not (results_root / "baseline").exists() or not any((results_root / "baseline").iterdir())


@pytest.mark.integration
def test_runs_take_turns_and_each_is_told_its_own_folder(results_root):
    """Two sessions pressing Run at once: the second waits for the first, and each is told the folder it wrote."""
    first = logic.RunJob(logic.shipped_scenarios()["baseline"], [SHORT], replications=1, seed=1).start()
    second = logic.RunJob(logic.shipped_scenarios()["baseline"], [SHORT, "referrals.advice_and_guidance_share=0.3"],
                          replications=1, seed=1).start()
    assert first.wait(120) and second.wait(120)
    assert first.state == second.state == "finished", first.errors + second.errors
    assert first.folder != second.folder
    for job in (first, second):
        assert json.loads((job.folder / "manifest.json").read_text())["overrides"] == job.overrides


def _view(seed, weeks_52):
    replications = pd.DataFrame({"scenario": "baseline", "replication": range(len(weeks_52)),
                                 "weeks_to_clear_52w": weeks_52, "weeks_to_clear_78w": [5.0] * len(weeks_52),
                                 "weeks_to_clear_104w": [1.0] * len(weeks_52)})
    return logic.RunView(ROOT, [], pd.DataFrame(), [], {}, {}, pd.DataFrame(), replications, seed)


@pytest.mark.unit
def test_compare_pairs_replications_only_when_the_seeds_match():
    paired, lines = logic.paired_differences(_view(7, [10.0, 12.0, 20.0]), _view(7, [8.0, 13.0, float("nan")]))
    row = paired.set_index("metric").loc["weeks_to_clear_52w_difference"]
    assert (row["pairs"], row["pairs_not_cleared"], row["p50"]) == (2, 1, -0.5)   # -2 and +1; the third not cleared
    assert paired.set_index("metric").loc["weeks_to_clear_78w_difference", "p50"] == 0
    assert "second" in lines[1] and "2 pairs, 1 not cleared" in lines[1]
    unpaired, why = logic.paired_differences(_view(7, [10.0]), _view(8, [10.0]))
    assert unpaired is None and "different seeds (7 and 8)" in why[0]


def _solve_on_the_page(at, replications: int = 2):
    """The Solve tab's form filled for the short solve above, and Solve pressed."""
    at.selectbox(key="solve-target").set_value("list_at_most").run()
    at.number_input(key="solve-list").set_value(SOLVE_LIST_AT_MOST)
    at.date_input(key=f"solve-by:{BASELINE_ID}").set_value(SOLVE_BY)
    at.selectbox(key="solve-lever").set_value("advice_and_guidance_share").run()
    at.text_input(key="solve-min").input("0.1")
    at.text_input(key="solve-max").input("0.2")
    at.text_input(key="solve-step").input("0.05")
    at.number_input(key=f"solve-reps:{BASELINE_ID}").set_value(replications)
    at.button(key="solve").click().run()


def _plain(markdown: str) -> str:
    """Markdown as it reads: the writer's backslash escapes taken off, bold marks dropped."""
    return re.sub(r"\\(.)", r"\1", markdown.strip().removeprefix("**").removesuffix("**"))


@pytest.mark.integration
def test_a_solve_from_the_page_is_the_command_lines_solve_with_its_answer_evaluations_and_cost(
        results_root, tmp_path, capsys):
    at = streamlit_testing.AppTest.from_file(PAGE, default_timeout=60).run()
    _solve_on_the_page(at)
    assert not at.exception
    job = at.session_state["solve-job"]
    started = time.monotonic()
    while not job.wait(REDRAW_SECONDS):
        assert time.monotonic() - started < 120, "the solve did not finish"
        at.run()
    at.run()
    assert not at.exception
    assert job.state == "finished", job.errors
    assert job.folder is not None and job.folder.parent == results_root / "solve-baseline"
    assert {p.name for p in job.folder.iterdir()} >= {"solve.csv", "solve.md", "solve.xlsx", "solved_scenario.yaml",
                                                      "solve_finance.csv", "manifest.json"}
    # the command line, given the same options, answers the same, in the same evaluations
    capsys.readouterr()
    assert main([*job.argv(), "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    cli_answer = capsys.readouterr().out.splitlines()[0]
    page_text = [_plain(m.value) for m in at.markdown]
    assert cli_answer in page_text, "the page does not show the command line's answer"
    drop = ["seconds"]
    app_table = pd.read_csv(job.folder / "solve.csv").drop(columns=drop)
    pd.testing.assert_frame_equal(app_table, pd.read_csv(tmp_path / "cli" / "solve.csv").drop(columns=drop))
    manifest = json.loads((job.folder / "manifest.json").read_text())
    assert manifest["answer"] == app_table.loc[app_table["answer"], "value"].iloc[0]
    assert manifest["lever"] == "advice_and_guidance_share" and manifest["replications"] == 2
    # the evaluations and the cost on the page are the folder's
    view = logic.view_solve(job.folder)
    assert len(view.evaluations) == len(app_table) == job.stages
    assert any(frame.value.equals(view.evaluations) for frame in at.dataframe)
    assert view.cost is not None and any(frame.value.equals(view.cost) for frame in at.dataframe)
    cost_total = pd.read_csv(job.folder / "solve_finance.csv").query("metric == 'cost_total'")
    assert view.cost.query("what == 'Cost'")["difference (£, mean)"].iloc[0] == \
        round(cost_total["difference_mean"].iloc[0])
    assert set(view.downloads) == {"solve.md", "solve.xlsx", "solved_scenario.yaml"}
    # a solve folder is a past solve, not a past run
    assert [s.folder for s in logic.past_solves()] == [job.folder]
    assert logic.past_runs() == []


@pytest.mark.integration
def test_cancel_stops_a_solve_in_the_middle_of_an_evaluation_and_writes_nothing(results_root):
    job = logic.SolveJob(logic.shipped_scenarios()["baseline"], [], replications=20, seed=1,
                         target=f"list_at_most={SOLVE_LIST_AT_MOST}", by=SOLVE_BY,
                         lever="outpatient_first_slots_per_week").start()
    started = time.monotonic()
    while job.done == 0 and job.state == "running":
        assert time.monotonic() - started < 60
        time.sleep(0.05)
    job.cancel()
    assert job.cancelling or job.state != "running"
    assert job.wait(60)
    assert job.state == "cancelled" and job.stages == 1 and job.stage_done < 20, "not stopped in the first evaluation"
    folder = results_root / "solve-baseline"
    assert not folder.exists() or not any(folder.iterdir()), "a cancelled solve must leave no folder"


_UPLOAD_CLOCK = [time.time() - 1000]


def _upload(name: str, text: str = "extends: baseline.yaml\nname: mine\ntitle: Mine\n"):
    """An upload saved (and the older ones pruned); then dated a second after the one before, so that the uploads'
    order is the order they were made in even within one second."""
    path, problems = logic.save_upload(name, text.encode("utf-8"))
    assert path is not None, problems
    _UPLOAD_CLOCK[0] += 1
    os.utime(path, (_UPLOAD_CLOCK[0], _UPLOAD_CLOCK[0]))
    return path


@pytest.mark.integration
def test_uploads_are_kept_only_among_the_newest_and_never_while_a_run_reads_them(results_root, monkeypatch):
    monkeypatch.setattr(logic, "KEEP_UPLOADS", 3)
    first = _upload("a.yaml")
    same_name = _upload("a.yaml", "extends: baseline.yaml\nname: other\ntitle: Other\n")
    assert same_name != first, "two uploads of one name in the same second must not share a file"
    assert "name: mine" in first.read_text() and "name: other" in same_name.read_text()
    logic._hold(first)                                  # as a run or solve reading it does
    kept = [first, same_name]
    for i in range(3):
        kept.append(_upload(f"b{i}.yaml"))
    bad, _ = logic.save_upload("bad.yaml", b"extends: baseline.yaml\nreferrals:\n  advice_and_guidance_share: 1.5\n")
    assert bad is None
    on_disk = sorted((results_root / logic.UPLOADS_DIR).iterdir())
    assert on_disk == sorted([first, *kept[-3:]]), "the newest three, and the one being read"
    logic._let_go(first)
    assert logic.prune_uploads() == [first]
    assert sorted((results_root / logic.UPLOADS_DIR).iterdir()) == sorted(kept[-3:])


@pytest.mark.integration
def test_a_running_job_keeps_its_upload_until_it_ends(results_root):
    path = _upload("mine.yaml")
    job = logic.RunJob(path, [SHORT], replications=30, seed=1).start()
    started = time.monotonic()
    while job.done == 0 and job.state == "running":
        assert time.monotonic() - started < 60
        time.sleep(0.05)
    assert logic.prune_uploads(keep=0) == [] and path.is_file(), "removed while the run reads it"
    job.cancel()
    assert job.wait(60) and job.state == "cancelled"
    assert logic.prune_uploads(keep=0) == [path] and not path.exists()


@pytest.mark.integration
def test_the_page_saves_its_upload_again_when_it_was_removed_as_one_of_the_oldest(results_root):
    at = streamlit_testing.AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="source").set_value("Paste YAML").run()
    at.button(key="check-pasted").click().run()
    assert not at.exception

    def kept_path():
        shown = [s.value for s in at.success if "kept as" in s.value]
        assert len(shown) == 1, [s.value for s in at.success]
        return Path(shown[0].rsplit("kept as ", 1)[1])

    before = kept_path()
    before = before if before.is_absolute() else ROOT / before
    assert before.is_file()
    assert logic.prune_uploads(keep=0) == [before]
    at.run()
    after = kept_path()
    after = after if after.is_absolute() else ROOT / after
    assert after != before and after.is_file() and not before.exists()
    assert at.button(key="run") is not None and not at.exception
