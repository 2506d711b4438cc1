"""The plan (scenarios/core/nwl_june_2021_plan.yaml) still holds what scripts/ derive: clinic slots, sessions,
beds, staff and cohorts."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from sim.scenario.schema import WEEKDAYS
from sim.scenario.validate import validate
from sim.scenario.yaml_files import load_raw

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "core" / "nwl_june_2021_plan.yaml"


def script(name: str) -> ModuleType:
    """A script of scripts/ imported as a module (they are run as files, not installed)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module           # registered first: its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def baseline():
    raw = load_raw(BASELINE)
    return raw, validate(raw, BASELINE)


def test_baseline_capacity_is_what_the_script_derives(baseline):
    raw, scenario = baseline
    derived = script("derive_baseline_capacity").derive_capacity(scenario)
    assert set(derived) == set(raw["sites"])
    for site, cap in derived.items():
        shipped = raw["sites"][site]
        assert shipped["outpatient_first_slots_per_week"] == cap.outpatient_first_slots_per_week, site
        assert shipped["theatres"]["specialty_session_shares"] == cap.specialty_session_shares, site
        weekdays = {d: cap.sessions_by_weekday.get(d, 0) for d in WEEKDAYS}
        assert shipped["theatres"]["sessions_by_weekday"] == weekdays, site
        assert shipped["elective_beds"] == cap.elective_beds, site


def test_baseline_staff_and_cohorts_are_what_the_script_derives(baseline):
    raw, scenario = baseline
    derive = script("derive_staff_and_cohorts")
    assert raw["staff"]["establishment"] == derive.staff_establishment(scenario)
    shipped = [{**c, "eligible_from": c["eligible_from"].isoformat()} for c in raw["vaccination"]["cohorts"]]
    assert shipped == derive.cohorts(scenario)


def test_the_scripts_still_run(capsys):
    script("derive_baseline_capacity").main([str(BASELINE), "--model-rules"])
    script("derive_staff_and_cohorts").main([str(BASELINE)])
    printed = capsys.readouterr().out
    assert "NOT what the plan holds" in printed
    assert "imperial: {surgeons:" in printed and "# doses before start:" in printed


def test_start_bands_add_up_to_nwls_list_and_the_seeds_52_week_count():
    bands = script("derive_start_bands").derive_bands("2021-06")
    assert sum(b["count"] for b in bands) == 184005, "the whole list must be NWL's June 2021 list (nwl_monthly.csv)"
    assert sum(b["count"] for b in bands if b["from_weeks"] >= 52) == 4500
    long = {b["from_weeks"]: b["count"] for b in bands if b["from_weeks"] >= 52}
    # England, June 2021: 304,823 over 52, 85,959 over 78, 5,727 over 104 weeks
    assert long[52] == pytest.approx(4500 * (304823 - 85959) / 304823, abs=1)
    assert long[104] == pytest.approx(4500 * 5727 / 304823, abs=1)
    under_18 = sum(b["count"] for b in bands if b["to_weeks"] <= 18)
    assert under_18 / (184005 - 4500) == pytest.approx((5453486 - 1704255) / (5453486 - 304823), abs=1e-5)
    # England's median (10.452 weeks) and 92nd percentile (44.158) are band edges, to one decimal
    assert [b["from_weeks"] for b in bands] == [0, 10.5, 18, 44.2, 52, 78, 104]
    ends = [b["to_weeks"] for b in bands]
    assert ends[:-1] == [b["from_weeks"] for b in bands][1:], "bands must tile the weeks with no gap"
    assert all(0 < b["admitted_share"] < 1 for b in bands)


def test_start_bands_check_passes_on_the_derived_bands_and_fails_on_others(tmp_path, capsys):
    derive = script("derive_start_bands")
    raw = load_raw(BASELINE)
    raw["start_list"]["bands"] = derive.derive_bands("2021-06")
    matching = tmp_path / "derived.yaml"
    matching.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert derive.main(["--check", str(matching)]) == 0
    raw["start_list"]["bands"][0]["count"] += 1
    matching.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert derive.main(["--check", str(matching)]) == 1
    assert "differ" in capsys.readouterr().out


def test_start_bands_derive_for_another_month():
    bands = script("derive_start_bands").derive_bands("2022-03")
    with open(ROOT / "data" / "observed" / "nwl_monthly.csv", encoding="utf-8") as f:
        march = next(r for r in csv.DictReader(f) if r["month"] == "2022-03")
    assert sum(b["count"] for b in bands) == int(march["waiting_list"])
    assert [b["from_weeks"] for b in bands][:3] == [0, 12.2, 18]
