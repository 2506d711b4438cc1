"""The web app in a real browser: Playwright drives the system's headless Chromium (Debian's `chromium`; never a
downloaded browser) against the app served by Streamlit on a free port, as `make app` serves it.

Open the app, keep the baseline, change a lever, run two short replications, see the headline date, download the
workbook and open it; upload a broken YAML and see the command line's error; compare the two runs; start a longer
run and cancel it (Run shown disabled while it runs; no folder left); solve a short "what would it take" to its
answer and download the solved scenario. A screenshot of each step is kept in the test's temporary folder, and in
APP_SCREENSHOTS=folder when it is set (as <test>-<step>.png; APP_SCREENSHOT=path copies the result's one there,
for the README). Without Chromium or Playwright the tests skip with one line saying which is missing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if CHROMIUM is None:
    pytest.skip("no Chromium found (apt-get install chromium): the browser tests need it", allow_module_level=True)

STARTUP_SECONDS = 60
RUN_SECONDS = 180
AAG_LABEL = "Advice and guidance share (diverted)"
SET_LABEL = "Other changes, one"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a free port of 127.0.0.1, writing to a temporary results root; stopped after the module."""
    root = tmp_path_factory.mktemp("app")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), NWL_RESULTS_ROOT=str(root / "results"), NWL_APP_JOBS="1")
    log = (root / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "sim/app/page.py",
                               "--server.address", "127.0.0.1", "--server.port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() - started > STARTUP_SECONDS:
                server.kill()
                pytest.fail(f"the app did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield url, root / "results"
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (started in a second or two); each test has a fresh context of its own."""
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture()
def page(app, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.goto(app[0])
    tab.get_by_label(AAG_LABEL, exact=False).wait_for()
    yield tab
    context.close()


def _shot(page, tmp_path: Path, name: str) -> Path:
    """The browser's window as it is now (Streamlit scrolls inside the page, so a full-page shot shows no more)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("APP_SCREENSHOTS"):          # kept as the run's artifacts, one folder for every test
        folder = Path(os.environ["APP_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / f"{tmp_path.name}-{name}.png")
    return path


def _set(page, label: str, value: str) -> None:
    """Type into a number input or text area and commit it (Streamlit commits on Enter, or Ctrl+Enter in a text
    area), then wait for the page to settle."""
    field = page.get_by_label(label, exact=False).first
    field.fill(value)
    field.press("Control+Enter" if field.evaluate("e => e.tagName") == "TEXTAREA" else "Enter")
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def _settled(page) -> None:
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def _choose(page, label: str, option: str) -> None:
    """Pick an option of a select box by its label."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).click()
    page.wait_for_timeout(300)
    _settled(page)


def _run(page, results: Path, replications: int, aag: str, tmp_path: Path, tag: str) -> Path:
    """Set the levers, press Run, and wait for the page to show the new run's folder (not an earlier run's)."""
    _set(page, AAG_LABEL, aag)
    _set(page, SET_LABEL, "horizon_weeks=8")
    _set(page, "Replications", str(replications))
    _shot(page, tmp_path, f"{tag}-2-levers")
    def finished() -> set[Path]:        # a run writes into a hidden folder beside, renamed into place when done
        return {p.parent for p in results.glob("baseline/*/manifest.json") if not p.parent.name.startswith(".")}

    before = finished()
    page.get_by_role("button", name="Run", exact=True).click()
    started = time.monotonic()
    while not (new := finished() - before):
        assert time.monotonic() - started < RUN_SECONDS, "the run wrote no folder"
        time.sleep(0.2)
    folder = new.pop()
    try:
        page.locator('[data-testid="stAlertContentSuccess"]', has_text=folder.name).wait_for(
            timeout=RUN_SECONDS * 1000)
    except sync_api.TimeoutError:
        _shot(page, tmp_path, f"{tag}-timeout")
        raise
    return folder


def test_run_two_replications_see_the_headline_and_open_the_downloaded_workbook(app, page, tmp_path):
    import openpyxl

    url, results = app
    _shot(page, tmp_path, "1-opened")
    page.get_by_label("Shipped scenario (scenarios/)").click()       # pick the baseline from the list
    page.get_by_role("option", name="baseline", exact=True).click()
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
    assert page.get_by_label("Shipped scenario (scenarios/)").input_value() == "baseline"
    folder = _run(page, results, 2, "0.2", tmp_path, "run")
    page.get_by_text("Finished in", exact=False).scroll_into_view_if_needed()
    page.mouse.wheel(0, 350)
    page.wait_for_timeout(300)
    result_shot = _shot(page, tmp_path, "3-result")
    if os.environ.get("APP_SCREENSHOT"):
        shutil.copyfile(result_shot, os.environ["APP_SCREENSHOT"])
    assert folder.parent == results / "baseline"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["replications"] == 2 and "referrals.advice_and_guidance_share=0.2" in manifest["overrides"]
    # the headline's 52-week date on the page is the one the folder's summary gives
    from sim.app.logic import view_run
    expected = view_run(folder).clearance.iloc[0]["median date"]
    metric = page.locator('[data-testid="stMetricValue"]').first
    assert metric.inner_text().strip() == expected
    with page.expect_download() as download:
        page.get_by_role("button", name="Download results.xlsx").first.click()
    saved = tmp_path / "results.xlsx"
    download.value.save_as(saved)
    workbook = openpyxl.load_workbook(saved, read_only=True)
    assert workbook.sheetnames and saved.read_bytes() == (folder / "results.xlsx").read_bytes()
    _shot(page, tmp_path, "4-downloaded")


def test_a_broken_upload_shows_the_command_lines_error(app, page, tmp_path, capsys):
    from sim.cli.main import main

    body = "name: broken\ntitle: Broken\nreferrals:\n  advice_and_guidance_share: 1.5\n"
    broken = tmp_path / "broken.yaml"
    broken.write_text("extends: baseline.yaml\n" + body, encoding="utf-8")
    at_cli = tmp_path / "cli" / "broken.yaml"       # the same file where the command line finds baseline.yaml
    at_cli.parent.mkdir()
    at_cli.write_text(f"extends: {json.dumps(str(ROOT / 'scenarios' / 'baseline.yaml'))}\n" + body, encoding="utf-8")
    assert main(["validate", str(at_cli)]) == 2
    cli_lines = [line.replace(str(at_cli), "broken.yaml") for line in capsys.readouterr().err.splitlines()]
    assert cli_lines and all(line.startswith("error: broken.yaml") for line in cli_lines)
    page.get_by_text("Upload a YAML file").click()
    page.locator('input[type="file"]').set_input_files(str(broken))
    error = page.locator('[data-testid="stAlertContentError"]').first
    error.wait_for()
    _shot(page, tmp_path, "upload-error")
    shown = [line for line in error.inner_text().splitlines() if line.strip()]
    assert shown == [line for line in cli_lines if line.strip()]
    assert not list((app[1] / "uploads").glob("*broken*")), "a refused upload must not be kept"


def test_compare_two_runs_side_by_side(app, page, tmp_path):
    older = _run(page, app[1], 2, "0.2", tmp_path, "first")
    newer = _run(page, app[1], 1, "0.3", tmp_path, "second")
    page.get_by_role("tab", name="Compare").click()
    # the page is redrawn once the run is in place: wait until the choices name the two new runs
    # (while the page is redrawn, the old choices stay on it beside the new ones until the redraw ends)
    for label, folder in (("First run", older), ("Second run", newer)):
        page.locator(f'input[aria-label="{label}"][value*="{folder.name}"]').wait_for()
        sync_api.expect(page.get_by_label(label)).to_have_count(1)
    page.locator('[data-testid="stDataFrame"]').last.wait_for()
    _shot(page, tmp_path, "compare")
    first, second = (page.locator('[data-testid="stCode"]:visible').nth(i).inner_text()
                     for i in (0, 1))
    assert "— 2 replications" in first and "— 1 replication," in second, "the older run first, the newer second"
    changes = page.get_by_text("Changes: referrals.advice_and_guidance_share=0.2", exact=False)
    assert changes.filter(visible=True).count() == 1
    changes = page.get_by_text("Changes: referrals.advice_and_guidance_share=0.3", exact=False)
    assert changes.filter(visible=True).count() == 1


def test_cancel_a_run_it_stops_with_run_shown_disabled_meanwhile_and_no_folder_is_left(app, page, tmp_path):
    results = app[1]
    _set(page, SET_LABEL, "horizon_weeks=8")
    _set(page, "Replications", "200")              # about two minutes on one core if Cancel did nothing
    _shot(page, tmp_path, "1-set")
    before = set(results.glob("baseline/*")) | set(results.glob("baseline/.*"))
    run = page.get_by_role("button", name="Run", exact=True)
    run.click()
    progress = page.get_by_text(re.compile(r"Running: [1-9]\d* of 200 replications done"))
    progress.wait_for(timeout=RUN_SECONDS * 1000)   # the first replication finished: the run is under way
    sync_api.expect(run).to_be_disabled()
    run.scroll_into_view_if_needed()
    _shot(page, tmp_path, "2-running-run-disabled")
    page.get_by_role("button", name="Cancel", exact=True).click()
    _shot(page, tmp_path, "3-cancel-pressed")       # "Cancelling…", disabled, until the next replication ends
    stopped = page.locator('[data-testid="stAlertContentWarning"]', has_text="Cancelled after")
    stopped.wait_for(timeout=60_000)
    _settled(page)
    sync_api.expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    _shot(page, tmp_path, "4-cancelled")
    done = int(re.search(r"Cancelled after (\d+) of 200", stopped.inner_text()).group(1))
    assert 1 <= done < 200
    sync_api.expect(run).to_be_enabled()
    left = (set(results.glob("baseline/*")) | set(results.glob("baseline/.*"))) - before
    assert not left, f"a cancelled run left {sorted(p.name for p in left)}"


def test_solve_what_it_would_take_to_an_answer_and_download_the_solved_scenario(app, page, tmp_path):
    from sim.app.logic import view_solve

    results = app[1]
    page.get_by_role("tab", name="Solve").click()
    _choose(page, "Target", "The waiting list at most")
    _set(page, "Pathways on the list at most", "189000")        # about 179,000 on the start date, growing
    page.get_by_role("spinbutton", name="year, By (the end", exact=False).click()
    page.keyboard.type("20210802")                              # year, month, day: eight weeks in
    page.keyboard.press("Tab")
    _settled(page)
    _choose(page, "Lever", "advice_and_guidance_share (share of referral requests diverted by advice and guidance)")
    for label, value in (("Search from", "0.1"), ("Search to", "0.2"), ("Precision of the answer", "0.05"),
                         ("Replications of every evaluation", "2")):
        _set(page, label, value)
    _shot(page, tmp_path, "1-form")
    solve = page.get_by_role("button", name="Solve", exact=True)
    solve.click()
    sync_api.expect(solve).to_be_disabled()
    _shot(page, tmp_path, "2-solving-solve-disabled")
    done = page.locator('[data-testid="stAlertContentSuccess"]', has_text="Solved in")
    done.wait_for(timeout=RUN_SECONDS * 1000)
    folder = next(results.glob(f"solve-baseline/{done.inner_text().rsplit('/', 1)[-1].strip()}"))
    _settled(page)
    page.locator('[data-testid="stDataFrame"]:visible').first.wait_for()
    page.get_by_text("Evaluations (in the order run", exact=False).first.scroll_into_view_if_needed()
    _shot(page, tmp_path, "3-answer")
    view = view_solve(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["answer"] is not None and manifest["target"] == "the waiting list at most 189,000 by 2 August 2021"
    answer = page.locator('[data-testid="stMarkdownContainer"] strong', has_text="would need").first
    assert answer.inner_text().strip() == re.sub(r"\\(.)", r"\1", view.answer[0])
    assert f"advice_and_guidance_share = {manifest['answer']:g}" in answer.inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download solved_scenario.yaml").first.click()
    saved = tmp_path / "solved_scenario.yaml"
    download.value.save_as(saved)
    assert saved.read_bytes() == (folder / "solved_scenario.yaml").read_bytes()
    assert f"advice_and_guidance_share: {manifest['answer']:g}" in saved.read_text()
    _shot(page, tmp_path, "4-downloaded")
