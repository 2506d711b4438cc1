"""Every test has exactly one kind: unit, verification, behaviour or integration (declared in pyproject.toml).

A file of one kind says so once with a module-level `pytestmark`; a file that mixes kinds marks each test. Collection
fails, naming the tests, when a test has no kind or more than one, so `-m unit` and friends always select the whole
suite between them. `slow` is not a kind: it says how long a test takes, on top of its kind.

Under pytest-xdist (`make test`, `-n auto`), pyproject.toml asks for `--dist loadfile --no-loadscope-reorder`: each
test file runs on one worker, so its module fixtures (a real run, the web app's server) are made once, not on every
worker; and the files are handed out in the order below, longest first, so that the workers finish together
rather than one of them starting a long file when the other has nothing left to do.

`helpers` and `golden.make_golden` are importable because pyproject.toml puts tests/ on the path (`pythonpath`).
"""
from __future__ import annotations

import pytest

KINDS = ("unit", "verification", "behaviour", "integration")

# The test files that take longest, longest first, by the seconds each took alone (-n 0) on the 2-core machine
# while other work loaded it. The other files, each under 11 s, keep their order after these; a name that matches
# no file changes nothing (rename it here with its file).
LONGEST_FIRST = (
    "tests/test_app_browser.py",                # 120-200 s: the web app in Chromium, five runs and a solve
    "tests/test_executors.py",                  # 35-60 s: four executors' tables compared, three Ctrl-C tests
    "tests/test_pressures.py",                  # 55 s
    "tests/test_report_folder_validation.py",   # 35-55 s
    "tests/test_app.py",                        # 50 s
    "tests/test_report.py",                     # 35-50 s
    "tests/test_report_docx.py",                # 35 s
    "tests/test_solver.py",                     # 35 s
    "tests/test_behaviour.py",                  # 33 s
    "tests/test_calibrate.py",                  # 30 s
    "tests/test_finance.py",                    # 30 s
    "tests/test_uncertainty.py",                # 23 s
    "tests/test_golden.py",                     # 23 s
    "tests/test_verification.py",               # 20 s
    "tests/test_output_destinations.py",        # 20 s
    "tests/test_report_escaping.py",            # 18 s
    "tests/test_safe_text.py",                  # 15 s
    "tests/test_cli.py",                        # 14 s
    "tests/test_rtt_start.py",                  # 14 s
    "tests/test_waiting_list_shape.py",         # 13 s
    "tests/test_rtt_calibration.py",            # 13 s
)


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
    items.sort(key=_place_in_line)          # a stable sort: each file's tests keep their order


def _place_in_line(item: pytest.Item) -> int:
    """The index of `item`'s file in LONGEST_FIRST; after them all if it is not there."""
    file = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(file) if file in LONGEST_FIRST else len(LONGEST_FIRST)
