"""Regression: short fixed-seed runs must reproduce the golden snapshot under tests/golden/ byte for byte.

A change that moves these files changes what the model computes; regenerate them with
`.venv/bin/python tests/golden/make_golden.py` only when that is intended, and say why in the commit.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from golden.make_golden import CASES, GOLDEN_DIR, kept_files, run_case, snapshot_bytes

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_reproduces_golden_snapshot(case: str, tmp_path: Path) -> None:
    expected_dir = GOLDEN_DIR / case
    run_dir = run_case(case, tmp_path / case)
    assert kept_files(run_dir) == kept_files(expected_dir), (
        f"{case}: run wrote {kept_files(run_dir)}, the snapshot keeps {kept_files(expected_dir)}")
    for name in kept_files(expected_dir):
        seen = snapshot_bytes(run_dir / name)
        expected = (expected_dir / name).read_bytes()
        if seen != expected:
            diff = "".join(list(difflib.unified_diff(
                expected.decode().splitlines(keepends=True), seen.decode().splitlines(keepends=True),
                fromfile=f"golden/{case}/{name}", tofile=f"run/{name}", n=0))[:40])
            pytest.fail(f"{case}/{name} differs from the golden snapshot (first lines of the diff):\n{diff}")
