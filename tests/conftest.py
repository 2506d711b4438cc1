"""Every test has exactly one kind: unit, verification, behaviour or integration (declared in pyproject.toml).

A file of one kind says so once with a module-level `pytestmark`; a file that mixes kinds marks each test. Collection
fails, naming the tests, when a test has no kind or more than one, so `-m unit` and friends always select the whole
suite between them. `slow` is not a kind: it says how long a test takes, on top of its kind.

`helpers` and `golden.make_golden` are importable because pyproject.toml puts tests/ on the path (`pythonpath`).
"""
from __future__ import annotations

import pytest

KINDS = ("unit", "verification", "behaviour", "integration")


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
