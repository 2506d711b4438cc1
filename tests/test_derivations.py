"""The plan (scenarios/core/nwl_june_2021_plan.yaml) still holds what scripts/ derive: clinic slots, sessions,
beds, staff and cohorts."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

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
    assert "NOT what baseline.yaml holds" in printed
    assert "imperial: {surgeons:" in printed and "# doses before start:" in printed
