"""Every test has exactly one kind: unit, verification, behaviour or integration (declared in pyproject.toml).

A file of one kind says so once with a module-level `pytestmark`; a file that mixes kinds marks each test. Collection
fails, naming the tests, when a test has no kind or more than one, so `-m unit` and friends always select the whole
suite between them. `slow` is not a kind: it says how long a test takes, on top of its kind.

Under pytest-xdist (`make test`, `-n auto`; pyproject.toml asks for `--dist loadgroup --no-loadscope-reorder`), the
tests of a module that share a module-scoped fixture run on one worker, so the fixture (a real run, the web app's
server) is made once and not on every worker; and the longest tests are handed out first, so that the workers
finish together rather than one of them starting a long test when the others have nothing left to do.

`helpers` and `golden.make_golden` are importable because pyproject.toml puts tests/ on the path (`pythonpath`).
"""
from __future__ import annotations

import pytest

KINDS = ("unit", "verification", "behaviour", "integration")

# The longest tests, and modules of tests sharing an expensive module fixture, longest first, as the start of their
# node ids (a module ends in "::"): each took 7 s to over a minute alone (-n 0) on the 2-core machine. The others
# keep their order after these; a name that matches nothing changes nothing (rename it here with its test).
LONGEST_FIRST = (
    "tests/test_app_browser.py::",                              # 150-200 s with one app server: all on one worker
    "tests/test_executors.py::test_ctrl_c_stops_at_once",       # 25-60 s each: it needs long replications
    "tests/test_report_docx.py::",                              # 35 s: one compare of two scenarios
    "tests/test_report_folder_validation.py::",                 # 35 s: 75 tests on one tiny run
    "tests/test_report.py::",                                   # 30 s: two runs
    "tests/test_calibrate.py::test_calibration_recovers",
    "tests/test_pressures.py::test_bigger_wave_never_clears_sooner",
    "tests/test_executors.py::test_sequential_local_processes_and_dask",
    "tests/test_behaviour.py::test_auto_replications_stop",
    "tests/test_uncertainty.py::test_command_line_reports_which_uncertainty",
    "tests/test_safe_text.py::",
    "tests/test_finance.py::test_report_has_a_finance_section",
    "tests/test_app.py::test_a_solve_from_the_page",
    "tests/test_waiting_list_shape.py::",
    "tests/test_pressures.py::test_surge_that_redeploys_staff",
    "tests/test_app.py::test_a_run_from_the_page",
    "tests/test_executors.py::test_unreachable_scheduler",
    "tests/test_solver.py::test_the_answer_is_the_same_on_one_and_two_jobs",
    "tests/test_verification.py::test_fluid_clearance_time",
    "tests/test_golden.py::",
    "tests/test_pressures.py::test_centre_day_wait",
    "tests/test_solver.py::test_more_demand_never_needs_less_capacity",
    "tests/test_app.py::test_runs_take_turns",
    "tests/test_cli.py::test_run_writes_a_complete_folder",
)


@pytest.hookimpl(tryfirst=True)     # before pytest-xdist reads the xdist_group marks this adds
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        kinds = sorted({mark.name for mark in item.iter_markers() if mark.name in KINDS})
        if len(kinds) != 1:
            wrong.append(f"  {item.nodeid}: {', '.join(kinds) if kinds else 'no kind'}")
    if wrong:
        raise pytest.UsageError(f"every test needs exactly one kind marker of {', '.join(KINDS)} "
                                f"(pytestmark for a whole file, @pytest.mark.<kind> for one test); "
                                f"{len(wrong)} do not:\n" + "\n".join(wrong))
    for item in items:
        if _uses_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(_module_of(item)))
    items.sort(key=_place_in_line)          # a stable sort: the rest keep their order


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _uses_a_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)            # pytest's record of the fixtures a test function uses
    if info is None:
        return False
    return any(defs and defs[-1].scope == "module" for defs in info.name2fixturedefs.values())


def _place_in_line(item: pytest.Item) -> int:
    """The index of the first name in LONGEST_FIRST that `item`'s node id starts with; after them all if none."""
    return next((place for place, name in enumerate(LONGEST_FIRST) if item.nodeid.startswith(name)),
                len(LONGEST_FIRST))
