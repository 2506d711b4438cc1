"""The compiled loops (sim.core.compiled): numba is what runs, its array heaps give up keys exactly as `heapq` does,
and the pure-Python path (`SIM_PURE_PYTHON=1`) computes the same outputs to the last bit on a scenario with every
booking mechanism on (deferrals, further visits, the scarce resource, cancellations, beds, hubs, PIFU) and the
vaccination surge."""
from __future__ import annotations

import heapq
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT, load_raw, scaled_baseline_raw, with_every_booking_mechanism
from sim.core import compiled
from sim.core.compiled import array_list
from sim.core.heaps import pop_from, push_many, push_to
from sim.core.rng import Streams
from sim.model.beds import ElectiveBeds
from sim.model.referrals import (
    PathwayParameters,
    _categorical,
    _category,
    _geometric_failures,
    _removal_weeks,
    draw_pathways,
)
from sim.model.removals import RemovalSchedule
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


def test_categories_match_the_table_of_comparisons_and_failures_count_exactly():
    rng = np.random.default_rng(3)
    cum_table = np.cumsum(rng.dirichlet(np.ones(5), size=7), axis=1)
    cum_table[:, -1] = 1.0 + 1e-12
    cum_table[2] = [0.0, 0.0, 0.5, 0.5, 1.0 + 1e-12]       # empty categories: never chosen
    row = rng.integers(0, 7, 20_000)
    u = rng.random(20_000)
    u[:3] = [0.0, 0.5, np.nextafter(0.5, 0)]               # uniforms on and just under a boundary
    row[:3] = 2
    chosen = np.array([_category(x, cum_table, r) for x, r in zip(u, row, strict=True)])
    assert np.array_equal(chosen, _categorical(u, cum_table[row]))
    assert chosen[:3].tolist() == [2, 4, 2] and not np.isin(chosen[row == 2], [0, 1, 3]).any()
    # failures before a success: P(K >= k) = p^k; a zero rate never fails, and the cap is 255
    rates, which = np.array([0.0, 0.3, 0.999999]), rng.integers(0, 3, 200_000)
    failures = _geometric_failures(rng.random(200_000), rates, which)
    assert (failures[which == 0] == 0).all() and failures.max() == 255
    assert abs((failures[which == 1] >= 2).mean() - 0.3**2) < 0.01


def test_failures_take_the_logarithm_only_where_it_can_give_one_and_equal_the_whole_formula():
    """`_geometric_failures` skips log1p below (1 - rate)(1 - 1e-9); it must still equal floor(log1p(-u) / log(rate))
    (0 for a zero rate, capped at 255) everywhere, above all on uniforms packed around each boundary 1 - rate^k."""
    rng = np.random.default_rng(11)
    rates = np.array([0.0, 1e-300, 1e-9, 0.07, 0.5, 0.999999999999])
    u, which = [rng.random(30_000)], [rng.integers(0, len(rates), 30_000)]
    for j, rate in enumerate(rates):
        for k in range(1, 5):
            boundary = 1 - rate**k
            near = boundary + np.arange(-300, 300) * np.spacing(boundary)
            near = near[(near >= 0) & (near < 1)]
            u.append(near)
            which.append(np.full(len(near), j))
    uniforms, rate_index = np.concatenate(u), np.concatenate(which)
    with np.errstate(divide="ignore"):
        whole = np.floor(np.log1p(-uniforms) / np.log(np.where(rates > 0, rates, 0.5))[rate_index])
    whole[rates[rate_index] == 0] = 0
    failures = _geometric_failures(uniforms, rates, rate_index)
    assert np.array_equal(failures, np.clip(whole, 0, 255).astype(np.uint8))
    assert 0 < np.count_nonzero(failures) < len(failures), "some uniforms fail, some do not"


