"""The web app's page (Streamlit): `make app` serves it on 127.0.0.1.

Run: choose a shipped scenario, upload one or paste its YAML, move the levers, press Run; the run goes to a
background thread (sim.app.logic.RunJob) and the page shows its progress by replication, with Cancel. The result
is read back from the folder the run wrote under results/, like any past run. Solve: "what would it take" for the
scenario as set on the Run tab, the command line's `solve` in the same kind of thread (sim.app.logic.SolveJob).
Past runs: any finished run folder. Compare: two runs' summaries side by side.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from sim.app import logic

st.set_page_config(page_title="NWL capacity simulator: what if", layout="wide")
RUNNING_REFRESH_SECONDS = 0.5
MIME = {"report.html": "text/html", "results.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "scenario.yaml": "application/x-yaml", "solve.md": "text/markdown",
        "solve.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "solved_scenario.yaml": "application/x-yaml"}


@dataclasses.dataclass(frozen=True)
class Chosen:
    """The scenario as set on the Run tab: its file, its id, the levers' and other changes, the seed."""

    path: Path
    scenario_id: str
    scenario: Any
    overrides: list[str]
    seed: int


def busy() -> bool:
    """A run or a solve of this session is running: Run and Solve wait for it (shown disabled)."""
    return any(job is not None and job.state == "running"
               for job in (st.session_state.get("job"), st.session_state.get("solve-job")))


def show_errors(lines: list[str], where: Any = st) -> None:
    """The command line's error lines, as it prints them."""
    where.error("\n\n".join(lines))


def show_run(view: logic.RunView, key: str) -> None:
    """A finished run: the headline, clearance dates with ranges, the chance of meeting the target, the charts
    the run drew, finance, the run against the published months it covers, and its files to download."""
    st.markdown(f"**{view.lines[0]}**  \n`{logic.shown_path(view.folder)}`")
    if len(view.clearance):
        first = view.clearance.iloc[0]
        st.metric(f"Nobody waiting over {first['nobody waiting over']} (median)", first["median date"],
                  help=f"90% of replications from {first['90% of replications from']} to {first['to']}")
        st.dataframe(view.clearance, hide_index=True, key=f"{key}-clearance")
    for line in view.chances:
        st.markdown(f"- {line}")
    with st.expander("The headline as the command line prints it"):
        st.code("\n".join(view.lines), language=None)
    columns = st.columns(2)
    for i, (label, path) in enumerate(view.charts.items()):
        columns[i % 2].image(str(path), caption=f"{label} chart ({path.name})")
    if view.finance is not None:
        st.markdown("**Finance by NHS financial year** (April to March; the first and last are part years)")
        st.dataframe(view.finance, hide_index=True, key=f"{key}-finance")
    if view.published is not None:
        st.markdown("**Against the published figures** (as in the report)")
        st.dataframe(view.published, hide_index=True, key=f"{key}-published")
        with st.expander("What is compared, and what it says"):
            st.markdown(view.published_note)
    download_buttons(view.downloads, key)


def download_buttons(files: dict[str, Path], key: str) -> None:
    for column, (name, path) in zip(st.columns(3), files.items(), strict=False):
        column.download_button(f"Download {name}", path.read_bytes(), file_name=name, mime=MIME.get(name),
                               key=f"{key}-download-{name}")


