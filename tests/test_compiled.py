"""The compiled loops (sim.core.compiled): numba is what runs, its array heaps give up keys exactly as `heapq` does,
and the pure-Python path (`SIM_PURE_PYTHON=1`) computes the same outputs to the last bit on a scenario with every
booking mechanism on (deferrals, further visits, the scarce resource, cancellations, beds, hubs, PIFU)."""
from __future__ import annotations

import heapq
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT, scaled_baseline_raw, with_every_booking_mechanism
from sim.core import compiled
from sim.core.compiled import array_list
from sim.core.heaps import pop_from, push_many, push_to
from sim.model.beds import ElectiveBeds
from sim.model.referrals import _categorical, _categorical_by_row, _geometric_failures
from sim.model.replication import run_single
from sim.scenario.validate import validate

pytestmark = pytest.mark.unit


def test_the_tests_run_the_compiled_path():
    assert compiled.COMPILED, "numba should be installed and SIM_PURE_PYTHON unset, so the tests check what users run"


def test_the_cache_is_named_by_every_compiled_layers_source_so_an_edit_anywhere_there_starts_afresh(tmp_path):
    import shutil

    import numba
    assert Path(numba.config.CACHE_DIR).name == compiled.CACHE_PREFIX + compiled.sources_digest()
    copy = tmp_path / "sim"
    for layer in ("core", "model"):
        shutil.copytree(ROOT / "sim" / layer, copy / layer, ignore=shutil.ignore_patterns("__pycache__"))
    assert compiled.sources_digest(copy) == compiled.sources_digest()
    heaps = copy / "core" / "heaps.py"            # a file the session loop inlines from, not its own
    heaps.write_text(heaps.read_text() + "\n# an edit\n")
    assert compiled.sources_digest(copy) != compiled.sources_digest()


def test_array_heaps_give_keys_up_in_heapq_order_through_growth_and_batches():
    rng = np.random.default_rng(7)
    heaps, sizes = array_list([np.empty(16, dtype=np.int64), np.empty(16, dtype=np.int64)]), np.zeros(2, np.int64)
    reference: list[list[int]] = [[], []]
    given = iter(rng.permutation(1_000_000).tolist())     # distinct keys, as the lists' keys are
    popped, expected = [], []
    for _ in range(3000):
        h = int(rng.integers(2))
        action = rng.random()
        if action < 0.05:                                 # a batch bigger or smaller than the heap
            keys = [next(given) for _ in range(int(rng.integers(1, 400)))]
            push_many(heaps, sizes, h, np.array(keys, dtype=np.int64))
            for k in keys:
                heapq.heappush(reference[h], k)
        elif action < 0.6 or not reference[h]:
            k = next(given)
            push_to(heaps, sizes, h, k)
            heapq.heappush(reference[h], k)
        else:
            popped.append(int(pop_from(heaps, sizes, h)))
            expected.append(heapq.heappop(reference[h]))
        assert sizes[h] == len(reference[h])
    assert popped == expected and len(popped) > 500


def test_beds_admit_while_a_bed_is_free_and_free_it_at_discharge():
    beds = ElectiveBeds(2)
    assert beds.try_admit(0.5, 3.0) and beds.try_admit(1.5, 1.0)
    assert not beds.try_admit(2.0, 1.0), "both beds taken until day 2.5"
    assert beds.occupied(2.5) == 1                        # the second stay ends at 2.5
    assert beds.try_admit(2.5, 10.0) and beds.occupied(3.5) == 1 and beds.occupied(12.5) == 0
    beds.capacity = 0                                     # Covid took every bed
    assert not beds.try_admit(20.0, 1.0)


def test_categories_by_row_match_the_table_of_comparisons_and_failures_count_exactly():
    rng = np.random.default_rng(3)
    cum_table = np.cumsum(rng.dirichlet(np.ones(5), size=7), axis=1)
    cum_table[:, -1] = 1.0 + 1e-12
    cum_table[2] = [0.0, 0.0, 0.5, 0.5, 1.0 + 1e-12]       # empty categories: never chosen
    row = rng.integers(0, 7, 20_000)
    u = rng.random(20_000)
    u[:3] = [0.0, 0.5, np.nextafter(0.5, 0)]               # uniforms on and just under a boundary
    row[:3] = 2
    chosen = _categorical_by_row(u, row, cum_table)
    assert np.array_equal(chosen, _categorical(u, cum_table[row]))
    assert chosen[:3].tolist() == [2, 4, 2] and not np.isin(chosen[row == 2], [0, 1, 3]).any()
    # failures before a success: P(K >= k) = p^k; a zero rate never fails, and the cap is 255
    rates, which = np.array([0.0, 0.3, 0.999999]), rng.integers(0, 3, 200_000)
    failures = _geometric_failures(rng.random(200_000), rates, which)
    assert (failures[which == 0] == 0).all() and failures.max() == 255
    assert abs((failures[which == 1] >= 2).mean() - 0.3**2) < 0.01


def every_mechanism_raw() -> dict:
    raw = with_every_booking_mechanism(scaled_baseline_raw(0.05, horizon_weeks=20))
    raw["outpatient_follow_ups"]["pifu_share"] = 0.3      # follow-ups moved to PIFU: filed by a compiled loop too
    return raw


PURE_RUN = """
import sys
sys.path.insert(0, {tests!r})
from sim.core import compiled
assert not compiled.COMPILED
from test_compiled import every_mechanism_raw
from sim.model.replication import run_single
from sim.scenario.validate import validate
run_single(validate(every_mechanism_raw(), "pure"), 0).weekly.to_pickle({out!r})
"""


def test_pure_python_path_gives_the_compiled_paths_outputs_exactly(tmp_path):
    compiled_weekly = run_single(validate(every_mechanism_raw(), "compiled"), 0).weekly
    assert compiled_weekly["theatre_cases"].sum() > 0 and compiled_weekly["deferrals_operation"].sum() > 0
    assert compiled_weekly["pifu_followups_offered"].sum() > 0
    out = tmp_path / "pure_weekly.pkl"
    env = {**os.environ, compiled.PURE_PYTHON_VARIABLE: "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PURE_RUN.format(tests=str(ROOT / "tests"), out=str(out))], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    pure_weekly = pd.read_pickle(out)
    assert len(pure_weekly) == 20
    # every column, to the last bit
    pd.testing.assert_frame_equal(pure_weekly, compiled_weekly, check_exact=True)