def test_removal_buckets_hold_each_weeks_ids_in_the_order_they_came():
    """RemovalSchedule.add (a compiled counting sort): week w's bucket holds, in id order over the batches, the ids
    whose removal day is finite, before the horizon and in week w (days before day 0 in week 0)."""
    n_weeks = 9
    schedule = RemovalSchedule(n_weeks, ledger=None)  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    batches = []
    first = 0
    for size in (500, 0, 800):
        days = np.floor(rng.uniform(-20, 7 * n_weeks + 20, size))
        days[rng.random(size) < 0.1] = np.inf
        days[rng.random(size) < 0.05] = np.nan
        if size:
            days[:4] = [7 * n_weeks - 1, 7 * n_weeks, -1, 0]     # the last day, the horizon, before day 0
        ids = np.arange(first, first + size, dtype=np.int64)
        first += size
        schedule.add(ids, days)
        batches.append((ids, days))
    for week, bucket in enumerate(schedule.buckets):
        expected = [int(i) for ids, days in batches for i, day in zip(ids, days, strict=True)
                    if np.isfinite(day) and day < 7 * n_weeks and max(int(day) // 7, 0) == week]
        assert bucket.tolist() == expected and bucket.typecode == "i"
    assert sum(len(b) for b in schedule.buckets) > 0


def cumulative_hazard(weeks: float, band_starts: np.ndarray, hazard: np.ndarray) -> float:
    """H(weeks) of a piecewise-constant hazard, integrated band by band (the definition, not the model's search)."""
    ends = [*band_starts[1:], np.inf]
    return sum(h * max(0.0, min(weeks, end) - start) for start, end, h in zip(band_starts, ends, hazard, strict=True)
               if h > 0 and weeks > start)


def test_removal_times_accumulate_exactly_the_drawn_hazard_from_the_weeks_already_waited():
    band_starts = np.array([0.0, 18.0, 52.0, 104.0])
    hazard = np.array([0.004, 0.0, 0.012, 0.03])        # a band with no removals between two with some
    cum_at_start = np.concatenate([[0.0], np.cumsum(hazard[:-1] * np.diff(band_starts))])
    rng = np.random.default_rng(11)
    for e, waited in zip(rng.exponential(1.0, 300), rng.uniform(0, 150, 300), strict=True):
        weeks = _removal_weeks(e, waited, band_starts, hazard, cum_at_start)
        assert weeks >= 0 and not 18 < waited + weeks < 52       # never removed in the band without removals
        gained = cumulative_hazard(waited + weeks, band_starts, hazard) - cumulative_hazard(waited, band_starts, hazard)
        assert gained == pytest.approx(e, rel=1e-9)
    assert _removal_weeks(0.5, 3.0, band_starts, np.zeros(4), np.zeros(4)) == np.inf   # no removals at all


def test_one_pass_over_the_pathways_draws_what_numpys_array_draws_would():
    """numba runs numpy's algorithms on the same generators; this checks it against the array draws the model
    made before (each stream in pathway order), for referrals and for start-list patients whose site, priority,
    stage and weeks waited are given."""
    params = PathwayParameters.from_scenario(validate(scaled_baseline_raw(0.05), "params"))
    rng = np.random.default_rng(5)
    n = 4_000
    specialty = rng.integers(0, len(params.admitted_share), n)
    borough = rng.integers(0, len(params.site_cum_by_borough), n)
    clock_start = np.sort(rng.integers(-400, 28, n))
    waited = rng.uniform(0, 120, n)
    for given in ({}, {"waited_weeks": waited, "site": rng.integers(0, 4, n), "priority": rng.integers(0, 4, n),
                       "needs_operation": rng.random(n) < 0.4}):
        kernel_streams = Streams(9, 2)
        drawn = draw_pathways(kernel_streams, params, specialty, borough, clock_start, **given)
        streams = Streams(9, 2)
        u = streams["referral_attributes"].random((n, 4))
        u_priority = streams["priority_mix"].random(n)
        site = given.get("site", _categorical(u[:, 0], params.site_cum_by_borough[borough]))
        priority = given.get("priority", _categorical(u_priority, params.priority_cum[specialty]))
        needs_operation = given.get("needs_operation", u[:, 1] < params.admitted_share[specialty])
        inpatient = u[:, 2] >= params.day_case_share[specialty]
        z = streams["case_duration"].standard_normal(n)
        minutes = np.where(inpatient, np.exp(params.ip_log_mu[specialty] + params.ip_log_sigma[specialty] * z),
                           np.exp(params.dc_log_mu[specialty] + params.dc_log_sigma[specialty] * z))
        los = streams["length_of_stay"].exponential(1.0, n) * params.los_mean[specialty]
        u_dna, u_cancel = streams["outpatient_dna"].random(n), streams["cancellation"].random(n)
        e = streams["removal"].exponential(1.0, n)
        assert np.array_equal(drawn["referred_site"], site) and np.array_equal(drawn["priority"], priority)
        assert np.array_equal(drawn["needs_operation"], needs_operation)
        assert np.array_equal(drawn["inpatient"], inpatient) and np.array_equal(drawn["virtual"],
                                                                               u[:, 3] < params.virtual_share)
        assert np.array_equal(drawn["theatre_minutes"], minutes.astype(np.float32))
        assert np.array_equal(drawn["los_days"], np.where(inpatient, np.maximum(los, 1.0), 0).astype(np.float32))
        assert np.array_equal(drawn["dna_remaining"], _geometric_failures(
            u_dna, np.array([params.dna_face_to_face, params.dna_virtual]), drawn["virtual"].astype(np.int64)))
        assert np.array_equal(drawn["cancellations_remaining"], _geometric_failures(
            u_cancel, np.array([params.cancellation_rate]), np.zeros(n, dtype=np.int64)))
        w = given.get("waited_weeks", np.zeros(n))
        cum_at_start = np.concatenate([[0.0], np.cumsum(params.removal_hazard_per_week[:-1]
                                                        * np.diff(params.removal_band_starts_weeks))])
        weeks = np.array([_removal_weeks(x, y, params.removal_band_starts_weeks, params.removal_hazard_per_week,
                                         cum_at_start) for x, y in zip(e, w, strict=True)])
        assert np.array_equal(drawn["removal_day"], np.where(np.isfinite(weeks),
                                                             np.floor(clock_start + 7 * (w + weeks)), np.inf))
        for name in ("referral_attributes", "priority_mix", "case_duration", "length_of_stay", "outpatient_dna",
                     "cancellation", "removal"):          # and each stream is left where the array draws left it
            assert kernel_streams[name].random() == streams[name].random(), name


def every_mechanism_raw() -> dict:
    raw = with_every_booking_mechanism(scaled_baseline_raw(0.05, horizon_weeks=20))
    raw["outpatient_follow_ups"]["pifu_share"] = 0.3      # follow-ups moved to PIFU: filed by a compiled loop too
    # the vaccination surge (its compiled day, drawing from numpy's generator, and staff redeployed from the rosters)
    raw["vaccination"] = load_raw(ROOT / "scenarios" / "vaccination_surge.yaml")["vaccination"]
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
    assert compiled_weekly["vaccinations"].sum() > 0 and compiled_weekly["staff_redeployed_to_vaccination"].sum() > 0
    out = tmp_path / "pure_weekly.pkl"
    env = {**os.environ, compiled.PURE_PYTHON_VARIABLE: "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PURE_RUN.format(tests=str(ROOT / "tests"), out=str(out))], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    pure_weekly = pd.read_pickle(out)
    assert len(pure_weekly) == 20
    # every column, to the last bit
    pd.testing.assert_frame_equal(pure_weekly, compiled_weekly, check_exact=True)