def choose_scenario() -> tuple[Path | None, str]:
    """The scenario file to run and an id for it (the levers' keys change with it)."""
    source = st.radio("Scenario", ["Shipped scenario", "Upload a YAML file", "Paste YAML"], horizontal=True,
                      key="source")
    if source == "Shipped scenario":
        shipped = logic.shipped_scenarios()
        names = list(shipped)
        name = st.selectbox("Shipped scenario (scenarios/)", names, key="shipped",
                            index=names.index("baseline") if "baseline" in names else 0)
        return shipped[name], f"shipped-{name}"
    if source == "Upload a YAML file":
        upload = st.file_uploader(f"Scenario YAML (at most {logic.MAX_UPLOAD_BYTES // 1000} kB; it may "
                                  "`extends:` a shipped scenario by name)", type=["yaml", "yml"], key="upload")
        if upload is None:
            return None, ""
        return _checked_upload(upload.name, upload.getvalue(), f"upload-{upload.file_id}")
    text = st.text_area("Scenario YAML (as in a file; `extends: baseline.yaml` and change a few keys)",
                        value="extends: baseline.yaml\nname: my_scenario\ntitle: My scenario\n", height=200,
                        key="pasted")
    text_id = "pasted-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    if st.button("Check this YAML", key="check-pasted"):
        st.session_state["pasted-id"] = text_id
    if st.session_state.get("pasted-id") != text_id:     # edited since it was checked: check it again first
        return None, ""
    return _checked_upload("pasted.yaml", text.encode("utf-8"), text_id)


def _checked_upload(name: str, data: bytes, upload_id: str) -> tuple[Path | None, str]:
    """An upload checked once (by the command line's loader) and remembered for the session."""
    checked = st.session_state.setdefault("checked-uploads", {})
    kept = checked.get(upload_id, (None, []))[0]
    if upload_id not in checked or (kept is not None and not kept.is_file()):    # new, or removed as one of the oldest
        checked[upload_id] = logic.save_upload(name, data)
    path, problems = checked[upload_id]
    if problems:
        show_errors(problems)
        return None, ""
    st.success(f"{name}: checked; kept as {logic.shown_path(path)}")
    return path, upload_id


def lever_controls(scenario: Any, scenario_id: str) -> tuple[dict[str, Any], str | None, int]:
    """The levers as form controls, labelled from the schema, at the scenario's own values."""
    values: dict[str, Any] = {}
    columns = st.columns(2)
    for i, lever in enumerate(logic.levers_for(scenario)):
        column = columns[i % 2]
        key = f"lever:{scenario_id}:{lever.key}"
        label = lever.label + logic.unit_suffix(lever.unit)
        if lever.kind == "date":
            values[lever.key] = column.date_input(label, value=lever.value, help=lever.help or None, key=key,
                                                  min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1))
        elif lever.kind == "int":
            values[lever.key] = column.number_input(label, value=int(lever.value), min_value=int(lever.low or 0),
                                                    max_value=int(lever.high or 0), step=1, help=lever.help or None,
                                                    key=key)
        else:
            values[lever.key] = column.number_input(label, value=float(lever.value), min_value=lever.low,
                                                    max_value=lever.high, step=0.01, format="%.4g",
                                                    help=lever.help or None, key=key)
    site = columns[0].selectbox("Site for extra theatre sessions", scenario.site_names, key=f"site:{scenario_id}")
    extra = columns[1].number_input(logic.sessions_label(), value=0, min_value=-1000, max_value=1000, step=1,
                                    key=f"extra:{scenario_id}")
    return values, site, int(extra)


def run_panel() -> Chosen | None:
    """The scenario, its levers and Run; the scenario as set here is also what the Solve tab solves."""
    path, scenario_id = choose_scenario()
    if path is None:
        return None
    scenario, problems = logic.check_scenario(path, [])
    if scenario is None:
        show_errors(problems)
        return None
    st.caption(scenario.description or scenario.title)
    values, site, extra = lever_controls(scenario, scenario_id)
    set_text = st.text_area("Other changes, one `dotted.key=value` a line (as `--set` at the command line)",
                            key=f"set:{scenario_id}", height=80,
                            placeholder="horizon_weeks=52\nsites.imperial.elective_beds=120")
    left, right = st.columns(2)
    default_reps = scenario.run.replications if isinstance(scenario.run.replications, int) else 10
    replications = left.number_input("Replications", min_value=1, max_value=1000, value=min(default_reps, 10),
                                     step=1, key=f"reps:{scenario_id}")
    seed = right.number_input("Seed", min_value=0, value=scenario.run.seed, step=1, key=f"seed:{scenario_id}")
    overrides = logic.lever_overrides(scenario, values, site, extra) + logic.parse_set_lines(set_text)
    if st.button("Run", type="primary", disabled=busy(), key="run"):
        checked, problems = logic.check_scenario(path, overrides)
        if checked is None:
            st.session_state["run-problems"] = problems
        else:
            st.session_state.pop("run-problems", None)
            st.session_state["job"] = logic.RunJob(path, overrides, int(replications), int(seed),
                                                   jobs=logic.app_jobs()).start()
            st.rerun()
    if st.session_state.get("run-problems"):
        show_errors(st.session_state["run-problems"])
    progress_panel()
    return Chosen(path, scenario_id, scenario, overrides, int(seed))


def live(panel: Callable[[], None], job: logic.CommandJob | None) -> None:
    """Draw `panel` as a fragment, redrawn on its own every RUNNING_REFRESH_SECONDS while `job` runs and not
    otherwise: each redraw takes Python's interpreter lock from the thread running the model (a run on one process
    ran three times slower with two panels polling twice a second), so an idle panel does not poll."""
    running = job is not None and job.state == "running"
    st.fragment(panel, run_every=RUNNING_REFRESH_SECONDS if running else None)()


def progress_panel() -> None:
    live(_progress_panel, st.session_state.get("job"))


def _progress_panel() -> None:
    """The current run: its progress while it runs (redrawn twice a second), then its result."""
    job: logic.RunJob | None = st.session_state.get("job")
    if job is None:
        return
    if job.state == "running":
        st.progress(job.done / max(job.total, 1),
                    text="Waiting for another run on this server to finish" if job.queued
                    else f"Running: {job.done} of {job.total} replications done")
        if st.button("Cancelling…" if job.cancelling else "Cancel", key="cancel", disabled=job.cancelling,
                     help="stops at the next finished replication, as Ctrl-C does: nothing is written"):
            job.cancel()
        st.caption(f"At the command line: `{job.command_line()}`")
        st.session_state["was-running"] = True
        return
    if st.session_state.pop("was-running", False):
        st.rerun(scope="app")           # the whole page, so the result shows outside this fragment too
    if job.state == "cancelled":
        st.warning(f"Cancelled after {job.done} of {job.total} replications; nothing was written.")
    elif job.state == "failed":
        show_errors(job.errors)
    elif job.folder is not None:
        st.success(f"Finished in {job.finished_seconds or 0:.1f} s: {logic.shown_path(job.folder)}")
        show_run(logic.view_run(job.folder), key="current")


def past_panel() -> None:
    runs = logic.past_runs()
    if not runs:
        st.info(f"No runs under {logic.results_root()} yet.")
        return
    chosen = st.selectbox("Run", runs, format_func=lambda r: r.label, key=f"past:{runs[0].folder}")
    if chosen.overrides:
        st.caption("Changes: " + ", ".join(f"`{o}`" for o in chosen.overrides))
    show_run(logic.view_run(chosen.folder), key="past")


def compare_panel() -> None:
    runs = logic.past_runs()
    if len(runs) < 2:
        st.info("Compare needs two finished runs.")
        return
    left, right = st.columns(2)
    newest = runs[0].folder       # in the keys: after a new run the choices start again at the newest two
    first = left.selectbox("First run", runs, index=1, format_func=lambda r: r.label, key=f"compare-first:{newest}")
    second = right.selectbox("Second run", runs, index=0, format_func=lambda r: r.label,
                             key=f"compare-second:{newest}")
    a, b = logic.view_run(first.folder), logic.view_run(second.folder)
    for column, view, run in ((left, a, first), (right, b, second)):
        column.code("\n".join(view.lines), language=None)
        column.caption("Changes: " + (", ".join(run.overrides) or "none"))
    paired, lines = logic.paired_differences(a, b)
    st.markdown("**Paired differences** (second minus first, in weeks; positive is later)")
    st.code("\n".join(lines), language=None)
    if paired is not None:
        st.dataframe(paired, hide_index=True, key="compare-paired")
    st.markdown("**Summaries side by side**")
    st.dataframe(logic.side_by_side(a, b), hide_index=True, key="compare-table")


def solve_panel(chosen: Chosen | None) -> None:
    """What would it take: the smallest change to one lever that meets a target by a date, in enough of the
    replications (the command line's `solve`), for the scenario as set on the Run tab."""
    st.markdown("**What would it take?** The smallest value of one lever at which enough replications meet a target "
                "by a date: the command line's `solve`, for the scenario as set on the Run tab.")
    if chosen is None:
        st.info("Choose a scenario on the Run tab first.")
    else:
        solve_form(chosen)
        solve_progress_panel()
    past = logic.past_solves()
    if past:
        with st.expander(f"Past solves ({len(past)})"):
            shown = st.selectbox("Solve", past, format_func=lambda s: s.label, key=f"past-solve:{past[0].folder}")
            show_solve(logic.view_solve(shown.folder), key="past-solve")


def solve_form(chosen: Chosen) -> None:
    scenario, sid = chosen.scenario, chosen.scenario_id
    changes = ", ".join(f"`{o}`" for o in chosen.overrides) or "none"
    st.caption(f"Scenario: {scenario.title}. Changes from the Run tab: {changes}. Seed {chosen.seed}.")
    left, right = st.columns(2)
    kinds: list[str] = list(logic.TARGET_CHOICES)
    kind = left.selectbox("Target", kinds, format_func=lambda k: logic.TARGET_CHOICES[k], key="solve-target")
    value: float | None
    if kind == "max_wait_weeks":
        weeks = logic.MAX_WAIT_CHOICES
        value = right.selectbox("Weeks (nobody waiting longer)", weeks, index=weeks.index(52) if 52 in weeks else 0,
                                key="solve-weeks")
    elif kind == "list_at_most":
        value = right.number_input("Pathways on the list at most", min_value=0, value=None, step=1000,
                                   placeholder="type a number", key="solve-list")
    else:
        value = right.number_input("Share waiting under 18 weeks at least (a fraction: 0.92 is 92%)",
                                   min_value=0.01, max_value=1.0, value=0.92, step=0.01, key="solve-within")
    by = left.date_input("By (the end of the last model week ending on or before this day)",
                         value=logic.default_by(scenario), min_value=scenario.start_date + dt.timedelta(days=6),
                         max_value=dt.date(2100, 1, 1), key=f"solve-by:{sid}")
    confidence = right.number_input("Confidence: the share of replications that must meet it (a fraction)",
                                    min_value=0.01, max_value=1.0, value=0.8, step=0.05, key="solve-confidence")
    levers = logic.solve_levers()
    lever = left.selectbox("Lever", list(levers), format_func=lambda n: f"{n} ({levers[n][0]})", key="solve-lever")
    right.caption(levers[lever][1])
    uses_site, uses_specialty = logic.solve_lever_places(lever)
    everywhere = "(all the lever covers)"
    site = specialty = None
    if uses_site:
        site = left.selectbox("At site", [everywhere, *scenario.site_names], key=f"solve-site:{sid}")
    if uses_specialty:
        specialty = right.selectbox("In specialty", [everywhere, *scenario.specialty_names],
                                    key=f"solve-specialty:{sid}")
    low_col, high_col, step_col = st.columns(3)
    low = low_col.text_input("Search from (blank: the lever's own)", key="solve-min")
    high = high_col.text_input("Search to (blank: the lever's own)", key="solve-max")
    step = step_col.text_input("Precision of the answer (blank: the lever's own step)", key="solve-step")
    left, right = st.columns(2)
    default_reps = scenario.run.replications if isinstance(scenario.run.replications, int) else 10
    replications = left.number_input("Replications of every evaluation", min_value=1, max_value=1000,
                                     value=min(default_reps, 10), step=1, key=f"solve-reps:{sid}")
    steady = right.checkbox("Also the steady state (the lever value at which the list stops growing; no simulation)",
                            key="solve-steady")
    if st.button("Solve", type="primary", disabled=busy() or value is None, key="solve",
                 help=None if value is not None else "give the target's number first"):
        checked, problems = logic.check_scenario(chosen.path, chosen.overrides)
        if checked is None:
            st.session_state["solve-problems"] = problems
        else:
            st.session_state.pop("solve-problems", None)
            target = f"{kind}={int(value) if kind != 'within_18_weeks' else value:g}" if value is not None else ""
            st.session_state["solve-job"] = logic.SolveJob(
                chosen.path, chosen.overrides, int(replications), chosen.seed, jobs=logic.app_jobs(), target=target,
                by=by, confidence=float(confidence), lever=lever,
                site=None if site in (None, everywhere) else site,
                specialty=None if specialty in (None, everywhere) else specialty,
                low=low.strip() or None, high=high.strip() or None, step=step.strip() or None,
                steady_state=bool(steady)).start()
            st.rerun()
    if st.session_state.get("solve-problems"):
        show_errors(st.session_state["solve-problems"])


def solve_progress_panel() -> None:
    live(_solve_progress_panel, st.session_state.get("solve-job"))


def _solve_progress_panel() -> None:
    """The current solve: the evaluation it is at and its replications (redrawn twice a second), then its answer."""
    job: logic.SolveJob | None = st.session_state.get("solve-job")
    if job is None:
        return
    if job.state == "running":
        if job.queued:
            text = "Waiting for another run on this server to finish"
        elif job.stages == 0:
            text = "Checking the scenario at both ends of the search range"
        else:
            text = (f"Evaluation {job.stages} ({job.stage_label}): {job.stage_done} of {job.total} replications "
                    f"done; {job.done} replications so far")
        st.progress(job.stage_done / max(job.total, 1), text=text)
        st.button("Cancelling…" if job.cancelling else "Cancel", key="solve-cancel", disabled=job.cancelling,
                  on_click=job.cancel, help="stops at the next finished replication, in the middle of an evaluation "
                                            "as Ctrl-C does: the search stops and nothing is written")
        st.caption(f"At the command line: `{job.command_line()}`")
        st.session_state["solve-was-running"] = True
        return
    if st.session_state.pop("solve-was-running", False):
        st.rerun(scope="app")           # the whole page, so Run and Solve are enabled again
    if job.state == "cancelled":
        st.warning(f"Cancelled in evaluation {job.stages} after {job.done} replications; the search stopped and "
                   "nothing was written.")
    elif job.state == "failed":
        show_errors(job.errors)
    elif job.folder is not None:
        st.success(f"Solved in {job.finished_seconds or 0:.1f} s: {logic.shown_path(job.folder)}")
        show_solve(logic.view_solve(job.folder), key="solve-current")


def show_solve(view: logic.SolveView, key: str) -> None:
    """A finished solve: the answer as the command line prints it, the evaluations, the cost, the chart, files."""
    if view.answer:
        st.markdown(f"**{view.answer[0]}**")
    for paragraph in view.answer[1:]:
        st.markdown(paragraph)
    if view.steady:
        st.markdown(view.steady)
    st.caption(f"`{logic.shown_path(view.folder)}`")
    st.markdown("**Evaluations** (in the order run; the same replications, so the same patients, at every value)")
    st.dataframe(view.evaluations, hide_index=True, key=f"{key}-evaluations")
    if view.cost is not None:
        st.markdown("**Cost of the change** (solved against the scenario as it stands, from the start to the "
                    "target's date, replication by replication)")
        pounds = {c: st.column_config.NumberColumn(format="localized") for c in view.cost.columns if "£" in c}
        st.dataframe(view.cost, hide_index=True, key=f"{key}-cost", column_config=pounds)
    if view.chart is not None:
        st.image(str(view.chart), caption="Share of replications meeting the target against the lever (solve.png)",
                 width=700)
    download_buttons(view.downloads, key)


st.title("What if: North West London elective recovery")
run_tab, solve_tab, past_tab, compare_tab = st.tabs(["Run", "Solve", "Past runs", "Compare"])
with run_tab:
    chosen = run_panel()
with solve_tab:
    solve_panel(chosen)
with past_tab:
    past_panel()
with compare_tab:
    compare_panel()
